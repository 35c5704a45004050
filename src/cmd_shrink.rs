//! `minos shrink`.

use clap::Args;

#[derive(Args)]
pub struct ShrinkArgs {}

pub fn main(_args: ShrinkArgs) -> i32 {
    crate::exit::not_implemented("shrink")
}

//! `minos check`.

use clap::Args;

#[derive(Args)]
pub struct CheckArgs {}

pub fn main(_args: CheckArgs) -> i32 {
    crate::exit::not_implemented("check")
}

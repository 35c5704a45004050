//! `minos run`.

use clap::Args;

#[derive(Args)]
pub struct RunArgs {}

pub fn main(_args: RunArgs) -> i32 {
    crate::exit::not_implemented("run")
}

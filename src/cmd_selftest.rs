//! `minos selftest`.

use clap::Args;

#[derive(Args)]
pub struct SelftestArgs {}

pub fn main(_args: SelftestArgs) -> i32 {
    crate::exit::not_implemented("selftest")
}

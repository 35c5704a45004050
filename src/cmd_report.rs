//! `minos report`.

use clap::Args;

#[derive(Args)]
pub struct ReportArgs {}

pub fn main(_args: ReportArgs) -> i32 {
    crate::exit::not_implemented("report")
}

//! `minos node`.

use clap::Args;

#[derive(Args)]
pub struct NodeArgs {}

pub fn main(_args: NodeArgs) -> i32 {
    crate::exit::not_implemented("node")
}

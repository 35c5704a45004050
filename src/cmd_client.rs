//! `minos client`.

use clap::Args;

#[derive(Args)]
pub struct ClientArgs {}

pub fn main(_args: ClientArgs) -> i32 {
    crate::exit::not_implemented("client")
}

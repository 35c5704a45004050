//! `minos campaign`.

use clap::Args;

#[derive(Args)]
pub struct CampaignArgs {}

pub fn main(_args: CampaignArgs) -> i32 {
    crate::exit::not_implemented("campaign")
}

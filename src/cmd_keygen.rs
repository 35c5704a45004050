//! `minos keygen FILE`: create a cluster key for `minos node --cluster-key` and
//! `minos client --cluster-key`: 32 random bytes in hex, in a new file of mode 0600.

use std::path::PathBuf;

use clap::Args;
use minos_node::auth::{ClusterKey, KeyError};

use crate::exit;

#[derive(Args)]
pub struct KeygenArgs {
    /// The key file to create (refused if it exists).
    file: PathBuf,
}

pub fn main(args: KeygenArgs) -> i32 {
    match ClusterKey::write_new(&args.file) {
        Ok(_) => {
            println!("{}", args.file.display());
            exit::VALID
        }
        Err(error @ (KeyError::Exists { .. } | KeyError::Io { .. })) => {
            eprintln!("minos keygen: {error}");
            exit::BAD_INPUT
        }
        Err(error) => {
            eprintln!("minos keygen: {error}");
            exit::INTERNAL
        }
    }
}

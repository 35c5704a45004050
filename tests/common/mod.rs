//! Set-up shared by the integration tests that run the real `minos` binary: scratch
//! directories, the command, and the options of the small runs they campaign or shrink over.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};

/// Options of a short run on a small cluster: 3 nodes, 4 clients, 4 s, a fault every second.
pub const SMALL_RUN: [&str; 8] = [
    "--nodes",
    "3",
    "--clients",
    "4",
    "--time-limit",
    "4s",
    "--nemesis-interval",
    "1s",
];

/// A planted bug that small runs catch on some seeds and not on others, and the faults that
/// expose it: runs that mix valid and invalid verdicts.
pub const PLANTED_NO_DEDUP: [&str; 4] = ["--nemesis", "all", "--bug", "no-dedup"];

/// An empty directory under the system temp dir, unique to this test process and `name`.
pub fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("minos-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The `minos` binary cargo built for these tests, with no arguments yet.
pub fn minos_command() -> Command {
    Command::new(env!("CARGO_BIN_EXE_minos"))
}

/// Runs `minos ARGS` to completion.
pub fn minos(args: &[&str]) -> Output {
    minos_command().args(args).output().unwrap()
}

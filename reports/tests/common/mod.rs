//! Helpers shared by the report tests: fresh fixture run dirs under the system temp dir (left
//! in place after the test so that a person can open them).

#![allow(dead_code)]

use std::path::PathBuf;

use minos_reports::fixtures::{write_run_dir, FixtureOptions};

pub fn fresh_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join("minos-reports-tests").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub fn fixture(name: &str, options: FixtureOptions) -> PathBuf {
    let dir = fresh_dir(name);
    write_run_dir(&dir, &options).unwrap();
    dir
}

pub fn read(dir: &std::path::Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

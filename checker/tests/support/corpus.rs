//! Reading the shared corpus (`expected.tsv`): shared by the corpus test and the benchmark.

use std::path::{Path, PathBuf};

use minos_checker::history::{self, Format};
use minos_checker::CheckOptions;

pub struct Case {
    pub file: String,
    pub path: PathBuf,
    pub options: CheckOptions,
    pub expected: String,
}

/// `$MINOS_CORPUS`, or `../shared/corpus` relative to the repository root.
pub fn corpus_dir() -> PathBuf {
    match std::env::var_os("MINOS_CORPUS") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus"),
    }
}

/// The cases of `expected.tsv`, or None when the corpus is absent.
pub fn cases() -> Option<Vec<Case>> {
    let dir = corpus_dir();
    let table = std::fs::read_to_string(dir.join("expected.tsv")).ok()?;
    let mut cases = Vec::new();
    for line in table
        .lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
    {
        let fields: Vec<&str> = line.split('\t').collect();
        assert_eq!(fields.len(), 3, "expected.tsv line {line:?}");
        let mut options = CheckOptions::new("");
        options.time_limit = Some(std::time::Duration::from_secs(300));
        let arguments: Vec<&str> = fields[1].split_whitespace().collect();
        let mut position = 0;
        while position < arguments.len() {
            match arguments[position] {
                "--model" => {
                    options.model = arguments[position + 1].to_string();
                    position += 2;
                }
                "--init" => {
                    options.init = Some(
                        serde_json::from_str(arguments[position + 1]).expect("--init is JSON"),
                    );
                    position += 2;
                }
                "--no-partition" => {
                    options.partition = false;
                    position += 1;
                }
                other => panic!("expected.tsv uses an argument this test does not know: {other}"),
            }
        }
        cases.push(Case {
            file: fields[0].to_string(),
            path: dir.join(fields[0]),
            options,
            expected: fields[2].to_string(),
        });
    }
    Some(cases)
}

pub fn read(case: &Case) -> minos_checker::history::History {
    history::read_file(&case.path, Format::Auto).unwrap_or_else(|error| panic!("{error}"))
}

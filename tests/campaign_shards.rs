//! Shards 1/3, 2/3 and 3/3 cover a seed range exactly once, and their directories, copied into
//! one, merge (`minos report DIR`) into the same totals as one unsharded campaign, with the
//! same history for every seed. Runs the real `minos` binary.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::{minos_command, scratch_dir, PLANTED_NO_DEDUP, SMALL_RUN};

const SEEDS: &str = "0..10";

/// A campaign over SEEDS with a planted bug, so that the totals mix valid and invalid runs.
fn campaign(out: &Path, shard: Option<&str>) -> (Option<i32>, String) {
    let mut command = minos_command();
    command
        .args(["campaign", "--seeds", SEEDS, "--jobs", "2"])
        .args(SMALL_RUN)
        .args(PLANTED_NO_DEDUP)
        .args(["--no-report", "--out"])
        .arg(out);
    if let Some(shard) = shard {
        command.args(["--shard", shard]);
    }
    let output = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    (output.status.code(), stdout)
}

/// The single campaign dir under `out`.
fn campaign_dir(out: &Path) -> PathBuf {
    let dirs: Vec<PathBuf> = std::fs::read_dir(out)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().unwrap().is_dir())
        .map(|e| e.path())
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    dirs[0].clone()
}

/// seed -> (verdict, history sha256) of every run dir under a campaign dir.
fn runs(campaign: &Path) -> BTreeMap<u64, (String, String)> {
    let mut found = BTreeMap::new();
    for test in std::fs::read_dir(campaign).unwrap().filter_map(Result::ok) {
        if !test.file_type().unwrap().is_dir()
            || test.file_name().to_string_lossy().starts_with('.')
        {
            continue;
        }
        for run in std::fs::read_dir(test.path())
            .unwrap()
            .filter_map(Result::ok)
        {
            let text = std::fs::read_to_string(run.path().join("results.json")).unwrap();
            let results: serde_json::Value = serde_json::from_str(&text).unwrap();
            let seed = results["seed"].as_u64().unwrap();
            let previous = found.insert(
                seed,
                (
                    results["verdict"].as_str().unwrap().to_string(),
                    results["history"]["sha256"].as_str().unwrap().to_string(),
                ),
            );
            assert!(previous.is_none(), "seed {seed} ran twice");
        }
    }
    found
}

/// `minos report DIR --no-recheck`'s totals line.
fn report_totals(dir: &Path) -> String {
    let output = minos_command()
        .args(["report", "--no-recheck"])
        .arg(dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    stdout
        .lines()
        .rfind(|line| line.contains(" runs: "))
        .unwrap_or_else(|| panic!("no totals in {stdout}"))
        .to_string()
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().filter_map(Result::ok) {
        let kind = entry.file_type().unwrap();
        let target = to.join(entry.file_name());
        if kind.is_dir() {
            copy_tree(&entry.path(), &target);
        } else if kind.is_file() {
            // Shards of one campaign write identical campaign.json files.
            if target.exists() && entry.file_name() == "campaign.json" {
                assert_eq!(
                    std::fs::read(&target).unwrap(),
                    std::fs::read(entry.path()).unwrap()
                );
            }
            std::fs::copy(entry.path(), &target).unwrap();
        } else {
            panic!(
                "unexpected symlink {} in a finished campaign",
                entry.path().display()
            );
        }
    }
}

#[test]
fn shards_cover_the_range_once_and_merge_into_the_unsharded_totals() {
    let root = scratch_dir("campaign-shards");
    let whole_out = root.join("whole");
    let (whole_code, whole_stdout) = campaign(&whole_out, None);
    let whole = runs(&campaign_dir(&whole_out));
    assert_eq!(
        whole.keys().copied().collect::<Vec<_>>(),
        (0..10).collect::<Vec<_>>()
    );
    assert!(
        whole.values().any(|(verdict, _)| verdict == "invalid"),
        "the planted bug must make some seed fail: {whole_stdout}"
    );
    assert_eq!(whole_code, Some(1), "any invalid run -> exit 1");

    let merged_out = root.join("merged");
    let mut union = BTreeMap::new();
    for (index, shard) in ["1/3", "2/3", "3/3"].into_iter().enumerate() {
        let shard_out = root.join(format!("shard{}", index + 1));
        let (_code, stdout) = campaign(&shard_out, Some(shard));
        assert!(
            stdout.contains(&format!("(shard {shard}: seeds ")),
            "{stdout}"
        );
        let dir = campaign_dir(&shard_out);
        let shard_runs = runs(&dir);
        assert!(!shard_runs.is_empty());
        for (seed, run) in shard_runs {
            assert!(
                union.insert(seed, run).is_none(),
                "seed {seed} in two shards"
            );
        }
        copy_tree(&dir, &merged_out.join(dir.file_name().unwrap()));
    }
    assert_eq!(union, whole, "same seeds, same verdicts, same histories");

    let merged_dir = campaign_dir(&merged_out);
    assert_eq!(
        merged_dir.file_name(),
        campaign_dir(&whole_out).file_name(),
        "every shard of one command uses the same campaign name"
    );
    let whole_totals = report_totals(&campaign_dir(&whole_out));
    let merged_totals = report_totals(&merged_dir);
    assert!(whole_totals.starts_with("10 runs: "), "{whole_totals}");
    assert_eq!(merged_totals, whole_totals);
    assert!(merged_dir.join("index.html").is_file());
    std::fs::remove_dir_all(&root).unwrap();
}

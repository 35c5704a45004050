//! `minos selftest` end to end: the planted bugs it is asked about are caught (the
//! membership bug through the membership nemesis), the JSON is complete, and the exit code
//! follows the verdict.

use std::path::PathBuf;
use std::process::Command;

fn minos() -> Command {
    Command::new(env!("CARGO_BIN_EXE_minos"))
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("minos-selftest-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn selftest_json(out: &PathBuf, args: &[&str]) -> (i32, serde_json::Value) {
    let output = minos()
        .arg("selftest")
        .args(["--json", "--jobs", "2", "--out"])
        .arg(out)
        .args(args)
        .output()
        .unwrap();
    let text = String::from_utf8(output.stdout).unwrap();
    let report: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|error| {
        panic!(
            "not JSON ({error}):\n{text}\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output.status.code().unwrap(), report)
}

#[test]
fn read_and_liveness_bugs_are_caught_and_the_correct_build_is_clean() {
    let out = temp_dir("caught");
    let (code, report) = selftest_json(
        &out,
        &[
            "--seeds",
            "4",
            "--bug",
            "stale-local-read",
            "--bug",
            "no-prevote-checkquorum",
        ],
    );
    let bugs = report["bugs"].as_array().unwrap();
    assert_eq!(bugs.len(), 2, "{report:#}");
    for bug in bugs {
        assert_eq!(bug["status"], "caught", "{bug:#}");
        let seeds = bug["seeds_to_detection"].as_u64().unwrap();
        assert!((1..=4).contains(&seeds), "{bug:#}");
        let detection = &bug["detection"];
        assert_eq!(detection["verdict"], "invalid");
        let run_dir = PathBuf::from(detection["run_dir"].as_str().unwrap());
        assert!(run_dir.join("history.jsonl").is_file(), "{run_dir:?}");
        assert!(run_dir.starts_with(&out));
        let replay = detection["reproduce"].as_str().unwrap();
        assert!(
            !replay.contains("--no-report"),
            "a replay shows the report: {replay}"
        );
    }
    assert!(bugs[0]["detection"]["anomaly"]
        .as_str()
        .unwrap()
        .contains("not linearizable"));
    assert!(bugs[1]["detection"]["anomaly"]
        .as_str()
        .unwrap()
        .contains("no progress"));
    let correct = &report["correct"];
    assert_eq!(correct["runs"], 4, "{correct:#}");
    assert_eq!(correct["valid"], 4, "{correct:#}");
    assert_eq!(report["ok"], true);
    assert_eq!(code, 0);
}

#[test]
fn membership_without_the_new_leader_rule_splits_the_cluster_through_the_harness() {
    let out = temp_dir("membership");
    let (code, report) = selftest_json(
        &out,
        &[
            "--seeds",
            "3",
            "--no-correct",
            "--bug",
            "membership-no-rule",
        ],
    );
    let bug = &report["bugs"][0];
    assert_eq!(bug["status"], "caught", "{bug:#}");
    let detection = &bug["detection"];
    assert_eq!(detection["verdict"], "invalid");
    // Both halves committed under their own configuration: the checker sees the divergence
    // and so do the invariants.
    let anomaly = detection["anomaly"].as_str().unwrap();
    assert!(anomaly.contains("not linearizable"), "{anomaly}");
    let run_dir = PathBuf::from(detection["run_dir"].as_str().unwrap());
    let history = std::fs::read_to_string(run_dir.join("history.jsonl")).unwrap();
    assert!(
        history.contains("\"f\":\"start-membership\""),
        "no membership fault recorded"
    );
    assert!(report["correct"].is_null());
    assert_eq!(code, 0);
}

#[test]
fn generic_scoring_runs_a_bug_without_a_bespoke_schedule() {
    let out = temp_dir("generic");
    let (code, report) = selftest_json(
        &out,
        &[
            "--generic",
            "--bug",
            "ack-last-index",
            "--seeds",
            "1",
            "--no-correct",
        ],
    );
    assert_eq!(report["bugs"].as_array().unwrap().len(), 0, "{report:#}");
    let generic = report["generic"].as_array().expect("a generic score");
    assert_eq!(generic.len(), 1);
    assert_eq!(generic[0]["bug"], "ack-last-index");
    assert_eq!(generic[0]["seeds_run"], 1);
    assert!(generic[0]["faults"]
        .as_str()
        .unwrap()
        .contains("every nemesis"));
    // A generic miss is the score, not a failure.
    assert_eq!(code, 0);
}

#[test]
fn help_names_every_planted_bug() {
    let output = minos().args(["selftest", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    for bug in minos_node::bugs::Bug::ALL {
        assert!(
            help.contains(bug.name()),
            "{} missing from:\n{help}",
            bug.name()
        );
    }
}

#[test]
fn bad_arguments_exit_254() {
    let out = temp_dir("bad");
    for args in [
        vec!["--bug", "no-such-bug"],
        vec!["--bug", "no-dedup", "--except", "no-dedup"],
        vec!["--seeds", "0"],
        // Bugs planted for issue 12 have no bespoke schedule: only --generic scores them.
        vec!["--bug", "ack-last-index"],
        vec!["--jobs", "0"],
    ] {
        let status = minos()
            .arg("selftest")
            .arg("--out")
            .arg(&out)
            .args(&args)
            .status()
            .unwrap();
        assert_eq!(status.code(), Some(254), "{args:?}");
    }
}

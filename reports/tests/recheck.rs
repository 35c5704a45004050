//! `minos report` re-runs the checker on stored histories and folds the verdict back into
//! results.json, keeping its field order; runs it cannot re-check keep their verdict and say so.

mod common;

use common::{fixture, read};
use minos_reports::fixtures::FixtureOptions;
use minos_reports::recheck::{recheck, Recheck};
use minos_reports::results::Verdict;
use minos_reports::{rebuild, RebuildOptions};

fn small(seed: u64, invalid: bool) -> FixtureOptions {
    FixtureOptions {
        seed,
        invalid,
        ops_count: 300,
        duration_s: 30,
        ..Default::default()
    }
}

fn top_level_keys(text: &str) -> Vec<String> {
    let v: minos_reports::ordered_json::OrderedJson = serde_json::from_str(text).unwrap();
    match v {
        minos_reports::ordered_json::OrderedJson::Object(entries) => {
            entries.into_iter().map(|(k, _)| k).collect()
        }
        _ => panic!("not an object"),
    }
}

#[test]
fn a_fixed_checker_clears_a_stored_false_alarm() {
    // A linearizable history whose stored verdict says invalid, as an old buggy checker might.
    let dir = fixture("recheck-false-alarm", small(21, false));
    let path = dir.join("results.json");
    let text = read(&dir, "results.json");
    let keys_before = top_level_keys(&text);
    let mut results: serde_json::Value = serde_json::from_str(&text).unwrap();
    results["verdict"] = serde_json::json!("invalid");
    results["causes"] = serde_json::json!(["linearizability"]);
    results["checker"]["verdict"] = serde_json::json!("invalid");
    // Keep the file's field order while planting the wrong verdict.
    let mut ordered: minos_reports::ordered_json::OrderedJson =
        serde_json::from_str(&text).unwrap();
    for field in ["verdict", "causes", "checker"] {
        ordered.set(
            field,
            minos_reports::ordered_json::OrderedJson::from_value(&results[field]),
        );
    }
    std::fs::write(&path, serde_json::to_string_pretty(&ordered).unwrap()).unwrap();

    let outcome = recheck(&dir).unwrap();
    assert_eq!(
        outcome,
        Recheck::Rechecked {
            before: Some(Verdict::Invalid),
            after: Verdict::Valid
        }
    );
    let after = read(&dir, "results.json");
    assert_eq!(top_level_keys(&after), keys_before, "field order kept");
    let results: serde_json::Value = serde_json::from_str(&after).unwrap();
    assert_eq!(results["verdict"], "valid");
    assert_eq!(results["causes"], serde_json::json!([]));
    assert_eq!(results["checker"]["verdict"], "valid");
    assert_eq!(results["seed"], 21, "other fields untouched");
}

#[test]
fn rebuild_rechecks_and_the_page_says_so() {
    let dir = fixture("recheck-invalid", small(22, true));
    let rebuilt = rebuild(&dir, &RebuildOptions::default()).unwrap();
    assert_eq!(rebuilt.runs.len(), 1);
    assert!(
        matches!(
            rebuilt.runs[0].recheck,
            Some(Recheck::Rechecked {
                after: Verdict::Invalid,
                ..
            })
        ),
        "{:?}",
        rebuilt.runs[0].recheck
    );
    let results: serde_json::Value = serde_json::from_str(&read(&dir, "results.json")).unwrap();
    assert_eq!(results["checker"]["verdict"], "invalid");
    assert!(
        results["checker"]["counterexample"]["stuck"].is_array(),
        "the real checker's counterexample is stored"
    );
    let index = read(&dir, "index.html");
    assert!(index.contains("Re-checked from the stored history: still invalid."));
    assert!(index.contains("id=\"counterexample\""));
}

/// Issue 16 item 4: a history the checker refuses makes the run unknown; no stored verdict
/// stands on input that was not read.
#[test]
fn a_refused_or_unreadable_history_makes_the_run_unknown() {
    let dir = fixture(
        "recheck-hostile",
        FixtureOptions {
            hostile: true,
            ..small(23, false)
        },
    );
    match recheck(&dir).unwrap() {
        Recheck::Refused(why) => assert!(why.contains("checker"), "{why}"),
        other => panic!("{other:?}"),
    }
    let results: serde_json::Value = serde_json::from_str(&read(&dir, "results.json")).unwrap();
    assert_eq!(results["verdict"], "unknown");
    assert_eq!(results["checker"]["verdict"], "unknown");

    // Bytes that are not UTF-8: unreadable, the same outcome, and the page says so.
    let dir = fixture("recheck-unreadable", small(26, false));
    std::fs::write(dir.join("history.jsonl"), b"{\"index\":0,\xff\xfe}\n").unwrap();
    let rebuilt = rebuild(&dir, &RebuildOptions::default()).unwrap();
    assert!(
        matches!(&rebuilt.runs[0].recheck, Some(Recheck::Refused(why)) if why.contains("UTF-8")),
        "{:?}",
        rebuilt.runs[0].recheck
    );
    assert_eq!(rebuilt.verdict(), Verdict::Unknown);
    let index = read(&dir, "index.html");
    assert!(index.contains("cannot be checked"), "the page says why");
    assert!(!index.contains(">VALID<"), "no green verdict");
}

/// Issue 16 item 4: after a history is replaced, every file describes the one that was
/// checked: results.json's hash and op count, history.csv and the pages.
#[test]
fn a_replaced_history_is_described_by_every_file() {
    let dir = fixture("recheck-replaced", small(27, false));
    rebuild(&dir, &RebuildOptions::default()).unwrap();
    let old_csv = read(&dir, "history.csv");
    // Keep only the first 40 records of the history: a different, shorter history.
    let replaced: String = read(&dir, "history.jsonl")
        .lines()
        .take(40)
        .map(|line| format!("{line}\n"))
        .collect();
    std::fs::write(dir.join("history.jsonl"), &replaced).unwrap();
    let rebuilt = rebuild(&dir, &RebuildOptions::default()).unwrap();
    let results: serde_json::Value = serde_json::from_str(&read(&dir, "results.json")).unwrap();
    let checked = minos_checker::history::parse_jsonl(&replaced, "h").unwrap();
    assert_eq!(
        results["history"]["ops_count"],
        checked.ops.len(),
        "op count of the checked history"
    );
    use sha2::Digest;
    let sha: String = sha2::Sha256::digest(replaced.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    assert_eq!(results["history"]["sha256"], sha.as_str());
    assert!(
        results["history"]["sha256_at_run"].is_string(),
        "the run's own hash is kept"
    );
    let csv = read(&dir, "history.csv");
    assert_ne!(csv, old_csv);
    assert_eq!(csv.lines().count(), 41, "header + the 40 records checked");
    assert_eq!(
        rebuilt.changed_histories.len(),
        1,
        "the change is still flagged"
    );
    assert_eq!(
        rebuilt.runs[0].result.as_ref().unwrap().ops_count,
        checked.ops.len()
    );
}

#[test]
fn runs_that_cannot_be_rechecked_keep_their_verdict() {
    let dir = fixture("recheck-mixed", small(24, false));
    let mut results: serde_json::Value = serde_json::from_str(&read(&dir, "results.json")).unwrap();
    results["options"]["workload"] = serde_json::json!("mixed");
    std::fs::write(dir.join("results.json"), results.to_string()).unwrap();
    assert!(matches!(recheck(&dir).unwrap(), Recheck::Kept(why) if why.contains("mixed")));
}

#[test]
fn a_recheck_out_of_budget_keeps_the_stored_verdict() {
    let dir = fixture("recheck-budget", small(25, true));
    // A zero time limit: the checker gives up with "unknown".
    let mut results: serde_json::Value = serde_json::from_str(&read(&dir, "results.json")).unwrap();
    results["options"]["check_time_limit_ms"] = serde_json::json!(0);
    std::fs::write(dir.join("results.json"), results.to_string()).unwrap();
    let before = read(&dir, "results.json");
    match recheck(&dir).unwrap() {
        Recheck::Kept(why) => {
            eprintln!("kept: {why}");
            assert!(why.contains("invalid verdict stands"), "{why}")
        }
        // A checker fast enough to finish within 0 ms may still decide; then it must agree.
        Recheck::Rechecked { after, .. } => assert_eq!(after, Verdict::Invalid),
        other => panic!("{other:?}"),
    }
    if read(&dir, "results.json") != before {
        let after: serde_json::Value = serde_json::from_str(&read(&dir, "results.json")).unwrap();
        assert_eq!(after["verdict"], "invalid");
    }
}

#[test]
fn an_edited_history_is_flagged_and_pruned_runs_are_left_alone() {
    let dir = fixture("recheck-edited", small(23, false));
    let rebuilt = rebuild(&dir, &RebuildOptions::default()).unwrap();
    assert!(rebuilt.changed_histories.is_empty(), "an untouched history");
    let mut history = read(&dir, "history.jsonl");
    history.push('\n');
    std::fs::write(dir.join("history.jsonl"), history).unwrap();
    let rebuilt = rebuild(&dir, &RebuildOptions::default()).unwrap();
    assert_eq!(rebuilt.changed_histories.len(), 1);
    assert!(read(&dir, "index.html").contains("history.jsonl was changed after the run"));

    // What `--keep failures` leaves of a valid run: results.json without the history.
    let pruned = fixture("recheck-pruned", small(24, false));
    std::fs::remove_file(pruned.join("history.jsonl")).unwrap();
    std::fs::remove_file(pruned.join("index.html")).ok();
    let rebuilt = rebuild(&pruned, &RebuildOptions::default()).unwrap();
    assert_eq!(rebuilt.pruned, [pruned.clone()]);
    assert!(rebuilt.runs.is_empty());
    assert!(
        !pruned.join("index.html").exists(),
        "no empty report written"
    );
}

//! `minos check FILE --html OUT` (issue 14 item 6): a page for any history the checker reads,
//! the failing ops marked when invalid, none when valid; the exit codes are those of the
//! check; a path that cannot be written is refused before checking (exit 254).

mod common;

use std::path::{Path, PathBuf};

use common::{minos, scratch_dir};
use serde_json::Value;

/// `$MINOS_CORPUS`, or `../shared/corpus` beside the repository.
fn corpus_dir() -> PathBuf {
    match std::env::var_os("MINOS_CORPUS") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus"),
    }
}

/// A Knossos register history with a stale read: process 1 reads 1 after the write of 2 ended.
const STALE_EDN: &str = "[{:process 0, :type :invoke, :f :write, :value 1}
 {:process 0, :type :ok, :f :write, :value 1}
 {:process 0, :type :invoke, :f :write, :value 2}
 {:process 0, :type :ok, :f :write, :value 2}
 {:process 1, :type :invoke, :f :read, :value nil}
 {:process 1, :type :ok, :f :read, :value 1}]";

/// The ids the page marks as failing (`data-index` of the failing-op list).
fn marked_failing(page: &str) -> Vec<u64> {
    page.split("class=\"bad failing-op\" data-index=\"")
        .skip(1)
        .map(|rest| rest[..rest.find('"').unwrap()].parse().unwrap())
        .collect()
}

/// The timeline's per-op marks (0 none, 1 linearized, 2 failing) from the embedded data.
fn timeline_marks(page: &str) -> Vec<u64> {
    let start = page
        .find("<script id=\"data\" type=\"application/json\">")
        .unwrap();
    let json = &page[start..];
    let json = &json[json.find('>').unwrap() + 1..json.find("</script>").unwrap()];
    let data: Value = serde_json::from_str(json).unwrap();
    data["mark"]
        .as_array()
        .unwrap()
        .iter()
        .map(|mark| mark.as_u64().unwrap())
        .collect()
}

/// The failing op ids the checker reports: its smallest failing set, the ops that cannot come
/// next and the op that cannot complete.
fn reported_failing(history: &Path, extra: &[&str]) -> Vec<u64> {
    let mut args = vec!["check", history.to_str().unwrap(), "--json"];
    args.extend_from_slice(extra);
    let output = minos(&args);
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    let c = &report["counterexample"];
    let mut ids: Vec<u64> = c["core"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(c["stuck"].as_array().unwrap().iter().map(|s| &s["op"]))
        .chain(std::iter::once(&c["blocked"]).filter(|b| !b.is_null()))
        .map(|op| op["index"].as_u64().unwrap())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

fn check_html(history: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "check",
        history.to_str().unwrap(),
        "--html",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    minos(&args)
}

#[test]
fn an_invalid_history_gets_a_page_with_its_failing_ops_marked() {
    let dir = scratch_dir("check-html-stale");
    let history = dir.join("stale.edn");
    std::fs::write(&history, STALE_EDN).unwrap();
    let out = dir.join("stale.html");
    let output = check_html(&history, &out, &["--model", "register"]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let page = std::fs::read_to_string(&out).unwrap();
    let expected = reported_failing(&history, &["--model", "register"]);
    assert!(
        expected.contains(&4),
        "the stale read (#4) fails: {expected:?}"
    );
    assert_eq!(marked_failing(&page), expected);
    assert!(timeline_marks(&page).contains(&2));
    assert!(page.contains("jump to first error"));
    // The printed explanation is the same as without --html (the verdict line differs only
    // in its milliseconds).
    let plain = minos(&["check", history.to_str().unwrap(), "--model", "register"]);
    let after_first_line = |bytes: &[u8]| {
        let text = String::from_utf8_lossy(bytes).to_string();
        text[text.find('\n').unwrap()..].to_string()
    };
    assert_eq!(
        after_first_line(&output.stdout),
        after_first_line(&plain.stdout)
    );
}

#[test]
fn an_invalid_corpus_history_gets_its_failing_ops_marked() {
    let corpus = corpus_dir();
    let history = corpus.join("porcupine/test_data/jepsen/etcd_000.log");
    if !history.is_file() {
        eprintln!(
            "SKIPPED: corpus not found at {} (set MINOS_CORPUS)",
            corpus.display()
        );
        return;
    }
    let dir = scratch_dir("check-html-etcd");
    let out = dir.join("etcd_000.html");
    let args = ["--model", "cas-register", "--init", "null"];
    let output = check_html(&history, &out, &args);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let page = std::fs::read_to_string(&out).unwrap();
    let expected = reported_failing(&history, &args);
    assert!(!expected.is_empty());
    assert_eq!(marked_failing(&page), expected);
    let marks = timeline_marks(&page);
    assert_eq!(marks.len(), 85, "every op is drawn");
    assert!(marks.contains(&1) && marks.contains(&2));

    // A keyed Porcupine kv history: one row per key, the failing key selectable.
    let kv = corpus.join("porcupine/test_data/kv/c10-bad.txt");
    let out = dir.join("c10-bad.html");
    let output = check_html(&kv, &out, &[]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let page = std::fs::read_to_string(&out).unwrap();
    assert!(!marked_failing(&page).is_empty());
    assert!(page.contains("<section id=\"keys\">"));
    assert!(page.contains("href=\"#key=0\""));
}

#[test]
fn a_valid_history_gets_a_page_with_every_op_linearized_and_none_failing() {
    let dir = scratch_dir("check-html-valid");
    let history = dir.join("valid.edn");
    std::fs::write(&history, STALE_EDN.replace(":value 1}]", ":value 2}]")).unwrap();
    let out = dir.join("valid.html");
    let output = check_html(&history, &out, &["--model", "register"]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let page = std::fs::read_to_string(&out).unwrap();
    assert!(marked_failing(&page).is_empty());
    assert!(!page.contains("failing-op"));
    assert_eq!(timeline_marks(&page), [1, 1, 1], "all three ops linearized");
    assert!(page.contains("Ops linearized: 3."));
    assert!(!page.contains("jump to first error"));
}

#[test]
fn an_unwritable_path_is_refused_before_checking() {
    let dir = scratch_dir("check-html-bad");
    let history = dir.join("stale.edn");
    std::fs::write(&history, STALE_EDN).unwrap();
    let missing = dir.join("no-such-dir").join("out.html");
    let output = check_html(&history, &missing, &["--model", "register"]);
    assert_eq!(output.status.code(), Some(254));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("does not exist"), "{stderr}");
    assert!(
        output.stdout.is_empty(),
        "no verdict: refused before checking"
    );

    let output = check_html(&history, &dir, &["--model", "register"]);
    assert_eq!(output.status.code(), Some(254));
    assert!(String::from_utf8_lossy(&output.stderr).contains("is a directory"));

    let out = dir.join("two.html");
    let h = history.to_str().unwrap();
    let output = minos(&["check", h, h, "--html", out.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(254));
    assert!(String::from_utf8_lossy(&output.stderr).contains("one history"));
    assert!(!out.exists());

    // Malformed input: 254 as without --html, and no page.
    let broken = dir.join("broken.edn");
    std::fs::write(&broken, "[{:process 0, :type :invoke").unwrap();
    let out = dir.join("broken.html");
    let output = check_html(&broken, &out, &[]);
    assert_eq!(output.status.code(), Some(254));
    assert!(!out.exists());
}

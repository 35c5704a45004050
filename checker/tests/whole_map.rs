//! `--no-partition` checks a keyed history as one object whose state is the whole map. A key
//! that cannot be completed must not be re-explored under every configuration of the other
//! keys: the search learns which key failed and backjumps over the others' ops.

use minos_checker::history::parse_jsonl;
use minos_checker::{check, CheckOptions, Verdict};
use serde_json::json;

/// Key "a": three concurrent writes, then reads of 1, 2 and 1 again in sequence (impossible).
/// Key "b": `writers` concurrent writes, overlapping key a's writes, unconstrained.
fn history(writers: u64) -> String {
    let mut lines = Vec::new();
    let mut push = |process: u64, kind: &str, f: &str, key: &str, value: serde_json::Value| {
        let index = lines.len();
        lines.push(
            json!({"index": index, "time": index, "process": process, "type": kind, "f": f,
                   "key": key, "value": value})
            .to_string(),
        );
    };
    for (process, value) in [(0, 1), (1, 2), (2, 3)] {
        push(process, "invoke", "write", "a", json!(value));
    }
    for writer in 0..writers {
        push(10 + writer, "invoke", "write", "b", json!(writer + 1));
    }
    for (process, value) in [(0, 1), (1, 2), (2, 3)] {
        push(process, "ok", "write", "a", json!(value));
    }
    for writer in 0..writers {
        push(10 + writer, "ok", "write", "b", json!(writer + 1));
    }
    for value in [1, 2, 1] {
        push(3, "invoke", "read", "a", json!(null));
        push(3, "ok", "read", "a", json!(value));
    }
    lines.join("\n") + "\n"
}

#[test]
fn a_failing_key_is_not_re_explored_under_each_state_of_another() {
    for writers in [4, 8] {
        let text = history(writers);
        let history = parse_jsonl(&text, "whole-map").unwrap();
        let mut options = CheckOptions::new("register");
        options.threads = 1;
        let partitioned = check(&history, &options).unwrap();
        assert_eq!(partitioned.verdict, Verdict::Invalid);
        options.partition = false;
        let whole = check(&history, &options).unwrap();
        assert_eq!(whole.verdict, Verdict::Invalid);
        let whole_states = whole.partitions[0].states_explored;
        let partitioned_states: u64 = partitioned
            .partitions
            .iter()
            .map(|partition| partition.states_explored)
            .sum();
        eprintln!(
            "{writers} writers: whole {whole_states} states, partitioned {partitioned_states}"
        );
        // Without learning, key b's 2^writers * writers configurations are explored again for
        // every configuration of key a.
        assert!(
            whole_states <= 4 * partitioned_states + 64,
            "{writers} writers: whole map {whole_states} states, per key {partitioned_states}"
        );
    }
}

#[path = "support/corpus.rs"]
#[allow(dead_code)]
mod corpus;

/// Porcupine's kv histories c01 and c10 checked as one map get their verdicts, and the c10
/// ones without re-exploring one key's dead ends under every state of the other keys (before
/// the search learned failed keys: 91,725 configurations for c10-ok, 241,670 for c10-bad).
#[test]
fn porcupine_kv_histories_checked_as_one_map() {
    let Some(cases) = corpus::cases() else {
        eprintln!(
            "\n*** SKIPPED: corpus not found at {} (set MINOS_CORPUS) ***\n",
            corpus::corpus_dir().display()
        );
        return;
    };
    let kv: Vec<&corpus::Case> = cases
        .iter()
        .filter(|case| case.file.contains("/kv/c01") || case.file.contains("/kv/c10"))
        .collect();
    assert_eq!(kv.len(), 4);
    for case in kv {
        let history = corpus::read(case);
        let mut options = case.options.clone();
        options.partition = false;
        options.threads = 1;
        let report = check(&history, &options).unwrap();
        assert_eq!(report.verdict.as_str(), case.expected, "{}", case.file);
        assert_eq!(report.partitions.len(), 1);
        let states = report.partitions[0].states_explored;
        eprintln!("{} --no-partition: {states} states", case.file);
        assert!(states < 20_000, "{}: {states} states", case.file);
    }
}

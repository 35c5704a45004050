//! `jepsen.independent` EDN histories (values `[key value]`) are split by key and each key is
//! checked on its own; other histories are read as before.

#[path = "support/corpus.rs"]
#[allow(dead_code)]
mod corpus;

use minos_checker::history::{parse_text, parse_text_with, Format, Independent, Outcome, Output};
use minos_checker::{check, CheckOptions, Verdict};
use serde_json::json;

/// Two registers, keys 1 and 2. Read as one register the read of `[1 1]` after the write of
/// `[2 2]` would be stale; per key it is fine. The read of key 2 at the end saw nothing.
const TWO_KEYS: &str = "[{:process 0, :type :invoke, :f :write, :value [1 1]}
 {:process 0, :type :ok, :f :write, :value [1 1]}
 {:process 1, :type :invoke, :f :write, :value [2 2]}
 {:process 1, :type :ok, :f :write, :value [2 2]}
 {:process 0, :type :invoke, :f :read, :value [1 nil]}
 {:process 0, :type :ok, :f :read, :value [1 1]}
 {:process :nemesis, :type :info, :f :start, :value nil}
 {:process 1, :type :invoke, :f :read, :value [2 nil]}
 {:process 1, :type :ok, :f :read, :value [2 nil]}]";

fn register_options() -> CheckOptions {
    let mut options = CheckOptions::new("register");
    options.init = Some(json!(0));
    options.threads = 1;
    options
}

#[test]
fn tuple_values_are_split_by_key_and_checked_per_key() {
    let history = parse_text(TWO_KEYS, "independent.edn", Format::Auto).unwrap();
    assert!(history.independent);
    let keys: Vec<Option<&str>> = history.ops.iter().map(|op| op.key.as_deref()).collect();
    assert_eq!(keys, [Some("1"), Some("2"), Some("1"), Some("2")]);
    assert_eq!(history.ops[2].invoke_value, json!(null));
    assert_eq!(history.ops[2].outcome, Outcome::Ok(Output::Known(json!(1))));
    // Knossos: a read of nil observed nothing, also inside a pair.
    assert_eq!(history.ops[3].outcome, Outcome::Ok(Output::Unknown));
    let report = check(&history, &register_options()).unwrap();
    assert_eq!(
        report.verdict,
        Verdict::Valid,
        "{}",
        report.explanation_text()
    );
    let partition_keys: Vec<Option<&str>> = report
        .partitions
        .iter()
        .map(|partition| partition.key.as_deref())
        .collect();
    assert_eq!(partition_keys, [Some("1"), Some("2")]);
}

#[test]
fn without_splitting_the_same_history_is_one_stale_register() {
    let history =
        parse_text_with(TWO_KEYS, "independent.edn", Format::Auto, Independent::No).unwrap();
    assert!(!history.independent);
    assert!(history.ops.iter().all(|op| op.key.is_none()));
    let report = check(&history, &register_options()).unwrap();
    assert_eq!(report.verdict, Verdict::Invalid);
}

#[test]
fn an_invalid_key_is_named_in_the_explanation() {
    // Key "x" is fine; key "y" reads a value never written.
    let edn = "{:process 0, :type :invoke, :f :write, :value [:x 3]}
{:process 0, :type :ok, :f :write, :value [:x 3]}
{:process 1, :type :invoke, :f :read, :value [:y nil]}
{:process 1, :type :ok, :f :read, :value [:y 3]}
{:process 0, :type :invoke, :f :read, :value [:x nil]}
{:process 0, :type :ok, :f :read, :value [:x 3]}";
    let history = parse_text(edn, "keys.edn", Format::Auto).unwrap();
    assert!(history.independent);
    let report = check(&history, &register_options()).unwrap();
    assert_eq!(report.verdict, Verdict::Invalid);
    let counterexample = report.counterexample.as_ref().unwrap();
    assert_eq!(counterexample.key.as_deref(), Some("y"));
    assert!(
        counterexample
            .text
            .starts_with("Not linearizable (key \"y\""),
        "{}",
        counterexample.text
    );
    assert!(
        counterexample.text.contains("read \"y\""),
        "{}",
        counterexample.text
    );
    let verdicts: Vec<(Option<&str>, Verdict)> = report
        .partitions
        .iter()
        .map(|partition| (partition.key.as_deref(), partition.verdict))
        .collect();
    assert_eq!(
        verdicts,
        [(Some("x"), Verdict::Valid), (Some("y"), Verdict::Invalid)]
    );
}

#[test]
fn independent_cas_counter_and_info_ops_split_alike() {
    // A cas-register per key: cas values are [key [old new]]; an info write stays in doubt.
    let edn = "[{:process 0, :type :invoke, :f :cas, :value [5 [0 1]]}
 {:process 0, :type :ok, :f :cas, :value [5 [0 1]]}
 {:process 1, :type :invoke, :f :write, :value [6 4]}
 {:process 1, :type :info, :f :write, :value [6 4]}
 {:process 2, :type :invoke, :f :read, :value [6 nil]}
 {:process 2, :type :ok, :f :read, :value [6 4]}
 {:process 0, :type :invoke, :f :read, :value [5 nil]}
 {:process 0, :type :ok, :f :read, :value [5 1]}]";
    let history = parse_text(edn, "cas.edn", Format::Auto).unwrap();
    assert!(history.independent);
    assert_eq!(history.ops[0].invoke_value, json!([0, 1]));
    assert_eq!(history.ops[1].outcome, Outcome::Info);
    let mut options = CheckOptions::new("cas-register");
    options.init = Some(json!(0));
    let report = check(&history, &options).unwrap();
    assert_eq!(
        report.verdict,
        Verdict::Valid,
        "{}",
        report.explanation_text()
    );
    assert_eq!(report.partitions.len(), 2);
    // Per-key initial values apply to the split keys.
    options.init = Some(json!({"5": 1, "6": 0}));
    let report = check(&history, &options).unwrap();
    assert_eq!(report.verdict, Verdict::Invalid);
    assert_eq!(
        report.counterexample.as_ref().unwrap().key.as_deref(),
        Some("5")
    );
}

#[test]
fn plain_histories_whose_values_look_like_pairs_are_not_split() {
    // Only cas ops: [old new] pairs, but no [key nil] invoke, so not independent.
    let cas_only = "[{:process 0, :type :invoke, :f :cas, :value [0 1]}
 {:process 0, :type :ok, :f :cas, :value [0 1]}
 {:process 1, :type :invoke, :f :cas, :value [1 2]}
 {:process 1, :type :ok, :f :cas, :value [1 2]}]";
    let history = parse_text(cas_only, "cas.edn", Format::Auto).unwrap();
    assert!(!history.independent);
    assert!(history.ops.iter().all(|op| op.key.is_none()));
    let mut options = CheckOptions::new("cas-register");
    options.init = Some(json!(0));
    assert_eq!(check(&history, &options).unwrap().verdict, Verdict::Valid);
    // Multi-register transactions of two micro-ops: the first item is no key.
    let txn = "[{:process 0, :type :invoke, :f :txn, :value [[:read :x nil] [:read :y nil]]}
 {:process 0, :type :ok, :f :txn, :value [[:read :x 0] [:read :y 0]]}]";
    assert!(
        !parse_text(txn, "txn.edn", Format::Auto)
            .unwrap()
            .independent
    );
    // A read with a plain nil argument: not every value is a pair.
    let mixed = "[{:process 0, :type :invoke, :f :write, :value [1 2]}
 {:process 0, :type :ok, :f :write, :value [1 2]}
 {:process 1, :type :invoke, :f :read, :value nil}
 {:process 1, :type :ok, :f :read, :value [1 2]}]";
    let history = parse_text(mixed, "mixed.edn", Format::Auto).unwrap();
    assert!(!history.independent);
    assert_eq!(history.ops[1].invoke_value, json!(null));
    // Our jsonl carries its own keys: never split.
    let jsonl = "{\"index\":0,\"time\":0,\"process\":0,\"type\":\"invoke\",\"f\":\"read\",\"value\":[1,null]}\n";
    assert!(
        !parse_text(jsonl, "h.jsonl", Format::Auto)
            .unwrap()
            .independent
    );
}

#[test]
fn forced_split_rejects_values_that_are_not_pairs() {
    let edn = "[{:process 0, :type :invoke, :f :write, :value [1 1]}
 {:process 0, :type :ok, :f :write, :value [1 1]}
 {:process 1, :type :invoke, :f :write, :value 7}]";
    let error = parse_text_with(edn, "forced.edn", Format::Auto, Independent::Yes).unwrap_err();
    assert_eq!(error.line, 3, "{error}");
    assert!(
        error.to_string().contains("not a [key value] pair"),
        "{error}"
    );
    // Forced, a history without any [key nil] invoke is split too.
    let writes = "[{:process 0, :type :invoke, :f :write, :value [1 1]}
 {:process 0, :type :ok, :f :write, :value [1 1]}]";
    let history = parse_text_with(writes, "w.edn", Format::Auto, Independent::Yes).unwrap();
    assert!(history.independent);
    assert_eq!(history.ops[0].key.as_deref(), Some("1"));
    let jsonl = "{\"index\":0,\"time\":0,\"process\":0,\"type\":\"invoke\",\"f\":\"read\",\"value\":[1,null]}\n";
    let error = parse_text_with(jsonl, "h.jsonl", Format::Auto, Independent::Yes).unwrap_err();
    assert!(error.to_string().contains("EDN"), "{error}");
}

#[test]
fn a_completion_under_another_key_is_not_independent() {
    let edn = "[{:process 0, :type :invoke, :f :read, :value [1 nil]}
 {:process 0, :type :ok, :f :read, :value [2 5]}]";
    assert!(!parse_text(edn, "k.edn", Format::Auto).unwrap().independent);
    let error = parse_text_with(edn, "k.edn", Format::Auto, Independent::Yes).unwrap_err();
    assert!(
        error.to_string().contains("does not match its invoke key"),
        "{error}"
    );
}

/// No history of the shared corpus is a jepsen.independent one, so none changes shape.
#[test]
fn corpus_histories_are_not_independent() {
    let Some(cases) = corpus::cases() else {
        eprintln!(
            "\n*** SKIPPED: corpus not found at {} (set MINOS_CORPUS) ***\n",
            corpus::corpus_dir().display()
        );
        return;
    };
    for case in &cases {
        assert!(!corpus::read(case).independent, "{}", case.file);
    }
}

#[test]
fn failed_and_crashed_completions_may_drop_the_pair() {
    // A client that crashed writes an error instead of [key value]; the op keeps its key.
    let edn = "[{:process 0, :type :invoke, :f :write, :value [1 1]}
 {:process 0, :type :ok, :f :write, :value [1 1]}
 {:process 1, :type :invoke, :f :write, :value [2 9]}
 {:process 1, :type :info, :f :write, :value nil, :error :timeout}
 {:process 2, :type :invoke, :f :cas, :value [1 [5 6]]}
 {:process 2, :type :fail, :f :cas, :value :mismatch}
 {:process 3, :type :invoke, :f :read, :value [2 nil]}
 {:process 3, :type :ok, :f :read, :value [2 9]}
 {:process 3, :type :invoke, :f :read, :value [1 nil]}
 {:process 3, :type :ok, :f :read, :value [1 1]}]";
    for mode in [Independent::Auto, Independent::Yes] {
        let history = parse_text_with(edn, "crash.edn", Format::Auto, mode).unwrap();
        assert!(history.independent);
        let keys: Vec<Option<&str>> = history.ops.iter().map(|op| op.key.as_deref()).collect();
        assert_eq!(
            keys,
            [Some("1"), Some("2"), Some("1"), Some("2"), Some("1")]
        );
        assert_eq!(history.ops[1].outcome, Outcome::Info);
        assert_eq!(history.ops[1].invoke_value, json!(9));
        let mut options = CheckOptions::new("cas-register");
        options.init = Some(json!(0));
        let report = check(&history, &options).unwrap();
        // Key 2 reads 9: the crashed write of 9 took effect.
        assert_eq!(
            report.verdict,
            Verdict::Valid,
            "{}",
            report.explanation_text()
        );
    }
    // An ok completion must still carry its pair.
    let ok_without_pair = "[{:process 0, :type :invoke, :f :read, :value [1 nil]}
 {:process 0, :type :ok, :f :read, :value 3}]";
    let history = parse_text(ok_without_pair, "ok.edn", Format::Auto).unwrap();
    assert!(!history.independent);
    let error =
        parse_text_with(ok_without_pair, "ok.edn", Format::Auto, Independent::Yes).unwrap_err();
    assert_eq!(error.line, 2, "{error}");
}

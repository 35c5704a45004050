//! Malformed input is reported with file, line and problem (never a panic); budgets end in
//! `unknown` with what was decided so far.

use std::time::Duration;

use minos_checker::history::{parse_jsonl, parse_text, Format, HistoryRecord, Process, RecordType};
use minos_checker::{check, CheckError, CheckOptions, Verdict};
use serde_json::{json, Value};

fn line(index: u64, process: u64, kind: &str, f: &str, key: Option<&str>, value: Value) -> String {
    let mut record = json!({"index": index, "time": index, "process": process, "type": kind, "f": f, "value": value});
    if let Some(key) = key {
        record["key"] = json!(key);
    }
    record.to_string() + "\n"
}

#[test]
fn malformed_jsonl_names_line_and_problem() {
    let good = line(0, 1, "invoke", "read", None, Value::Null);
    let cases = [
        (format!("{good}{{not json\n"), 2, "bad history record"),
        (
            format!("{good}{}", line(1, 1, "okay", "read", None, json!(1))),
            2,
            "unknown variant `okay`",
        ),
        (
            line(0, 1, "ok", "read", None, json!(1)),
            1,
            "unmatched completion",
        ),
        (
            format!("{good}{}", line(1, 1, "invoke", "read", None, Value::Null)),
            2,
            "has not completed",
        ),
        (format!("{good}{good}"), 2, "index 0 does not increase"),
        (
            format!(
                "{}{}",
                line(5, 1, "invoke", "read", None, Value::Null),
                line(6, 1, "ok", "read", None, json!(1)).replace("\"time\":6", "\"time\":2")
            ),
            2,
            "real-time order",
        ),
        (
            format!("{good}{}", line(1, 1, "ok", "write", None, json!(1))),
            2,
            "does not match its invoke f",
        ),
        (
            good.replace("\"process\":1", "\"process\":-4"),
            1,
            "process",
        ),
    ];
    for (text, expected_line, expected_problem) in cases {
        let error = parse_jsonl(&text, "h.jsonl").expect_err(&text);
        assert_eq!(error.line, expected_line, "{error}");
        assert!(
            error
                .to_string()
                .starts_with(&format!("h.jsonl:{expected_line}: ")),
            "{error}"
        );
        assert!(
            error.problem.contains(expected_problem),
            "{error} should mention {expected_problem}"
        );
    }
}

#[test]
fn malformed_edn_and_logs_name_line_and_problem() {
    let cases = [
        (
            "[{:process 1, :type :invoke, :f :read, :value nil}\n {:process 1 :type :ok :f :read\n",
            Format::Edn,
            2,
            "bad EDN",
        ),
        (
            "[{:process 1, :type :invoke, :f :read, :value nil}\n]\n]",
            Format::Edn,
            3,
            "after the history",
        ),
        (
            "{:process 1, :type :invoke, :f :read}\n{:process 1, :type :maybe, :f :read}\n",
            Format::Edn,
            2,
            "unknown type :maybe",
        ),
        ("{:type :invoke, :f :read}\n", Format::Edn, 1, "no :process"),
        ("[1 2]", Format::Edn, 1, "expected an op map"),
        (
            "INFO  jepsen.util - 1\t:invoke\t:read\tnil\nINFO  jepsen.util - 1\t:done\t:read\t1\n",
            Format::EtcdLog,
            2,
            "unknown type",
        ),
        (
            "INFO  jepsen.util - x\t:invoke\t:read\tnil\n",
            Format::EtcdLog,
            1,
            "not a number",
        ),
        (
            "INFO  jepsen.util - 1\t:invoke\t:cas\t[1 2\n",
            Format::EtcdLog,
            1,
            "bad EDN value",
        ),
    ];
    for (text, format, expected_line, expected_problem) in cases {
        let error = parse_text(text, "h", format).expect_err(text);
        assert_eq!(error.line, expected_line, "{error}");
        assert!(
            error.problem.contains(expected_problem),
            "{error} should mention {expected_problem}"
        );
    }
}

#[test]
fn formats_are_detected_and_read_alike() {
    let jsonl =
        line(0, 1, "invoke", "write", None, json!(1)) + &line(1, 1, "ok", "write", None, json!(1));
    let edn = "; a comment\n[{:process 1, :type :invoke, :f :write, :value 1}\n {:process 1, :type :ok, :f :write, :value 1}]";
    let log = "INFO  jepsen.util - 1\t:invoke\t:write\t1\nINFO  jepsen.util - 1  :ok  :write  1\n";
    for text in [jsonl.as_str(), edn, log] {
        let history = parse_text(text, "h", Format::Auto).unwrap();
        assert_eq!(history.ops.len(), 1, "{text}");
        assert_eq!(history.ops[0].f, "write");
        assert_eq!(history.ops[0].invoke_value, json!(1));
    }
}

#[test]
fn ops_that_do_not_fit_the_model_are_errors_not_panics() {
    let text = line(0, 1, "invoke", "add", Some("k"), json!(2))
        + &line(1, 1, "ok", "add", Some("k"), json!([2, 2]));
    let history = parse_jsonl(&text, "h").unwrap();
    assert_eq!(
        check(&history, &CheckOptions::new("counter"))
            .unwrap()
            .verdict,
        Verdict::Valid
    );
    assert!(matches!(
        check(&history, &CheckOptions::new("nope")),
        Err(CheckError::UnknownModel(_))
    ));
    match check(&history, &CheckOptions::new("cas-register")) {
        Err(CheckError::Op {
            line: 1,
            index: 0,
            process: 1,
            problem,
        }) => assert!(problem.contains("no operation \"add\""), "{problem}"),
        other => panic!("{other:?}"),
    }
    let mut options = CheckOptions::new("counter");
    options.init = Some(json!("zero"));
    assert!(matches!(
        check(&history, &options),
        Err(CheckError::BadInit(_))
    ));
    let wrong_delta =
        line(0, 1, "invoke", "add", None, json!(2)) + &line(1, 1, "ok", "add", None, json!([3, 5]));
    let history = parse_jsonl(&wrong_delta, "h").unwrap();
    assert!(matches!(
        check(&history, &CheckOptions::new("counter")),
        Err(CheckError::Op { .. })
    ));
}

/// Key "easy" is valid at once; key "hard" has a cas from every value to every higher one of
/// 0..24, each in doubt, and a cas to -1 from a value nothing sets; then reads of 0, 7 and 14,
/// and a read of -1. A cas does set -1, so no op is out of reach from the start; deciding it
/// means trying every path up through the values (millions of configurations).
fn easy_and_hard_history() -> String {
    let mut records = Vec::new();
    let mut push = |process: u64, kind: RecordType, f: &str, key: &str, value: Value| {
        records.push(HistoryRecord {
            index: records.len() as u64,
            time: records.len() as u64,
            process: Process::Client(process),
            kind,
            f: f.to_string(),
            key: Some(key.to_string()),
            value,
        });
    };
    push(100, RecordType::Invoke, "write", "easy", json!(7));
    push(100, RecordType::Ok, "write", "easy", json!(7));
    let mut cas = vec![json!([-2, -1])];
    for from in 0..24 {
        for to in from + 1..24 {
            cas.push(json!([from, to]));
        }
    }
    for (process, value) in cas.iter().enumerate() {
        push(
            process as u64,
            RecordType::Invoke,
            "cas",
            "hard",
            value.clone(),
        );
    }
    for (process, value) in cas.iter().enumerate() {
        push(
            process as u64,
            RecordType::Info,
            "cas",
            "hard",
            value.clone(),
        );
    }
    for reader in 0..3 {
        push(
            1000 + reader,
            RecordType::Invoke,
            "read",
            "hard",
            Value::Null,
        );
    }
    for reader in 0..3 {
        push(
            1000 + reader,
            RecordType::Ok,
            "read",
            "hard",
            json!(reader as i64 * 7),
        );
    }
    push(2000, RecordType::Invoke, "read", "hard", Value::Null);
    push(2000, RecordType::Ok, "read", "hard", json!(-1));
    records
        .iter()
        .map(|record| serde_json::to_string(record).unwrap() + "\n")
        .collect()
}

#[test]
fn time_limit_ends_in_unknown_with_decided_partitions() {
    let history = parse_jsonl(&easy_and_hard_history(), "h").unwrap();
    let mut options = CheckOptions::new("cas-register");
    options.time_limit = Some(Duration::from_millis(200));
    let report = check(&history, &options).unwrap();
    assert_eq!(report.verdict, Verdict::Unknown);
    assert_eq!(report.unknown_reason.as_deref(), Some("time limit"));
    assert!(report.counterexample.is_none());
    let verdicts: Vec<(Option<String>, Verdict)> = report
        .partitions
        .iter()
        .map(|partition| (partition.key.clone(), partition.verdict))
        .collect();
    assert_eq!(
        verdicts,
        vec![
            (Some("easy".to_string()), Verdict::Valid),
            (Some("hard".to_string()), Verdict::Unknown)
        ]
    );
    assert!(
        report.explanation_text().contains("1 of 2 objects decided"),
        "{}",
        report.explanation_text()
    );
}

#[test]
fn memory_limit_ends_in_unknown_before_the_memory_is_used() {
    let history = parse_jsonl(&easy_and_hard_history(), "h").unwrap();
    let mut options = CheckOptions::new("cas-register");
    options.time_limit = Some(Duration::from_secs(600));
    options.memory_limit_bytes = Some(8 * 1024 * 1024);
    let report = check(&history, &options).unwrap();
    assert_eq!(report.verdict, Verdict::Unknown);
    assert_eq!(report.unknown_reason.as_deref(), Some("memory limit"));
    // Counted memory overshoots the limit by at most one budget-check interval of growth.
    assert!(
        report.peak_memory_bytes < 3 * 8 * 1024 * 1024,
        "{}",
        report.peak_memory_bytes
    );
}

/// Issue 16 item 7: an undecided object says how far the search got, not only how much it
/// explored.
#[test]
fn unknown_objects_give_the_longest_prefix_reached() {
    let history = parse_jsonl(&easy_and_hard_history(), "h").unwrap();
    let mut options = CheckOptions::new("cas-register");
    options.time_limit = Some(Duration::from_millis(200));
    let report = check(&history, &options).unwrap();
    assert_eq!(report.verdict, Verdict::Unknown);
    let value = serde_json::to_value(&report).unwrap();
    assert!(
        value["partitions"][0].get("longest_prefix").is_none(),
        "decided: none"
    );
    let prefix = &value["partitions"][1]["longest_prefix"];
    let ops_count = prefix["ops_count"].as_u64().expect("undecided: a prefix");
    assert!(ops_count > 0, "{prefix}");
    assert_eq!(prefix["must_happen_count"], 4, "{prefix}");
    let last = prefix["last_ops"].as_array().unwrap();
    assert!(
        !last.is_empty() && last.len() as u64 <= ops_count.min(5),
        "{prefix}"
    );
    assert!(prefix.get("state").is_some());
    let text = report.explanation_text();
    assert!(
        text.contains("Undecided key \"hard\": the longest linearizable prefix reached holds"),
        "{text}"
    );
}

//! Regressions of issue 16 on reading histories: the format's initial state (item 1), line
//! endings and trailing tokens (item 2), nesting limits (item 5), bounded messages and the
//! byte-order mark (item 6), and Jepsen/Maelstrom jsonl conventions (item 8).

use minos_checker::history::{parse_jsonl, parse_text, Format};
use minos_checker::{check, CheckOptions, Verdict};
use serde_json::json;

const ETCD_VALID: &str = "INFO  jepsen.util - 4\t:invoke\t:read\tnil
INFO  jepsen.util - 4\t:ok\t:read\tnil
INFO  jepsen.util - 1\t:invoke\t:write\t1
INFO  jepsen.util - 1\t:ok\t:write\t1
INFO  jepsen.util - 2\t:invoke\t:cas\t[1 2]
INFO  jepsen.util - 2\t:ok\t:cas\t[1 2]
INFO  jepsen.util - 3\t:invoke\t:read\tnil
INFO  jepsen.util - 3\t:ok\t:read\t2
";

/// A stale read: invalid under any initial state.
const ETCD_INVALID: &str = "INFO  jepsen.util - 1\t:invoke\t:write\t1
INFO  jepsen.util - 1\t:ok\t:write\t1
INFO  jepsen.util - 1\t:invoke\t:write\t2
INFO  jepsen.util - 1\t:ok\t:write\t2
INFO  jepsen.util - 3\t:invoke\t:read\tnil
INFO  jepsen.util - 3\t:ok\t:read\t1
";

fn verdict_without_flags(text: &str) -> Verdict {
    let history = parse_text(text, "h.log", Format::Auto).expect("reads");
    check(&history, &CheckOptions::new("cas-register"))
        .expect("checks")
        .verdict
}

#[test]
fn etcd_logs_start_absent_without_init() {
    assert_eq!(verdict_without_flags(ETCD_VALID), Verdict::Valid);
    assert_eq!(verdict_without_flags(ETCD_INVALID), Verdict::Invalid);
    // An explicit --init still wins.
    let history = parse_text(ETCD_VALID, "h.log", Format::Auto).unwrap();
    let mut options = CheckOptions::new("cas-register");
    options.init = Some(json!(0));
    let report = check(&history, &options).unwrap();
    assert_eq!(report.verdict, Verdict::Invalid);
    // The null read is shown as what it was, not as "not observed".
    let text = report.explanation_text();
    assert!(text.contains("read -> null"), "{text}");
    assert!(!text.contains("not observed"), "{text}");
}

#[test]
fn a_null_read_under_the_default_zero_is_pointed_out() {
    // jsonl: null is a value; the model's default start is 0.
    let text =
        "{\"index\":0,\"time\":0,\"process\":1,\"type\":\"invoke\",\"f\":\"read\",\"value\":null}
{\"index\":1,\"time\":1,\"process\":1,\"type\":\"ok\",\"f\":\"read\",\"value\":null}
";
    let history = parse_jsonl(text, "h.jsonl").unwrap();
    let report = check(&history, &CheckOptions::new("register")).unwrap();
    assert_eq!(report.verdict, Verdict::Invalid);
    let explanation = report.explanation_text();
    assert!(explanation.contains("--init null"), "{explanation}");
    assert!(explanation.contains("read -> null"), "{explanation}");
    assert!(!explanation.contains("not observed"), "{explanation}");
}

fn with_endings(text: &str, ending: &str) -> String {
    text.replace('\n', ending)
}

#[test]
fn every_line_ending_reads_alike_in_every_line_based_format() {
    let jsonl =
        "{\"index\":0,\"time\":0,\"process\":1,\"type\":\"invoke\",\"f\":\"write\",\"value\":1}
{\"index\":1,\"time\":1,\"process\":1,\"type\":\"ok\",\"f\":\"write\",\"value\":1}
{\"index\":2,\"time\":2,\"process\":2,\"type\":\"invoke\",\"f\":\"read\",\"value\":null}
{\"index\":3,\"time\":3,\"process\":2,\"type\":\"ok\",\"f\":\"read\",\"value\":0}
";
    let kv = "{:process 0, :type :invoke, :f :put, :key \"x\", :value \"a\"}
{:process 0, :type :ok, :f :put, :key \"x\", :value \"a\"}
{:process 1, :type :invoke, :f :get, :key \"x\", :value nil}
{:process 1, :type :ok, :f :get, :key \"x\", :value \"\"}
";
    let edn = "; comment\n[{:process 1, :type :invoke, :f :write, :value 1}
 {:process 1, :type :ok, :f :write, :value 1} ; trailing comment
 {:process 2, :type :invoke, :f :read, :value nil}
 {:process 2, :type :ok, :f :read, :value 0}]
";
    let cases = [
        (ETCD_INVALID, "cas-register", 3, 6),
        (jsonl, "register", 2, 4),
        (kv, "kv", 2, 4),
        (edn, "register", 2, 5),
    ];
    for (text, model, ops, last_line) in cases {
        for ending in ["\n", "\r\n", "\r"] {
            let converted = with_endings(text, ending);
            let history = parse_text(&converted, "h", Format::Auto)
                .unwrap_or_else(|error| panic!("{ending:?}: {error}"));
            assert_eq!(history.ops.len(), ops, "{model} {ending:?}");
            assert_eq!(
                history.ops.last().unwrap().line + 1,
                last_line,
                "{model} {ending:?}: lines are counted"
            );
            let report = check(&history, &CheckOptions::new(model)).unwrap();
            assert_eq!(report.verdict, Verdict::Invalid, "{model} {ending:?}");
        }
    }
}

#[test]
fn trailing_tokens_after_an_etcd_value_are_malformed() {
    let text =
        "INFO  jepsen.util - 1\t:invoke\t:write\t1\nINFO  jepsen.util - 1\t:ok\t:write\t1 2\n";
    let error = parse_text(text, "h.log", Format::Auto).unwrap_err();
    assert_eq!(error.line, 2, "{error}");
    assert!(error.problem.contains("after the value"), "{error}");
}

fn nested(depth: usize) -> String {
    format!("{}1{}", "[".repeat(depth), "]".repeat(depth))
}

/// Runs `body` on a small stack, as the checker's worker threads have: a recursion the
/// limits let through would overflow it and fail the test rather than pass by luck.
fn on_small_stack<R: Send + 'static>(body: impl FnOnce() -> R + Send + 'static) -> R {
    std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(body)
        .unwrap()
        .join()
        .expect("no stack overflow or panic")
}

#[test]
fn deep_nesting_is_refused_in_every_format() {
    let depth = 50_000;
    let cases = [
        (
            format!("[{{:process 1, :type :invoke, :f :write, :value {}}}]", nested(depth)),
            Format::Edn,
        ),
        (
            format!("{{:process 1, :type :invoke, :f :put, :key \"x\", :value {}}}\n", nested(depth)),
            Format::PorcupineKv,
        ),
        (
            format!("INFO  jepsen.util - 1\t:invoke\t:write\t{}\n", nested(depth)),
            Format::EtcdLog,
        ),
        (
            format!("{{\"index\":0,\"time\":0,\"process\":1,\"type\":\"invoke\",\"f\":\"write\",\"value\":{}}}\n", nested(depth)),
            Format::Jsonl,
        ),
        (
            format!("{{:process 1, :type :invoke, :f :write, :value 1}}\n{{{} 1}}", nested(depth)),
            Format::Edn,
        ),
    ];
    for (text, format) in cases {
        let error = on_small_stack(move || parse_text(&text, "deep", format).unwrap_err());
        assert!(
            error.problem.contains("deeper") || error.problem.contains("recursion limit"),
            "{format:?}: {error}"
        );
        assert!(error.to_string().len() < 1_000, "{format:?}: {error}");
    }
    // Nesting that real histories use still reads.
    let fine = format!(
        "[{{:process 1, :type :invoke, :f :write, :value {}}}]",
        nested(20)
    );
    parse_text(&fine, "fine", Format::Edn).unwrap();
}

#[test]
fn messages_quote_a_bounded_part_of_long_input() {
    let long = "x".repeat(5_000_000);
    let cases = [
        (format!("INFO  jepsen.util - 1\t:invoke\t:read\t[\"{long}\n"), Format::EtcdLog),
        (format!("INFO  jepsen.util - 1\t:invoke\t:read\t1 {long}\n"), Format::EtcdLog),
        (format!("INFO  jepsen.util - {long}\t:invoke\t:read\tnil\n"), Format::EtcdLog),
        (
            format!("{{\"index\":\"{long}\",\"time\":0,\"process\":1,\"type\":\"invoke\",\"f\":\"read\"}}\n"),
            Format::Jsonl,
        ),
        (
            format!("{{\"index\":0,\"time\":0,\"process\":1,\"type\":\"invoke\",\"f\":\"read\",\"key\":\"{long}\",\"value\":null}}\n{{\"index\":1,\"time\":0,\"process\":1,\"type\":\"ok\",\"f\":\"read\",\"key\":\"y\",\"value\":null}}\n"),
            Format::Jsonl,
        ),
        (format!("[{{:process 1, :type :{long}, :f :read}}]"), Format::Edn),
        (format!("[\"{long}\"]"), Format::Edn),
    ];
    for (text, format) in cases {
        let error = parse_text(&text, "long", format).unwrap_err();
        let message = error.to_string();
        assert!(message.len() < 1_000, "{format:?}: {} bytes", message.len());
        assert!(message.contains('…'), "{format:?}: {message}");
    }
}

#[test]
fn a_byte_order_mark_is_accepted() {
    for (text, format) in [
        (ETCD_VALID.to_string(), Format::Auto),
        (
            "{\"index\":0,\"time\":0,\"process\":1,\"type\":\"invoke\",\"f\":\"read\",\"value\":null}\n".to_string(),
            Format::Auto,
        ),
        (
            "{\"index\":0,\"time\":0,\"process\":1,\"type\":\"invoke\",\"f\":\"read\",\"value\":null}\n".to_string(),
            Format::Jsonl,
        ),
        ("[{:process 1, :type :invoke, :f :read, :value nil}]".to_string(), Format::Auto),
    ] {
        let with_bom = format!("\u{feff}{text}");
        let history = parse_text(&with_bom, "bom", format)
            .unwrap_or_else(|error| panic!("{text}: {error}"));
        assert!(!history.ops.is_empty());
    }
}

#[test]
fn jsonl_accepts_integer_keys_and_named_processes() {
    // Maelstrom/Jepsen style: string processes, integer keys, nemesis as ":nemesis".
    let text = r#"{"index":0,"time":0,"process":"c1","type":"invoke","f":"write","key":3,"value":1}
{"index":1,"time":1,"process":"c1","type":"ok","f":"write","key":3,"value":1}
{"index":2,"time":2,"process":":nemesis","type":"info","f":"start","value":null}
{"index":3,"time":3,"process":0,"type":"invoke","f":"read","key":3,"value":null}
{"index":4,"time":4,"process":"c2","type":"invoke","f":"read","key":"3","value":null}
{"index":5,"time":5,"process":0,"type":"ok","f":"read","key":3,"value":1}
{"index":6,"time":6,"process":"c2","type":"ok","f":"read","key":"3","value":0}
"#;
    let history = parse_jsonl(text, "maelstrom.jsonl").unwrap();
    assert_eq!(history.ops.len(), 3);
    let processes: Vec<u64> = history.ops.iter().map(|op| op.process).collect();
    assert_eq!(
        processes,
        vec![1, 0, 2],
        "names numbered after the largest number"
    );
    assert!(history.ops.iter().all(|op| op.key.as_deref() == Some("3")));
    let report = check(&history, &CheckOptions::new("register")).unwrap();
    assert_eq!(report.verdict, Verdict::Invalid);
    let text = report.explanation_text();
    assert!(text.contains("process \"c2\" read"), "{text}");
    // Keys that are neither strings nor integers are still refused.
    let bad =
        r#"{"index":0,"time":0,"process":1,"type":"invoke","f":"read","key":[1],"value":null}"#;
    let error = parse_jsonl(bad, "h").unwrap_err();
    assert!(error.problem.contains("key"), "{error}");
}

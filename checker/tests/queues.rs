//! The unordered queue: a dequeue that found the queue empty (ok with a null/nil value) is
//! legal exactly when the queue is empty at its linearization point, and a dequeue that ended
//! in doubt may have taken any element (which can be what made a later dequeue find it empty).

use minos_checker::history::{parse_text, Format};
use minos_checker::{check, CheckOptions, Verdict};

fn verdict(edn: &str) -> Verdict {
    let history = parse_text(edn, "queue.edn", Format::Auto).unwrap();
    let report = check(&history, &CheckOptions::new("unordered-queue")).unwrap();
    report.verdict
}

#[test]
fn empty_dequeue_on_an_empty_queue_is_legal() {
    // Knossos' spelling: :dequeue completing :ok with nil.
    let edn = "[{:process 0, :type :invoke, :f :dequeue, :value nil}
 {:process 0, :type :ok, :f :dequeue, :value nil}
 {:process 1, :type :invoke, :f :enqueue, :value 1}
 {:process 1, :type :ok, :f :enqueue, :value 1}
 {:process 1, :type :invoke, :f :dequeue, :value nil}
 {:process 1, :type :ok, :f :dequeue, :value 1}
 {:process 0, :type :invoke, :f :dequeue, :value nil}
 {:process 0, :type :ok, :f :dequeue, :value nil}]";
    assert_eq!(verdict(edn), Verdict::Valid);
}

#[test]
fn empty_dequeue_while_an_element_is_queued_is_explained() {
    let edn = "[{:process 1, :type :invoke, :f :enqueue, :value 7}
 {:process 1, :type :ok, :f :enqueue, :value 7}
 {:process 0, :type :invoke, :f :dequeue, :value nil}
 {:process 0, :type :ok, :f :dequeue, :value nil}]";
    let history = parse_text(edn, "queue.edn", Format::Auto).unwrap();
    let report = check(&history, &CheckOptions::new("unordered-queue")).unwrap();
    assert_eq!(report.verdict, Verdict::Invalid);
    let text = report.explanation_text();
    assert!(
        text.contains("dequeue found the queue empty but it holds 1 element(s)"),
        "{text}"
    );
}

#[test]
fn empty_dequeue_concurrent_with_the_enqueue_may_come_first() {
    let edn = "[{:process 1, :type :invoke, :f :enqueue, :value 7}
 {:process 0, :type :invoke, :f :dequeue, :value nil}
 {:process 1, :type :ok, :f :enqueue, :value 7}
 {:process 0, :type :ok, :f :dequeue, :value nil}]";
    assert_eq!(verdict(edn), Verdict::Valid);
}

#[test]
fn an_in_doubt_dequeue_may_have_emptied_the_queue() {
    // Process 2's dequeue never returned; if it took 7, the queue was empty for process 0.
    let edn = "[{:process 1, :type :invoke, :f :enqueue, :value 7}
 {:process 1, :type :ok, :f :enqueue, :value 7}
 {:process 2, :type :invoke, :f :dequeue, :value nil}
 {:process 2, :type :info, :f :dequeue, :value nil}
 {:process 0, :type :invoke, :f :dequeue, :value nil}
 {:process 0, :type :ok, :f :dequeue, :value nil}]";
    assert_eq!(verdict(edn), Verdict::Valid);
    // But it took at most one element: with two queued, the queue cannot have been empty.
    let two = "[{:process 1, :type :invoke, :f :enqueue, :value 7}
 {:process 1, :type :ok, :f :enqueue, :value 7}
 {:process 1, :type :invoke, :f :enqueue, :value 8}
 {:process 1, :type :ok, :f :enqueue, :value 8}
 {:process 2, :type :invoke, :f :dequeue, :value nil}
 {:process 2, :type :info, :f :dequeue, :value nil}
 {:process 0, :type :invoke, :f :dequeue, :value nil}
 {:process 0, :type :ok, :f :dequeue, :value nil}]";
    assert_eq!(verdict(two), Verdict::Invalid);
    // And what it took is gone: 7 cannot be dequeued again after the queue was seen empty.
    let again = "[{:process 1, :type :invoke, :f :enqueue, :value 7}
 {:process 1, :type :ok, :f :enqueue, :value 7}
 {:process 2, :type :invoke, :f :dequeue, :value nil}
 {:process 2, :type :info, :f :dequeue, :value nil}
 {:process 0, :type :invoke, :f :dequeue, :value nil}
 {:process 0, :type :ok, :f :dequeue, :value nil}
 {:process 0, :type :invoke, :f :dequeue, :value nil}
 {:process 0, :type :ok, :f :dequeue, :value 7}]";
    assert_eq!(verdict(again), Verdict::Invalid);
}

#[test]
fn keyed_and_whole_map_checks_agree_on_empty_dequeues() {
    // Key a: the in-doubt dequeue explains the empty one; key b: no in-doubt op, invalid.
    let jsonl = r#"{"index":0,"time":0,"process":1,"type":"invoke","f":"enqueue","key":"a","value":1}
{"index":1,"time":1,"process":1,"type":"ok","f":"enqueue","key":"a","value":1}
{"index":2,"time":2,"process":2,"type":"invoke","f":"dequeue","key":"a","value":null}
{"index":3,"time":3,"process":2,"type":"info","f":"dequeue","key":"a","value":null}
{"index":4,"time":4,"process":0,"type":"invoke","f":"dequeue","key":"a","value":null}
{"index":5,"time":5,"process":0,"type":"ok","f":"dequeue","key":"a","value":null}
{"index":6,"time":6,"process":1,"type":"invoke","f":"enqueue","key":"b","value":1}
{"index":7,"time":7,"process":1,"type":"ok","f":"enqueue","key":"b","value":1}
{"index":8,"time":8,"process":0,"type":"invoke","f":"dequeue","key":"b","value":null}
{"index":9,"time":9,"process":0,"type":"ok","f":"dequeue","key":"b","value":null}
"#;
    let history = parse_text(jsonl, "keyed.jsonl", Format::Auto).unwrap();
    for partition in [true, false] {
        let mut options = CheckOptions::new("unordered-queue");
        options.partition = partition;
        let report = check(&history, &options).unwrap();
        assert_eq!(report.verdict, Verdict::Invalid, "partition {partition}");
        let text = report.explanation_text();
        assert!(text.contains("\"b\""), "partition {partition}: {text}");
    }
    // Without key b's ops, key a alone is valid either way.
    let only_a: String = jsonl
        .lines()
        .take(6)
        .map(|line| format!("{line}\n"))
        .collect();
    let history = parse_text(&only_a, "a.jsonl", Format::Auto).unwrap();
    for partition in [true, false] {
        let mut options = CheckOptions::new("unordered-queue");
        options.partition = partition;
        assert_eq!(check(&history, &options).unwrap().verdict, Verdict::Valid);
    }
}

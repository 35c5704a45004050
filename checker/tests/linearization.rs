//! `CheckOptions::linearization`: each object's report carries the order the search found,
//! with the model state after every op; the whole order when linearizable, the longest
//! linearizable prefix when not.

use minos_checker::history::{parse_text, Format};
use minos_checker::{check, CheckOptions, Verdict};
use serde_json::json;

fn options(linearization: bool) -> CheckOptions {
    let mut options = CheckOptions::new("register");
    options.init = Some(json!(0));
    options.threads = 1;
    options.linearization = linearization;
    options
}

/// Two writes that overlap, then a read of the second one written.
const VALID: &str = "[{:process 0, :type :invoke, :f :write, :value 1}
 {:process 1, :type :invoke, :f :write, :value 2}
 {:process 1, :type :ok, :f :write, :value 2}
 {:process 0, :type :ok, :f :write, :value 1}
 {:process 0, :type :invoke, :f :read, :value nil}
 {:process 0, :type :ok, :f :read, :value 2}]";

#[test]
fn a_valid_object_reports_its_whole_linearization_with_states() {
    let history = parse_text(VALID, "valid.edn", Format::Auto).unwrap();
    let report = check(&history, &options(true)).unwrap();
    assert_eq!(report.verdict, Verdict::Valid);
    let order = report.partitions[0].linearization.as_ref().unwrap();
    assert!(order.complete);
    let steps: Vec<(u64, &str)> = order
        .steps
        .iter()
        .map(|step| (step.index, step.state.as_str()))
        .collect();
    // write 1 (#0) must come before write 2 (#1) for the read (#4) to see 2.
    assert_eq!(steps, [(0, "1"), (1, "2"), (4, "2")]);
}

#[test]
fn an_invalid_object_reports_its_longest_prefix_as_incomplete() {
    let stale = VALID.replace(":ok, :f :read, :value 2", ":ok, :f :read, :value 7");
    let history = parse_text(&stale, "invalid.edn", Format::Auto).unwrap();
    let report = check(&history, &options(true)).unwrap();
    assert_eq!(report.verdict, Verdict::Invalid);
    let order = report.partitions[0].linearization.as_ref().unwrap();
    assert!(!order.complete);
    assert_eq!(order.steps.len(), 2, "both writes, never the read of 7");
    assert!(order.steps.iter().all(|step| step.index != 4));
}

#[test]
fn without_the_option_no_linearization_is_reported_or_serialized() {
    let history = parse_text(VALID, "valid.edn", Format::Auto).unwrap();
    let report = check(&history, &options(false)).unwrap();
    assert!(report.partitions[0].linearization.is_none());
    let json = serde_json::to_string(&report).unwrap();
    assert!(!json.contains("linearization"));
}

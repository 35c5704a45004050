//! Failure signatures: what makes two failing runs "the same failure", so that a thousand
//! failing seeds of one bug read as one line, and so that shrinking keeps only changes that
//! still fail the same way.
//!
//! The anomaly part blanks numbers out of the checker's reasons ("add 1 reported total 67 but
//! the counter goes from 72 to 73" -> "add N reported total N but the counter goes from N to
//! N"), so the signature names the kind of anomaly, not the values of one seed.

use std::collections::BTreeSet;

use serde_json::Value;

/// The parts of a signature, built from a run's results.json (and its history for the times
/// of the counterexample).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Signature {
    pub verdict: String,
    /// Causes, sorted ("linearizability", "no progress", "invariant: ...").
    pub causes: Vec<String>,
    /// The kind of anomaly from the counterexample, or the checker's unknown reason.
    pub anomaly: Vec<String>,
    /// Fault kinds active during the counterexample's window (all faults of the run when the
    /// failure has no counterexample, e.g. an invariant or liveness failure).
    pub faults: Vec<String>,
}

impl Signature {
    /// The signature used by shrinking: the same causes and the same kind of anomaly; the
    /// faults may change (shrinking removes them).
    pub fn shrink_key(&self) -> String {
        let mut parts = vec![self.verdict.clone(), self.causes.join(", ")];
        if !self.anomaly.is_empty() {
            parts.push(self.anomaly.join("; "));
        }
        parts.join(" | ")
    }

    /// The full key, for grouping campaign failures.
    pub fn key(&self) -> String {
        let faults = if self.faults.is_empty() {
            "no faults".to_string()
        } else {
            format!("faults: {}", self.faults.join(","))
        };
        format!("{} | {faults}", self.shrink_key())
    }
}

/// Computes a run's signature from its results.json and, when available, its history text
/// (for the times of the counterexample's window).
pub fn signature_of(results: &Value, history_text: Option<&str>) -> Signature {
    let verdict = results
        .get("verdict")
        .and_then(Value::as_str)
        .unwrap_or("unknown")
        .to_string();
    let mut causes: Vec<String> = causes_of(results)
        .iter()
        .map(|cause| without_node_name(cause))
        .collect();
    causes.sort();
    causes.dedup();
    let checker = results.get("checker").unwrap_or(&Value::Null);
    let counterexample = checker.get("counterexample").filter(|c| !c.is_null());
    let mut anomaly = BTreeSet::new();
    if let Some(counterexample) = counterexample {
        for stuck in counterexample
            .get("stuck")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let f = stuck
                .get("op")
                .and_then(|op| op.get("f"))
                .and_then(Value::as_str)
                .unwrap_or("?");
            let reason = stuck.get("reason").and_then(Value::as_str).unwrap_or("");
            anomaly.insert(format!("{f}: {}", blank_numbers(reason)));
        }
    } else if verdict == "unknown" {
        if let Some(reason) = checker.get("unknown_reason").and_then(Value::as_str) {
            anomaly.insert(format!("checker: {reason}"));
        }
    }
    let window_ns =
        counterexample.and_then(|c| history_text.and_then(|text| window_times(c, text)));
    let mut faults = BTreeSet::new();
    for fault in results
        .get("faults")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(kind) = fault.get("kind").and_then(Value::as_str) else {
            continue;
        };
        let active = match window_ns {
            Some((first_ns, last_ns)) => {
                let start = fault.get("start_ns").and_then(Value::as_u64).unwrap_or(0);
                let stop = fault
                    .get("stop_ns")
                    .and_then(Value::as_u64)
                    .unwrap_or(u64::MAX);
                start <= last_ns && stop >= first_ns
            }
            None => true,
        };
        if active {
            faults.insert(kind.to_string());
        }
    }
    Signature {
        verdict,
        causes,
        anomaly: anomaly.into_iter().collect(),
        faults: faults.into_iter().collect(),
    }
}

/// "node n3 panicked: M at F:L" -> "node panicked: M at F:L": the same panic on another node
/// is the same failure (and shrinking may move it).
fn without_node_name(cause: &str) -> String {
    let Some(rest) = cause.strip_prefix("node n") else {
        return cause.to_string();
    };
    let digits = rest.chars().take_while(char::is_ascii_digit).count();
    if digits == 0 || !rest[digits..].starts_with(' ') {
        return cause.to_string();
    }
    format!("node{}", &rest[digits..])
}

/// Reads a run dir's results.json (and history.jsonl when the run failed) into a signature.
pub fn signature_of_run_dir(run_dir: &std::path::Path) -> Result<Signature, String> {
    let path = run_dir.join("results.json");
    let text = std::fs::read_to_string(&path)
        .map_err(|error| format!("{}: cannot read: {error}", path.display()))?;
    let results: Value = serde_json::from_str(&text)
        .map_err(|error| format!("{}: not JSON: {error}", path.display()))?;
    let history = if results.get("verdict").and_then(Value::as_str) == Some("valid") {
        None
    } else {
        std::fs::read_to_string(run_dir.join("history.jsonl")).ok()
    };
    Ok(signature_of(&results, history.as_deref()))
}

/// Simulated times (ns) spanned by the counterexample: from its window's first record to the
/// completion of its last stuck op.
fn window_times(counterexample: &Value, history_text: &str) -> Option<(u64, u64)> {
    let window = counterexample.get("window")?;
    let first_index = window.get("first_index")?.as_u64()?;
    let mut last_index = window.get("last_index")?.as_u64()?;
    for stuck in counterexample
        .get("stuck")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(index) = stuck
            .get("op")
            .and_then(|op| op.get("completion_index"))
            .and_then(Value::as_u64)
        {
            last_index = last_index.max(index);
        }
    }
    let time_of = |wanted: u64| -> Option<u64> {
        // History lines are in index order: line i has index i.
        let line = history_text.lines().nth(usize::try_from(wanted).ok()?)?;
        let record: Value = serde_json::from_str(line).ok()?;
        (record.get("index")?.as_u64()? == wanted).then_some(())?;
        record.get("time")?.as_u64()
    };
    Some((time_of(first_index)?, time_of(last_index)?))
}

/// results.json `causes` as strings (empty when absent).
pub(crate) fn causes_of(results: &Value) -> Vec<String> {
    results
        .get("causes")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// Replaces every number (with its decimals) by `N`.
fn blank_numbers(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_number = false;
    for c in text.chars() {
        if c.is_ascii_digit() || (in_number && c == '.') {
            if !in_number {
                out.push('N');
            }
            in_number = true;
        } else {
            in_number = false;
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn results(reason: &str, faults: Value) -> Value {
        json!({
            "verdict": "invalid",
            "causes": ["linearizability"],
            "checker": {"counterexample": {
                "window": {"first_index": 1, "last_index": 2},
                "stuck": [{"op": {"f": "add", "completion_index": 3}, "reason": reason}]
            }},
            "faults": faults
        })
    }

    const HISTORY: &str = "{\"index\":0,\"time\":0}\n{\"index\":1,\"time\":100}\n{\"index\":2,\"time\":200}\n{\"index\":3,\"time\":300}\n";

    #[test]
    fn same_anomaly_on_other_values_has_the_same_signature() {
        let faults = json!([{"kind": "kill", "start_ns": 250, "stop_ns": 900}]);
        let a = signature_of(
            &results(
                "add 1 reported total 67 but the counter goes from 72 to 73",
                faults.clone(),
            ),
            Some(HISTORY),
        );
        let b = signature_of(
            &results(
                "add 5 reported total 3 but the counter goes from 2 to 7",
                faults,
            ),
            Some(HISTORY),
        );
        assert_eq!(a, b);
        assert_eq!(a.faults, vec!["kill".to_string()]);
        assert!(a.key().contains("add: add N reported total N"));
    }

    #[test]
    fn only_faults_overlapping_the_window_count() {
        let faults = json!([
            {"kind": "kill", "start_ns": 0, "stop_ns": 50},
            {"kind": "partition", "start_ns": 150, "stop_ns": null}
        ]);
        let signature = signature_of(&results("x", faults.clone()), Some(HISTORY));
        assert_eq!(signature.faults, vec!["partition".to_string()]);
        // Without the history every fault of the run counts.
        let signature = signature_of(&results("x", faults), None);
        assert_eq!(
            signature.faults,
            vec!["kill".to_string(), "partition".to_string()]
        );
        assert_eq!(signature.shrink_key(), "invalid | linearizability | add: x");
    }

    #[test]
    fn the_same_panic_on_two_nodes_is_one_signature() {
        let results = |node: &str| {
            serde_json::json!({
                "verdict": "invalid",
                "causes": [format!("node {node} panicked: term went back at node/src/raft/mod.rs:310")],
            })
        };
        let first = signature_of(&results("n3"), None);
        assert_eq!(
            first.shrink_key(),
            signature_of(&results("n1"), None).shrink_key()
        );
        assert_eq!(
            first.causes,
            vec!["node panicked: term went back at node/src/raft/mod.rs:310".to_string()]
        );
        assert_eq!(without_node_name("node names differ"), "node names differ");
    }
}

//! Fault intervals for shading and availability: taken from results.json when it lists them,
//! otherwise derived from the history's nemesis records (`start-<kind>` / `stop-<kind>`).

use std::collections::BTreeMap;

use serde_json::Value;

use crate::history::{value_text, NemesisRecord};
use crate::results::Fault;

/// Where the fault intervals on the page came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultSource {
    Results,
    NemesisRecords,
}

/// Faults from results.json if present, else from the nemesis records.
pub fn fault_intervals(
    recorded: Option<&Vec<Fault>>,
    nemesis: &[NemesisRecord],
) -> (Vec<Fault>, FaultSource) {
    match recorded {
        Some(list) => {
            let mut list = list.clone();
            list.sort_by(|a, b| (a.start_ns, &a.kind).cmp(&(b.start_ns, &b.kind)));
            (list, FaultSource::Results)
        }
        None => (from_nemesis(nemesis), FaultSource::NemesisRecords),
    }
}

/// Pairs `start-X` with the next `stop-X`. Jepsen-style nemeses log an invoke and an info per
/// action; a start while X is already open is the same action's completion and is ignored.
pub fn from_nemesis(records: &[NemesisRecord]) -> Vec<Fault> {
    let mut open: BTreeMap<String, Fault> = BTreeMap::new();
    let mut done = Vec::new();
    for record in records {
        if let Some(kind) = record.f.strip_prefix("start-") {
            let fault = open.entry(kind.to_string()).or_insert_with(|| Fault {
                kind: kind.to_string(),
                start_ns: record.time_ns,
                stop_ns: None,
                targets: Vec::new(),
                detail: Value::Null,
            });
            if !record.value.is_null() {
                fault.targets = targets_of(&record.value);
                fault.detail = record.value.clone();
            }
        } else if let Some(kind) = record.f.strip_prefix("stop-") {
            if let Some(mut fault) = open.remove(kind) {
                fault.stop_ns = Some(record.time_ns);
                done.push(fault);
            }
        }
    }
    done.extend(open.into_values());
    done.sort_by(|a, b| (a.start_ns, &a.kind).cmp(&(b.start_ns, &b.kind)));
    done
}

/// The node names a nemesis value mentions, in order of appearance.
fn targets_of(value: &Value) -> Vec<String> {
    let mut names = Vec::new();
    collect_names(value, &mut names, 0);
    names
}

fn collect_names(value: &Value, out: &mut Vec<String>, depth: usize) {
    if depth > 4 || out.len() > 64 {
        return;
    }
    match value {
        Value::String(_) | Value::Number(_) => {
            let name = value_text(value);
            if !out.contains(&name) {
                out.push(name);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_names(v, out, depth + 1)),
        Value::Object(map) => {
            for field in ["targets", "nodes", "groups", "node", "target"] {
                if let Some(v) = map.get(field) {
                    collect_names(v, out, depth + 1);
                    return;
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rec(time_ns: u64, f: &str, value: Value) -> NemesisRecord {
        NemesisRecord {
            index: 0,
            time_ns,
            kind: "info".into(),
            f: f.into(),
            value,
        }
    }

    #[test]
    fn pairs_start_and_stop_per_kind() {
        let records = vec![
            rec(10, "start-partition", Value::Null),
            rec(
                11,
                "start-partition",
                json!({"groups": [["n1"], ["n2", "n3"]]}),
            ),
            rec(15, "start-kill", json!(["n4"])),
            rec(20, "stop-partition", Value::Null),
        ];
        let faults = from_nemesis(&records);
        assert_eq!(faults.len(), 2);
        assert_eq!(faults[0].kind, "partition");
        assert_eq!(faults[0].stop_ns, Some(20));
        assert_eq!(faults[0].targets, vec!["n1", "n2", "n3"]);
        assert_eq!(faults[1].kind, "kill");
        assert_eq!(faults[1].stop_ns, None);
        assert_eq!(faults[1].targets, vec!["n4"]);
    }
}

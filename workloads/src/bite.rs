//! Whether the faults bit: per fault window, what the clients saw while it was in force
//! (ops, availability, the share of in-doubt `info` answers, the slowest answer), against a
//! baseline of the ops outside every window; per fault kind, whether any of its windows
//! changed anything. A fault kind that never bites is a schedule that tests nothing.

use std::collections::BTreeMap;

use minos_checker::history::{HistoryRecord, Process, RecordType};
use serde::Serialize;

use crate::nemesis::FaultRecord;

/// The clients' experience over one stretch of time.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct OpStats {
    /// Ops invoked in the stretch.
    pub ops: usize,
    pub ok: usize,
    pub fail: usize,
    pub info: usize,
    /// `ok / ops` (1 without ops).
    pub availability: f64,
    /// `info / ops` (0 without ops).
    pub info_share: f64,
    pub max_latency_ms: u64,
}

/// One fault record's window and what the clients saw during it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WindowEffect {
    pub kind: &'static str,
    pub start_ms: u64,
    pub stop_ms: u64,
    pub targets: Vec<String>,
    #[serde(flatten)]
    pub stats: OpStats,
    /// The window had fail or info answers, or an answer slower than twice the slowest
    /// outside every window.
    pub bit: bool,
}

/// Per fault kind over the run.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct KindEffect {
    pub windows: usize,
    pub windows_bit: usize,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct FaultEffects {
    /// Ops invoked outside every fault window.
    pub baseline: OpStats,
    pub windows: Vec<WindowEffect>,
    pub by_kind: BTreeMap<&'static str, KindEffect>,
    /// Fault kinds of the run none of whose windows bit.
    pub never_bit: Vec<&'static str>,
}

/// A completed client op: invoke time, completion time, outcome.
struct Completed {
    invoke_ns: u64,
    done_ns: u64,
    kind: RecordType,
}

fn completed_ops(records: &[HistoryRecord]) -> Vec<Completed> {
    let mut open: BTreeMap<u64, u64> = BTreeMap::new();
    let mut done = Vec::new();
    for record in records {
        let Process::Client(process) = record.process else {
            continue;
        };
        if record.kind == RecordType::Invoke {
            open.insert(process, record.time);
        } else if let Some(invoke_ns) = open.remove(&process) {
            done.push(Completed {
                invoke_ns,
                done_ns: record.time,
                kind: record.kind,
            });
        }
    }
    done.sort_by_key(|op| op.invoke_ns);
    done
}

fn stats<'a>(ops: impl Iterator<Item = &'a Completed>) -> OpStats {
    let mut stats = OpStats::default();
    for op in ops {
        stats.ops += 1;
        match op.kind {
            RecordType::Ok => stats.ok += 1,
            RecordType::Fail => stats.fail += 1,
            _ => stats.info += 1,
        }
        stats.max_latency_ms = stats
            .max_latency_ms
            .max(op.done_ns.saturating_sub(op.invoke_ns) / 1_000_000);
    }
    if stats.ops > 0 {
        stats.availability = round3(stats.ok as f64 / stats.ops as f64);
        stats.info_share = round3(stats.info as f64 / stats.ops as f64);
    } else {
        stats.availability = 1.0;
    }
    stats
}

fn round3(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

/// Measures every fault window of a run; `end_ns` closes windows still open at the end.
pub fn fault_effects(
    records: &[HistoryRecord],
    faults: &[FaultRecord],
    end_ns: u64,
) -> FaultEffects {
    let ops = completed_ops(records);
    let windows_ns: Vec<(u64, u64)> = faults
        .iter()
        .map(|fault| (fault.start_ns, fault.stop_ns.unwrap_or(end_ns)))
        .collect();
    let inside_any = |op: &Completed| {
        windows_ns
            .iter()
            .any(|(start, stop)| op.invoke_ns < *stop && op.done_ns >= *start)
    };
    let baseline = stats(ops.iter().filter(|op| !inside_any(op)));
    let slow_ms = baseline.max_latency_ms.max(50) * 2;
    let mut effects = FaultEffects {
        baseline,
        ..FaultEffects::default()
    };
    for (fault, (start_ns, stop_ns)) in faults.iter().zip(windows_ns) {
        // An op is in the window when it was in flight at any time inside it.
        let window = stats(
            ops.iter()
                .filter(|op| op.invoke_ns < stop_ns && op.done_ns >= start_ns),
        );
        let bit = window.fail > 0 || window.info > 0 || window.max_latency_ms > slow_ms;
        let kind = fault.kind.name();
        let summary = effects.by_kind.entry(kind).or_default();
        summary.windows += 1;
        summary.windows_bit += usize::from(bit);
        effects.windows.push(WindowEffect {
            kind,
            start_ms: start_ns / 1_000_000,
            stop_ms: stop_ns / 1_000_000,
            targets: fault.targets.clone(),
            stats: window,
            bit,
        });
    }
    effects.never_bit = effects
        .by_kind
        .iter()
        .filter(|(_, summary)| summary.windows_bit == 0)
        .map(|(kind, _)| *kind)
        .collect();
    effects
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::FaultKind;
    use serde_json::Value;

    fn record(time_ms: u64, process: u64, kind: RecordType) -> HistoryRecord {
        HistoryRecord {
            index: 0,
            time: time_ms * 1_000_000,
            process: Process::Client(process),
            kind,
            f: "read".into(),
            key: Some("k0".into()),
            value: Value::Null,
        }
    }

    #[test]
    fn a_window_with_in_doubt_ops_bit_and_a_quiet_one_did_not() {
        let records = vec![
            record(10, 1, RecordType::Invoke),
            record(20, 1, RecordType::Ok),
            record(100, 1, RecordType::Invoke),
            record(400, 1, RecordType::Info),
            record(1000, 2, RecordType::Invoke),
            record(1010, 2, RecordType::Ok),
        ];
        let fault = |kind, start_ms: u64, stop_ms: u64| FaultRecord {
            kind,
            start_ns: start_ms * 1_000_000,
            stop_ns: Some(stop_ms * 1_000_000),
            targets: vec!["n1".into()],
            detail: Value::Null,
        };
        let effects = fault_effects(
            &records,
            &[
                fault(FaultKind::Kill, 50, 500),
                fault(FaultKind::Clock, 900, 1100),
            ],
            2_000_000_000,
        );
        assert!(effects.windows[0].bit);
        assert_eq!(effects.windows[0].stats.info_share, 1.0);
        assert!(!effects.windows[1].bit);
        assert_eq!(effects.windows[1].stats.availability, 1.0);
        assert_eq!(effects.never_bit, vec!["clock"]);
        assert_eq!(effects.baseline.ops, 1);
    }
}

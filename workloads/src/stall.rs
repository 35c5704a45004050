//! Progress while the faults last: the longest stretch inside a fault window in which no
//! client operation completed. The liveness check after healing cannot see a liveness bug
//! that heals with the faults (a leader that never steps down while it cannot hear its
//! followers); `--max-stall` makes such a stall a failure of the run itself.

use minos_checker::history::{HistoryRecord, Process, RecordType};
use serde::Serialize;

use crate::nemesis::FaultRecord;

/// The cause a run gets when a stall exceeds `--max-stall`.
pub const CAUSE: &str = "no progress during faults";

/// The longest stall found, and whether it exceeds the limit.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Stall {
    pub limit_ms: u64,
    pub longest_ms: u64,
    /// The fault (kind) whose window held the longest stall; None without fault windows.
    pub fault: Option<String>,
    pub exceeded: bool,
    pub detail: String,
}

/// Scans the time under faults (the union of every closed fault window: overlapping and
/// touching windows, such as the pieces of a partially stopped fault, count as one) for the
/// longest stretch in which no client operation got a definite answer (`ok`, or `fail` such
/// as a cas whose compare failed: both need a working leader).
pub fn longest_stall(records: &[HistoryRecord], faults: &[FaultRecord], limit_ms: u64) -> Stall {
    let answered_times_ns: Vec<u64> = records
        .iter()
        .filter(|record| {
            matches!(record.kind, RecordType::Ok | RecordType::Fail)
                && matches!(record.process, Process::Client(_))
        })
        .map(|record| record.time)
        .collect();
    let mut worst: Option<(u64, String)> = None;
    for (start_ns, stop_ns, kinds) in fault_time(faults) {
        let mut last_ns = start_ns;
        let mut longest_ns = 0;
        for time_ns in answered_times_ns
            .iter()
            .copied()
            .filter(|time_ns| (start_ns..=stop_ns).contains(time_ns))
        {
            longest_ns = longest_ns.max(time_ns - last_ns);
            last_ns = time_ns;
        }
        longest_ns = longest_ns.max(stop_ns.saturating_sub(last_ns));
        if worst.as_ref().is_none_or(|(ns, _)| longest_ns > *ns) {
            worst = Some((longest_ns, kinds));
        }
    }
    let longest_ms = worst.as_ref().map_or(0, |(ns, _)| ns / 1_000_000);
    let fault = worst.map(|(_, kinds)| kinds);
    let exceeded = longest_ms > limit_ms;
    let detail = match &fault {
        Some(kinds) => format!(
            "no operation completed for {:.1} s during {kinds} (limit {:.1} s)",
            longest_ms as f64 / 1e3,
            limit_ms as f64 / 1e3
        ),
        None => "no fault windows".to_string(),
    };
    Stall {
        limit_ms,
        longest_ms,
        fault,
        exceeded,
        detail,
    }
}

/// The closed fault windows merged into disjoint spans: (start, stop, the faults' kinds).
fn fault_time(faults: &[FaultRecord]) -> Vec<(u64, u64, String)> {
    let mut windows: Vec<(u64, u64, &str)> = faults
        .iter()
        .filter_map(|fault| Some((fault.start_ns, fault.stop_ns?, fault.kind.name())))
        .collect();
    windows.sort_unstable();
    let mut spans: Vec<(u64, u64, Vec<&str>)> = Vec::new();
    for (start_ns, stop_ns, kind) in windows {
        match spans.last_mut() {
            Some(span) if start_ns <= span.1 => {
                span.1 = span.1.max(stop_ns);
                if !span.2.contains(&kind) {
                    span.2.push(kind);
                }
            }
            _ => spans.push((start_ns, stop_ns, vec![kind])),
        }
    }
    spans
        .into_iter()
        .map(|(start_ns, stop_ns, kinds)| (start_ns, stop_ns, kinds.join("+")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::FaultKind;

    fn record(time_s: u64, kind: RecordType) -> HistoryRecord {
        let line = format!(
            r#"{{"index":0,"time":{},"process":1,"type":"{}","f":"read","key":"k0","value":null}}"#,
            time_s * 1_000_000_000,
            match kind {
                RecordType::Ok => "ok",
                _ => "invoke",
            }
        );
        serde_json::from_str(&line).unwrap()
    }

    #[test]
    fn a_stall_inside_a_fault_window_exceeds_the_limit_and_a_short_one_does_not() {
        let records = [
            record(1, RecordType::Invoke),
            record(1, RecordType::Ok),
            record(2, RecordType::Invoke),
            record(2, RecordType::Ok),
            record(3, RecordType::Invoke),
            record(9, RecordType::Ok),
        ];
        let faults = [FaultRecord {
            kind: FaultKind::PartitionOneway,
            start_ns: 0,
            stop_ns: Some(10_000_000_000),
            targets: vec![],
            detail: serde_json::Value::Null,
        }];
        let stall = longest_stall(&records, &faults, 3_000);
        assert!(stall.exceeded);
        assert_eq!(stall.longest_ms, 7_000);
        assert!(
            stall.detail.contains("7.0 s during partition-oneway"),
            "{}",
            stall.detail
        );
        assert!(!longest_stall(&records, &faults, 8_000).exceeded);
        assert!(!longest_stall(&records, &[], 1).exceeded);
    }

    #[test]
    fn the_pieces_of_a_partially_stopped_fault_count_as_one_span() {
        let records = [record(1, RecordType::Ok), record(8, RecordType::Ok)];
        let piece = |start_s: u64, stop_s: u64| FaultRecord {
            kind: FaultKind::Kill,
            start_ns: start_s * 1_000_000_000,
            stop_ns: Some(stop_s * 1_000_000_000),
            targets: vec![],
            detail: serde_json::Value::Null,
        };
        // Kill 2-4 s, then the rest 4-6 s and 6-9 s: 6 s without an answer (2 to 8 s).
        let faults = [piece(2, 4), piece(4, 6), piece(6, 9)];
        let stall = longest_stall(&records, &faults, 5_000);
        assert_eq!(stall.longest_ms, 6_000, "{}", stall.detail);
        assert!(stall.exceeded);
    }
}

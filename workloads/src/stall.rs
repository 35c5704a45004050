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

/// Scans every closed fault window for the longest stretch without an `ok` client completion.
pub fn longest_stall(records: &[HistoryRecord], faults: &[FaultRecord], limit_ms: u64) -> Stall {
    let ok_times_ns: Vec<u64> = records
        .iter()
        .filter(|record| {
            record.kind == RecordType::Ok && matches!(record.process, Process::Client(_))
        })
        .map(|record| record.time)
        .collect();
    let mut worst: Option<(u64, String)> = None;
    for fault in faults {
        let Some(stop_ns) = fault.stop_ns else {
            continue;
        };
        let start_ns = fault.start_ns;
        let mut last_ns = start_ns;
        let mut longest_ns = 0;
        for time_ns in ok_times_ns
            .iter()
            .copied()
            .filter(|time_ns| (start_ns..=stop_ns).contains(time_ns))
        {
            longest_ns = longest_ns.max(time_ns - last_ns);
            last_ns = time_ns;
        }
        longest_ns = longest_ns.max(stop_ns.saturating_sub(last_ns));
        if worst.as_ref().is_none_or(|(ns, _)| longest_ns > *ns) {
            worst = Some((longest_ns, fault.kind.name().to_string()));
        }
    }
    let longest_ms = worst.as_ref().map_or(0, |(ns, _)| ns / 1_000_000);
    let fault = worst.map(|(_, kind)| kind);
    let exceeded = longest_ms > limit_ms;
    let detail = match &fault {
        Some(kind) => format!(
            "no operation completed for {:.1} s during {kind} (limit {:.1} s)",
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
}

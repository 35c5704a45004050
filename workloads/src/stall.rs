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
    let worst = longest_gap(records, fault_time(faults));
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

/// The longest stall a swarm run may show while a majority of its nodes is healthy: a few
/// election rounds (150-300 ms each) plus the clients' retries (250 ms per attempt) with a
/// wide margin. A leader that cannot hear its followers and never steps down holds up the
/// whole cluster for as long as the fault lasts.
pub const HEALTHY_QUORUM_STALL_LIMIT_MS: u64 = 4_000;

/// The longest stretch without a definite answer while progress was owed: no fault that
/// stops or slows progress by design was in force (power loss, membership changes, a node
/// rebuilt from an empty disk, apply lag, slow fsync, delay, disk faults) and a majority of
/// the `nodes` was untouched by every fault in force (not killed, paused, slowed, lossy or
/// cut off; partitions touch the nodes outside their largest side). Swarm runs check it without `--max-stall`: a liveness bug shows as a
/// healthy majority that stops answering (Raft's promise: any majority that can talk makes
/// progress). Looks up to the end of the last fault window. A stretch counts from the last
/// answer or from the last fault start that touched a node untouched just before, since a
/// new cut may rightly cost an election.
pub fn longest_stall_with_healthy_majority(
    records: &[HistoryRecord],
    faults: &[FaultRecord],
    nodes: usize,
    limit_ms: u64,
) -> Stall {
    // Membership changes and rebuilt nodes change who votes, and the names of the nodes no
    // longer say which of them make a majority: the bound ends where the first one starts.
    let membership_changes_ns = faults
        .iter()
        .filter(|fault| {
            matches!(
                fault.kind,
                crate::options::FaultKind::Membership | crate::options::FaultKind::RejoinEmpty
            )
        })
        .map(|fault| fault.start_ns)
        .min()
        .unwrap_or(u64::MAX);
    let horizon_ns = faults
        .iter()
        .filter_map(|fault| fault.stop_ns)
        .max()
        .unwrap_or(0)
        .min(membership_changes_ns);
    let mut boundaries: Vec<u64> = vec![0, horizon_ns];
    for fault in faults {
        boundaries.push(fault.start_ns.min(horizon_ns));
        boundaries.push(fault.stop_ns.unwrap_or(horizon_ns).min(horizon_ns));
    }
    boundaries.sort_unstable();
    boundaries.dedup();
    // Healthy spans, merged: (start, stop, the faults in force somewhere in the span).
    let mut spans: Vec<(u64, u64, Vec<&str>)> = Vec::new();
    let mut touched_before: Option<std::collections::BTreeSet<String>> = None;
    for pair in boundaries.windows(2) {
        let (start_ns, stop_ns) = (pair[0], pair[1]);
        let active: Vec<&FaultRecord> = faults
            .iter()
            .filter(|fault| {
                fault.start_ns <= start_ns && fault.stop_ns.is_none_or(|stop| stop > start_ns)
            })
            .collect();
        let Some(touched) = touched_nodes(&active, nodes) else {
            touched_before = None;
            continue;
        };
        // A fault that starts here on a node no fault touched just before is a new
        // disruption the cluster may need an election to get over (a chain of leader cuts
        // re-elects at every step): the stall clock restarts there. Stops only heal, and a
        // start on nodes already touched changes nothing for the healthy ones, so a span
        // goes on through them.
        let newly_touched = faults.iter().any(|fault| fault.start_ns == start_ns)
            && touched_before
                .as_ref()
                .is_some_and(|before| touched.iter().any(|node| !before.contains(node)));
        touched_before = Some(touched.clone());
        if nodes - touched.len().min(nodes) < nodes / 2 + 1 {
            continue;
        }
        let kinds: Vec<&str> = active.iter().map(|fault| fault.kind.name()).collect();
        match spans.last_mut() {
            Some(span) if span.1 == start_ns && !newly_touched => {
                span.1 = stop_ns;
                for kind in kinds {
                    if !span.2.contains(&kind) {
                        span.2.push(kind);
                    }
                }
            }
            _ => spans.push((start_ns, stop_ns, kinds)),
        }
    }
    let spans = spans.into_iter().map(|(start_ns, stop_ns, kinds)| {
        let kinds = if kinds.is_empty() {
            "no fault".to_string()
        } else {
            kinds.join("+")
        };
        (start_ns, stop_ns, kinds)
    });
    let worst = longest_gap(records, spans);
    let longest_ms = worst.as_ref().map_or(0, |(ns, _)| ns / 1_000_000);
    let fault = worst.map(|(_, kinds)| kinds);
    let exceeded = longest_ms > limit_ms;
    let detail = match &fault {
        Some(kinds) => format!(
            "no operation completed for {:.1} s while a majority of nodes was healthy (faults in force: {kinds}; limit {:.1} s)",
            longest_ms as f64 / 1e3,
            limit_ms as f64 / 1e3
        ),
        None => "never a healthy majority".to_string(),
    };
    Stall {
        limit_ms,
        longest_ms,
        fault,
        exceeded,
        detail,
    }
}

/// The nodes the faults in force touch, or None when one of them stops progress whatever
/// the nodes (every node loses power; the membership changes; a node is rebuilt empty).
fn touched_nodes(
    active: &[&FaultRecord],
    nodes: usize,
) -> Option<std::collections::BTreeSet<String>> {
    use crate::options::FaultKind;
    let all: Vec<String> = (0..nodes).map(crate::schedule::node_name).collect();
    let mut touched = std::collections::BTreeSet::new();
    for fault in active {
        match fault.kind {
            FaultKind::PowerLoss | FaultKind::Membership | FaultKind::RejoinEmpty => return None,
            // Slowness faults hold answers back by design wherever they hit (a leader that
            // applies, syncs or sends late still leads, and CheckQuorum rightly keeps it):
            // no stall bound while one is in force.
            FaultKind::ApplyLag | FaultKind::SlowFsync | FaultKind::Delay | FaultKind::Disk => {
                return None
            }
            // A leadership transfer is an ordinary operation of a healthy cluster.
            FaultKind::Transfer => {}
            FaultKind::Partition => {
                let groups: Vec<Vec<String>> = fault
                    .detail
                    .get("groups")
                    .and_then(|groups| serde_json::from_value(groups.clone()).ok())
                    .unwrap_or_default();
                match groups.iter().max_by_key(|group| group.len()) {
                    // Ring, bridge and unknown shapes: no side is whole, expect nothing.
                    Some(largest) if !largest.is_empty() => {
                        touched.extend(all.iter().filter(|name| !largest.contains(name)).cloned())
                    }
                    _ if fault.detail.get("note").is_some() => {}
                    _ => touched.extend(all.iter().cloned()),
                }
            }
            FaultKind::PartitionOneway => {
                let side = |field: &str| -> Vec<String> {
                    fault
                        .detail
                        .get(field)
                        .and_then(|names| serde_json::from_value(names.clone()).ok())
                        .unwrap_or_default()
                };
                let (from, to) = (side("from"), side("to"));
                if from.is_empty() || to.is_empty() {
                    touched.extend(all.iter().cloned());
                } else {
                    touched.extend(if from.len() < to.len() { from } else { to });
                }
            }
            _ if fault.targets.is_empty() => touched.extend(all.iter().cloned()),
            _ => touched.extend(fault.targets.iter().cloned()),
        }
    }
    Some(touched)
}

/// The longest stretch without a definite client answer (`ok`, or `fail` such as a cas whose
/// compare failed: both need a working leader) inside any of `spans` (start, stop, label),
/// counted from the span's start to its stop, with the label of its span.
fn longest_gap(
    records: &[HistoryRecord],
    spans: impl IntoIterator<Item = (u64, u64, String)>,
) -> Option<(u64, String)> {
    let answered_times_ns: Vec<u64> = records
        .iter()
        .filter(|record| {
            matches!(record.kind, RecordType::Ok | RecordType::Fail)
                && matches!(record.process, Process::Client(_))
        })
        .map(|record| record.time)
        .collect();
    let mut worst: Option<(u64, String)> = None;
    for (start_ns, stop_ns, label) in spans {
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
            worst = Some((longest_ns, label));
        }
    }
    worst
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

    fn fault(
        kind: FaultKind,
        start_s: u64,
        stop_s: u64,
        targets: &[&str],
        detail: serde_json::Value,
    ) -> FaultRecord {
        FaultRecord {
            kind,
            start_ns: start_s * 1_000_000_000,
            stop_ns: Some(stop_s * 1_000_000_000),
            targets: targets.iter().map(|t| t.to_string()).collect(),
            detail,
        }
    }

    #[test]
    fn a_stall_counts_only_while_a_majority_is_untouched_and_nothing_stops_progress_by_design() {
        // Answers at 1 s and 9 s: 8 s without one.
        let records = [record(1, RecordType::Ok), record(9, RecordType::Ok)];
        let deaf_leader = fault(
            FaultKind::PartitionOneway,
            2,
            8,
            &["n1", "n2", "n3", "n4", "n5"],
            serde_json::json!({"from": ["n2", "n3", "n4", "n5"], "to": ["n1"]}),
        );
        let stall = longest_stall_with_healthy_majority(&records, &[deaf_leader.clone()], 5, 4_000);
        assert!(stall.exceeded, "{}", stall.detail);
        // Counted from the cut (2 s), not from the last answer before it.
        assert_eq!(stall.longest_ms, 6_000, "{}", stall.detail);
        assert!(
            stall.detail.contains("partition-oneway"),
            "{}",
            stall.detail
        );
        // A majority killed: no progress is owed while it lasts (1-2 s and 8-9 s remain).
        let majority_down = fault(
            FaultKind::Kill,
            2,
            8,
            &["n1", "n2", "n3"],
            serde_json::Value::Null,
        );
        let stall = longest_stall_with_healthy_majority(&records, &[majority_down], 5, 4_000);
        assert!(!stall.exceeded, "{}", stall.detail);
        // Power loss stops everyone by design, whatever its targets.
        let power = fault(FaultKind::PowerLoss, 2, 8, &[], serde_json::Value::Null);
        assert!(!longest_stall_with_healthy_majority(&records, &[power], 5, 4_000).exceeded);
        // A two-way cut leaving a majority whole owes progress; a ring owes none.
        let halves = fault(
            FaultKind::Partition,
            2,
            8,
            &[],
            serde_json::json!({"mode": "hold-groups", "groups": [["n1", "n2"], ["n3", "n4", "n5"]]}),
        );
        assert!(longest_stall_with_healthy_majority(&records, &[halves], 5, 4_000).exceeded);
        let ring = fault(
            FaultKind::Partition,
            2,
            8,
            &[],
            serde_json::json!({"mode": "ring", "order": ["n1", "n2", "n3", "n4", "n5"]}),
        );
        assert!(!longest_stall_with_healthy_majority(&records, &[ring], 5, 4_000).exceeded);
    }

    #[test]
    fn each_new_cut_restarts_the_stall_clock_but_a_stop_does_not() {
        // A chain of leader cuts, 3 s each, and no answer from 1 s to 9 s: every cut owes
        // an election, none owes more than 4 s.
        let records = [record(1, RecordType::Ok), record(9, RecordType::Ok)];
        let cut = |start_s, stop_s, alone: &str| {
            let rest: Vec<&str> = ["n1", "n2", "n3", "n4", "n5"]
                .into_iter()
                .filter(|name| *name != alone)
                .collect();
            fault(
                FaultKind::Partition,
                start_s,
                stop_s,
                &[],
                serde_json::json!({"mode": "halves", "groups": [[alone], rest]}),
            )
        };
        let chain = [cut(2, 5, "n1"), cut(5, 8, "n2")];
        let stall = longest_stall_with_healthy_majority(&records, &chain, 5, 4_000);
        assert!(!stall.exceeded, "{}", stall.detail);
        // A fault that stops at 5 s while one cut lasts 2-8 s: the stall goes on across
        // the stop; so it does across a start on a node already cut off.
        let kill = fault(FaultKind::Kill, 2, 5, &["n5"], serde_json::Value::Null);
        let healed = [cut(2, 8, "n1"), kill];
        let stall = longest_stall_with_healthy_majority(&records, &healed, 5, 4_000);
        assert!(stall.exceeded, "{}", stall.detail);
        let pause = fault(FaultKind::Pause, 4, 6, &["n1"], serde_json::Value::Null);
        let again = [cut(2, 8, "n1"), pause];
        let stall = longest_stall_with_healthy_majority(&records, &again, 5, 4_000);
        assert_eq!(stall.longest_ms, 6_000, "{}", stall.detail);
    }
}

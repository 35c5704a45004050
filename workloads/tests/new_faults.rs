//! The faults added for issue 12 through the whole harness: each one scripted, applied,
//! healed, recorded, valid on the correct store and replayed bit-exactly (same seed, same
//! history hash); power loss stops everything and loses no acknowledged write (and catches a
//! store that acknowledges before fsync); a rebuilt node rejoins under a new identity.

use minos_checker::history::{HistoryRecord, Process, RecordType};
use minos_checker::Verdict;
use minos_node::bugs::{Bug, Bugs};
use minos_workloads::raft_store::RaftStore;
use minos_workloads::recorder::to_jsonl;
use minos_workloads::run::{evaluate, sha256_hex};
use minos_workloads::{FaultKind, RunOptions, Schedule};

fn store(options: &RunOptions) -> RaftStore {
    RaftStore::new(
        options.nodes,
        options.seed,
        options.bugs,
        options.op_timeout_ms,
    )
}

fn scripted(seed: u64, time_limit_ms: u64, schedule_json: &str) -> RunOptions {
    let mut options = RunOptions::new(seed);
    options.time_limit_ms = time_limit_ms;
    options.schedule = Some(Schedule::from_json(schedule_json, "test").unwrap());
    options.check_threads = 1;
    options
}

/// Ops invoked at or after `from_ns` and completed ok by `to_ns`.
fn ok_ops_within(records: &[HistoryRecord], from_ns: u64, to_ns: u64) -> usize {
    let mut invoked = std::collections::BTreeMap::new();
    let mut count = 0;
    for record in records {
        let Process::Client(process) = record.process else {
            continue;
        };
        match record.kind {
            RecordType::Invoke => {
                invoked.insert(process, record.time);
            }
            RecordType::Ok
                if invoked.get(&process).is_some_and(|&start| start >= from_ns)
                    && record.time <= to_ns =>
            {
                count += 1;
            }
            _ => {}
        }
    }
    count
}

/// (fault, start targets, start params) of every new fault.
const NEW_FAULTS: [(&str, &str, &str); 5] = [
    (
        "delay",
        r#"["n1","n2","n3","n4","n5"]"#,
        r#"{"base_ms": 5, "jitter_ms": 30, "spike_probability": 0.05, "spike_ms": 800}"#,
    ),
    (
        "slow-fsync",
        r#"["n1","n2","n3"]"#,
        r#"{"delay_ms": 50, "jitter_ms": 50}"#,
    ),
    ("apply-lag", "[]", r#"{"mode": "leader", "delay_ms": 500}"#),
    ("power-loss", "[]", "null"),
    ("rejoin-empty", r#"["n2"]"#, "null"),
];

#[test]
fn every_new_fault_is_applied_recorded_healed_and_replays_bit_exactly() {
    for (fault, targets, params) in NEW_FAULTS {
        // Each fault alone, then mixed with a partition and a kill.
        let schedule = format!(
            r#"[{{"at_ms": 1000, "action": "start-{fault}", "targets": {targets}, "params": {params}}},
                {{"at_ms": 2500, "action": "start-partition", "params": {{"mode": "isolate-leader"}}}},
                {{"at_ms": 3000, "action": "stop-{fault}"}},
                {{"at_ms": 3500, "action": "stop-partition"}},
                {{"at_ms": 4000, "action": "start-kill", "params": {{"mode": "leader"}}}},
                {{"at_ms": 4200, "action": "start-{fault}", "targets": {targets}, "params": {params}}}]"#
        );
        let options = scripted(17, 6_000, &schedule);
        let (verdict, causes, first, _) = evaluate(&options, store(&options)).unwrap();
        assert_eq!(verdict, Verdict::Valid, "{fault}: {causes:?}");
        assert!(first.liveness.ok, "{fault}: {:?}", first.liveness);
        let kind: FaultKind = fault.parse().unwrap();
        let records: Vec<_> = first.faults.iter().filter(|f| f.kind == kind).collect();
        assert!(!records.is_empty(), "{fault}: no fault record");
        // The second start is never stopped by the schedule: healing ends it.
        assert!(
            records.iter().all(|record| record.stop_ns.is_some()),
            "{fault}: {records:?}"
        );
        let nemesis_fs: Vec<&str> = first
            .records
            .iter()
            .filter(|r| r.process == Process::Nemesis)
            .map(|r| r.f.as_str())
            .collect();
        for f in [format!("start-{fault}"), format!("stop-{fault}")] {
            assert!(nemesis_fs.contains(&f.as_str()), "{fault}: {nemesis_fs:?}");
        }
        let (_, _, second, _) = evaluate(&options, store(&options)).unwrap();
        let (a, b) = (to_jsonl(&first.records), to_jsonl(&second.records));
        assert_eq!(
            sha256_hex(a.as_bytes()),
            sha256_hex(b.as_bytes()),
            "{fault}: same seed, different history"
        );
    }
}

#[test]
fn power_loss_stops_every_node_and_the_cluster_comes_back() {
    let options = scripted(
        23,
        5_000,
        r#"[{"at_ms": 1500, "action": "start-power-loss"},
            {"at_ms": 2500, "action": "stop-power-loss"}]"#,
    );
    let (verdict, causes, simulation, _) = evaluate(&options, store(&options)).unwrap();
    assert_eq!(verdict, Verdict::Valid, "{causes:?}");
    assert_eq!(simulation.faults.len(), 1);
    assert_eq!(
        simulation.faults[0].targets,
        ["n1", "n2", "n3", "n4", "n5"],
        "every node loses power"
    );
    assert_eq!(
        ok_ops_within(&simulation.records, 1_550_000_000, 2_450_000_000),
        0,
        "nothing completes without power"
    );
    assert!(ok_ops_within(&simulation.records, 3_000_000_000, 5_000_000_000) > 20);
}

#[test]
fn power_loss_catches_a_store_that_acknowledges_before_fsync() {
    // Lost acknowledged adds, found by the checker or by the replica invariants.
    let caught = (1..=6).any(|seed| {
        let mut options = scripted(
            seed,
            4_000,
            r#"[{"at_ms": 1700, "action": "start-power-loss"},
                {"at_ms": 2000, "action": "stop-power-loss"}]"#,
        );
        options.bugs = Bugs::NONE.with(Bug::AckBeforeFsync);
        let (verdict, _, _, _) = evaluate(&options, store(&options)).unwrap();
        verdict == Verdict::Invalid
    });
    assert!(
        caught,
        "power loss never exposed ack-before-fsync in 6 seeds"
    );
}

#[test]
fn a_node_rebuilt_on_an_empty_disk_rejoins_under_a_new_identity() {
    let options = scripted(
        29,
        8_000,
        r#"[{"at_ms": 1000, "action": "start-rejoin-empty", "targets": ["n2"]},
            {"at_ms": 2500, "action": "stop-rejoin-empty", "targets": ["n2"]},
            {"at_ms": 4000, "action": "start-kill", "targets": ["n1", "n3"]},
            {"at_ms": 5500, "action": "stop-kill"}]"#,
    );
    let (verdict, causes, simulation, _) = evaluate(&options, store(&options)).unwrap();
    assert_eq!(verdict, Verdict::Valid, "{causes:?}");
    assert!(simulation.liveness.ok, "{:?}", simulation.liveness);
    let voters: Vec<Vec<String>> = simulation
        .configurations
        .iter()
        .map(|configuration| configuration.voters.clone())
        .collect();
    // The old identity left while the node was down; the new one joined once it ran.
    assert!(
        voters.contains(&vec!["n1".into(), "n3".into(), "n4".into(), "n5".into()]),
        "{voters:?}"
    );
    let last = simulation.configurations.last().unwrap();
    // Listed by identity: the rebuilt node last.
    assert_eq!(last.voters, ["n1", "n3", "n4", "n5", "n2/id7"]);
    assert!(last.learners.is_empty());
    // With the rebuilt node a voter, two crashes leave three of five: the cluster goes on.
    assert!(ok_ops_within(&simulation.records, 4_300_000_000, 5_500_000_000) > 20);
    // A second replacement while the first is unsettled, or of a majority, is refused.
    let too_many = Schedule::from_json(
        r#"[{"at_ms": 1000, "action": "start-rejoin-empty", "targets": ["n1", "n2", "n3"]}]"#,
        "test",
    )
    .unwrap();
    let error = minos_workloads::nemesis::parse_event(&too_many.events[0], 5).unwrap_err();
    assert!(error.contains("minority"), "{error}");
}

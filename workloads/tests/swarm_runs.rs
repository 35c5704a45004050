//! Swarm schedules and whole-replica findings against the real Raft store: a swarm run's
//! written schedule (with its fired protocol-event faults) replays to the same history, and a
//! node's panic ends as an invalid verdict naming the node, message and location instead of
//! aborting the run.

use minos_checker::Verdict;
use minos_workloads::raft_store::RaftStore;
use minos_workloads::recorder::to_jsonl;
use minos_workloads::run::evaluate;
use minos_workloads::{NemesisSpec, RunOptions, Schedule};

fn store(options: &RunOptions) -> RaftStore {
    RaftStore::new(
        options.nodes,
        options.seed,
        options.bugs,
        options.op_timeout_ms,
    )
}

#[test]
fn swarm_runs_replay_bit_exactly_from_their_written_schedule() {
    let mut fired_any = false;
    for seed in [3, 11] {
        let mut options = RunOptions::new(seed);
        options.time_limit_ms = 8_000;
        options.nemesis = NemesisSpec::All;
        options.check_threads = 1;
        let (_, _, first, _) = evaluate(&options, store(&options)).unwrap();
        let (_, _, again, _) = evaluate(&options, store(&options)).unwrap();
        assert_eq!(to_jsonl(&first.records), to_jsonl(&again.records));
        let profile = first
            .schedule
            .profile
            .clone()
            .expect("a swarm run has a profile");
        assert!(!profile.kinds.is_empty());
        fired_any |= !first.fired.is_empty();
        // The written schedule holds the fired faults as plain events: replayed, it gives
        // the same history (its profile shapes the clients the same way).
        let text = first.schedule.to_json_pretty();
        let mut replay = options.clone();
        replay.schedule = Some(Schedule::from_json(&text, "schedule.json").unwrap());
        let (_, _, replayed, _) = evaluate(&replay, store(&replay)).unwrap();
        assert_eq!(
            to_jsonl(&first.records),
            to_jsonl(&replayed.records),
            "seed {seed}: the replay of schedule.json differs"
        );
        assert!(!first.final_reads.read_through.is_empty());
    }
    assert!(fired_any, "some armed fault fired in two swarm runs");
}

#[test]
fn a_node_panic_is_an_invalid_verdict_not_a_crash() {
    let mut options = RunOptions::new(5);
    options.time_limit_ms = 4_000;
    options.nemesis = NemesisSpec::None;
    options.check_threads = 1;
    let sut = store(&options).with_injected_panic(1, 1_500);
    let (verdict, causes, simulation, _) = evaluate(&options, sut).unwrap();
    assert_eq!(verdict, Verdict::Invalid);
    let cause = causes
        .iter()
        .find(|cause| cause.starts_with("node n2 panicked: injected panic (harness test) at "))
        .unwrap_or_else(|| panic!("{causes:?}"));
    assert!(cause.contains("raft_store.rs:"), "{cause}");
    // The run went on to its end with the other four nodes.
    assert!(simulation.simulated_ns >= 4_000_000_000);
    assert!(simulation.liveness.ok, "{:?}", simulation.liveness);
}

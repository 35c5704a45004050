//! The driver against the toy stores: determinism, faults recorded, liveness.

use minos_workloads::driver::simulate;
use minos_workloads::recorder::to_jsonl;
use minos_workloads::toy::{ToyMode, ToyStore};
use minos_workloads::{FaultKind, NemesisSpec, RunOptions};

fn short_options(seed: u64) -> RunOptions {
    let mut options = RunOptions::new(seed);
    options.time_limit_ms = 5_000;
    options.nemesis_interval_ms = 1_000;
    options.nemesis = NemesisSpec::List(vec![FaultKind::Partition, FaultKind::PartitionOneway]);
    options
}

#[test]
fn same_seed_gives_a_byte_identical_history() {
    let options = short_options(11);
    let first = simulate(&options, ToyStore::new(ToyMode::Primary, 5, 11)).unwrap();
    let second = simulate(&options, ToyStore::new(ToyMode::Primary, 5, 11)).unwrap();
    let text = to_jsonl(&first.records);
    assert!(first.ops_count() > 300, "{} ops", first.ops_count());
    assert_eq!(text, to_jsonl(&second.records));
    let other = simulate(&short_options(12), ToyStore::new(ToyMode::Primary, 5, 12)).unwrap();
    assert_ne!(
        text,
        to_jsonl(&other.records),
        "another seed should give another history"
    );
    assert!(first.liveness.ok, "{:?}", first.liveness);
    assert!(
        first.invariants.iter().all(|i| i.ok),
        "{:?}",
        first.invariants
    );
    assert!(
        text.contains(r#""process":"nemesis","type":"info","f":"start-partition""#),
        "{}",
        &text[..2000]
    );
    println!(
        "{}",
        first
            .node_logs
            .get("n1")
            .map(|l| &l[..l.len().min(600)])
            .unwrap_or("no n1 log")
    );
}

#[test]
fn raft_store_short_run() {
    let mut options = short_options(5);
    options.nemesis = NemesisSpec::List(vec![FaultKind::Partition, FaultKind::Kill]);
    let start = std::time::Instant::now();
    let result = simulate(
        &options,
        minos_workloads::raft_store::RaftStore::new(5, 5, Default::default(), 1000),
    )
    .unwrap();
    println!(
        "wall {:?} ops {} sim {} ms",
        start.elapsed(),
        result.ops_count(),
        result.simulated_ns / 1_000_000
    );
    println!("{:?} {:?}", result.liveness, result.invariants);
    let text = to_jsonl(&result.records);
    let oks = text.matches(r#""type":"ok""#).count();
    let infos = text.matches(r#""type":"info""#).count();
    let fails = text.matches(r#""type":"fail""#).count();
    println!("ok {oks} info {infos} fail {fails}");
    for line in text.lines().filter(|l| l.contains("nemesis")) {
        println!("{line}");
    }
}

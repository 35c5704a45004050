//! The correct Raft store under every fault it supports, over 200 seeds of short runs: not one
//! may be invalid (or undecided). Two threads, one simulation each at a time, as campaigns do.

use minos_checker::Verdict;
use minos_workloads::raft_store::RaftStore;
use minos_workloads::run::evaluate;
use minos_workloads::{NemesisSpec, RunOptions};

const SEEDS: u64 = 200;
const THREADS: u64 = 2;

fn short_run(seed: u64) -> RunOptions {
    let mut options = RunOptions::new(seed);
    options.time_limit_ms = 4_000;
    options.nemesis_interval_ms = 1_000;
    options.nemesis = NemesisSpec::All;
    options.check_threads = 1;
    options
}

#[test]
fn two_hundred_seeds_with_every_fault_are_valid() {
    let workers: Vec<_> = (0..THREADS)
        .map(|thread| {
            std::thread::spawn(move || {
                let mut failures = Vec::new();
                let mut ops = 0usize;
                let mut faults = 0usize;
                for seed in (1 + thread..=SEEDS).step_by(THREADS as usize) {
                    let options = short_run(seed);
                    let store =
                        RaftStore::new(options.nodes, seed, options.bugs, options.op_timeout_ms);
                    match evaluate(&options, store) {
                        Ok((Verdict::Valid, _, simulation, _)) => {
                            ops += simulation.ops_count();
                            faults += simulation.faults.len();
                        }
                        Ok((verdict, causes, _, check)) => failures.push(format!(
                            "seed {seed}: {} {causes:?} {}\n  {}",
                            verdict.as_str(),
                            check.explanation.unwrap_or_default(),
                            options.reproduce_command()
                        )),
                        Err(error) => failures.push(format!("seed {seed}: error {error}")),
                    }
                }
                (failures, ops, faults)
            })
        })
        .collect();
    let mut failures = Vec::new();
    let (mut ops, mut faults) = (0, 0);
    for worker in workers {
        let (worker_failures, worker_ops, worker_faults) = worker.join().expect("worker thread");
        failures.extend(worker_failures);
        ops += worker_ops;
        faults += worker_faults;
    }
    assert!(
        failures.is_empty(),
        "{} of {SEEDS} runs not valid:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // The runs did real work under real faults.
    assert!(ops > SEEDS as usize * 100, "{ops} ops");
    assert!(faults > SEEDS as usize * 2, "{faults} faults");
    println!("{SEEDS} seeds valid: {ops} ops, {faults} faults");
}

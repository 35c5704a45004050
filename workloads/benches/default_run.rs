//! Benchmark: the default `minos run` (5 nodes, 10 clients, 60 s simulated, partition,kill),
//! simulation and check, reporting wall time and the simulated/wall ratio per seed.
//! `cargo bench -p minos-workloads --bench default_run [-- SEEDS]`; `MINOS_STEP_MS` overrides
//! the simulation step.

use std::time::Instant;

use minos_workloads::driver::simulate;
use minos_workloads::raft_store::RaftStore;
use minos_workloads::run::{check_history, verdict_of};
use minos_workloads::RunOptions;

fn main() {
    let seeds: u64 = std::env::args()
        .skip(1)
        .find_map(|arg| arg.parse().ok())
        .unwrap_or(3);
    let (mut total_wall_s, mut total_sim_s) = (0.0, 0.0);
    for seed in 1..=seeds {
        let mut options = RunOptions::new(seed);
        if let Ok(step) = std::env::var("MINOS_STEP_MS") {
            options.step_ms = step.parse().expect("MINOS_STEP_MS is a number");
        }
        let start = Instant::now();
        let simulation = simulate(
            &options,
            RaftStore::new(options.nodes, seed, options.bugs, options.op_timeout_ms),
        )
        .expect("simulation");
        let simulate_s = start.elapsed().as_secs_f64();
        let check = check_history(&simulation.records, &options).expect("check");
        let wall_s = start.elapsed().as_secs_f64();
        let (verdict, causes) = verdict_of(&simulation, &check.report);
        let sim_s = simulation.simulated_ns as f64 / 1e9;
        total_wall_s += wall_s;
        total_sim_s += sim_s;
        let infos = simulation
            .records
            .iter()
            .filter(|r| r.kind == minos_checker::history::RecordType::Info)
            .count();
        println!(
            "seed {seed}: {} ops ({infos} info), {sim_s:.1} s simulated; simulate {simulate_s:.3} s + check {:.3} s = {wall_s:.3} s wall; ratio {:.0}x; {} {causes:?}",
            simulation.ops_count(),
            wall_s - simulate_s,
            sim_s / wall_s,
            verdict.as_str(),
        );
    }
    println!(
        "total: {total_sim_s:.1} s simulated in {total_wall_s:.3} s wall, ratio {:.0}x",
        total_sim_s / total_wall_s
    );
}

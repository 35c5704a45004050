//! Benchmark: the default `minos run` (5 nodes, 10 clients, 60 s simulated, partition,kill),
//! simulation alone and simulation + check, reporting wall time and the simulated/wall ratio.
//! `cargo bench -p minos-workloads --bench default_run [-- SEEDS]`

use std::time::Instant;

use minos_workloads::driver::simulate;
use minos_workloads::raft_store::RaftStore;
use minos_workloads::RunOptions;

fn main() {
    let seeds: u64 = std::env::args()
        .skip(1)
        .find_map(|arg| arg.parse().ok())
        .unwrap_or(3);
    let mut total_wall_s = 0.0;
    let mut total_sim_s = 0.0;
    for seed in 1..=seeds {
        let mut options = RunOptions::new(seed);
        if let Ok(step) = std::env::var("MINOS_STEP_MS") {
            options.step_ms = step.parse().expect("MINOS_STEP_MS is a number");
        }
        let start = Instant::now();
        let result = simulate(
            &options,
            RaftStore::new(options.nodes, seed, options.bugs, options.op_timeout_ms),
        )
        .expect("simulation");
        let simulate_s = start.elapsed().as_secs_f64();
        let sim_s = result.simulated_ns as f64 / 1e9;
        total_wall_s += simulate_s;
        total_sim_s += sim_s;
        println!(
            "seed {seed}: {} ops, {sim_s:.1} s simulated, simulate {simulate_s:.3} s wall, ratio {:.0}x",
            result.ops_count(),
            sim_s / simulate_s
        );
    }
    println!(
        "total: {total_sim_s:.1} s simulated in {total_wall_s:.3} s wall, ratio {:.0}x",
        total_sim_s / total_wall_s
    );
}

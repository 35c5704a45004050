//! `cargo bench -p minos-checker`: checks every corpus history (single-threaded, plus the kv
//! histories without partitioning) and prints per-history time and the checker's own count of
//! peak search memory.

#[path = "../tests/support/corpus.rs"]
mod corpus;

use std::time::Instant;

/// CPU time of this thread in nanoseconds (the machine is shared: wall time is noisy).
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|text| text.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn main() {
    let filter = std::env::args()
        .skip(1)
        .find(|argument| !argument.starts_with('-'));
    let Some(mut cases) = corpus::cases() else {
        eprintln!(
            "SKIPPED: corpus not found at {}",
            corpus::corpus_dir().display()
        );
        return;
    };
    // Porcupine's figures for kv c10 are without partitioning: measure that too.
    let unpartitioned: Vec<corpus::Case> = cases
        .iter()
        .filter(|case| case.file.contains("/kv/") && !case.file.contains("c50"))
        .map(|case| {
            let mut options = case.options.clone();
            options.partition = false;
            corpus::Case {
                file: format!("{} --no-partition", case.file),
                path: case.path.clone(),
                options,
                expected: case.expected.clone(),
            }
        })
        .collect();
    cases.extend(unpartitioned);
    let mut etcd_total_ms = 0.0;
    let mut etcd_total_cpu_ms = 0.0;
    let mut slowest = (0.0, String::new());
    println!(
        "{:<70} {:>8} {:>10} {:>10} {:>12} {:>12} {:>10}",
        "history", "verdict", "wall ms", "cpu ms", "states", "steps", "peak KB"
    );
    for case in cases.iter().filter(|case| {
        filter
            .as_ref()
            .is_none_or(|filter| case.file.contains(filter.as_str()))
    }) {
        let history = corpus::read(case);
        let mut options = case.options.clone();
        options.threads = 1;
        options.time_limit = Some(std::time::Duration::from_secs(120));
        let started = Instant::now();
        let cpu_started = thread_cpu_ns();
        let report =
            minos_checker::check(&history, &options).expect("corpus histories fit their models");
        let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
        let cpu_ms = thread_cpu_ns().saturating_sub(cpu_started) as f64 / 1e6;
        let states: u64 = report
            .partitions
            .iter()
            .map(|partition| partition.states_explored)
            .sum();
        let steps: u64 = report
            .partitions
            .iter()
            .map(|partition| partition.search_steps)
            .sum();
        let memory: u64 = report
            .partitions
            .iter()
            .map(|partition| partition.memory_bytes)
            .sum();
        let flag = if report.verdict.as_str() == case.expected {
            ""
        } else {
            "  <-- WRONG"
        };
        println!(
            "{:<70} {:>8} {:>10.2} {:>10.2} {:>12} {:>12} {:>10}{flag}",
            case.file,
            report.verdict.as_str(),
            elapsed_ms,
            cpu_ms,
            states,
            steps,
            memory / 1024
        );
        if case.file.contains("jepsen/etcd") {
            etcd_total_ms += elapsed_ms;
            etcd_total_cpu_ms += cpu_ms;
        }
        if elapsed_ms > slowest.0 {
            slowest = (elapsed_ms, case.file.clone());
        }
    }
    println!(
        "etcd total: {etcd_total_ms:.1} ms wall, {etcd_total_cpu_ms:.1} ms cpu; slowest history: {} ({:.1} ms wall)",
        slowest.1, slowest.0
    );
}

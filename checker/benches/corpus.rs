//! `cargo bench -p minos-checker`: checks every corpus history (single-threaded, plus the kv
//! histories without partitioning) and prints per-history time and the checker's own count of
//! peak search memory.

#[path = "../tests/support/corpus.rs"]
mod corpus;
#[path = "../tests/support/in_doubt.rs"]
mod in_doubt;

use std::time::Instant;

/// CPU time of this thread in nanoseconds (the machine is shared: wall time is noisy).
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|text| text.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// A `minos run`-like counter history: `clients` processes over `keys` keys doing add (ok
/// results carry [delta, total]), read, write and cas against a real sequential store, each op
/// taking effect between its invoke and completion; 2% of ops end in info (crashed client).
fn synthetic_counter_history(ops_count: usize, clients: u64, keys: u64, seed: u64) -> String {
    use minos_checker::history::{HistoryRecord, Process, RecordType};
    use serde_json::{json, Value};
    let mut rng = seed;
    let mut next = move |bound: u64| minos_checker::fxhash::splitmix64(&mut rng) % bound;
    let mut store = vec![0i64; keys as usize];
    // Per client slot: (process, f, key, invoke value, applied result).
    type Pending<'a> = Option<(u64, &'a str, u64, Value, Option<(RecordType, Value)>)>;
    let mut pending: Vec<Pending> = (0..clients).map(|_| None).collect();
    let mut next_process = clients;
    let mut records = Vec::new();
    let mut invoked = 0;
    let push = |records: &mut Vec<HistoryRecord>,
                process: u64,
                kind: RecordType,
                f: &str,
                key: u64,
                value: Value| {
        records.push(HistoryRecord {
            index: records.len() as u64,
            time: records.len() as u64 * 1_000_000,
            process: Process::Client(process),
            kind,
            f: f.to_string(),
            key: Some(format!("k{key}")),
            value,
        });
    };
    let mut processes: Vec<u64> = (0..clients).collect();
    while invoked < ops_count || pending.iter().any(Option::is_some) {
        let slot = next(clients) as usize;
        match pending[slot].take() {
            None if invoked < ops_count => {
                let key = next(keys);
                let (f, value) = match next(10) {
                    0..=4 => ("add", json!(1 + next(5))),
                    5..=7 => ("read", Value::Null),
                    8 => ("write", json!(next(50))),
                    _ => ("cas", json!([next(50), next(50)])),
                };
                push(
                    &mut records,
                    processes[slot],
                    RecordType::Invoke,
                    f,
                    key,
                    value.clone(),
                );
                pending[slot] = Some((processes[slot], f, key, value, None));
                invoked += 1;
            }
            None => {}
            Some((process, f, key, value, None)) => {
                let cell = &mut store[key as usize];
                let result = match f {
                    "add" => {
                        *cell += value.as_i64().unwrap();
                        (RecordType::Ok, json!([value, *cell]))
                    }
                    "read" => (RecordType::Ok, json!(*cell)),
                    "write" => {
                        *cell = value.as_i64().unwrap();
                        (RecordType::Ok, value.clone())
                    }
                    _ if *cell == value[0].as_i64().unwrap() => {
                        *cell = value[1].as_i64().unwrap();
                        (RecordType::Ok, value.clone())
                    }
                    _ => (RecordType::Fail, value.clone()),
                };
                pending[slot] = Some((process, f, key, value, Some(result)));
            }
            Some((process, f, key, value, Some((kind, result)))) => {
                if next(100) < 2 {
                    push(&mut records, process, RecordType::Info, f, key, value);
                    processes[slot] = next_process;
                    next_process += 1;
                } else {
                    push(&mut records, process, kind, f, key, result);
                }
            }
        }
    }
    records
        .iter()
        .map(|record| serde_json::to_string(record).unwrap() + "\n")
        .collect()
}

fn bench_synthetic() {
    for (ops_count, clients, keys) in [(6_000, 10, 4), (50_000, 20, 4), (20_000, 10, 1)] {
        let text = synthetic_counter_history(ops_count, clients, keys, 42);
        let history = minos_checker::history::parse_jsonl(&text, "synthetic").expect("parses");
        let mut options = minos_checker::CheckOptions::new("counter");
        options.threads = 1;
        let cpu_started = thread_cpu_ns();
        let report = minos_checker::check(&history, &options).expect("fits");
        let cpu_ms = thread_cpu_ns().saturating_sub(cpu_started) as f64 / 1e6;
        let states: u64 = report
            .partitions
            .iter()
            .map(|partition| partition.states_explored)
            .sum();
        let memory: u64 = report
            .partitions
            .iter()
            .map(|partition| partition.memory_bytes)
            .sum();
        println!(
            "synthetic counter {ops_count} ops, {clients} clients, {keys} keys: {} in {cpu_ms:.1} ms cpu, {states} states, {} KB",
            report.verdict.as_str(),
            memory / 1024
        );
    }
}

/// Many in-doubt adds on one key (see tests/in_doubt.rs), valid and with a stale read.
fn bench_in_doubt() {
    for in_doubt_count in [20, 40, 60] {
        for ending in [in_doubt::Ending::Valid, in_doubt::Ending::StaleRead] {
            let text = in_doubt::counter_history(in_doubt_count, 6, 1, ending);
            let history = minos_checker::history::parse_jsonl(&text, "in-doubt").expect("parses");
            let mut options = minos_checker::CheckOptions::new("counter");
            options.threads = 1;
            let cpu_started = thread_cpu_ns();
            let report = minos_checker::check(&history, &options).expect("fits");
            let cpu_ms = thread_cpu_ns().saturating_sub(cpu_started) as f64 / 1e6;
            let partition = &report.partitions[0];
            println!(
                "in-doubt counter {} ops, {in_doubt_count} info adds, {ending:?}: {} in {cpu_ms:.1} ms cpu, {} states, {} steps, {} KB",
                history.ops.len(),
                report.verdict.as_str(),
                partition.states_explored,
                partition.search_steps,
                report.peak_memory_bytes / 1024
            );
        }
    }
}

fn main() {
    let wanted = std::env::args()
        .skip(1)
        .find(|argument| !argument.starts_with('-'));
    if wanted
        .as_ref()
        .is_none_or(|filter| "synthetic".contains(filter.as_str()))
    {
        bench_synthetic();
    }
    if wanted
        .as_ref()
        .is_none_or(|filter| "in-doubt".contains(filter.as_str()))
    {
        bench_in_doubt();
    }
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
    // Porcupine's figures for kv c10 are without partitioning: measure that too. The c50
    // histories unpartitioned run only when asked for by name (`cargo bench -- c50`): they
    // take the whole budget.
    let c50_asked = filter
        .as_deref()
        .is_some_and(|filter| filter.contains("c50"));
    let unpartitioned: Vec<corpus::Case> = cases
        .iter()
        .filter(|case| case.file.contains("/kv/") && (c50_asked || !case.file.contains("c50")))
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
        // `minos check`'s default budget (60 s, 1 GiB), or MINOS_BENCH_TIME_LIMIT_S and
        // MINOS_BENCH_MEMORY_MB.
        let time_limit_s = std::env::var("MINOS_BENCH_TIME_LIMIT_S")
            .ok()
            .and_then(|text| text.parse().ok())
            .unwrap_or(60);
        options.time_limit = Some(std::time::Duration::from_secs(time_limit_s));
        let memory_limit_mb: u64 = std::env::var("MINOS_BENCH_MEMORY_MB")
            .ok()
            .and_then(|text| text.parse().ok())
            .unwrap_or(1024);
        options.memory_limit_bytes = Some(memory_limit_mb * 1024 * 1024);
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
        let flag = match report.verdict.as_str() {
            verdict if verdict == case.expected => String::new(),
            "unknown" => format!(
                "  <-- unknown ({})",
                report.unknown_reason.as_deref().unwrap_or("budget")
            ),
            _ => "  <-- WRONG".to_string(),
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

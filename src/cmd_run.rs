//! `minos run`: one simulated test run (DESIGN.md §1). Parses the options, picks a seed when
//! none is given (the only non-seeded randomness in Minos), calls `minos_workloads::run`,
//! prints the verdict and, last, the command that replays the run bit-exactly.

use std::path::PathBuf;

use clap::Args;
use minos_checker::Verdict;
use minos_node::bugs::{Bug, Bugs};
use minos_workloads::options::{parse_duration_ms, ReadMode, SystemKind};
use minos_workloads::{KeyDistribution, NemesisSpec, RunOptions, Schedule, Workload};

use crate::exit;

#[derive(Args)]
pub struct RunArgs {
    /// Seed of the run [default: random, always printed]; a campaign takes --seeds instead.
    #[arg(long)]
    pub(crate) seed: Option<u64>,
    /// Cluster size.
    #[arg(long, default_value_t = 5)]
    nodes: usize,
    /// Concurrent client processes.
    #[arg(long, default_value_t = 10)]
    clients: usize,
    /// Keys the workload spreads over ("k0".."k{N-1}").
    #[arg(long, default_value_t = 4)]
    keys: usize,
    /// Simulated length of the workload and fault window (e.g. 60s, 500ms, 2m).
    #[arg(long, default_value = "60s", value_parser = parse_duration_ms)]
    time_limit: u64,
    /// Target operations per second, all clients together.
    #[arg(long, default_value_t = 100.0)]
    rate: f64,
    /// counter | register | cas-register | mixed
    #[arg(long, default_value = "counter")]
    workload: Workload,
    /// uniform | skewed (Zipf-like hot keys)
    #[arg(long, default_value = "uniform")]
    key_distribution: KeyDistribution,
    /// none | all (a swarm profile drawn per seed: fault kinds, intensity, targets, timing
    /// relative to protocol events, client timeouts) | comma list of partition,
    /// partition-oneway, kill, pause, clock, loss, duplicate, reorder, delay, disk, slow-fsync,
    /// apply-lag, power-loss, rejoin-empty, membership, transfer [default: partition,kill
    /// for `run` and for real systems; all (swarm) for `campaign` on the simulated store]
    #[arg(long)]
    pub(crate) nemesis: Option<NemesisSpec>,
    /// Time between fault windows.
    #[arg(long, default_value = "10s", value_parser = parse_duration_ms)]
    nemesis_interval: u64,
    /// A scripted fault schedule (JSON list of {at_ms, action, targets, params}, as in a run
    /// dir's schedule.json or written by `minos shrink`); replaces the generated one.
    #[arg(long)]
    schedule: Option<PathBuf>,
    /// A planted bug to switch on (repeatable; see `minos selftest`).
    #[arg(long = "bug", value_name = "NAME")]
    bugs: Vec<Bug>,
    /// Where run directories go.
    #[arg(long, default_value = "store")]
    out: PathBuf,
    /// Skip the HTML/PNG/SVG report and timeline (history, results, logs, latency.csv and
    /// junit.xml are still written).
    #[arg(long)]
    no_report: bool,
    /// The system under test: raft (the simulated store, default), etcd (a real etcd cluster,
    /// needs root, etcd-server and nftables), or a toy store (toy-primary, toy-follower-reads).
    #[arg(long, default_value = "raft")]
    system: SystemKind,
    /// How reads are served: read-index (default; a quorum-confirmed linearizable read),
    /// lease, log (through the log), or stale (the contacted node answers alone, follower or
    /// not: may be stale, a control the checker must catch). etcd offers read-index and stale
    /// (its names linearizable and serializable are accepted), nats read-index only.
    #[arg(long, default_value = "read-index")]
    read_mode: ReadMode,
    /// Raft store: entries per AppendEntries [default: the node's, 64]; selftest's
    /// commit-old-term profile sets 1 (replay lines carry it).
    #[arg(long)]
    max_append_entries: Option<usize>,
    /// Also invalid ("no progress during faults") when no operation completes for this long
    /// inside a fault window (e.g. 3s); selftest's liveness profiles set it (replay lines carry
    /// it).
    #[arg(long, value_parser = parse_duration_ms)]
    max_stall: Option<u64>,
}

/// A seed from the operating system's randomness: the one place Minos is not seeded.
fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    // Seeds stay below 2^53 so that every JSON reader keeps them exact.
    hasher.finish() & ((1 << 53) - 1)
}

/// The wall-clock date for the run id, `YYYYMMDDTHHMMSS` (UTC). Not part of the history.
fn run_date() -> String {
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or(0);
    let (days, day_seconds) = (seconds / 86_400, seconds % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}",
        day_seconds / 3600,
        day_seconds / 60 % 60,
        day_seconds % 60
    )
}

pub(crate) fn options_from(args: RunArgs) -> Result<RunOptions, String> {
    let mut options = RunOptions::new(args.seed.unwrap_or_else(random_seed));
    options.nodes = args.nodes;
    options.clients = args.clients;
    options.keys = args.keys;
    options.time_limit_ms = args.time_limit;
    options.rate_ops_per_s = args.rate;
    options.workload = args.workload;
    options.key_distribution = args.key_distribution;
    if let Some(nemesis) = args.nemesis {
        options.nemesis = nemesis;
    }
    options.nemesis_interval_ms = args.nemesis_interval;
    if let Some(path) = args.schedule {
        options.schedule = Some(Schedule::read_file(&path)?);
        options.schedule_path = Some(path);
    }
    options.bugs = args.bugs.into_iter().fold(Bugs::NONE, Bugs::with);
    options.out_dir = args.out;
    options.no_report = args.no_report;
    options.system = args.system;
    options.read_mode = args.read_mode;
    options.max_append_entries = args.max_append_entries;
    options.max_stall_ms = args.max_stall;
    options.run_date = Some(run_date());
    // Node log verbosity is not a run option: it never changes the history.
    if let Ok(level) = std::env::var("MINOS_NODE_LOG") {
        options.node_log_level = level.parse().map_err(|_| {
            format!("MINOS_NODE_LOG={level:?}: expected error, warn, info, debug or trace")
        })?;
    }
    options.validate()?;
    Ok(options)
}

/// The single place where `minos run` writes the HTML/PNG report of a run directory.
/// Writes the run's HTML/PNG/CSV/JUnit report and refreshes the store's index page.
fn write_report(run_dir: &std::path::Path, store_dir: &std::path::Path) -> Result<(), String> {
    minos_reports::write_run_report(run_dir).map_err(|error| error.to_string())?;
    minos_reports::write_store_index(store_dir).map_err(|error| error.to_string())
}

pub fn main(args: RunArgs) -> i32 {
    let options = match options_from(args) {
        Ok(options) => options,
        Err(error) => {
            eprintln!("minos run: {error}");
            return exit::BAD_INPUT;
        }
    };
    // A store that cannot be written is a bad argument, found before the simulation runs.
    if let Err(error) = std::fs::create_dir_all(&options.out_dir) {
        eprintln!(
            "minos run: --out {}: cannot create the store directory: {error}",
            options.out_dir.display()
        );
        return exit::BAD_INPUT;
    }
    if let Some(schedule) = &options.schedule {
        let late_count = schedule
            .events
            .iter()
            .filter(|event| event.at_ms >= options.time_limit_ms)
            .count();
        if late_count > 0 {
            eprintln!(
                "minos run: warning: {late_count} schedule events at or after --time-limit {} are not applied",
                minos_workloads::options::format_duration_ms(options.time_limit_ms)
            );
        }
    }
    let nemesis = match &options.schedule_path {
        Some(path) => format!("from schedule {}", path.display()),
        None => options.nemesis.as_arg(),
    };
    let clock = if options.system.is_real() {
        format!(
            "real {} cluster, {} reads, real time (not bit-exactly replayable)",
            options.system.name(),
            options.read_mode.name()
        )
    } else {
        "simulated".to_string()
    };
    println!(
        "minos run: seed {}, {} nodes, {} clients, {} keys, workload {}, nemesis {nemesis}, {} {clock}",
        options.seed,
        options.nodes,
        options.clients,
        options.keys,
        options.workload,
        minos_workloads::options::format_duration_ms(options.time_limit_ms)
    );
    let outcome = match minos_workloads::run(&options) {
        Ok(outcome) => outcome,
        Err(error) => {
            eprintln!("minos run: {error}");
            if error.is_bad_input() {
                return exit::BAD_INPUT;
            }
            if matches!(error, minos_workloads::RunError::Interrupted) {
                return exit::INTERRUPTED;
            }
            println!("{}", options.reproduce_command());
            return exit::INTERNAL;
        }
    };
    let written = if options.no_report {
        minos_reports::write_run_exports(&outcome.run_dir).map_err(|error| error.to_string())
    } else {
        write_report(&outcome.run_dir, &options.out_dir)
    };
    if let Err(error) = written {
        eprintln!("minos run: report not written: {error}");
    }
    if let Some(explanation) = &outcome.explanation {
        println!("{explanation}");
    }
    if let Some(violation) = outcome.results["real"]["violation"].as_object() {
        let faults: Vec<String> = violation["faults_active"]
            .as_array()
            .map(|faults| {
                faults
                    .iter()
                    .map(|fault| {
                        format!(
                            "{} {}",
                            fault["kind"].as_str().unwrap_or("?"),
                            fault["detail"]
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        println!(
            "faults in force during the violation (t = {} ms): {}",
            violation["window_ms"],
            if faults.is_empty() {
                "none".to_string()
            } else {
                faults.join("; ")
            }
        );
    }
    let ratio = if outcome.wall_ms == 0 {
        f64::INFINITY
    } else {
        outcome.simulated_ms as f64 / outcome.wall_ms as f64
    };
    if let Some(real) = outcome.results["real"].as_object() {
        println!(
            "{} ops, {:.1} s of real-time workload in {:.2} s wall (cluster start {} ms, {} ops/s, {} ok/s, check {} ms)",
            outcome.ops_count,
            outcome.simulated_ms as f64 / 1e3,
            outcome.wall_ms as f64 / 1e3,
            real["cluster_start_ms"],
            real["ops_per_s"],
            real["ok_ops_per_s"],
            outcome.check_ms
        );
    } else {
        println!(
            "{} ops, {:.1} s simulated in {:.2} s wall ({ratio:.0}x real time, check {} ms)",
            outcome.ops_count,
            outcome.simulated_ms as f64 / 1e3,
            outcome.wall_ms as f64 / 1e3,
            outcome.check_ms
        );
    }
    println!("history sha256 {}", outcome.history_sha256);
    println!("run dir {}", outcome.run_dir.display());
    let verdict = outcome.verdict.as_str();
    if outcome.causes.is_empty() {
        println!("verdict: {verdict}");
    } else {
        println!("verdict: {verdict} ({})", outcome.causes.join(", "));
    }
    println!("{}", outcome.reproduce);
    match outcome.verdict {
        Verdict::Valid => exit::VALID,
        Verdict::Invalid => exit::INVALID,
        Verdict::Unknown => exit::UNKNOWN,
    }
}

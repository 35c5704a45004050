//! One complete run: simulate, check the history for linearizability, combine with the
//! invariants and liveness into a verdict, and write the run directory (history.jsonl,
//! history.csv, schedule.json, results.json, nodes/<n>.log). Callable from many threads at
//! once (one simulation per thread): no global state.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use minos_checker::history::{HistoryRecord, Process};
use minos_checker::{CheckOptions, CheckReport, Verdict};
use serde::Serialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::driver::{simulate, SimulationResult};
use crate::options::{RunOptions, Workload};
use crate::output::{create_run_dir, update_latest_links, write_atomic};
use crate::recorder::{to_csv, to_jsonl};
use crate::sut::SystemUnderTest;
use crate::workload::mixed_key_is_counter;
use crate::RunError;

/// What a run concluded, and where it wrote it.
#[derive(Clone, Debug)]
pub struct RunOutcome {
    pub verdict: Verdict,
    /// Why the run is not valid: "linearizability", "no progress", "invariant: ...".
    pub causes: Vec<String>,
    pub run_dir: PathBuf,
    pub run_id: String,
    pub test_name: String,
    pub history_sha256: String,
    pub ops_count: usize,
    /// The checker's plain-text explanation when invalid or unknown.
    pub explanation: Option<String>,
    pub reproduce: String,
    pub simulated_ms: u64,
    pub wall_ms: u64,
    pub check_ms: u64,
    /// The full results.json document.
    pub results: Value,
}

/// The linearizability check of a recorded history, per the workload's model(s).
pub struct HistoryCheck {
    pub report: CheckReport,
    pub explanation: Option<String>,
}

fn model_check(
    records: &[&HistoryRecord],
    model: &str,
    options: &RunOptions,
    source: &str,
) -> Result<CheckReport, RunError> {
    let owned: Vec<HistoryRecord> = records.iter().map(|record| (*record).clone()).collect();
    let history = minos_checker::history::parse_jsonl(&to_jsonl(&owned), source)
        .map_err(|error| RunError::Checker(format!("our own history does not parse: {error}")))?;
    let mut check_options = CheckOptions::new(model);
    check_options.init = Some(json!(0));
    check_options.time_limit = Some(Duration::from_millis(options.check_time_limit_ms));
    if options.check_threads > 0 {
        check_options.threads = options.check_threads;
    }
    minos_checker::check(&history, &check_options)
        .map_err(|error| RunError::Checker(error.to_string()))
}

/// Checks `records` with the model of the workload; the mixed workload checks its counter
/// keys and its register keys separately and merges the two reports.
pub fn check_history(
    records: &[HistoryRecord],
    options: &RunOptions,
) -> Result<HistoryCheck, RunError> {
    let all: Vec<&HistoryRecord> = records.iter().collect();
    let report = match options.workload {
        Workload::Counter => model_check(&all, "counter", options, "history.jsonl")?,
        Workload::Register => model_check(&all, "register", options, "history.jsonl")?,
        Workload::CasRegister => model_check(&all, "cas-register", options, "history.jsonl")?,
        Workload::Mixed => {
            let is_counter = |record: &&HistoryRecord| {
                record.process == Process::Nemesis
                    || record.key.as_deref().is_some_and(mixed_key_is_counter)
            };
            let is_register = |record: &&HistoryRecord| {
                record.process == Process::Nemesis
                    || !record.key.as_deref().is_some_and(mixed_key_is_counter)
            };
            let counters: Vec<&HistoryRecord> = all.iter().copied().filter(is_counter).collect();
            let registers: Vec<&HistoryRecord> = all.iter().copied().filter(is_register).collect();
            let counter_report = model_check(
                &counters,
                "counter",
                options,
                "history.jsonl (counter keys)",
            )?;
            let register_report = model_check(
                &registers,
                "cas-register",
                options,
                "history.jsonl (register keys)",
            )?;
            merge_reports(counter_report, register_report)
        }
    };
    let explanation = (report.verdict != Verdict::Valid).then(|| report.explanation_text());
    Ok(HistoryCheck {
        report,
        explanation,
    })
}

fn merge_reports(first: CheckReport, second: CheckReport) -> CheckReport {
    let verdict = match (first.verdict, second.verdict) {
        (Verdict::Invalid, _) | (_, Verdict::Invalid) => Verdict::Invalid,
        (Verdict::Unknown, _) | (_, Verdict::Unknown) => Verdict::Unknown,
        _ => Verdict::Valid,
    };
    let mut partitions = first.partitions;
    partitions.extend(second.partitions);
    partitions.sort_by(|a, b| a.key.cmp(&b.key));
    CheckReport {
        verdict,
        model: format!("{}+{}", first.model, second.model),
        ops_count: first.ops_count + second.ops_count,
        partitions,
        unknown_reason: first.unknown_reason.or(second.unknown_reason),
        cut_phase: first.cut_phase.or(second.cut_phase),
        counterexample: first.counterexample.or(second.counterexample),
        elapsed_ms: first.elapsed_ms + second.elapsed_ms,
        peak_memory_bytes: first.peak_memory_bytes.max(second.peak_memory_bytes),
    }
}

/// results.json, in the order of INTERFACES.md (fields may be added, never renamed).
#[derive(Serialize)]
struct Results<'a> {
    minos_version: &'static str,
    test_name: &'a str,
    run_id: &'a str,
    seed: u64,
    system: &'static str,
    options: ResultOptions,
    verdict: &'static str,
    causes: &'a [String],
    checker: &'a CheckReport,
    invariants: &'a [crate::invariants::InvariantResult],
    liveness: &'a crate::driver::Liveness,
    /// With `--max-stall`: the longest stretch without progress inside a fault window.
    #[serde(skip_serializing_if = "Option::is_none")]
    stall: Option<&'a crate::stall::Stall>,
    faults: &'a [crate::nemesis::FaultRecord],
    /// False for real clusters: the same options give the same ops and planned schedule,
    /// not the same history.
    replayable: bool,
    /// Real clusters only: system version, timings, memory, the schedule as applied.
    #[serde(skip_serializing_if = "Option::is_none")]
    real: Option<&'a Value>,
    /// Configurations the leaders reported (membership faults only).
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    configurations: &'a [crate::sut::ConfigurationChange],
    /// Swarm runs (`--nemesis all`): the drawn profile and the armed faults that fired.
    #[serde(skip_serializing_if = "Option::is_none")]
    swarm: Option<SwarmSummary<'a>>,
    /// What the clients saw in each fault window: did the faults bite?
    fault_effects: &'a crate::bite::FaultEffects,
    /// The reads of every key through each node in turn after the faults healed.
    final_reads: &'a crate::driver::FinalReadsSummary,
    /// Reads the harness aimed at deposed leaders that still believed they led.
    #[serde(skip_serializing_if = "crate::driver::DeposedLeaderReads::is_empty")]
    deposed_leader_reads: &'a crate::driver::DeposedLeaderReads,
    schedule_file: &'static str,
    history: HistorySummary<'a>,
    timings: Timings,
    reproduce: &'a str,
}

#[derive(Serialize)]
struct SwarmSummary<'a> {
    profile: &'a crate::swarm::SwarmProfile,
    fired: &'a [crate::swarm::Fired],
}

#[derive(Serialize)]
struct ResultOptions {
    nodes: usize,
    clients: usize,
    keys: usize,
    time_limit_ms: u64,
    rate_ops_per_s: f64,
    workload: &'static str,
    key_distribution: &'static str,
    /// The faults the run used (`all` expanded to what the store supports).
    nemesis: Vec<&'static str>,
    /// `--nemesis` as given.
    nemesis_arg: String,
    nemesis_supported: Vec<&'static str>,
    nemesis_interval_ms: u64,
    schedule: Option<String>,
    bugs: Vec<String>,
    op_timeout_ms: u64,
    liveness_timeout_ms: u64,
    step_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_append_entries: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_stall_ms: Option<u64>,
    read_mode: &'static str,
}

#[derive(Serialize)]
struct HistorySummary<'a> {
    file: &'static str,
    sha256: &'a str,
    ops_count: usize,
}

#[derive(Serialize)]
struct Timings {
    simulated_ms: u64,
    wall_ms: u64,
    simulate_ms: u64,
    check_ms: u64,
    sim_to_wall_ratio: f64,
}

/// Runs `sut` under `options` and writes the run directory.
pub fn run_system<S: SystemUnderTest + 'static>(
    options: &RunOptions,
    sut: S,
) -> Result<RunOutcome, RunError> {
    // Wall-clock time is measured for the report only; it never enters the simulation.
    let wall_start = Instant::now();
    let simulation = simulate(options, sut)?;
    let simulate_ms = wall_start.elapsed().as_millis() as u64;
    let check_start = Instant::now();
    let check = check_history(&simulation.records, options)?;
    let check_ms = check_start.elapsed().as_millis() as u64;
    let wall_ms = wall_start.elapsed().as_millis() as u64;
    write_run(options, simulation, check, simulate_ms, check_ms, wall_ms)
}

/// The overall verdict and its causes: invalid if the checker, an invariant or liveness
/// failed; otherwise the checker's verdict (valid, or unknown when its budget ran out).
pub fn verdict_of(simulation: &SimulationResult, report: &CheckReport) -> (Verdict, Vec<String>) {
    let mut causes = Vec::new();
    if report.verdict == Verdict::Invalid {
        causes.push("linearizability".to_string());
    }
    for invariant in simulation
        .invariants
        .iter()
        .filter(|invariant| !invariant.ok)
    {
        causes.push(format!("invariant: {}", invariant.name));
    }
    causes.extend(simulation.node_findings.iter().cloned());
    if !simulation.liveness.ok {
        causes.push("no progress".to_string());
    }
    if simulation
        .stall
        .as_ref()
        .is_some_and(|stall| stall.exceeded)
    {
        causes.push(crate::stall::CAUSE.to_string());
    }
    let verdict = if causes.is_empty() {
        report.verdict
    } else {
        Verdict::Invalid
    };
    (verdict, causes)
}

/// Simulates and checks without writing anything: the verdict, its causes and the
/// simulation (for tests and campaigns that keep only failures).
pub fn evaluate<S: SystemUnderTest + 'static>(
    options: &RunOptions,
    sut: S,
) -> Result<(Verdict, Vec<String>, SimulationResult, HistoryCheck), RunError> {
    let simulation = simulate(options, sut)?;
    let check = check_history(&simulation.records, options)?;
    let (verdict, causes) = verdict_of(&simulation, &check.report);
    Ok((verdict, causes, simulation, check))
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

fn write_run(
    options: &RunOptions,
    simulation: SimulationResult,
    check: HistoryCheck,
    simulate_ms: u64,
    check_ms: u64,
    wall_ms: u64,
) -> Result<RunOutcome, RunError> {
    write_run_in(
        options,
        simulation,
        check,
        simulate_ms,
        check_ms,
        wall_ms,
        None,
    )
}

/// A real-cluster run: its run directory exists already (it holds the servers' data dirs
/// and logs), and results.json gains a `real` section.
pub(crate) struct RealRun {
    pub run_dir: PathBuf,
    pub run_id: String,
    pub real: Value,
}

/// Writes the run directory (a new one, or the real run's own).
pub(crate) fn write_run_in(
    options: &RunOptions,
    simulation: SimulationResult,
    check: HistoryCheck,
    simulate_ms: u64,
    check_ms: u64,
    wall_ms: u64,
    real_run: Option<RealRun>,
) -> Result<RunOutcome, RunError> {
    let history_text = to_jsonl(&simulation.records);
    let history_sha256 = sha256_hex(history_text.as_bytes());
    let ops_count = simulation.ops_count();

    let (verdict, causes) = verdict_of(&simulation, &check.report);
    let fault_effects = crate::bite::fault_effects(
        &simulation.records,
        &simulation.faults,
        simulation.simulated_ns,
    );

    let test_name = options.test_name();
    let run_id = format!(
        "{}-seed{}",
        options.run_date.as_deref().unwrap_or("sim"),
        options.seed
    );
    let io = |error: std::io::Error| RunError::Output(error.to_string());
    let (run_dir, run_id, real) = match real_run {
        Some(real_run) => (real_run.run_dir, real_run.run_id, Some(real_run.real)),
        None => {
            let (run_dir, run_id) =
                create_run_dir(&options.out_dir, &test_name, &run_id).map_err(io)?;
            (run_dir, run_id, None)
        }
    };
    let reproduce = reproduce_from(options, &run_dir);
    let simulated_ms = simulation.simulated_ns / 1_000_000;
    let timings = Timings {
        simulated_ms,
        wall_ms,
        simulate_ms,
        check_ms,
        sim_to_wall_ratio: if wall_ms == 0 {
            simulated_ms as f64
        } else {
            (simulated_ms as f64 / wall_ms as f64 * 10.0).round() / 10.0
        },
    };
    let results = Results {
        minos_version: env!("CARGO_PKG_VERSION"),
        test_name: &test_name,
        run_id: &run_id,
        seed: options.seed,
        system: simulation.system_name,
        options: ResultOptions {
            nodes: options.nodes,
            clients: options.clients,
            keys: options.keys,
            time_limit_ms: options.time_limit_ms,
            rate_ops_per_s: options.rate_ops_per_s,
            workload: options.workload.name(),
            key_distribution: options.key_distribution.name(),
            nemesis: simulation
                .nemesis_kinds
                .iter()
                .map(|kind| kind.name())
                .collect(),
            nemesis_arg: options.nemesis.as_arg(),
            nemesis_supported: simulation
                .supported_faults
                .iter()
                .map(|kind| kind.name())
                .collect(),
            nemesis_interval_ms: options.nemesis_interval_ms,
            schedule: options
                .schedule_path
                .as_ref()
                .map(|path| path.display().to_string()),
            bugs: options.bug_names(),
            op_timeout_ms: options.op_timeout_ms,
            liveness_timeout_ms: options.liveness_timeout_ms,
            step_ms: options.step_ms,
            max_append_entries: options.max_append_entries,
            max_stall_ms: options.max_stall_ms,
            read_mode: options.read_mode.name(),
        },
        verdict: verdict.as_str(),
        causes: &causes,
        checker: &check.report,
        invariants: &simulation.invariants,
        liveness: &simulation.liveness,
        stall: simulation.stall.as_ref(),
        faults: &simulation.faults,
        replayable: real.is_none(),
        real: real.as_ref(),
        configurations: &simulation.configurations,
        swarm: simulation
            .schedule
            .profile
            .as_ref()
            .map(|profile| SwarmSummary {
                profile,
                fired: &simulation.fired,
            }),
        fault_effects: &fault_effects,
        final_reads: &simulation.final_reads,
        deposed_leader_reads: &simulation.deposed_leader_reads,
        schedule_file: "schedule.json",
        history: HistorySummary {
            file: "history.jsonl",
            sha256: &history_sha256,
            ops_count,
        },
        timings,
        reproduce: &reproduce,
    };

    write_atomic(&run_dir.join("history.jsonl"), history_text.as_bytes()).map_err(io)?;
    let csv = to_csv(&simulation.records).map_err(|error| RunError::Output(error.to_string()))?;
    write_atomic(&run_dir.join("history.csv"), &csv).map_err(io)?;
    write_atomic(
        &run_dir.join("schedule.json"),
        simulation.schedule.to_json_pretty().as_bytes(),
    )
    .map_err(io)?;
    let nodes_dir = run_dir.join("nodes");
    std::fs::create_dir_all(&nodes_dir).map_err(io)?;
    for node in 0..options.nodes {
        let name = crate::schedule::node_name(node);
        let path = nodes_dir.join(format!("{name}.log"));
        // A real server wrote its own log there already.
        if real.is_some() && path.exists() {
            continue;
        }
        let text = simulation
            .node_logs
            .get(&name)
            .map(String::as_str)
            .unwrap_or("");
        write_atomic(&path, text.as_bytes()).map_err(io)?;
    }
    let mut results_text =
        serde_json::to_string_pretty(&results).expect("results always serialize");
    results_text.push('\n');
    let results_value = serde_json::to_value(&results).expect("results always serialize");
    write_atomic(&run_dir.join("results.json"), results_text.as_bytes()).map_err(io)?;
    update_latest_links(&options.out_dir, &test_name, &run_id).map_err(io)?;

    Ok(RunOutcome {
        verdict,
        causes,
        run_dir,
        run_id,
        test_name,
        history_sha256,
        ops_count,
        explanation: check.explanation,
        reproduce,
        simulated_ms,
        wall_ms,
        check_ms,
        results: results_value,
    })
}

/// The command that replays this run. A scripted schedule is named by the copy in the run
/// dir (the file the run was given may be relative, edited or overwritten later by a second
/// shrink, and a selftest's schedule exists only there), relative to the run dir, so the
/// command runs inside it (`RunOptions::reproduce_in_run_dir`) and still works when the run
/// dir is copied elsewhere.
fn reproduce_from(options: &RunOptions, run_dir: &Path) -> String {
    if options.schedule.is_none() {
        return options.reproduce_command();
    }
    options.reproduce_in_run_dir(run_dir)
}

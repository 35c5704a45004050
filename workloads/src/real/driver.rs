//! The real-time driver: plans the schedule exactly as simulated runs do (the same generator,
//! the same parser), starts the cluster, runs client processes on a single-threaded tokio
//! runtime against real sockets at the configured rate, applies each fault at its time (real
//! signals, real nftables rules), heals, measures liveness, records the history with the
//! shared recorder, and hands it to the shared checker and run-directory writer.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::rc::Rc;
use std::time::{Duration, Instant};

use minos_checker::history::RecordType;
use rand::Rng;
use serde_json::{json, Value};

use super::cluster::Cluster;
use super::faults::{FaultLog, RealNemesis};
use super::guard::{interrupted, Guard};
use super::netns::Network;
use super::nft::{Filter, Firewall};
use super::{sys, Adapter};
use crate::driver::{resolve_nemesis, stream_rng, Liveness, SimulationResult};
use crate::nemesis::{parse_event, Action, FaultRecord, PartitionShape};
use crate::options::{FaultKind, RunOptions};
use crate::output::create_run_dir;
use crate::recorder::Recorder;
use crate::schedule::{self, node_name, FaultEvent, Schedule};
use crate::sut::{OpReply, SutClient};
use crate::workload::{Generator, Op};
use crate::{RunError, RunOutcome};

/// How long a cluster may take to start and accept its first writes.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How often the driver looks at the clock, the processes and the interrupt flag.
const TICK: Duration = Duration::from_millis(10);
/// While liveness is probed, clients issue an op at least this often.
const LIVENESS_PROBE: Duration = Duration::from_millis(100);

/// A planned action: when, what, and the event it came from.
struct Planned {
    at_ms: u64,
    kind: FaultKind,
    action: Action,
    event: FaultEvent,
}

/// The schedule of the run (generated from the seed as for simulated runs, or scripted) and
/// its parsed actions; a fault real processes cannot take is refused by name.
fn plan(
    options: &RunOptions,
    supported: &BTreeSet<FaultKind>,
    system: &str,
) -> Result<(Schedule, Vec<FaultKind>, Vec<Planned>), RunError> {
    let mut kinds = resolve_nemesis(&options.nemesis, supported, system)?;
    let schedule = match &options.schedule {
        Some(schedule) => {
            schedule
                .validate_targets(options.nodes)
                .map_err(RunError::BadOptions)?;
            kinds = schedule.kinds();
            schedule.clone()
        }
        None => schedule::generate(
            &kinds,
            options.nodes,
            options.time_limit_ms,
            options.nemesis_interval_ms,
            &mut stream_rng(options.seed, "schedule", 0),
        ),
    };
    let refuse = |fault: FaultKind| RunError::UnsupportedFault {
        fault,
        system: format!("real {system}"),
        supported: supported
            .iter()
            .map(|kind| kind.name())
            .collect::<Vec<_>>()
            .join(", "),
    };
    let mut planned = Vec::new();
    for (position, event) in schedule.events.iter().enumerate() {
        let (kind, action) = parse_event(event, options.nodes).map_err(|error| {
            RunError::BadOptions(format!(
                "schedule event {position} ({}): {error}",
                event.action
            ))
        })?;
        if !supported.contains(&kind) {
            return Err(refuse(kind));
        }
        if action == Action::StartPartition(PartitionShape::HoldLeader) {
            return Err(RunError::BadOptions(format!(
                "schedule event {position}: partition mode hold-leader queues messages and releases them later, which nftables cannot do to real processes; use isolate-leader"
            )));
        }
        planned.push(Planned {
            at_ms: event.at_ms,
            kind,
            action,
            event: event.clone(),
        });
    }
    Ok((schedule, kinds, planned))
}

/// State shared by the driver and the client tasks (one thread).
struct Shared {
    start: Instant,
    recorder: Recorder,
    stop: bool,
    heal_at_ns: Option<u64>,
    first_update_after_heal_ns: Option<u64>,
    in_flight: usize,
    next_process: u64,
    healed: Rc<tokio::sync::Notify>,
}

impl Shared {
    fn now_ns(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    fn probing_liveness(&self) -> bool {
        self.heal_at_ns.is_some() && self.first_update_after_heal_ns.is_none()
    }
}

struct ClientParams {
    seed: u64,
    period_ns: u64,
    op_timeout: Duration,
    generator: Generator,
    nodes: usize,
}

async fn client_worker<A: Adapter>(
    worker: usize,
    adapter: Rc<A>,
    network: Rc<Network>,
    shared: Rc<RefCell<Shared>>,
    params: Rc<ClientParams>,
) {
    let mut rng = stream_rng(params.seed, "client", worker as u64);
    let mut process = worker as u64;
    let node = worker % params.nodes;
    let mut client = adapter.client(&network, node);
    let mut next_ns = rng.random_range(0..params.period_ns.max(1));
    loop {
        let now = shared.borrow().now_ns();
        if shared.borrow().probing_liveness() {
            next_ns = next_ns.min(now + LIVENESS_PROBE.as_nanos() as u64);
        }
        if next_ns > now {
            let healed = shared.borrow().healed.clone();
            tokio::select! {
                biased;
                _ = healed.notified() => {}
                _ = tokio::time::sleep(Duration::from_nanos(next_ns - now)) => {}
            }
        }
        if shared.borrow().stop {
            return;
        }
        let op = params.generator.next_op(&mut rng);
        let invoke_ns = {
            let mut shared = shared.borrow_mut();
            // The time is read under the recorder's borrow: records are in real-time order.
            let invoke_ns = shared.now_ns();
            shared
                .recorder
                .invoke(invoke_ns, process, op.f(), op.key(), op.invoke_value());
            shared.in_flight += 1;
            invoke_ns
        };
        let reply = match tokio::time::timeout(params.op_timeout, client.invoke(&op)).await {
            Ok(reply) => reply,
            // A read changes nothing: unanswered, it certainly did not happen as far as the
            // model is concerned. A write may still take effect.
            Err(_) if matches!(op, Op::Read { .. }) => OpReply::Fail(format!(
                "no answer within {} ms",
                params.op_timeout.as_millis()
            )),
            Err(_) => OpReply::Unknown(format!(
                "no answer within {} ms",
                params.op_timeout.as_millis()
            )),
        };
        let mut state = shared.borrow_mut();
        let done_ns = state.now_ns();
        state.in_flight -= 1;
        let (kind, value) = match &reply {
            OpReply::Ok(returned) => (RecordType::Ok, op.ok_value(*returned)),
            OpReply::Fail(_) => (RecordType::Fail, op.invoke_value()),
            OpReply::Unknown(_) => (RecordType::Info, op.invoke_value()),
        };
        state.recorder.complete(done_ns, process, kind, value);
        if kind == RecordType::Ok && !matches!(op, Op::Read { .. }) {
            if let Some(heal_ns) = state.heal_at_ns {
                if invoke_ns >= heal_ns && state.first_update_after_heal_ns.is_none() {
                    state.first_update_after_heal_ns = Some(done_ns);
                }
            }
        }
        if kind != RecordType::Ok {
            // A late reply must never answer the next request: a fresh connection.
            client = adapter.client(&network, node);
        }
        if kind == RecordType::Info {
            // Jepsen: a process whose op is in doubt never invokes again.
            process = state.next_process;
            state.next_process += 1;
        }
        let now = state.now_ns();
        drop(state);
        let gap = (params.period_ns as f64 * rng.random_range(0.5..1.5)) as u64;
        next_ns = (next_ns + gap).max(now);
    }
}

/// What the real part of a run measured, for results.json (`real`).
struct Measured {
    records: Vec<minos_checker::history::HistoryRecord>,
    faults: Vec<FaultRecord>,
    liveness: Liveness,
    applied: Vec<Value>,
    cluster_start_ms: u64,
    workload_ms: u64,
    memory: Vec<Value>,
    starts: Vec<u32>,
    exits: Vec<Value>,
    final_state: Value,
}

/// The last lines of a node's log, for an error message.
fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(5)..].join("\n    ")
}

/// Runs `adapter` under `options`: one real cluster, checked, written to its run directory.
pub fn run_real<A: Adapter + 'static>(
    options: &RunOptions,
    adapter: A,
) -> Result<RunOutcome, RunError> {
    options.validate().map_err(RunError::BadOptions)?;
    if !adapter.read_modes().contains(&options.read_mode) {
        return Err(RunError::BadOptions(format!(
            "--read-mode {} is not offered by {} (it offers: {})",
            options.read_mode.name(),
            adapter.name(),
            adapter
                .read_modes()
                .iter()
                .map(|mode| mode.name())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    sys::preflight(&adapter.binary(), adapter.package()).map_err(RunError::BadOptions)?;
    let supported = adapter.supported_faults();
    let (schedule, nemesis_kinds, planned) = plan(options, &supported, adapter.name())?;
    let version = adapter.version();

    let wall_start = Instant::now();
    let io = |error: std::io::Error| RunError::Output(error.to_string());
    let test_name = options.test_name();
    let run_id = format!(
        "{}-seed{}",
        options.run_date.as_deref().unwrap_or("real"),
        options.seed
    );
    let (run_dir, run_id) = create_run_dir(&options.out_dir, &test_name, &run_id).map_err(io)?;
    let nodes_dir = run_dir.join("nodes");
    let data_dir = run_dir.join("data");
    std::fs::create_dir_all(&nodes_dir).map_err(io)?;
    std::fs::create_dir_all(&data_dir).map_err(io)?;
    let data_dir = std::path::absolute(&data_dir).unwrap_or(data_dir);

    let guard = Guard::new();
    let measured = {
        let network = Network::create(&guard, options.nodes).map_err(RunError::Simulation)?;
        let firewall = Firewall::create(&guard).map_err(RunError::Simulation)?;
        let args = (0..options.nodes)
            .map(|node| adapter.server_args(node, &network, &data_dir.join(node_name(node))))
            .collect();
        let mut cluster = Cluster::new(&guard, network, &adapter.binary(), args, &nodes_dir);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|error| RunError::Simulation(format!("tokio runtime: {error}")))?;
        let local = tokio::task::LocalSet::new();
        let adapter = Rc::new(adapter);
        local.block_on(
            &runtime,
            drive(
                options,
                adapter,
                &mut cluster,
                &firewall,
                &planned,
                &nodes_dir,
            ),
        )
        // The cluster drops here: every server is killed before the network goes.
    };
    if let Err(RunError::Interrupted) = &measured {
        // Nothing was judged: the half-written run dir (server logs, data dirs) goes with the
        // cluster, so that a resumed campaign or a rerun leaves no debris behind.
        for problem in guard.cleanup() {
            eprintln!("minos: cleanup: {problem}");
        }
        let _ = std::fs::remove_dir_all(&run_dir);
        return Err(RunError::Interrupted);
    }
    let measured = measured?;
    let problems = guard.cleanup();
    if !problems.is_empty() {
        return Err(RunError::Simulation(format!(
            "cleanup failed: {}",
            problems.join("; ")
        )));
    }
    let simulate_ms = wall_start.elapsed().as_millis() as u64;

    let stall = options
        .max_stall_ms
        .map(|limit_ms| crate::stall::longest_stall(&measured.records, &measured.faults, limit_ms));
    let ops_count = measured
        .records
        .iter()
        .filter(|record| record.kind == RecordType::Invoke)
        .count();
    let ok_count = measured
        .records
        .iter()
        .filter(|record| record.kind == RecordType::Ok)
        .count();
    let workload_s = (measured.workload_ms as f64 / 1e3).max(1e-3);
    let applied_schedule = Schedule {
        events: measured
            .applied
            .iter()
            .filter_map(|value| serde_json::from_value(value["event"].clone()).ok())
            .collect(),
        profile: None,
    };
    let simulation = SimulationResult {
        records: measured.records,
        schedule: applied_schedule,
        faults: measured.faults,
        nemesis_kinds,
        supported_faults: supported.into_iter().collect(),
        invariants: Vec::new(),
        liveness: measured.liveness,
        configurations: Vec::new(),
        stall,
        simulated_ns: measured.workload_ms * 1_000_000,
        node_logs: BTreeMap::new(),
        system_name: adapter_name(options),
        // Real runs have no armed faults, no per-step replica observation and no final
        // leadership tour: what they check is the history and the adapter's final state.
        fired: Vec::new(),
        final_reads: Default::default(),
        deposed_leader_reads: Default::default(),
        node_findings: Vec::new(),
    };
    let check_start = Instant::now();
    let check = crate::run::check_history(&simulation.records, options)?;
    let check_ms = check_start.elapsed().as_millis() as u64;
    let real = json!({
        "replayable": false,
        "note": "a real cluster in real time: the same seed gives the same ops and the same planned schedule, not the same history",
        "system": adapter_name(options),
        "version": version,
        "read_mode": options.read_mode.name(),
        "cluster_start_ms": measured.cluster_start_ms,
        "workload_ms": measured.workload_ms,
        "ops_per_s": (ops_count as f64 / workload_s * 10.0).round() / 10.0,
        "ok_ops_per_s": (ok_count as f64 / workload_s * 10.0).round() / 10.0,
        "nodes": measured.memory,
        "starts": measured.starts,
        "unexpected_exits": measured.exits,
        "final_state": measured.final_state,
        "planned_schedule": schedule,
        "applied_schedule": measured.applied,
        "data_dir": "data (removed when the run is valid)",
        "violation": violation_context(&check.report, &simulation.records, &simulation.faults),
    });
    let wall_ms = wall_start.elapsed().as_millis() as u64;
    let outcome = crate::run::write_run_in(
        options,
        simulation,
        check,
        simulate_ms,
        check_ms,
        wall_ms,
        Some(crate::run::RealRun {
            run_dir,
            run_id,
            real,
        }),
    )?;
    if outcome.verdict == minos_checker::Verdict::Valid {
        let _ = std::fs::remove_dir_all(outcome.run_dir.join("data"));
    }
    Ok(outcome)
}

/// Where in real time the checker's counterexample lies, and which faults were in force then
/// (the question a failing real run raises first).
fn violation_context(
    report: &minos_checker::CheckReport,
    records: &[minos_checker::history::HistoryRecord],
    faults: &[FaultRecord],
) -> Value {
    let Some(counterexample) = &report.counterexample else {
        return Value::Null;
    };
    let time_of = |index: u64| {
        records
            .iter()
            .find(|record| record.index == index)
            .map(|record| record.time)
    };
    let (Some(first_ns), Some(last_ns)) = (
        time_of(counterexample.window.first_index),
        time_of(counterexample.window.last_index),
    ) else {
        return Value::Null;
    };
    let active: Vec<Value> = faults
        .iter()
        .filter(|fault| {
            fault.start_ns <= last_ns && fault.stop_ns.is_none_or(|stop_ns| stop_ns >= first_ns)
        })
        .map(|fault| {
            json!({
                "kind": fault.kind.name(),
                "targets": fault.targets,
                "detail": fault.detail,
                "start_ms": fault.start_ns / 1_000_000,
                "stop_ms": fault.stop_ns.map(|ns| ns / 1_000_000),
            })
        })
        .collect();
    json!({
        "key": counterexample.key,
        "window_ms": [first_ns / 1_000_000, last_ns / 1_000_000],
        "faults_active": active,
    })
}

fn adapter_name(options: &RunOptions) -> &'static str {
    options.system.name()
}

async fn drive<A: Adapter + 'static>(
    options: &RunOptions,
    adapter: Rc<A>,
    cluster: &mut Cluster<'_>,
    firewall: &Firewall,
    planned: &[Planned],
    nodes_dir: &Path,
) -> Result<Measured, RunError> {
    let start_begin = Instant::now();
    for node in 0..options.nodes {
        cluster.start(node).map_err(RunError::Simulation)?;
    }
    let network = Rc::new(cluster.network.clone());
    {
        let prepare = adapter.prepare(&network, options.keys, START_TIMEOUT);
        tokio::pin!(prepare);
        loop {
            tokio::select! {
                biased;
                result = &mut prepare => {
                    result.map_err(|error| RunError::Simulation(format!(
                        "the {} cluster did not become ready: {error}; log of n1:\n    {}",
                        adapter.name(),
                        log_tail(&nodes_dir.join("n1.log"))
                    )))?;
                    break;
                }
                _ = tokio::time::sleep(TICK) => {
                    if interrupted() {
                        return Err(RunError::Interrupted);
                    }
                    if let Some((node, status)) = cluster.exited().into_iter().next() {
                        let name = node_name(node);
                        return Err(RunError::Simulation(format!(
                            "{} server {name} exited during start ({status}); its log:\n    {}",
                            adapter.name(),
                            log_tail(&nodes_dir.join(format!("{name}.log")))
                        )));
                    }
                }
            }
        }
    }
    let cluster_start_ms = start_begin.elapsed().as_millis() as u64;

    let shared = Rc::new(RefCell::new(Shared {
        start: Instant::now(),
        recorder: Recorder::new(),
        stop: false,
        heal_at_ns: None,
        first_update_after_heal_ns: None,
        in_flight: 0,
        next_process: options.clients as u64,
        healed: Rc::new(tokio::sync::Notify::new()),
    }));
    let params = Rc::new(ClientParams {
        seed: options.seed,
        period_ns: (options.clients as f64 * 1e9 / options.rate_ops_per_s) as u64,
        op_timeout: Duration::from_millis(options.op_timeout_ms),
        generator: Generator::new(options.workload, options.key_distribution, options.keys),
        nodes: options.nodes,
    });
    let mut tasks = Vec::new();
    for worker in 0..options.clients {
        tasks.push(tokio::task::spawn_local(client_worker(
            worker,
            adapter.clone(),
            network.clone(),
            shared.clone(),
            params.clone(),
        )));
    }
    let mut nemesis = RealNemesis {
        cluster,
        firewall,
        adapter: adapter.as_ref(),
        filter: Filter::default(),
        killed: BTreeSet::new(),
        paused: BTreeSet::new(),
        log: FaultLog::default(),
        applied: Vec::new(),
        // A scripted schedule is applied as written.
        leader_aware_halves: options.schedule.is_none(),
    };
    let result = nemesis_loop(options, &mut nemesis, &shared, planned).await;
    for task in &tasks {
        task.abort();
    }
    let (liveness, exits) = result?;
    let end_ns = shared.borrow().now_ns();
    let memory: Vec<Value> = (0..options.nodes)
        .map(|node| {
            let memory = nemesis.cluster.pid(node).and_then(sys::memory_kib);
            json!({
                "name": node_name(node),
                "ip": nemesis.cluster.network.ip(node).to_string(),
                "rss_kib": memory.map(|(rss, _)| rss),
                "peak_rss_kib": memory.map(|(_, peak)| peak),
            })
        })
        .collect();
    let starts = nemesis.cluster.starts.clone();
    let records = {
        let mut state = shared.borrow_mut();
        state.recorder.close(end_ns);
        std::mem::take(&mut state.recorder).into_records()
    };
    let final_state = adapter.final_state(&network, &records, options.keys).await;
    nemesis.cluster.stop_all();
    Ok(Measured {
        records,
        faults: nemesis.log.faults,
        liveness,
        applied: nemesis.applied,
        cluster_start_ms,
        workload_ms: end_ns / 1_000_000,
        memory,
        starts,
        exits,
        final_state,
    })
}

enum Phase {
    Faults,
    Liveness { deadline_ns: u64 },
    Drain { deadline_ns: u64 },
}

async fn nemesis_loop<A: Adapter>(
    options: &RunOptions,
    nemesis: &mut RealNemesis<'_, '_, A>,
    shared: &Rc<RefCell<Shared>>,
    planned: &[Planned],
) -> Result<(Liveness, Vec<Value>), RunError> {
    let fault_end_ns = options.time_limit_ms * 1_000_000;
    let mut next = 0;
    let mut phase = Phase::Faults;
    let mut liveness = Liveness {
        ok: false,
        detail: String::new(),
    };
    let mut exits = Vec::new();
    loop {
        if interrupted() {
            return Err(RunError::Interrupted);
        }
        let now_ns = shared.borrow().now_ns();
        // A server that exits on its own is a finding: recorded, and restarted as an operator
        // would (a node the nemesis killed is not running, so it never shows here).
        for (node, status) in nemesis.cluster.exited() {
            let name = node_name(node);
            exits.push(json!({"node": name, "at_ms": now_ns / 1_000_000, "status": status}));
            shared.borrow_mut().recorder.nemesis(
                now_ns,
                "restart-exited",
                json!({"targets": [name], "status": status}),
            );
            nemesis.cluster.start(node).map_err(RunError::Simulation)?;
        }
        match phase {
            Phase::Faults => {
                while next < planned.len()
                    && planned[next].at_ms * 1_000_000 <= now_ns
                    && now_ns < fault_end_ns
                {
                    let step = &planned[next];
                    apply_recorded(nemesis, shared, step.kind, &step.action, Some(step)).await?;
                    next += 1;
                }
                if now_ns >= fault_end_ns {
                    for (kind, action) in nemesis.heal_all_actions() {
                        apply_recorded(nemesis, shared, kind, &action, None).await?;
                    }
                    let mut state = shared.borrow_mut();
                    let heal_ns = state.now_ns();
                    state.heal_at_ns = Some(heal_ns);
                    state.healed.notify_waiters();
                    phase = Phase::Liveness {
                        deadline_ns: heal_ns + options.liveness_timeout_ms * 1_000_000,
                    };
                }
            }
            Phase::Liveness { deadline_ns } => {
                let mut state = shared.borrow_mut();
                let heal_ns = state.heal_at_ns.expect("set when healing");
                match state.first_update_after_heal_ns {
                    Some(done_ns) => {
                        liveness = Liveness {
                            ok: true,
                            detail: format!(
                                "committed again {:.3} s after healing",
                                (done_ns - heal_ns) as f64 / 1e9
                            ),
                        }
                    }
                    None if now_ns >= deadline_ns => {
                        liveness = Liveness {
                            ok: false,
                            detail: format!(
                                "no update completed within {:.1} s after healing",
                                options.liveness_timeout_ms as f64 / 1e3
                            ),
                        }
                    }
                    None => {}
                }
                if !liveness.detail.is_empty() {
                    state.stop = true;
                    phase = Phase::Drain {
                        deadline_ns: now_ns + (options.op_timeout_ms + 1_000) * 1_000_000,
                    };
                }
            }
            Phase::Drain { deadline_ns } => {
                if shared.borrow().in_flight == 0 || now_ns >= deadline_ns {
                    return Ok((liveness, exits));
                }
            }
        }
        tokio::time::sleep(TICK).await;
    }
}

/// Applies one action and records it in the history, the node logs' run and the applied
/// schedule (with its real time and its planned time).
async fn apply_recorded<A: Adapter>(
    nemesis: &mut RealNemesis<'_, '_, A>,
    shared: &Rc<RefCell<Shared>>,
    kind: FaultKind,
    action: &Action,
    planned: Option<&Planned>,
) -> Result<(), RunError> {
    let begin_ns = shared.borrow().now_ns();
    let (f, value) = nemesis
        .apply(kind, action, begin_ns)
        .await
        .map_err(|error| RunError::Simulation(format!("applying {}: {error}", kind.name())))?;
    let mut state = shared.borrow_mut();
    let done_ns = state.now_ns();
    state.recorder.nemesis(begin_ns, &f, value.clone());
    let targets: Vec<String> = value
        .get("targets")
        .and_then(Value::as_array)
        .map(|targets| {
            targets
                .iter()
                .filter_map(|target| target.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let event = FaultEvent {
        at_ms: begin_ns / 1_000_000,
        action: f.clone(),
        targets: if f.starts_with("stop-") || kind.is_topology() || kind == FaultKind::Loss {
            planned.map(|p| p.event.targets.clone()).unwrap_or_default()
        } else {
            targets.clone()
        },
        params: if f.starts_with("start-") {
            planned
                .map(|p| p.event.params.clone())
                .unwrap_or(Value::Null)
                .as_object()
                .map(|params| {
                    let mut params = params.clone();
                    // The leader was resolved at run time: the applied schedule names it.
                    if params.get("mode").and_then(Value::as_str) == Some("leader")
                        && !targets.is_empty()
                    {
                        params.remove("mode");
                    }
                    // Halves laid over the leader at run time: the groups as cut.
                    if params.get("mode").and_then(Value::as_str) == Some("halves") {
                        if let Some(groups) = value.get("groups") {
                            params.insert("groups".to_string(), groups.clone());
                        }
                    }
                    Value::Object(params)
                })
                .filter(|params| params.as_object().is_some_and(|map| !map.is_empty()))
                .unwrap_or(Value::Null)
        } else {
            Value::Null
        },
    };
    nemesis.applied.push(json!({
        "planned_at_ms": planned.map(|p| p.at_ms),
        "applied_at_ms": begin_ns / 1_000_000,
        "took_ms": (done_ns - begin_ns) / 1_000_000,
        "f": f,
        "value": value,
        "event": event,
    }));
    Ok(())
}

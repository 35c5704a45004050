//! The simulation driver: builds a seeded `turmoil::Sim` (fixed epoch, one host per node, one
//! host for the clients), runs client processes at the configured rate and concurrency,
//! applies the nemesis schedule between steps, checks the invariants after every step, heals
//! everything at the end of the fault window and measures liveness. Pure: no file I/O; the
//! result is the history and what was observed.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::rc::Rc;
use std::time::{Duration, UNIX_EPOCH};

use minos_checker::history::{HistoryRecord, RecordType};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;
use tracing_subscriber::layer::SubscriberExt;

use crate::invariants::{InvariantChecker, InvariantResult};
use crate::nemesis::{parse_event, Action, Context, FaultRecord, Nemesis};
use crate::nodelog::{NodeLogLayer, NodeLogs};
use crate::options::{FaultKind, NemesisSpec, RunOptions};
use crate::recorder::Recorder;
use crate::schedule::{self, node_name, Schedule};
use crate::sut::{OpReply, SutClient, SystemUnderTest};
use crate::workload::{Generator, Op};
use crate::RunError;

/// The simulation's fixed wall-clock epoch (2023-11-14T22:13:20Z), so that nothing depends on
/// the real date.
const EPOCH_SECS: u64 = 1_700_000_000;

/// A seeded RNG stream for one purpose, independent of every other stream.
pub fn stream_rng(seed: u64, purpose: &str, index: u64) -> SmallRng {
    SmallRng::seed_from_u64(derive_seed(seed, purpose, index))
}

/// A seed for one purpose (and index), derived from the run seed.
pub fn derive_seed(seed: u64, purpose: &str, index: u64) -> u64 {
    let mut state = seed ^ 0x6a09_e667_f3bc_c908;
    for byte in purpose.bytes() {
        state = (state ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
    }
    state ^= index.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    // SplitMix64 finalizer, so that neighbouring seeds give unrelated streams.
    state = (state ^ (state >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    state = (state ^ (state >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    state ^= state >> 31;
    state
}

/// The liveness verdict after healing.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Liveness {
    pub ok: bool,
    pub detail: String,
}

/// Everything one simulation produced.
pub struct SimulationResult {
    pub records: Vec<HistoryRecord>,
    pub schedule: Schedule,
    pub faults: Vec<FaultRecord>,
    /// The faults `--nemesis` resolved to (for `all`: what the system supports).
    pub nemesis_kinds: Vec<FaultKind>,
    pub supported_faults: Vec<FaultKind>,
    pub invariants: Vec<InvariantResult>,
    pub liveness: Liveness,
    /// The configurations the leaders reported (membership faults only).
    pub configurations: Vec<crate::sut::ConfigurationChange>,
    /// With `--max-stall`: progress inside the fault windows.
    pub stall: Option<crate::stall::Stall>,
    pub simulated_ns: u64,
    pub node_logs: std::collections::BTreeMap<String, String>,
    pub system_name: &'static str,
}

/// State shared by the driver and the client tasks (all on the simulation's thread).
#[derive(Default)]
struct Shared {
    recorder: Recorder,
    stop: bool,
    closed: bool,
    heal_at_ns: Option<u64>,
    first_update_after_heal_ns: Option<u64>,
    in_flight: usize,
    next_process: u64,
    fatal: Option<String>,
    /// Wakes sleeping clients when the faults heal, so that liveness is probed at once.
    healed: Rc<tokio::sync::Notify>,
}

impl Shared {
    /// Healed, and no update has completed since: clients probe at least this often.
    fn probing_liveness(&self) -> bool {
        self.heal_at_ns.is_some() && self.first_update_after_heal_ns.is_none()
    }
}

/// The longest gap between two ops of one client while liveness is being probed.
const LIVENESS_PROBE_NS: u64 = 100_000_000;

fn now_ns() -> u64 {
    turmoil::sim_elapsed()
        .map(|elapsed| elapsed.as_nanos() as u64)
        .unwrap_or(0)
}

/// Resolves `--nemesis` against what the system supports; an explicit fault the system
/// cannot take is an error, never silently skipped.
pub fn resolve_nemesis(
    spec: &NemesisSpec,
    supported: &BTreeSet<FaultKind>,
    system: &str,
) -> Result<Vec<FaultKind>, RunError> {
    match spec {
        NemesisSpec::None => Ok(Vec::new()),
        NemesisSpec::All => Ok(supported.iter().copied().collect()),
        NemesisSpec::List(kinds) => {
            for kind in kinds {
                if !supported.contains(kind) {
                    return Err(RunError::UnsupportedFault {
                        fault: *kind,
                        system: system.to_string(),
                        supported: supported
                            .iter()
                            .map(|k| k.name())
                            .collect::<Vec<_>>()
                            .join(", "),
                    });
                }
            }
            Ok(kinds.clone())
        }
    }
}

struct ClientParams {
    seed: u64,
    clients: usize,
    period_ns: u64,
    op_timeout: Duration,
    generator: Rc<Generator>,
}

async fn client_worker<S: SystemUnderTest>(
    worker: usize,
    sut: Rc<S>,
    shared: Rc<RefCell<Shared>>,
    params: Rc<ClientParams>,
) {
    let mut rng = stream_rng(params.seed, "client", worker as u64);
    let mut process = worker as u64;
    let mut next_ns = rng.random_range(0..params.period_ns.max(1));
    let mut client = None;
    loop {
        let now = now_ns();
        if shared.borrow().probing_liveness() {
            next_ns = next_ns.min(now + LIVENESS_PROBE_NS);
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
        if client.is_none() {
            match sut.connect(process).await {
                Ok(connected) => client = Some(connected),
                Err(error) => {
                    shared.borrow_mut().fatal = Some(format!(
                        "client process {process} could not connect: {error}"
                    ));
                    return;
                }
            }
        }
        let op = params.generator.next_op(&mut rng);
        let invoke_ns = now_ns();
        {
            let mut shared = shared.borrow_mut();
            shared
                .recorder
                .invoke(invoke_ns, process, op.f(), op.key(), op.invoke_value());
            shared.in_flight += 1;
        }
        let connected = client.as_mut().expect("connected above");
        let reply = match tokio::time::timeout(params.op_timeout, connected.invoke(&op)).await {
            Ok(reply) => reply,
            Err(_) => OpReply::Unknown(format!(
                "no answer within {} ms",
                params.op_timeout.as_millis()
            )),
        };
        let done_ns = now_ns();
        let mut shared_state = shared.borrow_mut();
        if shared_state.closed {
            return;
        }
        shared_state.in_flight -= 1;
        let (kind, value) = match &reply {
            OpReply::Ok(returned) => (RecordType::Ok, op.ok_value(*returned)),
            OpReply::Fail(_) => (RecordType::Fail, op.invoke_value()),
            OpReply::Unknown(_) => (RecordType::Info, op.invoke_value()),
        };
        shared_state
            .recorder
            .complete(done_ns, process, kind, value);
        if kind == RecordType::Ok && !matches!(op, Op::Read { .. }) {
            if let Some(heal_ns) = shared_state.heal_at_ns {
                if invoke_ns >= heal_ns && shared_state.first_update_after_heal_ns.is_none() {
                    shared_state.first_update_after_heal_ns = Some(done_ns);
                }
            }
        }
        if kind == RecordType::Info {
            // Jepsen: a process whose op is in doubt never invokes again; a new one takes over.
            process = shared_state.next_process;
            shared_state.next_process += 1;
            client = None;
        }
        drop(shared_state);
        // The next op follows the rate with +-50% jitter, never before now.
        let gap = (params.period_ns as f64 * rng.random_range(0.5..1.5)) as u64;
        next_ns = (next_ns + gap).max(now_ns());
        if shared.borrow().probing_liveness() {
            next_ns = next_ns.min(now_ns() + LIVENESS_PROBE_NS);
        }
    }
}

async fn clients_main<S: SystemUnderTest + 'static>(
    sut: Rc<S>,
    shared: Rc<RefCell<Shared>>,
    params: Rc<ClientParams>,
) -> turmoil::Result {
    let mut tasks = Vec::new();
    for worker in 0..params.clients {
        tasks.push(tokio::task::spawn_local(client_worker(
            worker,
            sut.clone(),
            shared.clone(),
            params.clone(),
        )));
    }
    for task in tasks {
        task.await?;
    }
    Ok(())
}

enum Phase {
    Faults,
    Liveness { deadline_ns: u64 },
    Drain { deadline_ns: u64 },
}

/// Runs one simulation of `sut` under `options`. Deterministic: same options, same result.
pub fn simulate<S: SystemUnderTest + 'static>(
    options: &RunOptions,
    sut: S,
) -> Result<SimulationResult, RunError> {
    options.validate().map_err(RunError::BadOptions)?;
    let supported = sut.supported_faults();
    let system_name = sut.name();
    let mut nemesis_kinds = resolve_nemesis(&options.nemesis, &supported, system_name)?;
    let schedule = match &options.schedule {
        Some(schedule) => {
            schedule
                .validate_targets(options.nodes)
                .map_err(RunError::BadOptions)?;
            for kind in schedule.kinds() {
                if !supported.contains(&kind) {
                    return Err(RunError::UnsupportedFault {
                        fault: kind,
                        system: system_name.to_string(),
                        supported: supported
                            .iter()
                            .map(|k| k.name())
                            .collect::<Vec<_>>()
                            .join(", "),
                    });
                }
            }
            schedule.clone()
        }
        None => {
            let mut rng = stream_rng(options.seed, "schedule", 0);
            schedule::generate(
                &nemesis_kinds,
                options.nodes,
                options.time_limit_ms,
                options.nemesis_interval_ms,
                &mut rng,
            )
        }
    };
    if options.schedule.is_some() {
        // A scripted schedule decides the faults; `--nemesis` only shaped generated ones.
        nemesis_kinds = schedule.kinds();
    }
    let mut actions = Vec::with_capacity(schedule.events.len());
    for (position, event) in schedule.events.iter().enumerate() {
        let (kind, action) = parse_event(event, options.nodes).map_err(|error| {
            RunError::BadOptions(format!(
                "schedule event {position} ({}): {error}",
                event.action
            ))
        })?;
        actions.push((event.at_ms, kind, action));
    }

    let logs = NodeLogs::new();
    let subscriber = tracing_subscriber::registry().with(NodeLogLayer::new(
        logs.clone(),
        options.node_log_level,
        (0..options.nodes).map(node_name).collect(),
    ));
    let outcome =
        tracing::subscriber::with_default(subscriber, || run_sim(options, sut, &actions, &logs))?;
    let (records, faults, invariants, liveness, configurations, simulated_ns) = outcome;
    let stall = options
        .max_stall_ms
        .map(|limit_ms| crate::stall::longest_stall(&records, &faults, limit_ms));
    Ok(SimulationResult {
        records,
        schedule,
        faults,
        nemesis_kinds,
        supported_faults: supported.into_iter().collect(),
        invariants,
        liveness,
        configurations,
        stall,
        simulated_ns,
        node_logs: logs.take(),
        system_name,
    })
}

type SimOutcome = (
    Vec<HistoryRecord>,
    Vec<FaultRecord>,
    Vec<InvariantResult>,
    Liveness,
    Vec<crate::sut::ConfigurationChange>,
    u64,
);

fn run_sim<S: SystemUnderTest + 'static>(
    options: &RunOptions,
    sut: S,
    actions: &[(u64, FaultKind, Action)],
    logs: &NodeLogs,
) -> Result<SimOutcome, RunError> {
    let step = Duration::from_millis(options.step_ms);
    let mut sim = turmoil::Builder::new()
        .rng_seed(options.seed)
        .epoch(UNIX_EPOCH + Duration::from_secs(EPOCH_SECS))
        // The driver decides when to stop; turmoil's own limit must never fire.
        .simulation_duration(Duration::from_secs(10 * 365 * 24 * 3600))
        .tick_duration(step)
        .min_message_latency(Duration::from_millis(1))
        .max_message_latency(Duration::from_millis(10))
        .udp_capacity(4096)
        .build();
    let node_names: Vec<String> = (0..options.nodes).map(node_name).collect();
    sut.register_nodes(&mut sim, &node_names);
    let sut = Rc::new(sut);
    let shared = Rc::new(RefCell::new(Shared {
        next_process: options.clients as u64,
        ..Shared::default()
    }));
    let params = Rc::new(ClientParams {
        seed: options.seed,
        clients: options.clients,
        period_ns: (options.clients as f64 * 1e9 / options.rate_ops_per_s) as u64,
        op_timeout: Duration::from_millis(options.op_timeout_ms * 2),
        generator: Rc::new(Generator::new(
            options.workload,
            options.key_distribution,
            options.keys,
        )),
    });
    sim.client(
        "clients",
        clients_main(sut.clone(), shared.clone(), params.clone()),
    );

    let fault_end_ns = options.time_limit_ms * 1_000_000;
    let mut nemesis = Nemesis::new(options.nodes);
    let mut invariants = InvariantChecker::new(options.nodes);
    let mut leader: Option<(u64, usize)> = None;
    // Nodes that stopped on their own (e.g. a storage failure), not killed by the nemesis.
    let mut failed: BTreeSet<usize> = BTreeSet::new();
    let mut next_action = 0;
    let mut phase = Phase::Faults;
    let mut liveness = Liveness {
        ok: false,
        detail: String::new(),
    };
    // When the configuration was first seen whole again after healing (membership faults).
    let mut configuration_whole_ns: Option<u64> = None;
    loop {
        let now_ns = sim.elapsed().as_nanos() as u64;
        if let Some(fatal) = shared.borrow().fatal.clone() {
            return Err(RunError::Simulation(fatal));
        }
        match phase {
            Phase::Faults => {
                // Every action of this step sees the same instant and the same leader.
                let leader_node = leader.map(|(_, n)| n);
                let apply = |nemesis: &mut Nemesis,
                             sim: &mut turmoil::Sim<'_>,
                             kind: FaultKind,
                             action: &Action| {
                    apply_action(
                        nemesis,
                        kind,
                        action,
                        sim,
                        &sut,
                        now_ns,
                        leader_node,
                        &shared,
                        logs,
                    )
                };
                while next_action < actions.len()
                    && actions[next_action].0 * 1_000_000 <= now_ns
                    && now_ns < fault_end_ns
                {
                    let (_, kind, action) = &actions[next_action];
                    apply(&mut nemesis, &mut sim, *kind, action)?;
                    if matches!(action, Action::StopDisk(_)) {
                        restart_failed(&mut failed, &mut sim, &sut, now_ns, &shared, logs);
                    }
                    next_action += 1;
                }
                if now_ns >= fault_end_ns {
                    for (kind, action) in nemesis.heal_all_actions() {
                        apply(&mut nemesis, &mut sim, kind, &action)?;
                    }
                    restart_failed(&mut failed, &mut sim, &sut, now_ns, &shared, logs);
                    shared.borrow_mut().heal_at_ns = Some(now_ns);
                    let healed = shared.borrow().healed.clone();
                    healed.notify_waiters();
                    phase = Phase::Liveness {
                        deadline_ns: now_ns + options.liveness_timeout_ms * 1_000_000,
                    };
                }
            }
            Phase::Liveness { deadline_ns } => {
                let mut shared_state = shared.borrow_mut();
                let heal_ns = shared_state.heal_at_ns.expect("set when healing");
                let seconds_since_heal = |ns: u64| (ns - heal_ns) as f64 / 1e9;
                let unsettled = sut.configuration_unsettled(leader.map(|(_, n)| n));
                if unsettled.is_none() && configuration_whole_ns.is_none() {
                    configuration_whole_ns = Some(now_ns);
                }
                match (
                    shared_state.first_update_after_heal_ns,
                    configuration_whole_ns,
                ) {
                    (Some(done_ns), Some(whole_ns)) => {
                        let mut detail = format!(
                            "committed again {:.3} s after healing",
                            seconds_since_heal(done_ns)
                        );
                        if !sut.configurations().is_empty() {
                            detail += &format!(
                                "; every node a voter again {:.3} s after healing",
                                seconds_since_heal(whole_ns)
                            );
                        }
                        liveness = Liveness { ok: true, detail };
                    }
                    (None, _) if now_ns >= deadline_ns => {
                        liveness = Liveness {
                            ok: false,
                            detail: format!(
                                "no update completed within {:.1} s after healing",
                                options.liveness_timeout_ms as f64 / 1e3
                            ),
                        };
                    }
                    (Some(_), None) if now_ns >= deadline_ns => {
                        liveness = Liveness {
                            ok: false,
                            detail: format!(
                                "configuration not whole again within {:.1} s after healing: {}",
                                options.liveness_timeout_ms as f64 / 1e3,
                                unsettled.unwrap_or_default()
                            ),
                        };
                    }
                    _ => {}
                }
                if !liveness.detail.is_empty() {
                    shared_state.stop = true;
                    phase = Phase::Drain {
                        deadline_ns: now_ns
                            + params.op_timeout.as_nanos() as u64
                            + step.as_nanos() as u64,
                    };
                }
            }
            Phase::Drain { deadline_ns } => {
                if shared.borrow().in_flight == 0 || now_ns >= deadline_ns {
                    break;
                }
            }
        }
        sim.step()
            .map_err(|error| RunError::Simulation(error.to_string()))?;
        let observed_ns = sim.elapsed().as_nanos() as u64;
        let mut current_leader: Option<(u64, usize)> = None;
        for node in 0..options.nodes {
            let view = sut.observe(node, invariants.applied_from(node));
            invariants.observe(observed_ns, node, &view);
            if view.stopped_on_error.is_some() && !nemesis.is_killed(node) {
                failed.insert(node);
            }
            if view.running
                && view.is_leader
                && !nemesis.is_killed(node)
                && current_leader.is_none_or(|(term, _)| view.term > term)
            {
                current_leader = Some((view.term, node));
            }
        }
        leader = current_leader;
        sut.after_step(observed_ns, leader.map(|(_, n)| n));
    }
    let end_ns = sim.elapsed().as_nanos() as u64;
    let records = {
        let mut shared_state = shared.borrow_mut();
        shared_state.recorder.close(end_ns);
        shared_state.closed = true;
        std::mem::take(&mut shared_state.recorder).into_records()
    };
    // The simulation (and every task holding the clients) ends here.
    drop(sim);
    Ok((
        records,
        nemesis.faults,
        invariants.results(),
        liveness,
        sut.configurations(),
        end_ns,
    ))
}

#[allow(clippy::too_many_arguments)]
fn apply_action<S: SystemUnderTest>(
    nemesis: &mut Nemesis,
    kind: FaultKind,
    action: &Action,
    sim: &mut turmoil::Sim<'_>,
    sut: &Rc<S>,
    now_ns: u64,
    leader: Option<usize>,
    shared: &Rc<RefCell<Shared>>,
    logs: &NodeLogs,
) -> Result<(), RunError> {
    let mut context = Context {
        sim,
        sut: sut.as_ref(),
        time_ns: now_ns,
        leader,
    };
    let applied = nemesis.apply(kind, action, &mut context).map_err(|error| {
        RunError::Simulation(format!(
            "the system under test refused {}: {error}",
            kind.name()
        ))
    })?;
    let line = format!("nemesis {} {}", applied.f, applied.value);
    if let Some(Value::Array(targets)) = applied.value.get("targets") {
        for target in targets.iter().filter_map(Value::as_str) {
            logs.append(target, now_ns, &line);
        }
    }
    shared
        .borrow_mut()
        .recorder
        .nemesis(now_ns, &applied.f, applied.value);
    Ok(())
}

/// Restarts the nodes that stopped on their own, as an operator would once the disk is healthy
/// again; recorded as a nemesis `restart-failed` op.
fn restart_failed<S: SystemUnderTest>(
    failed: &mut BTreeSet<usize>,
    sim: &mut turmoil::Sim<'_>,
    sut: &Rc<S>,
    now_ns: u64,
    shared: &Rc<RefCell<Shared>>,
    logs: &NodeLogs,
) {
    if failed.is_empty() {
        return;
    }
    let targets: Vec<String> = failed.iter().map(|node| node_name(*node)).collect();
    for node in std::mem::take(failed) {
        sim.bounce(node_name(node));
        sut.set_running(node, true);
        logs.append(&node_name(node), now_ns, "nemesis restart-failed");
    }
    shared.borrow_mut().recorder.nemesis(
        now_ns,
        "restart-failed",
        serde_json::json!({ "targets": targets }),
    );
}

impl SimulationResult {
    pub fn ops_count(&self) -> usize {
        self.records
            .iter()
            .filter(|r| r.kind == RecordType::Invoke)
            .count()
    }
}

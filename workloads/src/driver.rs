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
    /// Swarm runs: the armed faults that fired, as (simulated ms, what fired).
    pub fired: Vec<crate::swarm::Fired>,
    /// The final reads after the faults: what was read through which leader.
    pub final_reads: FinalReadsSummary,
    /// Reads aimed at deposed leaders that had not noticed yet.
    pub deposed_leader_reads: DeposedLeaderReads,
    /// Node-level findings: a node's panic, or a node that stopped on an error no fault of
    /// the run explains (each a cause of an invalid verdict).
    pub node_findings: Vec<String>,
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
    /// A batch of final reads the driver asks the final reader for (a turn number).
    final_request: Option<u64>,
    /// The last turn the final reader finished.
    final_done: Option<u64>,
    final_wake: Rc<tokio::sync::Notify>,
    /// A node that still believes it leads while a leader of a newer term exists (seen by
    /// the driver after each step), for the deposed-leader prober.
    deposed_leader: Option<usize>,
    deposed_wake: Rc<tokio::sync::Notify>,
    deposed_reads: DeposedLeaderReads,
}

impl Shared {
    /// A process id no client has used (Jepsen: a process whose op is in doubt never
    /// invokes again; a new one takes over).
    fn new_process(&mut self) -> u64 {
        self.next_process += 1;
        self.next_process - 1
    }

    /// Healed, and no update has completed since: clients probe at least this often.
    fn probing_liveness(&self) -> bool {
        self.heal_at_ns.is_some() && self.first_update_after_heal_ns.is_none()
    }
}

/// Records `op` invoked by `process`, runs it on `client` (at most `op_timeout`), records
/// its completion; returns its kind and (invoke, completion) times, or None once the history
/// is closed.
async fn run_recorded<C: SutClient>(
    shared: &RefCell<Shared>,
    op_timeout: Duration,
    process: u64,
    client: &mut C,
    op: &Op,
) -> Option<(RecordType, u64, u64)> {
    let invoke_ns = now_ns();
    {
        let mut state = shared.borrow_mut();
        state
            .recorder
            .invoke(invoke_ns, process, op.f(), op.key(), op.invoke_value());
        state.in_flight += 1;
    }
    let reply = match tokio::time::timeout(op_timeout, client.invoke(op)).await {
        Ok(reply) => reply,
        Err(_) => OpReply::Unknown("no answer in time".to_string()),
    };
    let done_ns = now_ns();
    let mut state = shared.borrow_mut();
    if state.closed {
        return None;
    }
    state.in_flight -= 1;
    let (kind, value) = match &reply {
        OpReply::Ok(returned) => (RecordType::Ok, op.ok_value(*returned)),
        OpReply::Fail(_) => (RecordType::Fail, op.invoke_value()),
        OpReply::Unknown(_) => (RecordType::Info, op.invoke_value()),
    };
    state.recorder.complete(done_ns, process, kind, value);
    Some((kind, invoke_ns, done_ns))
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
    /// Swarm runs: short timeouts and bursts.
    client_profile: crate::swarm::ClientProfile,
    keys: usize,
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
        let connected = client.as_mut().expect("connected above");
        let Some((kind, invoke_ns, done_ns)) =
            run_recorded(&shared, params.op_timeout, process, connected, &op).await
        else {
            return;
        };
        let mut shared_state = shared.borrow_mut();
        if kind == RecordType::Ok && !matches!(op, Op::Read { .. }) {
            if let Some(heal_ns) = shared_state.heal_at_ns {
                if invoke_ns >= heal_ns && shared_state.first_update_after_heal_ns.is_none() {
                    shared_state.first_update_after_heal_ns = Some(done_ns);
                }
            }
        }
        if kind == RecordType::Info {
            // Jepsen: a process whose op is in doubt never invokes again; a new one takes over.
            process = shared_state.new_process();
            client = None;
        }
        drop(shared_state);
        // The next op follows the rate with +-50% jitter (faster inside a burst), never
        // before now.
        let factor = params.client_profile.rate_factor_at(now_ns() / 1_000_000);
        let gap = (params.period_ns as f64 * rng.random_range(0.5..1.5) / factor) as u64;
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
    tasks.push(tokio::task::spawn_local(final_reader(
        sut.clone(),
        shared.clone(),
        params.clone(),
    )));
    tasks.push(tokio::task::spawn_local(deposed_leader_prober(
        sut.clone(),
        shared.clone(),
        params.clone(),
    )));
    for task in tasks {
        task.await?;
    }
    Ok(())
}

/// Reads every key (up to [`FINAL_READ_KEYS`]) once per turn the driver requests, through
/// whichever node leads (the driver moves leadership to each node in turn first). The reads
/// are ordinary client ops in the history, so the checker judges them.
async fn final_reader<S: SystemUnderTest>(
    sut: Rc<S>,
    shared: Rc<RefCell<Shared>>,
    params: Rc<ClientParams>,
) {
    let mut last_turn: Option<u64> = None;
    loop {
        let wake = shared.borrow().final_wake.clone();
        let request = {
            let state = shared.borrow();
            if state.closed {
                return;
            }
            state.final_request.filter(|turn| Some(*turn) != last_turn)
        };
        let Some(turn) = request else {
            wake.notified().await;
            continue;
        };
        last_turn = Some(turn);
        let mut client = None;
        let mut process = 0;
        for key_index in 0..params.keys.min(FINAL_READ_KEYS) {
            if client.is_none() {
                process = shared.borrow_mut().new_process();
                match sut.connect(process).await {
                    Ok(connected) => client = Some(connected),
                    Err(_) => break,
                }
            }
            let op = Op::Read {
                key: crate::workload::key_name(key_index),
            };
            let connected = client.as_mut().expect("connected above");
            let Some((kind, _, _)) =
                run_recorded(&shared, params.op_timeout, process, connected, &op).await
            else {
                return;
            };
            if kind == RecordType::Info {
                client = None;
            }
        }
        shared.borrow_mut().final_done = Some(turn);
    }
}

/// What the deposed-leader prober did, for results.json.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct DeposedLeaderReads {
    /// Times the driver saw a node lead in a term older than another running node's.
    pub windows: u64,
    /// Reads the prober sent through such a node (each an op of the history).
    pub reads: u64,
}

impl DeposedLeaderReads {
    pub fn is_empty(&self) -> bool {
        self.windows == 0
    }
}

/// Reads every key in turn through a node that still believes it leads while a newer
/// leader exists, for as long as the driver sees it so (until it notices and steps down).
/// Clients on their own rarely meet such a node: they leave a leader that stops answering
/// and follow redirects to the new one. A deposed leader that answers a read without a
/// quorum (a lease trusted past its end, a quorum miscounted, a read index confirmed by the
/// wrong round) then answers it stale, which the checker sees. The reads go to that node
/// first; it answers, or redirects them as any node would, so every read is an ordinary
/// op of the history, judged with the rest.
async fn deposed_leader_prober<S: SystemUnderTest>(
    sut: Rc<S>,
    shared: Rc<RefCell<Shared>>,
    params: Rc<ClientParams>,
) {
    // (node the client is bound to, its process, the client)
    let mut bound: Option<(usize, u64, S::Client)> = None;
    let mut next_key: usize = 0;
    loop {
        let (target, wake) = {
            let state = shared.borrow();
            if state.closed || state.stop {
                return;
            }
            (state.deposed_leader, state.deposed_wake.clone())
        };
        let Some(node) = target else {
            wake.notified().await;
            continue;
        };
        if bound
            .as_ref()
            .is_none_or(|(bound_node, _, _)| *bound_node != node)
        {
            let process = shared.borrow_mut().new_process();
            match sut.connect_to_node(process, node).await {
                // The system's clients cannot be aimed at a node: nothing to probe with.
                None => return,
                Some(Ok(client)) => bound = Some((node, process, client)),
                Some(Err(_)) => {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                }
            }
        }
        let (_, process, client) = bound.as_mut().expect("bound above");
        let process = *process;
        let op = Op::Read {
            key: crate::workload::key_name(next_key % params.keys.max(1)),
        };
        next_key += 1;
        shared.borrow_mut().deposed_reads.reads += 1;
        let Some((kind, _, _)) =
            run_recorded(&shared, params.op_timeout, process, client, &op).await
        else {
            return;
        };
        if kind == RecordType::Info {
            // A process with an op in doubt never issues another.
            bound = None;
        }
    }
}

/// At most this many keys are read per final turn (a run with more keys reads the first).
pub const FINAL_READ_KEYS: usize = 64;

/// How long the driver waits for a leadership transfer, and for a turn of final reads.
const FINAL_TRANSFER_NS: u64 = 3_000_000_000;
const FINAL_TURN_NS: u64 = 10_000_000_000;
/// How long the driver waits, after the final reads, for every replica to apply up to the
/// same index (their states are then compared by the invariants).
const SETTLE_NS: u64 = 3_000_000_000;

/// What the final reads did, for results.json.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct FinalReadsSummary {
    /// Nodes that led a turn of final reads.
    pub read_through: Vec<String>,
    /// Nodes leadership could not be moved to (within 3 s).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_reached: Vec<String>,
    /// Every running replica reached the same applied index after the reads (and so was
    /// compared in full).
    pub replicas_settled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

enum Phase {
    Faults,
    Liveness {
        deadline_ns: u64,
    },
    /// Leadership moves to node `turn`, then its reads are requested.
    FinalTransfer {
        turn: usize,
        deadline_ns: u64,
    },
    FinalRead {
        turn: usize,
        deadline_ns: u64,
    },
    Settle {
        deadline_ns: u64,
    },
    Drain {
        deadline_ns: u64,
    },
}

/// Runs one simulation of `sut` under `options`. Deterministic: same options, same result.
pub fn simulate<S: SystemUnderTest + 'static>(
    options: &RunOptions,
    mut sut: S,
) -> Result<SimulationResult, RunError> {
    options.validate().map_err(RunError::BadOptions)?;
    let supported = sut.supported_faults();
    let system_name = sut.name();
    let mut nemesis_kinds = resolve_nemesis(&options.nemesis, &supported, system_name)?;
    let mut armed = Vec::new();
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
        None if options.nemesis == NemesisSpec::All => {
            let mut rng = stream_rng(options.seed, "swarm", 0);
            let plan = crate::swarm::generate(
                &nemesis_kinds,
                options.nodes,
                options.time_limit_ms,
                sut.takes_knobs(),
                &mut rng,
            );
            armed = plan.armed;
            plan.schedule
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
    let mut schedule = schedule;
    let knobs = match schedule.profile.as_mut() {
        Some(profile) if sut.takes_knobs() => {
            profile.knobs = std::mem::take(&mut profile.knobs)
                .with_explicit(options.max_append_entries, options.read_mode);
            sut.apply_knobs(&profile.knobs);
            profile.knobs.clone()
        }
        _ => crate::swarm::StoreKnobs::default(),
    };
    if let Some(profile) = schedule.profile.as_mut() {
        let client = &mut profile.client;
        if !sut.apply_client_routing(client.bound_clients, client.attempt_timeout_ms) {
            client.bound_clients = false;
            client.attempt_timeout_ms = None;
        }
        if profile.restless_membership
            && !sut.make_membership_restless(
                derive_seed(options.seed, "restless-membership", 0),
                options.time_limit_ms * 1_000_000,
            )
        {
            profile.restless_membership = false;
        }
    }
    for event in &mut schedule.events {
        knobs.bound_clock(event);
    }
    let mut queue = Vec::with_capacity(schedule.events.len());
    for (position, event) in schedule.events.iter().enumerate() {
        let (kind, action) = parse_event(event, options.nodes).map_err(|error| {
            RunError::BadOptions(format!(
                "schedule event {position} ({}): {error}",
                event.action
            ))
        })?;
        queue.push(Queued {
            event: event.clone(),
            kind,
            action,
        });
    }
    let profile = schedule.profile.clone();

    let logs = NodeLogs::new();
    let subscriber = tracing_subscriber::registry().with(NodeLogLayer::new(
        logs.clone(),
        options.node_log_level,
        (0..options.nodes).map(node_name).collect(),
    ));
    let plan = Plan {
        queue,
        armed,
        client_profile: profile
            .as_ref()
            .map(|p| p.client.clone())
            .unwrap_or_default(),
        supports_transfer: supported.contains(&FaultKind::Transfer),
        knobs,
    };
    let outcome =
        tracing::subscriber::with_default(subscriber, || run_sim(options, sut, plan, &logs))?;
    let schedule = Schedule {
        events: outcome.events,
        profile,
    };
    let SimOutcome {
        records,
        faults,
        invariants,
        liveness,
        configurations,
        simulated_ns,
        node_findings,
        fired,
        final_reads,
        deposed_leader_reads,
        ..
    } = outcome;
    // `--max-stall` bounds every stall under faults; a swarm run (its schedule carries a
    // profile) always bounds the stalls while a majority of nodes is healthy.
    let stall = match (options.max_stall_ms, &schedule.profile) {
        (Some(limit_ms), _) => Some(crate::stall::longest_stall(&records, &faults, limit_ms)),
        (None, Some(_)) => Some(crate::stall::longest_stall_with_healthy_majority(
            &records,
            &faults,
            options.nodes,
            crate::stall::HEALTHY_QUORUM_STALL_LIMIT_MS,
        )),
        (None, None) => None,
    };
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
        fired,
        final_reads,
        deposed_leader_reads,
        node_findings,
        node_logs: logs.take(),
        system_name,
    })
}

/// One scheduled nemesis action, with the event it came from (written back as schedule.json).
struct Queued {
    event: schedule::FaultEvent,
    kind: FaultKind,
    action: Action,
}

/// What the driver runs: the scheduled actions, the armed swarm faults and the clients' shape.
struct Plan {
    queue: Vec<Queued>,
    armed: Vec<crate::swarm::Armed>,
    client_profile: crate::swarm::ClientProfile,
    supports_transfer: bool,
    /// The store knobs in force: fired faults stay within what they assume.
    knobs: crate::swarm::StoreKnobs,
}

struct SimOutcome {
    records: Vec<HistoryRecord>,
    faults: Vec<FaultRecord>,
    invariants: Vec<InvariantResult>,
    liveness: Liveness,
    configurations: Vec<crate::sut::ConfigurationChange>,
    simulated_ns: u64,
    node_findings: Vec<String>,
    /// Every event as applied (fired swarm faults included), in order: a replay's schedule.
    events: Vec<schedule::FaultEvent>,
    fired: Vec<crate::swarm::Fired>,
    final_reads: FinalReadsSummary,
    deposed_leader_reads: DeposedLeaderReads,
}

fn run_sim<S: SystemUnderTest + 'static>(
    options: &RunOptions,
    sut: S,
    plan: Plan,
    logs: &NodeLogs,
) -> Result<SimOutcome, RunError> {
    let Plan {
        mut queue,
        mut armed,
        client_profile,
        supports_transfer,
        knobs,
    } = plan;
    let mut armed_slots: Vec<Option<crate::swarm::Armed>> = armed.drain(..).map(Some).collect();
    let mut fired: Vec<crate::swarm::Fired> = Vec::new();
    let mut final_reads = FinalReadsSummary::default();
    let deposed_leader_reads;
    let mut watch = crate::swarm::ProtocolWatch::new(options.nodes);
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
        op_timeout: Duration::from_millis(
            client_profile
                .op_timeout_ms
                .unwrap_or(u64::MAX)
                .min(options.op_timeout_ms * 2),
        ),
        generator: Rc::new(Generator::new(
            options.workload,
            options.key_distribution,
            options.keys,
        )),
        client_profile,
        keys: options.keys,
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
    let mut findings = NodeFindings::new(options.nodes);
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
                while next_action < queue.len()
                    && queue[next_action].event.at_ms * 1_000_000 <= now_ns
                    && now_ns < fault_end_ns
                {
                    let Queued { kind, action, .. } = &queue[next_action];
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
                    phase = if liveness.ok {
                        Phase::FinalTransfer {
                            turn: 0,
                            deadline_ns: now_ns + FINAL_TRANSFER_NS,
                        }
                    } else {
                        final_reads.note =
                            Some("skipped: the cluster did not recover after healing".into());
                        Phase::Drain {
                            deadline_ns: now_ns
                                + params.op_timeout.as_nanos() as u64
                                + step.as_nanos() as u64,
                        }
                    };
                }
            }
            Phase::FinalTransfer { turn, deadline_ns } => {
                let current = leader.map(|(_, n)| n);
                let reached = !supports_transfer || current == Some(turn);
                if reached || now_ns >= deadline_ns {
                    if reached {
                        final_reads.read_through.push(node_name(turn));
                    } else {
                        final_reads.not_reached.push(node_name(turn));
                    }
                    let mut state = shared.borrow_mut();
                    state.final_request = Some(turn as u64);
                    state.final_wake.notify_waiters();
                    phase = Phase::FinalRead {
                        turn,
                        deadline_ns: now_ns + FINAL_TURN_NS,
                    };
                } else if let Some(from) = current {
                    // Asked again every step: a transfer can be dropped with its message.
                    sut.node_fault(
                        from,
                        &crate::sut::NodeFault::TransferLeadershipTo { to: turn },
                    )
                    .map_err(RunError::Simulation)?;
                }
            }
            Phase::FinalRead { turn, deadline_ns } => {
                let done = shared.borrow().final_done == Some(turn as u64);
                if done || now_ns >= deadline_ns {
                    let last = !supports_transfer || turn + 1 >= options.nodes;
                    phase = if last {
                        Phase::Settle {
                            deadline_ns: now_ns + SETTLE_NS,
                        }
                    } else {
                        Phase::FinalTransfer {
                            turn: turn + 1,
                            deadline_ns: now_ns + FINAL_TRANSFER_NS,
                        }
                    };
                }
            }
            Phase::Settle { deadline_ns } => {
                if watch.replicas_settled() || now_ns >= deadline_ns {
                    final_reads.replicas_settled = watch.replicas_settled();
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
        let mut leaders: Vec<(u64, usize)> = Vec::new();
        let mut newest_term: u64 = 0;
        for node in 0..options.nodes {
            let votes = sut.votes_granted_since(node, invariants.votes_from(node));
            invariants.observe_votes(node, votes.as_deref());
            let view = sut.observe(node, invariants.applied_from(node));
            invariants.observe(observed_ns, node, &view);
            findings.observe(node, &view, &nemesis, shared.as_ref(), observed_ns);
            watch.observe(node, &view, nemesis.is_killed(node));
            if view.stopped_on_error.is_some() && !nemesis.is_killed(node) {
                failed.insert(node);
            }
            if view.running && !nemesis.is_killed(node) {
                newest_term = newest_term.max(view.term);
            }
            if view.running && view.is_leader && !nemesis.is_killed(node) {
                leaders.push((view.term, node));
                if current_leader.is_none_or(|(term, _)| view.term > term) {
                    current_leader = Some((view.term, node));
                }
            }
        }
        note_deposed_leader(&shared, &leaders, newest_term);
        invariants.end_step(observed_ns);
        leader = current_leader;
        let leader_node = leader.map(|(_, n)| n);
        if matches!(phase, Phase::Faults) && observed_ns < fault_end_ns {
            fire_armed(
                &mut armed_slots,
                &mut queue,
                &mut fired,
                &watch,
                leader_node,
                observed_ns / 1_000_000,
                options,
                &knobs,
            );
        }
        watch.end_step();
        sut.after_step(observed_ns, leader_node);
    }
    let end_ns = sim.elapsed().as_nanos() as u64;
    let records = {
        let mut shared_state = shared.borrow_mut();
        shared_state.recorder.close(end_ns);
        shared_state.closed = true;
        deposed_leader_reads = std::mem::take(&mut shared_state.deposed_reads);
        std::mem::take(&mut shared_state.recorder).into_records()
    };
    // The simulation (and every task holding the clients) ends here.
    drop(sim);
    Ok(SimOutcome {
        records,
        faults: nemesis.faults,
        invariants: invariants.results(),
        liveness,
        configurations: sut.configurations(),
        simulated_ns: end_ns,
        node_findings: findings.causes,
        events: queue.into_iter().map(|queued| queued.event).collect(),
        fired,
        final_reads,
        deposed_leader_reads,
    })
}

/// Points the deposed-leader prober at the first node (lowest index) that leads in a term
/// older than another running node's (a newer election has started: its reads are queued
/// there when the newer leader commits), or at nobody.
fn note_deposed_leader(shared: &RefCell<Shared>, leaders: &[(u64, usize)], newest_term: u64) {
    let deposed = leaders
        .iter()
        .filter(|(term, _)| *term < newest_term)
        .map(|(_, node)| *node)
        .min();
    let mut state = shared.borrow_mut();
    if deposed == state.deposed_leader {
        return;
    }
    if deposed.is_some() {
        state.deposed_reads.windows += 1;
    }
    state.deposed_leader = deposed;
    state.deposed_wake.notify_waiters();
}

/// Fires the armed swarm faults whose moment came in this step: each becomes a start and a
/// stop event in the queue (after every event at or before their time, as a replay orders
/// them), aimed at the node of the protocol event or resolved now.
fn fire_armed(
    armed: &mut [Option<crate::swarm::Armed>],
    queue: &mut Vec<Queued>,
    fired: &mut Vec<crate::swarm::Fired>,
    watch: &crate::swarm::ProtocolWatch,
    leader: Option<usize>,
    now_ms: u64,
    options: &RunOptions,
    knobs: &crate::swarm::StoreKnobs,
) {
    // One fault of a kind per protocol event: armed faults waiting for the same moment
    // (the steps of a leader chain) take the following ones in turn.
    let mut taken_moments: Vec<(crate::swarm::Trigger, FaultKind)> = Vec::new();
    for (position, slot) in armed.iter_mut().enumerate() {
        let Some(armed_fault) = slot.as_ref() else {
            continue;
        };
        if now_ms >= armed_fault.until_ms {
            *slot = None;
            continue;
        }
        if now_ms < armed_fault.from_ms {
            continue;
        }
        let subject = match armed_fault.trigger {
            crate::swarm::Trigger::Time => None,
            trigger => match watch.event_node(trigger) {
                Some(_) if taken_moments.contains(&(trigger, armed_fault.kind)) => continue,
                Some(node) => {
                    taken_moments.push((trigger, armed_fault.kind));
                    Some(node)
                }
                None => continue,
            },
        };
        let mut rng = stream_rng(options.seed, "swarm-fire", position as u64);
        let events = crate::swarm::fire(
            armed_fault,
            now_ms,
            subject,
            leader,
            watch.best_follower(leader),
            options.nodes,
            &mut rng,
        );
        let armed_fault = slot.take().expect("checked above");
        let Some((mut start, stop)) = events else {
            continue;
        };
        knobs.bound_clock(&mut start);
        let (Ok((kind, start_action)), Ok((_, stop_action))) = (
            parse_event(&start, options.nodes),
            parse_event(&stop, options.nodes),
        ) else {
            continue;
        };
        fired.push(crate::swarm::Fired {
            at_ms: now_ms,
            kind,
            trigger: armed_fault.trigger,
            aim: armed_fault.aim,
            targets: start.targets.clone(),
        });
        for (event, action) in [(start, start_action), (stop, stop_action)] {
            let at = queue.partition_point(|queued| queued.event.at_ms <= event.at_ms);
            queue.insert(
                at,
                Queued {
                    event,
                    kind,
                    action,
                },
            );
        }
    }
}

/// Node-level findings gathered from the views: the first panic of each node, and a node
/// that stopped on an error while no fault of the run had touched its disk (the store then
/// failed on its own data: corruption it wrote itself, or a safety check of the core).
struct NodeFindings {
    panicked: Vec<bool>,
    stopped: Vec<bool>,
    causes: Vec<String>,
}

impl NodeFindings {
    fn new(nodes: usize) -> NodeFindings {
        NodeFindings {
            panicked: vec![false; nodes],
            stopped: vec![false; nodes],
            causes: Vec::new(),
        }
    }

    fn observe(
        &mut self,
        node: usize,
        view: &crate::sut::NodeView,
        nemesis: &Nemesis,
        shared: &RefCell<Shared>,
        now_ns: u64,
    ) {
        let name = node_name(node);
        if let Some(panic) = view.panicked.as_ref().filter(|_| !self.panicked[node]) {
            self.panicked[node] = true;
            let cause = crate::panics::cause(&name, panic);
            shared.borrow_mut().recorder.nemesis(
                now_ns,
                "node-panic",
                serde_json::json!({"targets": [name], "panic": panic}),
            );
            self.causes.push(cause);
        }
        if let Some(error) = view.stopped_on_error.as_ref() {
            let explained = nemesis.faults.iter().any(|fault| {
                fault.kind.may_fail_storage()
                    && (fault.targets.is_empty() || fault.targets.contains(&name))
            });
            if !explained && !self.stopped[node] {
                self.stopped[node] = true;
                self.causes.push(format!(
                    "node {name} stopped on an error without a storage fault: {error}"
                ));
            }
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prober_aims_at_a_leader_of_an_older_term_than_some_running_node() {
        let shared = RefCell::new(Shared::default());
        // One leader, nobody newer: nothing to probe.
        note_deposed_leader(&shared, &[(3, 1)], 3);
        assert_eq!(shared.borrow().deposed_leader, None);
        // A node started a newer election: the old leader is probed before the new one wins.
        note_deposed_leader(&shared, &[(3, 1)], 4);
        assert_eq!(shared.borrow().deposed_leader, Some(1));
        // The new leader won: still the old one, and it is the same window.
        note_deposed_leader(&shared, &[(3, 1), (4, 2)], 4);
        assert_eq!(shared.borrow().deposed_leader, Some(1));
        assert_eq!(shared.borrow().deposed_reads.windows, 1);
        // Two stale leaders: the lowest node index, deterministically.
        note_deposed_leader(&shared, &[(3, 4), (2, 0), (5, 2)], 5);
        assert_eq!(shared.borrow().deposed_leader, Some(0));
        assert_eq!(shared.borrow().deposed_reads.windows, 2);
        // It stepped down: the window closes.
        note_deposed_leader(&shared, &[(5, 2)], 5);
        assert_eq!(shared.borrow().deposed_leader, None);
        note_deposed_leader(&shared, &[(5, 2), (4, 3)], 5);
        assert_eq!(shared.borrow().deposed_leader, Some(3));
        assert_eq!(shared.borrow().deposed_reads.windows, 3);
    }
}

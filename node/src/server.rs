//! The node event loop: one task that ticks the Raft core, receives datagrams (peer messages
//! and client requests), persists each Ready before sending its messages, and answers
//! clients. Committed entries go to an apply queue and reach the counter store in a later
//! turn of the loop (commit and apply are separate steps, as in etcd-io/raft applications):
//! writes are answered once applied, reads once the apply index reaches their read index.
//! The same loop serves turmoil hosts (`crate::sim`) and real processes (`crate::process`).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use tokio::time::{sleep_until, Duration, Instant};

use crate::apply_queue::ApplyQueue;
use crate::auth::{ClusterKey, ReplayGuard, Sealer, MAX_SEALED_BYTES};
use crate::bugs::{Bug, Bugs};
use crate::codec::fnv64;
use crate::control::NodeControl;
use crate::drops::{DropReason, DroppedDatagrams};
use crate::observe::{AppliedEntry, GrantedVote};
use crate::protocol::{AdminOp, ClientReply, ClientRequest, ReplyOutcome, Wire};
use crate::raft::{
    ConfChange, ConfChangeKind, Config, Entry, EntryPayload, LogIndex, MessageBody, NodeId,
    RaftNode, Role, Snapshot, Term,
};
use crate::storage::{Disk, Storage, StorageError};
use crate::store::{Command, CounterStore, StoreOp, StoreResult};
use crate::transport::{resolve, Endpoint, FaultyOutbox, Network};

/// How reads are served.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ReadMode {
    /// Linearizable: ReadIndex round, then answer once applied >= the read index.
    #[default]
    ReadIndex,
    /// Linearizable: the read goes through the log like a write.
    Log,
    /// Leader-lease reads (the core's `lease_reads`): while the leader's lease holds, reads
    /// need no heartbeat round; correct only under bounded clock drift.
    Lease,
    /// Not linearizable, on purpose: any running node, follower or not, answers a read from
    /// its own applied state at once (Consul's `stale`, etcd's serializable reads). It is
    /// there so that a checker can be shown catching the stale reads it allows.
    Stale,
}

/// Everything a node needs to start.
#[derive(Clone, Debug)]
pub struct NodeOptions {
    pub id: NodeId,
    /// Every voter's "host:port" (turmoil host name or real address), self included.
    pub peers: BTreeMap<NodeId, String>,
    /// One UDP socket for peers and clients.
    pub listen_port: u16,
    /// Real processes only: the IP to bind (loopback when `None`).
    pub listen_ip: Option<IpAddr>,
    pub data_dir: PathBuf,
    pub tick_ms: u64,
    pub seed: u64,
    pub bugs: Bugs,
    pub read_mode: ReadMode,
    /// Batching bound per AppendEntries (keeps datagrams small).
    pub max_append_entries_count: usize,
    pub max_inflight_appends: usize,
    /// Datagrams handled before the node persists and answers (group commit).
    pub max_datagrams_per_batch: usize,
    /// Client requests waiting for commit or a read index, beyond which new ones are refused.
    pub max_pending_requests: usize,
    /// The bootstrap configuration: the voters the cluster starts with (default: every key of
    /// `peers`). A node outside it joins later, when a leader adds it (`add-member`); e.g.
    /// `Some(vec![1])` on every node starts a cluster from one server that elects itself.
    pub bootstrap_voters: Option<Vec<NodeId>>,
    /// Take a snapshot and compact the log once this many entries were applied since the last
    /// one (0: never, the default of `NodeOptions::new`). The stored log stays under about
    /// twice this many entries.
    pub snapshot_every: u64,
    /// Every datagram is sealed and verified under this key (see `crate::auth`). The default
    /// of `NodeOptions::new` is `ClusterKey::for_simulation(0)`, for simulations and tests;
    /// `minos node` always sets the key from `--cluster-key`.
    pub cluster_key: ClusterKey,
    /// The longest randomized election timeout, in ticks (None: the core's default). Close to
    /// the shortest (15 ticks), nodes time out together: more split votes.
    pub election_timeout_max_ticks: Option<u32>,
}

impl NodeOptions {
    pub const DEFAULT_PORT: u16 = 7000;
    /// Recommended snapshot threshold, in applied entries (`minos node`'s default; set it on
    /// `NodeOptions` to bound a simulated node's log): keeps long runs bounded while a short
    /// run (a few hundred ops) never snapshots.
    pub const DEFAULT_SNAPSHOT_EVERY: u64 = 1000;

    pub fn new(
        id: NodeId,
        peers: BTreeMap<NodeId, String>,
        data_dir: impl Into<PathBuf>,
        seed: u64,
    ) -> Self {
        NodeOptions {
            id,
            peers,
            listen_port: Self::DEFAULT_PORT,
            listen_ip: None,
            data_dir: data_dir.into(),
            tick_ms: 10,
            seed,
            bugs: Bugs::NONE,
            read_mode: ReadMode::ReadIndex,
            max_append_entries_count: 64,
            max_inflight_appends: 4,
            max_datagrams_per_batch: 64,
            max_pending_requests: 4096,
            // Off unless asked for: a node caught up by a snapshot reports the entries it
            // skipped as `AppliedEntry::from_snapshot` placeholders, which an invariant checker
            // must know to skip (see NodeObservation::applied). `minos node` turns it on.
            snapshot_every: 0,
            bootstrap_voters: None,
            cluster_key: ClusterKey::for_simulation(0),
            election_timeout_max_ticks: None,
        }
    }

    fn raft_config(&self) -> Config {
        let voters: Vec<NodeId> = match &self.bootstrap_voters {
            Some(voters) => voters.clone(),
            None => self.peers.keys().copied().collect(),
        };
        // The core derives each node's election-timeout stream from (seed, id) itself; mixing
        // the id in here as well cancelled out and gave every node the same timeouts.
        let mut config = Config::new(self.id, voters, self.seed);
        config.max_append_entries_count = self.max_append_entries_count;
        config.max_inflight_appends = self.max_inflight_appends;
        config.bugs = self.bugs;
        if let Some(max_ticks) = self.election_timeout_max_ticks {
            config.election_timeout_max_ticks = max_ticks.max(config.election_timeout_min_ticks);
        }
        // The planted lease bug lives in lease reads, so it implies them.
        config.lease_reads =
            self.read_mode == ReadMode::Lease || self.bugs.has(Bug::LeaseNoDriftBound);
        config
    }
}

/// A node's snapshot data: the counter store (counters + sessions) and the address book, so
/// that a node caught up by a snapshot can reach members added before it.
pub fn encode_snapshot_state(
    store: &CounterStore,
    addresses: &BTreeMap<NodeId, SocketAddr>,
) -> Vec<u8> {
    let mut writer = crate::codec::ByteWriter::default();
    writer.bytes(&store.encode_snapshot());
    writer.u64(addresses.len() as u64);
    for (node, addr) in addresses {
        writer.u64(*node).str(&addr.to_string());
    }
    writer.bytes
}

/// The inverse of `encode_snapshot_state`.
pub fn decode_snapshot_state(
    bytes: &[u8],
    bugs: Bugs,
) -> Result<(CounterStore, BTreeMap<NodeId, String>), crate::codec::DecodeError> {
    let mut reader = crate::codec::ByteReader::new(bytes);
    let store = CounterStore::decode_snapshot(reader.bytes()?, bugs)?;
    let count = reader.u64()?;
    if count > bytes.len() as u64 {
        return Err(crate::codec::DecodeError(format!(
            "snapshot claims {count} addresses"
        )));
    }
    let mut addresses = BTreeMap::new();
    for _ in 0..count {
        let node = reader.u64()?;
        addresses.insert(node, reader.str()?.to_string());
    }
    reader.finish()?;
    Ok((store, addresses))
}

/// Why a node stopped.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    #[error("network: {0}")]
    Network(#[from] std::io::Error),
    #[error("bad options: {0}")]
    Options(String),
    /// An authenticated message contradicted this node's committed state: evidence of a
    /// safety bug somewhere in the cluster. The node stops rather than go on from there.
    #[error("safety violation, node stopped (fail-stop): {0}")]
    Safety(String),
}

/// Under the planted bug AckBeforeFsync, appended entries are synced this long after the
/// acknowledgements that depend on them went out (once a second, like Redis's
/// `appendfsync everysec`).
const DEFERRED_SYNC_MS: u64 = 1_000;

struct PendingWrite {
    from: SocketAddr,
    client_id: u64,
    seq: u64,
    op: StoreOp,
    since: Instant,
}

struct PendingRead {
    from: SocketAddr,
    client_id: u64,
    seq: u64,
    key: String,
    since: Instant,
}

/// Client requests still waiting after this long are answered (Retry for writes, NotLeader
/// for reads) so that nothing waits on the node forever; clients give up well before.
const PENDING_EXPIRY_MS: u64 = 30_000;
/// How often, in ticks, waiting requests are checked for expiry.
const EXPIRY_SWEEP_TICKS: u64 = 100;
/// Committed entries applied per turn of the event loop, so that a long catch-up never
/// starves the network and the ticks.
const MAX_APPLIED_PER_TURN: usize = 256;
/// Peer addresses a node learns from authentic Raft messages at most: clusters have a handful
/// of members, and ids past this many are noise from a key holder (the map is never pruned).
const MAX_PEER_ADDRS: usize = 1_024;

struct Server<D: Disk> {
    options: NodeOptions,
    control: NodeControl,
    network: Network,
    endpoint: Endpoint,
    outbox: FaultyOutbox,
    /// Opens incoming datagrams; the outbox holds the sealing half.
    auth: Sealer,
    admin_replays: ReplayGuard,
    dropped: DroppedDatagrams,
    /// An assertion of the core tripped on an authenticated message: the node must stop.
    core_failure: Option<String>,
    storage: Storage<D>,
    raft: RaftNode,
    store: CounterStore,
    peer_addrs: BTreeMap<NodeId, SocketAddr>,
    /// Committed entries not yet applied (commit runs ahead of apply).
    apply_queue: ApplyQueue,
    last_applied: LogIndex,
    pending_writes: BTreeMap<LogIndex, PendingWrite>,
    pending_reads: BTreeMap<u64, PendingRead>,
    /// Reads whose read index is known, waiting for the apply index to reach it.
    ready_reads: Vec<(LogIndex, PendingRead)>,
    next_read_id: u64,
    leader_term: Option<Term>,
    deferred_sync_at: Option<Instant>,
    started_at: Instant,
    /// Applied index of the state digest last handed to the observation.
    digest_applied: Option<LogIndex>,
}

/// Runs one node until a fatal error. `disk` is the file system the storage lives on.
pub async fn run<D: Disk>(
    options: NodeOptions,
    control: NodeControl,
    network: Network,
    disk: D,
) -> Result<(), NodeError> {
    if !options.peers.contains_key(&options.id) {
        return Err(NodeError::Options(format!(
            "peers do not include the node itself ({})",
            options.id
        )));
    }
    if options.tick_ms == 0 {
        return Err(NodeError::Options("tick_ms must be positive".into()));
    }
    let mut peer_addrs = BTreeMap::new();
    for (&peer, address) in &options.peers {
        peer_addrs.insert(peer, resolve(network, address).await?);
    }
    let endpoint = Endpoint::bind(network, options.listen_ip, options.listen_port).await?;
    let (storage, recovered) = Storage::open(disk, &options.data_dir, options.bugs).await?;
    tracing::info!(
        node = options.id,
        term = recovered.hard_state.term,
        voted_for = ?recovered.hard_state.voted_for,
        log_entries = recovered.entries.len(),
        "node recovered"
    );
    if let Err(detail) = recovered.validate() {
        return Err(StorageError::Corrupt {
            path: options.data_dir.clone(),
            detail,
        }
        .into());
    }
    let config = options.raft_config();
    config.validate().map_err(NodeError::Options)?;
    let (store, last_applied, snapshot_addresses) =
        match &recovered.snapshot {
            None => (CounterStore::new(options.bugs), 0, BTreeMap::new()),
            Some(snapshot) => {
                let (store, addresses) = decode_snapshot_state(&snapshot.data, options.bugs)
                    .map_err(|error| StorageError::Corrupt {
                        path: options.data_dir.clone(),
                        detail: format!("snapshot state: {error}"),
                    })?;
                control.record_snapshot_restored(snapshot.meta.index);
                (store, recovered.applied_index, addresses)
            }
        };
    let conf_entries: Vec<Entry> = recovered
        .entries
        .iter()
        .filter(|entry| matches!(entry.payload, EntryPayload::ConfChange(_)))
        .cloned()
        .collect();
    let raft = RaftNode::new(config, recovered);
    let auth = Sealer::new(options.cluster_key.clone(), network, options.id);
    let started_ms = auth.now_ms();
    let mut server = Server {
        network,
        store,
        outbox: FaultyOutbox::new(
            Some(control.net_switch()),
            Sealer::new(options.cluster_key.clone(), network, options.id),
        ),
        auth,
        admin_replays: ReplayGuard::new(ReplayGuard::DEFAULT_WINDOW_MS, started_ms),
        dropped: DroppedDatagrams::new(options.id),
        core_failure: None,
        options,
        control,
        endpoint,
        storage,
        raft,
        peer_addrs,
        apply_queue: ApplyQueue::default(),
        last_applied,
        pending_writes: BTreeMap::new(),
        pending_reads: BTreeMap::new(),
        ready_reads: Vec::new(),
        next_read_id: 1,
        leader_term: None,
        deferred_sync_at: None,
        started_at: Instant::now(),
        digest_applied: None,
    };
    server.learn_snapshot_addresses(&snapshot_addresses).await;
    server.learn_addresses(&conf_entries).await;
    server.control.node_started(server.options.id);
    // turmoil drops the task on a crash; the guard records that the node is down.
    let _running = RunningGuard(server.control.clone());
    server.serve().await
}

struct RunningGuard(NodeControl);

impl Drop for RunningGuard {
    fn drop(&mut self) {
        self.0.node_down();
    }
}

/// The most ticks one wake-up delivers after a blocked loop (10 s at 10 ms per tick): every
/// timer and lease in the core has run out long before.
const MAX_CATCH_UP_TICKS: u64 = 1_000;

impl<D: Disk> Server<D> {
    /// The real-time length of one tick under the node's clock drift (a fast clock ticks
    /// more often).
    fn tick_period(&self) -> Duration {
        let (_skew_ms, drift_ppm) = self.control.clock();
        let micros =
            self.options.tick_ms as i128 * 1_000 * 1_000_000 / (1_000_000 + drift_ppm as i128);
        Duration::from_micros(micros.max(1) as u64)
    }

    async fn serve(&mut self) -> Result<(), NodeError> {
        let mut buf = vec![0u8; MAX_SEALED_BYTES + 1];
        let mut next_tick = Instant::now() + self.tick_period();
        let mut ticks: u64 = 0;
        let far_future = Instant::now() + Duration::from_secs(365 * 24 * 3600);
        loop {
            if self.control.is_paused() {
                tracing::info!(
                    node = self.options.id,
                    local_ms = self.local_time_ms(),
                    "paused"
                );
                self.control.wait_resumed().await;
                tracing::info!(
                    node = self.options.id,
                    local_ms = self.local_time_ms(),
                    "resumed"
                );
                // Ticks missed while stopped are dropped, as a Go ticker drops them (etcd's
                // loop): the next tick is a full period after resuming. Delivering them in
                // one burst instead fires every paused node's election timer at once (a
                // 4-node cluster paused together then elected nobody for 4 s). But a lease
                // counted in ticks no longer bounds real time after a stop: without dropping
                // it, a leader paused past its lease answered lease reads after a newer
                // leader's election (found by the swarm's lease rule).
                self.raft.forget_lease();
                next_tick = Instant::now() + self.tick_period();
                continue;
            }
            let delayed_due = self.outbox.next_due();
            let deferred_sync = self.deferred_sync_at;
            let apply_due = self.apply_queue.next_due();
            tokio::select! {
                biased;
                _ = sleep_until(next_tick) => {
                    // Ticks missed while the loop was blocked (a slow fsync holds it, as a
                    // real fdatasync does) are delivered now, before any message: the core's
                    // timers and its read lease must see the time that passed, or a leader
                    // cut off during the block serves lease reads from a lease that ran out
                    // (found by the swarm, lease reads under slow-fsync, seed 800).
                    let period = self.tick_period();
                    let now = Instant::now();
                    let mut due_ticks: u64 = 1;
                    while next_tick + period <= now && due_ticks < MAX_CATCH_UP_TICKS {
                        next_tick += period;
                        due_ticks += 1;
                    }
                    for _ in 0..due_ticks {
                        self.raft.tick();
                        ticks += 1;
                        if ticks % EXPIRY_SWEEP_TICKS == 0 {
                            self.expire_pending().await;
                            self.dropped.maybe_report();
                        }
                    }
                    next_tick += period;
                    if next_tick <= now {
                        next_tick = now + period;
                    }
                    if let Some(to) = self.control.take_transfer_request() {
                        if let Err(refused) = self.raft.transfer_leadership(to) {
                            tracing::info!(node = self.options.id, to, hint = ?refused.leader_hint, "transfer refused: not leader");
                        }
                    }
                    if let Some(op) = self.control.take_membership_request() {
                        let (ok, text) = self.admin(op).await;
                        // The harness re-sends until the change shows: refusals are routine.
                        if ok {
                            tracing::info!(node = self.options.id, %text, "membership change from the harness");
                        } else {
                            tracing::debug!(node = self.options.id, %text, "membership request refused");
                        }
                    }
                }
                _ = sleep_until(delayed_due.unwrap_or(far_future)), if delayed_due.is_some() => {
                    self.outbox.flush_due(&self.endpoint).await;
                }
                _ = sleep_until(deferred_sync.unwrap_or(far_future)), if deferred_sync.is_some() => {
                    self.deferred_sync_at = None;
                    self.storage.sync().await?;
                }
                _ = sleep_until(apply_due.unwrap_or(far_future)), if apply_due.is_some() => {
                    self.apply_due_entries().await?;
                }
                received = self.outbox.receive(&self.endpoint, &mut buf) => {
                    // UDP receive errors (e.g. an ICMP report about an earlier send) concern
                    // one datagram, not the socket: note them and keep serving.
                    let (len, from) = match received {
                        Ok(received) => received,
                        Err(error) => {
                            tracing::debug!(%error, "receive failed");
                            continue;
                        }
                    };
                    self.on_datagram(&buf[..len], from).await;
                    for _ in 1..self.options.max_datagrams_per_batch {
                        match self.outbox.try_receive(&self.endpoint, &mut buf) {
                            Ok((len, from)) => self.on_datagram(&buf[..len], from).await,
                            Err(_) => break,
                        }
                    }
                    let failure = self
                        .raft
                        .safety_violation()
                        .map(ToString::to_string)
                        .or_else(|| self.core_failure.take());
                    if let Some(violation) = failure {
                        tracing::error!(node = self.options.id, %violation, "fail-stop");
                        return Err(NodeError::Safety(violation));
                    }
                }
            }
            self.process_ready().await?;
        }
    }

    async fn on_datagram(&mut self, bytes: &[u8], from: SocketAddr) {
        if bytes.len() > MAX_SEALED_BYTES {
            let detail = format!("{} bytes", bytes.len());
            self.dropped.record(DropReason::Malformed, from, &detail);
            return;
        }
        // Nothing unauthenticated reaches the decoder, the core or the store.
        let opened = match self.auth.open(bytes) {
            Ok(opened) => opened,
            Err(error) => {
                self.dropped
                    .record(DropReason::Unauthenticated, from, &error);
                return;
            }
        };
        match Wire::decode(opened.payload) {
            Ok(Wire::Raft(message)) => {
                if message.to != self.options.id {
                    let detail = format!("for node {} from node {}", message.to, message.from);
                    self.dropped.record(DropReason::Misaddressed, from, &detail);
                    return;
                }
                // A member added after this node's options were written: learn its address
                // (a bounded number of them: ids past that are a key holder's noise).
                if self.peer_addrs.len() < MAX_PEER_ADDRS {
                    self.peer_addrs.entry(message.from).or_insert(from);
                }
                let refused_before = self.raft.refused_messages();
                let (kind, sender, term) = (message.body.kind_name(), message.from, message.term);
                let summary = || format!("{kind} from node {sender} in term {term}");
                // The core refuses impossible input itself (refused_messages, safety_violation);
                // an assertion that still trips means an authenticated peer sent what no
                // correct node sends: stop cleanly (fail-stop) instead of crashing.
                let raft = &mut self.raft;
                let stepped =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| raft.step(message)));
                if let Err(panic) = stepped {
                    let detail = panic
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| panic.downcast_ref::<&str>().map(|text| text.to_string()))
                        .unwrap_or_else(|| "unknown".into());
                    self.core_failure
                        .get_or_insert(format!("core invariant failed on {}: {detail}", summary()));
                } else if self.raft.refused_messages() > refused_before {
                    let detail = format!("impossible term or index: {}", summary());
                    self.dropped.record(DropReason::Implausible, from, &detail);
                }
            }
            Ok(Wire::Admin(request)) => {
                if !self.addressed_to_me(&request.to) {
                    let detail = format!("admin request for {:?}", request.to);
                    self.dropped.record(DropReason::Misaddressed, from, &detail);
                    let outcome = ReplyOutcome::Admin {
                        ok: false,
                        text: format!(
                            "refused: the request was sealed for {:?}, not for this node",
                            request.to
                        ),
                    };
                    self.reply(from, request.client_id, request.seq, outcome)
                        .await;
                    return;
                }
                // A replayed membership change or transfer would change the cluster again.
                if let Err(error) = self.admin_replays.check(&opened, self.auth.now_ms()) {
                    self.dropped.record(DropReason::Replayed, from, &error);
                    let outcome = ReplyOutcome::Admin {
                        ok: false,
                        text: format!("refused: {error}"),
                    };
                    self.reply(from, request.client_id, request.seq, outcome)
                        .await;
                    return;
                }
                if self.raft.status().role != Role::Leader {
                    let leader_hint = self.leader_hint();
                    let outcome = ReplyOutcome::NotLeader { leader_hint };
                    self.reply(from, request.client_id, request.seq, outcome)
                        .await;
                    return;
                }
                let (ok, text) = self.admin(request.op).await;
                let outcome = ReplyOutcome::Admin { ok, text };
                self.reply(from, request.client_id, request.seq, outcome)
                    .await;
            }
            Ok(Wire::Request(request)) => self.on_request(request, from).await,
            Ok(Wire::Reply(_)) => tracing::debug!(%from, "ignoring a client reply sent to a node"),
            Err(error) => self.dropped.record(DropReason::Malformed, from, &error),
        }
    }

    /// Tells the client waiting on `write` that its outcome is unknown on this node: it may
    /// still commit elsewhere, so the client retries under the same request id.
    async fn retry_write(&mut self, write: PendingWrite, reason: &str) {
        let outcome = ReplyOutcome::Retry {
            reason: reason.to_string(),
        };
        self.reply(write.from, write.client_id, write.seq, outcome)
            .await;
    }

    async fn reply(&mut self, to: SocketAddr, client_id: u64, seq: u64, outcome: ReplyOutcome) {
        let wire = Wire::Reply(ClientReply {
            client_id,
            seq,
            outcome,
        });
        self.outbox.send(&self.endpoint, &wire, to).await;
    }

    /// Whether an admin request sealed for `to` (the address its sender sent it to) is for
    /// this node: the port this node listens on, and the IP it is bound to; when bound to
    /// every interface (simulation, or `--listen 0.0.0.0:P`), the IP the cluster knows it by
    /// when its peers entry is an address, else the port alone.
    fn addressed_to_me(&self, to: &str) -> bool {
        let Ok(to) = to.parse::<SocketAddr>() else {
            return false;
        };
        let Ok(local) = self.endpoint.local_addr() else {
            return false;
        };
        if to.port() != local.port() {
            return false;
        }
        if !local.ip().is_unspecified() {
            return to.ip() == local.ip();
        }
        match self
            .options
            .peers
            .get(&self.options.id)
            .and_then(|known| known.parse::<SocketAddr>().ok())
        {
            Some(known) => known.ip() == to.ip() || known.ip().is_unspecified(),
            None => true,
        }
    }

    fn leader_hint(&self) -> Option<String> {
        let leader = self.raft.status().leader?;
        if leader == self.options.id {
            return None;
        }
        self.options
            .peers
            .get(&leader)
            .cloned()
            .or_else(|| self.peer_addrs.get(&leader).map(|addr| addr.to_string()))
    }

    /// Serves an administration request on the leader: (accepted, answer text).
    async fn admin(&mut self, op: AdminOp) -> (bool, String) {
        let proposed = match op {
            AdminOp::Members => {
                let status = self.raft.status();
                let addresses: BTreeMap<String, String> = self
                    .peer_addrs
                    .iter()
                    .filter(|(id, _)| status.voters.contains(id) || status.learners.contains(id))
                    .map(|(id, addr)| (id.to_string(), addr.to_string()))
                    .collect();
                let members = serde_json::json!({
                    "leader": status.leader,
                    "term": status.term,
                    "voters": status.voters,
                    "learners": status.learners,
                    "addresses": addresses,
                });
                return (true, members.to_string());
            }
            AdminOp::TransferLeader { to } => {
                if !self.raft.status().voters.contains(&to) {
                    return (false, format!("node {to} is not a voter"));
                }
                return match self.raft.transfer_leadership(to) {
                    Ok(()) => (true, format!("transferring leadership to node {to}")),
                    Err(refused) => (false, refused.to_string()),
                };
            }
            AdminOp::AddMember { id, address } => {
                let addr = match resolve(self.network, &address).await {
                    Ok(addr) => addr,
                    Err(error) => return (false, format!("cannot resolve {address}: {error}")),
                };
                let change = ConfChange {
                    kind: ConfChangeKind::AddLearner,
                    node: id,
                    context: address.clone().into_bytes(),
                };
                self.raft.propose_conf_change(change).map(|(_, index)| {
                    self.peer_addrs.insert(id, addr);
                    format!("node {id} ({address}) added as a learner at log index {index}; promoted to voter once caught up")
                })
            }
            AdminOp::RemoveMember { id } => {
                let change = ConfChange {
                    kind: ConfChangeKind::Remove,
                    node: id,
                    context: Vec::new(),
                };
                self.raft
                    .propose_conf_change(change)
                    .map(|(_, index)| format!("removal of node {id} proposed at log index {index}"))
            }
        };
        match proposed {
            Ok(text) => (true, text),
            Err(error) => (false, error.to_string()),
        }
    }

    async fn learn_snapshot_addresses(&mut self, addresses: &BTreeMap<NodeId, String>) {
        for (&node, address) in addresses {
            if self.peer_addrs.contains_key(&node) {
                continue;
            }
            match resolve(self.network, address).await {
                Ok(addr) => {
                    self.peer_addrs.insert(node, addr);
                }
                Err(error) => {
                    tracing::warn!(node, %address, %error, "cannot resolve a member's address")
                }
            }
        }
    }

    /// Learns the addresses of members added through the log (their change carries it).
    async fn learn_addresses(&mut self, entries: &[Entry]) {
        for entry in entries {
            let EntryPayload::ConfChange(change) = &entry.payload else {
                continue;
            };
            if change.context.is_empty() || self.peer_addrs.contains_key(&change.node) {
                continue;
            }
            let Ok(address) = std::str::from_utf8(&change.context) else {
                continue;
            };
            match resolve(self.network, address).await {
                Ok(addr) => {
                    self.peer_addrs.insert(change.node, addr);
                }
                Err(error) => {
                    tracing::warn!(node = change.node, %address, %error, "cannot resolve a member's address")
                }
            }
        }
    }

    async fn refuse(&mut self, request: &ClientRequest, from: SocketAddr) {
        let leader_hint = self.leader_hint();
        self.reply(
            from,
            request.client_id,
            request.seq,
            ReplyOutcome::NotLeader { leader_hint },
        )
        .await;
    }

    /// Answers a read from this node's applied state, with no leadership check: stale mode's
    /// follower-local reads, and the planted `StaleLocalRead` bug.
    async fn answer_from_local_state(
        &mut self,
        request: &ClientRequest,
        key: &str,
        from: SocketAddr,
    ) {
        let value = self.store.get(key);
        self.reply(
            from,
            request.client_id,
            request.seq,
            ReplyOutcome::Done(StoreResult::Value(value)),
        )
        .await;
    }

    async fn on_request(&mut self, request: ClientRequest, from: SocketAddr) {
        if self.options.read_mode == ReadMode::Stale {
            if let StoreOp::Read { key } = &request.op {
                self.answer_from_local_state(&request, key, from).await;
                return;
            }
        }
        if self.raft.status().role != Role::Leader
            || self.pending_writes.len() + self.pending_reads.len() + self.ready_reads.len()
                >= self.options.max_pending_requests
        {
            self.refuse(&request, from).await;
            return;
        }
        if let StoreOp::Read { key } = &request.op {
            // Planted bug StaleLocalRead: a leader answers from its own state without
            // confirming it still leads, so a deposed leader behind a partition serves stale
            // values (the etcd/Consul stale-read class Jepsen reported in 2014).
            if self.options.bugs.has(Bug::StaleLocalRead) {
                self.answer_from_local_state(&request, key, from).await;
                return;
            }
            if self.options.read_mode != ReadMode::Log {
                let read_id = self.next_read_id;
                self.next_read_id += 1;
                match self.raft.read_index(read_id) {
                    Ok(()) => {
                        let pending = PendingRead {
                            from,
                            client_id: request.client_id,
                            seq: request.seq,
                            key: key.clone(),
                            since: Instant::now(),
                        };
                        self.pending_reads.insert(read_id, pending);
                    }
                    Err(_) => self.refuse(&request, from).await,
                }
                return;
            }
        }
        let command = Command {
            client_id: request.client_id,
            seq: request.seq,
            op: request.op.clone(),
        };
        match self.raft.propose(command.encode()) {
            Ok((_term, index)) => {
                // Planted bug AckBeforeCommit: the leader acknowledges an add once it is in
                // its own log, with a total computed from its local state; if the entry never
                // commits the client saw a write that was lost (the ack-before-replication
                // data loss behind MongoDB's w:1 rollbacks).
                if self.options.bugs.has(Bug::AckBeforeCommit) {
                    if let StoreOp::Add { key, delta } = &request.op {
                        let total = self.store.get(key).wrapping_add(*delta);
                        self.reply(
                            from,
                            request.client_id,
                            request.seq,
                            ReplyOutcome::Done(StoreResult::Value(total)),
                        )
                        .await;
                        return;
                    }
                }
                let pending = PendingWrite {
                    from,
                    client_id: request.client_id,
                    seq: request.seq,
                    op: request.op,
                    since: Instant::now(),
                };
                if let Some(replaced) = self.pending_writes.insert(index, pending) {
                    self.retry_write(replaced, "another proposal took this log index")
                        .await;
                }
            }
            Err(_) => self.refuse(&request, from).await,
        }
    }

    async fn process_ready(&mut self) -> Result<(), NodeError> {
        while self.raft.has_ready() {
            let ready = self.raft.take_ready();
            // Before persisting, which may block (slow fsync): the harness must see a lease
            // read in the step it was decided, not after the block (`raft_rules`).
            self.control.record_lease_reads(self.raft.lease_reads());
            if let Some(snapshot) = &ready.snapshot {
                self.install_snapshot(snapshot).await?;
            }
            self.learn_addresses(&ready.entries).await;
            // Planted bug AckBeforeFsync: the log is written but synced later on a timer while
            // the messages (votes, append acknowledgements) go out at once, so a crash loses
            // entries a quorum already counted (stores that fsync on a timer, such as Redis with
            // `appendfsync everysec`, lose up to a second of acknowledged writes this way).
            if self.options.bugs.has(Bug::AckBeforeFsync) {
                self.storage.append(&ready.entries)?;
                if let Some(hard_state) = &ready.hard_state {
                    self.storage.save_hard_state(hard_state).await?;
                }
                if !ready.entries.is_empty() {
                    let due = Instant::now() + Duration::from_millis(DEFERRED_SYNC_MS);
                    self.deferred_sync_at.get_or_insert(due);
                }
            } else {
                self.storage
                    .persist(ready.hard_state.as_ref(), &ready.entries)
                    .await?;
            }
            for message in ready.messages {
                if let MessageBody::RequestVoteResponse {
                    pre_vote: false,
                    granted: true,
                } = message.body
                {
                    self.control.record_vote_granted(GrantedVote {
                        term: message.term,
                        voter: message.from,
                        candidate: message.to,
                    });
                }
                match self.peer_addrs.get(&message.to).copied() {
                    Some(to) => {
                        self.outbox
                            .send(&self.endpoint, &Wire::Raft(message), to)
                            .await
                    }
                    None => tracing::warn!(to = message.to, "no address for peer"),
                }
            }
            // Applied in a later turn of the loop, behind commit.
            let lag = self.control.apply_lag();
            self.apply_queue
                .push(ready.committed_entries, Instant::now(), lag);
            for read_state in ready.read_states {
                if let Some(pending) = self.pending_reads.remove(&read_state.request_id) {
                    self.ready_reads.push((read_state.index, pending));
                }
            }
            for read_id in ready.dropped_read_requests {
                if let Some(pending) = self.pending_reads.remove(&read_id) {
                    let leader_hint = self.leader_hint();
                    self.reply(
                        pending.from,
                        pending.client_id,
                        pending.seq,
                        ReplyOutcome::NotLeader { leader_hint },
                    )
                    .await;
                }
            }
        }
        self.answer_ready_reads().await;
        self.on_leadership_change().await;
        let status = self.raft.status();
        self.control.record_status(&status, self.last_applied);
        if self.digest_applied != Some(self.last_applied) {
            self.digest_applied = Some(self.last_applied);
            self.control.record_state_digest(
                self.last_applied,
                self.store.state_digest(),
                self.store.replica_state(),
            );
        }
        Ok(())
    }

    /// Applies the committed entries that are due, then compacts the log if it is time.
    async fn apply_due_entries(&mut self) -> Result<(), NodeError> {
        let due = self
            .apply_queue
            .take_due(Instant::now(), MAX_APPLIED_PER_TURN);
        for entry in due {
            self.apply(entry).await;
        }
        self.maybe_snapshot().await
    }

    /// A snapshot from the leader replaces the stored log and the state machine.
    async fn install_snapshot(&mut self, snapshot: &Snapshot) -> Result<(), NodeError> {
        let index = snapshot.meta.index;
        assert!(index > self.last_applied, "installed snapshot is not ahead");
        // The core takes a snapshot only beyond its commit index, so it covers every
        // committed entry still waiting to be applied.
        self.apply_queue.discard_through(index);
        assert_eq!(
            self.apply_queue.len(),
            0,
            "entries queued for apply beyond an installed snapshot"
        );
        self.storage.install_snapshot(snapshot).await?;
        let (store, addresses) =
            decode_snapshot_state(&snapshot.data, self.options.bugs).map_err(|error| {
                StorageError::Corrupt {
                    path: self.options.data_dir.clone(),
                    detail: format!("snapshot from the leader: {error}"),
                }
            })?;
        self.store = store;
        self.learn_snapshot_addresses(&addresses).await;
        self.last_applied = index;
        self.control.record_snapshot_restored(index);
        tracing::info!(node = self.options.id, index, "installed a snapshot");
        // Waiters for entries the snapshot covers will never see them applied here.
        let covered: Vec<LogIndex> = self
            .pending_writes
            .range(..=index)
            .map(|(i, _)| *i)
            .collect();
        for covered_index in covered {
            let write = self.pending_writes.remove(&covered_index).expect("listed");
            self.retry_write(write, "outcome unknown: replaced by a snapshot")
                .await;
        }
        Ok(())
    }

    /// Log compaction once `snapshot_every` entries were applied since the last snapshot.
    async fn maybe_snapshot(&mut self) -> Result<(), NodeError> {
        let every = self.options.snapshot_every;
        let snapshot_index = self.raft.status().snapshot_index;
        if every == 0 || self.last_applied < snapshot_index + every {
            return Ok(());
        }
        let data = encode_snapshot_state(&self.store, &self.peer_addrs);
        let mut snapshot = self
            .raft
            .compact(self.last_applied, data)
            .map_err(NodeError::Options)?;
        // PLANTED BUG `snapshot-loses-index`: the snapshot file records the log's last index
        // instead of the index the state was captured at, so after a restart from it the
        // entries in between (appended, maybe committed, never applied here) are skipped and
        // this replica's counters silently diverge. Imitates the etcd 3.5.0-3.5.2 data
        // inconsistency (etcd-io/etcd#13766, 2022): after a crash the stored consistent index
        // did not match the applied state, so entries were skipped or applied twice.
        if self.options.bugs.has(Bug::SnapshotLosesIndex) {
            let last_index = self.raft.status().last_index;
            if let Some(term) = self.raft.term_at(last_index) {
                snapshot.meta.index = last_index;
                snapshot.meta.term = term;
            }
        }
        self.storage.compact(&snapshot).await?;
        tracing::debug!(
            node = self.options.id,
            index = snapshot.meta.index,
            "snapshot taken, log compacted"
        );
        Ok(())
    }

    async fn answer_ready_reads(&mut self) {
        if self
            .ready_reads
            .iter()
            .all(|(index, _)| *index > self.last_applied)
        {
            return;
        }
        let (due, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.ready_reads)
            .into_iter()
            .partition(|(index, _)| *index <= self.last_applied);
        self.ready_reads = waiting;
        for (_, read) in due {
            let value = self.store.get(&read.key);
            self.reply(
                read.from,
                read.client_id,
                read.seq,
                ReplyOutcome::Done(StoreResult::Value(value)),
            )
            .await;
        }
    }

    /// Answers client requests that waited too long (see `PENDING_EXPIRY_MS`).
    async fn expire_pending(&mut self) {
        let Some(cutoff) = Instant::now().checked_sub(Duration::from_millis(PENDING_EXPIRY_MS))
        else {
            return;
        };
        let stale_writes: Vec<LogIndex> = self
            .pending_writes
            .iter()
            .filter(|(_, write)| write.since < cutoff)
            .map(|(index, _)| *index)
            .collect();
        for index in stale_writes {
            let write = self.pending_writes.remove(&index).expect("collected above");
            self.retry_write(write, "no outcome known after a long wait")
                .await;
        }
        let stale_reads: Vec<u64> = self
            .pending_reads
            .iter()
            .filter(|(_, read)| read.since < cutoff)
            .map(|(id, _)| *id)
            .collect();
        let leader_hint = self.leader_hint();
        for read_id in stale_reads {
            let read = self
                .pending_reads
                .remove(&read_id)
                .expect("collected above");
            let outcome = ReplyOutcome::NotLeader {
                leader_hint: leader_hint.clone(),
            };
            self.reply(read.from, read.client_id, read.seq, outcome)
                .await;
        }
    }

    /// When this node stops leading, nobody will answer its waiting clients: tell them.
    /// Writes may still commit under the next leader, so they get Retry, never a refusal.
    async fn on_leadership_change(&mut self) {
        let status = self.raft.status();
        let leading_term = (status.role == Role::Leader).then_some(status.term);
        if leading_term == self.leader_term {
            return;
        }
        if leading_term.is_some() {
            tracing::info!(
                node = self.options.id,
                term = status.term,
                local_ms = self.local_time_ms(),
                "became leader"
            );
        } else if let Some(led_term) = self.leader_term {
            // With "became leader", the span in which this node served as leader: what a
            // stale read from a deposed leader is measured against.
            tracing::info!(
                node = self.options.id,
                led_term,
                term = status.term,
                local_ms = self.local_time_ms(),
                "stepped down"
            );
        }
        self.leader_term = leading_term;
        if leading_term.is_some() {
            return;
        }
        // Planted bug AckByIndex keeps the waiters, keyed by log index only, across terms:
        // whatever entry later applies at that index answers them.
        let writes = if self.options.bugs.has(Bug::AckByIndex) {
            BTreeMap::new()
        } else {
            std::mem::take(&mut self.pending_writes)
        };
        for (_, write) in writes {
            self.retry_write(write, "leadership lost before the outcome was known")
                .await;
        }
        let reads: Vec<PendingRead> = std::mem::take(&mut self.pending_reads)
            .into_values()
            .chain(
                std::mem::take(&mut self.ready_reads)
                    .into_iter()
                    .map(|(_, read)| read),
            )
            .collect();
        let leader_hint = self.leader_hint();
        for read in reads {
            self.reply(
                read.from,
                read.client_id,
                read.seq,
                ReplyOutcome::NotLeader {
                    leader_hint: leader_hint.clone(),
                },
            )
            .await;
        }
    }

    /// The node's own clock reading (skewed and drifting), for its log timestamps.
    fn local_time_ms(&self) -> i64 {
        let (skew_ms, drift_ppm) = self.control.clock();
        let elapsed_ms = self.started_at.elapsed().as_millis() as i64;
        elapsed_ms + elapsed_ms * drift_ppm / 1_000_000 + skew_ms
    }

    async fn apply(&mut self, entry: Entry) {
        if entry.index <= self.last_applied {
            return; // already applied in this incarnation
        }
        assert_eq!(
            entry.index,
            self.last_applied + 1,
            "committed entries arrive in order without gaps"
        );
        let mut applied = None;
        let digest = match &entry.payload {
            EntryPayload::Command(bytes) => {
                match Command::decode(bytes) {
                    Ok(command) => {
                        let outcome = self.store.apply(&command);
                        applied = Some((command, outcome));
                    }
                    Err(error) => {
                        tracing::error!(index = entry.index, %error, "skipping an undecodable command")
                    }
                }
                fnv64(bytes)
            }
            EntryPayload::Noop => 0,
            #[allow(unreachable_patterns)]
            _ => fnv64(&crate::storage::encode_entry(&entry)),
        };
        self.last_applied = entry.index;
        self.control.record_applied(AppliedEntry {
            index: entry.index,
            term: entry.term,
            digest,
        });
        let Some(pending) = self.pending_writes.remove(&entry.index) else {
            return;
        };
        let own = applied.as_ref().filter(|(command, _)| {
            command.client_id == pending.client_id && command.seq == pending.seq
        });
        let outcome = match own {
            Some((_, outcome)) => match &outcome.result {
                Some(result) => ReplyOutcome::Done(result.clone()),
                None => ReplyOutcome::Retry {
                    reason: "superseded by a newer request of this client".into(),
                },
            },
            // Planted bug AckByIndex: any entry at the awaited index counts as the client's,
            // so a proposal overwritten after a leader change is acknowledged anyway (the
            // "acknowledge by index, not by identity" mistake Raft's thesis section 6.3 warns of).
            None if self.options.bugs.has(Bug::AckByIndex) => {
                ReplyOutcome::Done(self.result_as_if_applied(&pending.op))
            }
            None => ReplyOutcome::Retry {
                reason: "another entry was committed at this log index".into(),
            },
        };
        self.reply(pending.from, pending.client_id, pending.seq, outcome)
            .await;
    }

    /// What the AckByIndex bug tells a client whose entry did not apply.
    fn result_as_if_applied(&self, op: &StoreOp) -> StoreResult {
        match op {
            StoreOp::Read { key } | StoreOp::Add { key, .. } => {
                StoreResult::Value(self.store.get(key))
            }
            StoreOp::Write { .. } => StoreResult::Written,
            StoreOp::Cas { .. } => StoreResult::Swapped,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_state_carries_the_store_and_the_address_book() {
        let mut store = CounterStore::new(Bugs::NONE);
        store.apply(&Command {
            client_id: 1,
            seq: 1,
            op: StoreOp::Add {
                key: "k".into(),
                delta: 7,
            },
        });
        let addresses = BTreeMap::from([(4, "127.0.0.1:7004".parse().unwrap())]);
        let bytes = encode_snapshot_state(&store, &addresses);
        let (restored, restored_addresses) = decode_snapshot_state(&bytes, Bugs::NONE).unwrap();
        assert_eq!(restored.state_digest(), store.state_digest());
        assert_eq!(restored_addresses[&4], "127.0.0.1:7004");
        assert!(decode_snapshot_state(&bytes[..bytes.len() - 1], Bugs::NONE).is_err());
    }
}

//! The system under test, as the driver sees it: how to start node i on its turmoil host,
//! how a client performs an operation, how to observe nodes, and which faults it supports.
//! The real Raft store and the toy stores implement this trait; the driver is generic over it.

#![allow(async_fn_in_trait)] // everything runs on turmoil's single thread; no Send needed

use std::collections::BTreeSet;

use serde::Serialize;

use crate::options::FaultKind;
use crate::workload::Op;

/// The answer of the system to one client operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpReply {
    /// Happened; `Some(value)` for reads (the value) and adds (the new total).
    Ok(Option<i64>),
    /// Certainly did not happen (e.g. a cas whose compare failed).
    Fail(String),
    /// May or may not have happened.
    Unknown(String),
}

/// One logical client process (a fresh one after every `info`).
pub trait SutClient {
    async fn invoke(&mut self, op: &Op) -> OpReply;
}

/// One applied state-machine entry as a node reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppliedEntry {
    pub index: u64,
    pub term: u64,
    pub digest: u64,
}

impl AppliedEntry {
    /// An index whose state the node received inside a snapshot instead of applying the
    /// entry itself. Term 0 never occurs in a real entry.
    pub fn from_snapshot(index: u64) -> AppliedEntry {
        AppliedEntry {
            index,
            term: 0,
            digest: 0,
        }
    }

    pub fn is_from_snapshot(&self) -> bool {
        self.term == 0
    }
}

/// What the driver reads from a node after every step, for the invariants.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeView {
    pub running: bool,
    pub is_leader: bool,
    pub term: u64,
    pub commit_index: u64,
    /// Term of the entry at `commit_index` (None when the system does not say).
    pub commit_term: Option<u64>,
    /// Index of the configuration entry in force (None when the system does not say).
    pub config_index: Option<u64>,
    /// Reads the node answered as leader on its lease alone since it (re)started (0 when
    /// the system does not say).
    pub lease_reads: u64,
    /// The last index of the node's log (0 when the system does not say).
    pub last_log_index: u64,
    /// The node (0-based) this node voted for in `term`.
    pub voted_for: Option<usize>,
    /// (last index, term) of the node's latest snapshot, as the snapshot records them (None
    /// without one, or when the system does not say).
    pub snapshot: Option<(u64, u64)>,
    /// The node's current Raft identity (0 when the system does not say); a node rebuilt on
    /// an empty disk comes back under a new one, with a fresh term and vote.
    pub identity: u64,
    /// The voters of the configuration in force at this node, as identities (empty when the
    /// system does not say).
    pub voters: Vec<u64>,
    /// Terms in which this node has been leader since the run started.
    pub leader_terms: BTreeSet<u64>,
    /// Applied entries since the run started, from position `applied_from` on (see
    /// [`SystemUnderTest::observe`]); a node that restarts and re-applies reports the
    /// re-applied entries again.
    pub new_applied: Vec<AppliedEntry>,
    /// How many applied entries the node has reported in total (the next `applied_from`).
    pub applied_count: usize,
    /// Entries the node itself saw re-applied differently after a restart: (earlier, later).
    pub changed_entries: Vec<(AppliedEntry, AppliedEntry)>,
    /// The node stopped on its own (e.g. a storage failure), with the reason.
    pub stopped_on_error: Option<String>,
    /// The node's software panicked ("MESSAGE at FILE:LINE"; the first panic of the run).
    pub panicked: Option<String>,
    /// The replicated state at the node's applied index; replicas at the same applied index
    /// must agree. None when the system has no digest (or the node is down).
    pub state: Option<ReplicaDigest>,
}

/// A vote a node granted (not a pre-vote): the term it was cast in, and the voter and the
/// candidate as identities.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GrantedVote {
    pub term: u64,
    pub voter: u64,
    pub candidate: u64,
}

/// A replica's state at one applied index: its digest (values and session table) and the
/// state itself, to name what differs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicaDigest {
    pub index: u64,
    pub digest: u64,
    pub state: std::sync::Arc<minos_node::ReplicaState>,
}

/// A configuration the cluster's leader reported (membership faults), for results.json.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ConfigurationChange {
    /// Simulated time at which the driver first saw it.
    pub at_ns: u64,
    pub leader: String,
    pub voters: Vec<String>,
    pub learners: Vec<String>,
}

/// A fault that the node itself applies (the driver applies partitions and kills itself
/// through turmoil).
#[derive(Clone, Debug, PartialEq)]
pub enum NodeFault {
    Pause,
    Resume,
    Clock {
        skew_ms: i64,
        drift_ppm: i64,
    },
    Net {
        loss_probability: f64,
        /// Loss of the datagrams arriving for the node.
        inbound_loss_probability: f64,
        duplicate_probability: f64,
        /// The second copy of a duplicate arrives up to this much later (0: at once).
        duplicate_max_delay_ms: u64,
        reorder_probability: f64,
        reorder_max_delay_ms: u64,
    },
    Disk {
        torn_write_probability: f64,
        read_corruption_probability: f64,
        io_error_probability: f64,
    },
    /// Latency on everything the node sends: `base_ms` plus up to `jitter_ms`, and with
    /// `spike_probability` a spike of `spike_ms / 2..=spike_ms` (all zero: none).
    Delay {
        base_ms: u64,
        jitter_ms: u64,
        spike_probability: f64,
        spike_ms: u64,
    },
    /// Every fsync of the node takes `delay_ms` plus up to `jitter_ms` more (zero: none).
    SlowFsync {
        delay_ms: u64,
        jitter_ms: u64,
    },
    /// The node applies committed entries `delay_ms` after learning they committed.
    ApplyLag {
        delay_ms: u64,
    },
    /// The node (crashed by the driver just before) gets an empty disk and a new identity at
    /// its next start; its old identity is taken out of the configuration. The system drives
    /// the change itself in `after_step`, like the membership faults.
    ReplaceDisk,
    /// The node (restarted by the driver right after) joins the configuration under the new
    /// identity it got with `ReplaceDisk`.
    JoinAsNewMember,
    /// Take this node out of the cluster's configuration. The system drives the change itself
    /// (through whichever node leads, retrying across leader changes) in `after_step`.
    RemoveFromCluster,
    /// Bring a node removed earlier back into the configuration (same follow-up).
    AddToCluster,
    /// Ask this node (the leader) to hand leadership to node `to` (0-based).
    TransferLeadershipTo {
        to: usize,
    },
}

pub trait SystemUnderTest {
    type Client: SutClient + 'static;

    /// A short name for logs and results.json ("raft", "toy-primary", ...).
    fn name(&self) -> &'static str;

    /// Every fault this system can honestly take. `--nemesis all` means exactly these.
    fn supported_faults(&self) -> BTreeSet<FaultKind>;

    /// Whether the system takes the store knobs a swarm seed draws (`crate::swarm::StoreKnobs`).
    fn takes_knobs(&self) -> bool {
        false
    }

    /// Applies a swarm seed's store knobs before the nodes start; only called when
    /// `takes_knobs` says yes.
    fn apply_knobs(&mut self, _knobs: &crate::swarm::StoreKnobs) {}

    /// Applies a swarm seed's client routing before any client connects (see
    /// `crate::swarm::ClientProfile`); false when the system's clients cannot take it (the
    /// profile then records that nothing applied).
    fn apply_client_routing(
        &mut self,
        _bound_clients: bool,
        _attempt_timeout_ms: Option<u64>,
    ) -> bool {
        false
    }

    /// Makes the membership operator restless until `until_ns` (see
    /// `crate::swarm::SwarmProfile::restless_membership`), its choices drawn from `seed`;
    /// false when the system drives no membership changes itself.
    fn make_membership_restless(&mut self, _seed: u64, _until_ns: u64) -> bool {
        false
    }

    /// Registers hosts `n1..nN` (one per node) on the simulation. A node whose software
    /// fails must not end the simulation: log the error and stop that host.
    fn register_nodes(&self, sim: &mut turmoil::Sim<'_>, node_names: &[String]);

    /// Connects client process `process` (inside the clients host).
    async fn connect(&self, process: u64) -> std::io::Result<Self::Client>;

    /// Connects client process `process` bound to node `node` (0-based): every op goes to
    /// that node first. None when the system's clients cannot be aimed at a node. The driver
    /// uses it to read through a node that still believes it leads after a newer leader was
    /// elected (see `driver::deposed_leader_prober`).
    async fn connect_to_node(
        &self,
        _process: u64,
        _node: usize,
    ) -> Option<std::io::Result<Self::Client>> {
        None
    }

    /// The node's state for the invariants; `applied_from` is the previous `applied_count`.
    fn observe(&self, node: usize, applied_from: usize) -> NodeView;

    /// The votes node `node` granted, from the `from`-th on (in the order it sent them), for
    /// `raft_rules`' election check; None when the system does not report votes.
    fn votes_granted_since(&self, _node: usize, _from: usize) -> Option<Vec<GrantedVote>> {
        None
    }

    /// Applies a node-level fault. Must only be called for faults in `supported_faults`.
    fn node_fault(&self, node: usize, fault: &NodeFault) -> Result<(), String>;

    /// Called by the driver right after it crashes (`running = false`) or restarts a node.
    fn set_running(&self, node: usize, running: bool);

    /// Called after every simulation step with the simulated time and the leader the driver
    /// sees (0-based): faults that need follow-up, such as membership changes re-sent to
    /// whichever node leads until they show, do it here. Must be deterministic.
    fn after_step(&self, _now_ns: u64, _leader: Option<usize>) {}

    /// After membership faults: why the configuration seen at `leader` is not yet whole again
    /// (every node not removed a voter, no learner left); None when it is, or when the run
    /// used no membership faults. Liveness waits for it.
    fn configuration_unsettled(&self, _leader: Option<usize>) -> Option<String> {
        None
    }

    /// The configurations the leaders reported over the run (empty without membership faults).
    fn configurations(&self) -> Vec<ConfigurationChange> {
        Vec::new()
    }
}

//! The real system under test: the Raft counter store of `minos-node`, one `run_node` per
//! turmoil host, driven through `NodeControl` (faults, observation) and the client library.
//! A host's node may be rebuilt on an empty disk under a new identity (`rejoin-empty`): each
//! start of the host reads its current `HostPlan`.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use minos_node::auth::ClusterKey;
use minos_node::bugs::Bugs;
use minos_node::raft::Role;
use minos_node::{
    Client, ClientConfig, DiskFaults, NetDelay, NetFaults, NetSwitch, Network, NodeControl,
    NodeOptions, OpOutcome, SlowFsync,
};

use crate::membership::MembershipGoal;
use crate::options::FaultKind;
use crate::sut::{
    AppliedEntry, ConfigurationChange, GrantedVote, NodeFault, NodeView, OpReply, ReplicaDigest,
    SutClient, SystemUnderTest,
};
use crate::workload::Op;

const PORT: u16 = NodeOptions::DEFAULT_PORT;

/// What a host starts next time it boots.
struct HostPlan {
    options: NodeOptions,
    /// Empty the data directory before starting (a replaced disk).
    wipe_before_start: bool,
}

pub struct RaftStore {
    controls: Vec<NodeControl>,
    options: Vec<NodeOptions>,
    hosts: Vec<Arc<Mutex<HostPlan>>>,
    cluster: Vec<String>,
    op_timeout_ms: u64,
    /// Clients send reads to their home node first (stale mode: follower-local reads).
    reads_at_home: bool,
    /// Odd-numbered clients send every op to their home node first (swarm client routing).
    bound_clients: bool,
    /// Per-attempt reply timeout of every client; None: the client library's default.
    attempt_timeout_ms: Option<u64>,
    membership: RefCell<MembershipGoal>,
    /// Derived from the run seed: simulated nodes and clients seal and verify every datagram
    /// as real processes do, on the same code path, and the run stays deterministic.
    cluster_key: ClusterKey,
    /// Per node: its first panic, caught around the host's future.
    panics: Vec<crate::panics::PanicSlot>,
    /// For the harness's own tests: node index and simulated ms after each start at which
    /// that node's host panics.
    injected_panic: Option<(usize, u64)>,
    /// Per node: the network's duplication of what clients send to it (a `duplicate` fault
    /// on a node duplicates its traffic both ways; the node's own switch covers what it sends).
    request_switches: Vec<NetSwitch>,
}

impl RaftStore {
    pub fn new(nodes: usize, seed: u64, bugs: Bugs, op_timeout_ms: u64) -> RaftStore {
        let peers: BTreeMap<u64, String> = (1..=nodes as u64)
            .map(|id| (id, format!("n{id}:{PORT}")))
            .collect();
        let cluster_key = ClusterKey::for_simulation(seed);
        let mut controls = Vec::with_capacity(nodes);
        let mut options = Vec::with_capacity(nodes);
        for id in 1..=nodes as u64 {
            // Each node gets its own seed, derived from the run seed. (With one shared seed,
            // the node's two id-mixing steps cancel out and every node draws the same election
            // timeouts: split votes for many seconds. Reported to the node owners.)
            let node_seed = crate::driver::derive_seed(seed, "node", id);
            controls.push(NodeControl::new(id, node_seed));
            let mut node_options = NodeOptions::new(id, peers.clone(), "/data", node_seed);
            node_options.bugs = bugs;
            node_options.cluster_key = cluster_key.clone();
            // Snapshots keep the log bounded in long runs and put InstallSnapshot and restart
            // from a snapshot under the nemesis, as in a production store.
            node_options.snapshot_every = NodeOptions::DEFAULT_SNAPSHOT_EVERY;
            options.push(node_options);
        }
        let hosts = options
            .iter()
            .map(|options| {
                Arc::new(Mutex::new(HostPlan {
                    options: options.clone(),
                    wipe_before_start: false,
                }))
            })
            .collect();
        RaftStore {
            controls,
            options,
            hosts,
            cluster: peers.into_values().collect(),
            op_timeout_ms,
            reads_at_home: false,
            bound_clients: false,
            attempt_timeout_ms: None,
            membership: RefCell::new(MembershipGoal::new(nodes)),
            cluster_key,
            panics: (0..nodes).map(|_| Default::default()).collect(),
            injected_panic: None,
            request_switches: (1..=nodes as u64)
                .map(|id| {
                    NetSwitch::new(crate::driver::derive_seed(seed, "client-requests", id), id)
                })
                .collect(),
        }
    }
}

impl RaftStore {
    /// Makes node `node`'s host panic `after_ms` after it starts: a test of the harness's
    /// panic handling (a node's panic is a finding, not a crash of the run).
    #[doc(hidden)]
    pub fn with_injected_panic(mut self, node: usize, after_ms: u64) -> RaftStore {
        self.injected_panic = Some((node, after_ms));
        self
    }

    /// Sets every node's AppendEntries batch bound (None keeps the node's default).
    pub fn with_max_append_entries(mut self, count: Option<usize>) -> RaftStore {
        if let Some(count) = count {
            self.set_max_append_entries(count);
        }
        self
    }

    fn set_max_append_entries(&mut self, count: usize) {
        for node_options in &mut self.options {
            node_options.max_append_entries_count = count;
        }
        for host in &self.hosts {
            lock(host).options.max_append_entries_count = count;
        }
    }
}

impl RaftStore {
    /// How client process `process` connects (its id, key, routing and timeouts).
    fn client_config(&self, process: u64) -> ClientConfig {
        let mut config = ClientConfig::new(process + 1, self.cluster.clone(), Network::Simulated);
        config.op_timeout_ms = self.op_timeout_ms;
        config.cluster_key = self.cluster_key.clone();
        config.reads_at_home = self.reads_at_home;
        config.ops_at_home = self.bound_clients && process % 2 == 1;
        if let Some(attempt_timeout_ms) = self.attempt_timeout_ms {
            config.request_timeout_ms = attempt_timeout_ms;
        }
        config.request_faults = self.request_switches.clone();
        config
    }

    /// Sets how every node serves reads (`--read-mode`); in stale mode clients also send
    /// reads to their home node, so that followers answer them.
    pub fn with_read_mode(mut self, mode: crate::options::ReadMode) -> RaftStore {
        self.set_read_mode(mode);
        self
    }

    fn set_read_mode(&mut self, mode: crate::options::ReadMode) {
        use crate::options::ReadMode;
        let node_mode = match mode {
            ReadMode::ReadIndex => minos_node::ReadMode::ReadIndex,
            ReadMode::Lease => minos_node::ReadMode::Lease,
            ReadMode::Log => minos_node::ReadMode::Log,
            ReadMode::Stale => minos_node::ReadMode::Stale,
        };
        for node_options in &mut self.options {
            node_options.read_mode = node_mode;
        }
        // Hosts start from their plan's options (a rebuilt node keeps them), not the list.
        for host in &self.hosts {
            lock(host).options.read_mode = node_mode;
        }
        self.reads_at_home = mode == ReadMode::Stale;
    }
}

impl SystemUnderTest for RaftStore {
    type Client = RaftClient;

    fn name(&self) -> &'static str {
        "raft"
    }

    fn supported_faults(&self) -> BTreeSet<FaultKind> {
        FaultKind::ALL
            .into_iter()
            // Rebuilding a node needs a majority that keeps its data: three nodes or more.
            .filter(|kind| *kind != FaultKind::RejoinEmpty || self.controls.len() >= 3)
            .collect()
    }

    fn takes_knobs(&self) -> bool {
        true
    }

    fn apply_knobs(&mut self, knobs: &crate::swarm::StoreKnobs) {
        if let Some(count) = knobs.max_append_entries {
            self.set_max_append_entries(count);
        }
        if let Some(every) = knobs.snapshot_every {
            for node_options in &mut self.options {
                node_options.snapshot_every = every;
            }
            for host in &self.hosts {
                lock(host).options.snapshot_every = every;
            }
        }
        if let Some(mode) = knobs.read_mode {
            self.set_read_mode(mode);
        }
        if let Some(max_ticks) = knobs.election_timeout_max_ticks {
            for node_options in &mut self.options {
                node_options.election_timeout_max_ticks = Some(max_ticks);
            }
            for host in &self.hosts {
                lock(host).options.election_timeout_max_ticks = Some(max_ticks);
            }
        }
    }

    fn make_membership_restless(&mut self, seed: u64, until_ns: u64) -> bool {
        self.membership.borrow_mut().make_restless(seed, until_ns);
        true
    }

    fn apply_client_routing(
        &mut self,
        bound_clients: bool,
        attempt_timeout_ms: Option<u64>,
    ) -> bool {
        self.bound_clients = bound_clients;
        self.attempt_timeout_ms = attempt_timeout_ms;
        true
    }

    fn register_nodes(&self, sim: &mut turmoil::Sim<'_>, node_names: &[String]) {
        assert_eq!(node_names.len(), self.controls.len(), "one name per node");
        for (index, name) in node_names.iter().enumerate() {
            let host = self.hosts[index].clone();
            let control = self.controls[index].clone();
            let panic_slot = self.panics[index].clone();
            let panic_after_ms = self
                .injected_panic
                .filter(|(node, _)| *node == index)
                .map(|(_, after_ms)| after_ms);
            sim.host(name.as_str(), move || {
                let (options, wipe) = {
                    let mut plan = lock(&host);
                    let wipe = std::mem::take(&mut plan.wipe_before_start);
                    (plan.options.clone(), wipe)
                };
                let control = control.clone();
                // A node that fails or panics stops its host only; the run goes on, and the
                // driver reports the panic as a finding.
                crate::panics::CatchNodePanic::new(
                    async move {
                        if wipe {
                            minos_node::sim::wipe_storage(&options.data_dir)?;
                            tracing::info!(
                                node = options.id,
                                "starting on an empty disk under a new identity"
                            );
                        }
                        let injected = async {
                            match panic_after_ms {
                                Some(after_ms) => {
                                    tokio::time::sleep(std::time::Duration::from_millis(after_ms))
                                        .await
                                }
                                None => std::future::pending().await,
                            }
                        };
                        tokio::select! {
                            biased;
                            result = minos_node::sim::run_node(options, control) => {
                                if let Err(error) = result {
                                    tracing::error!(%error, "node stopped");
                                }
                            }
                            _ = injected => panic!("injected panic (harness test)"),
                        }
                        Ok(())
                    },
                    panic_slot.clone(),
                )
            });
        }
    }

    async fn connect(&self, process: u64) -> std::io::Result<RaftClient> {
        let config = self.client_config(process);
        Ok(RaftClient {
            client: Client::connect(config).await?,
        })
    }

    async fn connect_to_node(
        &self,
        process: u64,
        node: usize,
    ) -> Option<std::io::Result<RaftClient>> {
        let mut config = self.client_config(process);
        config.ops_at_home = true;
        config.home = Some(node);
        Some(
            Client::connect(config)
                .await
                .map(|client| RaftClient { client }),
        )
    }

    fn observe(&self, node: usize, applied_from: usize) -> NodeView {
        let control = &self.controls[node];
        let status = control.status();
        let new_applied: Vec<AppliedEntry> = control
            .applied_since(applied_from)
            .into_iter()
            .map(|entry| AppliedEntry {
                index: entry.index,
                term: entry.term,
                digest: entry.digest,
            })
            .collect();
        let convert = |entry: minos_node::AppliedEntry| AppliedEntry {
            index: entry.index,
            term: entry.term,
            digest: entry.digest,
        };
        NodeView {
            running: status.running,
            is_leader: status.role == Role::Leader,
            term: status.term,
            commit_index: status.commit_index,
            commit_term: status.commit_term,
            config_index: Some(status.config_index),
            lease_reads: status.lease_reads,
            last_log_index: status.last_index,
            snapshot: (status.snapshot_index > 0)
                .then_some((status.snapshot_index, status.snapshot_term)),
            identity: status.id,
            voters: status.voters.clone(),
            // Identities of rejoined nodes are `index + 1 + k * nodes` (see `rejoin-empty`).
            voted_for: status.voted_for.and_then(|id| {
                let id = usize::try_from(id).ok()?.checked_sub(1)?;
                Some(id % self.controls.len())
            }),
            // Every term this host led, under any of its identities.
            leader_terms: status.leaders_by_term.keys().copied().collect(),
            applied_count: applied_from + new_applied.len(),
            new_applied,
            changed_entries: status
                .applied_conflicts
                .iter()
                .map(|conflict| (convert(conflict.earlier), convert(conflict.later)))
                .collect(),
            stopped_on_error: if status.running {
                None
            } else {
                status.fatal_error.clone()
            },
            panicked: self.panics[node].borrow().clone(),
            state: (status.running && status.state_digest.0 > 0).then(|| ReplicaDigest {
                index: status.state_digest.0,
                digest: status.state_digest.1,
                state: status.replica_state.clone(),
            }),
        }
    }

    fn votes_granted_since(&self, node: usize, from: usize) -> Option<Vec<GrantedVote>> {
        let votes = self.controls[node].votes_granted_since(from);
        Some(
            votes
                .into_iter()
                .map(|vote| GrantedVote {
                    term: vote.term,
                    voter: vote.voter,
                    candidate: vote.candidate,
                })
                .collect(),
        )
    }

    fn node_fault(&self, node: usize, fault: &NodeFault) -> Result<(), String> {
        let control = &self.controls[node];
        match fault {
            NodeFault::Pause => control.pause(),
            NodeFault::Resume => control.resume(),
            NodeFault::Clock { skew_ms, drift_ppm } => control.set_clock(*skew_ms, *drift_ppm),
            NodeFault::Net {
                loss_probability,
                inbound_loss_probability,
                duplicate_probability,
                duplicate_max_delay_ms,
                reorder_probability,
                reorder_max_delay_ms,
            } => {
                self.request_switches[node].set_faults(NetFaults {
                    duplicate_probability: *duplicate_probability,
                    duplicate_max_delay_ms: *duplicate_max_delay_ms,
                    ..NetFaults::default()
                });
                control.set_net_faults(NetFaults {
                    loss_probability: *loss_probability,
                    inbound_loss_probability: *inbound_loss_probability,
                    duplicate_probability: *duplicate_probability,
                    duplicate_max_delay_ms: *duplicate_max_delay_ms,
                    reorder_probability: *reorder_probability,
                    reorder_max_delay_ms: *reorder_max_delay_ms,
                });
            }
            NodeFault::Disk {
                torn_write_probability,
                read_corruption_probability,
                io_error_probability,
            } => control.set_disk_faults(DiskFaults {
                torn_write_probability: *torn_write_probability,
                read_corruption_probability: *read_corruption_probability,
                io_error_probability: *io_error_probability,
            }),
            NodeFault::Delay {
                base_ms,
                jitter_ms,
                spike_probability,
                spike_ms,
            } => control.set_net_delay(NetDelay {
                base_ms: *base_ms,
                jitter_ms: *jitter_ms,
                spike_probability: *spike_probability,
                spike_ms: *spike_ms,
            }),
            NodeFault::SlowFsync {
                delay_ms,
                jitter_ms,
            } => control.set_slow_fsync(SlowFsync {
                delay_ms: *delay_ms,
                jitter_ms: *jitter_ms,
            }),
            NodeFault::ApplyLag { delay_ms } => control.set_apply_lag(*delay_ms),
            NodeFault::ReplaceDisk => {
                let nodes = self.controls.len() as u64;
                let mut plan = lock(&self.hosts[node]);
                // A fresh identity, never used before: the old one keeps its votes and log
                // entries in the other nodes' memory, and an empty log must not answer for it.
                let new_id = plan.options.id + nodes;
                let address = plan.options.peers[&plan.options.id].clone();
                plan.options.bootstrap_voters = Some((1..=nodes).collect());
                plan.options.peers.insert(new_id, address);
                plan.options.id = new_id;
                plan.wipe_before_start = true;
                self.membership.borrow_mut().retire(node, new_id);
            }
            NodeFault::JoinAsNewMember => self.membership.borrow_mut().rejoin(node),
            NodeFault::TransferLeadershipTo { to } => {
                let to_id = lock(&self.hosts[*to]).options.id;
                control.request_transfer_leadership(to_id)
            }
            NodeFault::RemoveFromCluster => self.membership.borrow_mut().remove(node),
            NodeFault::AddToCluster => self.membership.borrow_mut().add(node),
        }
        Ok(())
    }

    fn set_running(&self, _node: usize, _running: bool) {
        // The node's control tracks its own incarnations.
    }

    fn after_step(&self, now_ns: u64, leader: Option<usize>) {
        self.membership
            .borrow_mut()
            .after_step(&self.controls, now_ns, leader);
    }

    fn configuration_unsettled(&self, leader: Option<usize>) -> Option<String> {
        self.membership.borrow().unsettled(&self.controls, leader)
    }

    fn configurations(&self) -> Vec<ConfigurationChange> {
        self.membership.borrow().seen().to_vec()
    }
}

pub struct RaftClient {
    client: Client,
}

fn reply<T>(outcome: OpOutcome<T>, value: impl FnOnce(T) -> Option<i64>) -> OpReply {
    match outcome {
        OpOutcome::Ok(result) => OpReply::Ok(value(result)),
        OpOutcome::Fail(reason) => OpReply::Fail(reason),
        OpOutcome::Unknown(reason) => OpReply::Unknown(reason),
    }
}

impl SutClient for RaftClient {
    async fn invoke(&mut self, op: &Op) -> OpReply {
        match op {
            Op::Read { key } => reply(self.client.read(key).await, Some),
            Op::Add { key, delta } => reply(self.client.add(key, *delta).await, Some),
            Op::Write { key, value } => reply(self.client.write(key, *value).await, |()| None),
            Op::Cas { key, old, new } => reply(self.client.cas(key, *old, *new).await, |()| None),
        }
    }
}

fn lock(host: &Mutex<HostPlan>) -> std::sync::MutexGuard<'_, HostPlan> {
    host.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

//! The real system under test: the Raft counter store of `minos-node`, one `run_node` per
//! turmoil host, driven through `NodeControl` (faults, observation) and the client library.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

use minos_node::bugs::Bugs;
use minos_node::raft::Role;
use minos_node::{
    Client, ClientConfig, DiskFaults, NetFaults, Network, NodeControl, NodeOptions, OpOutcome,
};

use crate::membership::MembershipGoal;
use crate::options::FaultKind;
use crate::sut::{
    AppliedEntry, ConfigurationChange, NodeFault, NodeView, OpReply, SutClient, SystemUnderTest,
};
use crate::workload::Op;

const PORT: u16 = NodeOptions::DEFAULT_PORT;

pub struct RaftStore {
    controls: Vec<NodeControl>,
    options: Vec<NodeOptions>,
    cluster: Vec<String>,
    op_timeout_ms: u64,
    /// Clients send reads to their home node first (stale mode: follower-local reads).
    reads_at_home: bool,
    membership: RefCell<MembershipGoal>,
}

impl RaftStore {
    pub fn new(nodes: usize, seed: u64, bugs: Bugs, op_timeout_ms: u64) -> RaftStore {
        let peers: BTreeMap<u64, String> = (1..=nodes as u64)
            .map(|id| (id, format!("n{id}:{PORT}")))
            .collect();
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
            // Snapshots keep the log bounded in long runs and put InstallSnapshot and restart
            // from a snapshot under the nemesis, as in a production store.
            node_options.snapshot_every = NodeOptions::DEFAULT_SNAPSHOT_EVERY;
            options.push(node_options);
        }
        RaftStore {
            controls,
            options,
            cluster: peers.into_values().collect(),
            op_timeout_ms,
            reads_at_home: false,
            membership: RefCell::new(MembershipGoal::new(nodes)),
        }
    }
}

impl RaftStore {
    /// Sets every node's AppendEntries batch bound (None keeps the node's default).
    pub fn with_max_append_entries(mut self, count: Option<usize>) -> RaftStore {
        if let Some(count) = count {
            for node_options in &mut self.options {
                node_options.max_append_entries_count = count;
            }
        }
        self
    }
}

impl RaftStore {
    /// Sets how every node serves reads (`--read-mode`); in stale mode clients also send
    /// reads to their home node, so that followers answer them.
    pub fn with_read_mode(mut self, mode: crate::options::ReadMode) -> RaftStore {
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
        self.reads_at_home = mode == ReadMode::Stale;
        self
    }
}

impl SystemUnderTest for RaftStore {
    type Client = RaftClient;

    fn name(&self) -> &'static str {
        "raft"
    }

    fn supported_faults(&self) -> BTreeSet<FaultKind> {
        FaultKind::ALL.into_iter().collect()
    }

    fn register_nodes(&self, sim: &mut turmoil::Sim<'_>, node_names: &[String]) {
        assert_eq!(node_names.len(), self.controls.len(), "one name per node");
        for (index, name) in node_names.iter().enumerate() {
            let options = self.options[index].clone();
            let control = self.controls[index].clone();
            sim.host(name.as_str(), move || {
                let options = options.clone();
                let control = control.clone();
                async move {
                    // A node that fails stops its host only; the run goes on.
                    if let Err(error) = minos_node::sim::run_node(options, control).await {
                        tracing::error!(%error, "node stopped");
                    }
                    Ok(())
                }
            });
        }
    }

    async fn connect(&self, process: u64) -> std::io::Result<RaftClient> {
        let mut config = ClientConfig::new(process + 1, self.cluster.clone(), Network::Simulated);
        config.op_timeout_ms = self.op_timeout_ms;
        config.reads_at_home = self.reads_at_home;
        Ok(RaftClient {
            client: Client::connect(config).await?,
        })
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
            leader_terms: status
                .leaders_by_term
                .iter()
                .filter(|(_, leader)| **leader == status.id)
                .map(|(term, _)| *term)
                .collect(),
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
        }
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
                reorder_probability,
                reorder_max_delay_ms,
            } => control.set_net_faults(NetFaults {
                loss_probability: *loss_probability,
                inbound_loss_probability: *inbound_loss_probability,
                duplicate_probability: *duplicate_probability,
                reorder_probability: *reorder_probability,
                reorder_max_delay_ms: *reorder_max_delay_ms,
            }),
            NodeFault::Disk {
                torn_write_probability,
                read_corruption_probability,
                io_error_probability,
            } => control.set_disk_faults(DiskFaults {
                torn_write_probability: *torn_write_probability,
                read_corruption_probability: *read_corruption_probability,
                io_error_probability: *io_error_probability,
            }),
            NodeFault::TransferLeadershipTo { to } => {
                control.request_transfer_leadership(*to as u64 + 1)
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

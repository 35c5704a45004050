//! The harness's handle on one node: fault knobs (network, disk, pause, clock, leadership
//! transfer) and the latest observation. Created once per node before the simulation and
//! cloned into every incarnation of the node, so knobs, fault RNG streams and the applied
//! history survive restarts.

use std::sync::{Arc, Mutex, MutexGuard};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio::sync::Notify;

use crate::observe::{AppliedConflict, AppliedEntry, NodeObservation};
use crate::raft::{LogIndex, NodeId, Status};

/// Network faults applied to the datagrams this node sends, and loss of those it receives
/// (seeded; not turmoil's fail_rate).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct NetFaults {
    /// Drop a datagram this node sends.
    pub loss_probability: f64,
    /// Drop a datagram addressed to this node on arrival (a lossy receive path: the node's
    /// peers see a link that loses only what they send to it).
    pub inbound_loss_probability: f64,
    /// Send a datagram twice.
    pub duplicate_probability: f64,
    /// Hold a datagram back for a random delay, so later ones overtake it.
    pub reorder_probability: f64,
    pub reorder_max_delay_ms: u64,
}

/// Disk faults applied by the node's storage wrapper.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct DiskFaults {
    /// An append writes only a prefix of its bytes and then fails; the node stops (fail-stop).
    pub torn_write_probability: f64,
    /// A byte read back during recovery is flipped.
    pub read_corruption_probability: f64,
    /// A write or sync fails with EIO; the node stops (fail-stop, as etcd does on fsync errors).
    pub io_error_probability: f64,
}

/// What the network fault wrapper does with one outgoing datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetAction {
    Send,
    Drop,
    Duplicate,
    Delay { delay_ms: u64 },
}

/// What the disk fault wrapper does with one write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteAction {
    Write,
    /// Write only this many leading bytes, then fail.
    Torn {
        kept_bytes: usize,
    },
    Fail,
}

struct ControlState {
    paused: bool,
    skew_ms: i64,
    drift_ppm: i64,
    net_faults: NetFaults,
    disk_faults: DiskFaults,
    transfer_to: Option<NodeId>,
    /// Membership changes the harness asked for, proposed by the node when it leads.
    membership_request: Option<crate::protocol::AdminOp>,
    net_rng: SmallRng,
    disk_rng: SmallRng,
    observation: NodeObservation,
}

/// Cheap-to-clone control and observation handle for one node.
#[derive(Clone)]
pub struct NodeControl {
    state: Arc<Mutex<ControlState>>,
    resumed: Arc<Notify>,
}

/// Derives an independent RNG stream for one purpose from the run seed and node id.
fn stream_rng(seed: u64, id: NodeId, purpose: u64) -> SmallRng {
    let mixed =
        seed ^ id.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ purpose.wrapping_mul(0xD1B5_4A32_D192_ED03);
    SmallRng::seed_from_u64(mixed)
}

impl NodeControl {
    pub fn new(id: NodeId, seed: u64) -> NodeControl {
        let state = ControlState {
            paused: false,
            skew_ms: 0,
            drift_ppm: 0,
            net_faults: NetFaults::default(),
            disk_faults: DiskFaults::default(),
            transfer_to: None,
            membership_request: None,
            net_rng: stream_rng(seed, id, 1),
            disk_rng: stream_rng(seed, id, 2),
            observation: NodeObservation::new(id),
        };
        NodeControl {
            state: Arc::new(Mutex::new(state)),
            resumed: Arc::new(Notify::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, ControlState> {
        // A poisoned lock means a panic elsewhere already failed the run; keep reading state.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn set_net_faults(&self, faults: NetFaults) {
        self.lock().net_faults = faults;
    }

    pub fn net_faults(&self) -> NetFaults {
        self.lock().net_faults
    }

    /// Freezes the node: its loop stops processing and its clock stops until `resume`.
    pub fn pause(&self) {
        let mut state = self.lock();
        state.paused = true;
        state.observation.paused = true;
    }

    pub fn resume(&self) {
        {
            let mut state = self.lock();
            state.paused = false;
            state.observation.paused = false;
        }
        self.resumed.notify_waiters();
    }

    /// Sets the node's clock offset (for its timestamps) and rate error (for its tick timing).
    pub fn set_clock(&self, skew_ms: i64, drift_ppm: i64) {
        let mut state = self.lock();
        state.skew_ms = skew_ms;
        // A clock that stops or runs backwards is not drift; bound it to +-50%.
        state.drift_ppm = drift_ppm.clamp(-500_000, 500_000);
    }

    pub fn set_disk_faults(&self, faults: DiskFaults) {
        self.lock().disk_faults = faults;
    }

    /// Asks the node to add `id` (listening at `address`) as a learner, promoted to voter once
    /// caught up. Proposed on the node's next tick if it leads then (and no other change is
    /// in flight); otherwise dropped. A request not taken yet is replaced, so a harness that
    /// re-sends until the change shows never builds a backlog. Watch
    /// `NodeObservation::{voters, learners}` for the result.
    pub fn request_add_member(&self, id: NodeId, address: impl Into<String>) {
        let op = crate::protocol::AdminOp::AddMember {
            id,
            address: address.into(),
        };
        self.replace_membership_request(op);
    }

    /// Asks the node to remove `id` (itself included, if it leads); see `request_add_member`.
    pub fn request_remove_member(&self, id: NodeId) {
        let op = crate::protocol::AdminOp::RemoveMember { id };
        self.replace_membership_request(op);
    }

    /// Withdraws a membership request the node has not taken yet.
    pub fn cancel_membership_request(&self) {
        self.lock().membership_request = None;
    }

    fn replace_membership_request(&self, op: crate::protocol::AdminOp) {
        self.lock().membership_request = Some(op);
    }

    /// Asks the node (if it is the leader) to hand leadership to `to`.
    pub fn request_transfer_leadership(&self, to: NodeId) {
        self.lock().transfer_to = Some(to);
    }

    /// The latest observation, including every applied entry since the run started.
    pub fn observation(&self) -> NodeObservation {
        self.lock().observation.clone()
    }

    /// The latest observation without the applied-entry list (cheap to poll often).
    pub fn status(&self) -> NodeObservation {
        let state = self.lock();
        let observation = &state.observation;
        observation.clone_without_applied()
    }

    /// Applied entries from position `from` (0-based) of the applied sequence on.
    pub fn applied_since(&self, from: usize) -> Vec<AppliedEntry> {
        let state = self.lock();
        state
            .observation
            .applied
            .get(from..)
            .map(<[AppliedEntry]>::to_vec)
            .unwrap_or_default()
    }

    // ---- used by the node itself ----

    pub(crate) fn is_paused(&self) -> bool {
        self.lock().paused
    }

    /// Waits until the node is not paused.
    pub(crate) async fn wait_resumed(&self) {
        loop {
            let notified = self.resumed.notified();
            if !self.is_paused() {
                return;
            }
            notified.await;
        }
    }

    pub(crate) fn clock(&self) -> (i64, i64) {
        let state = self.lock();
        (state.skew_ms, state.drift_ppm)
    }

    pub(crate) fn take_transfer_request(&self) -> Option<NodeId> {
        self.lock().transfer_to.take()
    }

    pub(crate) fn take_membership_request(&self) -> Option<crate::protocol::AdminOp> {
        self.lock().membership_request.take()
    }

    pub(crate) fn net_action(&self) -> NetAction {
        let mut state = self.lock();
        let faults = state.net_faults;
        if faults == NetFaults::default() {
            return NetAction::Send;
        }
        let rng = &mut state.net_rng;
        if faults.loss_probability > 0.0 && rng.random_bool(faults.loss_probability.min(1.0)) {
            return NetAction::Drop;
        }
        if faults.duplicate_probability > 0.0
            && rng.random_bool(faults.duplicate_probability.min(1.0))
        {
            return NetAction::Duplicate;
        }
        if faults.reorder_probability > 0.0 && rng.random_bool(faults.reorder_probability.min(1.0))
        {
            let delay_ms = rng.random_range(1..=faults.reorder_max_delay_ms.max(1));
            return NetAction::Delay { delay_ms };
        }
        NetAction::Send
    }

    /// Whether to drop a datagram that just arrived (inbound loss).
    pub(crate) fn drop_inbound(&self) -> bool {
        let mut state = self.lock();
        let probability = state.net_faults.inbound_loss_probability;
        probability > 0.0 && state.net_rng.random_bool(probability.min(1.0))
    }

    pub(crate) fn write_action(&self, len: usize) -> WriteAction {
        let mut state = self.lock();
        let faults = state.disk_faults;
        let rng = &mut state.disk_rng;
        if faults.io_error_probability > 0.0
            && rng.random_bool(faults.io_error_probability.min(1.0))
        {
            return WriteAction::Fail;
        }
        if len > 0
            && faults.torn_write_probability > 0.0
            && rng.random_bool(faults.torn_write_probability.min(1.0))
        {
            return WriteAction::Torn {
                kept_bytes: rng.random_range(0..len),
            };
        }
        WriteAction::Write
    }

    pub(crate) fn sync_fails(&self) -> bool {
        let mut state = self.lock();
        let probability = state.disk_faults.io_error_probability;
        probability > 0.0 && state.disk_rng.random_bool(probability.min(1.0))
    }

    /// Flips a random bit of `bytes` with the configured read-corruption probability.
    pub(crate) fn maybe_corrupt_read(&self, bytes: &mut [u8]) {
        let mut state = self.lock();
        let probability = state.disk_faults.read_corruption_probability;
        if bytes.is_empty()
            || probability <= 0.0
            || !state.disk_rng.random_bool(probability.min(1.0))
        {
            return;
        }
        let position = state.disk_rng.random_range(0..bytes.len());
        let bit = state.disk_rng.random_range(0..8u32);
        bytes[position] ^= 1 << bit;
    }

    pub(crate) fn node_started(&self) {
        let mut state = self.lock();
        let observation = &mut state.observation;
        observation.running = true;
        observation.incarnations += 1;
        observation.fatal_error = None;
        observation.commit_index = 0;
        observation.last_applied = 0;
    }

    /// The event loop ended (crash, error or shutdown); keeps any recorded fatal error.
    pub(crate) fn node_down(&self) {
        let mut state = self.lock();
        state.observation.running = false;
        state.observation.role = crate::raft::Role::Follower;
        state.observation.leader = None;
    }

    pub(crate) fn node_stopped(&self, fatal_error: Option<String>) {
        let mut state = self.lock();
        state.observation.running = false;
        state.observation.fatal_error = fatal_error;
    }

    pub(crate) fn record_status(&self, status: &Status, last_applied: LogIndex) {
        let mut state = self.lock();
        let observation = &mut state.observation;
        observation.role = status.role;
        observation.term = status.term;
        observation.leader = status.leader;
        observation.commit_index = status.commit_index;
        observation.last_applied = last_applied;
        observation.last_index = status.last_index;
        observation.voted_for = status.voted_for;
        observation.snapshot_index = status.snapshot_index;
        observation.voters.clone_from(&status.voters);
        observation.learners.clone_from(&status.learners);
        observation.log_entries_count = status.last_index - status.snapshot_index;
        if status.leader == Some(status.id) {
            observation.leaders_by_term.insert(status.term, status.id);
        }
    }

    pub(crate) fn record_state_digest(
        &self,
        applied_index: LogIndex,
        digest: u64,
        replica_state: crate::observe::ReplicaState,
    ) {
        let mut state = self.lock();
        state.observation.state_digest = (applied_index, digest);
        state.observation.replica_state = std::sync::Arc::new(replica_state);
    }

    /// The state machine jumped to a snapshot ending at `index`: entries not seen applied one
    /// by one are recorded as `AppliedEntry::from_snapshot` placeholders.
    pub(crate) fn record_snapshot_restored(&self, index: LogIndex) {
        let mut state = self.lock();
        let applied = &mut state.observation.applied;
        while (applied.len() as LogIndex) < index {
            let placeholder = AppliedEntry::from_snapshot(applied.len() as LogIndex + 1);
            applied.push(placeholder);
        }
    }

    /// Records one applied entry. A restarted node re-applies its log from the start: a
    /// re-applied index must carry the same entry, otherwise a conflict is recorded.
    pub(crate) fn record_applied(&self, entry: AppliedEntry) {
        let mut state = self.lock();
        let observation = &mut state.observation;
        let position = entry.index as usize;
        assert!(position >= 1, "log indexes start at 1");
        if position <= observation.applied.len() {
            let earlier = observation.applied[position - 1];
            if earlier.is_from_snapshot() {
                observation.applied[position - 1] = entry;
            } else if earlier != entry {
                observation.applied_conflicts.push(AppliedConflict {
                    earlier,
                    later: entry,
                });
            }
            return;
        }
        assert_eq!(
            position,
            observation.applied.len() + 1,
            "entries apply in index order"
        );
        observation.applied.push(entry);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn actions(control: &NodeControl, count: usize) -> Vec<NetAction> {
        (0..count).map(|_| control.net_action()).collect()
    }

    #[test]
    fn net_fault_streams_are_seeded_per_node() {
        let faults = NetFaults {
            loss_probability: 0.2,
            duplicate_probability: 0.2,
            reorder_probability: 0.2,
            reorder_max_delay_ms: 40,
            ..NetFaults::default()
        };
        let [a, b, c] = [
            NodeControl::new(1, 9),
            NodeControl::new(1, 9),
            NodeControl::new(2, 9),
        ];
        for control in [&a, &b, &c] {
            control.set_net_faults(faults);
        }
        let (from_a, from_b, from_c) = (actions(&a, 500), actions(&b, 500), actions(&c, 500));
        assert_eq!(from_a, from_b, "same seed and node: same fault stream");
        assert_ne!(from_a, from_c, "another node draws its own stream");
        let drops = from_a
            .iter()
            .filter(|action| **action == NetAction::Drop)
            .count();
        assert!((60..140).contains(&drops), "{drops} drops of 500 at p=0.2");
        assert!(from_a.iter().all(|action| match action {
            NetAction::Delay { delay_ms } => (1..=40).contains(delay_ms),
            _ => true,
        }));
        a.set_net_faults(NetFaults::default());
        assert!(actions(&a, 100)
            .iter()
            .all(|action| *action == NetAction::Send));
    }

    #[test]
    fn disk_faults_fire_only_when_set() {
        let control = NodeControl::new(1, 3);
        assert_eq!(control.write_action(10), WriteAction::Write);
        control.set_disk_faults(DiskFaults {
            io_error_probability: 1.0,
            ..Default::default()
        });
        assert_eq!(control.write_action(10), WriteAction::Fail);
        assert!(control.sync_fails());
        control.set_disk_faults(DiskFaults {
            torn_write_probability: 1.0,
            ..Default::default()
        });
        assert!(
            matches!(control.write_action(10), WriteAction::Torn { kept_bytes } if kept_bytes < 10)
        );
        control.set_disk_faults(DiskFaults {
            read_corruption_probability: 1.0,
            ..Default::default()
        });
        let mut bytes = vec![0u8; 16];
        control.maybe_corrupt_read(&mut bytes);
        assert_eq!(
            bytes.iter().map(|byte| byte.count_ones()).sum::<u32>(),
            1,
            "exactly one bit flipped"
        );
    }

    #[test]
    fn observation_survives_restarts_and_flags_changed_entries() {
        let control = NodeControl::new(4, 1);
        control.node_started();
        let entry = |index, digest| AppliedEntry {
            index,
            term: 1,
            digest,
        };
        control.record_applied(entry(1, 10));
        control.record_applied(entry(2, 20));
        control.node_down();
        assert!(!control.status().running);
        control.node_started();
        // The restarted node re-applies its log: same entries are not duplicated...
        control.record_applied(entry(1, 10));
        control.record_applied(entry(2, 20));
        control.record_applied(entry(3, 30));
        let observation = control.observation();
        assert_eq!(observation.applied.len(), 3);
        assert_eq!(observation.incarnations, 2);
        assert!(observation.applied_conflicts.is_empty());
        // ...and a different entry at an applied index is recorded as a conflict.
        control.node_started();
        control.record_applied(entry(1, 11));
        assert_eq!(control.observation().applied_conflicts.len(), 1);
        assert_eq!(control.applied_since(2), vec![entry(3, 30)]);
    }
}

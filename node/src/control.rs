//! The harness's handle on one node: fault knobs (pause, clock, apply lag, leadership
//! transfer, membership requests; the network and disk switches that the node's transport
//! and disk wrappers read) and the latest observation. Created once per node before the
//! simulation and cloned into every incarnation of the node, so knobs, fault RNG streams and
//! the applied history survive restarts.

use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;
use tokio::time::Duration;

pub use crate::faults::{DiskFaults, NetDelay, NetFaults, SlowFsync};
use crate::faults::{DiskSwitch, NetSwitch, MAX_INJECTED_DELAY_MS};
use crate::observe::{AppliedConflict, AppliedEntry, GrantedVote, NodeObservation};
use crate::raft::{LogIndex, NodeId, Status};

struct ControlState {
    paused: bool,
    skew_ms: i64,
    drift_ppm: i64,
    /// Committed entries wait this long before the state machine applies them.
    apply_lag_ms: u64,
    transfer_to: Option<NodeId>,
    /// Membership changes the harness asked for, proposed by the node when it leads.
    membership_request: Option<crate::protocol::AdminOp>,
    observation: NodeObservation,
}

/// Cheap-to-clone control and observation handle for one node.
#[derive(Clone)]
pub struct NodeControl {
    state: Arc<Mutex<ControlState>>,
    resumed: Arc<Notify>,
    net: NetSwitch,
    disk: DiskSwitch,
}

impl NodeControl {
    pub fn new(id: NodeId, seed: u64) -> NodeControl {
        let state = ControlState {
            paused: false,
            skew_ms: 0,
            drift_ppm: 0,
            apply_lag_ms: 0,
            transfer_to: None,
            membership_request: None,
            observation: NodeObservation::new(id),
        };
        NodeControl {
            state: Arc::new(Mutex::new(state)),
            resumed: Arc::new(Notify::new()),
            net: NetSwitch::new(seed, id),
            disk: DiskSwitch::new(seed, id),
        }
    }

    fn lock(&self) -> MutexGuard<'_, ControlState> {
        // A poisoned lock means a panic elsewhere already failed the run; keep reading state.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn set_net_faults(&self, faults: NetFaults) {
        self.net.set_faults(faults);
    }

    pub fn net_faults(&self) -> NetFaults {
        self.net.faults()
    }

    /// Latency (with spikes) on every datagram the node sends.
    pub fn set_net_delay(&self, delay: NetDelay) {
        self.net.set_delay(delay);
    }

    /// The switch the node's transport wrapper reads (`transport::FaultyTransport`).
    pub fn net_switch(&self) -> NetSwitch {
        self.net.clone()
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
        self.disk.set_faults(faults);
    }

    /// Extra simulated time in every fsync.
    pub fn set_slow_fsync(&self, slow: SlowFsync) {
        self.disk.set_slow_fsync(slow);
    }

    /// The switch the node's disk wrapper reads (`faults::FaultyDisk`).
    pub fn disk_switch(&self) -> DiskSwitch {
        self.disk.clone()
    }

    /// Committed entries wait `lag_ms` before the state machine applies them (0: apply as
    /// soon as the event loop gets to them). Entries already waiting keep their time.
    pub fn set_apply_lag(&self, lag_ms: u64) {
        self.lock().apply_lag_ms = lag_ms.min(MAX_INJECTED_DELAY_MS);
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

    /// The votes the node granted, from position `from` on (see `NodeObservation::votes_granted`).
    pub fn votes_granted_since(&self, from: usize) -> Vec<GrantedVote> {
        let state = self.lock();
        state
            .observation
            .votes_granted
            .get(from..)
            .map(<[GrantedVote]>::to_vec)
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

    pub(crate) fn apply_lag(&self) -> Duration {
        Duration::from_millis(self.lock().apply_lag_ms)
    }

    /// A new incarnation started, under identity `id` (a node rebuilt on an empty disk
    /// joins under a new one).
    pub(crate) fn node_started(&self, id: NodeId) {
        let mut state = self.lock();
        let observation = &mut state.observation;
        observation.id = id;
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
        observation.commit_term = status.commit_term;
        observation.config_index = status.config_index;
        observation.last_applied = last_applied;
        observation.last_index = status.last_index;
        observation.voted_for = status.voted_for;
        observation.snapshot_index = status.snapshot_index;
        observation.snapshot_term = status.snapshot_term;
        observation.voters.clone_from(&status.voters);
        observation.learners.clone_from(&status.learners);
        observation.log_entries_count = status.last_index - status.snapshot_index;
        if status.leader == Some(status.id) {
            observation.leaders_by_term.insert(status.term, status.id);
        }
    }

    /// Records how many reads the node answered on its lease so far (`RaftNode::lease_reads`;
    /// recorded before each Ready is persisted, so in the step the reads were decided).
    pub(crate) fn record_lease_reads(&self, lease_reads: u64) {
        self.lock().observation.lease_reads = lease_reads;
    }

    /// Records a vote the node is sending (granted RequestVote answers only).
    pub(crate) fn record_vote_granted(&self, vote: GrantedVote) {
        self.lock().observation.votes_granted.push(vote);
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

    #[test]
    fn observation_survives_restarts_and_flags_changed_entries() {
        let control = NodeControl::new(4, 1);
        control.node_started(4);
        let entry = |index, digest| AppliedEntry {
            index,
            term: 1,
            digest,
        };
        control.record_applied(entry(1, 10));
        control.record_applied(entry(2, 20));
        control.node_down();
        assert!(!control.status().running);
        control.node_started(4);
        // The restarted node re-applies its log: same entries are not duplicated...
        control.record_applied(entry(1, 10));
        control.record_applied(entry(2, 20));
        control.record_applied(entry(3, 30));
        let observation = control.observation();
        assert_eq!(observation.applied.len(), 3);
        assert_eq!(observation.incarnations, 2);
        assert!(observation.applied_conflicts.is_empty());
        // ...and a different entry at an applied index is recorded as a conflict.
        control.node_started(4);
        control.record_applied(entry(1, 11));
        assert_eq!(control.observation().applied_conflicts.len(), 1);
        assert_eq!(control.applied_since(2), vec![entry(3, 30)]);
    }
}

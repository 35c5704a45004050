//! Linearizable reads. ReadIndex: the leader records its commit index for a read once it has
//! committed an entry of its own term, confirms it is still leader with a quorum heartbeat
//! round, then releases a `ReadState`. Lease reads (`Config::lease_reads`): while a quorum
//! acknowledged a heartbeat round sent less than a lease ago, no other leader can exist
//! (followers in a leader lease refuse votes), so the read is answered at once.

use std::collections::{BTreeMap, VecDeque};

use super::{LogIndex, NodeId, NotLeader, RaftNode, ReadState, Role};
use crate::bugs::Bug;

#[derive(Clone, Debug)]
struct PendingRead {
    request_id: u64,
    index: LogIndex,
    /// Heartbeat round that must be acknowledged by a quorum.
    round: u64,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct ReadQueue {
    /// Arrived before this leader committed an entry of its term: the commit index may still
    /// be behind entries earlier leaders committed.
    waiting_for_commit: Vec<u64>,
    /// In round order, oldest first.
    pending: VecDeque<PendingRead>,
    /// Last heartbeat round broadcast; increases over the node's lifetime.
    last_round: u64,
    /// Highest round each peer acknowledged in the current leadership.
    pub(super) acknowledged: BTreeMap<NodeId, u64>,
    /// (round, tick it was broadcast), oldest first; only rounds that may still found a lease.
    round_sent_at: VecDeque<(u64, u64)>,
    /// Tick at which the newest quorum-acknowledged round was sent.
    lease_start_tick: Option<u64>,
    /// Reads answered on the strength of the lease alone, over the node's lifetime (for the
    /// harness: a lease read while a newer leader exists is a stale read waiting to happen).
    pub(super) lease_reads: u64,
}

impl ReadQueue {
    /// The round a heartbeat sent now confirms (commit notices repeat the last broadcast's).
    pub(crate) fn latest_round(&self) -> u64 {
        self.last_round
    }

    /// A heartbeat broadcast at `tick` starts a new round.
    pub(crate) fn start_round(&mut self, tick: u64) -> u64 {
        self.last_round += 1;
        self.round_sent_at.push_back((self.last_round, tick));
        self.last_round
    }

    /// A new leadership: acknowledgements and leases of an earlier one mean nothing.
    pub(crate) fn reset_leadership(&mut self) {
        self.acknowledged.clear();
        self.round_sent_at.clear();
        self.lease_start_tick = None;
    }

    /// Every request still unanswered, for `Ready::dropped_read_requests`.
    pub(crate) fn drain_all(&mut self) -> Vec<u64> {
        let mut dropped: Vec<u64> = self.waiting_for_commit.drain(..).collect();
        dropped.extend(self.pending.drain(..).map(|read| read.request_id));
        self.reset_leadership();
        dropped
    }

    /// Drops the lease and every round sent before now, which could found a new one.
    pub(crate) fn forget_lease(&mut self) {
        self.lease_start_tick = None;
        self.round_sent_at.clear();
    }

    /// Confirmed by the next heartbeat round, which must start after the request arrived.
    fn register(&mut self, request_id: u64, index: LogIndex) {
        self.pending.push_back(PendingRead {
            request_id,
            index,
            round: self.last_round + 1,
        });
    }
}

impl RaftNode {
    /// Asks for a linearizable read point. The answer comes later as a `ReadState` with this
    /// `request_id` (or in `dropped_read_requests` if leadership is lost first); with a valid
    /// lease it is in the very next `Ready`.
    pub fn read_index(&mut self, request_id: u64) -> Result<(), NotLeader> {
        // A leader being removed no longer counts itself, so it cannot confirm reads.
        if self.role != Role::Leader || !self.is_voter() {
            return Err(NotLeader {
                leader_hint: self.leader,
            });
        }
        // PLANTED BUG `read-before-noop`: the read is served at the current commit index even
        // before the new leader's no-op commits, when that index may miss writes an earlier
        // leader already acknowledged: a stale read. Imitates etcd issue #7331 (fixed by
        // etcd PR #7332 after Raft thesis §6.4, later PR #12762 postponing such reads) and
        // redisraft's stale reads for want of a no-op (RedisLabs/redisraft PR #22).
        let serve_now =
            self.committed_in_current_term() || self.config.bugs.has(Bug::ReadBeforeNoop);
        if !serve_now {
            self.reads.waiting_for_commit.push(request_id);
            return Ok(());
        }
        if self.lease_is_valid() {
            let index = self.log.committed();
            self.read_states.push(ReadState { request_id, index });
            self.reads.lease_reads += 1;
            return Ok(());
        }
        self.reads.register(request_id, self.log.committed());
        self.after_reads_registered();
        Ok(())
    }

    pub(super) fn committed_in_current_term(&self) -> bool {
        self.log.term(self.log.committed()) == Some(self.term)
    }

    fn after_reads_registered(&mut self) {
        if self.quorum() == 1 {
            self.release_confirmed_reads();
        } else {
            self.read_heartbeat_pending = true;
        }
    }

    /// Ticks for which a quorum-acknowledged round keeps this leader's lease: followers that
    /// acknowledged it refuse votes for a minimum election timeout after receiving it, minus
    /// what their clocks may run ahead of ours.
    fn lease_duration_ticks(&self) -> u64 {
        // PLANTED BUG `lease-no-drift-bound`: the lease lasts the whole minimum election
        // timeout as measured by the leader's clock, as if every clock ran at the same rate;
        // a follower whose clock runs fast stops honouring the lease earlier, votes for a new
        // leader, and the old one serves stale reads. The same bug keeps the lease during a
        // leadership transfer (`lease_is_valid`). Imitates lease reads trusted across clock
        // drift and leader changes: etcd raft documents its `ReadOnlyLeaseBased` mode as
        // unsafe under unbounded drift, and Jepsen's 2014 etcd/Consul analysis found stale
        // reads from Consul's lease-based default read mode.
        let drift_ticks = if self.config.bugs.has(Bug::LeaseNoDriftBound) {
            0
        } else {
            self.config.lease_clock_drift_bound_ticks
        };
        u64::from(
            self.config
                .election_timeout_min_ticks
                .saturating_sub(drift_ticks),
        )
    }

    pub(super) fn lease_is_valid(&self) -> bool {
        if !self.config.lease_reads
            || self.role != Role::Leader
            || !self.config.check_quorum_enabled()
        {
            return false;
        }
        // The transfer target campaigns ignoring the followers' leases (TimeoutNow), so the
        // lease ends when a transfer starts, for good in this term (a delayed TimeoutNow may
        // still arrive after the transfer timed out).
        let transferring = self.transfer.is_some() || self.timeout_now_sent;
        if transferring && !self.config.bugs.has(Bug::LeaseNoDriftBound) {
            return false;
        }
        if self.quorum() == 1 {
            return true;
        }
        self.reads
            .lease_start_tick
            .is_some_and(|start| self.ticks_elapsed < start + self.lease_duration_ticks())
    }

    /// Leader: broadcasts a heartbeat round now.
    pub(super) fn start_heartbeat_round(&mut self) -> u64 {
        let round = self.reads.start_round(self.ticks_elapsed);
        // Rounds older than a lease can found no lease.
        let oldest_useful = self
            .ticks_elapsed
            .saturating_sub(self.lease_duration_ticks());
        while self
            .reads
            .round_sent_at
            .front()
            .is_some_and(|&(_, tick)| tick < oldest_useful)
        {
            self.reads.round_sent_at.pop_front();
        }
        round
    }

    /// Leader: the commit index moved (to an entry of the current term).
    pub(super) fn on_commit_advanced(&mut self) {
        if self.reads.waiting_for_commit.is_empty() || !self.committed_in_current_term() {
            return;
        }
        let commit_index = self.log.committed();
        let waiting = std::mem::take(&mut self.reads.waiting_for_commit);
        if self.lease_is_valid() {
            self.reads.lease_reads += waiting.len() as u64;
            for request_id in waiting {
                self.read_states.push(ReadState {
                    request_id,
                    index: commit_index,
                });
            }
            return;
        }
        for request_id in waiting {
            self.reads.register(request_id, commit_index);
        }
        self.after_reads_registered();
    }

    pub(super) fn acknowledge_heartbeat_round(&mut self, peer: NodeId, round: u64) {
        let acknowledged = self.reads.acknowledged.entry(peer).or_insert(0);
        *acknowledged = (*acknowledged).max(round);
        self.extend_lease();
        self.release_confirmed_reads();
    }

    /// The newest round a quorum (this leader included) acknowledged founds the lease.
    fn extend_lease(&mut self) {
        let needed_from_peers = self.quorum() - 1;
        if needed_from_peers == 0 {
            return;
        }
        let mut rounds: Vec<u64> = self.reads.acknowledged.values().copied().collect();
        if rounds.len() < needed_from_peers {
            return;
        }
        rounds.sort_unstable_by(|a, b| b.cmp(a));
        let quorum_round = rounds[needed_from_peers - 1];
        // Rounds before the quorum round can never found a newer lease.
        while self
            .reads
            .round_sent_at
            .front()
            .is_some_and(|&(round, _)| round < quorum_round)
        {
            self.reads.round_sent_at.pop_front();
        }
        if let Some(&(round, sent_tick)) = self.reads.round_sent_at.front() {
            if round == quorum_round {
                let start = self
                    .reads
                    .lease_start_tick
                    .map_or(sent_tick, |start| start.max(sent_tick));
                self.reads.lease_start_tick = Some(start);
            }
        }
    }

    /// Releases, oldest first, every read whose heartbeat round a quorum acknowledged.
    fn release_confirmed_reads(&mut self) {
        while let Some(read) = self.reads.pending.front() {
            let mut acknowledged_count = 1 + self
                .reads
                .acknowledged
                .values()
                .filter(|&&round| round >= read.round)
                .count();
            // PLANTED BUG `read-quorum-off-by-one`: the leader is counted twice (once as
            // "self" and once more as an acknowledgement), so a read is confirmed one voter
            // short of a quorum: a leader cut off with a minority (or alone, in a
            // three-node cluster) still confirms reads until CheckQuorum deposes it.
            if self.config.bugs.has(Bug::ReadQuorumOffByOne) {
                acknowledged_count += 1;
            }
            if acknowledged_count < self.quorum() {
                return;
            }
            let read = self.reads.pending.pop_front().expect("front exists");
            assert!(
                read.index <= self.log.committed(),
                "read index beyond commit"
            );
            self.read_states.push(ReadState {
                request_id: read.request_id,
                index: read.index,
            });
        }
    }
}

//! Linearizable reads through ReadIndex: the leader records its commit index for a read once
//! it has committed an entry of its own term, confirms it is still leader with a quorum
//! heartbeat round, then releases a `ReadState`.

use std::collections::{BTreeMap, VecDeque};

use super::{LogIndex, NodeId, NotLeader, RaftNode, ReadState, Role};
use crate::bugs::Bug;

#[derive(Clone, Debug)]
struct PendingRead {
    request_id: u64,
    index: LogIndex,
    /// Heartbeat round that must be acknowledged by a quorum.
    context: u64,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct ReadQueue {
    /// Arrived before this leader committed an entry of its term: the commit index may still
    /// be behind entries earlier leaders committed.
    waiting_for_commit: Vec<u64>,
    /// In context order, oldest first.
    pending: VecDeque<PendingRead>,
    /// Last context handed out; increases over the node's lifetime.
    last_context: u64,
    /// Highest context each peer acknowledged in the current leadership.
    acknowledged: BTreeMap<NodeId, u64>,
}

impl ReadQueue {
    pub(crate) fn latest_context(&self) -> u64 {
        self.last_context
    }

    pub(crate) fn reset_acknowledgements(&mut self) {
        self.acknowledged.clear();
    }

    /// Every request still unanswered, for `Ready::dropped_read_requests`.
    pub(crate) fn drain_all(&mut self) -> Vec<u64> {
        let mut dropped: Vec<u64> = self.waiting_for_commit.drain(..).collect();
        dropped.extend(self.pending.drain(..).map(|read| read.request_id));
        self.acknowledged.clear();
        dropped
    }

    fn register(&mut self, request_id: u64, index: LogIndex) {
        self.last_context += 1;
        self.pending.push_back(PendingRead {
            request_id,
            index,
            context: self.last_context,
        });
    }
}

impl RaftNode {
    /// Asks for a linearizable read point. The answer comes later as a `ReadState` with this
    /// `request_id` (or in `dropped_read_requests` if leadership is lost first).
    pub fn read_index(&mut self, request_id: u64) -> Result<(), NotLeader> {
        if self.role != Role::Leader {
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
        self.reads.register(request_id, self.log.committed());
        self.after_reads_registered();
        Ok(())
    }

    fn committed_in_current_term(&self) -> bool {
        self.log.term(self.log.committed()) == Some(self.term)
    }

    fn after_reads_registered(&mut self) {
        if self.quorum() == 1 {
            self.release_confirmed_reads();
        } else {
            self.read_heartbeat_pending = true;
        }
    }

    /// Leader: the commit index moved (to an entry of the current term).
    pub(super) fn on_commit_advanced(&mut self) {
        if self.reads.waiting_for_commit.is_empty() || !self.committed_in_current_term() {
            return;
        }
        let commit_index = self.log.committed();
        let waiting = std::mem::take(&mut self.reads.waiting_for_commit);
        for request_id in waiting {
            self.reads.register(request_id, commit_index);
        }
        self.after_reads_registered();
    }

    pub(super) fn acknowledge_read_context(&mut self, peer: NodeId, context: u64) {
        let acknowledged = self.reads.acknowledged.entry(peer).or_insert(0);
        *acknowledged = (*acknowledged).max(context);
        self.release_confirmed_reads();
    }

    /// Releases, oldest first, every read whose heartbeat round a quorum acknowledged.
    fn release_confirmed_reads(&mut self) {
        while let Some(read) = self.reads.pending.front() {
            let acknowledged_count = 1 + self
                .reads
                .acknowledged
                .values()
                .filter(|&&context| context >= read.context)
                .count();
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

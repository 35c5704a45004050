//! Membership changes through the log, one server at a time (Raft dissertation §4.1): a
//! configuration entry takes effect as soon as it is in a node's log (committed or not), so
//! the configuration is recomputed whenever the log's configuration entries change. A leader
//! proposes a change only when no other is uncommitted and only once an entry of its own term
//! is committed (the rule Diego Ongaro added in 2015); learners replicate without voting and
//! are promoted by the leader once caught up; a removed leader steps down once its removal
//! commits.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::progress::Progress;
use super::{ConfChange, ConfChangeKind, EntryPayload, LogIndex, NodeId, RaftNode, Role, Term};
use crate::bugs::Bug;

/// Voters and learners at some point of the log.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    pub voters: BTreeSet<NodeId>,
    pub learners: BTreeSet<NodeId>,
}

impl Membership {
    pub(crate) fn apply(&mut self, change: &ConfChange) {
        match change.kind {
            ConfChangeKind::AddLearner => {
                if !self.voters.contains(&change.node) {
                    self.learners.insert(change.node);
                }
            }
            ConfChangeKind::AddVoter => {
                self.learners.remove(&change.node);
                self.voters.insert(change.node);
            }
            ConfChangeKind::Remove => {
                self.voters.remove(&change.node);
                self.learners.remove(&change.node);
            }
        }
    }

    pub fn contains(&self, node: NodeId) -> bool {
        self.voters.contains(&node) || self.learners.contains(&node)
    }
}

/// Why a membership change was not proposed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfChangeError {
    #[error("not the leader")]
    NotLeader { leader_hint: Option<NodeId> },
    #[error("another membership change (index {0}) is not committed yet")]
    ChangeInProgress(LogIndex),
    #[error("this leader has not committed an entry of its term yet; retry shortly")]
    LeaderNotReady,
    #[error("the change would not change the configuration")]
    NoOp,
    #[error("a cluster cannot remove its last voter")]
    LastVoter,
}

impl RaftNode {
    /// Proposes a single-server membership change (leader only).
    pub fn propose_conf_change(
        &mut self,
        change: ConfChange,
    ) -> Result<(Term, LogIndex), ConfChangeError> {
        if self.role != Role::Leader {
            return Err(ConfChangeError::NotLeader {
                leader_hint: self.leader,
            });
        }
        if self.last_conf_index > self.log.committed() {
            return Err(ConfChangeError::ChangeInProgress(self.last_conf_index));
        }
        // PLANTED BUG `membership-no-rule`: single-server changes without the rule that a new
        // leader must first commit an entry of its own term. A leader elected under one
        // configuration can then add a change on top of an uncommitted change of an earlier
        // leader, and the two configurations can have disjoint majorities: the bug Diego
        // Ongaro reported in his own dissertation's algorithm on raft-dev in 2015 ("bug in
        // single-server membership changes").
        let rule_holds =
            self.committed_in_current_term() || self.config.bugs.has(Bug::MembershipNoRule);
        if !rule_holds {
            return Err(ConfChangeError::LeaderNotReady);
        }
        let mut next = self.membership.clone();
        next.apply(&change);
        if next == self.membership {
            return Err(ConfChangeError::NoOp);
        }
        if next.voters.is_empty() {
            return Err(ConfChangeError::LastVoter);
        }
        let index = self.append_entry(EntryPayload::ConfChange(change));
        self.check_invariants();
        Ok((self.term, index))
    }

    /// The configuration in force (the latest in this node's log).
    pub fn membership(&self) -> &Membership {
        &self.membership
    }

    pub(super) fn is_voter(&self) -> bool {
        self.membership.voters.contains(&self.config.id)
    }

    /// Voters campaign; so does a voter of the committed configuration whose removal is not
    /// committed yet: it may hold the only copy of that removal (a leader deposed right after
    /// proposing it), and the remaining voters cannot elect anyone without its log. Counting
    /// only the new configuration's votes, it commits the removal and steps down.
    pub(super) fn may_campaign(&self) -> bool {
        self.is_voter()
            || (self.last_conf_index > self.log.committed()
                && self
                    .membership_at(self.log.committed())
                    .voters
                    .contains(&self.config.id))
    }

    /// Recomputes the configuration from the base (snapshot or bootstrap) and the log's
    /// configuration entries; called whenever those may have changed.
    pub(super) fn refresh_membership(&mut self) {
        let mut membership = self.base_membership.clone();
        let mut last_conf_index = 0;
        let first = self.log.snapshot_index() + 1;
        for entry in self.log.slice(first, self.log.last_index() + 1) {
            if let EntryPayload::ConfChange(change) = &entry.payload {
                membership.apply(change);
                last_conf_index = entry.index;
            }
        }
        self.last_conf_index = last_conf_index;
        if membership != self.membership {
            self.set_membership(membership);
        }
    }

    /// The configuration as of `index` (for a snapshot taken there).
    pub(super) fn membership_at(&self, index: LogIndex) -> Membership {
        let mut membership = self.base_membership.clone();
        let first = self.log.snapshot_index() + 1;
        for entry in self.log.slice(first, index + 1) {
            if let EntryPayload::ConfChange(change) = &entry.payload {
                membership.apply(change);
            }
        }
        membership
    }

    fn set_membership(&mut self, membership: Membership) {
        let id = self.config.id;
        self.config.voters = membership.voters.iter().copied().collect();
        self.peers = membership
            .voters
            .iter()
            .copied()
            .filter(|&node| node != id)
            .collect();
        self.learners = membership
            .learners
            .iter()
            .copied()
            .filter(|&node| node != id)
            .collect();
        if self.role == Role::Leader {
            let last_index = self.log.last_index();
            let members: BTreeSet<NodeId> = self
                .peers
                .iter()
                .chain(self.learners.iter())
                .copied()
                .collect();
            self.progress.retain(|node, _| members.contains(node));
            for node in members {
                self.progress
                    .entry(node)
                    .or_insert_with(|| Progress::new(last_index));
            }
            self.reads
                .acknowledged
                .retain(|node, _| self.peers.contains(node));
            if self
                .transfer
                .as_ref()
                .is_some_and(|transfer| !self.peers.contains(&transfer.to))
            {
                self.transfer = None;
            }
            self.append_flush_pending = true;
        }
        self.membership = membership;
    }

    /// After the commit index moved: a leader whose removal committed steps down; a caught-up
    /// learner is promoted.
    pub(super) fn on_commit_membership(&mut self) {
        if self.role != Role::Leader {
            return;
        }
        if !self.is_voter() && self.last_conf_index <= self.log.committed() {
            // Our removal is committed: someone else leads from now on.
            self.become_follower(self.term, None);
            return;
        }
        self.maybe_promote_learner();
    }

    /// Leader: promotes one learner whose log caught up with the commit index.
    pub(super) fn maybe_promote_learner(&mut self) {
        if !self.config.auto_promote_learners
            || self.role != Role::Leader
            || self.last_conf_index > self.log.committed()
            || !self.committed_in_current_term()
        {
            return;
        }
        let committed = self.log.committed();
        let caught_up = self
            .learners
            .iter()
            .copied()
            .find(|learner| self.progress[learner].match_index >= committed);
        if let Some(node) = caught_up {
            let change = ConfChange {
                kind: ConfChangeKind::AddVoter,
                node,
                context: Vec::new(),
            };
            let _ = self.propose_conf_change(change);
        }
    }
}

//! Terms, roles and elections: PreVote, RequestVote with the up-to-date check, one vote per
//! term, the leader lease on votes (CheckQuorum), and the role transitions.

use std::collections::BTreeMap;

use super::progress::Progress;
use super::{EntryPayload, Message, MessageBody, NodeId, RaftNode, Role, Term};
use crate::bugs::Bug;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CampaignKind {
    /// Ask whether we could win before disturbing anyone's term.
    PreVote,
    Election,
    /// After TimeoutNow: a real election that ignores the leader lease.
    Transfer,
}

impl RaftNode {
    /// A message carries a higher term. Returns whether to go on handling it.
    pub(super) fn adopt_higher_term(&mut self, message: &Message) -> bool {
        match message.body {
            MessageBody::RequestVote {
                pre_vote,
                leader_transfer,
                ..
            } => {
                if self.in_leader_lease() && !leader_transfer {
                    // We heard from a live leader less than a minimum election timeout ago:
                    // this candidate is disruptive (e.g. it was partitioned), not needed.
                    return false;
                }
                if !pre_vote {
                    self.become_follower(message.term, None);
                }
                true
            }
            // A granted PreVote answer carries the term we would campaign in, not the voter's.
            MessageBody::RequestVoteResponse {
                pre_vote: true,
                granted: true,
            } => true,
            MessageBody::AppendEntries { .. }
            | MessageBody::Heartbeat { .. }
            | MessageBody::InstallSnapshot { .. }
            | MessageBody::TimeoutNow => {
                self.become_follower(message.term, Some(message.from));
                true
            }
            _ => {
                self.become_follower(message.term, None);
                true
            }
        }
    }

    /// A message from an older term: refuse requests so that the stale sender learns our term,
    /// drop stale responses.
    pub(super) fn handle_stale_term(&mut self, message: Message) {
        match message.body {
            MessageBody::AppendEntries { .. }
                if self.config.bugs.has(Bug::StaleTermAppend) && self.role != Role::Leader =>
            {
                // PLANTED BUG `stale-term-append`: the term check on AppendEntries is skipped
                // (Raft paper, figure 2, AppendEntries rule 1), so a deposed leader that wakes
                // up from a long pause (GC, VM freeze, SIGSTOP) or returns from a partition
                // before its CheckQuorum fires still writes into this log and can overwrite
                // entries the new leader already committed. Imitates implementations that
                // validate prev index/term but not the sender's term. Leaders keep the check:
                // the bug lives on the follower path only.
                self.handle_append_entries(message);
            }
            MessageBody::AppendEntries { prev_log_index, .. } => {
                let outcome = super::AppendOutcome::Rejected {
                    rejected_index: prev_log_index,
                    conflict_term: None,
                    conflict_index: prev_log_index,
                };
                self.send(
                    message.from,
                    self.term,
                    MessageBody::AppendEntriesResponse { outcome },
                );
            }
            MessageBody::Heartbeat { read_context, .. } => {
                self.send(
                    message.from,
                    self.term,
                    MessageBody::HeartbeatResponse { read_context },
                );
            }
            MessageBody::RequestVote { pre_vote, .. } => {
                self.send(
                    message.from,
                    self.term,
                    MessageBody::RequestVoteResponse {
                        pre_vote,
                        granted: false,
                    },
                );
            }
            MessageBody::InstallSnapshot { meta, .. } => {
                // Tells the stale sender our term.
                let body = MessageBody::InstallSnapshotResponse {
                    index: meta.index,
                    received_bytes: 0,
                };
                self.send(message.from, self.term, body);
            }
            MessageBody::RequestVoteResponse {
                pre_vote: false, ..
            } if self.config.bugs.has(Bug::StaleVoteCounted) && self.role == Role::Candidate => {
                self.handle_request_vote_response(message);
            }
            MessageBody::RequestVoteResponse { .. }
            | MessageBody::AppendEntriesResponse { .. }
            | MessageBody::HeartbeatResponse { .. }
            | MessageBody::InstallSnapshotResponse { .. }
            | MessageBody::TimeoutNow => {}
        }
    }

    /// The etcd "lease" on votes: with CheckQuorum a leader steps down when it loses its
    /// quorum, so while we hear from one, nobody needs a new election.
    fn in_leader_lease(&self) -> bool {
        if !self.config.check_quorum_enabled() {
            return false;
        }
        // With lease reads, a node that just (re)started may have acknowledged a leader's
        // heartbeat right before it went down: it honours that lease for one timeout.
        let restarting = self.config.lease_reads
            && self.ticks_elapsed < u64::from(self.config.election_timeout_min_ticks);
        restarting
            || (self.leader.is_some()
                && self.election_elapsed_ticks < self.config.election_timeout_min_ticks)
    }

    pub(super) fn reset_randomized_election_timeout(&mut self) {
        self.randomized_election_timeout_ticks = self.rng.range_inclusive(
            self.config.election_timeout_min_ticks,
            self.config.election_timeout_max_ticks,
        );
    }

    /// The election timer fired.
    pub(super) fn start_election(&mut self) {
        let kind = if self.config.pre_vote_enabled() {
            CampaignKind::PreVote
        } else {
            CampaignKind::Election
        };
        self.campaign(kind);
    }

    pub(super) fn campaign(&mut self, kind: CampaignKind) {
        if self.role == Role::Leader {
            return;
        }
        // Terms above MAX_TERM are never adopted, so this refuses only the last one: a new
        // term must stay representable and acceptable to peers.
        if self
            .term
            .checked_add(1)
            .is_none_or(|next| next > super::MAX_TERM)
        {
            return;
        }
        if kind == CampaignKind::PreVote {
            self.become_pre_candidate();
        } else {
            self.become_candidate();
        }
        // A single-voter cluster wins every round alone (if we are that voter).
        if self.quorum() == 1 && self.is_voter() {
            if kind == CampaignKind::PreVote {
                self.become_candidate();
            }
            self.become_leader();
            return;
        }
        let pre_vote = kind == CampaignKind::PreVote;
        let term = if pre_vote { self.term + 1 } else { self.term };
        let body = MessageBody::RequestVote {
            pre_vote,
            last_log_index: self.log.last_index(),
            last_log_term: self.log.last_term(),
            leader_transfer: kind == CampaignKind::Transfer,
        };
        for peer in self.peers.clone() {
            self.send(peer, term, body.clone());
        }
    }

    /// Called with `message.term >= self.term` (PreVote requests may carry a higher term
    /// that we have not adopted).
    pub(super) fn handle_request_vote(&mut self, message: Message) {
        let MessageBody::RequestVote {
            pre_vote,
            last_log_index,
            last_log_term,
            ..
        } = message.body
        else {
            unreachable!("dispatched on RequestVote");
        };
        let candidate = message.from;
        let can_vote = self.voted_for == Some(candidate)
            || (self.voted_for.is_none() && self.leader.is_none())
            || (pre_vote && message.term > self.term);
        // PLANTED BUG `vote-index-only` (index_only): the up-to-date check compares only last
        // indexes, so a long log of stale terms beats a shorter log holding committed entries
        // of a newer term (Raft §5.4.1 compares last terms first). Imitates the mis-ordered
        // comparisons shipped in hashicorp/raft (issue #94, 2016) and neo4j (PR #6289, 2016),
        // here in the direction that breaks safety rather than liveness.
        let index_only = self.config.bugs.has(Bug::VoteIndexOnly);
        let up_to_date = self
            .log
            .is_up_to_date(last_log_index, last_log_term, index_only);
        let granted = can_vote && up_to_date;
        if granted && !pre_vote {
            assert_eq!(
                message.term, self.term,
                "a real vote is cast in the current term only"
            );
            assert!(
                self.voted_for.is_none() || self.voted_for == Some(candidate),
                "second vote in term {}",
                self.term
            );
            self.voted_for = Some(candidate);
            self.election_elapsed_ticks = 0;
        }
        let term = if granted && pre_vote {
            message.term
        } else {
            self.term
        };
        self.send(
            candidate,
            term,
            MessageBody::RequestVoteResponse { pre_vote, granted },
        );
    }

    pub(super) fn handle_request_vote_response(&mut self, message: Message) {
        let MessageBody::RequestVoteResponse { pre_vote, granted } = message.body else {
            unreachable!("dispatched on RequestVoteResponse");
        };
        let expected_term = match (pre_vote, self.role) {
            (true, Role::PreCandidate) if granted => self.term + 1,
            (true, Role::PreCandidate) => self.term,
            (false, Role::Candidate) => self.term,
            _ => return,
        };
        // PLANTED BUG `stale-vote-counted`: a candidate counts any granted vote that reaches
        // it while it campaigns, whatever the term it was cast in. A vote delayed from an
        // election this node lost counts in its next one, where the voter may have voted for
        // someone else: two leaders in one term. Imitates checking `granted` but not the
        // response's term (the reason etcd-io/raft and hashicorp/raft compare it).
        let stale_vote_counted = self.config.bugs.has(Bug::StaleVoteCounted)
            && !pre_vote
            && message.term < expected_term;
        if message.term != expected_term && !stale_vote_counted {
            return;
        }
        self.votes.insert(message.from, granted);
        // Only voters' answers count (our own vote too, and only if we are a voter).
        let voters = &self.membership.voters;
        let granted_count = self
            .votes
            .iter()
            .filter(|(node, granted)| **granted && voters.contains(node))
            .count();
        let rejected_count = self
            .votes
            .iter()
            .filter(|(node, granted)| !**granted && voters.contains(node))
            .count();
        if granted_count >= self.quorum() {
            if pre_vote {
                self.campaign(CampaignKind::Election);
            } else {
                self.become_leader();
            }
        } else if rejected_count > self.config.voters.len() - self.quorum() {
            self.become_follower(self.term, None);
        }
    }

    pub(super) fn handle_timeout_now(&mut self, _message: Message) {
        if self.role != Role::Leader {
            self.campaign(CampaignKind::Transfer);
        }
    }

    pub(super) fn become_follower(&mut self, term: Term, leader: Option<NodeId>) {
        assert!(term >= self.term, "term never decreases");
        let was_leader = self.role == Role::Leader;
        if term > self.term {
            self.term = term;
            self.voted_for = None;
        }
        if was_leader {
            self.step_down_leader_state();
        }
        let role_or_term_changed = self.role != Role::Follower || self.leader != leader;
        self.role = Role::Follower;
        self.leader = leader;
        self.votes.clear();
        self.election_elapsed_ticks = 0;
        if role_or_term_changed {
            self.reset_randomized_election_timeout();
        }
    }

    fn become_pre_candidate(&mut self) {
        assert_ne!(self.role, Role::Leader);
        self.role = Role::PreCandidate;
        self.leader = None;
        self.votes = BTreeMap::from([(self.config.id, true)]);
        self.election_elapsed_ticks = 0;
        self.reset_randomized_election_timeout();
    }

    fn become_candidate(&mut self) {
        assert_ne!(self.role, Role::Leader);
        self.term = self
            .term
            .checked_add(1)
            .expect("campaign checked the term bound");
        self.voted_for = Some(self.config.id);
        self.role = Role::Candidate;
        self.leader = None;
        self.votes = BTreeMap::from([(self.config.id, true)]);
        self.election_elapsed_ticks = 0;
        self.reset_randomized_election_timeout();
    }

    fn become_leader(&mut self) {
        assert_eq!(
            self.role,
            Role::Candidate,
            "only a candidate becomes leader"
        );
        self.role = Role::Leader;
        self.leader = Some(self.config.id);
        self.votes.clear();
        self.election_elapsed_ticks = 0;
        self.heartbeat_elapsed_ticks = 0;
        let last_index = self.log.last_index();
        // Voters and learners alike are replicated to.
        self.progress = self
            .peers
            .iter()
            .chain(self.learners.iter())
            .map(|&peer| (peer, Progress::new(last_index)))
            .collect();
        self.reads.reset_leadership();
        self.timeout_now_sent = false;
        // The no-op lets this leader commit in its own term, which commits every earlier
        // entry with it (figure 8) and unblocks ReadIndex.
        self.append_entry(EntryPayload::Noop);
    }

    /// Leaving leadership: abandon pending reads, transfers and per-follower state.
    fn step_down_leader_state(&mut self) {
        self.progress.clear();
        self.transfer = None;
        self.append_flush_pending = false;
        self.read_heartbeat_pending = false;
        let dropped = self.reads.drain_all();
        self.dropped_read_requests.extend(dropped);
    }
}

//! Log replication: the leader's AppendEntries (batched, pipelined, with fast backtracking),
//! heartbeats, CheckQuorum, the commit rule; the follower's consistency check and conflict
//! truncation.

use super::progress::{Progress, ProgressState};
use super::{
    AppendOutcome, Entry, EntryPayload, LogIndex, Message, MessageBody, NodeId, RaftNode, Role,
};
use crate::bugs::Bug;

/// Entry bytes one AppendEntries may carry: with headers and the authentication envelope the
/// datagram stays under the transport's 60,000-byte limit. A batch bounded only by count
/// would exceed it once entries are large, be dropped every time, and stall replication.
const MAX_APPEND_PAYLOAD_BYTES: usize = 48_000;
/// Encoding overhead per entry (index, term, tags, lengths), rounded up.
const ENTRY_OVERHEAD_BYTES: usize = 48;

/// How many of `entries` (at least one) fit in `MAX_APPEND_PAYLOAD_BYTES`.
fn batch_within_bytes(entries: &[Entry]) -> usize {
    let mut total_bytes = 0usize;
    let mut count = 0;
    for entry in entries {
        let payload_bytes = match &entry.payload {
            EntryPayload::Noop => 0,
            EntryPayload::Command(bytes) => bytes.len(),
            EntryPayload::ConfChange(change) => change.context.len(),
        };
        total_bytes = total_bytes.saturating_add(payload_bytes + ENTRY_OVERHEAD_BYTES);
        if count > 0 && total_bytes > MAX_APPEND_PAYLOAD_BYTES {
            break;
        }
        count += 1;
    }
    count
}

impl RaftNode {
    /// Leader: appends an entry of the current term; replication goes out with the next Ready.
    pub(super) fn append_entry(&mut self, payload: EntryPayload) -> LogIndex {
        assert_eq!(self.role, Role::Leader);
        let index = self.log.last_index() + 1;
        let is_conf_change = matches!(payload, EntryPayload::ConfChange(_));
        self.log.append(Entry {
            term: self.term,
            index,
            payload,
        });
        if is_conf_change {
            self.refresh_membership();
        }
        self.append_flush_pending = true;
        // A single voter commits on its own.
        self.maybe_commit();
        index
    }

    pub(super) fn tick_leader(&mut self) {
        self.heartbeat_elapsed_ticks += 1;
        self.election_elapsed_ticks += 1;
        if let Some(transfer) = &mut self.transfer {
            transfer.elapsed_ticks += 1;
            if transfer.elapsed_ticks >= self.config.election_timeout_min_ticks {
                // The target did not take over in time: accept proposals again.
                self.transfer = None;
            }
        }
        if self.election_elapsed_ticks >= self.config.election_timeout_min_ticks {
            self.election_elapsed_ticks = 0;
            if self.config.check_quorum_enabled() {
                let active_count = usize::from(self.is_voter())
                    + self
                        .progress
                        .iter()
                        .filter(|(peer, progress)| {
                            progress.recent_active && self.peers.contains(peer)
                        })
                        .count();
                if active_count < self.quorum() {
                    // Partitioned from a quorum: another leader may exist. Stop serving.
                    self.become_follower(self.term, None);
                    return;
                }
                for progress in self.progress.values_mut() {
                    progress.recent_active = false;
                }
            }
        }
        if self.heartbeat_elapsed_ticks >= self.config.heartbeat_interval_ticks {
            self.heartbeat_elapsed_ticks = 0;
            self.restart_stalled_pipelines();
            self.broadcast_heartbeat();
        }
    }

    /// A pipeline whose match index did not move for a whole heartbeat interval while entries
    /// were outstanding lost a message (or its answer): fall back to probing from the match.
    fn restart_stalled_pipelines(&mut self) {
        let last_index = self.log.last_index();
        for progress in self.progress.values_mut() {
            let stalled = progress.state == ProgressState::Replicate
                && progress.match_index < last_index
                && progress.match_index == progress.match_at_last_heartbeat
                && !progress.inflight.is_empty();
            if stalled {
                let next_index = progress.match_index + 1;
                progress.become_probe(next_index);
            }
            progress.match_at_last_heartbeat = progress.match_index;
        }
    }

    pub(super) fn broadcast_heartbeat(&mut self) {
        let round = self.start_heartbeat_round();
        let members: Vec<NodeId> = self.progress.keys().copied().collect();
        for peer in members {
            self.send_heartbeat(peer, round);
        }
        self.read_heartbeat_pending = false;
    }

    fn send_heartbeat(&mut self, peer: NodeId, read_context: u64) {
        let committed = self.log.committed();
        let progress = self
            .progress
            .get_mut(&peer)
            .expect("leader tracks every peer");
        // Never tell a follower to commit past what it is known to hold.
        let leader_commit = committed.min(progress.match_index);
        progress.commit_sent = progress.commit_sent.max(leader_commit);
        let body = MessageBody::Heartbeat {
            leader_commit,
            read_context,
        };
        self.send(peer, self.term, body);
    }

    /// Leader, while building a Ready: send what new entries, acknowledgements, commits and
    /// reads call for, batched.
    pub(super) fn flush_leader_messages(&mut self) {
        let mut appended_to = Vec::new();
        let members: Vec<NodeId> = self.progress.keys().copied().collect();
        if self.append_flush_pending {
            self.append_flush_pending = false;
            for peer in members.clone() {
                if self.send_appends(peer) {
                    appended_to.push(peer);
                }
            }
        }
        if self.read_heartbeat_pending {
            self.broadcast_heartbeat();
            return;
        }
        // Followers not reached by an AppendEntries just now learn the commit this way.
        let round = self.reads.latest_round();
        let committed = self.log.committed();
        for peer in members {
            if !appended_to.contains(&peer) && self.progress[&peer].needs_commit(committed) {
                self.send_heartbeat(peer, round);
            }
        }
    }

    /// Sends as many AppendEntries to `peer` as its progress state allows. Returns whether
    /// any went out.
    pub(super) fn send_appends(&mut self, peer: NodeId) -> bool {
        let mut sent_any = false;
        loop {
            let progress = &self.progress[&peer];
            if !progress.can_send(self.config.max_inflight_appends) {
                return sent_any;
            }
            let next_index = progress.next_index;
            let needs_snapshot = matches!(progress.state, ProgressState::Snapshot { .. })
                || next_index <= self.log.snapshot_index();
            if needs_snapshot {
                // The entries it needs are compacted away. Not counted as an append: the
                // follower still learns the commit index from a heartbeat.
                self.send_snapshot_chunk(peer);
                return sent_any;
            }
            let probing = progress.state == ProgressState::Probe;
            let last_index = self.log.last_index();
            // In replicate state only new entries are worth a message; a probe may be empty.
            if !probing && next_index > last_index {
                return sent_any;
            }
            let prev_log_index = next_index - 1;
            let prev_log_term = self
                .log
                .term(prev_log_index)
                .expect("a leader holds every entry before next_index");
            let high = next_index.saturating_add(self.config.max_append_entries_count as LogIndex);
            let entries = self.log.slice(next_index, high);
            let entries = entries[..batch_within_bytes(entries)].to_vec();
            let entries_count = entries.len();
            let last_sent = prev_log_index + entries_count as LogIndex;
            let leader_commit = self.log.committed();
            let body = MessageBody::AppendEntries {
                prev_log_index,
                prev_log_term,
                entries,
                leader_commit,
            };
            self.send(peer, self.term, body);
            let progress = self.progress.get_mut(&peer).expect("peer progress");
            progress.on_sent(entries_count, last_sent, leader_commit);
            sent_any = true;
            if probing {
                return true;
            }
        }
    }

    /// Follower side of AppendEntries (`message.term == self.term`, or older under the planted
    /// bug `stale-term-append`).
    pub(super) fn handle_append_entries(&mut self, message: Message) {
        let MessageBody::AppendEntries {
            prev_log_index,
            prev_log_term,
            entries,
            leader_commit,
        } = message.body
        else {
            unreachable!("dispatched on AppendEntries");
        };
        if message.term == self.term {
            if self.role == Role::Leader {
                self.tolerate_impossible(|| format!("two leaders in term {}", message.term));
                return;
            }
            self.become_follower(self.term, Some(message.from));
        }
        let (prev_log_index, prev_log_term, entries) =
            match self.skip_compacted(prev_log_index, prev_log_term, entries) {
                Some(trimmed) => trimmed,
                None => {
                    // Every entry sent is behind our snapshot: committed, hence matching.
                    let outcome = AppendOutcome::Accepted {
                        match_index: self.log.snapshot_index(),
                    };
                    self.send(
                        message.from,
                        self.term,
                        MessageBody::AppendEntriesResponse { outcome },
                    );
                    return;
                }
            };
        let outcome = match self.log.term(prev_log_index) {
            None => AppendOutcome::Rejected {
                rejected_index: prev_log_index,
                conflict_term: None,
                conflict_index: self.log.last_index() + 1,
            },
            // PLANTED BUG `append-skips-prev-term`: the consistency check only asks whether
            // an entry exists at prev_log_index, not whether its term matches, so entries are
            // appended after a divergent prefix and the Log Matching property is gone (Raft
            // figure 2, AppendEntries rule 2). The shortcut of checking `prev_log_index <=
            // last_index` alone, common in first implementations of the paper.
            Some(term)
                if term != prev_log_term && !self.config.bugs.has(Bug::AppendSkipsPrevTerm) =>
            {
                AppendOutcome::Rejected {
                    rejected_index: prev_log_index,
                    conflict_term: Some(term),
                    conflict_index: self.log.first_index_of_term(prev_log_index, term),
                }
            }
            Some(_) => {
                assert_ne!(
                    self.role,
                    Role::Leader,
                    "a leader never truncates or rewrites its own log"
                );
                let may_rewrite_committed = self.config.bugs_break_log_safety();
                if self.config.bugs.has(Bug::TruncateWithoutConflict) {
                    // PLANTED BUG `truncate-without-conflict`: the suffix is cut at the first
                    // entry sent even when every entry already matches, so a delayed or
                    // duplicated AppendEntries erases newer entries this follower has already
                    // acknowledged (and the leader counted toward commit). Imitates
                    // akka-raft issue #66 (2015, found by fuzzing): a delayed AppendEntries
                    // carrying a prefix of the follower's entries deleted the rest, breaking
                    // leader completeness.
                    self.log
                        .truncate_and_append(&entries, may_rewrite_committed);
                    self.refresh_membership();
                } else if let Some(conflict_index) = self.log.find_conflict(&entries) {
                    if !may_rewrite_committed && conflict_index <= self.log.committed() {
                        // The leader of this term says a committed entry is different: one
                        // of us broke Raft's safety. Going on would apply a different history.
                        let ours = self.log.term(conflict_index);
                        let theirs = entries
                            .iter()
                            .find(|entry| entry.index == conflict_index)
                            .map(|entry| entry.term);
                        self.fail_stop(format!(
                            "node {} (leader of term {}) sent an entry at index {conflict_index} \
                             with term {} that conflicts with our committed entry of term {} \
                             (our commit index {})",
                            message.from,
                            message.term,
                            theirs.map_or("?".into(), |term| term.to_string()),
                            ours.map_or("?".into(), |term| term.to_string()),
                            self.log.committed()
                        ));
                        return;
                    }
                    let first_new = (conflict_index - entries[0].index) as usize;
                    self.log
                        .truncate_and_append(&entries[first_new..], may_rewrite_committed);
                    // The configuration is the latest in the log: recompute it when a
                    // configuration entry arrived or was cut off.
                    let carries_conf_change = entries[first_new..]
                        .iter()
                        .any(|entry| matches!(entry.payload, EntryPayload::ConfChange(_)));
                    if carries_conf_change || conflict_index <= self.last_conf_index {
                        self.refresh_membership();
                    }
                }
                // Bounded by `Message::is_well_formed` (indexes below MAX_INDEX).
                let last_new_index = prev_log_index + entries.len() as LogIndex;
                // PLANTED BUG `follower-commit-past-new`: the follower commits up to
                // min(leaderCommit, its own last index) instead of min(leaderCommit, index of
                // last new entry) (Raft figure 2, AppendEntries rule 5). Entries past what this
                // message verified may be a stale suffix of an older term, and get committed
                // and applied here. The rule most often misread from the paper.
                let commit_cap = if self.config.bugs.has(Bug::FollowerCommitPastNew) {
                    self.log.last_index()
                } else {
                    last_new_index
                };
                let new_commit = leader_commit.min(commit_cap);
                self.log.commit_to(new_commit, may_rewrite_committed);
                // PLANTED BUG `ack-last-index`: the follower reports its last log index as its
                // match instead of the last entry this message verified; a stale suffix past
                // it is counted by the leader toward commit (and the leader's later commit
                // notices make this follower commit that suffix). Imitates acknowledging
                // "how long my log is" rather than "what I checked".
                let match_index = if self.config.bugs.has(Bug::AckLastIndex) {
                    self.log.last_index()
                } else {
                    last_new_index
                };
                AppendOutcome::Accepted { match_index }
            }
        };
        self.send(
            message.from,
            self.term,
            MessageBody::AppendEntriesResponse { outcome },
        );
    }

    /// Drops the entries of an AppendEntries that our snapshot already covers (they are
    /// committed, so they match the leader's). `None` when nothing after the snapshot remains
    /// and the consistency check cannot be made past it.
    fn skip_compacted(
        &self,
        prev_log_index: LogIndex,
        prev_log_term: super::Term,
        entries: Vec<Entry>,
    ) -> Option<(LogIndex, super::Term, Vec<Entry>)> {
        let snapshot_index = self.log.snapshot_index();
        if prev_log_index >= snapshot_index {
            return Some((prev_log_index, prev_log_term, entries));
        }
        let last_sent = prev_log_index + entries.len() as LogIndex;
        if last_sent <= snapshot_index {
            return None;
        }
        let skipped = (snapshot_index - prev_log_index) as usize;
        let kept = entries[skipped..].to_vec();
        Some((snapshot_index, self.log.snapshot_term(), kept))
    }

    pub(super) fn handle_append_entries_response(&mut self, message: Message) {
        let MessageBody::AppendEntriesResponse { outcome } = message.body else {
            unreachable!("dispatched on AppendEntriesResponse");
        };
        if self.role != Role::Leader {
            return;
        }
        let peer = message.from;
        let last_index = self.log.last_index();
        let progress = self
            .progress
            .get_mut(&peer)
            .expect("leader tracks every peer");
        progress.recent_active = true;
        match outcome {
            AppendOutcome::Accepted { match_index } => {
                if match_index > last_index {
                    self.tolerate_impossible(|| {
                        format!("node {peer} acknowledged {match_index} beyond our log")
                    });
                    return;
                }
                let progress = self
                    .progress
                    .get_mut(&peer)
                    .expect("leader tracks every peer");
                let was_probing = progress.state == ProgressState::Probe;
                // PLANTED BUG `match-from-next-index`: on success the leader sets the match
                // index from its own bookkeeping (next_index - 1) rather than from the
                // follower's answer. With pipelining next_index is already past entries still
                // in flight, so they count toward commit before a quorum holds them (the
                // `matchIndex = nextIndex - 1` slip of many course implementations).
                let match_index = if self.config.bugs.has(Bug::MatchFromNextIndex) {
                    progress.next_index - 1
                } else {
                    match_index
                };
                let advanced = progress.on_accepted(match_index);
                if advanced {
                    self.maybe_commit();
                    if self.role != Role::Leader {
                        return; // our own removal committed: we stepped down
                    }
                }
                if advanced || was_probing {
                    self.append_flush_pending = true;
                }
                self.maybe_send_timeout_now(peer);
                if self.learners.contains(&peer) {
                    self.maybe_promote_learner();
                }
            }
            AppendOutcome::Rejected {
                rejected_index,
                conflict_term,
                conflict_index,
            } => {
                if progress.is_stale_rejection(rejected_index) {
                    return;
                }
                // Fast backtracking: skip a whole divergent term per round trip instead of
                // one entry.
                let hinted_next =
                    match conflict_term.and_then(|term| self.log.last_index_of_term(term)) {
                        Some(last_of_term) => last_of_term + 1,
                        None => conflict_index,
                    };
                let next_index = hinted_next.min(rejected_index).max(1);
                let progress = self
                    .progress
                    .get_mut(&peer)
                    .expect("leader tracks every peer");
                let previous_next = progress.next_index;
                progress.become_probe(next_index);
                if progress.next_index < previous_next {
                    progress.lost_entries_rejections = 0;
                    self.append_flush_pending = true;
                } else {
                    // The follower lacks entries it acknowledged: its durable state was lost
                    // (a disk fault or a planted bug). Next cannot go below match + 1, so an
                    // immediate retry would loop: retry at heartbeat pace, and once the
                    // follower has proven the loss several times, repair it from the hint.
                    progress.lost_entries_rejections += 1;
                    if progress.lost_entries_rejections
                        >= Progress::LOST_ENTRIES_REJECTIONS_TO_RESET
                    {
                        progress.forget_lost_entries(next_index);
                        self.append_flush_pending = true;
                    } else {
                        progress.probe_sent = true;
                    }
                }
            }
        }
    }

    pub(super) fn handle_heartbeat(&mut self, message: Message) {
        let MessageBody::Heartbeat {
            leader_commit,
            read_context,
        } = message.body
        else {
            unreachable!("dispatched on Heartbeat");
        };
        if self.role == Role::Leader {
            self.tolerate_impossible(|| format!("two leaders in term {}", message.term));
            return;
        }
        self.become_follower(self.term, Some(message.from));
        let may_rewrite_committed = self.config.bugs_break_log_safety();
        self.log.commit_to(
            leader_commit.min(self.log.last_index()),
            may_rewrite_committed,
        );
        self.send(
            message.from,
            self.term,
            MessageBody::HeartbeatResponse { read_context },
        );
    }

    pub(super) fn handle_heartbeat_response(&mut self, message: Message) {
        let MessageBody::HeartbeatResponse { read_context } = message.body else {
            unreachable!("dispatched on HeartbeatResponse");
        };
        if self.role != Role::Leader {
            return;
        }
        let peer = message.from;
        let last_index = self.log.last_index();
        let progress = self
            .progress
            .get_mut(&peer)
            .expect("leader tracks every peer");
        progress.recent_active = true;
        if matches!(
            progress.state,
            ProgressState::Probe | ProgressState::Snapshot { .. }
        ) {
            // The probe (or snapshot chunk) or its answer may have been lost: allow a retry.
            progress.probe_sent = false;
        }
        if progress.match_index < last_index {
            self.append_flush_pending = true;
        }
        // Only voters confirm leadership for reads and leases.
        if self.peers.contains(&peer) {
            self.acknowledge_heartbeat_round(peer, read_context);
        }
    }

    /// Advances the commit index to the highest index held by a quorum, if that entry is of
    /// the current term (Raft paper §5.4.2, figure 8).
    pub(super) fn maybe_commit(&mut self) {
        let mut match_indexes: Vec<LogIndex> = self
            .progress
            .iter()
            .filter(|(peer, _)| self.peers.contains(peer))
            .map(|(_, progress)| progress.match_index)
            .collect();
        // A leader being removed replicates its removal but no longer counts itself.
        if self.is_voter() {
            match_indexes.push(self.log.last_index());
        }
        // PLANTED BUG `commit-median-even`: the quorum index is taken as the median of the
        // match indexes sorted ascending (`sorted[len / 2]`), right for an odd number of
        // voters but, for an even number, an index held by only half of them: a membership
        // change to four voters commits entries on two. The "commit index is the median"
        // shortcut, wrong for even cluster sizes.
        let quorum_index = if self.config.bugs.has(Bug::CommitMedianEven) {
            match_indexes.sort_unstable();
            match_indexes[match_indexes.len() / 2]
        } else {
            match_indexes.sort_unstable_by(|a, b| b.cmp(a));
            match_indexes[self.quorum() - 1]
        };
        if quorum_index <= self.log.committed() {
            return;
        }
        let quorum_term = self
            .log
            .term(quorum_index)
            .expect("quorum index within the leader's log");
        // PLANTED BUG `commit-old-term`: an entry of an earlier term is committed as soon as
        // a majority holds it. A later leader that never saw it can still be elected and
        // overwrite it (Raft paper, figure 8). Shipped in LogCabin (issue #44, 2013), goraft
        // (PR #27, 2013), async-raft (#108), canonical/raft (#220) and nats-server (PR #7955).
        let counting_allowed = quorum_term == self.term || self.config.bugs.has(Bug::CommitOldTerm);
        if !counting_allowed {
            return;
        }
        self.log.commit_to(quorum_index, false);
        self.on_commit_advanced();
        self.on_commit_membership();
    }
}

#[cfg(test)]
mod batch_tests {
    use super::*;

    #[test]
    fn batches_of_large_entries_stay_within_a_datagram() {
        let entry = |index, bytes| Entry {
            term: 1,
            index,
            payload: EntryPayload::Command(vec![0; bytes]),
        };
        let large: Vec<Entry> = (1..=10).map(|index| entry(index, 20_000)).collect();
        assert_eq!(batch_within_bytes(&large), 2);
        let huge = vec![entry(1, 59_000), entry(2, 1)];
        assert_eq!(batch_within_bytes(&huge), 1, "one entry always goes");
        let small: Vec<Entry> = (1..=64).map(|index| entry(index, 40)).collect();
        assert_eq!(batch_within_bytes(&small), 64);
        assert_eq!(batch_within_bytes(&[]), 0);
    }
}

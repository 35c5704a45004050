//! The wire vocabulary between cores. Serializable so that the shell can ship messages as
//! datagrams; the core never looks at bytes.

use serde::{Deserialize, Serialize};

use super::{Entry, LogIndex, NodeId, SnapshotMeta, Term, MAX_INDEX, MAX_TERM};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub from: NodeId,
    pub to: NodeId,
    /// The sender's term, except for PreVote requests and granted PreVote responses, which
    /// carry the term the pre-candidate would campaign in.
    pub term: Term,
    pub body: MessageBody,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MessageBody {
    RequestVote {
        /// A PreVote request changes no state at the receiver.
        pre_vote: bool,
        last_log_index: LogIndex,
        last_log_term: Term,
        /// Sent after TimeoutNow: receivers skip the leader-lease check.
        leader_transfer: bool,
    },
    RequestVoteResponse {
        pre_vote: bool,
        granted: bool,
    },
    AppendEntries {
        prev_log_index: LogIndex,
        prev_log_term: Term,
        entries: Vec<Entry>,
        leader_commit: LogIndex,
    },
    AppendEntriesResponse {
        outcome: AppendOutcome,
    },
    /// Leadership and commit only (commit is capped at what the follower is known to hold);
    /// `read_context` numbers the heartbeat round it belongs to (ReadIndex confirmation and
    /// leader leases).
    Heartbeat {
        leader_commit: LogIndex,
        read_context: u64,
    },
    HeartbeatResponse {
        read_context: u64,
    },
    /// Leadership transfer: the receiver campaigns at once.
    TimeoutNow,
    /// One chunk of the leader's snapshot, for a follower whose missing entries are compacted.
    /// Chunks go one at a time; `done` marks the last.
    InstallSnapshot {
        meta: SnapshotMeta,
        offset: u64,
        data: Vec<u8>,
        done: bool,
    },
    /// The follower holds the first `received_bytes` of the snapshot ending at `index` (it
    /// answers a finished install with an `AppendEntriesResponse` instead).
    InstallSnapshotResponse {
        index: LogIndex,
        received_bytes: u64,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AppendOutcome {
    /// The follower's log matches the leader's up to `match_index` (prev + entries sent).
    Accepted { match_index: LogIndex },
    /// The consistency check failed at `rejected_index` (the request's prev_log_index).
    /// Hint for fast backtracking: the follower's term at that index (`None` when its log is
    /// shorter) and the first index it holds of that term (or its last index + 1).
    Rejected {
        rejected_index: LogIndex,
        conflict_term: Option<Term>,
        conflict_index: LogIndex,
    },
}

impl MessageBody {
    /// The message type's name, for logs.
    pub fn kind_name(&self) -> &'static str {
        match self {
            MessageBody::RequestVote { .. } => "RequestVote",
            MessageBody::RequestVoteResponse { .. } => "RequestVoteResponse",
            MessageBody::AppendEntries { .. } => "AppendEntries",
            MessageBody::AppendEntriesResponse { .. } => "AppendEntriesResponse",
            MessageBody::Heartbeat { .. } => "Heartbeat",
            MessageBody::HeartbeatResponse { .. } => "HeartbeatResponse",
            MessageBody::TimeoutNow => "TimeoutNow",
            MessageBody::InstallSnapshot { .. } => "InstallSnapshot",
            MessageBody::InstallSnapshotResponse { .. } => "InstallSnapshotResponse",
        }
    }
}

impl Message {
    /// Shape checks that need no state: entries of an AppendEntries follow `prev_log_index`
    /// one by one, with terms that never decrease, from `prev_log_term` up to the sender's
    /// term. A message failing them comes from a broken or foreign sender and is dropped,
    /// never allowed to trip an assertion.
    ///
    /// Every term is at most `MAX_TERM` and every index at most `MAX_INDEX` (sums included),
    /// so the core's term and index arithmetic cannot overflow on any message that passes.
    pub fn is_well_formed(&self) -> bool {
        if self.term > MAX_TERM || !self.numbers_in_bounds() {
            return false;
        }
        if let MessageBody::InstallSnapshot { meta, .. } = &self.body {
            return meta.index > 0 && meta.term <= self.term;
        }
        let MessageBody::AppendEntries {
            prev_log_index,
            prev_log_term,
            entries,
            ..
        } = &self.body
        else {
            return true;
        };
        let mut expected_index = *prev_log_index;
        let mut previous_term = *prev_log_term;
        for entry in entries {
            expected_index += 1;
            if entry.index != expected_index || entry.term < previous_term || entry.term > self.term
            {
                return false;
            }
            previous_term = entry.term;
        }
        prev_log_term <= &self.term
    }

    /// Terms and indexes within `MAX_TERM` and `MAX_INDEX`.
    fn numbers_in_bounds(&self) -> bool {
        let index_ok = |index: LogIndex| index <= MAX_INDEX;
        let term_ok = |term: Term| term <= MAX_TERM;
        match &self.body {
            MessageBody::RequestVote {
                last_log_index,
                last_log_term,
                ..
            } => index_ok(*last_log_index) && term_ok(*last_log_term),
            MessageBody::RequestVoteResponse { .. }
            | MessageBody::HeartbeatResponse { .. }
            | MessageBody::TimeoutNow => true,
            MessageBody::AppendEntries {
                prev_log_index,
                prev_log_term,
                entries,
                leader_commit,
            } => {
                let last = (*prev_log_index).checked_add(entries.len() as LogIndex);
                last.is_some_and(index_ok) && term_ok(*prev_log_term) && index_ok(*leader_commit)
            }
            MessageBody::AppendEntriesResponse { outcome } => match outcome {
                AppendOutcome::Accepted { match_index } => index_ok(*match_index),
                AppendOutcome::Rejected {
                    rejected_index,
                    conflict_term,
                    conflict_index,
                } => {
                    index_ok(*rejected_index)
                        && index_ok(*conflict_index)
                        && conflict_term.is_none_or(term_ok)
                }
            },
            MessageBody::Heartbeat { leader_commit, .. } => index_ok(*leader_commit),
            MessageBody::InstallSnapshot {
                meta, offset, data, ..
            } => {
                let end = offset.checked_add(data.len() as u64);
                index_ok(meta.index) && term_ok(meta.term) && end.is_some_and(index_ok)
            }
            MessageBody::InstallSnapshotResponse {
                index,
                received_bytes,
            } => index_ok(*index) && index_ok(*received_bytes),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::EntryPayload;
    use super::*;

    fn append(
        prev_log_index: LogIndex,
        prev_log_term: Term,
        entries: &[(LogIndex, Term)],
    ) -> Message {
        let entries = entries
            .iter()
            .map(|&(index, term)| Entry {
                term,
                index,
                payload: EntryPayload::Noop,
            })
            .collect();
        let body = MessageBody::AppendEntries {
            prev_log_index,
            prev_log_term,
            entries,
            leader_commit: 0,
        };
        Message {
            from: 1,
            to: 2,
            term: 3,
            body,
        }
    }

    #[test]
    fn append_entries_shape_is_checked() {
        assert!(append(4, 2, &[(5, 2), (6, 3)]).is_well_formed());
        assert!(append(4, 2, &[]).is_well_formed());
        assert!(!append(4, 2, &[(6, 2)]).is_well_formed(), "gap after prev");
        assert!(
            !append(4, 2, &[(5, 3), (6, 2)]).is_well_formed(),
            "term decreases"
        );
        assert!(
            !append(4, 2, &[(5, 1)]).is_well_formed(),
            "term below prev term"
        );
        assert!(
            !append(4, 2, &[(5, 4)]).is_well_formed(),
            "term above the sender's"
        );
        assert!(
            !append(4, 4, &[]).is_well_formed(),
            "prev term above the sender's"
        );
    }

    #[test]
    fn impossible_terms_and_indexes_are_not_well_formed() {
        let mut huge_term = append(4, 2, &[]);
        huge_term.term = u64::MAX;
        assert!(!huge_term.is_well_formed());
        let near_max = append(u64::MAX - 1, 2, &[]);
        assert!(!near_max.is_well_formed(), "prev index beyond MAX_INDEX");
        let heartbeat = Message {
            from: 1,
            to: 2,
            term: 3,
            body: MessageBody::Heartbeat {
                leader_commit: u64::MAX,
                read_context: 0,
            },
        };
        assert!(!heartbeat.is_well_formed());
        let rejected = Message {
            from: 1,
            to: 2,
            term: 3,
            body: MessageBody::AppendEntriesResponse {
                outcome: AppendOutcome::Rejected {
                    rejected_index: u64::MAX,
                    conflict_term: None,
                    conflict_index: 1,
                },
            },
        };
        assert!(!rejected.is_well_formed());
    }
}

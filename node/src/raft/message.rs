//! The wire vocabulary between cores. Serializable so that the shell can ship messages as
//! datagrams; the core never looks at bytes.

use serde::{Deserialize, Serialize};

use super::{Entry, LogIndex, NodeId, SnapshotMeta, Term};

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

impl Message {
    /// Shape checks that need no state: entries of an AppendEntries follow `prev_log_index`
    /// one by one, with terms that never decrease, from `prev_log_term` up to the sender's
    /// term. A message failing them comes from a broken or foreign sender and is dropped,
    /// never allowed to trip an assertion.
    pub fn is_well_formed(&self) -> bool {
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
}

//! The wire vocabulary between cores. Serializable so that the shell can ship messages as
//! datagrams; the core never looks at bytes.

use serde::{Deserialize, Serialize};

use super::{Entry, LogIndex, NodeId, Term};

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

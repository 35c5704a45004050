//! What the core persists: log entries and the hard state (term + vote), and what the shell
//! hands back on restart.

use serde::{Deserialize, Serialize};

use super::{LogIndex, NodeId, Term};

/// Term and vote: always persisted together, before any message of the same `Ready` is sent.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HardState {
    pub term: Term,
    pub voted_for: Option<NodeId>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub term: Term,
    pub index: LogIndex,
    pub payload: EntryPayload,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EntryPayload {
    /// Appended by every new leader so that it can commit (and serve reads) in its own term.
    Noop,
    /// Opaque to the core; the shell's state machine decodes it.
    Command(Vec<u8>),
    /// A membership change: takes effect in the core as soon as it is in the log.
    ConfChange(ConfChange),
}

/// One single-server membership change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfChange {
    pub kind: ConfChangeKind,
    pub node: NodeId,
    /// Opaque to the core: the shell puts the node's address here.
    pub context: Vec<u8>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConfChangeKind {
    /// A non-voting member: replicated to, never counted, never campaigns.
    AddLearner,
    /// Makes a learner (or a new node) a voter.
    AddVoter,
    /// Removes a voter or learner (the leader included).
    Remove,
}

/// What a snapshot stands for: the state machine after applying every entry up to `index`
/// (whose term is `term`), under the configuration `voters`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotMeta {
    pub index: LogIndex,
    pub term: Term,
    pub voters: Vec<NodeId>,
    /// Non-voting members at `index`.
    #[serde(default)]
    pub learners: Vec<NodeId>,
}

/// A snapshot: metadata plus the state machine's bytes (opaque to the core, which only ships
/// them to followers that need them).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub meta: SnapshotMeta,
    pub data: Vec<u8>,
}

/// What survived a restart. The commit index is volatile: it comes back from the leader.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecoveredState {
    pub hard_state: HardState,
    /// The log after the snapshot (from `snapshot.meta.index + 1`, or from 1 without one),
    /// contiguous.
    pub entries: Vec<Entry>,
    /// Entries up to here were applied to a durable state machine and will not be emitted again.
    /// At least the snapshot's index: the shell restores its state machine from the snapshot.
    pub applied_index: LogIndex,
    /// The latest durable snapshot, if any.
    pub snapshot: Option<Snapshot>,
}

impl RecoveredState {
    /// A clear reason when stored state is inconsistent (the shell reports it instead of
    /// letting `RaftNode::new` assert).
    pub fn validate(&self) -> Result<(), String> {
        if self.hard_state.term > super::MAX_TERM {
            return Err(format!(
                "stored term {} is impossible (above {}); it was probably adopted from a forged \
                 message by an older minos",
                self.hard_state.term,
                super::MAX_TERM
            ));
        }
        if let Some(entry) = self.entries.last() {
            if entry.term > super::MAX_TERM || entry.index > super::MAX_INDEX {
                return Err(format!(
                    "log entry {} has an impossible term {} or index",
                    entry.index, entry.term
                ));
            }
        }
        let (snapshot_index, snapshot_term) = self
            .snapshot
            .as_ref()
            .map_or((0, 0), |snapshot| (snapshot.meta.index, snapshot.meta.term));
        let mut previous_term = snapshot_term;
        for (position, entry) in self.entries.iter().enumerate() {
            let expected_index = snapshot_index + position as LogIndex + 1;
            if entry.index != expected_index {
                return Err(format!(
                    "log entry at position {position} has index {}, expected {expected_index}",
                    entry.index
                ));
            }
            if entry.term < previous_term {
                return Err(format!(
                    "log entry {} has term {} below the previous entry's term {previous_term}",
                    entry.index, entry.term
                ));
            }
            previous_term = entry.term;
        }
        let last_index = snapshot_index + self.entries.len() as LogIndex;
        if self.applied_index > last_index {
            return Err(format!(
                "applied index {} is beyond the last log index {last_index}",
                self.applied_index,
            ));
        }
        if self.applied_index < snapshot_index {
            return Err(format!(
                "applied index {} is below the snapshot index {snapshot_index}",
                self.applied_index
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(index: LogIndex, term: Term) -> Entry {
        Entry {
            term,
            index,
            payload: EntryPayload::Noop,
        }
    }

    #[test]
    fn inconsistent_recovered_state_gets_a_reason() {
        let state = |entries: Vec<Entry>, applied_index| RecoveredState {
            hard_state: HardState {
                term: 3,
                voted_for: None,
            },
            entries,
            applied_index,
            snapshot: None,
        };
        assert_eq!(state(vec![entry(1, 1), entry(2, 3)], 2).validate(), Ok(()));
        assert!(state(vec![entry(2, 1)], 0)
            .validate()
            .unwrap_err()
            .contains("expected 1"));
        assert!(state(vec![entry(1, 2), entry(2, 1)], 0)
            .validate()
            .unwrap_err()
            .contains("below"));
        assert!(state(vec![entry(1, 1)], 2)
            .validate()
            .unwrap_err()
            .contains("beyond the last"));
        // Entries newer than the stored term are accepted: the node adopts their term.
        assert_eq!(state(vec![entry(1, 5)], 0).validate(), Ok(()));
    }
}

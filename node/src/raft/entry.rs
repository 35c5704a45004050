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
}

/// What survived a restart. The commit index is volatile: it comes back from the leader.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecoveredState {
    pub hard_state: HardState,
    /// The whole log, from index 1, contiguous.
    pub entries: Vec<Entry>,
    /// Entries up to here were applied to a durable state machine and will not be emitted again.
    pub applied_index: LogIndex,
}

impl RecoveredState {
    /// A clear reason when stored state is inconsistent (the shell reports it instead of
    /// letting `RaftNode::new` assert).
    pub fn validate(&self) -> Result<(), String> {
        let mut previous_term = 0;
        for (position, entry) in self.entries.iter().enumerate() {
            let expected_index = position as LogIndex + 1;
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
        if self.applied_index > self.entries.len() as LogIndex {
            return Err(format!(
                "applied index {} is beyond the last log index {}",
                self.applied_index,
                self.entries.len()
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

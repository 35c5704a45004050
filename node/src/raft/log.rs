//! The in-memory Raft log: entries in a Vec with an index offset, term lookups, conflict
//! search, the commit and apply cursors, and the unstable suffix not yet handed to storage.
//! Entries up to `snapshot_index` are compacted away: only that index's term is remembered.

use super::{Entry, LogIndex, Term};

#[derive(Debug)]
pub(crate) struct RaftLog {
    /// `entries[i].index == first_index + i`.
    entries: Vec<Entry>,
    /// Index of `entries[0]`: `snapshot_index + 1`.
    first_index: LogIndex,
    /// Last index covered by the snapshot (0 without one) and its term.
    snapshot_index: LogIndex,
    snapshot_term: Term,
    committed: LogIndex,
    applied: LogIndex,
    /// Lowest index written since the last `take_unstable`; `last_index() + 1` when none.
    unstable_from: LogIndex,
}

impl RaftLog {
    #[cfg(test)]
    pub(crate) fn recover(entries: Vec<Entry>, applied: LogIndex) -> RaftLog {
        RaftLog::recover_after_snapshot(0, 0, entries, applied)
    }

    /// A log whose entries follow a snapshot ending at (`snapshot_index`, `snapshot_term`).
    pub(crate) fn recover_after_snapshot(
        snapshot_index: LogIndex,
        snapshot_term: Term,
        entries: Vec<Entry>,
        applied: LogIndex,
    ) -> RaftLog {
        assert!(applied >= snapshot_index, "applied below the snapshot");
        let log = RaftLog {
            first_index: snapshot_index + 1,
            snapshot_index,
            snapshot_term,
            unstable_from: snapshot_index + entries.len() as LogIndex + 1,
            entries,
            committed: applied,
            applied,
        };
        for (position, entry) in log.entries.iter().enumerate() {
            assert_eq!(
                entry.index,
                log.first_index + position as LogIndex,
                "recovered log is not contiguous"
            );
        }
        assert!(
            applied <= log.last_index(),
            "applied index {applied} beyond the recovered log"
        );
        log
    }

    pub(crate) fn last_index(&self) -> LogIndex {
        self.first_index + self.entries.len() as LogIndex - 1
    }

    pub(crate) fn last_term(&self) -> Term {
        self.entries
            .last()
            .map_or(self.snapshot_term, |entry| entry.term)
    }

    pub(crate) fn snapshot_index(&self) -> LogIndex {
        self.snapshot_index
    }

    pub(crate) fn snapshot_term(&self) -> Term {
        self.snapshot_term
    }

    /// Entries held in memory (after the snapshot).
    pub(crate) fn entries_count(&self) -> usize {
        self.entries.len()
    }

    /// Log compaction: forgets entries up to `index` (applied, so durable and committed).
    pub(crate) fn compact(&mut self, index: LogIndex) {
        assert!(index <= self.applied, "compacting unapplied entries");
        if index <= self.snapshot_index {
            return;
        }
        let term = self.term(index).expect("compaction point within the log");
        assert!(
            self.unstable_from > index,
            "compacting entries not yet handed to storage"
        );
        self.entries
            .drain(..(index - self.first_index + 1) as usize);
        self.snapshot_index = index;
        self.snapshot_term = term;
        self.first_index = index + 1;
    }

    /// A follower installs a snapshot its log does not match: every entry goes, the snapshot
    /// is committed and (by the shell's restore) applied.
    pub(crate) fn restore(&mut self, index: LogIndex, term: Term) {
        assert!(index > self.committed, "restoring behind the commit index");
        self.entries.clear();
        self.snapshot_index = index;
        self.snapshot_term = term;
        self.first_index = index + 1;
        self.committed = index;
        self.applied = index;
        self.unstable_from = index + 1;
    }

    pub(crate) fn committed(&self) -> LogIndex {
        self.committed
    }

    pub(crate) fn applied(&self) -> LogIndex {
        self.applied
    }

    /// Term of the entry at `index`; index 0 is the empty prefix with term 0.
    pub(crate) fn term(&self, index: LogIndex) -> Option<Term> {
        if index == self.snapshot_index {
            return Some(self.snapshot_term);
        }
        if index < self.first_index || index > self.last_index() {
            return None;
        }
        Some(self.entries[(index - self.first_index) as usize].term)
    }

    /// Entries `low..high` (clamped to the log), borrowed.
    pub(crate) fn slice(&self, low: LogIndex, high: LogIndex) -> &[Entry] {
        let high = high.min(self.last_index() + 1);
        if low >= high {
            return &[];
        }
        assert!(low >= self.first_index, "slice below the first index");
        &self.entries[(low - self.first_index) as usize..(high - self.first_index) as usize]
    }

    /// Raft's election restriction: is a log ending at (`last_index`, `last_term`) at least as
    /// up to date as ours? `index_only` is the planted bug `vote-index-only`.
    pub(crate) fn is_up_to_date(
        &self,
        last_index: LogIndex,
        last_term: Term,
        index_only: bool,
    ) -> bool {
        if index_only {
            return last_index >= self.last_index();
        }
        last_term > self.last_term()
            || (last_term == self.last_term() && last_index >= self.last_index())
    }

    /// First index of an entry that differs in term from ours, or lies past our end; `None`
    /// when we already hold every entry given (a duplicate or stale AppendEntries).
    pub(crate) fn find_conflict(&self, entries: &[Entry]) -> Option<LogIndex> {
        entries
            .iter()
            .find(|entry| self.term(entry.index) != Some(entry.term))
            .map(|entry| entry.index)
    }

    /// First index holding `term`, searching back from `from` (whose term is `term`).
    /// Terms never decrease along the log, so a binary search finds it.
    pub(crate) fn first_index_of_term(&self, from: LogIndex, term: Term) -> LogIndex {
        debug_assert_eq!(self.term(from), Some(term));
        if from < self.first_index {
            return from; // the snapshot's own index: nothing older is held
        }
        let upto = (from - self.first_index + 1) as usize;
        let position = self.entries[..upto].partition_point(|entry| entry.term < term);
        self.first_index + position as LogIndex
    }

    /// Last index holding `term`, if we hold any entry of that term.
    pub(crate) fn last_index_of_term(&self, term: Term) -> Option<LogIndex> {
        let position = self.entries.partition_point(|entry| entry.term <= term);
        if position == 0 {
            return (self.snapshot_index > 0 && self.snapshot_term == term)
                .then_some(self.snapshot_index);
        }
        if self.entries[position - 1].term != term {
            return None;
        }
        Some(self.first_index + position as LogIndex - 1)
    }

    /// Leader path: append at the end of the log.
    pub(crate) fn append(&mut self, entry: Entry) {
        assert_eq!(
            entry.index,
            self.last_index() + 1,
            "leader append must extend the log"
        );
        assert!(
            entry.term >= self.last_term(),
            "terms never decrease along the log"
        );
        self.entries.push(entry);
    }

    /// Follower path: drop our entries from `entries[0].index` on and append `entries`.
    /// `committed_may_change` is set only under planted bugs that rewrite committed entries.
    pub(crate) fn truncate_and_append(&mut self, entries: &[Entry], committed_may_change: bool) {
        let Some(first) = entries.first() else { return };
        assert!(
            first.index >= self.first_index,
            "truncation below the first index"
        );
        assert!(
            first.index <= self.last_index() + 1,
            "appended entries would leave a gap"
        );
        assert!(
            committed_may_change || first.index > self.committed,
            "truncating at {} would remove committed entries (commit {})",
            first.index,
            self.committed
        );
        self.entries
            .truncate((first.index - self.first_index) as usize);
        for entry in entries {
            assert_eq!(
                entry.index,
                self.last_index() + 1,
                "appended entries are not contiguous"
            );
            assert!(
                entry.term >= self.last_term(),
                "terms never decrease along the log"
            );
            self.entries.push(entry.clone());
        }
        self.unstable_from = self.unstable_from.min(first.index);
    }

    /// Commit never decreases; `commit_to` of a smaller index is a no-op.
    pub(crate) fn commit_to(&mut self, index: LogIndex, beyond_log_allowed: bool) -> bool {
        if index <= self.committed {
            return false;
        }
        assert!(
            beyond_log_allowed || index <= self.last_index(),
            "commit {index} beyond the last index {}",
            self.last_index()
        );
        self.committed = index;
        true
    }

    pub(crate) fn has_unstable(&self) -> bool {
        self.unstable_from <= self.last_index()
    }

    /// Entries written since the last call, for the shell to persist.
    pub(crate) fn take_unstable(&mut self) -> Vec<Entry> {
        let entries = self
            .slice(self.unstable_from, self.last_index() + 1)
            .to_vec();
        self.unstable_from = self.last_index() + 1;
        entries
    }

    pub(crate) fn has_committed_to_apply(&self) -> bool {
        self.applied < self.committed.min(self.last_index())
    }

    /// Committed entries not yet handed out; the applied cursor only moves forward.
    pub(crate) fn take_committed(&mut self) -> Vec<Entry> {
        let high = self.committed.min(self.last_index());
        if self.applied >= high {
            return Vec::new();
        }
        let entries = self.slice(self.applied + 1, high + 1).to_vec();
        self.applied = high;
        entries
    }
}

#[cfg(test)]
mod tests {
    use super::super::EntryPayload;
    use super::*;

    fn log_of(terms: &[Term]) -> RaftLog {
        let entries = terms
            .iter()
            .enumerate()
            .map(|(i, &term)| Entry {
                term,
                index: i as LogIndex + 1,
                payload: EntryPayload::Noop,
            })
            .collect();
        RaftLog::recover(entries, 0)
    }

    fn entry(index: LogIndex, term: Term) -> Entry {
        Entry {
            term,
            index,
            payload: EntryPayload::Noop,
        }
    }

    #[test]
    fn term_lookups_and_term_boundaries() {
        let log = log_of(&[1, 1, 2, 2, 2, 5]);
        assert_eq!(log.term(0), Some(0));
        assert_eq!(log.term(3), Some(2));
        assert_eq!(log.term(7), None);
        assert_eq!(log.first_index_of_term(5, 2), 3);
        assert_eq!(log.first_index_of_term(2, 1), 1);
        assert_eq!(log.last_index_of_term(2), Some(5));
        assert_eq!(log.last_index_of_term(3), None);
        assert_eq!(log.last_index_of_term(5), Some(6));
    }

    #[test]
    fn conflict_search_ignores_matching_and_finds_first_difference() {
        let log = log_of(&[1, 1, 2, 2]);
        assert_eq!(log.find_conflict(&[entry(2, 1), entry(3, 2)]), None);
        assert_eq!(log.find_conflict(&[entry(3, 2), entry(4, 3)]), Some(4));
        assert_eq!(log.find_conflict(&[entry(4, 2), entry(5, 2)]), Some(5));
    }

    #[test]
    fn up_to_date_compares_last_term_then_last_index() {
        let log = log_of(&[1, 1, 2]);
        assert!(log.is_up_to_date(1, 3, false));
        assert!(!log.is_up_to_date(10, 1, false));
        assert!(
            log.is_up_to_date(10, 1, true),
            "the index-only bug accepts a longer stale log"
        );
        assert!(log.is_up_to_date(3, 2, false));
        assert!(!log.is_up_to_date(2, 2, false));
    }

    #[test]
    fn unstable_suffix_and_apply_cursor() {
        let mut log = log_of(&[1, 1]);
        assert!(!log.has_unstable());
        log.append(entry(3, 2));
        log.truncate_and_append(&[entry(3, 3), entry(4, 3)], false);
        assert_eq!(log.take_unstable(), vec![entry(3, 3), entry(4, 3)]);
        assert!(log.commit_to(3, false));
        assert!(!log.commit_to(2, false), "commit never decreases");
        assert_eq!(log.take_committed().len(), 3);
        assert!(!log.has_committed_to_apply());
    }

    #[test]
    #[should_panic(expected = "would remove committed entries")]
    fn truncating_committed_entries_is_an_invariant_violation() {
        let mut log = log_of(&[1, 1, 1]);
        log.commit_to(2, false);
        log.truncate_and_append(&[entry(2, 2)], false);
    }
}

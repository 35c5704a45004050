//! The gap between commit and apply: committed entries wait here until the state machine
//! takes them, as an etcd-io/raft application hands `CommittedEntries` to an apply loop that
//! runs behind the Raft loop. Each entry becomes due `lag` after it was queued (zero unless
//! the harness slows the apply down); entries leave strictly in log order, so a later entry
//! is never due before an earlier one.

use std::collections::VecDeque;

use tokio::time::{Duration, Instant};

use crate::raft::{Entry, LogIndex};

#[derive(Default)]
pub(crate) struct ApplyQueue {
    waiting: VecDeque<(Instant, Entry)>,
}

impl ApplyQueue {
    /// Queues committed entries (in order, following any already queued), due `lag` after
    /// `now` but never before the entries ahead of them.
    pub(crate) fn push(&mut self, entries: Vec<Entry>, now: Instant, lag: Duration) {
        let mut due = now + lag;
        for entry in entries {
            if let Some((last_due, last)) = self.waiting.back() {
                assert_eq!(
                    entry.index,
                    last.index + 1,
                    "committed entries are queued in order without gaps"
                );
                due = due.max(*last_due);
            }
            self.waiting.push_back((due, entry));
        }
    }

    /// When the oldest waiting entry is due.
    pub(crate) fn next_due(&self) -> Option<Instant> {
        self.waiting.front().map(|(due, _)| *due)
    }

    /// Up to `max` entries due at `now`, oldest first.
    pub(crate) fn take_due(&mut self, now: Instant, max: usize) -> Vec<Entry> {
        let mut due = Vec::new();
        while due.len() < max {
            match self.waiting.front() {
                Some((at, _)) if *at <= now => {
                    due.push(self.waiting.pop_front().expect("checked above").1);
                }
                _ => break,
            }
        }
        due
    }

    /// Drops the waiting entries up to `index` (a snapshot installed their effect).
    pub(crate) fn discard_through(&mut self, index: LogIndex) {
        while self
            .waiting
            .front()
            .is_some_and(|(_, entry)| entry.index <= index)
        {
            self.waiting.pop_front();
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.waiting.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::EntryPayload;

    fn entries(range: std::ops::RangeInclusive<u64>) -> Vec<Entry> {
        range
            .map(|index| Entry {
                term: 1,
                index,
                payload: EntryPayload::Noop,
            })
            .collect()
    }

    fn indexes(entries: &[Entry]) -> Vec<u64> {
        entries.iter().map(|entry| entry.index).collect()
    }

    #[test]
    fn entries_leave_in_order_once_due_and_a_shorter_lag_never_overtakes() {
        let start = Instant::now();
        let mut queue = ApplyQueue::default();
        queue.push(entries(1..=3), start, Duration::from_millis(100));
        // Queued later with no lag: still behind entries 1..=3.
        queue.push(
            entries(4..=4),
            start + Duration::from_millis(10),
            Duration::ZERO,
        );
        assert_eq!(queue.next_due(), Some(start + Duration::from_millis(100)));
        assert!(queue
            .take_due(start + Duration::from_millis(99), 10)
            .is_empty());
        let due = queue.take_due(start + Duration::from_millis(100), 2);
        assert_eq!(indexes(&due), vec![1, 2]);
        let due = queue.take_due(start + Duration::from_millis(100), 10);
        assert_eq!(indexes(&due), vec![3, 4]);
        assert_eq!(queue.len(), 0);
        assert_eq!(queue.next_due(), None);
    }

    #[test]
    fn a_snapshot_discards_what_it_covers() {
        let start = Instant::now();
        let mut queue = ApplyQueue::default();
        queue.push(entries(5..=9), start, Duration::from_millis(50));
        queue.discard_through(7);
        assert_eq!(queue.len(), 2);
        let due = queue.take_due(start + Duration::from_millis(50), 10);
        assert_eq!(indexes(&due), vec![8, 9]);
    }

    #[test]
    #[should_panic(expected = "without gaps")]
    fn a_gap_is_a_bug_of_the_caller() {
        let mut queue = ApplyQueue::default();
        queue.push(entries(1..=2), Instant::now(), Duration::ZERO);
        queue.push(entries(4..=4), Instant::now(), Duration::ZERO);
    }
}

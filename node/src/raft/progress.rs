//! What a leader knows about one follower's log: the match index (only ever moves forward),
//! the next index to send, and the probe/pipeline state that bounds messages in flight.

use std::collections::VecDeque;

use super::LogIndex;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ProgressState {
    /// Match unknown: one AppendEntries at a time, resent after each heartbeat response.
    Probe,
    /// Match known: optimistic next index, several AppendEntries in flight.
    Replicate,
    /// The entries the follower needs are compacted: the snapshot ending at `index` goes out
    /// one chunk at a time (`probe_sent` marks a chunk in flight).
    Snapshot { index: LogIndex },
}

#[derive(Clone, Debug)]
pub(crate) struct Progress {
    pub(crate) match_index: LogIndex,
    pub(crate) next_index: LogIndex,
    pub(crate) state: ProgressState,
    /// Probe only: an AppendEntries is out and unanswered.
    pub(crate) probe_sent: bool,
    /// Replicate only: last index of each AppendEntries in flight, oldest first.
    pub(crate) inflight: VecDeque<LogIndex>,
    /// Heard from since the last CheckQuorum round.
    pub(crate) recent_active: bool,
    /// Match index at the previous heartbeat round, to detect a stalled pipeline.
    pub(crate) match_at_last_heartbeat: LogIndex,
    /// Highest commit index this follower was told (as it will cap it).
    pub(crate) commit_sent: LogIndex,
    /// Consecutive probe rejections showing the follower lacks entries it acknowledged.
    pub(crate) lost_entries_rejections: u32,
    /// Snapshot only: bytes of the snapshot the follower has confirmed (the next chunk's offset).
    pub(crate) snapshot_offset: u64,
}

impl Progress {
    pub(crate) fn new(last_index: LogIndex) -> Progress {
        Progress {
            match_index: 0,
            next_index: last_index + 1,
            state: ProgressState::Probe,
            probe_sent: false,
            inflight: VecDeque::new(),
            recent_active: false,
            match_at_last_heartbeat: 0,
            commit_sent: 0,
            lost_entries_rejections: 0,
            snapshot_offset: 0,
        }
    }

    /// Starts (or restarts) sending the snapshot ending at `index`.
    pub(crate) fn become_snapshot(&mut self, index: LogIndex) {
        self.state = ProgressState::Snapshot { index };
        self.snapshot_offset = 0;
        self.probe_sent = false;
        self.inflight.clear();
    }

    /// May another AppendEntries go out now?
    pub(crate) fn can_send(&self, max_inflight: usize) -> bool {
        match self.state {
            ProgressState::Probe | ProgressState::Snapshot { .. } => !self.probe_sent,
            ProgressState::Replicate => self.inflight.len() < max_inflight,
        }
    }

    /// Records an AppendEntries whose last entry is `last_sent` (prev index when empty),
    /// carrying `leader_commit`.
    pub(crate) fn on_sent(
        &mut self,
        entries_count: usize,
        last_sent: LogIndex,
        leader_commit: LogIndex,
    ) {
        self.commit_sent = self.commit_sent.max(leader_commit.min(last_sent));
        match self.state {
            ProgressState::Probe | ProgressState::Snapshot { .. } => self.probe_sent = true,
            ProgressState::Replicate => {
                if entries_count > 0 {
                    self.next_index = last_sent + 1;
                    self.inflight.push_back(last_sent);
                }
            }
        }
    }

    /// An acknowledgement up to `index`. A stale or reordered one never lowers the match.
    /// Returns whether the match index moved.
    pub(crate) fn on_accepted(&mut self, index: LogIndex) -> bool {
        let advanced = index > self.match_index;
        self.lost_entries_rejections = 0;
        if advanced {
            self.match_index = index;
        }
        self.next_index = self.next_index.max(self.match_index + 1);
        while self.inflight.front().is_some_and(|&sent| sent <= index) {
            self.inflight.pop_front();
        }
        match self.state {
            ProgressState::Probe => self.become_replicate(),
            ProgressState::Snapshot {
                index: snapshot_index,
            } if self.match_index >= snapshot_index => self.become_replicate(),
            _ => {}
        }
        advanced
    }

    /// Does the follower need to hear of a commit index it can use?
    pub(crate) fn needs_commit(&self, committed: LogIndex) -> bool {
        committed.min(self.match_index) > self.commit_sent
    }

    pub(crate) fn become_replicate(&mut self) {
        self.state = ProgressState::Replicate;
        self.next_index = self.match_index + 1;
        self.probe_sent = false;
        self.inflight.clear();
    }

    /// Falls back to probing from `next_index` (never at or below the match index).
    pub(crate) fn become_probe(&mut self, next_index: LogIndex) {
        self.state = ProgressState::Probe;
        self.next_index = next_index.max(self.match_index + 1);
        self.probe_sent = false;
        self.inflight.clear();
    }

    /// Rejections in a row (each answering a fresh probe) proving the follower lost entries
    /// it had acknowledged before the leader stops trusting its match index. One could be a
    /// duplicate of an old rejection; several answering successive probes cannot.
    pub(crate) const LOST_ENTRIES_REJECTIONS_TO_RESET: u32 = 3;

    /// The only way the match index goes down: the follower has proven, probe after probe,
    /// that its durable log lost acknowledged entries (a disk fault or a planted bug).
    pub(crate) fn forget_lost_entries(&mut self, next_index: LogIndex) {
        assert!(next_index <= self.match_index, "nothing to forget");
        self.match_index = next_index - 1;
        self.lost_entries_rejections = 0;
        self.become_probe(next_index);
    }

    /// Is a rejection of `rejected_index` about the AppendEntries we are waiting on, or an
    /// old one overtaken by events (reordered, duplicated, already superseded)?
    pub(crate) fn is_stale_rejection(&self, rejected_index: LogIndex) -> bool {
        match self.state {
            ProgressState::Replicate => rejected_index <= self.match_index,
            ProgressState::Probe => rejected_index + 1 != self.next_index,
            // The snapshot is the way forward; an AppendEntries rejection is from before it.
            ProgressState::Snapshot { .. } => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn match_index_never_moves_backward() {
        let mut progress = Progress::new(10);
        progress.on_accepted(7);
        assert_eq!(progress.state, ProgressState::Replicate);
        assert!(!progress.on_accepted(5));
        assert_eq!(progress.match_index, 7);
        assert_eq!(progress.next_index, 8);
    }

    #[test]
    fn pipeline_is_bounded_and_frees_on_acknowledgement() {
        let mut progress = Progress::new(0);
        progress.become_replicate();
        for last in [2, 4, 6] {
            assert!(progress.can_send(3));
            progress.on_sent(2, last, 0);
        }
        assert!(!progress.can_send(3));
        assert_eq!(progress.next_index, 7);
        progress.on_accepted(4);
        assert_eq!(progress.inflight.len(), 1);
        assert!(progress.is_stale_rejection(4));
        assert!(!progress.is_stale_rejection(5));
    }
}

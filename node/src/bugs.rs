//! Planted bugs: the one place that names every deliberate defect the harness must catch.
//!
//! Each bug is a small, honest change to the real code path, switched on with `--bug NAME`
//! and off by default. A switched-off bug costs one predictable branch on its code path.

use std::fmt;
use std::str::FromStr;

/// Every planted bug, named as on the command line (`--bug NAME`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Bug {
    /// Serve reads from the leader's local state with no ReadIndex quorum round.
    StaleLocalRead,
    /// Answer ReadIndex before the new leader's no-op entry has committed.
    ReadBeforeNoop,
    /// Lease reads with no clock-drift bound; the lease survives a leadership transfer.
    LeaseNoDriftBound,
    /// Commit entries of earlier terms by counting replicas (Raft paper, figure 8).
    CommitOldTerm,
    /// currentTerm and votedFor are not persisted.
    VolatileVote,
    /// Reply to the client before the entry commits.
    AckBeforeCommit,
    /// Reply OK by log index without checking that the applied entry is the client's own.
    AckByIndex,
    /// Retried adds are applied again (no client session table).
    NoDedup,
    /// Accept AppendEntries from a stale term.
    StaleTermAppend,
    /// Truncate the log on any AppendEntries, not only on a real conflict.
    TruncateWithoutConflict,
    /// The vote's up-to-date check compares the last index only, not the last term first.
    VoteIndexOnly,
    /// Acknowledge AppendEntries before the log is synced to disk.
    AckBeforeFsync,
    /// The snapshot does not record the last applied index.
    SnapshotLosesIndex,
    /// Single-server membership changes without the new-leader rule.
    MembershipNoRule,
    /// Neither PreVote nor CheckQuorum.
    NoPrevoteCheckquorum,
    /// A follower commits up to min(leaderCommit, its last index), not the last new entry.
    ///
    /// Harmful when an AppendEntries the follower accepts ends before the stale suffix it
    /// still holds: the leader backed off further than the first differing entry (a conflict
    /// hint pointing at the start of a term or at the follower's snapshot) and batches are
    /// small (the `max_append_entries` knob), so the accepted entries all match and nothing
    /// is cut. Seed 431 of `selftest --generic` shows it: a deposed leader accepts one entry
    /// after its snapshot from the new leader and commits its own stale suffix of the old
    /// term (invariant "applied sequences are prefixes of one another").
    FollowerCommitPastNew,
    /// A follower acknowledges its last log index instead of the last entry it verified.
    ///
    /// Harmful in the same situation as `FollowerCommitPastNew`: the leader counts the
    /// follower's stale suffix as replicated, commits it, and its commit notices make the
    /// follower apply it (seed 431 of `selftest --generic`).
    AckLastIndex,
    /// The leader takes next_index - 1 (what it sent) as the follower's match on success.
    MatchFromNextIndex,
    /// The follower's consistency check tests that prev_log_index exists, not its term.
    AppendSkipsPrevTerm,
    /// A leader counts responses carrying a higher term instead of stepping down.
    ReplyTermUnchecked,
    /// A candidate counts granted votes that arrive from an earlier term.
    StaleVoteCounted,
    /// The leader commits the median match index, which for an even number of voters is
    /// held by only half of them.
    CommitMedianEven,
    /// ReadIndex is confirmed by one acknowledgement fewer than a quorum.
    ReadQuorumOffByOne,
    /// The client session table is left out of state-machine snapshots.
    SnapshotNoSessions,
    /// The session table recognises only a retry of the client's latest request.
    DedupLastOnly,
    /// A restarted node takes its whole persisted log as committed.
    RestartCommitsWholeLog,
    /// A follower skips a snapshot when its log reaches the snapshot's index, whatever the term.
    SnapshotSkipByIndex,
}

impl Bug {
    /// All bugs, in the order `minos selftest` reports them.
    pub const ALL: [Bug; 27] = [
        Bug::StaleLocalRead,
        Bug::ReadBeforeNoop,
        Bug::LeaseNoDriftBound,
        Bug::CommitOldTerm,
        Bug::VolatileVote,
        Bug::AckBeforeCommit,
        Bug::AckByIndex,
        Bug::NoDedup,
        Bug::StaleTermAppend,
        Bug::TruncateWithoutConflict,
        Bug::VoteIndexOnly,
        Bug::AckBeforeFsync,
        Bug::SnapshotLosesIndex,
        Bug::MembershipNoRule,
        Bug::NoPrevoteCheckquorum,
        Bug::FollowerCommitPastNew,
        Bug::AckLastIndex,
        Bug::MatchFromNextIndex,
        Bug::AppendSkipsPrevTerm,
        Bug::ReplyTermUnchecked,
        Bug::StaleVoteCounted,
        Bug::CommitMedianEven,
        Bug::ReadQuorumOffByOne,
        Bug::SnapshotNoSessions,
        Bug::DedupLastOnly,
        Bug::RestartCommitsWholeLog,
        Bug::SnapshotSkipByIndex,
    ];

    /// The command-line name, e.g. `stale-local-read`.
    pub fn name(self) -> &'static str {
        match self {
            Bug::StaleLocalRead => "stale-local-read",
            Bug::ReadBeforeNoop => "read-before-noop",
            Bug::LeaseNoDriftBound => "lease-no-drift-bound",
            Bug::CommitOldTerm => "commit-old-term",
            Bug::VolatileVote => "volatile-vote",
            Bug::AckBeforeCommit => "ack-before-commit",
            Bug::AckByIndex => "ack-by-index",
            Bug::NoDedup => "no-dedup",
            Bug::StaleTermAppend => "stale-term-append",
            Bug::TruncateWithoutConflict => "truncate-without-conflict",
            Bug::VoteIndexOnly => "vote-index-only",
            Bug::AckBeforeFsync => "ack-before-fsync",
            Bug::SnapshotLosesIndex => "snapshot-loses-index",
            Bug::MembershipNoRule => "membership-no-rule",
            Bug::NoPrevoteCheckquorum => "no-prevote-checkquorum",
            Bug::FollowerCommitPastNew => "follower-commit-past-new",
            Bug::AckLastIndex => "ack-last-index",
            Bug::MatchFromNextIndex => "match-from-next-index",
            Bug::AppendSkipsPrevTerm => "append-skips-prev-term",
            Bug::ReplyTermUnchecked => "reply-term-unchecked",
            Bug::StaleVoteCounted => "stale-vote-counted",
            Bug::CommitMedianEven => "commit-median-even",
            Bug::ReadQuorumOffByOne => "read-quorum-off-by-one",
            Bug::SnapshotNoSessions => "snapshot-no-sessions",
            Bug::DedupLastOnly => "dedup-last-only",
            Bug::RestartCommitsWholeLog => "restart-commits-whole-log",
            Bug::SnapshotSkipByIndex => "snapshot-skip-by-index",
        }
    }
}

impl fmt::Display for Bug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Bug {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Bug::ALL
            .iter()
            .copied()
            .find(|bug| bug.name() == name)
            .ok_or_else(|| {
                let known: Vec<&str> = Bug::ALL.iter().map(|bug| bug.name()).collect();
                format!("unknown bug {name:?}; known bugs: {}", known.join(", "))
            })
    }
}

// `Bugs` keeps one bit per bug.
const _: () = assert!(Bug::ALL.len() <= u32::BITS as usize);

/// The set of planted bugs switched on for one node (normally empty).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bugs {
    mask: u32,
}

impl Bugs {
    /// No bug switched on: the correct build.
    pub const NONE: Bugs = Bugs { mask: 0 };

    pub fn with(mut self, bug: Bug) -> Self {
        self.mask |= 1 << bug as u32;
        self
    }

    pub fn has(self, bug: Bug) -> bool {
        self.mask & (1 << bug as u32) != 0
    }

    pub fn is_empty(self) -> bool {
        self.mask == 0
    }

    pub fn iter(self) -> impl Iterator<Item = Bug> {
        Bug::ALL.into_iter().filter(move |bug| self.has(*bug))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_unique() {
        for bug in Bug::ALL {
            assert_eq!(bug.name().parse::<Bug>(), Ok(bug));
        }
        let mut names: Vec<&str> = Bug::ALL.iter().map(|bug| bug.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Bug::ALL.len());
        assert!("no-such-bug"
            .parse::<Bug>()
            .unwrap_err()
            .contains("known bugs"));
    }

    #[test]
    fn bug_set_holds_exactly_what_was_added() {
        let bugs = Bugs::NONE.with(Bug::NoDedup).with(Bug::VoteIndexOnly);
        assert!(bugs.has(Bug::NoDedup) && bugs.has(Bug::VoteIndexOnly));
        assert!(!bugs.has(Bug::StaleLocalRead));
        assert_eq!(
            bugs.iter().collect::<Vec<_>>(),
            vec![Bug::NoDedup, Bug::VoteIndexOnly]
        );
        assert!(Bugs::NONE.is_empty() && !bugs.is_empty());
    }
}

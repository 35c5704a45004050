//! Static configuration of one Raft node: membership, timing in ticks, batching and pipelining
//! bounds, protocol extensions (PreVote, CheckQuorum) and the planted bugs it runs with.

use super::NodeId;
use crate::bugs::{Bug, Bugs};

/// How one node runs the protocol. Times are in ticks (the shell ticks every 10 ms by default).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub id: NodeId,
    /// Every voting member, this node included: the bootstrap configuration (membership
    /// changes in the log and snapshots override it; the core keeps this field current).
    /// A node that joins an existing cluster is not among them.
    pub voters: Vec<NodeId>,
    pub election_timeout_min_ticks: u32,
    pub election_timeout_max_ticks: u32,
    pub heartbeat_interval_ticks: u32,
    /// Batching bound: at most this many entries in one AppendEntries.
    pub max_append_entries_count: usize,
    /// Pipelining bound: at most this many AppendEntries in flight to one follower.
    pub max_inflight_appends: usize,
    pub pre_vote: bool,
    pub check_quorum: bool,
    /// Serve reads from a leader lease (no heartbeat round per read) while one is held.
    /// Needs CheckQuorum; off by default.
    pub lease_reads: bool,
    /// How many ticks a follower's clock may run ahead of the leader's over one minimum
    /// election timeout; the lease is shortened by this much.
    pub lease_clock_drift_bound_ticks: u32,
    /// The leader promotes a learner to voter once its log has caught up with the commit.
    pub auto_promote_learners: bool,
    /// Bytes of snapshot data per InstallSnapshot message.
    pub snapshot_chunk_bytes: usize,
    /// Randomizes election timeouts; mixed with `id` so that nodes of one run differ.
    pub seed: u64,
    pub bugs: Bugs,
}

impl Config {
    /// Defaults: 150-300 ms election timeouts and 50 ms heartbeats at 10 ms per tick,
    /// PreVote and CheckQuorum on.
    pub fn new(id: NodeId, voters: Vec<NodeId>, seed: u64) -> Config {
        Config {
            id,
            voters,
            election_timeout_min_ticks: 15,
            election_timeout_max_ticks: 30,
            heartbeat_interval_ticks: 5,
            max_append_entries_count: 64,
            max_inflight_appends: 8,
            pre_vote: true,
            check_quorum: true,
            lease_reads: false,
            lease_clock_drift_bound_ticks: 2,
            snapshot_chunk_bytes: 32 * 1024,
            auto_promote_learners: true,
            seed,
            bugs: Bugs::NONE,
        }
    }

    /// A clear reason when the configuration cannot run the protocol safely.
    pub fn validate(&self) -> Result<(), String> {
        // A node outside the bootstrap configuration joins the cluster later: it becomes a
        // member once a leader's log adds it, and never campaigns before.
        if self.voters.is_empty() {
            return Err("the bootstrap configuration has no voter".to_string());
        }
        let mut sorted = self.voters.clone();
        sorted.sort_unstable();
        sorted.dedup();
        if sorted.len() != self.voters.len() {
            return Err(format!("duplicate voters in {:?}", self.voters));
        }
        if self.heartbeat_interval_ticks == 0 {
            return Err("heartbeat_interval_ticks must be at least 1".to_string());
        }
        if self.election_timeout_min_ticks <= self.heartbeat_interval_ticks {
            return Err(format!(
                "election_timeout_min_ticks ({}) must exceed heartbeat_interval_ticks ({})",
                self.election_timeout_min_ticks, self.heartbeat_interval_ticks
            ));
        }
        if self.election_timeout_max_ticks < self.election_timeout_min_ticks {
            return Err(format!(
                "election_timeout_max_ticks ({}) is below election_timeout_min_ticks ({})",
                self.election_timeout_max_ticks, self.election_timeout_min_ticks
            ));
        }
        if self.lease_reads && self.lease_clock_drift_bound_ticks >= self.election_timeout_min_ticks
        {
            return Err(format!(
                "lease_clock_drift_bound_ticks ({}) leaves no lease within election_timeout_min_ticks ({})",
                self.lease_clock_drift_bound_ticks, self.election_timeout_min_ticks
            ));
        }
        if self.snapshot_chunk_bytes == 0 {
            return Err("snapshot_chunk_bytes must be at least 1".to_string());
        }
        if self.max_append_entries_count == 0 || self.max_inflight_appends == 0 {
            return Err(
                "max_append_entries_count and max_inflight_appends must be at least 1".to_string(),
            );
        }
        Ok(())
    }

    /// Votes (or acknowledgements) needed for a decision: a strict majority of voters.
    pub fn quorum(&self) -> usize {
        self.voters.len() / 2 + 1
    }

    /// PreVote as actually run: the planted bug `no-prevote-checkquorum` overrides the flag.
    /// That bug imitates clusters running without either (etcd's defaults for years): the
    /// Cloudflare control-plane outage of 2020-11-02 began with an etcd node behind a
    /// half-broken switch forcing elections over and over; CockroachDB enabled CheckQuorum by
    /// default (PR #104042) for the same class of partial partitions.
    pub(crate) fn pre_vote_enabled(&self) -> bool {
        self.pre_vote && !self.bugs.has(Bug::NoPrevoteCheckquorum)
    }

    /// CheckQuorum (and the leader lease on votes) as actually run; see `pre_vote_enabled`.
    pub(crate) fn check_quorum_enabled(&self) -> bool {
        self.check_quorum && !self.bugs.has(Bug::NoPrevoteCheckquorum)
    }

    /// Planted bugs that can rewrite committed log entries somewhere in the cluster. With one
    /// of them on, the core's own guards on committed entries stand down so that the node keeps
    /// running and the harness (not an assertion) has to catch the damage.
    pub(crate) fn bugs_break_log_safety(&self) -> bool {
        [
            Bug::CommitOldTerm,
            Bug::StaleTermAppend,
            Bug::TruncateWithoutConflict,
            Bug::VoteIndexOnly,
            Bug::MembershipNoRule,
            Bug::SnapshotLosesIndex,
            Bug::FollowerCommitPastNew,
            Bug::AckLastIndex,
            Bug::MatchFromNextIndex,
            Bug::AppendSkipsPrevTerm,
            Bug::StaleVoteCounted,
            Bug::CommitMedianEven,
            Bug::RestartCommitsWholeLog,
            Bug::SnapshotSkipByIndex,
        ]
        .into_iter()
        .any(|bug| self.bugs.has(bug))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_configs_get_a_reason() {
        assert_eq!(Config::new(1, vec![1, 2, 3], 0).validate(), Ok(()));
        let reason = |tweak: fn(&mut Config)| {
            let mut config = Config::new(1, vec![1, 2, 3], 0);
            tweak(&mut config);
            config.validate().unwrap_err()
        };
        assert!(reason(|c| c.voters = vec![]).contains("no voter"));
        assert!(reason(|c| c.voters = vec![1, 2, 2]).contains("duplicate voters"));
        assert!(reason(|c| c.election_timeout_min_ticks = 5).contains("must exceed"));
        assert!(reason(|c| c.election_timeout_max_ticks = 10).contains("below"));
        assert!(reason(|c| c.max_inflight_appends = 0).contains("at least 1"));
        assert!(reason(|c| {
            c.lease_reads = true;
            c.lease_clock_drift_bound_ticks = 15;
        })
        .contains("leaves no lease"));
    }

    #[test]
    fn quorum_is_a_strict_majority() {
        let quorum = |count: u64| Config::new(1, (1..=count).collect(), 0).quorum();
        assert_eq!(
            [quorum(1), quorum(2), quorum(3), quorum(4), quorum(5)],
            [1, 2, 2, 3, 3]
        );
    }
}

//! Raft's rules for elections, commits and configuration changes, checked from what the
//! nodes report (the votes they grant, the term of the entry at their commit index, the
//! index of their configuration) instead of waiting for the damage a broken rule does.
//!
//! A slip in one of these rules usually stays harmless: a leader elected on a stale vote,
//! an old term's entry committed by counting replicas (the Raft paper's figure 8), a
//! configuration change stacked on an uncommitted one (the single-server bug Ongaro
//! reported in 2015) each need a second, unlucky election before a write is lost, and
//! thousands of seeds may pass before that election comes. The broken rule itself shows
//! the first time it is broken, so the harness checks the rules, as TLA+ specifications of
//! Raft state them as invariants and etcd-io/raft's tests assert them:
//! - a leader won granted votes, cast in its own term, from a quorum of its voters;
//! - a leader advances its commit index only to an entry of its own term (§5.4.2);
//! - a leader appends a configuration change only after its previous change and an entry
//!   of its own term committed (dissertation §4.1 with the 2015 correction);
//! - a leader never removes entries from its own log (Leader Append-Only, figure 3);
//! - a node applies only committed entries (a shell that applies what it was handed to
//!   persist, not what was committed, looks right until a leader change cuts those entries);
//! - a leader answers reads on its lease only while no newer leader exists (the lease's
//!   whole promise; a lease read by a deposed leader is stale as soon as the new leader
//!   commits a write, and the checker sees it only if one lands in that window);
//! - a node never forgets a vote it granted: its term never falls below the term of the
//!   vote, and in that term it still names the candidate (votes are sent only once
//!   persisted, so a restart must recover them; a lost vote lets the node vote twice in one
//!   term, which takes a second candidate asking after the restart to show).
//!
//! Each rule is checked only when the system reports what it needs (votes, commit terms,
//! configuration indexes); a correct run never breaks one, so a break is a finding.

use std::collections::{BTreeMap, BTreeSet};

use crate::invariants::Violation;
use crate::schedule::node_name;
use crate::sut::{GrantedVote, NodeView};

pub const ELECTED_BY_QUORUM: &str = "a leader won votes from a quorum of its voters in its term";
pub const COMMIT_IN_OWN_TERM: &str =
    "a leader advances its commit index only to an entry of its own term";
pub const CONFIG_CHANGE_RULE: &str =
    "a leader changes the configuration only after its previous change and an entry of its term committed";
pub const LEADER_APPEND_ONLY: &str = "a leader never removes entries from its log";
pub const APPLY_ONLY_COMMITTED: &str = "a node applies only committed entries";
pub const LEASE_EXCLUSIVE: &str = "a leader answers lease reads only while no newer leader exists";
pub const VOTES_KEPT: &str =
    "a node never forgets a vote it granted (term and vote survive restarts)";

/// What a node reported at its previous observation.
#[derive(Clone, Debug, Default)]
struct Seen {
    running: bool,
    is_leader: bool,
    term: u64,
    identity: u64,
    commit_index: u64,
    last_log_index: u64,
    config_index: Option<u64>,
    lease_reads: u64,
}

impl Seen {
    fn of(view: &NodeView) -> Seen {
        Seen {
            running: view.running,
            is_leader: view.running && view.is_leader,
            term: view.term,
            identity: view.identity,
            commit_index: view.commit_index,
            last_log_index: view.last_log_index,
            config_index: view.config_index,
            lease_reads: view.lease_reads,
        }
    }

    /// The node led in the same term, under the same identity, at both observations.
    fn still_leading(&self, view: &NodeView) -> bool {
        self.is_leader
            && view.running
            && view.is_leader
            && self.identity == view.identity
            && self.term == view.term
    }
}

/// A leader first seen in this step, checked once every node's votes of the step are in.
#[derive(Clone, Debug)]
struct NewLeader {
    node: usize,
    term: u64,
    identity: u64,
    voters: Vec<u64>,
}

pub struct RaftRules {
    seen: Vec<Seen>,
    /// Per node: how many of its granted votes were read (the next `votes_from`).
    votes_read: Vec<usize>,
    /// Some node's votes were read: the system reports them.
    reports_votes: bool,
    /// Voters that granted each (term, candidate) a vote, as identities.
    votes: BTreeMap<(u64, u64), BTreeSet<u64>>,
    /// The latest vote each voter granted: voter identity -> (term, candidate identity).
    last_vote: BTreeMap<u64, (u64, u64)>,
    /// The node each identity was last seen on.
    node_of_identity: BTreeMap<u64, usize>,
    forgotten_vote: Option<Violation>,
    /// (term, identity) of every leader already checked.
    leaders_checked: BTreeSet<(u64, u64)>,
    new_leaders: Vec<NewLeader>,
    unelected: Option<Violation>,
    old_term_commit: Option<Violation>,
    config_change: Option<Violation>,
    leader_log_shrank: Option<Violation>,
    applied_uncommitted: Option<Violation>,
    /// The newest-term leader seen before this step: (term, node, first seen at).
    newest_leader: Option<(u64, usize, u64)>,
    /// Leaders seen in this step: (term, node).
    step_leaders: Vec<(u64, usize)>,
    stale_lease_read: Option<Violation>,
}

impl RaftRules {
    pub fn new(nodes: usize) -> RaftRules {
        RaftRules {
            seen: vec![Seen::default(); nodes],
            votes_read: vec![0; nodes],
            reports_votes: false,
            votes: BTreeMap::new(),
            last_vote: BTreeMap::new(),
            node_of_identity: BTreeMap::new(),
            forgotten_vote: None,
            leaders_checked: BTreeSet::new(),
            new_leaders: Vec::new(),
            unelected: None,
            old_term_commit: None,
            config_change: None,
            leader_log_shrank: None,
            applied_uncommitted: None,
            newest_leader: None,
            step_leaders: Vec::new(),
            stale_lease_read: None,
        }
    }

    /// Where node `node`'s next read of granted votes starts.
    pub fn votes_from(&self, node: usize) -> usize {
        self.votes_read[node]
    }

    /// Votes node `node` granted since the last read; None: the system does not report them.
    pub fn observe_votes(&mut self, node: usize, votes: Option<&[GrantedVote]>) {
        let Some(votes) = votes else { return };
        self.reports_votes = true;
        self.votes_read[node] += votes.len();
        for vote in votes {
            self.votes
                .entry((vote.term, vote.candidate))
                .or_default()
                .insert(vote.voter);
            let last = self.last_vote.entry(vote.voter).or_insert((0, 0));
            if vote.term >= last.0 {
                *last = (vote.term, vote.candidate);
            }
        }
    }

    /// The vote `view`'s node last granted must still show in its term and vote.
    fn check_votes_kept(&mut self, time_ns: u64, node: usize, view: &NodeView) {
        if !view.running || view.identity == 0 || self.forgotten_vote.is_some() {
            return;
        }
        let Some(&(term, candidate)) = self.last_vote.get(&view.identity) else {
            return;
        };
        let problem = if view.term < term {
            Some(format!("is at term {}", view.term))
        } else if view.term == term {
            // Only for a candidate this run has seen: its node is what `voted_for` names.
            let candidate_node = self.node_of_identity.get(&candidate).copied();
            match (candidate_node, view.voted_for) {
                (Some(expected), Some(voted)) if voted != expected => Some(format!(
                    "names {} as its vote in that term",
                    node_name(voted)
                )),
                (Some(_), None) => Some("names no vote in that term".to_string()),
                _ => None,
            }
        } else {
            None
        };
        if let Some(problem) = problem {
            self.forgotten_vote = Some(Violation {
                time_ns,
                detail: format!(
                    "{} (identity {}) granted its vote in term {term} to identity {candidate}, and now {problem}",
                    node_name(node),
                    view.identity
                ),
            });
        }
    }

    /// Node `node`'s view of this step.
    pub fn observe(&mut self, time_ns: u64, node: usize, view: &NodeView) {
        let previous = std::mem::replace(&mut self.seen[node], Seen::of(view));
        if view.identity > 0 {
            self.node_of_identity.insert(view.identity, node);
        }
        self.check_votes_kept(time_ns, node, view);
        if self.applied_uncommitted.is_none() {
            // Snapshot placeholders (term 0) came committed with the snapshot.
            let beyond = view
                .new_applied
                .iter()
                .find(|entry| !entry.is_from_snapshot() && entry.index > view.commit_index);
            if let Some(entry) = beyond {
                self.applied_uncommitted = Some(Violation {
                    time_ns,
                    detail: format!(
                        "{} applied index {} (term {}) with its commit index at {}",
                        node_name(node),
                        entry.index,
                        entry.term,
                        view.commit_index
                    ),
                });
            }
        }
        self.check_lease_reads(time_ns, node, view, &previous);
        let leading = view.running && view.is_leader;
        if leading {
            self.step_leaders.push((view.term, node));
        }
        let known_identity = view.identity > 0;
        if leading && known_identity && self.leaders_checked.insert((view.term, view.identity)) {
            self.new_leaders.push(NewLeader {
                node,
                term: view.term,
                identity: view.identity,
                voters: view.voters.clone(),
            });
        }
        if !previous.still_leading(view) {
            return;
        }
        let name = node_name(node);
        if view.last_log_index < previous.last_log_index && self.leader_log_shrank.is_none() {
            self.leader_log_shrank = Some(Violation {
                time_ns,
                detail: format!(
                    "{name} (leader of term {}) had log entries up to index {} and then up to {}",
                    view.term, previous.last_log_index, view.last_log_index
                ),
            });
        }
        if view.commit_index > previous.commit_index && self.old_term_commit.is_none() {
            if let Some(commit_term) = view.commit_term.filter(|term| *term != view.term) {
                self.old_term_commit = Some(Violation {
                    time_ns,
                    detail: format!(
                        "{name} (leader of term {}) advanced its commit index from {} to {}, an entry of term {commit_term}",
                        view.term, previous.commit_index, view.commit_index
                    ),
                });
            }
        }
        if let (Some(before), Some(after)) = (previous.config_index, view.config_index) {
            if after > before && self.config_change.is_none() {
                let problem = if before > view.commit_index {
                    Some(format!(
                        "while its previous change at index {before} was uncommitted (commit index {})",
                        view.commit_index
                    ))
                } else {
                    view.commit_term
                        .filter(|term| *term != view.term)
                        .map(|term| {
                            format!(
                                "before it committed an entry of its term (commit index {} is of term {term})",
                                view.commit_index
                            )
                        })
                };
                if let Some(problem) = problem {
                    self.config_change = Some(Violation {
                        time_ns,
                        detail: format!(
                            "{name} (leader of term {}) appended a configuration change at index {after} {problem}",
                            view.term
                        ),
                    });
                }
            }
        }
    }

    /// Lease reads answered in this step by a node whose term is older than a leader seen in
    /// an earlier step (a leader seen in this same step may have come after the reads).
    fn check_lease_reads(&mut self, time_ns: u64, node: usize, view: &NodeView, previous: &Seen) {
        // Only between two sights of one running incarnation: a node coming back reports
        // what it last recorded (its previous run's count) until it records afresh.
        let new_reads = if previous.running && previous.identity == view.identity {
            view.lease_reads.saturating_sub(previous.lease_reads)
        } else {
            0
        };
        if new_reads == 0 || !view.running || self.stale_lease_read.is_some() {
            return;
        }
        let Some((term, leader, since_ns)) = self.newest_leader else {
            return;
        };
        if term > view.term && leader != node {
            self.stale_lease_read = Some(Violation {
                time_ns,
                detail: format!(
                    "{} (term {}) answered {new_reads} read(s) on its lease while {} had led term {term} since {:.3} s",
                    node_name(node),
                    view.term,
                    node_name(leader),
                    since_ns as f64 / 1e9
                ),
            });
        }
    }

    /// Checks the leaders first seen in this step against the votes granted so far (a
    /// voter records its vote before the candidate can count it, so by the end of the step
    /// in which a node became leader, every vote it counted is in).
    pub fn end_step(&mut self, time_ns: u64) {
        for (term, node) in std::mem::take(&mut self.step_leaders) {
            if self
                .newest_leader
                .is_none_or(|(newest, _, _)| term > newest)
            {
                self.newest_leader = Some((term, node, time_ns));
            }
        }
        let new_leaders = std::mem::take(&mut self.new_leaders);
        if !self.reports_votes || self.unelected.is_some() {
            return;
        }
        for leader in new_leaders {
            if leader.voters.is_empty() {
                continue;
            }
            let granted = self.votes.get(&(leader.term, leader.identity));
            let granting: Vec<u64> = leader
                .voters
                .iter()
                .copied()
                .filter(|voter| {
                    *voter == leader.identity || granted.is_some_and(|set| set.contains(voter))
                })
                .collect();
            let quorum = leader.voters.len() / 2 + 1;
            if granting.len() < quorum {
                self.unelected = Some(Violation {
                    time_ns,
                    detail: format!(
                        "{} became leader of term {} with votes of term {} from identities {:?} only, of voters {:?} (quorum {quorum})",
                        node_name(leader.node),
                        leader.term,
                        leader.term,
                        granting,
                        leader.voters
                    ),
                });
                return;
            }
        }
    }

    pub fn any_violation(&self) -> bool {
        self.unelected.is_some()
            || self.old_term_commit.is_some()
            || self.config_change.is_some()
            || self.leader_log_shrank.is_some()
            || self.applied_uncommitted.is_some()
            || self.stale_lease_read.is_some()
            || self.forgotten_vote.is_some()
    }

    /// (name, first violation) of each rule.
    pub(crate) fn results(&self) -> [(&'static str, &Option<Violation>); 7] {
        [
            (ELECTED_BY_QUORUM, &self.unelected),
            (COMMIT_IN_OWN_TERM, &self.old_term_commit),
            (CONFIG_CHANGE_RULE, &self.config_change),
            (LEADER_APPEND_ONLY, &self.leader_log_shrank),
            (APPLY_ONLY_COMMITTED, &self.applied_uncommitted),
            (LEASE_EXCLUSIVE, &self.stale_lease_read),
            (VOTES_KEPT, &self.forgotten_vote),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leader_view(term: u64, identity: u64, commit: u64, commit_term: u64) -> NodeView {
        NodeView {
            running: true,
            is_leader: true,
            term,
            identity,
            commit_index: commit,
            commit_term: Some(commit_term),
            config_index: Some(0),
            voters: vec![1, 2, 3, 4, 5],
            ..NodeView::default()
        }
    }

    fn vote(term: u64, voter: u64, candidate: u64) -> GrantedVote {
        GrantedVote {
            term,
            voter,
            candidate,
        }
    }

    #[test]
    fn a_leader_needs_a_quorum_of_votes_of_its_own_term() {
        let mut rules = RaftRules::new(5);
        // n1 (identity 1) won term 2 with votes of identities 2 and 3 (and its own).
        rules.observe_votes(1, Some(&[vote(2, 2, 1)]));
        rules.observe_votes(2, Some(&[vote(2, 3, 1)]));
        rules.observe(10, 0, &leader_view(2, 1, 0, 0));
        rules.end_step(10);
        assert!(!rules.any_violation(), "{:?}", rules.unelected);
        // n2 (identity 2) leads term 3 counting a vote identity 3 granted it in term 2.
        rules.observe_votes(2, Some(&[vote(2, 3, 2), vote(3, 4, 2)]));
        rules.observe(20, 1, &leader_view(3, 2, 0, 0));
        rules.end_step(20);
        let detail = &rules.unelected.as_ref().expect("caught").detail;
        assert!(detail.contains("n2 became leader of term 3"), "{detail}");
    }

    #[test]
    fn a_granted_vote_survives_restarts() {
        let follower = |term: u64, voted_for: Option<usize>| NodeView {
            running: true,
            term,
            identity: 2,
            voted_for,
            ..NodeView::default()
        };
        let mut rules = RaftRules::new(3);
        rules.observe(5, 0, &leader_view(6, 1, 0, 0));
        // n2 (identity 2) votes for identity 1 (n1) in term 7.
        rules.observe_votes(1, Some(&[vote(7, 2, 1)]));
        rules.observe(10, 1, &follower(7, Some(0)));
        // Later terms are free; so is a restart that recovered the vote.
        rules.observe(20, 1, &follower(8, None));
        rules.observe(30, 1, &follower(7, Some(0)));
        assert!(rules.forgotten_vote.is_none(), "{:?}", rules.forgotten_vote);
        // Back from a restart in term 7 with no vote: it could vote again in term 7.
        rules.observe(40, 1, &follower(7, None));
        let detail = &rules.forgotten_vote.as_ref().expect("caught").detail;
        assert!(
            detail.contains("granted its vote in term 7 to identity 1, and now names no vote"),
            "{detail}"
        );
        let mut rules = RaftRules::new(3);
        rules.observe_votes(1, Some(&[vote(7, 2, 1)]));
        rules.observe(10, 1, &follower(6, None));
        assert!(rules.forgotten_vote.is_some(), "the term went back");
        // A node rebuilt on an empty disk has a new identity: nothing to remember.
        let mut rules = RaftRules::new(3);
        rules.observe_votes(1, Some(&[vote(7, 2, 1)]));
        rules.observe(
            10,
            1,
            &NodeView {
                identity: 5,
                ..follower(1, None)
            },
        );
        assert!(rules.forgotten_vote.is_none());
    }

    #[test]
    fn votes_are_not_required_from_systems_that_do_not_report_them() {
        let mut rules = RaftRules::new(3);
        rules.observe_votes(0, None);
        rules.observe(10, 0, &leader_view(2, 1, 0, 0));
        rules.end_step(10);
        assert!(!rules.any_violation());
    }

    #[test]
    fn a_leader_commits_only_up_to_an_entry_of_its_own_term() {
        let mut rules = RaftRules::new(5);
        rules.observe(10, 0, &leader_view(4, 1, 10, 2));
        // Commit moving within the leader's own term is the rule.
        rules.observe(20, 0, &leader_view(4, 1, 12, 4));
        assert!(rules.old_term_commit.is_none());
        // A new leader of term 5 whose commit index moves to an entry of term 4.
        rules.observe(30, 0, &leader_view(5, 1, 12, 4));
        rules.observe(40, 0, &leader_view(5, 1, 14, 4));
        let detail = &rules.old_term_commit.as_ref().expect("caught").detail;
        assert!(
            detail.contains("from 12 to 14, an entry of term 4"),
            "{detail}"
        );
    }

    #[test]
    fn a_leader_keeps_its_log_and_nodes_apply_only_what_committed() {
        let mut rules = RaftRules::new(5);
        let with_log = |last: u64| NodeView {
            last_log_index: last,
            ..leader_view(3, 1, 10, 3)
        };
        rules.observe(10, 0, &with_log(12));
        rules.observe(20, 0, &with_log(14));
        assert!(!rules.any_violation());
        rules.observe(30, 0, &with_log(11));
        let detail = &rules.leader_log_shrank.as_ref().expect("caught").detail;
        assert!(
            detail.contains("up to index 14 and then up to 11"),
            "{detail}"
        );

        let mut rules = RaftRules::new(5);
        let applied = |index: u64, term: u64| crate::sut::AppliedEntry {
            index,
            term,
            digest: 1,
        };
        let follower = |commit: u64, new_applied| NodeView {
            running: true,
            term: 3,
            identity: 2,
            commit_index: commit,
            new_applied,
            ..NodeView::default()
        };
        // A snapshot's placeholders, then entries up to the commit index: the rule.
        rules.observe(10, 1, &follower(12, vec![applied(11, 0), applied(12, 3)]));
        assert!(!rules.any_violation());
        rules.observe(20, 1, &follower(12, vec![applied(13, 3)]));
        let detail = &rules.applied_uncommitted.as_ref().expect("caught").detail;
        assert!(
            detail.contains("n2 applied index 13 (term 3) with its commit index at 12"),
            "{detail}"
        );
    }

    #[test]
    fn lease_reads_stop_once_a_newer_leader_exists() {
        let mut rules = RaftRules::new(5);
        let node = |term: u64, identity: u64, is_leader: bool, lease_reads: u64| NodeView {
            running: true,
            is_leader,
            term,
            identity,
            lease_reads,
            ..NodeView::default()
        };
        rules.observe(10, 0, &node(3, 1, true, 4));
        rules.end_step(10);
        // n2 wins term 4 in the same step in which n1 still answers on its lease: allowed
        // (the reads may have come first).
        rules.observe(20, 0, &node(3, 1, true, 6));
        rules.observe(20, 1, &node(4, 2, true, 0));
        rules.end_step(20);
        assert!(rules.stale_lease_read.is_none());
        rules.observe(30, 0, &node(3, 1, true, 6));
        rules.end_step(30);
        assert!(rules.stale_lease_read.is_none(), "no new lease reads");
        rules.observe(40, 0, &node(3, 1, true, 7));
        let detail = &rules.stale_lease_read.as_ref().expect("caught").detail;
        assert!(
            detail.contains("n1 (term 3) answered 1 read(s) on its lease while n2 had led term 4"),
            "{detail}"
        );
    }

    #[test]
    fn a_configuration_change_waits_for_the_previous_one_and_an_entry_of_the_term() {
        let change = |commit: u64, commit_term: u64, config_index: u64| NodeView {
            config_index: Some(config_index),
            ..leader_view(3, 1, commit, commit_term)
        };
        let mut rules = RaftRules::new(5);
        rules.observe(10, 0, &change(20, 3, 5));
        rules.observe(20, 0, &change(21, 3, 22));
        assert!(rules.config_change.is_none(), "committed in term 3 first");
        rules.observe(30, 0, &change(21, 3, 23));
        let detail = &rules.config_change.as_ref().expect("caught").detail;
        assert!(
            detail.contains("previous change at index 22 was uncommitted"),
            "{detail}"
        );

        let mut rules = RaftRules::new(5);
        rules.observe(10, 0, &change(20, 2, 5));
        rules.observe(20, 0, &change(20, 2, 21));
        let detail = &rules.config_change.as_ref().expect("caught").detail;
        assert!(
            detail.contains("before it committed an entry of its term"),
            "{detail}"
        );
    }
}

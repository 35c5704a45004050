//! Safety invariants read from node observations after every simulation step: at most one
//! leader per term, applied sequences are prefixes of one another, an entry a node has
//! applied never changes, replicas agree at equal applied indexes, and Raft's own safety
//! properties read from each node's hard state and log tail (as etcd-io/raft's and
//! TigerBeetle's simulators check them): a node votes at most once per term and its term never
//! goes back (durable hard state), a new leader holds every index already known committed
//! (leader completeness), and no leader's commit index passes what a majority of its voters
//! hold. Raft's election, commit and configuration rules are checked in `raft_rules` and
//! reported with these. Incremental: each step only looks at what is new.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::raft_rules::RaftRules;
use crate::schedule::node_name;
use crate::sut::{AppliedEntry, GrantedVote, NodeView, ReplicaDigest};

pub const ONE_LEADER_PER_TERM: &str = "one leader per term";
pub const APPLIED_PREFIXES: &str = "applied sequences are prefixes of one another";
pub const COMMITTED_NEVER_CHANGE: &str = "committed entries never change";
pub const REPLICAS_AGREE: &str = "replicas hold the same state at equal applied indexes";
pub const ONE_VOTE_PER_TERM: &str = "a node votes for at most one candidate per term";
pub const TERM_NEVER_DECREASES: &str = "a node's term never decreases";
pub const SNAPSHOT_MATCHES_LOG: &str =
    "a snapshot records the term of the committed entry at its last index";
pub const LEADER_COMPLETENESS: &str = "a new leader holds every committed index";
pub const COMMIT_ON_MAJORITY: &str = "a leader commits only what a majority of voters holds";

/// The hard state and log tail a node last reported, for checks across nodes at step end.
#[derive(Clone, Debug, Default)]
struct Latest {
    running: bool,
    is_leader: bool,
    term: u64,
    identity: u64,
    commit_index: u64,
    last_log_index: u64,
    /// The highest log tail seen under this identity: a majority check on it never counts a
    /// tail that was only reported late, or lost with a wiped disk, against a leader.
    max_last_log_index: u64,
    voters: Vec<u64>,
    /// The voters before the last configuration change seen at this node: a commit decided
    /// just before the change was counted under them.
    previous_voters: Vec<u64>,
    /// The node, leader in the same term, advanced its commit index in this observation.
    commit_advanced: bool,
    /// (identity, term, voted for) of the last vote seen.
    vote: Option<(u64, u64, usize)>,
}

/// How many applied indexes keep a replica state for comparison (oldest dropped first).
const STATES_KEPT: usize = 4_096;

/// One invariant's result, as in results.json.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct InvariantResult {
    pub name: &'static str,
    pub ok: bool,
    pub detail: Option<String>,
}

/// The first violation of an invariant, with the simulated time it was seen.
#[derive(Clone, Debug)]
pub(crate) struct Violation {
    pub(crate) time_ns: u64,
    pub(crate) detail: String,
}

pub struct InvariantChecker {
    nodes: usize,
    /// The leader of every term seen so far (0-based node).
    leaders: BTreeMap<u64, usize>,
    /// The applied entry at each log index, as first seen on any node: (entry, node).
    applied_by_index: BTreeMap<u64, (AppliedEntry, usize)>,
    /// Per node: how many applied entries it reported, and its own entry per index.
    applied_counts: Vec<usize>,
    own_entries: Vec<BTreeMap<u64, AppliedEntry>>,
    /// Per node: the highest index applied in its current sequence.
    last_index: Vec<u64>,
    one_leader: Option<Violation>,
    prefixes: Option<Violation>,
    committed: Option<Violation>,
    snapshot_term: Option<Violation>,
    /// The first replica state seen at each applied index: (state, node).
    states_by_index: BTreeMap<u64, (ReplicaDigest, usize)>,
    diverged: Option<Violation>,
    max_commit_index: u64,
    latest: Vec<Latest>,
    /// Some node reported a log index: the system exposes its log tail (toy systems do not).
    saw_log_index: bool,
    double_vote: Option<Violation>,
    term_back: Option<Violation>,
    incomplete_leader: Option<Violation>,
    commit_unheld: Option<Violation>,
    /// Raft's election, commit and configuration rules (`raft_rules`).
    rules: RaftRules,
}

impl InvariantChecker {
    pub fn new(nodes: usize) -> InvariantChecker {
        InvariantChecker {
            nodes,
            leaders: BTreeMap::new(),
            applied_by_index: BTreeMap::new(),
            applied_counts: vec![0; nodes],
            own_entries: vec![BTreeMap::new(); nodes],
            last_index: vec![0; nodes],
            one_leader: None,
            prefixes: None,
            committed: None,
            snapshot_term: None,
            states_by_index: BTreeMap::new(),
            diverged: None,
            max_commit_index: 0,
            latest: vec![Latest::default(); nodes],
            saw_log_index: false,
            double_vote: None,
            term_back: None,
            incomplete_leader: None,
            commit_unheld: None,
            rules: RaftRules::new(nodes),
        }
    }

    /// Where node `node`'s next observation should start (`applied_from`).
    pub fn applied_from(&self, node: usize) -> usize {
        self.applied_counts[node]
    }

    /// The highest commit index any node has reported.
    pub fn max_commit_index(&self) -> u64 {
        self.max_commit_index
    }

    /// The highest log index any node has applied.
    pub fn max_applied_index(&self) -> u64 {
        self.applied_by_index
            .keys()
            .next_back()
            .copied()
            .unwrap_or(0)
    }

    /// Where node `node`'s next read of granted votes should start.
    pub fn votes_from(&self, node: usize) -> usize {
        self.rules.votes_from(node)
    }

    /// Votes node `node` granted since the last read (None: the system does not say).
    pub fn observe_votes(&mut self, node: usize, votes: Option<&[GrantedVote]>) {
        self.rules.observe_votes(node, votes);
    }

    /// Takes node `node`'s latest observation into account.
    pub fn observe(&mut self, time_ns: u64, node: usize, view: &NodeView) {
        assert!(node < self.nodes, "node {node} out of range");
        self.rules.observe(time_ns, node, view);
        self.saw_log_index |= view.last_log_index > 0;
        self.observe_hard_state(time_ns, node, view);
        self.max_commit_index = self.max_commit_index.max(view.commit_index);
        let mut terms: Vec<u64> = view.leader_terms.iter().copied().collect();
        if view.running && view.is_leader {
            terms.push(view.term);
        }
        for term in terms {
            match self.leaders.get(&term) {
                Some(&other) if other != node => {
                    if self.one_leader.is_none() {
                        self.one_leader = Some(Violation {
                            time_ns,
                            detail: format!(
                                "{} and {} were both leader in term {term}",
                                node_name(other),
                                node_name(node)
                            ),
                        });
                    }
                }
                Some(_) => {}
                None => {
                    self.leaders.insert(term, node);
                }
            }
        }
        if let Some((earlier, later)) = view.changed_entries.first() {
            if self.committed.is_none() {
                self.committed = Some(Violation {
                    time_ns,
                    detail: format!(
                        "{} re-applied index {} after a restart with a different entry (term {} then term {})",
                        node_name(node),
                        earlier.index,
                        earlier.term,
                        later.term
                    ),
                });
            }
        }
        for entry in &view.new_applied {
            self.observe_applied(time_ns, node, *entry);
        }
        self.check_snapshot(time_ns, node, view);
        if let Some(state) = view.state.as_ref().filter(|_| view.running) {
            self.observe_state(time_ns, node, state);
        }
        self.applied_counts[node] = view.applied_count.max(self.applied_counts[node]);
    }

    /// Vote once per term, term never back (per identity: a node rebuilt on an empty disk
    /// starts afresh under a new one), and leader completeness at a leader's first sight.
    fn observe_hard_state(&mut self, time_ns: u64, node: usize, view: &NodeView) {
        let name = node_name(node);
        let previous = self.latest[node].clone();
        // Term 0 is an empty hard state: the node came back on an empty disk (rejoin-empty)
        // and starts afresh, as under a new identity.
        let same_identity = previous.identity == view.identity && view.term > 0;
        if view.running {
            if same_identity && view.term < previous.term && self.term_back.is_none() {
                self.term_back = Some(Violation {
                    time_ns,
                    detail: format!(
                        "{name}'s term went back from {} to {}",
                        previous.term, view.term
                    ),
                });
            }
            let mut vote = previous.vote.filter(|_| same_identity);
            if let Some(to) = view.voted_for {
                match vote {
                    Some((_, term, earlier)) if term == view.term && earlier != to => {
                        if self.double_vote.is_none() {
                            self.double_vote = Some(Violation {
                                time_ns,
                                detail: format!(
                                    "{name} voted for {} and then for {} in term {term}",
                                    node_name(earlier),
                                    node_name(to)
                                ),
                            });
                        }
                    }
                    Some((_, term, _)) if term >= view.term => {}
                    _ => vote = Some((view.identity, view.term, to)),
                }
            }
            // Before this term's leader is recorded (the loop in `observe` does that).
            let first_sight_as_leader = view.is_leader && !self.leaders.contains_key(&view.term);
            if first_sight_as_leader
                && self.saw_log_index
                && view.last_log_index < self.max_commit_index
                && self.incomplete_leader.is_none()
            {
                self.incomplete_leader = Some(Violation {
                    time_ns,
                    detail: format!(
                        "{name} became leader of term {} with its log ending at index {} but index {} was already committed",
                        view.term, view.last_log_index, self.max_commit_index
                    ),
                });
            }
            self.latest[node] = Latest {
                running: true,
                is_leader: view.is_leader,
                term: view.term,
                identity: view.identity,
                commit_index: view.commit_index,
                last_log_index: view.last_log_index,
                max_last_log_index: if previous.identity == view.identity {
                    previous.max_last_log_index.max(view.last_log_index)
                } else {
                    view.last_log_index
                },
                voters: view.voters.clone(),
                previous_voters: if previous.voters != view.voters {
                    previous.voters.clone()
                } else {
                    previous.previous_voters.clone()
                },
                commit_advanced: view.is_leader
                    && previous.is_leader
                    && previous.running
                    && same_identity
                    && previous.term == view.term
                    && view.commit_index > previous.commit_index,
                vote,
            };
        } else {
            // A node that is down keeps what it last reported (its log is on its disk).
            self.latest[node].running = false;
            self.latest[node].is_leader = false;
        }
    }

    /// Checks across nodes once every node's view of this step is in: each leader's commit
    /// index is held (log tail at or past it) by a majority of its voters. A voter whose
    /// identity no node carries any more (rebuilt under a new one), or that is down now,
    /// counts as holding it.
    pub fn end_step(&mut self, time_ns: u64) {
        self.rules.end_step(time_ns);
        if self.commit_unheld.is_some() || !self.saw_log_index {
            return;
        }
        for (node, leader) in self.latest.iter().enumerate() {
            if !leader.running
                || !leader.is_leader
                || !leader.commit_advanced
                || leader.voters.is_empty()
            {
                continue;
            }
            let commit = leader.commit_index;
            let count_holders = |voters: &[u64]| {
                voters
                    .iter()
                    .filter(|&&voter| {
                        match self.latest.iter().find(|other| other.identity == voter) {
                            // A node down now (crashed, or stopped on a storage failure
                            // within this step) may have appended and acknowledged more
                            // than it showed at its last sight: it counts as holding.
                            Some(other) => !other.running || other.max_last_log_index >= commit,
                            None => true,
                        }
                    })
                    .count()
            };
            let quorum = |voters: &[u64]| voters.len() / 2 + 1;
            let previous_ok = !leader.previous_voters.is_empty()
                && count_holders(&leader.previous_voters) >= quorum(&leader.previous_voters);
            let holders = count_holders(&leader.voters);
            if holders < quorum(&leader.voters) && !previous_ok {
                let tails: Vec<String> = self
                    .latest
                    .iter()
                    .enumerate()
                    .map(|(i, other)| {
                        format!(
                            "{} {} (highest {})",
                            node_name(i),
                            other.last_log_index,
                            other.max_last_log_index
                        )
                    })
                    .collect();
                self.commit_unheld = Some(Violation {
                    time_ns,
                    detail: format!(
                        "{} (leader of term {}) has commit index {commit} but only {holders} of its {} voters hold that index (log tails: {})",
                        node_name(node),
                        leader.term,
                        leader.voters.len(),
                        tails.join(", ")
                    ),
                });
                return;
            }
        }
    }

    /// A snapshot stands for the committed log up to its last index, and that index's term is
    /// what the node compares logs by from then on (its own last term when nothing follows,
    /// a peer's prev_log_term): a wrong one can elect a node that lacks committed entries, or
    /// make a follower throw away a matching log. It is checked when the snapshot is seen,
    /// not when that harm comes, which takes a further unlucky election.
    fn check_snapshot(&mut self, time_ns: u64, node: usize, view: &NodeView) {
        let Some((index, term)) = view.snapshot.filter(|_| view.running) else {
            return;
        };
        if self.snapshot_term.is_some() {
            return;
        }
        let Some((entry, applier)) = self.applied_by_index.get(&index) else {
            return;
        };
        if !entry.is_from_snapshot() && entry.term != term {
            self.snapshot_term = Some(Violation {
                time_ns,
                detail: format!(
                    "{} holds a snapshot up to index {index} that records term {term}, but the entry committed at index {index} is of term {} ({} applied it)",
                    node_name(node),
                    entry.term,
                    node_name(*applier)
                ),
            });
        }
    }

    fn observe_applied(&mut self, time_ns: u64, node: usize, entry: AppliedEntry) {
        let name = node_name(node);
        if entry.is_from_snapshot() {
            // The node received this index's state inside a snapshot and never applied the
            // entry itself, so there is nothing to compare; its sequence continues after it.
            self.last_index[node] = self.last_index[node].max(entry.index);
            return;
        }
        // A node's sequence must continue without gaps; restarting from an earlier index
        // (re-applying after a restart) is allowed, but what it re-applies must match.
        let expected = self.last_index[node] + 1;
        if entry.index > expected && self.prefixes.is_none() {
            self.prefixes = Some(Violation {
                time_ns,
                detail: format!(
                    "{name} applied index {} right after index {}",
                    entry.index,
                    expected - 1
                ),
            });
        }
        self.last_index[node] = entry.index;
        if let Some(previous) = self.own_entries[node].get(&entry.index) {
            if *previous != entry && self.committed.is_none() {
                self.committed = Some(Violation {
                    time_ns,
                    detail: format!(
                        "{name} applied index {} twice with different entries (term {} then term {})",
                        entry.index, previous.term, entry.term
                    ),
                });
            }
        } else {
            self.own_entries[node].insert(entry.index, entry);
        }
        match self.applied_by_index.get(&entry.index) {
            Some((first, first_node)) if *first != entry => {
                if self.prefixes.is_none() {
                    self.prefixes = Some(Violation {
                        time_ns,
                        detail: format!(
                            "at index {}: {} applied an entry of term {} but {name} one of term {} (digests {:#x} / {:#x})",
                            entry.index,
                            node_name(*first_node),
                            first.term,
                            entry.term,
                            first.digest,
                            entry.digest
                        ),
                    });
                }
            }
            Some(_) => {}
            None => {
                self.applied_by_index.insert(entry.index, (entry, node));
            }
        }
    }

    /// Compares a replica's state with the first state seen at the same applied index.
    fn observe_state(&mut self, time_ns: u64, node: usize, state: &ReplicaDigest) {
        match self.states_by_index.get(&state.index) {
            Some((first, first_node)) if first.digest != state.digest => {
                if self.diverged.is_none() {
                    self.diverged = Some(Violation {
                        time_ns,
                        detail: divergence_detail(
                            state.index,
                            *first_node,
                            &first.state,
                            node,
                            &state.state,
                        ),
                    });
                }
            }
            Some(_) => {}
            None => {
                self.states_by_index
                    .insert(state.index, (state.clone(), node));
                if self.states_by_index.len() > STATES_KEPT {
                    self.states_by_index.pop_first();
                }
            }
        }
    }

    /// Records a divergence found outside the step-by-step observation (the final check).
    pub fn record_divergence(&mut self, time_ns: u64, detail: String) {
        if self.diverged.is_none() {
            self.diverged = Some(Violation { time_ns, detail });
        }
    }

    pub fn any_violation(&self) -> bool {
        self.one_leader.is_some()
            || self.prefixes.is_some()
            || self.committed.is_some()
            || self.snapshot_term.is_some()
            || self.diverged.is_some()
            || self.double_vote.is_some()
            || self.term_back.is_some()
            || self.incomplete_leader.is_some()
            || self.commit_unheld.is_some()
            || self.rules.any_violation()
    }

    pub fn results(&self) -> Vec<InvariantResult> {
        let result = |name, violation: &Option<Violation>| InvariantResult {
            name,
            ok: violation.is_none(),
            detail: violation
                .as_ref()
                .map(|v| format!("{} (at {:.3} s)", v.detail, v.time_ns as f64 / 1e9)),
        };
        let mut results = vec![
            result(ONE_LEADER_PER_TERM, &self.one_leader),
            result(APPLIED_PREFIXES, &self.prefixes),
            result(COMMITTED_NEVER_CHANGE, &self.committed),
            result(REPLICAS_AGREE, &self.diverged),
            result(ONE_VOTE_PER_TERM, &self.double_vote),
            result(TERM_NEVER_DECREASES, &self.term_back),
            result(LEADER_COMPLETENESS, &self.incomplete_leader),
            result(COMMIT_ON_MAJORITY, &self.commit_unheld),
            result(SNAPSHOT_MATCHES_LOG, &self.snapshot_term),
        ];
        results.extend(
            self.rules
                .results()
                .into_iter()
                .map(|(name, violation)| result(name, violation)),
        );
        results
    }
}

/// "n1 and n3 differ at applied index 42: keys k1 (3 vs 4)".
pub fn divergence_detail(
    index: u64,
    first_node: usize,
    first: &minos_node::ReplicaState,
    node: usize,
    state: &minos_node::ReplicaState,
) -> String {
    format!(
        "{} and {} differ at applied index {index}: {}",
        node_name(first_node),
        node_name(node),
        first.differences(state)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(index: u64, term: u64, digest: u64) -> AppliedEntry {
        AppliedEntry {
            index,
            term,
            digest,
        }
    }

    fn view(is_leader: bool, term: u64, applied: Vec<AppliedEntry>, count: usize) -> NodeView {
        NodeView {
            running: true,
            is_leader,
            term,
            commit_index: count as u64,
            leader_terms: Default::default(),
            new_applied: applied,
            applied_count: count,
            ..NodeView::default()
        }
    }

    #[test]
    fn agreeing_nodes_pass() {
        let mut checker = InvariantChecker::new(2);
        checker.observe(
            1,
            0,
            &view(true, 1, vec![entry(1, 1, 7), entry(2, 1, 8)], 2),
        );
        checker.observe(1, 1, &view(false, 1, vec![entry(1, 1, 7)], 1));
        checker.observe(2, 1, &view(false, 1, vec![entry(2, 1, 8)], 2));
        // Re-applying the same entries after a restart is fine.
        checker.observe(3, 1, &view(false, 2, vec![entry(1, 1, 7)], 3));
        assert!(!checker.any_violation(), "{:?}", checker.results());
        assert_eq!(checker.applied_from(1), 3);
    }

    #[test]
    fn two_leaders_in_one_term_are_caught() {
        let mut checker = InvariantChecker::new(3);
        checker.observe(1, 0, &view(true, 4, vec![], 0));
        checker.observe(2, 2, &view(true, 4, vec![], 0));
        let results = checker.results();
        assert!(!results[0].ok);
        assert!(
            results[0].detail.as_ref().unwrap().contains("n1 and n3"),
            "{results:?}"
        );
    }

    #[test]
    fn diverging_and_changing_entries_are_caught() {
        let mut checker = InvariantChecker::new(2);
        checker.observe(1, 0, &view(false, 1, vec![entry(1, 1, 7)], 1));
        checker.observe(1, 1, &view(false, 1, vec![entry(1, 2, 9)], 1));
        assert!(!checker.results()[1].ok);
        let mut checker = InvariantChecker::new(1);
        checker.observe(1, 0, &view(false, 1, vec![entry(1, 1, 7)], 1));
        checker.observe(2, 0, &view(false, 2, vec![entry(1, 2, 9)], 2));
        assert!(!checker.results()[2].ok);
        let mut checker = InvariantChecker::new(1);
        checker.observe(
            1,
            0,
            &view(false, 1, vec![entry(1, 1, 7), entry(3, 1, 8)], 2),
        );
        assert!(!checker.results()[1].ok, "a gap in a node's sequence");
    }

    #[test]
    fn a_diverged_replica_is_named_with_its_index_and_keys() {
        let state = |value: i64, seq: u64| ReplicaDigest {
            index: 7,
            digest: value as u64 * 31 + seq,
            state: std::sync::Arc::new(minos_node::ReplicaState {
                values: [("k1".to_string(), value), ("k2".to_string(), 5)]
                    .into_iter()
                    .collect(),
                sessions: [(3, seq)].into_iter().collect(),
            }),
        };
        let mut checker = InvariantChecker::new(3);
        let with_state = |checker: &mut InvariantChecker, node, state| {
            let mut v = view(false, 1, vec![], 0);
            v.state = Some(state);
            checker.observe(1, node, &v);
        };
        with_state(&mut checker, 0, state(4, 2));
        with_state(&mut checker, 1, state(4, 2));
        assert!(!checker.any_violation(), "{:?}", checker.results());
        with_state(&mut checker, 2, state(9, 2));
        let results = checker.results();
        let detail = results[3].detail.clone().unwrap_or_default();
        assert!(!results[3].ok);
        assert!(
            detail.contains("n1 and n3 differ at applied index 7")
                && detail.contains("k1 (4 vs 9)")
                && !detail.contains("k2"),
            "{detail}"
        );
        // Equal values but a different session table (dedup decisions) also diverge.
        let mut checker = InvariantChecker::new(2);
        let mut v = view(false, 1, vec![], 0);
        v.state = Some(state(4, 2));
        checker.observe(1, 0, &v);
        v.state = Some(state(4, 3));
        checker.observe(1, 1, &v);
        let detail = checker.results()[3].detail.clone().unwrap_or_default();
        assert!(detail.contains("sessions of clients 3"), "{detail}");
    }

    #[test]
    fn a_snapshot_records_the_term_of_the_committed_entry_at_its_index() {
        let mut checker = InvariantChecker::new(2);
        checker.observe(
            1,
            0,
            &view(true, 3, vec![entry(1, 1, 7), entry(2, 3, 8)], 2),
        );
        let with_snapshot = |snapshot| NodeView {
            running: true,
            snapshot: Some(snapshot),
            ..NodeView::default()
        };
        checker.observe(2, 1, &with_snapshot((2, 3)));
        assert!(!checker.any_violation(), "{:?}", checker.results());
        // A snapshot up to index 2 that records the node's later term instead of the entry's.
        checker.observe(3, 1, &with_snapshot((2, 5)));
        let result = checker
            .results()
            .into_iter()
            .find(|result| result.name == SNAPSHOT_MATCHES_LOG)
            .unwrap();
        let detail = result.detail.unwrap_or_default();
        assert!(
            detail.contains("n2 holds a snapshot up to index 2 that records term 5, but the entry committed at index 2 is of term 3"),
            "{detail}"
        );
    }

    #[test]
    fn entries_received_in_a_snapshot_are_not_compared() {
        let mut checker = InvariantChecker::new(2);
        checker.observe(
            1,
            0,
            &view(
                true,
                3,
                vec![entry(1, 1, 7), entry(2, 3, 8), entry(3, 3, 9)],
                3,
            ),
        );
        // n2 caught up by snapshot up to index 2, then applied index 3 itself.
        let caught_up = vec![
            AppliedEntry::from_snapshot(1),
            AppliedEntry::from_snapshot(2),
            entry(3, 3, 9),
        ];
        checker.observe(2, 1, &view(false, 3, caught_up, 3));
        assert!(!checker.any_violation(), "{:?}", checker.results());
        // A real disagreement after the snapshot is still caught.
        checker.observe(3, 1, &view(false, 3, vec![entry(4, 3, 1)], 4));
        checker.observe(3, 0, &view(true, 3, vec![entry(4, 3, 2)], 4));
        assert!(!checker.results()[1].ok);
    }

    fn raft_view(term: u64, is_leader: bool, commit: u64, last: u64) -> NodeView {
        NodeView {
            running: true,
            is_leader,
            term,
            commit_index: commit,
            last_log_index: last,
            identity: 1,
            voters: vec![1, 2, 3],
            ..NodeView::default()
        }
    }

    fn failed(checker: &InvariantChecker, name: &str) -> bool {
        checker
            .results()
            .iter()
            .any(|result| result.name == name && !result.ok)
    }

    #[test]
    fn a_second_vote_in_one_term_is_caught_but_a_vote_in_a_new_term_is_not() {
        let mut checker = InvariantChecker::new(3);
        let mut v = raft_view(3, false, 0, 0);
        v.voted_for = Some(1);
        checker.observe(1, 0, &v);
        v.voted_for = None;
        checker.observe(2, 0, &v);
        v.term = 4;
        v.voted_for = Some(2);
        checker.observe(3, 0, &v);
        assert!(!checker.any_violation(), "{:?}", checker.results());
        // Same term, another candidate (e.g. the vote was lost in a restart).
        v.voted_for = Some(1);
        checker.observe(4, 0, &v);
        assert!(
            failed(&checker, ONE_VOTE_PER_TERM),
            "{:?}",
            checker.results()
        );
        // A node rebuilt under a new identity votes afresh.
        let mut checker = InvariantChecker::new(3);
        let mut v = raft_view(3, false, 0, 0);
        v.voted_for = Some(1);
        checker.observe(1, 0, &v);
        v.identity = 7;
        v.voted_for = Some(2);
        checker.observe(2, 0, &v);
        assert!(!checker.any_violation(), "{:?}", checker.results());
    }

    #[test]
    fn a_term_going_back_is_caught_unless_the_node_was_rebuilt() {
        let mut checker = InvariantChecker::new(1);
        checker.observe(1, 0, &raft_view(5, false, 0, 0));
        let mut down = raft_view(5, false, 0, 0);
        down.running = false;
        checker.observe(2, 0, &down);
        checker.observe(3, 0, &raft_view(5, false, 0, 0));
        assert!(!checker.any_violation(), "{:?}", checker.results());
        let mut rebuilt = raft_view(1, false, 0, 0);
        rebuilt.identity = 4;
        checker.observe(4, 0, &rebuilt);
        assert!(!checker.any_violation(), "{:?}", checker.results());
        let on_rebuilt = |term: u64| NodeView {
            identity: 4,
            ..raft_view(term, false, 0, 0)
        };
        // Term 0 is an empty hard state (a wiped disk): a fresh start, not a regression.
        checker.observe(5, 0, &on_rebuilt(3));
        checker.observe(6, 0, &on_rebuilt(0));
        checker.observe(7, 0, &on_rebuilt(3));
        assert!(!checker.any_violation(), "{:?}", checker.results());
        checker.observe(8, 0, &on_rebuilt(2));
        assert!(failed(&checker, TERM_NEVER_DECREASES));
    }

    #[test]
    fn a_leader_missing_a_committed_index_is_caught() {
        let mut checker = InvariantChecker::new(3);
        checker.observe(1, 0, &raft_view(2, true, 10, 10));
        checker.observe(1, 1, &raft_view(2, false, 10, 10));
        // An up-to-date node wins term 3.
        checker.observe(2, 1, &raft_view(3, true, 10, 11));
        assert!(!checker.any_violation(), "{:?}", checker.results());
        // A node whose log ends before index 10 must not win term 4.
        checker.observe(3, 2, &raft_view(4, true, 0, 8));
        assert!(failed(&checker, LEADER_COMPLETENESS));
    }

    #[test]
    fn a_commit_index_past_what_a_majority_holds_is_caught() {
        let with_identity = |identity: u64, view: NodeView| NodeView { identity, ..view };
        let mut checker = InvariantChecker::new(3);
        checker.observe(0, 0, &with_identity(1, raft_view(2, true, 5, 10)));
        checker.observe(1, 0, &with_identity(1, raft_view(2, true, 9, 10)));
        checker.observe(1, 1, &with_identity(2, raft_view(2, false, 5, 9)));
        checker.observe(1, 2, &with_identity(3, raft_view(2, false, 5, 4)));
        checker.end_step(1);
        assert!(!checker.any_violation(), "{:?}", checker.results());
        // Index 10 is only on the leader: one of three voters.
        checker.observe(2, 0, &with_identity(1, raft_view(2, true, 10, 10)));
        checker.end_step(2);
        assert!(
            failed(&checker, COMMIT_ON_MAJORITY),
            "{:?}",
            checker.results()
        );
        // A voter no node carries any more (rebuilt under a new identity) counts as holding.
        let mut checker = InvariantChecker::new(3);
        checker.observe(0, 0, &with_identity(1, raft_view(2, true, 5, 10)));
        checker.observe(1, 0, &with_identity(1, raft_view(2, true, 10, 10)));
        checker.observe(1, 1, &with_identity(8, raft_view(2, false, 5, 0)));
        checker.observe(1, 2, &with_identity(3, raft_view(2, false, 5, 4)));
        checker.end_step(1);
        assert!(!checker.any_violation(), "{:?}", checker.results());
    }
}

//! Safety invariants read from node observations after every simulation step: at most one
//! leader per term, applied sequences are prefixes of one another, and an entry a node has
//! applied never changes. Incremental: each step only looks at what is new.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::schedule::node_name;
use crate::sut::{AppliedEntry, NodeView, ReplicaDigest};

pub const ONE_LEADER_PER_TERM: &str = "one leader per term";
pub const APPLIED_PREFIXES: &str = "applied sequences are prefixes of one another";
pub const COMMITTED_NEVER_CHANGE: &str = "committed entries never change";
pub const REPLICAS_AGREE: &str = "replicas hold the same state at equal applied indexes";

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
struct Violation {
    time_ns: u64,
    detail: String,
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
    /// The first replica state seen at each applied index: (state, node).
    states_by_index: BTreeMap<u64, (ReplicaDigest, usize)>,
    diverged: Option<Violation>,
    max_commit_index: u64,
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
            states_by_index: BTreeMap::new(),
            diverged: None,
            max_commit_index: 0,
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

    /// Takes node `node`'s latest observation into account.
    pub fn observe(&mut self, time_ns: u64, node: usize, view: &NodeView) {
        assert!(node < self.nodes, "node {node} out of range");
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
        if let Some(state) = view.state.as_ref().filter(|_| view.running) {
            self.observe_state(time_ns, node, state);
        }
        self.applied_counts[node] = view.applied_count.max(self.applied_counts[node]);
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
            || self.diverged.is_some()
    }

    pub fn results(&self) -> Vec<InvariantResult> {
        let result = |name, violation: &Option<Violation>| InvariantResult {
            name,
            ok: violation.is_none(),
            detail: violation
                .as_ref()
                .map(|v| format!("{} (at {:.3} s)", v.detail, v.time_ns as f64 / 1e9)),
        };
        vec![
            result(ONE_LEADER_PER_TERM, &self.one_leader),
            result(APPLIED_PREFIXES, &self.prefixes),
            result(COMMITTED_NEVER_CHANGE, &self.committed),
            result(REPLICAS_AGREE, &self.diverged),
        ]
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
}

//! What the harness reads from a node to check Raft invariants: role, term and leader (one
//! leader per term), the applied sequence (log matching: applied sequences of all nodes are
//! prefixes of one another) and the terms this node led.

use std::collections::BTreeMap;

use crate::raft::{LogIndex, NodeId, Role, Term};

/// One applied log entry: its position, term and a digest of its payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct AppliedEntry {
    pub index: LogIndex,
    pub term: Term,
    pub digest: u64,
}

impl AppliedEntry {
    /// An entry this node did not apply one by one: its state came with a snapshot. Term 0
    /// never occurs in a real entry.
    pub fn from_snapshot(index: LogIndex) -> AppliedEntry {
        AppliedEntry {
            index,
            term: 0,
            digest: 0,
        }
    }

    pub fn is_from_snapshot(&self) -> bool {
        self.term == 0
    }
}

/// The replicated state of one replica at its `state_digest` index: values by key and the
/// session table (client id -> last applied seq), which decides deduplication.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReplicaState {
    pub values: BTreeMap<String, i64>,
    pub sessions: BTreeMap<u64, u64>,
}

impl ReplicaState {
    /// What differs between two replicas: keys whose values differ (absent reads as 0) and
    /// clients whose sessions differ, e.g. `keys k1 (3 vs 4); sessions of clients 7`.
    pub fn differences(&self, other: &ReplicaState) -> String {
        let keys: std::collections::BTreeSet<&String> =
            self.values.keys().chain(other.values.keys()).collect();
        let value_diffs: Vec<String> = keys
            .into_iter()
            .filter_map(|key| {
                let (a, b) = (
                    self.values.get(key).copied().unwrap_or(0),
                    other.values.get(key).copied().unwrap_or(0),
                );
                (a != b).then(|| format!("{key} ({a} vs {b})"))
            })
            .collect();
        let clients: std::collections::BTreeSet<&u64> =
            self.sessions.keys().chain(other.sessions.keys()).collect();
        let session_diffs: Vec<String> = clients
            .into_iter()
            .filter(|client| self.sessions.get(client) != other.sessions.get(client))
            .map(|client| client.to_string())
            .collect();
        let mut parts = Vec::new();
        if !value_diffs.is_empty() {
            parts.push(format!("keys {}", value_diffs.join(", ")));
        }
        if !session_diffs.is_empty() {
            const SHOWN: usize = 8;
            let more = session_diffs.len().saturating_sub(SHOWN);
            let mut text = format!(
                "sessions of clients {}",
                session_diffs[..session_diffs.len().min(SHOWN)].join(", ")
            );
            if more > 0 {
                text += &format!(" and {more} more");
            }
            parts.push(text);
        }
        if parts.is_empty() {
            "no key or session differs".to_string()
        } else {
            parts.join("; ")
        }
    }
}

/// A restarted node applied a different entry at an index it had applied before: a safety
/// violation (a committed entry changed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppliedConflict {
    pub earlier: AppliedEntry,
    pub later: AppliedEntry,
}

/// A vote this node granted (a RequestVote answer it sent, not a PreVote one): the term it
/// was cast in and the candidate, both as the node's identities at the time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct GrantedVote {
    pub term: Term,
    pub voter: NodeId,
    pub candidate: NodeId,
}

/// The latest state of one node, as its event loop last recorded it.
#[derive(Clone, Debug)]
pub struct NodeObservation {
    pub id: NodeId,
    /// The node's event loop is running (false before start, after a crash or a fatal error).
    pub running: bool,
    pub paused: bool,
    pub role: Role,
    pub term: Term,
    pub leader: Option<NodeId>,
    pub commit_index: LogIndex,
    /// Term of the entry at `commit_index`, when the node holds it.
    pub commit_term: Option<Term>,
    /// Index of the configuration entry in force (0: the initial configuration).
    pub config_index: LogIndex,
    /// Reads answered on a leader lease alone, in the node's current run.
    pub lease_reads: u64,
    /// Every vote granted since the run started, in the order sent (kept across restarts;
    /// read incrementally with `NodeControl::votes_granted_since`).
    pub votes_granted: Vec<GrantedVote>,
    pub last_applied: LogIndex,
    /// The last index of the node's log.
    pub last_index: LogIndex,
    /// Whom this node voted for in `term`.
    pub voted_for: Option<NodeId>,
    /// Last index covered by the node's latest snapshot (0 without one).
    pub snapshot_index: LogIndex,
    /// The term the node's latest snapshot records for `snapshot_index` (0 without one).
    pub snapshot_term: Term,
    /// The configuration in force at this node (the latest in its log).
    pub voters: Vec<NodeId>,
    pub learners: Vec<NodeId>,
    /// Log entries the node holds after its snapshot (bounded by compaction).
    pub log_entries_count: u64,
    /// (applied index, digest of the counters and sessions at that index): replicas at the
    /// same applied index must have the same digest (see `check_state_digests`).
    pub state_digest: (LogIndex, u64),
    /// The replicated state at `state_digest`'s index (shared, cheap to clone).
    pub replica_state: std::sync::Arc<ReplicaState>,
    /// Every entry applied since the run started, by index (kept across restarts). Entries a
    /// node received inside a snapshot are `AppliedEntry::from_snapshot` placeholders (term 0):
    /// skip them when comparing nodes.
    pub applied: Vec<AppliedEntry>,
    /// Terms in which this node was leader.
    pub leaders_by_term: BTreeMap<Term, NodeId>,
    /// How many times the node has started.
    pub incarnations: u64,
    /// Why the node stopped on its own (storage failure or corruption), if it did.
    pub fatal_error: Option<String>,
    /// Re-applied entries that differ from what this node applied before at that index.
    pub applied_conflicts: Vec<AppliedConflict>,
}

impl NodeObservation {
    pub(crate) fn new(id: NodeId) -> Self {
        NodeObservation {
            id,
            running: false,
            paused: false,
            role: Role::Follower,
            term: 0,
            leader: None,
            commit_index: 0,
            commit_term: None,
            config_index: 0,
            lease_reads: 0,
            votes_granted: Vec::new(),
            last_applied: 0,
            last_index: 0,
            voted_for: None,
            snapshot_index: 0,
            snapshot_term: 0,
            voters: Vec::new(),
            learners: Vec::new(),
            log_entries_count: 0,
            state_digest: (0, 0),
            replica_state: Default::default(),
            applied: Vec::new(),
            leaders_by_term: BTreeMap::new(),
            incarnations: 0,
            fatal_error: None,
            applied_conflicts: Vec::new(),
        }
    }

    pub(crate) fn clone_without_applied(&self) -> Self {
        NodeObservation {
            id: self.id,
            running: self.running,
            paused: self.paused,
            role: self.role,
            term: self.term,
            leader: self.leader,
            commit_index: self.commit_index,
            commit_term: self.commit_term,
            config_index: self.config_index,
            lease_reads: self.lease_reads,
            votes_granted: Vec::new(),
            last_applied: self.last_applied,
            last_index: self.last_index,
            voted_for: self.voted_for,
            snapshot_index: self.snapshot_index,
            snapshot_term: self.snapshot_term,
            voters: self.voters.clone(),
            learners: self.learners.clone(),
            log_entries_count: self.log_entries_count,
            state_digest: self.state_digest,
            replica_state: self.replica_state.clone(),
            applied: Vec::new(),
            leaders_by_term: self.leaders_by_term.clone(),
            incarnations: self.incarnations,
            fatal_error: self.fatal_error.clone(),
            applied_conflicts: self.applied_conflicts.clone(),
        }
    }
}

/// Checks that applied sequences agree: for every index applied by two nodes, the entries are
/// equal (entries a node received inside a snapshot are not compared). Returns a description of the first disagreement.
pub fn check_applied_prefixes(observations: &[NodeObservation]) -> Result<(), String> {
    for (i, a) in observations.iter().enumerate() {
        for b in &observations[i + 1..] {
            let differ = |(x, y): &(&AppliedEntry, &AppliedEntry)| {
                x != y && !x.is_from_snapshot() && !y.is_from_snapshot()
            };
            if let Some((x, y)) = a.applied.iter().zip(&b.applied).find(differ) {
                return Err(format!(
                    "node {} applied {:?} but node {} applied {:?} at index {}",
                    a.id, x, b.id, y, x.index
                ));
            }
        }
    }
    Ok(())
}

/// Checks that replicas which applied up to the same index hold the same state (a replica that
/// skipped or double-applied entries, e.g. after restoring a bad snapshot, differs).
pub fn check_state_digests(observations: &[NodeObservation]) -> Result<(), String> {
    let mut by_index: BTreeMap<LogIndex, (NodeId, u64)> = BTreeMap::new();
    for observation in observations
        .iter()
        .filter(|observation| observation.running)
    {
        let (index, digest) = observation.state_digest;
        if index == 0 {
            continue;
        }
        if let Some(&(other, other_digest)) = by_index.get(&index) {
            if other_digest != digest {
                return Err(format!(
                    "nodes {other} and {} applied up to index {index} but hold different states",
                    observation.id
                ));
            }
        }
        by_index.insert(index, (observation.id, digest));
    }
    Ok(())
}

/// Checks that no term had two leaders.
pub fn check_one_leader_per_term(observations: &[NodeObservation]) -> Result<(), String> {
    let mut leaders: BTreeMap<Term, NodeId> = BTreeMap::new();
    for observation in observations {
        for (&term, &leader) in &observation.leaders_by_term {
            if let Some(&other) = leaders.get(&term) {
                if other != leader {
                    return Err(format!("term {term} had two leaders: {other} and {leader}"));
                }
            }
            leaders.insert(term, leader);
        }
    }
    Ok(())
}

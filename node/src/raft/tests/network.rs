//! A deterministic in-test network of `RaftNode`s: every message is held in flight until the
//! test delivers, drops, duplicates or reorders it. Each node's `Ready` is handled exactly as
//! the contract says (persist, then send, then apply), disks survive crashes, and a safety
//! checker runs after every step.

use std::collections::{BTreeMap, BTreeSet};

use super::super::{
    AppendOutcome, Config, Entry, HardState, LogIndex, Message, MessageBody, NodeId, RaftNode,
    RecoveredState, Role, Snapshot, Term,
};

/// What a node has persisted: all that survives a crash.
#[derive(Clone, Debug, Default)]
pub(crate) struct Disk {
    pub(crate) hard_state: HardState,
    /// The log after `snapshot`.
    pub(crate) entries: Vec<Entry>,
    pub(crate) snapshot: Option<Snapshot>,
}

impl Disk {
    fn snapshot_index(&self) -> LogIndex {
        self.snapshot
            .as_ref()
            .map_or(0, |snapshot| snapshot.meta.index)
    }
}

/// The test's "state machine" in a snapshot: a digest of the committed entries it covers.
pub(crate) fn digest_of(entries: &[Entry]) -> Vec<u8> {
    let mut digest: u64 = 0xcbf2_9ce4_8422_2325;
    for entry in entries {
        for value in [entry.index, entry.term] {
            digest = (digest ^ value).wrapping_mul(0x0100_0000_01b3);
        }
    }
    digest.to_le_bytes().to_vec()
}

/// Raft's safety properties, checked over everything the nodes ever did.
#[derive(Debug, Default)]
pub(crate) struct SafetyChecker {
    /// Election safety: at most one leader per term.
    pub(crate) leaders_by_term: BTreeMap<Term, NodeId>,
    /// The committed sequence, as far as any node has ever known it committed.
    pub(crate) committed: Vec<Entry>,
    /// For each committed entry, the term of the node that first knew it committed (the
    /// leader that committed it): leaders of later terms must hold it.
    commit_terms: Vec<Term>,
    /// Per live node: last index handed out for applying (volatile state machine).
    applied: BTreeMap<NodeId, LogIndex>,
    /// ReadIndex requests: committed length when each was asked.
    pub(crate) read_floors: BTreeMap<u64, LogIndex>,
}

impl SafetyChecker {
    fn record_committed(&mut self, node: NodeId, term: Term, entry: &Entry) -> Result<(), String> {
        let position = entry.index as usize - 1;
        if position < self.committed.len() {
            if self.committed[position] != *entry {
                return Err(format!(
                    "state machine safety: node {node} has committed {entry:?} but {:?} was committed at that index",
                    self.committed[position]
                ));
            }
        } else if position == self.committed.len() {
            self.committed.push(entry.clone());
            self.commit_terms.push(term);
        } else {
            return Err(format!(
                "node {node} committed index {} past a gap",
                entry.index
            ));
        }
        Ok(())
    }

    fn on_apply(&mut self, node: NodeId, term: Term, entry: &Entry) -> Result<(), String> {
        let applied = self.applied.entry(node).or_insert(0);
        if entry.index != *applied + 1 {
            return Err(format!(
                "node {node} applied index {} after {}",
                entry.index, applied
            ));
        }
        *applied = entry.index;
        self.record_committed(node, term, entry)
    }
}

pub(crate) struct Network {
    pub(crate) configs: BTreeMap<NodeId, Config>,
    /// Live nodes; a crashed node is absent until restarted.
    pub(crate) nodes: BTreeMap<NodeId, RaftNode>,
    pub(crate) disks: BTreeMap<NodeId, Disk>,
    pub(crate) in_flight: Vec<Message>,
    /// Directed links that drop everything.
    pub(crate) blocked: BTreeSet<(NodeId, NodeId)>,
    pub(crate) safety: SafetyChecker,
    pub(crate) read_states: Vec<(NodeId, u64, LogIndex)>,
    pub(crate) dropped_reads: Vec<u64>,
    /// Panic at the first violation (correct builds) or record it (planted-bug tests).
    pub(crate) strict: bool,
    pub(crate) violation: Option<String>,
    pub(crate) delivered_count: u64,
    /// Frozen nodes (a long GC or SIGSTOP): not ticked, and messages to them wait.
    pub(crate) paused: BTreeSet<NodeId>,
    /// Last applied index of each crashed node, for restarts with a durable state machine.
    pub(crate) applied_at_crash: BTreeMap<NodeId, LogIndex>,
    /// AppendEntries rejections delivered to leaders (backtracking round trips).
    pub(crate) rejections_delivered_count: u64,
    /// Each node compacts its log once this many entries were applied past its snapshot.
    pub(crate) snapshot_every: Option<u64>,
    /// Snapshots installed from a leader, over all nodes.
    pub(crate) snapshots_installed_count: u64,
}

impl Network {
    pub(crate) fn new(configs: Vec<Config>) -> Network {
        let mut network = Network {
            configs: BTreeMap::new(),
            nodes: BTreeMap::new(),
            disks: BTreeMap::new(),
            in_flight: Vec::new(),
            blocked: BTreeSet::new(),
            safety: SafetyChecker::default(),
            read_states: Vec::new(),
            dropped_reads: Vec::new(),
            strict: true,
            violation: None,
            delivered_count: 0,
            paused: BTreeSet::new(),
            applied_at_crash: BTreeMap::new(),
            rejections_delivered_count: 0,
            snapshot_every: None,
            snapshots_installed_count: 0,
        };
        for config in configs {
            let id = config.id;
            network.disks.insert(id, Disk::default());
            network
                .nodes
                .insert(id, RaftNode::new(config.clone(), RecoveredState::default()));
            network.configs.insert(id, config);
        }
        network
    }

    /// `count` voters 1..=count, each config adjusted by `tweak`.
    pub(crate) fn with_nodes(count: u64, seed: u64, tweak: impl Fn(&mut Config)) -> Network {
        let voters: Vec<NodeId> = (1..=count).collect();
        let configs = voters
            .iter()
            .map(|&id| {
                let mut config = Config::new(id, voters.clone(), seed);
                tweak(&mut config);
                config
            })
            .collect();
        Network::new(configs)
    }

    /// Starts a node that joins the running cluster: it knows no configuration and waits
    /// for a leader's log to make it a member.
    pub(crate) fn add_joining_node(&mut self, id: NodeId, bootstrap_voters: &[NodeId], seed: u64) {
        let config = Config::new(id, bootstrap_voters.to_vec(), seed);
        self.disks.insert(id, Disk::default());
        self.nodes
            .insert(id, RaftNode::new(config.clone(), RecoveredState::default()));
        self.configs.insert(id, config);
    }

    pub(crate) fn node(&self, id: NodeId) -> &RaftNode {
        self.nodes
            .get(&id)
            .unwrap_or_else(|| panic!("node {id} is down"))
    }

    pub(crate) fn node_mut(&mut self, id: NodeId) -> &mut RaftNode {
        self.nodes
            .get_mut(&id)
            .unwrap_or_else(|| panic!("node {id} is down"))
    }

    pub(crate) fn leaders(&self) -> Vec<NodeId> {
        self.nodes
            .values()
            .filter(|node| node.role == Role::Leader)
            .map(|node| node.config.id)
            .collect()
    }

    fn report(&mut self, problem: String) {
        if self.strict {
            panic!("safety violation: {problem}");
        }
        if self.violation.is_none() {
            self.violation = Some(problem);
        }
    }

    /// Handles every pending Ready of `id` as the contract says: persist, send, apply.
    pub(crate) fn process_ready(&mut self, id: NodeId) {
        let Some(node) = self.nodes.get_mut(&id) else {
            return;
        };
        if !node.has_ready() {
            return;
        }
        let ready = node.take_ready();
        let term = node.term;
        assert!(!node.has_ready(), "node {id}: take_ready left work behind");
        let disk = self.disks.get_mut(&id).expect("disk");
        let mut problems = Vec::new();
        if let Some(snapshot) = &ready.snapshot {
            let index = snapshot.meta.index;
            let expected = self.safety.committed.get(..index as usize).map(digest_of);
            if expected.is_some_and(|expected| expected != snapshot.data) {
                problems.push(format!(
                    "node {id} installed a snapshot at {index} that disagrees with the committed entries"
                ));
            }
            disk.snapshot = Some(snapshot.clone());
            disk.entries.clear();
            self.safety.applied.insert(id, index);
            self.snapshots_installed_count += 1;
        }
        if let Some(hard_state) = ready.hard_state {
            disk.hard_state = hard_state;
        }
        if let Some(first) = ready.entries.first() {
            let base = disk.snapshot_index();
            disk.entries.truncate((first.index - base) as usize - 1);
            disk.entries.extend(ready.entries.iter().cloned());
        }
        for message in ready.messages {
            // Durability before sending: a granted vote must already be on disk.
            if let MessageBody::RequestVoteResponse {
                pre_vote: false,
                granted: true,
            } = message.body
            {
                let durable = disk.hard_state.term == message.term
                    && disk.hard_state.voted_for == Some(message.to);
                if !durable {
                    problems.push(format!(
                        "node {id} sent a vote for {} before persisting it",
                        message.to
                    ));
                }
            }
            self.in_flight.push(message);
        }
        for entry in &ready.committed_entries {
            if let Err(problem) = self.safety.on_apply(id, term, entry) {
                problems.push(problem);
            }
        }
        for read in ready.read_states {
            let floor = self
                .safety
                .read_floors
                .get(&read.request_id)
                .copied()
                .unwrap_or(0);
            if read.index < floor {
                problems.push(format!(
                    "linearizable read {} served at index {} but index {floor} was already committed when it was asked",
                    read.request_id, read.index
                ));
            }
            self.read_states.push((id, read.request_id, read.index));
        }
        self.dropped_reads.extend(ready.dropped_read_requests);
        for problem in problems {
            self.report(problem);
        }
        if let Some(every) = self.snapshot_every {
            let node = &self.nodes[&id];
            let applied = node.log.applied();
            if applied >= node.log.snapshot_index() + every {
                self.compact(id, applied);
            }
        }
    }

    /// `id` snapshots its state machine at `index` (applied) and compacts its log and disk.
    pub(crate) fn compact(&mut self, id: NodeId, index: LogIndex) {
        let data = digest_of(&self.safety.committed[..index as usize]);
        let snapshot = self
            .node_mut(id)
            .compact(index, data)
            .expect("compaction at an applied index");
        let disk = self.disks.get_mut(&id).expect("disk");
        let drop_count = (index - disk.snapshot_index()) as usize;
        disk.entries.drain(..drop_count.min(disk.entries.len()));
        disk.snapshot = Some(snapshot);
    }

    /// Election safety, log matching, leader completeness and committed-prefix agreement.
    pub(crate) fn check_safety(&mut self) {
        let mut problems = Vec::new();
        for (&id, node) in &self.nodes {
            if node.role == Role::Leader {
                match self.safety.leaders_by_term.get(&node.term) {
                    Some(&leader) if leader != id => problems.push(format!(
                        "election safety: nodes {leader} and {id} both lead term {}",
                        node.term
                    )),
                    Some(_) => {}
                    None => {
                        self.safety.leaders_by_term.insert(node.term, id);
                        // Leader completeness: a new leader holds every entry committed in
                        // an earlier term.
                        let committed = self.safety.committed.iter().zip(&self.safety.commit_terms);
                        for (entry, &commit_term) in committed {
                            if commit_term < node.term
                                && entry.index >= node.log.snapshot_index()
                                && node.log.term(entry.index) != Some(entry.term)
                            {
                                problems.push(format!(
                                    "leader completeness: node {id} leads term {} without committed {entry:?}",
                                    node.term
                                ));
                                break;
                            }
                        }
                    }
                }
            }
        }
        let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
        for &id in &ids {
            let node = &self.nodes[&id];
            let last_index = node.log.last_index();
            if node.log.committed() > last_index {
                problems.push(format!(
                    "node {id} lost committed entries: commit {} but last index {last_index}",
                    node.log.committed()
                ));
            }
            let upto = node.log.committed().min(last_index);
            let entries = node
                .log
                .slice(node.log.snapshot_index() + 1, upto + 1)
                .to_vec();
            for entry in &entries {
                if let Err(problem) = self.safety.record_committed(id, node.term, entry) {
                    problems.push(problem);
                    break;
                }
            }
        }
        // Log matching: same index and term means identical prefixes.
        for (position, &a) in ids.iter().enumerate() {
            for &b in &ids[position + 1..] {
                let (log_a, log_b) = (&self.nodes[&a].log, &self.nodes[&b].log);
                let low = log_a.snapshot_index().max(log_b.snapshot_index());
                let mut index = log_a.last_index().min(log_b.last_index());
                while index > low && log_a.term(index) != log_b.term(index) {
                    index -= 1;
                }
                if index > low && log_a.slice(low + 1, index + 1) != log_b.slice(low + 1, index + 1)
                {
                    problems.push(format!(
                        "log matching: nodes {a} and {b} agree on index {index} but not before"
                    ));
                }
            }
        }
        for problem in problems {
            self.report(problem);
        }
    }

    pub(crate) fn settle(&mut self, id: NodeId) {
        self.process_ready(id);
        self.check_safety();
    }

    pub(crate) fn tick(&mut self, id: NodeId) {
        if self.paused.contains(&id) {
            return;
        }
        if let Some(node) = self.nodes.get_mut(&id) {
            node.tick();
            self.settle(id);
        }
    }

    pub(crate) fn tick_all(&mut self) {
        for id in self.configs.keys().copied().collect::<Vec<_>>() {
            self.tick(id);
        }
    }

    /// Delivers the message at `position` (dropped if its link is blocked or target is down).
    pub(crate) fn deliver(&mut self, position: usize) {
        let message = self.in_flight.remove(position);
        if self.blocked.contains(&(message.from, message.to)) {
            return;
        }
        let to = message.to;
        if let Some(node) = self.nodes.get_mut(&to) {
            self.delivered_count += 1;
            if let MessageBody::AppendEntriesResponse {
                outcome: AppendOutcome::Rejected { .. },
            } = message.body
            {
                self.rejections_delivered_count += 1;
            }
            node.step(message);
            self.settle(to);
        }
    }

    /// Delivers in FIFO order until nothing is in flight.
    pub(crate) fn deliver_all(&mut self) {
        self.deliver_until(|_| false);
    }

    /// Delivers in FIFO order until `done` holds or nothing is in flight.
    pub(crate) fn deliver_until(&mut self, done: impl Fn(&Network) -> bool) {
        let mut steps = 0;
        while !done(self) {
            // Messages to a paused node wait for it to resume.
            let Some(position) = self
                .in_flight
                .iter()
                .position(|m| !self.paused.contains(&m.to))
            else {
                return;
            };
            self.deliver(position);
            steps += 1;
            assert!(steps < 1_000_000, "the network never went quiet");
        }
    }

    /// Cuts `id` off from everyone (both directions); messages in flight on those links are lost.
    pub(crate) fn isolate(&mut self, id: NodeId) {
        for &other in self.configs.keys() {
            if other != id {
                self.blocked.insert((id, other));
                self.blocked.insert((other, id));
            }
        }
        self.drop_blocked_in_flight();
    }

    pub(crate) fn cut(&mut self, a: NodeId, b: NodeId) {
        self.blocked.insert((a, b));
        self.blocked.insert((b, a));
        self.drop_blocked_in_flight();
    }

    pub(crate) fn heal(&mut self) {
        self.blocked.clear();
    }

    fn drop_blocked_in_flight(&mut self) {
        let blocked = self.blocked.clone();
        self.in_flight
            .retain(|m| !blocked.contains(&(m.from, m.to)));
    }

    pub(crate) fn crash(&mut self, id: NodeId) {
        self.nodes.remove(&id);
        let applied = self.safety.applied.remove(&id).unwrap_or(0);
        self.applied_at_crash.insert(id, applied);
    }

    /// A new core from exactly what was persisted; the state machine is rebuilt by
    /// re-applying the log from the start.
    pub(crate) fn restart(&mut self, id: NodeId) {
        self.restart_with_applied(id, 0);
    }

    /// As `restart`, but the state machine was durable: the core resumes after what it had
    /// applied before the crash.
    pub(crate) fn restart_keeping_state_machine(&mut self, id: NodeId) {
        let applied = self.applied_at_crash.get(&id).copied().unwrap_or(0);
        self.restart_with_applied(id, applied);
    }

    fn restart_with_applied(&mut self, id: NodeId, applied_index: LogIndex) {
        assert!(!self.nodes.contains_key(&id), "node {id} is running");
        let disk = self.disks[&id].clone();
        // A state machine restored from the snapshot resumes after it.
        let applied_index = applied_index.max(disk.snapshot_index());
        if applied_index > 0 {
            self.safety.applied.insert(id, applied_index);
        }
        let recovered = RecoveredState {
            hard_state: disk.hard_state,
            entries: disk.entries,
            applied_index,
            snapshot: disk.snapshot,
        };
        self.nodes
            .insert(id, RaftNode::new(self.configs[&id].clone(), recovered));
        self.check_safety();
    }

    /// As if no heartbeat arrived for a while: leases expire, so votes are not ignored.
    pub(crate) fn expire_leases(&mut self) {
        for node in self.nodes.values_mut() {
            let timeout_ticks = node.config.election_timeout_min_ticks;
            node.election_elapsed_ticks = node.election_elapsed_ticks.max(timeout_ticks);
            node.ticks_elapsed = node.ticks_elapsed.max(u64::from(timeout_ticks));
        }
    }

    /// `id`'s election timer fires (after leases expired) until it wins, delivering everything.
    pub(crate) fn elect(&mut self, id: NodeId) {
        for _attempt in 0..5 {
            self.expire_leases();
            self.node_mut(id).start_election();
            self.settle(id);
            self.deliver_until(|network| {
                network
                    .nodes
                    .get(&id)
                    .is_some_and(|node| node.role == Role::Leader)
            });
            if self.node(id).role == Role::Leader {
                self.deliver_all();
                return;
            }
        }
        panic!("node {id} could not win an election");
    }

    pub(crate) fn propose(&mut self, id: NodeId, payload: &[u8]) -> (Term, LogIndex) {
        let proposed = self
            .node_mut(id)
            .propose(payload.to_vec())
            .expect("proposal on the leader");
        self.settle(id);
        proposed
    }

    pub(crate) fn read_index(&mut self, id: NodeId, request_id: u64) {
        let floor = self.safety.committed.len() as LogIndex;
        self.safety.read_floors.insert(request_id, floor);
        self.node_mut(id)
            .read_index(request_id)
            .expect("read on the leader");
        self.settle(id);
    }

    pub(crate) fn committed_count(&self) -> usize {
        self.safety.committed.len()
    }
}

//! A core-only cluster (no IO, no timers) that measures catching a node up: a leader and one
//! follower commit `entries_count` entries while a third node is down, then the third node
//! comes back and is caught up, by InstallSnapshot when the others compacted their logs, or
//! entry by entry otherwise. Shared by `tests/snapshot_catch_up.rs` and the `catch_up` bench.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use minos_node::raft::{Config, Message, MessageBody, NodeId, RaftNode, RecoveredState, Role};

pub struct CatchUp {
    nodes: BTreeMap<NodeId, RaftNode>,
    inbox: VecDeque<Message>,
    down: BTreeSet<NodeId>,
    snapshot_every: Option<u64>,
    /// Per node: the "state machine", a running sum of applied indexes.
    state: BTreeMap<NodeId, u64>,
    /// Messages delivered to the lagging node while catching up, and entries they carried.
    pub catch_up_messages_count: u64,
    pub catch_up_entries_count: u64,
    pub catch_up_snapshot_chunks_count: u64,
}

const LAGGING: NodeId = 3;

impl CatchUp {
    pub fn new(snapshot_every: Option<u64>) -> CatchUp {
        let voters = vec![1, 2, 3];
        let nodes = voters
            .iter()
            .map(|&id| {
                let mut config = Config::new(id, voters.clone(), 5);
                config.max_append_entries_count = 256;
                (id, RaftNode::new(config, RecoveredState::default()))
            })
            .collect();
        CatchUp {
            nodes,
            inbox: VecDeque::new(),
            down: BTreeSet::new(),
            snapshot_every,
            state: BTreeMap::new(),
            catch_up_messages_count: 0,
            catch_up_entries_count: 0,
            catch_up_snapshot_chunks_count: 0,
        }
    }

    fn encode_state(value: u64) -> Vec<u8> {
        value.to_le_bytes().to_vec()
    }

    /// Handles every Ready and delivers every message until the cluster is quiet.
    fn pump(&mut self) {
        loop {
            let mut progressed = false;
            for (&id, node) in self.nodes.iter_mut() {
                while node.has_ready() {
                    progressed = true;
                    let ready = node.take_ready();
                    let state = self.state.entry(id).or_insert(0);
                    if let Some(snapshot) = &ready.snapshot {
                        *state = u64::from_le_bytes(snapshot.data[..8].try_into().unwrap());
                    }
                    for entry in &ready.committed_entries {
                        *state = state.wrapping_add(entry.index);
                    }
                    if !self.down.contains(&id) {
                        self.inbox.extend(
                            ready
                                .messages
                                .into_iter()
                                .filter(|message| !self.down.contains(&message.to)),
                        );
                    }
                    if let Some(every) = self.snapshot_every {
                        let status = node.status();
                        if status.applied_index >= status.snapshot_index + every {
                            node.compact(status.applied_index, Self::encode_state(*state))
                                .expect("compaction at the applied index");
                        }
                    }
                }
            }
            while let Some(message) = self.inbox.pop_front() {
                progressed = true;
                if message.to == LAGGING {
                    self.catch_up_messages_count += 1;
                    match &message.body {
                        MessageBody::AppendEntries { entries, .. } => {
                            self.catch_up_entries_count += entries.len() as u64
                        }
                        MessageBody::InstallSnapshot { .. } => {
                            self.catch_up_snapshot_chunks_count += 1
                        }
                        _ => {}
                    }
                }
                let to = message.to;
                self.nodes.get_mut(&to).expect("node").step(message);
            }
            if !progressed {
                return;
            }
        }
    }

    fn tick_leader(&mut self) {
        self.nodes.get_mut(&1).expect("leader").tick();
        self.pump();
    }

    /// Node 1 leads; node 3 is down; `entries_count` entries are committed by nodes 1 and 2.
    pub fn commit_without_lagging_node(&mut self, entries_count: u64) {
        self.down.insert(LAGGING);
        while self.nodes[&1].status().role != Role::Leader {
            self.tick_leader();
        }
        let mut proposed = 0;
        while proposed < entries_count {
            for _ in 0..256.min(entries_count - proposed) {
                self.nodes
                    .get_mut(&1)
                    .expect("leader")
                    .propose(proposed.to_le_bytes().to_vec())
                    .expect("node 1 leads");
                proposed += 1;
            }
            self.pump();
        }
        self.catch_up_messages_count = 0;
        self.catch_up_entries_count = 0;
        self.catch_up_snapshot_chunks_count = 0;
    }

    /// Node 3 comes back; heartbeats run until it has applied everything. Returns the ticks
    /// the leader needed.
    pub fn catch_up_lagging_node(&mut self) -> u64 {
        self.down.remove(&LAGGING);
        let target = self.nodes[&1].status().commit_index;
        let mut ticks = 0;
        while self.nodes[&LAGGING].status().applied_index < target {
            self.tick_leader();
            ticks += 1;
            assert!(ticks < 1_000_000, "node 3 never caught up");
        }
        assert_eq!(
            self.state[&LAGGING], self.state[&1],
            "the caught-up state machine differs from the leader's"
        );
        ticks
    }

    pub fn lagging_snapshot_index(&self) -> u64 {
        self.nodes[&LAGGING].status().snapshot_index
    }

    pub fn leader_log_entries_count(&self) -> usize {
        self.nodes[&1].log_entries_count()
    }
}

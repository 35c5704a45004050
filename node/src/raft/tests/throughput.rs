//! Measurement, not a timing assertion: how fast the core commits and ticks without IO.
//! Run with `cargo test --release -p minos-node raft::tests::throughput -- --ignored
//! --nocapture`; the figures go in the engineer's report. The assertions check only that the
//! work was done (every proposal committed everywhere).

use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;

use super::super::{Config, Message, NodeId, RaftNode, RecoveredState, Role};

struct Cluster {
    nodes: BTreeMap<NodeId, RaftNode>,
    queue: VecDeque<Message>,
    applied_count: u64,
}

impl Cluster {
    fn new(count: u64) -> Cluster {
        let voters: Vec<NodeId> = (1..=count).collect();
        let nodes = voters
            .iter()
            .map(|&id| {
                (
                    id,
                    RaftNode::new(
                        Config::new(id, voters.clone(), 1),
                        RecoveredState::default(),
                    ),
                )
            })
            .collect();
        Cluster {
            nodes,
            queue: VecDeque::new(),
            applied_count: 0,
        }
    }

    fn drain(&mut self, id: NodeId) {
        let node = self.nodes.get_mut(&id).expect("node");
        while node.has_ready() {
            let ready = node.take_ready();
            self.applied_count += ready.committed_entries.len() as u64;
            self.queue.extend(ready.messages);
        }
    }

    fn run_until_quiet(&mut self) {
        let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
        for id in ids {
            self.drain(id);
        }
        while let Some(message) = self.queue.pop_front() {
            let to = message.to;
            self.nodes.get_mut(&to).expect("node").step(message);
            self.drain(to);
        }
    }

    fn leader(&self) -> NodeId {
        self.nodes
            .values()
            .find(|node| node.role == Role::Leader)
            .map(|node| node.config.id)
            .expect("a leader")
    }
}

#[test]
#[ignore = "measurement; run in release with --ignored --nocapture"]
fn measure_core_throughput() {
    let mut cluster = Cluster::new(5);
    while cluster.nodes.values().all(|node| node.role != Role::Leader) {
        for node in cluster.nodes.values_mut() {
            node.tick();
        }
        cluster.run_until_quiet();
    }
    let leader = cluster.leader();
    let mut commands = 0;
    for (rounds, batch) in [(20_000u64, 1u64), (2_000, 50)] {
        let started = Instant::now();
        for round in 0..rounds {
            for i in 0..batch {
                let payload = (round * batch + i).to_be_bytes().to_vec();
                cluster
                    .nodes
                    .get_mut(&leader)
                    .unwrap()
                    .propose(payload)
                    .expect("leader");
            }
            cluster.run_until_quiet();
        }
        let elapsed = started.elapsed();
        commands += rounds * batch;
        println!(
            "5 voters, {} commands in batches of {batch}: {:.0} commands/s committed on all nodes ({:.2} us per command)",
            rounds * batch,
            (rounds * batch) as f64 / elapsed.as_secs_f64(),
            elapsed.as_secs_f64() * 1e6 / (rounds * batch) as f64
        );
    }
    let last = cluster.nodes[&leader].status().last_index;
    for node in cluster.nodes.values() {
        assert_eq!(
            node.status().commit_index,
            last,
            "every proposal committed on node {}",
            node.config.id
        );
    }

    // Tick cost on a leader holding a 100k-entry log: independent of the log length.
    let ticks = 1_000_000u32;
    let started = Instant::now();
    for _ in 0..ticks {
        cluster.nodes.get_mut(&leader).unwrap().tick();
        let node = cluster.nodes.get_mut(&leader).unwrap();
        // Drop the heartbeats: this measures the core alone.
        if node.has_ready() {
            node.take_ready();
        }
    }
    let elapsed = started.elapsed();
    println!(
        "leader tick + take_ready with a {last}-entry log, 4 peers: {:.0} ns per tick",
        elapsed.as_secs_f64() * 1e9 / f64::from(ticks)
    );
    assert!(cluster.applied_count >= commands * 5);
}

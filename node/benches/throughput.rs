//! Throughput figures (a benchmark, not a test): committed adds per second
//! - in simulated time for 3- and 5-node clusters under turmoil (and the wall-clock cost),
//! - on real UDP sockets and real fsynced files on loopback (nodes as tasks of one process),
//! - and the cost of encoding/decoding the wire messages.
//!
//! Run: `cargo bench -p minos-node --bench throughput`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, UNIX_EPOCH};

use minos_node::protocol::Wire;
use minos_node::raft::{Entry, EntryPayload, Message, MessageBody};
use minos_node::store::{Command, StoreOp};
use minos_node::{Client, ClientConfig, Network, NodeControl, NodeOptions, OpOutcome};

fn simulated(nodes: u64, clients: u64, simulated_secs: u64) {
    let mut sim = turmoil::Builder::new()
        .simulation_duration(Duration::from_secs(3600))
        .epoch(UNIX_EPOCH)
        .min_message_latency(Duration::from_millis(1))
        .max_message_latency(Duration::from_millis(5))
        .udp_capacity(4096)
        .rng_seed(7)
        .build();
    let peers: BTreeMap<u64, String> = (1..=nodes).map(|id| (id, format!("n{id}:7000"))).collect();
    for id in 1..=nodes {
        let control = NodeControl::new(id, 7);
        let options = NodeOptions::new(id, peers.clone(), "/data", 7);
        sim.host(format!("n{id}"), move || {
            minos_node::sim::run_node(options.clone(), control.clone())
        });
    }
    let committed = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let cluster: Vec<String> = peers.values().cloned().collect();
    for client_id in 1..=clients {
        let (committed, stop, cluster) = (committed.clone(), stop.clone(), cluster.clone());
        sim.client(format!("c{client_id}"), async move {
            let mut client =
                Client::connect(ClientConfig::new(client_id, cluster, Network::Simulated)).await?;
            while !stop.load(Ordering::Relaxed) {
                if let OpOutcome::Ok(_) = client.add(&format!("k{}", client_id % 4), 1).await {
                    committed.fetch_add(1, Ordering::Relaxed);
                }
            }
            Ok(())
        });
    }
    // Warm up (election), then measure.
    while sim.elapsed() < Duration::from_secs(1) {
        sim.step().unwrap();
    }
    let start_ops = committed.load(Ordering::Relaxed);
    let wall = Instant::now();
    let end = sim.elapsed() + Duration::from_secs(simulated_secs);
    while sim.elapsed() < end {
        sim.step().unwrap();
    }
    let wall_secs = wall.elapsed().as_secs_f64();
    let ops = committed.load(Ordering::Relaxed) - start_ops;
    stop.store(true, Ordering::Relaxed);
    println!(
        "simulated {nodes} nodes, {clients} clients: {:.0} committed adds/s of simulated time; {simulated_secs} s simulated in {wall_secs:.2} s wall ({:.1}x), {:.0} adds/s of wall time",
        ops as f64 / simulated_secs as f64,
        simulated_secs as f64 / wall_secs,
        ops as f64 / wall_secs
    );
}

fn real_loopback(nodes: u64, clients: u64, seconds: u64) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = std::env::temp_dir().join(format!("minos-bench-{}-{nodes}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let ports: Vec<u16> = (0..nodes)
        .map(|_| {
            std::net::UdpSocket::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
        })
        .collect();
    let peers: BTreeMap<u64, String> = (1..=nodes)
        .map(|id| (id, format!("127.0.0.1:{}", ports[id as usize - 1])))
        .collect();
    let ops = runtime.block_on(async {
        for id in 1..=nodes {
            let mut options = NodeOptions::new(id, peers.clone(), dir.join(format!("n{id}")), 7);
            options.listen_port = ports[id as usize - 1];
            tokio::spawn(minos_node::process::run_node(options));
        }
        tokio::time::sleep(Duration::from_millis(800)).await;
        let committed = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let cluster: Vec<String> = peers.values().cloned().collect();
        let mut tasks = Vec::new();
        for client_id in 1..=clients {
            let (committed, stop, cluster) = (committed.clone(), stop.clone(), cluster.clone());
            tasks.push(tokio::spawn(async move {
                let mut client =
                    Client::connect(ClientConfig::new(client_id, cluster, Network::Real))
                        .await
                        .unwrap();
                while !stop.load(Ordering::Relaxed) {
                    if let OpOutcome::Ok(_) = client.add(&format!("k{}", client_id % 4), 1).await {
                        committed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }));
        }
        tokio::time::sleep(Duration::from_secs(seconds)).await;
        stop.store(true, Ordering::Relaxed);
        let ops = committed.load(Ordering::Relaxed);
        for task in tasks {
            let _ = task.await;
        }
        ops
    });
    runtime.shutdown_background();
    let _ = std::fs::remove_dir_all(&dir);
    println!(
        "real loopback (UDP + fsync, nodes in one process), {nodes} nodes, {clients} clients: {:.0} committed adds/s",
        ops as f64 / seconds as f64
    );
}

fn codec() {
    let command = Command {
        client_id: 12,
        seq: 345,
        op: StoreOp::Add {
            key: "k1".into(),
            delta: 5,
        },
    }
    .encode();
    let entries: Vec<Entry> = (1..=64)
        .map(|index| Entry {
            term: 3,
            index,
            payload: EntryPayload::Command(command.clone()),
        })
        .collect();
    let message = Message {
        from: 1,
        to: 2,
        term: 3,
        body: MessageBody::AppendEntries {
            prev_log_index: 0,
            prev_log_term: 0,
            entries,
            leader_commit: 10,
        },
    };
    let wire = Wire::Raft(message);
    let bytes = wire.encode();
    let rounds = 2_000;
    let start = Instant::now();
    for _ in 0..rounds {
        let encoded = wire.encode();
        let decoded = Wire::decode(&encoded).unwrap();
        std::hint::black_box(decoded);
    }
    let per_round = start.elapsed() / rounds;
    println!(
        "codec: AppendEntries with 64 adds = {} bytes on the wire; encode+decode {:.1} us ({:.2} us per entry)",
        bytes.len(),
        per_round.as_secs_f64() * 1e6,
        per_round.as_secs_f64() * 1e6 / 64.0
    );
}

fn main() {
    codec();
    simulated(3, 20, 10);
    simulated(5, 20, 10);
    real_loopback(3, 20, 3);
    real_loopback(5, 20, 3);
}

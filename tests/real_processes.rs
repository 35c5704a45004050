//! Three real `minos node` processes on 127.0.0.1, driven through `minos client`: adds, a
//! SIGKILL of the leader, more adds, a restart, and then every node's durable log must replay
//! to the same total, consistent with what the clients were told. And a cluster grown from
//! one bootstrapped process with `minos client add-member`, whose first member is removed.

use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use minos_node::bugs::Bugs;
use minos_node::raft::EntryPayload;
use minos_node::storage::{RealDisk, Storage};
use minos_node::store::{Command as StoreCommand, CounterStore};

const BIN: &str = env!("CARGO_BIN_EXE_minos");

fn free_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Cluster {
    dir: PathBuf,
    ports: Vec<u16>,
    children: Vec<Option<Child>>,
    /// Extra `minos node` arguments for every node.
    node_args: Vec<String>,
}

impl Cluster {
    fn start(dir: PathBuf) -> Cluster {
        Cluster::start_with(dir, &[])
    }

    fn start_with(dir: PathBuf, node_args: &[&str]) -> Cluster {
        let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let mut cluster = Cluster {
            dir,
            ports,
            children: vec![None, None, None],
            node_args: node_args.iter().map(|arg| arg.to_string()).collect(),
        };
        for id in 1..=3 {
            cluster.start_node(id);
        }
        cluster
    }

    fn peers(&self) -> String {
        self.ports
            .iter()
            .enumerate()
            .map(|(i, port)| format!("{}=127.0.0.1:{port}", i + 1))
            .collect::<Vec<_>>()
            .join(",")
    }

    fn addresses(&self) -> String {
        self.ports
            .iter()
            .map(|port| format!("127.0.0.1:{port}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    fn data_dir(&self, id: usize) -> PathBuf {
        self.dir.join(format!("n{id}"))
    }

    fn log_path(&self, id: usize) -> PathBuf {
        self.dir.join(format!("n{id}.log"))
    }

    fn start_node(&mut self, id: usize) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path(id))
            .unwrap();
        let child = Command::new(BIN)
            .args(["node", "--id", &id.to_string()])
            .args(["--listen", &format!("127.0.0.1:{}", self.ports[id - 1])])
            .args(["--peers", &self.peers()])
            .arg("--data-dir")
            .arg(self.data_dir(id))
            .args(&self.node_args)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start minos node");
        self.children[id - 1] = Some(child);
    }

    fn kill(&mut self, id: usize) {
        if let Some(mut child) = self.children[id - 1].take() {
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
        }
    }

    /// The node that most recently logged "became leader" with the highest term.
    fn leader(&self) -> Option<usize> {
        let mut best: Option<(u64, usize)> = None;
        for id in 1..=3 {
            let text = std::fs::read_to_string(self.log_path(id)).unwrap_or_default();
            for line in text.lines().filter(|line| line.contains("became leader")) {
                let term = line
                    .split("term=")
                    .nth(1)
                    .and_then(|rest| rest.split_whitespace().next())
                    .and_then(|t| t.parse().ok());
                if let Some(term) = term {
                    if best.is_none_or(|(best_term, _)| term > best_term) {
                        best = Some((term, id));
                    }
                }
            }
        }
        best.map(|(_, id)| id)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for id in 1..=3 {
            self.kill(id);
        }
    }
}

#[derive(Default)]
struct Tally {
    ok_sum: i64,
    unknown_sum: i64,
    ok_count: usize,
}

fn client(cluster: &Cluster, args: &[&str]) -> (i32, String) {
    let output = Command::new(BIN)
        .args([
            "client",
            "--cluster",
            &cluster.addresses(),
            "--timeout-ms",
            "5000",
        ])
        .args(args)
        .output()
        .expect("run minos client");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).trim().to_string(),
    )
}

fn add(cluster: &Cluster, tally: &mut Tally, delta: i64) {
    let (code, stdout) = client(cluster, &["add", "k", &delta.to_string()]);
    match code {
        0 => {
            tally.ok_sum += delta;
            tally.ok_count += 1;
            assert!(stdout.parse::<i64>().is_ok(), "add printed {stdout:?}");
        }
        1 => {}
        2 => tally.unknown_sum += delta,
        other => panic!("minos client add exited {other}"),
    }
}

/// Replays a node's durable log through the state machine.
fn replay_total(data_dir: &Path) -> (i64, usize) {
    let recovered = Storage::<RealDisk>::inspect(&RealDisk, data_dir).expect("read node storage");
    // A compacted log starts after the snapshot, which holds the state up to there.
    let mut store = match &recovered.snapshot {
        Some(snapshot) => CounterStore::decode_snapshot(&snapshot.data, Bugs::NONE).unwrap(),
        None => CounterStore::new(Bugs::NONE),
    };
    for entry in &recovered.entries {
        if let EntryPayload::Command(bytes) = &entry.payload {
            store.apply(&StoreCommand::decode(bytes).unwrap());
        }
    }
    (store.get("k"), recovered.entries.len())
}

#[test]
fn three_processes_survive_a_leader_sigkill() {
    let dir = std::env::temp_dir().join(format!("minos-real-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut cluster = Cluster::start(dir.clone());
    let mut tally = Tally::default();
    for _ in 0..100 {
        add(&cluster, &mut tally, 1);
    }
    assert!(
        tally.ok_count >= 95,
        "only {} of 100 adds succeeded on a healthy cluster",
        tally.ok_count
    );

    let leader = cluster
        .leader()
        .expect("some node logged that it became leader");
    cluster.kill(leader);
    for _ in 0..50 {
        add(&cluster, &mut tally, 2);
    }
    cluster.start_node(leader);
    for _ in 0..20 {
        add(&cluster, &mut tally, 3);
    }
    let (code, read) = client(&cluster, &["read", "k"]);
    assert_eq!(code, 0, "final read failed");
    let read: i64 = read.parse().unwrap();
    assert!(
        tally.ok_sum <= read && read <= tally.ok_sum + tally.unknown_sum,
        "read {read}, ok sum {}",
        tally.ok_sum
    );

    // Let replication reach every node, then stop everyone and replay the durable logs.
    let deadline = Instant::now() + Duration::from_secs(10);
    let totals = loop {
        std::thread::sleep(Duration::from_millis(300));
        let snapshot: Vec<(i64, usize)> = (1..=3)
            .map(|id| replay_total(&cluster.data_dir(id)))
            .collect();
        if snapshot.iter().all(|total| *total == snapshot[0]) || Instant::now() > deadline {
            break snapshot;
        }
    };
    for id in 1..=3 {
        cluster.kill(id);
    }
    assert!(
        totals.iter().all(|total| *total == totals[0]),
        "nodes disagree: {totals:?}"
    );
    assert_eq!(
        totals[0].0, read,
        "the durable logs replay to {} but the cluster read {read}",
        totals[0].0
    );
    drop(cluster);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Polls `minos client members` until the voters are `expected`.
fn wait_voters(cluster: &Cluster, expected: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (code, members) = client(cluster, &["members"]);
        if code == 0 && members.contains(expected) {
            return members;
        }
        assert!(
            Instant::now() < deadline,
            "voters never became {expected}: last answer {members:?} (exit {code})"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn processes_grow_from_one_bootstrapped_node_and_remove_it() {
    let dir = std::env::temp_dir().join(format!("minos-real-members-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let cluster = Cluster::start_with(dir.clone(), &["--bootstrap", "1", "--snapshot-every", "5"]);
    let mut tally = Tally::default();
    for _ in 0..10 {
        add(&cluster, &mut tally, 1);
    }
    assert_eq!(tally.ok_count, 10, "the bootstrap node alone serves adds");
    wait_voters(&cluster, "\"voters\":[1]");
    for id in 2..=3 {
        let address = format!("127.0.0.1:{}", cluster.ports[id - 1]);
        let (code, text) = client(&cluster, &["add-member", &id.to_string(), &address]);
        assert_eq!(code, 0, "add-member {id}: {text}");
        let expected = if id == 2 { "[1,2]" } else { "[1,2,3]" };
        wait_voters(&cluster, &format!("\"voters\":{expected}"));
        for _ in 0..5 {
            add(&cluster, &mut tally, 1);
        }
    }
    let (code, text) = client(&cluster, &["remove-member", "1"]);
    assert_eq!(code, 0, "remove-member 1: {text}");
    wait_voters(&cluster, "\"voters\":[2,3]");
    for _ in 0..5 {
        add(&cluster, &mut tally, 1);
    }
    let (code, read) = client(&cluster, &["read", "k"]);
    assert_eq!(code, 0, "read after removing node 1");
    let read: i64 = read.parse().unwrap();
    assert!(
        tally.ok_sum <= read && read <= tally.ok_sum + tally.unknown_sum,
        "read {read}, ok sum {}",
        tally.ok_sum
    );
    // Asking for nothing to change is refused (exit 1) with a reason.
    let (code, _) = client(&cluster, &["remove-member", "9"]);
    assert_eq!(code, 1);
    drop(cluster);
    std::fs::remove_dir_all(&dir).unwrap();
}

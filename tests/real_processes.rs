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
        let key = dir.join("cluster.key");
        let status = Command::new(BIN).arg("keygen").arg(&key).output().unwrap();
        assert!(status.status.success(), "minos keygen failed: {status:?}");
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

    fn key_path(&self) -> PathBuf {
        self.dir.join("cluster.key")
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
            .arg("--cluster-key")
            .arg(self.key_path())
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
        .arg("--cluster-key")
        .arg(cluster.key_path())
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
        Some(snapshot) => {
            minos_node::server::decode_snapshot_state(&snapshot.data, Bugs::NONE)
                .unwrap()
                .0
        }
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

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// (leader, term, voters) as `minos client members` reports them.
fn members_state(cluster: &Cluster) -> (u64, u64, String) {
    let (code, text) = client(cluster, &["members"]);
    assert_eq!(code, 0, "members: {text}");
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    (
        json["leader"].as_u64().unwrap(),
        json["term"].as_u64().unwrap(),
        json["voters"].to_string(),
    )
}

/// Issue 16 items 9-11 and 13 on real processes: forged datagrams (no envelope, a wrong key,
/// garbage, impossible terms under the right key, replayed and stale admin requests) change
/// neither membership, nor leadership, nor the term; the cluster keeps serving; the drops
/// are logged at a bounded rate; and an authenticated entry contradicting the committed
/// prefix stops the receiving node with exit 1 and a message naming index and terms.
#[test]
fn forged_datagrams_change_nothing_and_a_contradiction_fails_stop() {
    use minos_node::auth::{open_with, seal_with, ClusterKey};
    use minos_node::protocol::{AdminOp, AdminRequest, Wire};
    use minos_node::raft::{Entry, Message, MessageBody};

    let dir = std::env::temp_dir().join(format!("minos-real-forged-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut cluster = Cluster::start(dir.clone());
    let mut tally = Tally::default();
    for _ in 0..5 {
        add(&cluster, &mut tally, 1);
    }
    assert_eq!(tally.ok_count, 5);
    let (leader, term, voters) = members_state(&cluster);
    let follower = (1..=3u64).find(|id| *id != leader).unwrap();
    let key = ClusterKey::load(&cluster.key_path()).unwrap();
    let wrong_key = ClusterKey::for_simulation(99);
    let raft = |to: u64, term: u64, body: MessageBody| {
        Wire::Raft(Message {
            from: leader,
            to,
            term,
            body,
        })
        .encode()
    };
    let admin = |seq: u64, op: AdminOp, to: &str| {
        Wire::Admin(AdminRequest {
            client_id: 77,
            seq,
            to: to.to_string(),
            op,
        })
        .encode()
    };
    let some_node = format!("127.0.0.1:{}", cluster.ports[0]);
    let heartbeat = |_term: u64| MessageBody::Heartbeat {
        leader_commit: 0,
        read_context: 0,
    };
    let mut payloads = vec![
        admin(1, AdminOp::RemoveMember { id: leader }, &some_node),
        admin(2, AdminOp::TransferLeader { to: follower }, &some_node),
        raft(follower, term, MessageBody::TimeoutNow),
        raft(follower, u64::MAX, heartbeat(u64::MAX)),
        raft(
            follower,
            term + 100,
            MessageBody::RequestVote {
                pre_vote: false,
                last_log_index: 1_000_000,
                last_log_term: term + 100,
                leader_transfer: true,
            },
        ),
    ];
    payloads.push(vec![0xff; 300]);
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    // A bound on waiting, not a timing claim: a loaded CI machine answers late.
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let forged_count = 60;
    for round in 0..forged_count {
        for port in &cluster.ports {
            let to = format!("127.0.0.1:{port}");
            for payload in &payloads {
                socket.send_to(payload, &to).unwrap();
                let wrong = seal_with(&wrong_key, now_ms(), round, payload);
                socket.send_to(&wrong, &to).unwrap();
            }
            // Authentic, but an impossible term: refused by the core, never adopted.
            let impossible = raft(follower, u64::MAX, heartbeat(u64::MAX));
            socket
                .send_to(&seal_with(&key, now_ms(), 1_000 + round, &impossible), &to)
                .unwrap();
            // Authentic, but too old to be anything but a replay.
            let stale = admin(3, AdminOp::TransferLeader { to: follower }, &to);
            let stale = seal_with(&key, now_ms() - 120_000, 2_000 + round, &stale);
            socket.send_to(&stale, &to).unwrap();
        }
    }
    // Read every refusal of the flood first: left queued, they fill this socket's receive
    // buffer and the answer below is dropped on arrival.
    {
        let mut buf = vec![0u8; 70_000];
        socket
            .set_read_timeout(Some(Duration::from_millis(1_000)))
            .unwrap();
        while socket.recv_from(&mut buf).is_ok() {}
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
    }
    // One authentic admin request is answered once; the same datagram again is a replay.
    let leader_addr = format!("127.0.0.1:{}", cluster.ports[leader as usize - 1]);
    let members = seal_with(
        &key,
        now_ms(),
        5_000,
        &admin(9, AdminOp::Members, &leader_addr),
    );
    // A datagram can still drop on a full receive buffer after the flood above: resend the
    // same bytes until something answers (a resend the node already saw is refused as a
    // replay, which is what a second answer must say anyway).
    let ask = |bytes: &[u8], to: &str, seq: u64| -> String {
        let mut buf = vec![0u8; 70_000];
        for _attempt in 0..5 {
            socket.send_to(bytes, to).unwrap();
            // Skip the refusals of the stale requests above; wait for the answer to `seq`.
            while let Ok((len, _)) = socket.recv_from(&mut buf) {
                let Ok(opened) = open_with(&key, &buf[..len]) else {
                    continue;
                };
                if let Ok(Wire::Reply(reply)) = Wire::decode(opened.payload) {
                    if reply.seq == seq {
                        return format!("{:?}", reply.outcome);
                    }
                }
            }
        }
        panic!("no reply to the admin request after 5 sends");
    };
    let answers = [
        ask(&members, &leader_addr, 9),
        ask(&members, &leader_addr, 9),
    ];
    assert!(answers[0].contains("ok: true"), "{answers:?}");
    assert!(
        answers[1].contains("ok: false") && answers[1].contains("already seen"),
        "{answers:?}"
    );
    // A request names the node it was sealed for: recorded on its way to the leader, it is
    // refused by every other node (a replay to a node that never saw it).
    let follower_addr = format!("127.0.0.1:{}", cluster.ports[follower as usize - 1]);
    let for_leader = seal_with(
        &key,
        now_ms(),
        5_001,
        &admin(10, AdminOp::TransferLeader { to: follower }, &leader_addr),
    );
    let elsewhere = ask(&for_leader, &follower_addr, 10);
    assert!(
        elsewhere.contains("ok: false") && elsewhere.contains("not for this node"),
        "{elsewhere}"
    );

    std::thread::sleep(Duration::from_millis(1_500));
    assert_eq!(
        members_state(&cluster),
        (leader, term, voters),
        "forged datagrams changed leadership, term or membership"
    );
    for _ in 0..5 {
        add(&cluster, &mut tally, 1);
    }
    assert_eq!(tally.ok_count, 10, "the cluster stopped serving");
    let (code, read) = client(&cluster, &["read", "k"]);
    assert_eq!((code, read.as_str()), (0, "10"));
    for id in 1..=3 {
        let log = std::fs::read_to_string(cluster.log_path(id)).unwrap();
        let warnings = log
            .lines()
            .filter(|line| line.contains("dropping a datagram"))
            .count();
        assert!(log.contains("unauthenticated"), "node {id} log: {log}");
        // Thousands of drops, a handful of lines: one per reporting period and reason burst.
        assert!(
            (1..=3).contains(&warnings),
            "node {id} logged {warnings} drop warnings"
        );
    }

    // An authenticated entry that contradicts the committed prefix: fail-stop, exit 1.
    let conflicting = raft(
        follower,
        term + 1,
        MessageBody::AppendEntries {
            prev_log_index: 0,
            prev_log_term: 0,
            entries: vec![Entry {
                term: term + 1,
                index: 1,
                payload: minos_node::raft::EntryPayload::Command(b"evil".to_vec()),
            }],
            leader_commit: 1,
        },
    );
    let to = format!("127.0.0.1:{}", cluster.ports[follower as usize - 1]);
    socket
        .send_to(&seal_with(&key, now_ms(), 9_000, &conflicting), &to)
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        let child = cluster.children[follower as usize - 1].as_mut().unwrap();
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "node {follower} did not stop");
        std::thread::sleep(Duration::from_millis(50));
    };
    cluster.children[follower as usize - 1] = None;
    assert_eq!(status.code(), Some(1), "fail-stop exit code");
    let log = std::fs::read_to_string(cluster.log_path(follower as usize)).unwrap();
    assert!(
        log.contains("safety violation") && log.contains("index 1"),
        "node {follower} log: {log}"
    );
    assert!(!log.contains("panicked"), "node {follower} panicked: {log}");
    drop(cluster);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Issue 16 items 12 and 13 through the command line: a reused (client id, seq) with another
/// op is refused (exit 1, nothing applied); an oversized key is refused at once (254, no
/// retries); a --data-dir that is a regular file is bad input (254); a key file others may
/// read is refused (254).
#[test]
fn the_cli_refuses_reused_sequence_numbers_oversized_keys_and_bad_paths() {
    let dir = std::env::temp_dir().join(format!("minos-real-refusals-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let cluster = Cluster::start(dir.clone());
    let (code, text) = client(&cluster, &["--client-id", "1", "add", "dup", "1"]);
    assert_eq!((code, text.as_str()), (0, "1"));
    let output = Command::new(BIN)
        .args(["client", "--cluster", &cluster.addresses()])
        .arg("--cluster-key")
        .arg(cluster.key_path())
        .args(["--client-id", "1", "add", "other", "5"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "stderr: {stderr}");
    assert!(stderr.contains("different operation"), "{stderr}");
    assert_eq!(client(&cluster, &["read", "other"]), (0, "0".to_string()));

    let long_key = "k".repeat(70_000);
    let output = Command::new(BIN)
        .args(["client", "--cluster", &cluster.addresses()])
        .arg("--cluster-key")
        .arg(cluster.key_path())
        .args(["add", &long_key, "1"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(254), "stderr: {stderr}");
    assert!(stderr.contains("70000 bytes"), "{stderr}");
    // 254 (bad input) rather than 1/2 after the op timeout: refused before any attempt.
    assert!(stderr.len() < 1_000, "the key is not echoed");

    let file = dir.join("a-file");
    std::fs::write(&file, "x").unwrap();
    let node = |data_dir: &Path, key: &Path| {
        Command::new(BIN)
            .args(["node", "--id", "1", "--listen", "127.0.0.1:0", "--peers"])
            .arg(format!("1=127.0.0.1:{}", free_port()))
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--cluster-key")
            .arg(key)
            .output()
            .unwrap()
    };
    let output = node(&file, &cluster.key_path());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(254), "stderr: {stderr}");
    assert!(stderr.contains("not a directory"), "{stderr}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let loose = dir.join("loose.key");
        std::fs::copy(cluster.key_path(), &loose).unwrap();
        std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o644)).unwrap();
        let output = node(&dir.join("n9"), &loose);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(254), "stderr: {stderr}");
        assert!(stderr.contains("chmod 600"), "{stderr}");
    }
    drop(cluster);
    std::fs::remove_dir_all(&dir).unwrap();
}

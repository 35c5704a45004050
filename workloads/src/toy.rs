//! A toy store over turmoil UDP, to exercise the driver independently of the Raft store and
//! to prove the harness catches a broken system: node `n1` is a fixed primary that holds the
//! counters in memory and forwards every update to the other nodes, fire-and-forget.
//!
//! - [`ToyMode::Primary`]: every op goes to `n1`. Linearizable as long as `n1` is not killed
//!   (its memory is lost on a crash), so partitions between nodes do not hurt it.
//! - [`ToyMode::FollowerReads`]: reads are served from a random node's local copy, which lags
//!   behind the primary: deliberately broken, stale reads.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::rc::Rc;
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use turmoil::net::UdpSocket;

use crate::options::FaultKind;
use crate::sut::{AppliedEntry, NodeFault, NodeView, OpReply, SutClient, SystemUnderTest};
use crate::workload::Op;

const NODE_PORT: u16 = 7000;
const CLIENT_PORT_BASE: u16 = 10_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ToyMode {
    Primary,
    FollowerReads,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
enum ToyOp {
    Read(String),
    Add(String, i64),
    Write(String, i64),
    Cas(String, i64, i64),
}

#[derive(Clone, Debug, Serialize, Deserialize)]
enum Message {
    Request {
        id: u64,
        op: ToyOp,
    },
    /// `ok == false` means the cas compare failed.
    Response {
        id: u64,
        ok: bool,
        value: Option<i64>,
    },
    Update {
        key: String,
        value: i64,
    },
}

/// What the primary exposes to the invariants.
#[derive(Debug, Default)]
struct PrimaryState {
    applied: Vec<AppliedEntry>,
    running: bool,
}

pub struct ToyStore {
    mode: ToyMode,
    nodes: usize,
    seed: u64,
    primary: Rc<RefCell<PrimaryState>>,
}

impl ToyStore {
    pub fn new(mode: ToyMode, nodes: usize, seed: u64) -> ToyStore {
        ToyStore {
            mode,
            nodes,
            seed,
            primary: Rc::default(),
        }
    }
}

fn digest(key: &str, value: i64) -> u64 {
    // FNV-1a: a stable digest, independent of std's randomized hasher.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in key.bytes().chain(value.to_le_bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

async fn run_toy_node(
    index: usize,
    nodes: usize,
    primary: Rc<RefCell<PrimaryState>>,
) -> turmoil::Result {
    let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, NODE_PORT)).await?;
    let is_primary = index == 0;
    if is_primary {
        // A restarted primary starts from empty memory: the toy has no disk.
        let mut state = primary.borrow_mut();
        state.running = true;
    }
    let mut values: BTreeMap<String, i64> = BTreeMap::new();
    let mut buffer = vec![0u8; 64 * 1024];
    tracing::info!(node = index + 1, "toy node started");
    loop {
        let (length, from) = socket.recv_from(&mut buffer).await?;
        let Ok(message) = serde_json::from_slice::<Message>(&buffer[..length]) else {
            tracing::warn!(%from, "dropping a malformed datagram");
            continue;
        };
        match message {
            Message::Update { key, value } => {
                tracing::debug!(key, value, "update from primary");
                values.insert(key, value);
            }
            Message::Request { id, op } => {
                let (ok, value, update) = match op {
                    ToyOp::Read(key) => (true, Some(*values.get(&key).unwrap_or(&0)), None),
                    ToyOp::Add(key, delta) => {
                        let total = values.get(&key).unwrap_or(&0) + delta;
                        (true, Some(total), Some((key, total)))
                    }
                    ToyOp::Write(key, value) => (true, None, Some((key, value))),
                    ToyOp::Cas(key, old, new) => {
                        if *values.get(&key).unwrap_or(&0) == old {
                            (true, None, Some((key, new)))
                        } else {
                            (false, None, None)
                        }
                    }
                };
                if let Some((key, new_value)) = update {
                    if !is_primary {
                        tracing::warn!("a write reached a follower; dropping it");
                        continue;
                    }
                    values.insert(key.clone(), new_value);
                    let index = {
                        let mut state = primary.borrow_mut();
                        let index = state.applied.len() as u64 + 1;
                        state.applied.push(AppliedEntry {
                            index,
                            term: 1,
                            digest: digest(&key, new_value),
                        });
                        index
                    };
                    tracing::info!(key, new_value, index, "applied");
                    let update = serde_json::to_vec(&Message::Update {
                        key,
                        value: new_value,
                    })?;
                    for follower in 1..nodes {
                        socket
                            .send_to(&update, (format!("n{}", follower + 1), NODE_PORT))
                            .await?;
                    }
                }
                let response = serde_json::to_vec(&Message::Response { id, ok, value })?;
                socket.send_to(&response, from).await?;
            }
            Message::Response { .. } => {}
        }
    }
}

impl SystemUnderTest for ToyStore {
    type Client = ToyClient;

    fn name(&self) -> &'static str {
        match self.mode {
            ToyMode::Primary => "toy-primary",
            ToyMode::FollowerReads => "toy-follower-reads",
        }
    }

    fn supported_faults(&self) -> BTreeSet<FaultKind> {
        [
            FaultKind::Partition,
            FaultKind::PartitionOneway,
            FaultKind::Kill,
            // Every host crashes at once: a kill of everything, needing no node cooperation.
            FaultKind::PowerLoss,
        ]
        .into_iter()
        .collect()
    }

    fn register_nodes(&self, sim: &mut turmoil::Sim<'_>, node_names: &[String]) {
        for (index, name) in node_names.iter().enumerate() {
            let primary = self.primary.clone();
            let nodes = self.nodes;
            sim.host(name.as_str(), move || {
                let primary = primary.clone();
                async move {
                    if let Err(error) = run_toy_node(index, nodes, primary).await {
                        tracing::error!(%error, "toy node stopped");
                    }
                    Ok(())
                }
            });
        }
    }

    async fn connect(&self, process: u64) -> std::io::Result<ToyClient> {
        let port = CLIENT_PORT_BASE + (process % 50_000) as u16;
        let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, port)).await?;
        let rng = SmallRng::seed_from_u64(self.seed ^ process.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        Ok(ToyClient {
            socket,
            mode: self.mode,
            nodes: self.nodes,
            next_id: 1,
            rng,
        })
    }

    fn observe(&self, node: usize, applied_from: usize) -> NodeView {
        let state = self.primary.borrow();
        if node != 0 {
            // Followers keep no log; they report nothing to compare.
            return NodeView {
                running: true,
                ..NodeView::default()
            };
        }
        let applied_from = applied_from.min(state.applied.len());
        NodeView {
            running: state.running,
            is_leader: state.running,
            term: 1,
            commit_index: state.applied.len() as u64,
            leader_terms: [1].into_iter().collect(),
            new_applied: state.applied[applied_from..].to_vec(),
            applied_count: state.applied.len(),
            ..NodeView::default()
        }
    }

    fn node_fault(&self, _node: usize, fault: &NodeFault) -> Result<(), String> {
        Err(format!("the toy store does not support {fault:?}"))
    }

    fn set_running(&self, node: usize, running: bool) {
        if node == 0 {
            let mut state = self.primary.borrow_mut();
            state.running = running;
            if running {
                // Its memory is gone: a new life re-applies nothing; keep the record of the old
                // life as it was (the invariants compare against it).
            }
        }
    }
}

pub struct ToyClient {
    socket: UdpSocket,
    mode: ToyMode,
    nodes: usize,
    next_id: u64,
    rng: SmallRng,
}

impl SutClient for ToyClient {
    async fn invoke(&mut self, op: &Op) -> OpReply {
        let id = self.next_id;
        self.next_id += 1;
        let (toy_op, is_read) = match op {
            Op::Read { key } => (ToyOp::Read(key.clone()), true),
            Op::Add { key, delta } => (ToyOp::Add(key.clone(), *delta), false),
            Op::Write { key, value } => (ToyOp::Write(key.clone(), *value), false),
            Op::Cas { key, old, new } => (ToyOp::Cas(key.clone(), *old, *new), false),
        };
        let node = if is_read && self.mode == ToyMode::FollowerReads {
            self.rng.random_range(0..self.nodes)
        } else {
            0
        };
        let request = serde_json::to_vec(&Message::Request { id, op: toy_op }).expect("serializes");
        let target = (format!("n{}", node + 1), NODE_PORT);
        if let Err(error) = self.socket.send_to(&request, target).await {
            // Nothing was sent: certainly not applied.
            return OpReply::Fail(format!("send failed: {error}"));
        }
        let mut buffer = vec![0u8; 64 * 1024];
        let wait = async {
            loop {
                let (length, _from): (usize, SocketAddr) =
                    self.socket.recv_from(&mut buffer).await?;
                if let Ok(Message::Response {
                    id: answered,
                    ok,
                    value,
                }) = serde_json::from_slice(&buffer[..length])
                {
                    if answered == id {
                        return Ok::<_, std::io::Error>((ok, value));
                    }
                }
            }
        };
        match tokio::time::timeout(Duration::from_millis(500), wait).await {
            Ok(Ok((true, value))) => OpReply::Ok(value),
            Ok(Ok((false, _))) => OpReply::Fail("cas compare failed".to_string()),
            Ok(Err(error)) => OpReply::Unknown(format!("receive failed: {error}")),
            Err(_) => OpReply::Unknown("timed out".to_string()),
        }
    }
}

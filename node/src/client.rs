//! The client library: one logical client process with a stable client id and increasing
//! sequence numbers. It finds the leader by following redirects, retries an op with the same
//! (client id, seq) so the store applies it at most once, and reports each op as Ok, Fail
//! (certainly not applied) or Unknown (may have applied) — what a history needs.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use tokio::time::{timeout_at, Duration, Instant};

use crate::auth::{ClusterKey, Sealer, MAX_SEALED_BYTES};
use crate::faults::{NetAction, NetSwitch};
use crate::protocol::{
    AdminOp, AdminRequest, ClientRequest, ReplyOutcome, Wire, MAX_DATAGRAM_BYTES,
};
use crate::store::{StoreOp, StoreResult};
use crate::transport::{resolve, Endpoint, Network};

/// How a client connects and how long it tries.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Unique per logical client across the run (it keys the store's session table).
    pub client_id: u64,
    /// Every node's "host:port".
    pub cluster: Vec<String>,
    pub network: Network,
    /// How long one attempt waits for a reply before trying another node.
    pub request_timeout_ms: u64,
    /// How long an op is tried in total before it ends Unknown (or Fail if never proposed).
    pub op_timeout_ms: u64,
    /// Pause before retrying when no node knows the leader (e.g. during an election).
    pub retry_backoff_ms: u64,
    /// Local UDP port (0: any free port).
    pub local_port: u16,
    /// Local address to bind (None: loopback). A real cluster on a bridge needs the bridge's.
    pub local_ip: Option<std::net::IpAddr>,
    /// Requests are sealed and replies verified under this key (see `crate::auth`); replies
    /// that do not verify are ignored, so a forged reply cannot put a wrong result in a
    /// history. Default: `ClusterKey::for_simulation(0)`, as `NodeOptions::new`.
    pub cluster_key: ClusterKey,
    /// Send each read first to this client's home node (`client_id` mod cluster size), not
    /// to the believed leader: with servers in stale read mode that is a follower-local read.
    pub reads_at_home: bool,
    /// The network's faults on what this client sends to each node of `cluster` (by
    /// position), set by a test harness: a duplicated request arrives again later (a
    /// retransmission from the past, which the store's sessions must recognise). Only
    /// duplication is taken from the switch. Empty: a clean network.
    pub request_faults: Vec<NetSwitch>,
    /// Send every op first to this client's home node, as a Jepsen client bound to one node:
    /// a follower redirects it to the leader, a node that believes it leads answers. Real
    /// clusters use it so that every node, a deposed leader included, keeps getting requests;
    /// a client that sticks to the leader it found never asks the old one again.
    pub ops_at_home: bool,
    /// The home node's position in `cluster`; None: `client_id` modulo the cluster size.
    pub home: Option<usize>,
}

impl ClientConfig {
    /// The position of this client's home node among `nodes_count` configured nodes.
    fn home_position(&self, nodes_count: usize) -> usize {
        assert!(nodes_count > 0, "a client needs a node");
        match self.home {
            Some(home) if home < nodes_count => home,
            _ => (self.client_id as usize) % nodes_count,
        }
    }

    pub fn new(client_id: u64, cluster: Vec<String>, network: Network) -> Self {
        ClientConfig {
            client_id,
            cluster,
            network,
            request_timeout_ms: 250,
            op_timeout_ms: 5_000,
            retry_backoff_ms: 25,
            local_port: 0,
            local_ip: None,
            cluster_key: ClusterKey::for_simulation(0),
            reads_at_home: false,
            request_faults: Vec::new(),
            ops_at_home: false,
            home: None,
        }
    }
}

/// The outcome of one operation, as the history records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpOutcome<T> {
    /// It happened, with this result.
    Ok(T),
    /// It certainly did not happen.
    Fail(String),
    /// It may or may not have happened.
    Unknown(String),
}

impl<T> OpOutcome<T> {
    pub fn is_ok(&self) -> bool {
        matches!(self, OpOutcome::Ok(_))
    }
}

/// One logical client; ops are issued one at a time.
pub struct Client {
    config: ClientConfig,
    endpoint: Endpoint,
    nodes: Vec<SocketAddr>,
    /// Index in `nodes` of the node believed to lead.
    target: usize,
    seq: u64,
    buf: Vec<u8>,
    sealer: Sealer,
    /// Late copies of sent requests (see `ClientConfig::request_faults`), by due time.
    late_copies: BTreeMap<(Instant, u64), (Vec<u8>, SocketAddr)>,
    late_copies_made: u64,
}

impl Client {
    pub async fn connect(config: ClientConfig) -> std::io::Result<Client> {
        if config.cluster.is_empty() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "the cluster has no nodes",
            ));
        }
        let mut nodes = Vec::with_capacity(config.cluster.len());
        for address in &config.cluster {
            nodes.push(resolve(config.network, address).await?);
        }
        let endpoint = Endpoint::bind(config.network, config.local_ip, config.local_port).await?;
        let target = config.home_position(nodes.len());
        let sealer = Sealer::new(config.cluster_key.clone(), config.network, config.client_id);
        Ok(Client {
            sealer,
            config,
            endpoint,
            nodes,
            target,
            seq: 0,
            buf: vec![0; MAX_SEALED_BYTES + 1],
            late_copies: BTreeMap::new(),
            late_copies_made: 0,
        })
    }

    pub fn client_id(&self) -> u64 {
        self.config.client_id
    }

    pub async fn read(&mut self, key: &str) -> OpOutcome<i64> {
        match self.execute(StoreOp::Read { key: key.into() }).await {
            OpOutcome::Ok(StoreResult::Value(value)) => OpOutcome::Ok(value),
            OpOutcome::Ok(other) => OpOutcome::Fail(format!("unexpected result {other:?}")),
            // A read changes nothing, so a read that never answered certainly did not happen.
            OpOutcome::Fail(reason) | OpOutcome::Unknown(reason) => OpOutcome::Fail(reason),
        }
    }

    /// Adds `delta`; Ok carries the new total.
    pub async fn add(&mut self, key: &str, delta: i64) -> OpOutcome<i64> {
        match self
            .execute(StoreOp::Add {
                key: key.into(),
                delta,
            })
            .await
        {
            OpOutcome::Ok(StoreResult::Value(total)) => OpOutcome::Ok(total),
            OpOutcome::Ok(StoreResult::Rejected(reason)) => OpOutcome::Fail(reason),
            OpOutcome::Ok(other) => OpOutcome::Unknown(format!("unexpected result {other:?}")),
            OpOutcome::Fail(reason) => OpOutcome::Fail(reason),
            OpOutcome::Unknown(reason) => OpOutcome::Unknown(reason),
        }
    }

    pub async fn write(&mut self, key: &str, value: i64) -> OpOutcome<()> {
        match self
            .execute(StoreOp::Write {
                key: key.into(),
                value,
            })
            .await
        {
            OpOutcome::Ok(StoreResult::Written) => OpOutcome::Ok(()),
            OpOutcome::Ok(StoreResult::Rejected(reason)) => OpOutcome::Fail(reason),
            OpOutcome::Ok(other) => OpOutcome::Unknown(format!("unexpected result {other:?}")),
            OpOutcome::Fail(reason) => OpOutcome::Fail(reason),
            OpOutcome::Unknown(reason) => OpOutcome::Unknown(reason),
        }
    }

    /// Compare-and-set; Fail when the current value is not `old`.
    pub async fn cas(&mut self, key: &str, old: i64, new: i64) -> OpOutcome<()> {
        match self
            .execute(StoreOp::Cas {
                key: key.into(),
                old,
                new,
            })
            .await
        {
            OpOutcome::Ok(StoreResult::Swapped) => OpOutcome::Ok(()),
            OpOutcome::Ok(StoreResult::CasMismatch { current }) => {
                OpOutcome::Fail(format!("cas mismatch: expected {old}, found {current}"))
            }
            OpOutcome::Ok(StoreResult::Rejected(reason)) => OpOutcome::Fail(reason),
            OpOutcome::Ok(other) => OpOutcome::Unknown(format!("unexpected result {other:?}")),
            OpOutcome::Fail(reason) => OpOutcome::Fail(reason),
            OpOutcome::Unknown(reason) => OpOutcome::Unknown(reason),
        }
    }

    /// A cluster administration request, sent to the leader (found by redirects). Ok carries
    /// the leader's answer (the configuration as JSON for `Members`); Fail means refused, never
    /// proposed; Unknown means a change may or may not have been proposed.
    pub async fn admin(&mut self, op: AdminOp) -> OpOutcome<String> {
        self.seq += 1;
        let (client_id, seq) = (self.config.client_id, self.seq);
        let payload_to = |to: SocketAddr| {
            Wire::Admin(AdminRequest {
                client_id,
                seq,
                to: to.to_string(),
                op: op.clone(),
            })
            .encode()
        };
        // The longest address text there is, so that no attempt can exceed what this allows.
        let widest = SocketAddr::new(std::net::IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED), 65535);
        if let Err(problem) = check_request_size(&payload_to(widest)) {
            return OpOutcome::Fail(problem);
        }
        let op_deadline = Instant::now() + Duration::from_millis(self.config.op_timeout_ms);
        let mut maybe_proposed = false;
        // As in `execute`: a repeated refusal from one node may be a late copy.
        let mut refused_by: Vec<SocketAddr> = Vec::new();
        let mut last_problem = String::from("no attempt made");
        while Instant::now() < op_deadline {
            let to = self.nodes[self.target];
            // Sealed afresh per attempt, for its destination: nodes accept each sealed admin
            // request once and only if it names them (replay protection), and a retry must
            // not look like a replay.
            let bytes = self.sealer.seal(&payload_to(to));
            if let Err(error) = self.send_request(bytes, to).await {
                last_problem = format!("send to {to} failed: {error}");
                self.next_node();
                tokio::time::sleep(Duration::from_millis(self.config.retry_backoff_ms)).await;
                continue;
            }
            let attempt_deadline = (Instant::now()
                + Duration::from_millis(self.config.request_timeout_ms))
            .min(op_deadline);
            match self.await_reply(attempt_deadline, to).await {
                Some(ReplyOutcome::Admin { ok: true, text }) => return OpOutcome::Ok(text),
                Some(ReplyOutcome::Admin { ok: false, text }) => return OpOutcome::Fail(text),
                Some(ReplyOutcome::NotLeader { leader_hint }) => {
                    maybe_proposed |= refused_before(&mut refused_by, to);
                    last_problem = format!("{to} is not the leader");
                    self.follow_leader_hint(leader_hint).await;
                }
                Some(other) => {
                    maybe_proposed = true;
                    last_problem = format!("unexpected reply {other:?}");
                    self.next_node();
                }
                None => {
                    maybe_proposed = true;
                    last_problem = format!("no reply from {to}");
                    self.next_node();
                }
            }
        }
        let reason = format!(
            "timed out after {} ms ({last_problem})",
            self.config.op_timeout_ms
        );
        if maybe_proposed {
            OpOutcome::Unknown(reason)
        } else {
            OpOutcome::Fail(reason)
        }
    }

    /// Runs one op to a definite result or the op deadline. `Fail` means no attempt can have
    /// been proposed: every attempt was refused before proposing.
    async fn execute(&mut self, op: StoreOp) -> OpOutcome<StoreResult> {
        self.seq += 1;
        if self.config.ops_at_home
            || (self.config.reads_at_home && matches!(op, StoreOp::Read { .. }))
        {
            self.target = self.config.home_position(self.config.cluster.len());
        }
        let request = Wire::Request(ClientRequest {
            client_id: self.config.client_id,
            seq: self.seq,
            op,
        });
        let payload = request.encode();
        if let Err(problem) = check_request_size(&payload) {
            return OpOutcome::Fail(problem);
        }
        let bytes = self.sealer.seal(&payload);
        let op_deadline = Instant::now() + Duration::from_millis(self.config.op_timeout_ms);
        let mut maybe_proposed = false;
        // Nodes that refused this request: a second refusal from one of them may be a late
        // copy of the first while the node, leader by now, proposes this attempt.
        let mut refused_by: Vec<SocketAddr> = Vec::new();
        let mut last_problem = String::from("no attempt made");
        loop {
            if Instant::now() >= op_deadline {
                let reason = format!(
                    "op timed out after {} ms ({last_problem})",
                    self.config.op_timeout_ms
                );
                return if maybe_proposed {
                    OpOutcome::Unknown(reason)
                } else {
                    OpOutcome::Fail(reason)
                };
            }
            let to = self.nodes[self.target];
            if let Err(error) = self.send_request(bytes.clone(), to).await {
                // Not sent, so not proposed by this attempt.
                last_problem = format!("send to {to} failed: {error}");
                self.next_node();
                tokio::time::sleep(Duration::from_millis(self.config.retry_backoff_ms)).await;
                continue;
            }
            tracing::debug!(client = self.config.client_id, seq = self.seq, %to, "attempt");
            let attempt_deadline = (Instant::now()
                + Duration::from_millis(self.config.request_timeout_ms))
            .min(op_deadline);
            let reply = self.await_reply(attempt_deadline, to).await;
            tracing::debug!(
                client = self.config.client_id,
                seq = self.seq,
                ?reply,
                "reply"
            );
            match reply {
                None => {
                    maybe_proposed = true;
                    last_problem = format!("no reply from {to}");
                    self.next_node();
                }
                Some(ReplyOutcome::Done(result)) => return OpOutcome::Ok(result),
                Some(ReplyOutcome::NotLeader { leader_hint }) => {
                    maybe_proposed |= refused_before(&mut refused_by, to);
                    last_problem = format!("{to} is not the leader");
                    self.follow_leader_hint(leader_hint).await;
                }
                Some(ReplyOutcome::Retry { reason }) => {
                    maybe_proposed = true;
                    last_problem = reason;
                    tokio::time::sleep(Duration::from_millis(self.config.retry_backoff_ms)).await;
                }
                Some(ReplyOutcome::Admin { .. }) => {
                    maybe_proposed = true;
                    last_problem = "an administration answer to a data request".into();
                    self.next_node();
                }
            }
        }
    }

    /// Sends one request datagram, and queues its late copy when the network duplicates it.
    async fn send_request(&mut self, bytes: Vec<u8>, to: SocketAddr) -> std::io::Result<()> {
        self.endpoint.send_to(&bytes, to).await?;
        let switch = self
            .nodes
            .iter()
            .position(|node| *node == to)
            .and_then(|position| self.config.request_faults.get(position));
        if let Some(NetAction::Duplicate {
            second_delay_ms, ..
        }) = switch.map(NetSwitch::action)
        {
            let due = Instant::now() + Duration::from_millis(second_delay_ms);
            self.late_copies_made += 1;
            self.late_copies
                .insert((due, self.late_copies_made), (bytes, to));
        }
        Ok(())
    }

    /// Sends the late copies that are due (a lost copy is just lost).
    async fn send_due_copies(&mut self) {
        let now = Instant::now();
        while let Some(entry) = self.late_copies.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let (bytes, to) = entry.remove();
            let _ = self.endpoint.send_to(&bytes, to).await;
        }
    }

    /// Waits for the reply to the current attempt, sent to `to`; replies to earlier requests
    /// are ignored. So are refusals from other nodes: they answer an earlier attempt of this
    /// request (late, or duplicated by the network) and say nothing of this one, which a
    /// leader may be proposing right now. Answers (`Done`) count from any node.
    async fn await_reply(&mut self, deadline: Instant, to: SocketAddr) -> Option<ReplyOutcome> {
        loop {
            self.send_due_copies().await;
            let wake = self
                .late_copies
                .keys()
                .next()
                .map_or(deadline, |(due, _)| (*due).min(deadline));
            let received = match timeout_at(wake, self.endpoint.recv_from(&mut self.buf)).await {
                Ok(received) => received,
                Err(_) if wake < deadline => continue,
                Err(_) => return None,
            };
            let Ok((len, from)) = received else { continue };
            let Ok(opened) = self.sealer.open(&self.buf[..len]) else {
                tracing::debug!("ignoring an unauthenticated reply");
                continue;
            };
            if let Ok(Wire::Reply(reply)) = Wire::decode(opened.payload) {
                let answers_this_attempt = from == to
                    || matches!(
                        reply.outcome,
                        ReplyOutcome::Done(_) | ReplyOutcome::Admin { ok: true, .. }
                    );
                if reply.client_id == self.config.client_id
                    && reply.seq == self.seq
                    && answers_this_attempt
                {
                    return Some(reply.outcome);
                }
            }
        }
    }

    /// The largest key a request can carry (an op with its longest other fields must fit in
    /// one datagram).
    pub const MAX_KEY_BYTES: usize = MAX_DATAGRAM_BYTES - 1024;

    fn next_node(&mut self) {
        self.target = (self.target + 1) % self.nodes.len();
    }

    /// Points the client at the hinted leader; false when the hint does not resolve.
    /// After a "not the leader" reply: go to the hinted leader, or else to the next node
    /// after a backoff.
    async fn follow_leader_hint(&mut self, leader_hint: Option<String>) {
        let hinted = match leader_hint {
            Some(hint) => self.point_at(&hint).await,
            None => false,
        };
        if !hinted {
            self.next_node();
            tokio::time::sleep(Duration::from_millis(self.config.retry_backoff_ms)).await;
        }
    }

    async fn point_at(&mut self, hint: &str) -> bool {
        let Ok(addr) = resolve(self.config.network, hint).await else {
            return false;
        };
        // A leader outside the configured list (a member added later) is learned.
        let position = match self.nodes.iter().position(|node| *node == addr) {
            Some(position) => position,
            None => {
                self.nodes.push(addr);
                self.nodes.len() - 1
            }
        };
        self.target = position;
        true
    }
}

/// Notes a refusal from `node`; true when it refused this request before: then the refusal
/// may be a late copy of the first while the node, leader by now, proposes this attempt.
fn refused_before(refused_by: &mut Vec<SocketAddr>, node: SocketAddr) -> bool {
    if refused_by.contains(&node) {
        return true;
    }
    refused_by.push(node);
    false
}

/// A request that cannot fit in one datagram is refused before anything is sent: retrying
/// it could only time out.
fn check_request_size(payload: &[u8]) -> Result<(), String> {
    if payload.len() > MAX_DATAGRAM_BYTES {
        return Err(format!(
            "request too large: {} bytes encoded, the limit is {MAX_DATAGRAM_BYTES} (keys up to {} bytes)",
            payload.len(),
            Client::MAX_KEY_BYTES
        ));
    }
    Ok(())
}

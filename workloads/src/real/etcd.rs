//! etcd (Debian `etcd-server` 3.4) through its v3 JSON gateway, over plain HTTP/1.1:
//! `/v3/kv/range` (read; linearizable unless `--read-mode stale`, alias `serializable`), `/v3/kv/put`
//! (write), `/v3/kv/txn` (cas: compare the value, then put; add: read, then put if the key's
//! mod_revision is unchanged, retried on conflict). Keys and values travel base64-encoded.
//!
//! Error classification (the README repeats it): an op is a definite `fail` when no byte of
//! it reached a server (connection refused or connect timeout), when a txn's compare failed,
//! when etcd rejected it before proposing (too many requests, invalid argument), and for
//! every read that got no answer (a read changes nothing). Everything else after sending —
//! a timeout, a reset, "leader changed", "request timed out" — is in doubt: `info`.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::http::{base64_decode, base64_encode, HttpConnection, HttpError};
use super::sys::version_line;
use super::{Adapter, Network};
use crate::options::{ReadMode, RunOptions};
use crate::schedule::node_name;
use crate::sut::{OpReply, SutClient};
use crate::workload::{key_name, Op};

const CLIENT_PORT: u16 = 2379;
const PEER_PORT: u16 = 2380;
/// Compare-and-put rounds of one `add` before it gives up (a definite fail: nothing written).
const ADD_ATTEMPTS: usize = 8;

pub struct Etcd {
    serializable: bool,
    tag: String,
}

impl Etcd {
    pub fn new(options: &RunOptions) -> Etcd {
        Etcd {
            serializable: options.read_mode == ReadMode::Stale,
            tag: format!("minos-seed{}", options.seed),
        }
    }
}

fn client_address(network: &Network, node: usize) -> SocketAddr {
    SocketAddr::new(network.ip(node).into(), CLIENT_PORT)
}

impl Adapter for Etcd {
    type Client = EtcdClient;

    fn name(&self) -> &'static str {
        "etcd"
    }

    fn binary(&self) -> String {
        "etcd".to_string()
    }

    fn package(&self) -> &'static str {
        "etcd-server"
    }

    fn version(&self) -> String {
        version_line("etcd", &["--version"])
    }

    fn read_modes(&self) -> &'static [ReadMode] {
        &[ReadMode::ReadIndex, ReadMode::Stale]
    }

    fn server_args(&self, node: usize, network: &Network, data_dir: &Path) -> Vec<String> {
        let ip = network.ip(node);
        let cluster: Vec<String> = (0..network.node_ips.len())
            .map(|peer| {
                format!(
                    "{}=http://{}:{PEER_PORT}",
                    node_name(peer),
                    network.ip(peer)
                )
            })
            .collect();
        [
            "--name".to_string(),
            node_name(node),
            "--data-dir".to_string(),
            data_dir.display().to_string(),
            "--listen-client-urls".to_string(),
            format!("http://{ip}:{CLIENT_PORT}"),
            "--advertise-client-urls".to_string(),
            format!("http://{ip}:{CLIENT_PORT}"),
            "--listen-peer-urls".to_string(),
            format!("http://{ip}:{PEER_PORT}"),
            "--initial-advertise-peer-urls".to_string(),
            format!("http://{ip}:{PEER_PORT}"),
            "--initial-cluster".to_string(),
            cluster.join(","),
            "--initial-cluster-state".to_string(),
            "new".to_string(),
            "--initial-cluster-token".to_string(),
            self.tag.clone(),
            "--logger".to_string(),
            "zap".to_string(),
        ]
        .into()
    }

    async fn prepare(
        &self,
        network: &Network,
        keys: usize,
        deadline: Duration,
    ) -> Result<(), String> {
        let until = Instant::now() + deadline;
        let mut last_error = String::new();
        for key in 0..keys {
            loop {
                if Instant::now() > until {
                    return Err(format!(
                        "no write committed within {} s (last error: {last_error})",
                        deadline.as_secs()
                    ));
                }
                let mut client = self.client(network, key % network.node_ips.len());
                let name = key_name(key);
                let put = client.put(&name, 0);
                match tokio::time::timeout(Duration::from_secs(2), put).await {
                    Ok(Ok(())) => break,
                    Ok(Err(error)) => last_error = format!("{error:?}"),
                    Err(_) => last_error = "put timed out".to_string(),
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        Ok(())
    }

    async fn leader(&self, network: &Network, live: &[bool]) -> Option<usize> {
        // Each live node names its member id and the leader it follows; the leader is the
        // node whose own id is the one most nodes follow.
        let mut members = Vec::new();
        let mut votes: std::collections::BTreeMap<String, usize> = Default::default();
        for node in (0..live.len()).filter(|node| live[*node]) {
            let mut connection =
                HttpConnection::new(client_address(network, node), Duration::from_millis(300));
            let Ok(Ok((200, body))) = tokio::time::timeout(
                Duration::from_millis(500),
                connection.post("/v3/maintenance/status", b"{}"),
            )
            .await
            else {
                continue;
            };
            let Ok(status) = serde_json::from_slice::<Value>(&body) else {
                continue;
            };
            let member = json_u64(&status["header"]["member_id"]);
            let leader = json_u64(&status["leader"]);
            if let (Some(member), Some(leader)) = (member, leader) {
                members.push((node, member.to_string()));
                if leader != 0 {
                    *votes.entry(leader.to_string()).or_default() += 1;
                }
            }
        }
        let (leader_id, _) = votes.into_iter().max_by_key(|(_, count)| *count)?;
        members
            .into_iter()
            .find(|(_, member)| *member == leader_id)
            .map(|(node, _)| node)
    }

    fn client(&self, network: &Network, node: usize) -> EtcdClient {
        EtcdClient {
            connection: HttpConnection::new(
                client_address(network, node),
                Duration::from_millis(500),
            ),
            serializable: self.serializable,
        }
    }
}

/// etcd's JSON gateway writes 64-bit integers as strings.
fn json_u64(value: &Value) -> Option<u64> {
    match value {
        Value::String(text) => text.parse().ok(),
        Value::Number(number) => number.as_u64(),
        _ => None,
    }
}

/// How a request ended, before it is mapped to an op's outcome.
#[derive(Debug)]
pub enum EtcdError {
    /// Certainly not applied.
    Definite(String),
    /// May have been applied.
    InDoubt(String),
}

/// Rejections etcd makes before proposing anything (so the op cannot have taken effect).
const DEFINITE_MESSAGES: &[&str] = &[
    "etcdserver: too many requests",
    "etcdserver: request is too large",
    "etcdserver: key is not provided",
];

pub struct EtcdClient {
    connection: HttpConnection,
    serializable: bool,
}

impl EtcdClient {
    async fn call(&mut self, path: &str, body: Value) -> Result<Value, EtcdError> {
        let body = serde_json::to_vec(&body).expect("a request always serializes");
        let (status, reply) = match self.connection.post(path, &body).await {
            Ok(answer) => answer,
            Err(HttpError::NotSent(error)) => return Err(EtcdError::Definite(error)),
            Err(HttpError::InDoubt(error)) => return Err(EtcdError::InDoubt(error)),
        };
        let reply: Value = serde_json::from_slice(&reply).map_err(|error| {
            self.connection.reset();
            EtcdError::InDoubt(format!("{path}: reply is not JSON: {error}"))
        })?;
        if status == 200 && reply.get("error").is_none() {
            return Ok(reply);
        }
        self.connection.reset();
        let message = reply
            .get("message")
            .or_else(|| reply.get("error"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let code = reply.get("code").and_then(Value::as_i64).unwrap_or(-1);
        let text = format!("{path}: HTTP {status}, code {code}: {message}");
        // gRPC InvalidArgument (3) and the listed rejections happen before any proposal.
        if code == 3
            || DEFINITE_MESSAGES
                .iter()
                .any(|known| message.contains(known))
        {
            Err(EtcdError::Definite(text))
        } else {
            Err(EtcdError::InDoubt(text))
        }
    }

    /// The key's value (absent reads as 0, the model's initial value) and mod_revision.
    async fn range(&mut self, key: &str, serializable: bool) -> Result<(i64, u64), EtcdError> {
        let reply = self
            .call(
                "/v3/kv/range",
                json!({"key": base64_encode(key.as_bytes()), "serializable": serializable}),
            )
            .await?;
        let Some(kv) = reply
            .get("kvs")
            .and_then(Value::as_array)
            .and_then(|kvs| kvs.first())
        else {
            return Ok((0, 0));
        };
        let raw = kv.get("value").and_then(Value::as_str).unwrap_or("");
        let bytes = base64_decode(raw).map_err(EtcdError::Definite)?;
        let value = std::str::from_utf8(&bytes)
            .ok()
            .and_then(|text| text.parse::<i64>().ok())
            .ok_or_else(|| {
                EtcdError::Definite(format!("{key} holds {bytes:?}, not a number we wrote"))
            })?;
        let revision = json_u64(&kv["mod_revision"]).unwrap_or(0);
        Ok((value, revision))
    }

    pub async fn put(&mut self, key: &str, value: i64) -> Result<(), EtcdError> {
        self.call(
            "/v3/kv/put",
            json!({"key": base64_encode(key.as_bytes()), "value": base64_encode(value.to_string().as_bytes())}),
        )
        .await
        .map(|_| ())
    }

    /// A txn: put `new` if `compare` holds; Ok(true) when it did.
    async fn put_if(&mut self, key: &str, compare: Value, new: i64) -> Result<bool, EtcdError> {
        let key64 = base64_encode(key.as_bytes());
        let reply = self
            .call(
                "/v3/kv/txn",
                json!({
                    "compare": [compare],
                    "success": [{"request_put": {"key": key64, "value": base64_encode(new.to_string().as_bytes())}}],
                }),
            )
            .await?;
        // proto3 JSON leaves `false` out.
        Ok(reply
            .get("succeeded")
            .and_then(Value::as_bool)
            .unwrap_or(false))
    }

    async fn add(&mut self, key: &str, delta: i64) -> OpReply {
        for _ in 0..ADD_ATTEMPTS {
            // Nothing is written until the txn: a failed read leaves the add undone.
            let (value, revision) = match self.range(key, false).await {
                Ok(found) => found,
                Err(EtcdError::Definite(error) | EtcdError::InDoubt(error)) => {
                    return OpReply::Fail(error)
                }
            };
            let compare = json!({
                "key": base64_encode(key.as_bytes()),
                "target": "MOD",
                "result": "EQUAL",
                "mod_revision": revision.to_string(),
            });
            match self.put_if(key, compare, value + delta).await {
                Ok(true) => return OpReply::Ok(Some(value + delta)),
                Ok(false) => continue,
                Err(error) => return outcome(Err(error)),
            }
        }
        OpReply::Fail(format!(
            "{key} changed under {ADD_ATTEMPTS} read-modify-write attempts"
        ))
    }
}

fn outcome(result: Result<Option<i64>, EtcdError>) -> OpReply {
    match result {
        Ok(value) => OpReply::Ok(value),
        Err(EtcdError::Definite(error)) => OpReply::Fail(error),
        Err(EtcdError::InDoubt(error)) => OpReply::Unknown(error),
    }
}

impl SutClient for EtcdClient {
    async fn invoke(&mut self, op: &Op) -> OpReply {
        match op {
            Op::Read { key } => match self.range(key, self.serializable).await {
                Ok((value, _)) => OpReply::Ok(Some(value)),
                // A read changes nothing: whatever happened, it is a definite non-event.
                Err(EtcdError::Definite(error) | EtcdError::InDoubt(error)) => OpReply::Fail(error),
            },
            Op::Write { key, value } => outcome(self.put(key, *value).await.map(|_| None)),
            Op::Cas { key, old, new } => {
                let compare = json!({
                    "key": base64_encode(key.as_bytes()),
                    "target": "VALUE",
                    "result": "EQUAL",
                    "value": base64_encode(old.to_string().as_bytes()),
                });
                match self.put_if(key, compare, *new).await {
                    Ok(true) => OpReply::Ok(None),
                    Ok(false) => OpReply::Fail(format!("{key} is not {old}")),
                    Err(error) => outcome(Err(error)),
                }
            }
            Op::Add { key, delta } => self.add(key, *delta).await,
        }
    }
}

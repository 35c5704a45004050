//! NATS JetStream (Debian `nats-server` 2.9) over the plain NATS text protocol: one
//! replicated stream (`minos`, subjects `minos.<key>`, R = min(nodes, 5)) holds every key's
//! writes; a key's value is the last message on its subject.
//! - read: `$JS.API.STREAM.MSG.GET.minos` with `last_by_subj` (answered by the stream leader);
//! - write: publish, acknowledged by JetStream (`PubAck`);
//! - cas: read the last message (value and sequence); if the value differs, a definite
//!   `fail`; else publish the new value with `Nats-Expected-Last-Subject-Sequence` set to that
//!   sequence, so that it commits only if nothing was written to the key since;
//! - add (counter): the same read, then a conditional publish of value + delta, retried.
//!
//! Replies are matched to requests by their inbox subject (`_INBOX.<conn>.<n>`): a late reply
//! to an earlier, timed-out request is recognised and dropped, never taken as the answer.
//!
//! Error classification: `fail` when nothing was sent (connect refused or timed out), when
//! the server answered "no responders" (nothing received the publish), for a wrong last
//! sequence (error 10071: the condition failed, nothing written), and for every read without
//! an answer; `info` for any other error or silence after a publish was sent.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::http::base64_decode;
use super::sys::version_line;
use super::{Adapter, Network};
use crate::options::{ReadMode, RunOptions};
use crate::schedule::node_name;
use crate::sut::{OpReply, SutClient};
use crate::workload::{key_name, Op};

const CLIENT_PORT: u16 = 4222;
const CLUSTER_PORT: u16 = 6222;
const STREAM: &str = "minos";
const ADD_ATTEMPTS: usize = 8;
/// Largest protocol line and message payload accepted from the server.
const MAX_LINE_BYTES: usize = 64 * 1024;
const MAX_PAYLOAD_BYTES: usize = 8 * 1024 * 1024;
/// JetStream's "wrong last sequence" error: the conditional publish did not happen.
const ERR_WRONG_LAST_SEQUENCE: u64 = 10071;
/// JetStream's "no message found".
const ERR_NO_MESSAGE: u64 = 10037;

static CONNECTIONS: AtomicU64 = AtomicU64::new(0);

pub struct Nats {
    replicas: usize,
}

impl Nats {
    pub fn new(options: &RunOptions) -> Nats {
        Nats {
            replicas: options.nodes.min(5),
        }
    }
}

fn client_address(network: &Network, node: usize) -> SocketAddr {
    SocketAddr::new(network.ip(node).into(), CLIENT_PORT)
}

fn subject(key: &str) -> String {
    format!("{STREAM}.{key}")
}

impl Adapter for Nats {
    type Client = NatsClient;

    fn name(&self) -> &'static str {
        "nats"
    }

    fn binary(&self) -> String {
        "nats-server".to_string()
    }

    fn package(&self) -> &'static str {
        "nats-server"
    }

    fn version(&self) -> String {
        version_line("nats-server", &["--version"])
    }

    fn read_modes(&self) -> &'static [ReadMode] {
        &[ReadMode::ReadIndex]
    }

    fn server_args(&self, node: usize, network: &Network, data_dir: &Path) -> Vec<String> {
        let ip = network.ip(node);
        let routes: Vec<String> = (0..network.node_ips.len())
            .filter(|peer| *peer != node)
            .map(|peer| format!("nats://{}:{CLUSTER_PORT}", network.ip(peer)))
            .collect();
        let mut args = vec![
            "-js".to_string(),
            "-sd".to_string(),
            data_dir.display().to_string(),
            "-n".to_string(),
            node_name(node),
            "-a".to_string(),
            ip.to_string(),
            "-p".to_string(),
            CLIENT_PORT.to_string(),
        ];
        if network.node_ips.len() > 1 {
            args.extend([
                "--cluster_name".to_string(),
                "minos".to_string(),
                "--cluster".to_string(),
                format!("nats://{ip}:{CLUSTER_PORT}"),
                "--routes".to_string(),
                routes.join(","),
            ]);
        }
        args
    }

    async fn prepare(
        &self,
        network: &Network,
        keys: usize,
        deadline: Duration,
    ) -> Result<(), String> {
        let until = Instant::now() + deadline;
        let config = json!({
            "name": STREAM,
            "subjects": [format!("{STREAM}.>")],
            "num_replicas": self.replicas,
            "storage": "file",
        });
        let mut last_error = String::new();
        let mut created = false;
        let mut key = 0;
        while key < keys {
            if Instant::now() > until {
                return Err(format!(
                    "stream {STREAM} not created or written within {} s (last error: {last_error})",
                    deadline.as_secs()
                ));
            }
            let mut client = self.client(network, key % network.node_ips.len());
            let step = async {
                if !created {
                    let reply = client
                        .request(
                            &format!("$JS.API.STREAM.CREATE.{STREAM}"),
                            &[],
                            config.to_string().as_bytes(),
                        )
                        .await
                        .map_err(|error| format!("{error:?}"))?;
                    let reply: Value = serde_json::from_slice(&reply.payload)
                        .map_err(|error| format!("stream create reply: {error}"))?;
                    // "stream name already in use" after a retried create is fine.
                    if let Some(error) = reply.get("error") {
                        if error["err_code"].as_u64() != Some(10058) {
                            return Err(format!("stream create: {error}"));
                        }
                    }
                }
                client
                    .publish(&key_name(key), 0, None)
                    .await
                    .map_err(|error| format!("{error:?}"))
            };
            match tokio::time::timeout(Duration::from_secs(3), step).await {
                Ok(Ok(())) => {
                    created = true;
                    key += 1;
                }
                Ok(Err(error)) => last_error = error,
                Err(_) => last_error = "timed out".to_string(),
            }
            if key < keys {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        Ok(())
    }

    async fn leader(&self, network: &Network, live: &[bool]) -> Option<usize> {
        // The stream's leader, as the live nodes report it.
        for node in (0..live.len()).filter(|node| live[*node]) {
            let mut client = self.client(network, node);
            let info = tokio::time::timeout(
                Duration::from_millis(700),
                client.request(&format!("$JS.API.STREAM.INFO.{STREAM}"), &[], b""),
            )
            .await;
            let Ok(Ok(reply)) = info else { continue };
            let Ok(info) = serde_json::from_slice::<Value>(&reply.payload) else {
                continue;
            };
            if let Some(name) = info["cluster"]["leader"].as_str() {
                return crate::schedule::node_index(name, live.len());
            }
        }
        None
    }

    async fn final_state(
        &self,
        network: &Network,
        records: &[minos_checker::history::HistoryRecord],
        keys: usize,
    ) -> Value {
        count_publishes(self, network, records, keys).await
    }

    fn client(&self, network: &Network, node: usize) -> NatsClient {
        NatsClient {
            address: client_address(network, node),
            connection: None,
            inbox: format!(
                "_INBOX.minos{}",
                CONNECTIONS.fetch_add(1, Ordering::Relaxed)
            ),
            next_request: 0,
        }
    }
}

#[derive(Debug)]
pub enum NatsError {
    NotSent(String),
    InDoubt(String),
    /// The server said no one received the message (nothing happened).
    NoResponders,
}

/// One received message.
pub struct Message {
    /// Status of an HMSG ("503" for no responders), if any.
    status: Option<String>,
    payload: Vec<u8>,
}

struct Connection {
    stream: TcpStream,
    buffer: Vec<u8>,
}

pub struct NatsClient {
    address: SocketAddr,
    connection: Option<Connection>,
    inbox: String,
    next_request: u64,
}

impl NatsClient {
    async fn connect(&mut self) -> Result<(), NatsError> {
        if self.connection.is_some() {
            return Ok(());
        }
        let stream =
            tokio::time::timeout(Duration::from_millis(500), TcpStream::connect(self.address))
                .await
                .map_err(|_| NatsError::NotSent(format!("connect to {} timed out", self.address)))?
                .map_err(|error| {
                    NatsError::NotSent(format!("connect to {}: {error}", self.address))
                })?;
        let _ = stream.set_nodelay(true);
        let mut connection = Connection {
            stream,
            buffer: Vec::new(),
        };
        let handshake = async {
            let info = connection.read_line().await?;
            if !info.starts_with("INFO ") {
                return Err(format!("expected INFO, got {info:?}"));
            }
            let hello = format!(
                "CONNECT {}\r\nSUB {}.* 1\r\nPING\r\n",
                json!({"verbose": false, "pedantic": false, "headers": true, "no_responders": true, "protocol": 1, "name": "minos"}),
                self.inbox
            );
            connection
                .stream
                .write_all(hello.as_bytes())
                .await
                .map_err(|error| error.to_string())?;
            loop {
                let line = connection.read_line().await?;
                if line == "PONG" {
                    return Ok(());
                }
                if line.starts_with("-ERR") {
                    return Err(line);
                }
            }
        };
        // Nothing of an op is sent during the handshake: a failure here is definite.
        handshake.await.map_err(|error| {
            NatsError::NotSent(format!("handshake with {}: {error}", self.address))
        })?;
        self.connection = Some(connection);
        Ok(())
    }

    /// Sends `payload` (with `headers`) to `subject` and waits for the reply on a fresh
    /// inbox subject; other messages (late replies to earlier requests) are dropped.
    async fn request(
        &mut self,
        subject: &str,
        headers: &[(&str, String)],
        payload: &[u8],
    ) -> Result<Message, NatsError> {
        self.connect().await?;
        self.next_request += 1;
        let reply_to = format!("{}.{}", self.inbox, self.next_request);
        let mut frame = if headers.is_empty() {
            format!("PUB {subject} {reply_to} {}\r\n", payload.len()).into_bytes()
        } else {
            let mut block = "NATS/1.0\r\n".to_string();
            for (name, value) in headers {
                block.push_str(&format!("{name}: {value}\r\n"));
            }
            block.push_str("\r\n");
            let mut frame = format!(
                "HPUB {subject} {reply_to} {} {}\r\n",
                block.len(),
                block.len() + payload.len()
            )
            .into_bytes();
            frame.extend_from_slice(block.as_bytes());
            frame
        };
        frame.extend_from_slice(payload);
        frame.extend_from_slice(b"\r\n");
        let result = self.exchange(&frame, &reply_to).await;
        if result.is_err() {
            self.connection = None;
        }
        result
    }

    async fn exchange(&mut self, frame: &[u8], reply_to: &str) -> Result<Message, NatsError> {
        let connection = self.connection.as_mut().expect("connected above");
        connection
            .stream
            .write_all(frame)
            .await
            .map_err(|error| NatsError::InDoubt(format!("sending: {error}")))?;
        loop {
            let line = connection.read_line().await.map_err(NatsError::InDoubt)?;
            let mut fields = line.split_whitespace();
            match fields.next() {
                Some("PING") => connection
                    .stream
                    .write_all(b"PONG\r\n")
                    .await
                    .map_err(|error| NatsError::InDoubt(format!("sending PONG: {error}")))?,
                Some("MSG") => {
                    // MSG <subject> <sid> [reply-to] <#bytes>
                    let parts: Vec<&str> = line.split_whitespace().collect();
                    let size = parse_size(parts.last().copied())?;
                    let payload = connection.read_payload(size).await?;
                    if parts.get(1) == Some(&reply_to) {
                        return Ok(Message {
                            status: None,
                            payload,
                        });
                    }
                }
                Some("HMSG") => {
                    // HMSG <subject> <sid> [reply-to] <#header bytes> <#total bytes>
                    let parts: Vec<&str> = line.split_whitespace().collect();
                    let total = parse_size(parts.last().copied())?;
                    let header_size =
                        parse_size(parts.get(parts.len().saturating_sub(2)).copied())?;
                    if header_size > total {
                        return Err(NatsError::InDoubt(format!("bad HMSG sizes in {line:?}")));
                    }
                    let mut body = connection.read_payload(total).await?;
                    let payload = body.split_off(header_size);
                    let header = String::from_utf8_lossy(&body);
                    let status = header
                        .lines()
                        .next()
                        .and_then(|first| first.split_whitespace().nth(1))
                        .map(str::to_string);
                    if parts.get(1) == Some(&reply_to) {
                        if status.as_deref() == Some("503") {
                            return Err(NatsError::NoResponders);
                        }
                        return Ok(Message { status, payload });
                    }
                }
                Some("-ERR") => return Err(NatsError::InDoubt(line)),
                _ => {}
            }
        }
    }

    /// The key's value and the sequence of its last message (0, 0 when there is none).
    async fn last(&mut self, key: &str) -> Result<(i64, u64), NatsError> {
        let request = json!({"last_by_subj": subject(key)}).to_string();
        let reply = self
            .request(
                &format!("$JS.API.STREAM.MSG.GET.{STREAM}"),
                &[],
                request.as_bytes(),
            )
            .await?;
        let reply: Value = serde_json::from_slice(&reply.payload)
            .map_err(|error| NatsError::InDoubt(format!("msg get reply: {error}")))?;
        if let Some(error) = reply.get("error") {
            if error["err_code"].as_u64() == Some(ERR_NO_MESSAGE) {
                return Ok((0, 0));
            }
            return Err(NatsError::InDoubt(format!("msg get: {error}")));
        }
        let message = &reply["message"];
        let data =
            base64_decode(message["data"].as_str().unwrap_or("")).map_err(NatsError::InDoubt)?;
        let value = std::str::from_utf8(&data)
            .ok()
            .and_then(|text| text.parse::<i64>().ok())
            .ok_or_else(|| NatsError::InDoubt(format!("{key} holds {data:?}")))?;
        let sequence = message["seq"]
            .as_u64()
            .ok_or_else(|| NatsError::InDoubt(format!("msg get: no seq in {message}")))?;
        Ok((value, sequence))
    }

    /// Publishes `value` to the key's subject, optionally only if its last message is still
    /// `expected_sequence`. Err(Definite) when the condition failed.
    async fn publish(
        &mut self,
        key: &str,
        value: i64,
        expected_sequence: Option<u64>,
    ) -> Result<(), NatsError> {
        let headers: Vec<(&str, String)> = expected_sequence
            .map(|sequence| ("Nats-Expected-Last-Subject-Sequence", sequence.to_string()))
            .into_iter()
            .collect();
        let reply = self
            .request(&subject(key), &headers, value.to_string().as_bytes())
            .await?;
        if let Some(status) = reply.status.as_deref() {
            if status != "200" {
                return Err(NatsError::InDoubt(format!(
                    "publish answered status {status}"
                )));
            }
        }
        let ack: Value = serde_json::from_slice(&reply.payload)
            .map_err(|error| NatsError::InDoubt(format!("publish ack: {error}")))?;
        if let Some(error) = ack.get("error") {
            if error["err_code"].as_u64() == Some(ERR_WRONG_LAST_SEQUENCE) {
                return Err(NatsError::NotSent(format!("condition failed: {error}")));
            }
            return Err(NatsError::InDoubt(format!("publish: {error}")));
        }
        if ack.get("seq").and_then(Value::as_u64).is_none() {
            return Err(NatsError::InDoubt(format!(
                "publish ack without seq: {ack}"
            )));
        }
        Ok(())
    }

    async fn add(&mut self, key: &str, delta: i64) -> OpReply {
        for _ in 0..ADD_ATTEMPTS {
            let (value, sequence) = match self.last(key).await {
                Ok(found) => found,
                Err(error) => return OpReply::Fail(format!("{error:?}")),
            };
            match self.publish(key, value + delta, Some(sequence)).await {
                Ok(()) => return OpReply::Ok(Some(value + delta)),
                Err(NatsError::NotSent(error)) if error.starts_with("condition failed") => continue,
                Err(error) => return outcome(error),
            }
        }
        OpReply::Fail(format!(
            "{key} changed under {ADD_ATTEMPTS} read-modify-write attempts"
        ))
    }
}

fn outcome(error: NatsError) -> OpReply {
    match error {
        NatsError::NotSent(error) => OpReply::Fail(error),
        NatsError::NoResponders => OpReply::Fail("no responders".to_string()),
        NatsError::InDoubt(error) => OpReply::Unknown(error),
    }
}

fn parse_size(field: Option<&str>) -> Result<usize, NatsError> {
    let size: usize = field
        .and_then(|text| text.parse().ok())
        .ok_or_else(|| NatsError::InDoubt(format!("bad size field {field:?}")))?;
    if size > MAX_PAYLOAD_BYTES {
        return Err(NatsError::InDoubt(format!(
            "payload of {size} bytes too long"
        )));
    }
    Ok(size)
}

impl Connection {
    async fn fill(&mut self) -> Result<(), String> {
        let mut chunk = [0u8; 8192];
        let read = self
            .stream
            .read(&mut chunk)
            .await
            .map_err(|error| error.to_string())?;
        if read == 0 {
            return Err("connection closed".to_string());
        }
        self.buffer.extend_from_slice(&chunk[..read]);
        Ok(())
    }

    async fn read_line(&mut self) -> Result<String, String> {
        loop {
            if let Some(end) = self.buffer.windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8_lossy(&self.buffer[..end]).into_owned();
                self.buffer.drain(..end + 2);
                return Ok(line);
            }
            if self.buffer.len() > MAX_LINE_BYTES {
                return Err("protocol line too long".to_string());
            }
            self.fill().await?;
        }
    }

    async fn read_payload(&mut self, size: usize) -> Result<Vec<u8>, NatsError> {
        while self.buffer.len() < size + 2 {
            self.fill().await.map_err(NatsError::InDoubt)?;
        }
        let payload = self.buffer[..size].to_vec();
        self.buffer.drain(..size + 2);
        Ok(payload)
    }
}

impl SutClient for NatsClient {
    async fn invoke(&mut self, op: &Op) -> OpReply {
        match op {
            Op::Read { key } => match self.last(key).await {
                Ok((value, _)) => OpReply::Ok(Some(value)),
                Err(error) => OpReply::Fail(format!("{error:?}")),
            },
            Op::Write { key, value } => match self.publish(key, *value, None).await {
                Ok(()) => OpReply::Ok(None),
                Err(error) => outcome(error),
            },
            Op::Cas { key, old, new } => {
                let (value, sequence) = match self.last(key).await {
                    Ok(found) => found,
                    Err(error) => return OpReply::Fail(format!("{error:?}")),
                };
                if value != *old {
                    return OpReply::Fail(format!("{key} is {value}, not {old}"));
                }
                match self.publish(key, *new, Some(sequence)).await {
                    Ok(()) => OpReply::Ok(None),
                    Err(error) => outcome(error),
                }
            }
            Op::Add { key, delta } => self.add(key, *delta).await,
        }
    }
}

/// The stream's message count as each node reports it.
async fn stream_messages(client: &mut NatsClient) -> Option<u64> {
    let reply = tokio::time::timeout(
        Duration::from_secs(2),
        client.request(&format!("$JS.API.STREAM.INFO.{STREAM}"), &[], b""),
    )
    .await
    .ok()?
    .ok()?;
    let info: Value = serde_json::from_slice(&reply.payload).ok()?;
    info["state"]["messages"].as_u64()
}

/// Acknowledged publishes against the messages the stream holds after the run: every
/// acknowledged publish is one message (nothing expires), so fewer messages than
/// acknowledgements is lost acknowledged data.
pub(super) async fn count_publishes(
    nats: &Nats,
    network: &Network,
    records: &[minos_checker::history::HistoryRecord],
    keys: usize,
) -> Value {
    use minos_checker::history::{Process, RecordType};
    let updates = |kind: RecordType| {
        records
            .iter()
            .filter(|record| {
                record.kind == kind
                    && matches!(record.process, Process::Client(_))
                    && matches!(record.f.as_str(), "write" | "cas" | "add")
            })
            .count()
    };
    // Each update acknowledged is one message; the key initialisation wrote `keys` more.
    let acknowledged = updates(RecordType::Ok) + keys;
    let in_doubt = updates(RecordType::Info);
    let mut client = nats.client(network, 0);
    let mut messages = None;
    for node in 0..network.node_ips.len() {
        client = nats.client(network, node);
        if let Some(count) = stream_messages(&mut client).await {
            messages = Some(count);
            break;
        }
    }
    drop(client);
    let lost = messages.map(|count| (acknowledged as u64).saturating_sub(count));
    json!({
        "acknowledged_publishes": acknowledged,
        "in_doubt_publishes": in_doubt,
        "stream_messages": messages,
        "acknowledged_but_missing_at_least": lost,
        "note": "an in-doubt publish may or may not be in the stream; messages < acknowledged means acknowledged writes were lost",
    })
}

//! `minos node` as real processes: our own Raft store, one `minos node` per namespace on real
//! UDP sockets and real files, driven through the store's own client library
//! (`minos_node::Client` on `Network::Real`), which follows leader redirects and retries
//! with the same (client id, seq) so an op applies at most once. `--bug` switches a planted
//! bug on in every server (read-path bugs such as `stale-local-read` make sense here).
//!
//! Error classification is the client library's: `fail` when the op was certainly not
//! applied (never proposed, or a cas whose compare failed), `info` when it may have been.
//!
//! Authentication: every run makes its own cluster key (`cluster.key`, mode 0600, beside the
//! nodes' data dirs) from the operating system's randomness; [`MinosNode::auth_args`] passes
//! it to the servers and [`MinosNode::config`] to the clients.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use minos_node::auth::ClusterKey;
use minos_node::{Client, ClientConfig, OpOutcome};
use serde_json::Value;

use super::{Adapter, Network};
use crate::options::{ReadMode, RunOptions};
use crate::sut::{OpReply, SutClient};
use crate::workload::{key_name, Op};

const PORT: u16 = 7001;

/// Client ids must be unique across the run (they key the store's session table).
static CLIENT_IDS: AtomicU64 = AtomicU64::new(1);

pub struct MinosNode {
    binary: String,
    seed: u64,
    bugs: Vec<String>,
    op_timeout_ms: u64,
    /// The cluster key and the file it lives in, made with the first server's arguments; a
    /// cluster with other data dirs (each row of `minos quorum` is a new cluster) gets its own.
    cluster_key: Mutex<Option<(std::path::PathBuf, ClusterKey)>>,
    read_mode: ReadMode,
}

impl MinosNode {
    pub fn new(options: &RunOptions) -> MinosNode {
        // The server is this very program (`minos node`); tests name it with MINOS_BIN.
        let binary = std::env::var("MINOS_BIN").ok().unwrap_or_else(|| {
            std::env::current_exe()
                .map(|path| path.display().to_string())
                .unwrap_or_else(|_| "minos".to_string())
        });
        MinosNode {
            binary,
            seed: options.seed,
            bugs: options.bug_names(),
            op_timeout_ms: options.op_timeout_ms,
            cluster_key: Mutex::new(None),
            read_mode: options.read_mode,
        }
    }

    /// `--cluster-key FILE` for a server whose data dir is `data_dir`: the run's key file lies
    /// beside the data dirs and is made once (a restarted server finds it there).
    fn auth_args(&self, data_dir: &Path) -> Vec<String> {
        let path = data_dir
            .parent()
            .unwrap_or(Path::new("."))
            .join("cluster.key");
        let mut key = self.cluster_key.lock().unwrap_or_else(|e| e.into_inner());
        // The key of an earlier cluster whose data dirs are gone must not be handed on: the
        // servers would be pointed at a file that no longer exists.
        if key.as_ref().is_none_or(|(known, _)| *known != path) {
            let made = if path.exists() {
                ClusterKey::load(&path)
            } else {
                ClusterKey::write_new(&path)
            };
            match made {
                Ok(made) => *key = Some((path.clone(), made)),
                // The server then refuses to start and says why; the run reports that.
                Err(error) => tracing::error!(%error, "cluster key for minos node"),
            }
        }
        vec!["--cluster-key".to_string(), path.display().to_string()]
    }

    fn addresses(network: &Network) -> Vec<String> {
        (0..network.node_ips.len())
            .map(|node| SocketAddr::new(network.ip(node).into(), PORT).to_string())
            .collect()
    }

    fn config(&self, network: &Network, client_id: u64) -> ClientConfig {
        let mut config = ClientConfig::new(
            client_id,
            Self::addresses(network),
            minos_node::Network::Real,
        );
        config.op_timeout_ms = self.op_timeout_ms;
        config.local_ip = Some(network.host_ip.into());
        if let Some(key) = self
            .cluster_key
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
        {
            config.cluster_key = key.1;
        }
        // Each client sends every op to its own node first, as the etcd and nats clients do
        // (client i to node i mod N): a node that wrongly believes it leads, or answers reads
        // on its own (stale mode), is asked all through the run, not only until the client
        // finds the current leader.
        config.ops_at_home = true;
        // One attempt waits 100 ms, not the library's 250: a commit on the bridge takes a few
        // ms, and a client stuck on a node that cannot commit (a deposed leader behind a
        // partition) comes back to its own node sooner. A retry keeps (client id, seq), so
        // the store still applies the op at most once.
        config.request_timeout_ms = 100;
        config
    }
}

impl Adapter for MinosNode {
    type Client = MinosNodeClient;

    fn name(&self) -> &'static str {
        "minos-node"
    }

    fn binary(&self) -> String {
        self.binary.clone()
    }

    fn package(&self) -> &'static str {
        "minos (this program; `cargo build --release`)"
    }

    fn version(&self) -> String {
        super::sys::version_line(&self.binary, &["--version"])
    }

    fn read_modes(&self) -> &'static [ReadMode] {
        &ReadMode::ALL
    }

    fn server_args(&self, node: usize, network: &Network, data_dir: &Path) -> Vec<String> {
        let peers: Vec<String> = Self::addresses(network)
            .iter()
            .enumerate()
            .map(|(peer, address)| format!("{}={address}", peer + 1))
            .collect();
        let mut args = vec![
            "node".to_string(),
            "--id".to_string(),
            (node + 1).to_string(),
            "--listen".to_string(),
            SocketAddr::new(network.ip(node).into(), PORT).to_string(),
            "--peers".to_string(),
            peers.join(","),
            "--data-dir".to_string(),
            data_dir.display().to_string(),
            "--seed".to_string(),
            (self.seed.wrapping_add(node as u64)).to_string(),
            "--read-mode".to_string(),
            self.read_mode.name().to_string(),
        ];
        for bug in &self.bugs {
            args.push("--bug".to_string());
            args.push(bug.clone());
        }
        args.extend(self.auth_args(data_dir));
        args
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
                let id = CLIENT_IDS.fetch_add(1, Ordering::Relaxed);
                match Client::connect(self.config(network, id)).await {
                    Ok(mut client) => match client.write(&key_name(key), 0).await {
                        OpOutcome::Ok(()) => break,
                        OpOutcome::Fail(error) | OpOutcome::Unknown(error) => last_error = error,
                    },
                    Err(error) => last_error = error.to_string(),
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        Ok(())
    }

    async fn leader(&self, network: &Network, _live: &[bool]) -> Option<usize> {
        let id = CLIENT_IDS.fetch_add(1, Ordering::Relaxed);
        let mut config = self.config(network, id);
        config.op_timeout_ms = 700;
        let mut client = Client::connect(config).await.ok()?;
        let OpOutcome::Ok(text) = client.admin(minos_node::protocol::AdminOp::Members).await else {
            return None;
        };
        let members: Value = serde_json::from_str(&text).ok()?;
        let leader = members["leader"].as_u64()?;
        (leader >= 1 && (leader as usize) <= network.node_ips.len()).then(|| leader as usize - 1)
    }

    fn client(&self, network: &Network, node: usize) -> MinosNodeClient {
        // Ids are spaced so that id % nodes == node: the client starts at its own node.
        let nodes = network.node_ips.len() as u64;
        let base = CLIENT_IDS.fetch_add(nodes, Ordering::Relaxed);
        let id = base - base % nodes + node as u64 + nodes;
        MinosNodeClient {
            config: self.config(network, id),
            client: None,
        }
    }
}

pub struct MinosNodeClient {
    config: ClientConfig,
    client: Option<Client>,
}

fn reply<T>(outcome: OpOutcome<T>, value: impl FnOnce(T) -> Option<i64>) -> OpReply {
    match outcome {
        OpOutcome::Ok(result) => OpReply::Ok(value(result)),
        OpOutcome::Fail(error) => OpReply::Fail(error),
        OpOutcome::Unknown(error) => OpReply::Unknown(error),
    }
}

impl SutClient for MinosNodeClient {
    async fn invoke(&mut self, op: &Op) -> OpReply {
        if self.client.is_none() {
            match Client::connect(self.config.clone()).await {
                Ok(client) => self.client = Some(client),
                // Nothing was sent: a definite non-event.
                Err(error) => return OpReply::Fail(format!("client socket: {error}")),
            }
        }
        let client = self.client.as_mut().expect("connected above");
        match op {
            Op::Read { key } => reply(client.read(key).await, Some),
            Op::Add { key, delta } => reply(client.add(key, *delta).await, Some),
            Op::Write { key, value } => reply(client.write(key, *value).await, |_| None),
            Op::Cas { key, old, new } => reply(client.cas(key, *old, *new).await, |_| None),
        }
    }
}

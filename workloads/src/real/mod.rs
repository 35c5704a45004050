//! Real clusters: etcd, NATS JetStream and `minos node` as real server processes, each in its
//! own network namespace on a bridge made for the run, driven in real time by the same
//! workload generators, recorded by the same recorder, judged by the same checker and written
//! to the same run directory as simulated runs. Real runs cannot be replayed bit-exactly; their
//! results.json says so and records the system's version and the schedule as applied.
//!
//! Layout: `sys` (host tools, preflight), `guard` (cleanup on every exit path), `netns`
//! (namespaces, bridge, veths), `nft` (partitions and loss), `cluster` (processes), `faults`
//! (the real nemesis), `driver` (real-time clients, schedule, liveness), `http` (HTTP/1.1
//! over tokio), and one module per adapter (`etcd`, `nats`, `minos_node`).

#![allow(async_fn_in_trait)] // the real driver runs on one thread (a LocalSet): no Send needed

pub mod cluster;
pub mod driver;
pub mod etcd;
pub mod faults;
pub mod guard;
pub mod http;
pub mod minos_node;
pub mod nats;
pub mod netns;
pub mod nft;
pub mod quorum;
pub mod sys;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use crate::options::{FaultKind, ReadMode, RunOptions, SystemKind};
use crate::sut::SutClient;
use crate::{RunError, RunOutcome};

pub use netns::Network;

/// Faults every real adapter takes: process signals and nftables rules.
pub fn real_faults() -> BTreeSet<FaultKind> {
    [
        FaultKind::Partition,
        FaultKind::PartitionOneway,
        FaultKind::Kill,
        FaultKind::Pause,
        FaultKind::Loss,
    ]
    .into_iter()
    .collect()
}

/// One real system: how to start its servers and how clients talk to them.
pub trait Adapter {
    type Client: SutClient + 'static;

    /// As in results.json and `--system`.
    fn name(&self) -> &'static str;
    /// The server program: a name looked up on PATH, or a path.
    fn binary(&self) -> String;
    /// The Debian package that provides it (for the install command).
    fn package(&self) -> &'static str;
    /// `<binary> --version`, first line.
    fn version(&self) -> String;
    fn supported_faults(&self) -> BTreeSet<FaultKind> {
        real_faults()
    }
    /// The read modes this system offers (the first is the default).
    fn read_modes(&self) -> &'static [ReadMode];
    /// The arguments of node `node`'s server; the same on restart (its data dir persists).
    fn server_args(&self, node: usize, network: &Network, data_dir: &Path) -> Vec<String>;
    /// Waits until the cluster takes writes and initialises the keys to 0.
    async fn prepare(
        &self,
        network: &Network,
        keys: usize,
        deadline: Duration,
    ) -> Result<(), String>;
    /// The node that leads now, asked of the live nodes (None when none answers).
    async fn leader(&self, network: &Network, live: &[bool]) -> Option<usize>;
    /// A client process talking to node `node`.
    fn client(&self, network: &Network, node: usize) -> Self::Client;
    /// After the run (faults healed, cluster still up): what the system itself reports about
    /// the data, checked against the history (`real.final_state` in results.json).
    async fn final_state(
        &self,
        _network: &Network,
        _records: &[minos_checker::history::HistoryRecord],
        _keys: usize,
    ) -> serde_json::Value {
        serde_json::Value::Null
    }
}

/// Runs one real-cluster test under `options` and writes its run directory.
pub fn run(options: &RunOptions) -> Result<RunOutcome, RunError> {
    match options.system {
        SystemKind::Etcd => driver::run_real(options, etcd::Etcd::new(options)),
        SystemKind::Nats => driver::run_real(options, nats::Nats::new(options)),
        SystemKind::MinosNode => driver::run_real(options, minos_node::MinosNode::new(options)),
        other => Err(RunError::BadOptions(format!(
            "--system {} is not a real system",
            other.name()
        ))),
    }
}

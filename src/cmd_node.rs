//! `minos node`: serve the counter store as a real process (real UDP sockets, real files).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;
use minos_node::auth::ClusterKey;
use minos_node::bugs::{Bug, Bugs};
use minos_node::server::NodeError;
use minos_node::storage::StorageError;
use minos_node::{NodeOptions, ReadMode};

use crate::exit;

#[derive(Args)]
pub struct NodeArgs {
    /// This node's id (a key of --peers).
    #[arg(long)]
    id: u64,
    /// The UDP address to bind, e.g. 127.0.0.1:7001 (peers and clients use the same socket).
    #[arg(long)]
    listen: SocketAddr,
    /// Every voter as ID=HOST:PORT, comma-separated, this node included.
    #[arg(long)]
    peers: String,
    /// Where the hard state, log and snapshot live (created if missing).
    #[arg(long)]
    data_dir: PathBuf,
    /// The cluster key (create it with `minos keygen FILE`; mode 0600). Every datagram to and
    /// from this node is authenticated with it; others are dropped and counted.
    #[arg(long, value_name = "FILE")]
    cluster_key: PathBuf,
    /// Milliseconds per Raft tick.
    #[arg(long, default_value_t = 10)]
    tick_ms: u64,
    /// Seed for election timeouts.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// How reads are served: read-index (default), lease, log, or stale (any node answers
    /// from its own state: not linearizable, a control for the checker).
    #[arg(long, default_value = "read-index", value_parser = ["read-index", "lease", "log", "stale"])]
    read_mode: String,
    /// Snapshot the state and compact the log every N applied entries (0: never).
    #[arg(long, default_value_t = NodeOptions::DEFAULT_SNAPSHOT_EVERY)]
    snapshot_every: u64,
    /// The voters the cluster starts with, comma-separated (default: every id of --peers).
    /// `--bootstrap 1` on node 1 starts a one-server cluster that elects itself; other nodes
    /// (started with --join) are then added with `minos client add-member`.
    #[arg(long)]
    bootstrap: Option<String>,
    /// This node joins an existing cluster: it is not a voter until a leader adds it. Its
    /// --peers need only list itself and the bootstrap voters.
    #[arg(long)]
    join: bool,
    /// Switch on a planted bug (repeatable).
    #[arg(long = "bug")]
    bugs: Vec<String>,
}

fn parse_peers(text: &str) -> Result<BTreeMap<u64, String>, String> {
    let mut peers = BTreeMap::new();
    for item in text.split(',').filter(|item| !item.trim().is_empty()) {
        let (id, address) = item
            .trim()
            .split_once('=')
            .ok_or_else(|| format!("peer {item:?} is not ID=HOST:PORT"))?;
        let id: u64 = id
            .parse()
            .map_err(|_| format!("peer id {id:?} is not a number"))?;
        if !address.contains(':') {
            return Err(format!("peer address {address:?} has no port"));
        }
        if peers.insert(id, address.to_string()).is_some() {
            return Err(format!("peer {id} is listed twice"));
        }
    }
    if peers.is_empty() {
        return Err("--peers lists no node".into());
    }
    Ok(peers)
}

pub fn main(args: NodeArgs) -> i32 {
    let peers = match parse_peers(&args.peers) {
        Ok(peers) => peers,
        Err(problem) => {
            eprintln!("minos node: {problem}");
            return exit::BAD_INPUT;
        }
    };
    if !peers.contains_key(&args.id) {
        eprintln!(
            "minos node: --peers does not include this node's id {}",
            args.id
        );
        return exit::BAD_INPUT;
    }
    let bootstrap_voters = match &args.bootstrap {
        None => None,
        Some(text) => {
            let parsed: Result<Vec<u64>, _> = text
                .split(',')
                .filter(|item| !item.trim().is_empty())
                .map(|item| item.trim().parse::<u64>())
                .collect();
            match parsed {
                Ok(voters) if !voters.is_empty() => Some(voters),
                _ => {
                    eprintln!("minos node: --bootstrap wants node ids like 1,2,3, got {text:?}");
                    return exit::BAD_INPUT;
                }
            }
        }
    };
    if args.join
        && bootstrap_voters
            .as_ref()
            .is_some_and(|voters| voters.contains(&args.id))
    {
        eprintln!("minos node: a --join node cannot be one of the --bootstrap voters");
        return exit::BAD_INPUT;
    }
    // A regular file where the data directory should be is the user's mistake, not ours.
    if args.data_dir.exists() && !args.data_dir.is_dir() {
        eprintln!(
            "minos node: --data-dir {} exists and is not a directory",
            args.data_dir.display()
        );
        return exit::BAD_INPUT;
    }
    let cluster_key = match ClusterKey::load(&args.cluster_key) {
        Ok(key) => key,
        Err(error) => {
            eprintln!("minos node: --cluster-key {error}");
            return exit::BAD_INPUT;
        }
    };
    let mut bugs = Bugs::NONE;
    for name in &args.bugs {
        match name.parse::<Bug>() {
            Ok(bug) => bugs = bugs.with(bug),
            Err(problem) => {
                eprintln!("minos node: {problem}");
                return exit::BAD_INPUT;
            }
        }
    }
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
    let mut options = NodeOptions::new(args.id, peers, args.data_dir, args.seed);
    options.listen_ip = Some(args.listen.ip());
    options.listen_port = args.listen.port();
    options.tick_ms = args.tick_ms;
    options.bugs = bugs;
    options.snapshot_every = args.snapshot_every;
    options.cluster_key = cluster_key;
    options.bootstrap_voters = match bootstrap_voters {
        Some(voters) => Some(voters),
        // Joining: the bootstrap voters are the other nodes listed.
        None if args.join => Some(
            options
                .peers
                .keys()
                .copied()
                .filter(|peer| *peer != args.id)
                .collect(),
        ),
        None => None,
    };
    options.read_mode = match args.read_mode.as_str() {
        "lease" => ReadMode::Lease,
        "log" => ReadMode::Log,
        "stale" => ReadMode::Stale,
        _ => ReadMode::ReadIndex,
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("minos node: cannot start the runtime: {error}");
            return exit::INTERNAL;
        }
    };
    let id = args.id;
    let result = runtime.block_on(async move {
        tokio::select! {
            biased;
            _ = tokio::signal::ctrl_c() => {
                tracing::info!(node = id, "interrupted; stopping");
                Ok(())
            }
            result = minos_node::process::run_node(options) => result,
        }
    });
    match result {
        Ok(()) => exit::VALID,
        Err(error @ (NodeError::Options(_) | NodeError::Storage(StorageError::Corrupt { .. }))) => {
            eprintln!("minos node {id}: {error}");
            exit::BAD_INPUT
        }
        // A violation was found (DESIGN.md exit 1): this node or the cluster broke safety.
        Err(error @ NodeError::Safety(_)) => {
            eprintln!("minos node {id}: {error}");
            exit::INVALID
        }
        Err(error) => {
            eprintln!("minos node {id}: {error}");
            exit::INTERNAL
        }
    }
}

//! The quorum table measured on real clusters (`minos quorum --system minos-node|etcd`): the
//! same procedure and report as the simulated measurement (`crate::quorum`), with real
//! processes killed by SIGKILL in their namespaces. Real time: the figures do not replay
//! exactly, and the report says so.

use std::path::Path;
use std::time::{Duration, Instant};

use super::cluster::Cluster;
use super::guard::{interrupted, Guard};
use super::{sys, Adapter, Network};
use crate::options::{RunOptions, SystemKind};
use crate::quorum::{KillStep, QuorumReport, QuorumRow, MAX_SERVERS};
use crate::schedule::node_name;
use crate::sut::{OpReply, SutClient};
use crate::workload::Op;
use crate::RunError;

/// How long a fresh cluster may take to commit its first write.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// One attempt of a write: a server that lost its leader may hold a request for its own
/// request timeout (etcd: about 7 s), longer than the whole write timeout, while a new
/// leader is elected; a fresh attempt on the next live server then commits.
const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(1_000);

/// Measures the table for 1..=max_servers servers of a real system; `work_dir` holds the
/// servers' data and logs while they run (each row's data is removed after the row).
pub fn real_report(
    system: SystemKind,
    max_servers: usize,
    write_timeout_ms: u64,
    seed: u64,
    work_dir: &Path,
) -> Result<QuorumReport, RunError> {
    assert!((1..=MAX_SERVERS).contains(&max_servers));
    let mut options = RunOptions::new(seed);
    options.system = system;
    options.op_timeout_ms = write_timeout_ms;
    match system {
        SystemKind::Etcd => measure(
            super::etcd::Etcd::new(&options),
            &options,
            max_servers,
            work_dir,
        ),
        SystemKind::MinosNode => measure(
            super::minos_node::MinosNode::new(&options),
            &options,
            max_servers,
            work_dir,
        ),
        other => Err(RunError::BadOptions(format!(
            "minos quorum measures raft (simulated), minos-node and etcd, not {}",
            other.name()
        ))),
    }
}

fn measure<A: Adapter>(
    adapter: A,
    options: &RunOptions,
    max_servers: usize,
    work_dir: &Path,
) -> Result<QuorumReport, RunError> {
    // A missing binary, root or nft is the user's to fix (exit 254); the rest is ours.
    sys::preflight(&adapter.binary(), adapter.package()).map_err(RunError::BadOptions)?;
    measure_rows(adapter, options, max_servers, work_dir).map_err(RunError::Simulation)
}

fn measure_rows<A: Adapter>(
    adapter: A,
    options: &RunOptions,
    max_servers: usize,
    work_dir: &Path,
) -> Result<QuorumReport, String> {
    let version = adapter.version();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| format!("tokio runtime: {error}"))?;
    let mut rows = Vec::new();
    for servers in 1..=max_servers {
        let row_dir = work_dir.join(format!("{}-{servers}", adapter.name()));
        let data_dir = row_dir.join("data");
        let logs_dir = row_dir.join("nodes");
        std::fs::create_dir_all(&data_dir)
            .and_then(|()| std::fs::create_dir_all(&logs_dir))
            .map_err(|error| format!("{}: {error}", row_dir.display()))?;
        let data_dir = std::path::absolute(&data_dir).unwrap_or(data_dir);
        let guard = Guard::new();
        let row = {
            let network = Network::create(&guard, servers)?;
            let args = (0..servers)
                .map(|node| adapter.server_args(node, &network, &data_dir.join(node_name(node))))
                .collect();
            let mut cluster = Cluster::new(&guard, network, &adapter.binary(), args, &logs_dir);
            runtime.block_on(measure_row(&adapter, &mut cluster, options.op_timeout_ms))
            // The cluster drops here: every server is killed before the network goes.
        };
        let problems = guard.cleanup();
        let _ = std::fs::remove_dir_all(&data_dir);
        if !problems.is_empty() {
            return Err(format!("cleanup failed: {}", problems.join("; ")));
        }
        let row = row?;
        eprintln!(
            "minos quorum: {} servers: {} tolerated ({} steps)",
            servers,
            row.tolerated,
            row.steps.len()
        );
        rows.push(row);
    }
    Ok(QuorumReport {
        system: adapter.name().to_string(),
        version,
        write_timeout_ms: options.op_timeout_ms,
        bit_exact: false,
        seed: options.seed,
        rows,
    })
}

/// One write, retried on fresh clients over the live servers until one attempt commits or
/// the timeout passes (a refusal or a held request during an election is not yet a verdict;
/// only an acknowledged commit counts).
async fn write<A: Adapter>(
    adapter: &A,
    cluster: &Cluster<'_>,
    value: i64,
    timeout: Duration,
) -> (bool, u64, Option<String>) {
    let started = Instant::now();
    let live: Vec<usize> = (0..cluster.nodes())
        .filter(|node| cluster.is_live(*node))
        .collect();
    if live.is_empty() {
        return (false, 0, Some("no server is running".into()));
    }
    let op = Op::Write {
        key: crate::workload::key_name(0),
        value,
    };
    let mut attempt = 0;
    let mut problem = String::from("no attempt");
    loop {
        let left = timeout.saturating_sub(started.elapsed());
        if left.is_zero() || interrupted() {
            return (
                false,
                started.elapsed().as_millis() as u64,
                Some(format!(
                    "no commit within {} ms ({problem})",
                    timeout.as_millis()
                )),
            );
        }
        let mut client = adapter.client(&cluster.network, live[attempt % live.len()]);
        attempt += 1;
        match tokio::time::timeout(left.min(ATTEMPT_TIMEOUT), client.invoke(&op)).await {
            Ok(OpReply::Ok(_)) => return (true, started.elapsed().as_millis() as u64, None),
            Ok(OpReply::Fail(reason) | OpReply::Unknown(reason)) => problem = reason,
            Err(_) => problem = "the write did not answer".into(),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn measure_row<A: Adapter>(
    adapter: &A,
    cluster: &mut Cluster<'_>,
    write_timeout_ms: u64,
) -> Result<QuorumRow, String> {
    let servers = cluster.nodes();
    for node in 0..servers {
        cluster.start(node)?;
    }
    adapter
        .prepare(&cluster.network, 1, START_TIMEOUT)
        .await
        .map_err(|error| {
            format!(
                "the {servers}-server {} cluster did not start: {error}",
                adapter.name()
            )
        })?;
    let timeout = Duration::from_millis(write_timeout_ms);
    let mut steps = Vec::new();
    for kill in 1..=servers {
        if interrupted() {
            return Err("interrupted".into());
        }
        let live: Vec<bool> = (0..servers).map(|node| cluster.is_live(node)).collect();
        // The leader first: each step then also needs an election among the survivors.
        let victim = match adapter.leader(&cluster.network, &live).await {
            Some(leader) if live[leader] => leader,
            _ => (0..servers)
                .rev()
                .find(|node| live[*node])
                .expect("a live server remains while kills < servers"),
        };
        cluster.kill(victim)?;
        let (committed, write_ms, problem) = write(adapter, cluster, kill as i64, timeout).await;
        steps.push(KillStep {
            killed: node_name(victim),
            live: servers - kill,
            committed,
            write_ms,
            problem,
        });
        if !committed {
            break;
        }
    }
    Ok(QuorumRow::new(servers, steps))
}

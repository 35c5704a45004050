//! `minos client`: one operation against a real cluster of `minos node` processes.
//! Prints the result; exits 0 ok, 1 fail (certainly not applied), 2 unknown (may have applied).

use std::path::PathBuf;

use clap::{Args, Subcommand};
use minos_node::auth::ClusterKey;
use minos_node::protocol::AdminOp;
use minos_node::{Client, ClientConfig, Network, OpOutcome};

use crate::exit;

#[derive(Args)]
pub struct ClientArgs {
    /// Every node's HOST:PORT, comma-separated.
    #[arg(long)]
    cluster: String,
    /// Give up on the operation after this long (it then ends unknown, or fail if it was never proposed).
    #[arg(long, default_value_t = 5_000)]
    timeout_ms: u64,
    /// How long one attempt waits for a reply before trying another node.
    #[arg(long, default_value_t = 250)]
    request_timeout_ms: u64,
    /// The client's session id (default: unique per invocation). Reusing an id across
    /// invocations makes the store treat the new op as a retry of the old one.
    #[arg(long)]
    client_id: Option<u64>,
    /// The cluster key the nodes were started with (`minos node --cluster-key`). Every
    /// request, data and admin alike, is authenticated with it, and replies that do not
    /// verify are ignored.
    #[arg(long, value_name = "FILE")]
    cluster_key: PathBuf,
    #[command(subcommand)]
    op: ClientOp,
}

#[derive(Subcommand)]
enum ClientOp {
    /// Print the value of counter KEY (0 when absent).
    Read { key: String },
    /// Add DELTA to KEY and print the new total.
    Add {
        key: String,
        #[arg(allow_negative_numbers = true)]
        delta: i64,
    },
    /// Set KEY to VALUE.
    Write {
        key: String,
        #[arg(allow_negative_numbers = true)]
        value: i64,
    },
    /// Set KEY to NEW if it is OLD (fails otherwise).
    Cas {
        key: String,
        #[arg(allow_negative_numbers = true)]
        old: i64,
        #[arg(allow_negative_numbers = true)]
        new: i64,
    },
    /// Add node ID (a `minos node` listening at ADDRESS, started with --join) as a learner;
    /// the leader promotes it to voter once its log has caught up.
    AddMember { id: u64, address: String },
    /// Remove node ID from the cluster (the leader included).
    RemoveMember { id: u64 },
    /// Print the configuration (leader, voters, learners, addresses) as JSON.
    Members,
    /// Ask the leader to hand leadership to node ID.
    TransferLeader { id: u64 },
}

/// A session id that no other invocation is likely to use: wall time mixed with the pid.
fn fresh_client_id() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_nanos() as u64)
        .unwrap_or(0);
    let mixed = nanos ^ (u64::from(std::process::id())).rotate_left(40);
    mixed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1
}

fn report<T>(outcome: OpOutcome<T>, print: impl FnOnce(T) -> String) -> i32 {
    match outcome {
        OpOutcome::Ok(value) => {
            println!("{}", print(value));
            exit::VALID
        }
        OpOutcome::Fail(reason) => {
            eprintln!("fail: {reason}");
            exit::INVALID
        }
        OpOutcome::Unknown(reason) => {
            eprintln!("unknown: {reason}");
            exit::UNKNOWN
        }
    }
}

pub fn main(args: ClientArgs) -> i32 {
    let cluster: Vec<String> = args
        .cluster
        .split(',')
        .map(str::trim)
        .filter(|node| !node.is_empty())
        .map(String::from)
        .collect();
    if cluster.is_empty() || cluster.iter().any(|node| !node.contains(':')) {
        eprintln!(
            "minos client: --cluster wants HOST:PORT[,HOST:PORT...], got {:?}",
            args.cluster
        );
        return exit::BAD_INPUT;
    }
    if args.timeout_ms == 0 || args.request_timeout_ms == 0 {
        eprintln!("minos client: timeouts must be positive");
        return exit::BAD_INPUT;
    }
    let key = match &args.op {
        ClientOp::Read { key }
        | ClientOp::Add { key, .. }
        | ClientOp::Write { key, .. }
        | ClientOp::Cas { key, .. } => Some(key),
        _ => None,
    };
    if let Some(key) = key.filter(|key| key.len() > Client::MAX_KEY_BYTES) {
        eprintln!(
            "minos client: key is {} bytes, the limit is {} (a request must fit in one datagram)",
            key.len(),
            Client::MAX_KEY_BYTES
        );
        return exit::BAD_INPUT;
    }
    let cluster_key = match ClusterKey::load(&args.cluster_key) {
        Ok(key) => key,
        Err(error) => {
            eprintln!("minos client: --cluster-key {error}");
            return exit::BAD_INPUT;
        }
    };
    let mut config = ClientConfig::new(
        args.client_id.unwrap_or_else(fresh_client_id),
        cluster,
        Network::Real,
    );
    config.op_timeout_ms = args.timeout_ms;
    config.request_timeout_ms = args.request_timeout_ms;
    config.cluster_key = cluster_key;
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("minos client: cannot start the runtime: {error}");
            return exit::INTERNAL;
        }
    };
    runtime.block_on(async move {
        let mut client = match Client::connect(config).await {
            Ok(client) => client,
            Err(error) => {
                eprintln!("minos client: {error}");
                return exit::BAD_INPUT;
            }
        };
        match args.op {
            ClientOp::Read { key } => report(client.read(&key).await, |value| value.to_string()),
            ClientOp::Add { key, delta } => {
                report(client.add(&key, delta).await, |total| total.to_string())
            }
            ClientOp::Write { key, value } => {
                report(client.write(&key, value).await, |()| "ok".to_string())
            }
            ClientOp::Cas { key, old, new } => {
                report(client.cas(&key, old, new).await, |()| "ok".to_string())
            }
            ClientOp::AddMember { id, address } => {
                let op = AdminOp::AddMember { id, address };
                report(client.admin(op).await, |text| text)
            }
            ClientOp::RemoveMember { id } => {
                report(client.admin(AdminOp::RemoveMember { id }).await, |text| {
                    text
                })
            }
            ClientOp::Members => report(client.admin(AdminOp::Members).await, |text| text),
            ClientOp::TransferLeader { id } => {
                let op = AdminOp::TransferLeader { to: id };
                report(client.admin(op).await, |text| text)
            }
        }
    })
}

//! The system under test: a Raft-replicated store of keyed i64 counters. It owns the
//! sans-IO Raft core, durable storage, the replicated state machine, the transport (turmoil
//! or real sockets) and the client library that reports each op as ok, fail or unknown.
//!
//! Module map: `raft` (the sans-IO core), `store` (counters + client sessions), `storage`
//! (hard state + log on real or simulated files), `transport` and `protocol` (UDP datagrams),
//! `faults` (disk and network fault wrappers, switched from outside), `auth` (every datagram
//! sealed with HMAC-SHA256 under the cluster key; `NodeOptions::cluster_key`,
//! `ClientConfig::cluster_key`), `drops` (counted, rate-limited logging of dropped datagrams),
//! `server` (the event loop) with `apply_queue` (commit runs ahead of apply), `control` and
//! `observe` (the harness's handle: faults in, observations out), `client`, `sim` (a node as a
//! turmoil host) and `process` (a node as a real process).
//!
//! In a simulation, per node, once before the run:
//! ```ignore
//! let control = NodeControl::new(id, seed);
//! let options = NodeOptions::new(id, peers.clone(), "/data", seed); // peers: id -> "n1:7000"
//! sim.host(format!("n{id}"), move || minos_node::sim::run_node(options.clone(), control.clone()));
//! // later: control.set_net_faults(..), control.pause(), control.status(), control.applied_since(n)
//! ```
//! and in a client host: `Client::connect(ClientConfig::new(client_id, cluster, Network::Simulated))`.
//! Give turmoil a large `udp_capacity`: a paused node's socket queues every datagram sent to it.
//!
//! Snapshots: `NodeOptions::snapshot_every` (0 = never, the default here; `minos node` uses
//! `NodeOptions::DEFAULT_SNAPSHOT_EVERY` = 1000). A node caught up by a snapshot records the
//! entries it skipped as `AppliedEntry::from_snapshot` placeholders (term 0) in its applied
//! sequence: invariant checkers must not compare those.
//! Membership: `NodeOptions::bootstrap_voters` (e.g. `Some(vec![1])` on every node starts a
//! one-server cluster), `control.request_add_member(id, "n4:7000")`,
//! `control.request_remove_member(id)`; the configuration shows in
//! `NodeObservation::{voters, learners}`; `Client::admin(AdminOp::..)` for real clients.

mod apply_queue;
pub mod auth;
pub mod bugs;
pub mod client;
pub mod codec;
pub mod control;
pub mod drops;
pub mod faults;
pub mod observe;
pub mod process;
pub mod protocol;
pub mod raft;
pub mod server;
pub mod sim;
pub mod storage;
pub mod store;
pub mod transport;
mod wire_raft;

pub use client::{Client, ClientConfig, OpOutcome};
pub use control::NodeControl;
pub use faults::{DiskFaults, NetDelay, NetFaults, NetSwitch, SlowFsync};
pub use observe::{AppliedEntry, GrantedVote, NodeObservation, ReplicaState};
pub use server::{NodeOptions, ReadMode};
pub use transport::Network;

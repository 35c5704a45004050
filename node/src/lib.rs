//! The system under test: a Raft-replicated store of keyed i64 counters. It owns the
//! sans-IO Raft core, durable storage, the replicated state machine, the transport (turmoil
//! or real sockets) and the client library that reports each op as ok, fail or unknown.

pub mod bugs;
pub mod client;
pub mod codec;
pub mod control;
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
pub use control::{DiskFaults, NetFaults, NodeControl};
pub use observe::{AppliedEntry, NodeObservation};
pub use server::{NodeOptions, ReadMode};
pub use transport::Network;

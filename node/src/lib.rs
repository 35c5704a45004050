//! The system under test: a Raft-replicated store of keyed i64 counters. It owns the
//! sans-IO Raft core, durable storage, the replicated state machine, the transport (turmoil
//! or real sockets) and the client library that reports each op as ok, fail or unknown.

pub mod bugs;
pub mod raft;

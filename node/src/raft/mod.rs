//! The sans-IO Raft core: a deterministic state machine. Messages and ticks go in; messages to
//! send, state and entries to persist, and committed entries to apply come out. No clocks, no
//! sockets, no files: the shell (`crate::server`) maps it onto turmoil or real IO.

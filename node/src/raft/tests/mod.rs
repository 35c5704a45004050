//! Message-level tests of the core: no timers, no IO, a deterministic in-test network.
//! `scenarios` checks each protocol rule, `planted_bugs` shows that every core bug switch is
//! caught by the safety checker, `randomized` runs many seeds of faults.

mod hostile;
mod membership;
mod network;
mod planted_bugs;
mod planted_bugs_issue12;
mod randomized;
mod scenarios;
mod throughput;

//! Workloads own everything that drives the store: operation generators, the nemesis that
//! injects faults, the turmoil simulation driver that records a history, the invariants
//! checked along the way, and the run directory (`minos run`).

pub mod bite;
pub mod campaign;
pub mod driver;
pub mod invariants;
pub(crate) mod membership;
pub mod nemesis;
pub mod nodelog;
pub mod options;
pub mod output;
pub mod panics;
pub mod quorum;
pub mod raft_rules;
pub mod raft_store;
pub mod real;
pub mod recorder;
pub mod run;
pub mod schedule;
pub mod selftest;
pub mod shrink;
pub mod stall;
pub mod sut;
pub mod swarm;
pub mod toy;
pub mod workload;

pub use options::{
    FaultKind, KeyDistribution, NemesisSpec, ReadMode, RunOptions, SystemKind, Workload,
};

pub use run::RunOutcome;
pub use schedule::Schedule;

/// Why a run could not produce a verdict.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Bad options or a malformed schedule (exit 254).
    #[error("{0}")]
    BadOptions(String),
    /// A fault was requested that the system under test cannot take (exit 254).
    #[error("fault {fault} is not supported by the {system} store (it supports: {supported})")]
    UnsupportedFault {
        fault: FaultKind,
        system: String,
        supported: String,
    },
    /// The simulation itself failed (exit 255).
    #[error("simulation failed: {0}")]
    Simulation(String),
    /// The run directory could not be written (exit 255).
    #[error("cannot write the run directory: {0}")]
    Output(String),
    /// The checker rejected the history (exit 255: we wrote it).
    #[error("checker: {0}")]
    Checker(String),
    /// Ctrl-C or SIGTERM during a real-cluster run: everything was torn down (exit 130).
    #[error("interrupted; the cluster, its namespaces, bridge and nft table were removed")]
    Interrupted,
}

impl RunError {
    /// True when the user's input is at fault (exit 254), false for internal errors (255).
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            RunError::BadOptions(_) | RunError::UnsupportedFault { .. }
        )
    }
}

/// Runs one test under `options` (the store chosen by `options.system`), checks it and writes
/// its run directory. A pure function of the options (and the binary), except for the
/// run directory's name, which takes `options.run_date`.
pub fn run(options: &RunOptions) -> Result<RunOutcome, RunError> {
    options.validate().map_err(RunError::BadOptions)?;
    match options.system {
        SystemKind::Raft => run::run_system(
            options,
            raft_store::RaftStore::new(
                options.nodes,
                options.seed,
                options.bugs,
                options.op_timeout_ms,
            )
            .with_max_append_entries(options.max_append_entries)
            .with_read_mode(options.read_mode),
        ),
        SystemKind::ToyPrimary => run::run_system(
            options,
            toy::ToyStore::new(toy::ToyMode::Primary, options.nodes, options.seed),
        ),
        SystemKind::ToyFollowerReads => run::run_system(
            options,
            toy::ToyStore::new(toy::ToyMode::FollowerReads, options.nodes, options.seed),
        ),
        SystemKind::Etcd | SystemKind::Nats | SystemKind::MinosNode => real::run(options),
    }
}

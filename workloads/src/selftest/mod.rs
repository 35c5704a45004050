//! `minos selftest`: proof that the harness catches the planted Raft bugs. For every bug, a
//! campaign under the bug's exposure profile until the first seed that shows the bug; for the
//! correct build, the same profiles (round-robin over the seeds), which must all be valid.
//! The outcome is a table (caught or not, seeds to first detection, the anomaly seen, the
//! run directory) and a JSON document. Bugs planted without a bespoke profile are left to
//! `--generic`, which scores the generic harness: every bug under `generic_profile`
//! (`--nemesis all`, no bug-specific schedule), seeds to first detection beside the bespoke
//! column, and the correct build under the same profile.

pub mod profiles;
pub mod runner;
pub mod schedules;

pub use profiles::{
    bug_profile, bug_profiles, correct_profiles, generic_profile, Faults, Profile,
    GENERIC_TIME_LIMIT_MS,
};
pub use runner::{
    median_seeds_to_detection, run_selftest, BugResult, BugStatus, CorrectResult, RunSummary,
    SelftestOptions, SelftestReport, ShrunkRun,
};
pub use schedules::Shape;

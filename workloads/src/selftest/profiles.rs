//! Exposure profiles: for the correct build and every planted bug, the faults and run options
//! under which the harness is expected to see the bug, and what it should see.

use minos_node::bugs::Bug;

use crate::options::{FaultKind, NemesisSpec, RunOptions};
use crate::selftest::schedules::Shape;

/// How the faults of a profile are produced.
#[derive(Clone, Debug, PartialEq)]
pub enum Faults {
    /// The ordinary seeded generator over these fault kinds.
    Generated {
        kinds: Vec<FaultKind>,
        interval_ms: u64,
    },
    /// A targeted schedule shape, jittered by the seed.
    Targeted(Shape),
    /// Every fault the store supports (`--nemesis all`), generated every `interval_ms`.
    AllNemeses { interval_ms: u64 },
}

/// One bug's exposure profile (or the correct build's, with `bug: None`).
#[derive(Clone, Debug, PartialEq)]
pub struct Profile {
    pub bug: Option<Bug>,
    pub faults: Faults,
    pub nodes: usize,
    pub rate_ops_per_s: f64,
    pub time_limit_ms: u64,
    /// What the checker should see when the bug is caught.
    pub expected: &'static str,
    /// Also judge progress during the faults: the longest stretch of a fault window with no
    /// completed operation must stay under this (liveness bugs only).
    pub stall_limit_ms: Option<u64>,
    /// The nodes' AppendEntries batch bound (`--max-append-entries`), when not the default.
    pub max_append_entries: Option<usize>,
}

impl Profile {
    fn targeted(bug: Bug, shape: Shape, nodes: usize, expected: &'static str) -> Profile {
        Profile {
            bug: Some(bug),
            faults: Faults::Targeted(shape),
            nodes,
            rate_ops_per_s: 100.0,
            time_limit_ms: 30_000,
            expected,
            stall_limit_ms: None,
            max_append_entries: None,
        }
    }

    /// The name shown in tables: the bug's, or `correct` for the correct build.
    pub fn name(&self) -> &'static str {
        self.bug.map_or("correct", Bug::name)
    }

    /// One line saying which faults the profile injects.
    pub fn describe_faults(&self) -> String {
        match &self.faults {
            Faults::Generated { kinds, interval_ms } => format!(
                "generated {} every {} ms",
                kinds
                    .iter()
                    .map(|kind| kind.name())
                    .collect::<Vec<_>>()
                    .join(","),
                interval_ms
            ),
            Faults::Targeted(shape) => shape.describe().to_string(),
            Faults::AllNemeses { interval_ms } => {
                format!("generated from every nemesis every {interval_ms} ms")
            }
        }
    }

    /// The options of the run of this profile for `seed` (the run directory goes under `out_dir`).
    pub fn run_options(&self, seed: u64, out_dir: &std::path::Path) -> RunOptions {
        let mut options = RunOptions::new(seed);
        options.nodes = self.nodes;
        options.rate_ops_per_s = self.rate_ops_per_s;
        options.time_limit_ms = self.time_limit_ms;
        options.max_append_entries = self.max_append_entries;
        options.max_stall_ms = self.stall_limit_ms;
        if let Some(bug) = self.bug {
            options.bugs = options.bugs.with(bug);
        }
        match &self.faults {
            Faults::Generated { kinds, interval_ms } => {
                options.nemesis = NemesisSpec::List(kinds.clone());
                options.nemesis_interval_ms = *interval_ms;
            }
            Faults::AllNemeses { interval_ms } => {
                options.nemesis = NemesisSpec::All;
                options.nemesis_interval_ms = *interval_ms;
            }
            Faults::Targeted(shape) => {
                let schedule = shape.schedule(self.nodes, self.time_limit_ms, seed);
                options.nemesis = NemesisSpec::List(schedule.kinds());
                options.schedule = Some(schedule);
            }
        }
        options.out_dir = out_dir.to_path_buf();
        options.no_report = true;
        // Runs go in parallel: one checker thread each.
        options.check_threads = 1;
        options
    }
}

/// The bespoke profile of every planted bug that has one, in `Bug::ALL` order.
pub fn bug_profiles() -> Vec<Profile> {
    Bug::ALL.into_iter().filter_map(bug_profile).collect()
}

/// The bespoke profile that exposes `bug`, written for it, or `None`: the bugs planted for
/// issue 12 have none on purpose, so that only the generic campaign (`generic_profile`)
/// scores them.
pub fn bug_profile(bug: Bug) -> Option<Profile> {
    use Shape::*;
    Some(match bug {
        Bug::StaleLocalRead => Profile::targeted(bug, IsolateSlowLeader, 5, "stale read"),
        Bug::ReadBeforeNoop => Profile {
            rate_ops_per_s: 300.0,
            ..Profile::targeted(bug, KillLeaderSlowNetwork, 3, "stale read")
        },
        Bug::LeaseNoDriftBound => Profile::targeted(bug, TransferThenIsolate, 5, "stale read"),
        Bug::CommitOldTerm => Profile {
            // One entry per AppendEntries: a lagging follower receives the old-term entries
            // before the new leader's no-op, so a majority can hold them without it.
            max_append_entries: Some(1),
            rate_ops_per_s: 300.0,
            ..Profile::targeted(
                bug,
                Figure8,
                3,
                "committed entry changed (applied sequences diverge)",
            )
        },
        Bug::VolatileVote => {
            Profile::targeted(bug, KillLeaderThenCrashAll, 3, "two leaders in one term")
        }
        Bug::AckBeforeCommit => Profile {
            faults: Faults::Generated {
                kinds: vec![FaultKind::Partition, FaultKind::Kill],
                interval_ms: 3_000,
            },
            ..Profile::targeted(bug, IsolateSlowLeader, 5, "lost acknowledged add")
        },
        Bug::AckByIndex => Profile {
            faults: Faults::Generated {
                kinds: vec![FaultKind::Partition, FaultKind::Kill],
                interval_ms: 1_000,
            },
            ..Profile::targeted(bug, IsolateSlowLeader, 3, "false acknowledgement")
        },
        Bug::NoDedup => Profile {
            faults: Faults::Generated {
                kinds: vec![FaultKind::Partition, FaultKind::Kill, FaultKind::Loss],
                interval_ms: 3_000,
            },
            ..Profile::targeted(bug, IsolateSlowLeader, 5, "duplicate add")
        },
        Bug::StaleTermAppend => {
            Profile::targeted(bug, HoldLeader, 3, "overwritten committed entries")
        }
        Bug::TruncateWithoutConflict => {
            Profile::targeted(bug, ReorderDuplicateKillLeader, 5, "committed entry lost")
        }
        Bug::VoteIndexOnly => Profile {
            rate_ops_per_s: 300.0,
            ..Profile::targeted(
                bug,
                MinorityLogThenKillLeader,
                3,
                "committed adds overwritten",
            )
        },
        Bug::AckBeforeFsync => Profile::targeted(bug, CrashAll, 5, "lost acknowledged add"),
        Bug::SnapshotLosesIndex => Profile {
            // Enough entries for several snapshots (a node snapshots every 1000 applied).
            rate_ops_per_s: 300.0,
            ..Profile::targeted(bug, CrashAll, 5, "duplicate or skipped adds")
        },
        Bug::MembershipNoRule => Profile::targeted(bug, RemovalsAcrossLeaders, 4, "split brain"),
        Bug::NoPrevoteCheckquorum => Profile {
            stall_limit_ms: Some(STALL_LIMIT_MS),
            ..Profile::targeted(bug, DeafLeader, 3, "no progress (liveness)")
        },
        Bug::FollowerCommitPastNew
        | Bug::AckLastIndex
        | Bug::MatchFromNextIndex
        | Bug::AppendSkipsPrevTerm
        | Bug::ReplyTermUnchecked
        | Bug::StaleVoteCounted
        | Bug::CommitMedianEven
        | Bug::ReadQuorumOffByOne
        | Bug::SnapshotNoSessions
        | Bug::DedupLastOnly
        | Bug::RestartCommitsWholeLog
        | Bug::SnapshotSkipByIndex => return None,
    })
}

/// Length of a generic selftest run: the campaign benchmark's 30 s runs.
pub const GENERIC_TIME_LIMIT_MS: u64 = 30_000;

/// The generic campaign's profile for `bug` (or the correct build): `--nemesis all` with
/// every other option at `minos run`'s default (nodes, clients, rate, nemesis interval,
/// workload), 30 s runs. Nothing in it knows the bug: it measures what a user who never
/// heard of the bug would find.
pub fn generic_profile(bug: Option<Bug>) -> Profile {
    let defaults = RunOptions::new(0);
    Profile {
        bug,
        faults: Faults::AllNemeses {
            interval_ms: defaults.nemesis_interval_ms,
        },
        nodes: defaults.nodes,
        rate_ops_per_s: defaults.rate_ops_per_s,
        time_limit_ms: GENERIC_TIME_LIMIT_MS,
        expected: if bug.is_some() {
            "any finding"
        } else {
            "valid"
        },
        stall_limit_ms: defaults.max_stall_ms,
        max_append_entries: defaults.max_append_entries,
    }
}

/// The longest stall inside a fault window that still counts as progress. The correct build
/// (CheckQuorum) moves leadership away from a deaf leader within about two election timeouts.
pub const STALL_LIMIT_MS: u64 = 3_000;

/// The correct build is run under every bug's faults and under every nemesis at once
/// (round-robin over the seeds), with the same checks, including the progress check of the
/// liveness profiles.
pub fn correct_profiles() -> Vec<Profile> {
    let mut profiles: Vec<Profile> = bug_profiles()
        .into_iter()
        .map(|profile| Profile {
            bug: None,
            expected: "valid",
            ..profile
        })
        .collect();
    profiles.push(Profile {
        bug: None,
        faults: Faults::AllNemeses { interval_ms: 3_000 },
        nodes: 5,
        rate_ops_per_s: 100.0,
        time_limit_ms: 30_000,
        expected: "valid",
        stall_limit_ms: None,
        max_append_entries: None,
    });
    profiles
}

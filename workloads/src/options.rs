//! The options of one run (`minos run`), their names on the command line and the
//! reproduce command that replays a run bit-exactly.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use minos_node::bugs::{Bug, Bugs};
use serde::{Deserialize, Serialize};

use crate::schedule::Schedule;

/// Which operations the clients issue, and so which model checks the history.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Workload {
    /// `add` and `read` over counters (model `counter`).
    Counter,
    /// `write` and `read` over registers (model `register`).
    Register,
    /// `write`, `cas` and `read` over registers (model `cas-register`).
    CasRegister,
    /// Half the keys are counters (`c*`), half are cas-registers (`r*`); each half is
    /// checked with its own model.
    Mixed,
}

impl Workload {
    pub const ALL: [Workload; 4] = [
        Workload::Counter,
        Workload::Register,
        Workload::CasRegister,
        Workload::Mixed,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Workload::Counter => "counter",
            Workload::Register => "register",
            Workload::CasRegister => "cas-register",
            Workload::Mixed => "mixed",
        }
    }
}

impl FromStr for Workload {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        Workload::ALL
            .into_iter()
            .find(|workload| workload.name() == text)
            .ok_or_else(|| {
                format!(
                    "unknown workload {text:?}; expected counter, register, cas-register or mixed"
                )
            })
    }
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How clients pick the key of each operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyDistribution {
    Uniform,
    /// Key i is chosen with weight 1/(i+1) (Zipf, s = 1): a few hot keys.
    Skewed,
}

impl KeyDistribution {
    pub fn name(self) -> &'static str {
        match self {
            KeyDistribution::Uniform => "uniform",
            KeyDistribution::Skewed => "skewed",
        }
    }
}

impl FromStr for KeyDistribution {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "uniform" => Ok(KeyDistribution::Uniform),
            "skewed" => Ok(KeyDistribution::Skewed),
            _ => Err(format!(
                "unknown key distribution {text:?}; expected uniform or skewed"
            )),
        }
    }
}

/// Every fault of DESIGN.md §1, named as in `--nemesis`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    Partition,
    PartitionOneway,
    Kill,
    Pause,
    Clock,
    Loss,
    Duplicate,
    Reorder,
    Disk,
    Membership,
    Transfer,
    /// Latency with occasional large spikes on what the target nodes send.
    Delay,
    /// Every fsync of the target nodes takes extra time.
    SlowFsync,
    /// The target nodes apply committed entries late (apply runs behind commit).
    ApplyLag,
    /// Every node loses power at once: all crash, unsynced writes are lost everywhere.
    PowerLoss,
    /// The target nodes crash and come back on an empty disk under a new identity, as new
    /// members (their old identity leaves the configuration).
    RejoinEmpty,
}

impl FaultKind {
    pub const ALL: [FaultKind; 16] = [
        FaultKind::Partition,
        FaultKind::PartitionOneway,
        FaultKind::Kill,
        FaultKind::Pause,
        FaultKind::Clock,
        FaultKind::Loss,
        FaultKind::Duplicate,
        FaultKind::Reorder,
        FaultKind::Disk,
        FaultKind::Membership,
        FaultKind::Transfer,
        FaultKind::Delay,
        FaultKind::SlowFsync,
        FaultKind::ApplyLag,
        FaultKind::PowerLoss,
        FaultKind::RejoinEmpty,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Partition => "partition",
            FaultKind::PartitionOneway => "partition-oneway",
            FaultKind::Kill => "kill",
            FaultKind::Pause => "pause",
            FaultKind::Clock => "clock",
            FaultKind::Loss => "loss",
            FaultKind::Duplicate => "duplicate",
            FaultKind::Reorder => "reorder",
            FaultKind::Disk => "disk",
            FaultKind::Membership => "membership",
            FaultKind::Transfer => "transfer",
            FaultKind::Delay => "delay",
            FaultKind::SlowFsync => "slow-fsync",
            FaultKind::ApplyLag => "apply-lag",
            FaultKind::PowerLoss => "power-loss",
            FaultKind::RejoinEmpty => "rejoin-empty",
        }
    }

    /// Faults that may make a node's own storage fail (a node stopping on a storage error
    /// under them is expected; without them it is a finding).
    pub fn may_fail_storage(self) -> bool {
        matches!(self, FaultKind::Disk)
    }

    /// Faults of the network topology (turmoil links); two of them never overlap.
    pub fn is_topology(self) -> bool {
        matches!(self, FaultKind::Partition | FaultKind::PartitionOneway)
    }
}

impl FromStr for FaultKind {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        FaultKind::ALL
            .into_iter()
            .find(|kind| kind.name() == text)
            .ok_or_else(|| {
                let known: Vec<&str> = FaultKind::ALL.iter().map(|kind| kind.name()).collect();
                format!("unknown fault {text:?}; known faults: {}", known.join(", "))
            })
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `--nemesis`: nothing, every fault the system supports, or an explicit list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NemesisSpec {
    None,
    All,
    List(Vec<FaultKind>),
}

impl NemesisSpec {
    pub fn as_arg(&self) -> String {
        match self {
            NemesisSpec::None => "none".to_string(),
            NemesisSpec::All => "all".to_string(),
            NemesisSpec::List(kinds) => kinds
                .iter()
                .map(|kind| kind.name())
                .collect::<Vec<_>>()
                .join(","),
        }
    }
}

impl FromStr for NemesisSpec {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text.trim() {
            "none" | "" => Ok(NemesisSpec::None),
            "all" => Ok(NemesisSpec::All),
            list => {
                let mut kinds = Vec::new();
                for name in list.split(',') {
                    let kind: FaultKind = name.trim().parse()?;
                    if !kinds.contains(&kind) {
                        kinds.push(kind);
                    }
                }
                Ok(NemesisSpec::List(kinds))
            }
        }
    }
}

/// Parses `60s`, `500ms`, `2m`, `1h` or a bare number of seconds, into milliseconds.
pub fn parse_duration_ms(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("invalid duration {text:?}; expected e.g. 60s, 500ms, 2m"))?;
    let unit_ms = match unit {
        "ms" => 1.0,
        "" | "s" => 1000.0,
        "m" | "min" => 60_000.0,
        "h" => 3_600_000.0,
        _ => {
            return Err(format!(
                "invalid duration unit in {text:?}; expected ms, s, m or h"
            ))
        }
    };
    let ms = number * unit_ms;
    if !ms.is_finite() || !(0.0..=1e12).contains(&ms) {
        return Err(format!("duration {text:?} is out of range"));
    }
    Ok(ms.round() as u64)
}

/// Formats milliseconds back into the shortest exact `--time-limit` form.
pub fn format_duration_ms(ms: u64) -> String {
    if ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

/// Which store the run drives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SystemKind {
    /// The Raft counter store of minos-node (the default).
    Raft,
    /// The toy single-copy store: linearizable unless its primary is killed.
    ToyPrimary,
    /// The toy store serving reads from followers' lagging copies: deliberately broken.
    ToyFollowerReads,
    /// A real etcd cluster (Debian `etcd-server`), in real time.
    Etcd,
    /// A real NATS JetStream cluster (Debian `nats-server`), in real time.
    Nats,
    /// Our own store as real `minos node` processes, in real time.
    MinosNode,
}

impl SystemKind {
    pub const ALL: [SystemKind; 6] = [
        SystemKind::Raft,
        SystemKind::ToyPrimary,
        SystemKind::ToyFollowerReads,
        SystemKind::Etcd,
        SystemKind::Nats,
        SystemKind::MinosNode,
    ];

    pub fn name(self) -> &'static str {
        match self {
            SystemKind::Raft => "raft",
            SystemKind::ToyPrimary => "toy-primary",
            SystemKind::ToyFollowerReads => "toy-follower-reads",
            SystemKind::Etcd => "etcd",
            SystemKind::Nats => "nats",
            SystemKind::MinosNode => "minos-node",
        }
    }

    /// Real server processes in real time (not simulated, not bit-exactly replayable).
    pub fn is_real(self) -> bool {
        matches!(
            self,
            SystemKind::Etcd | SystemKind::Nats | SystemKind::MinosNode
        )
    }
}

impl FromStr for SystemKind {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        SystemKind::ALL
            .into_iter()
            .find(|kind| kind.name() == text)
            .ok_or_else(|| {
                let known: Vec<&str> = SystemKind::ALL.iter().map(|kind| kind.name()).collect();
                format!(
                    "unknown system {text:?}; expected one of {}",
                    known.join(", ")
                )
            })
    }
}

/// How reads are served (`--read-mode`); each system offers some of these.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum ReadMode {
    /// The system's linearizable read through a quorum round (raft's ReadIndex; etcd's
    /// default linearizable reads; NATS reads through the stream leader). The default.
    ReadIndex,
    /// Leader-lease reads: no quorum round while the leader's lease holds; linearizable only
    /// under bounded clock drift (our store).
    Lease,
    /// Reads go through the log like writes (our store).
    Log,
    /// Served from the contacted node's local state without consulting a quorum, follower or
    /// not (etcd's serializable reads, Consul's `stale`): may be stale, and a linearizability
    /// checker must catch it.
    Stale,
}

impl ReadMode {
    pub const ALL: [ReadMode; 4] = [
        ReadMode::ReadIndex,
        ReadMode::Lease,
        ReadMode::Log,
        ReadMode::Stale,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ReadMode::ReadIndex => "read-index",
            ReadMode::Lease => "lease",
            ReadMode::Log => "log",
            ReadMode::Stale => "stale",
        }
    }

    /// Whether the mode promises linearizable reads (stale does not, by design).
    pub fn is_linearizable(self) -> bool {
        self != ReadMode::Stale
    }
}

impl FromStr for ReadMode {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        // etcd's own names are accepted as aliases.
        match text {
            "linearizable" => return Ok(ReadMode::ReadIndex),
            "serializable" => return Ok(ReadMode::Stale),
            _ => {}
        }
        ReadMode::ALL
            .into_iter()
            .find(|mode| mode.name() == text)
            .ok_or_else(|| {
                format!(
                    "unknown read mode {text:?}; expected read-index, lease, log or stale \
                     (or etcd's names linearizable = read-index, serializable = stale)"
                )
            })
    }
}

/// Everything a run depends on besides the binary: a run is a pure function of these.
#[derive(Clone, Debug)]
pub struct RunOptions {
    pub seed: u64,
    pub nodes: usize,
    pub clients: usize,
    pub keys: usize,
    /// Length of the workload and fault window, in simulated ms.
    pub time_limit_ms: u64,
    /// Target rate of all clients together.
    pub rate_ops_per_s: f64,
    pub workload: Workload,
    pub key_distribution: KeyDistribution,
    pub nemesis: NemesisSpec,
    pub nemesis_interval_ms: u64,
    /// A scripted schedule replaces the generated one.
    pub schedule: Option<Schedule>,
    /// Where `--schedule` came from, for the reproduce command.
    pub schedule_path: Option<PathBuf>,
    pub bugs: Bugs,
    pub out_dir: PathBuf,
    /// `--no-report`: skip the HTML/PNG report.
    pub no_report: bool,
    /// After healing, the cluster must complete an operation within this bound.
    pub liveness_timeout_ms: u64,
    /// A client op with no answer after this long ends as `info`.
    pub op_timeout_ms: u64,
    /// Budget of the linearizability check (wall clock); exhausting it gives `unknown`.
    pub check_time_limit_ms: u64,
    /// Wall-clock date used in the run id only (never in the history); None = "sim".
    pub run_date: Option<String>,
    /// The store under test.
    pub system: SystemKind,
    /// Simulated time per turmoil step: the resolution of message delivery and nemesis times.
    pub step_ms: u64,
    /// The most verbose level written to nodes/<n>.log (logging never changes the history).
    pub node_log_level: tracing::Level,
    /// Checker threads; 0 = one per core (campaigns running runs in parallel pass 1).
    pub check_threads: usize,
    /// Raft store only: entries per AppendEntries (None: the node's default, 64). A small
    /// batch lets a lagging follower receive old-term entries without the new leader's no-op
    /// (selftest's `commit-old-term` profile); `--max-append-entries` replays it.
    pub max_append_entries: Option<usize>,
    /// When set, the run is also invalid if no operation completes for this long inside a
    /// fault window (`--max-stall`): a liveness bug that heals once the faults stop.
    pub max_stall_ms: Option<u64>,
    /// `--read-mode`: how the system serves reads (real systems; the default is linearizable).
    pub read_mode: ReadMode,
}

impl RunOptions {
    /// The defaults of DESIGN.md §1 for a given seed.
    pub fn new(seed: u64) -> RunOptions {
        RunOptions {
            seed,
            nodes: 5,
            clients: 10,
            keys: 4,
            time_limit_ms: 60_000,
            rate_ops_per_s: 100.0,
            workload: Workload::Counter,
            key_distribution: KeyDistribution::Uniform,
            nemesis: NemesisSpec::List(vec![FaultKind::Partition, FaultKind::Kill]),
            nemesis_interval_ms: 10_000,
            schedule: None,
            schedule_path: None,
            bugs: Bugs::NONE,
            out_dir: PathBuf::from("store"),
            no_report: false,
            liveness_timeout_ms: 10_000,
            op_timeout_ms: 5_000,
            check_time_limit_ms: 60_000,
            run_date: None,
            system: SystemKind::Raft,
            step_ms: 5,
            node_log_level: tracing::Level::INFO,
            check_threads: 0,
            max_append_entries: None,
            max_stall_ms: None,
            read_mode: ReadMode::ReadIndex,
        }
    }

    /// Rejects option values the driver cannot honour, with a message for the user.
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=9).contains(&self.nodes) {
            return Err(format!(
                "--nodes must be between 1 and 9, got {}",
                self.nodes
            ));
        }
        if !(1..=1000).contains(&self.clients) {
            return Err(format!(
                "--clients must be between 1 and 1000, got {}",
                self.clients
            ));
        }
        if !(1..=10_000).contains(&self.keys) {
            return Err(format!(
                "--keys must be between 1 and 10000, got {}",
                self.keys
            ));
        }
        if self.workload == Workload::Mixed && self.keys < 2 {
            return Err("--workload mixed needs --keys 2 or more".to_string());
        }
        if self.time_limit_ms == 0 || self.time_limit_ms > 24 * 3_600_000 {
            return Err("--time-limit must be between 1ms and 24h".to_string());
        }
        if !(self.rate_ops_per_s > 0.0 && self.rate_ops_per_s <= 1_000_000.0) {
            return Err(format!(
                "--rate must be in (0, 1000000], got {}",
                self.rate_ops_per_s
            ));
        }
        if !(1..=10).contains(&self.step_ms) {
            return Err(format!(
                "the simulation step must be 1 to 10 ms, got {}",
                self.step_ms
            ));
        }
        if self.max_append_entries == Some(0) {
            return Err("--max-append-entries must be at least 1".to_string());
        }
        if self.read_mode != ReadMode::ReadIndex
            && !matches!(self.system, SystemKind::Raft)
            && !self.system.is_real()
        {
            return Err(format!(
                "--read-mode {} is not offered by the toy store {} (only the raft store and real systems have read modes)",
                self.read_mode.name(),
                self.system.name()
            ));
        }
        if self.nemesis_interval_ms < 10 {
            return Err("--nemesis-interval must be at least 10ms".to_string());
        }
        Ok(())
    }

    /// The test name: the directory under `--out` that groups runs of the same kind.
    pub fn test_name(&self) -> String {
        let mut name = self.workload.name().to_string();
        if self.system != SystemKind::Raft {
            name = format!("{}-{name}", self.system.name());
        }
        if self.read_mode != ReadMode::ReadIndex {
            name = format!("{name}-{}-reads", self.read_mode.name());
        }
        for bug in self.bugs.iter() {
            name.push('-');
            name.push_str(bug.name());
        }
        name
    }

    /// The one-line command that replays this run bit-exactly: every option, defaults included.
    pub fn reproduce_command(&self) -> String {
        let mut parts = vec![
            "minos run".to_string(),
            format!("--seed {}", self.seed),
            format!("--nodes {}", self.nodes),
            format!("--clients {}", self.clients),
            format!("--keys {}", self.keys),
            format!("--time-limit {}", format_duration_ms(self.time_limit_ms)),
            format!("--rate {}", self.rate_ops_per_s),
            format!("--workload {}", self.workload),
            format!("--key-distribution {}", self.key_distribution.name()),
            format!("--nemesis {}", self.nemesis_text()),
            format!(
                "--nemesis-interval {}",
                format_duration_ms(self.nemesis_interval_ms)
            ),
        ];
        if let Some(path) = &self.schedule_path {
            parts.push(format!(
                "--schedule {}",
                shell_quote(&path.display().to_string())
            ));
        }
        for bug in self.bugs.iter() {
            parts.push(format!("--bug {}", bug.name()));
        }
        if self.system != SystemKind::Raft {
            parts.push(format!("--system {}", self.system.name()));
        }
        if self.read_mode != ReadMode::ReadIndex {
            parts.push(format!("--read-mode {}", self.read_mode.name()));
        }
        if let Some(count) = self.max_append_entries {
            parts.push(format!("--max-append-entries {count}"));
        }
        if let Some(stall_ms) = self.max_stall_ms {
            parts.push(format!("--max-stall {}", format_duration_ms(stall_ms)));
        }
        parts.push(format!(
            "--out {}",
            shell_quote(&self.out_dir.display().to_string())
        ));
        if self.no_report {
            parts.push("--no-report".to_string());
        }
        parts.join(" ")
    }

    /// The command that replays this run from its run dir, for runs whose scripted schedule
    /// is the copy in that dir: `cd <run dir> && minos run ... --schedule schedule.json --out
    /// replay`. Everything after `&&` is relative to the run dir, so a run dir copied elsewhere
    /// (a CI artifact) replays with `cd <copy> && <the rest>`; the replay lands in
    /// `<run dir>/replay/`, inside the run dir, where no campaign or store page counts it.
    pub fn reproduce_in_run_dir(&self, run_dir: &std::path::Path) -> String {
        let mut replay = self.clone();
        replay.schedule_path = Some(PathBuf::from(RUN_DIR_SCHEDULE));
        replay.out_dir = PathBuf::from(REPLAY_OUT_DIR);
        replay.no_report = false;
        let dir = std::path::absolute(run_dir).unwrap_or_else(|_| run_dir.to_path_buf());
        format!(
            "cd {} && {}",
            shell_quote(&dir.display().to_string()),
            replay.reproduce_command()
        )
    }

    /// `--nemesis` as a replay should show it: with a schedule, the faults the schedule uses
    /// (the `--nemesis` given then shaped nothing).
    fn nemesis_text(&self) -> String {
        match &self.schedule {
            Some(schedule) if self.schedule_path.is_some() => {
                let kinds: Vec<&str> = schedule.kinds().iter().map(|kind| kind.name()).collect();
                if kinds.is_empty() {
                    "none".to_string()
                } else {
                    kinds.join(",")
                }
            }
            _ => self.nemesis.as_arg(),
        }
    }

    /// The bugs as names, for results.json.
    pub fn bug_names(&self) -> Vec<String> {
        self.bugs
            .iter()
            .map(|bug: Bug| bug.name().to_string())
            .collect()
    }
}

/// The schedule's copy in a run dir, as a replay from inside the run dir names it.
pub const RUN_DIR_SCHEDULE: &str = "schedule.json";
/// Where a replay run from inside a run dir writes (`<run dir>/replay/<test>/<run-id>/`).
pub const REPLAY_OUT_DIR: &str = "replay";

/// Quotes a word for a POSIX shell when it needs it.
pub fn shell_quote(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@".contains(c));
    if plain {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_in_every_unit() {
        assert_eq!(parse_duration_ms("60s"), Ok(60_000));
        assert_eq!(parse_duration_ms("500ms"), Ok(500));
        assert_eq!(parse_duration_ms("2m"), Ok(120_000));
        assert_eq!(parse_duration_ms("1.5s"), Ok(1_500));
        assert_eq!(parse_duration_ms("7"), Ok(7_000));
        assert!(parse_duration_ms("fast").is_err());
        assert!(parse_duration_ms("5 parsecs").is_err());
        assert_eq!(format_duration_ms(60_000), "60s");
        assert_eq!(format_duration_ms(1_500), "1500ms");
    }

    #[test]
    fn nemesis_lists_parse_and_reject_unknown_faults() {
        assert_eq!("none".parse::<NemesisSpec>(), Ok(NemesisSpec::None));
        assert_eq!("all".parse::<NemesisSpec>(), Ok(NemesisSpec::All));
        assert_eq!(
            "partition,kill".parse::<NemesisSpec>(),
            Ok(NemesisSpec::List(vec![
                FaultKind::Partition,
                FaultKind::Kill
            ]))
        );
        assert!("partition,meteor"
            .parse::<NemesisSpec>()
            .unwrap_err()
            .contains("meteor"));
    }

    #[test]
    fn reproduce_command_names_every_option() {
        let options = RunOptions::new(42);
        assert_eq!(
            options.reproduce_command(),
            "minos run --seed 42 --nodes 5 --clients 10 --keys 4 --time-limit 60s --rate 100 \
             --workload counter --key-distribution uniform --nemesis partition,kill \
             --nemesis-interval 10s --out store"
        );
    }
}

//! The nemesis: turns schedule events into typed actions (validated before the run starts),
//! applies them to the simulation (partitions and kills through turmoil) or to the nodes
//! (everything else, through the system under test), tracks what is active so that it can
//! heal everything, and records each start/stop in the history and in results.json.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::{json, Value};

use crate::options::FaultKind;
use crate::schedule::{node_index, node_name, FaultEvent, Phase};
use crate::sut::{NodeFault, SystemUnderTest};

/// The shapes of a two-way partition.
#[derive(Clone, Debug, PartialEq)]
pub enum PartitionShape {
    /// Nodes in different groups cannot talk; nodes in no group talk to everyone.
    Groups(Vec<Vec<usize>>),
    /// The leader (found when the fault starts) is cut off from everyone.
    IsolateLeader,
    /// Like `IsolateLeader`, but the messages between the leader and the other nodes are held
    /// (queued, not dropped) and all delivered when the partition stops: a deposed leader's
    /// old-term messages arrive late (turmoil hold/release).
    HoldLeader,
    /// Like `Groups`, but held: what the groups send each other is queued and all delivered
    /// when the partition stops, so every side hears the other's past at once.
    HeldGroups(Vec<Vec<usize>>),
    /// Nodes on a ring (in this order) each reach only their neighbours: every node sees a
    /// majority, but not the same one.
    Ring(Vec<usize>),
    /// Two groups cut from each other, and one bridge node that reaches both.
    Bridge {
        bridge: usize,
        groups: Vec<Vec<usize>>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum NetKind {
    Loss,
    Duplicate,
    Reorder,
}

/// Which datagrams of a target node a loss fault drops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LossDirection {
    /// What the node sends (the default).
    Out,
    /// What arrives for the node: its peers' messages to it vanish, its own go out.
    In,
    Both,
}

impl LossDirection {
    fn parse(params: &Value) -> Result<LossDirection, String> {
        match params.get("direction").and_then(Value::as_str) {
            None | Some("out") => Ok(LossDirection::Out),
            Some("in") => Ok(LossDirection::In),
            Some("both") => Ok(LossDirection::Both),
            Some(other) => Err(format!(
                "params.direction {other:?}: expected \"out\", \"in\" or \"both\""
            )),
        }
    }

    fn name(self) -> &'static str {
        match self {
            LossDirection::Out => "out",
            LossDirection::In => "in",
            LossDirection::Both => "both",
        }
    }
}

/// One validated nemesis action.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    StartPartition(PartitionShape),
    StopPartition,
    StartOneway {
        from: Vec<usize>,
        to: Vec<usize>,
    },
    StopOneway,
    /// One-way partition resolved at run time: every other node's messages to the leader are
    /// cut, the leader's own messages still go out (a leader that cannot hear its followers).
    StartOnewayToLeader,
    Kill(Vec<usize>),
    /// Empty: restart every killed node.
    Restart(Vec<usize>),
    Pause(Vec<usize>),
    Resume(Vec<usize>),
    StartClock {
        targets: Vec<usize>,
        skew_ms: i64,
        drift_ppm: i64,
    },
    StopClock(Vec<usize>),
    StartNet {
        kind: NetKind,
        targets: Vec<usize>,
        probability: f64,
        max_delay_ms: u64,
        /// Loss only; `Out` for duplicate and reorder.
        direction: LossDirection,
    },
    StopNet {
        kind: NetKind,
        targets: Vec<usize>,
    },
    StartDisk {
        targets: Vec<usize>,
        torn_write_probability: f64,
        read_corruption_probability: f64,
        io_error_probability: f64,
    },
    StopDisk(Vec<usize>),
    StartDelay {
        targets: Vec<usize>,
        base_ms: u64,
        jitter_ms: u64,
        spike_probability: f64,
        spike_ms: u64,
    },
    StopDelay(Vec<usize>),
    StartSlowFsync {
        targets: Vec<usize>,
        delay_ms: u64,
        jitter_ms: u64,
    },
    StopSlowFsync(Vec<usize>),
    /// Empty targets: the leader when the fault starts.
    StartApplyLag {
        targets: Vec<usize>,
        delay_ms: u64,
    },
    StopApplyLag(Vec<usize>),
    /// Every running node crashes at once.
    PowerLoss,
    /// Restarts every node the power loss took down.
    PowerRestore,
    /// Crash the targets and give them empty disks and new identities.
    ReplaceDisks(Vec<usize>),
    /// Empty: every node waiting with a replaced disk. Starts them as new members.
    RejoinNew(Vec<usize>),
    RemoveMembers(Vec<usize>),
    AddMembers(Vec<usize>),
    /// Transfer leadership to the target (empty: to a random follower chosen at run time).
    Transfer(Vec<usize>),
    StopTransfer,
}

fn indices(names: &[String], nodes: usize, what: &str) -> Result<Vec<usize>, String> {
    names
        .iter()
        .map(|name| {
            node_index(name, nodes)
                .ok_or_else(|| format!("{what}: {name:?} is not a node of n1..n{nodes}"))
        })
        .collect()
}

fn names_field(params: &Value, field: &str, nodes: usize) -> Result<Vec<usize>, String> {
    let list = params
        .get(field)
        .and_then(Value::as_array)
        .ok_or_else(|| format!("params.{field} must be a list of node names"))?;
    let names: Vec<String> = list
        .iter()
        .map(|item| {
            item.as_str()
                .map(str::to_string)
                .ok_or_else(|| format!("params.{field} must hold node names"))
        })
        .collect::<Result<_, _>>()?;
    indices(&names, nodes, &format!("params.{field}"))
}

/// The groups of a partition; no node in two groups, except `bridge` (which reaches both).
fn groups_field(
    params: &Value,
    nodes: usize,
    bridge: Option<usize>,
) -> Result<Vec<Vec<usize>>, String> {
    let groups = params
        .get("groups")
        .and_then(Value::as_array)
        .ok_or("params.groups must be a list of lists of node names")?;
    let groups: Vec<Vec<usize>> = groups
        .iter()
        .map(|group| names_field(&json!({ "g": group }), "g", nodes))
        .collect::<Result<_, _>>()?;
    let mut seen = BTreeSet::new();
    for node in groups.iter().flatten() {
        if Some(*node) != bridge && !seen.insert(*node) {
            return Err(format!(
                "params.groups: {} is in more than one group",
                node_name(*node)
            ));
        }
    }
    Ok(groups)
}

fn probability(params: &Value, field: &str, default: f64) -> Result<f64, String> {
    match params.get(field) {
        None | Some(Value::Null) => Ok(default),
        Some(value) => value
            .as_f64()
            .filter(|p| (0.0..=1.0).contains(p))
            .ok_or_else(|| format!("params.{field} must be a probability in [0, 1]")),
    }
}

/// A duration param in ms: a whole number up to the injected-delay bound.
fn millis(params: &Value, field: &str, default: u64) -> Result<u64, String> {
    const MAX_MS: u64 = minos_node::faults::MAX_INJECTED_DELAY_MS;
    match params.get(field) {
        None | Some(Value::Null) => Ok(default),
        Some(value) => value
            .as_u64()
            .filter(|ms| *ms <= MAX_MS)
            .ok_or_else(|| format!("params.{field} must be a whole number of ms in 0..={MAX_MS}")),
    }
}

fn integer(params: &Value, field: &str, default: i64) -> Result<i64, String> {
    match params.get(field) {
        None | Some(Value::Null) => Ok(default),
        Some(value) => value
            .as_i64()
            .ok_or_else(|| format!("params.{field} must be an integer")),
    }
}

/// The params a start of this fault reads; anything else is a typo, refused rather than
/// silently replaced by a default.
fn known_params(kind: FaultKind, mode: Option<&str>) -> &'static [&'static str] {
    match (kind, mode) {
        (FaultKind::Partition, Some("isolate-leader" | "hold-leader")) => &["mode"],
        (FaultKind::Partition, Some("ring")) => &["mode", "order"],
        (FaultKind::Partition, Some("bridge")) => &["mode", "bridge", "groups"],
        (FaultKind::Partition, _) => &["mode", "groups"],
        (FaultKind::PartitionOneway, Some("to-leader")) => &["mode"],
        (FaultKind::PartitionOneway, _) => &["mode", "from", "to"],
        _ => known_params_of(kind),
    }
}

fn known_params_of(kind: FaultKind) -> &'static [&'static str] {
    match kind {
        FaultKind::Partition | FaultKind::PartitionOneway => &["mode"],
        FaultKind::Kill | FaultKind::Pause => &["mode"],
        FaultKind::Clock => &["mode", "skew_ms", "drift_ppm"],
        FaultKind::Loss => &["probability", "direction"],
        FaultKind::Duplicate => &["probability", "max_delay_ms"],
        FaultKind::Reorder => &["probability", "max_delay_ms"],
        FaultKind::Disk => &[
            "torn_write_probability",
            "read_corruption_probability",
            "io_error_probability",
        ],
        FaultKind::Delay => &["base_ms", "jitter_ms", "spike_probability", "spike_ms"],
        FaultKind::SlowFsync => &["delay_ms", "jitter_ms"],
        FaultKind::ApplyLag => &["mode", "delay_ms"],
        FaultKind::Membership
        | FaultKind::Transfer
        | FaultKind::PowerLoss
        | FaultKind::RejoinEmpty => &[],
    }
}

fn check_param_names(kind: FaultKind, params: &Value) -> Result<(), String> {
    let object = match params {
        Value::Null => return Ok(()),
        Value::Object(object) => object,
        _ => return Err("params must be a JSON object".to_string()),
    };
    let mode = object.get("mode").and_then(Value::as_str);
    let known = known_params(kind, mode);
    let what = match (kind, mode) {
        (FaultKind::Partition | FaultKind::PartitionOneway, Some(mode)) => {
            format!("start-{} with mode {mode}", kind.name())
        }
        _ => format!("start-{}", kind.name()),
    };
    match object.keys().find(|name| !known.contains(&name.as_str())) {
        None => Ok(()),
        Some(name) if known.is_empty() => Err(format!("params.{name}: {what} takes no params")),
        Some(name) => Err(format!(
            "params.{name} is not a parameter of {what} (it takes {})",
            known.join(", ")
        )),
    }
}

/// Validates one schedule event into an action.
pub fn parse_event(event: &FaultEvent, nodes: usize) -> Result<(FaultKind, Action), String> {
    let (phase, kind) = event.parse_action()?;
    let targets = indices(&event.targets, nodes, "targets")?;
    let params = &event.params;
    match phase {
        Phase::Start => check_param_names(kind, params)?,
        Phase::Stop if !params.is_null() && params != &json!({}) => {
            return Err(format!(
                "stop-{} takes no params (it stops the fault on its targets, or on every node it affects)",
                kind.name()
            ))
        }
        Phase::Stop => {}
    }
    let action = match (phase, kind) {
        (Phase::Start, FaultKind::Partition) => {
            let mode = params
                .get("mode")
                .and_then(Value::as_str)
                .unwrap_or("halves");
            let shape = match mode {
                "halves" | "groups" => PartitionShape::Groups(groups_field(params, nodes, None)?),
                "hold-groups" => PartitionShape::HeldGroups(groups_field(params, nodes, None)?),
                "isolate-leader" => PartitionShape::IsolateLeader,
                "hold-leader" => PartitionShape::HoldLeader,
                "ring" => {
                    let order = if params.get("order").is_some() {
                        names_field(params, "order", nodes)?
                    } else {
                        (0..nodes).collect()
                    };
                    PartitionShape::Ring(order)
                }
                "bridge" => {
                    let bridge_name = params.get("bridge").and_then(Value::as_str).ok_or("params.bridge must be a node name")?;
                    let bridge = node_index(bridge_name, nodes).ok_or_else(|| format!("params.bridge: {bridge_name:?} is not a node"))?;
                    PartitionShape::Bridge { bridge, groups: groups_field(params, nodes, Some(bridge))? }
                }
                other => return Err(format!("unknown partition mode {other:?}; expected halves (or groups), hold-groups, isolate-leader, hold-leader, ring or bridge")),
            };
            Action::StartPartition(shape)
        }
        (Phase::Stop, FaultKind::Partition) => Action::StopPartition,
        (Phase::Start, FaultKind::PartitionOneway)
            if params.get("mode").and_then(Value::as_str) == Some("to-leader") =>
        {
            Action::StartOnewayToLeader
        }
        (Phase::Start, FaultKind::PartitionOneway) => Action::StartOneway {
            from: names_field(params, "from", nodes)?,
            to: names_field(params, "to", nodes)?,
        },
        (Phase::Stop, FaultKind::PartitionOneway) => Action::StopOneway,
        (Phase::Start, FaultKind::Kill) => {
            Action::Kill(targets_or_leader(targets, params, "start-kill")?)
        }
        (Phase::Stop, FaultKind::Kill) => Action::Restart(targets),
        (Phase::Start, FaultKind::Pause) => {
            Action::Pause(targets_or_leader(targets, params, "start-pause")?)
        }
        (Phase::Stop, FaultKind::Pause) => Action::Resume(targets),
        (Phase::Start, FaultKind::Clock) => Action::StartClock {
            targets: targets_or_leader(targets, params, "start-clock")?,
            skew_ms: integer(params, "skew_ms", 0)?,
            drift_ppm: integer(params, "drift_ppm", 0)?,
        },
        (Phase::Stop, FaultKind::Clock) => Action::StopClock(targets),
        (Phase::Start, FaultKind::Loss | FaultKind::Duplicate | FaultKind::Reorder) => {
            let direction = if kind == FaultKind::Loss {
                LossDirection::parse(params)?
            } else {
                LossDirection::Out
            };
            Action::StartNet {
                kind: net_kind(kind),
                targets: non_empty(targets, "a network fault")?,
                probability: probability(params, "probability", 0.2)?,
                // Reorder holds copies back 50 ms by default; a duplicate's second copy comes
                // at once unless the schedule says how late it may be.
                max_delay_ms: integer(
                    params,
                    "max_delay_ms",
                    if kind == FaultKind::Duplicate { 0 } else { 50 },
                )?
                .max(0) as u64,
                direction,
            }
        }
        (Phase::Stop, FaultKind::Loss | FaultKind::Duplicate | FaultKind::Reorder) => {
            Action::StopNet {
                kind: net_kind(kind),
                targets,
            }
        }
        (Phase::Start, FaultKind::Disk) => Action::StartDisk {
            targets: non_empty(targets, "start-disk")?,
            torn_write_probability: probability(params, "torn_write_probability", 0.05)?,
            read_corruption_probability: probability(params, "read_corruption_probability", 0.02)?,
            io_error_probability: probability(params, "io_error_probability", 0.05)?,
        },
        (Phase::Stop, FaultKind::Disk) => Action::StopDisk(targets),
        (Phase::Start, FaultKind::Membership) => {
            let targets = non_empty(targets, "start-membership")?;
            if targets.iter().collect::<BTreeSet<_>>().len() >= nodes {
                return Err(
                    "start-membership cannot remove every node: a cluster keeps at least one voter"
                        .to_string(),
                );
            }
            Action::RemoveMembers(targets)
        }
        (Phase::Stop, FaultKind::Membership) => Action::AddMembers(targets),
        (Phase::Start, FaultKind::Delay) => Action::StartDelay {
            targets: non_empty(targets, "start-delay")?,
            base_ms: millis(params, "base_ms", 10)?,
            jitter_ms: millis(params, "jitter_ms", 20)?,
            spike_probability: probability(params, "spike_probability", 0.02)?,
            spike_ms: millis(params, "spike_ms", 1_000)?,
        },
        (Phase::Stop, FaultKind::Delay) => Action::StopDelay(targets),
        (Phase::Start, FaultKind::SlowFsync) => Action::StartSlowFsync {
            targets: non_empty(targets, "start-slow-fsync")?,
            delay_ms: millis(params, "delay_ms", 100)?,
            jitter_ms: millis(params, "jitter_ms", 100)?,
        },
        (Phase::Stop, FaultKind::SlowFsync) => Action::StopSlowFsync(targets),
        (Phase::Start, FaultKind::ApplyLag) => Action::StartApplyLag {
            targets: targets_or_leader(targets, params, "start-apply-lag")?,
            delay_ms: millis(params, "delay_ms", 200)?,
        },
        (Phase::Stop, FaultKind::ApplyLag) => Action::StopApplyLag(targets),
        (Phase::Start, FaultKind::PowerLoss) => {
            if !targets.is_empty() {
                return Err("start-power-loss takes no targets: every node loses power".to_string());
            }
            Action::PowerLoss
        }
        (Phase::Stop, FaultKind::PowerLoss) => {
            if !targets.is_empty() {
                return Err(
                    "stop-power-loss takes no targets: power comes back everywhere".to_string(),
                );
            }
            Action::PowerRestore
        }
        (Phase::Start, FaultKind::RejoinEmpty) => {
            let targets = non_empty(targets, "start-rejoin-empty")?;
            let distinct = targets.iter().collect::<BTreeSet<_>>().len();
            if distinct > nodes.saturating_sub(1) / 2 {
                return Err(format!(
                    "start-rejoin-empty can replace the disks of a minority only (at most {} of {nodes} nodes): a majority of empty disks has lost committed data",
                    nodes.saturating_sub(1) / 2
                ));
            }
            Action::ReplaceDisks(targets)
        }
        (Phase::Stop, FaultKind::RejoinEmpty) => Action::RejoinNew(targets),
        (Phase::Start, FaultKind::Transfer) => Action::Transfer(targets),
        (Phase::Stop, FaultKind::Transfer) => Action::StopTransfer,
    };
    Ok((kind, action))
}

/// Explicit targets, or none with `params.mode == "leader"`: the leader when the fault starts.
fn targets_or_leader(
    targets: Vec<usize>,
    params: &Value,
    what: &str,
) -> Result<Vec<usize>, String> {
    let leader_mode = params.get("mode").and_then(Value::as_str) == Some("leader");
    match (targets.is_empty(), leader_mode) {
        (true, true) => Ok(targets),
        (false, false) => Ok(targets),
        (false, true) => Err(format!("{what} with mode \"leader\" takes no targets")),
        (true, false) => Err(format!(
            "{what} needs target nodes or params {{\"mode\": \"leader\"}}"
        )),
    }
}

/// Empty targets stand for the current leader; None when there is none.
fn resolve_leader(requested: &[usize], leader: Option<usize>) -> Option<Vec<usize>> {
    if requested.is_empty() {
        leader.map(|leader| vec![leader])
    } else {
        Some(requested.to_vec())
    }
}

fn no_leader(f: String) -> Applied {
    Applied {
        f,
        value: json!({"targets": [], "mode": "leader", "note": "no leader known; nothing done"}),
    }
}

fn non_empty(targets: Vec<usize>, what: &str) -> Result<Vec<usize>, String> {
    if targets.is_empty() {
        Err(format!("{what} needs at least one target node"))
    } else {
        Ok(targets)
    }
}

fn net_kind(kind: FaultKind) -> NetKind {
    match kind {
        FaultKind::Loss => NetKind::Loss,
        FaultKind::Duplicate => NetKind::Duplicate,
        _ => NetKind::Reorder,
    }
}

fn names(nodes: &[usize]) -> Vec<String> {
    nodes.iter().map(|node| node_name(*node)).collect()
}

/// A fault as listed in results.json.
#[derive(Clone, Debug, Serialize)]
pub struct FaultRecord {
    pub kind: FaultKind,
    pub start_ns: u64,
    pub stop_ns: Option<u64>,
    pub targets: Vec<String>,
    pub detail: Value,
}

/// Per-node network fault settings (loss, duplicate and reorder combine).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct NetSettings {
    loss: f64,
    inbound_loss: f64,
    duplicate: f64,
    duplicate_max_delay_ms: u64,
    reorder: f64,
    reorder_max_delay_ms: u64,
}

impl NetSettings {
    /// Whether a fault of this kind is in force (loss in either direction).
    fn active(&self, kind: NetKind) -> bool {
        match kind {
            NetKind::Loss => self.loss > 0.0 || self.inbound_loss > 0.0,
            NetKind::Duplicate => self.duplicate > 0.0,
            NetKind::Reorder => self.reorder > 0.0,
        }
    }
}

/// What the nemesis needs from the driver at the moment it acts.
pub struct Context<'s, 'a, S: SystemUnderTest> {
    pub sim: &'s mut turmoil::Sim<'a>,
    pub sut: &'s S,
    pub time_ns: u64,
    /// The current leader as the driver sees it (0-based).
    pub leader: Option<usize>,
}

/// The nemesis' state: what is active now and what has happened.
pub struct Nemesis {
    nodes: usize,
    partition: Option<Vec<(usize, usize)>>,
    /// The pairs of `partition` are held (turmoil hold), not cut: healing releases them.
    partition_held: bool,
    oneway: Option<Vec<(usize, usize)>>,
    killed: BTreeSet<usize>,
    paused: BTreeSet<usize>,
    clocked: BTreeSet<usize>,
    net: BTreeMap<usize, NetSettings>,
    disk: BTreeSet<usize>,
    delayed: BTreeSet<usize>,
    slow_fsync: BTreeSet<usize>,
    apply_lagged: BTreeSet<usize>,
    /// Nodes the power loss took down (not those down already).
    power_lost: BTreeSet<usize>,
    /// Nodes down with a replaced disk, waiting to rejoin as new members.
    replaced: BTreeSet<usize>,
    removed: BTreeSet<usize>,
    /// Open fault records by kind (index into `faults`).
    open: BTreeMap<FaultKind, Vec<usize>>,
    pub faults: Vec<FaultRecord>,
    rotation: usize,
}

/// What the nemesis did, for the history (`f` and `value` of a nemesis info record).
pub struct Applied {
    pub f: String,
    pub value: Value,
}

impl Nemesis {
    pub fn new(nodes: usize) -> Nemesis {
        Nemesis {
            nodes,
            partition: None,
            partition_held: false,
            oneway: None,
            killed: BTreeSet::new(),
            paused: BTreeSet::new(),
            clocked: BTreeSet::new(),
            net: BTreeMap::new(),
            disk: BTreeSet::new(),
            delayed: BTreeSet::new(),
            slow_fsync: BTreeSet::new(),
            apply_lagged: BTreeSet::new(),
            power_lost: BTreeSet::new(),
            replaced: BTreeSet::new(),
            removed: BTreeSet::new(),
            open: BTreeMap::new(),
            faults: Vec::new(),
            rotation: 0,
        }
    }

    /// Whether a fault holds the node down (kill, power loss, a replaced disk): the driver
    /// neither restarts it nor counts it as failed.
    pub fn is_killed(&self, node: usize) -> bool {
        self.killed.contains(&node)
            || self.power_lost.contains(&node)
            || self.replaced.contains(&node)
    }

    fn open_fault(&mut self, kind: FaultKind, time_ns: u64, targets: Vec<String>, detail: Value) {
        self.faults.push(FaultRecord {
            kind,
            start_ns: time_ns,
            stop_ns: None,
            targets,
            detail,
        });
        let position = self.faults.len() - 1;
        self.open.entry(kind).or_default().push(position);
    }

    /// Ends the fault on the `stopped` nodes: a record that loses some of its targets ends
    /// here and goes on as a new record over the rest (same detail), so that every record
    /// says exactly which nodes were affected when. `all_stopped`: nothing of this kind is
    /// left in force.
    fn end_for(&mut self, kind: FaultKind, time_ns: u64, stopped: &[usize], all_stopped: bool) {
        if all_stopped {
            self.close_faults(kind, time_ns);
            return;
        }
        let stopped: BTreeSet<String> = stopped.iter().map(|node| node_name(*node)).collect();
        let mut still_open = Vec::new();
        for position in self.open.remove(&kind).unwrap_or_default() {
            let record = &self.faults[position];
            let remaining: Vec<String> = record
                .targets
                .iter()
                .filter(|target| !stopped.contains(*target))
                .cloned()
                .collect();
            if remaining.len() == record.targets.len() {
                still_open.push(position);
                continue;
            }
            let detail = record.detail.clone();
            self.faults[position].stop_ns = Some(time_ns);
            if !remaining.is_empty() {
                self.faults.push(FaultRecord {
                    kind,
                    start_ns: time_ns,
                    stop_ns: None,
                    targets: remaining,
                    detail,
                });
                still_open.push(self.faults.len() - 1);
            }
        }
        if !still_open.is_empty() {
            self.open.insert(kind, still_open);
        }
    }

    fn close_faults(&mut self, kind: FaultKind, time_ns: u64) {
        for position in self.open.remove(&kind).unwrap_or_default() {
            self.faults[position].stop_ns = Some(time_ns);
        }
    }

    /// The node pairs a partition of `shape` cuts (both ways), and its detail for the record.
    pub fn blocked_pairs(
        &self,
        shape: &PartitionShape,
        leader: Option<usize>,
    ) -> (Vec<(usize, usize)>, Value) {
        let mut pairs = Vec::new();
        let cross = |groups: &[Vec<usize>], pairs: &mut Vec<(usize, usize)>| {
            for (g, left) in groups.iter().enumerate() {
                for right in &groups[g + 1..] {
                    for a in left {
                        for b in right {
                            if a != b {
                                pairs.push((*a, *b));
                            }
                        }
                    }
                }
            }
        };
        let detail = match shape {
            PartitionShape::Groups(groups) => {
                cross(groups, &mut pairs);
                json!({"mode": "halves", "groups": groups.iter().map(|g| names(g)).collect::<Vec<_>>()})
            }
            PartitionShape::HeldGroups(groups) => {
                cross(groups, &mut pairs);
                json!({"mode": "hold-groups", "groups": groups.iter().map(|g| names(g)).collect::<Vec<_>>()})
            }
            PartitionShape::IsolateLeader | PartitionShape::HoldLeader => {
                let mode = if *shape == PartitionShape::HoldLeader {
                    "hold-leader"
                } else {
                    "isolate-leader"
                };
                match leader {
                    Some(leader) => {
                        let rest: Vec<usize> = (0..self.nodes).filter(|n| *n != leader).collect();
                        cross(&[vec![leader], rest.clone()], &mut pairs);
                        json!({"mode": mode, "groups": [names(&[leader]), names(&rest)]})
                    }
                    None => {
                        json!({"mode": mode, "groups": [], "note": "no leader known; nothing isolated"})
                    }
                }
            }
            PartitionShape::Ring(order) => {
                let length = order.len();
                // Each node reaches this many neighbours on each side: itself plus them is a majority.
                let reach = (self.nodes / 2).div_ceil(2);
                for (i, a) in order.iter().enumerate() {
                    for (j, b) in order.iter().enumerate().skip(i + 1) {
                        let distance = (j - i).min(length - (j - i));
                        if distance > reach {
                            pairs.push((*a, *b));
                        }
                    }
                }
                json!({"mode": "ring", "order": names(order)})
            }
            PartitionShape::Bridge { bridge, groups } => {
                let groups: Vec<Vec<usize>> = groups
                    .iter()
                    .map(|g| g.iter().copied().filter(|n| n != bridge).collect())
                    .collect();
                cross(&groups, &mut pairs);
                json!({"mode": "bridge", "bridge": node_name(*bridge), "groups": groups.iter().map(|g| names(g)).collect::<Vec<_>>()})
            }
        };
        pairs.sort_unstable();
        pairs.dedup();
        (pairs, detail)
    }

    fn set_net(&mut self, sut: &impl SystemUnderTest, node: usize) -> Result<(), String> {
        let settings = self.net.get(&node).copied().unwrap_or_default();
        sut.node_fault(
            node,
            &NodeFault::Net {
                loss_probability: settings.loss,
                inbound_loss_probability: settings.inbound_loss,
                duplicate_probability: settings.duplicate,
                duplicate_max_delay_ms: settings.duplicate_max_delay_ms,
                reorder_probability: settings.reorder,
                reorder_max_delay_ms: settings.reorder_max_delay_ms,
            },
        )?;
        if settings == NetSettings::default() {
            self.net.remove(&node);
        }
        Ok(())
    }

    /// Applies one action; returns what to record. An error is an internal failure of the
    /// system under test to take a fault it claimed to support.
    pub fn apply<S: SystemUnderTest>(
        &mut self,
        kind: FaultKind,
        action: &Action,
        context: &mut Context<'_, '_, S>,
    ) -> Result<Applied, String> {
        let time_ns = context.time_ns;
        let start = |kind: FaultKind| format!("start-{}", kind.name());
        let stop = |kind: FaultKind| format!("stop-{}", kind.name());
        let applied = match action {
            Action::StartPartition(shape) => {
                // A new partition replaces the one in force: that one ends here.
                self.heal_partition(context);
                self.close_faults(kind, time_ns);
                let (pairs, detail) = self.blocked_pairs(shape, context.leader);
                let held = matches!(
                    shape,
                    PartitionShape::HoldLeader | PartitionShape::HeldGroups(_)
                );
                for (a, b) in &pairs {
                    if held {
                        context.sim.hold(node_name(*a), node_name(*b));
                    } else {
                        context.sim.partition(node_name(*a), node_name(*b));
                    }
                }
                self.partition_held = held;
                let targets = match (shape, context.leader) {
                    // The isolated node is the target; other shapes cut every node they list.
                    (PartitionShape::IsolateLeader | PartitionShape::HoldLeader, Some(leader))
                        if !pairs.is_empty() =>
                    {
                        names(&[leader])
                    }
                    _ => {
                        let mut touched: BTreeSet<usize> = BTreeSet::new();
                        pairs.iter().for_each(|(a, b)| {
                            touched.insert(*a);
                            touched.insert(*b);
                        });
                        names(&touched.into_iter().collect::<Vec<_>>())
                    }
                };
                self.partition = Some(pairs);
                self.open_fault(kind, time_ns, targets.clone(), detail.clone());
                Applied {
                    f: start(kind),
                    value: with_targets(detail, &targets),
                }
            }
            Action::StopPartition => {
                let healed = self.heal_partition(context);
                self.close_faults(kind, time_ns);
                Applied {
                    f: stop(kind),
                    value: json!({"targets": names(&healed)}),
                }
            }
            Action::StartOneway { from, to } => {
                self.heal_oneway(context);
                self.close_faults(kind, time_ns);
                let mut pairs = Vec::new();
                for a in from {
                    for b in to {
                        if a != b {
                            context.sim.partition_oneway(node_name(*a), node_name(*b));
                            pairs.push((*a, *b));
                        }
                    }
                }
                self.oneway = Some(pairs);
                let detail = json!({"from": names(from), "to": names(to)});
                let targets = names(from);
                self.open_fault(kind, time_ns, targets.clone(), detail.clone());
                Applied {
                    f: start(kind),
                    value: with_targets(detail, &targets),
                }
            }
            Action::StartOnewayToLeader => {
                let Some(leader) = context.leader else {
                    return Ok(no_leader(start(kind)));
                };
                let from: Vec<usize> = (0..self.nodes).filter(|n| *n != leader).collect();
                return self.apply(
                    kind,
                    &Action::StartOneway {
                        from,
                        to: vec![leader],
                    },
                    context,
                );
            }
            Action::StopOneway => {
                let healed = self.heal_oneway(context);
                self.close_faults(kind, time_ns);
                Applied {
                    f: stop(kind),
                    value: json!({"targets": names(&healed)}),
                }
            }
            Action::Kill(requested) => {
                let Some(targets) = resolve_leader(requested, context.leader) else {
                    return Ok(no_leader(start(kind)));
                };
                let targets = &targets;
                for node in targets {
                    // A node already down (power loss, replaced disk) stays that fault's.
                    if !self.is_killed(*node) && self.killed.insert(*node) {
                        context.sim.crash(node_name(*node));
                        context.sut.set_running(*node, false);
                    }
                }
                self.open_fault(kind, time_ns, names(targets), Value::Null);
                Applied {
                    f: start(kind),
                    value: json!({"targets": names(targets)}),
                }
            }
            Action::Restart(targets) => {
                let chosen = self.choose(targets, &self.killed.clone());
                for node in &chosen {
                    self.killed.remove(node);
                    context.sim.bounce(node_name(*node));
                    context.sut.set_running(*node, true);
                }
                self.end_for(kind, time_ns, &chosen, self.killed.is_empty());
                Applied {
                    f: stop(kind),
                    value: json!({"targets": names(&chosen)}),
                }
            }
            Action::Pause(requested) => {
                let Some(targets) = resolve_leader(requested, context.leader) else {
                    return Ok(no_leader(start(kind)));
                };
                let targets = &targets;
                for node in targets {
                    if self.paused.insert(*node) {
                        context.sut.node_fault(*node, &NodeFault::Pause)?;
                    }
                }
                self.open_fault(kind, time_ns, names(targets), Value::Null);
                Applied {
                    f: start(kind),
                    value: json!({"targets": names(targets)}),
                }
            }
            Action::Resume(targets) => {
                let chosen = self.choose(targets, &self.paused.clone());
                for node in &chosen {
                    self.paused.remove(node);
                    context.sut.node_fault(*node, &NodeFault::Resume)?;
                }
                self.end_for(kind, time_ns, &chosen, self.paused.is_empty());
                Applied {
                    f: stop(kind),
                    value: json!({"targets": names(&chosen)}),
                }
            }
            Action::StartClock {
                targets: requested,
                skew_ms,
                drift_ppm,
            } => {
                let Some(targets) = resolve_leader(requested, context.leader) else {
                    return Ok(no_leader(start(kind)));
                };
                let targets = &targets;
                for node in targets {
                    self.clocked.insert(*node);
                    context.sut.node_fault(
                        *node,
                        &NodeFault::Clock {
                            skew_ms: *skew_ms,
                            drift_ppm: *drift_ppm,
                        },
                    )?;
                }
                let detail = json!({"skew_ms": skew_ms, "drift_ppm": drift_ppm});
                self.open_fault(kind, time_ns, names(targets), detail.clone());
                Applied {
                    f: start(kind),
                    value: with_targets(detail, &names(targets)),
                }
            }
            Action::StopClock(targets) => {
                let chosen = self.choose(targets, &self.clocked.clone());
                for node in &chosen {
                    self.clocked.remove(node);
                    context.sut.node_fault(
                        *node,
                        &NodeFault::Clock {
                            skew_ms: 0,
                            drift_ppm: 0,
                        },
                    )?;
                }
                self.end_for(kind, time_ns, &chosen, self.clocked.is_empty());
                Applied {
                    f: stop(kind),
                    value: json!({"targets": names(&chosen)}),
                }
            }
            Action::StartNet {
                kind: net,
                targets,
                probability,
                max_delay_ms,
                direction,
            } => {
                for node in targets {
                    let settings = self.net.entry(*node).or_default();
                    match net {
                        NetKind::Loss => {
                            if *direction != LossDirection::In {
                                settings.loss = *probability;
                            }
                            if *direction != LossDirection::Out {
                                settings.inbound_loss = *probability;
                            }
                        }
                        NetKind::Duplicate => {
                            settings.duplicate = *probability;
                            settings.duplicate_max_delay_ms = *max_delay_ms;
                        }
                        NetKind::Reorder => {
                            settings.reorder = *probability;
                            settings.reorder_max_delay_ms = *max_delay_ms;
                        }
                    }
                    self.set_net(context.sut, *node)?;
                }
                let detail = match net {
                    NetKind::Reorder => {
                        json!({"probability": probability, "max_delay_ms": max_delay_ms})
                    }
                    NetKind::Duplicate if *max_delay_ms > 0 => {
                        json!({"probability": probability, "max_delay_ms": max_delay_ms})
                    }
                    NetKind::Loss => {
                        json!({"probability": probability, "direction": direction.name()})
                    }
                    _ => json!({"probability": probability}),
                };
                self.open_fault(kind, time_ns, names(targets), detail.clone());
                Applied {
                    f: start(kind),
                    value: with_targets(detail, &names(targets)),
                }
            }
            Action::StopNet { kind: net, targets } => {
                let affected: BTreeSet<usize> = self
                    .net
                    .iter()
                    .filter(|(_, settings)| settings.active(*net))
                    .map(|(node, _)| *node)
                    .collect();
                let chosen = self.choose(targets, &affected);
                for node in &chosen {
                    if let Some(settings) = self.net.get_mut(node) {
                        match net {
                            NetKind::Loss => {
                                settings.loss = 0.0;
                                settings.inbound_loss = 0.0;
                            }
                            NetKind::Duplicate => {
                                settings.duplicate = 0.0;
                                settings.duplicate_max_delay_ms = 0;
                            }
                            NetKind::Reorder => {
                                settings.reorder = 0.0;
                                settings.reorder_max_delay_ms = 0;
                            }
                        }
                    }
                    self.set_net(context.sut, *node)?;
                }
                let all_stopped = chosen.len() == affected.len();
                self.end_for(kind, time_ns, &chosen, all_stopped);
                Applied {
                    f: stop(kind),
                    value: json!({"targets": names(&chosen)}),
                }
            }
            Action::StartDisk {
                targets,
                torn_write_probability,
                read_corruption_probability,
                io_error_probability,
            } => {
                for node in targets {
                    self.disk.insert(*node);
                    context.sut.node_fault(
                        *node,
                        &NodeFault::Disk {
                            torn_write_probability: *torn_write_probability,
                            read_corruption_probability: *read_corruption_probability,
                            io_error_probability: *io_error_probability,
                        },
                    )?;
                }
                let detail = json!({"torn_write_probability": torn_write_probability, "read_corruption_probability": read_corruption_probability, "io_error_probability": io_error_probability});
                self.open_fault(kind, time_ns, names(targets), detail.clone());
                Applied {
                    f: start(kind),
                    value: with_targets(detail, &names(targets)),
                }
            }
            Action::StopDisk(targets) => {
                let chosen = self.choose(targets, &self.disk.clone());
                for node in &chosen {
                    self.disk.remove(node);
                    let healthy = NodeFault::Disk {
                        torn_write_probability: 0.0,
                        read_corruption_probability: 0.0,
                        io_error_probability: 0.0,
                    };
                    context.sut.node_fault(*node, &healthy)?;
                }
                self.end_for(kind, time_ns, &chosen, self.disk.is_empty());
                Applied {
                    f: stop(kind),
                    value: json!({"targets": names(&chosen)}),
                }
            }
            Action::StartDelay {
                targets,
                base_ms,
                jitter_ms,
                spike_probability,
                spike_ms,
            } => {
                let fault = NodeFault::Delay {
                    base_ms: *base_ms,
                    jitter_ms: *jitter_ms,
                    spike_probability: *spike_probability,
                    spike_ms: *spike_ms,
                };
                for node in targets {
                    self.delayed.insert(*node);
                    context.sut.node_fault(*node, &fault)?;
                }
                let detail = json!({"base_ms": base_ms, "jitter_ms": jitter_ms, "spike_probability": spike_probability, "spike_ms": spike_ms});
                self.open_fault(kind, time_ns, names(targets), detail.clone());
                Applied {
                    f: start(kind),
                    value: with_targets(detail, &names(targets)),
                }
            }
            Action::StopDelay(targets) => {
                let chosen = self.choose(targets, &self.delayed.clone());
                let healthy = NodeFault::Delay {
                    base_ms: 0,
                    jitter_ms: 0,
                    spike_probability: 0.0,
                    spike_ms: 0,
                };
                for node in &chosen {
                    self.delayed.remove(node);
                    context.sut.node_fault(*node, &healthy)?;
                }
                self.end_for(kind, time_ns, &chosen, self.delayed.is_empty());
                Applied {
                    f: stop(kind),
                    value: json!({"targets": names(&chosen)}),
                }
            }
            Action::StartSlowFsync {
                targets,
                delay_ms,
                jitter_ms,
            } => {
                let fault = NodeFault::SlowFsync {
                    delay_ms: *delay_ms,
                    jitter_ms: *jitter_ms,
                };
                for node in targets {
                    self.slow_fsync.insert(*node);
                    context.sut.node_fault(*node, &fault)?;
                }
                let detail = json!({"delay_ms": delay_ms, "jitter_ms": jitter_ms});
                self.open_fault(kind, time_ns, names(targets), detail.clone());
                Applied {
                    f: start(kind),
                    value: with_targets(detail, &names(targets)),
                }
            }
            Action::StopSlowFsync(targets) => {
                let chosen = self.choose(targets, &self.slow_fsync.clone());
                let healthy = NodeFault::SlowFsync {
                    delay_ms: 0,
                    jitter_ms: 0,
                };
                for node in &chosen {
                    self.slow_fsync.remove(node);
                    context.sut.node_fault(*node, &healthy)?;
                }
                self.end_for(kind, time_ns, &chosen, self.slow_fsync.is_empty());
                Applied {
                    f: stop(kind),
                    value: json!({"targets": names(&chosen)}),
                }
            }
            Action::StartApplyLag {
                targets: requested,
                delay_ms,
            } => {
                let Some(targets) = resolve_leader(requested, context.leader) else {
                    return Ok(no_leader(start(kind)));
                };
                let fault = NodeFault::ApplyLag {
                    delay_ms: *delay_ms,
                };
                for node in &targets {
                    self.apply_lagged.insert(*node);
                    context.sut.node_fault(*node, &fault)?;
                }
                let detail = json!({"delay_ms": delay_ms});
                self.open_fault(kind, time_ns, names(&targets), detail.clone());
                Applied {
                    f: start(kind),
                    value: with_targets(detail, &names(&targets)),
                }
            }
            Action::StopApplyLag(targets) => {
                let chosen = self.choose(targets, &self.apply_lagged.clone());
                for node in &chosen {
                    self.apply_lagged.remove(node);
                    context
                        .sut
                        .node_fault(*node, &NodeFault::ApplyLag { delay_ms: 0 })?;
                }
                self.end_for(kind, time_ns, &chosen, self.apply_lagged.is_empty());
                Applied {
                    f: stop(kind),
                    value: json!({"targets": names(&chosen)}),
                }
            }
            Action::PowerLoss => {
                // Nodes already down (killed, replaced disk) stay down by their own fault.
                let running: Vec<usize> = (0..self.nodes)
                    .filter(|node| !self.is_killed(*node))
                    .collect();
                for node in &running {
                    context.sim.crash(node_name(*node));
                    context.sut.set_running(*node, false);
                    self.power_lost.insert(*node);
                }
                if !running.is_empty() {
                    self.open_fault(kind, time_ns, names(&running), Value::Null);
                }
                Applied {
                    f: start(kind),
                    value: json!({"targets": names(&running)}),
                }
            }
            Action::PowerRestore => {
                let restored: Vec<usize> =
                    std::mem::take(&mut self.power_lost).into_iter().collect();
                for node in &restored {
                    context.sim.bounce(node_name(*node));
                    context.sut.set_running(*node, true);
                }
                self.close_faults(kind, time_ns);
                Applied {
                    f: stop(kind),
                    value: json!({"targets": names(&restored)}),
                }
            }
            Action::ReplaceDisks(targets) => self.replace_disks(kind, targets, context)?,
            Action::RejoinNew(targets) => {
                let chosen = self.choose(targets, &self.replaced.clone());
                for node in &chosen {
                    self.replaced.remove(node);
                    context.sut.node_fault(*node, &NodeFault::JoinAsNewMember)?;
                    context.sim.bounce(node_name(*node));
                    context.sut.set_running(*node, true);
                }
                self.end_for(kind, time_ns, &chosen, self.replaced.is_empty());
                Applied {
                    f: stop(kind),
                    value: json!({"targets": names(&chosen)}),
                }
            }
            Action::RemoveMembers(targets) => {
                // Nodes removed already stay removed; only the others are new to this fault.
                let mut newly_removed = Vec::new();
                for node in targets {
                    if self.removed.insert(*node) {
                        context
                            .sut
                            .node_fault(*node, &NodeFault::RemoveFromCluster)?;
                        newly_removed.push(*node);
                    }
                }
                if !newly_removed.is_empty() {
                    self.open_fault(kind, time_ns, names(&newly_removed), Value::Null);
                }
                Applied {
                    f: start(kind),
                    value: json!({"targets": names(&newly_removed)}),
                }
            }
            Action::AddMembers(targets) => {
                let chosen = self.choose(targets, &self.removed.clone());
                for node in &chosen {
                    self.removed.remove(node);
                    context.sut.node_fault(*node, &NodeFault::AddToCluster)?;
                }
                self.end_for(kind, time_ns, &chosen, self.removed.is_empty());
                Applied {
                    f: stop(kind),
                    value: json!({"targets": names(&chosen)}),
                }
            }
            Action::Transfer(targets) => {
                let value = match context.leader {
                    Some(leader) => {
                        let to = match targets.first() {
                            Some(target) => Some(*target),
                            None => {
                                // Deterministic choice of a member follower, in turn.
                                self.rotation += 1;
                                let followers: Vec<usize> = (0..self.nodes)
                                    .filter(|n| *n != leader && !self.removed.contains(n))
                                    .collect();
                                followers
                                    .get(self.rotation % followers.len().max(1))
                                    .copied()
                            }
                        };
                        match to {
                            Some(to) if !self.removed.contains(&to) => {
                                context
                                    .sut
                                    .node_fault(leader, &NodeFault::TransferLeadershipTo { to })?;
                                let detail =
                                    json!({"from": node_name(leader), "to": node_name(to)});
                                self.open_fault(kind, time_ns, names(&[to]), detail.clone());
                                with_targets(detail, &names(&[to]))
                            }
                            Some(to) => {
                                json!({"targets": names(&[to]), "note": "not a member (removed by the membership fault); nothing transferred"})
                            }
                            None => {
                                json!({"targets": [], "note": "no member follower; nothing transferred"})
                            }
                        }
                    }
                    None => {
                        json!({"targets": names(targets), "note": "no leader known; nothing transferred"})
                    }
                };
                Applied {
                    f: start(kind),
                    value,
                }
            }
            Action::StopTransfer => {
                self.close_faults(kind, time_ns);
                Applied {
                    f: stop(kind),
                    value: json!({"targets": []}),
                }
            }
        };
        Ok(applied)
    }

    /// Crashes the targets and has the system give them empty disks and new identities. Only
    /// while the configuration is settled (earlier replacements and membership changes done),
    /// and only so many that the members keeping their data stay a majority of the
    /// configuration: more would be data loss by design, not a fault the store must survive.
    fn replace_disks<S: SystemUnderTest>(
        &mut self,
        kind: FaultKind,
        targets: &[usize],
        context: &mut Context<'_, '_, S>,
    ) -> Result<Applied, String> {
        let f = format!("start-{}", kind.name());
        if let Some(reason) = context.sut.configuration_unsettled(context.leader) {
            return Ok(Applied {
                f,
                value: json!({"targets": [], "note": format!("configuration still changing ({reason}); no disk replaced")}),
            });
        }
        let members = self.nodes - self.removed.len();
        let budget = (members.saturating_sub(1) / 2).saturating_sub(self.replaced.len());
        let mut chosen: Vec<usize> = Vec::new();
        let mut skipped: Vec<usize> = Vec::new();
        for node in targets {
            let eligible = !self.is_killed(*node) && !self.removed.contains(node);
            if eligible && chosen.len() < budget && !chosen.contains(node) {
                chosen.push(*node);
            } else if !skipped.contains(node) && !chosen.contains(node) {
                skipped.push(*node);
            }
        }
        for node in &chosen {
            context.sim.crash(node_name(*node));
            context.sut.set_running(*node, false);
            context.sut.node_fault(*node, &NodeFault::ReplaceDisk)?;
            self.replaced.insert(*node);
        }
        if !chosen.is_empty() {
            self.open_fault(kind, context.time_ns, names(&chosen), Value::Null);
        }
        let mut value = json!({"targets": names(&chosen)});
        if !skipped.is_empty() {
            value["note"] = json!(format!(
                "{} left alone: down, not a member, or replacing it would leave too few members with their data",
                names(&skipped).join(", ")
            ));
        }
        Ok(Applied { f, value })
    }

    /// The explicit targets that are affected, or every affected node when none are given.
    fn choose(&self, targets: &[usize], affected: &BTreeSet<usize>) -> Vec<usize> {
        if targets.is_empty() {
            affected.iter().copied().collect()
        } else {
            targets
                .iter()
                .copied()
                .filter(|node| affected.contains(node))
                .collect()
        }
    }

    fn heal_partition<S: SystemUnderTest>(
        &mut self,
        context: &mut Context<'_, '_, S>,
    ) -> Vec<usize> {
        let mut healed = BTreeSet::new();
        let held = std::mem::take(&mut self.partition_held);
        for (a, b) in self.partition.take().unwrap_or_default() {
            if held {
                // Delivers every held message now, then the link is healthy again.
                context.sim.release(node_name(a), node_name(b));
            } else {
                context.sim.repair(node_name(a), node_name(b));
            }
            healed.insert(a);
            healed.insert(b);
        }
        healed.into_iter().collect()
    }

    fn heal_oneway<S: SystemUnderTest>(&mut self, context: &mut Context<'_, '_, S>) -> Vec<usize> {
        let mut healed = BTreeSet::new();
        for (a, b) in self.oneway.take().unwrap_or_default() {
            context.sim.repair_oneway(node_name(a), node_name(b));
            healed.insert(a);
        }
        healed.into_iter().collect()
    }

    /// The stop actions that heal everything active now, in a fixed order.
    pub fn heal_all_actions(&self) -> Vec<(FaultKind, Action)> {
        let mut actions = Vec::new();
        if self.partition.is_some() {
            actions.push((FaultKind::Partition, Action::StopPartition));
        }
        if self.oneway.is_some() {
            actions.push((FaultKind::PartitionOneway, Action::StopOneway));
        }
        if !self.killed.is_empty() {
            actions.push((FaultKind::Kill, Action::Restart(Vec::new())));
        }
        if !self.paused.is_empty() {
            actions.push((FaultKind::Pause, Action::Resume(Vec::new())));
        }
        if !self.power_lost.is_empty() {
            actions.push((FaultKind::PowerLoss, Action::PowerRestore));
        }
        if !self.clocked.is_empty() {
            actions.push((FaultKind::Clock, Action::StopClock(Vec::new())));
        }
        if !self.apply_lagged.is_empty() {
            actions.push((FaultKind::ApplyLag, Action::StopApplyLag(Vec::new())));
        }
        for (kind, net) in [
            (FaultKind::Loss, NetKind::Loss),
            (FaultKind::Duplicate, NetKind::Duplicate),
            (FaultKind::Reorder, NetKind::Reorder),
        ] {
            if self.net.values().any(|settings| settings.active(net)) {
                let targets = Vec::new();
                actions.push((kind, Action::StopNet { kind: net, targets }));
            }
        }
        if !self.delayed.is_empty() {
            actions.push((FaultKind::Delay, Action::StopDelay(Vec::new())));
        }
        if !self.disk.is_empty() {
            actions.push((FaultKind::Disk, Action::StopDisk(Vec::new())));
        }
        if !self.slow_fsync.is_empty() {
            actions.push((FaultKind::SlowFsync, Action::StopSlowFsync(Vec::new())));
        }
        if !self.replaced.is_empty() {
            actions.push((FaultKind::RejoinEmpty, Action::RejoinNew(Vec::new())));
        }
        if !self.removed.is_empty() {
            actions.push((FaultKind::Membership, Action::AddMembers(Vec::new())));
        }
        if self.open.contains_key(&FaultKind::Transfer) {
            actions.push((FaultKind::Transfer, Action::StopTransfer));
        }
        actions
    }
}

fn with_targets(detail: Value, targets: &[String]) -> Value {
    let mut object = match detail {
        Value::Object(map) => map,
        _ => serde_json::Map::new(),
    };
    object.insert("targets".to_string(), json!(targets));
    Value::Object(object)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(action: &str, targets: &[&str], params: Value) -> FaultEvent {
        FaultEvent {
            at_ms: 0,
            action: action.to_string(),
            targets: targets.iter().map(|t| t.to_string()).collect(),
            params,
        }
    }

    #[test]
    fn impossible_or_meaningless_faults_are_refused() {
        let everyone = event("start-membership", &["n1", "n2", "n3"], Value::Null);
        assert!(parse_event(&everyone, 3)
            .unwrap_err()
            .contains("every node"));
        let minority = event("start-membership", &["n1"], Value::Null);
        assert!(parse_event(&minority, 3).is_ok());
        let direction = json!({"probability": 0.5, "direction": "in"});
        let duplicate = event("start-duplicate", &["n1"], direction.clone());
        assert!(parse_event(&duplicate, 3)
            .unwrap_err()
            .contains("params.direction is not a parameter of start-duplicate"));
        let (_, action) = parse_event(&event("start-loss", &["n1"], direction), 3).unwrap();
        assert!(matches!(
            action,
            Action::StartNet {
                direction: LossDirection::In,
                ..
            }
        ));
        let sideways = event("start-loss", &["n1"], json!({"direction": "sideways"}));
        assert!(parse_event(&sideways, 3).unwrap_err().contains("sideways"));
        let typo = event("start-loss", &["n1"], json!({"probabilty": 0.9}));
        let error = parse_event(&typo, 3).unwrap_err();
        assert!(
            error.contains("params.probabilty") && error.contains("probability, direction"),
            "{error}"
        );
        let ring = json!({"mode": "ring", "groups": [["n1"], ["n2"]]});
        let error = parse_event(&event("start-partition", &[], ring), 3).unwrap_err();
        assert!(error.contains("start-partition with mode ring"), "{error}");
        let stop = event("stop-loss", &[], json!({"direction": "in"}));
        assert!(parse_event(&stop, 3)
            .unwrap_err()
            .contains("takes no params"));
        let overlapping = json!({"mode": "halves", "groups": [["n1"], ["n1", "n2"]]});
        let error = parse_event(&event("start-partition", &[], overlapping), 3).unwrap_err();
        assert!(error.contains("n1 is in more than one group"), "{error}");
    }

    #[test]
    fn events_parse_into_actions() {
        let (kind, action) = parse_event(
            &event(
                "start-partition",
                &[],
                json!({"mode": "halves", "groups": [["n1"], ["n2", "n3"]]}),
            ),
            3,
        )
        .unwrap();
        assert_eq!(kind, FaultKind::Partition);
        assert_eq!(
            action,
            Action::StartPartition(PartitionShape::Groups(vec![vec![0], vec![1, 2]]))
        );
        let (_, action) = parse_event(
            &event(
                "start-partition",
                &[],
                json!({"mode": "hold-groups", "groups": [["n1"], ["n2", "n3"]]}),
            ),
            3,
        )
        .unwrap();
        assert_eq!(
            action,
            Action::StartPartition(PartitionShape::HeldGroups(vec![vec![0], vec![1, 2]]))
        );
        let (_, action) = parse_event(
            &event(
                "start-duplicate",
                &["n1"],
                json!({"probability": 0.5, "max_delay_ms": 2000}),
            ),
            3,
        )
        .unwrap();
        assert!(
            matches!(
                action,
                Action::StartNet {
                    max_delay_ms: 2000,
                    ..
                }
            ),
            "{action:?}"
        );
        let (_, action) = parse_event(&event("stop-kill", &[], Value::Null), 3).unwrap();
        assert_eq!(action, Action::Restart(vec![]));
        assert!(parse_event(&event("start-kill", &[], Value::Null), 3)
            .unwrap_err()
            .contains("target"));
        assert!(
            parse_event(&event("start-partition", &[], json!({"mode": "zigzag"})), 3)
                .unwrap_err()
                .contains("zigzag")
        );
        assert!(parse_event(&event("start-loss", &["n1"], json!({"probability": 3})), 3).is_err());
    }

    #[test]
    fn the_new_faults_parse_with_defaults_bounds_and_no_unknown_params() {
        let (kind, action) = parse_event(
            &event(
                "start-delay",
                &["n1"],
                json!({"base_ms": 5, "spike_ms": 900}),
            ),
            3,
        )
        .unwrap();
        assert_eq!(kind, FaultKind::Delay);
        assert_eq!(
            action,
            Action::StartDelay {
                targets: vec![0],
                base_ms: 5,
                jitter_ms: 20,
                spike_probability: 0.02,
                spike_ms: 900
            }
        );
        let typo = event("start-delay", &["n1"], json!({"spike_ms": 5, "spikes": 2}));
        assert!(parse_event(&typo, 3)
            .unwrap_err()
            .contains("params.spikes is not a parameter of start-delay"));
        let huge = event("start-slow-fsync", &["n1"], json!({"delay_ms": 10_000_000}));
        assert!(parse_event(&huge, 3)
            .unwrap_err()
            .contains("params.delay_ms"));
        let negative = event("start-delay", &["n1"], json!({"base_ms": -1}));
        assert!(parse_event(&negative, 3)
            .unwrap_err()
            .contains("params.base_ms"));
        assert!(parse_event(&event("start-slow-fsync", &[], Value::Null), 3)
            .unwrap_err()
            .contains("target"));
        let (_, action) = parse_event(
            &event(
                "start-apply-lag",
                &[],
                json!({"mode": "leader", "delay_ms": 700}),
            ),
            3,
        )
        .unwrap();
        assert_eq!(
            action,
            Action::StartApplyLag {
                targets: vec![],
                delay_ms: 700
            }
        );
        assert!(parse_event(&event("start-apply-lag", &[], Value::Null), 3).is_err());
        let (_, action) = parse_event(&event("start-power-loss", &[], Value::Null), 3).unwrap();
        assert_eq!(action, Action::PowerLoss);
        assert!(
            parse_event(&event("start-power-loss", &["n1"], Value::Null), 3)
                .unwrap_err()
                .contains("no targets")
        );
        assert!(
            parse_event(&event("start-power-loss", &[], json!({"mode": "x"})), 3)
                .unwrap_err()
                .contains("takes no params")
        );
        let (_, action) =
            parse_event(&event("start-rejoin-empty", &["n2"], Value::Null), 5).unwrap();
        assert_eq!(action, Action::ReplaceDisks(vec![1]));
        assert!(
            parse_event(&event("start-rejoin-empty", &["n1", "n2"], Value::Null), 3)
                .unwrap_err()
                .contains("minority")
        );
        let (_, action) = parse_event(&event("stop-rejoin-empty", &[], Value::Null), 5).unwrap();
        assert_eq!(action, Action::RejoinNew(vec![]));
    }

    #[test]
    fn healing_stops_every_new_fault_in_force() {
        let mut nemesis = Nemesis::new(5);
        nemesis.delayed.insert(0);
        nemesis.slow_fsync.insert(1);
        nemesis.apply_lagged.insert(2);
        nemesis.power_lost.insert(3);
        nemesis.replaced.insert(4);
        let kinds: Vec<FaultKind> = nemesis
            .heal_all_actions()
            .into_iter()
            .map(|(kind, _)| kind)
            .collect();
        for kind in [
            FaultKind::Delay,
            FaultKind::SlowFsync,
            FaultKind::ApplyLag,
            FaultKind::PowerLoss,
            FaultKind::RejoinEmpty,
        ] {
            assert!(kinds.contains(&kind), "{kind} not healed: {kinds:?}");
        }
        assert!((0..5).filter(|node| nemesis.is_killed(*node)).count() == 2);
    }

    #[test]
    fn ring_partition_leaves_every_node_a_majority() {
        let nemesis = Nemesis::new(5);
        let (pairs, _) = nemesis.blocked_pairs(&PartitionShape::Ring(vec![0, 1, 2, 3, 4]), None);
        for node in 0..5 {
            let blocked = pairs
                .iter()
                .filter(|(a, b)| *a == node || *b == node)
                .count();
            assert_eq!(
                5 - blocked,
                3,
                "node {node} should reach itself and two neighbours: {pairs:?}"
            );
        }
        let (pairs, _) = nemesis.blocked_pairs(
            &PartitionShape::Bridge {
                bridge: 2,
                groups: vec![vec![0, 1], vec![3, 4]],
            },
            None,
        );
        assert_eq!(pairs.len(), 4);
        assert!(pairs.iter().all(|(a, b)| *a != 2 && *b != 2));
    }
}

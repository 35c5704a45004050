//! Fault schedules: the scripted form (`--schedule FILE`, `schedule.json` in a run dir, what
//! `shrink` writes) and its seeded generation from `--nemesis` and `--nemesis-interval`.
//!
//! A schedule is a JSON list of events `{"at_ms", "action", "targets", "params"}`:
//! - `at_ms`: simulated ms since the run started;
//! - `action`: `start-<fault>` or `stop-<fault>` for a fault of `--nemesis`
//!   (e.g. `start-partition`, `stop-kill`);
//! - `targets`: node names (`"n1"`..); empty on a stop means "everything this fault affects
//!   now", and on `start-partition` with mode `isolate-leader` the leader is found at run time;
//! - `params`: per fault, see [`FaultKind`] handling in `nemesis.rs` (e.g. `{"mode": "halves",
//!   "groups": [["n1","n2"],["n3","n4","n5"]]}` or `{"probability": 0.2}`).
//!
//! Removing any event leaves a valid schedule (a stop with nothing to stop does nothing),
//! which is what shrinking needs.

use std::path::Path;

use rand::rngs::SmallRng;
use rand::seq::{IndexedRandom, SliceRandom};
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::options::FaultKind;
use crate::swarm::SwarmProfile;

/// Whether an event starts or stops its fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    Start,
    Stop,
}

/// One scheduled nemesis action.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FaultEvent {
    pub at_ms: u64,
    pub action: String,
    #[serde(default)]
    pub targets: Vec<String>,
    #[serde(default)]
    pub params: Value,
}

impl FaultEvent {
    pub fn new(
        at_ms: u64,
        phase: Phase,
        kind: FaultKind,
        targets: Vec<String>,
        params: Value,
    ) -> Self {
        FaultEvent {
            at_ms,
            action: action_name(phase, kind),
            targets,
            params,
        }
    }

    /// The phase and fault of `action`, or a message naming the bad action.
    pub fn parse_action(&self) -> Result<(Phase, FaultKind), String> {
        let (phase, kind) = if let Some(kind) = self.action.strip_prefix("start-") {
            (Phase::Start, kind)
        } else if let Some(kind) = self.action.strip_prefix("stop-") {
            (Phase::Stop, kind)
        } else {
            return Err(format!(
                "action {:?} must be start-<fault> or stop-<fault>",
                self.action
            ));
        };
        Ok((phase, kind.parse()?))
    }
}

pub fn action_name(phase: Phase, kind: FaultKind) -> String {
    match phase {
        Phase::Start => format!("start-{}", kind.name()),
        Phase::Stop => format!("stop-{}", kind.name()),
    }
}

/// A fault schedule, serialized as a plain JSON list of events ordered by `at_ms`; a swarm
/// schedule is an object `{"profile": {...}, "events": [...]}` (the profile also shapes the
/// clients, so a replay needs it).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Schedule {
    pub events: Vec<FaultEvent>,
    pub profile: Option<SwarmProfile>,
}

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum ScheduleForm {
    Events(Vec<FaultEvent>),
    WithProfile {
        profile: Option<SwarmProfile>,
        events: Vec<FaultEvent>,
    },
}

impl Serialize for Schedule {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match &self.profile {
            None => self.events.serialize(serializer),
            Some(profile) => {
                #[derive(Serialize)]
                struct WithProfile<'a> {
                    profile: &'a SwarmProfile,
                    events: &'a [FaultEvent],
                }
                WithProfile {
                    profile,
                    events: &self.events,
                }
                .serialize(serializer)
            }
        }
    }
}

impl<'de> Deserialize<'de> for Schedule {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(match ScheduleForm::deserialize(deserializer)? {
            ScheduleForm::Events(events) => Schedule {
                events,
                profile: None,
            },
            ScheduleForm::WithProfile { profile, events } => Schedule { events, profile },
        })
    }
}

impl Schedule {
    /// Parses and validates a schedule against a cluster of `nodes` nodes.
    pub fn from_json(text: &str, source_name: &str) -> Result<Schedule, String> {
        let mut schedule: Schedule = serde_json::from_str(text)
            .map_err(|error| format!("{source_name}: not a fault schedule: {error}"))?;
        for (position, event) in schedule.events.iter().enumerate() {
            event
                .parse_action()
                .map_err(|error| format!("{source_name}: event {position}: {error}"))?;
        }
        // Stable: events at the same time keep the file's order.
        schedule.events.sort_by_key(|event| event.at_ms);
        Ok(schedule)
    }

    pub fn read_file(path: &Path) -> Result<Schedule, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|error| format!("{}: cannot read: {error}", path.display()))?;
        Schedule::from_json(&text, &path.display().to_string())
    }

    /// Checks the node names against the cluster size.
    pub fn validate_targets(&self, nodes: usize) -> Result<(), String> {
        for (position, event) in self.events.iter().enumerate() {
            let mut names: Vec<&str> = event.targets.iter().map(String::as_str).collect();
            collect_names(&event.params, &mut names);
            for name in names {
                if node_index(name, nodes).is_none() {
                    return Err(format!(
                        "schedule event {position} ({}) names {name:?}, not a node of n1..n{nodes}",
                        event.action
                    ));
                }
            }
        }
        Ok(())
    }

    /// The faults this schedule uses, in order of first use.
    pub fn kinds(&self) -> Vec<FaultKind> {
        let mut kinds = Vec::new();
        for event in &self.events {
            if let Ok((_, kind)) = event.parse_action() {
                if !kinds.contains(&kind) {
                    kinds.push(kind);
                }
            }
        }
        kinds
    }

    pub fn to_json_pretty(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).expect("a schedule always serializes");
        text.push('\n');
        text
    }
}

/// Node names inside `groups`, `from`, `to` params, for validation.
fn collect_names<'a>(params: &'a Value, names: &mut Vec<&'a str>) {
    for field in ["groups", "from", "to"] {
        if let Some(value) = params.get(field) {
            collect_strings(value, names);
        }
    }
}

fn collect_strings<'a>(value: &'a Value, names: &mut Vec<&'a str>) {
    match value {
        Value::String(text) => names.push(text),
        Value::Array(items) => items.iter().for_each(|item| collect_strings(item, names)),
        _ => {}
    }
}

/// "n3" -> Some(2) for a cluster of at least 3 nodes.
pub fn node_index(name: &str, nodes: usize) -> Option<usize> {
    let number: usize = name.strip_prefix('n')?.parse().ok()?;
    (1..=nodes).contains(&number).then(|| number - 1)
}

pub fn node_name(index: usize) -> String {
    format!("n{}", index + 1)
}

/// Generates the schedule of a run: one fault window per `interval_ms`, from `interval_ms`
/// until `time_limit_ms`; each window starts a fault picked from `kinds` (sometimes two, never
/// two topology faults) and stops it after a quarter to three quarters of the interval.
pub fn generate(
    kinds: &[FaultKind],
    nodes: usize,
    time_limit_ms: u64,
    interval_ms: u64,
    rng: &mut SmallRng,
) -> Schedule {
    assert!(interval_ms > 0, "the interval is validated by RunOptions");
    let mut events = Vec::new();
    if kinds.is_empty() {
        return Schedule {
            events,
            profile: None,
        };
    }
    let mut window_start_ms = interval_ms;
    while window_start_ms < time_limit_ms {
        let first = *kinds.choose(rng).expect("kinds is not empty");
        let mut window_kinds = vec![first];
        let others: Vec<FaultKind> = kinds
            .iter()
            .copied()
            .filter(|kind| *kind != first && !(kind.is_topology() && first.is_topology()))
            .collect();
        if !others.is_empty() && rng.random_bool(0.25) {
            window_kinds.push(*others.choose(rng).expect("others is not empty"));
        }
        for (position, kind) in window_kinds.into_iter().enumerate() {
            let start_ms = window_start_ms + position as u64 * (interval_ms / 10);
            let length_ms = rng
                .random_range(interval_ms / 4..=interval_ms * 3 / 4)
                .max(1);
            let stop_ms = (start_ms + length_ms).min(time_limit_ms);
            if start_ms >= stop_ms {
                continue;
            }
            let (targets, params) = start_shape(kind, nodes, rng);
            events.push(FaultEvent::new(
                start_ms,
                Phase::Start,
                kind,
                targets.clone(),
                params,
            ));
            let stop_targets = match kind {
                // Kill, pause, membership and disk replacement undo exactly the nodes they hit.
                FaultKind::Kill
                | FaultKind::Pause
                | FaultKind::Membership
                | FaultKind::RejoinEmpty => targets,
                _ => Vec::new(),
            };
            events.push(FaultEvent::new(
                stop_ms,
                Phase::Stop,
                kind,
                stop_targets,
                Value::Null,
            ));
        }
        window_start_ms += interval_ms;
    }
    events.sort_by_key(|event| event.at_ms);
    Schedule {
        events,
        profile: None,
    }
}

fn all_names(nodes: usize) -> Vec<String> {
    (0..nodes).map(node_name).collect()
}

fn random_subset(nodes: usize, count: usize, rng: &mut SmallRng) -> Vec<String> {
    let mut names = all_names(nodes);
    names.shuffle(rng);
    names.truncate(count.clamp(1, nodes));
    names.sort_by_key(|name| node_index(name, nodes));
    names
}

/// Targets and params of a generated start event.
pub fn start_shape(kind: FaultKind, nodes: usize, rng: &mut SmallRng) -> (Vec<String>, Value) {
    let majority = nodes / 2 + 1;
    match kind {
        FaultKind::Partition => {
            let modes: &[&str] = if nodes >= 3 {
                &["halves", "isolate-leader", "ring", "bridge"]
            } else {
                &["halves", "isolate-leader"]
            };
            let mode = *modes.choose(rng).expect("modes is not empty");
            let mut names = all_names(nodes);
            names.shuffle(rng);
            match mode {
                "halves" => {
                    let cut = rng.random_range(1..=nodes.max(2) - 1).min(nodes);
                    let (left, right) = names.split_at(cut.min(names.len()));
                    (
                        Vec::new(),
                        json!({"mode": "halves", "groups": [left, right]}),
                    )
                }
                "ring" => (Vec::new(), json!({"mode": "ring", "order": names})),
                "bridge" => {
                    let bridge = names[0].clone();
                    let rest = &names[1..];
                    let (left, right) = rest.split_at(rest.len() / 2);
                    (
                        Vec::new(),
                        json!({"mode": "bridge", "bridge": bridge, "groups": [left, right]}),
                    )
                }
                _ => (Vec::new(), json!({"mode": "isolate-leader"})),
            }
        }
        FaultKind::PartitionOneway => {
            let count = rng.random_range(1..=nodes.div_ceil(2).max(1));
            let from = random_subset(nodes, count, rng);
            let to: Vec<String> = all_names(nodes)
                .into_iter()
                .filter(|name| !from.contains(name))
                .collect();
            (Vec::new(), json!({"from": from, "to": to}))
        }
        // Half the kills and pauses hit whoever leads when they start.
        FaultKind::Kill | FaultKind::Pause => {
            if rng.random_bool(0.5) {
                (Vec::new(), json!({"mode": "leader"}))
            } else {
                let count = rng.random_range(1..=majority);
                (random_subset(nodes, count, rng), Value::Null)
            }
        }
        FaultKind::Clock => {
            let count = rng.random_range(1..=nodes);
            let skew_ms = rng.random_range(-2_000..=2_000i64);
            // Up to +-40%: a slow leader clock stretches its lease and check-quorum timers.
            let drift_ppm = rng.random_range(-400_000..=400_000i64);
            if rng.random_bool(0.5) {
                return (
                    Vec::new(),
                    json!({"mode": "leader", "skew_ms": skew_ms, "drift_ppm": drift_ppm}),
                );
            }
            (
                random_subset(nodes, count, rng),
                json!({"skew_ms": skew_ms, "drift_ppm": drift_ppm}),
            )
        }
        FaultKind::Loss => {
            let count = rng.random_range(1..=nodes);
            let probability = [0.05, 0.2, 0.5][rng.random_range(0..3)];
            // Mostly what the nodes send; sometimes what reaches them, or both.
            let direction = ["out", "out", "in", "both"][rng.random_range(0..4)];
            (
                random_subset(nodes, count, rng),
                json!({"probability": probability, "direction": direction}),
            )
        }
        FaultKind::Duplicate => {
            let count = rng.random_range(1..=nodes);
            let probability = [0.05, 0.2, 0.5][rng.random_range(0..3)];
            // Late copies deliver messages from older terms (a vote, an append, a reply):
            // a copy at the same instant is almost always discarded as a repeat.
            let max_delay_ms = [0u64, 200, 2_000, 10_000][rng.random_range(0..4)];
            (
                random_subset(nodes, count, rng),
                json!({"probability": probability, "max_delay_ms": max_delay_ms}),
            )
        }
        FaultKind::Reorder => {
            let count = rng.random_range(1..=nodes);
            let probability = [0.1, 0.3, 0.6][rng.random_range(0..3)];
            let max_delay_ms = rng.random_range(5..=100u64);
            (
                random_subset(nodes, count, rng),
                json!({"probability": probability, "max_delay_ms": max_delay_ms}),
            )
        }
        FaultKind::Disk => {
            let count = rng.random_range(1..=majority);
            let probability = [0.01, 0.05, 0.2][rng.random_range(0..3)];
            (
                random_subset(nodes, count, rng),
                json!({"torn_write_probability": probability, "read_corruption_probability": probability / 2.0, "io_error_probability": probability}),
            )
        }
        FaultKind::Membership => {
            // Remove a minority, so that the remaining voters can still commit.
            let count = rng.random_range(1..=(nodes.saturating_sub(1) / 2).max(1));
            (random_subset(nodes, count, rng), Value::Null)
        }
        FaultKind::Transfer => (random_subset(nodes, 1, rng), Value::Null),
        FaultKind::Delay => {
            let count = rng.random_range(1..=nodes);
            let base_ms = [1u64, 5, 20][rng.random_range(0..3)];
            let jitter_ms = [5u64, 20, 60][rng.random_range(0..3)];
            let spike_probability = [0.01, 0.05][rng.random_range(0..2)];
            let spike_ms = [300u64, 1_000, 3_000][rng.random_range(0..3)];
            (
                random_subset(nodes, count, rng),
                json!({"base_ms": base_ms, "jitter_ms": jitter_ms, "spike_probability": spike_probability, "spike_ms": spike_ms}),
            )
        }
        FaultKind::SlowFsync => {
            let count = rng.random_range(1..=nodes);
            let delay_ms = [10u64, 50, 200][rng.random_range(0..3)];
            (
                random_subset(nodes, count, rng),
                json!({"delay_ms": delay_ms, "jitter_ms": delay_ms}),
            )
        }
        FaultKind::ApplyLag => {
            let delay_ms = [20u64, 200, 1_000][rng.random_range(0..3)];
            if rng.random_bool(0.5) {
                return (Vec::new(), json!({"mode": "leader", "delay_ms": delay_ms}));
            }
            let count = rng.random_range(1..=nodes);
            (
                random_subset(nodes, count, rng),
                json!({"delay_ms": delay_ms}),
            )
        }
        FaultKind::PowerLoss => (Vec::new(), Value::Null),
        // One node at a time: never a majority of empty disks (the Raft store offers this
        // fault from three nodes on).
        FaultKind::RejoinEmpty => (random_subset(nodes, 1, rng), Value::Null),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn generated_schedule_round_trips_and_pairs_every_start_with_a_stop() {
        let mut rng = SmallRng::seed_from_u64(7);
        let schedule = generate(&FaultKind::ALL, 5, 60_000, 10_000, &mut rng);
        assert!(!schedule.events.is_empty());
        let text = schedule.to_json_pretty();
        let parsed = Schedule::from_json(&text, "test").unwrap();
        assert_eq!(parsed, schedule);
        parsed.validate_targets(5).unwrap();
        let starts = schedule
            .events
            .iter()
            .filter(|e| e.action.starts_with("start-"))
            .count();
        let stops = schedule
            .events
            .iter()
            .filter(|e| e.action.starts_with("stop-"))
            .count();
        assert_eq!(starts, stops);
        assert!(schedule.events.iter().all(|event| event.at_ms <= 60_000));
        assert!(schedule
            .events
            .windows(2)
            .all(|pair| pair[0].at_ms <= pair[1].at_ms));
    }

    #[test]
    fn generated_events_of_every_fault_kind_parse_into_actions() {
        for kind in FaultKind::ALL {
            for seed in 0..20 {
                let mut rng = SmallRng::seed_from_u64(seed);
                let schedule = generate(&[kind], 5, 20_000, 2_000, &mut rng);
                assert!(!schedule.events.is_empty(), "{kind}");
                for event in &schedule.events {
                    crate::nemesis::parse_event(event, 5)
                        .unwrap_or_else(|error| panic!("{kind} seed {seed}: {error}: {event:?}"));
                }
            }
        }
    }

    #[test]
    fn same_seed_same_schedule() {
        let a = generate(
            &FaultKind::ALL,
            5,
            30_000,
            5_000,
            &mut SmallRng::seed_from_u64(3),
        );
        let b = generate(
            &FaultKind::ALL,
            5,
            30_000,
            5_000,
            &mut SmallRng::seed_from_u64(3),
        );
        assert_eq!(a, b);
    }

    #[test]
    fn bad_schedules_are_rejected_with_a_reason() {
        let error =
            Schedule::from_json(r#"[{"at_ms": 5, "action": "explode"}]"#, "s.json").unwrap_err();
        assert!(
            error.contains("s.json") && error.contains("explode"),
            "{error}"
        );
        let error = Schedule::from_json(r#"{"at_ms": 5}"#, "s.json").unwrap_err();
        assert!(error.contains("not a fault schedule"), "{error}");
        let schedule = Schedule::from_json(
            r#"[{"at_ms": 5, "action": "start-kill", "targets": ["n9"]}]"#,
            "s",
        )
        .unwrap();
        assert!(schedule.validate_targets(5).unwrap_err().contains("n9"));
    }
}

//! Targeted fault schedules: the fixed shapes of fault that expose one planted bug each,
//! repeated over the run and jittered by the seed, built from the ordinary nemesis actions
//! (so `minos run --schedule` replays them and `minos shrink` can cut them down).

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use crate::options::FaultKind;
use crate::schedule::{node_name, FaultEvent, Phase, Schedule};

/// Every targeted schedule shape `selftest` uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// Clocks of the followers fast, the leader's slow, then the leader is cut off from the
    /// other nodes (never from the clients); healed after a while.
    IsolateSlowLeader,
    /// The leader's clock slow, a leadership transfer, and the old leader cut off from the
    /// other nodes right after: it may keep serving from its lease.
    TransferThenIsolate,
    /// Every message delayed (reordered) by up to 100 ms, and the leader killed over and over:
    /// new leaders serve reads before their no-op commits.
    KillLeaderSlowNetwork,
    /// Messages reordered and duplicated, and the leader killed now and then.
    ReorderDuplicateKillLeader,
    /// Every node crashes at the same moment and restarts shortly after, over and over.
    CrashAll,
    /// The leader is paused (event loop and clock frozen) and resumed later: its messages are
    /// held and released into a newer term.
    PauseLeader,
    /// The leader is cut off while clients feed it entries; then the new leader is killed
    /// and the partition healed, so the long stale log meets the short newer one.
    MinorityLogThenKillLeader,
    /// Partial partition: a bridge node reaches both halves, which cannot reach each other.
    Bridge,
    /// Every message delayed by up to 100 ms; the leader is killed, then, about when the next
    /// election ends, every node crashes and restarts: voters restart right after voting.
    KillLeaderThenCrashAll,
    /// The messages between the leader and the other nodes are held and released ~0.3 s
    /// later: the deposed leader's old-term messages arrive after a new leader committed.
    HoldLeader,
    /// The leader cannot hear the other nodes (one-way partition) for 5 s; it still reaches
    /// them. Without CheckQuorum it never steps down and nothing commits.
    DeafLeader,
    /// Raft figure 8 with partitions: the leader is cut off while clients feed it entries;
    /// the newer leader elected meanwhile is cut off in turn (healing the first), so the
    /// first wins again and brings a lagging node up to date entry by entry; it is killed
    /// midway and the cut-off newer leader, holding a newer-term entry, returns. Messages
    /// delayed up to 100 ms throughout.
    Figure8,
    /// Ongaro's 2015 single-server membership scenario on four nodes: leadership pinned on
    /// n1, n1 cut off and asked to remove n4 (a change it cannot commit); the other three
    /// elect a leader, which is asked at once to remove n3 while n3 loses half of what is sent
    /// to it; then the halves {n1, n3} and {n2, n4}. Without the new-leader rule both halves
    /// can hold a majority of their own configuration.
    RemovalsAcrossLeaders,
}

fn event(
    at_ms: u64,
    phase: Phase,
    kind: FaultKind,
    targets: Vec<String>,
    params: Value,
) -> FaultEvent {
    FaultEvent::new(at_ms, phase, kind, targets, params)
}

fn all(nodes: usize) -> Vec<String> {
    (0..nodes).map(node_name).collect()
}

fn leader() -> Value {
    json!({"mode": "leader"})
}

/// Scales `ms` by a seeded factor in [0.8, 1.2]: the same shape, not the same timing.
fn jitter(ms: u64, rng: &mut SmallRng) -> u64 {
    (ms as f64 * rng.random_range(0.8..=1.2)).round().max(1.0) as u64
}

impl Shape {
    /// One line for the selftest table.
    pub fn describe(self) -> &'static str {
        match self {
            Shape::IsolateSlowLeader => "isolate the leader from the nodes (not the clients), its clock slow, the others fast",
            Shape::TransferThenIsolate => "leader clock slow, transfer leadership, isolate the old leader at once",
            Shape::KillLeaderSlowNetwork => "all messages delayed up to 100 ms; kill the leader every ~1 s, read at once",
            Shape::ReorderDuplicateKillLeader => "reorder and duplicate messages; kill the leader every ~1.5 s",
            Shape::CrashAll => "crash every node at once every ~2 s, restart 100 ms later",
            Shape::PauseLeader => "pause the leader ~1.5 s (messages held), then release it",
            Shape::MinorityLogThenKillLeader => "isolate the leader while it takes adds; kill the new leader and heal",
            Shape::Bridge => "partial partition: halves cut, one bridge node reaches both",
            Shape::KillLeaderThenCrashAll => "messages delayed up to 100 ms; kill the leader, crash all 150-450 ms later, restart",
            Shape::HoldLeader => "hold the leader's messages to and from the nodes ~0.3 s, then release them",
            Shape::Figure8 => "figure 8: isolate the leader, then the next one; kill the first mid-catch-up and heal",
            Shape::DeafLeader => "one-way partition: the leader cannot hear the nodes for 5 s",
            Shape::RemovalsAcrossLeaders => "isolate the leader, remove n4 through it; remove n3 through the next leader (n3's inbound lossy); halves {n1,n3} {n2,n4}",
        }
    }

    /// The smallest cluster the shape is written for.
    pub fn min_nodes(self) -> usize {
        match self {
            Shape::RemovalsAcrossLeaders => 4,
            _ => 3,
        }
    }

    /// The schedule for a cluster of `nodes` over `time_limit_ms`, jittered by `seed`.
    pub fn schedule(self, nodes: usize, time_limit_ms: u64, seed: u64) -> Schedule {
        assert!(
            nodes >= self.min_nodes(),
            "{self:?} needs at least {} nodes",
            self.min_nodes()
        );
        let mut rng = SmallRng::seed_from_u64(seed ^ 0x5e1f_7e57);
        let mut events = Vec::new();
        let mut at_ms = jitter(1_000, &mut rng);
        let fits = |at_ms: u64, length_ms: u64| at_ms + length_ms + 500 < time_limit_ms;
        match self {
            Shape::IsolateSlowLeader => {
                while fits(at_ms, 2_500) {
                    let hold_ms = jitter(2_000, &mut rng);
                    events.push(event(
                        at_ms,
                        Phase::Start,
                        FaultKind::Clock,
                        all(nodes),
                        json!({"skew_ms": 0, "drift_ppm": 500_000}),
                    ));
                    events.push(event(
                        at_ms,
                        Phase::Start,
                        FaultKind::Clock,
                        vec![],
                        json!({"mode": "leader", "skew_ms": 0, "drift_ppm": -500_000}),
                    ));
                    events.push(event(
                        at_ms,
                        Phase::Start,
                        FaultKind::Partition,
                        vec![],
                        json!({"mode": "isolate-leader"}),
                    ));
                    events.push(event(
                        at_ms + hold_ms,
                        Phase::Stop,
                        FaultKind::Partition,
                        vec![],
                        Value::Null,
                    ));
                    events.push(event(
                        at_ms + hold_ms,
                        Phase::Stop,
                        FaultKind::Clock,
                        vec![],
                        Value::Null,
                    ));
                    at_ms += hold_ms + jitter(1_000, &mut rng);
                }
            }
            Shape::TransferThenIsolate => {
                while fits(at_ms, 1_500) {
                    let hold_ms = jitter(1_200, &mut rng);
                    events.push(event(
                        at_ms,
                        Phase::Start,
                        FaultKind::Clock,
                        all(nodes),
                        json!({"skew_ms": 0, "drift_ppm": 500_000}),
                    ));
                    events.push(event(
                        at_ms,
                        Phase::Start,
                        FaultKind::Clock,
                        vec![],
                        json!({"mode": "leader", "skew_ms": 0, "drift_ppm": -500_000}),
                    ));
                    events.push(event(
                        at_ms,
                        Phase::Start,
                        FaultKind::Transfer,
                        vec![],
                        Value::Null,
                    ));
                    events.push(event(
                        at_ms + 10,
                        Phase::Start,
                        FaultKind::Partition,
                        vec![],
                        json!({"mode": "isolate-leader"}),
                    ));
                    events.push(event(
                        at_ms + hold_ms,
                        Phase::Stop,
                        FaultKind::Partition,
                        vec![],
                        Value::Null,
                    ));
                    events.push(event(
                        at_ms + hold_ms,
                        Phase::Stop,
                        FaultKind::Clock,
                        vec![],
                        Value::Null,
                    ));
                    events.push(event(
                        at_ms + hold_ms,
                        Phase::Stop,
                        FaultKind::Transfer,
                        vec![],
                        Value::Null,
                    ));
                    at_ms += hold_ms + jitter(800, &mut rng);
                }
            }
            Shape::KillLeaderSlowNetwork | Shape::ReorderDuplicateKillLeader => {
                let slow = self == Shape::KillLeaderSlowNetwork;
                let start_ms = at_ms / 2;
                if slow {
                    events.push(event(
                        start_ms,
                        Phase::Start,
                        FaultKind::Reorder,
                        all(nodes),
                        json!({"probability": 1.0, "max_delay_ms": 100}),
                    ));
                } else {
                    events.push(event(
                        start_ms,
                        Phase::Start,
                        FaultKind::Reorder,
                        all(nodes),
                        json!({"probability": 0.5, "max_delay_ms": 50}),
                    ));
                    events.push(event(
                        start_ms,
                        Phase::Start,
                        FaultKind::Duplicate,
                        all(nodes),
                        json!({"probability": 0.3}),
                    ));
                }
                let (down_ms, period_ms) = if slow { (400, 1_000) } else { (300, 1_500) };
                while fits(at_ms, down_ms) {
                    let down_ms = jitter(down_ms, &mut rng);
                    events.push(event(
                        at_ms,
                        Phase::Start,
                        FaultKind::Kill,
                        vec![],
                        leader(),
                    ));
                    events.push(event(
                        at_ms + down_ms,
                        Phase::Stop,
                        FaultKind::Kill,
                        vec![],
                        Value::Null,
                    ));
                    at_ms += jitter(period_ms, &mut rng).max(down_ms + 50);
                }
            }
            Shape::CrashAll => {
                while fits(at_ms, 100) {
                    let down_ms = jitter(100, &mut rng);
                    events.push(event(
                        at_ms,
                        Phase::Start,
                        FaultKind::Kill,
                        all(nodes),
                        Value::Null,
                    ));
                    events.push(event(
                        at_ms + down_ms,
                        Phase::Stop,
                        FaultKind::Kill,
                        vec![],
                        Value::Null,
                    ));
                    at_ms += jitter(2_000, &mut rng);
                }
            }
            Shape::PauseLeader => {
                while fits(at_ms, 1_500) {
                    let hold_ms = jitter(1_500, &mut rng);
                    events.push(event(
                        at_ms,
                        Phase::Start,
                        FaultKind::Pause,
                        vec![],
                        leader(),
                    ));
                    events.push(event(
                        at_ms + hold_ms,
                        Phase::Stop,
                        FaultKind::Pause,
                        vec![],
                        Value::Null,
                    ));
                    at_ms += hold_ms + jitter(1_500, &mut rng);
                }
            }
            Shape::MinorityLogThenKillLeader => {
                while fits(at_ms, 1_500) {
                    let split_ms = jitter(350, &mut rng);
                    let down_ms = jitter(1_000, &mut rng);
                    events.push(event(
                        at_ms,
                        Phase::Start,
                        FaultKind::Partition,
                        vec![],
                        json!({"mode": "isolate-leader"}),
                    ));
                    events.push(event(
                        at_ms + split_ms,
                        Phase::Start,
                        FaultKind::Kill,
                        vec![],
                        leader(),
                    ));
                    events.push(event(
                        at_ms + split_ms,
                        Phase::Stop,
                        FaultKind::Partition,
                        vec![],
                        Value::Null,
                    ));
                    events.push(event(
                        at_ms + split_ms + down_ms,
                        Phase::Stop,
                        FaultKind::Kill,
                        vec![],
                        Value::Null,
                    ));
                    at_ms += split_ms + down_ms + jitter(1_600, &mut rng);
                }
            }
            Shape::Bridge => {
                // Who bridges changes with the seed; the halves are the rest, split in two.
                let bridge = rng.random_range(0..nodes);
                let rest: Vec<String> =
                    (0..nodes).filter(|n| *n != bridge).map(node_name).collect();
                let (left, right) = rest.split_at(rest.len() / 2);
                events.push(event(
                    at_ms,
                    Phase::Start,
                    FaultKind::Partition,
                    vec![],
                    json!({"mode": "bridge", "bridge": node_name(bridge), "groups": [left, right]}),
                ));
                events.push(event(
                    time_limit_ms.saturating_sub(1_000).max(at_ms + 1),
                    Phase::Stop,
                    FaultKind::Partition,
                    vec![],
                    Value::Null,
                ));
            }
            Shape::Figure8 => {
                events.push(event(
                    at_ms / 2,
                    Phase::Start,
                    FaultKind::Reorder,
                    all(nodes),
                    json!({"probability": 1.0, "max_delay_ms": 100}),
                ));
                while fits(at_ms, 2_500) {
                    let first_ms = rng.random_range(150..=450u64);
                    let second_ms = rng.random_range(300..=1_500u64);
                    let isolate = || json!({"mode": "isolate-leader"});
                    events.push(event(
                        at_ms,
                        Phase::Start,
                        FaultKind::Partition,
                        vec![],
                        isolate(),
                    ));
                    // The newest leader now: cut off, healing the first.
                    events.push(event(
                        at_ms + first_ms,
                        Phase::Start,
                        FaultKind::Partition,
                        vec![],
                        isolate(),
                    ));
                    let kill_at = at_ms + first_ms + second_ms;
                    events.push(event(
                        kill_at,
                        Phase::Start,
                        FaultKind::Kill,
                        vec![],
                        leader(),
                    ));
                    events.push(event(
                        kill_at,
                        Phase::Stop,
                        FaultKind::Partition,
                        vec![],
                        Value::Null,
                    ));
                    events.push(event(
                        kill_at + 500,
                        Phase::Stop,
                        FaultKind::Kill,
                        vec![],
                        Value::Null,
                    ));
                    at_ms = kill_at + 500 + rng.random_range(500..=1_500u64);
                }
            }
            Shape::KillLeaderThenCrashAll => {
                events.push(event(
                    at_ms / 2,
                    Phase::Start,
                    FaultKind::Reorder,
                    all(nodes),
                    json!({"probability": 1.0, "max_delay_ms": 100}),
                ));
                while fits(at_ms, 600) {
                    let crash_after_ms = rng.random_range(150..=450u64);
                    events.push(event(
                        at_ms,
                        Phase::Start,
                        FaultKind::Kill,
                        vec![],
                        leader(),
                    ));
                    events.push(event(
                        at_ms + crash_after_ms,
                        Phase::Start,
                        FaultKind::Kill,
                        all(nodes),
                        Value::Null,
                    ));
                    events.push(event(
                        at_ms + crash_after_ms + 50,
                        Phase::Stop,
                        FaultKind::Kill,
                        vec![],
                        Value::Null,
                    ));
                    at_ms += jitter(1_500, &mut rng).max(crash_after_ms + 300);
                }
            }
            Shape::HoldLeader => {
                while fits(at_ms, 500) {
                    // Short enough that the deposed leader's CheckQuorum has not fired yet.
                    let hold_ms = jitter(300, &mut rng);
                    events.push(event(
                        at_ms,
                        Phase::Start,
                        FaultKind::Partition,
                        vec![],
                        json!({"mode": "hold-leader"}),
                    ));
                    events.push(event(
                        at_ms + hold_ms,
                        Phase::Stop,
                        FaultKind::Partition,
                        vec![],
                        Value::Null,
                    ));
                    at_ms += hold_ms + jitter(1_900, &mut rng);
                }
            }
            Shape::DeafLeader => {
                while fits(at_ms, 5_000) {
                    events.push(event(
                        at_ms,
                        Phase::Start,
                        FaultKind::PartitionOneway,
                        vec![],
                        json!({"mode": "to-leader"}),
                    ));
                    events.push(event(
                        at_ms + 5_000,
                        Phase::Stop,
                        FaultKind::PartitionOneway,
                        vec![],
                        Value::Null,
                    ));
                    at_ms += 5_000 + jitter(3_000, &mut rng);
                }
            }
            Shape::RemovalsAcrossLeaders => {
                let [n1, n2, n3, n4] = [0, 1, 2, 3].map(node_name);
                let nodes_except_n1: Vec<String> = all(nodes).split_off(1);
                while fits(at_ms, 3_000) {
                    // Pin the leader, so that the removals below can name fixed nodes.
                    window(
                        &mut events,
                        at_ms,
                        at_ms + 50,
                        FaultKind::Transfer,
                        vec![n1.clone()],
                        Value::Null,
                    );
                    let cut_ms = at_ms + jitter(500, &mut rng);
                    let groups = json!({"mode": "groups", "groups": [[n1.clone()], nodes_except_n1.clone()]});
                    events.push(event(
                        cut_ms,
                        Phase::Start,
                        FaultKind::Partition,
                        vec![],
                        groups,
                    ));
                    // n1 still leads for an election timeout: it takes this change and keeps
                    // it uncommitted.
                    window(
                        &mut events,
                        cut_ms + 10,
                        cut_ms + 100,
                        FaultKind::Membership,
                        vec![n4.clone()],
                        Value::Null,
                    );
                    // The next leader is asked to remove n3 as soon as it leads; n3 voted for it
                    // but may miss its first entries.
                    let halves_ms = cut_ms + jitter(1_000, &mut rng).max(700);
                    window(
                        &mut events,
                        cut_ms + 100,
                        halves_ms,
                        FaultKind::Membership,
                        vec![n3.clone()],
                        Value::Null,
                    );
                    window(
                        &mut events,
                        cut_ms,
                        halves_ms,
                        FaultKind::Loss,
                        vec![n3.clone()],
                        json!({"probability": 0.5, "direction": "in"}),
                    );
                    let heal_ms = halves_ms + jitter(1_200, &mut rng);
                    let halves = json!({"mode": "groups", "groups": [[n1.clone(), n3.clone()], [n2.clone(), n4.clone()]]});
                    events.push(event(
                        halves_ms,
                        Phase::Start,
                        FaultKind::Partition,
                        vec![],
                        halves,
                    ));
                    events.push(event(
                        heal_ms,
                        Phase::Stop,
                        FaultKind::Partition,
                        vec![],
                        Value::Null,
                    ));
                    at_ms = heal_ms + jitter(800, &mut rng);
                }
            }
        }
        events.sort_by_key(|event| event.at_ms);
        Schedule { events }
    }
}

/// A fault started at `start_ms` and stopped at `stop_ms` on the same targets.
fn window(
    events: &mut Vec<FaultEvent>,
    start_ms: u64,
    stop_ms: u64,
    kind: FaultKind,
    targets: Vec<String>,
    params: Value,
) {
    debug_assert!(
        start_ms < stop_ms,
        "a window of {kind:?} ends after it starts"
    );
    events.push(event(start_ms, Phase::Start, kind, targets.clone(), params));
    events.push(event(stop_ms, Phase::Stop, kind, targets, Value::Null));
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHAPES: [Shape; 13] = [
        Shape::RemovalsAcrossLeaders,
        Shape::Figure8,
        Shape::KillLeaderThenCrashAll,
        Shape::HoldLeader,
        Shape::DeafLeader,
        Shape::IsolateSlowLeader,
        Shape::TransferThenIsolate,
        Shape::KillLeaderSlowNetwork,
        Shape::ReorderDuplicateKillLeader,
        Shape::CrashAll,
        Shape::PauseLeader,
        Shape::MinorityLogThenKillLeader,
        Shape::Bridge,
    ];

    #[test]
    fn every_shape_is_a_valid_replayable_schedule_inside_the_run() {
        for shape in SHAPES {
            for nodes in [3, 4, 5].into_iter().filter(|n| *n >= shape.min_nodes()) {
                let schedule = shape.schedule(nodes, 20_000, 9);
                assert!(!schedule.events.is_empty(), "{shape:?}");
                let text = schedule.to_json_pretty();
                let parsed = Schedule::from_json(&text, "test").unwrap();
                assert_eq!(parsed, schedule);
                parsed.validate_targets(nodes).unwrap();
                for event in &schedule.events {
                    crate::nemesis::parse_event(event, nodes).unwrap();
                    assert!(event.at_ms < 20_000, "{shape:?}: {event:?}");
                }
            }
        }
    }

    #[test]
    fn the_seed_moves_the_timing_not_the_shape() {
        let a = Shape::CrashAll.schedule(5, 20_000, 1);
        let b = Shape::CrashAll.schedule(5, 20_000, 2);
        assert_ne!(a, b);
        assert_eq!(a, Shape::CrashAll.schedule(5, 20_000, 1));
        assert_eq!(a.kinds(), b.kinds());
    }
}

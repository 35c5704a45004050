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

fn all(nodes: usize) -> Vec<String> {
    (0..nodes).map(node_name).collect()
}

fn leader() -> Value {
    json!({"mode": "leader"})
}

fn isolate_leader() -> Value {
    json!({"mode": "isolate-leader"})
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
        let mut plan = Plan::default();
        let mut at_ms = jitter(1_000, &mut rng);
        let fits = |at_ms: u64, length_ms: u64| at_ms + length_ms + 500 < time_limit_ms;
        match self {
            Shape::IsolateSlowLeader => {
                while fits(at_ms, 2_500) {
                    let heal_ms = at_ms + jitter(2_000, &mut rng);
                    plan.slow_leader_clock(at_ms, nodes);
                    plan.cut_off_leader(at_ms, heal_ms);
                    plan.stop(heal_ms, FaultKind::Clock);
                    at_ms = heal_ms + jitter(1_000, &mut rng);
                }
            }
            Shape::TransferThenIsolate => {
                while fits(at_ms, 1_500) {
                    let heal_ms = at_ms + jitter(1_200, &mut rng);
                    plan.slow_leader_clock(at_ms, nodes);
                    plan.start(at_ms, FaultKind::Transfer, vec![], Value::Null);
                    plan.cut_off_leader(at_ms + 10, heal_ms);
                    plan.stop(heal_ms, FaultKind::Clock);
                    plan.stop(heal_ms, FaultKind::Transfer);
                    at_ms = heal_ms + jitter(800, &mut rng);
                }
            }
            Shape::KillLeaderSlowNetwork | Shape::ReorderDuplicateKillLeader => {
                let slow = self == Shape::KillLeaderSlowNetwork;
                let start_ms = at_ms / 2;
                if slow {
                    plan.delay_every_message(start_ms, nodes);
                } else {
                    let reorder = json!({"probability": 0.5, "max_delay_ms": 50});
                    plan.start(start_ms, FaultKind::Reorder, all(nodes), reorder);
                    let duplicate = json!({"probability": 0.3});
                    plan.start(start_ms, FaultKind::Duplicate, all(nodes), duplicate);
                }
                let (usual_down_ms, period_ms) = if slow { (400, 1_000) } else { (300, 1_500) };
                while fits(at_ms, usual_down_ms) {
                    let down_ms = jitter(usual_down_ms, &mut rng);
                    plan.window(at_ms, at_ms + down_ms, FaultKind::Kill, vec![], leader());
                    at_ms += jitter(period_ms, &mut rng).max(down_ms + 50);
                }
            }
            Shape::CrashAll => {
                while fits(at_ms, 100) {
                    let restart_ms = at_ms + jitter(100, &mut rng);
                    plan.crash_all(at_ms, restart_ms, nodes);
                    at_ms += jitter(2_000, &mut rng);
                }
            }
            Shape::PauseLeader => {
                while fits(at_ms, 1_500) {
                    let resume_ms = at_ms + jitter(1_500, &mut rng);
                    plan.window(at_ms, resume_ms, FaultKind::Pause, vec![], leader());
                    at_ms = resume_ms + jitter(1_500, &mut rng);
                }
            }
            Shape::MinorityLogThenKillLeader => {
                while fits(at_ms, 1_500) {
                    let kill_ms = at_ms + jitter(350, &mut rng);
                    let restart_ms = kill_ms + jitter(1_000, &mut rng);
                    // Added before the partition so that, at `kill_ms`, the kill comes before
                    // the heal.
                    plan.window(kill_ms, restart_ms, FaultKind::Kill, vec![], leader());
                    plan.cut_off_leader(at_ms, kill_ms);
                    at_ms = restart_ms + jitter(1_600, &mut rng);
                }
            }
            Shape::Bridge => {
                // Who bridges changes with the seed; the halves are the rest, split in two.
                let bridge = rng.random_range(0..nodes);
                let rest: Vec<String> =
                    (0..nodes).filter(|n| *n != bridge).map(node_name).collect();
                let (left, right) = rest.split_at(rest.len() / 2);
                let heal_ms = time_limit_ms.saturating_sub(1_000).max(at_ms + 1);
                let bridged =
                    json!({"mode": "bridge", "bridge": node_name(bridge), "groups": [left, right]});
                plan.window(at_ms, heal_ms, FaultKind::Partition, vec![], bridged);
            }
            Shape::Figure8 => {
                plan.delay_every_message(at_ms / 2, nodes);
                while fits(at_ms, 2_500) {
                    let first_ms = rng.random_range(150..=450u64);
                    let second_ms = rng.random_range(300..=1_500u64);
                    plan.start(at_ms, FaultKind::Partition, vec![], isolate_leader());
                    // The newest leader now: cut off, healing the first.
                    let cut_ms = at_ms + first_ms;
                    plan.start(cut_ms, FaultKind::Partition, vec![], isolate_leader());
                    // At `kill_ms` the kill comes first, then the heal.
                    let kill_ms = cut_ms + second_ms;
                    plan.window(kill_ms, kill_ms + 500, FaultKind::Kill, vec![], leader());
                    plan.stop(kill_ms, FaultKind::Partition);
                    at_ms = kill_ms + 500 + rng.random_range(500..=1_500u64);
                }
            }
            Shape::KillLeaderThenCrashAll => {
                plan.delay_every_message(at_ms / 2, nodes);
                while fits(at_ms, 600) {
                    let crash_after_ms = rng.random_range(150..=450u64);
                    let crash_ms = at_ms + crash_after_ms;
                    // No restart of its own: the crash's restart brings it back with the rest.
                    plan.start(at_ms, FaultKind::Kill, vec![], leader());
                    plan.crash_all(crash_ms, crash_ms + 50, nodes);
                    at_ms += jitter(1_500, &mut rng).max(crash_after_ms + 300);
                }
            }
            Shape::HoldLeader => {
                while fits(at_ms, 500) {
                    // Short enough that the deposed leader's CheckQuorum has not fired yet.
                    let release_ms = at_ms + jitter(300, &mut rng);
                    let hold = json!({"mode": "hold-leader"});
                    plan.window(at_ms, release_ms, FaultKind::Partition, vec![], hold);
                    at_ms = release_ms + jitter(1_900, &mut rng);
                }
            }
            Shape::DeafLeader => {
                while fits(at_ms, 5_000) {
                    let hear_ms = at_ms + 5_000;
                    let deaf = json!({"mode": "to-leader"});
                    plan.window(at_ms, hear_ms, FaultKind::PartitionOneway, vec![], deaf);
                    at_ms = hear_ms + jitter(3_000, &mut rng);
                }
            }
            Shape::RemovalsAcrossLeaders => {
                let [n1, n2, n3, n4] = [0, 1, 2, 3].map(node_name);
                let nodes_except_n1: Vec<String> = all(nodes).split_off(1);
                while fits(at_ms, 3_000) {
                    // Pin the leader, so that the removals below can name fixed nodes.
                    let pin = vec![n1.clone()];
                    plan.window(at_ms, at_ms + 50, FaultKind::Transfer, pin, Value::Null);
                    let cut_ms = at_ms + jitter(500, &mut rng);
                    let n1_alone = json!({"mode": "groups", "groups": [[&n1], &nodes_except_n1]});
                    plan.start(cut_ms, FaultKind::Partition, vec![], n1_alone);
                    // n1 still leads for an election timeout: it takes this change and keeps
                    // it uncommitted.
                    plan.remove_member(cut_ms + 10, cut_ms + 100, &n4);
                    // The next leader is asked to remove n3 as soon as it leads; n3 voted for it
                    // but may miss its first entries.
                    let halves_ms = cut_ms + jitter(1_000, &mut rng).max(700);
                    plan.remove_member(cut_ms + 100, halves_ms, &n3);
                    let lossy = json!({"probability": 0.5, "direction": "in"});
                    plan.window(cut_ms, halves_ms, FaultKind::Loss, vec![n3.clone()], lossy);
                    let heal_ms = halves_ms + jitter(1_200, &mut rng);
                    let halves = json!({"mode": "groups", "groups": [[&n1, &n3], [&n2, &n4]]});
                    plan.start(halves_ms, FaultKind::Partition, vec![], halves);
                    plan.stop(heal_ms, FaultKind::Partition);
                    at_ms = heal_ms + jitter(800, &mut rng);
                }
            }
        }
        plan.into_schedule()
    }
}

/// The events of a schedule in the order a shape adds them. The final sort by time is stable,
/// so events of the same millisecond keep that order, and it is part of the shape (a kill
/// before a heal): a change here must keep every pinned schedule in the tests.
#[derive(Default)]
struct Plan {
    events: Vec<FaultEvent>,
}

impl Plan {
    /// `kind` starts at `at_ms` on `targets` (or on what `params` picks, such as the leader).
    fn start(&mut self, at_ms: u64, kind: FaultKind, targets: Vec<String>, params: Value) {
        let event = FaultEvent::new(at_ms, Phase::Start, kind, targets, params);
        self.events.push(event);
    }

    /// `kind` stops at `at_ms` with no targets: it undoes everything that fault affects.
    fn stop(&mut self, at_ms: u64, kind: FaultKind) {
        let event = FaultEvent::new(at_ms, Phase::Stop, kind, vec![], Value::Null);
        self.events.push(event);
    }

    /// A fault started at `start_ms` and stopped at `stop_ms` on the same targets.
    fn window(
        &mut self,
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
        self.start(start_ms, kind, targets.clone(), params);
        let event = FaultEvent::new(stop_ms, Phase::Stop, kind, targets, Value::Null);
        self.events.push(event);
    }

    /// From `at_ms`, the followers' clocks run fast and the leader's slow (one clock stop
    /// ends both).
    fn slow_leader_clock(&mut self, at_ms: u64, nodes: usize) {
        let fast = json!({"skew_ms": 0, "drift_ppm": 500_000});
        self.start(at_ms, FaultKind::Clock, all(nodes), fast);
        let slow = json!({"mode": "leader", "skew_ms": 0, "drift_ppm": -500_000});
        self.start(at_ms, FaultKind::Clock, vec![], slow);
    }

    /// The leader cut off from the other nodes (never from the clients) at `at_ms`; the
    /// partition healed at `heal_ms`.
    fn cut_off_leader(&mut self, at_ms: u64, heal_ms: u64) {
        self.window(
            at_ms,
            heal_ms,
            FaultKind::Partition,
            vec![],
            isolate_leader(),
        );
    }

    /// `node` asked out of the configuration at `at_ms`, and back in at `back_ms`.
    fn remove_member(&mut self, at_ms: u64, back_ms: u64, node: &str) {
        let targets = vec![node.to_string()];
        self.window(at_ms, back_ms, FaultKind::Membership, targets, Value::Null);
    }

    /// Every node killed at `at_ms`; every node restarted at `restart_ms`.
    fn crash_all(&mut self, at_ms: u64, restart_ms: u64, nodes: usize) {
        debug_assert!(at_ms < restart_ms, "a crash ends after it starts");
        self.start(at_ms, FaultKind::Kill, all(nodes), Value::Null);
        self.stop(restart_ms, FaultKind::Kill);
    }

    /// From `at_ms` to the end, every message delayed by up to 100 ms.
    fn delay_every_message(&mut self, at_ms: u64, nodes: usize) {
        let delay = json!({"probability": 1.0, "max_delay_ms": 100});
        self.start(at_ms, FaultKind::Reorder, all(nodes), delay);
    }

    fn into_schedule(mut self) -> Schedule {
        self.events.sort_by_key(|event| event.at_ms);
        Schedule {
            events: self.events,
            profile: None,
        }
    }
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

    /// Every shape on 3, 4 and 5 nodes (where it fits), seeds 1..=50, 30 s: the text the
    /// pinned digest below is taken over.
    fn every_schedule_text() -> String {
        let mut text = String::new();
        for shape in SHAPES {
            for nodes in [3, 4, 5].into_iter().filter(|n| *n >= shape.min_nodes()) {
                for seed in 1..=50 {
                    text.push_str(&format!("{shape:?} nodes={nodes} seed={seed}\n"));
                    text.push_str(&shape.schedule(nodes, 30_000, seed).to_json_pretty());
                }
            }
        }
        text
    }

    /// One line an event, for pinning a schedule exactly.
    fn lines(schedule: &Schedule) -> Vec<String> {
        schedule
            .events
            .iter()
            .map(|event| {
                let targets = event.targets.join(",");
                format!(
                    "{} {} [{targets}] {}",
                    event.at_ms, event.action, event.params
                )
            })
            .collect()
    }

    /// The same-instant order is part of a shape (a kill before a heal), so it is pinned too.
    #[test]
    fn a_few_schedules_stay_exactly_as_they_were() {
        let minority = r#"
1182 start-partition [] {"mode":"isolate-leader"}
1488 start-kill [] {"mode":"leader"}
1488 stop-partition [] null
2553 stop-kill [] null"#;
        let figure8 = r#"
484 start-reorder [n1,n2,n3,n4,n5] {"max_delay_ms":100,"probability":1.0}
969 start-partition [] {"mode":"isolate-leader"}
1414 start-partition [] {"mode":"isolate-leader"}
2218 start-kill [] {"mode":"leader"}
2218 stop-partition [] null
2718 stop-kill [] null"#;
        let slow_leader = r#"
1026 start-clock [n1,n2,n3] {"drift_ppm":500000,"skew_ms":0}
1026 start-clock [] {"drift_ppm":-500000,"mode":"leader","skew_ms":0}
1026 start-partition [] {"mode":"isolate-leader"}
3195 stop-partition [] null
3195 stop-clock [] null"#;
        let pinned = [
            (Shape::MinorityLogThenKillLeader, 3, 5_000, 7, minority),
            (Shape::Figure8, 5, 6_000, 3, figure8),
            (Shape::IsolateSlowLeader, 3, 6_000, 1, slow_leader),
        ];
        for (shape, nodes, time_limit_ms, seed, expected) in pinned {
            let schedule = shape.schedule(nodes, time_limit_ms, seed);
            let expected: Vec<&str> = expected.trim().lines().collect();
            assert_eq!(lines(&schedule), expected, "{shape:?} seed {seed}");
        }
    }

    /// Selftest results (seeds to first detection) are reproducible only while every shape
    /// yields the same schedule for the same seed: a change that moves any event, reorders
    /// same-instant events or draws the RNG in another order changes this digest.
    #[test]
    fn every_schedule_is_pinned_by_its_digest() {
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(every_schedule_text().as_bytes());
        let hex: String = digest.iter().map(|byte| format!("{byte:02x}")).collect();
        assert_eq!(
            hex,
            "17917d70e837716e7273b8c9b276863d823b6a34ee27cc4d9a2ed4e8d155d981"
        );
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

//! Swarm schedules (`--nemesis all`): every seed draws its own profile (which fault kinds,
//! how often and how long, how many at once, whom they hit, which protocol moments they
//! wait for, how the clients behave) and a schedule from it. Swarm testing (Groce et al.),
//! FoundationDB's buggify and TigerBeetle's VOPR share the idea: a narrow random mix hits
//! corners a uniform mix dilutes.
//!
//! The schedule has two parts. Fixed events (`at_ms`, explicit targets) go straight into the
//! schedule. Armed faults wait, inside a time window, for a protocol event the driver sees in
//! the nodes' views (a vote, a leader's append or commit, a snapshot install) or for the
//! window to open, and aim at a node only known then (the leader, its best follower, the node
//! that just voted); when one fires, the driver turns it into plain start/stop events and
//! writes those into the run's schedule.json, so `--schedule` replays them bit-exactly.
//!
//! Drawing is data-driven over the fault kinds the system supports: a new `FaultKind` joins
//! the draw as soon as the system lists it; [`aimed_shape`] says how to aim it at given nodes
//! (a kind it does not know is generated with `schedule::start_shape`'s random targets).

use rand::rngs::SmallRng;
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::options::{FaultKind, ReadMode};
use crate::schedule::{node_name, start_shape, FaultEvent, Phase, Schedule};

/// Whom a fault hits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Aim {
    /// Whoever leads when the fault fires.
    Leader,
    /// The running follower with the longest log when the fault fires (the likely successor).
    BestFollower,
    /// A random minority (at least one node).
    Minority,
    /// A random majority.
    Majority,
    /// Every node at once.
    All,
    /// The leader and as many followers as keep the group a minority: a leader that still
    /// reaches some followers keeps appending (and replicating) what it cannot commit.
    LeaderMinority,
}

impl Aim {
    const ALL: [Aim; 6] = [
        Aim::Leader,
        Aim::BestFollower,
        Aim::Minority,
        Aim::Majority,
        Aim::All,
        Aim::LeaderMinority,
    ];

    /// Resolved at run time, so the fault is armed rather than fixed.
    fn is_dynamic(self) -> bool {
        matches!(self, Aim::Leader | Aim::BestFollower | Aim::LeaderMinority)
    }
}

/// When an armed fault fires (inside its window).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Trigger {
    /// As soon as the window opens.
    Time,
    /// Just after a node grants its vote to another node; the fault hits the voter.
    AfterVote,
    /// Just after the leader appends to its log; the fault hits the leader.
    AfterAppend,
    /// Just after the leader advances its commit index; the fault hits the leader.
    AfterCommit,
    /// Just after a follower installs a snapshot; the fault hits that follower.
    AfterSnapshot,
    /// Just after a node becomes leader, before its first entry can be committed; the fault
    /// hits the new leader.
    AfterElected,
}

impl Trigger {
    const EVENTS: [Trigger; 5] = [
        Trigger::AfterVote,
        Trigger::AfterAppend,
        Trigger::AfterCommit,
        Trigger::AfterSnapshot,
        Trigger::AfterElected,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Trigger::Time => "time",
            Trigger::AfterVote => "after-vote",
            Trigger::AfterAppend => "after-append",
            Trigger::AfterCommit => "after-commit",
            Trigger::AfterSnapshot => "after-snapshot",
            Trigger::AfterElected => "after-elected",
        }
    }
}

/// A burst of client load: the clients' rate times `rate_factor` during the window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Burst {
    pub start_ms: u64,
    pub length_ms: u64,
    pub rate_factor: f64,
}

/// The client side of a profile.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ClientProfile {
    /// A client gives up on an op after this long (it ends `info`, in doubt); None keeps
    /// `--op-timeout`'s bound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op_timeout_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bursts: Vec<Burst>,
    /// Every other client is bound to a home node, as Jepsen binds a client to each node: it
    /// sends each op there first (a follower redirects it, a node that believes it leads
    /// answers), so a deposed leader that has not noticed keeps getting requests while
    /// the other clients follow the new leader. Without it every client sticks to the
    /// leader it found and leaves a node only when it stops answering.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub bound_clients: bool,
    /// How long one attempt waits for a node's reply before the client tries another node;
    /// None keeps the client library's default. Short attempts reach a new leader sooner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt_timeout_ms: Option<u64>,
}

impl ClientProfile {
    /// Draws how clients pick nodes (from its own stream: see `generate`).
    fn draw_routing(&mut self, rng: &mut SmallRng) {
        self.bound_clients = rng.random_bool(0.4);
        self.attempt_timeout_ms = rng.random_bool(0.4).then(|| log_uniform(rng, 50, 250));
    }
}

impl ClientProfile {
    /// The rate multiplier at simulated time `now_ms`.
    pub fn rate_factor_at(&self, now_ms: u64) -> f64 {
        self.bursts
            .iter()
            .filter(|burst| burst.start_ms <= now_ms && now_ms < burst.start_ms + burst.length_ms)
            .map(|burst| burst.rate_factor)
            .fold(1.0, f64::max)
    }
}

/// The store's own knobs a seed draws (FoundationDB randomizes its knobs per simulation):
/// batch sizes, snapshot frequency and which linearizable read path serves reads. A bug
/// that hides behind a default (a batch that always carries the new leader's no-op, a
/// snapshot that never happens in 30 s, reads that never take the lease path) shows under
/// another value. `None`: the store's default. Explicit run options win over drawn values
/// (`with_explicit`), and the profile records what applied.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StoreKnobs {
    /// Entries per AppendEntries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_append_entries: Option<usize>,
    /// Applied entries between two snapshots (log compaction).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_every: Option<u64>,
    /// How reads are served, among the modes that promise linearizability.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_mode: Option<ReadMode>,
    /// The longest randomized election timeout in ticks (16-20, against the default 30 and
    /// a shortest of 15): nodes time out nearly together, so elections split and candidates
    /// of one term compete (etcd exposes the timeout as `--election-timeout`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub election_timeout_max_ticks: Option<u32>,
}

/// The drift a clock fault may give a node when reads use leader leases: the store's lease
/// assumes clocks stay within its drift bound (2 ticks per 15-tick minimum election timeout,
/// about 13 % between two nodes); each node gets at most half of that, so any two stay in.
pub const LEASE_MAX_DRIFT_PPM: i64 = 60_000;

impl StoreKnobs {
    /// Draws the knobs of one seed: each knob keeps its default half of the time.
    fn draw(rng: &mut SmallRng) -> StoreKnobs {
        StoreKnobs {
            max_append_entries: rng
                .random_bool(0.5)
                .then(|| log_uniform(rng, 1, 64) as usize),
            snapshot_every: rng.random_bool(0.5).then(|| log_uniform(rng, 10, 1_000)),
            read_mode: rng.random_bool(0.5).then(|| {
                [ReadMode::ReadIndex, ReadMode::Lease, ReadMode::Log][rng.random_range(0..3)]
            }),
            // Drawn last, so that the knobs above keep the values each seed drew before.
            election_timeout_max_ticks: rng.random_bool(0.3).then(|| rng.random_range(16..=20)),
        }
    }

    /// These knobs with the run's explicit options in place of drawn values.
    pub fn with_explicit(
        mut self,
        max_append_entries: Option<usize>,
        read_mode: ReadMode,
    ) -> StoreKnobs {
        if max_append_entries.is_some() {
            self.max_append_entries = max_append_entries;
        }
        if read_mode != ReadMode::ReadIndex {
            self.read_mode = Some(read_mode);
        }
        self
    }

    pub fn is_default(&self) -> bool {
        *self == StoreKnobs::default()
    }

    /// Keeps a start-clock event within what the knobs assume of clocks (see
    /// [`LEASE_MAX_DRIFT_PPM`]); other events pass unchanged.
    pub fn bound_clock(&self, event: &mut FaultEvent) {
        if self.read_mode != Some(ReadMode::Lease) || event.action != "start-clock" {
            return;
        }
        if let Some(drift) = event.params.get_mut("drift_ppm") {
            if let Some(ppm) = drift.as_i64() {
                *drift = json!(ppm.clamp(-LEASE_MAX_DRIFT_PPM, LEASE_MAX_DRIFT_PPM));
            }
        }
    }
}

/// What one seed drew. Written into schedule.json (`profile`) and results.json.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SwarmProfile {
    /// The fault kinds of this seed (a random non-empty subset of what the system supports).
    pub kinds: Vec<FaultKind>,
    /// Mean time between two fault starts.
    pub mean_gap_ms: u64,
    /// Mean length of a fault.
    pub mean_duration_ms: u64,
    /// At most this many faults in force at once.
    pub max_concurrent: usize,
    pub aims: Vec<Aim>,
    /// Protocol events faults wait for (empty: only timed faults).
    pub triggers: Vec<Trigger>,
    /// Kills and pauses end within one election timeout (20-300 ms).
    pub quick_restarts: bool,
    /// Rapid crash-restart cycles of one node.
    pub crash_cycles: bool,
    /// Chains of leader isolations: each step cuts off whoever leads then, replacing the
    /// previous cut without a heal in between, so a leader deposed with writes it could not
    /// replicate rejoins a cluster whose next leader is being cut off: many short
    /// leaderships, divergent log tails meeting elections, delayed votes and appends of
    /// several terms (Jepsen's repeated leader partitions; the Raft paper's figure 8 is such
    /// a chain).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub leader_chains: bool,
    /// The membership operator changes its mind at new leaderships (when the seed's kinds
    /// include membership): another member goes out in place of the one the schedule
    /// removed, so a new leader is asked for a change other than the one its deposed
    /// predecessor may have left uncommitted (see `membership::MembershipGoal::make_restless`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub restless_membership: bool,
    #[serde(default)]
    pub client: ClientProfile,
    /// The store's knobs (empty for systems that take none, and in older schedules).
    #[serde(default, skip_serializing_if = "StoreKnobs::is_default")]
    pub knobs: StoreKnobs,
}

/// A fault waiting for its moment: see the module doc.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Armed {
    pub from_ms: u64,
    pub until_ms: u64,
    pub kind: FaultKind,
    pub trigger: Trigger,
    pub aim: Aim,
    pub duration_ms: u64,
}

/// The longest a kill or pause lasts under `quick_restarts`: one maximal election timeout.
const QUICK_RESTART_MAX_MS: u64 = 300;

/// Log-uniform in [low, high].
fn log_uniform(rng: &mut SmallRng, low: u64, high: u64) -> u64 {
    let (low, high) = (low.max(1) as f64, high.max(low.max(1)) as f64);
    (low * (high / low).powf(rng.random_range(0.0..=1.0))).round() as u64
}

/// Draws a profile over `supported` (sorted, so the draw is stable).
pub fn draw_profile(
    supported: &[FaultKind],
    time_limit_ms: u64,
    rng: &mut SmallRng,
) -> SwarmProfile {
    let mut kinds: Vec<FaultKind> = supported
        .iter()
        .copied()
        .filter(|_| rng.random_bool(0.5))
        .collect();
    if kinds.is_empty() && !supported.is_empty() {
        kinds.push(*supported.choose(rng).expect("supported is not empty"));
    }
    let mut aims: Vec<Aim> = Aim::ALL
        .into_iter()
        .filter(|_| rng.random_bool(0.5))
        .collect();
    if aims.is_empty() {
        aims.push(*Aim::ALL.choose(rng).expect("aims are listed"));
    }
    let triggers: Vec<Trigger> = if rng.random_bool(0.6) {
        Trigger::EVENTS
            .into_iter()
            .filter(|_| rng.random_bool(0.5))
            .collect()
    } else {
        Vec::new()
    };
    let client = ClientProfile {
        // Short enough to leave ops in doubt under faults, not so short that healthy ops
        // time out (each in-doubt op multiplies the checker's search).
        // (Below ~500 ms, slow-fsync and apply-lag alone leave most adds in doubt: a counter
        // history with hundreds of in-doubt adds on one key is beyond any checker's budget.)
        op_timeout_ms: rng.random_bool(0.3).then(|| log_uniform(rng, 500, 2_000)),
        bursts: if rng.random_bool(0.3) {
            let count = rng.random_range(1..=3);
            (0..count)
                .map(|_| Burst {
                    start_ms: rng.random_range(0..time_limit_ms.max(1)),
                    length_ms: log_uniform(rng, 200, 3_000),
                    rate_factor: [2.0, 4.0, 8.0][rng.random_range(0..3)],
                })
                .collect()
        } else {
            Vec::new()
        },
        ..ClientProfile::default()
    };
    SwarmProfile {
        kinds,
        mean_gap_ms: log_uniform(rng, 200, 10_000),
        mean_duration_ms: log_uniform(rng, 200, 10_000),
        max_concurrent: rng.random_range(1..=3),
        aims,
        triggers,
        quick_restarts: rng.random_bool(0.4),
        crash_cycles: rng.random_bool(0.25),
        leader_chains: false,
        restless_membership: false,
        client,
        knobs: StoreKnobs::default(),
    }
}

/// A swarm schedule: the fixed events (with the profile) and the armed faults.
pub struct SwarmPlan {
    pub schedule: Schedule,
    pub armed: Vec<Armed>,
}

/// Nodes a static aim picks.
fn static_targets(aim: Aim, nodes: usize, rng: &mut SmallRng) -> Vec<String> {
    let count = match aim {
        Aim::Minority => rng.random_range(1..=(nodes.saturating_sub(1) / 2).max(1)),
        Aim::Majority => nodes / 2 + 1,
        _ => nodes,
    };
    let mut names: Vec<String> = (0..nodes).map(node_name).collect();
    names.shuffle(rng);
    names.truncate(count.clamp(1, nodes));
    names.sort_by_key(|name| name[1..].parse::<usize>().unwrap_or(0));
    names
}

/// Whether a stop of this kind names its targets (ends the fault on them only); other kinds
/// stop everything of their kind.
pub fn stops_by_target(kind: FaultKind) -> bool {
    matches!(
        kind,
        FaultKind::Kill
            | FaultKind::Pause
            | FaultKind::Membership
            | FaultKind::Clock
            | FaultKind::Loss
            | FaultKind::Duplicate
            | FaultKind::Reorder
            | FaultKind::Disk
    )
}

/// Targets and params of a start of `kind` aimed at `chosen` (node names), or None for a
/// kind that cannot be aimed (membership: the harness keeps a voter majority itself).
pub fn aimed_shape(
    kind: FaultKind,
    chosen: &[String],
    nodes: usize,
    rng: &mut SmallRng,
) -> Option<(Vec<String>, Value)> {
    let rest: Vec<String> = (0..nodes)
        .map(node_name)
        .filter(|name| !chosen.contains(name))
        .collect();
    match kind {
        // Half the partitions hold what crosses them and deliver it all at the heal: old
        // terms' votes, appends and replies arrive after the cluster moved on.
        FaultKind::Partition if !rest.is_empty() => {
            let mode = if rng.random_bool(0.5) {
                "halves"
            } else {
                "hold-groups"
            };
            Some((Vec::new(), json!({"mode": mode, "groups": [chosen, rest]})))
        }
        FaultKind::PartitionOneway if !rest.is_empty() => {
            // Either what the chosen nodes send, or what they hear, is cut.
            if rng.random_bool(0.5) {
                Some((Vec::new(), json!({"from": chosen, "to": rest})))
            } else {
                Some((Vec::new(), json!({"from": rest, "to": chosen})))
            }
        }
        FaultKind::Partition | FaultKind::PartitionOneway | FaultKind::Membership => None,
        FaultKind::Transfer => Some((chosen[..1].to_vec(), Value::Null)),
        FaultKind::Kill | FaultKind::Pause => Some((chosen.to_vec(), Value::Null)),
        // Every node loses power at once: it takes no targets whatever the aim.
        FaultKind::PowerLoss => Some((Vec::new(), start_shape(kind, nodes, rng).1)),
        // Only a minority may come back empty (a majority of empty disks has lost committed
        // data by design, not by a bug): an aim at more keeps its first nodes.
        FaultKind::RejoinEmpty => {
            let minority = nodes.saturating_sub(1) / 2;
            if minority == 0 {
                return None;
            }
            let (_, params) = start_shape(kind, nodes, rng);
            let params = match params {
                Value::Object(mut object) => {
                    object.remove("mode");
                    Value::Object(object)
                }
                other => other,
            };
            Some((chosen[..chosen.len().min(minority)].to_vec(), params))
        }
        _ => {
            // The kind's own random params, aimed at the chosen nodes.
            let (_, params) = start_shape(kind, nodes, rng);
            let params = match params {
                Value::Object(mut object) => {
                    object.remove("mode");
                    Value::Object(object)
                }
                other => other,
            };
            Some((chosen.to_vec(), params))
        }
    }
}

/// A fault's length under the profile.
fn draw_duration(kind: FaultKind, profile: &SwarmProfile, rng: &mut SmallRng) -> u64 {
    if profile.quick_restarts
        && matches!(kind, FaultKind::Kill | FaultKind::Pause)
        && rng.random_bool(0.7)
    {
        return rng.random_range(20..=QUICK_RESTART_MAX_MS);
    }
    let mean = profile.mean_duration_ms as f64;
    ((mean * rng.random_range(0.25..1.75)) as u64).max(20)
}

/// Whether `kind` can act on a cluster of `nodes`: partitions need two sides, membership a
/// voter left after a removal, a replaced disk a minority to take it from.
fn applies_to_cluster(kind: FaultKind, nodes: usize) -> bool {
    match kind {
        FaultKind::Partition | FaultKind::PartitionOneway | FaultKind::Membership => nodes >= 2,
        FaultKind::RejoinEmpty => nodes >= 3,
        _ => true,
    }
}

/// Draws the plan of one swarm run: its profile, fixed events and armed faults.
pub fn generate(
    supported: &[FaultKind],
    nodes: usize,
    time_limit_ms: u64,
    takes_knobs: bool,
    rng: &mut SmallRng,
) -> SwarmPlan {
    // Kinds that cannot act on a cluster this small would only make the nemesis refuse the
    // schedule (a single node cannot be partitioned or lose its only voter).
    let supported: Vec<FaultKind> = supported
        .iter()
        .copied()
        .filter(|kind| applies_to_cluster(*kind, nodes))
        .collect();
    let mut profile = draw_profile(&supported, time_limit_ms, rng);
    if takes_knobs {
        // From its own stream, so that the faults drawn for a seed do not depend on it.
        let mut knob_rng = SmallRng::seed_from_u64(rng.random());
        profile.knobs = StoreKnobs::draw(&mut knob_rng);
    }
    let mut events: Vec<FaultEvent> = Vec::new();
    let mut armed: Vec<Armed> = Vec::new();
    // End times of the faults in force, for `max_concurrent`; one membership at a time.
    let mut in_force: Vec<(u64, FaultKind)> = Vec::new();
    let mut now_ms = log_uniform(rng, 200, profile.mean_gap_ms.max(200));
    const MAX_FAULTS: usize = 400;
    let mut count = 0;
    while now_ms < time_limit_ms && count < MAX_FAULTS && !profile.kinds.is_empty() {
        in_force.retain(|(end_ms, _)| *end_ms > now_ms);
        let kind = *profile.kinds.choose(rng).expect("kinds is not empty");
        let busy = in_force.len() >= profile.max_concurrent
            || (kind == FaultKind::Membership
                && in_force.iter().any(|(_, k)| *k == FaultKind::Membership));
        if !busy {
            count += 1;
            let duration_ms = draw_duration(kind, &profile, rng);
            let aim = *profile.aims.choose(rng).expect("aims is not empty");
            let trigger = if profile.triggers.is_empty() || rng.random_bool(0.3) {
                Trigger::Time
            } else {
                *profile.triggers.choose(rng).expect("triggers is not empty")
            };
            let membership = kind == FaultKind::Membership;
            if !membership && (trigger != Trigger::Time || aim.is_dynamic()) {
                // Waits for its moment for up to a mean gap (at least a second).
                let window_ms = profile.mean_gap_ms.max(1_000);
                armed.push(Armed {
                    from_ms: now_ms,
                    until_ms: (now_ms + window_ms).min(time_limit_ms),
                    kind,
                    trigger,
                    aim,
                    duration_ms,
                });
                in_force.push((now_ms + window_ms + duration_ms, kind));
            } else {
                let chosen = static_targets(aim, nodes, rng);
                let shape = if membership {
                    None
                } else {
                    aimed_shape(kind, &chosen, nodes, rng)
                };
                let (targets, params) = shape.unwrap_or_else(|| start_shape(kind, nodes, rng));
                let stop_ms = (now_ms + duration_ms).min(time_limit_ms);
                if stop_ms > now_ms {
                    push_pair(&mut events, kind, now_ms, stop_ms, targets, params);
                    in_force.push((stop_ms, kind));
                }
            }
        }
        let gap = (profile.mean_gap_ms as f64 * -(1.0 - rng.random_range(0.0..1.0f64)).ln())
            .clamp(20.0, 60_000.0) as u64;
        now_ms += gap;
    }
    if profile.crash_cycles && profile.kinds.contains(&FaultKind::Kill) {
        let node = node_name(rng.random_range(0..nodes));
        let mut at_ms = rng.random_range(0..time_limit_ms.max(1));
        for _ in 0..rng.random_range(3..=8) {
            let down_ms = rng.random_range(20..=400);
            if at_ms + down_ms >= time_limit_ms {
                break;
            }
            push_pair(
                &mut events,
                FaultKind::Kill,
                at_ms,
                at_ms + down_ms,
                vec![node.clone()],
                Value::Null,
            );
            at_ms += down_ms + rng.random_range(50..=800);
        }
    }
    // From its own stream, so that drawing chains leaves the rest of a seed's plan as it was.
    let mut chain_rng = SmallRng::seed_from_u64(rng.random());
    if profile.kinds.contains(&FaultKind::Partition) && nodes >= 3 && chain_rng.random_bool(0.6) {
        profile.leader_chains = true;
        push_leader_chains(
            &mut events,
            &mut armed,
            &profile.kinds,
            time_limit_ms,
            &mut chain_rng,
        );
    }
    // The chains' stream is spent: routing draws from the next one, so that adding it left
    // every earlier draw of a seed as it was.
    let mut routing_rng = SmallRng::seed_from_u64(chain_rng.random());
    profile.client.draw_routing(&mut routing_rng);
    profile.restless_membership =
        profile.kinds.contains(&FaultKind::Membership) && routing_rng.random_bool(0.5);
    events.sort_by_key(|event| event.at_ms);
    SwarmPlan {
        schedule: Schedule {
            events,
            profile: Some(profile),
        },
        armed,
    }
}

/// The shortest step of a time-paced leader chain: an election (one to two election
/// timeouts of 150 ms, plus pre-vote and vote) and a commit fit in it.
const CHAIN_STEP_MIN_MS: u64 = 600;

/// One to three chains of 3-12 leader isolations (see `SwarmProfile::leader_chains`). Each
/// step cuts off whoever leads, replacing the cut in force. Half the chains step on time
/// (fixed events; the leader may have committed much), half step on protocol events: each
/// step is an armed fault that waits for the next new leader (or the next commit) and cuts
/// it off (or, when the seed kills, sometimes kills it), so every leadership of the chain
/// leaves a tail of its own term, uncommitted or barely committed.
fn push_leader_chains(
    events: &mut Vec<FaultEvent>,
    armed: &mut Vec<Armed>,
    kinds: &[FaultKind],
    time_limit_ms: u64,
    rng: &mut SmallRng,
) {
    for _ in 0..rng.random_range(1..=3) {
        let chain_start_ms = rng.random_range(0..time_limit_ms.max(1));
        let steps = rng.random_range(3..=12);
        if rng.random_bool(0.5) {
            // Elections come one to two election timeouts apart; each waits up to 1.5 s.
            let until_ms = (chain_start_ms + steps * 1_500).min(time_limit_ms);
            for _ in 0..steps {
                let kind = if kinds.contains(&FaultKind::Kill) && rng.random_bool(0.3) {
                    FaultKind::Kill
                } else {
                    FaultKind::Partition
                };
                // Cut at election, the leader's tail stays uncommitted; cut at its first
                // commit, it leaves a short committed run that a deposed leader's longer
                // tail competes with in the next election.
                let trigger = if rng.random_bool(0.5) {
                    Trigger::AfterElected
                } else {
                    Trigger::AfterCommit
                };
                // A cut leader whose clock runs slow notices late that it lost its quorum:
                // two leaders at once for longer (reads served by the deposed one).
                if kind == FaultKind::Partition
                    && kinds.contains(&FaultKind::Clock)
                    && rng.random_bool(0.3)
                {
                    armed.push(Armed {
                        from_ms: chain_start_ms,
                        until_ms,
                        kind: FaultKind::Clock,
                        trigger,
                        aim: Aim::Leader,
                        duration_ms: log_uniform(rng, 1_000, 5_000),
                    });
                }
                armed.push(Armed {
                    from_ms: chain_start_ms,
                    until_ms,
                    kind,
                    trigger,
                    aim: if rng.random_bool(0.5) {
                        Aim::Leader
                    } else {
                        Aim::LeaderMinority
                    },
                    duration_ms: log_uniform(rng, 300, 3_000),
                });
            }
            continue;
        }
        let mut at_ms = chain_start_ms;
        let step_ms = log_uniform(rng, CHAIN_STEP_MIN_MS, 3_000);
        let mut started = false;
        for _ in 0..steps {
            let this_step_ms = (step_ms as f64 * rng.random_range(0.75..1.5)) as u64;
            if at_ms + this_step_ms >= time_limit_ms {
                break;
            }
            let mode = if rng.random_bool(0.5) {
                "isolate-leader"
            } else {
                "hold-leader"
            };
            events.push(FaultEvent::new(
                at_ms,
                Phase::Start,
                FaultKind::Partition,
                Vec::new(),
                json!({ "mode": mode }),
            ));
            started = true;
            at_ms += this_step_ms.max(CHAIN_STEP_MIN_MS);
        }
        if started {
            events.push(FaultEvent::new(
                at_ms,
                Phase::Stop,
                FaultKind::Partition,
                Vec::new(),
                Value::Null,
            ));
        }
    }
}

fn push_pair(
    events: &mut Vec<FaultEvent>,
    kind: FaultKind,
    start_ms: u64,
    stop_ms: u64,
    targets: Vec<String>,
    params: Value,
) {
    let stop_targets = if stops_by_target(kind) {
        targets.clone()
    } else {
        Vec::new()
    };
    events.push(FaultEvent::new(
        start_ms,
        Phase::Start,
        kind,
        targets,
        params,
    ));
    events.push(FaultEvent::new(
        stop_ms,
        Phase::Stop,
        kind,
        stop_targets,
        Value::Null,
    ));
}

/// The start and stop events of an armed fault firing at `now_ms` on `subject` (the node of
/// the protocol event, or None for a timed trigger) given the leader and the best follower.
/// None when its aim has nobody to hit now.
#[allow(clippy::too_many_arguments)]
pub fn fire(
    armed: &Armed,
    now_ms: u64,
    subject: Option<usize>,
    leader: Option<usize>,
    best_follower: Option<usize>,
    nodes: usize,
    rng: &mut SmallRng,
) -> Option<(FaultEvent, FaultEvent)> {
    let chosen: Vec<String> = match (subject, armed.aim) {
        (Some(node), _) => vec![node_name(node)],
        (None, Aim::Leader) => vec![node_name(leader?)],
        (None, Aim::BestFollower) => vec![node_name(best_follower?)],
        (None, Aim::LeaderMinority) => {
            let leader = leader?;
            let mut others: Vec<usize> = (0..nodes).filter(|node| *node != leader).collect();
            others.shuffle(rng);
            // A minority counts the leader too.
            let minority = nodes.saturating_sub(1) / 2;
            others.truncate(minority.saturating_sub(1));
            let mut group = vec![leader];
            group.extend(others);
            group.sort_unstable();
            group.into_iter().map(node_name).collect()
        }
        (None, aim) => static_targets(aim, nodes, rng),
    };
    let (targets, params) = aimed_shape(armed.kind, &chosen, nodes, rng)?;
    let stop_targets = if stops_by_target(armed.kind) {
        targets.clone()
    } else {
        Vec::new()
    };
    let start = FaultEvent::new(now_ms, Phase::Start, armed.kind, targets, params);
    let stop = FaultEvent::new(
        now_ms + armed.duration_ms,
        Phase::Stop,
        armed.kind,
        stop_targets,
        Value::Null,
    );
    Some((start, stop))
}

/// An armed fault that fired, for results.json.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Fired {
    pub at_ms: u64,
    pub kind: FaultKind,
    pub trigger: Trigger,
    pub aim: Aim,
    pub targets: Vec<String>,
}

/// What the driver last saw of one node, to notice protocol events between two steps.
#[derive(Clone, Debug, Default)]
struct Seen {
    running: bool,
    term: u64,
    voted_for: Option<usize>,
    last_log_index: u64,
    commit_index: u64,
    is_leader: bool,
    applied_index: Option<u64>,
}

/// Protocol events of the last step (who voted, which leader appended or committed, who
/// installed a snapshot), the best follower, and whether the replicas have settled.
pub struct ProtocolWatch {
    seen: Vec<Seen>,
    killed: Vec<bool>,
    /// Per trigger, the first node (lowest index) it happened on in this step.
    events: std::collections::BTreeMap<Trigger, usize>,
}

impl ProtocolWatch {
    pub fn new(nodes: usize) -> ProtocolWatch {
        ProtocolWatch {
            seen: vec![Seen::default(); nodes],
            killed: vec![false; nodes],
            events: Default::default(),
        }
    }

    /// Takes node `node`'s view of this step.
    pub fn observe(&mut self, node: usize, view: &crate::sut::NodeView, killed: bool) {
        let before = &self.seen[node];
        let mut happened = Vec::new();
        if view.running && before.running {
            let voted_now = view.voted_for.is_some_and(|to| to != node);
            if voted_now && (view.voted_for != before.voted_for || view.term != before.term) {
                happened.push(Trigger::AfterVote);
            }
            if view.is_leader && before.is_leader && view.last_log_index > before.last_log_index {
                happened.push(Trigger::AfterAppend);
            }
            if view.is_leader && !before.is_leader {
                happened.push(Trigger::AfterElected);
            }
            if view.is_leader && before.is_leader && view.commit_index > before.commit_index {
                happened.push(Trigger::AfterCommit);
            }
            if !view.is_leader
                && view
                    .new_applied
                    .iter()
                    .any(|entry| entry.is_from_snapshot())
            {
                happened.push(Trigger::AfterSnapshot);
            }
        }
        for trigger in happened {
            self.events.entry(trigger).or_insert(node);
        }
        self.killed[node] = killed;
        self.seen[node] = Seen {
            running: view.running,
            term: view.term,
            voted_for: view.voted_for,
            last_log_index: view.last_log_index,
            commit_index: view.commit_index,
            is_leader: view.is_leader,
            applied_index: view.state.as_ref().map(|state| state.index),
        };
    }

    /// The node `trigger` happened on in this step.
    pub fn event_node(&self, trigger: Trigger) -> Option<usize> {
        self.events.get(&trigger).copied()
    }

    /// Forgets this step's events.
    pub fn end_step(&mut self) {
        self.events.clear();
    }

    /// The running follower with the longest log (lowest index on ties).
    pub fn best_follower(&self, leader: Option<usize>) -> Option<usize> {
        (0..self.seen.len())
            .filter(|node| Some(*node) != leader && self.seen[*node].running && !self.killed[*node])
            .max_by_key(|node| (self.seen[*node].last_log_index, std::cmp::Reverse(*node)))
    }

    /// Every running replica reports its state at the same applied index.
    pub fn replicas_settled(&self) -> bool {
        let mut indexes = self
            .seen
            .iter()
            .filter(|seen| seen.running)
            .map(|seen| seen.applied_index);
        match indexes.next() {
            Some(first) => first.is_some() && indexes.all(|index| index == first),
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nemesis::parse_event;

    #[test]
    fn aims_keep_power_loss_untargeted_and_rejoin_empty_to_a_minority() {
        let mut rng = SmallRng::seed_from_u64(3);
        let majority: Vec<String> = (0..3).map(node_name).collect();
        let (targets, _) = aimed_shape(FaultKind::PowerLoss, &majority, 5, &mut rng).unwrap();
        assert!(targets.is_empty(), "{targets:?}");
        let (targets, _) = aimed_shape(FaultKind::RejoinEmpty, &majority, 5, &mut rng).unwrap();
        assert_eq!(targets.len(), 2, "{targets:?}");
        assert!(aimed_shape(FaultKind::RejoinEmpty, &majority[..1], 2, &mut rng).is_none());
    }

    #[test]
    fn profiles_differ_between_seeds_and_every_event_parses() {
        let mut profiles = std::collections::BTreeSet::new();
        for seed in 0..200 {
            // Odd seeds: the smallest cluster that has a minority (rejoin-empty's limit).
            let nodes = if seed % 2 == 1 { 3 } else { 5 };
            let plan = generate(
                &FaultKind::ALL,
                nodes,
                30_000,
                seed % 3 != 0,
                &mut SmallRng::seed_from_u64(seed),
            );
            let profile = plan.schedule.profile.clone().unwrap();
            assert!(!profile.kinds.is_empty());
            profiles.insert(format!("{:?}", profile.kinds));
            for event in &plan.schedule.events {
                parse_event(event, nodes).unwrap_or_else(|error| panic!("{event:?}: {error}"));
            }
            let mut rng = SmallRng::seed_from_u64(seed);
            for armed in &plan.armed {
                if let Some((start, stop)) =
                    fire(armed, 1_000, Some(2), Some(0), Some(1), nodes, &mut rng)
                {
                    parse_event(&start, nodes).unwrap_or_else(|error| panic!("{start:?}: {error}"));
                    parse_event(&stop, nodes).unwrap_or_else(|error| panic!("{stop:?}: {error}"));
                }
            }
            let text = plan.schedule.to_json_pretty();
            assert_eq!(Schedule::from_json(&text, "t").unwrap(), plan.schedule);
        }
        assert!(
            profiles.len() > 50,
            "kinds subsets vary: {}",
            profiles.len()
        );
    }

    #[test]
    fn small_clusters_draw_only_kinds_that_can_act_on_them() {
        for (nodes, excluded) in [
            (
                1,
                vec![
                    FaultKind::Partition,
                    FaultKind::PartitionOneway,
                    FaultKind::Membership,
                    FaultKind::RejoinEmpty,
                ],
            ),
            (2, vec![FaultKind::RejoinEmpty]),
        ] {
            for seed in 0..100 {
                let plan = generate(
                    &FaultKind::ALL,
                    nodes,
                    30_000,
                    true,
                    &mut SmallRng::seed_from_u64(seed),
                );
                let kinds = &plan.schedule.profile.as_ref().unwrap().kinds;
                assert!(!kinds.is_empty());
                assert!(
                    kinds.iter().all(|kind| !excluded.contains(kind)),
                    "{nodes} nodes, seed {seed}: {kinds:?}"
                );
                for event in &plan.schedule.events {
                    parse_event(event, nodes).unwrap_or_else(|error| {
                        panic!("{nodes} nodes, seed {seed}: {event:?}: {error}")
                    });
                }
            }
        }
        // A third node brings every kind back.
        let drawn: std::collections::BTreeSet<FaultKind> = (0..100)
            .flat_map(|seed| {
                let plan = generate(
                    &FaultKind::ALL,
                    3,
                    30_000,
                    true,
                    &mut SmallRng::seed_from_u64(seed),
                );
                plan.schedule.profile.unwrap().kinds
            })
            .collect();
        assert!(drawn.contains(&FaultKind::RejoinEmpty) && drawn.contains(&FaultKind::Membership));
    }

    /// The plan seed `seed` draws for a 5-node store with every fault kind, 30 s.
    fn swarm_plan(seed: u64) -> SwarmPlan {
        generate(
            &FaultKind::ALL,
            5,
            30_000,
            true,
            &mut SmallRng::seed_from_u64(seed),
        )
    }

    #[test]
    fn client_routing_varies_by_seed_and_replays() {
        let (mut bound, mut short) = (0, 0);
        for seed in 0..200 {
            let plan = swarm_plan(seed);
            let client = plan.schedule.profile.as_ref().unwrap().client.clone();
            bound += usize::from(client.bound_clients);
            if let Some(attempt_ms) = client.attempt_timeout_ms {
                assert!((50..=250).contains(&attempt_ms), "{attempt_ms}");
                short += 1;
            }
            let again = swarm_plan(seed);
            assert_eq!(again.schedule, plan.schedule, "seed {seed} replays");
            assert_eq!(again.armed, plan.armed);
        }
        assert!(
            (40..=120).contains(&bound),
            "bound clients in {bound} of 200"
        );
        assert!(
            (40..=120).contains(&short),
            "short attempts in {short} of 200"
        );
    }

    #[test]
    fn leader_chains_cut_whoever_leads_on_time_or_at_each_new_election() {
        let (mut timed, mut elected) = (0, 0);
        for seed in 0..200 {
            let plan = swarm_plan(seed);
            let profile = plan.schedule.profile.clone().unwrap();
            let on_election: Vec<&Armed> = plan
                .armed
                .iter()
                .filter(|armed| armed.trigger == Trigger::AfterElected)
                .collect();
            let leader_cuts = plan
                .schedule
                .events
                .iter()
                .filter(|event| {
                    event.action == "start-partition"
                        && matches!(
                            event.params.get("mode").and_then(Value::as_str),
                            Some("isolate-leader" | "hold-leader")
                        )
                })
                .count();
            if !profile.leader_chains {
                continue;
            }
            assert!(profile.kinds.contains(&FaultKind::Partition));
            timed += leader_cuts;
            elected += on_election.len();
            // (Other armed faults of the profile may wait for elections too.)
            for armed in on_election {
                assert!(armed.from_ms < armed.until_ms && armed.until_ms <= 30_000);
            }
        }
        assert!(
            timed > 20 && elected > 20,
            "timed {timed}, on election {elected}"
        );
    }

    #[test]
    fn lease_reads_keep_clock_drift_within_the_lease_bound_and_other_modes_do_not() {
        let mut event = FaultEvent::new(
            10,
            Phase::Start,
            FaultKind::Clock,
            vec!["n1".into()],
            json!({"skew_ms": 5, "drift_ppm": -400_000}),
        );
        StoreKnobs::default().bound_clock(&mut event);
        assert_eq!(event.params["drift_ppm"], json!(-400_000));
        let lease = StoreKnobs {
            read_mode: Some(ReadMode::Lease),
            ..StoreKnobs::default()
        };
        lease.bound_clock(&mut event);
        assert_eq!(event.params["drift_ppm"], json!(-LEASE_MAX_DRIFT_PPM));
        assert_eq!(event.params["skew_ms"], json!(5));
    }

    #[test]
    fn explicit_options_win_over_drawn_knobs() {
        let drawn = StoreKnobs {
            max_append_entries: Some(3),
            snapshot_every: Some(50),
            read_mode: Some(ReadMode::Lease),
            election_timeout_max_ticks: Some(17),
        };
        let applied = drawn.clone().with_explicit(Some(1), ReadMode::Log);
        assert_eq!(applied.max_append_entries, Some(1));
        assert_eq!(applied.read_mode, Some(ReadMode::Log));
        assert_eq!(applied.snapshot_every, Some(50));
        assert_eq!(
            drawn.clone().with_explicit(None, ReadMode::ReadIndex),
            drawn
        );
    }
}

//! The measured quorum table (`minos quorum`): for clusters of 1..=N servers, kill servers
//! one at a time (the leader first, so that every step also needs a new election) and after
//! each kill check whether one write still commits within a timeout. The number of kills
//! after which writes still commit is the measured failure tolerance; servers minus that is
//! the measured quorum. This module owns the report and the simulated-store measurement;
//! real clusters are measured by `real::quorum` with the same report.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::{Duration, UNIX_EPOCH};

use minos_node::raft::Role;
use minos_node::{Client, ClientConfig, Network, NodeControl, NodeOptions, OpOutcome};
use serde::Serialize;

/// Bounds of the table: a cluster of one to seven servers (Consul's and etcd's advice).
pub const MAX_SERVERS: usize = 7;

/// One kill and the write that followed it.
#[derive(Clone, Debug, Serialize)]
pub struct KillStep {
    /// The server killed at this step ("n3").
    pub killed: String,
    /// Servers still running after the kill.
    pub live: usize,
    /// Whether the write after the kill committed within the timeout.
    pub committed: bool,
    /// How long the write took (to its commit, or to the timeout).
    pub write_ms: u64,
    /// The client's account of a write that did not commit.
    pub problem: Option<String>,
}

/// One cluster size.
#[derive(Clone, Debug, Serialize)]
pub struct QuorumRow {
    pub servers: usize,
    /// Kills after which a write still committed.
    pub tolerated: usize,
    /// servers - tolerated: the fewest live servers that still commit.
    pub quorum: usize,
    /// What majority quorums predict: floor(servers / 2) + 1 and servers - that.
    pub expected_quorum: usize,
    pub expected_tolerated: usize,
    pub steps: Vec<KillStep>,
}

impl QuorumRow {
    pub fn new(servers: usize, steps: Vec<KillStep>) -> QuorumRow {
        assert!(servers >= 1, "a cluster has at least one server");
        // Kills stop at the first write that does not commit, so the committed steps are a
        // prefix.
        let tolerated = steps.iter().take_while(|step| step.committed).count();
        assert!(tolerated <= servers, "more kills than servers");
        let expected_quorum = servers / 2 + 1;
        QuorumRow {
            servers,
            tolerated,
            quorum: servers - tolerated,
            expected_quorum,
            expected_tolerated: servers - expected_quorum,
            steps,
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct QuorumReport {
    pub system: String,
    pub version: String,
    /// How long each write after a kill may take before it counts as not committed.
    pub write_timeout_ms: u64,
    /// Simulated measurements replay exactly from the seed; real ones do not.
    pub bit_exact: bool,
    pub seed: u64,
    pub rows: Vec<QuorumRow>,
}

impl QuorumReport {
    /// The printed table, with the majority-quorum prediction beside each measurement.
    pub fn table(&self) -> String {
        let mut text = format!(
            "quorum table for {} ({}), write timeout {} ms after each kill\n",
            self.system, self.version, self.write_timeout_ms
        );
        text.push_str("servers  quorum (measured)  failures tolerated (measured)  majority prediction (quorum/tolerated)\n");
        for row in &self.rows {
            let mark = if row.quorum == row.expected_quorum {
                ""
            } else {
                "  << differs"
            };
            text.push_str(&format!(
                "{:>7}  {:>17}  {:>29}  {:>8}/{}{mark}\n",
                row.servers, row.quorum, row.tolerated, row.expected_quorum, row.expected_tolerated
            ));
        }
        text
    }

    /// Every row as measured agrees with majority quorums.
    pub fn matches_majority(&self) -> bool {
        self.rows
            .iter()
            .all(|row| row.quorum == row.expected_quorum)
    }
}

/// What the client task and the stepping loop share.
#[derive(Default)]
struct Round {
    /// Writes asked for by the loop.
    requested: u64,
    /// Their outcomes, in order: (committed, write_ms, problem).
    answered: Vec<(bool, u64, Option<String>)>,
    stop: bool,
}

/// Measures one cluster size on the simulated store (turmoil), deterministically from `seed`.
pub fn measure_simulated(servers: usize, seed: u64, write_timeout_ms: u64) -> QuorumRow {
    assert!((1..=MAX_SERVERS).contains(&servers));
    const PORT: u16 = NodeOptions::DEFAULT_PORT;
    // The first write waits for the first election; generous, it is simulated time.
    const WARM_UP_MS: u64 = 20_000;
    let mut sim = turmoil::Builder::new()
        .rng_seed(seed)
        .epoch(UNIX_EPOCH + Duration::from_secs(1_700_000_000))
        .simulation_duration(Duration::from_secs(24 * 3600))
        .tick_duration(Duration::from_millis(1))
        .min_message_latency(Duration::from_millis(1))
        .max_message_latency(Duration::from_millis(10))
        .udp_capacity(4096)
        .build();
    let peers: BTreeMap<u64, String> = (1..=servers as u64)
        .map(|id| (id, format!("n{id}:{PORT}")))
        .collect();
    let mut controls = Vec::new();
    for id in 1..=servers as u64 {
        let node_seed = crate::driver::derive_seed(seed, "quorum-node", id);
        let control = NodeControl::new(id, node_seed);
        let options = NodeOptions::new(id, peers.clone(), "/data", node_seed);
        controls.push(control.clone());
        sim.host(format!("n{id}").as_str(), move || {
            let options = options.clone();
            let control = control.clone();
            async move {
                if let Err(error) = minos_node::sim::run_node(options, control).await {
                    tracing::error!(%error, "node stopped");
                }
                Ok(())
            }
        });
    }
    let round = Rc::new(RefCell::new(Round::default()));
    let cluster: Vec<String> = peers.into_values().collect();
    {
        let round = round.clone();
        sim.client("quorum-client", async move {
            let mut config = ClientConfig::new(1, cluster, Network::Simulated);
            config.op_timeout_ms = write_timeout_ms;
            let mut client = Client::connect(config).await?;
            let mut answered = 0u64;
            loop {
                while round.borrow().requested == answered {
                    if round.borrow().stop {
                        return Ok(());
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                let started = tokio::time::Instant::now();
                // The warm-up write (the first) is retried until the cluster has a leader.
                let outcome = loop {
                    let outcome = client.write("quorum", answered as i64 + 1).await;
                    if answered > 0
                        || outcome.is_ok()
                        || started.elapsed() >= Duration::from_millis(WARM_UP_MS)
                    {
                        break outcome;
                    }
                };
                let write_ms = started.elapsed().as_millis() as u64;
                let entry = match outcome {
                    OpOutcome::Ok(()) => (true, write_ms, None),
                    OpOutcome::Fail(problem) | OpOutcome::Unknown(problem) => {
                        (false, write_ms, Some(problem))
                    }
                };
                round.borrow_mut().answered.push(entry);
                answered += 1;
            }
        });
    }
    let mut crashed = vec![false; servers];
    let mut steps = Vec::new();
    // The outcome of write number `count` (1-based); a client task that ended (it could not
    // bind its socket) counts as a write that did not commit.
    let wait_answer = |sim: &mut turmoil::Sim<'_>, round: &Rc<RefCell<Round>>, count: usize| {
        while round.borrow().answered.len() < count {
            match sim.step() {
                Ok(false) => {}
                Ok(true) => return (false, 0, Some("the client task ended".to_string())),
                Err(error) => return (false, 0, Some(format!("simulation: {error}"))),
            }
        }
        round.borrow().answered[count - 1].clone()
    };
    round.borrow_mut().requested = 1;
    let warm = wait_answer(&mut sim, &round, 1);
    if !warm.0 {
        // Not one write before any kill: the row says so rather than claiming a tolerance.
        steps.push(KillStep {
            killed: "none (warm-up write)".into(),
            live: servers,
            committed: false,
            write_ms: warm.1,
            problem: warm.2,
        });
    } else {
        for kill in 1..=servers {
            // The leader first: each step then also needs an election among the survivors.
            let leader = (0..servers)
                .filter(|node| !crashed[*node])
                .find(|node| controls[*node].status().role == Role::Leader);
            let victim = leader
                .or_else(|| (0..servers).rev().find(|node| !crashed[*node]))
                .expect("a live server remains while kills < servers");
            sim.crash(format!("n{}", victim + 1).as_str());
            crashed[victim] = true;
            let live = servers - kill;
            if live == 0 {
                steps.push(KillStep {
                    killed: format!("n{}", victim + 1),
                    live,
                    committed: false,
                    write_ms: 0,
                    problem: Some("no server is running".into()),
                });
                break;
            }
            round.borrow_mut().requested += 1;
            let (committed, write_ms, problem) = wait_answer(&mut sim, &round, kill + 1);
            steps.push(KillStep {
                killed: format!("n{}", victim + 1),
                live,
                committed,
                write_ms,
                problem,
            });
            if !committed {
                break;
            }
        }
    }
    round.borrow_mut().stop = true;
    // Let the client task see the stop (bounded: it polls every 5 ms).
    for _ in 0..50 {
        if sim.step().unwrap_or(true) {
            break;
        }
    }
    QuorumRow::new(servers, steps)
}

/// The table for 1..=max_servers servers on the simulated store.
pub fn simulated_report(max_servers: usize, seed: u64, write_timeout_ms: u64) -> QuorumReport {
    let rows = (1..=max_servers)
        .map(|servers| measure_simulated(servers, seed, write_timeout_ms))
        .collect();
    QuorumReport {
        system: "raft".into(),
        version: "simulated minos store".into(),
        write_timeout_ms,
        bit_exact: true,
        seed,
        rows,
    }
}

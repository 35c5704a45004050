//! A small turmoil harness for the scenario tests: a cluster of real node event loops, fault
//! helpers on top of turmoil (partition, crash, restart) and invariant checks through
//! `NodeObservation`.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use minos_node::observe::{check_applied_prefixes, check_one_leader_per_term};
use minos_node::raft::{NodeId, Role};
use minos_node::{
    Client, ClientConfig, NetFaults, Network, NodeControl, NodeObservation, NodeOptions, OpOutcome,
};
use turmoil::Sim;

pub const PORT: u16 = 7000;

pub struct Cluster {
    pub sim: Sim<'static>,
    pub controls: BTreeMap<NodeId, NodeControl>,
    pub down: BTreeSet<NodeId>,
    pub seed: u64,
    /// Panic on a safety violation (default); otherwise record it in `violations`.
    pub strict: bool,
    pub violations: Vec<String>,
}

pub fn host(id: NodeId) -> String {
    format!("n{id}")
}

/// The client addresses of `ids`.
pub fn addresses(ids: &[NodeId]) -> Vec<String> {
    ids.iter()
        .map(|id| format!("{}:{PORT}", host(*id)))
        .collect()
}

/// Network faults on what a node sends: each datagram lost with probability `loss`, sent
/// twice with `duplicate`, held back up to `reorder_max_delay_ms` with `reorder`.
pub fn net_faults(loss: f64, duplicate: f64, reorder: f64, reorder_max_delay_ms: u64) -> NetFaults {
    NetFaults {
        loss_probability: loss,
        duplicate_probability: duplicate,
        reorder_probability: reorder,
        reorder_max_delay_ms,
        ..Default::default()
    }
}

impl Cluster {
    pub fn new(size: u64, seed: u64) -> Cluster {
        Cluster::with_bugs(size, seed, minos_node::bugs::Bugs::NONE)
    }

    pub fn with_bugs(size: u64, seed: u64, bugs: minos_node::bugs::Bugs) -> Cluster {
        Cluster::with_options(size, seed, |options| options.bugs = bugs)
    }

    /// A cluster whose node options are adjusted by `adjust` (bugs, read mode, ...).
    pub fn with_options(size: u64, seed: u64, adjust: impl Fn(&mut NodeOptions)) -> Cluster {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let sim = turmoil::Builder::new()
            .simulation_duration(Duration::from_secs(3600))
            .epoch(UNIX_EPOCH)
            .min_message_latency(Duration::from_millis(1))
            .max_message_latency(Duration::from_millis(10))
            .udp_capacity(4096)
            .rng_seed(seed)
            .build();
        let mut cluster = Cluster {
            sim,
            controls: BTreeMap::new(),
            down: BTreeSet::new(),
            seed,
            strict: true,
            violations: Vec::new(),
        };
        let peers: BTreeMap<NodeId, String> = (1..=size)
            .map(|id| (id, format!("{}:{PORT}", host(id))))
            .collect();
        for id in 1..=size {
            let control = NodeControl::new(id, seed);
            let mut options = NodeOptions::new(id, peers.clone(), "/data", seed);
            adjust(&mut options);
            cluster.controls.insert(id, control.clone());
            cluster.sim.host(host(id), move || {
                minos_node::sim::run_node(options.clone(), control.clone())
            });
        }
        cluster
    }

    pub fn cluster_addresses(&self) -> Vec<String> {
        let ids: Vec<NodeId> = self.controls.keys().copied().collect();
        addresses(&ids)
    }

    pub fn elapsed_ms(&self) -> u64 {
        self.sim.elapsed().as_millis() as u64
    }

    /// Advances simulated time by `ms`, checking safety invariants as it goes.
    pub fn run_ms(&mut self, ms: u64) {
        let end = self.sim.elapsed() + Duration::from_millis(ms);
        let mut steps = 0u64;
        while self.sim.elapsed() < end {
            self.sim.step().expect("simulation step");
            steps += 1;
            if steps % 100 == 0 {
                self.check_safety();
            }
        }
        self.check_safety();
    }

    /// Runs until `done` holds or `max_ms` pass; returns whether it held.
    pub fn run_until(&mut self, max_ms: u64, done: impl Fn(&Cluster) -> bool) -> bool {
        let end = self.sim.elapsed() + Duration::from_millis(max_ms);
        while self.sim.elapsed() < end {
            if done(self) {
                return true;
            }
            self.run_ms(5);
        }
        done(self)
    }

    pub fn observations(&self) -> Vec<NodeObservation> {
        self.controls
            .values()
            .map(NodeControl::observation)
            .collect()
    }

    pub fn status(&self, id: NodeId) -> NodeObservation {
        self.controls[&id].status()
    }

    /// The running node that leads in the highest term, if any.
    pub fn leader(&self) -> Option<NodeId> {
        self.controls
            .values()
            .map(NodeControl::status)
            .filter(|status| {
                status.running && status.role == Role::Leader && !self.down.contains(&status.id)
            })
            .max_by_key(|status| status.term)
            .map(|status| status.id)
    }

    /// Leaders among `group` (running, not crashed).
    pub fn leaders_among(&self, group: &[NodeId]) -> Vec<NodeId> {
        group
            .iter()
            .copied()
            .filter(|id| !self.down.contains(id))
            .filter(|id| {
                let status = self.status(*id);
                status.running && status.role == Role::Leader
            })
            .collect()
    }

    pub fn wait_leader(&mut self, max_ms: u64) -> NodeId {
        assert!(
            self.run_until(max_ms, |cluster| cluster.leader().is_some()),
            "no leader within {max_ms} ms"
        );
        self.leader().unwrap()
    }

    /// A leader among `group` that stays the same for a few heartbeats.
    pub fn wait_stable_leader_among(&mut self, group: &[NodeId], max_ms: u64) -> NodeId {
        let group = group.to_vec();
        let end = self.elapsed_ms() + max_ms;
        while self.elapsed_ms() < end {
            let leaders = self.leaders_among(&group);
            if leaders.len() == 1 {
                let leader = leaders[0];
                let term = self.status(leader).term;
                self.run_ms(200);
                let status = self.status(leader);
                if status.role == Role::Leader && status.term == term {
                    return leader;
                }
            } else {
                self.run_ms(20);
            }
        }
        panic!("no stable leader among {group:?} within {max_ms} ms");
    }

    /// The same network faults on every node, from now on.
    pub fn set_net_faults_everywhere(&self, faults: NetFaults) {
        for control in self.controls.values() {
            control.set_net_faults(faults);
        }
    }

    /// Crashes every node (all at the same instant).
    pub fn crash_all(&mut self) {
        let ids: Vec<NodeId> = self.controls.keys().copied().collect();
        for id in ids {
            self.crash(id);
        }
    }

    /// Restarts every crashed node, in id order.
    pub fn restart_crashed(&mut self) {
        let down: Vec<NodeId> = self.down.iter().copied().collect();
        for id in down {
            self.restart(id);
        }
    }

    pub fn crash(&mut self, id: NodeId) {
        self.sim.crash(host(id));
        self.down.insert(id);
    }

    pub fn restart(&mut self, id: NodeId) {
        self.sim.bounce(host(id));
        self.down.remove(&id);
    }

    /// Cuts every link between `group` and the other nodes.
    pub fn isolate(&mut self, group: &[NodeId]) {
        for a in group {
            for b in self.controls.keys() {
                if !group.contains(b) {
                    self.sim.partition(host(*a), host(*b));
                }
            }
        }
    }

    pub fn heal(&mut self) {
        let ids: Vec<NodeId> = self.controls.keys().copied().collect();
        for a in &ids {
            for b in &ids {
                if a < b {
                    self.sim.repair(host(*a), host(*b));
                }
            }
        }
    }

    /// Raft safety, checked continuously: one leader per term, applied sequences agree,
    /// no node re-applied a different entry at an index it applied before.
    pub fn check_safety(&mut self) {
        if let Err(violation) = self.safety_violation() {
            assert!(!self.strict, "{violation}");
            if self.violations.len() < 16 {
                self.violations.push(violation);
            }
        }
    }

    pub fn safety_violation(&self) -> Result<(), String> {
        let observations = self.observations();
        check_one_leader_per_term(&observations)?;
        check_applied_prefixes(&observations)?;
        minos_node::observe::check_state_digests(&observations)?;
        for observation in &observations {
            if !observation.applied_conflicts.is_empty() {
                return Err(format!(
                    "node {}: {:?}",
                    observation.id, observation.applied_conflicts
                ));
            }
        }
        Ok(())
    }

    /// Every running node has applied the same number of entries, at least `min_applied`.
    pub fn wait_converged(&mut self, min_applied: u64, max_ms: u64) {
        let converged = self.run_until(max_ms, |cluster| {
            let applied: BTreeSet<u64> = cluster
                .controls
                .keys()
                .filter(|id| !cluster.down.contains(id))
                .map(|id| cluster.status(*id).last_applied)
                .collect();
            applied.len() == 1 && *applied.first().unwrap() >= min_applied
        });
        let applied: Vec<(NodeId, u64)> = self
            .controls
            .keys()
            .map(|id| (*id, self.status(*id).last_applied))
            .collect();
        assert!(converged, "nodes did not converge: {applied:?}");
    }

    /// Starts a client process running `script`; its op records land in the returned log.
    pub fn client<F, Fut>(&mut self, name: &str, client_id: u64, script: F) -> OpLog
    where
        F: FnOnce(Client, OpLog) -> Fut + 'static,
        Fut: std::future::Future<Output = ()> + 'static,
    {
        let mut config = ClientConfig::new(client_id, self.cluster_addresses(), Network::Simulated);
        config.op_timeout_ms = 3_000;
        self.client_with(name, config, script)
    }

    /// A client that only talks to `nodes`, giving up on each op after `op_timeout_ms`.
    pub fn client_to<F, Fut>(
        &mut self,
        name: &str,
        client_id: u64,
        nodes: &[NodeId],
        op_timeout_ms: u64,
        script: F,
    ) -> OpLog
    where
        F: FnOnce(Client, OpLog) -> Fut + 'static,
        Fut: std::future::Future<Output = ()> + 'static,
    {
        let mut config = ClientConfig::new(client_id, addresses(nodes), Network::Simulated);
        config.op_timeout_ms = op_timeout_ms;
        self.client_with(name, config, script)
    }

    /// Client `name` adding 1 to "k" `count` times.
    pub fn adds(&mut self, name: &str, client_id: u64, count: usize) -> OpLog {
        self.client(name, client_id, move |mut client, log| async move {
            add_many(&mut client, &log, "k", 1, count).await
        })
    }

    /// Like [`Cluster::adds`], through `nodes` only, each add given up after `op_timeout_ms`.
    pub fn adds_to(
        &mut self,
        name: &str,
        client_id: u64,
        nodes: &[NodeId],
        op_timeout_ms: u64,
        count: usize,
    ) -> OpLog {
        self.client_to(
            name,
            client_id,
            nodes,
            op_timeout_ms,
            move |mut client, log| async move { add_many(&mut client, &log, "k", 1, count).await },
        )
    }

    /// Client `name` adding 1 to "k" until its log is told to stop.
    pub fn looping_adder(&mut self, name: &str, client_id: u64) -> OpLog {
        self.client(name, client_id, |mut client, log| async move {
            add_until_stopped(&mut client, &log, "k", 1).await
        })
    }

    /// Looping adders c1 to c{count}, with client ids 1 to `count`.
    pub fn looping_adders(&mut self, count: u64) -> Vec<OpLog> {
        (1..=count)
            .map(|client_id| self.looping_adder(&format!("c{client_id}"), client_id))
            .collect()
    }

    pub fn client_with<F, Fut>(&mut self, name: &str, config: ClientConfig, script: F) -> OpLog
    where
        F: FnOnce(Client, OpLog) -> Fut + 'static,
        Fut: std::future::Future<Output = ()> + 'static,
    {
        let log = OpLog::default();
        let script_log = log.clone();
        self.sim.client(name.to_string(), async move {
            let client = Client::connect(config).await?;
            script(client, script_log.clone()).await;
            script_log.finish();
            Ok(())
        });
        log
    }
}

/// One completed add as a client saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddRecord {
    pub key: String,
    pub delta: i64,
    pub outcome: OpOutcome<i64>,
}

/// What a client script did, shared with the test.
#[derive(Clone, Default)]
pub struct OpLog {
    inner: Arc<Mutex<(Vec<AddRecord>, bool)>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl OpLog {
    /// Asks a looping script to stop after its current op.
    pub fn stop(&self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    pub fn should_stop(&self) -> bool {
        self.stop.load(std::sync::atomic::Ordering::Relaxed)
    }
    pub fn push(&self, record: AddRecord) {
        self.inner.lock().unwrap().0.push(record);
    }
    pub fn finish(&self) {
        self.inner.lock().unwrap().1 = true;
    }
    pub fn finished(&self) -> bool {
        self.inner.lock().unwrap().1
    }
    pub fn records(&self) -> Vec<AddRecord> {
        self.inner.lock().unwrap().0.clone()
    }
    pub fn ok_count(&self) -> usize {
        self.records()
            .iter()
            .filter(|record| record.outcome.is_ok())
            .count()
    }
}

/// Runs `count` adds of `delta` on `key`, recording each outcome.
pub async fn add_many(client: &mut Client, log: &OpLog, key: &str, delta: i64, count: usize) {
    for _ in 0..count {
        let outcome = client.add(key, delta).await;
        log.push(AddRecord {
            key: key.into(),
            delta,
            outcome,
        });
    }
}

/// Checks a counter's final value against the adds that clients saw: every Ok add counts,
/// every Fail add does not, each Unknown add may or may not (deltas are positive).
/// Ok totals must be distinct (each add raises the counter).
pub fn check_counter(records: &[AddRecord], key: &str, final_value: i64) {
    if let Err(problem) = counter_violation(records, key, final_value) {
        panic!("{problem}");
    }
}

/// Like [`check_counter`], but returns the violation instead of panicking.
pub fn counter_violation(records: &[AddRecord], key: &str, final_value: i64) -> Result<(), String> {
    let records: Vec<&AddRecord> = records.iter().filter(|record| record.key == key).collect();
    assert!(records.iter().all(|record| record.delta > 0));
    let ok_sum: i64 = records
        .iter()
        .filter(|r| matches!(r.outcome, OpOutcome::Ok(_)))
        .map(|r| r.delta)
        .sum();
    let unknown_sum: i64 = records
        .iter()
        .filter(|r| matches!(r.outcome, OpOutcome::Unknown(_)))
        .map(|r| r.delta)
        .sum();
    if !(ok_sum <= final_value && final_value <= ok_sum + unknown_sum) {
        return Err(format!(
            "key {key}: final value {final_value} outside [{ok_sum}, {}]",
            ok_sum + unknown_sum
        ));
    }
    let mut totals: Vec<i64> = records
        .iter()
        .filter_map(|r| match r.outcome {
            OpOutcome::Ok(total) => Some(total),
            _ => None,
        })
        .collect();
    let count = totals.len();
    totals.sort_unstable();
    totals.dedup();
    if totals.len() != count {
        return Err(format!("two adds on {key} returned the same total"));
    }
    if totals.last().is_some_and(|last| *last > final_value) {
        return Err(format!(
            "an add on {key} returned a total above the final value {final_value}"
        ));
    }
    Ok(())
}

/// Reads `key` through a fresh client until a read succeeds.
pub fn read_final(cluster: &mut Cluster, key: &str, client_id: u64) -> i64 {
    let result: Arc<Mutex<Option<i64>>> = Arc::default();
    let slot = result.clone();
    let key_owned = key.to_string();
    let mut config = ClientConfig::new(client_id, cluster.cluster_addresses(), Network::Simulated);
    config.op_timeout_ms = 3_000;
    cluster
        .sim
        .client(format!("reader{client_id}"), async move {
            let mut client = Client::connect(config).await?;
            for _ in 0..20 {
                if let OpOutcome::Ok(value) = client.read(&key_owned).await {
                    *slot.lock().unwrap() = Some(value);
                    break;
                }
            }
            Ok(())
        });
    let done = cluster.run_until(60_000, |_| result.lock().unwrap().is_some());
    assert!(done, "final read of {key} never succeeded");
    let value = result.lock().unwrap().unwrap();
    value
}

pub fn wait_clients(cluster: &mut Cluster, logs: &[&OpLog], max_ms: u64) {
    let logs: Vec<OpLog> = logs.iter().map(|log| (*log).clone()).collect();
    assert!(
        cluster.run_until(max_ms, |_| logs.iter().all(OpLog::finished)),
        "clients did not finish in {max_ms} ms"
    );
}

/// Adds `delta` to `key` until the log is told to stop.
pub async fn add_until_stopped(client: &mut Client, log: &OpLog, key: &str, delta: i64) {
    while !log.should_stop() {
        let outcome = client.add(key, delta).await;
        log.push(AddRecord {
            key: key.into(),
            delta,
            outcome,
        });
    }
}

/// A tiny deterministic generator for choosing fault targets in tests.
pub struct TestRng(u64);

impl TestRng {
    pub fn new(seed: u64) -> Self {
        TestRng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % bound
    }
}

/// Stops looping clients, heals, restarts every node, and checks the final state: all nodes
/// converge and the counter agrees with what clients saw.
pub fn settle_and_check(cluster: &mut Cluster, logs: &[&OpLog], key: &str) -> i64 {
    for log in logs {
        log.stop();
    }
    cluster.heal();
    for control in cluster.controls.values() {
        control.set_net_faults(Default::default());
        control.set_disk_faults(Default::default());
    }
    // Crashed nodes, and nodes that stopped themselves on a storage failure.
    let stopped: Vec<NodeId> = cluster
        .controls
        .keys()
        .copied()
        .filter(|id| cluster.down.contains(id) || !cluster.status(*id).running)
        .collect();
    for id in stopped {
        cluster.restart(id);
    }
    wait_clients(cluster, logs, 30_000);
    let final_value = read_final(cluster, key, 1_000_000);
    let records: Vec<AddRecord> = logs.iter().flat_map(|log| log.records()).collect();
    check_counter(&records, key, final_value);
    let leader = cluster.wait_leader(5_000);
    let commit = cluster.status(leader).commit_index;
    cluster.wait_converged(commit, 10_000);
    cluster.check_safety();
    for observation in cluster.observations() {
        assert!(
            observation.running,
            "node {} is not running",
            observation.id
        );
        assert_eq!(observation.fatal_error, None, "node {}", observation.id);
    }
    final_value
}

//! Snapshot and log-compaction scenarios of the whole node under turmoil, named after the
//! MIT 6.5840 3D tests: compaction keeps the log bounded, a lagging, crashed or new node is
//! caught up by InstallSnapshot, and restarts recover from snapshot + log tail.

mod common;

use common::*;

/// Small threshold so that a few dozen ops snapshot several times.
const SNAPSHOT_EVERY: u64 = 10;

fn snapshot_cluster(size: u64, seed: u64) -> Cluster {
    Cluster::with_options(size, seed, |options| {
        options.snapshot_every = SNAPSHOT_EVERY;
    })
}

/// Every running node snapshotted and keeps fewer than 2 x the threshold entries after it.
fn assert_log_bounded(cluster: &Cluster) {
    for observation in cluster.observations() {
        if !observation.running {
            continue;
        }
        assert!(
            observation.snapshot_index > 0,
            "node {} never snapshotted: {observation:?}",
            observation.id
        );
        assert!(
            observation.log_entries_count < 2 * SNAPSHOT_EVERY,
            "node {} holds {} entries after its snapshot",
            observation.id,
            observation.log_entries_count
        );
    }
}

#[test]
fn snapshot_basic() {
    let mut cluster = snapshot_cluster(3, 31);
    cluster.wait_leader(3_000);
    let log = cluster.adds("c1", 1, 60);
    wait_clients(&mut cluster, &[&log], 30_000);
    assert_eq!(log.ok_count(), 60);
    assert_eq!(settle_and_check(&mut cluster, &[&log], "k"), 60);
    assert_log_bounded(&cluster);
}

/// A follower cut off while the others compact past what it holds: it is caught up by
/// InstallSnapshot, then by entries.
fn install_scenario(seed: u64, unreliable: bool, crash: bool) {
    let mut cluster = snapshot_cluster(3, seed);
    if unreliable {
        cluster.set_net_faults_everywhere(net_faults(0.1, 0.1, 0.1, 50));
    }
    let leader = cluster.wait_stable_leader_among(&[1, 2, 3], 5_000);
    let lagging = if leader == 1 { 2 } else { 1 };
    let mut logs = vec![cluster.adds("c0", 100, 5)];
    wait_clients(&mut cluster, &[&logs[0]], 30_000);
    for round in 0..3u64 {
        if crash {
            cluster.crash(lagging);
        } else {
            cluster.isolate(&[lagging]);
        }
        let log = cluster.adds(&format!("c{}", round + 1), round + 1, 25);
        wait_clients(&mut cluster, &[&log], 60_000);
        logs.push(log);
        if crash {
            cluster.restart(lagging);
        } else {
            cluster.heal();
        }
        let leader = cluster.wait_leader(5_000);
        let commit = cluster.status(leader).commit_index;
        cluster.wait_converged(commit, 20_000);
        assert!(
            cluster.status(lagging).snapshot_index > 0,
            "round {round}: node {lagging} was not caught up by snapshot"
        );
    }
    let refs: Vec<&OpLog> = logs.iter().collect();
    let value = settle_and_check(&mut cluster, &refs, "k");
    let ok: usize = logs.iter().map(OpLog::ok_count).sum();
    assert!(value >= ok as i64);
    assert_log_bounded(&cluster);
}

#[test]
fn snapshot_install() {
    install_scenario(32, false, false);
}

#[test]
fn snapshot_install_unreliable() {
    install_scenario(33, true, false);
}

#[test]
fn snapshot_install_crash() {
    install_scenario(34, false, true);
}

#[test]
fn snapshot_install_uncrash() {
    install_scenario(35, true, true);
}

/// Every node crashes and restarts repeatedly: recovery from snapshot + log tail.
#[test]
fn snapshot_all_crash() {
    let mut cluster = snapshot_cluster(3, 36);
    cluster.wait_leader(3_000);
    let mut logs = Vec::new();
    for round in 0..4u64 {
        let log = cluster.adds(&format!("c{round}"), round + 1, 15);
        wait_clients(&mut cluster, &[&log], 30_000);
        assert_eq!(log.ok_count(), 15, "round {round}");
        logs.push(log);
        cluster.crash_all();
        cluster.restart_crashed();
        cluster.wait_leader(5_000);
    }
    let refs: Vec<&OpLog> = logs.iter().collect();
    assert_eq!(settle_and_check(&mut cluster, &refs, "k"), 60);
    assert_log_bounded(&cluster);
}

/// A restart right after a snapshot, with no log tail: the node starts from the snapshot
/// alone and the cluster goes on.
#[test]
fn snapshot_init() {
    let mut cluster = snapshot_cluster(3, 37);
    cluster.wait_leader(3_000);
    // The leader's noop plus 19 adds: exactly two snapshots, nothing after the second.
    let first = cluster.adds("c1", 1, 19);
    wait_clients(&mut cluster, &[&first], 30_000);
    let leader = cluster.wait_leader(3_000);
    let commit = cluster.status(leader).commit_index;
    cluster.wait_converged(commit, 5_000);
    for observation in cluster.observations() {
        assert!(observation.snapshot_index > 0, "{observation:?}");
    }
    cluster.crash_all();
    cluster.restart_crashed();
    cluster.wait_leader(5_000);
    let second = cluster.adds("c2", 2, 1);
    wait_clients(&mut cluster, &[&second], 30_000);
    assert_eq!(settle_and_check(&mut cluster, &[&first, &second], "k"), 20);
}

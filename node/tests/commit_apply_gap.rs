//! Faults the store could not suffer before, at message level: apply running far behind
//! commit (writes answered only once applied, reads only once the apply index reaches their
//! read index, also on a new leader that is still applying), power loss of every node at
//! once (unsynced writes lost everywhere, acknowledged ones never), slow fsync and latency
//! spikes (slower, never wrong).

mod common;

use std::sync::{Arc, Mutex};

use common::*;
use minos_node::{NetDelay, OpOutcome, SlowFsync};

/// Adds then reads "k" in a loop; every read must see at least the total of the add
/// acknowledged just before it. Returns the (acknowledged total, read value) pairs.
fn add_then_read(cluster: &mut Cluster, client_id: u64) -> (OpLog, Arc<Mutex<Vec<(i64, i64)>>>) {
    let pairs: Arc<Mutex<Vec<(i64, i64)>>> = Arc::default();
    let seen = pairs.clone();
    let log = cluster.client(
        &format!("c{client_id}"),
        client_id,
        move |mut client, log| async move {
            while !log.should_stop() {
                let outcome = client.add("k", 1).await;
                let acked = match outcome {
                    OpOutcome::Ok(total) => Some(total),
                    _ => None,
                };
                log.push(AddRecord {
                    key: "k".into(),
                    delta: 1,
                    outcome,
                });
                let Some(acked) = acked else { continue };
                if let OpOutcome::Ok(value) = client.read("k").await {
                    seen.lock().unwrap().push((acked, value));
                }
            }
        },
    );
    (log, pairs)
}

fn assert_reads_see_acknowledged_writes(pairs: &[(i64, i64)]) {
    for (acked, read) in pairs {
        assert!(
            read >= acked,
            "a read returned {read} after an add was acknowledged with total {acked}: served before apply"
        );
    }
}

#[test]
fn apply_lagging_far_behind_commit_stays_linearizable() {
    let mut cluster = Cluster::new(3, 61);
    let leader = cluster.wait_leader(3_000);
    let follower = if leader == 1 { 2 } else { 1 };
    // The follower learns of commits at once but applies them 1.5 s later.
    cluster.controls[&follower].set_apply_lag(1_500);
    let adds = cluster.adds("writer", 1, 20);
    assert!(cluster.run_until(10_000, |_| adds.finished()));
    let acked: Vec<i64> = adds
        .records()
        .iter()
        .filter_map(|record| match record.outcome {
            OpOutcome::Ok(total) => Some(total),
            _ => None,
        })
        .collect();
    let last_acked = *acked.iter().max().expect("acknowledged adds");
    let status = cluster.status(follower);
    assert!(
        status.commit_index > status.last_applied,
        "the follower's apply should run behind its commit: {status:?}"
    );
    // Hand leadership to the follower while it is still applying.
    cluster.controls[&leader].request_transfer_leadership(follower);
    assert!(
        cluster.run_until(1_000, |cluster| cluster.leader() == Some(follower)),
        "the transfer did not happen"
    );
    let lagging = cluster.status(follower);
    assert!(
        lagging.last_applied < lagging.commit_index,
        "the new leader had caught up already; the test needs it behind: {lagging:?}"
    );
    // A read through the new leader must wait until it has applied its read index.
    let read: Arc<Mutex<Option<OpOutcome<i64>>>> = Arc::default();
    let result = read.clone();
    let reader = cluster.client_to(
        "reader",
        2,
        &[follower],
        5_000,
        move |mut client, _| async move {
            let outcome = client.read("k").await;
            *result.lock().unwrap() = Some(outcome);
        },
    );
    assert!(cluster.run_until(6_000, |_| reader.finished()));
    match read.lock().unwrap().clone() {
        Some(OpOutcome::Ok(value)) => assert!(
            value >= last_acked,
            "the new leader answered {value} before applying; {last_acked} was acknowledged"
        ),
        other => panic!("the read did not complete: {other:?}"),
    }
    // Clients on the lagging leader: every read sees the add acknowledged before it.
    let (log, pairs) = add_then_read(&mut cluster, 3);
    cluster.run_ms(3_000);
    cluster.controls[&follower].set_apply_lag(0);
    log.stop();
    cluster.run_until(5_000, |_| log.finished());
    let pairs = pairs.lock().unwrap().clone();
    assert!(pairs.len() >= 2, "{} add-read pairs", pairs.len());
    assert_reads_see_acknowledged_writes(&pairs);
    settle_and_check(&mut cluster, &[&adds, &log], "k");
}

#[test]
fn power_loss_everywhere_loses_unsynced_writes_but_no_acknowledged_one() {
    let mut cluster = Cluster::new(3, 62);
    cluster.wait_leader(3_000);
    let adders = cluster.looping_adders(3);
    cluster.run_ms(1_500);
    let before: usize = adders.iter().map(OpLog::ok_count).sum();
    assert!(before > 10, "{before} adds before the power loss");
    // Every node at once: turmoil drops whatever was written but not synced on each disk.
    cluster.crash_all();
    cluster.run_ms(500);
    cluster.restart_crashed();
    cluster.wait_leader(5_000);
    cluster.run_ms(1_500);
    let after: usize = adders.iter().map(OpLog::ok_count).sum();
    assert!(after > before, "no progress after power came back");
    let logs: Vec<&OpLog> = adders.iter().collect();
    // Every acknowledged add is in the final value (check_counter), every node agrees.
    settle_and_check(&mut cluster, &logs, "k");
}

#[test]
fn slow_fsync_and_latency_spikes_slow_the_cluster_down_without_breaking_it() {
    let mut cluster = Cluster::new(3, 63);
    cluster.wait_leader(3_000);
    let (log, pairs) = add_then_read(&mut cluster, 1);
    cluster.run_ms(1_000);
    let healthy = log.ok_count();
    for control in cluster.controls.values() {
        control.set_slow_fsync(SlowFsync {
            delay_ms: 40,
            jitter_ms: 40,
        });
        control.set_net_delay(NetDelay {
            base_ms: 5,
            jitter_ms: 20,
            spike_probability: 0.05,
            spike_ms: 400,
        });
    }
    cluster.run_ms(1_000);
    let slowed = log.ok_count() - healthy;
    assert!(
        slowed < healthy,
        "{slowed} adds in a second of slow fsync and delay, {healthy} in a healthy one"
    );
    for control in cluster.controls.values() {
        control.set_slow_fsync(SlowFsync::default());
        control.set_net_delay(NetDelay::default());
    }
    log.stop();
    cluster.run_until(5_000, |_| log.finished());
    assert_reads_see_acknowledged_writes(&pairs.lock().unwrap());
    settle_and_check(&mut cluster, &[&log], "k");
}

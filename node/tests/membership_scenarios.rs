//! Membership changes of the whole node under turmoil: a cluster grown from one bootstrapped
//! server to five under load, and the leader removed, both driven through `NodeControl`
//! (what the harness's `membership` nemesis uses).

mod common;

use common::*;

fn wait_voters(cluster: &mut Cluster, voters: &[u64], max_ms: u64) {
    let expected = voters.to_vec();
    let done = cluster.run_until(max_ms, |cluster| {
        let Some(leader) = cluster.leader() else {
            return false;
        };
        cluster.status(leader).voters == expected
    });
    let seen: Vec<Vec<u64>> = cluster
        .observations()
        .iter()
        .map(|observation| observation.voters.clone())
        .collect();
    assert!(done, "voters never became {expected:?}: {seen:?}");
}

#[test]
fn bootstrap_then_grow_under_load() {
    let mut cluster = Cluster::with_options(5, 61, |options| {
        options.bootstrap_voters = Some(vec![1]);
        options.snapshot_every = 50;
    });
    assert_eq!(
        cluster.wait_leader(3_000),
        1,
        "the bootstrap server elects itself"
    );
    let logs: Vec<OpLog> = (1..=3)
        .map(|client_id| {
            let name = format!("c{client_id}");
            cluster.client(&name, client_id, |mut client, log| async move {
                add_until_stopped(&mut client, &log, "k", 1).await
            })
        })
        .collect();
    cluster.run_ms(500);
    let mut voters = vec![1];
    for id in 2..=5 {
        let leader = cluster.wait_leader(3_000);
        cluster.controls[&leader].request_add_member(id, format!("{}:{PORT}", host(id)));
        voters.push(id);
        wait_voters(&mut cluster, &voters, 10_000);
        cluster.run_ms(300);
    }
    // The grown cluster commits without the bootstrap server.
    cluster.crash(1);
    cluster.run_ms(2_000);
    let refs: Vec<&OpLog> = logs.iter().collect();
    settle_and_check(&mut cluster, &refs, "k");
    let ok: usize = logs.iter().map(OpLog::ok_count).sum();
    assert!(ok > 100, "only {ok} adds committed");
}

#[test]
fn remove_leader_under_load() {
    let mut cluster = Cluster::new(3, 62);
    let leader = cluster.wait_stable_leader_among(&[1, 2, 3], 3_000);
    let log = cluster.client("c1", 1, |mut client, log| async move {
        add_until_stopped(&mut client, &log, "k", 1).await
    });
    cluster.run_ms(500);
    cluster.controls[&leader].request_remove_member(leader);
    let remaining: Vec<u64> = [1, 2, 3].into_iter().filter(|id| *id != leader).collect();
    wait_voters(&mut cluster, &remaining, 10_000);
    let new_leader = cluster.wait_stable_leader_among(&remaining, 5_000);
    assert_ne!(new_leader, leader);
    cluster.run_ms(1_000);
    log.stop();
    wait_clients(&mut cluster, &[&log], 10_000);
    // The removed node may keep running; it is no longer part of the cluster.
    let value = read_final(&mut cluster, "k", 1_000_000);
    check_counter(&log.records(), "k", value);
    cluster.check_safety();
}

/// Every original server replaced one at a time under load (add the new one, then remove an
/// old one, the leader included when its turn comes); no acknowledged add is lost.
#[test]
fn replace_all_members_under_load() {
    let mut cluster = Cluster::with_options(6, 63, |options| {
        options.bootstrap_voters = Some(vec![1, 2, 3]);
        options.snapshot_every = 30;
    });
    cluster.wait_leader(3_000);
    let logs: Vec<OpLog> = (1..=3)
        .map(|client_id| {
            let name = format!("c{client_id}");
            cluster.client(&name, client_id, |mut client, log| async move {
                add_until_stopped(&mut client, &log, "k", 1).await
            })
        })
        .collect();
    cluster.run_ms(300);
    let mut voters = vec![1, 2, 3];
    for (old, new) in [(1, 4), (2, 5), (3, 6)] {
        let leader = cluster.wait_leader(5_000);
        cluster.controls[&leader].request_add_member(new, format!("{}:{PORT}", host(new)));
        voters.push(new);
        wait_voters(&mut cluster, &voters, 10_000);
        let leader = cluster.wait_leader(5_000);
        cluster.controls[&leader].request_remove_member(old);
        voters.retain(|id| *id != old);
        wait_voters(&mut cluster, &voters, 10_000);
        cluster.run_ms(300);
    }
    for log in &logs {
        log.stop();
    }
    let refs: Vec<&OpLog> = logs.iter().collect();
    wait_clients(&mut cluster, &refs, 30_000);
    for old in 1..=3 {
        cluster.crash(old);
    }
    let leader = cluster.wait_stable_leader_among(&[4, 5, 6], 5_000);
    assert_eq!(cluster.status(leader).voters, vec![4, 5, 6]);
    let value = read_final(&mut cluster, "k", 1_000_000);
    let records: Vec<AddRecord> = logs.iter().flat_map(|log| log.records()).collect();
    check_counter(&records, "k", value);
    let ok: usize = logs.iter().map(OpLog::ok_count).sum();
    assert!(ok > 100, "only {ok} adds committed");
    cluster.check_safety();
}

/// A learner replicates (it applies what the cluster commits) and is promoted once caught up.
#[test]
fn learner_promotion() {
    let mut cluster = Cluster::with_options(4, 64, |options| {
        options.bootstrap_voters = Some(vec![1, 2, 3]);
    });
    cluster.wait_leader(3_000);
    let log = cluster.client("c1", 1, |mut client, log| async move {
        add_many(&mut client, &log, "k", 1, 30).await
    });
    wait_clients(&mut cluster, &[&log], 20_000);
    assert_eq!(cluster.status(4).last_applied, 0, "not a member yet");
    let leader = cluster.wait_leader(3_000);
    cluster.controls[&leader].request_add_member(4, format!("{}:{PORT}", host(4)));
    wait_voters(&mut cluster, &[1, 2, 3, 4], 10_000);
    let commit = cluster.status(leader).commit_index;
    cluster.wait_converged(commit, 5_000);
    assert_eq!(read_final(&mut cluster, "k", 99), 30);
}

//! Scenario tests of the whole node (core + storage + transport + store + client) under
//! turmoil, named after the MIT 6.5840 Raft tests they are modelled on.

mod common;

use common::*;
use minos_node::raft::Role;

#[test]
fn initial_election() {
    let mut cluster = Cluster::new(3, 1);
    let leader = cluster.wait_leader(2_000);
    let term = cluster.status(leader).term;
    assert!(term >= 1);
    // With no faults the leader and term stay put.
    cluster.run_ms(2_000);
    assert_eq!(cluster.leader(), Some(leader));
    assert_eq!(cluster.status(leader).term, term);
    for id in 1..=3 {
        let status = cluster.status(id);
        assert_eq!(status.term, term, "node {id}");
        assert_eq!(status.leader, Some(leader), "node {id}");
    }
}

#[test]
fn basic_agree() {
    let mut cluster = Cluster::new(3, 2);
    cluster.wait_leader(2_000);
    let log = cluster.adds("c1", 1, 10);
    wait_clients(&mut cluster, &[&log], 10_000);
    let records = log.records();
    let totals: Vec<_> = records
        .iter()
        .map(|record| record.outcome.clone())
        .collect();
    let expected: Vec<_> = (1..=10).map(minos_node::OpOutcome::Ok).collect();
    assert_eq!(totals, expected);
    // Noop of the leader's term + 10 commands, applied everywhere.
    cluster.wait_converged(11, 2_000);
    assert_eq!(read_final(&mut cluster, "k", 99), 10);
}

#[test]
fn basic_agree_with_reads_through_the_log() {
    let mut cluster = Cluster::with_options(3, 21, |options| {
        options.read_mode = minos_node::ReadMode::Log
    });
    cluster.wait_leader(2_000);
    let log = cluster.client("c1", 1, |mut client, log| async move {
        add_many(&mut client, &log, "k", 2, 5).await
    });
    wait_clients(&mut cluster, &[&log], 10_000);
    assert_eq!(log.ok_count(), 5);
    // The final read is itself a log entry in this mode.
    let applied_before = cluster.status(1).last_applied;
    assert_eq!(read_final(&mut cluster, "k", 99), 10);
    cluster.wait_converged(applied_before + 1, 2_000);
}

#[test]
fn lease_reads_see_every_completed_add() {
    let mut cluster = Cluster::with_options(3, 22, |options| {
        options.read_mode = minos_node::ReadMode::Lease
    });
    cluster.wait_leader(2_000);
    let log = cluster.client("c1", 1, |mut client, log| async move {
        for round in 1..=5 {
            add_many(&mut client, &log, "k", 1, 1).await;
            assert_eq!(client.read("k").await, minos_node::OpOutcome::Ok(round));
        }
    });
    wait_clients(&mut cluster, &[&log], 10_000);
    assert_eq!(log.ok_count(), 5);
}

#[test]
fn re_election() {
    let mut cluster = Cluster::new(3, 3);
    let all = [1, 2, 3];
    let leader1 = cluster.wait_stable_leader_among(&all, 3_000);
    let others: Vec<u64> = all.iter().copied().filter(|id| *id != leader1).collect();
    // The leader is cut off: the other two elect a new one.
    cluster.isolate(&[leader1]);
    let leader2 = cluster.wait_stable_leader_among(&others, 3_000);
    assert_ne!(leader1, leader2);
    // CheckQuorum: the cut-off leader steps down.
    assert!(cluster.run_until(2_000, |cluster| cluster
        .leaders_among(&[leader1])
        .is_empty()));
    // The old leader rejoins: still exactly one leader.
    cluster.heal();
    cluster.run_ms(1_000);
    assert_eq!(cluster.leaders_among(&all).len(), 1);
    // Every node cut off from every other: nobody may lead.
    for id in all {
        cluster.isolate(&[id]);
    }
    cluster.run_ms(2_000);
    assert!(
        cluster.leaders_among(&all).is_empty(),
        "a leader without a quorum"
    );
    // Quorum restored: a leader again.
    cluster.heal();
    cluster.wait_stable_leader_among(&all, 3_000);
}

#[test]
fn many_elections() {
    let mut cluster = Cluster::new(7, 4);
    let all: Vec<u64> = (1..=7).collect();
    cluster.wait_leader(3_000);
    let mut rng = TestRng::new(4);
    for _ in 0..6 {
        let mut cut = Vec::new();
        while cut.len() < 3 {
            let id = 1 + rng.below(7);
            if !cut.contains(&id) {
                cut.push(id);
            }
        }
        for id in &cut {
            cluster.isolate(&[*id]);
        }
        let majority: Vec<u64> = all.iter().copied().filter(|id| !cut.contains(id)).collect();
        cluster.wait_stable_leader_among(&majority, 5_000);
        cluster.heal();
    }
    cluster.wait_stable_leader_among(&all, 5_000);
}

#[test]
fn follower_failure() {
    let mut cluster = Cluster::new(3, 5);
    let leader = cluster.wait_stable_leader_among(&[1, 2, 3], 3_000);
    let followers: Vec<u64> = [1, 2, 3].into_iter().filter(|id| *id != leader).collect();
    let first = cluster.adds("c1", 1, 3);
    wait_clients(&mut cluster, &[&first], 10_000);
    assert_eq!(first.ok_count(), 3);
    cluster.crash(followers[0]);
    let second = cluster.adds("c2", 2, 3);
    wait_clients(&mut cluster, &[&second], 10_000);
    assert_eq!(second.ok_count(), 3, "{:?}", second.records());
    cluster.crash(followers[1]);
    let third = cluster.adds("c3", 3, 1);
    wait_clients(&mut cluster, &[&third], 10_000);
    assert!(
        matches!(
            third.records()[0].outcome,
            minos_node::OpOutcome::Unknown(_)
        ),
        "{:?}",
        third.records()
    );
    let value = settle_and_check(&mut cluster, &[&first, &second, &third], "k");
    assert!((6..=7).contains(&value));
}

#[test]
fn leader_failure() {
    let mut cluster = Cluster::new(3, 6);
    let leader1 = cluster.wait_stable_leader_among(&[1, 2, 3], 3_000);
    let first = cluster.adds("c1", 1, 3);
    wait_clients(&mut cluster, &[&first], 10_000);
    cluster.crash(leader1);
    let others: Vec<u64> = [1, 2, 3].into_iter().filter(|id| *id != leader1).collect();
    let leader2 = cluster.wait_stable_leader_among(&others, 3_000);
    let second = cluster.adds("c2", 2, 3);
    wait_clients(&mut cluster, &[&second], 10_000);
    assert_eq!(first.ok_count() + second.ok_count(), 6);
    cluster.crash(leader2);
    let third = cluster.adds("c3", 3, 1);
    wait_clients(&mut cluster, &[&third], 10_000);
    assert!(
        !third.records()[0].outcome.is_ok(),
        "committed without a quorum: {:?}",
        third.records()
    );
    settle_and_check(&mut cluster, &[&first, &second, &third], "k");
}

#[test]
fn fail_agree() {
    let mut cluster = Cluster::new(3, 7);
    let leader = cluster.wait_stable_leader_among(&[1, 2, 3], 3_000);
    let follower = [1, 2, 3].into_iter().find(|id| *id != leader).unwrap();
    cluster.isolate(&[follower]);
    let during = cluster.adds("c1", 1, 5);
    wait_clients(&mut cluster, &[&during], 15_000);
    assert_eq!(during.ok_count(), 5);
    cluster.heal();
    let after = cluster.adds("c2", 2, 5);
    wait_clients(&mut cluster, &[&after], 15_000);
    assert_eq!(after.ok_count(), 5);
    assert_eq!(settle_and_check(&mut cluster, &[&during, &after], "k"), 10);
    // The rejoined follower caught up.
    let applied = cluster.status(follower).last_applied;
    assert_eq!(applied, cluster.status(leader).last_applied);
}

#[test]
fn fail_no_agree() {
    let mut cluster = Cluster::new(5, 8);
    let all = [1, 2, 3, 4, 5];
    let leader = cluster.wait_stable_leader_among(&all, 3_000);
    let followers: Vec<u64> = all.into_iter().filter(|id| *id != leader).collect();
    for id in &followers[..3] {
        cluster.isolate(&[*id]);
    }
    let stuck = cluster.adds_to("c1", 1, &[leader], 1_000, 1);
    wait_clients(&mut cluster, &[&stuck], 10_000);
    assert!(
        !stuck.records()[0].outcome.is_ok(),
        "committed with 2 of 5: {:?}",
        stuck.records()
    );
    cluster.heal();
    let after = cluster.adds("c2", 2, 3);
    wait_clients(&mut cluster, &[&after], 15_000);
    assert_eq!(after.ok_count(), 3);
    settle_and_check(&mut cluster, &[&stuck, &after], "k");
}

#[test]
fn concurrent_starts() {
    let mut cluster = Cluster::new(3, 9);
    cluster.wait_leader(3_000);
    let logs: Vec<OpLog> = (1..=5)
        .map(|client_id| cluster.adds(&format!("c{client_id}"), client_id, 5))
        .collect();
    let refs: Vec<&OpLog> = logs.iter().collect();
    wait_clients(&mut cluster, &refs, 20_000);
    assert!(logs.iter().all(|log| log.ok_count() == 5));
    assert_eq!(settle_and_check(&mut cluster, &refs, "k"), 25);
}

#[test]
fn rejoin() {
    let mut cluster = Cluster::new(3, 10);
    let all = [1, 2, 3];
    let leader1 = cluster.wait_stable_leader_among(&all, 3_000);
    let first = cluster.adds("c1", 1, 1);
    wait_clients(&mut cluster, &[&first], 10_000);
    // The cut-off leader takes entries it can never commit.
    cluster.isolate(&[leader1]);
    let lost = cluster.adds_to("c2", 2, &[leader1], 500, 3);
    let others: Vec<u64> = all.into_iter().filter(|id| *id != leader1).collect();
    let leader2 = cluster.wait_stable_leader_among(&others, 3_000);
    let second = cluster.adds("c3", 3, 2);
    wait_clients(&mut cluster, &[&lost, &second], 15_000);
    // New leader cut off, old leader back: the old leader's entries are overwritten.
    cluster.heal();
    cluster.isolate(&[leader2]);
    let third = cluster.adds("c4", 4, 2);
    wait_clients(&mut cluster, &[&third], 15_000);
    assert_eq!(third.ok_count(), 2);
    settle_and_check(&mut cluster, &[&first, &lost, &second, &third], "k");
}

#[test]
fn backup() {
    let mut cluster = Cluster::new(5, 11);
    let all = [1, 2, 3, 4, 5];
    let leader1 = cluster.wait_stable_leader_among(&all, 3_000);
    let follower = all.into_iter().find(|id| *id != leader1).unwrap();
    let minority = [leader1, follower];
    let majority: Vec<u64> = all
        .into_iter()
        .filter(|id| !minority.contains(id))
        .collect();
    cluster.isolate(&minority);
    // Many uncommittable entries on the minority side...
    let lost = cluster.adds_to("c1", 1, &[leader1], 100, 30);
    // ...and many committed ones on the majority side.
    cluster.wait_stable_leader_among(&majority, 3_000);
    let committed = cluster.adds_to("c2", 2, &majority, 3_000, 30);
    wait_clients(&mut cluster, &[&lost, &committed], 30_000);
    assert_eq!(committed.ok_count(), 30);
    cluster.heal();
    let after = cluster.adds("c3", 3, 5);
    wait_clients(&mut cluster, &[&after], 15_000);
    assert_eq!(after.ok_count(), 5);
    settle_and_check(&mut cluster, &[&lost, &committed, &after], "k");
}

#[test]
fn persist1_all_crash_and_restart() {
    let mut cluster = Cluster::new(3, 12);
    cluster.wait_leader(3_000);
    let first = cluster.adds("c1", 1, 5);
    wait_clients(&mut cluster, &[&first], 10_000);
    assert_eq!(first.ok_count(), 5);
    cluster.crash_all();
    for id in 1..=3 {
        let status = cluster.status(id);
        assert!(
            !status.running && status.role == Role::Follower,
            "crashed node {id}: {status:?}"
        );
    }
    cluster.restart_crashed();
    let leader = cluster.wait_leader(3_000);
    let second = cluster.adds("c2", 2, 5);
    wait_clients(&mut cluster, &[&second], 10_000);
    assert_eq!(second.ok_count(), 5);
    // Crash and restart the leader alone.
    cluster.crash(leader);
    cluster.restart(leader);
    let third = cluster.adds("c3", 3, 5);
    wait_clients(&mut cluster, &[&third], 10_000);
    assert_eq!(third.ok_count(), 5);
    assert_eq!(
        settle_and_check(&mut cluster, &[&first, &second, &third], "k"),
        15
    );
    assert!(cluster.status(leader).incarnations >= 3);
}

#[test]
fn persist2_minorities_crash_repeatedly() {
    let mut cluster = Cluster::new(5, 13);
    cluster.wait_leader(3_000);
    let background = cluster.looping_adder("c1", 1);
    let mut rng = TestRng::new(13);
    for _ in 0..5 {
        let a = 1 + rng.below(5);
        let b = 1 + (a + rng.below(4)) % 5;
        cluster.crash(a);
        cluster.crash(b);
        cluster.run_ms(700);
        cluster.restart(a);
        cluster.restart(b);
        cluster.run_ms(700);
    }
    settle_and_check(&mut cluster, &[&background], "k");
    assert!(
        background.ok_count() > 10,
        "too little progress: {}",
        background.ok_count()
    );
}

#[test]
fn persist3_majority_crash_keeps_committed_entries() {
    let mut cluster = Cluster::new(3, 14);
    let all = [1, 2, 3];
    let leader = cluster.wait_stable_leader_among(&all, 3_000);
    let first = cluster.adds("c1", 1, 1);
    wait_clients(&mut cluster, &[&first], 10_000);
    let lagging = all.into_iter().find(|id| *id != leader).unwrap();
    cluster.isolate(&[lagging]);
    let second = cluster.adds("c2", 2, 1);
    wait_clients(&mut cluster, &[&second], 10_000);
    assert_eq!(first.ok_count() + second.ok_count(), 2);
    // Both nodes holding entry 2 crash; the lagging node cannot win until one returns.
    for id in all.into_iter().filter(|id| *id != lagging) {
        cluster.crash(id);
        cluster.restart(id);
    }
    cluster.heal();
    let third = cluster.adds("c3", 3, 1);
    wait_clients(&mut cluster, &[&third], 10_000);
    assert_eq!(third.ok_count(), 1);
    assert_eq!(
        settle_and_check(&mut cluster, &[&first, &second, &third], "k"),
        3
    );
}

/// Leaders crash at random moments while clients keep adding (Raft paper, figure 8).
fn figure8(seed: u64, unreliable: bool) {
    let mut cluster = Cluster::new(5, seed);
    if unreliable {
        cluster.set_net_faults_everywhere(net_faults(0.05, 0.05, 0.1, 40));
    }
    cluster.wait_leader(5_000);
    let logs = cluster.looping_adders(3);
    let mut rng = TestRng::new(seed);
    for _ in 0..15 {
        let long = rng.below(10) == 0;
        cluster.run_ms(100 + rng.below(if long { 1_000 } else { 100 }));
        if let Some(leader) = cluster.leader() {
            if rng.below(2) == 0 {
                cluster.crash(leader);
            }
        }
        if unreliable && rng.below(3) == 0 {
            let id = 1 + rng.below(5);
            cluster.isolate(&[id]);
        } else if unreliable {
            cluster.heal();
        }
        if cluster.down.len() >= 3 {
            let down: Vec<u64> = cluster.down.iter().copied().collect();
            cluster.restart(down[rng.below(down.len() as u64) as usize]);
        }
    }
    let refs: Vec<&OpLog> = logs.iter().collect();
    settle_and_check(&mut cluster, &refs, "k");
    assert!(logs.iter().map(OpLog::ok_count).sum::<usize>() > 0);
}

#[test]
fn figure8_crashes() {
    figure8(15, false);
}

#[test]
fn figure8_unreliable() {
    figure8(16, true);
}

#[test]
fn unreliable_agree() {
    let mut cluster = Cluster::new(5, 17);
    cluster.set_net_faults_everywhere(net_faults(0.1, 0.1, 0.1, 50));
    cluster.wait_leader(5_000);
    let logs: Vec<OpLog> = (1..=4)
        .map(|client_id| {
            cluster.client(
                &format!("c{client_id}"),
                client_id,
                move |mut client, log| async move {
                    add_many(&mut client, &log, "k", client_id as i64, 10).await
                },
            )
        })
        .collect();
    let refs: Vec<&OpLog> = logs.iter().collect();
    wait_clients(&mut cluster, &refs, 60_000);
    let ok: usize = logs.iter().map(OpLog::ok_count).sum();
    assert!(
        ok >= 36,
        "only {ok} of 40 adds succeeded on a lossy network"
    );
    settle_and_check(&mut cluster, &refs, "k");
}

/// Random nodes crash and restart while clients add.
fn churn(seed: u64, unreliable: bool) {
    let mut cluster = Cluster::new(5, seed);
    if unreliable {
        cluster.set_net_faults_everywhere(net_faults(0.1, 0.05, 0.1, 30));
    }
    cluster.wait_leader(5_000);
    let logs = cluster.looping_adders(3);
    let mut rng = TestRng::new(seed);
    for _ in 0..20 {
        let id = 1 + rng.below(5);
        if cluster.down.contains(&id) {
            cluster.restart(id);
        } else if rng.below(2) == 0 {
            cluster.crash(id);
        } else {
            cluster.isolate(&[id]);
        }
        if rng.below(3) == 0 {
            cluster.heal();
        }
        cluster.run_ms(rng.below(400) + 50);
    }
    let refs: Vec<&OpLog> = logs.iter().collect();
    settle_and_check(&mut cluster, &refs, "k");
    assert!(logs.iter().map(OpLog::ok_count).sum::<usize>() > 10);
}

#[test]
fn reliable_churn() {
    churn(18, false);
}

#[test]
fn unreliable_churn() {
    churn(19, true);
}

#[test]
fn leader_pause_and_transfer() {
    let mut cluster = Cluster::new(3, 20);
    let all = [1, 2, 3];
    let leader1 = cluster.wait_stable_leader_among(&all, 3_000);
    let background = cluster.looping_adder("c1", 1);
    cluster.run_ms(1_000);
    // A paused leader is replaced; after resuming it follows.
    cluster.controls[&leader1].pause();
    let others: Vec<u64> = all.into_iter().filter(|id| *id != leader1).collect();
    let leader2 = cluster.wait_stable_leader_among(&others, 3_000);
    assert_eq!(
        cluster.status(leader1).role,
        Role::Leader,
        "a paused node does not change state"
    );
    cluster.controls[&leader1].resume();
    assert!(
        cluster.run_until(2_000, |cluster| cluster.status(leader1).role
            == Role::Follower)
    );
    // Leadership moves where it is asked to.
    cluster.controls[&leader2].request_transfer_leadership(leader1);
    assert!(
        cluster.run_until(2_000, |cluster| cluster.leader() == Some(leader1)),
        "transfer did not happen"
    );
    settle_and_check(&mut cluster, &[&background], "k");
    assert!(background.ok_count() > 10, "{:?}", background.records());
}

/// A wider sweep of the randomized scenarios; run with `cargo test -- --ignored`.
#[test]
#[ignore]
fn sweep_many_seeds() {
    for seed in 100..140 {
        eprintln!("seed {seed}");
        figure8(seed, seed % 2 == 0);
        churn(seed + 1_000, seed % 2 == 1);
    }
}

/// A-B and B-C connected, A-C cut (the partial partition of the Cloudflare 2020 outage):
/// with PreVote and CheckQuorum the cluster keeps committing instead of electing in a loop.
#[test]
fn partial_partition_keeps_committing() {
    let mut cluster = Cluster::new(3, 41);
    let all = [1, 2, 3];
    let leader = cluster.wait_stable_leader_among(&all, 3_000);
    let others: Vec<u64> = all.iter().copied().filter(|id| *id != leader).collect();
    // Cut the leader from one follower only; the other follower still sees both.
    let (cut_off, bridge) = (others[0], others[1]);
    let term = cluster.status(leader).term;
    cluster.sim.partition(host(leader), host(cut_off));
    let log = cluster.looping_adder("c1", 1);
    cluster.run_ms(5_000);
    log.stop();
    wait_clients(&mut cluster, &[&log], 10_000);
    let ok = log.ok_count();
    assert!(
        ok >= 50,
        "only {ok} adds committed under a partial partition"
    );
    // PreVote: the cut-off node cannot win a pre-vote from the bridge, which still hears
    // the leader; so nobody's term moves and the leader stays.
    let terms: Vec<u64> = all.iter().map(|id| cluster.status(*id).term).collect();
    assert_eq!(terms, vec![term; 3], "elections under a partial partition");
    assert_eq!(cluster.leaders_among(&all), vec![leader]);
    assert_eq!(cluster.status(bridge).leader, Some(leader));
    cluster.heal();
    settle_and_check(&mut cluster, &[&log], "k");
}

/// PreVote: a node partitioned away (its election timer firing over and over) rejoins
/// without deposing the healthy leader or raising the term.
#[test]
fn rejoin_does_not_disrupt() {
    let mut cluster = Cluster::new(5, 42);
    let all = [1, 2, 3, 4, 5];
    let leader = cluster.wait_stable_leader_among(&all, 3_000);
    let term = cluster.status(leader).term;
    let wanderer = all.into_iter().find(|id| *id != leader).unwrap();
    cluster.isolate(&[wanderer]);
    cluster.run_ms(3_000);
    cluster.heal();
    cluster.run_ms(2_000);
    assert_eq!(cluster.leaders_among(&all), vec![leader]);
    assert_eq!(
        cluster.status(leader).term,
        term,
        "the rejoining node raised the term"
    );
    assert_eq!(cluster.status(wanderer).leader, Some(leader));
}

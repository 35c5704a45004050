//! Scenario tests of the whole node (core + storage + transport + store + client) under
//! turmoil, named after the MIT 6.5840 Raft tests they are modelled on.

mod common;

use common::*;

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
    let log = cluster.client("c1", 1, |mut client, log| async move {
        add_many(&mut client, &log, "k", 1, 10).await
    });
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

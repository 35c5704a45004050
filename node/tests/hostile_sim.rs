//! A simulated node that receives an authenticated entry contradicting its committed prefix
//! stops itself (fail-stop) instead of panicking, and the stop surfaces in the observation
//! (`fatal_error`, which the harness turns into `NodeView::stopped_on_error`), while an
//! unauthenticated copy of the same datagram is dropped. Issue 16 item 11.

mod common;

use std::net::SocketAddr;

use common::{host, Cluster, PORT};
use minos_node::auth::{seal_with, ClusterKey};
use minos_node::protocol::Wire;
use minos_node::raft::{Entry, EntryPayload, Message, MessageBody};

#[test]
fn an_authenticated_contradiction_fails_stop_and_is_recorded() {
    let mut cluster = Cluster::new(3, 5);
    let leader = cluster.wait_leader(3_000);
    let adds = cluster.adds("c1", 1, 5);
    cluster.run_ms(2_000);
    assert_eq!(adds.ok_count(), 5);
    let victim = if leader == 1 { 2 } else { 1 };
    let term = cluster.status(victim).term;
    let wire = Wire::Raft(Message {
        from: leader,
        to: victim,
        term: term + 1,
        body: MessageBody::AppendEntries {
            prev_log_index: 0,
            prev_log_term: 0,
            entries: vec![Entry {
                term: term + 1,
                index: 1,
                payload: EntryPayload::Command(b"forged".to_vec()),
            }],
            leader_commit: 1,
        },
    })
    .encode();
    let unsealed_first = wire.clone();
    cluster.sim.client("forger", async move {
        let socket = turmoil::net::UdpSocket::bind("0.0.0.0:0").await?;
        let to = SocketAddr::new(turmoil::lookup(host(victim)), PORT);
        socket.send_to(&unsealed_first, to).await?;
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        socket.send_to(&[0xAB; 40], to).await?;
        // NodeOptions::new's default key: what a member (or a bug in one) could send.
        let sealed = seal_with(&ClusterKey::for_simulation(0), 0, 1, &wire);
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        socket.send_to(&sealed, to).await?;
        Ok(())
    });
    cluster.run_ms(700);
    let status = cluster.status(victim);
    assert!(
        status.running && status.fatal_error.is_none(),
        "unsealed copy: {status:?}"
    );
    assert_eq!(
        status.term, term,
        "an unauthenticated datagram changed the term"
    );
    assert!(
        cluster.run_until(3_000, |cluster| cluster
            .status(victim)
            .fatal_error
            .is_some()),
        "the node never stopped"
    );
    let status = cluster.status(victim);
    assert!(!status.running);
    let error = status.fatal_error.unwrap();
    assert!(
        error.contains("safety violation") && error.contains("index 1"),
        "{error}"
    );
}

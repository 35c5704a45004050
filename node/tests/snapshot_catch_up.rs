//! A node that missed many entries is caught up by a snapshot (a handful of messages), not by
//! replaying the log; the leader's log stays bounded meanwhile.

#[path = "support/catch_up.rs"]
mod catch_up;

use catch_up::CatchUp;

fn caught_up_by_snapshot(entries_count: u64) {
    let snapshot_every = 1_000;
    let mut cluster = CatchUp::new(Some(snapshot_every));
    cluster.commit_without_lagging_node(entries_count);
    assert!(
        (cluster.leader_log_entries_count() as u64) < 2 * snapshot_every,
        "the leader's log is not bounded: {} entries",
        cluster.leader_log_entries_count()
    );
    let ticks = cluster.catch_up_lagging_node();
    eprintln!(
        "caught up after {entries_count} entries: {ticks} leader ticks, {} messages, {} snapshot chunks, {} entries, snapshot at {}",
        cluster.catch_up_messages_count,
        cluster.catch_up_snapshot_chunks_count,
        cluster.catch_up_entries_count,
        cluster.lagging_snapshot_index()
    );
    assert!(cluster.lagging_snapshot_index() > entries_count - 2 * snapshot_every);
    assert!(cluster.catch_up_snapshot_chunks_count >= 1);
    assert!(
        cluster.catch_up_entries_count < 2 * snapshot_every,
        "{} entries replayed after the snapshot",
        cluster.catch_up_entries_count
    );
}

#[test]
fn node_that_missed_many_entries_catches_up_by_snapshot() {
    caught_up_by_snapshot(20_000);
}

#[test]
fn without_snapshots_the_whole_log_is_replayed() {
    let mut cluster = CatchUp::new(None);
    cluster.commit_without_lagging_node(5_000);
    cluster.catch_up_lagging_node();
    assert_eq!(cluster.lagging_snapshot_index(), 0);
    assert!(cluster.catch_up_entries_count >= 5_000);
}

/// The brief's million-entry variant: `cargo test --release -p minos-node --test
/// snapshot_catch_up -- --ignored`.
#[test]
#[ignore]
fn node_that_missed_a_million_entries_catches_up_by_snapshot() {
    caught_up_by_snapshot(1_000_000);
}

//! Catch-up figures (a benchmark, not a test): wall time for a node that was down while N
//! entries were committed to be caught up, with log compaction (InstallSnapshot, snapshot
//! every 1000 entries) and without (every entry replayed). Core only: no IO, no timers.
//!
//! Run: `cargo bench -p minos-node --bench catch_up`.

#[path = "../tests/support/catch_up.rs"]
mod catch_up;

use std::time::Instant;

use catch_up::CatchUp;

fn measure(entries_count: u64, snapshot_every: Option<u64>) {
    let mut cluster = CatchUp::new(snapshot_every);
    let commit_started = Instant::now();
    cluster.commit_without_lagging_node(entries_count);
    let commit_ms = commit_started.elapsed().as_secs_f64() * 1e3;
    let started = Instant::now();
    let ticks = cluster.catch_up_lagging_node();
    let catch_up_ms = started.elapsed().as_secs_f64() * 1e3;
    let mode = match snapshot_every {
        Some(every) => format!("snapshot every {every}"),
        None => "no snapshots".to_string(),
    };
    println!(
        "catch-up after {entries_count:>9} entries, {mode:<20}: {catch_up_ms:>9.2} ms wall, \
         {ticks} leader ticks, {} messages ({} snapshot chunks, {} entries); committing took {commit_ms:.0} ms",
        cluster.catch_up_messages_count,
        cluster.catch_up_snapshot_chunks_count,
        cluster.catch_up_entries_count,
    );
}

fn main() {
    for entries_count in [10_000, 100_000, 1_000_000] {
        measure(entries_count, Some(1_000));
        measure(entries_count, None);
    }
}

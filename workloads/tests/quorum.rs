//! The measured quorum table on the simulated store: killing servers one at a time (leader
//! first), writes keep committing while a majority lives and stop at the first kill past it.

use minos_workloads::quorum::{measure_simulated, simulated_report};

#[test]
fn simulated_store_tolerates_a_minority_of_failures_for_one_to_seven_servers() {
    let report = simulated_report(7, 1, 5_000);
    let tolerated: Vec<usize> = report.rows.iter().map(|row| row.tolerated).collect();
    assert_eq!(tolerated, [0, 0, 1, 1, 2, 2, 3], "{}", report.table());
    let quorum: Vec<usize> = report.rows.iter().map(|row| row.quorum).collect();
    assert_eq!(quorum, [1, 2, 2, 3, 3, 4, 4]);
    assert!(report.matches_majority());
    for row in &report.rows {
        // Each row ends with the kill that lost the majority, and that write did not commit.
        let last = row.steps.last().expect("at least one kill per row");
        assert!(!last.committed, "{} servers: {last:?}", row.servers);
        assert_eq!(last.live, row.quorum - 1, "{} servers", row.servers);
    }
}

#[test]
fn simulated_measurement_replays_from_its_seed() {
    let first = serde_json::to_string(&measure_simulated(5, 9, 2_000)).unwrap();
    let second = serde_json::to_string(&measure_simulated(5, 9, 2_000)).unwrap();
    assert_eq!(first, second);
}

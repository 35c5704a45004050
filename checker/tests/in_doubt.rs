//! Histories with many in-doubt (info) adds on one key, as `minos run` records during faults:
//! the search must decide them within the default budget (in-doubt twins are explored as
//! multisets, not subsets), with the verdict they were built to have.

#[path = "support/in_doubt.rs"]
mod in_doubt;

use in_doubt::{counter_history, Ending};
use minos_checker::history::{parse_jsonl, Outcome};
use minos_checker::{check, CheckOptions, Verdict};

fn decide(in_doubt_count: usize, seed: u64, ending: Ending) -> Verdict {
    let text = counter_history(in_doubt_count, 6, seed, ending);
    let history = parse_jsonl(&text, "in-doubt").expect("generated histories parse");
    let info_adds = history
        .ops
        .iter()
        .filter(|op| op.outcome == Outcome::Info && op.f == "add")
        .count();
    assert_eq!(
        info_adds, in_doubt_count,
        "the generator made what was asked"
    );
    let report = check(&history, &CheckOptions::new("counter")).expect("fits the model");
    assert_ne!(
        report.verdict,
        Verdict::Unknown,
        "{in_doubt_count} in-doubt adds (seed {seed}, {ending:?}) not decided: {:?}, {} states, {} bytes",
        report.unknown_reason,
        report.partitions[0].states_explored,
        report.peak_memory_bytes
    );
    report.verdict
}

#[test]
fn sixty_in_doubt_adds_on_one_key_are_decided_valid() {
    for seed in 1..=3 {
        assert_eq!(
            decide(60, seed, Ending::Valid),
            Verdict::Valid,
            "seed {seed}"
        );
    }
}

#[test]
fn sixty_in_doubt_adds_on_one_key_with_a_stale_read_are_decided_invalid() {
    // One seed: an invalid history makes the search exhaust every multiset before the read.
    assert_eq!(decide(60, 1, Ending::StaleRead), Verdict::Invalid);
}

/// A key through a power loss of every node (see `power_loss_history`), checked within
/// `memory_mb`: the verdict, with the states the search explored.
fn decide_power_loss(applied_percent: u64, seed: u64, stale_read: bool) -> (Verdict, u64) {
    let text = in_doubt::power_loss_history(40, 600, 10, applied_percent, seed, stale_read);
    if let Ok(dir) = std::env::var("MINOS_DUMP_POWER_LOSS") {
        std::fs::write(
            format!("{dir}/power-loss-{applied_percent}-{seed}-{stale_read}.jsonl"),
            &text,
        )
        .unwrap();
    }
    let history = parse_jsonl(&text, "power loss").expect("generated histories parse");
    let mut options = CheckOptions::new("counter");
    options.memory_limit_bytes = Some(64 << 20);
    let report = check(&history, &options).expect("fits the model");
    assert_ne!(
        report.verdict,
        Verdict::Unknown,
        "{applied_percent}% applied, seed {seed}: {:?} after {} states",
        report.unknown_reason,
        report.partitions[0].states_explored
    );
    (report.verdict, report.partitions[0].states_explored)
}

/// Forty adds in doubt across a power loss, then 600 ops: every in-doubt add could take
/// effect at any later point, yet only where a read or a reported total needs it does it
/// matter (the search defers them; before, it tried every multiset of them everywhere and
/// ran out of memory).
#[test]
fn forty_adds_in_doubt_across_a_power_loss_are_decided_in_little_memory() {
    for seed in 1..=2 {
        for applied_percent in [0, 50, 100] {
            let (verdict, states) = decide_power_loss(applied_percent, seed, false);
            assert_eq!(
                verdict,
                Verdict::Valid,
                "{applied_percent}% applied, seed {seed}"
            );
            assert!(states > 0);
        }
    }
    assert_eq!(decide_power_loss(0, 3, true).0, Verdict::Invalid);
}

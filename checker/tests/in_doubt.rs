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

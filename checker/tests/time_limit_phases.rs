//! `--time-limit` covers every phase of a check, not only the search: a budget that is already
//! spent stops reading, parsing or partitioning of a large history with "unknown" and names
//! the phase it cut. (No wall time is asserted: the deadlines here are in the past or zero.)

#[path = "support/kv_gen.rs"]
mod kv_gen;

use std::time::{Duration, Instant};

use minos_checker::deadline::{Deadline, Phase, TimeUp};
use minos_checker::history::{
    parse_text, parse_text_until, read_file_until, Format, Independent, ReadError,
};
use minos_checker::{check, CheckOptions, Verdict};

fn large_history() -> String {
    let spec = kv_gen::SCALE_SPECS
        .iter()
        .find(|spec| spec.name == "c20-20k-ok")
        .expect("a 20k-op workload");
    kv_gen::generate(spec)
}

#[test]
fn a_spent_budget_cuts_reading_and_parsing() {
    let text = large_history();
    let spent = Deadline(Some(Instant::now()));
    for format in [Format::PorcupineKv, Format::Auto] {
        let cut = parse_text_until(&text, "big.txt", format, Independent::Auto, &spent);
        assert_eq!(cut.unwrap_err(), ReadError::TimeUp(TimeUp(Phase::Parsing)));
    }
    let path = std::env::temp_dir().join(format!("minos-time-limit-{}.txt", std::process::id()));
    std::fs::write(&path, &text).unwrap();
    let cut = read_file_until(&path, Format::Auto, Independent::Auto, &spent);
    std::fs::remove_file(&path).unwrap();
    assert_eq!(cut.unwrap_err(), ReadError::TimeUp(TimeUp(Phase::Reading)));
    // Without a deadline the same text reads whole.
    let whole = parse_text_until(
        &text,
        "big.txt",
        Format::Auto,
        Independent::Auto,
        &Deadline::NONE,
    );
    assert_eq!(whole.unwrap().ops.len(), 20_000);
}

#[test]
fn a_zero_budget_cuts_partitioning_with_unknown() {
    let history = parse_text(&large_history(), "big.txt", Format::PorcupineKv).unwrap();
    for partition in [true, false] {
        let mut options = CheckOptions::new("kv");
        options.time_limit = Some(Duration::ZERO);
        options.partition = partition;
        let report = check(&history, &options).unwrap();
        assert_eq!(report.verdict, Verdict::Unknown);
        assert_eq!(report.unknown_reason.as_deref(), Some("time limit"));
        assert_eq!(report.cut_phase.as_deref(), Some("partitioning"));
        assert!(
            report
                .explanation_text()
                .contains("ran out while partitioning"),
            "{}",
            report.explanation_text()
        );
    }
}

#[test]
fn a_search_cut_by_the_budget_says_so() {
    // One hot key and many clients: far more than a millisecond of search.
    let spec = kv_gen::SCALE_SPECS
        .iter()
        .find(|spec| spec.name == "k1-c20-1k-bad")
        .expect("a hard workload");
    let history = parse_text(&kv_gen::generate(spec), "hot.txt", Format::PorcupineKv).unwrap();
    let mut options = CheckOptions::new("kv");
    options.time_limit = Some(Duration::from_millis(1));
    let report = check(&history, &options).unwrap();
    if report.verdict == Verdict::Unknown {
        let phase = report
            .cut_phase
            .as_deref()
            .expect("an unknown verdict names its phase");
        assert!(["partitioning", "searching"].contains(&phase), "{phase}");
    }
}

#[test]
fn hot_keys_with_many_clients_are_decided() {
    // One key, 50 and 100 clients, a put in twenty ops: neither Porcupine nor the search
    // before supply pruning decided these in 20 s. Generous limit: tests run unoptimised.
    for name in ["k1-c50-1k-ok", "k1-c50-1k-bad", "k1-c100-1k-ok"] {
        let spec = kv_gen::SCALE_SPECS
            .iter()
            .find(|spec| spec.name == name)
            .expect("a scale workload");
        let history = parse_text(&kv_gen::generate(spec), name, Format::PorcupineKv).unwrap();
        let mut options = CheckOptions::new("kv");
        options.time_limit = Some(Duration::from_secs(30));
        let report = check(&history, &options).unwrap();
        let expected = if spec.bad {
            Verdict::Invalid
        } else {
            Verdict::Valid
        };
        assert_eq!(
            report.verdict,
            expected,
            "{name}: {}",
            report.explanation_text()
        );
    }
}

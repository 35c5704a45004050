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

/// jsonl records written one after another: index and time are the record's position.
#[derive(Default)]
struct Records {
    text: String,
    count: usize,
}

impl Records {
    fn push(&mut self, process: u64, kind: &str, f: &str, key: &str, value: serde_json::Value) {
        let index = self.count;
        self.count += 1;
        self.text += &serde_json::json!({"index": index, "time": index, "process": process,
            "type": kind, "f": f, "key": key, "value": value})
        .to_string();
        self.text.push('\n');
    }
}

/// A register key: `writers` in-doubt writes of the values 1..=writers, all called at the
/// start and never completed, then the reads of `reads`, one after another. Each read of v
/// can be explained only by the write of v, which may take effect once.
fn register_history(writers: u64, reads: &[i64]) -> String {
    let mut records = Records::default();
    let mut push = |process, kind, f, value| records.push(process, kind, f, "r", value);
    for writer in 1..=writers {
        push(writer, "invoke", "write", serde_json::json!(writer));
    }
    for (reader, &value) in reads.iter().enumerate() {
        let process = 1000 + reader as u64;
        push(process, "invoke", "read", serde_json::Value::Null);
        push(process, "ok", "read", serde_json::json!(value));
    }
    records.text
}

fn check_register(text: &str) -> minos_checker::CheckReport {
    let history = parse_jsonl(text, "register").expect("generated histories parse");
    check(&history, &CheckOptions::new("register")).expect("fits the model")
}

/// In-doubt writes wait until just before a read that needs their value (a later write
/// overwrites them; see the search's deferral): forty of them are not explored as subsets.
#[test]
fn forty_in_doubt_writes_are_deferred_to_the_reads_that_need_them() {
    let valid = check_register(&register_history(40, &[5, 17, 3, 40, 22]));
    assert_eq!(valid.verdict, Verdict::Valid);
    assert!(
        valid.partitions[0].states_explored < 1_000,
        "{} states",
        valid.partitions[0].states_explored
    );
    // The write of 5 may take effect once: 5, 17, then 5 again cannot be.
    let invalid = check_register(&register_history(40, &[5, 17, 5]));
    assert_eq!(invalid.verdict, Verdict::Invalid);
    assert!(
        invalid.partitions[0].states_explored < 100_000,
        "{} states",
        invalid.partitions[0].states_explored
    );
    let counterexample = invalid.counterexample.expect("invalid: explained");
    assert!(counterexample.never_legal.is_none(), "5 was written");
}

/// A read of a value that nothing writes is found before any search, with why, however many
/// in-doubt writes come before it; its explanation is that read alone.
#[test]
fn a_read_of_a_value_never_written_is_found_before_the_search() {
    let report = check_register(&register_history(60, &[7, 99]));
    assert_eq!(report.verdict, Verdict::Invalid);
    let counterexample = report.counterexample.expect("invalid: explained");
    let never = counterexample.never_legal.expect("found before the search");
    assert_eq!(
        (never.op.f.as_str(), &never.op.result),
        ("read", &serde_json::json!(99))
    );
    assert!(
        never
            .reason
            .contains("no write or cas called before it completed sets 99"),
        "{}",
        never.reason
    );
    let core: Vec<u64> = counterexample.core.iter().map(|op| op.index).collect();
    assert_eq!(core, [never.op.index]);
    assert!(counterexample
        .text
        .contains("This op can never take effect, whatever the other ops did"));
    // The same read of 7 is fine: the write of 7 is in doubt, and may have happened.
    assert_eq!(
        check_register(&register_history(60, &[7])).verdict,
        Verdict::Valid
    );
}

/// A counter read of a total that no sum of the adds called before it reaches is found
/// before any search too.
#[test]
fn a_counter_read_out_of_reach_of_every_sum_of_adds_is_found_before_the_search() {
    let mut records = Records::default();
    for (process, kind, f, value) in [
        (1, "invoke", "add", serde_json::json!(2)),
        (2, "invoke", "add", serde_json::json!(4)),
        (3, "invoke", "read", serde_json::Value::Null),
        (3, "ok", "read", serde_json::json!(5)),
    ] {
        records.push(process, kind, f, "c", value);
    }
    let history = parse_jsonl(&records.text, "counter").unwrap();
    let report = check(&history, &CheckOptions::new("counter")).unwrap();
    assert_eq!(report.verdict, Verdict::Invalid);
    let never = report
        .counterexample
        .unwrap()
        .never_legal
        .expect("before the search");
    assert!(
        never.reason.contains("needs the counter at 5"),
        "{}",
        never.reason
    );
}

/// Twelve in-doubt writes of p and twelve in-doubt cas from p to 100 + p, then reads of 101,
/// 102 and 101 again: each read needs a write and then a cas, and the cas to 101 may take
/// effect once, so the last read cannot be. A block of deferred writes holds one (a register's
/// writes overwrite each other): 81 million search steps without that, about a million with.
#[test]
fn deferred_register_writes_are_tried_one_at_a_time() {
    let mut records = Records::default();
    let mut push = |process, kind, f, value| records.push(process, kind, f, "r", value);
    for p in 1..=12u64 {
        push(p, "invoke", "write", serde_json::json!(p));
        push(100 + p, "invoke", "cas", serde_json::json!([p, 100 + p]));
    }
    for (reader, value) in [101, 102, 101].into_iter().enumerate() {
        let process = 1000 + reader as u64;
        push(process, "invoke", "read", serde_json::Value::Null);
        push(process, "ok", "read", serde_json::json!(value));
    }
    let history = parse_jsonl(&records.text, "blocks").unwrap();
    let report = check(&history, &CheckOptions::new("cas-register")).unwrap();
    assert_eq!(report.verdict, Verdict::Invalid);
    assert!(
        report.partitions[0].search_steps < 10_000_000,
        "{} steps",
        report.partitions[0].search_steps
    );
}

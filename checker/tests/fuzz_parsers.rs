//! Seeded mutation fuzzing of every history reader (jsonl, Jepsen/Knossos EDN, Porcupine etcd
//! and kv logs, the jepsen.independent split, pairing) and of the checker behind them:
//! mutated corpus histories (../shared/corpus or MINOS_CORPUS, when present) and generated
//! ones must give a verdict or an input error, never a panic, an abort or a hang. Seeds are
//! fixed and the number of cases bounded, so a failure reproduces from its printed seed.

#[path = "support/corpus.rs"]
#[allow(dead_code)] // the shared corpus helpers; this test reads only the file list
mod corpus;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use minos_checker::fxhash::splitmix64;
use minos_checker::history::{parse_text, parse_text_with, Format, Independent};
use minos_checker::{check, CheckOptions};

/// Mutants per seed history; seeds are the corpus files and the generated histories.
const MUTANTS_PER_SEED: u64 = 24;

struct Rng(u64);

impl Rng {
    fn below(&mut self, bound: usize) -> usize {
        (splitmix64(&mut self.0) % bound.max(1) as u64) as usize
    }
}

/// Fragments that reach the readers' corners: structure, escapes, numbers at the edges,
/// line endings, markers of every format.
const FRAGMENTS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    "(",
    ")",
    "\"",
    "\\",
    ";",
    ",",
    ":",
    "#",
    "#{",
    "#_",
    "#inst ",
    "\n",
    "\r",
    "\r\n",
    "\u{feff}",
    "\t",
    " ",
    "nil",
    "null",
    ":nemesis",
    "\"nemesis\"",
    ":invoke",
    ":ok",
    ":fail",
    ":info",
    "\"invoke\"",
    "\"ok\"",
    "\"info\"",
    "-1",
    "0",
    "18446744073709551615",
    "18446744073709551616",
    "-9223372036854775808",
    "1e309",
    "1.5",
    "NaN",
    "\\u0000",
    "\\ud800",
    "é",
    "\u{10ffff}",
    "INFO  jepsen.util - ",
    "jepsen.util - 1\t:ok\t:read\t",
    ":f :cas",
    ":value [1 2]",
    "\"value\":[1,2]",
    "\"key\":7",
    "\"process\":\"c1\"",
    ":key \"k\"",
    "[1 nil]",
    "[:k nil]",
];

fn mutate(text: &str, rng: &mut Rng) -> String {
    let mut bytes = text.as_bytes().to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(bytes.len() + 1);
        match rng.below(7) {
            0 if !bytes.is_empty() => {
                let at = at.min(bytes.len() - 1);
                bytes[at] ^= 1 << rng.below(8);
            }
            1 if !bytes.is_empty() => {
                let end = (at + 1 + rng.below(64)).min(bytes.len());
                bytes.drain(at.min(end)..end);
            }
            2 => {
                let fragment = FRAGMENTS[rng.below(FRAGMENTS.len())];
                bytes.splice(at..at, fragment.bytes());
            }
            3 if !bytes.is_empty() => {
                // Duplicate a stretch (records twice, brackets twice).
                let start = at.min(bytes.len() - 1);
                let end = (start + 1 + rng.below(200)).min(bytes.len());
                let copy = bytes[start..end].to_vec();
                bytes.splice(end..end, copy);
            }
            4 => {
                let depth = [10, 127, 129, 5_000, 60_000][rng.below(5)];
                let (open, close) = [("[", "]"), ("(", ")"), ("{", "}"), ("#{", "}")][rng.below(4)];
                let nested = format!("{}1{}", open.repeat(depth), close.repeat(depth));
                bytes.splice(at..at, nested.bytes());
            }
            5 => {
                // Line endings of another platform.
                let text = String::from_utf8_lossy(&bytes).into_owned();
                let ending = ["\r", "\r\n", "\n"][rng.below(3)];
                bytes = text
                    .replace("\r\n", "\n")
                    .replace('\n', ending)
                    .into_bytes();
            }
            _ => {
                let long = "x".repeat(1 + rng.below(100_000));
                bytes.splice(at..at, long.bytes());
            }
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Reads `text` in every format and checks what reads; a panic fails with the case named.
fn exercise(text: &str, case: &str) {
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        for format in [
            Format::Auto,
            Format::Jsonl,
            Format::Edn,
            Format::EtcdLog,
            Format::PorcupineKv,
        ] {
            for independent in [Independent::Auto, Independent::Yes] {
                let Ok(history) = parse_text_with(text, "fuzz", format, independent) else {
                    continue;
                };
                if history.ops.len() > 400 || format != Format::Auto {
                    continue;
                }
                // One model per text (by its length), so every model is reached across cases.
                let models = [
                    "cas-register",
                    "counter",
                    "kv",
                    "multi-register",
                    "fifo-queue",
                ];
                let model = models[text.len() % models.len()];
                let mut options = CheckOptions::new(model);
                options.time_limit = Some(Duration::from_millis(100));
                options.memory_limit_bytes = Some(64 << 20);
                options.threads = 1;
                if let Ok(report) = check(&history, &options) {
                    let _ = report.explanation_text();
                    let _ = serde_json::to_string(&report).expect("reports serialize");
                }
            }
        }
    }));
    if let Err(panic) = outcome {
        let message = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        panic!("{case}: a reader or the checker panicked: {message}");
    }
}

/// Small histories of every format, written here, so the test means something without the
/// corpus too.
fn generated(seed: u64) -> Vec<String> {
    let mut rng = Rng(seed);
    let mut jsonl = String::new();
    let mut log = String::new();
    let mut edn = String::from("[");
    let mut kv = String::new();
    for index in 0..20u64 {
        let process = rng.below(3);
        let kind = ["invoke", "ok", "info", "fail"][rng.below(4)];
        let f = ["read", "write", "cas"][rng.below(3)];
        let value = rng.below(3);
        jsonl.push_str(&format!(
            "{{\"index\":{index},\"time\":{index},\"process\":{process},\"type\":\"{kind}\",\"f\":\"{f}\",\"key\":\"k{}\",\"value\":{value}}}\n",
            rng.below(2)
        ));
        log.push_str(&format!(
            "INFO  jepsen.util - {process}\t:{kind}\t:{f}\t{value}\n"
        ));
        edn.push_str(&format!(
            "{{:process {process}, :type :{kind}, :f :{f}, :value [{} {value}]}}\n",
            rng.below(2)
        ));
        kv.push_str(&format!(
            "{{:process {process}, :type :{kind}, :f :{}, :key \"{}\", :value \"{value}\"}}\n",
            ["get", "put", "append"][rng.below(3)],
            rng.below(2)
        ));
    }
    edn.push(']');
    vec![jsonl, log, edn, kv]
}

#[test]
fn mutated_generated_histories_never_panic() {
    for seed in 0..8u64 {
        for (number, text) in generated(seed).into_iter().enumerate() {
            exercise(&text, &format!("generated seed {seed} #{number}"));
            let mut rng = Rng(seed * 1_000 + number as u64);
            for mutant in 0..MUTANTS_PER_SEED {
                let mutated = mutate(&text, &mut rng);
                exercise(
                    &mutated,
                    &format!("generated seed {seed} #{number} mutant {mutant}"),
                );
            }
        }
    }
}

#[test]
fn mutated_corpus_histories_never_panic() {
    let Some(cases) = corpus::cases() else {
        eprintln!(
            "\n*** SKIPPED: corpus not found at {} (set MINOS_CORPUS) ***\n",
            corpus::corpus_dir().display()
        );
        return;
    };
    let mut mutants = 0;
    // Every sixth corpus history, so the run stays short; the seed picks which.
    for (number, case) in cases
        .iter()
        .enumerate()
        .filter(|(number, _)| number % 6 == 0)
    {
        let Ok(text) = std::fs::read_to_string(&case.path) else {
            continue;
        };
        // Keep the mutants small enough to check: the first records only.
        let head: String = text.chars().take(6_000).collect();
        let mut rng = Rng(0x5eed ^ number as u64);
        for mutant in 0..MUTANTS_PER_SEED / 2 {
            let mutated = mutate(&head, &mut rng);
            exercise(&mutated, &format!("{} mutant {mutant}", case.file));
            mutants += 1;
        }
    }
    // The readers alone on whole files, unmutated but with every other line ending.
    for case in cases.iter().step_by(7) {
        let Ok(text) = std::fs::read_to_string(&case.path) else {
            continue;
        };
        for ending in ["\r", "\r\n"] {
            let converted = text.replace('\n', ending);
            let original = parse_text(&text, "a", Format::Auto).map(|h| h.ops.len());
            let again = parse_text(&converted, "b", Format::Auto).map(|h| h.ops.len());
            assert_eq!(
                original.ok(),
                again.ok(),
                "{}: {ending:?} endings read differently",
                case.file
            );
        }
    }
    eprintln!("fuzz: {mutants} corpus mutants read and checked without a panic");
}

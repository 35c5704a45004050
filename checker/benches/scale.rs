//! `cargo bench -p minos-checker --bench scale [-- [--write DIR] [--time-limit S] [NAME...]]`:
//! generates the kv workloads of issue 15 deterministically (see `tests/support/kv_gen.rs`) in
//! Porcupine's kv log format and checks each per key with the default budget (or `--time-limit`),
//! printing verdict, wall time and the checker's peak search memory. With `--write DIR` it only
//! writes the histories (`DIR/NAME.txt`), so that other tools (Porcupine) and `minos check
//! --format porcupine-kv --model kv` can be measured on the same files. Names filter by
//! substring.

#[path = "../tests/support/kv_gen.rs"]
mod kv_gen;

use std::time::{Duration, Instant};

use minos_checker::history::{parse_text, Format};
use minos_checker::{check, CheckOptions};

fn main() {
    let mut args = std::env::args().skip(1);
    let mut write_dir = None;
    let mut time_limit = None;
    let mut filters = Vec::new();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--write" => write_dir = Some(args.next().expect("--write DIR")),
            "--time-limit" => {
                let seconds: f64 = args
                    .next()
                    .and_then(|text| text.parse().ok())
                    .expect("--time-limit SECONDS");
                time_limit = Some(Duration::from_secs_f64(seconds));
            }
            // `cargo bench` passes `--bench` to every target.
            "--bench" => {}
            other => filters.push(other.to_string()),
        }
    }
    let selected = kv_gen::SCALE_SPECS.iter().filter(|spec| {
        filters.is_empty() || filters.iter().any(|f| spec.name.contains(f.as_str()))
    });
    for spec in selected {
        let text = kv_gen::generate(spec);
        if let Some(dir) = &write_dir {
            std::fs::create_dir_all(dir).expect("create the output directory");
            let path = std::path::Path::new(dir).join(format!("{}.txt", spec.name));
            std::fs::write(&path, &text).expect("write the history");
            println!("wrote {}", path.display());
            continue;
        }
        let started = Instant::now();
        let history =
            parse_text(&text, spec.name, Format::PorcupineKv).expect("generated input parses");
        let mut options = CheckOptions::new("kv");
        if time_limit.is_some() {
            options.time_limit = time_limit;
        }
        let report = check(&history, &options).expect("fits the kv model");
        let elapsed = started.elapsed();
        let expected = if spec.bad { "invalid" } else { "valid" };
        println!(
            "{:<16} ops {:>7} clients {:>3} keys {:>2}  {:<8} (expected {expected})  {:>8.3} s  peak search memory {:>6.1} MB",
            spec.name,
            spec.ops,
            spec.clients,
            spec.keys,
            report.verdict.as_str(),
            elapsed.as_secs_f64(),
            report.peak_memory_bytes as f64 / 1e6,
        );
    }
}

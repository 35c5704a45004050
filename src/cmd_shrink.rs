//! `minos shrink RUN_DIR`: minimise a failing run (DESIGN.md §1) with
//! `minos_workloads::shrink`, print each step, write the minimal schedule and its run under
//! `RUN_DIR/shrink/`, and print, last, the command that reproduces the minimal failure.
//!
//! A real-cluster run (`--system etcd|nats|minos-node`) shrinks too, by rerunning real
//! clusters: not bit-exact, so each candidate gets `--attempts` reruns (3 by default) and is
//! kept when one of them fails the same way; the output says so.
//!
//! Exit codes: 0 a smaller (or equally small) failing run was written; 254 RUN_DIR is missing,
//! malformed or not an invalid run, or a real run cannot start here (no root, a binary
//! missing); 255 the failure did not reproduce or a write failed; 130 interrupted.

use std::path::PathBuf;

use clap::Args;
use minos_workloads::shrink::{self, RunSize, ShrinkError, ShrinkOptions, Step};

use crate::exit;

#[derive(Args)]
pub struct ShrinkArgs {
    /// The run dir of a failing run (holds results.json and schedule.json).
    pub run_dir: PathBuf,
    /// Bound on reruns, the confirming rerun included [default: 150; 30 for real clusters,
    /// whose every rerun takes the run's real time].
    #[arg(long)]
    pub max_runs: Option<u64>,
    /// Candidate runs at once [default: the number of cores].
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Reruns per candidate until one fails the same way [default: 1 for simulated runs,
    /// which replay bit for bit; 3 for real clusters, which do not].
    #[arg(long)]
    pub attempts: Option<u32>,
}

pub(crate) fn size_text(size: &RunSize) -> String {
    let windows = match size.fault_windows_count {
        1 => "1 fault window".to_string(),
        count => format!("{count} fault windows"),
    };
    // Windows of different faults overlap, so their lengths add up to more than the run.
    format!(
        "{windows} ({:.1} s of fault time, summed over windows), {} clients, {} keys, {:.1} s, ~{} ops",
        size.fault_ms as f64 / 1e3,
        size.clients,
        size.keys,
        size.time_limit_ms as f64 / 1e3,
        size.target_ops
    )
}

pub fn main(args: ShrinkArgs) -> i32 {
    let original = match shrink::options_from_run_dir(&args.run_dir) {
        Ok(options) => options,
        Err(error) => {
            eprintln!("minos shrink: {error}");
            return exit::BAD_INPUT;
        }
    };
    let results_verdict = std::fs::read_to_string(args.run_dir.join("results.json"))
        .ok()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        .and_then(|results| results.get("verdict")?.as_str().map(str::to_string));
    if results_verdict.as_deref() != Some("invalid") {
        eprintln!(
            "minos shrink: {} is not an invalid run (verdict {}); only failures shrink",
            args.run_dir.display(),
            results_verdict.as_deref().unwrap_or("missing")
        );
        return exit::BAD_INPUT;
    }
    let out_dir = args.run_dir.join("shrink");
    let options = ShrinkOptions {
        max_runs: args
            .max_runs
            .unwrap_or(if original.system.is_real() { 30 } else { 150 }),
        jobs: args.jobs.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        }),
        scratch_dir: out_dir.join(".trials"),
        attempts: args
            .attempts
            .unwrap_or_else(|| shrink::default_attempts(&original)),
    };
    if options.attempts == 0 {
        eprintln!("minos shrink: --attempts must be at least 1");
        return exit::BAD_INPUT;
    }
    if original.system.is_real() {
        println!(
            "minos shrink: a real {} cluster: reruns are real runs in real time, not bit-exact replays; each candidate is rerun up to {} time(s) and kept when one rerun fails the same way (a dropped candidate was not seen to fail, which does not prove it cannot); expect about {} s per rerun",
            original.system.name(),
            options.attempts,
            original.time_limit_ms / 1000 + 2
        );
    }
    println!(
        "minos shrink: {} (seed {}): {}",
        args.run_dir.display(),
        original.seed,
        size_text(&RunSize::of(&original))
    );
    let on_step = |step: &Step<'_>| {
        println!(
            "[{}/{}] {}: {}",
            step.runs_count,
            step.max_runs,
            step.description,
            if step.kept {
                format!("still fails, kept -> {}", size_text(step.size))
            } else {
                "no longer fails the same way".to_string()
            }
        );
    };
    let result = match shrink::shrink(&original, &options, &on_step) {
        Ok(result) => result,
        Err(error) => {
            eprintln!("minos shrink: {error}");
            return match error {
                ShrinkError::BadInput(_) => exit::BAD_INPUT,
                ShrinkError::Interrupted => exit::INTERRUPTED,
                ShrinkError::NotReproduced(_) | ShrinkError::Io(_) => exit::INTERNAL,
            };
        }
    };
    println!("failure kept: {}", result.signature.shrink_key());
    println!("before: {}", size_text(&result.original_size));
    println!("after:  {}", size_text(&result.minimal_size));
    println!(
        "{} reruns{}{}",
        result.runs_count,
        if result.attempts > 1 {
            format!(" (up to {} per candidate: not bit-exact)", result.attempts)
        } else {
            String::new()
        },
        if result.budget_exhausted {
            " (budget exhausted: --max-runs for more)"
        } else {
            ""
        }
    );
    let (outcome, minimal) = match shrink::write_minimal(&result, &out_dir) {
        Ok(written) => written,
        Err(error) => {
            eprintln!("minos shrink: {error}");
            return exit::INTERNAL;
        }
    };
    if let Err(error) = minos_reports::write_run_report(&outcome.run_dir) {
        eprintln!("minos shrink: report not written: {error}");
    }
    if let Some(explanation) = &outcome.explanation {
        println!("{explanation}");
    }
    println!(
        "minimal schedule {}",
        minimal
            .schedule_path
            .as_ref()
            .expect("write_minimal sets it")
            .display()
    );
    println!(
        "minimal run dir {} (verdict {})",
        outcome.run_dir.display(),
        outcome.verdict.as_str()
    );
    // The minimal run's own command: it names that run's copy of the schedule, which a later
    // shrink of the same run cannot overwrite.
    println!("{}", outcome.reproduce);
    exit::VALID
}

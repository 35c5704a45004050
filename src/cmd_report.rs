//! `minos report DIR`: rebuild the reports of every run found under DIR (a run dir, a test dir,
//! a campaign dir or the whole store), re-checking stored histories when the checker can.
//! Exit code: the campaign rule over the runs (0 all valid, 1 any invalid, 2 otherwise unknown);
//! 254 when DIR is missing or holds no run, or a run's history cannot be read or is refused by
//! the checker (that run is then unknown); 255 when a report could not be written.

use std::path::PathBuf;

use clap::Args;
use minos_reports::recheck::Recheck;
use minos_reports::results::Verdict;
use minos_reports::{rebuild, RebuildOptions, ReportError};

use crate::exit;

#[derive(Args)]
pub struct ReportArgs {
    /// A run dir, a test dir, a campaign dir or the store.
    pub dir: PathBuf,
    /// Keep the stored verdicts instead of re-running the checker on the stored histories.
    #[arg(long)]
    pub no_recheck: bool,
}

pub fn main(args: ReportArgs) -> i32 {
    let options = RebuildOptions {
        recheck: !args.no_recheck,
    };
    let rebuilt = match rebuild(&args.dir, &options) {
        Ok(r) => r,
        Err(
            error @ (ReportError::NothingFound(_)
            | ReportError::Io { .. }
            | ReportError::NotARunDir(_)),
        ) => {
            eprintln!("minos report: {error}");
            return exit::BAD_INPUT;
        }
        Err(error) => {
            eprintln!("minos report: {error}");
            return exit::INTERNAL;
        }
    };
    let mut counts = [0usize; 3];
    for run in &rebuilt.runs {
        let recheck = match &run.recheck {
            Some(Recheck::Rechecked {
                before: Some(b),
                after,
            }) if b != after => format!(" (re-checked: was {})", b.name()),
            Some(Recheck::Rechecked { .. }) => " (re-checked)".to_string(),
            Some(Recheck::Refused(_)) => " (history not checked)".to_string(),
            Some(Recheck::Kept(_)) | None => " (stored verdict)".to_string(),
        };
        match &run.result {
            Ok(summary) => {
                counts[summary.verdict as usize] += 1;
                println!(
                    "{}: {}{recheck}, {} ops -> {}",
                    run.dir.display(),
                    summary.verdict.name(),
                    summary.ops_count,
                    run.dir.join("index.html").display()
                );
            }
            Err(error) => eprintln!("{}: report failed: {error}", run.dir.display()),
        }
    }
    for (dir, recorded) in &rebuilt.changed_histories {
        println!(
            "warning: {}: history.jsonl was changed after the run (recorded SHA-256 {recorded})",
            dir.display()
        );
    }
    if !rebuilt.pruned.is_empty() {
        println!(
            "{} valid runs kept only results.json (--keep failures): left as they are",
            rebuilt.pruned.len()
        );
    }
    if let Some(Recheck::Kept(why)) = rebuilt.runs.iter().find_map(|r| r.recheck.clone()) {
        println!("note: verdicts not re-checked: {why}");
    }
    for (dir, result) in &rebuilt.campaigns {
        match result {
            Ok(s) => println!(
                "campaign {}: {} of {} runs -> {}",
                dir.display(),
                s.verdict().name(),
                s.runs_count,
                dir.join("index.html").display()
            ),
            Err(error) => eprintln!("campaign {}: report failed: {error}", dir.display()),
        }
    }
    if let Some((dir, result)) = &rebuilt.store_index {
        match result {
            Ok(()) => println!("store index -> {}", dir.join("index.html").display()),
            Err(error) => eprintln!("store index {}: failed: {error}", dir.display()),
        }
    }
    println!(
        "{} runs: {} valid, {} invalid, {} unknown",
        rebuilt.runs.len(),
        counts[Verdict::Valid as usize],
        counts[Verdict::Invalid as usize],
        counts[Verdict::Unknown as usize]
    );
    if rebuilt.errors_count() > 0 {
        return exit::INTERNAL;
    }
    // A history that could not be read or checked is bad input (DESIGN.md §2).
    let refused: Vec<&str> = rebuilt
        .runs
        .iter()
        .filter_map(|run| match &run.recheck {
            Some(Recheck::Refused(why)) => Some(why.as_str()),
            _ => None,
        })
        .collect();
    if !refused.is_empty() {
        for why in &refused {
            eprintln!("minos report: {why}");
        }
        return exit::BAD_INPUT;
    }
    match rebuilt.verdict() {
        Verdict::Valid => exit::VALID,
        Verdict::Invalid => exit::INVALID,
        Verdict::Unknown => exit::UNKNOWN,
    }
}

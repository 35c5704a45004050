//! `minos selftest`: runs every planted bug under its exposure profile, and the correct build
//! under all of them, and shows what the harness catches (DESIGN.md §1). Exit 0 only when
//! every planted bug is caught and the correct build is clean; 1 otherwise.

use std::path::PathBuf;

use clap::Args;
use minos_workloads::selftest::{
    bug_profile, median_seeds_to_detection, run_selftest, BugResult, BugStatus, SelftestOptions,
    SelftestReport, ShrunkRun, GENERIC_TIME_LIMIT_MS,
};
use minos_workloads::shrink::{self, ShrinkOptions};

use crate::exit;

#[derive(Args)]
pub struct SelftestArgs {
    /// Seeds per bug (a bug's campaign stops at its first detection), and runs of the correct
    /// build (spread over every bug's faults).
    #[arg(long, default_value_t = 20)]
    seeds: u64,
    /// Runs in parallel [default: the number of cores].
    #[arg(long)]
    jobs: Option<usize>,
    /// The first seed (run i uses seed-base + i): another base gives an independent campaign.
    #[arg(long, default_value_t = 1)]
    seed_base: u64,
    /// Only this bug (repeatable); default: every bug. The planted bugs with a bespoke
    /// schedule: stale-local-read, read-before-noop, lease-no-drift-bound, commit-old-term,
    /// volatile-vote, ack-before-commit, ack-by-index, no-dedup, stale-term-append,
    /// truncate-without-conflict, vote-index-only, ack-before-fsync, snapshot-loses-index,
    /// membership-no-rule, no-prevote-checkquorum; without one (scored by --generic only):
    /// follower-commit-past-new, ack-last-index, match-from-next-index,
    /// append-skips-prev-term, reply-term-unchecked, stale-vote-counted, commit-median-even,
    /// read-quorum-off-by-one, snapshot-no-sessions, dedup-last-only,
    /// restart-commits-whole-log, snapshot-skip-by-index (node/src/bugs.rs says what each
    /// imitates).
    #[arg(long = "bug", value_name = "NAME")]
    bugs: Vec<String>,
    /// Score the generic harness: every bug also under the generic campaign (`--nemesis
    /// all`, `minos run`'s defaults otherwise, 30 s runs, no bug-specific schedule), seeds to
    /// first detection beside the bespoke schedule's, with the median; the correct build runs
    /// the generic profile on every seed. Generic misses are the score, not a failure: the
    /// exit code is 1 only if a bespoke schedule misses or the correct build is flagged.
    #[arg(long)]
    generic: bool,
    /// Leave this bug out (repeatable), e.g. a known gap that CI should not block on.
    #[arg(long = "except", value_name = "NAME")]
    except: Vec<String>,
    /// Skip the correct build's runs.
    #[arg(long)]
    no_correct: bool,
    /// Run only the correct build (e.g. `--seeds 1000 --correct-only` for a long clean run).
    #[arg(long, conflicts_with_all = ["no_correct", "bugs"])]
    correct_only: bool,
    /// Where run directories go.
    #[arg(long, default_value = "store/selftest")]
    out: PathBuf,
    /// Also write the HTML report of every detecting run.
    #[arg(long)]
    report: bool,
    /// Also shrink every detecting run (as `minos shrink` does, at most this many reruns each)
    /// and link the minimal reproduction.
    #[arg(long, value_name = "MAX_RUNS")]
    shrink: Option<u64>,
    /// Print the result as JSON instead of a table.
    #[arg(long)]
    json: bool,
}

pub fn main(args: SelftestArgs) -> i32 {
    if args.seeds == 0 {
        eprintln!("minos selftest: --seeds must be at least 1");
        return exit::BAD_INPUT;
    }
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
    if jobs == 0 {
        eprintln!("minos selftest: --jobs must be at least 1");
        return exit::BAD_INPUT;
    }
    // Refuse unknown names before anything is printed (run_selftest checks them too).
    for name in args.bugs.iter().chain(&args.except) {
        if name.parse::<minos_node::bugs::Bug>().is_err() {
            let known: Vec<&str> = minos_node::bugs::Bug::ALL
                .iter()
                .map(|bug| bug.name())
                .collect();
            eprintln!(
                "minos selftest: unknown bug {name:?}; the planted bugs are: {}",
                known.join(", ")
            );
            return exit::BAD_INPUT;
        }
        let bespoke = name
            .parse::<minos_node::bugs::Bug>()
            .is_ok_and(|bug| bug_profile(bug).is_some());
        if !args.generic && !bespoke {
            eprintln!(
                "minos selftest: bug {name:?} has no bespoke schedule; score it with --generic"
            );
            return exit::BAD_INPUT;
        }
        if args.bugs.contains(name) && args.except.contains(name) {
            eprintln!(
                "minos selftest: bug {name:?} is both asked for (--bug) and left out (--except)"
            );
            return exit::BAD_INPUT;
        }
    }
    let options = SelftestOptions {
        seeds: args.seeds,
        seed_base: args.seed_base,
        jobs,
        out_dir: args.out.clone(),
        only: args.bugs.clone(),
        except: args.except.clone(),
        skip_correct: args.no_correct,
        skip_bugs: args.correct_only,
        generic: args.generic,
    };
    if !args.json {
        eprintln!(
            "minos selftest: up to {} seeds per bug from seed {}, {} jobs, runs under {}",
            args.seeds,
            args.seed_base,
            jobs,
            args.out.display()
        );
    }
    // A planted bug may trip a node's own assertion: the run is then reported as an error,
    // and its panic message goes into the table instead of onto the terminal.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result = run_selftest(&options);
    std::panic::set_hook(default_hook);
    let mut report = match result {
        Ok(report) => report,
        Err(error) => {
            eprintln!("minos selftest: {error}");
            return exit::BAD_INPUT;
        }
    };
    if let Some(max_runs) = args.shrink {
        for bug in &mut report.bugs {
            bug.shrunk = shrink_detection(bug, max_runs, jobs, &args.out);
        }
    }
    if args.report {
        for bug in &report.bugs {
            if let Some(run_dir) = bug.detection.as_ref().and_then(|run| run.run_dir.as_ref()) {
                if let Err(error) = minos_reports::write_run_report(run_dir) {
                    eprintln!("minos selftest: report of {}: {error}", run_dir.display());
                }
            }
        }
    }
    if args.json {
        match serde_json::to_string_pretty(&report) {
            Ok(text) => println!("{text}"),
            Err(error) => {
                eprintln!("minos selftest: cannot serialize the report: {error}");
                return exit::INTERNAL;
            }
        }
    } else if report.generic.is_some() {
        print_generic_table(&report);
    } else {
        print_table(&report);
    }
    if report.ok {
        exit::VALID
    } else {
        exit::INVALID
    }
}

/// Shrinks the detecting run of `bug`, if any; failures to shrink are noted on stderr.
fn shrink_detection(
    bug: &BugResult,
    max_runs: u64,
    jobs: usize,
    out: &std::path::Path,
) -> Option<ShrunkRun> {
    let run = bug.detection.as_ref()?;
    let run_dir = run.run_dir.as_ref()?;
    let profile = bug_profile(bug.bug.parse().ok()?)?;
    let mut original = profile.run_options(run.seed, out);
    if original.schedule.is_none() {
        // A generated schedule: the shrinker cuts the one the run recorded.
        let path = run_dir.join("schedule.json");
        match minos_workloads::Schedule::read_file(&path) {
            Ok(schedule) => {
                original.schedule = Some(schedule);
                original.schedule_path = Some(path);
            }
            Err(error) => {
                eprintln!("minos selftest: {}: cannot shrink: {error}", bug.bug);
                return None;
            }
        }
    }
    let options = ShrinkOptions {
        max_runs,
        jobs,
        scratch_dir: run_dir.join(".shrink-trials"),
        attempts: shrink::default_attempts(&original),
    };
    let shrunk = shrink::shrink(&original, &options, &|_| {}).and_then(|result| {
        let (outcome, _) = shrink::write_minimal(&result, &run_dir.join("shrink"))?;
        Ok((result, outcome))
    });
    let _ = std::fs::remove_dir_all(run_dir.join(".shrink-trials"));
    match shrunk {
        Ok((result, outcome)) => Some(ShrunkRun {
            run_dir: outcome.run_dir,
            // The minimal run's own command, naming its own copy of the schedule.
            reproduce: outcome.reproduce,
            before: crate::cmd_shrink::size_text(&result.original_size),
            after: crate::cmd_shrink::size_text(&result.minimal_size),
        }),
        Err(error) => {
            eprintln!("minos selftest: {}: shrink failed: {error}", bug.bug);
            None
        }
    }
}

fn print_table(report: &SelftestReport) {
    println!(
        "{:<26} {:<27} {:>6}  anomaly seen / faults",
        "bug", "result", "seeds"
    );
    for bug in &report.bugs {
        let seeds = match (bug.status, bug.seeds_to_detection) {
            (BugStatus::Caught, Some(seeds)) => format!("{seeds}"),
            (BugStatus::NotCaught, _) => format!(">{}", bug.seeds_run),
            _ => "-".to_string(),
        };
        let seen = match &bug.detection {
            Some(run) => run.anomaly.clone().unwrap_or_default(),
            None => format!("expected: {}", bug.expected),
        };
        println!(
            "{:<26} {:<27} {:>6}  {}",
            bug.bug,
            bug.status.label(),
            seeds,
            shorten(&seen, 150)
        );
        println!("{:<26} {:<27} {:>6}  faults: {}", "", "", "", bug.faults);
        if let Some(run) = &bug.detection {
            if let Some(run_dir) = &run.run_dir {
                println!(
                    "{:<26} {:<27} {:>6}  run: {}",
                    "",
                    "",
                    "",
                    run_dir.display()
                );
            }
        }
        if let Some(reproduce) = bug
            .detection
            .as_ref()
            .and_then(|run| run.reproduce.as_ref())
        {
            println!("{:<26} {:<27} {:>6}  replay: {}", "", "", "", reproduce);
        }
        if let Some(shrunk) = &bug.shrunk {
            println!(
                "{:<26} {:<27} {:>6}  shrunk: {} ({} -> {})",
                "",
                "",
                "",
                shrunk.run_dir.display(),
                shrunk.before,
                shrunk.after
            );
        }
        if !bug.errors.is_empty() {
            println!(
                "{:<26} {:<27} {:>6}  {} run(s) ended in an error, first: {}",
                "",
                "",
                "",
                bug.errors.len(),
                shorten(bug.errors[0].anomaly.as_deref().unwrap_or(""), 120)
            );
        }
    }
    if let Some(correct) = &report.correct {
        let status = if correct.failures.is_empty() {
            "clean"
        } else {
            "NOT CLEAN"
        };
        println!(
            "{:<26} {:<27} {:>6}  {} of {} runs valid",
            "correct build", status, correct.runs, correct.valid, correct.runs
        );
        for failure in &correct.failures {
            println!(
                "{:<26} {:<27} {:>6}  seed {} {}: {}",
                "",
                "",
                "",
                failure.seed,
                failure.verdict,
                shorten(failure.anomaly.as_deref().unwrap_or(""), 150)
            );
            if let Some(reproduce) = &failure.reproduce {
                println!("{:<26} {:<27} {:>6}  {}", "", "", "", reproduce);
            }
        }
    }
    if !report.unscheduled.is_empty() {
        println!(
            "no bespoke schedule (scored by --generic only): {}",
            report.unscheduled.join(", ")
        );
    }
    let caught = report
        .bugs
        .iter()
        .filter(|bug| bug.status == BugStatus::Caught)
        .count();
    println!(
        "selftest {}: {caught} of {} bugs caught; {:.1} s",
        if report.ok { "passed" } else { "FAILED" },
        report.bugs.len(),
        report.wall_ms as f64 / 1e3
    );
}

/// `--generic`: one row per bug, the bespoke schedule's seeds beside the generic campaign's.
fn print_generic_table(report: &SelftestReport) {
    let generic = report.generic.as_deref().unwrap_or_default();
    println!(
        "generic campaign: --nemesis all, minos run defaults otherwise, {} s runs, up to {} seeds per bug from seed {}",
        GENERIC_TIME_LIMIT_MS / 1000,
        report.seeds,
        report.seed_base
    );
    println!(
        "{:<26} {:>16} {:>18}  first generic detection",
        "bug", "bespoke (seeds)", "generic (seeds)"
    );
    for result in generic {
        let bespoke = match report.bugs.iter().find(|bug| bug.bug == result.bug) {
            Some(bug) => match bug.seeds_to_detection {
                Some(seeds) => seeds.to_string(),
                None => format!("missed in {}", bug.seeds_run),
            },
            None => "-".to_string(),
        };
        let seeds = match result.seeds_to_detection {
            Some(seeds) => seeds.to_string(),
            None => format!("missed in {}", result.seeds_run),
        };
        let seen = match &result.detection {
            Some(run) => format!(
                "seed {}: {}",
                run.seed,
                shorten(run.anomaly.as_deref().unwrap_or(""), 110)
            ),
            None if !result.errors.is_empty() => format!(
                "{} run(s) ended in an error, first: {}",
                result.errors.len(),
                shorten(result.errors[0].anomaly.as_deref().unwrap_or(""), 90)
            ),
            None => String::new(),
        };
        println!("{:<26} {:>16} {:>18}  {}", result.bug, bespoke, seeds, seen);
    }
    let caught = generic
        .iter()
        .filter(|bug| bug.status == BugStatus::Caught)
        .count();
    println!(
        "median seeds to first detection (generic, a miss counting as more than the seeds run): {}; caught {caught} of {}",
        median_seeds_to_detection(generic).unwrap_or_else(|| "-".to_string()),
        generic.len()
    );
    if let Some(correct) = &report.correct {
        let status = if correct.failures.is_empty() {
            "clean"
        } else {
            "NOT CLEAN"
        };
        println!(
            "correct build under the generic campaign: {status}, {} of {} runs valid",
            correct.valid, correct.runs
        );
        for failure in &correct.failures {
            println!(
                "  seed {} {}: {}",
                failure.seed,
                failure.verdict,
                shorten(failure.anomaly.as_deref().unwrap_or(""), 150)
            );
        }
    }
    let bespoke_missed = report
        .bugs
        .iter()
        .filter(|bug| bug.status == BugStatus::NotCaught)
        .count();
    println!(
        "selftest --generic {}: bespoke schedules missed {bespoke_missed}; {:.1} s",
        if report.ok { "passed" } else { "FAILED" },
        report.wall_ms as f64 / 1e3
    );
}

fn shorten(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_string();
    }
    let mut short: String = text.chars().take(max_chars).collect();
    short.push('…');
    short
}

//! `minos campaign [RUN OPTIONS] --seeds A..B [--jobs N] [--shard I/N] [--budget DURATION]`:
//! one run per seed (DESIGN.md §1), in parallel, resumable, shardable. The campaign itself is
//! `minos_workloads::campaign`; here: parsing, the progress line, the reports of failing runs,
//! the campaign page, the summary and the exit code (DESIGN.md §2).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use minos_checker::Verdict;
use minos_workloads::campaign::progress::{format_duration, ProgressLine};
use minos_workloads::campaign::{
    self, CampaignOptions, CampaignSummary, Event, SeedRange, SeedStatus, Shard,
};
use minos_workloads::options::parse_duration_ms;

use crate::cmd_run::RunArgs;
use crate::exit;

#[derive(Args)]
pub struct CampaignArgs {
    #[command(flatten)]
    run: RunArgs,
    /// Seeds to run: A..B (B excluded), A..=B (B included) or one seed A.
    #[arg(long)]
    seeds: SeedRange,
    /// Runs at once [default: the number of cores].
    #[arg(long)]
    jobs: Option<usize>,
    /// Run only the I-th (1-based) of N disjoint slices of the seeds, e.g. 2/8 (CI matrix,
    /// Kubernetes Indexed Job: --shard $((JOB_COMPLETION_INDEX+1))/N).
    #[arg(long)]
    shard: Option<Shard>,
    /// Wall-clock budget (e.g. 30m, 2h): no run starts after it; seeds left make the campaign
    /// "unknown" (exit 2) unless a run is invalid. Rerun the command to continue.
    #[arg(long, value_parser = parse_duration_ms)]
    budget: Option<u64>,
    /// Campaign directory name under --out [default: campaign-<test>-<hash of the options>,
    /// the same for every shard and every rerun of the same command].
    #[arg(long)]
    name: Option<String>,
    /// Run one seed in N a second time and compare history hashes [N default: 10].
    #[arg(long, value_name = "N", num_args = 0..=1, default_missing_value = "10")]
    check_determinism: Option<u64>,
    /// all | failures: valid runs keep only results.json and schedule.json (a default run
    /// dir is ~1.5 MB; use failures for long campaigns).
    #[arg(long, default_value = "all")]
    keep: campaign::Keep,
}

pub fn main(args: CampaignArgs) -> i32 {
    if args.run.seed.is_some() {
        eprintln!("minos campaign: use --seeds A..B, not --seed");
        return exit::BAD_INPUT;
    }
    let nemesis_given = args.run.nemesis.is_some();
    let mut run = match crate::cmd_run::options_from(args.run) {
        Ok(run) => run,
        Err(error) => {
            eprintln!("minos campaign: {error}");
            return exit::BAD_INPUT;
        }
    };
    // Campaigns exist to find what nobody planned for: on the simulated store their default
    // is swarm (a fault mix, aim, timing and store knobs drawn per seed), not one fixed mix.
    if !nemesis_given && !run.system.is_real() && run.schedule.is_none() {
        run.nemesis = minos_workloads::options::NemesisSpec::All;
    }
    let no_report = run.no_report;
    let jobs = args.jobs.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    if jobs == 0 {
        eprintln!("minos campaign: --jobs must be at least 1");
        return exit::BAD_INPUT;
    }
    let name = args
        .name
        .unwrap_or_else(|| campaign::default_campaign_name(&run));
    if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') {
        eprintln!("minos campaign: --name {name:?} must be a plain directory name");
        return exit::BAD_INPUT;
    }
    let store_dir = run.out_dir.clone();
    let options = CampaignOptions {
        campaign_dir: campaign::campaign_dir(&store_dir, &name),
        run,
        seeds: args.seeds,
        shard: args.shard,
        jobs,
        budget: args.budget.map(Duration::from_millis),
        determinism_every: args.check_determinism,
        stop: Some(stop_on_signal()),
        keep: args.keep,
    };
    let slice = options.slice();
    let shard_text = match options.shard {
        Some(shard) => format!(" (shard {shard}: seeds {slice})"),
        None => String::new(),
    };
    println!(
        "minos campaign: {} seeds {}{shard_text}, {} jobs, {} -> {}",
        slice.len(),
        options.seeds,
        options.jobs,
        campaign::store::banner_options_text(&options.run),
        options.campaign_dir.display()
    );
    let progress_line = ProgressLine::new("campaign");
    let on_event = |event: Event<'_>| match event {
        Event::Resumed { progress } => {
            if progress.resumed_count > 0 {
                progress_line.message(&format!(
                    "resuming: {} of {} seeds already finished in {}",
                    progress.resumed_count,
                    progress.total_count,
                    options.campaign_dir.display()
                ));
            }
            progress_line.update(progress);
        }
        Event::Finished {
            seed,
            status,
            progress,
        } => {
            match status {
                SeedStatus::Ran(record) if record.verdict != Verdict::Valid => {
                    progress_line.message(&format!(
                        "seed {seed}: {} ({}) -> {}",
                        record.verdict.as_str(),
                        record.causes.join(", "),
                        record.run_dir.display()
                    ));
                    if !no_report {
                        if let Err(error) = minos_reports::write_run_report(&record.run_dir) {
                            progress_line
                                .message(&format!("seed {seed}: report not written: {error}"));
                        }
                    }
                }
                SeedStatus::Ran(record) => {
                    if record.determinism.as_ref().is_some_and(|check| !check.same) {
                        progress_line.message(&format!(
                            "seed {seed}: NONDETERMINISTIC: two runs gave different histories"
                        ));
                    }
                }
                SeedStatus::Error(error) => {
                    progress_line.message(&format!("seed {seed}: error: {error}"))
                }
                SeedStatus::AlreadyDone(_) => {}
            }
            progress_line.update(progress);
        }
    };
    let summary = match campaign::run_campaign(&options, &on_event) {
        Ok(summary) => summary,
        Err(error) => {
            progress_line.finish();
            eprintln!("minos campaign: {error}");
            return match error {
                campaign::CampaignError::BadInput(_) => exit::BAD_INPUT,
                campaign::CampaignError::Io(_) => exit::INTERNAL,
            };
        }
    };
    progress_line.finish();
    print_summary(&summary, &options, &store_dir);
    if !no_report {
        match minos_reports::write_campaign_report(&options.campaign_dir) {
            Ok(_) => println!(
                "campaign report {}",
                options.campaign_dir.join("index.html").display()
            ),
            Err(error) => eprintln!("minos campaign: campaign report not written: {error}"),
        }
        if let Err(error) = minos_reports::write_store_index(&store_dir) {
            eprintln!("minos campaign: store index not written: {error}");
        }
    } else if let Err(error) = minos_reports::campaign::write_campaign_junit(&options.campaign_dir)
    {
        eprintln!("minos campaign: junit.xml not written: {error}");
    }
    if options.campaign_dir.join("junit.xml").is_file() {
        println!(
            "campaign junit {}",
            options.campaign_dir.join("junit.xml").display()
        );
    }
    match summary.verdict() {
        Some(Verdict::Valid) => exit::VALID,
        Some(Verdict::Invalid) => exit::INVALID,
        Some(Verdict::Unknown) => exit::UNKNOWN,
        None => exit::INTERNAL,
    }
}

fn print_summary(
    summary: &CampaignSummary,
    options: &CampaignOptions,
    store_dir: &std::path::Path,
) {
    let rate = if summary.elapsed.as_secs_f64() > 0.0 && summary.ran_count > 0 {
        format!(
            ", {:.0} seeds/hour",
            summary.ran_count as f64 * 3600.0 / summary.elapsed.as_secs_f64()
        )
    } else {
        String::new()
    };
    println!(
        "{} seeds: {} run now, {} resumed, {} not run; {} valid, {} invalid, {} unknown, {} errors ({}{rate})",
        summary.total_count,
        summary.ran_count,
        summary.resumed_count,
        summary.not_run_count,
        summary.valid_count,
        summary.invalid_count,
        summary.unknown_count,
        summary.errors.len(),
        format_duration(summary.elapsed),
    );
    if let Some((seed, error)) = &summary.disk_full {
        println!(
            "stopped: the disk is full (seed {seed}: {error}); no run was started after it. \
             Free some space and rerun the same command to continue ({} seeds not run).",
            summary.not_run_count
        );
    } else if summary.not_run_count > 0 {
        let why = if options
            .stop
            .as_ref()
            .is_some_and(|stop| stop.load(Ordering::SeqCst))
        {
            "interrupted"
        } else {
            "budget spent"
        };
        println!(
            "{why}: {} seeds not run; rerun the same command to continue",
            summary.not_run_count
        );
    }
    for (seed, error) in summary.errors.iter().take(10) {
        println!("error seed {seed}: {error}");
    }
    if options.determinism_every.is_some() {
        if summary.nondeterministic_seeds.is_empty() {
            println!(
                "determinism: {} seeds run twice, identical histories",
                summary.determinism_checked_count
            );
        } else {
            println!(
                "determinism: NONDETERMINISTIC seeds {:?} (of {} checked)",
                summary.nondeterministic_seeds, summary.determinism_checked_count
            );
        }
    }
    print_exercised(&summary.exercised);
    if !summary.failures.is_empty() {
        println!("failures by signature ({} kinds):", summary.failures.len());
        for (signature, seeds) in &summary.failures {
            let shown: Vec<String> = seeds.iter().take(8).map(u64::to_string).collect();
            let more = if seeds.len() > 8 { ", ..." } else { "" };
            println!(
                "  {} seeds [{}{more}]: {signature}",
                seeds.len(),
                shown.join(", ")
            );
            if let Some(dir) = summary.failing_run_dirs.get(&seeds[0]) {
                // Replayed outside the campaign dir, so the replay never joins the campaign.
                let mut replay = options.run.clone();
                replay.seed = seeds[0];
                replay.out_dir = store_dir.to_path_buf();
                // With a schedule: the run's own copy (the file given may be relative or
                // edited later), from inside the run dir (see `reproduce_in_run_dir`).
                let command = if replay.schedule.is_some() {
                    replay.reproduce_in_run_dir(dir)
                } else {
                    replay.reproduce_command()
                };
                println!("    reproduce: {command}");
                println!("    shrink:    minos shrink {}", dir.display());
            }
        }
    }
}

/// Which fault kinds and timing patterns the runs exercised, and which kinds never bit.
fn print_exercised(exercised: &minos_workloads::campaign::store::Exercised) {
    if exercised.kinds.is_empty() {
        return;
    }
    let kinds: Vec<String> = exercised
        .kinds
        .iter()
        .map(|(kind, (runs, windows, bit))| {
            format!("{kind} {runs} runs/{windows} windows/{bit} bit")
        })
        .collect();
    println!("faults exercised: {}", kinds.join(", "));
    if !exercised.patterns.is_empty() {
        let patterns: Vec<String> = exercised
            .patterns
            .iter()
            .map(|(pattern, runs)| format!("{pattern} {runs} runs"))
            .collect();
        println!("timing patterns: {}", patterns.join(", "));
    }
    let never = exercised.never_bit();
    if !never.is_empty() {
        println!(
            "warning: these fault kinds never changed what the clients saw: {}",
            never.join(", ")
        );
    }
}

/// The first Ctrl-C (or SIGTERM, as a Kubernetes Job gets before it is killed) stops starting
/// runs: the runs under way finish, the summary and the campaign page are written, and the
/// same command resumes later. A second one ends the process at once (exit 130); even then
/// the finished run directories are kept and the campaign resumes from them.
fn stop_on_signal() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // The shutdown must be registered first: it only fires once the flag is already set.
        let registered =
            signal_hook::flag::register_conditional_shutdown(signal, 130, Arc::clone(&stop))
                .and_then(|_| signal_hook::flag::register(signal, Arc::clone(&stop)));
        if let Err(error) = registered {
            // Without the handler the default applies: the process ends and resumes later.
            eprintln!("minos campaign: no graceful stop on signal {signal}: {error}");
        }
    }
    stop
}

//! Campaigns (`minos campaign`): one run per seed over a seed range, in parallel (one
//! simulation per OS thread: every run is its own turmoil sim, and `crate::run` keeps no
//! global state), resumable (finished run dirs are the journal, see [`store`]), shardable
//! (`--shard I/N`, see [`seeds`]), bounded by a wall-clock budget, with failures grouped by
//! [`signature`] and an optional determinism check (a sample of seeds run twice, compared by
//! history hash).
//!
//! The library writes run dirs and campaign.json; the HTML reports are the caller's (the CLI
//! passes a hook that writes a failing run's report, then writes the campaign page).

pub mod progress;
pub mod seeds;
pub mod signature;
pub mod store;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use minos_checker::Verdict;

pub use seeds::{SeedRange, Shard};
pub use signature::Signature;
pub use store::{default_campaign_name, DeterminismCheck, RunRecord};

use crate::RunOptions;

/// Why a campaign could not run.
#[derive(Debug, thiserror::Error)]
pub enum CampaignError {
    /// Bad options, or a campaign dir holding another campaign (exit 254).
    #[error("{0}")]
    BadInput(String),
    /// The campaign dir could not be read or written (exit 255).
    #[error("{0}")]
    Io(String),
}

/// Everything a campaign depends on.
#[derive(Clone, Debug)]
pub struct CampaignOptions {
    /// The options every run shares; `seed`, `out_dir`, `run_date` and `no_report` are set
    /// per run by the campaign.
    pub run: RunOptions,
    /// The whole campaign's seeds (all shards together).
    pub seeds: SeedRange,
    /// This process's slice of `seeds`; None = all of them.
    pub shard: Option<Shard>,
    /// Runs at once (threads); at least 1.
    pub jobs: usize,
    /// Wall-clock budget: no run starts after it; seeds left are "not run".
    pub budget: Option<Duration>,
    /// `<out>/<name>`: campaign.json and one run dir per seed.
    pub campaign_dir: PathBuf,
    /// Run one seed in N (by position in the slice) a second time and compare history hashes.
    pub determinism_every: Option<u64>,
    /// Set from outside (Ctrl-C, a caller's own budget) to stop starting runs.
    pub stop: Option<Arc<AtomicBool>>,
    /// What a valid run keeps on disk.
    pub keep: Keep,
}

/// `--keep`: a default run dir is ~1.5 MB, so 10,000 seeds an hour fill 15 GB an hour; a
/// long campaign keeps the bulk (histories, node logs) of its failures only.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Keep {
    /// Every run dir whole.
    #[default]
    All,
    /// Valid runs keep results.json, schedule.json (and determinism.json): enough to resume,
    /// count, and replay from the seed; their history.jsonl, history.csv and nodes/ go.
    Failures,
}

impl std::str::FromStr for Keep {
    type Err = String;
    fn from_str(text: &str) -> Result<Keep, String> {
        match text {
            "all" => Ok(Keep::All),
            "failures" => Ok(Keep::Failures),
            _ => Err(format!("unknown --keep {text:?}; expected all or failures")),
        }
    }
}

impl CampaignOptions {
    /// The seeds this process runs.
    pub fn slice(&self) -> SeedRange {
        match self.shard {
            Some(shard) => shard.slice(self.seeds),
            None => self.seeds,
        }
    }
}

/// How one seed of this invocation ended.
#[derive(Clone, Debug)]
pub enum SeedStatus {
    /// Run now.
    Ran(RunRecord),
    /// Found finished in the campaign dir (resumed); not run again.
    AlreadyDone(RunRecord),
    /// The run could not produce a verdict (RunError); retried on resume.
    Error(String),
}

/// Running counts, for progress display.
#[derive(Clone, Debug, Default)]
pub struct Progress {
    /// Seeds in this process's slice.
    pub total_count: u64,
    /// Finished (run now or earlier), errors included.
    pub done_count: u64,
    /// Of `done_count`, found already finished at start.
    pub resumed_count: u64,
    pub valid_count: u64,
    pub invalid_count: u64,
    pub unknown_count: u64,
    pub error_count: u64,
    /// Distinct failure signatures so far.
    pub signatures_count: u64,
    pub elapsed: Duration,
    /// Estimated time left, from this invocation's rate so far.
    pub eta: Option<Duration>,
}

/// What a campaign amounted to (over this process's slice, resumed seeds included).
#[derive(Clone, Debug, Default)]
pub struct CampaignSummary {
    pub campaign_dir: PathBuf,
    pub slice: Option<SeedRange>,
    pub total_count: u64,
    pub ran_count: u64,
    pub resumed_count: u64,
    pub valid_count: u64,
    pub invalid_count: u64,
    pub unknown_count: u64,
    /// Seeds whose run failed to produce a verdict, with the error.
    pub errors: Vec<(u64, String)>,
    /// Seeds not run because the budget ran out or a stop was requested.
    pub not_run_count: u64,
    /// The first error that said the disk is full: no run was started after it (the same
    /// command resumes once there is space).
    pub disk_full: Option<(u64, String)>,
    pub determinism_checked_count: u64,
    pub nondeterministic_seeds: Vec<u64>,
    /// Failure signature key -> seeds (sorted), invalid and unknown runs.
    pub failures: BTreeMap<String, Vec<u64>>,
    /// Seed -> run dir of the failing runs.
    pub failing_run_dirs: BTreeMap<u64, PathBuf>,
    /// Fault kinds and timing patterns the runs exercised, and whether the kinds bit.
    pub exercised: store::Exercised,
    pub elapsed: Duration,
}

impl CampaignSummary {
    /// DESIGN.md §2 for campaigns: any invalid run -> invalid; else a Minos failure (errors,
    /// nondeterminism) -> None (internal error, exit 255); else any unknown run or any seed
    /// left unrun -> unknown; else valid.
    pub fn verdict(&self) -> Option<Verdict> {
        if self.invalid_count > 0 {
            Some(Verdict::Invalid)
        } else if !self.errors.is_empty() || !self.nondeterministic_seeds.is_empty() {
            None
        } else if self.unknown_count > 0 || self.not_run_count > 0 {
            Some(Verdict::Unknown)
        } else {
            Some(Verdict::Valid)
        }
    }
}

/// What a campaign tells its caller as it goes.
#[derive(Clone, Copy, Debug)]
pub enum Event<'a> {
    /// Before any run: the seeds found finished in the campaign dir are counted.
    Resumed { progress: &'a Progress },
    /// A seed finished; sent from the worker thread that ran it (so a caller's report writing
    /// runs in parallel too).
    Finished {
        seed: u64,
        status: &'a SeedStatus,
        progress: &'a Progress,
    },
}

/// The caller's event hook.
pub type OnEvent<'a> = dyn Fn(Event<'_>) + Sync + 'a;

struct Counts {
    progress: Progress,
    signatures: BTreeMap<String, Vec<u64>>,
}

impl Counts {
    fn add(&mut self, status: &SeedStatus) {
        self.progress.done_count += 1;
        let record = match status {
            SeedStatus::Ran(record) => record,
            SeedStatus::AlreadyDone(record) => {
                self.progress.resumed_count += 1;
                record
            }
            SeedStatus::Error(_) => {
                self.progress.error_count += 1;
                return;
            }
        };
        match record.verdict {
            Verdict::Valid => self.progress.valid_count += 1,
            Verdict::Invalid => self.progress.invalid_count += 1,
            Verdict::Unknown => self.progress.unknown_count += 1,
        }
        if let Some(signature) = &record.signature {
            self.signatures
                .entry(signature.key())
                .or_default()
                .push(record.seed);
            self.progress.signatures_count = self.signatures.len() as u64;
        }
    }
}

/// Runs the campaign: every seed of the slice not already finished in `campaign_dir`, on
/// `jobs` threads, until done, the budget runs out or `stop` is set. Returns the summary over
/// the whole slice (seeds finished by earlier invocations included).
pub fn run_campaign(
    options: &CampaignOptions,
    on_event: &OnEvent<'_>,
) -> Result<CampaignSummary, CampaignError> {
    run_campaign_with(options, on_event, &run_seed)
}

/// How one seed is run (the real run, or a stand-in in tests).
type SeedRunner<'a> = dyn Fn(&RunOptions, u64, bool, Keep) -> SeedStatus + Sync + 'a;

/// Whether a run's error says the disk (or the file system's quota) is full: then every
/// later run would fail alike and leave an empty run dir, so the campaign stops starting runs.
pub fn is_disk_full(error: &str) -> bool {
    // The operating system's own words for ENOSPC and EDQUOT, as io::Error prints them.
    const ENOSPC: i32 = 28;
    const EDQUOT: i32 = 122;
    [ENOSPC, EDQUOT]
        .iter()
        .any(|&code| error.contains(&std::io::Error::from_raw_os_error(code).to_string()))
        || error.contains(&std::io::Error::from(std::io::ErrorKind::StorageFull).to_string())
}

fn run_campaign_with(
    options: &CampaignOptions,
    on_event: &OnEvent<'_>,
    run_seed: &SeedRunner<'_>,
) -> Result<CampaignSummary, CampaignError> {
    let started = Instant::now();
    let mut run_template = options.run.clone();
    run_template.out_dir = options.campaign_dir.clone();
    run_template.run_date = None;
    run_template.no_report = true;
    // Runs go in parallel: one checker thread each keeps the machine's cores for the runs.
    if run_template.check_threads == 0 {
        run_template.check_threads = 1;
    }
    run_template.validate().map_err(CampaignError::BadInput)?;
    if options.jobs == 0 {
        return Err(CampaignError::BadInput("--jobs must be at least 1".into()));
    }
    if options.determinism_every == Some(0) {
        return Err(CampaignError::BadInput(
            "--check-determinism takes N >= 1 (one seed in N)".into(),
        ));
    }
    let slice = options.slice();
    let name = options
        .campaign_dir
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "campaign".to_string());
    let campaign_file = store::CampaignFile::new(&name, &run_template);
    store::open_campaign_dir(&options.campaign_dir, &campaign_file)?;
    let test_name = run_template.test_name();
    store::remove_partial_runs(&options.campaign_dir, &test_name)?;
    let (finished, _duplicates) = store::finished_runs(&options.campaign_dir, &test_name)?;

    let counts = Mutex::new(Counts {
        progress: Progress {
            total_count: slice.len(),
            ..Progress::default()
        },
        signatures: BTreeMap::new(),
    });
    let mut statuses: BTreeMap<u64, SeedStatus> = BTreeMap::new();
    let mut to_run = Vec::new();
    for seed in slice.iter() {
        match finished.get(&seed) {
            Some(record) => {
                let status = SeedStatus::AlreadyDone(record.clone());
                counts.lock().expect("no panics hold it").add(&status);
                statuses.insert(seed, status);
            }
            None => to_run.push(seed),
        }
    }
    {
        let mut counts = counts.lock().expect("no panics hold it");
        counts.progress.elapsed = started.elapsed();
        on_event(Event::Resumed {
            progress: &counts.progress,
        });
    }

    let deadline = options.budget.map(|budget| started + budget);
    let next = AtomicU64::new(0);
    let ran_now = AtomicU64::new(0);
    let results: Mutex<Vec<(u64, SeedStatus)>> = Mutex::new(Vec::new());
    let to_run_count = to_run.len() as u64;
    let disk_full: Mutex<Option<(u64, String)>> = Mutex::new(None);
    let should_stop = || {
        options
            .stop
            .as_ref()
            .is_some_and(|stop| stop.load(Ordering::Relaxed))
            || deadline.is_some_and(|deadline| Instant::now() >= deadline)
            || disk_full.lock().expect("no panics hold it").is_some()
    };
    std::thread::scope(|scope| {
        for _ in 0..options.jobs.min(to_run.len().max(1)) {
            scope.spawn(|| loop {
                if should_stop() {
                    return;
                }
                let position = next.fetch_add(1, Ordering::Relaxed);
                let Some(&seed) = to_run.get(position as usize) else {
                    return;
                };
                let check_determinism = options
                    .determinism_every
                    .is_some_and(|every| (seed - slice.start) % every == 0);
                let status = run_seed(&run_template, seed, check_determinism, options.keep);
                // A real run stops at Ctrl-C (after tearing its cluster down) and ends in an
                // error: cut short, not failed. It stays "not run", and resuming runs it.
                if matches!(status, SeedStatus::Error(_)) && crate::real::guard::interrupted() {
                    return;
                }
                if let SeedStatus::Error(error) = &status {
                    if is_disk_full(error) {
                        let mut first = disk_full.lock().expect("no panics hold it");
                        if first
                            .as_ref()
                            .is_none_or(|(first_seed, _)| seed < *first_seed)
                        {
                            *first = Some((seed, error.clone()));
                        }
                    }
                }
                let ran = ran_now.fetch_add(1, Ordering::Relaxed) + 1;
                let progress = {
                    let mut counts = counts.lock().expect("no panics hold it");
                    counts.add(&status);
                    let elapsed = started.elapsed();
                    counts.progress.elapsed = elapsed;
                    let left = to_run_count.saturating_sub(ran);
                    counts.progress.eta = Some(elapsed.mul_f64(left as f64 / ran as f64));
                    counts.progress.clone()
                };
                on_event(Event::Finished {
                    seed,
                    status: &status,
                    progress: &progress,
                });
                results
                    .lock()
                    .expect("no panics hold it")
                    .push((seed, status));
            });
        }
    });
    for (seed, status) in results.into_inner().expect("no panics hold it") {
        statuses.insert(seed, status);
    }
    // Empty once every determinism rerun cleaned up after itself.
    let _ = std::fs::remove_dir(options.campaign_dir.join(".determinism"));
    // `latest` links mean nothing in a campaign (runs finish in any order) and would collide
    // when shard directories are copied into one to be merged.
    for link in [
        options.campaign_dir.join("latest"),
        options.campaign_dir.join(&test_name).join("latest"),
    ] {
        if link.is_symlink() {
            let _ = std::fs::remove_file(&link);
        }
    }

    let mut summary = CampaignSummary {
        campaign_dir: options.campaign_dir.clone(),
        slice: Some(slice),
        total_count: slice.len(),
        disk_full: disk_full.into_inner().expect("no panics hold it"),
        elapsed: started.elapsed(),
        ..CampaignSummary::default()
    };
    for seed in slice.iter() {
        let record = match statuses.get(&seed) {
            None => {
                summary.not_run_count += 1;
                continue;
            }
            Some(SeedStatus::Error(error)) => {
                summary.errors.push((seed, error.clone()));
                continue;
            }
            Some(SeedStatus::Ran(record)) => {
                summary.ran_count += 1;
                record
            }
            Some(SeedStatus::AlreadyDone(record)) => {
                summary.resumed_count += 1;
                record
            }
        };
        match record.verdict {
            Verdict::Valid => summary.valid_count += 1,
            Verdict::Invalid => summary.invalid_count += 1,
            Verdict::Unknown => summary.unknown_count += 1,
        }
        summary.exercised.add(&record.exercised);
        if let Some(signature) = &record.signature {
            summary
                .failures
                .entry(signature.key())
                .or_default()
                .push(seed);
            summary
                .failing_run_dirs
                .insert(seed, record.run_dir.clone());
        }
        if let Some(check) = &record.determinism {
            summary.determinism_checked_count += 1;
            if !check.same {
                summary.nondeterministic_seeds.push(seed);
            }
        }
    }
    Ok(summary)
}

/// Runs one seed into the campaign dir (and, when asked, a second time into a scratch dir to
/// compare history hashes).
fn run_seed(template: &RunOptions, seed: u64, check_determinism: bool, keep: Keep) -> SeedStatus {
    let mut options = template.clone();
    options.seed = seed;
    let outcome = match crate::run(&options) {
        Ok(outcome) => outcome,
        Err(error) => return SeedStatus::Error(error.to_string()),
    };
    let determinism = if check_determinism {
        match second_run_sha256(&options) {
            Ok(second_sha256) => {
                let check = DeterminismCheck {
                    same: second_sha256 == outcome.history_sha256,
                    first_sha256: outcome.history_sha256.clone(),
                    second_sha256,
                };
                if let Err(error) = store::write_determinism(&outcome.run_dir, &check) {
                    return SeedStatus::Error(format!("determinism record: {error}"));
                }
                Some(check)
            }
            Err(error) => return SeedStatus::Error(format!("determinism rerun: {error}")),
        }
    } else {
        None
    };
    if keep == Keep::Failures && outcome.verdict == Verdict::Valid {
        if let Err(error) = store::drop_bulk(&outcome.run_dir) {
            return SeedStatus::Error(format!("--keep failures: {error}"));
        }
    }
    match store::read_run_record(&outcome.run_dir) {
        Ok(Some(mut record)) => {
            record.determinism = determinism;
            SeedStatus::Ran(record)
        }
        Ok(None) => SeedStatus::Error(format!(
            "{}: run finished without results.json",
            outcome.run_dir.display()
        )),
        Err(error) => SeedStatus::Error(error),
    }
}

/// Reruns `options` into a hidden scratch dir of the campaign (skipped by report discovery)
/// and returns its history hash; the scratch run dir is removed.
fn second_run_sha256(options: &RunOptions) -> Result<String, String> {
    let scratch = options
        .out_dir
        .join(".determinism")
        .join(format!("seed{}", options.seed));
    let _ = std::fs::remove_dir_all(&scratch);
    let mut second = options.clone();
    second.out_dir = scratch.clone();
    let outcome = crate::run(&second).map_err(|error| error.to_string())?;
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(outcome.history_sha256)
}

/// Where a campaign named `name` lives under `out_dir`.
pub fn campaign_dir(out_dir: &Path, name: &str) -> PathBuf {
    out_dir.join(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 16 item 14: the first "no space left" error stops the campaign from starting
    /// runs; the seeds after it are not run (left for the same command to resume).
    #[test]
    fn a_full_disk_stops_starting_runs() {
        let dir = std::env::temp_dir().join(format!("minos-disk-full-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let options = CampaignOptions {
            run: RunOptions::new(0),
            seeds: SeedRange::new(1, 11),
            shard: None,
            jobs: 1,
            budget: None,
            campaign_dir: dir.clone(),
            determinism_every: None,
            stop: None,
            keep: Keep::All,
        };
        let attempted = Mutex::new(Vec::new());
        let full = std::io::Error::from_raw_os_error(28);
        let runner = |_: &RunOptions, seed: u64, _: bool, _: Keep| {
            attempted.lock().unwrap().push(seed);
            SeedStatus::Error(format!("cannot write the run directory: {full}"))
        };
        let summary = run_campaign_with(&options, &|_| {}, &runner).unwrap();
        assert_eq!(
            *attempted.lock().unwrap(),
            vec![1],
            "no run after the first ENOSPC"
        );
        let (seed, error) = summary
            .disk_full
            .clone()
            .expect("the campaign says why it stopped");
        assert_eq!(seed, 1);
        assert!(is_disk_full(&error), "{error}");
        assert_eq!(summary.not_run_count, 9);
        assert_eq!(summary.errors.len(), 1);
        // Other errors do not stop a campaign.
        assert!(!is_disk_full("simulation failed: a node panicked"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn campaign_verdict_follows_the_exit_code_rules() {
        let valid = CampaignSummary {
            total_count: 3,
            valid_count: 3,
            ..CampaignSummary::default()
        };
        assert_eq!(valid.verdict(), Some(Verdict::Valid));
        let unknown = CampaignSummary {
            unknown_count: 1,
            ..valid.clone()
        };
        assert_eq!(unknown.verdict(), Some(Verdict::Unknown));
        let unfinished = CampaignSummary {
            not_run_count: 1,
            ..valid.clone()
        };
        assert_eq!(unfinished.verdict(), Some(Verdict::Unknown));
        let nondeterministic = CampaignSummary {
            nondeterministic_seeds: vec![7],
            ..unknown.clone()
        };
        assert_eq!(
            nondeterministic.verdict(),
            None,
            "a Minos failure: exit 255"
        );
        let errored = CampaignSummary {
            errors: vec![(3, "simulation failed".into())],
            ..valid.clone()
        };
        assert_eq!(errored.verdict(), None);
        let invalid = CampaignSummary {
            invalid_count: 1,
            ..nondeterministic
        };
        assert_eq!(
            invalid.verdict(),
            Some(Verdict::Invalid),
            "a violation wins"
        );
    }
}

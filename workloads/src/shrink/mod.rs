//! Shrinking (`minos shrink RUN_DIR`): minimise a failing run to a small fault schedule and
//! workload that still fails the same way. Every candidate is a full rerun; a change is kept
//! only when the rerun fails with the same shrink signature (same causes, same kind of
//! anomaly, see [`crate::campaign::signature`]). A simulated rerun is deterministic, so one
//! attempt decides; a real cluster's is not (real time, real scheduling), so a real run's
//! candidates get [`ShrinkOptions::attempts`] reruns each and are kept when any of them fails
//! the same way: a rejected candidate was not seen to fail, which is weaker than "cannot".
//!
//! Passes, in order, within a bounded number of reruns: delta debugging over the fault
//! windows (a start event with its matching stop), halving each remaining window, moving the
//! faults earlier, cutting the
//! clients, keys, time limit and rate by a half or a quarter; repeated (at most three times)
//! while a pass still makes the run smaller. Candidates of one step run in parallel
//! (`jobs`), and the first failing one in a fixed order wins, so the result does not depend on
//! `jobs`.

pub mod load;
mod windows;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::campaign::signature::{signature_of_run_dir, Signature};
use crate::schedule::Schedule;
use crate::RunOptions;
use windows::Unit;

pub use load::options_from_run_dir;

/// Why shrinking could not start or finish.
#[derive(Debug, thiserror::Error)]
pub enum ShrinkError {
    /// RUN_DIR is missing, malformed or not a failing run (exit 254).
    #[error("{0}")]
    BadInput(String),
    /// The failure does not reproduce from the run's options and schedule (exit 255: a
    /// determinism bug).
    #[error("{0}")]
    NotReproduced(String),
    /// Runs could not be written (exit 255).
    #[error("{0}")]
    Io(String),
    /// Ctrl-C or SIGTERM during a real-cluster rerun (exit 130): the cluster was torn down and
    /// shrinking stops.
    #[error("interrupted; the rerun's cluster, namespaces, bridge and nft table were removed")]
    Interrupted,
}

#[derive(Clone, Debug)]
pub struct ShrinkOptions {
    /// Bound on reruns (the confirming rerun included).
    pub max_runs: u64,
    /// Candidates run at once.
    pub jobs: usize,
    /// Scratch space for candidate runs (each removed after it is judged).
    pub scratch_dir: PathBuf,
    /// Reruns per candidate (and for the confirming run) until one fails the same way: 1 for
    /// simulated runs (bit-exact), more for real clusters (see [`default_attempts`]).
    pub attempts: u32,
}

/// Reruns per candidate when none is asked for: a simulated rerun replays the failure bit for
/// bit, a real cluster's may miss it (the failure depends on real timing).
pub fn default_attempts(options: &RunOptions) -> u32 {
    if options.system.is_real() {
        3
    } else {
        1
    }
}

/// The size of a run, for before/after figures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunSize {
    pub fault_windows_count: usize,
    /// Sum of the windows' durations (a window open at the end counts to the time limit).
    pub fault_ms: u64,
    pub clients: usize,
    pub keys: usize,
    pub time_limit_ms: u64,
    /// rate x time limit: the operations the workload aims for.
    pub target_ops: u64,
}

impl RunSize {
    pub fn of(options: &RunOptions) -> RunSize {
        let schedule = options.schedule.clone().unwrap_or_default();
        let units = windows::units(&schedule);
        RunSize {
            fault_windows_count: units.len(),
            fault_ms: units
                .iter()
                .map(|unit| unit.duration_ms(&schedule, options.time_limit_ms))
                .sum(),
            clients: options.clients,
            keys: options.keys,
            time_limit_ms: options.time_limit_ms,
            target_ops: (options.rate_ops_per_s * options.time_limit_ms as f64 / 1000.0) as u64,
        }
    }
}

/// What shrinking found.
#[derive(Clone, Debug)]
pub struct ShrinkResult {
    /// The smallest failing options found (schedule included).
    pub minimal: RunOptions,
    pub signature: Signature,
    pub original_size: RunSize,
    pub minimal_size: RunSize,
    pub runs_count: u64,
    /// True when the rerun budget ended the search.
    pub budget_exhausted: bool,
    /// Reruns per candidate that were allowed (1: bit-exact replay).
    pub attempts: u32,
}

/// One judged step, for progress output.
#[derive(Clone, Debug)]
pub struct Step<'a> {
    pub runs_count: u64,
    pub max_runs: u64,
    pub description: &'a str,
    pub kept: bool,
    pub size: &'a RunSize,
}

struct Shrinker<'a> {
    options: &'a ShrinkOptions,
    target: String,
    runs: AtomicU64,
    on_step: &'a (dyn Fn(&Step<'_>) + Sync),
}

impl Shrinker<'_> {
    fn budget_left(&self) -> u64 {
        self.options
            .max_runs
            .saturating_sub(self.runs.load(Ordering::Relaxed))
    }

    /// Runs `candidate` in a scratch dir (removed after); its signature, None when the run
    /// produced no verdict (e.g. the candidate's options are rejected).
    fn judge(&self, candidate: &RunOptions) -> Result<Option<Signature>, ShrinkError> {
        let number = self.runs.fetch_add(1, Ordering::Relaxed);
        let mut trial = candidate.clone();
        trial.out_dir = self.options.scratch_dir.join(format!("trial-{number}"));
        trial.no_report = true;
        trial.run_date = None;
        let judged = match crate::run(&trial) {
            Ok(outcome) => signature_of_run_dir(&outcome.run_dir)
                .map(Some)
                .map_err(ShrinkError::Io),
            Err(crate::RunError::Output(error)) => Err(ShrinkError::Io(error)),
            Err(crate::RunError::Interrupted) => Err(ShrinkError::Interrupted),
            // A real run that cannot start here at all (no root, a binary missing): every
            // candidate would fail to start the same way.
            Err(error)
                if candidate.system.is_real()
                    && error.is_bad_input()
                    && self.runs.load(Ordering::Relaxed) == 1 =>
            {
                Err(ShrinkError::BadInput(error.to_string()))
            }
            Err(_) => Ok(None),
        };
        let _ = std::fs::remove_dir_all(&trial.out_dir);
        judged
    }

    /// Up to `attempts` reruns (within the budget), stopping at the first that fails the
    /// same way.
    fn still_fails(&self, candidate: &RunOptions) -> Result<bool, ShrinkError> {
        for attempt in 0..self.options.attempts.max(1) {
            if attempt > 0 && self.budget_left() == 0 {
                return Ok(false);
            }
            if self
                .judge(candidate)?
                .is_some_and(|signature| signature.shrink_key() == self.target)
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Judges `candidates` (in parallel batches of `jobs`) and returns the first, in order,
    /// that still fails. Within the rerun budget.
    fn first_failing(
        &self,
        candidates: Vec<(String, RunOptions)>,
    ) -> Result<Option<(usize, RunOptions)>, ShrinkError> {
        let mut remaining = candidates.into_iter().enumerate().peekable();
        while remaining.peek().is_some() {
            let batch_size = (self.options.jobs.max(1) as u64).min(self.budget_left()) as usize;
            if batch_size == 0 {
                return Ok(None);
            }
            let batch: Vec<(usize, (String, RunOptions))> =
                remaining.by_ref().take(batch_size).collect();
            let verdicts: Vec<Result<bool, ShrinkError>> = std::thread::scope(|scope| {
                let handles: Vec<_> = batch
                    .iter()
                    .map(|(_, (_, candidate))| scope.spawn(|| self.still_fails(candidate)))
                    .collect();
                handles
                    .into_iter()
                    .map(|handle| handle.join().expect("a candidate run panicked"))
                    .collect()
            });
            let mut winner = None;
            for ((index, (description, candidate)), verdict) in batch.into_iter().zip(verdicts) {
                let kept = verdict?;
                if kept && winner.is_none() {
                    winner = Some((index, description, candidate));
                } else {
                    let size = RunSize::of(&candidate);
                    (self.on_step)(&Step {
                        runs_count: self.runs.load(Ordering::Relaxed),
                        max_runs: self.options.max_runs,
                        description: &description,
                        kept: false,
                        size: &size,
                    });
                }
            }
            if let Some((index, description, candidate)) = winner {
                let size = RunSize::of(&candidate);
                (self.on_step)(&Step {
                    runs_count: self.runs.load(Ordering::Relaxed),
                    max_runs: self.options.max_runs,
                    description: &description,
                    kept: true,
                    size: &size,
                });
                return Ok(Some((index, candidate)));
            }
        }
        Ok(None)
    }

    /// Delta debugging (ddmin, complements only) over the fault windows.
    fn shrink_windows(&self, current: &mut RunOptions) -> Result<(), ShrinkError> {
        let schedule = current.schedule.clone().unwrap_or_default();
        let mut units = windows::units(&schedule);
        if units.is_empty() {
            return Ok(());
        }
        let none = with_schedule(current, Schedule::default());
        if let Some((_, candidate)) =
            self.first_failing(vec![("drop every fault window".to_string(), none)])?
        {
            *current = candidate;
            return Ok(());
        }
        let mut granularity = 2usize;
        while units.len() >= 2 && self.budget_left() > 0 {
            let chunks = split(&units, granularity);
            let candidates: Vec<(String, RunOptions)> = chunks
                .iter()
                .map(|chunk| {
                    let kept: Vec<Unit> = units
                        .iter()
                        .filter(|unit| !chunk.contains(unit))
                        .cloned()
                        .collect();
                    (
                        format!("drop {} of {} fault windows", chunk.len(), units.len()),
                        with_schedule(current, windows::schedule_of(&schedule, &kept)),
                    )
                })
                .collect();
            match self.first_failing(candidates)? {
                Some((index, candidate)) => {
                    *current = candidate;
                    units.retain(|unit| !chunks[index].contains(unit));
                    granularity = granularity.saturating_sub(1).max(2);
                }
                None => {
                    if granularity >= units.len() {
                        break;
                    }
                    granularity = (granularity * 2).min(units.len());
                }
            }
        }
        Ok(())
    }

    /// Halves each remaining window (its stop moves earlier) while the run still fails.
    fn shorten_windows(&self, current: &mut RunOptions) -> Result<(), ShrinkError> {
        let mut position = 0;
        loop {
            let schedule = current.schedule.clone().unwrap_or_default();
            let units = windows::units(&schedule);
            let Some(unit) = units.get(position) else {
                return Ok(());
            };
            let Some(shorter) = windows::halved(unit, &schedule, current.time_limit_ms) else {
                position += 1;
                continue;
            };
            let description = format!(
                "halve fault window {} ({})",
                position + 1,
                unit.label(&schedule)
            );
            match self.first_failing(vec![(description, with_schedule(current, shorter))])? {
                Some((_, candidate)) => *current = candidate,
                None => position += 1,
            }
            if self.budget_left() == 0 {
                return Ok(());
            }
        }
    }

    /// Shrinks a numeric option while the run still fails: tries half and three quarters of
    /// the value together (in parallel), keeping the smallest that fails.
    fn halve(
        &self,
        current: &mut RunOptions,
        name: &str,
        get: fn(&RunOptions) -> u64,
        set: fn(&mut RunOptions, u64),
        floor: u64,
    ) -> Result<(), ShrinkError> {
        while self.budget_left() > 0 {
            let value = get(current);
            let mut smaller_values = vec![(value / 2).max(floor), (value * 3 / 4).max(floor)];
            smaller_values.dedup();
            let candidates: Vec<(String, RunOptions)> = smaller_values
                .into_iter()
                .filter(|smaller| *smaller < value)
                .filter_map(|smaller| {
                    let mut candidate = current.clone();
                    set(&mut candidate, smaller);
                    candidate
                        .validate()
                        .is_ok()
                        .then(|| (format!("{name} {value} -> {smaller}"), candidate))
                })
                .collect();
            if candidates.is_empty() {
                return Ok(());
            }
            match self.first_failing(candidates)? {
                Some((_, candidate)) => *current = candidate,
                None => return Ok(()),
            }
        }
        Ok(())
    }

    /// Moves every fault event earlier (by a half or three quarters of the first event's
    /// time), the time limit with them, while the run still fails.
    fn shift_earlier(&self, current: &mut RunOptions) -> Result<(), ShrinkError> {
        while self.budget_left() > 0 {
            let Some(first_ms) = current
                .schedule
                .as_ref()
                .and_then(|schedule| schedule.events.first())
                .map(|event| event.at_ms)
            else {
                return Ok(());
            };
            if first_ms < 200 {
                return Ok(());
            }
            let candidates: Vec<(String, RunOptions)> = [first_ms * 3 / 4, first_ms / 2]
                .into_iter()
                .map(|shift_ms| {
                    let mut candidate = current.clone();
                    candidate.time_limit_ms = current.time_limit_ms - shift_ms;
                    if let Some(schedule) = &mut candidate.schedule {
                        for event in &mut schedule.events {
                            event.at_ms -= shift_ms;
                        }
                    }
                    (
                        format!("every fault {shift_ms} ms earlier (and the time limit)"),
                        candidate,
                    )
                })
                .collect();
            match self.first_failing(candidates)? {
                Some((_, candidate)) => *current = candidate,
                None => return Ok(()),
            }
        }
        Ok(())
    }

    /// Cuts the time limit: first to just after the last fault event, then by halves.
    fn cut_time(&self, current: &mut RunOptions) -> Result<(), ShrinkError> {
        let last_event_ms = current
            .schedule
            .as_ref()
            .and_then(|schedule| schedule.events.last())
            .map_or(0, |event| event.at_ms);
        let after_faults_ms = last_event_ms + 2_000;
        if after_faults_ms < current.time_limit_ms {
            let candidate = with_time_limit(current, after_faults_ms);
            let description = format!(
                "time limit {} ms -> {after_faults_ms} ms (2 s after the last fault event)",
                current.time_limit_ms
            );
            if let Some((_, candidate)) = self.first_failing(vec![(description, candidate)])? {
                *current = candidate;
            }
        }
        while self.budget_left() > 0 && current.time_limit_ms >= 2_000 {
            let shorter_ms = current.time_limit_ms / 2;
            let description = format!("time limit {} ms -> {shorter_ms} ms", current.time_limit_ms);
            match self.first_failing(vec![(description, with_time_limit(current, shorter_ms))])? {
                Some((_, candidate)) => *current = candidate,
                None => break,
            }
        }
        Ok(())
    }
}

fn with_schedule(options: &RunOptions, schedule: Schedule) -> RunOptions {
    let mut candidate = options.clone();
    candidate.schedule = Some(schedule);
    candidate
}

/// The time limit, with the events it would never reach dropped.
fn with_time_limit(options: &RunOptions, time_limit_ms: u64) -> RunOptions {
    let mut candidate = options.clone();
    candidate.time_limit_ms = time_limit_ms;
    if let Some(schedule) = &mut candidate.schedule {
        schedule.events.retain(|event| event.at_ms < time_limit_ms);
    }
    candidate
}

/// `units` in `count` contiguous chunks of nearly equal size.
fn split(units: &[Unit], count: usize) -> Vec<Vec<Unit>> {
    let count = count.clamp(1, units.len().max(1));
    let base = units.len() / count;
    let extra = units.len() % count;
    let mut chunks = Vec::with_capacity(count);
    let mut start = 0;
    for index in 0..count {
        let len = base + usize::from(index < extra);
        chunks.push(units[start..start + len].to_vec());
        start += len;
    }
    chunks
}

/// Shrinks `original` (a failing run's options, with its schedule as a script). The first
/// rerun confirms the failure and fixes the signature to keep.
pub fn shrink(
    original: &RunOptions,
    options: &ShrinkOptions,
    on_step: &(dyn Fn(&Step<'_>) + Sync),
) -> Result<ShrinkResult, ShrinkError> {
    if options.max_runs == 0 {
        return Err(ShrinkError::BadInput(
            "--max-runs must be at least 1".into(),
        ));
    }
    std::fs::create_dir_all(&options.scratch_dir)
        .map_err(|error| ShrinkError::Io(format!("{}: {error}", options.scratch_dir.display())))?;
    let mut shrinker = Shrinker {
        options,
        target: String::new(),
        runs: AtomicU64::new(0),
        on_step,
    };
    let mut current = original.clone();
    if current.schedule.is_none() {
        return Err(ShrinkError::BadInput(
            "shrinking needs the run's fault schedule (schedule.json)".into(),
        ));
    }
    // The confirming rerun: on a real cluster, up to `attempts` of them.
    let attempts = options.attempts.max(1);
    let mut seen = Vec::new();
    let mut confirmed = None;
    for attempt in 0..attempts.min(options.max_runs.min(u64::from(u32::MAX)) as u32) {
        let judged = shrinker.judge(&current)?;
        if current.system.is_real() {
            // Real reruns take the run's whole length: say how each went.
            let size = RunSize::of(&current);
            let description = format!(
                "rerun of the original run, attempt {} of {attempts}",
                attempt + 1
            );
            on_step(&Step {
                runs_count: shrinker.runs.load(Ordering::Relaxed),
                max_runs: options.max_runs,
                description: &description,
                kept: judged
                    .as_ref()
                    .is_some_and(|signature| signature.verdict == "invalid"),
                size: &size,
            });
        }
        match judged {
            Some(signature) if signature.verdict == "invalid" => {
                confirmed = Some(signature);
                break;
            }
            Some(signature) if signature.verdict == "valid" => seen.push("valid".to_string()),
            Some(signature) => seen.push(format!(
                "{} ({})",
                signature.verdict,
                signature.shrink_key()
            )),
            None => seen.push("no verdict".to_string()),
        }
    }
    let Some(signature) = confirmed else {
        let _ = std::fs::remove_dir_all(&options.scratch_dir);
        return Err(ShrinkError::NotReproduced(if current.system.is_real() {
            format!(
                "the failure did not recur in {} rerun(s) of the real {} cluster (verdicts: {}): a real run is not bit-exactly replayable and this failure depends on timing; try a larger --attempts, or run `minos campaign` with the same options to see how often it recurs",
                seen.len(),
                current.system.name(),
                seen.join("; ")
            )
        } else {
            format!(
                "the run replayed from its schedule is {}, not invalid",
                seen.join("; ")
            )
        }));
    };
    shrinker.target = signature.shrink_key();
    let original_size = RunSize::of(&current);

    // Passes until one changes nothing: a smaller workload can make more windows unneeded.
    for _pass in 0..3 {
        let before = RunSize::of(&current);
        shrinker.shrink_windows(&mut current)?;
        shrinker.shorten_windows(&mut current)?;
        shrinker.halve(
            &mut current,
            "clients",
            |o| o.clients as u64,
            |o, v| o.clients = v as usize,
            1,
        )?;
        shrinker.halve(
            &mut current,
            "keys",
            |o| o.keys as u64,
            |o, v| o.keys = v as usize,
            1,
        )?;
        shrinker.shift_earlier(&mut current)?;
        shrinker.cut_time(&mut current)?;
        shrinker.halve(
            &mut current,
            "rate (ops/s)",
            |o| o.rate_ops_per_s.ceil() as u64,
            |o, v| o.rate_ops_per_s = v as f64,
            1,
        )?;
        if RunSize::of(&current) == before || shrinker.budget_left() == 0 {
            break;
        }
    }

    let runs_count = shrinker.runs.load(Ordering::Relaxed);
    let _ = std::fs::remove_dir_all(&options.scratch_dir);
    Ok(ShrinkResult {
        minimal_size: RunSize::of(&current),
        minimal: current,
        signature,
        original_size,
        runs_count,
        budget_exhausted: runs_count >= options.max_runs,
        attempts,
    })
}

/// Writes the minimal schedule to `<dir>/schedule.json`, reruns the minimal options there (a
/// full run dir, for the report) and returns the run outcome and the final options (with
/// `--schedule` pointing at the written file, so the reproduce command is complete).
pub fn write_minimal(
    result: &ShrinkResult,
    dir: &Path,
) -> Result<(crate::RunOutcome, RunOptions), ShrinkError> {
    let io = |error: std::io::Error| ShrinkError::Io(format!("{}: {error}", dir.display()));
    std::fs::create_dir_all(dir).map_err(io)?;
    let schedule_path = dir.join("schedule.json");
    let schedule = result.minimal.schedule.clone().unwrap_or_default();
    crate::output::write_atomic(&schedule_path, schedule.to_json_pretty().as_bytes())
        .map_err(io)?;
    let mut options = result.minimal.clone();
    options.schedule_path = Some(schedule_path);
    options.out_dir = dir.to_path_buf();
    options.no_report = false;
    options.run_date = None;
    // A real cluster may not fail on this rerun: up to `attempts` reruns, the first that
    // fails the same way is the one kept (the others' dirs are removed).
    let mut outcome = None;
    for attempt in 0..result.attempts.max(1) {
        if attempt > 0 {
            if let Some(previous) = outcome.take() {
                let previous: crate::RunOutcome = previous;
                let _ = std::fs::remove_dir_all(&previous.run_dir);
            }
        }
        let rerun = crate::run(&options).map_err(|error| ShrinkError::Io(error.to_string()))?;
        let same = signature_of_run_dir(&rerun.run_dir)
            .is_ok_and(|signature| signature.shrink_key() == result.signature.shrink_key());
        outcome = Some(rerun);
        if same {
            break;
        }
    }
    Ok((outcome.expect("at least one attempt"), options))
}

//! Runs the selftest campaigns on a pool of threads (one simulation per thread at a time) and
//! gathers the verdicts. A run is a pure function of its options, so the first detecting
//! seed of a bug does not depend on the number of threads.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use minos_checker::Verdict;
use serde::Serialize;
use serde_json::Value;

use minos_node::bugs::Bug;

use crate::selftest::profiles::{
    bug_profile, bug_profiles, correct_profiles, generic_profile, Profile,
};

/// What `minos selftest` was asked to do.
#[derive(Clone, Debug)]
pub struct SelftestOptions {
    /// Seeds per bug (at most; a bug's campaign stops at its first detection) and runs of
    /// the correct build.
    pub seeds: u64,
    /// The first seed; run i uses `seed_base + i`.
    pub seed_base: u64,
    /// Runs in parallel.
    pub jobs: usize,
    /// Where run directories go (`<out>/<test-name>/<run-id>`).
    pub out_dir: PathBuf,
    /// Only these bugs (by name); empty = every bug.
    pub only: Vec<String>,
    /// Not these bugs (by name): they are left out of the table and of the verdict.
    pub except: Vec<String>,
    /// Skip the correct build's campaign.
    pub skip_correct: bool,
    /// Run only the correct build's campaign.
    pub skip_bugs: bool,
    /// Score the generic harness: every selected bug (with or without a bespoke schedule)
    /// also under `generic_profile`, and the correct build under the generic profile only.
    pub generic: bool,
}

/// One run, as the selftest table shows it.
#[derive(Clone, Debug, Serialize)]
pub struct RunSummary {
    pub seed: u64,
    /// "valid", "invalid", "unknown" or "error".
    pub verdict: String,
    /// What was seen: the failed checks and the checker's first reason, or the error.
    pub anomaly: Option<String>,
    pub run_dir: Option<PathBuf>,
    pub reproduce: Option<String>,
    pub wall_ms: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BugStatus {
    Caught,
    NotCaught,
}

impl BugStatus {
    pub fn label(self) -> &'static str {
        match self {
            BugStatus::Caught => "caught",
            BugStatus::NotCaught => "NOT CAUGHT",
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct BugResult {
    pub bug: String,
    pub status: BugStatus,
    /// 1-based: the first detection happened in this many seeds.
    pub seeds_to_detection: Option<u64>,
    pub seeds_run: u64,
    pub faults: String,
    pub expected: String,
    /// The detecting run (or, when not caught, nothing).
    pub detection: Option<RunSummary>,
    /// Runs that ended in an error (e.g. a node panic), which do not count as detections.
    pub errors: Vec<RunSummary>,
    /// The shrunk reproduction of the detecting run (`minos selftest --shrink`).
    pub shrunk: Option<ShrunkRun>,
}

/// A detecting run minimised by `minos shrink`'s algorithm.
#[derive(Clone, Debug, Serialize)]
pub struct ShrunkRun {
    pub run_dir: PathBuf,
    pub reproduce: String,
    /// `fault windows, clients, ...` before and after.
    pub before: String,
    pub after: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct CorrectResult {
    pub runs: u64,
    pub valid: u64,
    /// Every run that was not valid: any of them fails the selftest.
    pub failures: Vec<RunSummary>,
}

#[derive(Clone, Debug, Serialize)]
pub struct SelftestReport {
    pub seeds: u64,
    pub seed_base: u64,
    pub jobs: usize,
    pub correct: Option<CorrectResult>,
    pub bugs: Vec<BugResult>,
    /// Bugs selected that have no bespoke schedule (scored only by `--generic`).
    pub unscheduled: Vec<String>,
    /// `--generic`: every selected bug under the generic campaign, in `Bug::ALL` order.
    pub generic: Option<Vec<BugResult>>,
    /// True when every bespoke campaign caught its bug and the correct build was clean
    /// (generic misses are the score, not a failure).
    pub ok: bool,
    pub wall_ms: u64,
}

/// One unit of work: a profile and a seed index.
struct Job {
    /// Index into the campaign list (bugs first, then the correct build's profiles).
    campaign: usize,
    seed_index: u64,
    profile: Profile,
}

/// Runs the whole selftest. Errors only on bad options (an unknown bug name).
pub fn run_selftest(options: &SelftestOptions) -> Result<SelftestReport, String> {
    assert!(options.jobs >= 1, "at least one job");
    let started = std::time::Instant::now();
    let mut bugs = bug_profiles();
    let known: Vec<&str> = Bug::ALL.iter().map(|bug| bug.name()).collect();
    for name in options.only.iter().chain(&options.except) {
        if !known.contains(&name.as_str()) {
            return Err(format!(
                "unknown bug {name:?}; the planted bugs are: {}",
                known.join(", ")
            ));
        }
        if !options.generic && !bugs.iter().any(|profile| profile.name() == name) {
            return Err(format!(
                "bug {name:?} has no bespoke schedule; score it with --generic"
            ));
        }
    }
    if let Some(name) = options
        .only
        .iter()
        .find(|name| options.except.contains(name))
    {
        return Err(format!(
            "bug {name:?} is both asked for (--bug) and left out (--except)"
        ));
    }
    if !options.only.is_empty() {
        bugs.retain(|profile| options.only.iter().any(|name| name == profile.name()));
    }
    bugs.retain(|profile| !options.except.iter().any(|name| name == profile.name()));
    let selected = |bug: &Bug| {
        (options.only.is_empty() || options.only.iter().any(|name| name == bug.name()))
            && !options.except.iter().any(|name| name == bug.name())
            && !options.skip_bugs
    };
    let unscheduled: Vec<String> = Bug::ALL
        .into_iter()
        .filter(|bug| selected(bug) && bug_profile(*bug).is_none())
        .map(|bug| bug.name().to_string())
        .collect();
    if options.skip_bugs {
        bugs.clear();
    }
    let bespoke_count = bugs.len();
    let correct = if options.generic {
        // The generic campaign's own false-positive check; the bespoke schedules' correct
        // runs are the default selftest's job.
        bugs.extend(
            Bug::ALL
                .into_iter()
                .filter(selected)
                .map(|bug| generic_profile(Some(bug))),
        );
        vec![generic_profile(None)]
    } else {
        correct_profiles()
    };
    // Interleaved by seed index so that every campaign makes progress together and a caught
    // bug stops using the pool early.
    let mut jobs = Vec::new();
    for seed_index in 0..options.seeds {
        for (position, profile) in bugs.iter().enumerate() {
            jobs.push(Job {
                campaign: position,
                seed_index,
                profile: profile.clone(),
            });
        }
        if !options.skip_correct {
            jobs.push(Job {
                campaign: bugs.len(),
                seed_index,
                profile: correct[seed_index as usize % correct.len()].clone(),
            });
        }
    }
    // First detecting seed index per bug campaign (u64::MAX = none yet).
    let first_caught: Vec<std::sync::atomic::AtomicU64> = (0..bugs.len())
        .map(|_| std::sync::atomic::AtomicU64::new(u64::MAX))
        .collect();
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, u64, RunSummary)>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..options.jobs {
            scope.spawn(|| loop {
                let position = next.fetch_add(1, Ordering::SeqCst);
                let Some(job) = jobs.get(position) else {
                    break;
                };
                if job.campaign < bugs.len()
                    && first_caught[job.campaign].load(Ordering::SeqCst) < job.seed_index
                {
                    continue;
                }
                let seed = options.seed_base + job.seed_index;
                let summary = run_one(&job.profile, seed, &options.out_dir);
                if job.campaign < bugs.len() && summary.verdict == "invalid" {
                    first_caught[job.campaign].fetch_min(job.seed_index, Ordering::SeqCst);
                }
                results
                    .lock()
                    .expect("no worker panics while holding the lock")
                    .push((job.campaign, job.seed_index, summary));
            });
        }
    });
    let mut results = results.into_inner().expect("workers are done");
    results.sort_by_key(|(campaign, seed_index, _)| (*campaign, *seed_index));
    let bug_results: Vec<BugResult> = bugs
        .iter()
        .enumerate()
        .map(|(position, profile)| {
            let runs: Vec<&RunSummary> = results
                .iter()
                .filter(|(campaign, _, _)| *campaign == position)
                .map(|(_, _, summary)| summary)
                .collect();
            bug_result(profile, &runs)
        })
        .collect();
    let correct_result = (!options.skip_correct).then(|| {
        let runs: Vec<&RunSummary> = results
            .iter()
            .filter(|(campaign, _, _)| *campaign == bugs.len())
            .map(|(_, _, summary)| summary)
            .collect();
        CorrectResult {
            runs: runs.len() as u64,
            valid: runs.iter().filter(|run| run.verdict == "valid").count() as u64,
            failures: runs
                .iter()
                .filter(|run| run.verdict != "valid")
                .map(|run| (*run).clone())
                .collect(),
        }
    });
    let mut bug_results = bug_results;
    let generic_results = options
        .generic
        .then(|| bug_results.split_off(bespoke_count));
    let ok = bug_results
        .iter()
        .all(|result| result.status != BugStatus::NotCaught)
        && correct_result
            .as_ref()
            .is_none_or(|correct| correct.failures.is_empty());
    Ok(SelftestReport {
        seeds: options.seeds,
        seed_base: options.seed_base,
        jobs: options.jobs,
        correct: correct_result,
        bugs: bug_results,
        unscheduled,
        generic: generic_results,
        ok,
        wall_ms: started.elapsed().as_millis() as u64,
    })
}

/// The median of the generic campaign's seeds to first detection over `results`, a miss
/// counting as more than the seeds it ran: `Some(">N")` when the median falls on a miss,
/// `None` for no results.
pub fn median_seeds_to_detection(results: &[BugResult]) -> Option<String> {
    if results.is_empty() {
        return None;
    }
    // A miss sorts after every detection: (1, seeds run) against (0, seeds to detection).
    let mut keys: Vec<(u8, u64)> = results
        .iter()
        .map(|result| match result.seeds_to_detection {
            Some(seeds) => (0, seeds),
            None => (1, result.seeds_run),
        })
        .collect();
    keys.sort_unstable();
    let show = |(missed, seeds): (u8, u64)| {
        if missed == 1 {
            format!(">{seeds}")
        } else {
            seeds.to_string()
        }
    };
    let middle = keys.len() / 2;
    if keys.len() % 2 == 1 {
        return Some(show(keys[middle]));
    }
    let (low, high) = (keys[middle - 1], keys[middle]);
    Some(match (low, high) {
        ((0, a), (0, b)) => {
            let sum = a + b;
            if sum % 2 == 0 {
                (sum / 2).to_string()
            } else {
                format!("{}.5", sum / 2)
            }
        }
        // Half the bugs or more were missed: the median is past the seeds run.
        (_, high) => show(high),
    })
}

fn bug_result(profile: &Profile, runs: &[&RunSummary]) -> BugResult {
    // Runs come sorted by seed; the campaign counts the seeds up to its first detection.
    let detection_position = runs.iter().position(|run| run.verdict == "invalid");
    let counted = detection_position.map_or(runs.len(), |position| position + 1);
    let status = match detection_position {
        Some(_) => BugStatus::Caught,
        None => BugStatus::NotCaught,
    };
    BugResult {
        bug: profile.name().to_string(),
        status,
        seeds_to_detection: detection_position.map(|position| position as u64 + 1),
        seeds_run: counted as u64,
        faults: profile.describe_faults(),
        expected: profile.expected.to_string(),
        detection: detection_position.map(|position| runs[position].clone()),
        errors: runs[..counted]
            .iter()
            .filter(|run| run.verdict == "error")
            .map(|run| (*run).clone())
            .collect(),
        shrunk: None,
    }
}

/// Runs one seed of a profile. A panic inside the simulation is an error of the run (the
/// harness could not judge it), never a detection.
fn run_one(profile: &Profile, seed: u64, out_dir: &Path) -> RunSummary {
    let options = profile.run_options(seed, out_dir);
    let started = std::time::Instant::now();
    let outcome = catch_unwind(AssertUnwindSafe(|| crate::run(&options)));
    let wall_ms = started.elapsed().as_millis() as u64;
    let error = |message: String| RunSummary {
        seed,
        verdict: "error".to_string(),
        anomaly: Some(message),
        run_dir: None,
        reproduce: Some(format!(
            "{} --schedule <the profile's schedule>",
            options.reproduce_command()
        )),
        wall_ms,
    };
    let outcome = match outcome {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(run_error)) => return error(format!("run failed: {run_error}")),
        Err(payload) => {
            let message = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|text| text.to_string()))
                .unwrap_or_else(|| "unknown panic".to_string());
            return error(format!("panic: {message}"));
        }
    };
    let mut anomalies = Vec::new();
    if outcome.verdict == Verdict::Invalid {
        anomalies.push(describe_invalid(&outcome.causes, &outcome.results));
    }
    let verdict = if !anomalies.is_empty() {
        "invalid"
    } else {
        match outcome.verdict {
            Verdict::Valid => "valid",
            Verdict::Invalid => "invalid",
            Verdict::Unknown => "unknown",
        }
    };
    // The run itself skipped its report to save time; a person replaying it wants one (the
    // history, and so its hash, is the same either way).
    let reproduce = outcome
        .reproduce
        .strip_suffix(" --no-report")
        .unwrap_or(&outcome.reproduce)
        .to_string();
    RunSummary {
        seed,
        verdict: verdict.to_string(),
        anomaly: (!anomalies.is_empty()).then(|| anomalies.join("; ")),
        run_dir: Some(outcome.run_dir.clone()),
        reproduce: Some(reproduce),
        wall_ms,
    }
}

/// The causes of an invalid run, with the checker's first reason and the failed invariants'
/// details: what a person reading the table needs to recognise the bug.
fn describe_invalid(causes: &[String], results: &Value) -> String {
    let mut parts = Vec::new();
    for cause in causes {
        if cause == "linearizability" {
            let counterexample = &results["checker"]["counterexample"];
            let reason = counterexample["stuck"][0]["reason"].as_str();
            let key = counterexample["key"].as_str().unwrap_or("?");
            match reason {
                Some(reason) => parts.push(format!("not linearizable (key {key}): {reason}")),
                None => parts.push("not linearizable".to_string()),
            }
        } else if let Some(name) = cause.strip_prefix("invariant: ") {
            let detail = results["invariants"]
                .as_array()
                .and_then(|invariants| {
                    invariants
                        .iter()
                        .find(|invariant| invariant["name"].as_str() == Some(name))
                })
                .and_then(|invariant| invariant["detail"].as_str())
                .map(|detail| shorten(detail, 160));
            match detail {
                Some(detail) => parts.push(format!("invariant {name:?} failed: {detail}")),
                None => parts.push(format!("invariant {name:?} failed")),
            }
        } else if cause == crate::stall::CAUSE {
            match results["stall"]["detail"].as_str() {
                Some(detail) => parts.push(format!("no progress: {detail}")),
                None => parts.push(cause.clone()),
            }
        } else {
            parts.push(cause.clone());
        }
    }
    parts.join("; ")
}

fn shorten(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_string();
    }
    let mut short: String = text.chars().take(max_chars).collect();
    short.push('…');
    short
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn result(seeds_to_detection: Option<u64>, seeds_run: u64) -> BugResult {
        BugResult {
            bug: "b".to_string(),
            status: if seeds_to_detection.is_some() {
                BugStatus::Caught
            } else {
                BugStatus::NotCaught
            },
            seeds_to_detection,
            seeds_run,
            faults: String::new(),
            expected: String::new(),
            detection: None,
            errors: Vec::new(),
            shrunk: None,
        }
    }

    #[test]
    fn median_counts_a_miss_as_more_than_the_seeds_run() {
        assert_eq!(median_seeds_to_detection(&[]), None);
        let caught = |seeds| result(Some(seeds), seeds);
        let missed = || result(None, 100);
        assert_eq!(
            median_seeds_to_detection(&[caught(7), missed(), caught(1)]),
            Some("7".to_string())
        );
        assert_eq!(
            median_seeds_to_detection(&[caught(4), caught(1), missed(), caught(9)]),
            Some("6.5".to_string())
        );
        assert_eq!(
            median_seeds_to_detection(&[caught(4), missed(), missed(), caught(9)]),
            Some(">100".to_string())
        );
    }

    #[test]
    fn an_invalid_run_is_described_by_its_checker_reason_and_failed_invariants() {
        let results = json!({
            "checker": {"counterexample": {"key": "k2", "stuck": [{"reason": "read returned 3 but the counter is 12"}]}},
            "invariants": [{"name": "one leader per term", "ok": false, "detail": "n1 and n3 in term 4"}]
        });
        let causes = vec![
            "linearizability".to_string(),
            "invariant: one leader per term".to_string(),
            "no progress".to_string(),
        ];
        assert_eq!(
            describe_invalid(&causes, &results),
            "not linearizable (key k2): read returned 3 but the counter is 12; \
             invariant \"one leader per term\" failed: n1 and n3 in term 4; no progress"
        );
    }
}

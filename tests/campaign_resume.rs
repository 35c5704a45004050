//! A campaign killed half way and restarted completes with every seed run exactly once: the
//! runs finished before the kill are neither redone nor lost, and no duplicate run dirs
//! appear. Runs the real `minos` binary.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use common::{minos_command, scratch_dir, PLANTED_NO_DEDUP, SMALL_RUN};

const SEEDS_COUNT: u64 = 40;

fn campaign_command(out: &Path) -> Command {
    campaign_over(out, SEEDS_COUNT)
}

fn campaign_over(out: &Path, seeds_count: u64) -> Command {
    let mut command = minos_command();
    command
        .args([
            "campaign",
            "--seeds",
            &format!("0..{seeds_count}"),
            "--jobs",
            "2",
        ])
        .args(SMALL_RUN)
        .args(["--name", "resume", "--no-report", "--out"])
        .arg(out);
    command
}

/// Every run dir under the campaign's test dir: name -> (finished, history mtime).
fn run_dirs(campaign: &Path) -> BTreeMap<String, (bool, Option<SystemTime>)> {
    let mut found = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(campaign.join("counter")) else {
        return found;
    };
    for entry in entries.filter_map(Result::ok) {
        if !entry.file_type().unwrap().is_dir() {
            continue;
        }
        let path = entry.path();
        let finished = path.join("results.json").is_file();
        let mtime = std::fs::metadata(path.join("history.jsonl"))
            .and_then(|m| m.modified())
            .ok();
        found.insert(
            entry.file_name().to_string_lossy().to_string(),
            (finished, mtime),
        );
    }
    found
}

#[test]
fn killed_campaign_resumes_without_redoing_or_losing_runs() {
    let out = scratch_dir("campaign-resume");
    let campaign = out.join("resume");

    let mut child = campaign_command(&out)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    loop {
        let finished = run_dirs(&campaign)
            .values()
            .filter(|(done, _)| *done)
            .count();
        if finished >= 4 || child.try_wait().unwrap().is_some() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "no run finished"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let killed_early = child.wait().unwrap().code().is_none();
    let before = run_dirs(&campaign);
    let finished_before: BTreeMap<&String, SystemTime> = before
        .iter()
        .filter(|(_, (done, _))| *done)
        .map(|(name, (_, mtime))| (name, mtime.unwrap()))
        .collect();
    assert!(!finished_before.is_empty());
    if !killed_early || finished_before.len() as u64 == SEEDS_COUNT {
        eprintln!("note: the campaign finished before the kill; resume only skips");
    }

    let output = campaign_command(&out).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        matches!(output.status.code(), Some(0) | Some(1)),
        "{stdout}\n{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "resuming: {} of {SEEDS_COUNT} seeds already finished",
            finished_before.len()
        )),
        "{stderr}"
    );
    assert!(
        stdout.contains(&format!(
            "{SEEDS_COUNT} seeds: {} run now, {} resumed, 0 not run",
            SEEDS_COUNT - finished_before.len() as u64,
            finished_before.len()
        )),
        "{stdout}"
    );

    let after = run_dirs(&campaign);
    let expected: Vec<String> = (0..SEEDS_COUNT).map(|s| format!("sim-seed{s}")).collect();
    let mut names: Vec<String> = after.keys().cloned().collect();
    names.sort_by_key(|name| name.trim_start_matches("sim-seed").parse::<u64>().ok());
    assert_eq!(
        names, expected,
        "exactly one run dir per seed, no duplicates"
    );
    assert!(after.values().all(|(done, _)| *done), "every run finished");
    for (name, mtime) in &finished_before {
        assert_eq!(
            after[*name].1,
            Some(*mtime),
            "{name} finished before the kill and must not be redone"
        );
    }
    // A third invocation has nothing left to do.
    let output = campaign_command(&out).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains(&format!(
            "{SEEDS_COUNT} seeds: 0 run now, {SEEDS_COUNT} resumed"
        )),
        "{stdout}"
    );
    std::fs::remove_dir_all(&out).unwrap();
}

/// Ctrl-C stops starting runs: the runs under way finish (no half-written run dir), the
/// summary says how many seeds were left, and the exit code is "unknown".
#[test]
fn ctrl_c_stops_the_campaign_gracefully() {
    const MANY_SEEDS: u64 = 2_000;
    let out = scratch_dir("campaign-interrupt");
    let campaign = out.join("resume");
    let child = campaign_over(&out, MANY_SEEDS)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while run_dirs(&campaign)
        .values()
        .filter(|(done, _)| *done)
        .count()
        < 2
    {
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "no run finished"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let signalled = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(signalled.success());
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(2), "{stdout}");
    let dirs = run_dirs(&campaign);
    assert!(
        dirs.values().all(|(done, _)| *done),
        "the runs under way finish before the campaign stops"
    );
    let finished = dirs.len() as u64;
    assert!(finished < MANY_SEEDS, "{stdout}");
    assert!(
        stdout.contains(&format!(
            "interrupted: {} seeds not run; rerun the same command to continue",
            MANY_SEEDS - finished
        )),
        "{stdout}"
    );
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn a_campaign_dir_with_other_options_is_refused() {
    let out = scratch_dir("campaign-mismatch");
    let run = |clients: &str| {
        minos_command()
            .args([
                "campaign",
                "--seeds",
                "0..1",
                "--nodes",
                "3",
                "--clients",
                clients,
                "--time-limit",
                "1s",
                "--name",
                "same",
                "--no-report",
                "--out",
            ])
            .arg(&out)
            .output()
            .unwrap()
    };
    assert_eq!(run("2").status.code(), Some(0));
    let output = run("3");
    assert_eq!(output.status.code(), Some(254));
    assert!(String::from_utf8_lossy(&output.stderr).contains("holds a campaign with other options"));
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn bad_campaign_arguments_exit_254() {
    for args in [
        vec!["--seeds", "5..5"],
        vec!["--seeds", "0..4", "--shard", "4/3"],
        vec!["--seeds", "0..4", "--jobs", "0"],
        vec!["--seeds", "0..4", "--seed", "3"],
        vec!["--seeds", "0..4", "--check-determinism", "0"],
    ] {
        let output = minos_command()
            .arg("campaign")
            .args(&args)
            .args(["--no-report", "--out"])
            .arg(std::env::temp_dir().join("minos-never-written"))
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(254), "{args:?}");
    }
}

#[test]
fn an_exhausted_budget_leaves_seeds_unrun_and_exits_unknown() {
    let out = scratch_dir("campaign-budget");
    let output = minos_command()
        .args([
            "campaign",
            "--seeds",
            "0..100000",
            "--budget",
            "0s",
            "--time-limit",
            "1s",
            "--no-report",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(2), "{stdout}");
    assert!(
        stdout.contains("100000 seeds: 0 run now, 0 resumed, 100000 not run"),
        "{stdout}"
    );
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn keep_failures_drops_the_bulk_of_valid_runs_and_still_resumes() {
    let out = scratch_dir("campaign-keep");
    let run = || {
        minos_command()
            .args(["campaign", "--seeds", "0..6"])
            .args(SMALL_RUN)
            .args(PLANTED_NO_DEDUP)
            .args([
                "--keep",
                "failures",
                "--no-report",
                "--name",
                "keep",
                "--out",
            ])
            .arg(&out)
            .output()
            .unwrap()
    };
    let first = run();
    assert!(matches!(first.status.code(), Some(0) | Some(1)));
    let mut valid_count = 0;
    for entry in std::fs::read_dir(out.join("keep/counter-no-dedup")).unwrap() {
        let dir = entry.unwrap().path();
        let text = std::fs::read_to_string(dir.join("results.json")).unwrap();
        let results: serde_json::Value = serde_json::from_str(&text).unwrap();
        let valid = results["verdict"] == "valid";
        valid_count += usize::from(valid);
        assert!(dir.join("schedule.json").is_file());
        assert_eq!(
            dir.join("history.jsonl").exists(),
            !valid,
            "{}",
            dir.display()
        );
        assert_eq!(dir.join("nodes").exists(), !valid, "{}", dir.display());
    }
    assert!(valid_count > 0, "some seeds of the planted bug stay valid");
    let second = run();
    let stdout = String::from_utf8_lossy(&second.stdout);
    assert!(stdout.contains("6 seeds: 0 run now, 6 resumed"), "{stdout}");
    assert_eq!(second.status.code(), first.status.code());
    std::fs::remove_dir_all(&out).unwrap();
}

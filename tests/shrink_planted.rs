//! `minos shrink` on a planted failure (`--bug no-dedup`, which the harness catches with
//! `--nemesis all`) returns a schedule that still fails, the same way, and is smaller; its
//! printed reproduce command replays the failure. Runs the real `minos` binary.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::{minos, scratch_dir, PLANTED_NO_DEDUP, SMALL_RUN};

fn text(output: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The run dir of the first seed (from 1) whose planted-bug run is invalid (exit 1), or of
/// the first valid one when `want_invalid` is false.
fn planted_run(out: &Path, want_invalid: bool) -> PathBuf {
    for seed in 1..40u64 {
        let seed_text = seed.to_string();
        let mut args = vec!["run", "--seed", &seed_text];
        args.extend(PLANTED_NO_DEDUP);
        args.extend(SMALL_RUN);
        args.extend(["--no-report", "--out", out.to_str().unwrap()]);
        let output = minos(&args);
        let code = output.status.code();
        if code == Some(if want_invalid { 1 } else { 0 }) {
            let stdout = String::from_utf8_lossy(&output.stdout);
            let dir = stdout
                .lines()
                .find_map(|line| line.strip_prefix("run dir "))
                .expect("minos run prints its run dir");
            return PathBuf::from(dir);
        }
        assert!(matches!(code, Some(0) | Some(1)), "{}", text(&output));
    }
    panic!("no seed in 1..40 gave the wanted verdict");
}

fn results(run_dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(run_dir.join("results.json")).unwrap()).unwrap()
}

/// The events of a schedule.json: a plain list, or a swarm run's `{"profile", "events"}`.
fn schedule_events(path: &Path) -> Vec<serde_json::Value> {
    let value: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let events = value.get("events").unwrap_or(&value);
    events
        .as_array()
        .unwrap_or_else(|| panic!("{}: no event list: {value}", path.display()))
        .clone()
}

#[test]
fn shrink_keeps_the_failure_and_makes_the_run_smaller() {
    let out = scratch_dir("shrink-planted");
    let run_dir = planted_run(&out, true);
    let original = results(&run_dir);
    let original_events = schedule_events(&run_dir.join("schedule.json"));

    let output = minos(&["shrink", run_dir.to_str().unwrap(), "--jobs", "2"]);
    let printed = text(&output);
    assert_eq!(output.status.code(), Some(0), "{printed}");
    assert!(printed.contains("still fails, kept"), "{printed}");

    let schedule_path = run_dir.join("shrink/schedule.json");
    let minimal_events = schedule_events(&schedule_path);
    assert!(minimal_events.len() <= original_events.len(), "{printed}");

    // The minimal run written by shrink fails with the same causes, and is smaller.
    let stdout = String::from_utf8_lossy(&output.stdout);
    let minimal_dir = stdout
        .lines()
        .find_map(|line| line.strip_prefix("minimal run dir "))
        .and_then(|rest| rest.split(" (verdict").next())
        .map(PathBuf::from)
        .expect("shrink prints the minimal run dir");
    let minimal = results(&minimal_dir);
    assert_eq!(minimal["verdict"], "invalid");
    assert_eq!(minimal["causes"], original["causes"]);
    let smaller = minimal_events.len() < original_events.len()
        || minimal["history"]["ops_count"].as_u64() < original["history"]["ops_count"].as_u64();
    assert!(smaller, "shrink made nothing smaller:\n{printed}");
    assert!(
        minimal_dir.join("index.html").is_file(),
        "the minimal run has its report"
    );

    // The last line reproduces the minimal failure bit-exactly, from inside the minimal run
    // dir: it names that run's own copy of the schedule (which a later shrink of the same run
    // cannot overwrite) relative to the run dir, so a copy of the dir replays too.
    let reproduce = stdout.lines().last().unwrap();
    let (cd, command) = reproduce
        .split_once(" && ")
        .expect("cd <run dir> && minos run ...");
    let absolute_dir = std::path::absolute(&minimal_dir).unwrap();
    assert_eq!(cd, format!("cd {}", absolute_dir.display()), "{reproduce}");
    assert!(command.starts_with("minos run "), "{reproduce}");
    assert!(
        command.contains(" --schedule schedule.json "),
        "{reproduce}"
    );
    assert!(command.ends_with(" --out replay"), "{reproduce}");
    assert_eq!(
        schedule_events(&minimal_dir.join("schedule.json")),
        minimal_events,
        "the copy is the minimal schedule"
    );
    let artifact = out.join("artifact");
    let copied = std::process::Command::new("cp")
        .args([
            "-r",
            minimal_dir.to_str().unwrap(),
            artifact.to_str().unwrap(),
        ])
        .status()
        .unwrap();
    assert!(copied.success());
    let mut args: Vec<&str> = command.split_whitespace().skip(1).collect();
    args.push("--no-report");
    let replay = common::minos_command()
        .args(&args)
        .current_dir(&artifact)
        .output()
        .unwrap();
    assert_eq!(replay.status.code(), Some(1), "{}", text(&replay));
    let replay_stdout = String::from_utf8_lossy(&replay.stdout);
    assert!(
        replay_stdout.contains(&format!(
            "history sha256 {}",
            minimal["history"]["sha256"].as_str().unwrap()
        )),
        "the replay from a copy of the run dir gives the same history"
    );
    assert!(
        artifact.join("replay").is_dir(),
        "the replay is inside the copy"
    );
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn shrink_refuses_valid_runs_and_missing_dirs() {
    let out = scratch_dir("shrink-refuses");
    let valid_dir = planted_run(&out, false);
    let output = minos(&["shrink", valid_dir.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(254), "{}", text(&output));
    assert!(text(&output).contains("not an invalid run"));
    let output = minos(&["shrink", out.join("no-such-run").to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(254), "{}", text(&output));
    std::fs::remove_dir_all(&out).unwrap();
}

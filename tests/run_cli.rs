//! `minos run` end to end: the printed reproduce command replays the run to the same history
//! SHA-256, exit codes follow DESIGN.md §2, and bad input is refused with exit 254.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn minos() -> Command {
    Command::new(env!("CARGO_BIN_EXE_minos"))
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("minos-run-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn sha_line(text: &str) -> String {
    text.lines()
        .find_map(|line| line.strip_prefix("history sha256 "))
        .unwrap_or_else(|| panic!("no sha line in:\n{text}"))
        .to_string()
}

fn run_dir_line(text: &str) -> PathBuf {
    PathBuf::from(
        text.lines()
            .find_map(|line| line.strip_prefix("run dir "))
            .expect("run dir line"),
    )
}

#[test]
fn the_printed_reproduce_command_replays_the_same_history() {
    let out = temp_dir("reproduce");
    let output = minos()
        .args([
            "run",
            "--seed",
            "5",
            "--time-limit",
            "5s",
            "--nemesis",
            "all",
            "--nemesis-interval",
            "1s",
            "--no-report",
        ])
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let text = stdout(&output);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{text}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(text.contains("verdict: valid"), "{text}");
    let reproduce = text.lines().last().unwrap().to_string();
    assert!(reproduce.starts_with("minos run --seed 5 "), "{reproduce}");
    assert!(
        reproduce.contains("--nodes 5 --clients 10 --keys 4 --time-limit 5s --rate 100"),
        "{reproduce}"
    );
    let sha = sha_line(&text);
    let run_dir = run_dir_line(&text);
    for file in [
        "history.jsonl",
        "history.csv",
        "results.json",
        "schedule.json",
        "nodes/n1.log",
    ] {
        assert!(
            run_dir.join(file).is_file(),
            "{file} missing in {}",
            run_dir.display()
        );
    }

    let arguments: Vec<&str> = reproduce.split_whitespace().skip(1).collect();
    let replay = minos().args(&arguments).output().unwrap();
    let replay_text = stdout(&replay);
    assert_eq!(replay.status.code(), Some(0), "{replay_text}");
    assert_eq!(sha_line(&replay_text), sha);
    assert_ne!(run_dir_line(&replay_text), run_dir);
    assert_eq!(
        std::fs::read(run_dir.join("history.jsonl")).unwrap(),
        std::fs::read(run_dir_line(&replay_text).join("history.jsonl")).unwrap()
    );

    // Replaying the written schedule gives the same history too.
    let scheduled = minos()
        .args([
            "run",
            "--seed",
            "5",
            "--time-limit",
            "5s",
            "--nemesis",
            "all",
            "--nemesis-interval",
            "1s",
            "--no-report",
        ])
        .arg("--schedule")
        .arg(run_dir.join("schedule.json"))
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let scheduled_text = stdout(&scheduled);
    assert_eq!(sha_line(&scheduled_text), sha, "{scheduled_text}");
    assert!(
        scheduled_text
            .lines()
            .last()
            .unwrap()
            .contains("--schedule "),
        "{scheduled_text}"
    );
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn a_broken_store_exits_invalid_and_says_why() {
    let out = temp_dir("broken");
    let output = minos()
        .args([
            "run",
            "--seed",
            "3",
            "--time-limit",
            "5s",
            "--nemesis",
            "partition",
            "--nemesis-interval",
            "1s",
        ])
        .args(["--system", "toy-follower-reads", "--no-report", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(
        text.contains("verdict: invalid (linearizability)"),
        "{text}"
    );
    assert!(
        text.lines()
            .last()
            .unwrap()
            .contains("--system toy-follower-reads"),
        "{text}"
    );
    let results: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run_dir_line(&text).join("results.json")).unwrap())
            .unwrap();
    assert_eq!(results["verdict"], "invalid");
    assert!(results["checker"]["counterexample"].is_object());
    std::fs::remove_dir_all(&out).unwrap();
}

fn assert_bad_input(arguments: &[&str], expected: &str, out: &Path) {
    let output = minos()
        .arg("run")
        .args(arguments)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(254), "{arguments:?}: {stderr}");
    assert!(stderr.contains(expected), "{arguments:?}: {stderr}");
}

#[test]
fn bad_input_exits_254_with_a_reason() {
    let out = temp_dir("bad-input");
    assert_bad_input(&["--nodes", "0"], "--nodes", &out);
    assert_bad_input(&["--nemesis", "partition,meteor"], "meteor", &out);
    assert_bad_input(&["--time-limit", "soon"], "duration", &out);
    assert_bad_input(&["--workload", "queue"], "queue", &out);
    assert_bad_input(&["--bug", "no-such-bug"], "no-such-bug", &out);
    // A fault the system under test cannot take is refused, never faked.
    assert_bad_input(
        &["--system", "toy-follower-reads", "--nemesis", "pause"],
        "pause",
        &out,
    );
    assert_bad_input(
        &["--schedule", "/no/such/schedule.json"],
        "cannot read",
        &out,
    );
    let schedule = out.join("bad-schedule.json");
    std::fs::write(
        &schedule,
        r#"[{"at_ms": 100, "action": "start-kill", "targets": ["n7"]}]"#,
    )
    .unwrap();
    assert_bad_input(&["--schedule", schedule.to_str().unwrap()], "n7", &out);
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn help_shows_what_replay_lines_use_and_not_what_a_command_refuses() {
    let run_help = stdout(
        &minos()
            .args(["run", "--help"])
            .output()
            .expect("minos runs"),
    );
    for option in ["--max-stall", "--max-append-entries", "--schedule", "--bug"] {
        assert!(run_help.contains(option), "run --help lacks {option}");
    }
    let campaign_help = stdout(
        &minos()
            .args(["campaign", "--help"])
            .output()
            .expect("minos runs"),
    );
    assert!(campaign_help.contains("--seeds"), "{campaign_help}");
    assert!(
        !campaign_help.contains("--seed "),
        "campaign refuses --seed, so its help must not offer it"
    );
}

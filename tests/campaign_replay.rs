//! Following a campaign run's reproduce command as a person would (the command shown on the
//! run's page, pasted into a shell) replays the run bit-exactly into a place of its own: the
//! campaign's runs and counts stay as they were. With a scripted schedule the command runs
//! inside the run dir (`cd <run dir> && ... --schedule schedule.json --out replay`), so it works
//! from a copy of the run dir too (a CI artifact). Runs the real `minos` binary.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{minos, scratch_dir, PLANTED_NO_DEDUP, SMALL_RUN};

/// The reproduce command the run page shows.
fn page_command(run_dir: &Path) -> String {
    let page = std::fs::read_to_string(run_dir.join("index.html")).unwrap();
    let start = page
        .find("<pre id=\"reproduce\">")
        .expect("reproduce block")
        + 20;
    let end = start + page[start..].find("</pre>").unwrap();
    page[start..end]
        .replace("&#39;", "'")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// Runs a command line in `sh` from `cwd`, with the test's `minos` first on PATH.
fn shell(command: &str, cwd: &Path) -> std::process::Output {
    let bin = Path::new(env!("CARGO_BIN_EXE_minos")).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    Command::new("sh")
        .args(["-c", command])
        .current_dir(cwd)
        .env("PATH", path)
        .output()
        .unwrap()
}

fn stdout_line<'a>(output: &'a str, prefix: &str) -> &'a str {
    output
        .lines()
        .find_map(|line| line.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no {prefix:?} line in:\n{output}"))
}

/// Run dirs of a campaign, and its junit test cases (one per seed), after rebuilding its page.
fn campaign_counts(campaign: &Path) -> (Vec<PathBuf>, usize) {
    let rebuilt = minos(&["report", campaign.to_str().unwrap()]);
    // `minos report` exits with the worst verdict it found.
    assert!(matches!(rebuilt.status.code(), Some(0 | 1)), "{rebuilt:?}");
    let junit = std::fs::read_to_string(campaign.join("junit.xml")).unwrap();
    (
        minos_reports::discover::run_dirs(campaign),
        junit.matches("<testcase").count(),
    )
}

fn results(run_dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(run_dir.join("results.json")).unwrap()).unwrap()
}

#[test]
fn a_campaign_runs_replay_goes_to_its_own_place_and_leaves_the_counts() {
    let store = scratch_dir("campaign-replay");
    let mut args = vec![
        "campaign", "--seeds", "1..=8", "--jobs", "2", "--name", "replay", "--out",
    ];
    args.push(store.to_str().unwrap());
    args.extend(SMALL_RUN);
    args.extend(PLANTED_NO_DEDUP);
    let campaign_run = minos(&args);
    assert_eq!(campaign_run.status.code(), Some(1), "{campaign_run:?}");
    let campaign = store.join("replay");
    let (runs_before, cases_before) = campaign_counts(&campaign);
    // Eight seeds: which of them catch no-dedup in 4 s depends on what the swarm draws.
    assert_eq!(runs_before.len(), 8);
    assert_eq!(cases_before, 8);
    let failing = runs_before
        .iter()
        .find(|dir| results(dir)["verdict"] == "invalid")
        .expect("a failing seed among 1..=8");

    // 1. Generated faults: the page's command writes to the store, beside the campaign.
    let command = page_command(failing);
    assert!(!command.contains("--no-report"), "{command}");
    let replay = shell(&command, &store);
    assert_eq!(replay.status.code(), Some(1), "{replay:?}");
    let printed = String::from_utf8_lossy(&replay.stdout);
    let replay_dir = PathBuf::from(stdout_line(&printed, "run dir "));
    assert!(
        !replay_dir.starts_with(&campaign),
        "{replay_dir:?} is inside the campaign"
    );
    assert_eq!(
        stdout_line(&printed, "history sha256 "),
        results(failing)["history"]["sha256"].as_str().unwrap()
    );
    assert_eq!(campaign_counts(&campaign), (runs_before.clone(), 8));

    // 2. A scripted schedule (the failing run's own): the command runs inside the run dir,
    //    names the schedule relative to it, and replays from a copy of the run dir.
    let schedule = failing.join("schedule.json");
    let mut args = vec![
        "campaign",
        "--seeds",
        "1..=2",
        "--jobs",
        "2",
        "--name",
        "scripted",
        "--schedule",
        schedule.to_str().unwrap(),
        "--out",
    ];
    args.push(store.to_str().unwrap());
    args.extend(SMALL_RUN);
    args.extend(PLANTED_NO_DEDUP);
    let scripted_run = minos(&args);
    assert!(
        matches!(scripted_run.status.code(), Some(0 | 1)),
        "{scripted_run:?}"
    );
    let scripted = store.join("scripted");
    let (scripted_runs, scripted_cases) = campaign_counts(&scripted);
    assert_eq!(scripted_runs.len(), 2);
    let run_dir = &scripted_runs[0];
    let command = page_command(run_dir);
    let (cd, rest) = command.split_once(" && ").expect("cd <run dir> && ...");
    assert_eq!(
        cd,
        format!("cd {}", std::path::absolute(run_dir).unwrap().display())
    );
    assert!(rest.contains(" --schedule schedule.json "), "{command}");
    assert!(rest.ends_with(" --out replay"), "{command}");
    assert!(
        !rest.contains(&store.display().to_string()),
        "no absolute path after the cd: {command}"
    );
    let sha = results(run_dir)["history"]["sha256"]
        .as_str()
        .unwrap()
        .to_string();
    let verdict_code = match results(run_dir)["verdict"].as_str().unwrap() {
        "valid" => 0,
        "invalid" => 1,
        other => panic!("verdict {other}"),
    };
    let replay = shell(&command, &store);
    assert_eq!(replay.status.code(), Some(verdict_code), "{replay:?}");
    let printed = String::from_utf8_lossy(&replay.stdout);
    assert_eq!(stdout_line(&printed, "history sha256 "), sha);
    let replay_dir = PathBuf::from(stdout_line(&printed, "run dir "));
    assert!(replay_dir.starts_with("replay"), "{replay_dir:?}");
    assert_eq!(
        campaign_counts(&scripted),
        (scripted_runs.clone(), scripted_cases)
    );

    // The run dir copied elsewhere (a CI artifact), and the part after `&&` run inside it.
    let artifact = scratch_dir("campaign-replay-artifact").join("run");
    let copied = Command::new("cp")
        .args(["-r", run_dir.to_str().unwrap(), artifact.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(copied.success());
    std::fs::remove_dir_all(run_dir.join("replay")).unwrap();
    let replay = shell(rest, &artifact);
    assert_eq!(replay.status.code(), Some(verdict_code), "{replay:?}");
    let printed = String::from_utf8_lossy(&replay.stdout);
    assert_eq!(stdout_line(&printed, "history sha256 "), sha);
    assert!(artifact.join("replay").is_dir());
    // The replay's own command points at where it ran.
    let last = printed.lines().last().unwrap();
    assert!(
        last.starts_with("cd ") && last.contains("/replay/"),
        "{last}"
    );
    std::fs::remove_dir_all(&store).unwrap();
    std::fs::remove_dir_all(artifact.parent().unwrap()).unwrap();
}

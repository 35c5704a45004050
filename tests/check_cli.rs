//! `minos check` with several files (issue 16 item 5): one file nested too deep is a bad-input
//! error for that file (exit 254), and the verdicts of the others are still printed.

mod common;

use common::{minos, scratch_dir};

#[test]
fn a_deep_file_among_several_loses_no_other_verdict() {
    let dir = scratch_dir("check-deep");
    let good = dir.join("good.log");
    std::fs::write(
        &good,
        "INFO  jepsen.util - 1\t:invoke\t:write\t1\nINFO  jepsen.util - 1\t:ok\t:write\t1\n",
    )
    .unwrap();
    let deep = dir.join("deep.edn");
    let depth = 60_000;
    std::fs::write(
        &deep,
        format!(
            "[{{:process 1, :type :invoke, :f :write, :value {}1{}}}]",
            "[".repeat(depth),
            "]".repeat(depth)
        ),
    )
    .unwrap();
    let bad_log = dir.join("bad.log");
    std::fs::write(
        &bad_log,
        format!(
            "INFO  jepsen.util - 1\t:invoke\t:write\t{}1\n",
            "[".repeat(depth)
        ),
    )
    .unwrap();
    for args in [
        vec![
            "check",
            good.to_str().unwrap(),
            deep.to_str().unwrap(),
            bad_log.to_str().unwrap(),
        ],
        vec![
            "check",
            "--json",
            good.to_str().unwrap(),
            deep.to_str().unwrap(),
            bad_log.to_str().unwrap(),
        ],
    ] {
        let output = minos(&args);
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(254), "{stdout}\n{stderr}");
        assert!(
            stdout.contains("good.log"),
            "the good file's verdict: {stdout}"
        );
        assert!(
            stderr.contains("deep.edn:1: brackets nest deeper than"),
            "{stderr}"
        );
        assert!(
            stderr.contains("bad.log:1: value nests brackets deeper"),
            "{stderr}"
        );
        assert!(stderr.len() < 2_000, "bounded messages: {stderr}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[path = "../checker/tests/support/kv_gen.rs"]
mod kv_gen;

/// `--time-limit` covers reading and parsing too: a budget far below what a 100k-op file
/// needs ends in unknown (exit 2), naming the phase it cut, in text and in JSON.
#[test]
fn a_tiny_time_limit_on_a_large_file_is_unknown_with_its_phase() {
    let dir = scratch_dir("check-time-limit");
    let spec = kv_gen::SCALE_SPECS
        .iter()
        .find(|spec| spec.name == "c20-100k-ok")
        .expect("a 100k-op workload");
    let file = dir.join("big.txt");
    std::fs::write(&file, kv_gen::generate(spec)).unwrap();
    let phases = ["reading", "parsing", "partitioning", "searching"];
    let output = minos(&["check", "--time-limit", "1ms", file.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(2), "{stdout}");
    assert!(stdout.starts_with("unknown:"), "{stdout}");
    assert!(
        phases
            .iter()
            .any(|phase| stdout.contains(&format!("time limit ran out while {phase}"))),
        "{stdout}"
    );
    let output = minos(&[
        "check",
        "--json",
        "--time-limit",
        "1ms",
        file.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(2));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["verdict"], "unknown");
    assert_eq!(report["unknown_reason"], "time limit");
    let phase = report["cut_phase"].as_str().expect("the phase cut");
    assert!(phases.contains(&phase), "{phase}");
    let _ = std::fs::remove_dir_all(&dir);
}

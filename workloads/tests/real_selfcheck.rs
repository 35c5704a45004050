//! Adapter self-checks on real processes: one node, no faults, must be valid. An adapter bug
//! (a reply matched to the wrong request, a misread value) looks exactly like a system bug, so
//! each adapter proves itself here first. Needs root, iproute2, nftables and the system's
//! binary; without them the test says loudly that it skipped, and fails instead when
//! MINOS_REAL_REQUIRED=1 (CI sets it after installing them).

use minos_checker::Verdict;
use minos_workloads::{NemesisSpec, RunOptions, SystemKind, Workload};

fn skip_or_fail(system: SystemKind, why: &str) {
    if std::env::var("MINOS_REAL_REQUIRED").as_deref() == Ok("1") {
        panic!("{} self-check cannot run: {why}", system.name());
    }
    eprintln!(
        "\n*** SKIPPED: the {} self-check needs a real cluster: {why} ***\n",
        system.name()
    );
}

fn self_check(system: SystemKind, workload: Workload) {
    let out = std::env::temp_dir().join(format!(
        "minos-selfcheck-{}-{}",
        system.name(),
        std::process::id()
    ));
    let mut options = RunOptions::new(7);
    options.system = system;
    options.nodes = 1;
    options.clients = 4;
    options.keys = 2;
    options.workload = workload;
    options.time_limit_ms = 3_000;
    options.rate_ops_per_s = 100.0;
    options.nemesis = NemesisSpec::None;
    options.no_report = true;
    options.out_dir = out.clone();
    let outcome = match minos_workloads::run(&options) {
        Ok(outcome) => outcome,
        Err(error) if error.is_bad_input() => {
            // Preflight: not root, or a binary or nft missing (the message says which).
            return skip_or_fail(system, &error.to_string());
        }
        Err(error) => panic!("{} self-check failed to run: {error}", system.name()),
    };
    let history = std::fs::read_to_string(outcome.run_dir.join("history.jsonl")).unwrap();
    let records: Vec<serde_json::Value> = history
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let ok = |read: bool| {
        records
            .iter()
            .filter(|record| record["type"] == "ok" && (record["f"] == "read") == read)
            .count()
    };
    let (ok_reads, ok_updates) = (ok(true), ok(false));
    assert_eq!(
        outcome.verdict,
        Verdict::Valid,
        "{} self-check (one node, no faults) is not valid: {:?}\n{}",
        system.name(),
        outcome.causes,
        outcome.explanation.unwrap_or_default()
    );
    // A valid verdict over nothing proves nothing: the adapter must have done real work.
    assert!(
        ok_reads >= 20 && ok_updates >= 20,
        "{}: only {ok_reads} reads and {ok_updates} updates succeeded",
        system.name()
    );
    assert_eq!(outcome.results["replayable"], false);
    assert!(outcome.results["real"]["version"].as_str().is_some());
    let _ = std::fs::remove_dir_all(out);
}

#[test]
fn etcd_single_node_is_valid() {
    self_check(SystemKind::Etcd, Workload::CasRegister);
    self_check(SystemKind::Etcd, Workload::Counter);
}

#[test]
fn nats_single_node_is_valid() {
    self_check(SystemKind::Nats, Workload::CasRegister);
}

/// The server is the `minos` binary; cargo builds it for this package's tests only when asked,
/// so the test finds it next to itself (target/<profile>/minos). False (after saying so) when
/// it is not there.
fn find_minos_bin() -> bool {
    if std::env::var_os("MINOS_BIN").is_some() {
        return true;
    }
    let exe = std::env::current_exe().unwrap();
    let candidate = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|dir| dir.join("minos"));
    match candidate.filter(|path| path.is_file()) {
        Some(path) => {
            std::env::set_var("MINOS_BIN", path);
            true
        }
        None => {
            skip_or_fail(
                SystemKind::MinosNode,
                "no minos binary next to the tests (cargo build -p minos, or set MINOS_BIN)",
            );
            false
        }
    }
}

#[test]
fn minos_node_single_node_is_valid() {
    if find_minos_bin() {
        self_check(SystemKind::MinosNode, Workload::CasRegister);
    }
}

/// Each row of the real quorum table is a new cluster with its own data dirs and cluster key
/// (the second row once started its servers with the first row's key file, deleted with that
/// row's data, and never came up).
#[test]
fn minos_node_quorum_rows_are_clusters_of_their_own() {
    if !find_minos_bin() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("minos-real-quorum-{}", std::process::id()));
    let report = match minos_workloads::real::quorum::real_report(
        SystemKind::MinosNode,
        2,
        3_000,
        1,
        &dir,
    ) {
        Ok(report) => report,
        Err(error) if error.is_bad_input() => {
            let _ = std::fs::remove_dir_all(&dir);
            return skip_or_fail(SystemKind::MinosNode, &error.to_string());
        }
        Err(error) => panic!("real quorum of 1 and 2 minos-node servers: {error}"),
    };
    let _ = std::fs::remove_dir_all(&dir);
    let measured: Vec<(usize, usize)> = report
        .rows
        .iter()
        .map(|row| (row.servers, row.quorum))
        .collect();
    assert_eq!(measured, vec![(1, 1), (2, 2)], "{report:?}");
    assert!(!report.bit_exact);
}

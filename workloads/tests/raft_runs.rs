//! The driver against the real Raft store: determinism (same seed, byte-identical history;
//! the written schedule replays to the same history) and a long run under partition,kill.

use minos_checker::Verdict;
use minos_workloads::raft_store::RaftStore;
use minos_workloads::recorder::to_jsonl;
use minos_workloads::run::evaluate;
use minos_workloads::{FaultKind, NemesisSpec, RunOptions, Schedule};

fn store(options: &RunOptions) -> RaftStore {
    RaftStore::new(
        options.nodes,
        options.seed,
        options.bugs,
        options.op_timeout_ms,
    )
}

fn temp_out(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("minos-workloads-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Options for a run of `nodes` nodes driven by a scripted schedule (one checker thread).
fn scripted(seed: u64, nodes: usize, time_limit_ms: u64, schedule_json: &str) -> RunOptions {
    let mut options = RunOptions::new(seed);
    options.nodes = nodes;
    options.time_limit_ms = time_limit_ms;
    options.schedule = Some(Schedule::from_json(schedule_json, "test").unwrap());
    options.check_threads = 1;
    options
}

#[test]
fn one_seed_twice_gives_byte_identical_histories_and_run_dirs() {
    let out = temp_out("determinism");
    let mut options = RunOptions::new(77);
    options.time_limit_ms = 10_000;
    options.nemesis_interval_ms = 2_000;
    options.nemesis = NemesisSpec::All;
    options.out_dir = out.clone();
    options.no_report = true;
    options.check_threads = 1;
    let first = minos_workloads::run(&options).unwrap();
    let second = minos_workloads::run(&options).unwrap();
    assert_ne!(first.run_dir, second.run_dir);
    let history = std::fs::read(first.run_dir.join("history.jsonl")).unwrap();
    assert_eq!(
        history,
        std::fs::read(second.run_dir.join("history.jsonl")).unwrap()
    );
    assert_eq!(first.history_sha256, second.history_sha256);
    assert_eq!(
        first.history_sha256,
        minos_workloads::run::sha256_hex(&history)
    );
    for file in [
        "history.csv",
        "schedule.json",
        "nodes/n1.log",
        "nodes/n5.log",
    ] {
        assert_eq!(
            std::fs::read(first.run_dir.join(file)).unwrap(),
            std::fs::read(second.run_dir.join(file)).unwrap(),
            "{file} differs"
        );
    }
    assert!(first.ops_count > 200, "{} ops", first.ops_count);
    let n2_log = std::fs::read_to_string(first.run_dir.join("nodes/n2.log")).unwrap();
    assert!(n2_log.contains("node=2"), "{n2_log}");
    assert!(
        !n2_log.contains("node=3"),
        "another node's events in n2.log:\n{n2_log}"
    );
    assert_eq!(
        first.verdict,
        Verdict::Valid,
        "{:?} {:?}",
        first.causes,
        first.explanation
    );

    // The schedule written into the run dir replays to the very same history.
    let schedule = Schedule::read_file(&first.run_dir.join("schedule.json")).unwrap();
    assert!(!schedule.events.is_empty());
    let mut replay = options.clone();
    replay.schedule = Some(schedule);
    replay.schedule_path = Some(first.run_dir.join("schedule.json"));
    let replayed = minos_workloads::run(&replay).unwrap();
    assert_eq!(replayed.history_sha256, first.history_sha256);

    let results: serde_json::Value =
        serde_json::from_slice(&std::fs::read(first.run_dir.join("results.json")).unwrap())
            .unwrap();
    assert_eq!(results["history"]["sha256"], first.history_sha256.as_str());
    assert_eq!(results["verdict"], "valid");
    assert_eq!(results["seed"], 77);
    // How many faults a swarm seed draws is the seed's own business; that some ran is ours.
    assert!(
        !results["faults"].as_array().unwrap().is_empty(),
        "{}",
        results["faults"]
    );
    assert!(results["timings"]["sim_to_wall_ratio"].as_f64().unwrap() > 0.0);
    assert!(std::fs::read_link(out.join("latest")).is_ok());
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn a_different_seed_gives_a_different_history() {
    let mut options = RunOptions::new(1);
    options.time_limit_ms = 3_000;
    options.check_threads = 1;
    let (_, _, first, _) = evaluate(&options, store(&options)).unwrap();
    options.seed = 2;
    let (_, _, second, _) = evaluate(&options, store(&options)).unwrap();
    assert_ne!(to_jsonl(&first.records), to_jsonl(&second.records));
}

#[test]
fn long_run_under_partition_and_kill_stays_valid() {
    let mut options = RunOptions::new(2026);
    options.nemesis = NemesisSpec::List(vec![FaultKind::Partition, FaultKind::Kill]);
    options.check_threads = 1;
    assert_eq!(options.time_limit_ms, 60_000);
    let (verdict, causes, simulation, check) = evaluate(&options, store(&options)).unwrap();
    assert_eq!(
        verdict,
        Verdict::Valid,
        "{causes:?} {:?}",
        check.explanation
    );
    assert!(simulation.liveness.ok);
    assert!(
        simulation.ops_count() > 3_000,
        "{} ops",
        simulation.ops_count()
    );
    assert!(
        simulation.faults.len() >= 5,
        "{} faults",
        simulation.faults.len()
    );
}

#[test]
fn parallel_runs_on_threads_match_a_sequential_run() {
    let mut options = RunOptions::new(31);
    options.time_limit_ms = 4_000;
    options.nemesis_interval_ms = 1_000;
    options.nemesis = NemesisSpec::All;
    options.check_threads = 1;
    let (_, _, sequential, _) = evaluate(&options, store(&options)).unwrap();
    let expected = to_jsonl(&sequential.records);
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let options = options.clone();
            std::thread::spawn(move || {
                let (_, _, simulation, _) = evaluate(&options, store(&options)).unwrap();
                (to_jsonl(&simulation.records), simulation.node_logs)
            })
        })
        .collect();
    for thread in threads {
        let (history, logs) = thread.join().unwrap();
        assert_eq!(history, expected);
        assert_eq!(
            logs, sequential.node_logs,
            "node logs must not mix between parallel runs"
        );
    }
}

/// Ops whose whole life lies in `[from_ns, to_ns]` and that ended ok.
fn ok_ops_within(
    records: &[minos_checker::history::HistoryRecord],
    from_ns: u64,
    to_ns: u64,
) -> usize {
    use minos_checker::history::{Process, RecordType};
    let mut invoked = std::collections::BTreeMap::new();
    let mut count = 0;
    for record in records {
        let Process::Client(process) = record.process else {
            continue;
        };
        match record.kind {
            RecordType::Invoke => {
                invoked.insert(process, record.time);
            }
            RecordType::Ok
                if invoked.get(&process).is_some_and(|&start| start >= from_ns)
                    && record.time <= to_ns =>
            {
                count += 1;
            }
            _ => {}
        }
    }
    count
}

#[test]
fn scripted_faults_really_happen() {
    for (start, stop, params) in [
        ("start-kill", "stop-kill", "null"),
        ("start-pause", "stop-pause", "null"),
        // Every node deaf: nothing arrives, neither from peers nor from clients.
        (
            "start-loss",
            "stop-loss",
            r#"{"probability": 1.0, "direction": "in"}"#,
        ),
    ] {
        let options = scripted(
            9,
            5,
            5_000,
            &format!(
                r#"[{{"at_ms": 1000, "action": "{start}", "targets": ["n1","n2","n3","n4","n5"], "params": {params}}},
                    {{"at_ms": 3000, "action": "{stop}", "targets": []}}]"#
            ),
        );
        let (verdict, causes, simulation, _) = evaluate(&options, store(&options)).unwrap();
        assert_eq!(verdict, Verdict::Valid, "{start}: {causes:?}");
        assert!(
            ok_ops_within(&simulation.records, 0, 1_000_000_000) > 20,
            "{start}: the cluster works before"
        );
        assert_eq!(
            ok_ops_within(&simulation.records, 1_050_000_000, 2_950_000_000),
            0,
            "{start}: nothing completes while every node is down"
        );
        assert!(
            ok_ops_within(&simulation.records, 3_000_000_000, 5_000_000_000) > 20,
            "{start}: the cluster recovers"
        );
        assert_eq!(simulation.faults.len(), 1);
        assert_eq!(simulation.faults[0].stop_ns, Some(3_000_000_000));
    }
}

#[test]
fn a_checker_out_of_budget_gives_unknown_not_valid() {
    let mut options = RunOptions::new(3);
    options.time_limit_ms = 3_000;
    options.check_time_limit_ms = 0;
    options.check_threads = 1;
    let (verdict, causes, _, check) = evaluate(&options, store(&options)).unwrap();
    assert_eq!(verdict, Verdict::Unknown, "{causes:?}");
    assert!(causes.is_empty());
    assert!(check.report.unknown_reason.is_some());
}

#[test]
fn every_workload_is_valid_on_the_correct_store() {
    use minos_workloads::{KeyDistribution, Workload};
    for workload in Workload::ALL {
        let mut options = RunOptions::new(12);
        options.time_limit_ms = 5_000;
        options.nemesis_interval_ms = 1_000;
        options.nemesis = NemesisSpec::All;
        options.workload = workload;
        options.key_distribution = KeyDistribution::Skewed;
        options.check_threads = 1;
        let (verdict, causes, simulation, check) = evaluate(&options, store(&options)).unwrap();
        assert_eq!(verdict, Verdict::Valid, "{workload}: {causes:?}");
        let fs: std::collections::BTreeSet<&str> =
            simulation.records.iter().map(|r| r.f.as_str()).collect();
        let expected: &[&str] = match workload {
            Workload::Counter => &["add", "read"],
            Workload::Register => &["write", "read"],
            Workload::CasRegister => &["write", "cas", "read"],
            Workload::Mixed => &["add", "write", "cas", "read"],
        };
        for f in expected {
            assert!(fs.contains(f), "{workload}: no {f} op in {fs:?}");
        }
        assert!(!fs.contains("add") || matches!(workload, Workload::Counter | Workload::Mixed));
        let model = &check.report.model;
        match workload {
            Workload::Mixed => assert_eq!(model, "counter+cas-register"),
            other => assert_eq!(model, other.name()),
        }
    }
}

#[test]
fn liveness_is_probed_even_at_a_low_rate() {
    // One op per client every 20 s: without probing, nothing would run after healing.
    let mut options = RunOptions::new(3);
    options.rate_ops_per_s = 0.5;
    options.time_limit_ms = 6_000;
    options.nemesis_interval_ms = 2_000;
    options.check_threads = 1;
    let (verdict, causes, simulation, _) = evaluate(&options, store(&options)).unwrap();
    assert_eq!(verdict, Verdict::Valid, "{causes:?}");
    assert!(simulation.liveness.ok, "{:?}", simulation.liveness);
}

#[test]
fn membership_faults_really_change_the_configuration() {
    // Removing n4 and n5 leaves a three-node cluster, which two crashes stop; once they are
    // back as voters, the same two crashes leave three of five and the cluster goes on.
    let options = scripted(
        21,
        5,
        8_000,
        r#"[{"at_ms": 1000, "action": "start-membership", "targets": ["n4","n5"]},
            {"at_ms": 2000, "action": "start-kill", "targets": ["n1","n2"]},
            {"at_ms": 3500, "action": "stop-kill", "targets": ["n1","n2"]},
            {"at_ms": 4000, "action": "stop-membership", "targets": ["n4","n5"]},
            {"at_ms": 5500, "action": "start-kill", "targets": ["n1","n2"]},
            {"at_ms": 7000, "action": "stop-kill", "targets": ["n1","n2"]}]"#,
    );
    let (verdict, causes, simulation, _) = evaluate(&options, store(&options)).unwrap();
    assert_eq!(verdict, Verdict::Valid, "{causes:?}");
    assert_eq!(
        ok_ops_within(&simulation.records, 2_050_000_000, 3_450_000_000),
        0,
        "two crashes stop a cluster of three voters"
    );
    assert!(
        ok_ops_within(&simulation.records, 4_000_000_000, 5_500_000_000) > 20,
        "the cluster works again after the crashed nodes return"
    );
    assert!(
        ok_ops_within(&simulation.records, 5_800_000_000, 7_000_000_000) > 20,
        "with n4 and n5 voters again, three of five nodes carry on"
    );
    let voters: Vec<Vec<String>> = simulation
        .configurations
        .iter()
        .map(|configuration| configuration.voters.clone())
        .collect();
    assert!(
        voters.contains(&vec!["n1".into(), "n2".into(), "n3".into()]),
        "{voters:?}"
    );
    let last = simulation.configurations.last().unwrap();
    assert_eq!(last.voters, ["n1", "n2", "n3", "n4", "n5"]);
    assert!(last.learners.is_empty());
    assert!(
        simulation
            .liveness
            .detail
            .contains("every node a voter again"),
        "{}",
        simulation.liveness.detail
    );
}

#[test]
fn membership_and_inbound_loss_replay_bit_exactly() {
    let options = scripted(
        31,
        5,
        5_000,
        r#"[{"at_ms": 800, "action": "start-membership", "targets": ["n2"]},
            {"at_ms": 1200, "action": "start-loss", "targets": ["n3","n4"], "params": {"probability": 0.3, "direction": "in"}},
            {"at_ms": 1600, "action": "start-loss", "targets": ["n5"], "params": {"probability": 0.3, "direction": "both"}},
            {"at_ms": 2500, "action": "stop-loss", "targets": []},
            {"at_ms": 3000, "action": "stop-membership", "targets": ["n2"]},
            {"at_ms": 3500, "action": "start-membership", "targets": ["n1","n5"]}]"#,
    );
    let (verdict, causes, first, _) = evaluate(&options, store(&options)).unwrap();
    assert_eq!(verdict, Verdict::Valid, "{causes:?}");
    let (_, _, second, _) = evaluate(&options, store(&options)).unwrap();
    assert_eq!(to_jsonl(&first.records), to_jsonl(&second.records));
    assert_eq!(first.configurations, second.configurations);
    assert!(
        first.configurations.len() >= 4,
        "{:?}",
        first.configurations
    );
}

#[test]
fn faults_a_schedule_leaves_open_are_healed_before_the_liveness_check() {
    for params in [
        r#"{"probability": 1.0, "direction": "in"}"#,
        r#"{"probability": 1.0, "direction": "both"}"#,
        r#"{"probability": 1.0}"#,
    ] {
        let options = scripted(
            4,
            5,
            3_000,
            &format!(
                r#"[{{"at_ms": 1000, "action": "start-loss", "targets": ["n1","n2","n3","n4","n5"], "params": {params}}}]"#
            ),
        );
        let (verdict, causes, simulation, _) = evaluate(&options, store(&options)).unwrap();
        assert_eq!(verdict, Verdict::Valid, "{params}: {causes:?}");
        assert!(simulation.faults[0].stop_ns.is_some(), "{params}");
    }
}

#[test]
fn a_partition_that_replaces_another_ends_it_in_the_fault_records() {
    let options = scripted(
        5,
        3,
        2_000,
        r#"[{"at_ms": 500, "action": "start-partition", "params": {"mode": "groups", "groups": [["n1"], ["n2","n3"]]}},
            {"at_ms": 1000, "action": "start-partition", "params": {"mode": "groups", "groups": [["n1","n2"], ["n3"]]}},
            {"at_ms": 1500, "action": "stop-partition"}]"#,
    );
    let (verdict, causes, simulation, _) = evaluate(&options, store(&options)).unwrap();
    assert_eq!(verdict, Verdict::Valid, "{causes:?}");
    let spans: Vec<(u64, Option<u64>)> = simulation
        .faults
        .iter()
        .map(|fault| (fault.start_ns, fault.stop_ns))
        .collect();
    assert_eq!(
        spans,
        [
            (500_000_000, Some(1_000_000_000)),
            (1_000_000_000, Some(1_500_000_000))
        ]
    );
}

#[test]
fn a_partial_stop_ends_the_fault_only_for_the_nodes_it_names() {
    let options = scripted(
        6,
        3,
        2_000,
        r#"[{"at_ms": 500, "action": "start-pause", "targets": ["n1","n2"]},
            {"at_ms": 1000, "action": "stop-pause", "targets": ["n1"]},
            {"at_ms": 1500, "action": "stop-pause"}]"#,
    );
    let (verdict, causes, simulation, _) = evaluate(&options, store(&options)).unwrap();
    assert_eq!(verdict, Verdict::Valid, "{causes:?}");
    let spans: Vec<(u64, Option<u64>, Vec<String>)> = simulation
        .faults
        .iter()
        .map(|fault| (fault.start_ns, fault.stop_ns, fault.targets.clone()))
        .collect();
    assert_eq!(
        spans,
        [
            (
                500_000_000,
                Some(1_000_000_000),
                vec!["n1".to_string(), "n2".to_string()]
            ),
            (1_000_000_000, Some(1_500_000_000), vec!["n2".to_string()])
        ]
    );
}

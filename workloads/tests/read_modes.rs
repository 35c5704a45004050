//! `--read-mode` on the simulated store: the three linearizable modes (read-index, lease,
//! log) stay valid while a follower is cut off and lags, and the stale follower-local mode is
//! caught by the checker on the same seed and schedule.

use minos_checker::Verdict;
use minos_workloads::raft_store::RaftStore;
use minos_workloads::run::evaluate;
use minos_workloads::{ReadMode, RunOptions, Schedule};

/// n5 is cut off from the others for 3 s: it keeps its old state while the majority moves
/// on, and the client homed on it (process 4) reads there in stale mode.
const LAGGING_FOLLOWER: &str = r#"[
    {"at_ms": 1000, "action": "start-partition", "params": {"mode": "groups", "groups": [["n1","n2","n3","n4"], ["n5"]]}},
    {"at_ms": 4000, "action": "stop-partition"}]"#;

fn verdict(seed: u64, mode: ReadMode) -> (Verdict, Vec<String>) {
    let mut options = RunOptions::new(seed);
    options.nodes = 5;
    options.time_limit_ms = 6_000;
    options.read_mode = mode;
    options.check_threads = 1;
    options.schedule = Some(Schedule::from_json(LAGGING_FOLLOWER, "test").unwrap());
    let store = RaftStore::new(
        options.nodes,
        options.seed,
        options.bugs,
        options.op_timeout_ms,
    )
    .with_read_mode(mode);
    let (verdict, causes, _, _) = evaluate(&options, store).unwrap();
    (verdict, causes)
}

#[test]
fn stale_follower_reads_are_caught() {
    // Whether a client reads at n5 while it lags depends on the seed's op mix; one of a few
    // seeds must show it, and none of them may be anything but valid or invalid.
    let verdicts: Vec<(u64, Verdict, Vec<String>)> = (1..=8)
        .map(|seed| {
            let (verdict, causes) = verdict(seed, ReadMode::Stale);
            (seed, verdict, causes)
        })
        .collect();
    assert!(
        verdicts.iter().any(|(_, v, _)| *v == Verdict::Invalid),
        "no seed caught a stale read: {verdicts:?}"
    );
    assert!(
        verdicts.iter().all(|(_, v, _)| *v != Verdict::Unknown),
        "{verdicts:?}"
    );
}

#[test]
fn consistent_read_modes_stay_valid_with_a_lagging_follower() {
    for mode in [ReadMode::ReadIndex, ReadMode::Lease, ReadMode::Log] {
        let (verdict, causes) = verdict(5, mode);
        assert_eq!(verdict, Verdict::Valid, "{}: {causes:?}", mode.name());
    }
}

#[test]
fn read_modes_parse_by_name_and_by_etcd_alias() {
    for mode in ReadMode::ALL {
        assert_eq!(mode.name().parse::<ReadMode>(), Ok(mode));
    }
    assert_eq!("linearizable".parse::<ReadMode>(), Ok(ReadMode::ReadIndex));
    assert_eq!("serializable".parse::<ReadMode>(), Ok(ReadMode::Stale));
    assert!("eventual".parse::<ReadMode>().is_err());
}

#[test]
fn read_modes_are_refused_by_the_toy_stores() {
    let mut options = RunOptions::new(1);
    options.system = minos_workloads::SystemKind::ToyPrimary;
    options.read_mode = ReadMode::Stale;
    let problem = options.validate().unwrap_err();
    assert!(problem.contains("--read-mode stale"), "{problem}");
    options.read_mode = ReadMode::ReadIndex;
    assert!(options.validate().is_ok());
}

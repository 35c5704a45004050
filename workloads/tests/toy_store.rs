//! The driver against the toy stores: the harness must call the single-copy toy valid and
//! catch the deliberately broken one (reads from a follower's lagging copy), and it must be
//! honest about faults a store does not support.

use minos_checker::Verdict;
use minos_workloads::run::evaluate;
use minos_workloads::toy::{ToyMode, ToyStore};
use minos_workloads::{FaultKind, NemesisSpec, RunError, RunOptions};

fn short_options(seed: u64, nemesis: &[FaultKind]) -> RunOptions {
    let mut options = RunOptions::new(seed);
    options.time_limit_ms = 5_000;
    options.nemesis_interval_ms = 1_000;
    options.nemesis = NemesisSpec::List(nemesis.to_vec());
    options.check_threads = 1;
    options
}

#[test]
fn single_copy_toy_is_valid_under_partitions() {
    for seed in 1..=3 {
        let options = short_options(seed, &[FaultKind::Partition, FaultKind::PartitionOneway]);
        let (verdict, causes, simulation, _) =
            evaluate(&options, ToyStore::new(ToyMode::Primary, 5, seed)).unwrap();
        assert_eq!(verdict, Verdict::Valid, "seed {seed}: {causes:?}");
        assert!(
            simulation.ops_count() > 300,
            "seed {seed}: only {} ops",
            simulation.ops_count()
        );
        assert!(simulation
            .faults
            .iter()
            .any(|fault| fault.kind == FaultKind::Partition
                || fault.kind == FaultKind::PartitionOneway));
    }
}

#[test]
fn follower_reads_toy_is_caught_as_invalid() {
    for seed in 1..=3 {
        // Partitions cut followers off the primary's updates; clients still reach every node.
        let options = short_options(seed, &[FaultKind::Partition]);
        let (verdict, causes, _, check) =
            evaluate(&options, ToyStore::new(ToyMode::FollowerReads, 5, seed)).unwrap();
        assert_eq!(verdict, Verdict::Invalid, "seed {seed}");
        assert_eq!(causes, vec!["linearizability".to_string()], "seed {seed}");
        let explanation = check.explanation.expect("an invalid check explains itself");
        assert!(explanation.contains("read"), "{explanation}");
    }
}

#[test]
fn killing_the_toy_primary_loses_its_memory_and_is_caught() {
    let options = short_options(4, &[FaultKind::Kill]);
    let (verdict, causes, simulation, _) =
        evaluate(&options, ToyStore::new(ToyMode::Primary, 3, 4)).unwrap();
    // A kill that hits n1 wipes the counters: later reads contradict earlier adds.
    assert!(simulation
        .faults
        .iter()
        .any(|fault| fault.kind == FaultKind::Kill && fault.targets.contains(&"n1".to_string())));
    assert_eq!(verdict, Verdict::Invalid, "{causes:?}");
    assert!(
        causes.contains(&"linearizability".to_string()),
        "{causes:?}"
    );
}

#[test]
fn faults_a_store_cannot_take_are_refused_not_faked() {
    let options = short_options(1, &[FaultKind::Pause]);
    match evaluate(&options, ToyStore::new(ToyMode::Primary, 5, 1)) {
        Err(error @ RunError::UnsupportedFault { .. }) => {
            assert!(error.is_bad_input());
            assert!(error.to_string().contains("pause"), "{error}");
        }
        Err(other) => panic!("wrong error: {other}"),
        Ok(_) => panic!("an unsupported fault must not run"),
    }
    let mut options = short_options(1, &[]);
    options.nemesis = NemesisSpec::All;
    let (_, _, simulation, _) = evaluate(&options, ToyStore::new(ToyMode::Primary, 5, 1)).unwrap();
    assert_eq!(
        simulation.nemesis_kinds,
        vec![
            FaultKind::Partition,
            FaultKind::PartitionOneway,
            FaultKind::Kill
        ],
        "`all` means exactly what the store supports"
    );
}

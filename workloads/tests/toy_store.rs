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
            FaultKind::Kill,
            FaultKind::PowerLoss
        ],
        "`all` means exactly what the store supports"
    );
}

/// A store whose nodes never answer: nothing can ever complete.
struct MuteStore;

struct MuteClient;

impl minos_workloads::sut::SutClient for MuteClient {
    async fn invoke(
        &mut self,
        _op: &minos_workloads::workload::Op,
    ) -> minos_workloads::sut::OpReply {
        std::future::pending::<()>().await;
        unreachable!("pending never completes")
    }
}

impl minos_workloads::sut::SystemUnderTest for MuteStore {
    type Client = MuteClient;
    fn name(&self) -> &'static str {
        "mute"
    }
    fn supported_faults(&self) -> std::collections::BTreeSet<FaultKind> {
        [FaultKind::Kill].into_iter().collect()
    }
    fn register_nodes(&self, sim: &mut turmoil::Sim<'_>, node_names: &[String]) {
        for name in node_names {
            sim.host(name.as_str(), || async {
                std::future::pending::<()>().await;
                Ok(())
            });
        }
    }
    async fn connect(&self, _process: u64) -> std::io::Result<MuteClient> {
        Ok(MuteClient)
    }
    fn observe(&self, _node: usize, _applied_from: usize) -> minos_workloads::sut::NodeView {
        minos_workloads::sut::NodeView {
            running: true,
            ..Default::default()
        }
    }
    fn node_fault(
        &self,
        _node: usize,
        fault: &minos_workloads::sut::NodeFault,
    ) -> Result<(), String> {
        Err(format!("mute store: {fault:?}"))
    }
    fn set_running(&self, _node: usize, _running: bool) {}
}

#[test]
fn a_store_that_never_commits_is_invalid_with_no_progress() {
    let mut options = short_options(2, &[FaultKind::Kill]);
    options.op_timeout_ms = 300;
    let (verdict, causes, simulation, _) = evaluate(&options, MuteStore).unwrap();
    assert_eq!(verdict, Verdict::Invalid);
    assert_eq!(causes, vec!["no progress".to_string()]);
    assert!(!simulation.liveness.ok);
    assert!(
        simulation.liveness.detail.contains("after healing"),
        "{}",
        simulation.liveness.detail
    );
    // Every op ended in doubt, and each in-doubt op moved its client to a fresh process.
    let infos = simulation
        .records
        .iter()
        .filter(|r| r.kind == minos_checker::history::RecordType::Info)
        .count();
    assert!(infos > 10, "{infos} info ops");
}

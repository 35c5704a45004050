//! PROOF THAT EACH CORE BUG SWITCH IS REAL: for every planted bug consulted in the core, one
//! scenario that the safety checker (or, for `no-prevote-checkquorum`, the availability
//! check) passes on the correct build and flags with the bug switched on.

use super::super::{Config, NodeId, Role};
use super::network::Network;
use super::scenarios::figure_8;
use crate::bugs::{Bug, Bugs};

fn network(count: u64, bugs: Bugs, tweak: impl Fn(&mut Config)) -> Network {
    let mut net = Network::with_nodes(count, 7, |config| {
        config.bugs = bugs;
        tweak(config);
    });
    // With a bug on, record the first violation instead of panicking at it.
    net.strict = bugs.is_empty();
    net
}

impl Network {
    /// Like `elect`, but reports failure instead of panicking.
    fn try_elect(&mut self, id: NodeId) -> bool {
        for _attempt in 0..5 {
            self.expire_leases();
            self.node_mut(id).start_election();
            self.process_ready(id);
            self.deliver_until(|net| {
                net.nodes
                    .get(&id)
                    .is_some_and(|node| node.role == Role::Leader)
            });
            if self.node(id).role == Role::Leader {
                self.deliver_all();
                return true;
            }
        }
        false
    }
}

/// Figure 8 played to the end: node 5 returns and overwrites index 2.
fn commit_old_term_scenario(bugs: Bugs) -> Option<String> {
    let mut net = network(5, bugs, |config| config.max_append_entries_count = 1);
    figure_8(&mut net);
    net.crash(1);
    net.crash(5);
    net.restart(5);
    net.heal();
    assert!(net.try_elect(5), "node 5 wins with nodes 3 and 4");
    net.propose(5, b"after");
    net.deliver_all();
    net.violation
}

#[test]
fn bug_commit_old_term_is_caught() {
    assert_eq!(commit_old_term_scenario(Bugs::NONE), None);
    let violation = commit_old_term_scenario(Bugs::NONE.with(Bug::CommitOldTerm)).expect("caught");
    assert!(
        violation.contains("leader completeness") || violation.contains("state machine safety"),
        "{violation}"
    );
}

/// A deposed leader, unaware of the new term, sends its entry to a follower of the new leader.
fn stale_term_append_scenario(bugs: Bugs) -> Option<String> {
    let mut net = network(3, bugs, |_| {});
    net.elect(1);
    net.isolate(1);
    net.elect(2);
    net.propose(2, b"new");
    net.deliver_all();
    assert_eq!(net.node(3).status().commit_index, 3);
    net.heal();
    net.propose(1, b"stale");
    net.deliver_all();
    net.violation
}

#[test]
fn bug_stale_term_append_is_caught() {
    assert_eq!(stale_term_append_scenario(Bugs::NONE), None);
    let violation =
        stale_term_append_scenario(Bugs::NONE.with(Bug::StaleTermAppend)).expect("caught");
    assert!(
        violation.contains("lost committed") || violation.contains("state machine safety"),
        "{violation}"
    );
}

/// An AppendEntries delayed in the network arrives after the follower holds (and committed)
/// much more.
fn truncate_without_conflict_scenario(bugs: Bugs) -> Option<String> {
    let mut net = network(3, bugs, |_| {});
    net.elect(1);
    net.propose(1, b"a");
    let delayed: Vec<_> = net
        .in_flight
        .iter()
        .filter(|m| m.to == 2 && matches!(m.body, super::super::MessageBody::AppendEntries { .. }))
        .cloned()
        .collect();
    net.deliver_all();
    for payload in [b"b", b"c", b"d"] {
        net.propose(1, payload);
        net.deliver_all();
    }
    net.in_flight.extend(delayed);
    net.deliver_all();
    net.violation
}

#[test]
fn bug_truncate_without_conflict_is_caught() {
    assert_eq!(truncate_without_conflict_scenario(Bugs::NONE), None);
    let violation =
        truncate_without_conflict_scenario(Bugs::NONE.with(Bug::TruncateWithoutConflict))
            .expect("caught");
    assert!(violation.contains("lost committed"), "{violation}");
}

/// Node 1 holds a long log of a stale term; nodes 2 and 3 committed a shorter, newer one.
fn vote_index_only_scenario(bugs: Bugs) -> Option<String> {
    let mut net = network(3, bugs, |_| {});
    net.elect(1);
    net.isolate(1);
    for i in 0..5u8 {
        net.propose(1, &[i]);
    }
    net.elect(2);
    net.propose(2, b"committed");
    net.deliver_all();
    net.crash(2);
    net.crash(1);
    net.restart(1);
    net.heal();
    let won = net.try_elect(1);
    assert_eq!(
        won,
        !bugs.is_empty(),
        "only the buggy check lets node 1 win"
    );
    net.violation
}

#[test]
fn bug_vote_index_only_is_caught() {
    assert_eq!(vote_index_only_scenario(Bugs::NONE), None);
    let violation = vote_index_only_scenario(Bugs::NONE.with(Bug::VoteIndexOnly)).expect("caught");
    assert!(violation.contains("leader completeness"), "{violation}");
}

/// A new leader whose commit index lags (the commit notices were lost) is asked to read.
fn read_before_noop_scenario(bugs: Bugs) -> Option<String> {
    let mut net = network(3, bugs, |_| {});
    net.elect(1);
    net.propose(1, b"w");
    net.deliver_until(|net| net.node(1).log.committed() == 2);
    net.in_flight.clear();
    net.elect_partially(2);
    net.read_index(2, 77);
    net.deliver_all();
    assert_eq!(net.read_states.len(), 1, "the read is answered either way");
    net.violation
}

#[test]
fn bug_read_before_noop_is_caught() {
    assert_eq!(read_before_noop_scenario(Bugs::NONE), None);
    let violation =
        read_before_noop_scenario(Bugs::NONE.with(Bug::ReadBeforeNoop)).expect("caught");
    assert!(violation.contains("linearizable read"), "{violation}");
}

/// AVAILABILITY, not safety: a node returning from a partition deposes a healthy leader, and a
/// partitioned leader keeps leading. Returns (leader deposed, stale leader kept leading).
fn prevote_checkquorum_scenario(bugs: Bugs) -> (bool, bool) {
    let mut net = network(5, bugs, |_| {});
    net.elect(1);
    let term = net.node(1).term;
    net.isolate(5);
    for _ in 0..300 {
        net.tick(5);
    }
    net.heal();
    for _ in 0..100 {
        net.tick_all();
        net.deliver_all();
    }
    let deposed = net.node(1).term != term;
    // Now cut the current leader off from everyone for two election timeouts.
    let leader = net.leaders()[0];
    net.isolate(leader);
    for _ in 0..60 {
        net.tick(leader);
    }
    let kept_leading = net.node(leader).role == Role::Leader;
    assert_eq!(net.violation, None, "no safety violation either way");
    (deposed, kept_leading)
}

#[test]
fn bug_no_prevote_checkquorum_is_caught() {
    assert_eq!(prevote_checkquorum_scenario(Bugs::NONE), (false, false));
    assert_eq!(
        prevote_checkquorum_scenario(Bugs::NONE.with(Bug::NoPrevoteCheckquorum)),
        (true, true)
    );
}

/// Lease reads: the followers' clocks run faster than the deposed leader's (drift), and
/// separately, a leadership transfer moves leadership while the old leader holds a lease.
/// Returns the violations of (drift, transfer).
fn lease_scenarios(bugs: Bugs) -> (Option<String>, Option<String>) {
    let lease = |bugs| network(3, bugs, |config| config.lease_reads = true);
    // Drift: a round is sent and acknowledged; the leader then counts 13 more ticks while
    // the followers count 15 and elect node 2, which commits.
    let mut net = lease(bugs);
    net.elect(1);
    for _ in 0..5 {
        net.tick(1);
    }
    net.deliver_all();
    net.isolate(1);
    for _ in 0..13 {
        net.tick(1);
    }
    for _ in 0..15 {
        net.node_mut(2).tick();
        net.node_mut(3).tick();
    }
    net.in_flight.clear();
    net.elect(2);
    net.propose(2, b"new");
    net.deliver_all();
    net.read_index(1, 1);
    let drift = net.violation.take();

    // Transfer: node 2 takes over through TimeoutNow while node 1 still holds its lease.
    let mut net = lease(bugs);
    net.elect(1);
    for _ in 0..5 {
        net.tick(1);
    }
    net.deliver_all();
    net.node_mut(1).transfer_leadership(2).unwrap();
    net.settle(1);
    net.deliver_until(|net| net.node(2).role == super::super::Role::Candidate);
    net.isolate(1);
    net.deliver_all();
    assert_eq!(net.node(2).role, Role::Leader);
    net.propose(2, b"new");
    net.deliver_all();
    net.read_index(1, 1);
    (drift, net.violation.take())
}

#[test]
fn bug_lease_no_drift_bound_is_caught() {
    assert_eq!(lease_scenarios(Bugs::NONE), (None, None));
    let (drift, transfer) = lease_scenarios(Bugs::NONE.with(Bug::LeaseNoDriftBound));
    assert!(drift.expect("drift caught").contains("linearizable read"));
    assert!(transfer
        .expect("transfer caught")
        .contains("linearizable read"));
}

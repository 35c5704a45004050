//! Membership scenarios at the message level: a cluster grown from one bootstrapped server,
//! leader removal, every original member replaced, learner promotion, and the planted bug
//! `membership-no-rule`.

use super::super::{ConfChange, ConfChangeError, ConfChangeKind, NodeId, Role};
use super::network::Network;

fn change(kind: ConfChangeKind, node: NodeId) -> ConfChange {
    ConfChange {
        kind,
        node,
        context: Vec::new(),
    }
}

/// Ticks everyone and delivers everything, `rounds` times.
fn run(net: &mut Network, rounds: usize) {
    for _ in 0..rounds {
        net.tick_all();
        net.deliver_all();
    }
}

fn leader(net: &Network) -> NodeId {
    let leaders = net.leaders();
    assert_eq!(leaders.len(), 1, "leaders: {leaders:?}");
    leaders[0]
}

/// Proposes `change` on the current leader, retrying while the leader is not ready, then
/// runs until the change is committed everywhere it matters.
fn apply_change(net: &mut Network, change: ConfChange) {
    for _attempt in 0..200 {
        let id = leader(net);
        match net.node_mut(id).propose_conf_change(change.clone()) {
            Ok(_) => {
                net.settle(id);
                run(net, 10);
                return;
            }
            Err(ConfChangeError::LeaderNotReady | ConfChangeError::ChangeInProgress(_)) => {
                run(net, 1)
            }
            Err(error) => panic!("change {change:?} refused: {error}"),
        }
    }
    panic!("change {change:?} never accepted");
}

fn propose_some(net: &mut Network, count: usize) {
    for i in 0..count {
        let id = leader(net);
        net.propose(id, &[i as u8]);
        net.deliver_all();
    }
}

fn voters_everywhere(net: &Network) -> Vec<Vec<NodeId>> {
    net.nodes
        .values()
        .map(|node| node.status().voters)
        .collect()
}

#[test]
fn bootstrap_then_grow_one_to_five() {
    let mut net = Network::with_nodes(1, 51, |_| {});
    run(&mut net, 40);
    assert_eq!(
        leader(&net),
        1,
        "a single bootstrapped server elects itself"
    );
    propose_some(&mut net, 5);
    for id in 2..=5 {
        net.add_joining_node(id, &[1], 51);
        apply_change(&mut net, change(ConfChangeKind::AddLearner, id));
        // Promoted automatically once caught up.
        run(&mut net, 20);
        assert!(
            net.node(leader(&net)).membership().voters.contains(&id),
            "node {id} was not promoted"
        );
        propose_some(&mut net, 5);
    }
    run(&mut net, 20);
    for voters in voters_everywhere(&net) {
        assert_eq!(voters, vec![1, 2, 3, 4, 5]);
    }
    let commit = net.node(1).status().commit_index;
    for id in 1..=5 {
        assert_eq!(net.node(id).status().applied_index, commit, "node {id}");
    }
    // The grown cluster survives losing two of its members, the bootstrap server included.
    net.crash(1);
    net.crash(2);
    run(&mut net, 80);
    let new_leader = leader(&net);
    assert!(new_leader >= 3);
    propose_some(&mut net, 3);
}

#[test]
fn learner_replicates_without_voting() {
    let mut net = Network::with_nodes(3, 52, |config| config.auto_promote_learners = false);
    net.elect(1);
    net.add_joining_node(4, &[1, 2, 3], 52);
    apply_change(&mut net, change(ConfChangeKind::AddLearner, 4));
    propose_some(&mut net, 5);
    run(&mut net, 10);
    let status = net.node(4).status();
    assert_eq!(status.applied_index, net.node(1).status().commit_index);
    assert_eq!(status.learners, vec![4]);
    assert_eq!(status.voters, vec![1, 2, 3]);
    // A learner never campaigns, however long it hears nothing.
    net.isolate(4);
    run(&mut net, 100);
    assert_eq!(net.node(4).status().role, Role::Follower);
    // And a quorum is still counted among the three voters only: two of them commit.
    net.heal();
    net.crash(3);
    propose_some(&mut net, 1);
    run(&mut net, 5);
    assert_eq!(
        net.node(1).status().commit_index,
        net.node(1).status().last_index
    );
    // Promotion.
    net.restart(3);
    apply_change(&mut net, change(ConfChangeKind::AddVoter, 4));
    run(&mut net, 10);
    assert_eq!(net.node(4).status().voters, vec![1, 2, 3, 4]);
}

#[test]
fn remove_leader() {
    let mut net = Network::with_nodes(3, 53, |_| {});
    net.elect(1);
    propose_some(&mut net, 3);
    apply_change(&mut net, change(ConfChangeKind::Remove, 1));
    run(&mut net, 60);
    let new_leader = leader(&net);
    assert_ne!(new_leader, 1, "the removed leader stepped down");
    assert_eq!(net.node(new_leader).status().voters, vec![2, 3]);
    propose_some(&mut net, 3);
    // The removed node never disrupts: it does not campaign and is not heard.
    let term = net.node(new_leader).status().term;
    run(&mut net, 100);
    assert_eq!(leader(&net), new_leader);
    assert_eq!(net.node(new_leader).status().term, term);
}

#[test]
fn replace_all_members() {
    let mut net = Network::with_nodes(3, 54, |_| {});
    net.elect(1);
    propose_some(&mut net, 3);
    for (old, new) in [(1, 4), (2, 5), (3, 6)] {
        net.add_joining_node(new, &[1, 2, 3], 54);
        apply_change(&mut net, change(ConfChangeKind::AddLearner, new));
        run(&mut net, 20);
        assert!(net.node(leader(&net)).membership().voters.contains(&new));
        apply_change(&mut net, change(ConfChangeKind::Remove, old));
        run(&mut net, 60);
        propose_some(&mut net, 3);
    }
    let leader = leader(&net);
    assert!(leader >= 4);
    assert_eq!(net.node(leader).status().voters, vec![4, 5, 6]);
    // No lost add: every committed entry is held by every new member.
    let commit = net.node(leader).status().commit_index;
    for id in 4..=6 {
        assert_eq!(net.node(id).status().applied_index, commit, "node {id}");
    }
    assert_eq!(net.committed_count() as u64, commit);
}

#[test]
fn new_leader_rule_holds_back_changes_until_its_term_commits() {
    let mut net = Network::with_nodes(3, 55, |_| {});
    net.elect(1);
    // Node 1 becomes leader; before its no-op commits, a change must be refused.
    net.expire_leases();
    net.node_mut(2).start_election();
    net.settle(2);
    net.deliver_until(|net| net.node(2).status().role == Role::Leader);
    assert_eq!(net.node(2).status().role, Role::Leader);
    assert_eq!(
        net.node_mut(2)
            .propose_conf_change(change(ConfChangeKind::Remove, 3)),
        Err(ConfChangeError::LeaderNotReady)
    );
    net.deliver_all();
    assert!(net
        .node_mut(2)
        .propose_conf_change(change(ConfChangeKind::Remove, 3))
        .is_ok());
    // One change at a time.
    assert!(matches!(
        net.node_mut(2)
            .propose_conf_change(change(ConfChangeKind::Remove, 1)),
        Err(ConfChangeError::ChangeInProgress(_))
    ));
}

/// Ongaro's 2015 scenario: leader 1 adds node 5 (C1, reaching only 5) and is cut off; node 2
/// is elected by {2,3,4}; without the new-leader rule it at once removes node 1 (C2) and
/// commits that with node 3 alone (a majority of C2), while its no-op never reached node 4.
/// Node 1 then wins under C1 with votes from 4 and 5 and overwrites what C2 committed.
fn ongaro_scenario(bug: bool) -> Result<Option<String>, ConfChangeError> {
    let bugs = if bug {
        crate::bugs::Bugs::NONE.with(crate::bugs::Bug::MembershipNoRule)
    } else {
        crate::bugs::Bugs::NONE
    };
    let mut net = Network::with_nodes(4, 56, |config| config.bugs = bugs);
    net.strict = !bug;
    net.elect(1);
    net.add_joining_node(5, &[1, 2, 3, 4], 56);
    if bug {
        let mut config = net.configs[&5].clone();
        config.bugs = bugs;
        net.configs.insert(5, config.clone());
        net.nodes.insert(
            5,
            super::super::RaftNode::new(config, super::super::RecoveredState::default()),
        );
    }
    for other in [2, 3, 4] {
        net.cut(1, other);
    }
    net.node_mut(1)
        .propose_conf_change(change(ConfChangeKind::AddVoter, 5))
        .expect("leader 1 is ready");
    net.settle(1);
    net.deliver_all();
    assert!(net.node(5).membership().voters.contains(&5));
    // Node 2 is elected by {2, 3, 4}; its no-op is lost on the way to node 4.
    net.expire_leases();
    net.node_mut(2).start_election();
    net.settle(2);
    net.deliver_until(|net| net.node(2).status().role == Role::Leader);
    net.cut(2, 4);
    net.node_mut(2)
        .propose_conf_change(change(ConfChangeKind::Remove, 1))?;
    net.settle(2);
    net.deliver_all();
    // Node 1 reaches 4 and 5 again and campaigns under C1.
    net.blocked.remove(&(1, 4));
    net.blocked.remove(&(4, 1));
    // Node 1 notices (CheckQuorum) that it no longer hears a quorum and steps down first.
    for _tick in 0..40 {
        net.tick(1);
        net.deliver_all();
    }
    for _attempt in 0..5 {
        net.expire_leases();
        net.node_mut(1).start_election();
        net.settle(1);
        net.deliver_all();
        if net.node(1).status().role == Role::Leader {
            break;
        }
    }
    run(&mut net, 5);
    Ok(net.violation.clone())
}

#[test]
fn membership_no_rule_lets_two_configurations_elect_disjoint_leaders() {
    assert_eq!(
        ongaro_scenario(false),
        Err(ConfChangeError::LeaderNotReady),
        "the rule holds the change back"
    );
    let violation = ongaro_scenario(true)
        .expect("the bug lets the change through")
        .expect("the safety checker catches the lost commit");
    assert!(
        violation.contains("leader completeness") || violation.contains("safety"),
        "{violation}"
    );
}

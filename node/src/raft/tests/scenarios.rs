//! One scenario per protocol rule, over the in-test network.

use super::super::progress::ProgressState;
use super::super::{
    Config, Entry, EntryPayload, HardState, Message, MessageBody, NodeId, RaftNode, RecoveredState,
    Role,
};
use super::network::Network;

fn three() -> Network {
    Network::with_nodes(3, 7, |_| {})
}

fn five() -> Network {
    Network::with_nodes(5, 7, |_| {})
}

fn is_append_to(message: &Message, to: NodeId) -> bool {
    message.to == to && matches!(message.body, MessageBody::AppendEntries { .. })
}

#[test]
fn a_first_election_elects_one_leader_that_commits_its_noop() {
    let mut net = three();
    net.elect(1);
    assert_eq!(net.leaders(), vec![1]);
    for id in 1..=3 {
        let node = net.node(id);
        assert_eq!(node.status().leader, Some(1));
        assert_eq!(node.status().commit_index, 1, "node {id}");
    }
    assert_eq!(net.safety.committed[0].payload, EntryPayload::Noop);
}

#[test]
fn election_timeouts_are_randomized_within_bounds_and_deterministic() {
    let timeouts = |seed| {
        let mut net = Network::with_nodes(5, seed, |_| {});
        let mut fired_at = Vec::new();
        for id in 1..=5 {
            let mut ticks = 0;
            while net.node(id).role == Role::Follower {
                net.node_mut(id).tick();
                ticks += 1;
            }
            fired_at.push(ticks);
        }
        fired_at
    };
    let first = timeouts(11);
    assert_eq!(first, timeouts(11), "same seed, same timeouts");
    assert!(
        first.iter().all(|ticks| (15..=30).contains(ticks)),
        "{first:?}"
    );
    let mut distinct = first.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert!(
        distinct.len() > 1,
        "nodes draw different timeouts: {first:?}"
    );
    assert_ne!(first, timeouts(12));
}

#[test]
fn a_cluster_elects_a_leader_by_ticking_alone() {
    let mut net = five();
    for _ in 0..200 {
        net.tick_all();
        net.deliver_all();
    }
    assert_eq!(net.leaders().len(), 1);
    assert!(net.committed_count() >= 1);
}

#[test]
fn a_candidate_with_a_stale_log_cannot_win() {
    let mut net = three();
    net.elect(1);
    net.isolate(3);
    net.propose(1, b"a");
    net.propose(1, b"b");
    net.deliver_all();
    assert_eq!(net.node(2).status().last_index, 3);
    assert_eq!(net.node(3).status().last_index, 1);
    net.crash(1);
    net.heal();
    // Node 3 asks for votes: node 2 holds more of the log and refuses.
    net.expire_leases();
    net.node_mut(3).start_election();
    net.process_ready(3);
    net.deliver_all();
    assert_ne!(net.node(3).role, Role::Leader);
    // Node 2 is up to date and wins with node 3's vote.
    net.elect(2);
    assert_eq!(net.node(3).status().leader, Some(2));
    assert_eq!(net.node(3).status().last_index, 4);
}

#[test]
fn up_to_date_check_compares_last_term_before_last_index() {
    let voters = vec![1, 2, 3];
    let entries = |terms: &[u64]| -> Vec<Entry> {
        terms
            .iter()
            .enumerate()
            .map(|(i, &term)| Entry {
                term,
                index: i as u64 + 1,
                payload: EntryPayload::Noop,
            })
            .collect()
    };
    let mut config = Config::new(1, voters, 1);
    config.pre_vote = false;
    let recovered = RecoveredState {
        hard_state: HardState {
            term: 3,
            voted_for: None,
        },
        entries: entries(&[1, 3]),
        applied_index: 0,
        snapshot: None,
    };
    let mut voter = RaftNode::new(config, recovered);
    let request = |from, last_log_index, last_log_term| Message {
        from,
        to: 1,
        term: 4,
        body: MessageBody::RequestVote {
            pre_vote: false,
            last_log_index,
            last_log_term,
            leader_transfer: false,
        },
    };
    // Longer log of an older term: refused.
    voter.step(request(2, 9, 2));
    // Shorter log of a newer term: granted.
    voter.step(request(3, 1, 4));
    let ready = voter.take_ready();
    let answers: Vec<(NodeId, bool)> = ready
        .messages
        .iter()
        .map(|m| match m.body {
            MessageBody::RequestVoteResponse { granted, .. } => (m.to, granted),
            _ => panic!("unexpected {m:?}"),
        })
        .collect();
    assert_eq!(answers, vec![(2, false), (3, true)]);
    assert_eq!(
        ready.hard_state,
        Some(HardState {
            term: 4,
            voted_for: Some(3)
        })
    );
}

#[test]
fn one_vote_per_term_even_across_a_restart() {
    let mut config = Config::new(3, vec![1, 2, 3], 1);
    config.pre_vote = false;
    let mut voter = RaftNode::new(config.clone(), RecoveredState::default());
    let request = |from| Message {
        from,
        to: 3,
        term: 5,
        body: MessageBody::RequestVote {
            pre_vote: false,
            last_log_index: 0,
            last_log_term: 0,
            leader_transfer: false,
        },
    };
    let granted_to = |ready: &super::super::Ready| -> Vec<(NodeId, bool)> {
        ready
            .messages
            .iter()
            .map(|m| match m.body {
                MessageBody::RequestVoteResponse { granted, .. } => (m.to, granted),
                _ => panic!("unexpected {m:?}"),
            })
            .collect()
    };
    voter.step(request(1));
    voter.step(request(2));
    voter.step(request(1)); // a duplicate request from the same candidate is re-granted
    let ready = voter.take_ready();
    assert_eq!(granted_to(&ready), vec![(1, true), (2, false), (1, true)]);
    let hard_state = ready.hard_state.expect("vote persisted");
    assert_eq!(
        hard_state,
        HardState {
            term: 5,
            voted_for: Some(1)
        }
    );
    // Restarted from disk, it still refuses the rival in term 5.
    let mut restarted = RaftNode::new(
        config,
        RecoveredState {
            hard_state,
            entries: Vec::new(),
            applied_index: 0,
            snapshot: None,
        },
    );
    restarted.step(request(2));
    assert_eq!(granted_to(&restarted.take_ready()), vec![(2, false)]);
}

#[test]
fn new_leader_starts_its_term_with_a_noop() {
    let mut net = three();
    net.elect(1);
    net.propose(1, b"x");
    net.deliver_all();
    net.elect(2);
    let node = net.node(2);
    let term = node.term;
    let first_of_term = node.log.first_index_of_term(node.log.last_index(), term);
    assert_eq!(
        node.log.slice(first_of_term, first_of_term + 1)[0].payload,
        EntryPayload::Noop
    );
    assert_eq!(first_of_term, 3);
    assert_eq!(
        node.status().commit_index,
        3,
        "the no-op commits everything before it"
    );
}

/// Raft paper figure 8: a leader must not commit an entry of an earlier term by counting
/// replicas, because a later leader may still overwrite it.
pub(super) fn figure_8(net: &mut Network) {
    // Term 1: node 1 leads; index 2 reaches node 2 only.
    net.elect(1);
    for id in 3..=5 {
        net.isolate(id);
    }
    net.propose(1, b"old");
    net.deliver_all();
    net.heal();
    // Term 2: node 5 wins with nodes 3 and 4, appends its no-op at index 2, then is cut off.
    net.cut(5, 1);
    net.cut(5, 2);
    net.expire_leases();
    net.node_mut(5).start_election();
    net.process_ready(5);
    net.deliver_until(|net| net.node(5).role == Role::Leader);
    assert_eq!(net.node(5).role, Role::Leader);
    net.isolate(5);
    // Term 3: node 1 restarts, wins with nodes 2 and 3 and replicates index 2 (term 1) to
    // node 3 only, one entry per AppendEntries; node 4 stays away.
    net.crash(1);
    net.restart(1);
    net.heal();
    net.isolate(5);
    net.isolate(4);
    net.elect_partially(1);
    net.deliver_until(|net| {
        net.node(1)
            .progress
            .get(&3)
            .is_some_and(|progress| progress.match_index >= 2)
    });
    net.cut(1, 3);
    net.deliver_all();
}

impl Network {
    /// Like `elect`, but stops delivering as soon as `id` leads.
    pub(super) fn elect_partially(&mut self, id: NodeId) {
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
                return;
            }
        }
        panic!("node {id} should have won");
    }
}

#[test]
fn figure_8_old_term_entry_is_not_committed_by_counting() {
    let mut net = Network::with_nodes(5, 7, |config| config.max_append_entries_count = 1);
    figure_8(&mut net);
    let leader = net.node(1);
    assert_eq!(leader.term, 3);
    // Index 2 (term 1) is on nodes 1, 2 and 3: a majority, but not of the current term.
    let holders = [1, 2, 3]
        .iter()
        .filter(|&&id| net.node(id).log.term(2) == Some(1))
        .count();
    assert_eq!(holders, 3);
    assert!(
        leader.status().commit_index < 2,
        "index 2 must not commit by counting"
    );
    // Once the current term's entry reaches a majority, both commit together.
    net.heal();
    net.isolate(5);
    net.propose(1, b"new");
    net.deliver_all();
    assert_eq!(net.node(1).status().commit_index, 4);
    assert_eq!(net.node(3).status().commit_index, 4);
}

#[test]
fn conflicting_suffix_is_truncated_and_logs_converge() {
    let mut net = three();
    net.elect(1);
    net.isolate(1);
    // Node 1 keeps appending in term 1 alone: entries that will never commit.
    for payload in [b"x1", b"x2", b"x3"] {
        net.propose(1, payload);
    }
    net.heal();
    net.isolate(1);
    net.elect(2);
    net.propose(2, b"y");
    net.deliver_all();
    net.heal();
    // The next heartbeat reaches node 1, which learns the new term and gets repaired.
    for _ in 0..5 {
        net.tick(2);
    }
    net.deliver_all();
    net.propose(2, b"z");
    net.deliver_all();
    let expected = net.node(2).log.slice(1, 100).to_vec();
    assert_eq!(expected.len(), 4);
    assert_eq!(net.node(1).log.slice(1, 100), expected.as_slice());
    assert_eq!(net.node(1).status().commit_index, 4);
}

#[test]
fn a_stale_duplicate_append_never_truncates_matching_entries() {
    let mut net = three();
    net.elect(1);
    net.propose(1, b"a");
    // Keep a copy of the AppendEntries for `a` to node 2, delivered again much later.
    let old: Vec<Message> = net
        .in_flight
        .iter()
        .filter(|m| is_append_to(m, 2))
        .cloned()
        .collect();
    assert_eq!(old.len(), 1);
    net.deliver_all();
    for payload in [b"b", b"c", b"d"] {
        net.propose(1, payload);
        net.deliver_all();
    }
    let before = net.node(2).log.slice(1, 100).to_vec();
    let match_before = net.node(1).progress[&2].match_index;
    assert_eq!(before.len(), 5);
    net.in_flight.extend(old);
    net.deliver_all();
    assert_eq!(
        net.node(2).log.slice(1, 100),
        before.as_slice(),
        "nothing was truncated"
    );
    assert_eq!(
        net.node(1).progress[&2].match_index,
        match_before,
        "match index did not move back"
    );
}

#[test]
fn fast_backtracking_crosses_a_long_divergent_log_in_few_round_trips() {
    let mut net = three();
    net.elect(1);
    net.isolate(1);
    // 200 entries of term 1 that only node 1 holds.
    for i in 0..200u32 {
        net.propose(1, &i.to_be_bytes());
    }
    net.heal();
    net.isolate(1);
    // Nodes 2 and 3 move on for two terms, 150 entries each.
    for leader in [2, 3] {
        net.elect(leader);
        for i in 0..150u32 {
            net.propose(leader, &i.to_be_bytes());
        }
        net.deliver_all();
    }
    net.heal();
    let rejections_before = net.rejections_delivered_count;
    // Heartbeats reach node 1, which learns the new term; the leader then repairs its log.
    for _ in 0..10 {
        net.tick(3);
        net.deliver_all();
    }
    assert_eq!(
        net.node(1).log.slice(1, 1000),
        net.node(3).log.slice(1, 1000)
    );
    let rejections = net.rejections_delivered_count - rejections_before;
    // Entry-by-entry backtracking would need about 200 rejections here.
    assert!(
        rejections <= 3,
        "{rejections} rejections for a 200-entry divergence"
    );
}

#[test]
fn pipelining_is_bounded_and_falls_back_to_probing_after_a_rejection() {
    let mut net = Network::with_nodes(3, 7, |config| {
        config.max_append_entries_count = 2;
        config.max_inflight_appends = 3;
    });
    net.elect(1);
    for i in 0..20u8 {
        net.node_mut(1).propose(vec![i]).unwrap();
    }
    net.process_ready(1);
    let to_two = net.in_flight.iter().filter(|m| is_append_to(m, 2)).count();
    assert_eq!(to_two, 3, "at most max_inflight_appends in flight");
    let sizes: Vec<usize> = net
        .in_flight
        .iter()
        .filter(|m| is_append_to(m, 2))
        .map(|m| match &m.body {
            MessageBody::AppendEntries { entries, .. } => entries.len(),
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(sizes, vec![2, 2, 2], "batches of max_append_entries_count");
    // Lose the first of them: the follower rejects the next (gap), the leader probes.
    let lost = net
        .in_flight
        .iter()
        .position(|m| is_append_to(m, 2))
        .unwrap();
    net.in_flight.remove(lost);
    let second = net
        .in_flight
        .iter()
        .position(|m| is_append_to(m, 2))
        .unwrap();
    net.deliver(second);
    let response = net
        .in_flight
        .iter()
        .position(|m| m.to == 1 && m.from == 2)
        .unwrap();
    net.deliver(response);
    let progress = &net.node(1).progress[&2];
    assert_eq!(progress.state, ProgressState::Probe);
    assert_eq!(
        net.in_flight.iter().filter(|m| is_append_to(m, 2)).count(),
        2,
        "one probe plus the older one"
    );
    net.deliver_all();
    assert_eq!(net.node(2).status().last_index, 21);
    assert_eq!(net.node(1).progress[&2].state, ProgressState::Replicate);
    assert_eq!(net.node(1).status().commit_index, 21);
}

#[test]
fn match_index_never_moves_backward_under_reordered_responses() {
    let mut net = Network::with_nodes(3, 7, |config| {
        config.max_append_entries_count = 1;
        config.max_inflight_appends = 8;
    });
    net.elect(1);
    net.isolate(3);
    for i in 0..6u8 {
        net.propose(1, &[i]);
    }
    // Deliver the appends to node 2 in order, then its responses newest first.
    while let Some(position) = net.in_flight.iter().position(|m| is_append_to(m, 2)) {
        net.deliver(position);
    }
    let mut last_match = 0;
    while let Some(position) = net.in_flight.iter().rposition(|m| m.to == 1) {
        net.deliver(position);
        let now = net.node(1).progress[&2].match_index;
        assert!(
            now >= last_match,
            "match index moved back from {last_match} to {now}"
        );
        last_match = now;
        while let Some(position) = net.in_flight.iter().position(|m| is_append_to(m, 2)) {
            net.deliver(position);
        }
    }
    assert_eq!(last_match, 7);
    assert_eq!(net.node(1).status().commit_index, 7);
}

#[test]
fn read_index_waits_for_the_noop_then_for_a_quorum_round() {
    let mut net = three();
    net.elect(1);
    net.propose(1, b"w");
    net.deliver_until(|net| net.node(1).log.committed() == 2);
    // The commit notices to the followers are lost.
    net.in_flight.clear();
    // Node 2 takes over; its no-op has not committed yet.
    net.elect_partially(2);
    assert_eq!(
        net.node(2).status().commit_index,
        1,
        "commit lags behind the committed write"
    );
    net.read_index(2, 77);
    net.deliver_until(|net| net.node(2).log.committed() >= 3);
    assert!(
        net.read_states.is_empty(),
        "no answer before the no-op commits"
    );
    net.deliver_all();
    assert_eq!(net.read_states, vec![(2, 77, 3)]);
    // A later read needs a heartbeat round: cut off, no answer.
    net.isolate(2);
    net.read_index(2, 78);
    net.deliver_all();
    assert_eq!(net.read_states.len(), 1);
    // Losing leadership drops it.
    net.heal();
    net.isolate(2);
    net.elect(3);
    net.heal();
    net.tick(3);
    for _ in 0..5 {
        net.tick(3);
    }
    net.deliver_all();
    assert_ne!(net.node(2).role, Role::Leader);
    assert_eq!(net.dropped_reads, vec![78]);
}

#[test]
fn read_index_in_a_single_voter_cluster_answers_at_once() {
    let mut net = Network::with_nodes(1, 3, |_| {});
    for _ in 0..31 {
        net.tick(1);
    }
    assert_eq!(net.node(1).role, Role::Leader);
    net.propose(1, b"v");
    net.read_index(1, 5);
    assert_eq!(net.read_states, vec![(1, 5, 2)]);
}

#[test]
fn stale_term_messages_are_refused_and_teach_the_sender_the_new_term() {
    let mut net = three();
    net.elect(1);
    net.isolate(1);
    net.elect(2);
    net.heal();
    // The deposed leader still believes it leads term 1 and proposes.
    assert_eq!(net.node(1).role, Role::Leader);
    net.propose(1, b"stale");
    net.deliver_all();
    assert_eq!(net.node(1).role, Role::Follower);
    assert_eq!(net.node(1).term, net.node(2).term);
    assert_eq!(
        net.node(3).log.term(2),
        Some(2),
        "node 3 kept the new leader's entry"
    );
}

#[test]
fn prevote_keeps_a_rejoining_partitioned_node_from_disrupting() {
    let mut net = five();
    net.elect(1);
    let term = net.node(1).term;
    net.isolate(5);
    // Node 5 times out again and again while cut off; with PreVote its term stays put.
    for _ in 0..300 {
        net.tick(5);
    }
    assert_eq!(net.node(5).term, term);
    net.heal();
    // It rejoins; the leader stays and the term does not move.
    for _ in 0..100 {
        net.tick_all();
        net.deliver_all();
    }
    assert_eq!(net.leaders(), vec![1]);
    assert_eq!(net.node(1).term, term);
    assert_eq!(net.node(5).status().leader, Some(1));
}

#[test]
fn check_quorum_steps_down_a_partitioned_leader() {
    let mut net = five();
    net.elect(1);
    net.isolate(1);
    for _ in 0..31 {
        net.tick(1);
    }
    assert_eq!(net.node(1).role, Role::Follower);
    // Meanwhile the majority elects someone else.
    for _ in 0..200 {
        net.tick_all();
        net.deliver_all();
    }
    let leaders = net.leaders();
    assert_eq!(leaders.len(), 1);
    assert_ne!(leaders[0], 1);
}

#[test]
fn a_node_in_a_leader_lease_ignores_vote_requests() {
    let mut net = three();
    net.elect(1);
    let term = net.node(1).term;
    // Node 3 campaigns at once (no timeout): nodes 1 and 2 heard from the leader recently.
    net.node_mut(3)
        .campaign(super::super::election::CampaignKind::Election);
    net.process_ready(3);
    net.deliver_all();
    assert_eq!(net.leaders(), vec![1]);
    assert_eq!(
        net.node(2).term,
        term,
        "node 2 did not adopt the disruptive term"
    );
}

#[test]
fn leadership_transfer_hands_over_to_an_up_to_date_target() {
    let mut net = three();
    net.elect(1);
    net.isolate(3);
    net.propose(1, b"a");
    net.deliver_all();
    net.heal();
    net.node_mut(1).transfer_leadership(3).unwrap();
    assert_eq!(
        net.node_mut(1).propose(b"refused".to_vec()),
        Err(super::super::NotLeader {
            leader_hint: Some(3)
        })
    );
    net.process_ready(1);
    net.deliver_all();
    assert_eq!(net.leaders(), vec![3]);
    assert_eq!(net.node(1).status().leader, Some(3));
    assert_eq!(net.node(3).status().commit_index, 3);
}

#[test]
fn a_transfer_to_an_unreachable_target_times_out_and_proposals_resume() {
    let mut net = three();
    net.elect(1);
    net.isolate(3);
    net.node_mut(1).transfer_leadership(3).unwrap();
    net.process_ready(1);
    for _ in 0..15 {
        net.tick(1);
        net.deliver_all();
    }
    assert_eq!(net.node(1).role, Role::Leader);
    assert_eq!(net.node(1).status().transferring_to, None);
    net.propose(1, b"again");
}

#[test]
fn a_restart_recovers_term_vote_and_log_and_relearns_commit() {
    let mut net = three();
    net.elect(1);
    net.propose(1, b"a");
    net.deliver_all();
    let term = net.node(2).term;
    net.crash(2);
    net.restart(2);
    let status = net.node(2).status();
    assert_eq!(
        (status.term, status.voted_for, status.last_index),
        (term, Some(1), 2)
    );
    assert_eq!(status.commit_index, 0, "commit is volatile");
    for _ in 0..5 {
        net.tick(1);
    }
    net.deliver_all();
    assert_eq!(net.node(2).status().commit_index, 2);
    assert_eq!(net.node(2).status().applied_index, 2);
}

#[test]
fn messages_to_others_or_from_strangers_are_ignored() {
    let mut net = three();
    net.elect(1);
    let before = net.node(2).status();
    let stray = |from, to| Message {
        from,
        to,
        term: 99,
        body: MessageBody::TimeoutNow,
    };
    net.node_mut(2).step(stray(9, 2));
    net.node_mut(2).step(stray(1, 3));
    assert_eq!(net.node(2).status(), before);
}

#[test]
fn a_follower_that_lost_acknowledged_entries_is_repaired_without_a_message_storm() {
    let mut net = three();
    net.elect(1);
    for payload in [b"a", b"b", b"c"] {
        net.propose(1, payload);
    }
    net.deliver_all();
    assert_eq!(net.node(1).progress[&3].match_index, 4);
    // Node 3's last two entries never reached its disk (a lost fsync), then it restarts.
    net.crash(3);
    net.disks.get_mut(&3).unwrap().entries.truncate(2);
    net.restart(3);
    let delivered_before = net.delivered_count;
    for round in 0..20u8 {
        net.propose(1, &[round]);
        for _ in 0..5 {
            net.tick(1);
        }
        // Each round settles: the leader retries at heartbeat pace, never in a loop.
        net.deliver_all();
    }
    assert_eq!(net.node(3).log.slice(1, 100), net.node(1).log.slice(1, 100));
    // About 15 messages per round (proposal, acknowledgements, commit notices, heartbeats).
    let delivered = net.delivered_count - delivered_before;
    assert!(delivered < 20 * 25, "{delivered} messages in 20 rounds");
}

#[test]
fn duplicated_vote_grants_count_once() {
    let mut net = Network::with_nodes(5, 7, |config| config.pre_vote = false);
    net.isolate(3);
    net.isolate(4);
    net.isolate(5);
    net.node_mut(1).start_election();
    net.process_ready(1);
    net.deliver_until(|net| net.in_flight.iter().any(|m| m.to == 1));
    let grant = net
        .in_flight
        .iter()
        .find(|m| m.to == 1)
        .cloned()
        .expect("node 2 answered");
    assert!(matches!(
        grant.body,
        MessageBody::RequestVoteResponse { granted: true, .. }
    ));
    for _ in 0..3 {
        net.in_flight.push(grant.clone());
    }
    net.deliver_all();
    assert_eq!(
        net.node(1).role,
        Role::Candidate,
        "two votes of five, however often repeated"
    );
}

fn lease_cluster() -> Network {
    Network::with_nodes(3, 7, |config| config.lease_reads = true)
}

/// Elects node 1 and lets one heartbeat round (sent 5 ticks later) be acknowledged.
fn leader_with_lease(net: &mut Network) {
    net.elect(1);
    for _ in 0..5 {
        net.tick(1);
    }
    net.deliver_all();
    assert!(net.node(1).lease_is_valid());
}

#[test]
fn a_lease_read_is_answered_at_once_without_messages() {
    let mut net = lease_cluster();
    leader_with_lease(&mut net);
    net.read_index(1, 9);
    assert_eq!(net.read_states, vec![(1, 9, 1)]);
    assert!(net.in_flight.is_empty(), "no heartbeat round needed");
}

#[test]
fn a_lease_expires_a_drift_bound_before_the_followers_stop_honouring_it() {
    let mut net = lease_cluster();
    leader_with_lease(&mut net);
    net.isolate(1);
    // The lease lasts 15 - 2 ticks on the leader's clock from when the round was sent.
    for _ in 0..12 {
        net.tick(1);
    }
    assert!(net.node(1).lease_is_valid(), "12 ticks after the round");
    net.tick(1);
    assert!(!net.node(1).lease_is_valid(), "13 ticks after the round");
    net.read_index(1, 9);
    net.deliver_all();
    assert!(
        net.read_states.is_empty(),
        "falls back to a heartbeat round, which cannot complete"
    );
}

#[test]
fn a_stopped_process_forgets_its_lease_until_a_new_round_founds_one() {
    let mut net = lease_cluster();
    leader_with_lease(&mut net);
    // The shell was stopped (SIGSTOP, a pause): its ticks do not tell how long.
    net.node_mut(1).forget_lease();
    assert!(!net.node(1).lease_is_valid());
    net.read_index(1, 9);
    assert!(net.read_states.is_empty(), "not answered on the old lease");
    net.deliver_all();
    assert_eq!(
        net.read_states,
        vec![(1, 9, 1)],
        "a quorum round confirms it"
    );
    assert!(net.node(1).lease_is_valid(), "and founds a new lease");
}

#[test]
fn a_leadership_transfer_ends_the_lease_for_the_term() {
    let mut net = lease_cluster();
    leader_with_lease(&mut net);
    net.isolate(2);
    net.node_mut(1).transfer_leadership(2).unwrap();
    net.settle(1);
    for _ in 0..15 {
        net.tick(1);
        net.deliver_all();
    }
    assert_eq!(
        net.node(1).status().transferring_to,
        None,
        "the transfer timed out"
    );
    // Heartbeat rounds were acknowledged by node 3 meanwhile, yet no lease: a delayed
    // TimeoutNow could still reach node 2.
    assert_eq!(net.node(1).role, Role::Leader);
    assert!(!net.node(1).lease_is_valid());
}

#[test]
fn a_restarted_node_honours_a_lease_it_may_have_acknowledged() {
    let mut net = lease_cluster();
    leader_with_lease(&mut net);
    net.crash(3);
    net.restart(3);
    net.isolate(1);
    // Node 2 campaigns at once: node 3 just restarted and refuses for a timeout.
    net.expire_leases();
    net.node_mut(3).ticks_elapsed = 0;
    net.node_mut(2).start_election();
    net.settle(2);
    net.deliver_all();
    assert_ne!(net.node(2).role, Role::Leader);
}

#[test]
fn recovery_adopts_the_term_of_entries_newer_than_the_stored_hard_state() {
    let entries = vec![Entry {
        term: 5,
        index: 1,
        payload: EntryPayload::Noop,
    }];
    let recovered = RecoveredState {
        hard_state: HardState {
            term: 3,
            voted_for: Some(2),
        },
        entries,
        applied_index: 0,
        snapshot: None,
    };
    let mut node = RaftNode::new(Config::new(1, vec![1, 2, 3], 1), recovered);
    assert_eq!((node.status().term, node.status().voted_for), (5, None));
    assert_eq!(
        node.take_ready().hard_state,
        Some(HardState {
            term: 5,
            voted_for: None
        })
    );
}

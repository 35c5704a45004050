//! PROOF THAT THE BUGS PLANTED FOR ISSUE 12 ARE REAL: for each one consulted in the core, the
//! same input given to the correct build and to the bug, and the message or state where they
//! differ. These bugs have no bespoke selftest schedule on purpose (the generic campaign
//! scores them); the tests only show that each switch changes behaviour.

use super::super::{
    AppendOutcome, Config, Entry, EntryPayload, HardState, LogIndex, Message, MessageBody, NodeId,
    RaftNode, RecoveredState, Role, Snapshot, SnapshotMeta, Term,
};
use super::network::Network;
use crate::bugs::{Bug, Bugs};

/// A follower of a 3-node cluster in `term`, holding entries of `terms` (index 1 on).
fn follower(bugs: Bugs, terms: &[Term], term: Term) -> RaftNode {
    let mut config = Config::new(1, vec![1, 2, 3], 7);
    config.bugs = bugs;
    let entries = terms
        .iter()
        .enumerate()
        .map(|(position, &entry_term)| Entry {
            term: entry_term,
            index: position as LogIndex + 1,
            payload: EntryPayload::Noop,
        })
        .collect();
    let recovered = RecoveredState {
        hard_state: HardState {
            term,
            voted_for: None,
        },
        entries,
        applied_index: 0,
        snapshot: None,
    };
    RaftNode::new(config, recovered)
}

fn from_leader(term: Term, body: MessageBody) -> Message {
    Message {
        from: 2,
        to: 1,
        term,
        body,
    }
}

/// The only AppendEntriesResponse the node sent.
fn append_outcome(node: &mut RaftNode) -> AppendOutcome {
    let responses: Vec<AppendOutcome> = node
        .take_ready()
        .messages
        .into_iter()
        .filter_map(|message| match message.body {
            MessageBody::AppendEntriesResponse { outcome } => Some(outcome),
            _ => None,
        })
        .collect();
    assert_eq!(responses.len(), 1, "{responses:?}");
    responses[0].clone()
}

/// A leader of term 2 whose log matches ours up to index 3 sends entry 3 again (a
/// duplicated or batched-small AppendEntries) with its commit at 4; our entry 4 is a stale
/// one of term 1. Returns (our commit index, the match index we acknowledge).
fn short_append_over_stale_suffix(bugs: Bugs) -> (LogIndex, LogIndex) {
    let mut node = follower(bugs, &[1, 1, 1, 1], 2);
    node.step(from_leader(
        2,
        MessageBody::AppendEntries {
            prev_log_index: 2,
            prev_log_term: 1,
            entries: vec![Entry {
                term: 1,
                index: 3,
                payload: EntryPayload::Noop,
            }],
            leader_commit: 4,
        },
    ));
    let AppendOutcome::Accepted { match_index } = append_outcome(&mut node) else {
        panic!("the entries match");
    };
    (node.status().commit_index, match_index)
}

#[test]
fn bug_follower_commit_past_new_commits_the_stale_suffix() {
    assert_eq!(short_append_over_stale_suffix(Bugs::NONE), (3, 3));
    assert_eq!(
        short_append_over_stale_suffix(Bugs::NONE.with(Bug::FollowerCommitPastNew)),
        (4, 3)
    );
}

#[test]
fn bug_ack_last_index_acknowledges_the_stale_suffix() {
    assert_eq!(
        short_append_over_stale_suffix(Bugs::NONE.with(Bug::AckLastIndex)),
        (3, 4)
    );
}

#[test]
fn bug_append_skips_prev_term_accepts_after_a_divergent_entry() {
    let outcome = |bugs| {
        let mut node = follower(bugs, &[1, 1, 1], 3);
        node.step(from_leader(
            3,
            MessageBody::AppendEntries {
                prev_log_index: 3,
                prev_log_term: 2,
                entries: vec![Entry {
                    term: 3,
                    index: 4,
                    payload: EntryPayload::Noop,
                }],
                leader_commit: 0,
            },
        ));
        append_outcome(&mut node)
    };
    assert!(matches!(
        outcome(Bugs::NONE),
        AppendOutcome::Rejected {
            rejected_index: 3,
            ..
        }
    ));
    assert_eq!(
        outcome(Bugs::NONE.with(Bug::AppendSkipsPrevTerm)),
        AppendOutcome::Accepted { match_index: 4 }
    );
}

#[test]
fn bug_restart_commits_whole_log_commits_what_was_persisted() {
    let commit = |bugs| follower(bugs, &[1, 1, 2], 2).status().commit_index;
    assert_eq!(
        commit(Bugs::NONE),
        0,
        "the commit index comes back from a leader"
    );
    assert_eq!(commit(Bugs::NONE.with(Bug::RestartCommitsWholeLog)), 3);
}

#[test]
fn bug_snapshot_skip_by_index_keeps_a_divergent_log() {
    // Our entry 3 is of term 1; the leader's snapshot ends at (3, term 2).
    let install = |bugs| {
        let mut node = follower(bugs, &[1, 1, 1, 1], 2);
        node.step(from_leader(
            2,
            MessageBody::InstallSnapshot {
                meta: SnapshotMeta {
                    index: 3,
                    term: 2,
                    voters: vec![1, 2, 3],
                    learners: vec![],
                },
                offset: 0,
                data: b"state".to_vec(),
                done: true,
            },
        ));
        let ready = node.take_ready();
        let applied_terms: Vec<Term> = ready
            .committed_entries
            .iter()
            .map(|entry| entry.term)
            .collect();
        (
            ready.snapshot.map(|snapshot: Snapshot| snapshot.meta.index),
            applied_terms,
        )
    };
    assert_eq!(install(Bugs::NONE), (Some(3), vec![]));
    assert_eq!(
        install(Bugs::NONE.with(Bug::SnapshotSkipByIndex)),
        (None, vec![1, 1, 1]),
        "our own divergent entries are applied instead of the snapshot"
    );
}

/// Node 1 leads; a heartbeat answer from node 2 carries a newer term. Returns node 1's role.
fn leader_hears_newer_term_reply(bugs: Bugs) -> Role {
    let mut net = Network::with_nodes(3, 7, |config| config.bugs = bugs);
    net.strict = bugs.is_empty();
    net.elect(1);
    let term = net.node(1).term;
    net.node_mut(1).step(Message {
        from: 2,
        to: 1,
        term: term + 1,
        body: MessageBody::HeartbeatResponse { read_context: 0 },
    });
    net.node(1).role
}

#[test]
fn bug_reply_term_unchecked_keeps_a_deposed_leader() {
    assert_eq!(leader_hears_newer_term_reply(Bugs::NONE), Role::Follower);
    assert_eq!(
        leader_hears_newer_term_reply(Bugs::NONE.with(Bug::ReplyTermUnchecked)),
        Role::Leader
    );
}

/// Node 1 campaigns (no PreVote) in term t and loses the round, campaigns again in t + 1,
/// and then receives node 2's vote granted in term t. Returns node 1's role.
fn late_vote_from_lost_election(bugs: Bugs) -> Role {
    let mut config = Config::new(1, vec![1, 2, 3], 7);
    config.bugs = bugs;
    config.pre_vote = false;
    let mut node = RaftNode::new(config, RecoveredState::default());
    node.start_election();
    let first_term = node.term;
    node.take_ready();
    node.start_election();
    assert_eq!(node.term, first_term + 1);
    assert_eq!(node.role, Role::Candidate);
    node.step(Message {
        from: 2,
        to: 1,
        term: first_term,
        body: MessageBody::RequestVoteResponse {
            pre_vote: false,
            granted: true,
        },
    });
    node.role
}

#[test]
fn bug_stale_vote_counted_wins_with_a_vote_of_the_previous_term() {
    assert_eq!(late_vote_from_lost_election(Bugs::NONE), Role::Candidate);
    assert_eq!(
        late_vote_from_lost_election(Bugs::NONE.with(Bug::StaleVoteCounted)),
        Role::Leader
    );
}

/// Four voters; nodes 3 and 4 are cut off, and node 1 (leader) replicates one entry to node 2
/// only. Returns whether node 1 committed it.
fn commit_with_half_of_four(bugs: Bugs) -> bool {
    let mut net = Network::with_nodes(4, 7, |config| config.bugs = bugs);
    net.strict = bugs.is_empty();
    net.elect(1);
    net.deliver_all();
    net.isolate(3);
    net.isolate(4);
    let (_, index) = net.propose(1, b"x");
    net.deliver_all();
    net.node(1).status().commit_index >= index
}

#[test]
fn bug_commit_median_even_commits_on_half_the_voters() {
    assert!(!commit_with_half_of_four(Bugs::NONE));
    assert!(commit_with_half_of_four(
        Bugs::NONE.with(Bug::CommitMedianEven)
    ));
}

/// Five voters; the leader keeps only node 2 and asks for a read. Returns the reads released.
fn read_with_a_minority(bugs: Bugs) -> usize {
    let mut net = Network::with_nodes(5, 7, |config| config.bugs = bugs);
    net.strict = bugs.is_empty();
    net.elect(1);
    net.deliver_all();
    for node in [3, 4, 5] {
        net.isolate(node);
    }
    net.read_index(1, 9);
    net.deliver_all();
    net.read_states.len()
}

#[test]
fn bug_read_quorum_off_by_one_confirms_reads_with_a_minority() {
    assert_eq!(read_with_a_minority(Bugs::NONE), 0);
    assert_eq!(
        read_with_a_minority(Bugs::NONE.with(Bug::ReadQuorumOffByOne)),
        1
    );
}

/// Node 1 leads with two AppendEntries pipelined to node 2; node 2 answers the first only.
/// Returns the match index node 1 records for node 2, and the index of the first entry.
fn match_after_first_of_two(bugs: Bugs) -> (LogIndex, LogIndex) {
    let mut net = Network::with_nodes(3, 7, |config| config.bugs = bugs);
    net.strict = bugs.is_empty();
    net.elect(1);
    net.deliver_all();
    let (_, first) = net.propose(1, b"a");
    net.propose(1, b"b");
    let to_two = |net: &Network| {
        net.in_flight
            .iter()
            .position(|m| m.to == 2 && matches!(m.body, MessageBody::AppendEntries { .. }))
    };
    let position = to_two(&net).expect("an append to node 2");
    net.deliver(position);
    let answer = net
        .in_flight
        .iter()
        .position(|m| m.from == 2 && m.to == 1)
        .expect("node 2 answered");
    net.deliver(answer);
    let peer: NodeId = 2;
    (net.node(1).progress[&peer].match_index, first)
}

#[test]
fn bug_match_from_next_index_counts_entries_still_in_flight() {
    let (correct, first) = match_after_first_of_two(Bugs::NONE);
    assert_eq!(correct, first);
    let (buggy, first) = match_after_first_of_two(Bugs::NONE.with(Bug::MatchFromNextIndex));
    assert_eq!(buggy, first + 1, "the unanswered second entry is counted");
}

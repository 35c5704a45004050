//! Input no correct peer sends: impossible terms and indexes are refused (never adopted or
//! persisted), an entry contradicting the committed prefix stops the node with a clear
//! error (fail-stop) instead of a panic, and a node at the term ceiling never wraps.

use super::super::{
    Config, Entry, EntryPayload, HardState, Message, MessageBody, RaftNode, RecoveredState,
    MAX_TERM, MAX_TERM_JUMP,
};
use super::network::Network;

fn heartbeat(from: u64, to: u64, term: u64) -> Message {
    Message {
        from,
        to,
        term,
        body: MessageBody::Heartbeat {
            leader_commit: 0,
            read_context: 0,
        },
    }
}

#[test]
fn an_impossible_term_is_refused_not_adopted() {
    let mut net = Network::with_nodes(3, 7, |_| {});
    net.elect(1);
    net.deliver_all();
    let term = net.node(2).status().term;
    for forged in [u64::MAX, MAX_TERM + 1, term + MAX_TERM_JUMP + 1] {
        net.node_mut(2).step(heartbeat(3, 2, forged));
        assert_eq!(net.node(2).status().term, term, "term {forged} adopted");
        assert!(
            !net.node(2).has_ready() || net.node_mut(2).take_ready().hard_state.is_none(),
            "term {forged} would be persisted"
        );
    }
    assert_eq!(net.node(2).refused_messages(), 3);
    // A large but possible jump (a long partition) is still followed.
    net.node_mut(2).step(heartbeat(3, 2, term + 1_000));
    assert_eq!(net.node(2).status().term, term + 1_000);
}

#[test]
fn a_node_at_the_term_ceiling_never_campaigns_into_a_wrapped_term() {
    let config = Config::new(1, vec![1, 2, 3], 5);
    let recovered = RecoveredState {
        hard_state: HardState {
            term: MAX_TERM,
            voted_for: None,
        },
        entries: Vec::new(),
        applied_index: 0,
        snapshot: None,
    };
    let mut node = RaftNode::new(config, recovered);
    for _ in 0..1_000 {
        node.tick();
    }
    assert_eq!(node.status().term, MAX_TERM);
    let impossible = RecoveredState {
        hard_state: HardState {
            term: u64::MAX,
            voted_for: None,
        },
        entries: Vec::new(),
        applied_index: 0,
        snapshot: None,
    };
    let problem = impossible.validate().unwrap_err();
    assert!(problem.contains("impossible"), "{problem}");
}

#[test]
fn an_append_contradicting_the_committed_prefix_fails_stop_without_panicking() {
    let mut net = Network::with_nodes(3, 7, |_| {});
    net.elect(1);
    net.propose(1, b"a");
    net.deliver_all();
    let follower = net.node(2).status();
    assert!(follower.commit_index >= 2, "{follower:?}");
    let committed_term = net.node(2).log.term(1).unwrap();
    let term = follower.term + 1;
    let forged = Message {
        from: 3,
        to: 2,
        term,
        body: MessageBody::AppendEntries {
            prev_log_index: 0,
            prev_log_term: 0,
            entries: vec![Entry {
                term,
                index: 1,
                payload: EntryPayload::Command(b"evil".to_vec()),
            }],
            leader_commit: 1,
        },
    };
    net.node_mut(2).step(forged.clone());
    let violation = net
        .node(2)
        .safety_violation()
        .expect("a conflict inside the committed prefix is a safety violation")
        .to_string();
    for part in [
        "index 1".to_string(),
        format!("term {term}"),
        format!("term {committed_term}"),
    ] {
        assert!(violation.contains(&part), "{violation:?} lacks {part:?}");
    }
    assert_eq!(
        net.node(2).log.term(1),
        Some(committed_term),
        "log rewritten"
    );
    // A stopped core takes no more input.
    let before = net.node(2).status();
    net.node_mut(2).step(heartbeat(3, 2, term + 5));
    assert_eq!(net.node(2).status(), before);
}

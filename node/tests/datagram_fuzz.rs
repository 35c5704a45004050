//! A seeded property test of everything a datagram meets before and inside the node: the
//! authentication envelope, the datagram decoder and the Raft core. Random and mutated
//! datagrams (bit flips, truncation, insertion, smashed length fields, splices of valid
//! datagrams, resealed under the right key) must never panic, abort or hang; the bounded
//! iteration count keeps it in `cargo test` (issue 16, "How we will know").

use minos_node::auth::{open_with, seal_with, ClusterKey};
use minos_node::protocol::{AdminOp, AdminRequest, ClientReply, ClientRequest, ReplyOutcome, Wire};
use minos_node::raft::{
    AppendOutcome, ConfChange, ConfChangeKind, Config, Entry, EntryPayload, HardState, Message,
    MessageBody, RaftNode, RecoveredState, SnapshotMeta,
};
use minos_node::store::{StoreOp, StoreResult};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

const SEED: u64 = 0x5EED_F022;
const MUTATED_ROUNDS: usize = 30_000;
const RANDOM_ROUNDS: usize = 10_000;

fn raft(from: u64, to: u64, term: u64, body: MessageBody) -> Wire {
    Wire::Raft(Message {
        from,
        to,
        term,
        body,
    })
}

fn corpus() -> Vec<Vec<u8>> {
    let entry = |index, term, payload| Entry {
        term,
        index,
        payload,
    };
    let entries = vec![
        entry(4, 2, EntryPayload::Noop),
        entry(5, 2, EntryPayload::Command(b"\x01\x00\x00\x00".to_vec())),
        entry(
            6,
            3,
            EntryPayload::ConfChange(ConfChange {
                kind: ConfChangeKind::AddLearner,
                node: 4,
                context: b"127.0.0.1:7004".to_vec(),
            }),
        ),
    ];
    let wires = vec![
        raft(
            1,
            2,
            3,
            MessageBody::RequestVote {
                pre_vote: true,
                last_log_index: 9,
                last_log_term: 3,
                leader_transfer: false,
            },
        ),
        raft(
            3,
            2,
            3,
            MessageBody::RequestVoteResponse {
                pre_vote: false,
                granted: true,
            },
        ),
        raft(
            1,
            2,
            3,
            MessageBody::AppendEntries {
                prev_log_index: 3,
                prev_log_term: 2,
                entries,
                leader_commit: 5,
            },
        ),
        raft(
            3,
            2,
            3,
            MessageBody::AppendEntriesResponse {
                outcome: AppendOutcome::Rejected {
                    rejected_index: 4,
                    conflict_term: Some(2),
                    conflict_index: 2,
                },
            },
        ),
        raft(
            3,
            2,
            3,
            MessageBody::AppendEntriesResponse {
                outcome: AppendOutcome::Accepted { match_index: 6 },
            },
        ),
        raft(
            1,
            2,
            3,
            MessageBody::Heartbeat {
                leader_commit: 5,
                read_context: 7,
            },
        ),
        raft(3, 2, 3, MessageBody::HeartbeatResponse { read_context: 7 }),
        raft(1, 2, 3, MessageBody::TimeoutNow),
        raft(
            1,
            2,
            3,
            MessageBody::InstallSnapshot {
                meta: SnapshotMeta {
                    index: 8,
                    term: 3,
                    voters: vec![1, 2, 3],
                    learners: vec![4],
                },
                offset: 0,
                data: vec![1, 2, 3, 4, 5],
                done: true,
            },
        ),
        raft(
            3,
            2,
            3,
            MessageBody::InstallSnapshotResponse {
                index: 8,
                received_bytes: 5,
            },
        ),
        Wire::Request(ClientRequest {
            client_id: 5,
            seq: 6,
            op: StoreOp::Cas {
                key: "k".into(),
                old: 1,
                new: 2,
            },
        }),
        Wire::Reply(ClientReply {
            client_id: 5,
            seq: 6,
            outcome: ReplyOutcome::Done(StoreResult::Rejected("no".into())),
        }),
        Wire::Admin(AdminRequest {
            client_id: 5,
            seq: 7,
            to: "127.0.0.1:7001".into(),
            op: AdminOp::AddMember {
                id: 4,
                address: "127.0.0.1:7004".into(),
            },
        }),
    ];
    wires.iter().map(Wire::encode).collect()
}

fn mutate(rng: &mut SmallRng, corpus: &[Vec<u8>]) -> Vec<u8> {
    let mut bytes = corpus[rng.random_range(0..corpus.len())].clone();
    for _ in 0..rng.random_range(1..=4) {
        let len = bytes.len();
        match rng.random_range(0..6) {
            0 if len > 0 => {
                let at = rng.random_range(0..len);
                bytes[at] ^= 1 << rng.random_range(0..8);
            }
            1 if len > 0 => bytes.truncate(rng.random_range(0..len)),
            2 => {
                let at = rng.random_range(0..=len);
                bytes.insert(at, rng.random());
            }
            3 if len >= 8 => {
                // Smash what may be a length, count, term or index field.
                let at = rng.random_range(0..=len - 8);
                let value: u64 = match rng.random_range(0..3) {
                    0 => u64::MAX,
                    1 => u64::from(u32::MAX),
                    _ => rng.random(),
                };
                bytes[at..at + 8].copy_from_slice(&value.to_le_bytes());
            }
            4 => {
                let other = &corpus[rng.random_range(0..corpus.len())];
                let cut = rng.random_range(0..=other.len());
                let keep = rng.random_range(0..=len);
                bytes.truncate(keep);
                bytes.extend_from_slice(&other[cut..]);
            }
            _ if len > 0 => {
                let at = rng.random_range(0..len);
                bytes[at] = rng.random();
            }
            _ => {}
        }
    }
    bytes
}

/// A follower holding a few entries, as a node mid-run would.
fn follower_core() -> RaftNode {
    let entries = (1..=6)
        .map(|index| Entry {
            term: if index <= 3 { 1 } else { 2 },
            index,
            payload: EntryPayload::Noop,
        })
        .collect();
    let recovered = RecoveredState {
        hard_state: HardState {
            term: 3,
            voted_for: Some(1),
        },
        entries,
        applied_index: 0,
        snapshot: None,
    };
    RaftNode::new(Config::new(2, vec![1, 2, 3], 11), recovered)
}

/// Everything one datagram goes through; returns whether it reached the core.
fn handle(key: &ClusterKey, core: &mut RaftNode, datagram: &[u8]) -> bool {
    let _ = Wire::decode(datagram);
    let Ok(opened) = open_with(key, datagram) else {
        return false;
    };
    match Wire::decode(opened.payload) {
        Ok(Wire::Raft(message)) => {
            core.step(message);
            if core.has_ready() {
                let _ = core.take_ready();
            }
            true
        }
        _ => false,
    }
}

#[test]
fn random_and_mutated_datagrams_never_panic_the_decoder_or_the_core() {
    let key = ClusterKey::for_simulation(SEED);
    let corpus = corpus();
    let mut rng = SmallRng::seed_from_u64(SEED);
    let mut core = follower_core();
    let mut reached_core = 0;
    for round in 0..MUTATED_ROUNDS {
        let mutated = mutate(&mut rng, &corpus);
        // Unsealed: must be dropped before decoding matters.
        assert!(!handle(&key, &mut core, &mutated));
        // Sealed under the key: what a buggy or compromised member could send.
        let sealed = seal_with(&key, 0, round as u64, &mutated);
        reached_core += usize::from(handle(&key, &mut core, &sealed));
        // A mutated envelope never verifies.
        let mut tampered = sealed.clone();
        let at = rng.random_range(0..tampered.len());
        tampered[at] ^= 1 << rng.random_range(0..8);
        assert!(
            open_with(&key, &tampered).is_err(),
            "tampered envelope verified"
        );
        if round % 64 == 0 {
            core.tick();
        }
        if core.safety_violation().is_some() {
            // A stopped node is replaced, as the shell would restart it.
            core = follower_core();
        }
    }
    for round in 0..RANDOM_ROUNDS {
        let len = rng.random_range(0..512);
        let bytes: Vec<u8> = (0..len).map(|_| rng.random()).collect();
        assert!(!handle(&key, &mut core, &bytes));
        let sealed = seal_with(&key, 0, round as u64, &bytes);
        handle(&key, &mut core, &sealed);
    }
    assert!(
        reached_core > MUTATED_ROUNDS / 10,
        "only {reached_core} mutated messages decoded: the mutations are too destructive to test the core"
    );
}

//! The replicated state machine: keyed i64 counters plus a client session table.
//!
//! Every committed command goes through [`CounterStore::apply`] in log order on every node, so
//! the store must be deterministic (BTreeMap only). The session table (client id -> last
//! sequence number and its result) is part of the replicated state: a retried `add` that
//! already applied is answered from the table instead of being applied twice.

use std::collections::BTreeMap;

use crate::bugs::{Bug, Bugs};
use crate::codec::{ByteReader, ByteWriter, DecodeError};

/// One operation on the counter store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreOp {
    Read { key: String },
    Add { key: String, delta: i64 },
    Write { key: String, value: i64 },
    Cas { key: String, old: i64, new: i64 },
}

impl StoreOp {
    /// A short human description, keys shortened (for error messages).
    pub fn describe(&self) -> String {
        let key: String = self.key().chars().take(40).collect();
        let key = if key.len() < self.key().len() {
            format!("{key}...")
        } else {
            key
        };
        match self {
            StoreOp::Read { .. } => format!("read {key:?}"),
            StoreOp::Add { delta, .. } => format!("add {delta} to {key:?}"),
            StoreOp::Write { value, .. } => format!("write {value} to {key:?}"),
            StoreOp::Cas { old, new, .. } => format!("cas {key:?} from {old} to {new}"),
        }
    }

    pub fn key(&self) -> &str {
        match self {
            StoreOp::Read { key }
            | StoreOp::Add { key, .. }
            | StoreOp::Write { key, .. }
            | StoreOp::Cas { key, .. } => key,
        }
    }
}

/// What a client asked for, with its session identity. This is the payload of a Raft entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Command {
    pub client_id: u64,
    /// Increases by one per logical operation of the client; retries reuse it.
    pub seq: u64,
    pub op: StoreOp,
}

/// The outcome of applying one operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreResult {
    /// `read` (the value) or `add` (the new total).
    Value(i64),
    /// `write` applied.
    Written,
    /// `cas` matched and swapped.
    Swapped,
    /// `cas` did not match: nothing changed.
    CasMismatch { current: i64 },
    /// The op was refused by the state machine (e.g. overflow): nothing changed.
    Rejected(String),
}

/// The result of applying one command, with whether it was a retry of an applied one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Applied {
    /// `None` for a retry older than the client's latest request: its result is gone, and the
    /// client has moved on, so nobody waits for it.
    pub result: Option<StoreResult>,
    /// True when the session table recognised the command as already applied.
    pub duplicate: bool,
}

/// A client's latest applied request: its sequence number, what it asked for (so that a
/// different op reusing the number is refused, not answered with this result) and the result.
#[derive(Clone, Debug)]
struct Session {
    seq: u64,
    op: StoreOp,
    result: StoreResult,
}

/// Keyed i64 counters (absent keys read as 0) and the client session table.
#[derive(Clone, Debug, Default)]
pub struct CounterStore {
    counters: BTreeMap<String, i64>,
    sessions: BTreeMap<u64, Session>,
    bugs: Bugs,
    applied_count: u64,
}

impl CounterStore {
    pub fn new(bugs: Bugs) -> Self {
        CounterStore {
            bugs,
            ..Default::default()
        }
    }

    /// The current value of `key` as this replica has applied it.
    pub fn get(&self, key: &str) -> i64 {
        self.counters.get(key).copied().unwrap_or(0)
    }

    /// Commands applied so far, duplicates included.
    pub fn applied_count(&self) -> u64 {
        self.applied_count
    }

    /// The replicated state in comparable form (values and each session's last seq), for the
    /// harness to name what differs when two replicas' digests disagree.
    pub fn replica_state(&self) -> crate::observe::ReplicaState {
        crate::observe::ReplicaState {
            values: self.counters.clone(),
            sessions: self
                .sessions
                .iter()
                .map(|(client_id, session)| (*client_id, session.seq))
                .collect(),
        }
    }

    /// A digest of the whole replicated state, for comparing replicas in tests.
    pub fn state_digest(&self) -> u64 {
        let mut writer = ByteWriter::default();
        for (key, value) in &self.counters {
            writer.str(key).i64(*value);
        }
        for (client_id, session) in &self.sessions {
            writer.u64(*client_id).u64(session.seq);
        }
        crate::codec::fnv64(&writer.bytes)
    }

    /// The replicated state as snapshot bytes: counters and the session table (so that a
    /// retry after a snapshot is still recognised). `applied_count` is local, not replicated.
    pub fn encode_snapshot(&self) -> Vec<u8> {
        let mut writer = ByteWriter::default();
        writer.u64(self.counters.len() as u64);
        for (key, value) in &self.counters {
            writer.str(key).i64(*value);
        }
        // PLANTED BUG `snapshot-no-sessions`: the snapshot holds the counters only, as if
        // the session table were a cache: a replica restored from it (after a restart or an
        // InstallSnapshot) has forgotten which requests it applied and applies a retry again.
        // Raft thesis §6.3: the session table must be part of the snapshot.
        if self.bugs.has(Bug::SnapshotNoSessions) {
            writer.u64(0);
            return writer.bytes;
        }
        writer.u64(self.sessions.len() as u64);
        for (client_id, session) in &self.sessions {
            writer.u64(*client_id).u64(session.seq);
            session.op.encode_into(&mut writer);
            session.result.encode_into(&mut writer);
        }
        writer.bytes
    }

    /// The state a snapshot holds (see `encode_snapshot`).
    pub fn decode_snapshot(bytes: &[u8], bugs: Bugs) -> Result<CounterStore, DecodeError> {
        let mut reader = ByteReader::new(bytes);
        let mut store = CounterStore::new(bugs);
        let counters_count = reader.u64()?;
        if counters_count > bytes.len() as u64 {
            return Err(DecodeError(format!(
                "snapshot claims {counters_count} counters"
            )));
        }
        for _ in 0..counters_count {
            let key = reader.str()?.to_string();
            store.counters.insert(key, reader.i64()?);
        }
        let sessions_count = reader.u64()?;
        if sessions_count > bytes.len() as u64 {
            return Err(DecodeError(format!(
                "snapshot claims {sessions_count} sessions"
            )));
        }
        for _ in 0..sessions_count {
            let client_id = reader.u64()?;
            let seq = reader.u64()?;
            let op = StoreOp::decode_from(&mut reader)?;
            let result = StoreResult::decode_from(&mut reader)?;
            store
                .sessions
                .insert(client_id, Session { seq, op, result });
        }
        reader.finish()?;
        Ok(store)
    }

    /// Applies one committed command, exactly once per (client id, seq).
    pub fn apply(&mut self, command: &Command) -> Applied {
        self.applied_count += 1;
        // Planted bug NoDedup: without the session check a retried add applies twice, the
        // at-least-once double increment that client sessions exist to prevent (Ongaro's
        // thesis, section 6.3: a leader that crashes after committing but before replying
        // makes the client retry a command that already executed).
        if !self.bugs.has(Bug::NoDedup) {
            if let Some(session) = self.sessions.get(&command.client_id) {
                if command.seq == session.seq && command.op != session.op {
                    // Not a retry: the client reused a sequence number for another op
                    // (e.g. two invocations with one --client-id). Answering with the
                    // cached result would acknowledge an op that never ran.
                    return Applied {
                        result: Some(StoreResult::Rejected(format!(
                            "client {} already used sequence number {} for a different \
                             operation ({}); this one ({}) was not applied (use a fresh client id)",
                            command.client_id,
                            command.seq,
                            session.op.describe(),
                            command.op.describe()
                        ))),
                        duplicate: true,
                    };
                }
                if command.seq == session.seq {
                    return Applied {
                        result: Some(session.result.clone()),
                        duplicate: true,
                    };
                }
                // PLANTED BUG `dedup-last-only`: only a retry of the client's latest request
                // is recognised; an older copy (a retry proposed to an earlier leader that
                // commits after the client moved on) is applied again. Imitates a session
                // table that stores "last seq" but tests equality instead of `<=`.
                if command.seq < session.seq && !self.bugs.has(Bug::DedupLastOnly) {
                    return Applied {
                        result: None,
                        duplicate: true,
                    };
                }
            }
        }
        let result = self.execute(&command.op);
        self.sessions.insert(
            command.client_id,
            Session {
                seq: command.seq,
                op: command.op.clone(),
                result: result.clone(),
            },
        );
        Applied {
            result: Some(result),
            duplicate: false,
        }
    }

    fn execute(&mut self, op: &StoreOp) -> StoreResult {
        let current = self.get(op.key());
        match op {
            StoreOp::Read { .. } => StoreResult::Value(current),
            StoreOp::Add { key, delta } => match current.checked_add(*delta) {
                Some(total) => {
                    self.counters.insert(key.clone(), total);
                    StoreResult::Value(total)
                }
                None => StoreResult::Rejected(format!("add {delta} to {current} overflows i64")),
            },
            StoreOp::Write { key, value } => {
                self.counters.insert(key.clone(), *value);
                StoreResult::Written
            }
            StoreOp::Cas { key, old, new } => {
                if current == *old {
                    self.counters.insert(key.clone(), *new);
                    StoreResult::Swapped
                } else {
                    StoreResult::CasMismatch { current }
                }
            }
        }
    }
}

const OP_READ: u8 = 1;
const OP_ADD: u8 = 2;
const OP_WRITE: u8 = 3;
const OP_CAS: u8 = 4;

impl StoreOp {
    pub fn encode_into(&self, writer: &mut ByteWriter) {
        match self {
            StoreOp::Read { key } => writer.u8(OP_READ).str(key),
            StoreOp::Add { key, delta } => writer.u8(OP_ADD).str(key).i64(*delta),
            StoreOp::Write { key, value } => writer.u8(OP_WRITE).str(key).i64(*value),
            StoreOp::Cas { key, old, new } => writer.u8(OP_CAS).str(key).i64(*old).i64(*new),
        };
    }

    pub fn decode_from(reader: &mut ByteReader<'_>) -> Result<StoreOp, DecodeError> {
        let tag = reader.u8()?;
        let key = reader.str()?.to_string();
        Ok(match tag {
            OP_READ => StoreOp::Read { key },
            OP_ADD => StoreOp::Add {
                key,
                delta: reader.i64()?,
            },
            OP_WRITE => StoreOp::Write {
                key,
                value: reader.i64()?,
            },
            OP_CAS => StoreOp::Cas {
                key,
                old: reader.i64()?,
                new: reader.i64()?,
            },
            other => return Err(DecodeError(format!("unknown store op tag {other}"))),
        })
    }
}

impl Command {
    /// The compact binary form stored in Raft entries.
    pub fn encode(&self) -> Vec<u8> {
        let mut writer = ByteWriter::default();
        writer.u64(self.client_id).u64(self.seq);
        self.op.encode_into(&mut writer);
        writer.bytes
    }

    pub fn decode(bytes: &[u8]) -> Result<Command, DecodeError> {
        let mut reader = ByteReader::new(bytes);
        let client_id = reader.u64()?;
        let seq = reader.u64()?;
        let op = StoreOp::decode_from(&mut reader)?;
        reader.finish()?;
        Ok(Command { client_id, seq, op })
    }
}

const RESULT_VALUE: u8 = 1;
const RESULT_WRITTEN: u8 = 2;
const RESULT_SWAPPED: u8 = 3;
const RESULT_MISMATCH: u8 = 4;
const RESULT_REJECTED: u8 = 5;

impl StoreResult {
    pub fn encode_into(&self, writer: &mut ByteWriter) {
        match self {
            StoreResult::Value(value) => writer.u8(RESULT_VALUE).i64(*value),
            StoreResult::Written => writer.u8(RESULT_WRITTEN),
            StoreResult::Swapped => writer.u8(RESULT_SWAPPED),
            StoreResult::CasMismatch { current } => writer.u8(RESULT_MISMATCH).i64(*current),
            StoreResult::Rejected(reason) => writer.u8(RESULT_REJECTED).str(reason),
        };
    }

    pub fn decode_from(reader: &mut ByteReader<'_>) -> Result<StoreResult, DecodeError> {
        Ok(match reader.u8()? {
            RESULT_VALUE => StoreResult::Value(reader.i64()?),
            RESULT_WRITTEN => StoreResult::Written,
            RESULT_SWAPPED => StoreResult::Swapped,
            RESULT_MISMATCH => StoreResult::CasMismatch {
                current: reader.i64()?,
            },
            RESULT_REJECTED => StoreResult::Rejected(reader.str()?.to_string()),
            other => return Err(DecodeError(format!("unknown store result tag {other}"))),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_round_trips_counters_and_sessions() {
        let mut store = CounterStore::new(Bugs::NONE);
        store.apply(&add(1, 1, "a", 5));
        store.apply(&add(2, 7, "b", -3));
        let restored = CounterStore::decode_snapshot(&store.encode_snapshot(), Bugs::NONE).unwrap();
        assert_eq!(restored.state_digest(), store.state_digest());
        let mut restored = restored;
        assert!(
            restored.apply(&add(1, 1, "a", 5)).duplicate,
            "the session table survives a snapshot"
        );
        assert_eq!(restored.get("a"), 5);
        assert!(CounterStore::decode_snapshot(&[1, 2, 3], Bugs::NONE).is_err());
    }

    fn add(client_id: u64, seq: u64, key: &str, delta: i64) -> Command {
        Command {
            client_id,
            seq,
            op: StoreOp::Add {
                key: key.into(),
                delta,
            },
        }
    }

    #[test]
    fn ops_follow_counter_and_cas_semantics() {
        let mut store = CounterStore::new(Bugs::NONE);
        assert_eq!(store.get("k"), 0);
        assert_eq!(
            store.apply(&add(1, 1, "k", 5)).result,
            Some(StoreResult::Value(5))
        );
        assert_eq!(
            store.apply(&add(1, 2, "k", -2)).result,
            Some(StoreResult::Value(3))
        );
        let cas = |seq, old, new| Command {
            client_id: 2,
            seq,
            op: StoreOp::Cas {
                key: "k".into(),
                old,
                new,
            },
        };
        assert_eq!(
            store.apply(&cas(1, 9, 1)).result,
            Some(StoreResult::CasMismatch { current: 3 })
        );
        assert_eq!(
            store.apply(&cas(2, 3, 10)).result,
            Some(StoreResult::Swapped)
        );
        let write = Command {
            client_id: 3,
            seq: 1,
            op: StoreOp::Write {
                key: "j".into(),
                value: -7,
            },
        };
        assert_eq!(store.apply(&write).result, Some(StoreResult::Written));
        assert_eq!((store.get("k"), store.get("j")), (10, -7));
        let overflow = add(4, 1, "k", i64::MAX);
        assert!(matches!(
            store.apply(&overflow).result,
            Some(StoreResult::Rejected(_))
        ));
        assert_eq!(store.get("k"), 10);
    }

    #[test]
    fn a_retried_add_applies_exactly_once_and_returns_the_first_result() {
        let mut store = CounterStore::new(Bugs::NONE);
        store.apply(&add(1, 1, "k", 5));
        let retry = store.apply(&add(1, 1, "k", 5));
        assert_eq!(
            retry,
            Applied {
                result: Some(StoreResult::Value(5)),
                duplicate: true
            }
        );
        assert_eq!(store.get("k"), 5);
        store.apply(&add(1, 2, "k", 1));
        let stale = store.apply(&add(1, 1, "k", 5));
        assert_eq!(
            stale,
            Applied {
                result: None,
                duplicate: true
            }
        );
        assert_eq!(store.get("k"), 6);
        // Another client's identical request is a different operation.
        store.apply(&add(2, 1, "k", 5));
        assert_eq!(store.get("k"), 11);
    }

    #[test]
    fn a_different_op_reusing_a_sequence_number_is_refused_not_answered_from_the_cache() {
        let mut store = CounterStore::new(Bugs::NONE);
        store.apply(&add(1, 1, "dup", 1));
        let other = store.apply(&add(1, 1, "other", 5));
        let Some(StoreResult::Rejected(reason)) = &other.result else {
            panic!("reuse of (1, 1) for another op answered {other:?}");
        };
        assert!(reason.contains("sequence number 1"), "{reason}");
        assert!(reason.contains("add 5 to \"other\""), "{reason}");
        assert_eq!((store.get("dup"), store.get("other")), (1, 0));
        // The genuine retry still gets the first result, also after a snapshot.
        let mut restored =
            CounterStore::decode_snapshot(&store.encode_snapshot(), Bugs::NONE).unwrap();
        assert_eq!(
            restored.apply(&add(1, 1, "dup", 1)).result,
            Some(StoreResult::Value(1))
        );
        assert!(matches!(
            restored.apply(&add(1, 1, "dup", 2)).result,
            Some(StoreResult::Rejected(_))
        ));
    }

    #[test]
    fn planted_no_dedup_applies_a_retry_twice() {
        let mut store = CounterStore::new(Bugs::NONE.with(Bug::NoDedup));
        store.apply(&add(1, 1, "k", 5));
        store.apply(&add(1, 1, "k", 5));
        assert_eq!(store.get("k"), 10);
    }

    #[test]
    fn planted_dedup_last_only_applies_an_older_retry_again() {
        let run = |bugs: Bugs| {
            let mut store = CounterStore::new(bugs);
            store.apply(&add(1, 1, "k", 5));
            store.apply(&add(1, 2, "k", 1));
            let stale = store.apply(&add(1, 1, "k", 5));
            (stale.duplicate, store.get("k"))
        };
        assert_eq!(run(Bugs::NONE), (true, 6));
        assert_eq!(run(Bugs::NONE.with(Bug::DedupLastOnly)), (false, 11));
    }

    #[test]
    fn planted_snapshot_no_sessions_forgets_applied_requests() {
        let run = |bugs: Bugs| {
            let mut store = CounterStore::new(bugs);
            store.apply(&add(1, 1, "k", 5));
            let mut restored = CounterStore::decode_snapshot(&store.encode_snapshot(), bugs)
                .expect("own snapshot decodes");
            let retry = restored.apply(&add(1, 1, "k", 5));
            (retry.duplicate, restored.get("k"))
        };
        assert_eq!(run(Bugs::NONE), (true, 5));
        assert_eq!(run(Bugs::NONE.with(Bug::SnapshotNoSessions)), (false, 10));
    }

    #[test]
    fn replicas_applying_the_same_log_agree() {
        let log: Vec<Command> = (1..50)
            .map(|seq| add(seq % 3, seq, &format!("k{}", seq % 4), seq as i64))
            .collect();
        let mut a = CounterStore::new(Bugs::NONE);
        let mut b = CounterStore::new(Bugs::NONE);
        for command in &log {
            assert_eq!(a.apply(command), b.apply(command));
        }
        assert_eq!(a.state_digest(), b.state_digest());
    }

    #[test]
    fn commands_and_results_round_trip_and_garbage_is_rejected() {
        let ops = [
            StoreOp::Read { key: "a".into() },
            StoreOp::Add {
                key: "bb".into(),
                delta: -3,
            },
            StoreOp::Write {
                key: "".into(),
                value: i64::MIN,
            },
            StoreOp::Cas {
                key: "c".into(),
                old: 1,
                new: 2,
            },
        ];
        for op in ops {
            let command = Command {
                client_id: 9,
                seq: 77,
                op,
            };
            assert_eq!(Command::decode(&command.encode()).unwrap(), command);
        }
        let results = [
            StoreResult::Value(4),
            StoreResult::Written,
            StoreResult::Swapped,
            StoreResult::CasMismatch { current: 8 },
            StoreResult::Rejected("no".into()),
        ];
        for result in results {
            let mut writer = ByteWriter::default();
            result.encode_into(&mut writer);
            let mut reader = ByteReader::new(&writer.bytes);
            assert_eq!(StoreResult::decode_from(&mut reader).unwrap(), result);
        }
        assert!(Command::decode(&[1, 2, 3]).is_err());
        let mut bad = add(1, 1, "k", 1).encode();
        bad.push(0);
        assert!(Command::decode(&bad).is_err());
    }
}

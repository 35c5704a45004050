//! Compact binary encoding of the core's Raft messages for the wire (the simulation spends
//! much of its time here, so no JSON on the hot path). A message kind this codec does not
//! know yet (the core may add one) falls back to JSON under its own tag, so the shell keeps
//! working until the codec learns it.

use crate::codec::{ByteReader, ByteWriter, DecodeError};
use crate::raft::{AppendOutcome, Message, MessageBody, SnapshotMeta};
use crate::storage::{decode_entry, encode_entry};

const REQUEST_VOTE: u8 = 1;
const REQUEST_VOTE_RESPONSE: u8 = 2;
const APPEND_ENTRIES: u8 = 3;
const APPEND_ENTRIES_RESPONSE: u8 = 4;
const HEARTBEAT: u8 = 5;
const HEARTBEAT_RESPONSE: u8 = 6;
const TIMEOUT_NOW: u8 = 7;
const INSTALL_SNAPSHOT: u8 = 8;
const INSTALL_SNAPSHOT_RESPONSE: u8 = 9;
const JSON_FALLBACK: u8 = 255;

fn flags(a: bool, b: bool) -> u8 {
    u8::from(a) | (u8::from(b) << 1)
}

pub fn encode_message(message: &Message) -> Vec<u8> {
    let mut writer = ByteWriter::default();
    writer.u64(message.from).u64(message.to).u64(message.term);
    match &message.body {
        MessageBody::RequestVote {
            pre_vote,
            last_log_index,
            last_log_term,
            leader_transfer,
        } => {
            writer
                .u8(REQUEST_VOTE)
                .u8(flags(*pre_vote, *leader_transfer))
                .u64(*last_log_index)
                .u64(*last_log_term);
        }
        MessageBody::RequestVoteResponse { pre_vote, granted } => {
            writer
                .u8(REQUEST_VOTE_RESPONSE)
                .u8(flags(*pre_vote, *granted));
        }
        MessageBody::AppendEntries {
            prev_log_index,
            prev_log_term,
            entries,
            leader_commit,
        } => {
            writer
                .u8(APPEND_ENTRIES)
                .u64(*prev_log_index)
                .u64(*prev_log_term)
                .u64(*leader_commit);
            writer.u64(entries.len() as u64);
            for entry in entries {
                writer.bytes(&encode_entry(entry));
            }
        }
        MessageBody::AppendEntriesResponse { outcome } => {
            writer.u8(APPEND_ENTRIES_RESPONSE);
            match outcome {
                AppendOutcome::Accepted { match_index } => writer.u8(0).u64(*match_index),
                AppendOutcome::Rejected {
                    rejected_index,
                    conflict_term,
                    conflict_index,
                } => {
                    writer.u8(1).u64(*rejected_index).u64(*conflict_index);
                    match conflict_term {
                        None => writer.u8(0),
                        Some(term) => writer.u8(1).u64(*term),
                    }
                }
            };
        }
        MessageBody::Heartbeat {
            leader_commit,
            read_context,
        } => {
            writer.u8(HEARTBEAT).u64(*leader_commit).u64(*read_context);
        }
        MessageBody::HeartbeatResponse { read_context } => {
            writer.u8(HEARTBEAT_RESPONSE).u64(*read_context);
        }
        MessageBody::TimeoutNow => {
            writer.u8(TIMEOUT_NOW);
        }
        MessageBody::InstallSnapshot {
            meta,
            offset,
            data,
            done,
        } => {
            writer
                .u8(INSTALL_SNAPSHOT)
                .u64(meta.index)
                .u64(meta.term)
                .u64(meta.voters.len() as u64);
            for voter in &meta.voters {
                writer.u64(*voter);
            }
            writer.u64(meta.learners.len() as u64);
            for learner in &meta.learners {
                writer.u64(*learner);
            }
            writer.u64(*offset).u8(u8::from(*done)).bytes(data);
        }
        MessageBody::InstallSnapshotResponse {
            index,
            received_bytes,
        } => {
            writer
                .u8(INSTALL_SNAPSHOT_RESPONSE)
                .u64(*index)
                .u64(*received_bytes);
        }
        #[allow(unreachable_patterns)]
        other => {
            writer
                .u8(JSON_FALLBACK)
                .bytes(&serde_json::to_vec(other).expect("raft messages serialize"));
        }
    }
    writer.bytes
}

pub fn decode_message(bytes: &[u8]) -> Result<Message, DecodeError> {
    let mut reader = ByteReader::new(bytes);
    let from = reader.u64()?;
    let to = reader.u64()?;
    let term = reader.u64()?;
    let body = match reader.u8()? {
        REQUEST_VOTE => {
            let flags = reader.u8()?;
            MessageBody::RequestVote {
                pre_vote: flags & 1 != 0,
                leader_transfer: flags & 2 != 0,
                last_log_index: reader.u64()?,
                last_log_term: reader.u64()?,
            }
        }
        REQUEST_VOTE_RESPONSE => {
            let flags = reader.u8()?;
            MessageBody::RequestVoteResponse {
                pre_vote: flags & 1 != 0,
                granted: flags & 2 != 0,
            }
        }
        APPEND_ENTRIES => {
            let prev_log_index = reader.u64()?;
            let prev_log_term = reader.u64()?;
            let leader_commit = reader.u64()?;
            let count = reader.u64()?;
            // Each entry takes at least 4 bytes; a larger count is garbage, not a big message.
            if count > bytes.len() as u64 / 4 {
                return Err(DecodeError(format!("AppendEntries claims {count} entries")));
            }
            let mut entries = Vec::with_capacity(count as usize);
            for _ in 0..count {
                entries.push(decode_entry(reader.bytes()?).map_err(DecodeError)?);
            }
            MessageBody::AppendEntries {
                prev_log_index,
                prev_log_term,
                entries,
                leader_commit,
            }
        }
        APPEND_ENTRIES_RESPONSE => {
            let outcome = match reader.u8()? {
                0 => AppendOutcome::Accepted {
                    match_index: reader.u64()?,
                },
                1 => {
                    let rejected_index = reader.u64()?;
                    let conflict_index = reader.u64()?;
                    let conflict_term = match reader.u8()? {
                        0 => None,
                        _ => Some(reader.u64()?),
                    };
                    AppendOutcome::Rejected {
                        rejected_index,
                        conflict_term,
                        conflict_index,
                    }
                }
                other => return Err(DecodeError(format!("unknown append outcome {other}"))),
            };
            MessageBody::AppendEntriesResponse { outcome }
        }
        HEARTBEAT => MessageBody::Heartbeat {
            leader_commit: reader.u64()?,
            read_context: reader.u64()?,
        },
        HEARTBEAT_RESPONSE => MessageBody::HeartbeatResponse {
            read_context: reader.u64()?,
        },
        TIMEOUT_NOW => MessageBody::TimeoutNow,
        INSTALL_SNAPSHOT => {
            let index = reader.u64()?;
            let term = reader.u64()?;
            let voters_count = reader.u64()?;
            if voters_count > bytes.len() as u64 / 8 {
                return Err(DecodeError(format!(
                    "InstallSnapshot claims {voters_count} voters"
                )));
            }
            let voters = (0..voters_count)
                .map(|_| reader.u64())
                .collect::<Result<Vec<_>, _>>()?;
            let learners_count = reader.u64()?;
            if learners_count > bytes.len() as u64 / 8 {
                return Err(DecodeError(format!(
                    "InstallSnapshot claims {learners_count} learners"
                )));
            }
            let learners = (0..learners_count)
                .map(|_| reader.u64())
                .collect::<Result<Vec<_>, _>>()?;
            let offset = reader.u64()?;
            let done = reader.u8()? != 0;
            let data = reader.bytes()?.to_vec();
            MessageBody::InstallSnapshot {
                meta: SnapshotMeta {
                    index,
                    term,
                    voters,
                    learners,
                },
                offset,
                data,
                done,
            }
        }
        INSTALL_SNAPSHOT_RESPONSE => MessageBody::InstallSnapshotResponse {
            index: reader.u64()?,
            received_bytes: reader.u64()?,
        },
        JSON_FALLBACK => serde_json::from_slice(reader.bytes()?)
            .map_err(|error| DecodeError(format!("raft message body: {error}")))?,
        other => return Err(DecodeError(format!("unknown raft message kind {other}"))),
    };
    reader.finish()?;
    Ok(Message {
        from,
        to,
        term,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::{Entry, EntryPayload};

    #[test]
    fn every_message_kind_round_trips() {
        let entries = vec![
            Entry {
                term: 2,
                index: 5,
                payload: EntryPayload::Noop,
            },
            Entry {
                term: 3,
                index: 6,
                payload: EntryPayload::Command(vec![1, 2, 3]),
            },
        ];
        let bodies = vec![
            MessageBody::RequestVote {
                pre_vote: true,
                last_log_index: 9,
                last_log_term: 2,
                leader_transfer: false,
            },
            MessageBody::RequestVote {
                pre_vote: false,
                last_log_index: 1,
                last_log_term: 1,
                leader_transfer: true,
            },
            MessageBody::RequestVoteResponse {
                pre_vote: false,
                granted: true,
            },
            MessageBody::AppendEntries {
                prev_log_index: 4,
                prev_log_term: 2,
                entries,
                leader_commit: 4,
            },
            MessageBody::AppendEntries {
                prev_log_index: 0,
                prev_log_term: 0,
                entries: vec![],
                leader_commit: 0,
            },
            MessageBody::AppendEntriesResponse {
                outcome: AppendOutcome::Accepted { match_index: 6 },
            },
            MessageBody::AppendEntriesResponse {
                outcome: AppendOutcome::Rejected {
                    rejected_index: 6,
                    conflict_term: Some(2),
                    conflict_index: 3,
                },
            },
            MessageBody::AppendEntriesResponse {
                outcome: AppendOutcome::Rejected {
                    rejected_index: 6,
                    conflict_term: None,
                    conflict_index: 2,
                },
            },
            MessageBody::Heartbeat {
                leader_commit: 7,
                read_context: 11,
            },
            MessageBody::HeartbeatResponse { read_context: 11 },
            MessageBody::TimeoutNow,
            MessageBody::InstallSnapshot {
                meta: SnapshotMeta {
                    index: 40,
                    term: 3,
                    voters: vec![1, 2, 3],
                    learners: vec![4],
                },
                offset: 1024,
                data: vec![9; 100],
                done: true,
            },
            MessageBody::InstallSnapshotResponse {
                index: 40,
                received_bytes: 1124,
            },
        ];
        for body in bodies {
            let message = Message {
                from: 1,
                to: 3,
                term: 4,
                body,
            };
            assert_eq!(decode_message(&encode_message(&message)).unwrap(), message);
        }
    }

    #[test]
    fn truncated_or_garbage_messages_are_errors() {
        let message = Message {
            from: 1,
            to: 2,
            term: 3,
            body: MessageBody::Heartbeat {
                leader_commit: 1,
                read_context: 2,
            },
        };
        let bytes = encode_message(&message);
        for cut in 0..bytes.len() {
            assert!(decode_message(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let huge = Message {
            from: 1,
            to: 2,
            term: 3,
            body: MessageBody::AppendEntries {
                prev_log_index: 0,
                prev_log_term: 0,
                entries: vec![],
                leader_commit: 0,
            },
        };
        let mut bytes = encode_message(&huge);
        let count_at = bytes.len() - 8;
        bytes[count_at..].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(decode_message(&bytes).is_err());
    }
}

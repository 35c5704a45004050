//! The datagram format: Raft messages between nodes, and client requests and replies.
//!
//! Both client traffic and Raft messages use compact binary encodings (see `wire_raft`).
//! Every datagram starts with a one-byte kind tag.

use crate::codec::{ByteReader, ByteWriter, DecodeError};
use crate::raft::Message;
use crate::store::{StoreOp, StoreResult};

/// Datagrams larger than this are never sent (safe under the 65,507-byte UDP limit).
pub const MAX_DATAGRAM_BYTES: usize = 60_000;

/// One client operation; (client_id, seq) identifies it across retries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientRequest {
    pub client_id: u64,
    pub seq: u64,
    pub op: StoreOp,
}

/// A cluster administration request (`minos client add-member` etc.), served by the leader.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdminRequest {
    pub client_id: u64,
    pub seq: u64,
    /// The node address the request was sent to (`ip:port`, as the sender resolved it),
    /// sealed with it: a node refuses a request meant for another, so a recorded request
    /// cannot be replayed to a different node of the cluster.
    pub to: String,
    pub op: AdminOp,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AdminOp {
    /// Adds `id` (listening at `address`) as a learner; the leader promotes it to voter once
    /// its log has caught up.
    AddMember {
        id: u64,
        address: String,
    },
    RemoveMember {
        id: u64,
    },
    /// The configuration, as JSON.
    Members,
    TransferLeader {
        to: u64,
    },
}

/// The node's answer to one attempt of a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReplyOutcome {
    /// The op took effect (or, for a failed cas, certainly did nothing) with this result.
    Done(StoreResult),
    /// Refused before it was proposed: this attempt certainly did not apply. Try `leader_hint`.
    NotLeader { leader_hint: Option<String> },
    /// It was proposed but this node can no longer tell the outcome (e.g. it lost leadership,
    /// or another entry took its log slot). It may still apply: retry with the same seq.
    Retry { reason: String },
    /// An administration request's answer: `ok` false means it was refused (not proposed).
    Admin { ok: bool, text: String },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientReply {
    pub client_id: u64,
    pub seq: u64,
    pub outcome: ReplyOutcome,
}

/// Everything that travels in one datagram.
#[derive(Clone, Debug, PartialEq)]
pub enum Wire {
    Raft(Message),
    Request(ClientRequest),
    Reply(ClientReply),
    Admin(AdminRequest),
}

const WIRE_RAFT: u8 = 1;
const WIRE_REQUEST: u8 = 2;
const WIRE_REPLY: u8 = 3;
const WIRE_ADMIN: u8 = 4;
const OUTCOME_ADMIN: u8 = 4;
const ADMIN_ADD: u8 = 1;
const ADMIN_REMOVE: u8 = 2;
const ADMIN_MEMBERS: u8 = 3;
const ADMIN_TRANSFER: u8 = 4;
const OUTCOME_DONE: u8 = 1;
const OUTCOME_NOT_LEADER: u8 = 2;
const OUTCOME_RETRY: u8 = 3;

impl Wire {
    pub fn encode(&self) -> Vec<u8> {
        let mut writer = ByteWriter::default();
        match self {
            Wire::Raft(message) => {
                writer.u8(WIRE_RAFT);
                writer
                    .bytes
                    .extend_from_slice(&crate::wire_raft::encode_message(message));
            }
            Wire::Request(request) => {
                writer
                    .u8(WIRE_REQUEST)
                    .u64(request.client_id)
                    .u64(request.seq);
                request.op.encode_into(&mut writer);
            }
            Wire::Reply(reply) => {
                writer.u8(WIRE_REPLY).u64(reply.client_id).u64(reply.seq);
                match &reply.outcome {
                    ReplyOutcome::Done(result) => {
                        writer.u8(OUTCOME_DONE);
                        result.encode_into(&mut writer);
                    }
                    ReplyOutcome::NotLeader { leader_hint } => {
                        writer
                            .u8(OUTCOME_NOT_LEADER)
                            .str(leader_hint.as_deref().unwrap_or(""));
                    }
                    ReplyOutcome::Retry { reason } => {
                        writer.u8(OUTCOME_RETRY).str(reason);
                    }
                    ReplyOutcome::Admin { ok, text } => {
                        writer.u8(OUTCOME_ADMIN).u8(u8::from(*ok)).str(text);
                    }
                }
            }
            Wire::Admin(request) => {
                writer
                    .u8(WIRE_ADMIN)
                    .u64(request.client_id)
                    .u64(request.seq)
                    .str(&request.to);
                match &request.op {
                    AdminOp::AddMember { id, address } => {
                        writer.u8(ADMIN_ADD).u64(*id).str(address)
                    }
                    AdminOp::RemoveMember { id } => writer.u8(ADMIN_REMOVE).u64(*id),
                    AdminOp::Members => writer.u8(ADMIN_MEMBERS),
                    AdminOp::TransferLeader { to } => writer.u8(ADMIN_TRANSFER).u64(*to),
                };
            }
        }
        writer.bytes
    }

    pub fn decode(bytes: &[u8]) -> Result<Wire, DecodeError> {
        let (&tag, rest) = bytes
            .split_first()
            .ok_or_else(|| DecodeError("empty datagram".into()))?;
        if tag == WIRE_RAFT {
            return crate::wire_raft::decode_message(rest).map(Wire::Raft);
        }
        let mut reader = ByteReader::new(rest);
        let client_id = reader.u64()?;
        let seq = reader.u64()?;
        let wire = match tag {
            WIRE_REQUEST => Wire::Request(ClientRequest {
                client_id,
                seq,
                op: StoreOp::decode_from(&mut reader)?,
            }),
            WIRE_REPLY => {
                let outcome = match reader.u8()? {
                    OUTCOME_DONE => ReplyOutcome::Done(StoreResult::decode_from(&mut reader)?),
                    OUTCOME_NOT_LEADER => {
                        let hint = reader.str()?;
                        ReplyOutcome::NotLeader {
                            leader_hint: (!hint.is_empty()).then(|| hint.to_string()),
                        }
                    }
                    OUTCOME_RETRY => ReplyOutcome::Retry {
                        reason: reader.str()?.to_string(),
                    },
                    OUTCOME_ADMIN => ReplyOutcome::Admin {
                        ok: reader.u8()? != 0,
                        text: reader.str()?.to_string(),
                    },
                    other => return Err(DecodeError(format!("unknown reply outcome {other}"))),
                };
                Wire::Reply(ClientReply {
                    client_id,
                    seq,
                    outcome,
                })
            }
            WIRE_ADMIN => {
                let to = reader.str()?.to_string();
                let op = match reader.u8()? {
                    ADMIN_ADD => AdminOp::AddMember {
                        id: reader.u64()?,
                        address: reader.str()?.to_string(),
                    },
                    ADMIN_REMOVE => AdminOp::RemoveMember { id: reader.u64()? },
                    ADMIN_MEMBERS => AdminOp::Members,
                    ADMIN_TRANSFER => AdminOp::TransferLeader { to: reader.u64()? },
                    other => return Err(DecodeError(format!("unknown admin op {other}"))),
                };
                Wire::Admin(AdminRequest {
                    client_id,
                    seq,
                    to,
                    op,
                })
            }
            other => return Err(DecodeError(format!("unknown datagram kind {other}"))),
        };
        reader.finish()?;
        Ok(wire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_datagrams_round_trip() {
        let wires = [
            Wire::Request(ClientRequest {
                client_id: 3,
                seq: 9,
                op: StoreOp::Add {
                    key: "k1".into(),
                    delta: -4,
                },
            }),
            Wire::Request(ClientRequest {
                client_id: 3,
                seq: 10,
                op: StoreOp::Read { key: "k1".into() },
            }),
            Wire::Reply(ClientReply {
                client_id: 3,
                seq: 9,
                outcome: ReplyOutcome::Done(StoreResult::Value(12)),
            }),
            Wire::Reply(ClientReply {
                client_id: 3,
                seq: 9,
                outcome: ReplyOutcome::NotLeader {
                    leader_hint: Some("n2:7000".into()),
                },
            }),
            Wire::Reply(ClientReply {
                client_id: 1,
                seq: 1,
                outcome: ReplyOutcome::NotLeader { leader_hint: None },
            }),
            Wire::Reply(ClientReply {
                client_id: 1,
                seq: 2,
                outcome: ReplyOutcome::Retry {
                    reason: "lost".into(),
                },
            }),
            Wire::Reply(ClientReply {
                client_id: 1,
                seq: 3,
                outcome: ReplyOutcome::Admin {
                    ok: true,
                    text: "{}".into(),
                },
            }),
            Wire::Admin(AdminRequest {
                client_id: 1,
                seq: 4,
                to: "10.0.0.1:7000".into(),
                op: AdminOp::AddMember {
                    id: 4,
                    address: "n4:7000".into(),
                },
            }),
            Wire::Admin(AdminRequest {
                client_id: 1,
                seq: 5,
                to: "10.0.0.1:7000".into(),
                op: AdminOp::RemoveMember { id: 2 },
            }),
            Wire::Admin(AdminRequest {
                client_id: 1,
                seq: 6,
                to: "10.0.0.1:7000".into(),
                op: AdminOp::Members,
            }),
            Wire::Admin(AdminRequest {
                client_id: 1,
                seq: 7,
                to: "10.0.0.1:7000".into(),
                op: AdminOp::TransferLeader { to: 3 },
            }),
        ];
        for wire in wires {
            assert_eq!(Wire::decode(&wire.encode()).unwrap(), wire);
        }
    }

    #[test]
    fn malformed_datagrams_are_errors_not_panics() {
        assert!(Wire::decode(&[]).is_err());
        assert!(Wire::decode(&[9, 1, 2]).is_err());
        assert!(Wire::decode(&[WIRE_RAFT, b'{']).is_err());
        let mut request = Wire::Request(ClientRequest {
            client_id: 1,
            seq: 1,
            op: StoreOp::Read { key: "k".into() },
        })
        .encode();
        request.truncate(request.len() - 1);
        assert!(Wire::decode(&request).is_err());
    }
}

//! Encoding of the core's Raft messages for the wire. The core's types are serde types
//! whose shape the core engineer may extend, so JSON keeps this codec independent of it.
//! (Measured cost: see the transport benchmark in the crate report.)

use crate::codec::DecodeError;
use crate::raft::Message;

pub fn encode_message(message: &Message) -> Vec<u8> {
    serde_json::to_vec(message).expect("raft messages serialize")
}

pub fn decode_message(bytes: &[u8]) -> Result<Message, DecodeError> {
    serde_json::from_slice(bytes).map_err(|error| DecodeError(format!("raft message: {error}")))
}

//! Porcupine's kv model, one key: a string with get/put/append (initially "").

use std::sync::Arc;

use serde_json::Value;

use super::{known_output, unknown_f, Model};
use crate::history::Operation;

pub struct Kv {
    init: KvState,
}

/// A string with a polynomial hash kept up to date on append, so that hashing a state for the
/// search's interning costs O(1) however long the string grows.
#[derive(Clone, Debug)]
pub struct KvState {
    hash: u64,
    text: Arc<str>,
}

impl PartialEq for KvState {
    fn eq(&self, other: &Self) -> bool {
        self.hash == other.hash && self.text == other.text
    }
}

impl Eq for KvState {}

impl std::hash::Hash for KvState {
    fn hash<H: std::hash::Hasher>(&self, hasher: &mut H) {
        hasher.write_u64(self.hash);
    }
}

const BASE: u64 = 0x0000_0100_0000_01b3;

/// (hash of `text`, BASE^len) with wrapping arithmetic.
fn poly_hash(text: &str) -> (u64, u64) {
    text.bytes().fold((0u64, 1u64), |(hash, power), byte| {
        (
            hash.wrapping_mul(BASE).wrapping_add(u64::from(byte) + 1),
            power.wrapping_mul(BASE),
        )
    })
}

impl KvState {
    fn new(text: Arc<str>) -> KvState {
        KvState {
            hash: poly_hash(&text).0,
            text,
        }
    }
}

pub struct Suffix {
    text: Arc<str>,
    hash: u64,
    power: u64,
}

pub enum KvOp {
    Get(Option<KvState>),
    Put(KvState),
    Append(Suffix),
}

fn expect_string(value: &Value, what: &str) -> Result<Arc<str>, String> {
    value
        .as_str()
        .map(Arc::from)
        .ok_or_else(|| format!("{what} must be a string, found {value}"))
}

impl Kv {
    pub fn new(init: Option<&Value>) -> Result<Kv, String> {
        let init = match init {
            None | Some(Value::Null) => Arc::from(""),
            Some(value) => expect_string(value, "kv --init")?,
        };
        Ok(Kv {
            init: KvState::new(init),
        })
    }
}

impl Model for Kv {
    type State = KvState;
    type Op = KvOp;

    fn init_state(&self) -> KvState {
        self.init.clone()
    }

    fn compile(&self, op: &Operation) -> Result<KvOp, String> {
        match op.f.as_str() {
            "get" | "read" => Ok(KvOp::Get(
                known_output(op)
                    .map(|value| expect_string(value, "get result").map(KvState::new))
                    .transpose()?,
            )),
            "put" | "write" => Ok(KvOp::Put(KvState::new(expect_string(
                &op.invoke_value,
                "put value",
            )?))),
            "append" => {
                let text = expect_string(&op.invoke_value, "append value")?;
                let (hash, power) = poly_hash(&text);
                Ok(KvOp::Append(Suffix { text, hash, power }))
            }
            other => Err(unknown_f("kv", other, "get, put, append")),
        }
    }

    #[inline]
    fn step(&self, state: &KvState, op: &KvOp) -> Option<KvState> {
        match op {
            KvOp::Get(None) => Some(state.clone()),
            KvOp::Get(Some(value)) => (value == state).then(|| state.clone()),
            KvOp::Put(value) => Some(value.clone()),
            KvOp::Append(suffix) => {
                let mut joined = String::with_capacity(state.text.len() + suffix.text.len());
                joined.push_str(&state.text);
                joined.push_str(&suffix.text);
                let hash = state
                    .hash
                    .wrapping_mul(suffix.power)
                    .wrapping_add(suffix.hash);
                debug_assert_eq!(hash, poly_hash(&joined).0);
                Some(KvState {
                    hash,
                    text: Arc::from(joined),
                })
            }
        }
    }

    fn why_illegal(&self, state: &KvState, op: &KvOp) -> String {
        match op {
            KvOp::Get(Some(value)) => {
                format!(
                    "get returned {:?} but the value is {:?}",
                    value.text, state.text
                )
            }
            _ => "always legal".to_string(),
        }
    }

    fn state_json(&self, state: &KvState) -> Value {
        Value::String(state.text.to_string())
    }

    fn changes_state(&self, op: &KvOp) -> bool {
        !matches!(op, KvOp::Get(_))
    }

    fn constrains(&self, op: &KvOp) -> bool {
        matches!(op, KvOp::Get(Some(_)))
    }

    fn state_heap_bytes(&self, state: &KvState) -> usize {
        state.text.len() + 16
    }
}

//! Porcupine's kv model, one key: a string with get/put/append (initially "").

use std::sync::Arc;

use serde_json::Value;

use super::{known_output, unknown_f, Model};
use crate::history::Operation;

pub struct Kv {
    init: Arc<str>,
}

pub enum KvOp {
    Get(Option<Arc<str>>),
    Put(Arc<str>),
    Append(Arc<str>),
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
        Ok(Kv { init })
    }
}

impl Model for Kv {
    type State = Arc<str>;
    type Op = KvOp;

    fn init_state(&self) -> Arc<str> {
        self.init.clone()
    }

    fn compile(&self, op: &Operation) -> Result<KvOp, String> {
        match op.f.as_str() {
            "get" | "read" => Ok(KvOp::Get(
                known_output(op)
                    .map(|value| expect_string(value, "get result"))
                    .transpose()?,
            )),
            "put" | "write" => Ok(KvOp::Put(expect_string(&op.invoke_value, "put value")?)),
            "append" => Ok(KvOp::Append(expect_string(
                &op.invoke_value,
                "append value",
            )?)),
            other => Err(unknown_f("kv", other, "get, put, append")),
        }
    }

    #[inline]
    fn step(&self, state: &Arc<str>, op: &KvOp) -> Option<Arc<str>> {
        match op {
            KvOp::Get(None) => Some(state.clone()),
            KvOp::Get(Some(value)) => (value == state).then(|| state.clone()),
            KvOp::Put(value) => Some(value.clone()),
            KvOp::Append(suffix) => {
                let mut joined = String::with_capacity(state.len() + suffix.len());
                joined.push_str(state);
                joined.push_str(suffix);
                Some(Arc::from(joined))
            }
        }
    }

    fn why_illegal(&self, state: &Arc<str>, op: &KvOp) -> String {
        match op {
            KvOp::Get(Some(value)) => format!("get returned {value:?} but the value is {state:?}"),
            _ => "always legal".to_string(),
        }
    }

    fn state_json(&self, state: &Arc<str>) -> Value {
        Value::String(state.to_string())
    }

    fn changes_state(&self, op: &KvOp) -> bool {
        !matches!(op, KvOp::Get(_))
    }

    fn constrains(&self, op: &KvOp) -> bool {
        matches!(op, KvOp::Get(Some(_)))
    }

    fn state_heap_bytes(&self, state: &Arc<str>) -> usize {
        state.len() + 16
    }
}

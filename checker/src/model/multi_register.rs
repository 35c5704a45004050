//! Knossos' multi-register: `:txn` ops holding `[:read k v]` and `[:write k v]` micro-ops,
//! applied atomically to a map of registers. As in Knossos, a read of `nil` means "not
//! observed" (the invoke carries `nil` for every read; the completion fills them in).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

use super::{known_output, unknown_f, Model};
use crate::history::Operation;
use crate::value::Val;

pub struct MultiRegister {
    init: BTreeMap<Arc<str>, Val>,
}

#[derive(Clone)]
pub enum Micro {
    Read(Arc<str>, Option<Val>),
    Write(Arc<str>, Val),
}

#[derive(Clone)]
pub struct Txn(Vec<Micro>);

fn key_name(value: &Value) -> Arc<str> {
    match value {
        Value::String(name) => Arc::from(name.as_str()),
        other => Arc::from(other.to_string()),
    }
}

impl MultiRegister {
    /// `--init` is an object of register values; absent registers hold null.
    pub fn new(init: Option<&Value>) -> Result<MultiRegister, String> {
        let init = match init {
            None | Some(Value::Null) => BTreeMap::new(),
            Some(Value::Object(entries)) => entries
                .iter()
                .map(|(key, value)| (Arc::from(key.as_str()), Val::from_json(value)))
                .collect(),
            Some(other) => {
                return Err(format!(
                    "multi-register --init must be an object {{\"x\": 0, ...}}, found {other}"
                ))
            }
        };
        Ok(MultiRegister { init })
    }
}

fn micro_ops(value: &Value) -> Result<Vec<(String, Arc<str>, Value)>, String> {
    let Some(items) = value.as_array() else {
        return Err(format!(
            "txn value must be [[f key value] ...], found {value}"
        ));
    };
    items
        .iter()
        .map(|item| match item.as_array().map(Vec::as_slice) {
            Some([Value::String(f), key, value]) => Ok((f.clone(), key_name(key), value.clone())),
            _ => Err(format!("txn micro-op must be [f key value], found {item}")),
        })
        .collect()
}

impl Model for MultiRegister {
    type State = BTreeMap<Arc<str>, Val>;
    type Op = Txn;

    fn init_state(&self) -> Self::State {
        self.init.clone()
    }

    fn compile(&self, op: &Operation) -> Result<Txn, String> {
        if op.f != "txn" {
            return Err(unknown_f("multi-register", &op.f, "txn"));
        }
        let invoked = micro_ops(&op.invoke_value)?;
        let completed = known_output(op).map(micro_ops).transpose()?;
        if let Some(completed) = &completed {
            if completed.len() != invoked.len() {
                return Err(
                    "txn completion has a different number of micro-ops than its invoke"
                        .to_string(),
                );
            }
        }
        let mut micros = Vec::with_capacity(invoked.len());
        for (position, (f, key, value)) in invoked.into_iter().enumerate() {
            match f.as_str() {
                "read" | "r" => {
                    let seen = completed
                        .as_ref()
                        .map(|completed| &completed[position].2)
                        .unwrap_or(&Value::Null);
                    let seen = (!seen.is_null()).then(|| Val::from_json(seen));
                    micros.push(Micro::Read(key, seen));
                }
                "write" | "w" => micros.push(Micro::Write(key, Val::from_json(&value))),
                other => return Err(format!("txn micro-op {other:?} is neither read nor write")),
            }
        }
        Ok(Txn(micros))
    }

    fn step(&self, state: &Self::State, op: &Txn) -> Option<Self::State> {
        let mut next = state.clone();
        for micro in &op.0 {
            match micro {
                Micro::Read(_, None) => {}
                Micro::Read(key, Some(value)) => {
                    if next.get(key).unwrap_or(&Val::Null) != value {
                        return None;
                    }
                }
                Micro::Write(key, value) => {
                    next.insert(key.clone(), value.clone());
                }
            }
        }
        Some(next)
    }

    fn why_illegal(&self, state: &Self::State, op: &Txn) -> String {
        let mut next = state.clone();
        for micro in &op.0 {
            match micro {
                Micro::Read(key, Some(value)) => {
                    let held = next.get(key).unwrap_or(&Val::Null);
                    if held != value {
                        return format!("txn read {key} = {value} but register {key} holds {held}");
                    }
                }
                Micro::Write(key, value) => {
                    next.insert(key.clone(), value.clone());
                }
                Micro::Read(_, None) => {}
            }
        }
        "always legal".to_string()
    }

    fn state_json(&self, state: &Self::State) -> Value {
        Value::Object(
            state
                .iter()
                .map(|(key, value)| (key.to_string(), value.to_json()))
                .collect(),
        )
    }

    fn changes_state(&self, op: &Txn) -> bool {
        op.0.iter().any(|micro| matches!(micro, Micro::Write(..)))
    }

    fn constrains(&self, op: &Txn) -> bool {
        op.0.iter()
            .any(|micro| matches!(micro, Micro::Read(_, Some(_))))
    }

    fn state_heap_bytes(&self, state: &Self::State) -> usize {
        state.len() * 64
    }
}

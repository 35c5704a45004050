//! A grow-only set: `add x`, and `read` returning every element.

use std::collections::BTreeSet;

use serde_json::Value;

use super::{known_output, unknown_f, Model};
use crate::history::Operation;
use crate::value::Val;

pub struct Set {
    init: BTreeSet<Val>,
}

#[derive(Clone)]
pub enum SetOp {
    Add(Val),
    Read(Option<BTreeSet<Val>>),
}

fn elements(value: &Value, what: &str) -> Result<BTreeSet<Val>, String> {
    match value {
        Value::Array(items) => Ok(items.iter().map(Val::from_json).collect()),
        other => Err(format!(
            "{what} must be an array of elements, found {other}"
        )),
    }
}

fn show(elements: &BTreeSet<Val>) -> String {
    let items: Vec<String> = elements.iter().map(Val::to_string).collect();
    format!("#{{{}}}", items.join(" "))
}

impl Set {
    pub fn new(init: Option<&Value>) -> Result<Set, String> {
        let init = match init {
            None | Some(Value::Null) => BTreeSet::new(),
            Some(value) => elements(value, "set --init")?,
        };
        Ok(Set { init })
    }
}

impl Model for Set {
    type State = BTreeSet<Val>;
    type Op = SetOp;

    fn init_state(&self) -> BTreeSet<Val> {
        self.init.clone()
    }

    fn compile(&self, op: &Operation) -> Result<SetOp, String> {
        match op.f.as_str() {
            "add" => Ok(SetOp::Add(Val::from_json(&op.invoke_value))),
            "read" => Ok(SetOp::Read(
                known_output(op)
                    .map(|value| elements(value, "read result"))
                    .transpose()?,
            )),
            other => Err(unknown_f("set", other, "add, read")),
        }
    }

    fn step(&self, state: &BTreeSet<Val>, op: &SetOp) -> Option<BTreeSet<Val>> {
        match op {
            SetOp::Add(element) => {
                let mut next = state.clone();
                next.insert(element.clone());
                Some(next)
            }
            SetOp::Read(None) => Some(state.clone()),
            SetOp::Read(Some(seen)) => (seen == state).then(|| state.clone()),
        }
    }

    fn why_illegal(&self, state: &BTreeSet<Val>, op: &SetOp) -> String {
        match op {
            SetOp::Read(Some(seen)) => format!(
                "read returned {} but the set is {}",
                show(seen),
                show(state)
            ),
            _ => "always legal".to_string(),
        }
    }

    fn state_json(&self, state: &BTreeSet<Val>) -> Value {
        Value::Array(state.iter().map(Val::to_json).collect())
    }

    fn changes_state(&self, op: &SetOp) -> bool {
        matches!(op, SetOp::Add(_))
    }

    fn constrains(&self, op: &SetOp) -> bool {
        matches!(op, SetOp::Read(Some(_)))
    }

    fn state_heap_bytes(&self, state: &BTreeSet<Val>) -> usize {
        state.len() * 48
    }
}

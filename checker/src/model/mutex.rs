//! A lock: acquire when free, release when held (owners are not tracked, as in Knossos).

use serde_json::Value;

use super::{unknown_f, Model};
use crate::history::Operation;

pub struct Mutex {
    init_held: bool,
}

#[derive(Clone)]
pub enum MutexOp {
    Acquire,
    Release,
}

impl Mutex {
    /// `--init true` starts held; default free.
    pub fn new(init: Option<&Value>) -> Result<Mutex, String> {
        match init {
            None | Some(Value::Null) => Ok(Mutex { init_held: false }),
            Some(Value::Bool(held)) => Ok(Mutex { init_held: *held }),
            Some(other) => Err(format!(
                "mutex --init must be true (held) or false (free), found {other}"
            )),
        }
    }
}

impl Model for Mutex {
    type State = bool;
    type Op = MutexOp;

    fn init_state(&self) -> bool {
        self.init_held
    }

    fn compile(&self, op: &Operation) -> Result<MutexOp, String> {
        match op.f.as_str() {
            "acquire" => Ok(MutexOp::Acquire),
            "release" => Ok(MutexOp::Release),
            other => Err(unknown_f("mutex", other, "acquire, release")),
        }
    }

    fn step(&self, held: &bool, op: &MutexOp) -> Option<bool> {
        match op {
            MutexOp::Acquire => (!held).then_some(true),
            MutexOp::Release => held.then_some(false),
        }
    }

    fn why_illegal(&self, held: &bool, op: &MutexOp) -> String {
        match (op, held) {
            (MutexOp::Acquire, true) => "acquire needs the lock free, but it is held".to_string(),
            (MutexOp::Release, false) => "release needs the lock held, but it is free".to_string(),
            _ => "always legal".to_string(),
        }
    }

    fn state_json(&self, held: &bool) -> Value {
        Value::String(if *held { "held" } else { "free" }.to_string())
    }

    fn changes_state(&self, _op: &MutexOp) -> bool {
        true
    }

    fn constrains(&self, _op: &MutexOp) -> bool {
        true
    }
}

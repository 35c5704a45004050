//! Queues: `fifo-queue` (dequeue returns the oldest element; `null` = it was empty) and
//! `unordered-queue` (dequeue returns any element present).

use std::collections::{BTreeMap, VecDeque};

use serde_json::Value;

use super::{known_output, unknown_f, Model};
use crate::history::Operation;
use crate::value::Val;

pub enum QueueOp {
    Enqueue(Val),
    /// `None`: the element dequeued was not observed.
    Dequeue(Option<Val>),
}

fn compile_queue(model: &str, op: &Operation) -> Result<QueueOp, String> {
    match op.f.as_str() {
        "enqueue" => Ok(QueueOp::Enqueue(Val::from_json(&op.invoke_value))),
        "dequeue" => Ok(QueueOp::Dequeue(known_output(op).map(Val::from_json))),
        other => Err(unknown_f(model, other, "enqueue, dequeue")),
    }
}

fn init_elements(init: Option<&Value>, model: &str) -> Result<Vec<Val>, String> {
    match init {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => Ok(items.iter().map(Val::from_json).collect()),
        Some(other) => Err(format!(
            "{model} --init must be an array of elements, found {other}"
        )),
    }
}

pub struct FifoQueue {
    init: VecDeque<Val>,
}

impl FifoQueue {
    pub fn new(init: Option<&Value>) -> Result<FifoQueue, String> {
        Ok(FifoQueue {
            init: init_elements(init, "fifo-queue")?.into(),
        })
    }
}

impl Model for FifoQueue {
    type State = VecDeque<Val>;
    type Op = QueueOp;

    fn init_state(&self) -> VecDeque<Val> {
        self.init.clone()
    }

    fn compile(&self, op: &Operation) -> Result<QueueOp, String> {
        compile_queue("fifo-queue", op)
    }

    fn step(&self, state: &VecDeque<Val>, op: &QueueOp) -> Option<VecDeque<Val>> {
        match op {
            QueueOp::Enqueue(element) => {
                let mut next = state.clone();
                next.push_back(element.clone());
                Some(next)
            }
            QueueOp::Dequeue(Some(Val::Null)) => state.is_empty().then(|| state.clone()),
            QueueOp::Dequeue(None) => {
                let mut next = state.clone();
                next.pop_front();
                Some(next)
            }
            QueueOp::Dequeue(Some(element)) => {
                if state.front() != Some(element) {
                    return None;
                }
                let mut next = state.clone();
                next.pop_front();
                Some(next)
            }
        }
    }

    fn why_illegal(&self, state: &VecDeque<Val>, op: &QueueOp) -> String {
        match (op, state.front()) {
            (QueueOp::Dequeue(Some(Val::Null)), Some(front)) => {
                format!("dequeue found the queue empty but its head is {front}")
            }
            (QueueOp::Dequeue(Some(element)), None) => {
                format!("dequeue returned {element} but the queue is empty")
            }
            (QueueOp::Dequeue(Some(element)), Some(front)) => {
                format!("dequeue returned {element} but the head of the queue is {front}")
            }
            _ => "always legal".to_string(),
        }
    }

    fn state_json(&self, state: &VecDeque<Val>) -> Value {
        Value::Array(state.iter().map(Val::to_json).collect())
    }

    fn changes_state(&self, _op: &QueueOp) -> bool {
        true
    }

    fn constrains(&self, op: &QueueOp) -> bool {
        matches!(op, QueueOp::Dequeue(Some(_)))
    }

    fn state_heap_bytes(&self, state: &VecDeque<Val>) -> usize {
        state.len() * 24
    }
}

/// Elements with their multiplicities.
pub struct UnorderedQueue {
    init: BTreeMap<Val, u32>,
}

impl UnorderedQueue {
    pub fn new(init: Option<&Value>) -> Result<UnorderedQueue, String> {
        let mut counts = BTreeMap::new();
        for element in init_elements(init, "unordered-queue")? {
            *counts.entry(element).or_insert(0) += 1;
        }
        Ok(UnorderedQueue { init: counts })
    }
}

impl Model for UnorderedQueue {
    type State = BTreeMap<Val, u32>;
    type Op = QueueOp;

    fn init_state(&self) -> BTreeMap<Val, u32> {
        self.init.clone()
    }

    fn compile(&self, op: &Operation) -> Result<QueueOp, String> {
        let compiled = compile_queue("unordered-queue", op)?;
        if matches!(compiled, QueueOp::Dequeue(Some(Val::Null))) {
            return Err(
                "unordered-queue does not model empty dequeues (null results); use fifo-queue"
                    .to_string(),
            );
        }
        Ok(compiled)
    }

    fn step(&self, state: &BTreeMap<Val, u32>, op: &QueueOp) -> Option<BTreeMap<Val, u32>> {
        match op {
            QueueOp::Enqueue(element) => {
                let mut next = state.clone();
                *next.entry(element.clone()).or_insert(0) += 1;
                Some(next)
            }
            // Which element an unobserved dequeue took is unknown; since more elements never
            // make a later step illegal here, "it never happened" covers every case.
            QueueOp::Dequeue(None) => Some(state.clone()),
            QueueOp::Dequeue(Some(element)) => {
                let mut next = state.clone();
                let count = next.get_mut(element)?;
                *count -= 1;
                if *count == 0 {
                    next.remove(element);
                }
                Some(next)
            }
        }
    }

    fn why_illegal(&self, _state: &BTreeMap<Val, u32>, op: &QueueOp) -> String {
        match op {
            QueueOp::Dequeue(Some(element)) => {
                format!("dequeue returned {element} but it is not in the queue")
            }
            _ => "always legal".to_string(),
        }
    }

    fn state_json(&self, state: &BTreeMap<Val, u32>) -> Value {
        let mut elements = Vec::new();
        for (element, count) in state {
            for _ in 0..*count {
                elements.push(element.to_json());
            }
        }
        Value::Array(elements)
    }

    fn changes_state(&self, op: &QueueOp) -> bool {
        !matches!(op, QueueOp::Dequeue(None))
    }

    fn constrains(&self, op: &QueueOp) -> bool {
        matches!(op, QueueOp::Dequeue(Some(_)))
    }

    fn state_heap_bytes(&self, state: &BTreeMap<Val, u32>) -> usize {
        state.len() * 48
    }
}

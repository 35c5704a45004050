//! Queues: `fifo-queue` (dequeue returns the oldest element; `null` = it was empty) and
//! `unordered-queue` (dequeue returns any element present; `null` = it was empty).

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde_json::Value;

use super::{known_output, unknown_f, Model};
use crate::history::Operation;
use crate::value::Val;

#[derive(Clone)]
pub enum QueueOp {
    Enqueue(Val),
    /// `None`: the element dequeued was not observed; `Some(Val::Null)`: the dequeue found
    /// the queue empty.
    Dequeue(Option<Val>),
    /// One way an in-doubt dequeue may have happened (unordered queue): it took this element.
    /// Unlike `Dequeue(Some(Val::Null))`, taking a null element is taking an element.
    Take(Val),
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
            QueueOp::Dequeue(Some(element)) | QueueOp::Take(element) => {
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
            (QueueOp::Take(element), _) => {
                format!("an in-doubt dequeue cannot have taken {element}: it is not the head")
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
        compile_queue("unordered-queue", op)
    }

    fn step(&self, state: &BTreeMap<Val, u32>, op: &QueueOp) -> Option<BTreeMap<Val, u32>> {
        match op {
            QueueOp::Enqueue(element) => {
                let mut next = state.clone();
                *next.entry(element.clone()).or_insert(0) += 1;
                Some(next)
            }
            // Which element an unobserved dequeue took is unknown. Where no dequeue found the
            // queue empty, more elements never make a later step illegal, so "it never
            // happened" covers every case; otherwise `in_doubt_variants` gives each element
            // it may have taken.
            QueueOp::Dequeue(None) => Some(state.clone()),
            QueueOp::Dequeue(Some(Val::Null)) => state.is_empty().then(|| state.clone()),
            QueueOp::Dequeue(Some(element)) | QueueOp::Take(element) => {
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

    fn why_illegal(&self, state: &BTreeMap<Val, u32>, op: &QueueOp) -> String {
        match op {
            QueueOp::Dequeue(Some(Val::Null)) => {
                let count: u32 = state.values().sum();
                format!("dequeue found the queue empty but it holds {count} element(s)")
            }
            QueueOp::Dequeue(Some(element)) => {
                format!("dequeue returned {element} but it is not in the queue")
            }
            QueueOp::Take(element) => {
                format!("an in-doubt dequeue cannot have taken {element}: it is not in the queue")
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
        !matches!(
            op,
            QueueOp::Dequeue(None) | QueueOp::Dequeue(Some(Val::Null))
        )
    }

    fn constrains(&self, op: &QueueOp) -> bool {
        matches!(op, QueueOp::Dequeue(Some(_)) | QueueOp::Take(_))
    }

    fn state_heap_bytes(&self, state: &BTreeMap<Val, u32>) -> usize {
        state.len() * 48
    }

    fn in_doubt_variants(&self, op: &QueueOp, object_ops: &[&QueueOp]) -> Vec<QueueOp> {
        let found_empty = object_ops
            .iter()
            .any(|other| matches!(other, QueueOp::Dequeue(Some(Val::Null))));
        if !matches!(op, QueueOp::Dequeue(None)) || !found_empty {
            return Vec::new();
        }
        // Every element the queue can ever hold: the initial ones and those enqueued.
        let mut elements: BTreeSet<&Val> = self.init.keys().collect();
        for other in object_ops {
            if let QueueOp::Enqueue(element) = other {
                elements.insert(element);
            }
        }
        elements
            .into_iter()
            .map(|element| QueueOp::Take(element.clone()))
            .collect()
    }
}

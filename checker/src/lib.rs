//! The checker owns the history model (operations as recorded by the harness or by other
//! tools), the sequential specifications (models) and the linearizability search that
//! decides whether a history is linearizable, within a time and memory budget.

mod cache;
mod check;
pub mod deadline;
mod explain;
pub mod fxhash;
pub mod history;
mod minimize;
pub mod model;
mod report;
mod search;
mod supply;
pub mod value;

pub use check::{check, CheckError, CheckOptions};
pub use report::{
    CheckReport, Counterexample, Linearization, LinearizedStep, OpSummary, PartitionReport,
    PrefixReached, StuckOp, Verdict, Window, STATE_TEXT_CHARS,
};

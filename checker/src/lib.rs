//! The checker owns the history model (operations as recorded by the harness or by other
//! tools), the sequential specifications (models) and the linearizability search that
//! decides whether a history is linearizable, within a time and memory budget.

pub mod history;

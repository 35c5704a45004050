//! Rebuilding a run's options from its run dir (results.json + schedule.json), so that
//! `minos shrink RUN_DIR` replays exactly the run that failed.

use std::path::Path;

use minos_node::bugs::{Bug, Bugs};
use serde_json::Value;

use super::ShrinkError;
use crate::options::{KeyDistribution, ReadMode, SystemKind, Workload};
use crate::schedule::Schedule;
use crate::RunOptions;

/// The options of the run stored in `run_dir`, with its schedule as a script. Fields missing
/// from results.json keep the defaults of `minos run`.
pub fn options_from_run_dir(run_dir: &Path) -> Result<RunOptions, ShrinkError> {
    let bad = |text: String| ShrinkError::BadInput(format!("{}: {text}", run_dir.display()));
    let text = std::fs::read_to_string(run_dir.join("results.json"))
        .map_err(|error| bad(format!("cannot read results.json: {error}")))?;
    let results: Value =
        serde_json::from_str(&text).map_err(|error| bad(format!("results.json: {error}")))?;
    let seed = results
        .get("seed")
        .and_then(Value::as_u64)
        .ok_or_else(|| bad("results.json has no seed".into()))?;
    let stored = results
        .get("options")
        .ok_or_else(|| bad("results.json has no options".into()))?;
    let mut options = RunOptions::new(seed);
    let number = |name: &str| stored.get(name).and_then(Value::as_u64);
    let text_of = |name: &str| stored.get(name).and_then(Value::as_str);
    if let Some(nodes) = number("nodes") {
        options.nodes = nodes as usize;
    }
    if let Some(clients) = number("clients") {
        options.clients = clients as usize;
    }
    if let Some(keys) = number("keys") {
        options.keys = keys as usize;
    }
    if let Some(time_limit_ms) = number("time_limit_ms") {
        options.time_limit_ms = time_limit_ms;
    }
    if let Some(rate) = stored.get("rate_ops_per_s").and_then(Value::as_f64) {
        options.rate_ops_per_s = rate;
    }
    if let Some(workload) = text_of("workload") {
        options.workload = workload.parse::<Workload>().map_err(bad)?;
    }
    if let Some(distribution) = text_of("key_distribution") {
        options.key_distribution = distribution.parse::<KeyDistribution>().map_err(bad)?;
    }
    if let Some(nemesis) = text_of("nemesis_arg") {
        options.nemesis = nemesis.parse().map_err(bad)?;
    }
    if let Some(count) = number("max_append_entries") {
        options.max_append_entries = Some(count as usize);
    }
    if let Some(stall_ms) = number("max_stall_ms") {
        options.max_stall_ms = Some(stall_ms);
    }
    if let Some(interval_ms) = number("nemesis_interval_ms") {
        options.nemesis_interval_ms = interval_ms;
    }
    if let Some(op_timeout_ms) = number("op_timeout_ms") {
        options.op_timeout_ms = op_timeout_ms;
    }
    if let Some(liveness_timeout_ms) = number("liveness_timeout_ms") {
        options.liveness_timeout_ms = liveness_timeout_ms;
    }
    if let Some(step_ms) = number("step_ms") {
        options.step_ms = step_ms;
    }
    // Older runs wrote etcd's names (linearizable, serializable); both still parse.
    if let Some(mode) = text_of("read_mode") {
        options.read_mode = mode.parse::<ReadMode>().map_err(bad)?;
    }
    let mut bugs = Bugs::NONE;
    for name in stored
        .get("bugs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = name
            .as_str()
            .ok_or_else(|| bad("a bug name is not a string".into()))?;
        bugs = bugs.with(
            name.parse::<Bug>()
                .map_err(|error| bad(error.to_string()))?,
        );
    }
    options.bugs = bugs;
    if let Some(system) = results.get("system").and_then(Value::as_str) {
        options.system = system.parse::<SystemKind>().map_err(bad)?;
    }
    let schedule_path = run_dir.join("schedule.json");
    let schedule = Schedule::read_file(&schedule_path).map_err(ShrinkError::BadInput)?;
    options.schedule = Some(schedule);
    options.validate().map_err(bad)?;
    Ok(options)
}

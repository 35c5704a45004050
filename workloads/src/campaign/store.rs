//! A campaign's directory: `<out>/<campaign>/campaign.json` (what the campaign runs) and one
//! run dir per seed, `<out>/<campaign>/<test>/sim-seed<N>/`, written by `minos run`'s code.
//!
//! The run dirs are the campaign's journal: a run dir holding results.json is finished (the run
//! writes results.json last, atomically), so a killed campaign resumes by skipping those seeds;
//! a run dir without results.json is a run cut short and is removed before its seed reruns.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use minos_checker::Verdict;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::signature::{signature_of_run_dir, Signature};
use super::CampaignError;
use crate::output::write_atomic;
use crate::RunOptions;

/// The file that marks a campaign dir (the reports crate recognises it too).
pub const CAMPAIGN_FILE: &str = "campaign.json";
/// Written into a run dir when its seed was run twice to check determinism.
pub const DETERMINISM_FILE: &str = "determinism.json";

/// campaign.json: what every run of the campaign shares. Shards of one campaign write the same
/// file, so copying their directories into one merges them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CampaignFile {
    pub name: String,
    pub test_name: String,
    /// The run options every seed shares (the reproduce command without seed and output).
    pub options: String,
    /// The fault schedule every seed replays, when the campaign has one.
    #[serde(default)]
    pub schedule: Option<Value>,
}

impl CampaignFile {
    pub fn new(name: &str, run: &RunOptions) -> CampaignFile {
        CampaignFile {
            name: name.to_string(),
            test_name: run.test_name(),
            options: shared_options_text(run),
            schedule: run
                .schedule
                .as_ref()
                .map(|schedule| serde_json::to_value(schedule).expect("schedules serialize")),
        }
    }
}

/// The options of `run` that every seed of a campaign shares, as a command line.
pub fn shared_options_text(run: &RunOptions) -> String {
    let mut template = run.clone();
    template.schedule_path = None;
    options_without_seed(&template)
}

/// What every run of the campaign will run, as the banner shows it: the shared options and,
/// when a schedule is scripted, `--schedule FILE` with the faults it uses as `--nemesis`.
pub fn banner_options_text(run: &RunOptions) -> String {
    options_without_seed(run)
}

fn options_without_seed(run: &RunOptions) -> String {
    let mut template = run.clone();
    template.seed = 0;
    template.out_dir = PathBuf::from(".");
    template.no_report = false;
    let command = template.reproduce_command();
    let without_seed = command.replacen("--seed 0 ", "", 1);
    without_seed
        .strip_suffix(" --out .")
        .unwrap_or(&without_seed)
        .to_string()
}

/// The default campaign name: the test name and a short hash of the shared options, so that
/// rerunning the same command (or another shard of it) lands in the same directory.
pub fn default_campaign_name(run: &RunOptions) -> String {
    let file = CampaignFile::new("", run);
    let mut hasher = Sha256::new();
    hasher.update(file.options.as_bytes());
    if let Some(schedule) = &file.schedule {
        hasher.update(schedule.to_string().as_bytes());
    }
    let digest = hasher.finalize();
    let short: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
    format!("campaign-{}-{short}", file.test_name)
}

/// Creates the campaign dir and its campaign.json, or checks that an existing one describes
/// the same campaign (resuming with other options would mix incomparable runs).
pub fn open_campaign_dir(dir: &Path, file: &CampaignFile) -> Result<(), CampaignError> {
    let io = |error: std::io::Error| CampaignError::Io(format!("{}: {error}", dir.display()));
    std::fs::create_dir_all(dir).map_err(io)?;
    let path = dir.join(CAMPAIGN_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let existing: CampaignFile = serde_json::from_str(&text).map_err(|error| {
                CampaignError::BadInput(format!("{}: not a campaign file: {error}", path.display()))
            })?;
            if existing.options != file.options
                || existing.schedule != file.schedule
                || existing.test_name != file.test_name
            {
                return Err(CampaignError::BadInput(format!(
                    "{} holds a campaign with other options ({}); use another --name or --out",
                    dir.display(),
                    existing.options
                )));
            }
            Ok(())
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let mut text = serde_json::to_string_pretty(file).expect("campaign file serializes");
            text.push('\n');
            write_atomic(&path, text.as_bytes()).map_err(io)
        }
        Err(error) => Err(io(error)),
    }
}

/// The result of a determinism check: the seed run a second time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeterminismCheck {
    pub first_sha256: String,
    pub second_sha256: String,
    pub same: bool,
}

/// One finished run of a campaign, as read back from its run dir.
#[derive(Clone, Debug)]
pub struct RunRecord {
    pub seed: u64,
    pub verdict: Verdict,
    pub causes: Vec<String>,
    /// None for valid runs.
    pub signature: Option<Signature>,
    pub run_dir: PathBuf,
    pub history_sha256: String,
    pub ops_count: u64,
    pub wall_ms: u64,
    pub determinism: Option<DeterminismCheck>,
    /// What the run's faults exercised (from results.json's fault_effects and swarm).
    pub exercised: Exercised,
}

/// Fault kinds and timing patterns one run (or a campaign, summed) exercised.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Exercised {
    /// Fault kind -> (runs using it, windows, windows that bit).
    pub kinds: BTreeMap<String, (u64, u64, u64)>,
    /// Swarm timing pattern (trigger of fired faults, and profile switches such as
    /// quick-restarts or crash-cycles) -> runs using it.
    pub patterns: BTreeMap<String, u64>,
}

impl Exercised {
    pub fn from_results(results: &Value) -> Exercised {
        let mut exercised = Exercised::default();
        if let Some(by_kind) = results
            .pointer("/fault_effects/by_kind")
            .and_then(Value::as_object)
        {
            for (kind, effect) in by_kind {
                let field = |name| effect.get(name).and_then(Value::as_u64).unwrap_or(0);
                exercised
                    .kinds
                    .insert(kind.clone(), (1, field("windows"), field("windows_bit")));
            }
        }
        let mut patterns = std::collections::BTreeSet::new();
        for fired in results
            .pointer("/swarm/fired")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(trigger) = fired.get("trigger").and_then(Value::as_str) {
                patterns.insert(format!("fired {trigger}"));
            }
        }
        for switch in [
            "quick_restarts",
            "crash_cycles",
            "leader_chains",
            "restless_membership",
        ] {
            if results.pointer(&format!("/swarm/profile/{switch}")) == Some(&Value::Bool(true)) {
                patterns.insert(switch.replace('_', "-"));
            }
        }
        if results
            .pointer("/swarm/profile/client/op_timeout_ms")
            .is_some()
        {
            patterns.insert("short client timeouts".to_string());
        }
        if results.pointer("/swarm/profile/client/bursts").is_some() {
            patterns.insert("client bursts".to_string());
        }
        if results.pointer("/deposed_leader_reads/reads").is_some() {
            patterns.insert("reads through deposed leaders".to_string());
        }
        if results.pointer("/swarm/profile/client/bound_clients") == Some(&Value::Bool(true)) {
            patterns.insert("bound clients".to_string());
        }
        if results
            .pointer("/swarm/profile/client/attempt_timeout_ms")
            .is_some()
        {
            patterns.insert("short client attempts".to_string());
        }
        exercised.patterns = patterns.into_iter().map(|pattern| (pattern, 1)).collect();
        exercised
    }

    pub fn add(&mut self, other: &Exercised) {
        for (kind, (runs, windows, bit)) in &other.kinds {
            let entry = self.kinds.entry(kind.clone()).or_default();
            entry.0 += runs;
            entry.1 += windows;
            entry.2 += bit;
        }
        for (pattern, runs) in &other.patterns {
            *self.patterns.entry(pattern.clone()).or_default() += runs;
        }
    }

    /// Fault kinds used but never biting (no window changed what the clients saw).
    pub fn never_bit(&self) -> Vec<String> {
        self.kinds
            .iter()
            .filter(|(_, (_, windows, bit))| *windows > 0 && *bit == 0)
            .map(|(kind, _)| kind.clone())
            .collect()
    }
}

/// Reads a finished run dir; None when it is not finished (no results.json).
pub fn read_run_record(run_dir: &Path) -> Result<Option<RunRecord>, String> {
    let path = run_dir.join("results.json");
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(format!("{}: cannot read: {error}", path.display())),
    };
    let results: Value = serde_json::from_str(&text)
        .map_err(|error| format!("{}: not JSON: {error}", path.display()))?;
    let seed = results
        .get("seed")
        .and_then(Value::as_u64)
        .ok_or_else(|| format!("{}: no seed", path.display()))?;
    let verdict: Verdict = results
        .get("verdict")
        .cloned()
        .and_then(|v| serde_json::from_value(v).ok())
        .ok_or_else(|| format!("{}: no verdict", path.display()))?;
    let causes = super::signature::causes_of(&results);
    let signature = if verdict == Verdict::Valid {
        None
    } else {
        Some(signature_of_run_dir(run_dir)?)
    };
    let determinism = std::fs::read_to_string(run_dir.join(DETERMINISM_FILE))
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok());
    let exercised = Exercised::from_results(&results);
    Ok(Some(RunRecord {
        exercised,
        seed,
        verdict,
        causes,
        signature,
        run_dir: run_dir.to_path_buf(),
        history_sha256: results
            .pointer("/history/sha256")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        ops_count: results
            .pointer("/history/ops_count")
            .and_then(Value::as_u64)
            .unwrap_or(0),
        wall_ms: results
            .pointer("/timings/wall_ms")
            .and_then(Value::as_u64)
            .unwrap_or(0),
        determinism,
    }))
}

/// The run id a campaign gives the run of `seed` (no wall-clock date: ids must be stable so
/// that a resumed campaign finds them).
pub fn run_id(seed: u64) -> String {
    format!("sim-seed{seed}")
}

/// Finished runs under `<campaign_dir>/<test_name>/`, by seed. When one seed has several
/// finished dirs (merged copies), the first by name wins and the others are reported.
pub fn finished_runs(
    campaign_dir: &Path,
    test_name: &str,
) -> Result<(BTreeMap<u64, RunRecord>, Vec<PathBuf>), CampaignError> {
    let test_dir = campaign_dir.join(test_name);
    let mut records = BTreeMap::new();
    let mut duplicates = Vec::new();
    for dir in run_dir_candidates(&test_dir)? {
        if let Some(record) = read_run_record(&dir).map_err(CampaignError::Io)? {
            match records.entry(record.seed) {
                std::collections::btree_map::Entry::Occupied(_) => duplicates.push(dir),
                std::collections::btree_map::Entry::Vacant(slot) => {
                    slot.insert(record);
                }
            }
        }
    }
    Ok((records, duplicates))
}

/// Removes run dirs cut short (no results.json) of the campaign's own naming.
pub fn remove_partial_runs(campaign_dir: &Path, test_name: &str) -> Result<usize, CampaignError> {
    let mut removed = 0;
    for dir in run_dir_candidates(&campaign_dir.join(test_name))? {
        let name = dir.file_name().map(|n| n.to_string_lossy().to_string());
        let ours = name.as_deref().is_some_and(|n| n.starts_with("sim-seed"));
        if ours && !dir.join("results.json").exists() {
            std::fs::remove_dir_all(&dir)
                .map_err(|error| CampaignError::Io(format!("{}: {error}", dir.display())))?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Real subdirectories (not the `latest` symlink, not hidden), sorted by name.
fn run_dir_candidates(test_dir: &Path) -> Result<Vec<PathBuf>, CampaignError> {
    let entries = match std::fs::read_dir(test_dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => {
            return Err(CampaignError::Io(format!(
                "{}: {error}",
                test_dir.display()
            )))
        }
    };
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|entry| entry.file_type().map(|t| t.is_dir()).unwrap_or(false))
        .filter(|entry| !entry.file_name().to_string_lossy().starts_with('.'))
        .map(|entry| entry.path())
        .collect();
    dirs.sort();
    Ok(dirs)
}

/// Records a determinism check in the run dir.
pub fn write_determinism(run_dir: &Path, check: &DeterminismCheck) -> std::io::Result<()> {
    let mut text = serde_json::to_string_pretty(check).expect("serializes");
    text.push('\n');
    write_atomic(&run_dir.join(DETERMINISM_FILE), text.as_bytes())
}

/// Removes a finished run's bulky files (history, CSV, node logs), keeping what resuming,
/// counting and replaying need: results.json (last, untouched) and schedule.json.
pub fn drop_bulk(run_dir: &Path) -> std::io::Result<()> {
    for file in ["history.jsonl", "history.csv"] {
        match std::fs::remove_file(run_dir.join(file)) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => return Err(error),
            _ => {}
        }
    }
    match std::fs::remove_dir_all(run_dir.join("nodes")) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(error),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::Schedule;

    #[test]
    fn the_banner_names_the_schedule_and_its_faults() {
        let mut run = RunOptions::new(9);
        run.schedule = Some(
            Schedule::from_json(
                r#"[{"at_ms":1000,"action":"start-pause","targets":["n1"],"params":{}}]"#,
                "s.json",
            )
            .expect("valid schedule"),
        );
        run.schedule_path = Some(PathBuf::from("/tmp/s.json"));
        let banner = banner_options_text(&run);
        assert!(banner.contains("--schedule /tmp/s.json"), "{banner}");
        assert!(banner.contains("--nemesis pause "), "{banner}");
        assert!(!banner.contains("--seed"), "{banner}");
        // The campaign's identity does not depend on where the schedule file lies.
        assert!(!shared_options_text(&run).contains("--schedule"));
    }
}

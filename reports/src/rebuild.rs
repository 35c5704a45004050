//! `minos report DIR`: rebuild the reports of every run under DIR (a run dir, a test dir, a
//! campaign or the whole store), re-checking stored histories when the checker is available,
//! then the campaign pages and the store index that cover them.

use std::path::{Path, PathBuf};

use crate::discover::{campaign_dirs, is_run_dir, page_kind, run_dirs};
use crate::recheck::{recheck_with_history, Recheck};
use crate::results::Verdict;
use crate::run::{write_run_report_from, RunSummary};
use crate::{CampaignSummary, ReportError};

/// Options of a rebuild.
#[derive(Clone, Debug)]
pub struct RebuildOptions {
    /// Re-run the checker on stored histories (when this build has one).
    pub recheck: bool,
}

impl Default for RebuildOptions {
    fn default() -> Self {
        RebuildOptions { recheck: true }
    }
}

/// One run's outcome.
#[derive(Debug)]
pub struct RunRebuild {
    pub dir: PathBuf,
    pub recheck: Option<Recheck>,
    pub result: Result<RunSummary, ReportError>,
}

/// Everything a rebuild did.
#[derive(Debug, Default)]
pub struct Rebuild {
    pub runs: Vec<RunRebuild>,
    /// Valid runs of a `--keep failures` campaign, whose history was dropped: left as they
    /// are (a report of them would be empty).
    pub pruned: Vec<PathBuf>,
    /// Runs whose history.jsonl no longer has the SHA-256 the run recorded: (dir, recorded).
    pub changed_histories: Vec<(PathBuf, String)>,
    pub campaigns: Vec<(PathBuf, Result<CampaignSummary, ReportError>)>,
    pub store_index: Option<(PathBuf, Result<(), ReportError>)>,
}

impl Rebuild {
    /// Campaign rule of DESIGN.md §2 over the runs rebuilt: invalid if any, else unknown if any.
    pub fn verdict(&self) -> Verdict {
        let verdicts: Vec<Verdict> = self
            .runs
            .iter()
            .filter_map(|r| r.result.as_ref().ok().map(|s| s.verdict))
            .collect();
        if verdicts.contains(&Verdict::Invalid) {
            Verdict::Invalid
        } else if verdicts.contains(&Verdict::Unknown) || verdicts.is_empty() {
            Verdict::Unknown
        } else {
            Verdict::Valid
        }
    }

    pub fn errors_count(&self) -> usize {
        self.runs.iter().filter(|r| r.result.is_err()).count()
            + self.campaigns.iter().filter(|c| c.1.is_err()).count()
            + self.store_index.iter().filter(|s| s.1.is_err()).count()
    }
}

/// Rebuilds every report under `dir`. Fails only when `dir` holds no run at all; a failure on
/// one run is recorded and the others go on.
pub fn rebuild(dir: &Path, options: &RebuildOptions) -> Result<Rebuild, ReportError> {
    if !dir.is_dir() {
        let problem = if dir.exists() {
            "not a directory"
        } else {
            "no such directory"
        };
        return Err(ReportError::io(
            dir,
            std::io::Error::new(std::io::ErrorKind::NotFound, problem),
        ));
    }
    let runs = run_dirs(dir);
    if runs.is_empty() {
        return Err(ReportError::NothingFound(dir.to_path_buf()));
    }
    let mut out = Rebuild::default();
    for run in runs {
        if is_pruned(&run) {
            out.pruned.push(run);
            continue;
        }
        let changed = changed_history(&run);
        let (recheck_outcome, mut notes, checked_text) = if options.recheck {
            match recheck_with_history(&run) {
                Ok((r, text)) => {
                    let note = r.note();
                    (Some(r), vec![note], text)
                }
                Err(e) => (
                    None,
                    vec![format!(
                        "Re-check failed ({e}); the stored verdict is shown."
                    )],
                    None,
                ),
            }
        } else {
            (
                None,
                vec!["Verdict as stored by the run (re-check not requested).".to_string()],
                None,
            )
        };
        if let Some(recorded) = &changed {
            notes.push(format!(
                "history.jsonl was changed after the run: its SHA-256 is not the recorded {recorded}."
            ));
            out.changed_histories.push((run.clone(), recorded.clone()));
        }
        // The pages and exports show the very history that was checked.
        let result = write_run_report_from(&run, &notes, checked_text);
        out.runs.push(RunRebuild {
            dir: run,
            recheck: recheck_outcome,
            result,
        });
    }
    if !is_run_dir(dir) {
        for campaign in campaign_dirs(dir) {
            let result = crate::write_campaign_report(&campaign);
            out.campaigns.push((campaign, result));
        }
        // The store index covers runs in subdirectories of subdirectories; a test dir (runs
        // directly below) updates the store index above it when there is one.
        let store = if is_store(dir) {
            Some(dir.to_path_buf())
        } else {
            dir.parent()
                .filter(|p| page_kind(&p.join("index.html")).as_deref() == Some("store"))
                .map(Path::to_path_buf)
        };
        if let Some(store) = store {
            // Quorum tables (`quorum-<system>/quorum.json`) get their pages back too; one
            // that cannot be rebuilt shows on the index as "no page yet".
            for entry in std::fs::read_dir(&store).into_iter().flatten().flatten() {
                let path = entry.path();
                let is_quorum = path
                    .file_name()
                    .and_then(|name| name.to_str())
                    .is_some_and(|name| name.starts_with("quorum-"));
                if is_quorum && path.join("quorum.json").is_file() {
                    let _ = crate::quorum_page::write_quorum_page(&path, Some("../index.html"));
                }
            }
            let result = crate::write_store_index(&store);
            out.store_index = Some((store, result));
        }
    }
    Ok(out)
}

/// A store holds test or campaign dirs, which hold runs: runs two or more levels down.
fn is_store(dir: &Path) -> bool {
    if page_kind(&dir.join("index.html")).as_deref() == Some("store") {
        return true;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    let direct_runs = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
        .any(|e| is_run_dir(&e.path()));
    !direct_runs && !crate::discover::is_campaign_dir(dir)
}

/// A run dir that `--keep failures` thinned: a valid verdict in results.json, no history.
fn is_pruned(run: &Path) -> bool {
    if run.join("history.jsonl").exists() {
        return false;
    }
    std::fs::read_to_string(run.join("results.json"))
        .ok()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        .is_some_and(|results| results["verdict"] == "valid")
}

/// The SHA-256 results.json recorded for the history, when the history no longer has it.
fn changed_history(run: &Path) -> Option<String> {
    let text = std::fs::read_to_string(run.join("results.json")).ok()?;
    let results: serde_json::Value = serde_json::from_str(&text).ok()?;
    // A re-check records the hash of what it read; the run's own stays as `sha256_at_run`.
    let recorded = results["history"]["sha256_at_run"]
        .as_str()
        .or(results["history"]["sha256"].as_str())?
        .to_string();
    let bytes = std::fs::read(run.join("history.jsonl")).ok()?;
    (sha256_hex(&bytes) != recorded).then_some(recorded)
}

/// Lower-case hex SHA-256, as results.json records a history's.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

//! `minos report DIR`: rebuild the reports of every run under DIR (a run dir, a test dir, a
//! campaign or the whole store), re-checking stored histories when the checker is available,
//! then the campaign pages and the store index that cover them.

use std::path::{Path, PathBuf};

use crate::discover::{campaign_dirs, is_run_dir, page_kind, run_dirs};
use crate::recheck::{recheck, Recheck};
use crate::results::Verdict;
use crate::run::{write_run_report_with_notes, RunSummary};
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
        let (recheck_outcome, notes) = if options.recheck {
            match recheck(&run) {
                Ok(r) => {
                    let note = r.note();
                    (Some(r), vec![note])
                }
                Err(e) => (
                    None,
                    vec![format!(
                        "Re-check failed ({e}); the stored verdict is shown."
                    )],
                ),
            }
        } else {
            (
                None,
                vec!["Verdict as stored by the run (re-check not requested).".to_string()],
            )
        };
        let result = write_run_report_with_notes(&run, &notes);
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

//! Reports own what a person reads after a run: the self-contained HTML pages, the latency
//! and rate plots, the timeline, and the CSV and JUnit exports.
//!
//! Entry points: [`write_run_report`] (one run dir), [`write_campaign_report`] (every run under
//! a campaign dir), [`write_store_index`] (the store's front page), [`rebuild`] (what
//! `minos report DIR` does), [`check_view::write_check_view`] (`minos check --html`) and
//! [`quorum_page::write_quorum_page`] (the page of `minos quorum`). Everything read from a
//! run dir is untrusted and escaped; every file
//! is written atomically.

pub mod atomic;
pub mod campaign;
pub mod check_view;
pub mod counterexample;
pub mod discover;
pub mod effects;
pub mod escape;
pub mod exports;
pub mod faults;
#[doc(hidden)]
pub mod fixtures;
pub mod histogram;
pub mod history;
pub mod ordered_json;
pub mod plots;
pub mod quorum_page;
pub mod rebuild;
pub mod recheck;
pub mod results;
pub mod run;
pub mod run_page;
pub mod stats;
pub mod store_index;
pub mod timeline;
pub mod why;

use std::path::{Path, PathBuf};

/// Why a report could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}: not a run directory (no results.json or history.jsonl)")]
    NotARunDir(PathBuf),
    #[error("{0}: no run directory found under it")]
    NothingFound(PathBuf),
    #[error("plot: {0}")]
    Plot(String),
}

impl ReportError {
    pub fn io(path: &Path, source: std::io::Error) -> ReportError {
        ReportError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

pub use run::{write_run_exports, RunSummary, REPORT_FILES};

/// Writes every report file of one run dir (DESIGN.md §5): index.html, timeline.html, the
/// three plots as PNG and SVG, latency.csv, junit.xml, and history.csv when it is missing.
pub fn write_run_report(run_dir: &Path) -> Result<(), ReportError> {
    run::write_run_report_with_notes(run_dir, &[]).map(|_| ())
}

pub use campaign::CampaignSummary;

/// Writes `<campaign_dir>/index.html`, aggregating every run dir found under it.
pub fn write_campaign_report(campaign_dir: &Path) -> Result<CampaignSummary, ReportError> {
    campaign::write_campaign_report(campaign_dir)
}

/// Writes `<store_dir>/index.html`: campaigns and runs, newest first.
pub fn write_store_index(store_dir: &Path) -> Result<(), ReportError> {
    store_index::write_store_index(store_dir)
}

pub use rebuild::{rebuild, Rebuild, RebuildOptions};

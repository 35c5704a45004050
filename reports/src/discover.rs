//! Finding run and campaign directories under a directory: a run dir holds results.json or
//! history.jsonl; a campaign dir holds campaign.json or a campaign page written by this crate.
//! Symlinks (the `latest` links) are not followed, so no run is found twice.

use std::fs;
use std::path::{Path, PathBuf};

/// Deepest level searched below the starting directory (store/<campaign>/<test>/<run> is 3).
const DEPTH_MAX: usize = 6;

pub fn is_run_dir(dir: &Path) -> bool {
    dir.join("results.json").is_file() || dir.join("history.jsonl").is_file()
}

pub fn is_campaign_dir(dir: &Path) -> bool {
    dir.join("campaign.json").is_file()
        || page_kind(&dir.join("index.html")).as_deref() == Some("campaign")
}

/// The `minos-page` meta value of a page written by this crate.
pub fn page_kind(page: &Path) -> Option<String> {
    let text = fs::read_to_string(page).ok()?;
    let head = &text[..text.len().min(2000)];
    let start = head.find("<meta name=\"minos-page\" content=\"")? + 33;
    let end = head[start..].find('"')? + start;
    Some(head[start..end].to_string())
}

/// Run dirs under `dir` (including `dir` itself), sorted by path. A run dir's subdirectories
/// (nodes/) are not searched.
pub fn run_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    walk(dir, 0, &mut |d| {
        if is_run_dir(d) {
            found.push(d.to_path_buf());
            false
        } else {
            true
        }
    });
    found.sort();
    found
}

/// Campaign dirs under `dir` (including `dir` itself), sorted by path.
pub fn campaign_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    walk(dir, 0, &mut |d| {
        if is_run_dir(d) {
            return false;
        }
        if is_campaign_dir(d) {
            found.push(d.to_path_buf());
        }
        true
    });
    found.sort();
    found
}

/// Depth-first walk; `visit` returns whether to descend.
fn walk(dir: &Path, depth: usize, visit: &mut dyn FnMut(&Path) -> bool) {
    if !visit(dir) || depth >= DEPTH_MAX {
        return;
    }
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let mut children: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false)) // file_type does not follow symlinks
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| e.path())
        .collect();
    children.sort();
    for child in children {
        walk(&child, depth + 1, visit);
    }
}

/// Modification time of a run's history.jsonl (never rewritten after the run; results.json is,
/// by a re-check), else results.json, for "newest first".
pub fn run_mtime(dir: &Path) -> std::time::SystemTime {
    ["history.jsonl", "results.json", "index.html"]
        .iter()
        .filter_map(|f| fs::metadata(dir.join(f)).ok()?.modified().ok())
        .next()
        .unwrap_or(std::time::UNIX_EPOCH)
}

/// `target` relative to `base` when it is below it, for links between pages.
pub fn relative_path(base: &Path, target: &Path) -> String {
    match target.strip_prefix(base) {
        Ok(rel) if rel.as_os_str().is_empty() => ".".to_string(),
        Ok(rel) => rel.to_string_lossy().replace('\\', "/"),
        Err(_) => target.to_string_lossy().into_owned(),
    }
}

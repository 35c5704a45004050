//! The run directory (DESIGN.md §5): `<out>/<test-name>/<run-id>/` with `latest` links at
//! `<out>/latest` and `<out>/<test-name>/latest`; every file written atomically.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Writes `bytes` to `path` atomically: a temporary file in the same directory, synced, then
/// renamed over the target.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let directory = path.parent().unwrap_or_else(|| Path::new("."));
    let file_name = path.file_name().ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "path has no file name")
    })?;
    let temporary = directory.join(format!(
        ".{}.tmp-{}",
        file_name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut file = std::fs::File::create(&temporary)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temporary, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    result
}

/// Creates a fresh run directory `<out>/<test_name>/<run_id>` (suffixing `-2`, `-3`, ... if a
/// run with the same id exists) and returns it with the final run id.
pub fn create_run_dir(
    out_dir: &Path,
    test_name: &str,
    run_id: &str,
) -> std::io::Result<(PathBuf, String)> {
    let test_dir = out_dir.join(test_name);
    std::fs::create_dir_all(&test_dir)?;
    for attempt in 1..10_000u32 {
        let id = if attempt == 1 {
            run_id.to_string()
        } else {
            format!("{run_id}-{attempt}")
        };
        let candidate = test_dir.join(&id);
        match std::fs::create_dir(&candidate) {
            Ok(()) => return Ok((candidate, id)),
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(error) => return Err(error),
        }
    }
    Err(std::io::Error::other(format!(
        "too many runs named {run_id} in {}",
        test_dir.display()
    )))
}

/// Points `link` at `target` (relative), replacing an older link atomically.
fn replace_symlink(target: &Path, link: &Path) -> std::io::Result<()> {
    let directory = link.parent().unwrap_or_else(|| Path::new("."));
    // Unique per call: campaigns update links from many threads of one process at once.
    static LINK_COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let call = LINK_COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let temporary = directory.join(format!(".latest.tmp-{}-{call}", std::process::id()));
    let _ = std::fs::remove_file(&temporary);
    #[cfg(unix)]
    std::os::unix::fs::symlink(target, &temporary)?;
    #[cfg(not(unix))]
    return Ok(());
    std::fs::rename(&temporary, link)
}

/// Updates `<out>/<test>/latest -> <run_id>` and `<out>/latest -> <test>/<run_id>`.
pub fn update_latest_links(out_dir: &Path, test_name: &str, run_id: &str) -> std::io::Result<()> {
    replace_symlink(Path::new(run_id), &out_dir.join(test_name).join("latest"))?;
    replace_symlink(&Path::new(test_name).join(run_id), &out_dir.join("latest"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_dirs_are_unique_and_latest_links_follow() {
        let out = std::env::temp_dir().join(format!("minos-output-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&out);
        let (first, first_id) = create_run_dir(&out, "counter", "sim-seed1").unwrap();
        let (second, second_id) = create_run_dir(&out, "counter", "sim-seed1").unwrap();
        assert_ne!(first, second);
        assert_eq!(second_id, "sim-seed1-2");
        write_atomic(&second.join("a.txt"), b"hello").unwrap();
        update_latest_links(&out, "counter", &first_id).unwrap();
        update_latest_links(&out, "counter", &second_id).unwrap();
        assert_eq!(
            std::fs::read(out.join("latest").join("a.txt")).unwrap(),
            b"hello"
        );
        assert_eq!(
            std::fs::read(out.join("counter/latest/a.txt")).unwrap(),
            b"hello"
        );
        std::fs::remove_dir_all(&out).unwrap();
    }
}

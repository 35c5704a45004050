//! Cleanup guaranteed on every exit path. Each run registers what it creates (processes,
//! namespaces, its bridge, its nft table) in a process-wide registry as soon as it exists;
//! `Drop` of the run's [`Guard`] (normal end, error, panic) tears it down, and Ctrl-C/SIGTERM
//! set a flag the driver polls, so that it stops and drops the guard too. Names carry the
//! owner's pid: a later run sweeps what a killed `minos` (SIGKILL leaves no chance) left.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, Once};

use super::sys::{run_tool, signal};

/// Everything one run created that must not outlive it.
#[derive(Debug, Default)]
struct Resources {
    pids: BTreeSet<u32>,
    namespaces: Vec<String>,
    bridge: Option<String>,
    nft_table: Option<String>,
}

static REGISTRY: Mutex<BTreeMap<String, Resources>> = Mutex::new(BTreeMap::new());
static RUN_COUNTER: AtomicU32 = AtomicU32::new(0);
static INTERRUPT_HANDLER: Once = Once::new();
static INTERRUPT_FLAG: std::sync::OnceLock<Arc<AtomicBool>> = std::sync::OnceLock::new();

/// Prefix of every namespace, link and nft table a real run creates.
pub const PREFIX: &str = "mn";

/// True once Ctrl-C or SIGTERM arrived (the handler is installed by the first real run).
pub fn interrupted() -> bool {
    INTERRUPT_FLAG
        .get()
        .is_some_and(|flag| flag.load(Ordering::SeqCst))
}

fn install_interrupt_handler() {
    INTERRUPT_HANDLER.call_once(|| {
        let flag = INTERRUPT_FLAG.get_or_init(|| Arc::new(AtomicBool::new(false)));
        for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            if let Err(error) = signal_hook::flag::register(sig, Arc::clone(flag)) {
                eprintln!("minos: cannot catch signal {sig} ({error}); Ctrl-C may leave a cluster behind until the next real run sweeps it");
            }
        }
    });
}

/// The owner of one run's resources; dropping it removes them all.
pub struct Guard {
    tag: String,
}

impl Guard {
    /// A fresh run tag (short: it names network links, at most 15 bytes) and its guard.
    pub fn new() -> Guard {
        install_interrupt_handler();
        sweep_orphans();
        let counter = RUN_COUNTER.fetch_add(1, Ordering::SeqCst);
        let tag = format!("{:x}x{:x}", std::process::id(), counter);
        REGISTRY
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .insert(tag.clone(), Resources::default());
        Guard { tag }
    }

    pub fn tag(&self) -> &str {
        &self.tag
    }

    fn with<R>(&self, change: impl FnOnce(&mut Resources) -> R) -> R {
        let mut registry = REGISTRY.lock().unwrap_or_else(|poison| poison.into_inner());
        change(registry.entry(self.tag.clone()).or_default())
    }

    pub fn add_pid(&self, pid: u32) {
        self.with(|resources| resources.pids.insert(pid));
    }

    pub fn remove_pid(&self, pid: u32) {
        self.with(|resources| resources.pids.remove(&pid));
    }

    pub fn add_namespace(&self, name: &str) {
        self.with(|resources| resources.namespaces.push(name.to_string()));
    }

    pub fn set_bridge(&self, name: &str) {
        self.with(|resources| resources.bridge = Some(name.to_string()));
    }

    pub fn set_nft_table(&self, name: &str) {
        self.with(|resources| resources.nft_table = Some(name.to_string()));
    }

    /// Tears everything down now (also done by `Drop`); returns what could not be removed.
    pub fn cleanup(&self) -> Vec<String> {
        let resources = REGISTRY
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .remove(&self.tag);
        resources.map(teardown).unwrap_or_default()
    }
}

impl Default for Guard {
    fn default() -> Self {
        Guard::new()
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        for problem in self.cleanup() {
            eprintln!("minos: cleanup: {problem}");
        }
    }
}

fn teardown(resources: Resources) -> Vec<String> {
    let mut problems = Vec::new();
    for pid in &resources.pids {
        // A paused process must be resumed to die promptly and release its files.
        let _ = signal(*pid, libc::SIGKILL);
        let _ = signal(*pid, libc::SIGCONT);
    }
    for pid in &resources.pids {
        wait_gone(*pid);
    }
    if let Some(table) = &resources.nft_table {
        if let Err(error) = run_tool("nft", &["delete", "table", "bridge", table]) {
            if !error.contains("No such file") {
                problems.push(error);
            }
        }
    }
    for namespace in &resources.namespaces {
        if let Err(error) = run_tool("ip", &["netns", "delete", namespace]) {
            problems.push(error);
        }
    }
    if let Some(bridge) = &resources.bridge {
        if let Err(error) = run_tool("ip", &["link", "delete", bridge]) {
            problems.push(error);
        }
    }
    problems
}

/// Reaps (when it is our child) or waits for a killed process, for at most 2 s.
fn wait_gone(pid: u32) {
    for _ in 0..200 {
        let mut status = 0;
        // SAFETY: waitpid with WNOHANG on a plain pid; a pid that is not our child gives ECHILD.
        let reaped = unsafe { libc::waitpid(pid as i32, &mut status, libc::WNOHANG) };
        if reaped == pid as i32 || !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            return;
        }
        if reaped < 0 {
            // Not our child: it is gone once /proc forgets it (checked above).
            std::thread::sleep(std::time::Duration::from_millis(10));
            continue;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// The owner pid of a name made by [`Guard::new`] ("mn<pidhex>x<n>..."), if it is one.
fn owner_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(PREFIX)?;
    let rest = rest.strip_prefix(['b', 'v', 't', '-', '_']).unwrap_or(rest);
    let pid_hex = rest.split('x').next()?;
    u32::from_str_radix(pid_hex, 16).ok()
}

fn owner_dead(name: &str) -> bool {
    owner_pid(name).is_some_and(|pid| {
        pid != std::process::id() && !std::path::Path::new(&format!("/proc/{pid}")).exists()
    })
}

/// Removes namespaces, bridges and nft tables left by a `minos` that died without cleaning up
/// (their owner pid no longer exists). Best effort: a failure here never stops a run.
fn sweep_orphans() {
    if let Ok(text) = run_tool("ip", &["netns", "list"]) {
        for name in text
            .lines()
            .filter_map(|line| line.split_whitespace().next())
        {
            if owner_dead(name) {
                let _ = run_tool("ip", &["netns", "delete", name]);
            }
        }
    }
    if let Ok(text) = run_tool("ip", &["-o", "link", "show", "type", "bridge"]) {
        for line in text.lines() {
            let Some(name) = line.split(": ").nth(1) else {
                continue;
            };
            let name = name.split('@').next().unwrap_or(name);
            if owner_dead(name) {
                let _ = run_tool("ip", &["link", "delete", name]);
            }
        }
    }
    if let Ok(text) = run_tool("nft", &["list", "tables", "bridge"]) {
        for line in text.lines() {
            if let Some(name) = line.trim().strip_prefix("table bridge ") {
                if owner_dead(name) {
                    let _ = run_tool("nft", &["delete", "table", "bridge", name]);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_pids_are_read_back_from_every_kind_of_name() {
        assert_eq!(owner_pid("mnb1f2x0"), Some(0x1f2));
        assert_eq!(owner_pid("mn-1f2x3-n1"), Some(0x1f2));
        assert_eq!(owner_pid("mnt1f2x3"), Some(0x1f2));
        assert_eq!(owner_pid("eth0"), None);
    }
}

//! The server processes of one run: each started inside its node's namespace with its data
//! dir inside the run dir and its output appended to `nodes/<n>.log`; killed (SIGKILL),
//! restarted from the same data dir, paused (SIGSTOP) and resumed (SIGCONT). Every pid is
//! registered with the run's guard, which kills what is left on any exit.

use std::fs::OpenOptions;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::guard::Guard;
use super::netns::Network;
use super::sys::signal;
use crate::schedule::node_name;

pub struct Cluster<'g> {
    guard: &'g Guard,
    pub network: Network,
    binary: String,
    /// Per node: the server's arguments (the same on every restart).
    args: Vec<Vec<String>>,
    children: Vec<Option<Child>>,
    paused: Vec<bool>,
    /// Per node: how often it was started.
    pub starts: Vec<u32>,
    logs_dir: PathBuf,
}

impl<'g> Cluster<'g> {
    pub fn new(
        guard: &'g Guard,
        network: Network,
        binary: &str,
        args: Vec<Vec<String>>,
        logs_dir: &Path,
    ) -> Cluster<'g> {
        let nodes = args.len();
        Cluster {
            guard,
            network,
            binary: binary.to_string(),
            args,
            children: (0..nodes).map(|_| None).collect(),
            paused: vec![false; nodes],
            starts: vec![0; nodes],
            logs_dir: logs_dir.to_path_buf(),
        }
    }

    pub fn nodes(&self) -> usize {
        self.args.len()
    }

    pub fn is_running(&self, node: usize) -> bool {
        self.children[node].is_some()
    }

    pub fn is_paused(&self, node: usize) -> bool {
        self.paused[node]
    }

    /// Up and not paused: it can answer.
    pub fn is_live(&self, node: usize) -> bool {
        self.is_running(node) && !self.is_paused(node)
    }

    pub fn pid(&self, node: usize) -> Option<u32> {
        self.children[node].as_ref().map(Child::id)
    }

    /// Starts node `node` (no-op when it runs).
    pub fn start(&mut self, node: usize) -> Result<(), String> {
        if self.children[node].is_some() {
            return Ok(());
        }
        let name = node_name(node);
        let log_path = self.logs_dir.join(format!("{name}.log"));
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|error| format!("{}: {error}", log_path.display()))?;
        let log_err = log
            .try_clone()
            .map_err(|error| format!("{}: {error}", log_path.display()))?;
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", self.network.namespace(node), &self.binary])
            .args(&self.args[node])
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err);
        // SAFETY: prctl(PR_SET_PDEATHSIG) is async-signal-safe. The server dies with us even
        // when `minos` itself is SIGKILLed (the one exit path no handler sees).
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = command
            .spawn()
            .map_err(|error| format!("starting {} on {name}: {error}", self.binary))?;
        self.guard.add_pid(child.id());
        self.children[node] = Some(child);
        self.paused[node] = false;
        self.starts[node] += 1;
        Ok(())
    }

    /// SIGKILLs node `node` and reaps it (no-op when it is down).
    pub fn kill(&mut self, node: usize) -> Result<(), String> {
        let Some(mut child) = self.children[node].take() else {
            return Ok(());
        };
        signal(child.id(), libc::SIGKILL)?;
        // A stopped process still dies on SIGKILL; SIGCONT only makes it prompt.
        let _ = signal(child.id(), libc::SIGCONT);
        child
            .wait()
            .map_err(|error| format!("reaping {}: {error}", node_name(node)))?;
        self.guard.remove_pid(child.id());
        self.paused[node] = false;
        Ok(())
    }

    pub fn pause(&mut self, node: usize) -> Result<(), String> {
        if let Some(pid) = self.pid(node) {
            signal(pid, libc::SIGSTOP)?;
            self.paused[node] = true;
        }
        Ok(())
    }

    pub fn resume(&mut self, node: usize) -> Result<(), String> {
        if let Some(pid) = self.pid(node) {
            signal(pid, libc::SIGCONT)?;
        }
        self.paused[node] = false;
        Ok(())
    }

    /// A node that exited on its own (crashed): reaped and reported.
    pub fn exited(&mut self) -> Vec<(usize, String)> {
        let mut exited = Vec::new();
        for node in 0..self.nodes() {
            let status = match self.children[node].as_mut().map(Child::try_wait) {
                Some(Ok(Some(status))) => status,
                _ => continue,
            };
            let child = self.children[node].take().expect("checked above");
            self.guard.remove_pid(child.id());
            exited.push((node, status.to_string()));
        }
        exited
    }

    /// Stops every node (end of the run).
    pub fn stop_all(&mut self) {
        for node in 0..self.nodes() {
            let _ = self.kill(node);
        }
    }
}

impl Drop for Cluster<'_> {
    fn drop(&mut self) {
        self.stop_all();
    }
}

//! Thin wrappers over the host tools a real cluster needs (`ip`, `nft`) and over process
//! signals, plus the preflight that refuses a run the host cannot carry (exit 254 with the
//! exact install command) before anything is started.

use std::io::Write;
use std::process::{Command, Stdio};

/// Runs `program args`, returning its stdout, or an error naming the command and its stderr.
pub fn run_tool(program: &str, args: &[&str]) -> Result<String, String> {
    let output = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|error| format!("{program} {}: {error}", args.join(" ")))?;
    if !output.status.success() {
        return Err(format!(
            "{program} {} failed ({}): {}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Feeds `script` to `nft -f -`: one atomic transaction.
pub fn nft_script(script: &str) -> Result<(), String> {
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|error| format!("nft -f -: {error}"))?;
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(script.as_bytes())
        .map_err(|error| format!("nft -f -: writing the ruleset: {error}"))?;
    let output = child
        .wait_with_output()
        .map_err(|error| format!("nft -f -: {error}"))?;
    if !output.status.success() {
        return Err(format!(
            "nft -f - failed: {}\n--- ruleset ---\n{script}",
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(())
}

/// Sends `signal` to `pid`; a process that is already gone is not an error.
pub fn signal(pid: u32, signal: i32) -> Result<(), String> {
    let pid = i32::try_from(pid).map_err(|_| format!("pid {pid} out of range"))?;
    // SAFETY: kill(2) takes plain integers and has no memory effects.
    let result = unsafe { libc::kill(pid, signal) };
    if result == 0 {
        return Ok(());
    }
    let error = std::io::Error::last_os_error();
    if error.raw_os_error() == Some(libc::ESRCH) {
        return Ok(());
    }
    Err(format!("kill({pid}, {signal}): {error}"))
}

fn on_path(program: &str) -> bool {
    if program.contains('/') {
        return std::path::Path::new(program).is_file();
    }
    let Some(path) = std::env::var_os("PATH") else {
        return false;
    };
    // Exactly the lookup the process spawns use, so that a found program also starts.
    std::env::split_paths(&path).any(|dir| dir.join(program).is_file())
}

/// Everything a real run needs from the host, checked before anything starts: root, `ip`,
/// `nft` and the system's own binary. The error is the whole message the user sees.
pub fn preflight(system_binary: &str, package: &str) -> Result<(), String> {
    // SAFETY: geteuid(2) cannot fail and touches no memory.
    if unsafe { libc::geteuid() } != 0 {
        return Err(format!(
            "real clusters need root (network namespaces, a bridge and nftables rules); run as root, e.g. `sudo minos run --system ...`, after `apt-get install -y {package} nftables iproute2`"
        ));
    }
    let mut missing = Vec::new();
    for (program, package) in [
        ("ip", "iproute2"),
        ("nft", "nftables"),
        (system_binary, package),
    ] {
        if !on_path(program) {
            missing.push((program, package));
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    let programs: Vec<&str> = missing.iter().map(|(program, _)| *program).collect();
    let packages: Vec<&str> = missing.iter().map(|(_, package)| *package).collect();
    Err(format!(
        "{} not found on PATH; install with: apt-get update && apt-get install -y {}",
        programs.join(", "),
        packages.join(" ")
    ))
}

/// First line of `program --version`, for results.json.
pub fn version_line(program: &str, args: &[&str]) -> String {
    match run_tool(program, args) {
        Ok(text) => text
            .lines()
            .find(|line| !line.trim().is_empty())
            .unwrap_or("")
            .trim()
            .to_string(),
        Err(error) => format!("unknown ({error})"),
    }
}

/// Resident and peak memory of a process in KiB, from /proc (None when it is gone).
pub fn memory_kib(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find(|line| line.starts_with(name))
            .and_then(|line| line.split_whitespace().nth(1))
            .and_then(|number| number.parse().ok())
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

//! `minos quorum`: the measured quorum table (servers 1..=N, how many can be killed with
//! writes still committing) on the simulated store or a real cluster; printed and written
//! as quorum.json and quorum.txt, with an HTML page (index.html) linked from the store index.

use std::path::PathBuf;

use clap::Args;
use minos_workloads::options::{parse_duration_ms, SystemKind};
use minos_workloads::quorum::{simulated_report, MAX_SERVERS};

use crate::exit;

#[derive(Args)]
pub struct QuorumArgs {
    /// raft (the simulated store, default), minos-node or etcd (real processes: root,
    /// nftables and the server binary needed).
    #[arg(long, default_value = "raft")]
    system: SystemKind,
    /// The largest cluster measured (tables go from 1 server up to this, at most 7).
    #[arg(long, default_value_t = MAX_SERVERS)]
    max_nodes: usize,
    /// How long a write after a kill may take before it counts as not committed.
    #[arg(long, default_value = "5s", value_parser = parse_duration_ms)]
    write_timeout: u64,
    /// Seed of the simulated measurement (and of real servers' election timers).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// quorum.json and quorum.txt go to <out>/quorum-<system>/.
    #[arg(long, default_value = "store")]
    out: PathBuf,
}

pub fn main(args: QuorumArgs) -> i32 {
    if !(1..=MAX_SERVERS).contains(&args.max_nodes) {
        eprintln!("minos quorum: --max-nodes must be 1 to {MAX_SERVERS}");
        return exit::BAD_INPUT;
    }
    if args.write_timeout == 0 {
        eprintln!("minos quorum: --write-timeout must be positive");
        return exit::BAD_INPUT;
    }
    let dir = args.out.join(format!("quorum-{}", args.system.name()));
    if let Err(error) = std::fs::create_dir_all(&dir) {
        eprintln!("minos quorum: {}: {error}", dir.display());
        return exit::INTERNAL;
    }
    let report = match args.system {
        SystemKind::Raft => simulated_report(args.max_nodes, args.seed, args.write_timeout),
        system => match minos_workloads::real::quorum::real_report(
            system,
            args.max_nodes,
            args.write_timeout,
            args.seed,
            &dir,
        ) {
            Ok(report) => report,
            Err(error) => {
                eprintln!("minos quorum: {error}");
                return match error {
                    minos_workloads::RunError::BadOptions(_) => exit::BAD_INPUT,
                    _ => exit::INTERNAL,
                };
            }
        },
    };
    let table = report.table();
    print!("{table}");
    let json = match serde_json::to_string_pretty(&report) {
        Ok(json) => json,
        Err(error) => {
            eprintln!("minos quorum: {error}");
            return exit::INTERNAL;
        }
    };
    for (name, text) in [("quorum.json", json), ("quorum.txt", table)] {
        if let Err(error) = std::fs::write(dir.join(name), text) {
            eprintln!("minos quorum: {}: {error}", dir.join(name).display());
            return exit::INTERNAL;
        }
    }
    // The page beside quorum.json, linked from the store's index (a quorum table is a result
    // like a run); a page that cannot be written is reported, the measurement still stands.
    match minos_reports::quorum_page::write_quorum_page(&dir, Some("../index.html"))
        .and_then(|()| minos_reports::write_store_index(&args.out))
    {
        Ok(()) => println!("page {}", dir.join("index.html").display()),
        Err(error) => eprintln!("minos quorum: report page: {error}"),
    }
    println!("report {}", dir.join("quorum.json").display());
    // A table that departs from majority quorums is a finding, as an invalid run is.
    if report.matches_majority() {
        exit::VALID
    } else {
        exit::INVALID
    }
}

//! `minos`: the command line of the Minos linearizability harness. A thin layer: each
//! subcommand parses its options here and calls into the member crates, which own the logic.
//! Exit codes follow DESIGN.md §2 (see [`exit`]).

mod cmd_campaign;
mod cmd_check;
mod cmd_client;
mod cmd_keygen;
mod cmd_node;
mod cmd_quorum;
mod cmd_report;
mod cmd_run;
mod cmd_selftest;
mod cmd_shrink;
mod exit;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "minos",
    version,
    about = "Linearizability test harness and fault-injection suite for a Raft counter store"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// One simulated test run: cluster + workload + nemesis under turmoil, checked and reported.
    Run(cmd_run::RunArgs),
    /// Check stored histories (ours, Jepsen/Knossos EDN, Porcupine logs) for linearizability.
    Check(cmd_check::CheckArgs),
    /// Many runs, one per seed, resumable and shardable, with an aggregate report.
    // `--seed` comes with the run options but a campaign takes `--seeds`: not in its help.
    #[command(mut_arg("seed", |arg| arg.hide(true)))]
    Campaign(cmd_campaign::CampaignArgs),
    /// Minimise a failing run to a small schedule that still fails.
    Shrink(cmd_shrink::ShrinkArgs),
    /// (Re)build reports from stored histories.
    Report(cmd_report::ReportArgs),
    /// Run every planted bug and the correct build; show what the harness catches.
    Selftest(cmd_selftest::SelftestArgs),
    /// Serve the counter store as a real process on real sockets and files.
    Node(cmd_node::NodeArgs),
    /// Talk to a real cluster of `minos node` processes.
    Client(cmd_client::ClientArgs),
    /// Create a cluster key file (mode 0600) for `minos node` and `minos client`.
    Keygen(cmd_keygen::KeygenArgs),
    /// Measure the quorum table: servers 1-7, how many can be killed with writes committing.
    Quorum(cmd_quorum::QuorumArgs),
}

/// `minos check ...` parsed with only the check subcommand built: building every
/// subcommand's options (run, campaign, ...) cost a checker of a small history a tenth of its
/// instructions and the page faults of their code. Same name, version and about as [`Cli`],
/// and the same `Check` variant, so its help, errors and usage lines are the same.
#[derive(Parser)]
#[command(
    name = "minos",
    version,
    about = "Linearizability test harness and fault-injection suite for a Raft counter store"
)]
struct CheckCli {
    #[command(subcommand)]
    command: CheckCommand,
}

#[derive(Subcommand)]
enum CheckCommand {
    /// Check stored histories (ours, Jepsen/Knossos EDN, Porcupine logs) for linearizability.
    Check(cmd_check::CheckArgs),
}

/// Parses the command line, exiting as DESIGN.md says on bad arguments or help.
fn parse<P: Parser>() -> P {
    match P::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            // clap exits 2 on bad arguments, which DESIGN.md reserves for "unknown".
            let code = if error.use_stderr() {
                exit::BAD_INPUT
            } else {
                exit::VALID
            };
            let _ = error.print();
            std::process::exit(code);
        }
    }
}

fn main() {
    if std::env::args_os()
        .nth(1)
        .is_some_and(|word| word == "check")
    {
        let CheckCommand::Check(args) = parse::<CheckCli>().command;
        std::process::exit(cmd_check::main(args));
    }
    let cli = parse::<Cli>();
    let code = match cli.command {
        Command::Run(args) => cmd_run::main(args),
        Command::Check(args) => cmd_check::main(args),
        Command::Campaign(args) => cmd_campaign::main(args),
        Command::Shrink(args) => cmd_shrink::main(args),
        Command::Report(args) => cmd_report::main(args),
        Command::Selftest(args) => cmd_selftest::main(args),
        Command::Node(args) => cmd_node::main(args),
        Command::Client(args) => cmd_client::main(args),
        Command::Keygen(args) => cmd_keygen::main(args),
        Command::Quorum(args) => cmd_quorum::main(args),
    };
    std::process::exit(code);
}

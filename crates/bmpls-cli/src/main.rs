//! The `bmpls` binary: parses arguments and calls into the library crates. Kept thin on purpose.
#![forbid(unsafe_code)]

mod bench;
mod sim;

use clap::{Parser, Subcommand};

/// bmpls: multi-level privacy-preserving location sharing for telecare, on a BFT ledger.
#[derive(Debug, Parser)]
#[command(name = "bmpls", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Measure the speed of bmpls components on this machine.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Run the deterministic consensus simulator: validators over a seeded virtual network with
    /// crashes, partitions and byzantine faults, checking agreement, validity, no double signing
    /// and liveness. A failing test prints the command that replays it here.
    Sim(sim::SimArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Bench(command) => bench::run(command),
        Command::Sim(args) => sim::run(args),
    }
}

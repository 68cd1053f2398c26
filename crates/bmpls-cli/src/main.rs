//! The `bmpls` binary: parses arguments and calls into the library crates. Kept thin on purpose.
#![forbid(unsafe_code)]

mod bench;

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
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Bench(command) => bench::run(command),
    }
}

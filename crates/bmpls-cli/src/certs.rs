//! `bmpls certs`: the consortium's CA, validator keys and certificates, and genesis.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use clap::{Args, Subcommand};

use bmpls_node::provision;

/// Certificates and keys of a consortium.
#[derive(Debug, Subcommand)]
pub enum CertsCommand {
    /// Create a CA, N validators (consensus key, TLS certificate naming that key) and the
    /// genesis file listing them, in an empty folder. Secret files are owner-only.
    #[command(after_help = "Example: bmpls certs init --out certs/local --nodes 4")]
    Init(InitArgs),
    /// Replace one validator's TLS certificate and key with new ones from the same CA (its
    /// consensus key stays); restart that validator afterwards.
    #[command(after_help = "Example: bmpls certs rotate --dir certs/local --name node2")]
    Rotate(RotateArgs),
}

/// Arguments of `bmpls certs init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Folder to create (git-ignored under certs/).
    #[arg(long, default_value = "certs/local")]
    out: PathBuf,
    /// Number of validators (a BFT chain tolerates f faulty of 3f+1).
    #[arg(long, default_value_t = 4)]
    nodes: usize,
    /// Chain id written into genesis.
    #[arg(long, default_value = "bmpls-local")]
    chain_id: String,
}

/// Arguments of `bmpls certs rotate`.
#[derive(Debug, Args)]
pub struct RotateArgs {
    /// Folder made by `bmpls certs init`.
    #[arg(long, default_value = "certs/local")]
    dir: PathBuf,
    /// The validator (node1, node2…).
    #[arg(long)]
    name: String,
}

/// Runs a `bmpls certs` command.
pub fn run(command: CertsCommand) -> anyhow::Result<()> {
    match command {
        CertsCommand::Init(args) => {
            let now_ms = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as u64;
            let nodes = provision::init(&args.out, args.nodes, &args.chain_id, now_ms)?;
            println!("consortium {:?} in {}", args.chain_id, args.out.display());
            println!("  ca.pem, ca.key (secret: keep the CA key offline once nodes are issued)");
            println!("  genesis.toml");
            for node in nodes {
                println!(
                    "  {}/  validator.key (secret), tls.pem, tls.key (secret)   key {}",
                    node.name,
                    hex::encode(node.id.0)
                );
            }
            Ok(())
        }
        CertsCommand::Rotate(args) => {
            let dir = provision::rotate_tls(&args.dir, &args.name)?;
            println!(
                "new TLS certificate and key in {}; restart {} to use them",
                dir.display(),
                args.name
            );
            Ok(())
        }
    }
}

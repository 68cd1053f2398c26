//! `bmpls node`: runs one validator until SIGTERM or Ctrl-C.

use std::path::PathBuf;

use clap::Args;

use bmpls_node::NodeConfig;

/// Arguments of `bmpls node`.
#[derive(Debug, Args)]
pub struct NodeArgs {
    /// The node's configuration (see config/node1.toml). Paths in it are relative to the file.
    #[arg(long)]
    config: PathBuf,
}

/// Runs the validator.
pub fn run(args: NodeArgs) -> anyhow::Result<()> {
    crate::init_logs();
    let config = NodeConfig::load(&args.config)?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(bmpls_node::run_until_signal(&config))?;
    Ok(())
}

//! `bmpls sim`: runs the consensus simulator, to replay a failing seed or sweep many.

use clap::Args;

/// Arguments of `bmpls sim`.
#[derive(Debug, Args)]
pub struct SimArgs {
    /// A named scenario (n4f0, n4f1_crash, n4f1_byzantine, n4f1_partition_heal, n7f2, …) or
    /// `random`, which draws the whole set-up from the seed as the test sweep does.
    #[arg(long, default_value = "random")]
    scenario: String,
    /// The seed: the same seed replays the same run, event for event.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Run this many consecutive seeds from `--seed` on.
    #[arg(long, default_value_t = 1)]
    seeds: u64,
}

/// Runs the simulations and reports each failure with its replay command.
pub fn run(args: SimArgs) -> anyhow::Result<()> {
    let mut failures = 0u64;
    let started = std::time::Instant::now();
    for seed in args.seed..args.seed.saturating_add(args.seeds) {
        let scenario = if args.scenario == "random" {
            bmpls_sim::Scenario::random(seed)
        } else {
            bmpls_sim::Scenario::named(&args.scenario).ok_or_else(|| {
                anyhow::anyhow!(
                    "unknown scenario `{}`; known: random, {}",
                    args.scenario,
                    bmpls_sim::Scenario::NAMES.join(", ")
                )
            })?
        };
        match bmpls_sim::run(&scenario, seed) {
            Ok(outcome) if args.seeds == 1 => println!("{}: {outcome:#?}", scenario.name),
            Ok(_) => {}
            Err(failure) => {
                failures += 1;
                eprintln!("{failure}");
            }
        }
    }
    println!(
        "{} run(s), {failures} failure(s), {:.1} s",
        args.seeds,
        started.elapsed().as_secs_f64()
    );
    if failures > 0 {
        anyhow::bail!("{failures} simulation(s) failed");
    }
    Ok(())
}

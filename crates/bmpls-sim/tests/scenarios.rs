//! Named topologies and a seed sweep. `BMPLS_SIM_SEEDS` sets the sweep's size (default 1,000;
//! the long sweep is 100,000); `BMPLS_SIM_SEED` replays one seed of the sweep.

use bmpls_sim::{Scenario, run};

fn check(name: &str) -> bmpls_sim::Outcome {
    let scenario = Scenario::named(name).expect("a named scenario");
    let outcome = run(&scenario, 1).unwrap_or_else(|failure| panic!("{failure}"));
    eprintln!("{name}: {outcome:?}");
    outcome
}

fn progressed(name: &str) {
    let outcome = check(name);
    let scenario = Scenario::named(name).expect("a named scenario");
    let honest: Vec<u64> = outcome
        .heights
        .iter()
        .enumerate()
        .filter(|(i, _)| !scenario.byzantine.iter().any(|(b, _)| b == i))
        .map(|(_, h)| *h)
        .collect();
    assert!(
        honest.iter().all(|h| *h >= scenario.target_height),
        "{outcome:?}"
    );
    assert!(
        outcome.committed_txs > 0,
        "reports were committed: {outcome:?}"
    );
}

#[test]
fn n4f0() {
    progressed("n4f0");
}

#[test]
fn n4f1_crash() {
    progressed("n4f1_crash");
}

#[test]
fn n4f1_leader_crash() {
    progressed("n4f1_leader_crash");
}

#[test]
fn n4f1_byzantine() {
    progressed("n4f1_byzantine");
}

#[test]
fn n4f1_invalid_blocks() {
    progressed("n4f1_invalid_blocks");
}

#[test]
fn n4f1_bad_signatures() {
    progressed("n4f1_bad_signatures");
}

#[test]
fn n4f1_unknown_block_votes() {
    progressed("n4f1_unknown_block_votes");
}

#[test]
fn n4f1_silent() {
    progressed("n4f1_silent");
}

#[test]
fn n4f1_partition_heal() {
    progressed("n4f1_partition_heal");
}

#[test]
fn n4_lossy() {
    progressed("n4_lossy");
}

#[test]
fn n4_restart_all() {
    progressed("n4_restart_all");
}

#[test]
fn n7f2() {
    progressed("n7f2");
}

#[test]
fn n7f2_crash_and_byzantine() {
    progressed("n7f2_crash_and_byzantine");
}

#[test]
fn n4f2_stalls_without_forking() {
    // Two of four validators down is more than f = 1: no quorum, so no block after the crash,
    // and (checked inside the run) no two honest validators disagree.
    let outcome = check("n4f2_stalls");
    // Validators 1 and 2 crashed; the two left may finish the height whose precommits were
    // already on the wire, and nothing after it.
    let crashed = outcome.heights[1].max(outcome.heights[2]);
    assert!(
        outcome.heights[0] <= crashed + 1 && outcome.heights[3] <= crashed + 1,
        "{outcome:?}"
    );
    let scenario = Scenario::named("n4f2_stalls").expect("named");
    let again = run(&scenario, 1).expect("same run");
    assert_eq!(again, outcome, "a seed replays exactly");
}

#[test]
fn a_seed_replays_exactly() {
    let scenario = Scenario::random(42);
    assert_eq!(run(&scenario, 42), run(&scenario, 42));
}

#[test]
fn seed_sweep() {
    if let Ok(seed) = std::env::var("BMPLS_SIM_SEED") {
        if std::env::var("BMPLS_SIM_TRACE").is_ok() {
            // Malachite's own trace of every step, e.g. BMPLS_SIM_TRACE=1 RUST_LOG=debug.
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
                .try_init();
        }
        let seed: u64 = seed.parse().expect("BMPLS_SIM_SEED is a number");
        let outcome = run(&Scenario::random(seed), seed).unwrap_or_else(|f| panic!("{f}"));
        eprintln!("seed {seed}: {outcome:?}");
        return;
    }
    let seeds: u64 = std::env::var("BMPLS_SIM_SEEDS")
        .ok()
        .map(|s| s.parse().expect("BMPLS_SIM_SEEDS is a number"))
        .unwrap_or(1_000);
    let started = std::time::Instant::now();
    let mut failures = Vec::new();
    for seed in 0..seeds {
        if let Err(failure) = run(&Scenario::random(seed), seed) {
            eprintln!("{failure}");
            failures.push(seed);
        }
    }
    eprintln!(
        "sweep: {seeds} seeds in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(failures.is_empty(), "failing seeds: {failures:?}");
}

#[test]
fn debug_print_scenario() {
    if let Ok(seed) = std::env::var("BMPLS_SIM_SHOW") {
        let seed: u64 = seed.parse().expect("number");
        eprintln!("{:#?}", Scenario::random(seed));
    }
}

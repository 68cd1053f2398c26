//! The nemesis against real validator processes in network namespaces (this test binary
//! re-executed as `bmpls_node::run_until_signal`, as `bmpls node` runs it).
//!
//! - The short runs (every kind of fault once, on 4 and on 7 validators) run in
//!   `cargo test --workspace`. They need root; without it they say they were skipped, unless
//!   `BMPLS_REQUIRE_NETNS=1` (set by `.ci/run`), under which they fail.
//! - `BMPLS_NEMESIS_SOAK_SECS=900 cargo test -p bmpls-nemesis --test nemesis soak --
//!   --nocapture` runs the soak: faults one after another for that long (7 validators unless
//!   `BMPLS_NEMESIS_VALIDATORS` says otherwise).
//! - `BMPLS_NEMESIS_SEED=…` replays a run's plan.

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use bmpls_nemesis::cluster::ClusterError;
use bmpls_nemesis::relay::Shape;
use bmpls_nemesis::schedule::{Schedule, Timing};
use bmpls_nemesis::{NetError, NodeCommand, Options, run};
use bmpls_node::NodeConfig;

const NODE_ENV: &str = "BMPLS_NEMESIS_NODE_CONFIG";

/// One cluster at a time: two cores do not run two.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// The child: one validator, until SIGTERM (graceful) or SIGKILL.
#[test]
#[ignore = "run by the nemesis as a validator process"]
fn node_process() {
    let Some(config) = std::env::var_os(NODE_ENV) else {
        return;
    };
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let config = NodeConfig::load(Path::new(&config)).expect("child loads its config");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    // An error ends the process with status 1 and its message, as `bmpls node` does; only a
    // panic counts as one.
    if let Err(e) = runtime.block_on(bmpls_node::run_until_signal(&config)) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn command() -> NodeCommand {
    NodeCommand {
        program: std::env::current_exe().expect("test binary"),
        args: [
            "node_process",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ]
        .map(String::from)
        .to_vec(),
        config_env: NODE_ENV.into(),
    }
}

fn seed() -> u64 {
    match std::env::var("BMPLS_NEMESIS_SEED") {
        Ok(s) => s.parse().expect("BMPLS_NEMESIS_SEED is a number"),
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1),
    }
}

const TIMING: Timing = Timing {
    hold_min_ms: 3_000,
    hold_max_ms: 6_000,
    max_clock_drift_ms: 5_000,
};

/// 20–50 ms each way, 2 % lost, 2 % duplicated (jitter reorders).
const SHAPE: Shape = Shape {
    delay_min_ms: 20,
    delay_max_ms: 50,
    loss: 0.02,
    duplicate: 0.02,
};

fn options(validators: usize, schedule: Schedule) -> Options {
    Options {
        validators,
        schedule,
        shape: SHAPE,
        reporters: 3,
        batch: 10,
        disk_mib: 256,
        liveness: Duration::from_secs(60),
        settle: Duration::from_secs(1),
        rss_kib: 2 * 1024 * 1024,
        open_files: 4_096,
        command: command(),
        deadline: None,
    }
}

/// Runs `options`; skips (saying so) where namespaces cannot be made, unless required.
fn nemesis(options: &Options) {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let seed = options.schedule.seed;
    let outcome = match run(options) {
        Ok(outcome) => outcome,
        Err(ClusterError::Net(NetError::NotRoot(why))) => {
            assert!(
                std::env::var_os("BMPLS_REQUIRE_NETNS").is_none(),
                "BMPLS_REQUIRE_NETNS is set and network namespaces cannot be made: {why}"
            );
            eprintln!("SKIPPED: the nemesis needs root for network namespaces ({why})");
            return;
        }
        Err(e) => panic!("nemesis harness failed (seed {seed}): {e}"),
    };
    eprintln!("nemesis: seed {seed}: {}", outcome.figures);
    let (forwarded, lost, cut, duplicated) = outcome.packets;
    let mut watch_errors = outcome.history.watch_errors.clone();
    watch_errors.sort();
    watch_errors.dedup();
    eprintln!(
        "nemesis: packets forwarded {forwarded}, lost {lost}, cut {cut}, duplicated {duplicated}; \
         unacknowledged commits {}; refusals {:?}; watch errors {} {watch_errors:?}; exits {:?}",
        outcome.history.unacked_commits,
        outcome.history.refusals,
        outcome.history.watch_errors.len(),
        outcome.history.exits,
    );
    assert!(
        outcome.violations.is_empty(),
        "seed {seed} (replay with BMPLS_NEMESIS_SEED={seed}): {:#?}\n{}",
        outcome.violations,
        outcome.log_tails
    );
}

#[test]
fn n4_every_fault_once_loses_nothing_and_forks_nothing() {
    let seed = seed();
    nemesis(&options(4, Schedule::short(seed, 4, TIMING)));
}

#[test]
fn n7_every_fault_once_loses_nothing_and_forks_nothing() {
    let seed = seed();
    nemesis(&options(7, Schedule::short(seed, 7, TIMING)));
}

#[test]
fn soak() {
    let Some(secs) = std::env::var("BMPLS_NEMESIS_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
    else {
        eprintln!("soak skipped: set BMPLS_NEMESIS_SOAK_SECS to run it");
        return;
    };
    let validators = std::env::var("BMPLS_NEMESIS_VALIDATORS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(7);
    // A fault takes at least its hold (3 s): the plan cannot run out before the time does.
    let faults = (secs / 3).max(1) as usize;
    let seed = seed();
    let mut options = options(validators, Schedule::soak(seed, validators, faults, TIMING));
    options.disk_mib = 1024;
    options.reporters = 4;
    options.deadline = Some(Duration::from_secs(secs));
    nemesis(&options);
}

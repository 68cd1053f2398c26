//! One nemesis run: the cluster, the clients, the plan's faults one after another (inject, hold,
//! heal, wait for commits to resume and every validator to catch up), then every validator
//! stopped and its store read, and the history checked.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::checker::{Bounds, Exit, Figures, HealRecord, History, Violation, check};
use crate::cluster::{Cluster, ClusterError};
use crate::relay::Shape;
use crate::schedule::{Fault, Schedule, Step};
use crate::workload::{self, Heights, Shared, Target};

pub use crate::cluster::NodeCommand;

/// What a run does.
#[derive(Clone, Debug)]
pub struct Options {
    /// Validators (4 or 7…).
    pub validators: usize,
    /// The plan.
    pub schedule: Schedule,
    /// How links misbehave.
    pub shape: Shape,
    /// Reporters submitting throughout.
    pub reporters: usize,
    /// Records per submission.
    pub batch: usize,
    /// Each validator's data tmpfs.
    pub disk_mib: u64,
    /// How long commits may take to resume, and validators to catch up, after a heal before
    /// the run counts as hung (a generous bound, not a performance target).
    pub liveness: Duration,
    /// Quiet time after each heal's catch-up.
    pub settle: Duration,
    /// Resident memory and open files a validator must stay under.
    pub rss_kib: u64,
    /// … and open files.
    pub open_files: u64,
    /// How validators are started.
    pub command: NodeCommand,
    /// Stop injecting faults once the clients have run this long, even if the plan has more
    /// (the soak runs for a time, not a count).
    pub deadline: Option<Duration>,
}

/// What a run found.
#[derive(Debug)]
pub struct Outcome {
    /// Everything recorded.
    pub history: History,
    /// What the checker found (empty: the run passed).
    pub violations: Vec<Violation>,
    /// The run in numbers.
    pub figures: Figures,
    /// Packets the relays forwarded, lost at random, dropped at cuts, duplicated.
    pub packets: (u64, u64, u64, u64),
    /// The last lines of each validator's log, for a failure's report.
    pub log_tails: String,
}

fn say(message: impl AsRef<str>) {
    eprintln!("nemesis: {}", message.as_ref());
}

/// Waits until `done` or `limit` passes, sampling resources and noticing exits meanwhile;
/// how long it took, if it happened.
fn wait_until(
    cluster: &mut Cluster,
    history: &Shared,
    disk_full: Option<usize>,
    limit: Duration,
    done: impl Fn() -> bool,
) -> Option<Duration> {
    let start = Instant::now();
    let mut last_sample = Instant::now();
    loop {
        if done() {
            return Some(start.elapsed());
        }
        if start.elapsed() >= limit {
            return None;
        }
        if last_sample.elapsed() >= Duration::from_secs(2) {
            last_sample = Instant::now();
            let samples = cluster.resources();
            lock(history).resources.extend(samples);
        }
        for (node, status) in cluster.exited() {
            let full = disk_full == Some(node);
            say(format!("validator {node} exited on its own: {status}"));
            lock(history).exits.push(Exit {
                node,
                status,
                disk_full: full,
            });
            // A supervisor restarts a validator that stopped, at most once a second (one that
            // cannot start would otherwise be restarted in a tight loop); one whose disk is
            // full waits for space (the heal).
            if !full {
                let since = cluster.since_start(node);
                if since < Duration::from_secs(1) {
                    std::thread::sleep(Duration::from_secs(1) - since);
                }
                let _ = cluster.spawn(node);
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn lock(history: &Shared) -> std::sync::MutexGuard<'_, History> {
    history.lock().unwrap_or_else(|e| e.into_inner())
}

fn inject(cluster: &mut Cluster, fault: &Fault) -> Result<(), ClusterError> {
    match fault {
        Fault::Kill(nodes) => nodes.iter().for_each(|&i| cluster.kill(i)),
        Fault::Pause(nodes) => {
            for &i in nodes {
                cluster.pause(i)?;
            }
        }
        Fault::Partition(p) => cluster.relays().cuts.set(p.clone()),
        Fault::ClockSkew { node, offset_ms } => {
            cluster.stop(*node);
            cluster.set_skew(*node, Some(*offset_ms));
            cluster.spawn(*node)?;
        }
        Fault::FullDisk(node) => {
            let written = cluster.fill_disk(*node)?;
            say(format!(
                "filled validator {node}'s disk with {} MiB",
                written >> 20
            ));
        }
        Fault::TruncatedWal { node, cut_bytes } => {
            cluster.kill(*node);
            let cut = cluster.truncate_wal(*node, *cut_bytes)?;
            say(format!("cut {cut} bytes off validator {node}'s WAL"));
        }
        Fault::Wipe(node) => {
            cluster.kill(*node);
            cluster.wipe(*node)?;
        }
    }
    Ok(())
}

fn heal(cluster: &mut Cluster, fault: &Fault, history: &Shared) -> Result<(), ClusterError> {
    match fault {
        Fault::Kill(nodes) => {
            for &i in nodes {
                cluster.spawn(i)?;
            }
        }
        Fault::Pause(nodes) => {
            for &i in nodes {
                cluster.resume(i)?;
            }
        }
        Fault::Partition(_) => cluster.relays().cuts.heal(),
        Fault::ClockSkew { node, .. } => {
            cluster.stop(*node);
            cluster.set_skew(*node, None);
            cluster.spawn(*node)?;
        }
        Fault::FullDisk(node) => {
            cluster.free_disk(*node)?;
            // It may have stopped on its full disk without being noticed yet.
            if let Some(status) = cluster.reap(*node) {
                say(format!(
                    "validator {node} exited on its full disk: {status}"
                ));
                lock(history).exits.push(Exit {
                    node: *node,
                    status,
                    disk_full: true,
                });
            }
            if !cluster.running(*node) {
                cluster.spawn(*node)?;
            }
        }
        Fault::TruncatedWal { node, .. } | Fault::Wipe(node) => cluster.spawn(*node)?,
    }
    Ok(())
}

/// Runs `options`; an error is a harness failure (no namespaces, a validator that never
/// started), a violation is in the outcome.
pub fn run(options: &Options) -> Result<Outcome, ClusterError> {
    let seed = options.schedule.seed;
    say(format!(
        "seed {seed} ({} validators, {} faults; replay with BMPLS_NEMESIS_SEED={seed})",
        options.validators,
        options.schedule.steps.len()
    ));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| ClusterError::Other(format!("runtime: {e}")))?;
    let mut cluster = Cluster::start(
        options.validators,
        options.command.clone(),
        options.shape,
        options.disk_mib,
        seed,
    )?;
    let target = Target {
        addrs: cluster.client_addrs(),
        trust: cluster.trust()?,
        validators: cluster.validators()?,
        operator: cluster.operator()?,
    };
    let history: Shared = Arc::new(Mutex::new(History {
        seed,
        ..History::default()
    }));
    let stop_probe = Arc::new(AtomicBool::new(false));
    let heights: Arc<Heights> = {
        let _guard = rt.enter();
        workload::probe(&target, history.clone(), stop_probe.clone())
    };
    let started = wait_until(&mut cluster, &history, None, options.liveness, || {
        heights.min() >= 1
    });
    if started.is_none() {
        return Err(ClusterError::Other(format!(
            "the cluster made no block within {:?}:\n{}",
            options.liveness,
            tails(&cluster)
        )));
    }
    let clients = rt
        .block_on(workload::start(
            &target,
            cluster.dir.path(),
            options.reporters,
            options.batch,
            seed,
            history.clone(),
        ))
        .map_err(ClusterError::Other)?;
    let workload_start = Instant::now();
    wait_until(&mut cluster, &history, None, Duration::from_secs(3), || {
        false
    });

    for (k, Step { fault, hold_ms }) in options.schedule.steps.iter().enumerate() {
        if options
            .deadline
            .is_some_and(|d| workload_start.elapsed() >= d)
        {
            say(format!(
                "{k} faults in {:?}: time is up",
                workload_start.elapsed()
            ));
            break;
        }
        if let Fault::Wipe(_) = fault {
            // A wipe tests joining from a snapshot: it waits until the validators have
            // checkpoints to offer (one every CHECKPOINT_HEIGHTS). Without any, the wiped
            // validator syncs from the genesis instead (and, meanwhile, tells carers it is
            // catching up rather than refusing them: see docs/faults.md).
            let wanted = crate::cluster::CHECKPOINT_HEIGHTS + 10;
            wait_until(
                &mut cluster,
                &history,
                None,
                Duration::from_secs(60),
                || heights.max() >= wanted,
            );
        }
        say(format!(
            "[{}/{}] {} for {hold_ms} ms (height {})",
            k + 1,
            options.schedule.steps.len(),
            fault.name(),
            heights.max()
        ));
        inject(&mut cluster, fault)?;
        lock(&history).faults += 1;
        let full = match fault {
            Fault::FullDisk(node) => Some(*node),
            _ => None,
        };
        wait_until(
            &mut cluster,
            &history,
            full,
            Duration::from_millis(*hold_ms),
            || false,
        );
        let height_at_heal = heights.max();
        let acked_height = lock(&history)
            .acks
            .iter()
            .map(|a| a.height)
            .max()
            .unwrap_or(0);
        heal(&mut cluster, fault, &history)?;
        let resumed = wait_until(&mut cluster, &history, None, options.liveness, || {
            heights.max() > height_at_heal
        });
        let target_height = height_at_heal.max(acked_height);
        let converged = wait_until(&mut cluster, &history, None, options.liveness, || {
            heights.min() >= target_height
        });
        let ms = |d: Option<Duration>| d.map(|d| d.as_millis() as u64);
        say(format!(
            "healed at height {height_at_heal}: commits resumed after {:?} ms, every validator at {target_height} after {:?} ms",
            ms(resumed),
            ms(converged)
        ));
        lock(&history).heals.push(HealRecord {
            fault: fault.name(),
            height_at_heal,
            acked_height,
            resumed_after_ms: ms(resumed),
            converged_after_ms: ms(converged),
        });
        wait_until(&mut cluster, &history, None, options.settle, || false);
    }

    rt.block_on(clients.stop(Duration::from_secs(20)));
    let workload_ms = workload_start.elapsed().as_millis() as u64;
    // The probe asks every 250 ms, so the highest tip it saw can be below the height of the
    // last acknowledgement (seed 1796189041219845752 stopped a validator at 82 with 83
    // acknowledged, the probe having seen 82 last): wait for both.
    let acked_at_end = lock(&history)
        .acks
        .iter()
        .map(|a| a.height)
        .max()
        .unwrap_or(0);
    let top = heights.max().max(acked_at_end);
    let caught_up = wait_until(&mut cluster, &history, None, options.liveness, || {
        heights.min() >= top
    });
    if caught_up.is_none() {
        say(format!(
            "not every validator reached height {top} at the end"
        ));
    }
    stop_probe.store(true, std::sync::atomic::Ordering::Relaxed);
    for i in 0..cluster.len() {
        match cluster.stop(i) {
            Some(status) if !status.success() => lock(&history).exits.push(Exit {
                node: i,
                status: format!("on SIGTERM: {status}"),
                disk_full: false,
            }),
            _ => {}
        }
    }
    let mut history = std::mem::take(&mut *lock(&history));
    history.workload_ms = workload_ms;
    for i in 0..cluster.len() {
        match cluster.chain_view(i) {
            Ok(view) => {
                if view.base > 0 {
                    say(format!(
                        "validator {i} joined from a snapshot after block {}",
                        view.base
                    ));
                }
                history.chains.push(view);
            }
            Err(e) => say(format!("validator {i}'s store: {e}")),
        }
    }
    history.panics = cluster.panics();
    let bounds = Bounds {
        validators: cluster.len(),
        rss_kib: options.rss_kib,
        open_files: options.open_files,
    };
    let violations = check(&history, &bounds);
    let figures = Figures::of(&history, &violations);
    let c = &cluster.relays().counters;
    let load = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
    let packets = (
        load(&c.forwarded),
        load(&c.lost),
        load(&c.cut),
        load(&c.duplicated),
    );
    let log_tails = if violations.is_empty() {
        String::new()
    } else {
        tails(&cluster)
    };
    Ok(Outcome {
        history,
        violations,
        figures,
        packets,
        log_tails,
    })
}

/// The last 15 lines of each validator's log.
fn tails(cluster: &Cluster) -> String {
    let mut out = String::new();
    for i in 0..cluster.len() {
        let text = std::fs::read_to_string(cluster.log_path(i)).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        out.push_str(&format!("--- validator {i} log\n"));
        for line in &lines[lines.len().saturating_sub(15)..] {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

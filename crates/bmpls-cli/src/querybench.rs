//! `bmpls bench query`: carers' query latency over QUIC against a validator holding a million
//! records, and `bmpls bench alerts`: geofence alert latency from submit to delivery.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use clap::Args;
use indicatif::ProgressBar;
use rand::{Rng, SeedableRng, rngs::StdRng};

use bmpls_client::{
    AlertStream, CarerKeystore, Fix, Nodes, PatientKeystore, area_query, open_grant, verify_answer,
};
use bmpls_grid::{LevelSet, cover_circle, cover_lon_lat_box};
use bmpls_net::Submitted;
use bmpls_net::alert::AlertKind;
use bmpls_net::query::{Ask, Query, QueryOutcome};
use bmpls_node::BlockPolicy;
use bmpls_node::local::LocalCluster;
use bmpls_types::{Epoch, Height, LevelIndex, Role, Seq, Transaction, Trigger};

const LEVELS: &str = include_str!("../../../config/levels.toml");
const DAY_MS: u64 = 86_400_000;
const STEP_MS: u64 = 30_000;
const CENTRE: (f64, f64) = (52.37, 4.89);
const NEIGHBOURHOOD: LevelIndex = LevelIndex(2);
/// The query bench's chain: records are built for it before its cluster starts.
const QUERY_CHAIN: &str = "bmpls-bench-query";
/// The alert bench's chain.
const ALERTS_CHAIN: &str = "bmpls-bench-alerts";

/// Options of `bmpls bench query`.
#[derive(Debug, Args)]
pub struct QueryBenchArgs {
    /// Validators in the cluster (the store size is per validator; one is enough to measure a
    /// validator's answers).
    #[arg(long, default_value_t = 1)]
    nodes: usize,
    /// Patients whose records fill the store (reported concurrently, one fix every 30 s each).
    #[arg(long, default_value_t = 8)]
    patients: usize,
    /// Records stored in all.
    #[arg(long, default_value_t = 1_000_000)]
    records: usize,
    /// Queries of each kind measured.
    #[arg(long, default_value_t = 200)]
    queries: usize,
}

/// Options of `bmpls bench alerts`.
#[derive(Debug, Args)]
pub struct AlertBenchArgs {
    /// Validators in the cluster.
    #[arg(long, default_value_t = 4)]
    nodes: usize,
    /// Alerts measured (each is one report that crosses the fence).
    #[arg(long, default_value_t = 200)]
    alerts: usize,
}

fn percentiles(mut samples: Vec<Duration>) -> String {
    samples.sort();
    let at = |p: f64| samples[((samples.len() - 1) as f64 * p).round() as usize];
    format!(
        "p50 {:>7.2} ms  p99 {:>7.2} ms  max {:>7.2} ms",
        at(0.5).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3,
        at(1.0).as_secs_f64() * 1e3
    )
}

/// A smooth, bounded random walk around the centre: `count` fixes, 30 s apart, ending now.
fn fixes(count: usize, seed: u64, end_ms: u64) -> Vec<Fix> {
    let mut rng = StdRng::seed_from_u64(seed);
    let (mut lat, mut lon) = (
        CENTRE.0 + rng.gen_range(-0.02..0.02),
        CENTRE.1 + rng.gen_range(-0.03..0.03),
    );
    let (mut dlat, mut dlon) = (0.0f64, 0.0f64);
    (0..count)
        .map(|i| {
            dlat = (dlat + rng.gen_range(-0.00004..0.00004)).clamp(-0.0002, 0.0002);
            dlon = (dlon + rng.gen_range(-0.00006..0.00006)).clamp(-0.0003, 0.0003);
            lat += dlat;
            lon += dlon;
            if (lat - CENTRE.0).abs() > 0.03 {
                dlat = -dlat;
                lat = lat.clamp(CENTRE.0 - 0.03, CENTRE.0 + 0.03);
            }
            if (lon - CENTRE.1).abs() > 0.05 {
                dlon = -dlon;
                lon = lon.clamp(CENTRE.1 - 0.05, CENTRE.1 + 0.05);
            }
            Fix {
                lat,
                lon,
                accuracy_m: 8.0,
                altitude_m: 2.0,
                speed_m_s: 1.0,
                battery_percent: 80,
                trigger: Trigger::Periodic,
                fix_time_ms: end_ms - (count - 1 - i) as u64 * STEP_MS,
            }
        })
        .collect()
}

async fn commit(nodes: &Nodes, txs: Vec<Transaction>) -> anyhow::Result<Vec<u64>> {
    nodes
        .submit(txs)
        .await?
        .into_iter()
        .map(|o| match o {
            Submitted::Committed { height, .. } => Ok(height),
            Submitted::Refused { code, reason } => {
                anyhow::bail!("refused ({code:?}): {}", reason.as_str())
            }
        })
        .collect()
}

/// Runs `bmpls bench query`.
#[allow(clippy::too_many_lines)]
pub fn run_query(args: &QueryBenchArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.nodes >= 1 && args.patients >= 1 && args.queries >= 1);
    anyhow::ensure!(
        args.records >= args.patients * 3_000,
        "--records: at least 3,000 per patient"
    );
    let dir = tempfile::tempdir()?;
    let mut rng = StdRng::seed_from_u64(1);
    let patients: Vec<PatientKeystore> = (0..args.patients)
        .map(|i| {
            PatientKeystore::create(&dir.path().join(format!("p{i}")), LEVELS, DAY_MS, &mut rng)
        })
        .collect::<Result<_, _>>()?;
    let carer = CarerKeystore::create(&dir.path().join("carer"), Role::TelecareOperator, &mut rng)?;
    let per = args.records / args.patients;
    let query_chain = bmpls_types::ChainId::new(QUERY_CHAIN).expect("a short literal");
    let query_chain = &query_chain;
    let end_ms = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as u64 - 60_000;

    // Build every record first (OPE at six levels, sealing, signing), on every core.
    let started = Instant::now();
    let walks: Vec<Vec<Fix>> = (0..args.patients)
        .map(|i| fixes(per, i as u64, end_ms))
        .collect();
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let records: Vec<Vec<Transaction>> = std::thread::scope(|scope| {
        let handles: Vec<_> = patients
            .chunks(args.patients.div_ceil(threads))
            .zip(walks.chunks(args.patients.div_ceil(threads)))
            .map(|(ps, ws)| {
                scope.spawn(move || {
                    ps.iter()
                        .zip(ws)
                        .map(|(p, walk)| {
                            let mut reporter = p.reporter(query_chain)?;
                            let mut rng = StdRng::from_entropy();
                            walk.iter()
                                .enumerate()
                                .map(|(i, f)| {
                                    Ok(Transaction::Report(reporter.build(
                                        f,
                                        Seq(i as u64 + 1),
                                        &mut rng,
                                    )?))
                                })
                                .collect::<anyhow::Result<Vec<_>>>()
                        })
                        .collect::<anyhow::Result<Vec<_>>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .map_err(|_| anyhow::anyhow!("a builder panicked"))?
            })
            .collect::<anyhow::Result<Vec<Vec<_>>>>()
            .map(|v| v.into_iter().flatten().collect())
    })?;
    println!(
        "built {} records of {} patients in {:.1} s",
        per * args.patients,
        args.patients,
        started.elapsed().as_secs_f64()
    );

    tokio::runtime::Runtime::new()?.block_on(async {
        let policy = BlockPolicy { min_interval_ms: 5, empty_interval_ms: 1_000 };
        let cluster = LocalCluster::start(dir.path(), args.nodes, QUERY_CHAIN, policy).await?;
        let addrs = cluster.client_addrs();
        let trust = cluster.trust()?;
        let operator = cluster.operator()?;
        let validators = cluster.validators()?;
        let levels = LevelSet::from_toml(LEVELS)?;
        let admin = Nodes::new(&addrs, &trust, &operator)?;
        let mut enrol: Vec<Transaction> = patients.iter().map(|p| p.enrolment(&operator, query_chain)).collect();
        enrol.push(carer.enrolment(&operator, query_chain));
        commit(&admin, enrol).await?;

        let bar = ProgressBar::new((per * args.patients) as u64);
        bar.set_style(crate::output::progress_style("records stored")?);
        let clock = Instant::now();
        let mut tasks = Vec::new();
        for (p, recs) in patients.iter().zip(records) {
            let nodes = Nodes::new(&addrs, &trust, p.reporter_key())?;
            let bar = bar.clone();
            tasks.push(tokio::spawn(async move {
                for chunk in recs.chunks(bmpls_net::limits::MAX_SUBMIT_BATCH) {
                    commit(&nodes, chunk.to_vec()).await?;
                    bar.inc(chunk.len() as u64);
                }
                nodes.close().await;
                anyhow::Ok(())
            }));
        }
        for task in tasks {
            task.await??;
        }
        bar.finish_and_clear();
        println!(
            "stored {} records on {} validator(s) in {:.1} s",
            per * args.patients,
            args.nodes,
            clock.elapsed().as_secs_f64()
        );

        // A neighbourhood grant of the first patient's whole history.
        let first = &patients[0];
        let window = (end_ms - (per as u64 - 1) * STEP_MS, end_ms);
        let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as u64;
        let grant = first.grant(query_chain, carer.carer, &carer.agreement().public(), NEIGHBOURHOOD, window, (now - 60_000, now + DAY_MS), "bench", &mut StdRng::from_entropy())?;
        let outcome = admin.submit(vec![grant]).await?;
        let Some(Submitted::Committed { tx: grant, .. }) = outcome.first().cloned() else {
            anyhow::bail!("grant refused: {outcome:?}");
        };
        let nodes = Nodes::new(&addrs, &trust, carer.identity())?;
        let depth = levels.levels()[2].depth;
        let walk = &walks[0];
        let base = Query { patient: first.patient, grant, level: NEIGHBOURHOOD, from_ms: window.0, to_ms: window.1, ask: Ask::Last, limit: 1 };
        // The carer's keys, from one verified answer.
        let (_, mut outcomes) = nodes.query(vec![base.clone()]).await?;
        let Some(QueryOutcome::Answered(answer)) = outcomes.pop() else { anyhow::bail!("no answer") };
        let keys = open_grant(&verify_answer(*answer, &base, &validators, &levels, &carer)?.grant, &carer)?;

        let mut rng = StdRng::seed_from_u64(3);
        let days = (per as u64 * STEP_MS / DAY_MS).max(1);
        let mut table = Vec::new();
        let kinds = ["last", "track, one day (1,000 records)", "1 km² box, one day", "1 km² box, 30 days", "1 km² box, whole history"];
        for kind in kinds {
            let (mut asked, mut checked, mut results, mut bytes) = (Vec::new(), Vec::new(), 0usize, 0usize);
            for _ in 0..args.queries {
                let day_start = window.0 + rng.gen_range(0..days) * DAY_MS;
                let day = (day_start, (day_start + DAY_MS - 1).min(window.1));
                let query = match kind {
                    "last" => base.clone(),
                    k if k.starts_with("track") => Query { from_ms: day.0, to_ms: day.1, ask: Ask::Track, limit: 1_000, ..base.clone() },
                    _ => {
                        // A square kilometre around where she was at some moment of that day,
                        // asked over the day, 30 days from it (or to the end), or her whole
                        // history.
                        let first = ((day.0 - window.0) / STEP_MS) as usize;
                        let centre = &walk[(first + rng.gen_range(0..2_880)).min(per - 1)];
                        let (dlat, dlon) = (0.0045, 0.0045 / centre.lat.to_radians().cos());
                        let cells = cover_lon_lat_box(centre.lon - dlon, centre.lat - dlat, centre.lon + dlon, centre.lat + dlat, depth, 64)?;
                        let span = match kind {
                            k if k.ends_with("one day") => day,
                            k if k.ends_with("30 days") => {
                                let start = day.0.min(window.1.saturating_sub(30 * DAY_MS - 1)).max(window.0);
                                (start, (start + 30 * DAY_MS - 1).min(window.1))
                            }
                            _ => window,
                        };
                        let epoch = |ms: u64| Epoch((ms / DAY_MS) as u32);
                        let ask = area_query(&keys, &levels, NEIGHBOURHOOD.0, &cells, (epoch(span.0), epoch(span.1)))?;
                        Query { from_ms: span.0, to_ms: span.1, ask, limit: 1_000, ..base.clone() }
                    }
                };
                let sent = Instant::now();
                let (_, mut outcomes) = nodes.query(vec![query.clone()]).await?;
                asked.push(sent.elapsed());
                let outcome = outcomes.pop().context("no outcome")?;
                bytes += outcome.encoded_len();
                let QueryOutcome::Answered(answer) = outcome else { anyhow::bail!("not answered") };
                let t = Instant::now();
                let seen = verify_answer(*answer, &query, &validators, &levels, &carer)?;
                checked.push(t.elapsed());
                results += seen.records.len();
            }
            table.push(format!(
                "{kind:<34} answered: {}\n{:<34} verified + decrypted by the carer: {}\n{:<34} {:.0} records and {:.0} KiB per answer",
                percentiles(asked), "", percentiles(checked), "",
                results as f64 / args.queries as f64,
                bytes as f64 / args.queries as f64 / 1024.0
            ));
        }
        println!("{} queries of each kind over QUIC from one carer, {} records stored:", args.queries, per * args.patients);
        for row in table {
            println!("{row}");
        }
        nodes.close().await;
        admin.close().await;
        let data = cluster.dir.clone();
        cluster.shutdown().await?;
        restart_times(&data, per * args.patients).await
    })
}

/// Restarts the first validator of a stopped cluster in `dir` and prints what its start cost,
/// from its newest checkpoint, beside a replay of its whole chain.
async fn restart_times(dir: &std::path::Path, records: usize) -> anyhow::Result<()> {
    let config = bmpls_node::NodeConfig::load(&dir.join("node1.toml"))?;
    let clock = Instant::now();
    let node = bmpls_node::Node::start(&config).await?;
    let started = clock.elapsed();
    node.shutdown().await?;
    let store = bmpls_store::Store::open(
        &config.data_dir.join("store"),
        config.genesis.validators.crypto().chain_id(),
    )?;
    let mut lines = Vec::new();
    for use_checkpoints in [true, false] {
        let clock = Instant::now();
        let rebuilt = bmpls_node::checkpoint::rebuild(&config.genesis, &store, use_checkpoints)?;
        let took = clock.elapsed();
        lines.push(match rebuilt.checkpoint {
            Some(at) => format!(
                "from the checkpoint at height {} + {} blocks replayed: {:.2} s",
                at.0,
                rebuilt.replayed,
                took.as_secs_f64()
            ),
            None => format!(
                "replaying the whole chain ({} blocks): {:.2} s",
                rebuilt.replayed,
                took.as_secs_f64()
            ),
        });
    }
    let checkpoint = match store.checkpoints()?.first() {
        Some(&h) => store.checkpoint(h)?.map_or(0, |b| b.len()),
        None => 0,
    };
    println!(
        "restart of node1 after {records} records (checkpoint {:.1} KiB):",
        checkpoint as f64 / 1024.0
    );
    println!(
        "  whole start (store open, state, consensus, listeners): {:.2} s",
        started.as_secs_f64()
    );
    for line in lines {
        println!("  state {line}");
    }
    Ok(())
}

/// Runs `bmpls bench alerts`: a patient steps in and out of a fence, one report at a time; each
/// step fires an alert; the latency is from submitting the report to the carer receiving it.
pub fn run_alerts(args: &AlertBenchArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.nodes >= 1 && args.alerts >= 2);
    let dir = tempfile::tempdir()?;
    tokio::runtime::Runtime::new()?.block_on(async {
        let policy = BlockPolicy { min_interval_ms: 20, empty_interval_ms: 1_000 };
        let cluster = LocalCluster::start(dir.path(), args.nodes, ALERTS_CHAIN, policy).await?;
        let addrs = cluster.client_addrs();
        let trust = cluster.trust()?;
        let operator = cluster.operator()?;
        let validators = cluster.validators()?;
        let levels = LevelSet::from_toml(LEVELS)?;
        let mut rng = StdRng::seed_from_u64(5);
        let patient = PatientKeystore::create(&dir.path().join("p"), LEVELS, DAY_MS, &mut rng)?;
        let carer = CarerKeystore::create(&dir.path().join("c"), Role::TelecareOperator, &mut rng)?;
        let admin = Nodes::new(&addrs, &trust, &operator)?;
        let chain = &validators.chain_id().clone();
        commit(&admin, vec![patient.enrolment(&operator, chain), carer.enrolment(&operator, chain)]).await?;
        let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as u64;
        let today = (now / DAY_MS * DAY_MS, now / DAY_MS * DAY_MS + DAY_MS - 1);
        let grant = patient.grant(chain, carer.carer, &carer.agreement().public(), NEIGHBOURHOOD, today, (now - 60_000, now + DAY_MS), "bench", &mut rng)?;
        let depth = levels.levels()[2].depth;
        let zone = cover_circle(CENTRE.1, CENTRE.0, 300.0, depth, 128)?;
        let fence = patient.fence(chain, carer.carer, NEIGHBOURHOOD, &zone, today, 1, 0)?;
        // The grant first: a fence needs a standing grant on the committed ledger.
        commit(&admin, vec![grant]).await?;
        commit(&admin, vec![fence]).await?;

        let watcher_nodes = Nodes::new(&addrs, &trust, carer.identity())?;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut stream = AlertStream::new(carer.carer, validators, Height(1));
        let watcher = tokio::spawn(async move {
            loop {
                for event in stream.next_events(&watcher_nodes, 5_000).await? {
                    if tx.send((event, Instant::now())).is_err() {
                        watcher_nodes.close().await;
                        return anyhow::Ok(());
                    }
                }
            }
        });
        let phone = Nodes::new(&addrs, &trust, patient.reporter_key())?;
        let mut reporter = patient.reporter(chain)?;
        let mut latencies = Vec::with_capacity(args.alerts);
        // Fix times inside today's key epoch, which the grant and the fence cover (just after
        // midnight, ten minutes ago was yesterday).
        let start = (now - 600_000).max(today.0);
        for i in 0..=args.alerts {
            // In (even steps) and out 3 km east (odd): every report after the first crosses.
            let fix = Fix {
                lat: CENTRE.0,
                lon: CENTRE.1 + if i % 2 == 0 { 0.0 } else { 0.045 },
                accuracy_m: 5.0,
                altitude_m: 0.0,
                speed_m_s: 1.0,
                battery_percent: 90,
                trigger: Trigger::Periodic,
                fix_time_ms: start + i as u64 * 1_000,
            };
            let record = reporter.build(&fix, Seq(i as u64 + 1), &mut rng)?;
            let sent = Instant::now();
            commit(&phone, vec![Transaction::Report(record)]).await?;
            if i == 0 {
                continue;
            }
            let (event, at) = tokio::time::timeout(Duration::from_secs(10), rx.recv())
                .await
                .context("no alert within 10 s")?
                .context("the watcher stopped")?;
            anyhow::ensure!(event.seq.0 == i as u64 + 1, "alert for record {} after record {}", event.seq.0, i + 1);
            let expected = if i % 2 == 0 { AlertKind::Enter } else { AlertKind::Exit };
            anyhow::ensure!(event.kind == expected, "{:?} where {expected:?} was due", event.kind);
            latencies.push(at.duration_since(sent));
        }
        drop(rx);
        println!(
            "{} alerts (Enter/Exit, debounce 1) on {} validators, submit -> delivered to the watching carer: {}",
            latencies.len(),
            args.nodes,
            percentiles(latencies)
        );
        watcher.abort();
        phone.close().await;
        admin.close().await;
        cluster.shutdown().await?;
        anyhow::Ok(())
    })
}

//! `bmpls bench ingest`: a loopback cluster driven by many reporters.
//!
//! Records are built before the clock starts (their encryption is the phone's cost, reported
//! on its own line); the measured part is submission over QUIC, mempool admission and gossip,
//! consensus, and the flushed store apply on the answering validator.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use clap::Args;
use indicatif::ProgressBar;
use rand::SeedableRng;
use rand::rngs::StdRng;

use bmpls_client::{Fix, Nodes, Reporter};
use bmpls_crypto::SigningKey;
use bmpls_grid::LevelSet;
use bmpls_net::Submitted;
use bmpls_net::limits::MAX_SUBMIT_BATCH;
use bmpls_node::BlockPolicy;
use bmpls_node::local::LocalCluster;
use bmpls_ope::keys::MasterSecret;
use bmpls_types::{
    ChainId, EnrolPatient, PatientId, PublicKeyBytes, Seq, SignatureBytes, Transaction, Trigger,
};

/// Options of `bmpls bench ingest`.
#[derive(Debug, Args)]
pub struct IngestArgs {
    /// Validators in the cluster.
    #[arg(long, default_value_t = 4)]
    nodes: usize,
    /// Concurrent reporters (patients' phones), spread over the validators [default: 128, or
    /// 512 with --curve, so that the phones are not what limits the offered load].
    #[arg(long)]
    reporters: Option<usize>,
    /// Records to submit in all.
    #[arg(long, default_value_t = 100_000)]
    records: usize,
    /// Records per submission (a phone sends the fixes it buffered).
    #[arg(long, default_value_t = 20)]
    batch: usize,
    /// Least time between heights, in milliseconds.
    #[arg(long, default_value_t = 20)]
    min_block_interval_ms: u64,
    /// Measure the saturation curve instead: offer each of these loads (records per second,
    /// comma-separated) in turn, open loop, for --step-s seconds each, and print the committed
    /// rate and latency p50/p99 of each (--records is then ignored).
    #[arg(long, value_delimiter = ',', value_name = "RECORDS_PER_S")]
    curve: Option<Vec<u32>>,
    /// With --curve: seconds each load is offered for.
    #[arg(long, default_value_t = 10, value_name = "SECONDS")]
    step_s: u64,
    /// With --curve: also draw the curve in this SVG file.
    #[arg(long, value_name = "FILE")]
    svg: Option<std::path::PathBuf>,
}

/// A simulated phone: its patient, its reporter key and the records it will send.
pub(crate) struct Phone {
    pub(crate) id: PatientId,
    pub(crate) key: SigningKey,
    pub(crate) records: Vec<Transaction>,
}

/// The bench cluster's chain id.
pub(crate) const BENCH_CHAIN: &str = "bmpls-bench";

/// `reporters` phones with `records` records between them, fixes a second apart ending now,
/// built and signed for `chain` with the shipped levels.
pub(crate) fn phones(
    reporters: usize,
    records: usize,
    chain: &ChainId,
) -> anyhow::Result<Vec<Phone>> {
    let per_phone = records.div_ceil(reporters);
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as u64;
    let mut phones = Vec::with_capacity(reporters);
    for r in 0..reporters {
        let mut rng = StdRng::seed_from_u64(r as u64);
        let id = PatientId(rand::Rng::r#gen(&mut rng));
        let key = SigningKey::generate(&mut rng);
        let mut reporter = Reporter::new(
            chain.clone(),
            id,
            &MasterSecret::generate(&mut rng),
            SigningKey::from_seed(&key.to_seed()),
            LevelSet::default_levels(),
            86_400_000,
        )?;
        let count = per_phone.min(records.saturating_sub(r * per_phone));
        let mut records = Vec::with_capacity(count);
        for i in 0..count {
            let fix = Fix {
                lat: 51.5 + (r as f64) * 0.01 + (i as f64) * 1e-5,
                lon: -0.12 + (i as f64) * 1e-5,
                accuracy_m: 8.0,
                altitude_m: 10.0,
                speed_m_s: 1.1,
                battery_percent: 70,
                trigger: Trigger::Periodic,
                fix_time_ms: now - (count - i) as u64 * 1_000,
            };
            records.push(Transaction::Report(reporter.build(
                &fix,
                Seq(i as u64 + 1),
                &mut rng,
            )?));
        }
        phones.push(Phone { id, key, records });
    }
    Ok(phones)
}

/// The operator's enrolment of `phone`'s patient.
/// A bench's loopback cluster of `nodes` validators in `dir`, on [`BENCH_CHAIN`], with its
/// client addresses, trust and operator key.
pub(crate) async fn bench_cluster(
    dir: &std::path::Path,
    nodes: usize,
    min_interval_ms: u64,
) -> anyhow::Result<(
    LocalCluster,
    Vec<std::net::SocketAddr>,
    bmpls_net::Trust,
    SigningKey,
)> {
    let policy = BlockPolicy {
        min_interval_ms,
        empty_interval_ms: 1_000,
    };
    let cluster = LocalCluster::start(dir, nodes, BENCH_CHAIN, policy)
        .await
        .context("starting the cluster")?;
    let addrs = cluster.client_addrs();
    let trust = cluster.trust()?;
    let operator = cluster.operator()?;
    Ok((cluster, addrs, trust, operator))
}

pub(crate) fn enrolment(phone: &Phone, operator: &SigningKey, chain: &ChainId) -> Transaction {
    let mut enrol = EnrolPatient {
        patient: phone.id,
        reporter_key: phone.key.public(),
        custodian_key: phone.key.public(),
        level_count: LevelSet::default_levels().len() as u8,
        ore_levels: LevelSet::default_levels().ore_levels() as u8,
        epoch_length_ms: 86_400_000,
        operator: PublicKeyBytes(operator.public().0),
        sig: SignatureBytes::UNSIGNED,
    };
    operator.sign(&mut enrol, chain);
    Transaction::EnrolPatient(enrol)
}

pub(crate) fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Runs the benchmark.
pub fn run(args: &IngestArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.nodes >= 1, "--nodes must be at least 1");
    let reporters = args
        .reporters
        .unwrap_or(if args.curve.is_some() { 512 } else { 128 });
    anyhow::ensure!(reporters >= 1, "--reporters must be at least 1");
    anyhow::ensure!(
        (1..=MAX_SUBMIT_BATCH).contains(&args.batch),
        "--batch must be 1 to {MAX_SUBMIT_BATCH}"
    );
    if let Some(loads) = &args.curve {
        anyhow::ensure!(
            !loads.is_empty() && loads.iter().all(|&l| l > 0),
            "--curve needs one or more loads above 0 records/s"
        );
        anyhow::ensure!(
            (1..=600).contains(&args.step_s),
            "--step-s must be 1 to 600"
        );
    } else {
        anyhow::ensure!(
            args.svg.is_none(),
            "--svg draws the saturation curve: it needs --curve"
        );
    }
    let records = match &args.curve {
        Some(loads) => crate::curve::records_needed(loads, args.step_s, args.batch, reporters),
        None => args.records,
    };
    if std::env::var_os("RUST_LOG").is_some() {
        // The validators' logs, for looking into a run (they would break the progress bar).
        crate::init_logs();
    }
    let started = Instant::now();
    // The cluster is made with this chain id below; records are signed for it up front.
    let chain = ChainId::new(BENCH_CHAIN).expect("a short literal");
    let phones = phones(reporters, records, &chain)?;
    let built = started.elapsed();
    let total: usize = phones.iter().map(|p| p.records.len()).sum();
    println!(
        "built {total} records for {} reporters in {:.1} s ({:.0} records/s: ORE at 3 levels, OPE at 3, sealing, signing)",
        phones.len(),
        built.as_secs_f64(),
        total as f64 / built.as_secs_f64()
    );
    let dir = tempfile::tempdir()?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let (cluster, addrs, trust, operator) =
            bench_cluster(dir.path(), args.nodes, args.min_block_interval_ms).await?;
        let enrolments: Vec<Transaction> = phones
            .iter()
            .map(|p| enrolment(p, &operator, &chain))
            .collect();
        let admin = Nodes::new(&addrs, &trust, &operator)?;
        for chunk in enrolments.chunks(MAX_SUBMIT_BATCH) {
            for outcome in admin.submit(chunk.to_vec()).await? {
                anyhow::ensure!(matches!(outcome, Submitted::Committed { .. }), "enrolment refused: {outcome:?}");
            }
        }
        if let Some(loads) = &args.curve {
            let points =
                crate::curve::run(phones, &addrs, &trust, (loads, args.step_s, args.batch)).await?;
            println!(
                "{} validators, {reporters} reporters, submissions of {}, {} s per load",
                args.nodes, args.batch, args.step_s
            );
            print!("{}", crate::curve::table(&points));
            if let Some(path) = &args.svg {
                let title = format!(
                    "bmpls bench ingest --curve: {} validators, {reporters} phones, batches of {}",
                    args.nodes, args.batch
                );
                crate::curve::write_chart(path, &points, &title)?;
                println!("chart written to {}", path.display());
            }
            admin.close().await;
            cluster.shutdown().await?;
            return anyhow::Ok(());
        }
        let commits_before: u64 = cluster.nodes.iter().map(|n| n.metrics().commits.get()).max().unwrap_or(0);

        let bar = ProgressBar::new(total as u64);
        bar.set_style(
            crate::output::progress_style("records committed").expect("template"),
        );
        let latencies = Arc::new(Mutex::new(Vec::new()));
        let refused = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let clock = Instant::now();
        let mut tasks = Vec::new();
        for (r, phone) in phones.into_iter().enumerate() {
            // Each phone starts at its own validator and fails over to the next ones.
            let mut order = addrs.clone();
            order.rotate_left(r % addrs.len());
            let nodes = Nodes::new(&order, &trust, &phone.key)?;
            let (bar, latencies, refused, batch) =
                (bar.clone(), latencies.clone(), refused.clone(), args.batch);
            tasks.push(tokio::spawn(async move {
                let mut records = phone.records;
                while !records.is_empty() {
                    let rest = records.split_off(batch.min(records.len()));
                    let count = records.len() as u64;
                    let sent = Instant::now();
                    let outcomes = nodes.submit(std::mem::replace(&mut records, rest)).await?;
                    let took = sent.elapsed();
                    let bad = outcomes.iter().filter(|o| !matches!(o, Submitted::Committed { .. })).count();
                    refused.fetch_add(bad as u64, std::sync::atomic::Ordering::Relaxed);
                    latencies.lock().expect("latency list").push(took);
                    bar.inc(count);
                }
                nodes.close().await;
                anyhow::Ok(())
            }));
        }
        for task in tasks {
            task.await??;
        }
        let elapsed = clock.elapsed();
        bar.finish_and_clear();
        let commits_after: u64 = cluster.nodes.iter().map(|n| n.metrics().commits.get()).max().unwrap_or(0);
        let mut latencies = latencies.lock().expect("latency list").clone();
        latencies.sort();
        let refused = refused.load(std::sync::atomic::Ordering::Relaxed);
        let committed = total as u64 - refused;
        let blocks = commits_after - commits_before;
        println!(
            "{} validators, {} reporters, {} records in submissions of {}",
            args.nodes, reporters, total, args.batch
        );
        println!(
            "committed {committed} records in {:.2} s: {:.0} records/s ({refused} refused); {blocks} blocks, {:.0} records per block",
            elapsed.as_secs_f64(),
            committed as f64 / elapsed.as_secs_f64(),
            committed as f64 / blocks.max(1) as f64
        );
        println!(
            "commit latency (submit to acknowledgement, per submission): p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
            percentile(&latencies, 0.50).as_secs_f64() * 1e3,
            percentile(&latencies, 0.99).as_secs_f64() * 1e3,
            latencies.last().copied().unwrap_or_default().as_secs_f64() * 1e3
        );
        admin.close().await;
        cluster.shutdown().await?;
        anyhow::Ok(())
    })
}

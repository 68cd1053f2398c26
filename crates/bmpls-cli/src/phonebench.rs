//! `bmpls bench phone`: what reporting costs a phone, counted on the wire. A loopback cluster,
//! one enrolled patient, and the client a phone runs (`bmpls_client::Nodes`, the one the outbox
//! flushes through): bytes and datagrams per fix, QUIC and TLS included, for a phone that wakes
//! for each fix, one that wakes for a batch, and one that keeps its connection open; what the
//! keep-alive costs an idle phone; and the CPU time to build a record here.
//!
//! Bytes are counted by QUIC itself (UDP payloads of every connection the client opened,
//! handshakes and closes included); the IP and UDP headers are added per datagram (IPv4). They
//! depend on the protocol, not on the machine's load. Loopback has no loss, so no
//! retransmission is counted: a lossy mobile link costs more.

use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;

use bmpls_client::Nodes;
use bmpls_net::limits::{KEEP_ALIVE, MAX_SUBMIT_BATCH};
use bmpls_net::{Submitted, WireStats};
use bmpls_types::{ChainId, Transaction};

use crate::ingest::{BENCH_CHAIN, bench_cluster, enrolment, phones};

/// IPv4 and UDP headers of one datagram.
const IP_UDP_HEADER_BYTES: u64 = 28;

/// Options of `bmpls bench phone`.
#[derive(Debug, Args)]
pub struct PhoneBenchArgs {
    /// Validators in the cluster; the phone knows them all, as a patient's configuration does.
    #[arg(long, default_value_t = 4)]
    nodes: usize,
    /// Wake-ups measured in each pattern.
    #[arg(long, default_value_t = 20)]
    wakeups: usize,
    /// Fixes in a batched wake-up (a phone that buffers fixes and sends them together).
    #[arg(long, default_value_t = 20)]
    batch: usize,
    /// Seconds an open connection is left idle to count its keep-alives.
    #[arg(long, default_value_t = 30)]
    idle_s: u64,
}

/// One pattern's totals.
struct Pattern {
    name: String,
    fixes: u64,
    wakeups: u64,
    wire: WireStats,
}

impl Pattern {
    fn row(&self) -> String {
        let fixes = self.fixes.max(1) as f64;
        let wakeups = self.wakeups.max(1) as f64;
        let headers =
            IP_UDP_HEADER_BYTES * (self.wire.sent_datagrams + self.wire.received_datagrams);
        format!(
            "{:<34} {:>9.0} {:>9.0} {:>11.0} {:>9.1} {:>9.1} {:>11.2}",
            self.name,
            self.wire.sent_bytes as f64 / fixes,
            self.wire.received_bytes as f64 / fixes,
            (self.wire.sent_bytes + self.wire.received_bytes + headers) as f64 / fixes,
            self.wire.sent_datagrams as f64 / wakeups,
            self.wire.received_datagrams as f64 / wakeups,
            self.wire.connections as f64 / wakeups,
        )
    }
}

/// Submits `records` and checks each was committed.
async fn send(nodes: &Nodes, records: Vec<Transaction>) -> anyhow::Result<()> {
    for outcome in nodes.submit(records).await? {
        anyhow::ensure!(
            matches!(outcome, Submitted::Committed { .. }),
            "a record was not committed: {outcome:?}"
        );
    }
    Ok(())
}

/// Runs the benchmark.
pub fn run(args: &PhoneBenchArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.nodes >= 1, "--nodes must be at least 1");
    anyhow::ensure!(args.wakeups >= 1, "--wakeups must be at least 1");
    anyhow::ensure!(
        (1..=MAX_SUBMIT_BATCH).contains(&args.batch),
        "--batch must be 1 to {MAX_SUBMIT_BATCH}"
    );
    let chain = ChainId::new(BENCH_CHAIN).expect("a short literal");
    let needed = args.wakeups * (2 + args.batch) + 1;

    // CPU: the records this run sends, built one after another on this thread.
    let started = Instant::now();
    let mut phone = phones(1, needed, &chain)?
        .pop()
        .context("one phone was built")?;
    let per_record = started.elapsed() / needed as u32;

    let dir = tempfile::tempdir()?;
    let runtime = tokio::runtime::Runtime::new()?;
    let patterns = runtime.block_on(async {
        let (cluster, addrs, trust, operator) = bench_cluster(dir.path(), args.nodes, 20).await?;
        let admin = Nodes::new(&addrs, &trust, &operator)?;
        send(&admin, vec![enrolment(&phone, &operator, &chain)]).await?;
        admin.close().await;

        let mut records = std::mem::take(&mut phone.records).into_iter();
        let mut take = |n: usize| records.by_ref().take(n).collect::<Vec<_>>();
        let mut patterns = Vec::new();

        // A phone that wakes for each fix, and one that buffers fixes and wakes for a batch:
        // each wake-up a new connection, the fixes sent, the connection closed.
        let sizes = [
            ("one fix per wake-up".to_string(), 1),
            (format!("{} fixes per wake-up", args.batch), args.batch),
        ];
        for (name, size) in sizes {
            let mut wire = WireStats::default();
            for _ in 0..args.wakeups {
                let nodes = Nodes::new(&addrs, &trust, &phone.key)?;
                send(&nodes, take(size)).await?;
                nodes.close().await;
                wire = wire + nodes.wire().await;
            }
            patterns.push(Pattern {
                name,
                fixes: (args.wakeups * size) as u64,
                wakeups: args.wakeups as u64,
                wire,
            });
        }

        // A phone that keeps its connection: the first fix opens it, the rest are counted.
        let nodes = Nodes::new(&addrs, &trust, &phone.key)?;
        send(&nodes, take(1)).await?;
        let open = nodes.wire().await;
        for _ in 0..args.wakeups {
            send(&nodes, take(1)).await?;
        }
        let sent = nodes.wire().await;
        patterns.push(Pattern {
            name: "one fix per request, kept open".into(),
            fixes: args.wakeups as u64,
            wakeups: args.wakeups as u64,
            wire: sent - open,
        });

        // The same connection left idle: only keep-alives and their acknowledgements.
        tokio::time::sleep(Duration::from_secs(args.idle_s)).await;
        let idle = nodes.wire().await - sent;
        nodes.close().await;
        cluster.shutdown().await?;
        anyhow::Ok((patterns, idle))
    })?;
    let (patterns, idle) = patterns;

    println!(
        "{} validators on loopback; bytes are UDP payloads counted by QUIC (TLS 1.3 and QUIC \
         included), total adds {IP_UDP_HEADER_BYTES} B of IPv4 and UDP headers per datagram",
        args.nodes
    );
    println!(
        "{:<34} {:>9} {:>9} {:>11} {:>9} {:>9} {:>11}",
        "pattern", "up B/fix", "down B/fix", "total B/fix", "dgrams up", "dgrams dn", "handshakes"
    );
    println!(
        "{:<34} {:>9} {:>9} {:>11} {:>9} {:>9} {:>11}",
        "", "", "", "", "/wake-up", "/wake-up", "/wake-up"
    );
    for pattern in &patterns {
        println!("{}", pattern.row());
    }
    let hour = 3600.0 / args.idle_s.max(1) as f64;
    let idle_bytes = idle.sent_bytes
        + idle.received_bytes
        + IP_UDP_HEADER_BYTES * (idle.sent_datagrams + idle.received_datagrams);
    println!(
        "an open, idle connection (keep-alive every {:?}): {} datagrams up and {} down in {} s, \
         {:.0} KiB an hour",
        KEEP_ALIVE,
        idle.sent_datagrams,
        idle.received_datagrams,
        args.idle_s,
        idle_bytes as f64 * hour / 1024.0
    );
    println!(
        "CPU to build a record (6 levels, 3 ORE, sealed, signed) on this machine, one thread: \
         {:.1} µs on average over {needed} (criterion's figure: cargo bench -p bmpls-benches \
         --bench record)",
        per_record.as_secs_f64() * 1e6,
    );
    Ok(())
}

//! The store under a year of one patient's fixes: apply rate, and query latency for `last` and
//! for a 1 km² box at the neighbourhood level over a day and over a month.
//!
//! `cargo bench -p bmpls-benches --bench store` (BMPLS_BENCH_RECORDS=n for fewer than a
//! million records). Each kind of area query runs first on the store opened afresh, so sled's
//! cache is empty, then again from memory; BMPLS_BENCH_DROP_CACHES=1 (Linux, root) also drops
//! the operating system's page cache before each kind, so its first reads come from the disk. Records are real: built by the reporter (six randomised OPE ciphertexts,
//! sealed fix, signature) from a random walk around a home.
#![allow(missing_docs)]

use std::time::{Duration, Instant};

use bmpls_client::{Fix, Reporter, area_query};
use bmpls_crypto::SigningKey;
use bmpls_grid::{LevelSet, cover_lon_lat_box};
use bmpls_it::{TestChain, chain_id};
use bmpls_net::query::Ask;
use bmpls_ope::keys::{MasterSecret, PatientKeys};
use bmpls_ore_compare::TokenRanges;
use bmpls_store::{EpochRanges, OreTokens, Plan, Store};
use bmpls_types::{Epoch, LevelIndex, PatientId, Seq, Transaction, Trigger};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const HOME: (f64, f64) = (53.8008, -1.5491);
const DAY_MS: u64 = 86_400_000;
const START_MS: u64 = 20_454 * DAY_MS; // 2026-01-01
const FIX_INTERVAL_MS: u64 = 30_000;
const NEIGHBOURHOOD: u8 = 2;
const DISTRICT: u8 = 3;

fn main() {
    let records: u64 = std::env::var("BMPLS_BENCH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    // BMPLS_BENCH_PER_BLOCK=n: the patient's records per block (1,000 unless set; a live
    // cluster's blocks, a second apart, carry one fix of each patient every 30th block).
    let per_block: usize = std::env::var("BMPLS_BENCH_PER_BLOCK")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(1000);
    let patient = PatientId([42; 16]);
    let master = MasterSecret::from_bytes([7; 32]);
    let levels = LevelSet::default_levels();
    let mut reporter = Reporter::new(
        chain_id(),
        patient,
        &master,
        SigningKey::from_seed(&[8; 32]),
        levels.clone(),
        DAY_MS,
    )
    .expect("valid reporter");
    let mut rng = StdRng::seed_from_u64(1);

    // BMPLS_BENCH_STORE_DIR keeps the store: a second run with the same directory skips
    // building and applying and measures the queries only.
    let kept = std::env::var_os("BMPLS_BENCH_STORE_DIR").map(std::path::PathBuf::from);
    let temp = tempfile::tempdir().expect("temp dir");
    let dir = kept.clone().unwrap_or_else(|| temp.path().to_path_buf());
    let mut store = Store::open(&dir, &chain_id()).expect("opens");
    if store.tip().expect("tip").0.0 == 0 {
        let started = Instant::now();
        let mut position = HOME;
        let mut heading: f64 = 0.0;
        let mut chain = TestChain::new();
        let mut blocks = Vec::new();
        let mut txs = Vec::with_capacity(per_block);
        for i in 0..records {
            if rng.gen_bool(0.3) {
                heading += rng.gen_range(-0.6..0.6);
                position.0 += 0.00027 * heading.cos();
                position.1 += 0.00045 * heading.sin();
            }
            if (position.0 - HOME.0).abs() > 0.03 || (position.1 - HOME.1).abs() > 0.05 {
                position = HOME;
            }
            let fix = Fix {
                lat: position.0 + rng.gen_range(-0.00002..0.00002),
                lon: position.1 + rng.gen_range(-0.00003..0.00003),
                accuracy_m: 5.0,
                altitude_m: 60.0,
                speed_m_s: 1.0,
                battery_percent: 80,
                trigger: Trigger::Periodic,
                fix_time_ms: START_MS + i * FIX_INTERVAL_MS,
            };
            let record = reporter.build(&fix, Seq(i + 1), &mut rng).expect("builds");
            txs.push(Transaction::Report(record));
            if txs.len() == per_block || i + 1 == records {
                blocks.push(chain.next(std::mem::take(&mut txs)));
            }
        }
        println!(
            "built {records} records in {} blocks in {:.1} s (reporter, certificates)",
            blocks.len(),
            started.elapsed().as_secs_f64()
        );

        let started = Instant::now();
        for (block, cert) in &blocks {
            store.apply_block(block, cert).expect("applies");
        }
        let seconds = started.elapsed().as_secs_f64();
        println!(
            "apply: {:.0} records/s ({:.1} blocks/s of {per_block}, each flushed)",
            records as f64 / seconds,
            blocks.len() as f64 / seconds
        );
        drop(blocks);
    }

    let drop_caches = std::env::var_os("BMPLS_BENCH_DROP_CACHES").is_some_and(|v| v == "1");
    let mut latencies = Vec::new();
    for _ in 0..1000 {
        let t = Instant::now();
        std::hint::black_box(store.last(&patient).expect("answers"));
        latencies.push(t.elapsed());
    }
    report("last", &mut latencies, None);

    let keys = PatientKeys::new(&master, levels.len() as u8).expect("keys");
    let depth = levels.levels()[usize::from(NEIGHBOURHOOD)].depth;
    let (dlat, dlon) = (0.0045, 0.0076); // ±500 m at 53.8° N
    let box_at = |(lat, lon): (f64, f64)| {
        cover_lon_lat_box(lon - dlon, lat - dlat, lon + dlon, lat + dlat, depth, 64)
            .expect("covers")
    };
    // A box the walk never reaches (it starts again from home 3.3 km north): 5.5 km north.
    let far = (HOME.0 + 0.05, HOME.1);
    let days = (records * FIX_INTERVAL_MS / DAY_MS).max(1);
    for (label, centre, span_days, queries) in [
        ("1 km² box, one day", HOME, 1u64, 300),
        ("1 km² box, one month", HOME, 30, 100),
        ("1 km² box never visited, the whole year", far, days, 20),
    ] {
        let cells = box_at(centre);
        // The carer's side: the area's cells as left tokens under each day's key of the
        // window, and the district pre-filter (neighbourhood is an ORE level).
        let mut encrypt = Duration::ZERO;
        let asked: Vec<(u64, u64, Vec<EpochRanges>, OreTokens)> = (0..queries)
            .map(|_| {
                let first = rng.gen_range(0..days.saturating_sub(span_days).max(1));
                let t = Instant::now();
                let epoch = |d: u64| Epoch((START_MS / DAY_MS + d) as u32);
                let ask = area_query(
                    &keys,
                    &levels,
                    NEIGHBOURHOOD,
                    &cells,
                    (epoch(first), epoch(first + span_days - 1)),
                )
                .expect("encrypts");
                let Ask::WithinOre(area) = ask else {
                    panic!("neighbourhood is an ORE level");
                };
                let prefilter = area
                    .prefilter
                    .iter()
                    .map(|e| EpochRanges {
                        epoch: e.epoch,
                        ranges: e.ranges.to_vec(),
                    })
                    .collect();
                let tokens = OreTokens {
                    level: LevelIndex(NEIGHBOURHOOD),
                    by_epoch: area
                        .tokens
                        .iter()
                        .map(|e| {
                            (
                                e.epoch.0,
                                TokenRanges::parse(e.ranges.iter()).expect("tokens"),
                            )
                        })
                        .collect(),
                };
                encrypt += t.elapsed();
                let from = START_MS + first * DAY_MS;
                (from, from + span_days * DAY_MS - 1, prefilter, tokens)
            })
            .collect();
        // First on a store opened afresh, so sled's cache holds none of what it reads (with
        // BMPLS_BENCH_DROP_CACHES=1 the operating system's page cache is dropped too, so the
        // reads come from the disk); then the same queries again, from memory.
        drop(store);
        if drop_caches {
            drop_page_cache();
        }
        store = Store::open(&dir, &chain_id()).expect("reopens");
        for (pass, plan) in [
            ("store reopened", Plan::Auto),
            ("again, cached", Plan::Auto),
            ("cached, time walk forced", Plan::TimeWalk),
            ("cached, zone maps forced", Plan::Zones),
        ] {
            let mut latencies = Vec::new();
            let mut results = Vec::new();
            let disk_before = disk_read_bytes();
            for (from, to, prefilter, tokens) in &asked {
                let t = Instant::now();
                let found = store
                    .within_ore(
                        &patient,
                        LevelIndex(DISTRICT),
                        prefilter,
                        tokens,
                        (*from, *to),
                        1000,
                        plan,
                    )
                    .expect("answers");
                latencies.push(t.elapsed());
                results.push(found.len());
            }
            report(&format!("{label} ({pass})"), &mut latencies, Some(&results));
            if let (Some(before), Some(after)) = (disk_before, disk_read_bytes()) {
                println!(
                    "      read from the disk: {:.0} KiB per query",
                    (after - before) as f64 / 1024.0 / f64::from(queries)
                );
            }
        }
        println!(
            "      carer-side encryption of the ranges: {:.2} ms per query (not in the latency)",
            encrypt.as_secs_f64() * 1e3 / f64::from(queries)
        );
    }
}

/// Bytes this process has caused to be read from storage (Linux's `/proc/self/io`).
fn disk_read_bytes() -> Option<u64> {
    let io = std::fs::read_to_string("/proc/self/io").ok()?;
    io.lines()
        .find_map(|line| line.strip_prefix("read_bytes: "))
        .and_then(|n| n.trim().parse().ok())
}

/// Writes dirty pages out and drops the kernel's clean page cache (Linux, root only).
fn drop_page_cache() {
    let synced = std::process::Command::new("sync").status();
    assert!(synced.is_ok_and(|s| s.success()), "sync failed");
    std::fs::write("/proc/sys/vm/drop_caches", "3")
        .expect("BMPLS_BENCH_DROP_CACHES=1 needs root on Linux");
}

fn report(label: &str, latencies: &mut [Duration], results: Option<&[usize]>) {
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    let extra = results.map_or(String::new(), |r| {
        let mean = r.iter().sum::<usize>() as f64 / r.len() as f64;
        format!(
            ", {mean:.0} records per answer on average, at most {}",
            r.iter().max().unwrap_or(&0)
        )
    });
    println!(
        "{label}: p50 {:?}, p99 {:?}, max {:?}{extra}",
        at(0.5),
        at(0.99),
        latencies[latencies.len() - 1]
    );
}

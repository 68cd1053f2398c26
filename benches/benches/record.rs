//! What one record costs at each end with the default levels (exact, street and neighbourhood
//! under ORE; district, city and region under OPE): the reporter building it (six ciphertexts,
//! the sealed fix, the signature), its encoded size, and a validator testing it against an area's
//! left tokens at neighbourhood (parse the right ciphertext, bisect the token ranges).
//! Run with `cargo bench -p bmpls-benches --bench record -- --warm-up-time 1 --measurement-time 3`.
#![allow(missing_docs)]

use bmpls_client::{Fix, Reporter, area_query};
use bmpls_crypto::SigningKey;
use bmpls_grid::{LevelSet, cover_lon_lat_box};
use bmpls_net::query::Ask;
use bmpls_ope::keys::{MasterSecret, PatientKeys};
use bmpls_ore_compare::{RightCiphertext, TokenRanges};
use bmpls_types::{Canonical, Cell, Epoch, PatientId, Seq, Trigger};
use criterion::{Criterion, criterion_group, criterion_main};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const DAY_MS: u64 = 86_400_000;
const START_MS: u64 = 20_454 * DAY_MS;
const HOME: (f64, f64) = (52.3731, 4.8922);

fn fixes(n: usize, rng: &mut StdRng) -> Vec<Fix> {
    (0..n)
        .map(|i| Fix {
            lat: HOME.0 + rng.gen_range(-0.004..0.004),
            lon: HOME.1 + rng.gen_range(-0.006..0.006),
            accuracy_m: 5.0,
            altitude_m: 2.0,
            speed_m_s: 1.2,
            battery_percent: 80,
            trigger: Trigger::Periodic,
            fix_time_ms: START_MS + i as u64 * 30_000,
        })
        .collect()
}

fn record(c: &mut Criterion) {
    let levels = LevelSet::default_levels();
    let master = MasterSecret::from_bytes([7; 32]);
    let mut reporter = Reporter::new(
        bmpls_it::chain_id(),
        PatientId([1; 16]),
        &master,
        SigningKey::from_seed(&[8; 32]),
        levels.clone(),
        DAY_MS,
    )
    .expect("reporter");
    let mut rng = StdRng::seed_from_u64(1);
    let fixes = fixes(1024, &mut rng);
    let mut seq = 0u64;
    c.bench_function(
        "reporter builds a record (3 ORE + 3 OPE levels, sealed, signed)",
        |b| {
            b.iter(|| {
                seq += 1;
                let fix = &fixes[seq as usize % fixes.len()];
                reporter.build(fix, Seq(seq), &mut rng).expect("record")
            })
        },
    );
    let records: Vec<_> = fixes
        .iter()
        .enumerate()
        .map(|(i, f)| {
            reporter
                .build(f, Seq(i as u64 + 1), &mut rng)
                .expect("record")
        })
        .collect();
    let mut j = 0;
    c.bench_function(
        "a record's digest (what its signature and Merkle leaf cover)",
        |b| {
            b.iter(|| {
                j = (j + 1) % records.len();
                records[j].digest()
            })
        },
    );
    let txs: Vec<_> = records
        .iter()
        .map(|r| bmpls_types::Transaction::Report(r.clone()))
        .collect();
    c.bench_function("a report's transaction hash", |b| {
        b.iter(|| {
            j = (j + 1) % txs.len();
            bmpls_crypto::hash::tx_hash(&txs[j])
        })
    });
    let sizes: Vec<usize> = records.iter().map(|r| r.encode().len()).collect();
    println!(
        "record: {} bytes encoded (ORE right ciphertexts {} + {} + {} bytes)",
        sizes[0],
        records[0].cells[0].ore().map_or(0, <[u8]>::len),
        records[0].cells[1].ore().map_or(0, <[u8]>::len),
        records[0].cells[2].ore().map_or(0, <[u8]>::len),
    );
    // A 1 km² box at neighbourhood: the validator's per-record test.
    let keys = PatientKeys::new(&master, levels.len() as u8).expect("keys");
    let depth = levels.levels()[2].depth;
    let cells = cover_lon_lat_box(4.885, 52.369, 4.900, 52.378, depth, 64).expect("cover");
    let epoch = Epoch((START_MS / DAY_MS) as u32);
    let Ask::WithinOre(area) = area_query(&keys, &levels, 2, &cells, (epoch, epoch)).expect("area")
    else {
        panic!("neighbourhood is an ORE level")
    };
    let tokens = TokenRanges::parse(area.tokens[0].ranges.iter()).expect("tokens");
    println!("area: {} token ranges at neighbourhood", tokens.len());
    let rights: Vec<&[u8]> = records
        .iter()
        .map(|r| match &r.cells[2] {
            Cell::Ore(right) => &right.0[..],
            Cell::Ope(_) => panic!("neighbourhood is an ORE level"),
        })
        .collect();
    let mut i = 0;
    c.bench_function("validator tests a record against an area's tokens", |b| {
        b.iter(|| {
            i = (i + 1) % rights.len();
            let right = RightCiphertext::from_bytes(rights[i]).expect("parses");
            tokens.contains(&right).expect("one domain")
        })
    });
}

criterion_group!(benches, record);
criterion_main!(benches);

//! The store through its public API: applying blocks, reading them back byte for byte, queries
//! against a brute-force filter (also with fix times out of order), typed errors on bad input
//! and on corrupted data.

use std::collections::BTreeMap;

use bmpls_it::{DAY_MS, TestChain, chain_id, record};
use bmpls_store::{EpochRanges, Plan, Store, StoreError};
use bmpls_types::{
    BoundedVec, Cell, ChainId, Epoch, Height, LevelIndex, LocationRecord, OpeCiphertext, PatientId,
    Revoke, Seq, SignatureBytes, Transaction, TxHash,
};
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn open(dir: &tempfile::TempDir) -> Store {
    Store::open(dir.path(), &chain_id()).expect("opens")
}

/// Stores `per_patient` records for each of `patients`, `per_block` per block, fixes every
/// 30 s over a few days; returns every record by patient.
fn fill(
    store: &Store,
    patients: &[PatientId],
    per_patient: u64,
    per_block: usize,
    seed: u64,
) -> BTreeMap<PatientId, Vec<LocationRecord>> {
    let mut rng = StdRng::seed_from_u64(seed);
    let start = 20_000 * DAY_MS;
    let mut txs = Vec::new();
    for seq in 1..=per_patient {
        for p in patients {
            let time = start + seq * 30_000 + rng.gen_range(0..1000);
            txs.push(Transaction::Report(record(*p, seq, time, &mut rng)));
        }
    }
    apply(store, txs, per_block)
}

/// Applies `txs` in blocks of `per_block`; returns the reports by patient.
fn apply(
    store: &Store,
    txs: Vec<Transaction>,
    per_block: usize,
) -> BTreeMap<PatientId, Vec<LocationRecord>> {
    let mut chain = TestChain::resume(store.tip().expect("tip"));
    let mut all: BTreeMap<PatientId, Vec<LocationRecord>> = BTreeMap::new();
    for tx in &txs {
        if let Transaction::Report(r) = tx {
            all.entry(r.patient).or_default().push(r.clone());
        }
    }
    for block in txs.chunks(per_block) {
        let (block, cert) = chain.next(block.to_vec());
        store.apply_block(&block, &cert).expect("applies");
    }
    all
}

#[test]
fn blocks_and_records_read_back_and_the_tip_advances() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open(&dir);
    assert_eq!(store.tip().expect("tip").0, Height(0));
    let patient = PatientId([1; 16]);
    let all = fill(&store, &[patient], 25, 10, 1);
    assert_eq!(store.tip().expect("tip").0, Height(3));
    let block = store.block(Height(2)).expect("reads").expect("exists");
    assert_eq!(block.txs.len(), 10);
    assert!(store.certificate(Height(2)).expect("reads").is_some());
    assert!(store.block(Height(4)).expect("reads").is_none());
    let last = store.last(&patient).expect("reads").expect("exists");
    assert_eq!(&last.record, all[&patient].last().expect("non-empty"));
    assert_eq!(last.height, Height(3));
    let summary = store.summary(&patient).expect("reads").expect("exists");
    assert_eq!((summary.last_seq, summary.count), (Seq(25), 25));
    assert_eq!(
        store.tx_position(&block.txs[3]).expect("reads"),
        Some((Height(2), 3))
    );
    let mut forged = all[&patient][12].clone();
    forged.fix_time_ms += 1;
    assert_eq!(
        store
            .tx_position(&Transaction::Report(forged))
            .expect("reads"),
        None,
        "another record with a stored record's sequence number is not committed"
    );
    assert!(store.last(&PatientId([9; 16])).expect("reads").is_none());
}

#[test]
fn blocks_read_back_equal_with_interleaved_patients_and_other_transactions() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open(&dir);
    let mut rng = StdRng::seed_from_u64(11);
    let patients = [PatientId([1; 16]), PatientId([2; 16]), PatientId([3; 16])];
    let mut chain = TestChain::new();
    let mut blocks = Vec::new();
    let mut next = [1u64; 3];
    for height in 0..6u8 {
        let mut txs = Vec::new();
        // More than one chunk's worth for one patient in some blocks, one record in others.
        for _ in 0..rng.gen_range(1..700) {
            let p = rng.gen_range(0..3);
            let time = 20_000 * DAY_MS + next[p] * 30_000;
            txs.push(Transaction::Report(record(
                patients[p],
                next[p],
                time,
                &mut rng,
            )));
            next[p] += 1;
            if rng.gen_bool(0.01) {
                txs.push(Transaction::Revoke(Revoke {
                    patient: patients[p],
                    grant: TxHash([height; 32]),
                    sig: SignatureBytes([txs.len() as u8; 64]),
                }));
            }
        }
        let (block, cert) = chain.next(txs);
        store.apply_block(&block, &cert).expect("applies");
        blocks.push(block.get().clone());
    }
    drop(store);
    let store = open(&dir);
    for (i, block) in blocks.iter().enumerate() {
        let height = Height(i as u64 + 1);
        assert_eq!(
            store.block(height).expect("reads").as_ref(),
            Some(block.block())
        );
        for (index, tx) in block.txs.iter().enumerate() {
            assert_eq!(
                store.tx_position(tx).expect("reads"),
                Some((height, index as u32))
            );
        }
    }
}

#[test]
fn a_block_that_does_not_extend_the_tip_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open(&dir);
    let mut rng = StdRng::seed_from_u64(2);
    let mut chain = TestChain::new();
    let (first, cert) = chain.next(vec![Transaction::Report(record(
        PatientId([1; 16]),
        1,
        5,
        &mut rng,
    ))]);
    store.apply_block(&first, &cert).expect("applies");
    assert!(matches!(
        store.apply_block(&first, &cert),
        Err(StoreError::NotNext {
            expected: 2,
            got: 1
        })
    ));
    let mut other = TestChain::new();
    other.next(vec![]);
    let (fork, fork_cert) = other.next(vec![]);
    // Height 2, but on another parent.
    assert!(matches!(
        store.apply_block(&fork, &fork_cert),
        Err(StoreError::NotNext { .. })
    ));
    // A record that skips a sequence number.
    let (gap, gap_cert) = chain.next(vec![Transaction::Report(record(
        PatientId([1; 16]),
        3,
        6,
        &mut rng,
    ))]);
    assert!(matches!(
        store.apply_block(&gap, &gap_cert),
        Err(StoreError::Sequence { last: 1, got: 3 })
    ));
    assert_eq!(
        store.tip().expect("tip").0,
        Height(1),
        "a refused block left no trace"
    );
}

#[test]
fn a_store_in_use_says_another_node_is_using_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let first = open(&dir);
    let error = Store::open(dir.path(), &chain_id()).expect_err("locked by the first");
    assert!(
        matches!(&error, StoreError::Locked(path) if path == dir.path()),
        "{error:?}"
    );
    let text = error.to_string();
    assert!(text.starts_with("another node is using"), "{text}");
    assert!(!text.contains("WouldBlock"), "{text}");
    drop(first);
    let log = tempfile::tempdir().expect("temp dir");
    let wal = bmpls_store::FileWal::open(log.path()).expect("opens");
    assert!(
        matches!(
            bmpls_store::FileWal::open(log.path()),
            Err(StoreError::Locked(_))
        ),
        "a log in use is locked too"
    );
    drop(wal);
}

#[test]
fn another_chain_or_schema_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    drop(open(&dir));
    let other = ChainId::new("another-chain").expect("short");
    assert!(matches!(
        Store::open(dir.path(), &other),
        Err(StoreError::ChainMismatch { .. })
    ));
    assert!(Store::open(dir.path(), &chain_id()).is_ok());
}

#[test]
fn a_corrupted_value_is_a_typed_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let patient = PatientId([4; 16]);
    {
        let store = open(&dir);
        fill(&store, &[patient], 5, 2, 3);
    }
    {
        // Damage the chunk holding seqs 1 and 2, and the block, as a bad disk would.
        // The store's sled segment size (`layout.rs`): sled refuses any other.
        let db = sled::Config::new()
            .path(dir.path())
            .segment_size(2 << 20)
            .open()
            .expect("sled opens");
        let tree = db.open_tree("chain").expect("tree");
        let mut record_key = vec![b'R'];
        record_key.extend_from_slice(&patient.0);
        record_key.extend_from_slice(&1u64.to_be_bytes());
        let mut value = tree
            .get(&record_key)
            .expect("reads")
            .expect("exists")
            .to_vec();
        let middle = value.len() / 2;
        value[middle] ^= 0xff;
        tree.insert(&record_key, value).expect("writes");
        let mut block_key = vec![b'B'];
        block_key.extend_from_slice(&1u64.to_be_bytes());
        tree.insert(&block_key, vec![1, 2, 3]).expect("writes");
        // And the index of the last chunk (seq 5): its key starts with `I` and the patient.
        let (index_key, index) = tree
            .scan_prefix([&[b'I'][..], &patient.0].concat())
            .next_back()
            .expect("reads")
            .expect("exists");
        let mut index = index.to_vec();
        let last = index.len() - 1;
        index[last] ^= 0x01;
        tree.insert(index_key, index).expect("writes");
        // And the first zone map.
        let (zone_key, zones) = tree
            .scan_prefix([&[b'Z'][..], &patient.0].concat())
            .next()
            .expect("reads")
            .expect("exists");
        let mut zones = zones.to_vec();
        zones[5] ^= 0x10;
        tree.insert(&zone_key, zones).expect("writes");
        db.flush().expect("flush");
    }
    let store = open(&dir);
    assert!(matches!(
        store.record(&patient, Seq(2)),
        Err(StoreError::Corrupt {
            what: "record chunk",
            ..
        })
    ));
    assert!(matches!(
        store.block(Height(1)),
        Err(StoreError::Corrupt { what: "block", .. })
    ));
    assert!(matches!(
        store.track(&patient, 0, u64::MAX, 100),
        Err(StoreError::Corrupt { .. })
    ));
    assert!(store.record(&patient, Seq(3)).expect("intact").is_some());
    let all_cells = |epoch| EpochRanges {
        epoch: Epoch(epoch),
        ranges: vec![(OpeCiphertext(0), OpeCiphertext(u128::MAX))],
    };
    let last_time = store.last(&patient).expect("reads").expect("exists");
    let ranges = [all_cells(last_time.record.epoch.0)];
    assert!(matches!(
        store.within(
            &patient,
            LevelIndex(0),
            &ranges,
            last_time.record.fix_time_ms,
            u64::MAX,
            100
        ),
        Err(StoreError::Corrupt {
            what: "chunk index",
            ..
        })
    ));
    let first_time = store
        .record(&patient, Seq(3))
        .expect("reads")
        .expect("exists")
        .record;
    assert!(matches!(
        store.within_planned(
            &patient,
            LevelIndex(0),
            &[all_cells(first_time.epoch.0)],
            (0, u64::MAX),
            100,
            Plan::Zones
        ),
        Err(StoreError::Corrupt {
            what: "zone map",
            ..
        })
    ));
}

/// A `within` query's answer under every plan, checked to be the same for all of them.
fn within_every_plan(
    store: &Store,
    patient: &PatientId,
    level: usize,
    ranges: &[EpochRanges],
    (from, to): (u64, u64),
    limit: usize,
) -> Vec<Seq> {
    let answers: Vec<Vec<Seq>> = [Plan::Auto, Plan::TimeWalk, Plan::Zones]
        .into_iter()
        .map(|plan| {
            store
                .within_planned(
                    patient,
                    LevelIndex(level as u8),
                    ranges,
                    (from, to),
                    limit,
                    plan,
                )
                .expect("answers")
                .iter()
                .map(|r| r.record.seq)
                .collect()
        })
        .collect();
    assert_eq!(
        answers[1], answers[2],
        "the time walk and the zone maps differ"
    );
    assert_eq!(answers[0], answers[1], "the planner's answer differs");
    answers.into_iter().next().expect("three answers")
}

/// The brute-force answer of a `within` query: in (time, seq) order.
fn brute(
    records: &[LocationRecord],
    level: usize,
    ranges: &[EpochRanges],
    from: u64,
    to: u64,
) -> Vec<Seq> {
    let mut sorted: Vec<&LocationRecord> = records.iter().collect();
    sorted.sort_by_key(|r| (r.fix_time_ms, r.seq));
    sorted
        .into_iter()
        .filter(|r| (from..=to).contains(&r.fix_time_ms))
        .filter(|r| {
            ranges
                .iter()
                .filter(|e| e.epoch == r.epoch)
                .flat_map(|e| e.ranges.iter())
                .any(|&(lo, hi)| {
                    r.cells
                        .get(level)
                        .and_then(|c| c.ope())
                        .is_some_and(|c| lo <= c && c <= hi)
                })
        })
        .map(|r| r.seq)
        .collect()
}

#[test]
fn queries_equal_brute_force_for_narrow_and_wide_ranges() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open(&dir);
    let patients = [PatientId([1; 16]), PatientId([2; 16]), PatientId([3; 16])];
    let all = fill(&store, &patients, 3000, 500, 7);
    let mut rng = StdRng::seed_from_u64(8);
    for case in 0..200 {
        let patient = patients[case % 3];
        let records = &all[&patient];
        let first = records[0].fix_time_ms;
        let last = records.last().expect("non-empty").fix_time_ms;
        let from = rng.gen_range(first - 10_000..=last);
        let to = rng.gen_range(from..=last + 10_000);
        let track: Vec<Seq> = store
            .track(&patient, from, to, 10_000)
            .expect("answers")
            .iter()
            .map(|r| r.record.seq)
            .collect();
        let expected: Vec<Seq> = records
            .iter()
            .filter(|r| (from..=to).contains(&r.fix_time_ms))
            .map(|r| r.seq)
            .collect();
        assert_eq!(track, expected);
        let level = rng.gen_range(0..bmpls_it::LEVELS);
        // Ranges: narrow (a few records) or wide (most records).
        let width: u128 = if case % 2 == 0 {
            u128::MAX / 2000
        } else {
            u128::MAX / 2
        };
        let epochs: Vec<u32> = (from / DAY_MS..=to / DAY_MS).map(|e| e as u32).collect();
        let ranges: Vec<EpochRanges> = epochs
            .iter()
            .map(|&e| EpochRanges {
                epoch: Epoch(e),
                ranges: (0..3)
                    .map(|_| {
                        let lo: u128 = rng.gen_range(0..u128::MAX - width);
                        (OpeCiphertext(lo), OpeCiphertext(lo + width))
                    })
                    .collect(),
            })
            .collect();
        let expected = brute(records, level, &ranges, from, to);
        for limit in [10_000, 7] {
            let got = within_every_plan(&store, &patient, level, &ranges, (from, to), limit);
            assert_eq!(got, expected[..expected.len().min(limit)], "case {case}");
        }
    }
}

/// Blocks of a few records each, as a live cluster makes them: the small chunks they write are
/// compacted into full ones as each patient's run reaches 128 records. Every block still reads
/// back as it was committed, every record names its own block and position, queries under
/// every plan equal a filter, and few chunks remain.
#[test]
fn small_blocks_are_compacted_without_changing_any_answer() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open(&dir);
    let mut rng = StdRng::seed_from_u64(21);
    let patients = [PatientId([5; 16]), PatientId([6; 16])];
    let base = 20_000 * DAY_MS;
    let mut chain = TestChain::new();
    let mut blocks = Vec::new();
    let mut next = [1u64; 2];
    let mut time = [base; 2];
    while next[0] <= 1500 {
        let mut txs = Vec::new();
        for _ in 0..rng.gen_range(1..=6) {
            let p = rng.gen_range(0..2);
            // Now and then a fix earlier than the last (a phone's clock corrected).
            time[p] = if rng.gen_bool(0.05) {
                time[p].saturating_sub(rng.gen_range(0..600_000)).max(base)
            } else {
                time[p] + rng.gen_range(10_000..60_000)
            };
            let mut r = record(patients[p], next[p], time[p], &mut rng);
            let hour = (time[p] / 3_600_000) as u128;
            r.cells = BoundedVec::new(
                (0..bmpls_it::LEVELS)
                    .map(|_| {
                        Cell::Ope(OpeCiphertext(
                            (hour % 7) << 120 | rng.gen_range(0..1u128 << 100),
                        ))
                    })
                    .collect(),
            )
            .expect("six");
            txs.push(Transaction::Report(r));
            next[p] += 1;
        }
        let (block, cert) = chain.next(txs);
        store.apply_block(&block, &cert).expect("applies");
        blocks.push(block.get().clone());
    }
    drop(store);
    let store = open(&dir);
    let mut records: BTreeMap<PatientId, Vec<LocationRecord>> = BTreeMap::new();
    for (i, block) in blocks.iter().enumerate() {
        let height = Height(i as u64 + 1);
        assert_eq!(
            store.block(height).expect("reads").as_ref(),
            Some(block.block())
        );
        for (index, tx) in block.txs.iter().enumerate() {
            let Transaction::Report(r) = tx else { continue };
            let stored = store
                .record(&r.patient, r.seq)
                .expect("reads")
                .expect("exists");
            assert_eq!(
                (stored.height, stored.index, &stored.record),
                (height, index as u32, r)
            );
            records.entry(r.patient).or_default().push(r.clone());
        }
    }
    for patient in patients {
        let all = &records[&patient];
        let summary = store.summary(&patient).expect("reads").expect("exists");
        assert_eq!(summary.count, all.len() as u64);
        // Without compaction every block's records of a patient would be a chunk of their own
        // (about 700 each); compacted, two per 128 records at most, plus the open run's.
        assert!(
            summary.chunks <= 2 * summary.count / 128 + 128,
            "{} chunks for {} records",
            summary.chunks,
            summary.count
        );
        let (from, to) = (base, base + 2000 * 60_000);
        let track: Vec<Seq> = store
            .track(&patient, from, to, 10_000)
            .expect("reads")
            .iter()
            .map(|r| r.record.seq)
            .collect();
        assert_eq!(track, brute_track(all, from, to));
        for (level, hour) in [(0, 3u128), (2, 5), (5, 0)] {
            let ranges: Vec<EpochRanges> = (from / DAY_MS..=to / DAY_MS)
                .map(|e| EpochRanges {
                    epoch: Epoch(e as u32),
                    ranges: vec![(
                        OpeCiphertext(hour << 120),
                        OpeCiphertext((hour << 120) | (1 << 100)),
                    )],
                })
                .collect();
            let expected = brute(all, level, &ranges, from, to);
            assert!(!expected.is_empty(), "the area is visited");
            for limit in [10_000, 50] {
                let got = within_every_plan(&store, &patient, level, &ranges, (from, to), limit);
                assert_eq!(got, expected[..expected.len().min(limit)]);
            }
        }
    }
}

/// The brute-force answer of a `track` query: in (time, seq) order.
fn brute_track(records: &[LocationRecord], from: u64, to: u64) -> Vec<Seq> {
    let mut sorted: Vec<&LocationRecord> = records
        .iter()
        .filter(|r| (from..=to).contains(&r.fix_time_ms))
        .collect();
    sorted.sort_by_key(|r| (r.fix_time_ms, r.seq));
    sorted.into_iter().map(|r| r.seq).collect()
}

/// A long window (12,000 records over about four days in four blocks: 96 chunks, more than
/// the 64 walked first plus four per zone map) makes the planner walk and then turn to the
/// zone maps.
/// Ciphertexts cluster by hour, as a patient's places do, so the zone maps skip chunks; areas
/// the patient is often in, seldom in, and never in all give the filter's answer under every
/// plan, at any limit.
#[test]
fn long_windows_give_the_same_answers_under_every_plan() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open(&dir);
    let patient = PatientId([9; 16]);
    let mut rng = StdRng::seed_from_u64(12);
    let start = 20_000 * DAY_MS;
    let place = |hour: u64, level: usize| ((hour * 7919 + level as u64 * 104_729) % 1000) as u128;
    let txs: Vec<Transaction> = (1..=12_000u64)
        .map(|seq| {
            let time = start + seq * 30_000;
            let hour = seq / 120;
            let mut r = record(patient, seq, time, &mut rng);
            let cells = (0..bmpls_it::LEVELS)
                .map(|level| {
                    let near = place(hour, level) << 100;
                    Cell::Ope(OpeCiphertext(near + rng.gen_range(0..1u128 << 90)))
                })
                .collect();
            r.cells = BoundedVec::new(cells).expect("six");
            Transaction::Report(r)
        })
        .collect();
    let all = apply(&store, txs, 3000);
    let records = &all[&patient];
    let (from, to) = (start, start + 12_001 * 30_000);
    for level in [0, 2, 5] {
        // Often: the places of many hours; seldom: one hour's; never: between places.
        let often = (0..1000u128)
            .step_by(3)
            .map(|p| (p << 100, (p << 100) + (1 << 99)));
        let seldom = std::iter::once((
            place(40, level) << 100,
            (place(40, level) << 100) + (1 << 95),
        ));
        let never = std::iter::once((1001u128 << 100, 1002u128 << 100));
        let areas: [Vec<(u128, u128)>; 3] = [often.collect(), seldom.collect(), never.collect()];
        for area in areas {
            let ranges: Vec<EpochRanges> = (from / DAY_MS..=to / DAY_MS)
                .map(|e| EpochRanges {
                    epoch: Epoch(e as u32),
                    ranges: area
                        .iter()
                        .map(|&(lo, hi)| (OpeCiphertext(lo), OpeCiphertext(hi)))
                        .collect(),
                })
                .collect();
            let expected = brute(records, level, &ranges, from, to);
            for limit in [10_000, 1000, 7] {
                let got = within_every_plan(&store, &patient, level, &ranges, (from, to), limit);
                assert_eq!(got, expected[..expected.len().min(limit)], "level {level}");
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Random data, random queries at random levels (one past the last: nothing): the store's
    /// answers equal a filter.
    #[test]
    fn random_queries_equal_a_filter(seed in any::<u64>(), count in 1u64..300, level in 0usize..=bmpls_it::LEVELS, a in any::<u128>(), b in any::<u128>(), from in 0u64..400, len in 0u64..400) {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = open(&dir);
        let patient = PatientId([7; 16]);
        let all = fill(&store, &[patient], count, 37, seed);
        let records = &all[&patient];
        let base = records[0].fix_time_ms - 30_000;
        let (from, to) = (base + from * 30_000, base + (from + len) * 30_000);
        let (lo, hi) = (a.min(b), a.max(b));
        let ranges: Vec<EpochRanges> = (from / DAY_MS..=to / DAY_MS)
            .map(|e| EpochRanges { epoch: Epoch(e as u32), ranges: vec![(OpeCiphertext(lo), OpeCiphertext(hi))] })
            .collect();
        let got = within_every_plan(&store, &patient, level, &ranges, (from, to), 10_000);
        prop_assert_eq!(got, brute(records, level, &ranges, from, to));
    }

    /// Fix times that go back now and then (a phone whose clock was corrected): track and
    /// within still equal a filter, at any limit.
    #[test]
    fn queries_equal_a_filter_when_fix_times_go_back(seed in any::<u64>(), count in 1u64..700, per_block in 1usize..400, back in 0.0f64..0.3, level in 0usize..bmpls_it::LEVELS, a in any::<u128>(), b in any::<u128>(), from in 0u64..800, len in 0u64..800, limit in 1usize..300) {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = open(&dir);
        let patient = PatientId([7; 16]);
        let mut rng = StdRng::seed_from_u64(seed);
        let base = 20_000 * DAY_MS;
        let mut time = base;
        let txs: Vec<Transaction> = (1..=count)
            .map(|seq| {
                time = if rng.gen_bool(back) {
                    time.saturating_sub(rng.gen_range(0..3_000_000)).max(base)
                } else {
                    time + rng.gen_range(0..60_000)
                };
                Transaction::Report(record(patient, seq, time, &mut rng))
            })
            .collect();
        let all = apply(&store, txs, per_block);
        let records = &all[&patient];
        let (from, to) = (base + from * 30_000, base + (from + len) * 30_000);
        let (lo, hi) = (a.min(b), a.max(b));
        let ranges: Vec<EpochRanges> = (from / DAY_MS..=to / DAY_MS)
            .map(|e| EpochRanges { epoch: Epoch(e as u32), ranges: vec![(OpeCiphertext(lo), OpeCiphertext(hi))] })
            .collect();
        let got = within_every_plan(&store, &patient, level, &ranges, (from, to), limit);
        let expected = brute(records, level, &ranges, from, to);
        prop_assert_eq!(&got[..], &expected[..expected.len().min(limit)]);
        let everywhere = [EpochRanges { epoch: Epoch((base / DAY_MS) as u32), ranges: vec![(OpeCiphertext(0), OpeCiphertext(u128::MAX))] }];
        let track: Vec<Seq> = store.track(&patient, from, to, limit).expect("answers").iter().map(|r| r.record.seq).collect();
        let expected = brute(records, level, &everywhere, from, to);
        prop_assert_eq!(&track[..], &expected[..expected.len().min(limit)]);
        // The newest fix of the window, not the last record submitted.
        let newest = store.newest(&patient, from, to).expect("answers").map(|r| r.record.seq);
        let expected = records
            .iter()
            .filter(|r| (from..=to).contains(&r.fix_time_ms))
            .max_by_key(|r| (r.fix_time_ms, r.seq))
            .map(|r| r.seq);
        prop_assert_eq!(newest, expected);
    }
}

/// An ORE level's query: a coarse OPE pre-filter finds candidates, a refining test (the token
/// comparison, here a stand-in that keeps every third sequence number, since the store never
/// sees what the test compares) decides; every plan agrees, only accepted records count
/// towards the limit, and the answer equals a filter of every record.
#[test]
fn refined_queries_count_only_accepted_records_under_every_plan() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open(&dir);
    let patients = [PatientId([4; 16]), PatientId([5; 16])];
    let all = fill(&store, &patients, 2000, 400, 9);
    let mut rng = StdRng::seed_from_u64(10);
    let refine = |r: &LocationRecord| r.seq.0 % 3 == 0;
    for case in 0..60 {
        let patient = patients[case % 2];
        let records = &all[&patient];
        let first = records[0].fix_time_ms;
        let last = records.last().expect("non-empty").fix_time_ms;
        let from = rng.gen_range(first..=last);
        let to = rng.gen_range(from..=last + 10_000);
        let level = 3 + case % 3;
        let width = if case % 2 == 0 {
            u128::MAX / 50
        } else {
            u128::MAX / 2
        };
        let ranges: Vec<EpochRanges> = (from / DAY_MS..=to / DAY_MS)
            .map(|e| EpochRanges {
                epoch: Epoch(e as u32),
                ranges: vec![{
                    let lo: u128 = rng.gen_range(0..u128::MAX - width);
                    (OpeCiphertext(lo), OpeCiphertext(lo + width))
                }],
            })
            .collect();
        let expected: Vec<Seq> = brute(records, level, &ranges, from, to)
            .into_iter()
            .filter(|s| s.0 % 3 == 0)
            .collect();
        for limit in [10_000, 5] {
            let answers: Vec<Vec<Seq>> = [Plan::Auto, Plan::TimeWalk, Plan::Zones]
                .into_iter()
                .map(|plan| {
                    store
                        .within_refined(
                            &patient,
                            LevelIndex(level as u8),
                            &ranges,
                            (from, to),
                            limit,
                            plan,
                            Some(&refine),
                        )
                        .expect("answers")
                        .iter()
                        .map(|r| r.record.seq)
                        .collect()
                })
                .collect();
            for (plan, got) in answers.iter().enumerate() {
                assert_eq!(
                    got[..],
                    expected[..expected.len().min(limit)],
                    "case {case}, plan {plan}, limit {limit}"
                );
            }
        }
    }
}

/// A refined query whose pre-filter selects more candidates than a validator compares in one
/// query is refused with a typed error, not run without bound; a shorter window is answered.
#[test]
fn a_refined_query_reads_a_bounded_number_of_candidates() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open(&dir);
    let patient = PatientId([6; 16]);
    let count = bmpls_store::MAX_REFINED_CANDIDATES as u64 + 10_000;
    let all = fill(&store, &[patient], count, 5_000, 11);
    let records = &all[&patient];
    let (first, last) = (
        records[0].fix_time_ms,
        records[records.len() - 1].fix_time_ms,
    );
    let everything = |from: u64, to: u64| -> Vec<EpochRanges> {
        (from / DAY_MS..=to / DAY_MS)
            .map(|e| EpochRanges {
                epoch: Epoch(e as u32),
                ranges: vec![(OpeCiphertext(0), OpeCiphertext(u128::MAX))],
            })
            .collect()
    };
    let nothing = |_: &LocationRecord| false;
    let refused = store.within_refined(
        &patient,
        LevelIndex(3),
        &everything(first, last),
        (first, last),
        10,
        Plan::TimeWalk,
        Some(&nothing),
    );
    assert!(
        matches!(refused, Err(bmpls_store::StoreError::QueryTooLarge(_))),
        "{:?}",
        refused.map(|r| r.len())
    );
    let day = (first, first + DAY_MS - 1);
    let answered = store
        .within_refined(
            &patient,
            LevelIndex(3),
            &everything(day.0, day.1),
            day,
            10,
            Plan::TimeWalk,
            Some(&nothing),
        )
        .expect("a day's candidates are within the bound");
    assert!(answered.is_empty());
}

/// A store installed from a snapshot at height `h` (a wiped validator joining again) holds the
/// base's header and certificate, no block at or below it, continues each patient's numbering
/// from the base, and from then on stores the same blocks and answers the same queries about
/// them as a store that applied the whole chain.
#[test]
fn a_store_started_from_a_snapshot_continues_the_chain_as_a_full_one_does() {
    let patients = [PatientId([1; 16]), PatientId([2; 16])];
    let mut rng = StdRng::seed_from_u64(17);
    let start = 20_000 * DAY_MS;
    let mut txs = Vec::new();
    for seq in 1..=60u64 {
        for p in &patients {
            let time = start + seq * 30_000 + rng.gen_range(0..1000);
            txs.push(Transaction::Report(record(*p, seq, time, &mut rng)));
        }
    }
    let mut chain = TestChain::new();
    let blocks: Vec<_> = txs.chunks(20).map(|b| chain.next(b.to_vec())).collect();
    let (base_at, base_time) = (Height(3), start + 30 * 30_000 + 1000);
    let (full_dir, based_dir) = (
        tempfile::tempdir().expect("temp dir"),
        tempfile::tempdir().expect("temp dir"),
    );
    let full = open(&full_dir);
    for (block, cert) in &blocks {
        full.apply_block(block, cert).expect("applies");
    }
    let based = open(&based_dir);
    let header = full.header(base_at).expect("reads").expect("there");
    let cert = full.certificate(base_at).expect("reads").expect("there");
    // Blocks 1..=3 hold seqs 1..=30 of each patient.
    let last_seqs: Vec<(PatientId, Seq)> = patients.iter().map(|p| (*p, Seq(30))).collect();
    let other_cert = full.certificate(Height(2)).expect("reads").expect("there");
    assert!(matches!(
        based.install_base(&bmpls_store::Base {
            header: &header,
            cert: &other_cert,
            checkpoint: b"state",
            last_seqs: &last_seqs,
        }),
        Err(StoreError::BaseMismatch)
    ));
    let base = bmpls_store::Base {
        header: &header,
        cert: &cert,
        checkpoint: b"state",
        last_seqs: &last_seqs,
    };
    assert!(
        matches!(
            full.install_base(&base),
            Err(StoreError::NotEmpty { tip: 6 })
        ),
        "a store holding blocks takes no snapshot"
    );
    based.install_base(&base).expect("installs");
    assert!(matches!(
        based.install_base(&base),
        Err(StoreError::NotEmpty { tip: 3 })
    ));
    drop(based);
    // Durable, and read back after a reopen.
    let based = open(&based_dir);
    assert_eq!(
        based.tip().expect("tip"),
        (base_at, bmpls_crypto::hash::block_hash(&header))
    );
    assert_eq!(based.base().expect("reads"), Some(header.clone()));
    assert_eq!(full.base().expect("reads"), None);
    assert_eq!(based.header(base_at).expect("reads"), Some(header.clone()));
    assert_eq!(
        based.certificate(base_at).expect("reads"),
        Some(cert.clone())
    );
    assert_eq!(
        based.checkpoint(base_at).expect("reads"),
        Some(b"state".to_vec())
    );
    assert_eq!(based.block(base_at).expect("reads"), None);
    assert_eq!(based.header(Height(2)).expect("reads"), None);
    // Complete only for fixes later than any a block at the base may hold.
    assert_eq!(full.complete_from_ms().expect("reads"), 0);
    assert!(full.before_base().expect("reads").is_none());
    let horizon = header.time_ms + bmpls_types::limits::MAX_FIX_AHEAD_MS + 1;
    assert_eq!(based.complete_from_ms().expect("reads"), horizon);
    assert!(matches!(
        based.before_base().expect("reads"),
        Some(StoreError::BeforeBase { base: 3, complete_from_ms }) if complete_from_ms == horizon
    ));
    for (block, cert) in &blocks[3..] {
        based
            .apply_block(block, cert)
            .expect("continues from the base");
    }
    assert_eq!(based.tip().expect("tip"), full.tip().expect("tip"));
    for height in 4..=6 {
        assert_eq!(
            based.block(Height(height)).expect("reads"),
            full.block(Height(height)).expect("reads"),
            "block {height}"
        );
    }
    for p in &patients {
        assert_eq!(
            based.last(p).expect("reads").map(|r| r.record),
            full.last(p).expect("reads").map(|r| r.record)
        );
        let track = |store: &Store| -> Vec<Seq> {
            store
                .track(p, base_time, u64::MAX, 1000)
                .expect("answers")
                .iter()
                .map(|r| r.record.seq)
                .collect()
        };
        let after = track(&full);
        assert_eq!(after.len(), 30, "the records after the base");
        assert_eq!(track(&based), after);
        let summary = based.summary(p).expect("reads").expect("there");
        assert_eq!((summary.last_seq, summary.count), (Seq(60), 30));
    }

    // Without the patients' numbering at the base, the next block's records do not follow.
    let unseeded_dir = tempfile::tempdir().expect("temp dir");
    let unseeded = open(&unseeded_dir);
    unseeded
        .install_base(&bmpls_store::Base {
            last_seqs: &[],
            ..base
        })
        .expect("installs");
    let (block, cert) = &blocks[3];
    assert!(matches!(
        unseeded.apply_block(block, cert),
        Err(StoreError::Sequence { last: 0, got: 31 })
    ));
}

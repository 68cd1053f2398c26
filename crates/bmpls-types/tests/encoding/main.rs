//! The canonical encoding: round trips, golden bytes, bounds, and total decoding.

mod arb;

use bmpls_types::limits::{MAX_LEVELS, MAX_SEALED_BYTES};
use bmpls_types::{
    Block, BlockHash, BlockHeader, BoundedString, BoundedVec, Canonical, CarerId, Cell, ChainId,
    CommitCertificate, DecodeError, Epoch, FenceRanges, Grant, Hash32, Height, LevelIndex,
    LocationRecord, OpeCiphertext, OreLeft, OreRight, PatientId, Round, Seq, SignatureBytes,
    Signed, Transaction, ValidatorId,
};
use proptest::prelude::*;

fn chain() -> ChainId {
    ChainId::new("encoding-test").expect("short")
}

fn record(seed: u8) -> LocationRecord {
    LocationRecord {
        patient: PatientId([seed; 16]),
        seq: Seq(u64::from(seed) + 1),
        fix_time_ms: 1_790_000_000_000 + u64::from(seed),
        epoch: Epoch(20_717),
        // Three ORE levels (bytes shaped like a right ciphertext's header and body), then
        // three OPE levels.
        cells: BoundedVec::new(
            (0..6u8)
                .map(|i| {
                    if i < 3 {
                        let mut bytes = vec![1, b'R', 50 - 6 * i, 6];
                        bytes.extend((0..40).map(|j| j ^ seed ^ i));
                        Cell::Ore(OreRight(BoundedVec::new(bytes).expect("small")))
                    } else {
                        Cell::Ope(OpeCiphertext(u128::from(i) << 100 | u128::from(seed)))
                    }
                })
                .collect(),
        )
        .expect("six levels"),
        sealed: BoundedVec::new(vec![seed; 80]).expect("small"),
        sig: SignatureBytes([0xa5; 64]),
    }
}

fn grant() -> Grant {
    Grant {
        patient: PatientId([1; 16]),
        carer: CarerId([2; 16]),
        level: LevelIndex(2),
        data_from: Epoch(100),
        data_to: Epoch(465),
        valid_from_ms: 5,
        valid_until_ms: 6,
        purpose: BoundedString::new("telecare monitoring").expect("short"),
        wrapped_keys: BoundedVec::new(vec![7; 300]).expect("small"),
        sig: SignatureBytes([9; 64]),
    }
}

fn block() -> Block {
    Block {
        header: BlockHeader {
            chain_id: ChainId::new("bmpls-test").expect("short"),
            height: Height(7),
            prev_hash: BlockHash([3; 32]),
            time_ms: 1_790_000_000_000,
            proposer: ValidatorId([2; 32]),
            tx_root: Hash32([4; 32]),
            tx_count: 2,
        },
        txs: BoundedVec::new(vec![
            Transaction::Report(record(1)),
            Transaction::Grant(grant()),
        ])
        .expect("two"),
    }
}

/// Golden bytes: the encodings of fixed values, committed, so a change of format is deliberate.
/// Regenerate with `BMPLS_WRITE_GOLDEN=1 cargo test -p bmpls-types --test encoding golden`.
#[test]
fn golden_bytes() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/golden.txt");
    let actual = format!(
        "record {}\ndigest {}\nleaf {}\nblock {}\n",
        hex::encode(record(1).encode()),
        hex::encode(record(1).digest().signing_bytes(&chain())),
        hex::encode(Transaction::Report(record(1)).leaf_bytes()),
        hex::encode(block().encode())
    );
    if std::env::var_os("BMPLS_WRITE_GOLDEN").is_some() {
        std::fs::write(path, &actual).expect("write golden");
    }
    assert_eq!(
        actual,
        std::fs::read_to_string(path).expect("committed golden bytes")
    );
}

#[test]
fn values_round_trip() {
    let r = record(9);
    assert_eq!(LocationRecord::decode(&r.encode()), Ok(r));
    let b = block();
    assert_eq!(Block::decode(&b.encode()), Ok(b));
    let c = CommitCertificate {
        height: Height(7),
        round: Round(1),
        block_hash: BlockHash([5; 32]),
        signatures: BoundedVec::new(vec![(ValidatorId([8; 32]), SignatureBytes([1; 64]))])
            .expect("one"),
    };
    assert_eq!(CommitCertificate::decode(&c.encode()), Ok(c));
}

#[test]
fn malformed_input_is_refused() {
    let bytes = record(3).encode();
    assert_eq!(LocationRecord::decode(&[]), Err(DecodeError::Empty));
    for version in [1, 3] {
        let mut other_version = bytes.clone();
        other_version[0] = version;
        assert_eq!(
            LocationRecord::decode(&other_version),
            Err(DecodeError::Version(version))
        );
    }
    for cut in 1..bytes.len() {
        assert!(
            LocationRecord::decode(&bytes[..cut]).is_err(),
            "truncated at {cut}"
        );
    }
    let mut trailing = bytes.clone();
    trailing.push(0);
    assert!(matches!(
        LocationRecord::decode(&trailing),
        Err(DecodeError::Malformed { .. })
    ));
    let huge = vec![1u8; bmpls_types::limits::MAX_TX_BYTES + 1];
    assert!(matches!(
        LocationRecord::decode(&huge),
        Err(DecodeError::TooLarge { .. })
    ));
    // An unknown transaction kind.
    let mut tx = Transaction::Report(record(3)).encode();
    tx[1] = 200;
    assert!(matches!(
        Transaction::decode(&tx),
        Err(DecodeError::Malformed { .. })
    ));
}

#[test]
fn a_length_prefix_over_the_bound_is_refused_before_reading() {
    // patient, seq, time, epoch, then a cell count of 2^32 − 1.
    let mut bytes = vec![bmpls_types::WIRE_VERSION];
    bytes.extend_from_slice(&[0; 16 + 8 + 8 + 4]);
    bytes.extend_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(
        LocationRecord::decode(&bytes),
        Err(DecodeError::Malformed { .. })
    ));
    // Seventeen levels: one over the limit.
    let mut bytes = vec![bmpls_types::WIRE_VERSION];
    bytes.extend_from_slice(&[0; 16 + 8 + 8 + 4]);
    bytes.extend_from_slice(&((MAX_LEVELS + 1) as u32).to_le_bytes());
    bytes.extend_from_slice(&vec![0; 16 * (MAX_LEVELS + 1)]);
    assert!(LocationRecord::decode(&bytes).is_err());
    assert!(BoundedVec::<u8, MAX_SEALED_BYTES>::new(vec![0; MAX_SEALED_BYTES + 1]).is_err());
}

#[test]
fn signing_bytes_cover_everything_but_the_signature_under_a_tag() {
    let mut r = record(4);
    let before = r.signing_bytes(&chain());
    assert!(before.starts_with(LocationRecord::TAG));
    *r.signature_mut() = SignatureBytes([0x11; 64]);
    assert_eq!(
        r.signing_bytes(&chain()),
        before,
        "the signature is not covered"
    );
    r.seq = Seq(99);
    assert_ne!(r.signing_bytes(&chain()), before, "a field is not covered");
    let g = grant();
    assert!(g.signing_bytes(&chain()).starts_with(Grant::TAG));
    assert_ne!(Grant::TAG, LocationRecord::TAG);
}

proptest! {
    #[test]
    fn records_round_trip(r in arb::record()) {
        let bytes = r.encode();
        prop_assert_eq!(LocationRecord::decode(&bytes), Ok(r.clone()));
        prop_assert_eq!(Transaction::decode(&Transaction::Report(r.clone()).encode()), Ok(Transaction::Report(r)));
    }

    #[test]
    fn transactions_and_blocks_round_trip(block in arb::block()) {
        for tx in block.txs.iter() {
            prop_assert_eq!(Transaction::decode(&tx.encode()), Ok(tx.clone()));
        }
        prop_assert_eq!(Block::decode(&block.encode()), Ok(block));
    }

    /// Every signed type ends with its signature, so the signed bytes are the tag, a zero, then
    /// the encoding without its last 64 bytes: nothing but the signature is left uncovered.
    #[test]
    fn signatures_cover_every_other_byte(tx in arb::transaction()) {
        // A report is signed through its record's digest (the next property).
        prop_assume!(!matches!(tx, Transaction::Report(_)));
        let encoded = tx.encode();
        let body = &encoded[1..];
        let signed = tx.signing_bytes(&chain());
        prop_assert!(signed.ends_with(&body[1..body.len() - 64]), "covers the fields");
        prop_assert_ne!(signed, tx.signing_bytes(&ChainId::new("other").expect("short")), "covers the chain");
        prop_assert_eq!(&body[body.len() - 64..], &tx.signature().0[..]);
    }

    /// A record's signature covers its digest, and the digest every field but the signature:
    /// a change to any ciphertext, the sealed fix or a field in the clear changes what is signed,
    /// and every view of the record gives the same digest.
    #[test]
    fn a_record_signature_covers_every_level_and_the_sealed_fix(
        r in arb::record(),
        which in 0usize..64,
        flip in 1u8..=255,
    ) {
        let signed = r.signing_bytes(&chain());
        prop_assert_eq!(&signed, &r.digest().signing_bytes(&chain()));
        for level in 0..=r.cells.len() as u8 {
            prop_assert_eq!(r.view(LevelIndex(level)).digest(), Some(r.digest()));
        }
        let mut changed = r.clone();
        if r.cells.is_empty() || which % 2 == 0 {
            let mut sealed = changed.sealed.to_vec();
            if sealed.is_empty() {
                sealed.push(flip);
            } else {
                let i = which % sealed.len();
                sealed[i] ^= flip;
            }
            changed.sealed = BoundedVec::new(sealed).expect("same length or one byte");
        } else {
            let mut cells = changed.cells.to_vec();
            let i = which % cells.len();
            match &mut cells[i] {
                Cell::Ope(c) => c.0 ^= u128::from(flip),
                Cell::Ore(r) => {
                    let mut bytes = r.0.to_vec();
                    match bytes.first_mut() {
                        Some(b) => *b ^= flip,
                        None => bytes.push(flip),
                    }
                    r.0 = BoundedVec::new(bytes).expect("same length or one byte");
                }
            }
            changed.cells = BoundedVec::new(cells).expect("same length");
        }
        prop_assert_ne!(changed.signing_bytes(&chain()), signed);
        let mut later = r.clone();
        later.fix_time_ms ^= u64::from(flip);
        prop_assert_ne!(later.signing_bytes(&chain()), r.signing_bytes(&chain()));
    }

    /// Random bytes, with and without a valid version byte in front, give a value or an error.
    #[test]
    fn random_bytes_decode_or_fail_without_panic(
        body in proptest::collection::vec(any::<u8>(), 0..600),
    ) {
        let versioned = [&[bmpls_types::WIRE_VERSION][..], &body].concat();
        for bytes in [&body, &versioned] {
            let _ = LocationRecord::decode(bytes);
            let _ = Transaction::decode(bytes);
            let _ = Block::decode(bytes);
            let _ = BlockHeader::decode(bytes);
            let _ = CommitCertificate::decode(bytes);
        }
    }

    /// Valid encodings of any transaction, cut, extended or with bytes changed, inserted or
    /// removed, decode to nothing or to a value whose encoding is exactly those bytes.
    #[test]
    fn mutated_transactions_fail_or_stay_canonical(
        tx in arb::transaction(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0..4u8), 1..4),
    ) {
        let mut bytes = tx.encode();
        for (at, value, kind) in edits {
            let i = at.index(bytes.len());
            match kind {
                0 => bytes[i] = value,
                1 => bytes.insert(i, value),
                2 => { bytes.remove(i); }
                _ => bytes.truncate(i),
            }
            if bytes.is_empty() {
                break;
            }
        }
        if let Ok(decoded) = Transaction::decode(&bytes) {
            prop_assert_eq!(decoded.encode(), bytes);
        }
    }

    /// Whatever decodes re-encodes to the same bytes (the encoding is canonical): valid block
    /// bytes with one byte changed either fail or decode to a value that encodes back to them.
    #[test]
    fn decoding_is_canonical(position in any::<prop::sample::Index>(), value in any::<u8>()) {
        let mut bytes = block().encode();
        let i = position.index(bytes.len() - 1) + 1;
        bytes[i] = value;
        if let Ok(decoded) = Block::decode(&bytes) {
            prop_assert_eq!(decoded.encode(), bytes);
        }
    }
}

#[test]
fn an_exact_fix_prints_no_position() {
    let fix = bmpls_types::ExactFix {
        lat_e7: 538_008_123,
        lon_e7: -15_491_456,
        accuracy_cm: 500,
        altitude_cm: 6_300,
        speed_cm_s: 120,
        battery_percent: 77,
        trigger: bmpls_types::Trigger::Fall,
        fix_time_ms: 1_790_000_000_000,
    };
    let printed = format!("{fix:?}");
    assert!(!printed.contains("538008123") && !printed.contains("15491456"));
    assert!(printed.contains("Fall"));
    assert_eq!(
        borsh::to_vec(&fix).expect("encodes").len(),
        bmpls_types::ExactFix::ENCODED_LEN
    );
}

/// The largest value of each kind that the field bounds allow still fits its byte limit, so
/// every value that can be built can also be decoded.
#[test]
fn the_largest_values_fit_their_byte_limits() {
    use bmpls_types::limits::*;
    use bmpls_types::{FenceEpoch, SetFence};
    fn check<T: Canonical + PartialEq + std::fmt::Debug>(value: T) {
        let bytes = value.encode();
        assert!(
            bytes.len() <= T::MAX_BYTES,
            "{} is {} bytes",
            T::NAME,
            bytes.len()
        );
        assert_eq!(T::decode(&bytes), Ok(value));
    }
    let mut big_grant = grant();
    big_grant.purpose = BoundedString::new("é".repeat(MAX_PURPOSE_BYTES / 2)).expect("fits");
    big_grant.wrapped_keys = BoundedVec::new(vec![7; MAX_WRAPPED_KEY_BYTES]).expect("fits");
    check(Transaction::Grant(big_grant));
    let epoch = FenceEpoch {
        epoch: Epoch(1),
        ranges: FenceRanges::Ope(
            BoundedVec::new(vec![(OpeCiphertext(1), OpeCiphertext(2)); MAX_FENCE_RANGES])
                .expect("fits"),
        ),
    };
    // An ORE fence's one epoch of the most ranges of the longest tokens fits a transaction.
    let token = OreLeft(BoundedVec::new(vec![3; MAX_ORE_LEFT_BYTES]).expect("fits"));
    check(Transaction::SetFence(SetFence {
        patient: PatientId([1; 16]),
        carer: CarerId([2; 16]),
        level: LevelIndex(0),
        epochs: BoundedVec::new(vec![FenceEpoch {
            epoch: Epoch(1),
            ranges: FenceRanges::Ore(
                BoundedVec::new(vec![(token.clone(), token); MAX_ORE_FENCE_RANGES]).expect("fits"),
            ),
        }])
        .expect("fits"),
        debounce: 3,
        expected_interval_ms: 30_000,
        sig: SignatureBytes([1; 64]),
    }));
    check(Transaction::SetFence(SetFence {
        patient: PatientId([1; 16]),
        carer: CarerId([2; 16]),
        level: LevelIndex(0),
        epochs: BoundedVec::new(vec![epoch; MAX_FENCE_EPOCHS]).expect("fits"),
        debounce: 3,
        expected_interval_ms: 30_000,
        sig: SignatureBytes([1; 64]),
    }));
    let mut big_record = record(1);
    let right = OreRight(BoundedVec::new(vec![9; MAX_ORE_RIGHT_BYTES]).expect("fits"));
    big_record.cells = BoundedVec::new(vec![Cell::Ore(right); MAX_LEVELS]).expect("fits");
    big_record.sealed = BoundedVec::new(vec![1; MAX_SEALED_BYTES]).expect("fits");
    check(Transaction::Report(big_record.clone()));
    check(big_record);
    let mut header = block().header;
    header.chain_id = ChainId::new("c".repeat(MAX_CHAIN_ID_BYTES)).expect("fits");
    check(header);
    check(CommitCertificate {
        height: Height(u64::MAX),
        round: Round(u32::MAX),
        block_hash: BlockHash([5; 32]),
        signatures: BoundedVec::new(vec![
            (ValidatorId([8; 32]), SignatureBytes([1; 64]));
            MAX_VALIDATORS
        ])
        .expect("fits"),
    });
}

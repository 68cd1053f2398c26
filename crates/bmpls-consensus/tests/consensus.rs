//! The pure parts of consensus: genesis loading, message encoding, the ledger's rules and the
//! mempool.

use bmpls_consensus::{
    BlockRefusal, ConfigError, Genesis, Ledger, Mempool, Message, Refusal, TxRefusal, WalRecord,
};
use bmpls_crypto::SigningKey;
use bmpls_types::{
    BoundedVec, Canonical, EnrolPatient, Epoch, LocationRecord, OpeCiphertext, PatientId,
    PublicKeyBytes, Seq, SignatureBytes, Transaction,
};
use proptest::prelude::*;

mod verdicts;

const GENESIS: &str = include_str!("../../../config/genesis.toml");

/// The shipped genesis's chain, which every test transaction is signed for.
fn chain() -> bmpls_types::ChainId {
    genesis().validators.crypto().chain_id().clone()
}

fn genesis() -> Genesis {
    Genesis::from_toml(GENESIS).expect("the shipped genesis loads")
}

fn field_error(text: &str) -> String {
    match Genesis::from_toml(text) {
        Err(ConfigError::Field { field, .. }) => field,
        other => panic!("expected a field error, got {other:?}"),
    }
}

#[test]
fn the_shipped_genesis_names_four_validators_from_the_development_seeds() {
    let g = genesis();
    assert_eq!(g.validators.validators().len(), 4);
    for seed in 1u8..=4 {
        let id = bmpls_types::ValidatorId(SigningKey::from_seed(&[seed; 32]).public().0);
        assert!(g.validators.contains(&id), "seed {seed}");
    }
}

#[test]
fn a_bad_genesis_names_its_field() {
    assert_eq!(
        field_error(&GENESIS.replacen("power = 1", "power = 0", 1)),
        "validator[0] (node1).power"
    );
    assert_eq!(
        field_error(&GENESIS.replacen("key = \"8a88", "key = \"zz88", 1)),
        "validator[0] (node1).key"
    );
    assert_eq!(
        field_error(&GENESIS.replace("propose_ms = 1000", "propose_ms = 0")),
        "consensus.timeouts.propose_ms"
    );
    assert_eq!(
        field_error(&GENESIS.replace("max_block_txs = 5000", "max_block_txs = 20000")),
        "consensus.max_block_txs"
    );
    assert_eq!(
        field_error(&GENESIS.replace("chain_id = \"bmpls-dev\"", "chain_id = \"\"")),
        "chain_id"
    );
    assert!(matches!(
        Genesis::from_toml("chain_id = 3"),
        Err(ConfigError::Parse(_))
    ));
    // The same key twice is refused.
    let twice = GENESIS.replacen(
        "8139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b394",
        "8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c",
        1,
    );
    assert_eq!(field_error(&twice), "validator");
}

struct Patient {
    id: PatientId,
    reporter: SigningKey,
}

fn enrol(ledger: &mut Ledger, operator: &SigningKey) -> Patient {
    let reporter = SigningKey::from_seed(&[42; 32]);
    let mut tx = EnrolPatient {
        patient: PatientId([7; 16]),
        reporter_key: reporter.public(),
        custodian_key: SigningKey::from_seed(&[43; 32]).public(),
        level_count: 2,
        ore_levels: 0,
        epoch_length_ms: 86_400_000,
        operator: PublicKeyBytes(operator.public().0),
        sig: SignatureBytes::UNSIGNED,
    };
    operator.sign(&mut tx, &chain());
    let mut pool = Mempool::new(10, 1 << 20);
    pool.admit(Transaction::EnrolPatient(tx.clone()), ledger)
        .expect("an operator enrols");
    let block = one_block(ledger, vec![Transaction::EnrolPatient(tx)], operator);
    ledger
        .check_block(&block, 1000, block.header.time_ms)
        .expect("valid block");
    ledger.apply(
        &block.clone().into(),
        bmpls_crypto::hash::block_hash(&block.header),
    );
    Patient {
        id: PatientId([7; 16]),
        reporter,
    }
}

fn one_block(ledger: &Ledger, txs: Vec<Transaction>, proposer: &SigningKey) -> bmpls_types::Block {
    bmpls_types::Block {
        header: bmpls_types::BlockHeader {
            chain_id: ledger.chain_id().clone(),
            height: bmpls_types::Height(ledger.height().0 + 1),
            prev_hash: ledger.tip(),
            time_ms: ledger.tip_time_ms() + 1,
            proposer: bmpls_types::ValidatorId(proposer.public().0),
            tx_root: bmpls_crypto::merkle::tx_root(&txs),
            tx_count: txs.len() as u32,
        },
        txs: BoundedVec::new(txs).expect("small"),
    }
}

fn report(patient: &Patient, seq: u64, levels: usize) -> Transaction {
    let mut record = LocationRecord {
        patient: patient.id,
        seq: Seq(seq),
        fix_time_ms: seq * 30_000,
        epoch: Epoch(0),
        cells: BoundedVec::new(vec![
            bmpls_types::Cell::Ope(OpeCiphertext(seq.into()));
            levels
        ])
        .expect("few"),
        sealed: BoundedVec::empty(),
        sig: SignatureBytes::UNSIGNED,
    };
    patient.reporter.sign(&mut record, &chain());
    Transaction::Report(record)
}

#[test]
fn the_mempool_admits_reports_in_sequence_and_refuses_replays_gaps_and_forgeries() {
    let g = genesis();
    let mut ledger = Ledger::genesis(g.validators.clone(), g.genesis_time_ms);
    let operator = SigningKey::from_seed(&[1; 32]);
    let patient = enrol(&mut ledger, &operator);
    let mut pool = Mempool::new(100, 1 << 20);
    pool.admit(report(&patient, 1, 2), &ledger)
        .expect("first report");
    pool.admit(report(&patient, 2, 2), &ledger)
        .expect("second, in flight");
    let replay = pool
        .admit(report(&patient, 2, 2), &ledger)
        .expect_err("replayed");
    assert!(
        matches!(replay, Refusal::Rule(TxRefusal::Duplicate(_))),
        "{replay}"
    );
    let gap = pool
        .admit(report(&patient, 5, 2), &ledger)
        .expect_err("gap");
    assert!(
        matches!(
            gap,
            Refusal::Rule(TxRefusal::Sequence {
                expected: 3,
                got: 5,
                ..
            })
        ),
        "{gap}"
    );
    let levels = pool
        .admit(report(&patient, 3, 3), &ledger)
        .expect_err("levels");
    assert!(
        matches!(levels, Refusal::Rule(TxRefusal::Levels { .. })),
        "{levels}"
    );
    let mut forged = report(&patient, 3, 2);
    if let Transaction::Report(r) = &mut forged {
        r.fix_time_ms += 1;
    }
    assert_eq!(
        pool.admit(forged, &ledger),
        Err(Refusal::Rule(TxRefusal::BadSignature))
    );
    let stranger = Patient {
        id: PatientId([9; 16]),
        reporter: SigningKey::from_seed(&[44; 32]),
    };
    assert!(matches!(
        pool.admit(report(&stranger, 1, 2), &ledger),
        Err(Refusal::Rule(TxRefusal::UnknownPatient(_)))
    ));

    // The proposer takes both reports; once committed, a replay of either is refused.
    let txs = pool.take_block(&ledger, ledger.tip_time_ms() + 1, 100, 1 << 20);
    assert_eq!(txs.len(), 2);
    let block = one_block(&ledger, txs, &operator);
    ledger
        .check_block(&block, 1000, block.header.time_ms)
        .expect("valid");
    ledger.apply(
        &block.clone().into(),
        bmpls_crypto::hash::block_hash(&block.header),
    );
    pool.on_commit(&block.clone().into(), &ledger);
    assert!(pool.is_empty());
    assert!(matches!(
        pool.admit(report(&patient, 1, 2), &ledger),
        Err(Refusal::Rule(TxRefusal::Sequence {
            expected: 3,
            got: 1,
            ..
        }))
    ));
}

/// `report` with its fix time set to `fix_time_ms`, signed again.
fn report_at(patient: &Patient, seq: u64, fix_time_ms: u64) -> Transaction {
    let Transaction::Report(mut record) = report(patient, seq, 2) else {
        unreachable!("a report")
    };
    record.fix_time_ms = fix_time_ms;
    patient.reporter.sign(&mut record, &chain());
    Transaction::Report(record)
}

#[test]
fn fix_times_far_ahead_of_the_block_time_are_refused() {
    let g = genesis();
    let mut ledger = Ledger::genesis(g.validators.clone(), g.genesis_time_ms);
    let operator = SigningKey::from_seed(&[1; 32]);
    let patient = enrol(&mut ledger, &operator);
    let block_time = ledger.tip_time_ms() + 1;
    let latest = block_time + bmpls_types::limits::MAX_FIX_AHEAD_MS;
    // OwnTracks seconds read as milliseconds, ×1000 again: the year 58,900.
    let year_58900 = 1_795_000_000_000_000;

    // The ledger refuses the block, whatever the validator's clock says (only the block's
    // time counts), and accepts a fix at the limit.
    let ahead = one_block(&ledger, vec![report_at(&patient, 1, latest + 1)], &operator);
    assert_eq!(ahead.header.time_ms, block_time);
    let refusal = ledger
        .check_block(&ahead, u64::MAX, year_58900)
        .expect_err("a fix time a day and a millisecond ahead");
    assert!(
        matches!(
            refusal,
            BlockRefusal::Tx {
                index: 0,
                refusal: TxRefusal::FixTimeAhead { seq: 1, .. }
            }
        ),
        "{refusal}"
    );
    assert!(
        refusal.to_string().contains("Unix milliseconds"),
        "{refusal}"
    );
    let at_limit = one_block(&ledger, vec![report_at(&patient, 1, latest)], &operator);
    ledger
        .check_block(&at_limit, u64::MAX, block_time)
        .expect("a fix time a day ahead is allowed");

    // The pool refuses it once it knows the clock, and the proposer leaves out what an
    // unclocked pool took, with the reports after it.
    let mut pool = Mempool::new(100, 1 << 20);
    pool.admit(report_at(&patient, 1, year_58900), &ledger)
        .expect("a pool without a clock checks no time");
    pool.admit(report_at(&patient, 2, block_time), &ledger)
        .expect("the next report");
    assert!(
        pool.take_block(&ledger, block_time, 100, 1 << 20)
            .is_empty()
    );
    let mut clocked = Mempool::new(100, 1 << 20);
    clocked.set_clock(block_time);
    assert!(matches!(
        clocked.admit(report_at(&patient, 1, year_58900), &ledger),
        Err(Refusal::Rule(TxRefusal::FixTimeAhead { .. }))
    ));
    clocked
        .admit(report_at(&patient, 1, latest), &ledger)
        .expect("at the limit");
}

#[test]
fn a_full_mempool_refuses_with_a_typed_error() {
    let g = genesis();
    let mut ledger = Ledger::genesis(g.validators.clone(), g.genesis_time_ms);
    let patient = enrol(&mut ledger, &SigningKey::from_seed(&[1; 32]));
    let mut pool = Mempool::new(1, 1 << 20);
    pool.admit(report(&patient, 1, 2), &ledger)
        .expect("room for one");
    assert!(matches!(
        pool.admit(report(&patient, 2, 2), &ledger),
        Err(Refusal::Full { txs: 1, .. })
    ));
}

#[test]
fn blocks_breaking_a_rule_are_refused_by_every_validator() {
    let g = genesis();
    let mut ledger = Ledger::genesis(g.validators.clone(), g.genesis_time_ms);
    let operator = SigningKey::from_seed(&[1; 32]);
    let patient = enrol(&mut ledger, &operator);
    let check = |txs: Vec<Transaction>| {
        let block = one_block(&ledger, txs, &operator);
        ledger.check_block(&block, 1000, block.header.time_ms)
    };
    assert!(check(vec![report(&patient, 1, 2), report(&patient, 2, 2)]).is_ok());
    assert!(check(vec![report(&patient, 2, 2)]).is_err(), "a gap");
    assert!(
        check(vec![report(&patient, 1, 2), report(&patient, 1, 2)]).is_err(),
        "a repeat"
    );
    // An enrolment signed by someone who is not a validator.
    let outsider = SigningKey::from_seed(&[99; 32]);
    let mut tx = EnrolPatient {
        patient: PatientId([8; 16]),
        reporter_key: outsider.public(),
        custodian_key: outsider.public(),
        level_count: 2,
        ore_levels: 0,
        epoch_length_ms: 1,
        operator: PublicKeyBytes(outsider.public().0),
        sig: SignatureBytes::UNSIGNED,
    };
    outsider.sign(&mut tx, &chain());
    assert!(check(vec![Transaction::EnrolPatient(tx)]).is_err());
    // A report signed for another chain (staging's, replayed on this one): by the patient's own
    // key, yet refused by the block check and by the mempool.
    let Transaction::Report(mut record) = report(&patient, 1, 2) else {
        unreachable!("a report")
    };
    patient.reporter.sign(
        &mut record,
        &bmpls_types::ChainId::new("bmpls-staging").expect("short"),
    );
    let staging = Transaction::Report(record);
    assert!(
        check(vec![staging.clone()]).is_err(),
        "another chain's signature"
    );
    assert!(
        Mempool::new(10, 1 << 20).admit(staging, &ledger).is_err(),
        "the mempool refuses it too"
    );
    // A wrong root.
    let mut block = one_block(&ledger, vec![report(&patient, 1, 2)], &operator);
    block.header.tx_root.0[0] ^= 1;
    assert!(
        ledger
            .check_block(&block, 1000, block.header.time_ms)
            .is_err()
    );
    // A time far ahead of the validator's clock.
    let block = one_block(&ledger, vec![], &operator);
    assert!(
        ledger
            .check_block(&block, 1000, block.header.time_ms - 5_000)
            .is_err()
    );
}

#[test]
fn messages_and_log_entries_round_trip() {
    let message = Message::SyncRequest(bmpls_consensus::Height(7));
    assert_eq!(
        Message::decode(&message.encode()).expect("decodes"),
        message
    );
    let record = WalRecord::Timeout(1, 3);
    assert_eq!(
        WalRecord::decode(&record.encode()).expect("decodes"),
        record
    );
}

proptest! {
    #[test]
    fn garbage_never_decodes_into_a_message_by_accident(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        // Any input gives a value or a typed error, never a panic; and a value re-encodes to
        // the same bytes (the encoding is canonical).
        if let Ok(message) = Message::decode(&bytes) {
            prop_assert_eq!(message.encode(), bytes);
        }
    }
}

fn forged(patient: &Patient, seq: u64) -> Transaction {
    let Transaction::Report(mut record) = report(patient, seq, 2) else {
        unreachable!("report() makes reports")
    };
    record.sig.0[0] ^= 1;
    Transaction::Report(record)
}

#[test]
fn a_batch_admission_refuses_exactly_the_forgery() {
    let g = genesis();
    let mut ledger = Ledger::genesis(g.validators.clone(), g.genesis_time_ms);
    let operator = SigningKey::from_seed(&[1; 32]);
    let patient = enrol(&mut ledger, &operator);
    let mut pool = Mempool::new(100, 1 << 20);
    let all_good = pool.admit_all(
        vec![report(&patient, 1, 2), report(&patient, 2, 2)],
        &ledger,
    );
    assert!(all_good.iter().all(Result::is_ok), "{all_good:?}");
    // The batch fails as a whole; each is then checked alone, and only the forgery is refused.
    let mixed = pool.admit_all(
        vec![
            report(&patient, 3, 2),
            forged(&patient, 4),
            report(&patient, 4, 2),
        ],
        &ledger,
    );
    assert!(mixed[0].is_ok());
    assert_eq!(
        mixed[1],
        Err(bmpls_consensus::Refusal::Rule(TxRefusal::BadSignature))
    );
    assert!(mixed[2].is_ok(), "{mixed:?}");
    assert_eq!(pool.len(), 4);
}

#[test]
fn a_block_check_skips_only_signatures_verified_under_the_required_key() {
    let g = genesis();
    let mut ledger = Ledger::genesis(g.validators.clone(), g.genesis_time_ms);
    let operator = SigningKey::from_seed(&[1; 32]);
    let patient = enrol(&mut ledger, &operator);
    let good = report(&patient, 1, 2);
    let bad = forged(&patient, 1);
    let hash_of_bad = bmpls_crypto::hash::tx_hash(&bad);
    let check = |tx: &Transaction, known: Option<PublicKeyBytes>| {
        let block = one_block(&ledger, vec![tx.clone()], &operator);
        ledger.check_block_known(&block.clone().into(), 1000, block.header.time_ms, |h| {
            (*h == hash_of_bad).then_some(known).flatten()
        })
    };
    assert!(check(&good, None).is_ok());
    assert!(
        check(&bad, None).is_err(),
        "an unknown forgery is verified and refused"
    );
    // Vouched for under another key than the patient's reporter key: verified anyway.
    assert!(check(&bad, Some(operator.public())).is_err());
    // Vouched for under the required key: the mempool verified it, the check trusts that.
    assert!(check(&bad, Some(patient.reporter.public())).is_ok());
}

/// A patient enrolled with its finest level under ORE: a report must carry an ORE right
/// ciphertext there and OPE ciphertexts above, or the mempool and the block check refuse it; a
/// fence at the ORE level must be ORE tokens of one domain, at an OPE level OPE bounds.
#[test]
fn records_and_fences_follow_the_schemes_the_enrolment_names() {
    use bmpls_ore_compare::{Domain, LeftBlock, LeftCiphertext};
    use bmpls_types::{Cell, FenceEpoch, FenceRanges, LevelIndex, OreLeft, OreRight, SetFence};
    let g = genesis();
    let mut ledger = Ledger::genesis(g.validators.clone(), g.genesis_time_ms);
    let operator = SigningKey::from_seed(&[1; 32]);
    let reporter = SigningKey::from_seed(&[52; 32]);
    let custodian = SigningKey::from_seed(&[53; 32]);
    let mut tx = EnrolPatient {
        patient: PatientId([8; 16]),
        reporter_key: reporter.public(),
        custodian_key: custodian.public(),
        level_count: 2,
        ore_levels: 1,
        epoch_length_ms: 86_400_000,
        operator: PublicKeyBytes(operator.public().0),
        sig: SignatureBytes::UNSIGNED,
    };
    operator.sign(&mut tx, &chain());
    let mut carer = bmpls_types::EnrolCarer {
        carer: bmpls_types::CarerId([3; 16]),
        identity_key: SigningKey::from_seed(&[54; 32]).public(),
        agreement_key: bmpls_types::AgreementKey([9; 32]),
        role: bmpls_types::Role::Gp,
        operator: PublicKeyBytes(operator.public().0),
        sig: SignatureBytes::UNSIGNED,
    };
    operator.sign(&mut carer, &chain());
    // A standing grant, so that the carer may be fenced at all.
    let mut grant = bmpls_types::Grant {
        patient: PatientId([8; 16]),
        carer: bmpls_types::CarerId([3; 16]),
        level: LevelIndex(0),
        data_from: Epoch(0),
        data_to: Epoch(0),
        valid_from_ms: 0,
        valid_until_ms: u64::MAX,
        purpose: bmpls_types::BoundedString::new("test").expect("short"),
        wrapped_keys: BoundedVec::empty(),
        sig: SignatureBytes::UNSIGNED,
    };
    custodian.sign(&mut grant, &chain());
    let block = one_block(
        &ledger,
        vec![
            Transaction::EnrolPatient(tx),
            Transaction::EnrolCarer(carer),
            Transaction::Grant(grant),
        ],
        &operator,
    );
    ledger
        .check_block(&block, 1000, block.header.time_ms)
        .expect("valid block");
    ledger.apply(
        &block.clone().into(),
        bmpls_crypto::hash::block_hash(&block.header),
    );

    let right = Cell::Ore(OreRight(
        BoundedVec::new(vec![1, b'R', 32, 6, 0]).expect("small"),
    ));
    let ope = Cell::Ope(OpeCiphertext(5));
    let report = |cells: Vec<Cell>| {
        let mut record = LocationRecord {
            patient: PatientId([8; 16]),
            seq: Seq(1),
            fix_time_ms: 30_000,
            epoch: Epoch(0),
            cells: BoundedVec::new(cells).expect("few"),
            sealed: BoundedVec::empty(),
            sig: SignatureBytes::UNSIGNED,
        };
        reporter.sign(&mut record, &chain());
        Transaction::Report(record)
    };
    for wrong in [
        vec![ope.clone(), ope.clone()],
        vec![right.clone(), right.clone()],
        vec![ope.clone(), right.clone()],
    ] {
        let refused = Mempool::new(10, 1 << 20)
            .admit(report(wrong.clone()), &ledger)
            .expect_err("a level under the wrong scheme");
        assert!(
            matches!(refused, Refusal::Rule(TxRefusal::Invalid(why)) if why.contains("scheme")),
            "{refused}"
        );
        let block = one_block(&ledger, vec![report(wrong)], &operator);
        assert!(
            ledger
                .check_block(&block, 1000, block.header.time_ms)
                .is_err()
        );
    }
    Mempool::new(10, 1 << 20)
        .admit(report(vec![right, ope]), &ledger)
        .expect("ORE at level 0, OPE at level 1");

    // Fences: tokens of one domain at the ORE level; OPE bounds at the OPE level.
    let token = |bits: u8| {
        let domain = Domain::for_level_bits(bits).expect("domain");
        let blocks = vec![
            LeftBlock {
                slot: 0,
                key: [7; 16]
            };
            domain.blocks()
        ];
        let left = LeftCiphertext::from_blocks(domain, &blocks).expect("token");
        OreLeft(BoundedVec::new(left.to_bytes()).expect("short"))
    };
    let fence = |level: u8, ranges: FenceRanges| {
        let mut fence = SetFence {
            patient: PatientId([8; 16]),
            carer: bmpls_types::CarerId([3; 16]),
            level: LevelIndex(level),
            epochs: BoundedVec::new(vec![FenceEpoch {
                epoch: Epoch(0),
                ranges,
            }])
            .expect("one"),
            debounce: 1,
            expected_interval_ms: 0,
            sig: SignatureBytes::UNSIGNED,
        };
        custodian.sign(&mut fence, &chain());
        Transaction::SetFence(fence)
    };
    let ore =
        |pairs: Vec<(OreLeft, OreLeft)>| FenceRanges::Ore(BoundedVec::new(pairs).expect("few"));
    let bounds =
        FenceRanges::Ope(BoundedVec::new(vec![(OpeCiphertext(1), OpeCiphertext(2))]).expect("one"));
    let garbage = OreLeft(BoundedVec::new(vec![9; 30]).expect("short"));
    let cases = [
        (fence(0, ore(vec![(token(50), token(50))])), true),
        (fence(0, ore(vec![(token(50), token(38))])), false),
        (fence(0, ore(vec![(garbage.clone(), garbage)])), false),
        (fence(0, bounds.clone()), false),
        (fence(1, bounds), true),
        (fence(1, ore(vec![(token(50), token(50))])), false),
    ];
    for (i, (tx, valid)) in cases.into_iter().enumerate() {
        match Mempool::new(10, 1 << 20).admit(tx, &ledger) {
            Ok(_) => assert!(valid, "case {i}"),
            Err(Refusal::Rule(TxRefusal::Invalid(why))) => {
                assert!(!valid && why.contains("scheme"), "case {i}: {why}")
            }
            other => panic!("case {i}: {other:?}"),
        }
    }
}

/// Applies `txs` as the next block (their rules checked as a committed block's are).
fn apply(ledger: &mut Ledger, txs: Vec<Transaction>, proposer: &SigningKey) {
    let block = one_block(ledger, txs, proposer);
    ledger.apply(
        &block.clone().into(),
        bmpls_crypto::hash::block_hash(&block.header),
    );
}

#[test]
fn a_fence_is_removed_once_and_alerts_follow_the_grants_level_and_window() {
    use bmpls_types::{
        AgreementKey, BoundedString, CarerId, EnrolCarer, FenceEpoch, Grant, LevelIndex,
        RemoveFence, Role, SetFence, TxHash,
    };
    let g = genesis();
    let mut ledger = Ledger::genesis(g.validators.clone(), g.genesis_time_ms);
    let operator = SigningKey::from_seed(&[1; 32]);
    let patient = enrol(&mut ledger, &operator);
    let custodian = SigningKey::from_seed(&[43; 32]);
    let carer = CarerId([5; 16]);
    let signed = |mut tx: Transaction| {
        match &mut tx {
            Transaction::SetFence(t) => custodian.sign(t, &chain()),
            Transaction::RemoveFence(t) => custodian.sign(t, &chain()),
            Transaction::Grant(t) => custodian.sign(t, &chain()),
            _ => unreachable!("custodian transactions only"),
        }
        tx
    };
    let fence = signed(Transaction::SetFence(SetFence {
        patient: patient.id,
        carer,
        level: LevelIndex(1),
        epochs: BoundedVec::new(vec![FenceEpoch {
            epoch: Epoch(0),
            ranges: bmpls_types::FenceRanges::Ope(
                BoundedVec::new(vec![(OpeCiphertext(1), OpeCiphertext(2))]).expect("one"),
            ),
        }])
        .expect("one"),
        debounce: 1,
        expected_interval_ms: 0,
        sig: SignatureBytes::UNSIGNED,
    }));
    apply(
        &mut ledger,
        vec![
            Transaction::EnrolCarer(EnrolCarer {
                carer,
                identity_key: SigningKey::from_seed(&[44; 32]).public(),
                agreement_key: AgreementKey([9; 32]),
                role: Role::Family,
                operator: PublicKeyBytes(operator.public().0),
                sig: SignatureBytes::UNSIGNED,
            }),
            // The carer's grant: the coarser level (1), epoch 0's data only.
            signed(Transaction::Grant(Grant {
                patient: patient.id,
                carer,
                level: LevelIndex(1),
                data_from: Epoch(0),
                data_to: Epoch(0),
                valid_from_ms: 0,
                valid_until_ms: u64::MAX,
                purpose: BoundedString::new("test").expect("short"),
                wrapped_keys: BoundedVec::empty(),
                sig: SignatureBytes::UNSIGNED,
            })),
            fence.clone(),
        ],
        &operator,
    );
    let may_see = |level, epoch| {
        ledger.carer_may_see_alert(
            &patient.id,
            &carer,
            (LevelIndex(level), Epoch(epoch), ledger.height()),
            1,
        )
    };
    assert!(may_see(1, 0), "the granted level and epoch");
    assert!(!may_see(0, 0), "a fence finer than the grant");
    assert!(!may_see(1, 1), "an epoch outside the data window");
    assert!(!ledger.carer_may_see_alert(
        &patient.id,
        &CarerId([6; 16]),
        (LevelIndex(1), Epoch(0), ledger.height()),
        1
    ));

    let fence_hash = bmpls_crypto::hash::tx_hash(&fence);
    let remove = |fence| {
        signed(Transaction::RemoveFence(RemoveFence {
            patient: patient.id,
            fence,
            sig: SignatureBytes::UNSIGNED,
        }))
    };
    let admit = |tx: Transaction, ledger: &Ledger| Mempool::new(10, 1 << 20).admit(tx, ledger);
    assert_eq!(
        admit(remove(TxHash([3; 32])), &ledger),
        Err(Refusal::Rule(TxRefusal::UnknownFence(TxHash([3; 32])))),
        "no such fence"
    );
    assert!(admit(remove(fence_hash), &ledger).is_ok());
    apply(&mut ledger, vec![remove(fence_hash)], &operator);
    assert_eq!(
        admit(remove(fence_hash), &ledger),
        Err(Refusal::Rule(TxRefusal::FenceRemoved(fence_hash))),
        "once"
    );
    assert_eq!(
        admit(fence.clone(), &ledger),
        Err(Refusal::Rule(TxRefusal::Duplicate(fence_hash))),
        "replaying the fence does not bring it back"
    );

    // A validator restarted from a checkpoint knows all of it: the grant, the removed fence.
    let restored = Ledger::restore(g.validators.clone(), &ledger.checkpoint()).expect("restores");
    assert_eq!(restored.checkpoint(), ledger.checkpoint());
    assert!(restored.carer_may_see_alert(
        &patient.id,
        &carer,
        (LevelIndex(1), Epoch(0), restored.height()),
        1
    ));
    assert_eq!(
        admit(remove(fence_hash), &restored),
        Err(Refusal::Rule(TxRefusal::FenceRemoved(fence_hash)))
    );
    assert_eq!(
        admit(fence, &restored),
        Err(Refusal::Rule(TxRefusal::Duplicate(fence_hash)))
    );
}

#[test]
fn a_checkpointed_ledger_judges_the_next_blocks_as_the_replayed_one_does() {
    use bmpls_consensus::ledger::CheckpointError;
    let g = genesis();
    let mut ledger = Ledger::genesis(g.validators.clone(), g.genesis_time_ms);
    let node = SigningKey::from_seed(&[1; 32]);
    let patient = enrol(&mut ledger, &node);
    let answered = audit(&node, ledger.height().0);
    apply(
        &mut ledger,
        vec![report(&patient, 1, 2), answered.clone()],
        &node,
    );
    apply(&mut ledger, vec![report(&patient, 2, 2)], &node);

    let bytes = ledger.checkpoint();
    let mut restored = Ledger::restore(g.validators.clone(), &bytes).expect("restores");
    assert_eq!(
        (restored.height(), restored.tip(), restored.tip_time_ms()),
        (ledger.height(), ledger.tip(), ledger.tip_time_ms())
    );
    assert_eq!(restored.patient(&patient.id), ledger.patient(&patient.id));
    assert_eq!(
        restored.key_transactions(&patient.id),
        ledger.key_transactions(&patient.id)
    );
    assert!(!ledger.key_transactions(&patient.id).is_empty());
    assert_eq!(
        restored.client_keys().collect::<Vec<_>>(),
        ledger.client_keys().collect::<Vec<_>>()
    );
    // The next block: the same verdicts on a replayed report, the committed audit, a gap and
    // the next report; then both apply it and stay equal.
    let check = |ledger: &Ledger, txs: Vec<Transaction>| {
        let block = one_block(ledger, txs, &node);
        ledger
            .check_block(&block, 1000, block.header.time_ms)
            .is_ok()
    };
    for txs in [
        vec![report(&patient, 2, 2)],
        vec![answered],
        vec![report(&patient, 4, 2)],
        vec![report(&patient, 3, 2)],
    ] {
        assert_eq!(check(&restored, txs.clone()), check(&ledger, txs.clone()));
    }
    assert!(check(&restored, vec![report(&patient, 3, 2)]));
    apply(&mut ledger, vec![report(&patient, 3, 2)], &node);
    apply(&mut restored, vec![report(&patient, 3, 2)], &node);
    assert_eq!(restored.checkpoint(), ledger.checkpoint());

    // Damaged bytes are an error, never a panic or a wrong ledger.
    for cut in 0..bytes.len() {
        assert!(
            Ledger::restore(g.validators.clone(), &bytes[..cut]).is_err(),
            "{cut} bytes"
        );
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(matches!(
        Ledger::restore(g.validators.clone(), &longer),
        Err(CheckpointError::Malformed(_))
    ));
    let mut other = bytes.clone();
    other[0] ^= 0xff;
    assert!(matches!(
        Ledger::restore(g.validators.clone(), &other),
        Err(CheckpointError::Version(_))
    ));
    let elsewhere = {
        let mut g = genesis();
        g.validators = bmpls_consensus::ValidatorSet::new(
            bmpls_crypto::ValidatorSet::new(
                bmpls_types::ChainId::new("another-chain").expect("short"),
                g.validators.crypto().validators().to_vec(),
            )
            .expect("valid"),
        );
        g
    };
    assert!(matches!(
        Ledger::restore(elsewhere.validators, &bytes),
        Err(CheckpointError::Chain { .. })
    ));
}

/// An audit of a Track query answered at `at_height`, signed by `node`.
fn audit(node: &SigningKey, at_height: u64) -> Transaction {
    use bmpls_types::{Audit, CarerId, Height, LevelIndex, QueryKind, ValidatorId};
    let mut audit = Audit {
        node: ValidatorId(node.public().0),
        carer: CarerId([3; 16]),
        patient: PatientId([7; 16]),
        query: QueryKind::Track,
        level: LevelIndex(0),
        from_ms: 1_000,
        to_ms: 2_000,
        at_height: Height(at_height),
        sig: SignatureBytes::UNSIGNED,
    };
    node.sign(&mut audit, &chain());
    Transaction::Audit(audit)
}

#[test]
fn a_committed_audit_gossiped_back_is_refused_and_old_ones_are_forgotten() {
    use bmpls_consensus::AUDIT_WINDOW_HEIGHTS;
    let g = genesis();
    let mut ledger = Ledger::genesis(g.validators.clone(), g.genesis_time_ms);
    let node = SigningKey::from_seed(&[1; 32]);
    let patient = enrol(&mut ledger, &node);
    let check = |ledger: &Ledger, txs: Vec<Transaction>| {
        let block = one_block(ledger, txs, &node);
        ledger.check_block(&block, 1000, block.header.time_ms)
    };
    let answered = audit(&node, ledger.height().0);
    assert!(check(&ledger, vec![answered.clone()]).is_ok());
    apply(&mut ledger, vec![answered.clone()], &node);
    // The same audit again, blocks later (the nemesis saw this: a copy gossiped after the
    // commit entered another block): refused in a block and by the mempool.
    apply(&mut ledger, vec![report(&patient, 1, 2)], &node);
    assert!(check(&ledger, vec![answered.clone()]).is_err(), "a replay");
    let mut pool = Mempool::new(10, 1 << 20);
    assert!(matches!(
        pool.admit(answered.clone(), &ledger),
        Err(Refusal::Rule(TxRefusal::Duplicate(_)))
    ));
    // Another audit of the same height, and one of a height not yet committed.
    assert!(
        check(&ledger, vec![audit(&node, 1)]).is_err(),
        "the same bytes"
    );
    let other = {
        let mut a = match audit(&node, 1) {
            Transaction::Audit(a) => a,
            _ => unreachable!("an audit"),
        };
        a.to_ms += 1;
        node.sign(&mut a, &chain());
        Transaction::Audit(a)
    };
    assert!(check(&ledger, vec![other]).is_ok());
    let ahead = audit(&node, ledger.height().0 + 1);
    assert!(
        check(&ledger, vec![ahead]).is_err(),
        "answered at a height to come"
    );
    // After the window an audit is too old, and the committed ones are no longer kept.
    for _ in 0..AUDIT_WINDOW_HEIGHTS {
        apply(&mut ledger, Vec::new(), &node);
    }
    assert!(check(&ledger, vec![answered]).is_err(), "too old");
    let fresh = audit(&node, ledger.height().0);
    assert!(check(&ledger, vec![fresh]).is_ok());
}

#[test]
fn a_validator_knows_it_is_behind_while_a_peer_decides_a_later_height() {
    use bmpls_consensus::{
        Address, Engine, Height, MemoryWal, NilOrVal, SignedVote, Vote, VoteKind,
    };
    let g = genesis();
    let keys: Vec<SigningKey> = (1u8..=4).map(|s| SigningKey::from_seed(&[s; 32])).collect();
    let ledger = Ledger::genesis(g.validators.clone(), g.genesis_time_ms);
    let block = one_block(&ledger, vec![], &keys[1]);
    let cert = bmpls_crypto::certify(
        &block,
        bmpls_types::Round(0),
        &[&keys[1], &keys[2], &keys[3]],
    );
    let (mut engine, _) = Engine::start(
        g.clone(),
        keys[0].clone(),
        ledger,
        MemoryWal::default(),
        g.genesis_time_ms,
    )
    .expect("starts");
    let peer = Address(bmpls_types::ValidatorId(keys[1].public().0));
    let vote_at = |height: u64| {
        let vote = Vote {
            kind: VoteKind::Prevote,
            height: Height(height),
            round: 0,
            block: NilOrVal::Nil,
            validator: peer,
        };
        let signed = bmpls_consensus::signing::sign_vote(&chain(), &keys[1], vote);
        Message::Vote(SignedVote::from_mt(&signed))
    };
    let mut now = g.genesis_time_ms + 10;
    let mut deliver = |engine: &mut Engine<MemoryWal>, message: Message| {
        now += 10;
        engine
            .on_message(peer, message, now)
            .expect("no engine error");
    };
    assert_eq!(engine.seen_ahead(), None, "nothing seen yet");
    deliver(&mut engine, vote_at(1));
    assert_eq!(engine.seen_ahead(), None, "a peer at our height");
    deliver(&mut engine, vote_at(2));
    assert_eq!(
        engine.seen_ahead(),
        Some(Height(2)),
        "a peer deciding height 2 has committed a block this validator has not"
    );
    deliver(&mut engine, Message::SyncResponse(Box::new(block), cert));
    assert_eq!(engine.ledger().height().0, 1, "the missed block applied");
    assert_eq!(engine.seen_ahead(), None, "caught up with the peer");
}

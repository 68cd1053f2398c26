//! One verdict per signature: the mempool (alone or in a batch), the proposal check (with or
//! without the mempool's vouching) and the block batch check agree on every crafted signature,
//! whatever the companions; registered keys of small order are refused; a certified block is
//! applied on catch-up whatever this validator's rules say of it.

use bmpls_consensus::{
    BlockRefusal, Engine, Ledger, MemoryWal, Mempool, Message, Output, Refusal, TxRefusal,
};
use bmpls_crypto::SigningKey;
use bmpls_crypto::sign::verify_bytes;
use bmpls_crypto::torsion::{TorsionSigner, non_canonical_s, small_order_key};
use bmpls_types::{
    AgreementKey, BoundedVec, CarerId, EnrolCarer, EnrolPatient, Epoch, LocationRecord,
    OpeCiphertext, PatientId, PublicKeyBytes, Role, RotateReporterKey, Seq, SignatureBytes, Signed,
    Transaction,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::{chain, genesis, one_block};

fn bytes64(rng: &mut StdRng) -> [u8; 64] {
    let mut out = [0u8; 64];
    rng.fill(&mut out[..]);
    out
}

fn enrolment(patient: PatientId, reporter: PublicKeyBytes, operator: &SigningKey) -> Transaction {
    let mut tx = EnrolPatient {
        patient,
        reporter_key: reporter,
        custodian_key: SigningKey::from_seed(&[43; 32]).public(),
        level_count: 1,
        ore_levels: 0,
        epoch_length_ms: 86_400_000,
        operator: operator.public(),
        sig: SignatureBytes::UNSIGNED,
    };
    operator.sign(&mut tx, &chain());
    Transaction::EnrolPatient(tx)
}

fn first_report(patient: PatientId) -> LocationRecord {
    LocationRecord {
        patient,
        seq: Seq(1),
        fix_time_ms: 30_000,
        epoch: Epoch(0),
        cells: BoundedVec::new(vec![bmpls_types::Cell::Ope(OpeCiphertext(9))]).expect("one level"),
        sealed: BoundedVec::empty(),
        sig: SignatureBytes::UNSIGNED,
    }
}

/// A ledger with `count` enrolled patients; patient `i`'s reporter key is `keys[i]`.
fn ledger_with(keys: &[PublicKeyBytes], operator: &SigningKey) -> Ledger {
    let g = genesis();
    let mut ledger = Ledger::genesis(g.validators.clone(), g.genesis_time_ms);
    let txs = keys
        .iter()
        .enumerate()
        .map(|(i, key)| enrolment(PatientId([i as u8; 16]), *key, operator))
        .collect();
    let block = one_block(&ledger, txs, operator);
    ledger
        .check_block(&block, 1000, block.header.time_ms)
        .expect("enrolments are valid");
    ledger.apply(
        &block.clone().into(),
        bmpls_crypto::hash::block_hash(&block.header),
    );
    ledger
}

#[test]
fn mempool_proposal_and_block_checks_agree_on_every_crafted_signature() {
    let mut rng = StdRng::seed_from_u64(215);
    let operator = SigningKey::from_seed(&[1; 32]);
    // Patients 0..6 report with crafted signatures, 6..16 are honest companions.
    let kinds = 6usize;
    let crafted_signers: Vec<TorsionSigner> = (0..kinds)
        .map(|i| TorsionSigner::new(&bytes64(&mut rng), if i % 2 == 1 { i } else { 0 }))
        .collect();
    let honest: Vec<SigningKey> = (0..10).map(|_| SigningKey::generate(&mut rng)).collect();
    let mut keys: Vec<PublicKeyBytes> = crafted_signers.iter().map(TorsionSigner::public).collect();
    keys.extend(honest.iter().map(SigningKey::public));
    let ledger = ledger_with(&keys, &operator);
    let companions: Vec<Transaction> = honest
        .iter()
        .enumerate()
        .map(|(i, key)| {
            let mut record = first_report(PatientId([(kinds + i) as u8; 16]));
            key.sign(&mut record, &chain());
            Transaction::Report(record)
        })
        .collect();
    let mut seen = [0usize; 2];
    for trial in 0..300 {
        let who = trial % kinds;
        let mut record = first_report(PatientId([who as u8; 16]));
        let message = record.signing_bytes(&chain());
        let torsion = rng.gen_range(0..8);
        let mut sig = crafted_signers[who].sign(&message, &bytes64(&mut rng), torsion);
        if rng.gen_bool(0.2) {
            sig = non_canonical_s(&sig);
        }
        record.sig = sig;
        let candidate = Transaction::Report(record);
        let alone = verify_bytes(&keys[who], &message, &sig, "t").is_ok();
        seen[usize::from(alone)] += 1;

        let mut txs: Vec<Transaction> = companions
            .iter()
            .filter(|_| rng.gen_bool(0.5))
            .cloned()
            .collect();
        let at = rng.gen_range(0..=txs.len());
        txs.insert(at, candidate.clone());

        let mut pool = Mempool::new(100, 1 << 20);
        let pooled = pool.admit_all(txs.clone(), &ledger);
        assert!(pooled.iter().enumerate().all(|(i, r)| i == at || r.is_ok()));
        match &pooled[at] {
            Ok(_) => assert!(alone, "trial {trial}: the mempool accepts what fails alone"),
            Err(e) => {
                assert_eq!(e, &Refusal::Rule(TxRefusal::BadSignature), "trial {trial}");
                assert!(
                    !alone,
                    "trial {trial}: the mempool refuses what verifies alone"
                );
            }
        }
        let mut single = Mempool::new(100, 1 << 20);
        assert_eq!(
            single.admit(candidate, &ledger).is_ok(),
            alone,
            "trial {trial}"
        );

        let block = one_block(&ledger, txs, &operator);
        let expected = if alone {
            Ok(())
        } else {
            Err(BlockRefusal::Tx {
                index: at,
                refusal: TxRefusal::BadSignature,
            })
        };
        let time = block.header.time_ms;
        assert_eq!(
            ledger.check_block(&block, 1000, time),
            expected,
            "trial {trial}"
        );
        // A validator whose mempool holds the companions (verified in another batch).
        assert_eq!(
            ledger.check_block_known(&block.clone().into(), 1000, time, |h| pool
                .verified_signer(h)),
            expected,
            "trial {trial} with the mempool's vouching"
        );
        let signer = |tx: &Transaction| match tx {
            Transaction::Report(r) => Some(keys[usize::from(r.patient.0[0])]),
            _ => None,
        };
        assert_eq!(
            bmpls_crypto::verify_transactions(block.txs.as_slice(), &chain(), signer).is_ok(),
            alone,
            "trial {trial} as a block batch"
        );
    }
    assert!(
        seen[0] > 0 && seen[1] > 0,
        "both verdicts are exercised: {seen:?}"
    );
}

#[test]
fn small_order_keys_are_refused_wherever_a_key_is_registered() {
    let operator = SigningKey::from_seed(&[1; 32]);
    let honest = SigningKey::from_seed(&[42; 32]);
    let g = genesis();
    let empty = Ledger::genesis(g.validators.clone(), g.genesis_time_ms);
    let ledger = ledger_with(&[honest.public()], &operator);
    for i in 0..8 {
        let weak = small_order_key(i);
        let check = |tx: Transaction, ledger: &Ledger, what: &'static str| {
            let refusal = TxRefusal::WeakKey(what);
            let mut pool = Mempool::new(10, 1 << 20);
            assert_eq!(
                pool.admit(tx.clone(), ledger),
                Err(Refusal::Rule(refusal.clone()))
            );
            let block = one_block(ledger, vec![tx], &operator);
            assert_eq!(
                ledger.check_block(&block, 1000, block.header.time_ms),
                Err(BlockRefusal::Tx { index: 0, refusal })
            );
        };
        check(
            enrolment(PatientId([9; 16]), weak, &operator),
            &empty,
            "reporter",
        );
        let mut custodian = EnrolPatient {
            patient: PatientId([9; 16]),
            reporter_key: honest.public(),
            custodian_key: weak,
            level_count: 1,
            ore_levels: 0,
            epoch_length_ms: 1000,
            operator: operator.public(),
            sig: SignatureBytes::UNSIGNED,
        };
        operator.sign(&mut custodian, &chain());
        check(Transaction::EnrolPatient(custodian), &empty, "custodian");
        let mut carer = EnrolCarer {
            carer: CarerId([3; 16]),
            identity_key: weak,
            agreement_key: AgreementKey([5; 32]),
            role: Role::Gp,
            operator: operator.public(),
            sig: SignatureBytes::UNSIGNED,
        };
        operator.sign(&mut carer, &chain());
        check(Transaction::EnrolCarer(carer), &empty, "carer identity");
        let mut rotation = RotateReporterKey {
            patient: PatientId([0; 16]),
            new_reporter_key: weak,
            from_seq: Seq(1),
            sig: SignatureBytes::UNSIGNED,
        };
        SigningKey::from_seed(&[43; 32]).sign(&mut rotation, &chain());
        check(
            Transaction::RotateReporterKey(rotation),
            &ledger,
            "new reporter",
        );
    }
}

#[test]
fn a_genesis_validator_key_of_small_order_is_refused() {
    let shipped = include_str!("../../../../config/genesis.toml");
    let weak = hex::encode(small_order_key(1).0);
    let text = shipped.replacen(
        "8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c",
        &weak,
        1,
    );
    match bmpls_consensus::Genesis::from_toml(&text) {
        Err(bmpls_consensus::ConfigError::Field { field, reason }) => {
            assert_eq!(field, "validator[0] (node1).key");
            assert!(reason.contains("small-order"), "{reason}");
        }
        other => panic!("expected a field error, got {other:?}"),
    }
}

#[test]
fn a_certified_block_is_applied_on_catch_up_whatever_this_validator_thinks_of_it() {
    let g = genesis();
    let keys: Vec<SigningKey> = (1u8..=4).map(|s| SigningKey::from_seed(&[s; 32])).collect();
    let ledger = Ledger::genesis(g.validators.clone(), g.genesis_time_ms);
    // An enrolment whose signature this validator's rules refuse, in a block a quorum certified:
    // only a validator whose verdict differed from the quorum's would see it so.
    let mut enrol = enrolment(PatientId([1; 16]), keys[0].public(), &keys[0]);
    if let Transaction::EnrolPatient(t) = &mut enrol {
        t.sig.0[40] ^= 1;
    }
    let block = one_block(&ledger, vec![enrol], &keys[1]);
    assert!(
        ledger
            .check_block(&block, u64::MAX, block.header.time_ms)
            .is_err()
    );
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
    let from = bmpls_consensus::Address(bmpls_types::ValidatorId(keys[1].public().0));
    let outputs = engine
        .on_message(
            from,
            Message::SyncResponse(Box::new(block.clone()), cert.clone()),
            g.genesis_time_ms + 10,
        )
        .expect("no engine error");
    assert!(
        outputs
            .iter()
            .any(|o| matches!(o, Output::Committed(b, _) if b.header == block.header)),
        "the certified block is committed"
    );
    assert_eq!(engine.ledger().height().0, 1);
    assert!(engine.ledger().patient(&PatientId([1; 16])).is_some());

    // A block under a certificate that does not verify is not.
    let (mut other, _) = Engine::start(
        g.clone(),
        keys[0].clone(),
        Ledger::genesis(g.validators.clone(), g.genesis_time_ms),
        MemoryWal::default(),
        g.genesis_time_ms,
    )
    .expect("starts");
    let mut forged = cert;
    forged.round = bmpls_types::Round(1);
    let outputs = other
        .on_message(
            from,
            Message::SyncResponse(Box::new(block), forged),
            g.genesis_time_ms + 10,
        )
        .expect("no engine error");
    assert!(!outputs.iter().any(|o| matches!(o, Output::Committed(..))));
    assert_eq!(other.ledger().height().0, 0);
}

#[test]
fn a_logged_proposed_value_naming_a_block_the_log_does_not_hold_is_damage() {
    use bmpls_consensus::{EngineError, WalRecord, WalStorage};
    use bmpls_types::Canonical;
    let g = genesis();
    let key = SigningKey::from_seed(&[1; 32]);
    let mut wal = MemoryWal::default();
    // A proposed value logged by reference, without the proposal that carried its block (which
    // the log always holds before it): replaying it must stop, not decide on nothing.
    let record = WalRecord::ProposedValueOf {
        height: bmpls_consensus::Height(1),
        round: 0,
        valid_round: None,
        proposer: bmpls_consensus::Address(bmpls_types::ValidatorId(key.public().0)),
        block: bmpls_types::BlockHash([7; 32]),
        valid: true,
    };
    assert_eq!(
        WalRecord::decode(&record.encode()).expect("decodes"),
        record
    );
    wal.append(1, &record.encode(), true).expect("appends");
    let started = Engine::start(
        g.clone(),
        key,
        Ledger::genesis(g.validators.clone(), g.genesis_time_ms),
        wal,
        g.genesis_time_ms,
    );
    assert!(
        matches!(started, Err(EngineError::CorruptWal { height: 1, .. })),
        "{:?}",
        started.err()
    );
}

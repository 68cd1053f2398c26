//! Signatures, Merkle proofs, sealing, wrapping and block verification, through the public API.

use bmpls_crypto::hash::block_hash;
use bmpls_crypto::seal::{open_fix, seal_fix};
use bmpls_crypto::sign::{verify, verify_batch};
use bmpls_crypto::wrap::{unwrap, wrap};
use bmpls_crypto::{
    AgreementSecret, CryptoError, SigningKey, Validator, ValidatorSet, merkle, precommit_bytes,
    verify_block, verify_record,
};
use bmpls_types::{
    Block, BlockHeader, BoundedVec, Canonical, ChainId, CommitCertificate, Epoch, ExactFix, Hash32,
    Height, LocationRecord, OpeCiphertext, PatientId, PrecommitTarget, Round, Seq, Signature,
    Signed, Transaction, Trigger, ValidatorIndex,
};
use rand::SeedableRng;
use rand::rngs::StdRng;

fn rng() -> StdRng {
    StdRng::seed_from_u64(11)
}

fn signed_record(key: &SigningKey) -> LocationRecord {
    let mut r = LocationRecord {
        patient: PatientId([5; 16]),
        seq: Seq(3),
        fix_time_ms: 1_790_000_000_000,
        epoch: Epoch(20_717),
        cells: BoundedVec::new(vec![OpeCiphertext(1), OpeCiphertext(2)]).expect("small"),
        sealed: BoundedVec::new(vec![9; 20]).expect("small"),
        sig: Signature::UNSIGNED,
    };
    key.sign(&mut r);
    r
}

#[test]
fn any_changed_byte_of_a_signed_record_fails() {
    let key = SigningKey::generate(&mut rng());
    let record = signed_record(&key);
    let public = key.public();
    assert!(verify_record(record.clone(), &public).is_ok());
    let bytes = record.encode();
    for i in 0..bytes.len() {
        for flip in [0x01u8, 0x80] {
            let mut changed = bytes.clone();
            changed[i] ^= flip;
            if let Ok(decoded) = LocationRecord::decode(&changed) {
                assert!(
                    verify_record(decoded, &public).is_err(),
                    "byte {i} flip {flip:#x} still verifies"
                );
            }
        }
    }
    let other = SigningKey::generate(&mut StdRng::seed_from_u64(12));
    assert_eq!(
        verify_record(record, &other.public()).map(|_| ()),
        Err(CryptoError::BadSignature("location record"))
    );
}

#[test]
fn batch_verification_accepts_good_and_refuses_one_bad() {
    let mut r = rng();
    let items: Vec<_> = (0..20u8)
        .map(|i| {
            let key = SigningKey::generate(&mut r);
            let message = vec![i; 40];
            (key.public(), message.clone(), key.sign_bytes(&message))
        })
        .collect();
    assert!(verify_batch(&items).is_ok());
    let mut bad = items.clone();
    bad[7].1[0] ^= 1;
    assert!(verify_batch(&bad).is_err());
}

#[test]
fn merkle_proofs_for_every_leaf_of_every_size_up_to_300() {
    for size in 1..=300usize {
        let leaves: Vec<Vec<u8>> = (0..size)
            .map(|i| format!("leaf {i}").into_bytes())
            .collect();
        let root = merkle::root(&leaves);
        for index in 0..size {
            let proof = merkle::prove(&leaves, index).expect("in range");
            assert!(
                merkle::verify(&root, &leaves[index], &proof).is_ok(),
                "size {size} index {index}"
            );
            assert!(merkle::verify(&root, b"another leaf", &proof).is_err());
            if size > 1 {
                let mut wrong_index = proof.clone();
                wrong_index.index = ((index + 1) % size) as u64;
                assert!(merkle::verify(&root, &leaves[index], &wrong_index).is_err());
                let mut altered = proof.clone();
                let mut path = altered.path.clone().into_inner();
                path[0].0[0] ^= 1;
                altered.path = BoundedVec::new(path).expect("same length");
                assert!(merkle::verify(&root, &leaves[index], &altered).is_err());
                let mut shorter = proof.clone();
                let mut path = shorter.path.clone().into_inner();
                path.pop();
                shorter.path = BoundedVec::new(path).expect("shorter");
                assert!(merkle::verify(&root, &leaves[index], &shorter).is_err());
            }
        }
        assert!(merkle::prove(&leaves, size).is_none());
    }
}

#[test]
fn merkle_roots_distinguish_leaves_from_nodes() {
    // The second-preimage attack on unprefixed trees: a leaf equal to two concatenated hashes.
    let leaves = [b"a".to_vec(), b"b".to_vec()];
    let root = merkle::root(&leaves);
    let mut fake = merkle::leaf_hash(b"a").0.to_vec();
    fake.extend_from_slice(&merkle::leaf_hash(b"b").0);
    assert_ne!(merkle::root(&[fake]), root);
}

fn fix() -> ExactFix {
    ExactFix {
        lat_e7: 538_008_000,
        lon_e7: -15_491_000,
        accuracy_cm: 500,
        altitude_cm: 6_300,
        speed_cm_s: 120,
        battery_percent: 77,
        trigger: Trigger::Periodic,
        fix_time_ms: 1_790_000_000_000,
    }
}

#[test]
fn a_sealed_fix_opens_only_with_its_key_and_record() {
    let key = [3u8; 32];
    let mut r = rng();
    let patient = PatientId([1; 16]);
    let sealed = seal_fix(&key, &fix(), &patient, Seq(4), Epoch(9), &mut r).expect("seals");
    assert_eq!(
        open_fix(&key, &sealed, &patient, Seq(4), Epoch(9)),
        Ok(fix())
    );
    let again = seal_fix(&key, &fix(), &patient, Seq(4), Epoch(9), &mut r).expect("seals");
    assert_ne!(sealed, again, "sealing is deterministic");
    assert_eq!(sealed.len(), again.len());
    assert!(open_fix(&[4u8; 32], &sealed, &patient, Seq(4), Epoch(9)).is_err());
    assert!(open_fix(&key, &sealed, &patient, Seq(5), Epoch(9)).is_err());
    assert!(open_fix(&key, &sealed, &PatientId([2; 16]), Seq(4), Epoch(9)).is_err());
    for i in 0..sealed.len() {
        let mut changed = sealed.clone();
        changed[i] ^= 0x10;
        assert!(
            open_fix(&key, &changed, &patient, Seq(4), Epoch(9)).is_err(),
            "byte {i}"
        );
    }
    assert!(
        open_fix(
            &key,
            &sealed[..sealed.len() - 1],
            &patient,
            Seq(4),
            Epoch(9)
        )
        .is_err()
    );
}

#[test]
fn wrapped_keys_open_only_for_the_carer_and_the_grant() {
    let mut r = rng();
    let (secret, public) = AgreementSecret::generate(&mut r);
    assert_eq!(secret.public(), public);
    let wrapped = wrap(&public, b"grant key material", b"grant fields", &mut r).expect("wraps");
    assert_eq!(
        unwrap(&secret, &wrapped, b"grant fields")
            .expect("opens")
            .as_slice(),
        b"grant key material"
    );
    let (other, _) = AgreementSecret::generate(&mut r);
    assert!(unwrap(&other, &wrapped, b"grant fields").is_err());
    assert!(unwrap(&secret, &wrapped, b"other grant").is_err());
    assert!(unwrap(&secret, &wrapped[..20], b"grant fields").is_err());
    let mut changed = wrapped.clone();
    changed[40] ^= 1;
    assert!(unwrap(&secret, &changed, b"grant fields").is_err());
    assert!(!format!("{secret:?}").contains(&format!("{:?}", secret.to_bytes().as_slice())));
}

struct Chain {
    keys: Vec<SigningKey>,
    set: ValidatorSet,
    block: Block,
}

fn chain() -> Chain {
    let mut r = rng();
    let keys: Vec<SigningKey> = (0..4).map(|_| SigningKey::generate(&mut r)).collect();
    let set = ValidatorSet::new(
        keys.iter()
            .map(|k| Validator {
                key: k.public(),
                power: 1,
            })
            .collect(),
    )
    .expect("valid set");
    let reporter = SigningKey::generate(&mut r);
    let txs: Vec<Transaction> = (0..3)
        .map(|_| Transaction::Report(signed_record(&reporter)))
        .collect();
    let encoded: Vec<Vec<u8>> = txs.iter().map(Canonical::encode).collect();
    let block = Block {
        header: BlockHeader {
            chain_id: ChainId::new("test-chain").expect("short"),
            height: Height(5),
            prev_hash: Hash32([1; 32]),
            time_ms: 7,
            proposer: ValidatorIndex(1),
            tx_root: merkle::root(&encoded),
            tx_count: 3,
        },
        txs: BoundedVec::new(txs).expect("small"),
    };
    Chain { keys, set, block }
}

fn certificate(chain: &Chain, signers: &[u16]) -> CommitCertificate {
    let hash = block_hash(&chain.block.header);
    let message = precommit_bytes(&PrecommitTarget {
        chain_id: chain.block.header.chain_id.clone(),
        height: chain.block.header.height,
        round: Round(0),
        block_hash: hash,
    });
    CommitCertificate {
        height: chain.block.header.height,
        round: Round(0),
        block_hash: hash,
        signatures: BoundedVec::new(
            signers
                .iter()
                .map(|&i| {
                    (
                        ValidatorIndex(i),
                        chain.keys[usize::from(i)].sign_bytes(&message),
                    )
                })
                .collect(),
        )
        .expect("small"),
    }
}

#[test]
fn a_block_verifies_with_a_quorum_certificate_only() {
    let c = chain();
    let good = certificate(&c, &[0, 1, 3]);
    assert!(verify_block(c.block.clone(), &good, &c.set).is_ok());
    assert!(matches!(
        verify_block(c.block.clone(), &certificate(&c, &[0, 1]), &c.set),
        Err(CryptoError::NoQuorum { power: 2, total: 4 })
    ));
    assert_eq!(
        verify_block(c.block.clone(), &certificate(&c, &[0, 1, 1]), &c.set).map(|_| ()),
        Err(CryptoError::BadSigner(1))
    );
    let mut unknown = good.clone();
    let mut sigs = unknown.signatures.clone().into_inner();
    sigs[0].0 = ValidatorIndex(9);
    unknown.signatures = BoundedVec::new(sigs).expect("small");
    assert_eq!(
        verify_block(c.block.clone(), &unknown, &c.set).map(|_| ()),
        Err(CryptoError::BadSigner(9))
    );
    let mut forged = good.clone();
    let mut sigs = forged.signatures.clone().into_inner();
    sigs[2].1.0[5] ^= 1;
    forged.signatures = BoundedVec::new(sigs).expect("small");
    assert!(matches!(
        verify_block(c.block.clone(), &forged, &c.set),
        Err(CryptoError::BadSignature(_))
    ));
}

#[test]
fn any_changed_byte_of_a_committed_block_fails() {
    let c = chain();
    let cert = certificate(&c, &[0, 1, 2, 3]);
    let bytes = c.block.encode();
    for i in 1..bytes.len() {
        let mut changed = bytes.clone();
        changed[i] ^= 0x04;
        if let Ok(decoded) = Block::decode(&changed) {
            assert!(
                verify_block(decoded, &cert, &c.set).is_err(),
                "byte {i} still verifies"
            );
        }
    }
}

#[test]
fn signatures_are_bound_to_their_type() {
    let key = SigningKey::generate(&mut rng());
    let record = signed_record(&key);
    // The same signature over the same fields presented as another signed type fails: the tag
    // differs.
    let tag_of_other = bmpls_types::Grant::TAG;
    let mut message = tag_of_other.to_vec();
    message.extend_from_slice(&record.signing_bytes()[LocationRecord::TAG.len()..]);
    assert!(bmpls_crypto::sign::verify_bytes(&key.public(), &message, &record.sig, "x").is_err());
    assert!(verify(&record, &key.public(), "record").is_ok());
    assert!(!format!("{key:?}").contains(&format!("{:?}", key.to_seed().as_slice())));
}

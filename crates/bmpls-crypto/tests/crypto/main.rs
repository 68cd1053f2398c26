//! Signatures, Merkle proofs, sealing, wrapping and block verification, through the public API.

mod block;
mod secrecy;

use bmpls_crypto::sign::{verify, verify_batch};
use bmpls_crypto::{CryptoError, SigningKey, merkle, verify_record};
use bmpls_types::{
    BoundedVec, Canonical, Epoch, LocationRecord, OpeCiphertext, PatientId, Seq, SignatureBytes,
    Signed,
};
use rand::SeedableRng;
use rand::rngs::StdRng;

/// The tests' seeded RNG: every run sees the same keys.
pub fn rng() -> StdRng {
    StdRng::seed_from_u64(11)
}

/// A small record signed by `key`.
pub fn signed_record(key: &SigningKey) -> LocationRecord {
    let mut r = LocationRecord {
        patient: PatientId([5; 16]),
        seq: Seq(3),
        fix_time_ms: 1_790_000_000_000,
        epoch: Epoch(20_717),
        cells: BoundedVec::new(vec![OpeCiphertext(1), OpeCiphertext(2)]).expect("small"),
        sealed: BoundedVec::new(vec![9; 20]).expect("small"),
        sig: SignatureBytes::UNSIGNED,
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

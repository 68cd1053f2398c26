//! Signatures, Merkle proofs, sealing, wrapping and block verification, through the public API.

mod block;
mod secrecy;
mod torsion;

use bmpls_crypto::sign::{verify, verify_batch};
use bmpls_crypto::{CryptoError, SigningKey, merkle, verify_record};
use bmpls_types::{
    BoundedVec, Canonical, Epoch, Hash32, LocationRecord, OpeCiphertext, PatientId, Seq,
    SignatureBytes, Signed,
};
use rand::SeedableRng;
use rand::rngs::StdRng;

/// The tests' seeded RNG: every run sees the same keys.
pub fn rng() -> StdRng {
    StdRng::seed_from_u64(11)
}

/// The chain the tests' values are signed for.
pub fn chain() -> bmpls_types::ChainId {
    bmpls_types::ChainId::new("test-chain").expect("short")
}

/// A small record signed by `key`.
pub fn signed_record(key: &SigningKey) -> LocationRecord {
    let mut r = LocationRecord {
        patient: PatientId([5; 16]),
        seq: Seq(3),
        fix_time_ms: 1_790_000_000_000,
        epoch: Epoch(20_717),
        cells: BoundedVec::new(vec![
            bmpls_types::Cell::Ore(bmpls_types::OreRight(
                BoundedVec::new(vec![1, b'R', 32, 6, 9, 9]).expect("small"),
            )),
            bmpls_types::Cell::Ope(OpeCiphertext(2)),
        ])
        .expect("small"),
        sealed: BoundedVec::new(vec![9; 20]).expect("small"),
        sig: SignatureBytes::UNSIGNED,
    };
    key.sign(&mut r, &chain());
    r
}

#[test]
fn any_changed_byte_of_a_signed_record_fails() {
    let key = SigningKey::generate(&mut rng());
    let record = signed_record(&key);
    let public = key.public();
    assert!(verify_record(record.clone(), &chain(), &public).is_ok());
    let bytes = record.encode();
    for i in 0..bytes.len() {
        for flip in [0x01u8, 0x80] {
            let mut changed = bytes.clone();
            changed[i] ^= flip;
            if let Ok(decoded) = LocationRecord::decode(&changed) {
                assert!(
                    verify_record(decoded, &chain(), &public).is_err(),
                    "byte {i} flip {flip:#x} still verifies"
                );
            }
        }
    }
    let other = SigningKey::generate(&mut StdRng::seed_from_u64(12));
    assert_eq!(
        verify_record(record, &chain(), &other.public()).map(|_| ()),
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
        let tree = merkle::MerkleTree::new(&leaves);
        let root = tree.root();
        assert_eq!(merkle::root(&leaves), root);
        for (index, leaf) in leaves.iter().enumerate() {
            let proof = tree.prove(index).expect("in range");
            assert!(
                merkle::verify(&root, leaf, &proof).is_ok(),
                "size {size} index {index}"
            );
            assert!(merkle::verify(&root, b"another leaf", &proof).is_err());
            let with_path = |path: Vec<Hash32>| merkle::InclusionProof {
                path: BoundedVec::new(path).expect("short"),
                ..proof.clone()
            };
            let mut longer = proof.path.to_vec();
            longer.push(root);
            assert!(merkle::verify(&root, leaf, &with_path(longer)).is_err());
            if size > 1 {
                let mut wrong_index = proof.clone();
                wrong_index.index = ((index + 1) % size) as u64;
                assert!(merkle::verify(&root, leaf, &wrong_index).is_err());
                for position in 0..proof.path.len() {
                    let mut altered = proof.path.to_vec();
                    altered[position].0[0] ^= 1;
                    assert!(merkle::verify(&root, leaf, &with_path(altered)).is_err());
                }
                let mut shorter = proof.path.to_vec();
                shorter.pop();
                assert!(merkle::verify(&root, leaf, &with_path(shorter)).is_err());
            }
        }
        assert!(merkle::prove(&leaves, size).is_none());
    }
}

#[test]
fn a_stored_tree_reads_back_whole_and_only_at_its_size() {
    for size in 1..=300usize {
        let leaves: Vec<Vec<u8>> = (0..size).map(|i| vec![i as u8, 7]).collect();
        let tree = merkle::MerkleTree::new(&leaves);
        let hashes: Vec<Hash32> = leaves.iter().map(|l| merkle::leaf_hash(l)).collect();
        assert_eq!(merkle::MerkleTree::from_leaf_hashes(hashes), tree);
        let bytes = tree.level_bytes();
        let back = merkle::MerkleTree::from_level_bytes(size, &bytes).expect("fits its size");
        assert_eq!(back, tree, "size {size}");
        assert!(merkle::MerkleTree::from_level_bytes(size + 1, &bytes).is_none());
        assert!(merkle::MerkleTree::from_level_bytes(size, &bytes[1..]).is_none());
        assert!(
            merkle::MerkleTree::from_level_bytes(size, &[bytes.as_slice(), &[0]].concat())
                .is_none()
        );
    }
}

/// The roots of the RFC 6962 reference tree (Certificate Transparency's test data) over its
/// first 1…8 leaves.
#[test]
fn merkle_roots_match_the_rfc_6962_reference_vectors() {
    let leaves: [&[u8]; 8] = [
        b"",
        b"\x00",
        b"\x10",
        b"\x20\x21",
        b"\x30\x31",
        b"\x40\x41\x42\x43",
        b"\x50\x51\x52\x53\x54\x55\x56\x57",
        b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
    ];
    let roots = [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];
    for (n, expected) in roots.iter().enumerate() {
        let root = merkle::root(&leaves[..=n]);
        let hex: String = root.0.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(&hex, expected, "{} leaves", n + 1);
    }
    let empty: [&[u8]; 0] = [];
    let hex: String = merkle::root(&empty)
        .0
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        hex,
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
}

#[test]
fn inclusion_proofs_round_trip_their_encoding() {
    let leaves: Vec<[u8; 1]> = (0..37u8).map(|i| [i]).collect();
    let tree = merkle::MerkleTree::new(&leaves);
    let proof = tree.prove(20).expect("in range");
    assert_eq!(merkle::InclusionProof::decode(&proof.encode()), Ok(proof));
    assert!(tree.prove(37).is_none());
    assert_eq!(tree.size(), 37);
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
    message.extend_from_slice(&record.signing_bytes(&chain())[LocationRecord::TAG.len()..]);
    assert!(bmpls_crypto::sign::verify_bytes(&key.public(), &message, &record.sig, "x").is_err());
    assert!(verify(&record, &chain(), &key.public(), "record").is_ok());
    // The same record is not valid on another chain (staging's on production).
    let staging = bmpls_types::ChainId::new("staging").expect("short");
    assert!(verify(&record, &staging, &key.public(), "record").is_err());
    assert!(!format!("{key:?}").contains(&format!("{:?}", key.to_seed().as_slice())));
}

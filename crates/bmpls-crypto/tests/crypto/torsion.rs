//! One verdict per signature: signatures with small-order components (in `R`, in `A`) and
//! non-canonical `s` get the same verdict alone and in any batch, whatever their companions.

use bmpls_crypto::sign::{check_public_key, verify_batch, verify_bytes};
use bmpls_crypto::torsion::{TorsionSigner, non_canonical_s, small_order_forgery, small_order_key};
use bmpls_crypto::{CryptoError, SigningKey};
use bmpls_types::{PublicKeyBytes, SignatureBytes};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

type Item = (PublicKeyBytes, Vec<u8>, SignatureBytes);

fn bytes64(rng: &mut StdRng) -> [u8; 64] {
    let mut out = [0u8; 64];
    rng.fill(&mut out[..]);
    out
}

/// A signature of kind `kind` (0..6) over a fresh message, and whether ZIP 215 accepts it.
fn crafted(rng: &mut StdRng, kind: u8) -> (Item, bool) {
    let message: Vec<u8> = (0..rng.gen_range(0..80)).map(|_| rng.r#gen()).collect();
    let torsion = rng.gen_range(1..8);
    let (key_torsion, r_torsion, canonical, valid) = match kind {
        0 => (0, torsion, true, true), // small-order component in R
        1 => (torsion, 0, true, true), // mixed-order A
        2 => (torsion, rng.gen_range(1..8), true, true), // both
        3 => (0, 0, false, false),     // non-canonical s
        4 => (torsion, torsion, false, false), // torsion and non-canonical s
        _ => (0, 0, true, true),       // honest
    };
    let signer = TorsionSigner::new(&bytes64(rng), key_torsion);
    let mut signature = signer.sign(&message, &bytes64(rng), r_torsion);
    if !canonical {
        signature = non_canonical_s(&signature);
    }
    ((signer.public(), message, signature), valid)
}

fn single(item: &Item) -> bool {
    verify_bytes(&item.0, &item.1, &item.2, "test").is_ok()
}

#[test]
fn crafted_signatures_get_the_zip215_verdict_alone_and_in_a_batch_of_one() {
    let mut rng = StdRng::seed_from_u64(215);
    for i in 0..600 {
        let (item, valid) = crafted(&mut rng, (i % 6) as u8);
        assert_eq!(single(&item), valid, "signature {i} of kind {}", i % 6);
        assert_eq!(
            verify_batch(std::slice::from_ref(&item)).is_ok(),
            valid,
            "signature {i} of kind {} alone in a batch",
            i % 6
        );
    }
}

#[test]
fn a_batch_accepts_exactly_when_every_member_verifies_alone() {
    let mut rng = StdRng::seed_from_u64(8);
    let honest = SigningKey::generate(&mut rng);
    for round in 0..400 {
        let size = rng.gen_range(1..12);
        let mut batch = Vec::with_capacity(size);
        for _ in 0..size {
            if rng.gen_bool(0.3) {
                // Companions from one key, as a phone's backlog: the batch merges their terms.
                let message = vec![rng.r#gen::<u8>(); 16];
                let signature = honest.sign_bytes(&message);
                batch.push((honest.public(), message, signature));
            } else {
                let kind = rng.gen_range(0..6);
                batch.push(crafted(&mut rng, kind).0);
            }
        }
        let alone = batch.iter().all(single);
        assert_eq!(verify_batch(&batch).is_ok(), alone, "batch {round}");
    }
}

#[test]
fn small_order_keys_are_refused_for_registration_and_mixed_order_keys_are_not() {
    for i in 0..8 {
        let key = small_order_key(i);
        assert_eq!(check_public_key(&key), Err(CryptoError::WeakPublicKey));
        // Why: under such a key the rules accept a signature anyone can make, on any message.
        assert!(verify_bytes(&key, b"any message", &small_order_forgery(i), "t").is_ok());
    }
    let mut rng = StdRng::seed_from_u64(3);
    for torsion in 1..8 {
        let signer = TorsionSigner::new(&bytes64(&mut rng), torsion);
        assert_eq!(check_public_key(&signer.public()), Ok(()));
    }
    // A non-canonical encoding of a large-order point: y = p + 3 (y = 3 is on the curve, and
    // ZIP 215 would decode the encoding), is refused as malformed.
    let mut non_canonical = [0xffu8; 32];
    non_canonical[0] = 0xed + 3;
    non_canonical[31] = 0x7f;
    assert_eq!(
        check_public_key(&PublicKeyBytes(non_canonical)),
        Err(CryptoError::BadPublicKey)
    );
    // A y coordinate with no point on the curve.
    let mut not_a_point = [0u8; 32];
    not_a_point[0] = 2;
    assert_eq!(
        check_public_key(&PublicKeyBytes(not_a_point)),
        Err(CryptoError::BadPublicKey)
    );
}

#[test]
fn a_torsion_signer_from_a_seed_has_the_seeds_key() {
    let key = SigningKey::from_seed(&[7; 32]);
    let signer = TorsionSigner::from_seed(&[7; 32]);
    assert_eq!(signer.public(), key.public());
    let signature = signer.sign(b"m", &[1; 64], 0);
    assert!(verify_bytes(&key.public(), b"m", &signature, "t").is_ok());
}

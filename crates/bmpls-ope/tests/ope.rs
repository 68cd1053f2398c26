//! Properties of the order-preserving cipher through its public API: order, inversion, buckets,
//! the randomised mode, tables, and known-answer vectors.

use std::collections::BTreeSet;

use bmpls_ope::{OpeCipher, OpeError, OpeParams, OpeTable};
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const KEY: [u8; 32] = *b"bmpls known-answer test key 0001";

fn cipher(domain_bits: u8) -> OpeCipher {
    OpeCipher::new(
        &KEY,
        OpeParams::with_default_expansion(domain_bits).expect("valid"),
    )
}

/// Encrypts `count` random plaintexts (plus both ends of the domain), then checks that
/// deterministic ciphertexts are strictly increasing in the plaintext, that every ciphertext
/// decrypts back, and that randomised ciphertexts stay inside their bucket.
fn check_order_and_inversion(domain_bits: u8, count: usize, seed: u64) {
    let mut cipher = cipher(domain_bits);
    let mut rng = StdRng::seed_from_u64(seed);
    let max = (1u64 << domain_bits) - 1;
    let mut plaintexts: BTreeSet<u64> = (0..count).map(|_| rng.gen_range(0..=max)).collect();
    plaintexts.extend([0, max]);
    let mut previous: Option<(u64, u128)> = None;
    for &m in &plaintexts {
        let c = cipher.encrypt_deterministic(m).expect("in domain");
        assert_eq!(cipher.decrypt(c), Ok(m), "decrypt(encrypt({m}))");
        if let Some((pm, pc)) = previous {
            assert!(pc < c, "order broken: E({pm}) = {pc} ≥ E({m}) = {c}");
        }
        let bucket = cipher.bucket(m).expect("in domain");
        assert!(bucket.lo <= c && c <= bucket.hi);
        let r = cipher.encrypt(m, &mut rng).expect("in domain");
        assert!(bucket.lo <= r && r <= bucket.hi);
        assert_eq!(cipher.decrypt(r), Ok(m));
        previous = Some((m, c));
    }
}

#[test]
fn order_and_inversion_at_20_bits() {
    check_order_and_inversion(20, 10_000, 1);
}

#[test]
fn order_and_inversion_at_32_bits() {
    check_order_and_inversion(32, 10_000, 2);
}

#[test]
fn order_and_inversion_at_50_bits() {
    check_order_and_inversion(50, 10_000, 3);
}

#[test]
fn order_and_inversion_at_every_domain_size() {
    for bits in [1, 2, 3, 5, 8, 13, 14, 26, 38, 52] {
        check_order_and_inversion(bits, 300, u64::from(bits));
    }
}

#[test]
fn a_tiny_domain_is_enumerated_completely() {
    let mut cipher = cipher(6);
    let buckets: Vec<_> = (0..64)
        .map(|m| cipher.bucket(m).expect("in domain"))
        .collect();
    for pair in buckets.windows(2) {
        assert!(
            pair[0].hi < pair[1].lo,
            "buckets overlap or are out of order"
        );
    }
    // Points between buckets belong to no plaintext.
    for pair in buckets.windows(2) {
        if pair[0].hi + 1 < pair[1].lo {
            assert_eq!(
                cipher.decrypt(pair[0].hi + 1),
                Err(OpeError::NotACiphertext)
            );
        }
    }
}

#[test]
fn randomised_mode_hides_equality() {
    let mut cipher = cipher(32);
    let mut rng = StdRng::seed_from_u64(9);
    let samples: BTreeSet<u128> = (0..1000)
        .map(|_| cipher.encrypt(123_456_789, &mut rng).expect("in domain"))
        .collect();
    assert_eq!(
        samples.len(),
        1000,
        "equal plaintexts gave equal ciphertexts"
    );
    let below = cipher.encrypt(123_456_788, &mut rng).expect("in domain");
    let above = cipher.encrypt(123_456_790, &mut rng).expect("in domain");
    let first = *samples.first().expect("non-empty");
    let last = *samples.last().expect("non-empty");
    assert!(
        below < first && last < above,
        "order between different plaintexts lost"
    );
}

#[test]
fn range_bounds_select_exactly_the_interval() {
    let mut cipher = cipher(16);
    let mut rng = StdRng::seed_from_u64(4);
    let bounds = cipher.range_bounds(1000, 2000).expect("valid interval");
    for m in (900..2100).step_by(7) {
        let c = cipher.encrypt(m, &mut rng).expect("in domain");
        let inside = bounds.lo <= c && c <= bounds.hi;
        assert_eq!(inside, (1000..=2000).contains(&m), "m = {m}");
    }
    assert_eq!(
        cipher.range_bounds(5, 4),
        Err(OpeError::EmptyInterval { from: 5, to: 4 })
    );
}

#[test]
fn different_keys_and_parameters_give_different_functions() {
    let params = OpeParams::with_default_expansion(32).expect("valid");
    let mut a = OpeCipher::new(&KEY, params);
    let mut b = OpeCipher::new(&[1u8; 32], params);
    let mut c = OpeCipher::new(&KEY, OpeParams::new(32, 90).expect("valid"));
    let m = 42;
    let ea = a.encrypt_deterministic(m).expect("in domain");
    assert_ne!(ea, b.encrypt_deterministic(m).expect("in domain"));
    assert_ne!(ea, c.encrypt_deterministic(m).expect("in domain"));
}

#[test]
fn bad_inputs_are_typed_errors() {
    assert_eq!(OpeParams::new(0, 64), Err(OpeError::DomainBits(0)));
    assert_eq!(OpeParams::new(53, 127), Err(OpeError::DomainBits(53)));
    assert_eq!(
        OpeParams::new(32, 63),
        Err(OpeError::RangeBits {
            domain: 32,
            range: 63
        })
    );
    assert!(OpeParams::new(32, 128).is_err());
    let mut cipher = cipher(10);
    assert_eq!(
        cipher.encrypt_deterministic(1024),
        Err(OpeError::PlaintextOutOfDomain {
            value: 1024,
            bits: 10
        })
    );
    assert_eq!(cipher.decrypt(1u128 << 74), Err(OpeError::NotACiphertext));
    assert_eq!(cipher.decrypt(u128::MAX), Err(OpeError::NotACiphertext));
}

#[test]
fn the_cache_does_not_change_the_function() {
    let params = OpeParams::with_default_expansion(40).expect("valid");
    let mut cached = OpeCipher::new(&KEY, params).with_cache_depth(20);
    let mut uncached = OpeCipher::new(&KEY, params).with_cache_depth(0);
    let mut rng = StdRng::seed_from_u64(5);
    for _ in 0..500 {
        let m = rng.gen_range(0..1u64 << 40);
        assert_eq!(
            cached.encrypt_deterministic(m),
            uncached.encrypt_deterministic(m)
        );
    }
}

#[test]
fn a_table_is_the_same_function() {
    let mut cipher = cipher(12);
    let table = OpeTable::build(&mut cipher).expect("small domain");
    let mut rng = StdRng::seed_from_u64(6);
    for m in 0..4096 {
        let bucket = cipher.bucket(m).expect("in domain");
        assert_eq!(table.bucket(m), Ok(bucket));
        let c = table.encrypt(m, &mut rng).expect("in domain");
        assert_eq!(table.decrypt(c), Ok(m));
        assert_eq!(
            table.encrypt_deterministic(&cipher, m),
            cipher.encrypt_deterministic(m)
        );
    }
    assert_eq!(table.decrypt(1u128 << 76), Err(OpeError::NotACiphertext));
    let mut big = cipher_with(21);
    assert_eq!(
        OpeTable::build(&mut big).map(|_| ()),
        Err(OpeError::TableTooLarge { bits: 21 })
    );
}

fn cipher_with(bits: u8) -> OpeCipher {
    cipher(bits)
}

/// Known-answer vectors: a fixed key's deterministic ciphertexts at three domain sizes, so any
/// change of the function (sampler, PRF, tree walk) is caught. Regenerate deliberately with
/// `BMPLS_WRITE_KAT=1 cargo test -p bmpls-ope --test ope known_answers`.
#[test]
fn known_answers() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/kat.txt");
    let mut lines = Vec::new();
    for bits in [14u8, 20, 32, 50] {
        let mut cipher = cipher(bits);
        let max = (1u64 << bits) - 1;
        for m in [0, 1, 2, max / 3, max / 2, max - 1, max] {
            let c = cipher.encrypt_deterministic(m).expect("in domain");
            let b = cipher.bucket(m).expect("in domain");
            lines.push(format!("{bits} {m} {c:032x} {:032x} {:032x}", b.lo, b.hi));
        }
    }
    let actual = lines.join("\n") + "\n";
    if std::env::var_os("BMPLS_WRITE_KAT").is_some() {
        std::fs::write(path, &actual).expect("write testdata/kat.txt");
    }
    let expected = std::fs::read_to_string(path).expect("testdata/kat.txt is committed");
    assert_eq!(actual, expected, "the order-preserving function changed");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// For any two plaintexts of any domain size, order and equality of deterministic
    /// ciphertexts follow the plaintexts, and randomised ciphertexts keep strict order.
    #[test]
    fn order_is_preserved_for_any_pair(bits in 1u8..=52, a in any::<u64>(), b in any::<u64>(), seed in any::<u64>()) {
        let mask = (1u64 << bits) - 1;
        let (a, b) = (a & mask, b & mask);
        let mut cipher = cipher(bits);
        let ca = cipher.encrypt_deterministic(a).expect("in domain");
        let cb = cipher.encrypt_deterministic(b).expect("in domain");
        prop_assert_eq!(a.cmp(&b), ca.cmp(&cb));
        let mut rng = StdRng::seed_from_u64(seed);
        let ra = cipher.encrypt(a, &mut rng).expect("in domain");
        let rb = cipher.encrypt(b, &mut rng).expect("in domain");
        if a != b {
            prop_assert_eq!(a.cmp(&b), ra.cmp(&rb));
        }
        prop_assert_eq!(cipher.decrypt(ra), Ok(a));
    }
}

//! The order-revealing encryption end to end: comparisons equal plaintext order at every domain
//! size, known-answer vectors, right ciphertexts that share no structure, total parsers and a
//! redacted key.

use std::cmp::Ordering;

use bmpls_ore::{Domain, LeftCiphertext, OreError, OreKey, RightCiphertext, compare, in_range};
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{CryptoRng, RngCore, SeedableRng};
use sha2::{Digest, Sha256};

const SECRET: [u8; 32] = [0x5a; 32];
/// Block sizes the crate supports.
const BLOCK_BITS: [u8; 4] = [2, 4, 6, 8];

/// A reproducible stream for the known-answer vectors that no `rand` upgrade can change:
/// block `n` is SHA-256(seed ‖ n). Cryptographic enough for tests.
struct TestRng {
    seed: u64,
    counter: u64,
}

impl TestRng {
    fn new(seed: u64) -> Self {
        Self { seed, counter: 0 }
    }
}

impl RngCore for TestRng {
    fn next_u32(&mut self) -> u32 {
        rand_core_next(self) as u32
    }
    fn next_u64(&mut self) -> u64 {
        rand_core_next(self)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for chunk in dest.chunks_mut(32) {
            let digest = Sha256::new()
                .chain_update(self.seed.to_be_bytes())
                .chain_update(self.counter.to_be_bytes())
                .finalize();
            self.counter += 1;
            chunk.copy_from_slice(&digest[..chunk.len()]);
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl CryptoRng for TestRng {}

fn rand_core_next(rng: &mut TestRng) -> u64 {
    let mut bytes = [0u8; 8];
    rng.fill_bytes(&mut bytes);
    u64::from_be_bytes(bytes)
}

fn domain(bits: u8, block_bits: u8) -> Domain {
    Domain::new(bits, block_bits).expect("valid domain")
}

fn key(bits: u8, block_bits: u8) -> OreKey {
    OreKey::new(&SECRET, domain(bits, block_bits))
}

/// Asserts that the left ciphertext of `x` compares with a right ciphertext of `y` as `x`
/// with `y` does, also after both went through their encodings, and that `in_range` agrees.
fn check(key: &OreKey, x: u64, y: u64, rng: &mut impl rand_core::CryptoRngCore) {
    let left = key.encrypt_left(x).expect("in domain");
    let right = key.encrypt_right(y, rng).expect("in domain");
    let expected = x.cmp(&y);
    let d = key.domain();
    assert_eq!(
        compare(&left, &right),
        Ok(expected),
        "x = {x}, y = {y}, domain {d:?}"
    );
    let left = LeftCiphertext::from_bytes(&left.to_bytes()).expect("canonical");
    let right = RightCiphertext::from_bytes(&right.to_bytes()).expect("canonical");
    assert_eq!(compare(&left, &right), Ok(expected), "after re-parsing");
    assert_eq!(in_range(&left, &left, &right), Ok(x == y));
}

/// Edge values of a domain around `x`: the ends, `x` itself and values sharing long prefixes
/// with it (one bit flipped at every position, and the ends of `x`'s every block).
fn edges(d: Domain, x: u64) -> Vec<u64> {
    let max = d.max_plaintext();
    let mut values = vec![0, 1 & max, max, max.saturating_sub(1), x];
    for bit in 0..d.bits() {
        values.push(x ^ (1 << bit));
        let low = (1u64 << bit) - 1;
        values.push(x | low);
        values.push(x & !low);
    }
    values
}

/// Every pair of plaintexts of every small domain, at every block size.
#[test]
fn small_domains_compare_exhaustively() {
    let mut rng = StdRng::seed_from_u64(1);
    for block_bits in BLOCK_BITS {
        for bits in 1..=6 {
            let key = key(bits, block_bits);
            let max = key.domain().max_plaintext();
            for x in 0..=max {
                for y in 0..=max {
                    check(&key, x, y, &mut rng);
                }
            }
        }
    }
}

/// Edge values at every domain size 2..=64 and every block size.
#[test]
fn edge_values_compare_at_every_domain_size() {
    let mut rng = StdRng::seed_from_u64(2);
    for block_bits in BLOCK_BITS {
        for bits in 2..=64 {
            let key = key(bits, block_bits);
            let d = key.domain();
            let x = 0x9e37_79b9_7f4a_7c15 & d.max_plaintext();
            let values = edges(d, x);
            for &a in &values {
                check(&key, a, x, &mut rng);
                check(&key, x, a, &mut rng);
            }
            for &a in &values[..4] {
                for &b in &values[..4] {
                    check(&key, a, b, &mut rng);
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Random pairs at random domain and block sizes.
    #[test]
    fn random_pairs_compare(
        bits in 1u8..=64,
        block in 0usize..4,
        x in any::<u64>(),
        y in any::<u64>(),
        shared in 0u8..=64,
        seed in any::<u64>(),
    ) {
        let key = key(bits, BLOCK_BITS[block]);
        let max = key.domain().max_plaintext();
        let x = x & max;
        // Half the time, `y` shares the top `shared` bits of `x`.
        let keep = u64::MAX.checked_shl(u32::from(bits.min(shared))).map_or(0, |m| !m) ;
        let y = if seed % 2 == 0 { y & max } else { (x & !keep) | (y & keep & max) };
        let mut rng = StdRng::seed_from_u64(seed);
        check(&key, x, y, &mut rng);
    }

    /// Any byte string is a left or right ciphertext or a typed error, never a panic, and what
    /// parses re-encodes to the same bytes.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        if let Ok(left) = LeftCiphertext::from_bytes(&bytes) {
            prop_assert_eq!(left.to_bytes(), bytes.clone());
        }
        if let Ok(right) = RightCiphertext::from_bytes(&bytes) {
            prop_assert_eq!(right.to_bytes(), bytes.clone());
        }
    }

    /// Arbitrary bodies behind valid headers (so that the parsers get past the header).
    #[test]
    fn arbitrary_bodies_never_panic(
        bits in 0u8..=66,
        block_bits in 0u8..=9,
        right in any::<bool>(),
        body in proptest::collection::vec(any::<u8>(), 0..450),
    ) {
        let mut bytes = vec![bmpls_ore::VERSION, if right { b'R' } else { b'L' }, bits, block_bits];
        bytes.extend_from_slice(&body);
        let _ = LeftCiphertext::from_bytes(&bytes);
        let _ = RightCiphertext::from_bytes(&bytes);
        // Also at exactly the right length, so that the slot and packing checks run.
        if let Ok(d) = Domain::new(bits, block_bits) {
            let len = if right { RightCiphertext::encoded_len(&d) } else { LeftCiphertext::encoded_len(&d) };
            bytes.resize(len, 0x77);
            let _ = LeftCiphertext::from_bytes(&bytes);
            let _ = RightCiphertext::from_bytes(&bytes);
        }
    }
}

/// The known-answer vectors: fixed key, seeded nonces, left and right ciphertexts in hex.
/// `BMPLS_WRITE_KAT=1 cargo test -p bmpls-ore --test ore known_answers` rewrites the file;
/// a change of the construction must change it deliberately.
#[test]
fn known_answers() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/kat.txt");
    let mut lines = vec![
        "# bits block_bits x left_hex right_hex (secret 0x5a x 32, TestRng seed = x)".to_owned(),
    ];
    for (bits, block_bits) in [
        (50u8, 6u8),
        (38, 6),
        (32, 6),
        (50, 2),
        (50, 4),
        (50, 8),
        (64, 8),
        (5, 4),
    ] {
        let key = key(bits, block_bits);
        let max = key.domain().max_plaintext();
        for x in [0, 1, max / 3, max - 1, max] {
            let left = key.encrypt_left(x).expect("in domain");
            let right = key
                .encrypt_right(x, &mut TestRng::new(x))
                .expect("in domain");
            lines.push(format!(
                "{bits} {block_bits} {x} {} {}",
                hex::encode(left.as_bytes()),
                hex::encode(right.as_bytes())
            ));
        }
    }
    let actual = lines.join("\n") + "\n";
    if std::env::var_os("BMPLS_WRITE_KAT").is_some() {
        std::fs::write(path, &actual).expect("write testdata/kat.txt");
    }
    let expected = std::fs::read_to_string(path).expect("testdata/kat.txt is committed");
    assert_eq!(actual, expected, "the order-revealing encryption changed");
}

/// Two right ciphertexts of one value share nothing after the header: different nonces, and
/// packed bytes that differ almost everywhere (a byte agrees by chance with probability 1/243).
#[test]
fn right_ciphertexts_of_one_value_are_unrelated() {
    let key = key(50, 6);
    let mut rng = StdRng::seed_from_u64(3);
    let a = key.encrypt_right(123_456_789, &mut rng).expect("in domain");
    let b = key.encrypt_right(123_456_789, &mut rng).expect("in domain");
    let (a, b) = (a.as_bytes(), b.as_bytes());
    assert_eq!(a[..4], b[..4], "the header is the domain");
    let same = a[4..].iter().zip(&b[4..]).filter(|(x, y)| x == y).count();
    assert!(same < 8, "{same} of {} bytes agree", a.len() - 4);
}

/// Over many encryptions of one value, every slot holds 0, 1 and 2 about equally often: the
/// masks hide the comparison values. Counts of 600 draws stay within 6 standard deviations of
/// 200 (σ ≈ 11.5), which a uniform slot fails with probability below 10^-8 over all slots.
#[test]
fn slot_values_are_uniform_across_encryptions() {
    let key = key(50, 6);
    let d = key.domain();
    const DRAWS: usize = 600;
    let mut counts = vec![[0usize; 3]; d.total_slots()];
    let mut rng = StdRng::seed_from_u64(4);
    for _ in 0..DRAWS {
        let right = key.encrypt_right(42, &mut rng).expect("in domain");
        for (t, count) in counts.iter_mut().enumerate() {
            count[usize::from(slot_value(&right, t))] += 1;
        }
    }
    for (t, count) in counts.iter().enumerate() {
        for &c in count {
            assert!((130..=270).contains(&c), "slot {t}: counts {count:?}");
        }
    }
}

/// Slot `t`'s value read from the packing, as the format documents it.
fn slot_value(right: &RightCiphertext, t: usize) -> u8 {
    let byte = right.as_bytes()[20 + t / 5];
    (byte / 3u8.pow((t % 5) as u32)) % 3
}

#[test]
fn left_ciphertexts_are_deterministic() {
    let key = key(38, 6);
    assert_eq!(key.encrypt_left(77), key.encrypt_left(77));
    assert_ne!(key.encrypt_left(77), key.encrypt_left(78));
}

/// One secret under two domains gives unrelated keys.
#[test]
fn keys_are_bound_to_their_domain() {
    let a = OreKey::new(&SECRET, domain(50, 6))
        .encrypt_left(5)
        .expect("in domain");
    let b = OreKey::new(&SECRET, domain(50, 4))
        .encrypt_left(5)
        .expect("in domain");
    assert_ne!(a.as_bytes()[5..21], b.as_bytes()[5..21]);
}

#[test]
fn plaintexts_outside_the_domain_are_refused() {
    let key = key(50, 6);
    let mut rng = StdRng::seed_from_u64(5);
    let err = Err(OreError::PlaintextOutOfDomain { bits: 50 });
    assert_eq!(key.encrypt_left(1 << 50), err);
    assert_eq!(
        key.encrypt_right(u64::MAX, &mut rng).map(|_| ()),
        err.map(|_: LeftCiphertext| ())
    );
    assert!(key.encrypt_left((1 << 50) - 1).is_ok());
}

#[test]
fn ciphertexts_of_different_domains_do_not_compare() {
    let mut rng = StdRng::seed_from_u64(6);
    let left = key(50, 6).encrypt_left(1).expect("in domain");
    let right = key(50, 4).encrypt_right(1, &mut rng).expect("in domain");
    assert_eq!(compare(&left, &right), Err(OreError::DomainMismatch));
    assert_eq!(
        in_range(&left, &left, &right),
        Err(OreError::DomainMismatch)
    );
}

#[test]
fn in_range_is_the_closed_interval() {
    let key = key(32, 6);
    let mut rng = StdRng::seed_from_u64(7);
    let (lo, hi) = (
        key.encrypt_left(100).expect("in"),
        key.encrypt_left(200).expect("in"),
    );
    for (y, inside) in [
        (99, false),
        (100, true),
        (150, true),
        (200, true),
        (201, false),
    ] {
        let right = key.encrypt_right(y, &mut rng).expect("in domain");
        assert_eq!(in_range(&lo, &hi, &right), Ok(inside), "y = {y}");
    }
}

/// One right ciphertext against a sorted list of endpoints, as a fence's runs are searched:
/// the comparator's bisection finds the value's rank, and agrees with `compare` everywhere.
#[test]
fn a_comparator_bisects_sorted_endpoints() {
    let key = key(50, 6);
    let mut rng = StdRng::seed_from_u64(11);
    let endpoints: Vec<u64> = vec![0, 5, 1 << 20, (1 << 20) + 1, 1 << 40, (1 << 50) - 1];
    let lefts: Vec<LeftCiphertext> = endpoints
        .iter()
        .map(|&x| key.encrypt_left(x).expect("in"))
        .collect();
    for y in [
        0u64,
        3,
        5,
        6,
        1 << 20,
        1 << 30,
        (1 << 50) - 2,
        (1 << 50) - 1,
    ] {
        let right = key.encrypt_right(y, &mut rng).expect("in domain");
        let comparator = right.comparator();
        let rank = lefts.partition_point(|l| comparator.compare(l) != Ok(Ordering::Greater));
        assert_eq!(rank, endpoints.partition_point(|&x| x <= y), "y = {y}");
        for left in &lefts {
            assert_eq!(comparator.compare(left), compare(left, &right));
        }
    }
}

/// Asserts that `bytes` parse to `expected` as a left (`left = true`) or right ciphertext.
fn check_parse(left: bool, bytes: &[u8], expected: OreError) {
    let got = if left {
        LeftCiphertext::from_bytes(bytes).map(|_| ())
    } else {
        RightCiphertext::from_bytes(bytes).map(|_| ())
    };
    assert_eq!(got, Err(expected), "{} bytes", bytes.len());
}

#[test]
fn malformed_encodings_are_typed_errors() {
    let key = key(50, 6);
    let mut rng = StdRng::seed_from_u64(8);
    let left = key.encrypt_left(12345).expect("in domain").to_bytes();
    let right = key
        .encrypt_right(12345, &mut rng)
        .expect("in domain")
        .to_bytes();
    assert_eq!((left.len(), right.len()), (157, 124));
    for (is_left, good) in [(true, &left), (false, &right)] {
        let len = good.len();
        for cut in 0..len {
            let needed = if cut < 4 { 4 } else { len };
            check_parse(
                is_left,
                &good[..cut],
                OreError::Truncated { needed, got: cut },
            );
        }
        let mut long = good.clone();
        long.push(0);
        check_parse(
            is_left,
            &long,
            OreError::TrailingBytes {
                expected: len,
                extra: 1,
            },
        );
        let mut version = good.clone();
        version[0] = 2;
        check_parse(is_left, &version, OreError::UnknownVersion(2));
        let mut odd = good.clone();
        odd[3] = 5;
        check_parse(
            is_left,
            &odd,
            OreError::InvalidDomain {
                bits: 50,
                block_bits: 5,
            },
        );
        let mut wide = good.clone();
        wide[2] = 65;
        check_parse(
            is_left,
            &wide,
            OreError::InvalidDomain {
                bits: 65,
                block_bits: 6,
            },
        );
    }
    check_parse(
        false,
        &left,
        OreError::WrongKind {
            expected: "right",
            found: b'L',
        },
    );
    check_parse(
        true,
        &right,
        OreError::WrongKind {
            expected: "left",
            found: b'R',
        },
    );
    // 49 bits in 6-bit blocks: the last block has 2 slots, not 4, so one packed byte fewer.
    let mut narrower = right.clone();
    narrower[2] = 49;
    check_parse(
        false,
        &narrower,
        OreError::TrailingBytes {
            expected: 123,
            extra: 1,
        },
    );
    // The last block of 50 bits has 2 bits: slot 4 is outside it.
    let mut slot = left.clone();
    slot[4 + 8 * 17] = 4;
    check_parse(true, &slot, OreError::BadSlot { block: 8 });
    let mut packed = right.clone();
    packed[30] = 243;
    check_parse(false, &packed, OreError::BadPacking { byte: 10 });
    // 516 slots: the last byte holds one value, so 3 (a second value of 1) is padding.
    let mut padding = right.clone();
    padding[123] = 3;
    check_parse(false, &padding, OreError::BadPacking { byte: 103 });
    padding[123] = 2;
    assert!(RightCiphertext::from_bytes(&padding).is_ok());
}

#[test]
fn debug_prints_no_key_material() {
    let key = OreKey::new(&[0xab; 32], domain(50, 6));
    let shown = format!("{key:?}");
    assert_eq!(
        shown,
        r#"OreKey { domain: Domain { bits: 50, block_bits: 6 }, keys: "<redacted>" }"#
    );
    let mut rng = StdRng::seed_from_u64(9);
    let left = format!("{:?}", key.encrypt_left(1).expect("in domain"));
    let right = format!("{:?}", key.encrypt_right(1, &mut rng).expect("in domain"));
    assert_eq!(
        left,
        "LeftCiphertext { domain: Domain { bits: 50, block_bits: 6 }, .. }"
    );
    assert_eq!(
        right,
        "RightCiphertext { domain: Domain { bits: 50, block_bits: 6 }, .. }"
    );
}

/// The order is what `compare` reports for the left one first; the reversed question needs a
/// left ciphertext of the other value.
#[test]
fn order_is_of_the_left_against_the_right() {
    let key = key(38, 6);
    let mut rng = StdRng::seed_from_u64(10);
    let right = key.encrypt_right(10, &mut rng).expect("in domain");
    assert_eq!(
        compare(&key.encrypt_left(9).expect("in"), &right),
        Ok(Ordering::Less)
    );
    assert_eq!(
        compare(&key.encrypt_left(11).expect("in"), &right),
        Ok(Ordering::Greater)
    );
}

/// Membership in token ranges (how validators answer ORE area queries and test ORE fences)
/// agrees with plaintext membership, on range edges and between ranges, and refuses tokens of
/// mixed domains.
#[test]
fn token_ranges_agree_with_plaintext_membership() {
    let key = key(32, 6);
    let mut rng = StdRng::seed_from_u64(7);
    for trial in 0..20u64 {
        // Sorted, disjoint ranges with gaps of at least one value.
        let mut bounds = Vec::new();
        let mut at = trial * 1_000;
        for _ in 0..(trial % 7 + 1) {
            let lo = at + 1 + rng.next_u64() % 5_000;
            let hi = lo + rng.next_u64() % 3_000;
            bounds.push((lo, hi));
            at = hi + 1;
        }
        let tokens: Vec<(Vec<u8>, Vec<u8>)> = bounds
            .iter()
            .map(|&(lo, hi)| {
                (
                    key.encrypt_left(lo).expect("test value").to_bytes(),
                    key.encrypt_left(hi).expect("test value").to_bytes(),
                )
            })
            .collect();
        let ranges = bmpls_ore::TokenRanges::parse(&tokens).expect("test value");
        let mut probes = vec![0, at, at + 1, u64::from(u32::MAX)];
        for &(lo, hi) in &bounds {
            probes.extend([lo - 1, lo, lo + 1, (lo + hi) / 2, hi - 1, hi, hi + 1]);
        }
        for x in probes {
            let right = key.encrypt_right(x, &mut rng).expect("test value");
            let expected = bounds.iter().any(|&(lo, hi)| (lo..=hi).contains(&x));
            assert_eq!(
                ranges.contains(&right).expect("test value"),
                expected,
                "{x} in {bounds:?}"
            );
        }
    }
    let empty = bmpls_ore::TokenRanges::parse(&[] as &[(Vec<u8>, Vec<u8>)]).expect("test value");
    let right = key.encrypt_right(5, &mut rng).expect("test value");
    assert!(!empty.contains(&right).expect("test value"));
    // Tokens of two domains are refused; a right ciphertext of another domain is an error.
    let other = OreKey::new(&SECRET, domain(30, 6));
    let (a, b) = (
        key.encrypt_left(1).expect("test value").to_bytes(),
        other.encrypt_left(2).expect("test value").to_bytes(),
    );
    assert_eq!(
        bmpls_ore::TokenRanges::parse(&[(a.as_slice(), b.as_slice())]).expect_err("test value"),
        OreError::DomainMismatch
    );
    let one = bmpls_ore::TokenRanges::parse(&[(a.as_slice(), a.as_slice())]).expect("test value");
    let foreign = other.encrypt_right(1, &mut rng).expect("test value");
    assert_eq!(
        one.contains(&foreign).expect_err("test value"),
        OreError::DomainMismatch
    );
}

#[test]
fn a_left_ciphertext_decrypts_to_its_plaintext_at_every_domain_size() {
    for &block_bits in &BLOCK_BITS {
        for bits in [1u8, 2, 7, 12, 38, 50, 64] {
            let key = key(bits, block_bits);
            for x in edges(
                key.domain(),
                0x5a5a_5a5a_5a5a_5a5a & key.domain().max_plaintext(),
            ) {
                let left = key.encrypt_left(x).expect("in the domain");
                assert_eq!(key.decrypt_left(&left), Ok(x), "{bits}/{block_bits}: {x}");
            }
        }
    }
}

#[test]
fn a_left_ciphertext_of_another_key_or_domain_is_refused_not_misread() {
    let mine = key(50, 6);
    let other = OreKey::new(&[0xa5; 32], domain(50, 6));
    for x in [0, 1, 12_345, (1 << 50) - 1] {
        let theirs = other.encrypt_left(x).expect("in the domain");
        assert_eq!(mine.decrypt_left(&theirs), Err(OreError::NotUnderThisKey));
    }
    let wider = key(52, 6).encrypt_left(3).expect("in the domain");
    assert_eq!(mine.decrypt_left(&wider), Err(OreError::DomainMismatch));
    // A forged slot key in the last block only: the earlier blocks decrypt, the last does not.
    let mut bytes = mine.encrypt_left(777).expect("in the domain").to_bytes();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    let forged = LeftCiphertext::from_bytes(&bytes).expect("still well formed");
    assert_eq!(mine.decrypt_left(&forged), Err(OreError::NotUnderThisKey));
}

#[test]
fn right_ciphertexts_decrypt_at_every_domain_and_block_size() {
    let mut rng = StdRng::seed_from_u64(9);
    for block_bits in BLOCK_BITS {
        for bits in 1..=6 {
            let key = key(bits, block_bits);
            for x in 0..=key.domain().max_plaintext() {
                let right = key.encrypt_right(x, &mut rng).expect("in the domain");
                assert_eq!(key.decrypt_right(&right), Ok(x), "{bits}/{block_bits}: {x}");
            }
        }
        for bits in 7..=64 {
            let key = key(bits, block_bits);
            let d = key.domain();
            for x in edges(d, 0x9e37_79b9_7f4a_7c15 & d.max_plaintext()) {
                let right = key.encrypt_right(x, &mut rng).expect("in the domain");
                let right = RightCiphertext::from_bytes(&right.to_bytes()).expect("canonical");
                assert_eq!(key.decrypt_right(&right), Ok(x), "{bits}/{block_bits}: {x}");
            }
        }
    }
}

#[test]
fn a_right_ciphertext_of_another_key_or_domain_is_refused() {
    let mut rng = StdRng::seed_from_u64(10);
    let mine = key(50, 6);
    let other = OreKey::new(&[0xa5; 32], domain(50, 6));
    for x in [0, 1, 12_345, (1 << 50) - 1] {
        let theirs = other.encrypt_right(x, &mut rng).expect("in the domain");
        assert_eq!(mine.decrypt_right(&theirs), Err(OreError::NotUnderThisKey));
    }
    let wider = key(52, 6)
        .encrypt_right(3, &mut rng)
        .expect("in the domain");
    assert_eq!(mine.decrypt_right(&wider), Err(OreError::DomainMismatch));
}

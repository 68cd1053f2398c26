//! The keyless half on its own: domains, bounds, assembly errors, and the comparison rule
//! (the first differing block decides) on ciphertexts assembled from made-up slot keys, which
//! is all a validator can do without a key.

use std::cmp::Ordering;

use bmpls_ore_compare::{
    Domain, LeftBlock, LeftCiphertext, MAX_BITS, OreError, RightCiphertext, compare,
};
use proptest::prelude::*;

fn check_domain(bits: u8, block_bits: u8, valid: bool) {
    let got = Domain::new(bits, block_bits);
    if valid {
        assert!(got.is_ok(), "{bits}/{block_bits}");
    } else {
        assert_eq!(got, Err(OreError::InvalidDomain { bits, block_bits }));
    }
}

#[test]
fn domains_need_even_blocks_and_at_most_64_bits() {
    for (bits, block_bits, valid) in [
        (1, 2, true),
        (64, 8, true),
        (50, 6, true),
        (0, 2, false),
        (65, 2, false),
        (50, 0, false),
        (50, 3, false),
        (50, 10, false),
    ] {
        check_domain(bits, block_bits, valid);
    }
}

#[test]
fn blocks_are_most_significant_first_and_the_last_is_shorter() {
    let d = Domain::new(50, 6).expect("valid");
    assert_eq!(d.blocks(), 9);
    assert_eq!((d.block_len(0), d.block_len(7), d.block_len(8)), (6, 6, 2));
    assert_eq!(d.total_slots(), 8 * 64 + 4);
    let x = 0b10_1101u64 << 44 | 0b11;
    assert_eq!(d.block_value(x, 0), 0b10_1101);
    assert_eq!(d.prefix(x, 0), 0);
    assert_eq!(d.prefix(x, 1), 0b10_1101);
    assert_eq!(d.block_value(x, 8), 0b11);
    assert_eq!(d.max_plaintext(), (1 << 50) - 1);
    assert_eq!(Domain::new(64, 8).expect("valid").max_plaintext(), u64::MAX);
}

/// Every domain's encodings fit the published maximum lengths, so a caller can bound a frame
/// before parsing.
#[test]
fn encodings_fit_the_maximum_lengths() {
    for bits in 1..=MAX_BITS {
        for block_bits in [2, 4, 6, 8] {
            let d = Domain::new(bits, block_bits).expect("valid");
            assert!(LeftCiphertext::encoded_len(&d) <= LeftCiphertext::MAX_LEN);
            assert!(RightCiphertext::encoded_len(&d) <= RightCiphertext::MAX_LEN);
        }
    }
    assert_eq!(LeftCiphertext::MAX_LEN, 4 + 32 * 17);
    assert_eq!(RightCiphertext::MAX_LEN, 4 + 16 + 2048_usize.div_ceil(5));
}

/// A made-up "encryption" with identity permutations and slot keys anyone can compute: not
/// secure, but it exercises the comparison rule exactly as the real scheme does.
fn toy_key(i: usize, prefix: u64, slot: usize) -> [u8; 16] {
    let mut key = [0u8; 16];
    key[0] = i as u8;
    key[1..9].copy_from_slice(&prefix.to_be_bytes());
    key[9] = slot as u8;
    key
}

fn toy_left(d: Domain, x: u64) -> LeftCiphertext {
    let blocks: Vec<LeftBlock> = (0..d.blocks())
        .map(|i| {
            let slot = d.block_value(x, i);
            LeftBlock {
                slot: slot as u8,
                key: toy_key(i, d.prefix(x, i), slot),
            }
        })
        .collect();
    LeftCiphertext::from_blocks(d, &blocks).expect("valid blocks")
}

fn toy_right(d: Domain, y: u64, nonce: [u8; 16]) -> RightCiphertext {
    let mut keys = Vec::new();
    let mut cmp = Vec::new();
    for i in 0..d.blocks() {
        let value = d.block_value(y, i);
        for j in 0..d.slots(i) {
            keys.push(toy_key(i, d.prefix(y, i), j));
            cmp.push(match j.cmp(&value) {
                Ordering::Equal => 0,
                Ordering::Greater => 1,
                Ordering::Less => 2,
            });
        }
    }
    RightCiphertext::from_slots(d, nonce, keys, &cmp).expect("valid slots")
}

proptest! {
    #[test]
    fn the_first_differing_block_decides(
        bits in 1u8..=64,
        block in 0usize..4,
        x in any::<u64>(),
        y in any::<u64>(),
        nonce in any::<[u8; 16]>(),
    ) {
        let d = Domain::new(bits, [2, 4, 6, 8][block]).expect("valid");
        let (x, y) = (x & d.max_plaintext(), y & d.max_plaintext());
        let right = toy_right(d, y, nonce);
        prop_assert_eq!(compare(&toy_left(d, x), &right), Ok(x.cmp(&y)));
        prop_assert_eq!(compare(&toy_left(d, y), &right), Ok(Ordering::Equal));
    }
}

#[test]
fn assembly_checks_its_inputs() {
    let d = Domain::new(10, 4).expect("valid");
    let block = LeftBlock {
        slot: 0,
        key: [0; 16],
    };
    assert_eq!(
        LeftCiphertext::from_blocks(d, &[block; 2]).map(|_| ()),
        Err(OreError::BadBlocks {
            expected: 3,
            got: 2
        })
    );
    // The last block of 10 bits in 4-bit blocks has 2 bits, so 4 slots.
    let wide = LeftBlock {
        slot: 4,
        key: [0; 16],
    };
    assert_eq!(
        LeftCiphertext::from_blocks(d, &[block, block, wide]).map(|_| ()),
        Err(OreError::BadSlot { block: 2 })
    );
    let keys = vec![[0u8; 16]; d.total_slots()];
    assert_eq!(
        RightCiphertext::from_slots(d, [0; 16], keys[1..].iter().copied(), &[0; 35]).map(|_| ()),
        Err(OreError::BadSlots {
            expected: 36,
            got: 35
        })
    );
    let mut cmp = vec![0u8; 36];
    cmp[7] = 3;
    assert_eq!(
        RightCiphertext::from_slots(d, [0; 16], keys, &cmp).map(|_| ()),
        Err(OreError::BadSlots {
            expected: 36,
            got: 36
        })
    );
}

//! The canonical decoding of what blocks and transactions carry (`bmpls-types`), and the ORE
//! ciphertexts inside a record's cells that validators parse (`bmpls-ore-compare`). The first
//! byte picks the type; the rest is the input.
#![no_main]

use bmpls_fuzz::{canonical, split2};
use bmpls_ore_compare::{LeftCiphertext, RightCiphertext, compare};
use bmpls_types::{
    Block, BlockHeader, CommitCertificate, LocationRecord, PrecommitTarget, Transaction,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&which, bytes)) = data.split_first() else {
        return;
    };
    match which % 8 {
        0 => {
            if let Some(tx) = canonical::<Transaction>(bytes) {
                // What a validator computes from any transaction it is sent.
                let _ = tx.leaf_bytes();
            }
        }
        1 => {
            let _ = canonical::<Block>(bytes);
        }
        2 => {
            let _ = canonical::<BlockHeader>(bytes);
        }
        3 => {
            let _ = canonical::<CommitCertificate>(bytes);
        }
        4 => {
            if let Some(record) = canonical::<LocationRecord>(bytes) {
                let _ = record.digest();
            }
        }
        5 => {
            let _ = canonical::<PrecommitTarget>(bytes);
        }
        6 => {
            if let Ok(right) = RightCiphertext::from_bytes(bytes) {
                assert_eq!(right.to_bytes(), bytes, "right ciphertext not canonical");
            }
            if let Ok(left) = LeftCiphertext::from_bytes(bytes) {
                assert_eq!(left.to_bytes(), bytes, "left ciphertext not canonical");
            }
        }
        _ => {
            // A token against a stored cell, as a validator compares them.
            let Some((left, right)) = split2(bytes) else {
                return;
            };
            if let (Ok(left), Ok(right)) = (
                LeftCiphertext::from_bytes(left),
                RightCiphertext::from_bytes(right),
            ) {
                let ordering = compare(&left, &right);
                assert_eq!(
                    ordering.is_ok(),
                    left.domain() == right.domain(),
                    "compared across domains, or refused within one"
                );
                let _ = right.comparator().compare(&left);
            }
        }
    }
});

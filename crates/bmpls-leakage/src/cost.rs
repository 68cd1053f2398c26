//! What each layout costs in bytes: a stored record and a carer's answer per record.
//!
//! Measured on today's encoding (`LocationRecord`, `RecordView`), with each order-revealing
//! level's 16-byte order-preserving ciphertext replaced by its right ciphertext and a
//! [`PER_LEVEL_FRAMING`] of framing: the record format that will carry right ciphertexts
//! is not merged yet, so these are the sizes it will have to within that framing.

use bmpls_grid::LevelIndex;
use bmpls_types::Canonical;

use crate::observe::{Layout, Scheme, Sealed};

/// Bytes of an order-preserving ciphertext in today's encoding (a `u128`).
pub const OPE_BYTES: usize = 16;
/// Framing assumed around a right ciphertext: a scheme tag and a 4-byte length.
pub const PER_LEVEL_FRAMING: usize = 5;

/// Bytes of each level of `sealed` under `layout`, finest first.
pub fn level_bytes(sealed: &Sealed, layout: &Layout) -> Vec<usize> {
    (0..sealed.record.cells.len())
        .map(|i| match (layout.scheme(i), sealed.rights.get(i)) {
            (Scheme::Ore, Some(Some(right))) => right.as_bytes().len() + PER_LEVEL_FRAMING,
            _ => OPE_BYTES,
        })
        .collect()
}

/// Bytes of the stored record under `layout`.
pub fn record_bytes(sealed: &Sealed, layout: &Layout) -> usize {
    let levels: usize = level_bytes(sealed, layout).iter().sum();
    sealed.record.encoded_len() - OPE_BYTES * sealed.record.cells.len() + levels
}

/// Bytes of the record as an answer at `level` carries it (wire version 2: that level and the
/// coarser ones, one hash for the rest) under `layout`.
pub fn view_bytes(sealed: &Sealed, layout: &Layout, level: LevelIndex) -> usize {
    let view = sealed.record.view(bmpls_types::LevelIndex(level.0));
    let encoded = borsh::to_vec(&view).map_or(0, |v| v.len());
    let first = usize::from(level.0);
    let carried = level_bytes(sealed, layout);
    let carried = carried.get(first..).unwrap_or(&[]);
    encoded - OPE_BYTES * carried.len() + carried.iter().sum::<usize>()
}

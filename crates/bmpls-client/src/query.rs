//! The carer's side of an area query: cell-index ranges at a level become ciphertext ranges
//! under one epoch's key, which a node can compare with stored ciphertexts as integers.

use bmpls_grid::IndexRange;
use bmpls_ope::keys::EpochKey;
use bmpls_ope::{OpeCipher, OpeError, OpeParams};
use bmpls_types::OpeCiphertext;

/// Encrypts the bounds of `ranges` (cell indices at `depth`) under `key`: each range becomes the
/// ciphertext interval from the lowest point of its first cell's bucket to the highest point of
/// its last, which holds exactly the ciphertexts of the cells in the range.
pub fn encrypt_ranges(
    key: &EpochKey,
    depth: u8,
    ranges: &[IndexRange],
) -> Result<Vec<(OpeCiphertext, OpeCiphertext)>, OpeError> {
    let params = OpeParams::with_default_expansion(2 * depth)?;
    let mut cipher = OpeCipher::new(key.expose_secret(), params);
    ranges
        .iter()
        .map(|&(first, last)| {
            let bounds = cipher.range_bounds(first, last)?;
            Ok((OpeCiphertext(bounds.lo), OpeCiphertext(bounds.hi)))
        })
        .collect()
}

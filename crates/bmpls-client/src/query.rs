//! The carer's side of an area query: cell-index ranges at a level become ciphertext ranges
//! under one epoch's key, which a node can compare with stored ciphertexts as integers.

use bmpls_grid::IndexRange;
use bmpls_net::query::{Ask, EpochRanges, MAX_EPOCH_RANGES, MAX_QUERY_EPOCHS};
use bmpls_ope::keys::{Epoch as KeyEpoch, EpochKey, GrantKeys};
use bmpls_ope::{OpeCipher, OpeError, OpeParams};
use bmpls_types::{BoundedVec, Epoch, OpeCiphertext};

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

/// The encrypted form of an area for a `Within` query: `cells` (index ranges at `depth`, the
/// depth of `level`) encrypted under each epoch's key of `level` in `[first, last]`.
pub fn area_query(
    keys: &GrantKeys,
    level: u8,
    depth: u8,
    cells: &[IndexRange],
    (first, last): (Epoch, Epoch),
) -> Result<Ask, AreaError> {
    if cells.len() > MAX_EPOCH_RANGES {
        return Err(AreaError::TooManyRanges(cells.len()));
    }
    let mut epochs = Vec::new();
    for epoch in first.0..=last.0 {
        let key = keys
            .epoch_key(level, KeyEpoch(epoch))
            .map_err(|e| AreaError::Keys(e.to_string()))?;
        let ranges =
            encrypt_ranges(&key, depth, cells).map_err(|e| AreaError::Keys(e.to_string()))?;
        epochs.push(EpochRanges {
            epoch: Epoch(epoch),
            ranges: BoundedVec::new(ranges).map_err(|_| AreaError::TooManyRanges(cells.len()))?,
        });
    }
    let count = epochs.len();
    Ok(Ask::Within(
        BoundedVec::new(epochs).map_err(|_| AreaError::TooManyEpochs(count))?,
    ))
}

/// An area that cannot be asked about.
#[derive(Debug, thiserror::Error)]
pub enum AreaError {
    /// The grant's keys do not reach the level or an epoch of the window.
    #[error("the grant's keys: {0}")]
    Keys(String),
    /// The area covers too many runs of cells at this level: ask at a coarser level.
    #[error(
        "the area is {0} runs of cells at this level; at most {MAX_EPOCH_RANGES}: ask at a coarser level or a simpler area"
    )]
    TooManyRanges(usize),
    /// The window spans too many key epochs.
    #[error("the window spans {0} key epochs; at most {MAX_QUERY_EPOCHS}")]
    TooManyEpochs(usize),
}

//! The carer's side of an area query: cell-index ranges at a level become, under each epoch's
//! key, ciphertext ranges a node compares with stored OPE ciphertexts as integers, or left
//! tokens it compares with stored ORE right ciphertexts (after a coarse OPE pre-filter).

use bmpls_grid::{IndexRange, LevelIndex as GridLevel, LevelSet, Scheme};
use bmpls_net::query::{
    Ask, EpochRanges, EpochTokens, MAX_EPOCH_RANGES, MAX_EPOCH_TOKEN_RANGES, MAX_QUERY_EPOCHS,
    OreArea,
};
use bmpls_ope::keys::EpochKey;
use bmpls_ope::{OpeCipher, OpeError, OpeParams};
use bmpls_types::{BoundedVec, Epoch, LevelIndex, OpeCiphertext};

use crate::ciphers::{CipherError, EncryptedRanges, EpochKeys, LevelCiphers};

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

/// The encrypted form of an area for a `Within` query: `cells` (index ranges at the depth of
/// `level`) encrypted under each epoch's key of `level` in `[first, last]`. At an OPE level these
/// are ciphertext ranges; at an ORE level, left tokens of the ranges' ends plus, as the node's
/// pre-filter, the same area covered at the finest OPE level coarser than `level` (each cell's
/// ancestor) and encrypted under that level's keys.
pub fn area_query(
    keys: &impl EpochKeys,
    levels: &LevelSet,
    level: u8,
    cells: &[IndexRange],
    (first, last): (Epoch, Epoch),
) -> Result<Ask, AreaError> {
    if cells.len() > MAX_EPOCH_RANGES {
        return Err(AreaError::TooManyRanges(cells.len()));
    }
    let epochs = usize::try_from(last.0.saturating_sub(first.0)).unwrap_or(usize::MAX) + 1;
    if last < first || epochs > MAX_QUERY_EPOCHS {
        return Err(AreaError::TooManyEpochs(epochs));
    }
    let the_level = levels
        .get(GridLevel(level))
        .ok_or_else(|| AreaError::Keys(format!("no level {level}")))?;
    let mut ciphers = LevelCiphers::new(levels.clone());
    let keys_error = |e: CipherError| AreaError::Keys(e.to_string());
    let ope_ranges = |ciphers: &mut LevelCiphers, level: u8, cells: &[IndexRange]| {
        let mut out = Vec::new();
        for epoch in first.0..=last.0 {
            let EncryptedRanges::Ope(ranges) = ciphers
                .ranges(keys, level, epoch, cells)
                .map_err(keys_error)?
            else {
                return Err(AreaError::Keys(format!("level {level} is not under OPE")));
            };
            out.push(EpochRanges {
                epoch: Epoch(epoch),
                ranges: BoundedVec::new(ranges)
                    .map_err(|_| AreaError::TooManyRanges(cells.len()))?,
            });
        }
        BoundedVec::new(out).map_err(|_| AreaError::TooManyEpochs(epochs))
    };
    if the_level.scheme == Scheme::Ope {
        return Ok(Ask::Within(ope_ranges(&mut ciphers, level, cells)?));
    }
    if cells.len() > MAX_EPOCH_TOKEN_RANGES {
        return Err(AreaError::TooManyRanges(cells.len()));
    }
    let (coarse, coarse_level) = levels
        .levels()
        .iter()
        .enumerate()
        .skip(usize::from(level) + 1)
        .find(|(_, l)| l.scheme == Scheme::Ope)
        .ok_or(AreaError::NoPrefilterLevel)?;
    let coarse = coarse as u8;
    let shift = 2 * u32::from(the_level.depth - coarse_level.depth);
    let coarse_cells = ancestors(cells, shift);
    let prefilter = ope_ranges(&mut ciphers, coarse, &coarse_cells)?;
    let mut tokens = Vec::new();
    for epoch in first.0..=last.0 {
        let EncryptedRanges::Ore(ranges) = ciphers
            .ranges(keys, level, epoch, cells)
            .map_err(keys_error)?
        else {
            return Err(AreaError::Keys(format!("level {level} is not under ORE")));
        };
        tokens.push(EpochTokens {
            epoch: Epoch(epoch),
            ranges: BoundedVec::new(ranges).map_err(|_| AreaError::TooManyRanges(cells.len()))?,
        });
    }
    Ok(Ask::WithinOre(Box::new(OreArea {
        coarse: LevelIndex(coarse),
        prefilter,
        tokens: BoundedVec::new(tokens).map_err(|_| AreaError::TooManyEpochs(epochs))?,
    })))
}

/// The ranges of cells `shift` bits coarser that hold `cells` (sorted ranges), merged.
fn ancestors(cells: &[IndexRange], shift: u32) -> Vec<IndexRange> {
    let mut out: Vec<IndexRange> = Vec::with_capacity(cells.len());
    for &(first, last) in cells {
        let (a, b) = (first >> shift, last >> shift);
        match out.last_mut() {
            Some(prev) if a <= prev.1.saturating_add(1) => prev.1 = prev.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
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
    /// An ORE level's query needs a coarser OPE level to pre-filter by, and the levels
    /// configuration has none.
    #[error("the levels configuration has no OPE level coarser than the one asked")]
    NoPrefilterLevel,
    /// The window spans too many key epochs.
    #[error("the window spans {0} key epochs; at most {MAX_QUERY_EPOCHS}")]
    TooManyEpochs(usize),
}

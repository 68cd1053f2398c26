//! Every level's cipher in one place, whatever its scheme ([`Scheme`]): a reporter encrypts a
//! cell, a carer or custodian encrypts an area's ranges (OPE bounds or ORE left tokens), and a
//! carer decrypts a record view's cell. Keys come from the patient's hierarchy or a grant
//! ([`EpochKeys`]); ciphers are kept per level and epoch, because OPE's memoised trees make
//! repeat encryptions fast and an ORE key's schedules cost a few microseconds to derive.
//!
//! An ORE right ciphertext has no decryption of its own: a carer holding the level key finds
//! the cell block by block (`OreKey::decrypt_right`): each block's permutation once, then a
//! bisection of the block's values, each probe one slot key against the block's slot. The cell
//! must lie inside the parent cell decrypted at the next coarser level, if the view carries it
//! (a Hilbert cell's index is its parent's followed by two bits per level between them).

use std::collections::HashMap;

use bmpls_grid::{CellIndex, IndexRange, LevelSet, Scheme};
use bmpls_ope::keys::{Epoch as KeyEpoch, EpochKey, GrantKeys, KeyError, PatientKeys};
use bmpls_ope::{OpeCipher, OpeError, OpeParams};
use bmpls_ore::{Domain, OreError, OreKey, RightCiphertext};
use bmpls_types::{BoundedVec, Cell, LevelIndex, OpeCiphertext, OreLeft, OreRight, RecordView};
use rand_core::CryptoRngCore;

/// What a level's epoch keys come from: the patient's whole hierarchy or a carer's grant.
pub trait EpochKeys {
    /// The key of `level` in `epoch`.
    fn epoch_key(&self, level: u8, epoch: KeyEpoch) -> Result<EpochKey, KeyError>;
}

impl EpochKeys for PatientKeys {
    fn epoch_key(&self, level: u8, epoch: KeyEpoch) -> Result<EpochKey, KeyError> {
        PatientKeys::epoch_key(self, level, epoch)
    }
}

impl EpochKeys for GrantKeys {
    fn epoch_key(&self, level: u8, epoch: KeyEpoch) -> Result<EpochKey, KeyError> {
        GrantKeys::epoch_key(self, level, epoch)
    }
}

/// Why a cell or range could not be encrypted or decrypted.
#[derive(Debug, thiserror::Error)]
pub enum CipherError {
    /// The keys do not reach the level or epoch.
    #[error("keys: {0}")]
    Keys(#[from] KeyError),
    /// Order-preserving encryption failed.
    #[error("order-preserving encryption: {0}")]
    Ope(#[from] OpeError),
    /// Order-revealing encryption failed (a malformed ciphertext, a value outside the domain).
    #[error("order-revealing encryption: {0}")]
    Ore(#[from] OreError),
    /// An ORE ciphertext longer than records and queries carry (a domain too large).
    #[error("an ORE ciphertext longer than records carry")]
    TooLong,
    /// The levels configuration has no such level.
    #[error("no level {0}")]
    NoLevel(u8),
    /// A ciphertext of the other scheme than the level's.
    #[error("level {0} holds a ciphertext of the wrong scheme")]
    Scheme(u8),
    /// The view does not carry the level.
    #[error("the record does not carry level {0}")]
    Missing(u8),
    /// No cell of the parent's children matches the right ciphertext: it was not made with
    /// this key, or its record is inconsistent between levels.
    #[error("level {0}'s ciphertext decrypts to no cell under its parent")]
    Undecryptable(u8),
}

/// Ciphers of each level and epoch, over one levels configuration.
pub struct LevelCiphers {
    levels: LevelSet,
    ope: HashMap<(u8, u32), OpeCipher>,
    ore: HashMap<(u8, u32), OreKey>,
}

impl std::fmt::Debug for LevelCiphers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LevelCiphers")
            .field("levels", &self.levels.len())
            .finish_non_exhaustive()
    }
}

/// An area's bounds under one level's scheme and one epoch's key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EncryptedRanges {
    /// OPE ciphertext bounds: each range from the lowest ciphertext of its first cell's bucket
    /// to the highest of its last.
    Ope(Vec<(OpeCiphertext, OpeCiphertext)>),
    /// ORE left tokens of each range's first and last cell.
    Ore(Vec<(OreLeft, OreLeft)>),
}

impl LevelCiphers {
    /// Ciphers over `levels`, none derived yet.
    pub fn new(levels: LevelSet) -> Self {
        Self {
            levels,
            ope: HashMap::new(),
            ore: HashMap::new(),
        }
    }

    /// The levels configuration.
    pub fn levels(&self) -> &LevelSet {
        &self.levels
    }

    /// Forgets the ciphers of every epoch but `epoch` (a reporter moving to a new day).
    pub fn keep_only_epoch(&mut self, epoch: u32) {
        self.ope.retain(|&(_, e), _| e == epoch);
        self.ore.retain(|&(_, e), _| e == epoch);
    }

    fn level(&self, level: u8) -> Result<(u8, Scheme), CipherError> {
        let l = self
            .levels
            .get(bmpls_grid::LevelIndex(level))
            .ok_or(CipherError::NoLevel(level))?;
        Ok((l.depth, l.scheme))
    }

    fn ope_cipher(
        &mut self,
        keys: &impl EpochKeys,
        level: u8,
        epoch: u32,
    ) -> Result<&mut OpeCipher, CipherError> {
        let (depth, _) = self.level(level)?;
        Ok(match self.ope.entry((level, epoch)) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                let key = keys.epoch_key(level, KeyEpoch(epoch))?;
                let params = OpeParams::with_default_expansion(2 * depth)?;
                e.insert(OpeCipher::new(key.expose_secret(), params))
            }
        })
    }

    fn ore_key(
        &mut self,
        keys: &impl EpochKeys,
        level: u8,
        epoch: u32,
    ) -> Result<&OreKey, CipherError> {
        let (depth, _) = self.level(level)?;
        Ok(match self.ore.entry((level, epoch)) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                let key = keys.epoch_key(level, KeyEpoch(epoch))?;
                let domain = Domain::for_level_bits(2 * depth)?;
                e.insert(OreKey::new(key.expose_secret(), domain))
            }
        })
    }

    /// A record's ciphertext of `cell` (a cell at the level's depth) at `level` in `epoch`:
    /// randomised under the caller's RNG whatever the scheme.
    pub fn encrypt(
        &mut self,
        keys: &impl EpochKeys,
        level: u8,
        epoch: u32,
        cell: u64,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Cell, CipherError> {
        match self.level(level)?.1 {
            Scheme::Ope => {
                let cipher = self.ope_cipher(keys, level, epoch)?;
                Ok(Cell::Ope(OpeCiphertext(cipher.encrypt(cell, rng)?)))
            }
            Scheme::Ore => {
                let right = self.ore_key(keys, level, epoch)?.encrypt_right(cell, rng)?;
                let bytes = BoundedVec::new(right.to_bytes()).map_err(|_| CipherError::TooLong)?;
                Ok(Cell::Ore(OreRight(bytes)))
            }
        }
    }

    /// The bounds of `ranges` (cell indices at the level's depth) at `level` in `epoch`, under
    /// the level's scheme.
    pub fn ranges(
        &mut self,
        keys: &impl EpochKeys,
        level: u8,
        epoch: u32,
        ranges: &[IndexRange],
    ) -> Result<EncryptedRanges, CipherError> {
        match self.level(level)?.1 {
            Scheme::Ope => {
                let cipher = self.ope_cipher(keys, level, epoch)?;
                let bounds = ranges
                    .iter()
                    .map(|&(first, last)| {
                        let b = cipher.range_bounds(first, last)?;
                        Ok((OpeCiphertext(b.lo), OpeCiphertext(b.hi)))
                    })
                    .collect::<Result<_, OpeError>>()?;
                Ok(EncryptedRanges::Ope(bounds))
            }
            Scheme::Ore => {
                let key = self.ore_key(keys, level, epoch)?;
                let token = |x: u64| -> Result<OreLeft, CipherError> {
                    let bytes = BoundedVec::new(key.encrypt_left(x)?.to_bytes())
                        .map_err(|_| CipherError::TooLong)?;
                    Ok(OreLeft(bytes))
                };
                let tokens = ranges
                    .iter()
                    .map(|&(first, last)| Ok((token(first)?, token(last)?)))
                    .collect::<Result<_, CipherError>>()?;
                Ok(EncryptedRanges::Ore(tokens))
            }
        }
    }

    /// The cell index ranges that [`LevelCiphers::ranges`] encrypted as `encrypted` at `level`
    /// in `epoch` (a fence's covering, for a carer holding the level key to draw it): each
    /// bound decrypted under the level's scheme (an ORE bound is a left token, decrypted with
    /// [`OreKey::decrypt_left`], refused when not under this key). Ranges that come back
    /// unsorted or reversed are refused: a custodian's client never makes them.
    pub fn decrypt_ranges(
        &mut self,
        keys: &impl EpochKeys,
        level: u8,
        epoch: u32,
        encrypted: &EncryptedRanges,
    ) -> Result<Vec<IndexRange>, CipherError> {
        let ranges: Vec<IndexRange> = match (self.level(level)?.1, encrypted) {
            (Scheme::Ope, EncryptedRanges::Ope(bounds)) => {
                let cipher = self.ope_cipher(keys, level, epoch)?;
                bounds
                    .iter()
                    .map(|(lo, hi)| Ok((cipher.decrypt(lo.0)?, cipher.decrypt(hi.0)?)))
                    .collect::<Result<_, OpeError>>()?
            }
            (Scheme::Ore, EncryptedRanges::Ore(tokens)) => {
                let key = self.ore_key(keys, level, epoch)?;
                let open =
                    |t: &OreLeft| key.decrypt_left(&bmpls_ore::LeftCiphertext::from_bytes(&t.0)?);
                tokens
                    .iter()
                    .map(|(lo, hi)| Ok((open(lo)?, open(hi)?)))
                    .collect::<Result<_, OreError>>()?
            }
            _ => return Err(CipherError::Scheme(level)),
        };
        let sorted =
            ranges.iter().all(|(lo, hi)| lo <= hi) && ranges.windows(2).all(|w| w[0].1 < w[1].0);
        if !sorted {
            return Err(CipherError::Undecryptable(level));
        }
        Ok(ranges)
    }

    /// The cell of `view` at `level` (the view's own level or a coarser one), decrypted with
    /// `keys`: OPE directly, ORE block by block, inside the parent cell (see the module docs).
    pub fn decrypt(
        &mut self,
        keys: &impl EpochKeys,
        view: &RecordView,
        level: u8,
    ) -> Result<CellIndex, CipherError> {
        let (depth, scheme) = self.level(level)?;
        let cell = view
            .cell(LevelIndex(level))
            .ok_or(CipherError::Missing(level))?;
        let epoch = view.epoch.0;
        let index = match (scheme, cell) {
            (Scheme::Ope, Cell::Ope(c)) => self.ope_cipher(keys, level, epoch)?.decrypt(c.0)?,
            (Scheme::Ore, Cell::Ore(right)) => {
                let right = RightCiphertext::from_bytes(&right.0)?;
                let index = match self.ore_key(keys, level, epoch)?.decrypt_right(&right) {
                    Err(OreError::NotUnderThisKey) => {
                        return Err(CipherError::Undecryptable(level));
                    }
                    other => other?,
                };
                // A cell outside the children of the coarser cell carried beside it is not a
                // record's (the reporter encrypts one position at every level).
                if let Some(parent) = level.checked_add(1)
                    && view.cell(LevelIndex(parent)).is_some()
                {
                    let (parent_depth, _) = self.level(parent)?;
                    let shift = 2 * u32::from(depth - parent_depth);
                    if index >> shift != self.decrypt(keys, view, parent)?.index() {
                        return Err(CipherError::Undecryptable(level));
                    }
                }
                index
            }
            _ => return Err(CipherError::Scheme(level)),
        };
        CellIndex::new(depth, index).map_err(|_| CipherError::Undecryptable(level))
    }
}

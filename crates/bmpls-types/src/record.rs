//! The location record: what a reporter submits for each GPS fix. It carries no plaintext
//! position — one ciphertext per level ([`Cell`]: an ORE right ciphertext at the fine levels, a
//! randomised OPE ciphertext at the coarse ones) and the AEAD-sealed exact fix.
//!
//! A record is signed, and put in its block's Merkle tree, through its [`RecordDigest`]: the
//! fields in the clear plus one hash that chains the levels from the sealed fix up to the
//! coarsest ciphertext. So an answer can carry a [`RecordView`] — the levels a carer was granted
//! and only a hash for everything finer — and the carer still checks the reporter's signature
//! and the inclusion proof. A carer at `neighbourhood` never receives the `street` or `exact`
//! ciphertexts nor the sealed fix.

use borsh::{BorshDeserialize, BorshSerialize};
use sha2::{Digest, Sha256};

use crate::block::ChainId;
use crate::bounded::BoundedVec;
use crate::cell::Cell;
use crate::ids::{Epoch, Hash32, LevelIndex, PatientId, Seq, SignatureBytes};
use crate::limits::{MAX_LEVELS, MAX_SEALED_BYTES};
use crate::signed::Signed;

/// One signed, encrypted location fix.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct LocationRecord {
    /// The patient's pseudonym.
    pub patient: PatientId,
    /// Consecutive per patient (previous + 1): no replay, and a gap shows a missing record.
    pub seq: Seq,
    /// When the fix was taken, milliseconds since the Unix epoch.
    pub fix_time_ms: u64,
    /// Key epoch of the ciphertexts, derived from `fix_time_ms`.
    pub epoch: Epoch,
    /// One ciphertext per configured level, finest first: ORE right ciphertexts for the levels
    /// the configuration puts under ORE (the finest ones), randomised OPE for the rest.
    pub cells: BoundedVec<Cell, MAX_LEVELS>,
    /// AEAD of the exact fix under a key derived from the finest level's epoch key.
    pub sealed: BoundedVec<u8, MAX_SEALED_BYTES>,
    /// Ed25519 signature by the patient's reporter key over the record's [`RecordDigest`].
    pub sig: SignatureBytes,
}

/// What a record's signature and Merkle leaf cover: the fields in the clear and the top of the
/// level chain (see [`level_chain`]).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct RecordDigest {
    /// The patient's pseudonym.
    pub patient: PatientId,
    /// The record's sequence number.
    pub seq: Seq,
    /// When the fix was taken.
    pub fix_time_ms: u64,
    /// Key epoch of the ciphertexts.
    pub epoch: Epoch,
    /// How many levels the record carries.
    pub level_count: u8,
    /// The level chain's value over every level and the sealed fix.
    pub levels: Hash32,
    /// The reporter's signature.
    pub sig: SignatureBytes,
}

impl Signed for RecordDigest {
    const TAG: &'static [u8] = b"bmpls/v2/sig/location-record";
    fn signature(&self) -> &SignatureBytes {
        &self.sig
    }
    fn signature_mut(&mut self) -> &mut SignatureBytes {
        &mut self.sig
    }
}

/// The level chain: `h(sealed) = H("sealed" ‖ sealed)`, then for each level `i` from the finest
/// (0) up, `h(i) = H("level" ‖ i ‖ ciphertext_i ‖ h(i − 1))`. Knowing `h(L − 1)` and the
/// ciphertexts of levels `L` and coarser gives the top without the finer ones; the ciphertexts
/// are randomised, so a hash of them reveals nothing a guess could confirm.
pub mod level_chain {
    use super::*;

    /// The chain's start: the hash of the sealed fix.
    pub fn sealed(sealed: &[u8]) -> Hash32 {
        let mut h = Sha256::new();
        h.update(b"bmpls/v2/chain/sealed\0");
        h.update((sealed.len() as u32).to_be_bytes());
        h.update(sealed);
        Hash32(h.finalize().into())
    }

    /// One link: level `index`'s ciphertext over the chain's value below it. The scheme is
    /// hashed with the ciphertext, so a view cannot pass one scheme's bytes off as the other's.
    pub fn link(index: usize, cell: &Cell, below: &Hash32) -> Hash32 {
        let mut h = Sha256::new();
        h.update(b"bmpls/v2/chain/level\0");
        h.update([index as u8]);
        match cell {
            Cell::Ope(c) => {
                h.update([0]);
                h.update(c.0.to_be_bytes());
            }
            Cell::Ore(r) => {
                h.update([1]);
                h.update((r.0.len() as u32).to_be_bytes());
                h.update(&r.0[..]);
            }
        }
        h.update(below.0);
        Hash32(h.finalize().into())
    }

    /// The chain over `cells` (finest first, the first at level `first`) from `below`.
    pub fn over(first: usize, cells: &[Cell], below: Hash32) -> Hash32 {
        cells
            .iter()
            .enumerate()
            .fold(below, |acc, (i, c)| link(first + i, c, &acc))
    }
}

impl LocationRecord {
    /// The record's digest: what its signature and Merkle leaf cover.
    pub fn digest(&self) -> RecordDigest {
        RecordDigest {
            patient: self.patient,
            seq: self.seq,
            fix_time_ms: self.fix_time_ms,
            epoch: self.epoch,
            level_count: self.cells.len() as u8,
            levels: level_chain::over(0, &self.cells, level_chain::sealed(&self.sealed)),
            sig: self.sig,
        }
    }

    /// What a carer at `level` receives of this record: the ciphertexts of `level` and coarser,
    /// the sealed fix only at level 0, and the chain's value below `level` in place of the rest.
    /// A level past the record's last gives a view with no ciphertexts.
    pub fn view(&self, level: LevelIndex) -> RecordView {
        self.clone().into_view(level)
    }

    /// [`LocationRecord::view`], consuming the record: the kept ciphertexts move into the view
    /// instead of being copied (a validator cuts every record of an answer this way).
    pub fn into_view(self, level: LevelIndex) -> RecordView {
        let first = usize::from(level.0).min(self.cells.len());
        let mut finer_cells = self.cells.into_inner();
        let kept = finer_cells.split_off(first);
        let finer = if first == 0 {
            Finer::Sealed(self.sealed)
        } else {
            Finer::Hidden(level_chain::over(
                0,
                &finer_cells,
                level_chain::sealed(&self.sealed),
            ))
        };
        RecordView {
            patient: self.patient,
            seq: self.seq,
            fix_time_ms: self.fix_time_ms,
            epoch: self.epoch,
            level: LevelIndex(first as u8),
            cells: BoundedVec::new(kept).expect("a suffix of a bounded list is bounded"),
            finer,
            sig: self.sig,
        }
    }
}

// The signature of a record is its digest's: every generic signing path (mempool batches, the
// ledger, the reporter) signs and checks the same bytes.
impl Signed for LocationRecord {
    const TAG: &'static [u8] = RecordDigest::TAG;
    fn signature(&self) -> &SignatureBytes {
        &self.sig
    }
    fn signature_mut(&mut self) -> &mut SignatureBytes {
        &mut self.sig
    }
    fn signing_bytes(&self, chain: &ChainId) -> Vec<u8> {
        self.digest().signing_bytes(chain)
    }
}

/// What stands in a [`RecordView`] for the levels finer than the view's.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum Finer {
    /// The view is at level 0: the sealed exact fix itself.
    Sealed(BoundedVec<u8, MAX_SEALED_BYTES>),
    /// The level chain's value below the view's level.
    Hidden(Hash32),
}

/// A record as a carer at one level receives it: enough to check its signature and inclusion,
/// nothing finer than the level.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct RecordView {
    /// The patient's pseudonym.
    pub patient: PatientId,
    /// The record's sequence number.
    pub seq: Seq,
    /// When the fix was taken.
    pub fix_time_ms: u64,
    /// Key epoch of the ciphertexts.
    pub epoch: Epoch,
    /// The finest level carried.
    pub level: LevelIndex,
    /// The ciphertexts of `level` and every coarser level, finest first.
    pub cells: BoundedVec<Cell, MAX_LEVELS>,
    /// The sealed fix (level 0) or the chain's value below `level`.
    pub finer: Finer,
    /// The reporter's signature over the record's digest.
    pub sig: SignatureBytes,
}

impl RecordView {
    /// The digest of the record this view was cut from; `None` when the view is inconsistent
    /// (a sealed fix above level 0, a hidden chain at level 0, too many levels).
    pub fn digest(&self) -> Option<RecordDigest> {
        let first = usize::from(self.level.0);
        let below = match (&self.finer, first) {
            (Finer::Sealed(sealed), 0) => level_chain::sealed(sealed),
            (Finer::Hidden(below), f) if f > 0 => *below,
            _ => return None,
        };
        let level_count = first.checked_add(self.cells.len())?;
        if level_count > MAX_LEVELS {
            return None;
        }
        Some(RecordDigest {
            patient: self.patient,
            seq: self.seq,
            fix_time_ms: self.fix_time_ms,
            epoch: self.epoch,
            level_count: level_count as u8,
            levels: level_chain::over(first, &self.cells, below),
            sig: self.sig,
        })
    }

    /// The ciphertext of `level`, if the view carries it.
    pub fn cell(&self, level: LevelIndex) -> Option<&Cell> {
        let offset = usize::from(level.0).checked_sub(usize::from(self.level.0))?;
        self.cells.get(offset)
    }

    /// The sealed exact fix, if the view carries it.
    pub fn sealed(&self) -> Option<&[u8]> {
        match &self.finer {
            Finer::Sealed(s) => Some(s),
            Finer::Hidden(_) => None,
        }
    }
}

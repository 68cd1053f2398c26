//! The location record: what a reporter submits for each GPS fix. It carries no plaintext
//! position — one randomised OPE ciphertext per level and the AEAD-sealed exact fix.

use borsh::{BorshDeserialize, BorshSerialize};

use crate::bounded::BoundedVec;
use crate::ids::{Epoch, OpeCiphertext, PatientId, Seq, SignatureBytes};
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
    /// One randomised OPE ciphertext per configured level, finest first.
    pub cells: BoundedVec<OpeCiphertext, MAX_LEVELS>,
    /// AEAD of the exact fix under a key derived from the finest level's epoch key.
    pub sealed: BoundedVec<u8, MAX_SEALED_BYTES>,
    /// Ed25519 signature by the patient's reporter key over everything above.
    pub sig: SignatureBytes,
}

impl Signed for LocationRecord {
    const TAG: &'static [u8] = b"bmpls/v1/sig/location-record";
    fn signature(&self) -> &SignatureBytes {
        &self.sig
    }
    fn signature_mut(&mut self) -> &mut SignatureBytes {
        &mut self.sig
    }
}

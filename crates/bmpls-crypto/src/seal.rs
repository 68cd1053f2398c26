//! Sealing the exact fix: ChaCha20-Poly1305 under a key derived from the finest level's epoch
//! key, with a random nonce and the record's identity as associated data, so a sealed payload
//! cannot be moved to another record unnoticed. Every fix seals to the same length.

use bmpls_types::{Epoch, ExactFix, PatientId, Seq};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use rand_core::CryptoRngCore;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::error::CryptoError;

/// Nonce length of ChaCha20-Poly1305.
const NONCE_LEN: usize = 12;
/// Authentication tag length.
const TAG_LEN: usize = 16;
/// Length of every sealed fix.
pub const SEALED_FIX_LEN: usize = NONCE_LEN + ExactFix::ENCODED_LEN + TAG_LEN;
const _: () = assert!(SEALED_FIX_LEN <= bmpls_types::limits::MAX_SEALED_BYTES);

const AAD_TAG: &[u8] = b"bmpls/v1/seal/exact-fix";

/// The ChaCha20-Poly1305 key that seals a patient's exact fixes in one epoch (derived from the
/// finest level's epoch key by the key hierarchy). Wiped on drop; never printed.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SealKey([u8; 32]);

impl SealKey {
    /// The key from 32 derived bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }
}

impl std::fmt::Debug for SealKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealKey(<redacted>)")
    }
}

fn associated_data(patient: &PatientId, seq: Seq, epoch: Epoch) -> Vec<u8> {
    let mut aad = AAD_TAG.to_vec();
    aad.extend_from_slice(&patient.0);
    aad.extend_from_slice(&seq.0.to_be_bytes());
    aad.extend_from_slice(&epoch.0.to_be_bytes());
    aad
}

/// Seals `fix` for the record `(patient, seq, epoch)` under `key`, with a fresh random nonce
/// from `rng` (96 random bits: one epoch key seals far fewer than the 2^32 messages after which
/// random nonces would risk repeating).
pub fn seal_fix(
    key: &SealKey,
    fix: &ExactFix,
    patient: &PatientId,
    seq: Seq,
    epoch: Epoch,
    rng: &mut impl CryptoRngCore,
) -> Result<Vec<u8>, CryptoError> {
    let cipher = ChaCha20Poly1305::new(Key::from_slice(&key.0));
    let mut nonce = [0u8; NONCE_LEN];
    rng.fill_bytes(&mut nonce);
    let plaintext = Zeroizing::new(borsh::to_vec(fix).map_err(|_| CryptoError::Seal("fix"))?);
    let aad = associated_data(patient, seq, epoch);
    let body = cipher
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: &plaintext,
                aad: &aad,
            },
        )
        .map_err(|_| CryptoError::Seal("fix"))?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&body);
    Ok(out)
}

/// Opens a sealed fix of the record `(patient, seq, epoch)`.
pub fn open_fix(
    key: &SealKey,
    sealed: &[u8],
    patient: &PatientId,
    seq: Seq,
    epoch: Epoch,
) -> Result<ExactFix, CryptoError> {
    if sealed.len() != SEALED_FIX_LEN {
        return Err(CryptoError::Open("fix"));
    }
    let (nonce, body) = sealed.split_at(NONCE_LEN);
    let cipher = ChaCha20Poly1305::new(Key::from_slice(&key.0));
    let aad = associated_data(patient, seq, epoch);
    let plaintext = Zeroizing::new(
        cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: body,
                    aad: &aad,
                },
            )
            .map_err(|_| CryptoError::Open("fix"))?,
    );
    borsh::from_slice(&plaintext).map_err(|_| CryptoError::Open("fix"))
}

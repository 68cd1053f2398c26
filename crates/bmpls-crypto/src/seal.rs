//! Sealing the exact fix: ChaCha20-Poly1305 under a key derived from the finest level's epoch
//! key, with a random nonce and the record's identity as associated data, so a sealed payload
//! cannot be moved to another record unnoticed. Every fix seals to the same length.

use bmpls_types::{Epoch, ExactFix, PatientId, Seq};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use rand_core::CryptoRngCore;
use zeroize::Zeroizing;

use crate::error::CryptoError;

/// Nonce length of ChaCha20-Poly1305.
const NONCE_LEN: usize = 12;
/// Authentication tag length.
const TAG_LEN: usize = 16;
/// Length of every sealed fix.
pub const SEALED_FIX_LEN: usize = NONCE_LEN + ExactFix::ENCODED_LEN + TAG_LEN;
const _: () = assert!(SEALED_FIX_LEN <= bmpls_types::limits::MAX_SEALED_BYTES);

const AAD_TAG: &[u8] = b"bmpls/v1/seal/exact-fix";

fn associated_data(patient: &PatientId, seq: Seq, epoch: Epoch) -> Vec<u8> {
    let mut aad = AAD_TAG.to_vec();
    aad.extend_from_slice(&patient.0);
    aad.extend_from_slice(&seq.0.to_be_bytes());
    aad.extend_from_slice(&epoch.0.to_be_bytes());
    aad
}

/// Seals `fix` for the record `(patient, seq, epoch)` under `key` (the seal key of the finest
/// level's epoch key).
pub fn seal_fix(
    key: &[u8; 32],
    fix: &ExactFix,
    patient: &PatientId,
    seq: Seq,
    epoch: Epoch,
    rng: &mut impl CryptoRngCore,
) -> Result<Vec<u8>, CryptoError> {
    let cipher = ChaCha20Poly1305::new(Key::from_slice(key));
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
    key: &[u8; 32],
    sealed: &[u8],
    patient: &PatientId,
    seq: Seq,
    epoch: Epoch,
) -> Result<ExactFix, CryptoError> {
    if sealed.len() != SEALED_FIX_LEN {
        return Err(CryptoError::Open("fix"));
    }
    let (nonce, body) = sealed.split_at(NONCE_LEN);
    let cipher = ChaCha20Poly1305::new(Key::from_slice(key));
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

//! Wrapping grant keys to a carer with HPKE (RFC 9180), base mode,
//! DHKEM(X25519, HKDF-SHA256) + HKDF-SHA256 + ChaCha20-Poly1305. The grant's fields are the
//! associated data, so wrapped keys cannot be moved to another grant.

use bmpls_types::AgreementKey;
use hpke::aead::ChaCha20Poly1305;
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, Kem, OpModeR, OpModeS, Serializable};
use rand_core::CryptoRngCore;
use zeroize::Zeroizing;

use crate::error::CryptoError;

/// HPKE `info`: names the protocol and purpose.
const INFO: &[u8] = b"bmpls/v1/hpke/grant-keys";
/// Length of the encapsulated key that leads the wrapped bytes.
const ENCAPPED_LEN: usize = 32;

/// A carer's X25519 key-agreement secret. Wiped on drop; never printed.
pub struct AgreementSecret(<X25519HkdfSha256 as Kem>::PrivateKey);

impl std::fmt::Debug for AgreementSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AgreementSecret(<redacted>)")
    }
}

impl AgreementSecret {
    /// A fresh key pair.
    pub fn generate(rng: &mut impl CryptoRngCore) -> (Self, AgreementKey) {
        let (secret, public) = X25519HkdfSha256::gen_keypair(rng);
        let mut bytes = [0u8; 32];
        bytes.copy_from_slice(&public.to_bytes());
        (Self(secret), AgreementKey(bytes))
    }

    /// The secret from its 32 bytes (a keystore).
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, CryptoError> {
        <X25519HkdfSha256 as Kem>::PrivateKey::from_bytes(bytes)
            .map(Self)
            .map_err(|_| CryptoError::BadPublicKey)
    }

    /// The secret's 32 bytes, for a keystore; wiped when dropped.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(self.0.to_bytes().to_vec())
    }

    /// The matching public key.
    pub fn public(&self) -> AgreementKey {
        let public = <X25519HkdfSha256 as Kem>::sk_to_pk(&self.0);
        let mut bytes = [0u8; 32];
        bytes.copy_from_slice(&public.to_bytes());
        AgreementKey(bytes)
    }
}

/// Wraps `plaintext` to `recipient`, bound to `aad`: `encapsulated key ‖ ciphertext ‖ tag`.
pub fn wrap(
    recipient: &AgreementKey,
    plaintext: &[u8],
    aad: &[u8],
    rng: &mut impl CryptoRngCore,
) -> Result<Vec<u8>, CryptoError> {
    let public = <X25519HkdfSha256 as Kem>::PublicKey::from_bytes(&recipient.0)
        .map_err(|_| CryptoError::BadPublicKey)?;
    let (encapped, ciphertext) = hpke::single_shot_seal::<
        ChaCha20Poly1305,
        HkdfSha256,
        X25519HkdfSha256,
        _,
    >(&OpModeS::Base, &public, INFO, plaintext, aad, rng)
    .map_err(|_| CryptoError::Seal("grant keys"))?;
    let mut out = encapped.to_bytes().to_vec();
    out.extend_from_slice(&ciphertext);
    Ok(out)
}

/// Opens bytes made by [`wrap`] with the recipient's secret and the same `aad`.
pub fn unwrap(
    secret: &AgreementSecret,
    wrapped: &[u8],
    aad: &[u8],
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    if wrapped.len() < ENCAPPED_LEN {
        return Err(CryptoError::Open("grant keys"));
    }
    let (encapped, ciphertext) = wrapped.split_at(ENCAPPED_LEN);
    let encapped = <X25519HkdfSha256 as Kem>::EncappedKey::from_bytes(encapped)
        .map_err(|_| CryptoError::Open("grant keys"))?;
    hpke::single_shot_open::<ChaCha20Poly1305, HkdfSha256, X25519HkdfSha256>(
        &OpModeR::Base,
        &secret.0,
        &encapped,
        INFO,
        ciphertext,
        aad,
    )
    .map(Zeroizing::new)
    .map_err(|_| CryptoError::Open("grant keys"))
}

//! Wrapping grant keys to a carer with HPKE (RFC 9180), base mode,
//! DHKEM(X25519, HKDF-SHA256) + HKDF-SHA256 + ChaCha20-Poly1305. The grant's fields are the
//! associated data, so wrapped keys cannot be moved to another grant.

use bmpls_types::limits::MAX_WRAPPED_KEY_BYTES;
use bmpls_types::{AgreementKey, BoundedVec, Grant};
use borsh::BorshSerialize;
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
/// Tag leading the associated data of wrapped grant keys.
const GRANT_AAD_TAG: &[u8] = b"bmpls/v1/hpke/grant-aad";

// hpke 0.12 builds x25519-dalek without its `zeroize` feature, and then X25519 secrets are not
// wiped on drop; this crate's own dependency on x25519-dalek turns the feature back on (cargo
// unifies features), and this fails to compile if it ever stops doing so (with the feature,
// `StaticSecret` implements `Zeroize` and wipes itself in `Drop`).
const _: fn() = || {
    fn wiped_on_drop<T: zeroize::Zeroize>() {}
    wiped_on_drop::<x25519_dalek::StaticSecret>();
};

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
            .map_err(|_| CryptoError::BadSecretKey)
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

/// The associated data binding wrapped keys to their grant: a tag, then every field of the
/// grant but the wrapped keys and the signature. Keys wrapped for one grant do not open under
/// another patient, carer, level, window, validity or purpose.
pub fn grant_aad(grant: &Grant) -> Vec<u8> {
    let mut aad = GRANT_AAD_TAG.to_vec();
    aad.push(0);
    let fields = (
        grant.patient,
        grant.carer,
        grant.level,
        grant.data_from,
        grant.data_to,
        grant.valid_from_ms,
        grant.valid_until_ms,
        &grant.purpose,
    );
    fields
        .serialize(&mut aad)
        .expect("serialising into a Vec cannot fail");
    aad
}

/// Wraps `key_material` to the carer's `recipient` key and stores it in `grant.wrapped_keys`,
/// bound to the grant's other fields (set them first; sign the grant after).
pub fn wrap_grant_keys(
    grant: &mut Grant,
    recipient: &AgreementKey,
    key_material: &[u8],
    rng: &mut impl CryptoRngCore,
) -> Result<(), CryptoError> {
    let wrapped = wrap(recipient, key_material, &grant_aad(grant), rng)?;
    grant.wrapped_keys = BoundedVec::<u8, MAX_WRAPPED_KEY_BYTES>::new(wrapped)
        .map_err(|_| CryptoError::Seal("grant keys"))?;
    Ok(())
}

/// Opens the key material of `grant` with the carer's secret.
pub fn unwrap_grant_keys(
    grant: &Grant,
    secret: &AgreementSecret,
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    unwrap(secret, &grant.wrapped_keys, &grant_aad(grant))
}

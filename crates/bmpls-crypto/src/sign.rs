//! Ed25519 signatures over [`Signed`] values: every signature covers a per-type
//! domain-separation tag (see `bmpls_types::Signed`). Signing is ed25519-dalek's; verification,
//! single and batched, follows ZIP 215 (`ed25519-zebra`), so that every validator reaches the
//! same verdict on a signature whatever it is checked with. Keys are registered only if they
//! pass [`check_public_key`].

use bmpls_types::{ChainId, PublicKeyBytes, SignatureBytes, Signed, Transaction};
use ed25519_dalek::Signer;
use rand_core::CryptoRngCore;
use zeroize::Zeroizing;

use crate::error::CryptoError;

/// An Ed25519 signing key (reporter, custodian, carer, operator or validator). Wiped on drop;
/// never printed.
#[derive(Clone)]
pub struct SigningKey(ed25519_dalek::SigningKey);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey(public {}, secret <redacted>)", self.public())
    }
}

impl SigningKey {
    /// A fresh random key.
    pub fn generate(rng: &mut impl CryptoRngCore) -> Self {
        Self(ed25519_dalek::SigningKey::generate(rng))
    }

    /// The key from its 32-byte seed (as stored in a keystore).
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Self(ed25519_dalek::SigningKey::from_bytes(seed))
    }

    /// The 32-byte seed, for a keystore; wiped when dropped.
    pub fn to_seed(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.0.to_bytes())
    }

    /// The public key.
    pub fn public(&self) -> PublicKeyBytes {
        PublicKeyBytes(self.0.verifying_key().to_bytes())
    }

    /// Signs raw `message` bytes (which must already carry a domain-separation tag).
    pub fn sign_bytes(&self, message: &[u8]) -> SignatureBytes {
        SignatureBytes(self.0.sign(message).to_bytes())
    }

    /// Fills in the signature of `value`, for `chain`.
    pub fn sign<T: Signed>(&self, value: &mut T, chain: &ChainId) {
        let signature = self.sign_bytes(&value.signing_bytes(chain));
        *value.signature_mut() = signature;
    }
}

/// Verifies `signature` over raw `message` bytes under `key`, by the ZIP 215 rules: `s` must be
/// canonical, `A` and `R` any encodings of curve points, and the cofactored equation
/// `[8][s]B = [8]R + [8][k]A` must hold. Under these rules (and only under rules like them) a
/// signature gets the same verdict alone and in any batch, which consensus needs: validators
/// that check a transaction in different company must agree on it.
pub fn verify_bytes(
    key: &PublicKeyBytes,
    message: &[u8],
    signature: &SignatureBytes,
    what: &'static str,
) -> Result<(), CryptoError> {
    let key =
        ed25519_zebra::VerificationKey::try_from(key.0).map_err(|_| CryptoError::BadPublicKey)?;
    let signature = ed25519_zebra::Signature::from_bytes(&signature.0);
    key.verify(&signature, message)
        .map_err(|_| CryptoError::BadSignature(what))
}

/// Verifies the signature of `value` for `chain` under `key`.
pub fn verify<T: Signed>(
    value: &T,
    chain: &ChainId,
    key: &PublicKeyBytes,
    what: &'static str,
) -> Result<(), CryptoError> {
    verify_bytes(key, &value.signing_bytes(chain), value.signature(), what)
}

/// Verifies many signatures at once (ZIP 215 batch verification, faster per signature than one
/// by one, and faster still when keys repeat, as in a block or a phone's backlog). It accepts
/// exactly when [`verify_bytes`] accepts every item (up to a 2^-128 chance of accepting a bad
/// batch). On failure nothing says which one failed: callers that need to know fall back to
/// [`verify_bytes`] one by one.
pub fn verify_batch(
    items: &[(PublicKeyBytes, Vec<u8>, SignatureBytes)],
) -> Result<(), CryptoError> {
    let mut verifier = ed25519_zebra::batch::Verifier::new();
    for (key, message, signature) in items {
        verifier.queue((
            ed25519_zebra::VerificationKeyBytes::from(key.0),
            ed25519_zebra::Signature::from_bytes(&signature.0),
            message.as_slice(),
        ));
    }
    verifier
        .verify(batch_weights(items))
        .map_err(|_| CryptoError::BadSignature("batch"))
}

/// The generator of a batch's random weights, seeded by a hash of the whole batch (as
/// ed25519-dalek's transcript does): the crate stays pure and a verdict reproducible, and a
/// forger cannot learn the weights of a batch before fixing every signature in it.
fn batch_weights(items: &[(PublicKeyBytes, Vec<u8>, SignatureBytes)]) -> rand_chacha::ChaCha20Rng {
    use rand_core::SeedableRng;
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    hash.update(b"bmpls/batch-weights/1");
    for (key, message, signature) in items {
        hash.update(key.0);
        hash.update(signature.0);
        hash.update((message.len() as u64).to_be_bytes());
        hash.update(message);
    }
    rand_chacha::ChaCha20Rng::from_seed(hash.finalize().into())
}

/// Checks that `key` may be registered (as a reporter, custodian, carer, operator or validator
/// key): the canonical encoding of a curve point outside the small-order subgroup. Under the
/// ZIP 215 rules anyone can sign anything under a small-order key, so such a key is refused
/// wherever one is registered; a non-canonical encoding (which ZIP 215 would accept) is
/// refused too, so that one registered point has one byte string.
pub fn check_public_key(key: &PublicKeyBytes) -> Result<(), CryptoError> {
    let point = curve25519_dalek::edwards::CompressedEdwardsY(key.0)
        .decompress()
        .filter(|p| p.compress().to_bytes() == key.0)
        .ok_or(CryptoError::BadPublicKey)?;
    if point.is_small_order() {
        return Err(CryptoError::WeakPublicKey);
    }
    Ok(())
}

/// Checks the signatures of a block's transactions in one batch. `signer` names the key each
/// transaction must be signed by, which only the ledger's state knows (the patient's reporter
/// or custodian key, the enrolling operator, the auditing node); `None` refuses the
/// transaction. Signatures are for `chain`. On failure the first bad transaction is named.
pub fn verify_transactions<F>(
    txs: &[Transaction],
    chain: &ChainId,
    mut signer: F,
) -> Result<(), CryptoError>
where
    F: FnMut(&Transaction) -> Option<PublicKeyBytes>,
{
    let mut batch = Vec::with_capacity(txs.len());
    for (index, tx) in txs.iter().enumerate() {
        let key = signer(tx).ok_or(CryptoError::BadTransaction { index })?;
        batch.push((key, tx.signing_bytes(chain), *tx.signature()));
    }
    if verify_batch(&batch).is_ok() {
        return Ok(());
    }
    for (index, (key, message, signature)) in batch.iter().enumerate() {
        verify_bytes(key, message, signature, "transaction")
            .map_err(|_| CryptoError::BadTransaction { index })?;
    }
    // The batch failed but every signature passes alone: treat the block as bad rather than
    // trust either path.
    Err(CryptoError::BadSignature("transaction batch"))
}

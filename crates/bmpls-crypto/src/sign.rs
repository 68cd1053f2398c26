//! Ed25519 signatures over [`Signed`] values: every signature covers a per-type
//! domain-separation tag (see `bmpls_types::Signed`), and verification uses the strict rules
//! (no malleable or small-order encodings).

use bmpls_types::{PublicKeyBytes, SignatureBytes, Signed, Transaction};
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

    /// Fills in the signature of `value`.
    pub fn sign<T: Signed>(&self, value: &mut T) {
        let signature = self.sign_bytes(&value.signing_bytes());
        *value.signature_mut() = signature;
    }
}

/// Verifies `signature` over raw `message` bytes under `key`.
pub fn verify_bytes(
    key: &PublicKeyBytes,
    message: &[u8],
    signature: &SignatureBytes,
    what: &'static str,
) -> Result<(), CryptoError> {
    let key =
        ed25519_dalek::VerifyingKey::from_bytes(&key.0).map_err(|_| CryptoError::BadPublicKey)?;
    let signature = ed25519_dalek::Signature::from_bytes(&signature.0);
    key.verify_strict(message, &signature)
        .map_err(|_| CryptoError::BadSignature(what))
}

/// Verifies the signature of `value` under `key`.
pub fn verify<T: Signed>(
    value: &T,
    key: &PublicKeyBytes,
    what: &'static str,
) -> Result<(), CryptoError> {
    verify_bytes(key, &value.signing_bytes(), value.signature(), what)
}

/// Verifies many signatures at once (Ed25519 batch verification, about twice as fast per
/// signature for blocks). On failure nothing says which one failed: callers that need to
/// know fall back to [`verify_bytes`] one by one.
pub fn verify_batch(
    items: &[(PublicKeyBytes, Vec<u8>, SignatureBytes)],
) -> Result<(), CryptoError> {
    // Decompressing a key is a third of a verification; a block or a phone's backlog repeats
    // the same few keys, so each distinct key is decompressed once.
    let mut distinct = std::collections::HashMap::new();
    let mut keys = Vec::with_capacity(items.len());
    for (key, _, _) in items {
        let verifying = match distinct.get(&key.0) {
            Some(k) => *k,
            None => {
                let k = ed25519_dalek::VerifyingKey::from_bytes(&key.0)
                    .map_err(|_| CryptoError::BadPublicKey)?;
                distinct.insert(key.0, k);
                k
            }
        };
        keys.push(verifying);
    }
    let messages: Vec<&[u8]> = items.iter().map(|(_, m, _)| m.as_slice()).collect();
    let signatures: Vec<_> = items
        .iter()
        .map(|(_, _, s)| ed25519_dalek::Signature::from_bytes(&s.0))
        .collect();
    ed25519_dalek::verify_batch(&messages, &signatures, &keys)
        .map_err(|_| CryptoError::BadSignature("batch"))
}

/// Checks the signatures of a block's transactions in one batch. `signer` names the key each
/// transaction must be signed by, which only the ledger's state knows (the patient's reporter
/// or custodian key, the enrolling operator, the auditing node); `None` refuses the
/// transaction. On failure the first bad transaction is named.
pub fn verify_transactions<F>(txs: &[Transaction], mut signer: F) -> Result<(), CryptoError>
where
    F: FnMut(&Transaction) -> Option<PublicKeyBytes>,
{
    let mut batch = Vec::with_capacity(txs.len());
    for (index, tx) in txs.iter().enumerate() {
        let key = signer(tx).ok_or(CryptoError::BadTransaction { index })?;
        batch.push((key, tx.signing_bytes(), *tx.signature()));
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

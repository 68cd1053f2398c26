//! Errors of verification and decryption: which check failed, never which secret.

use bmpls_types::ValidatorId;

/// A check that did not pass.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// A signature does not verify under the expected key.
    #[error("bad signature on {0}")]
    BadSignature(&'static str),
    /// Bytes that are not a valid public key.
    #[error("malformed public key")]
    BadPublicKey,
    /// A public key of small order, under which anyone can sign anything: never registered.
    #[error("public key of small order")]
    WeakPublicKey,
    /// Bytes that are not a valid secret key.
    #[error("malformed secret key")]
    BadSecretKey,
    /// A Merkle proof that does not lead to the root.
    #[error("Merkle proof does not match the root")]
    BadProof,
    /// A record view whose parts do not fit together (a sealed fix above level 0, too many
    /// levels).
    #[error("record view is malformed")]
    BadView,
    /// A block whose transactions do not hash to its `tx_root` or `tx_count`.
    #[error("block transactions do not match the header")]
    BadTxRoot,
    /// A commit certificate for another block or height.
    #[error("commit certificate is for another block")]
    CertificateMismatch,
    /// A certificate signer outside the validator set.
    #[error("certificate signer {0} is not a validator")]
    UnknownSigner(ValidatorId),
    /// A certificate signer listed twice.
    #[error("certificate signer {0} appears twice")]
    RepeatedSigner(ValidatorId),
    /// A block of another chain than the validator set's.
    #[error("block belongs to another chain")]
    WrongChain,
    /// A transaction of a block whose signature does not verify, by position.
    #[error("transaction {index} has a bad signature or an unknown signer")]
    BadTransaction {
        /// Position in the block.
        index: usize,
    },
    /// Signers hold no more than two thirds of the voting power.
    #[error("certificate holds {power} of {total} voting power, more than two thirds needed")]
    NoQuorum {
        /// Power of the valid signers.
        power: u64,
        /// Total power.
        total: u64,
    },
    /// A sealed or wrapped payload that does not open (wrong key, tampered, truncated).
    #[error("cannot open {0}: wrong key or tampered")]
    Open(&'static str),
    /// Encryption failed (an invalid recipient key).
    #[error("cannot seal {0}")]
    Seal(&'static str),
    /// A validator set that is empty, too large or has zero power.
    #[error("invalid validator set: {0}")]
    ValidatorSet(&'static str),
}

//! Proof types: a [`Verified<T>`] can only be made by the checks in this module, so code that
//! forgot to verify a record or a block does not compile.

use bmpls_types::{
    Block, Canonical, CommitCertificate, LocationRecord, PrecommitTarget, PublicKey, ValidatorIndex,
};

use crate::error::CryptoError;
use crate::hash::block_hash;
use crate::merkle;
use crate::sign::{verify, verify_batch, verify_bytes};

/// A value whose signatures and proofs were checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified<T>(T);

impl<T> Verified<T> {
    /// The verified value.
    pub fn get(&self) -> &T {
        &self.0
    }

    /// The verified value, owned (it stops being marked as verified).
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for Verified<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// One validator: its consensus key and voting power.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Validator {
    /// Ed25519 key that signs votes.
    pub key: PublicKey,
    /// Voting power.
    pub power: u64,
}

/// The validator set of a chain (from genesis), indexed by [`ValidatorIndex`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidatorSet {
    validators: Vec<Validator>,
    total_power: u64,
}

impl ValidatorSet {
    /// Checks that the set is non-empty, within limits, has distinct keys and positive powers.
    pub fn new(validators: Vec<Validator>) -> Result<Self, CryptoError> {
        if validators.is_empty() || validators.len() > bmpls_types::limits::MAX_VALIDATORS {
            return Err(CryptoError::ValidatorSet("size"));
        }
        if validators.iter().any(|v| v.power == 0) {
            return Err(CryptoError::ValidatorSet("zero voting power"));
        }
        for (i, v) in validators.iter().enumerate() {
            if validators[..i].iter().any(|w| w.key == v.key) {
                return Err(CryptoError::ValidatorSet("repeated key"));
            }
        }
        let total_power = validators
            .iter()
            .try_fold(0u64, |acc, v| acc.checked_add(v.power))
            .ok_or(CryptoError::ValidatorSet("total power overflows"))?;
        Ok(Self {
            validators,
            total_power,
        })
    }

    /// The validator at `index`.
    pub fn get(&self, index: ValidatorIndex) -> Option<&Validator> {
        self.validators.get(usize::from(index.0))
    }

    /// The validators, by index.
    pub fn validators(&self) -> &[Validator] {
        &self.validators
    }

    /// Sum of all voting power.
    pub fn total_power(&self) -> u64 {
        self.total_power
    }

    /// Whether `power` is more than two thirds of the total.
    pub fn is_quorum(&self, power: u64) -> bool {
        u128::from(power) * 3 > u128::from(self.total_power) * 2
    }
}

/// Checks a record's signature under the patient's reporter key.
pub fn verify_record(
    record: LocationRecord,
    reporter: &PublicKey,
) -> Result<Verified<LocationRecord>, CryptoError> {
    verify(&record, reporter, "location record")?;
    Ok(Verified(record))
}

/// Checks that `block` is exactly what `cert` commits: the transactions hash to the header's
/// `tx_root` and count, the certificate names this header's hash and height, and distinct
/// validators holding more than two thirds of the power signed the precommit.
pub fn verify_block(
    block: Block,
    cert: &CommitCertificate,
    validators: &ValidatorSet,
) -> Result<Verified<Block>, CryptoError> {
    let encoded: Vec<Vec<u8>> = block.txs.iter().map(Canonical::encode).collect();
    if merkle::root(&encoded) != block.header.tx_root
        || block.header.tx_count as usize != block.txs.len()
    {
        return Err(CryptoError::BadTxRoot);
    }
    verify_certificate(&block, cert, validators)?;
    Ok(Verified(block))
}

/// Checks the certificate of `block` (its hash, height and quorum of signatures).
fn verify_certificate(
    block: &Block,
    cert: &CommitCertificate,
    validators: &ValidatorSet,
) -> Result<(), CryptoError> {
    let hash = block_hash(&block.header);
    if cert.block_hash != hash || cert.height != block.header.height {
        return Err(CryptoError::CertificateMismatch);
    }
    let target = PrecommitTarget {
        chain_id: block.header.chain_id.clone(),
        height: cert.height,
        round: cert.round,
        block_hash: hash,
    };
    let message = precommit_bytes(&target);
    let mut seen = vec![false; validators.validators().len()];
    let mut power = 0u64;
    let mut batch = Vec::with_capacity(cert.signatures.len());
    for (index, signature) in cert.signatures.iter() {
        let validator = validators
            .get(*index)
            .ok_or(CryptoError::BadSigner(index.0))?;
        let slot = &mut seen[usize::from(index.0)];
        if *slot {
            return Err(CryptoError::BadSigner(index.0));
        }
        *slot = true;
        power += validator.power;
        batch.push((validator.key, message.clone(), *signature));
    }
    if !validators.is_quorum(power) {
        return Err(CryptoError::NoQuorum {
            power,
            total: validators.total_power(),
        });
    }
    if verify_batch(&batch).is_err() {
        // Name the culprit for the caller's error message.
        for (key, message, signature) in &batch {
            verify_bytes(key, message, signature, "precommit")?;
        }
        return Err(CryptoError::BadSignature("precommit"));
    }
    Ok(())
}

/// The bytes a validator signs to precommit: tag, then the canonical target.
pub fn precommit_bytes(target: &PrecommitTarget) -> Vec<u8> {
    let mut out = PrecommitTarget::TAG.to_vec();
    out.push(0);
    out.extend_from_slice(&target.encode());
    out
}

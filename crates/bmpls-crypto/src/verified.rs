//! Proof types: a [`Verified<T>`] can only be made by the checks in this module, so code that
//! forgot to verify a record or a block does not compile.

use bmpls_types::limits::MAX_VALIDATORS;
use bmpls_types::{
    Block, Canonical, ChainId, CommitCertificate, LocationRecord, PrecommitTarget, PublicKeyBytes,
    ValidatorId,
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

/// One validator: its identifier (the Ed25519 key that signs its votes) and voting power.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Validator {
    /// Identifier and vote-signing key.
    pub id: ValidatorId,
    /// Voting power.
    pub power: u64,
}

/// The validator set of a chain (from genesis), sorted by identifier for lookup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidatorSet {
    chain_id: ChainId,
    validators: Vec<Validator>,
    total_power: u64,
}

impl ValidatorSet {
    /// Checks that the set is non-empty, within limits, has distinct identifiers and positive
    /// powers whose sum fits in a `u64`.
    pub fn new(chain_id: ChainId, mut validators: Vec<Validator>) -> Result<Self, CryptoError> {
        if validators.is_empty() || validators.len() > MAX_VALIDATORS {
            return Err(CryptoError::ValidatorSet("size"));
        }
        if validators.iter().any(|v| v.power == 0) {
            return Err(CryptoError::ValidatorSet("zero voting power"));
        }
        validators.sort_by_key(|v| v.id);
        if validators.windows(2).any(|w| w[0].id == w[1].id) {
            return Err(CryptoError::ValidatorSet("repeated validator"));
        }
        let total_power = validators
            .iter()
            .try_fold(0u64, |acc, v| acc.checked_add(v.power))
            .ok_or(CryptoError::ValidatorSet("total power overflows"))?;
        Ok(Self {
            chain_id,
            validators,
            total_power,
        })
    }

    /// The chain this set validates.
    pub fn chain_id(&self) -> &ChainId {
        &self.chain_id
    }

    /// The validator with identifier `id`, and its position in [`Self::validators`].
    pub fn get(&self, id: &ValidatorId) -> Option<(usize, &Validator)> {
        let position = self.validators.binary_search_by(|v| v.id.cmp(id)).ok()?;
        Some((position, &self.validators[position]))
    }

    /// The validators, sorted by identifier.
    pub fn validators(&self) -> &[Validator] {
        &self.validators
    }

    /// Sum of all voting power.
    pub fn total_power(&self) -> u64 {
        self.total_power
    }

    /// Whether `power` is more than two thirds of the total (the BFT quorum of `2f + 1` when
    /// `n = 3f + 1` validators hold equal power).
    pub fn is_quorum(&self, power: u64) -> bool {
        u128::from(power) * 3 > u128::from(self.total_power) * 2
    }
}

/// Checks a record's signature under the patient's reporter key.
pub fn verify_record(
    record: LocationRecord,
    reporter: &PublicKeyBytes,
) -> Result<Verified<LocationRecord>, CryptoError> {
    verify(&record, reporter, "location record")?;
    Ok(Verified(record))
}

/// Checks that `block` is exactly what `cert` commits: the transactions hash to the header's
/// `tx_root` and count, the block belongs to the set's chain, the certificate names this
/// header's hash and height, and distinct known validators holding more than two thirds of the
/// power signed the precommit (checked as one Ed25519 batch). The transactions' own signatures
/// need the ledger's state to know their keys: see [`crate::verify_transactions`].
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
    if block.header.chain_id != *validators.chain_id() {
        return Err(CryptoError::WrongChain);
    }
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
    for (id, signature) in cert.signatures.iter() {
        let (position, validator) = validators.get(id).ok_or(CryptoError::UnknownSigner(*id))?;
        if std::mem::replace(&mut seen[position], true) {
            return Err(CryptoError::RepeatedSigner(*id));
        }
        // Distinct members of a set whose total fits in a u64: no overflow.
        power += validator.power;
        batch.push((PublicKeyBytes(id.0), message.clone(), *signature));
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

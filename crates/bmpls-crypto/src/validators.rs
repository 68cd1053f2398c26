//! The validator set of a chain: who may sign commit certificates, with what voting power, and
//! what a quorum is.

use bmpls_types::limits::MAX_VALIDATORS;
use bmpls_types::{ChainId, ValidatorId};

use crate::error::CryptoError;

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
    /// Checks that the set is non-empty, within limits, has distinct identifiers that are valid
    /// keys of large order (see [`crate::sign::check_public_key`]) and positive powers whose sum
    /// fits in a `u64`.
    pub fn new(chain_id: ChainId, mut validators: Vec<Validator>) -> Result<Self, CryptoError> {
        if validators.is_empty() || validators.len() > MAX_VALIDATORS {
            return Err(CryptoError::ValidatorSet("size"));
        }
        if validators.iter().any(|v| v.power == 0) {
            return Err(CryptoError::ValidatorSet("zero voting power"));
        }
        for v in &validators {
            crate::sign::check_public_key(&v.id.public_key())
                .map_err(|_| CryptoError::ValidatorSet("a key is malformed or of small order"))?;
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

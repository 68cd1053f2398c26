//! Genesis (chain id, validators and their voting power) and the consensus parameters: timeouts
//! and block limits. Loading validates every field and names the bad one.

use serde::Deserialize;

use bmpls_types::limits::{MAX_BLOCK_BYTES, MAX_BLOCK_TXS, MAX_CHAIN_ID_BYTES, MAX_VALIDATORS};
use bmpls_types::{ChainId, ValidatorId};

use crate::context::ValidatorSet;

/// A configuration that cannot be used, naming the field.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The file is not valid TOML of the expected shape.
    #[error("genesis: {0}")]
    Parse(String),
    /// A field is out of range.
    #[error("genesis field `{field}`: {reason}")]
    Field {
        /// Dotted path of the field.
        field: String,
        /// What is wrong.
        reason: String,
    },
}

fn field(field: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError::Field {
        field: field.into(),
        reason: reason.into(),
    }
}

/// Timeouts of a round, in milliseconds of the host's clock. Round `r` waits `base + r × delta`,
/// so that rounds lengthen until they outlast the network's delay (Tendermint's liveness
/// argument needs the timeouts to grow).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Timeouts {
    /// Wait for a proposal.
    pub propose_ms: u64,
    /// Growth of the propose timeout per round.
    pub propose_delta_ms: u64,
    /// Wait for more prevotes after a quorum of mixed ones.
    pub prevote_ms: u64,
    /// Growth of the prevote timeout per round.
    pub prevote_delta_ms: u64,
    /// Wait for more precommits after a quorum of mixed ones.
    pub precommit_ms: u64,
    /// Growth of the precommit timeout per round.
    pub precommit_delta_ms: u64,
    /// Re-send this validator's last votes when a round makes no progress.
    pub rebroadcast_ms: u64,
}

/// The longest any timeout may be configured (10 minutes): longer stalls a chain for nothing.
pub const MAX_TIMEOUT_MS: u64 = 600_000;

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            propose_ms: 1_000,
            propose_delta_ms: 500,
            prevote_ms: 500,
            prevote_delta_ms: 250,
            precommit_ms: 500,
            precommit_delta_ms: 250,
            rebroadcast_ms: 2_000,
        }
    }
}

/// Consensus parameters beyond the validator set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsensusParams {
    /// Round timeouts.
    pub timeouts: Timeouts,
    /// Transactions per block at most.
    pub max_block_txs: usize,
    /// Encoded transaction bytes per block at most.
    pub max_block_bytes: usize,
    /// How far ahead of a validator's clock a block's time may be.
    pub max_clock_drift_ms: u64,
    /// Transactions the mempool holds at most.
    pub mempool_txs: usize,
    /// Encoded bytes the mempool holds at most.
    pub mempool_bytes: usize,
}

impl Default for ConsensusParams {
    fn default() -> Self {
        Self {
            timeouts: Timeouts::default(),
            max_block_txs: 5_000,
            max_block_bytes: 4 * 1024 * 1024,
            max_clock_drift_ms: 5_000,
            mempool_txs: 100_000,
            mempool_bytes: 128 * 1024 * 1024,
        }
    }
}

impl ConsensusParams {
    /// Checks every bound, naming the first field out of range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let t = &self.timeouts;
        for (name, value) in [
            ("propose_ms", t.propose_ms),
            ("prevote_ms", t.prevote_ms),
            ("precommit_ms", t.precommit_ms),
            ("rebroadcast_ms", t.rebroadcast_ms),
        ] {
            if value == 0 || value > MAX_TIMEOUT_MS {
                return Err(field(
                    format!("consensus.timeouts.{name}"),
                    format!("must be within 1..={MAX_TIMEOUT_MS}"),
                ));
            }
        }
        for (name, value) in [
            ("propose_delta_ms", t.propose_delta_ms),
            ("prevote_delta_ms", t.prevote_delta_ms),
            ("precommit_delta_ms", t.precommit_delta_ms),
        ] {
            if value > MAX_TIMEOUT_MS {
                return Err(field(
                    format!("consensus.timeouts.{name}"),
                    format!("must be at most {MAX_TIMEOUT_MS}"),
                ));
            }
        }
        if self.max_block_txs == 0 || self.max_block_txs > MAX_BLOCK_TXS {
            return Err(field(
                "consensus.max_block_txs",
                format!("must be within 1..={MAX_BLOCK_TXS}"),
            ));
        }
        // Leave room for the header and the encoding's length prefixes.
        let byte_cap = MAX_BLOCK_BYTES / 2;
        if self.max_block_bytes < bmpls_types::limits::MAX_TX_BYTES
            || self.max_block_bytes > byte_cap
        {
            return Err(field(
                "consensus.max_block_bytes",
                format!(
                    "must be within {}..={byte_cap}",
                    bmpls_types::limits::MAX_TX_BYTES
                ),
            ));
        }
        if self.max_clock_drift_ms == 0 || self.max_clock_drift_ms > MAX_TIMEOUT_MS {
            return Err(field(
                "consensus.max_clock_drift_ms",
                format!("must be within 1..={MAX_TIMEOUT_MS}"),
            ));
        }
        if self.mempool_txs < self.max_block_txs {
            return Err(field(
                "consensus.mempool_txs",
                "must hold at least one full block",
            ));
        }
        if self.mempool_bytes < self.max_block_bytes {
            return Err(field(
                "consensus.mempool_bytes",
                "must hold at least one full block",
            ));
        }
        Ok(())
    }
}

/// The chain's genesis: who validates and with what power, and the consensus parameters.
#[derive(Clone, Debug)]
pub struct Genesis {
    /// Validator set (chain-bound).
    pub validators: ValidatorSet,
    /// Time of the chain's start; the first block's time must be later.
    pub genesis_time_ms: u64,
    /// Consensus parameters.
    pub params: ConsensusParams,
    /// Each validator's name in the genesis file (names appear in node configurations and
    /// certificates; the key is what the chain knows).
    pub names: Vec<(String, ValidatorId)>,
}

impl Genesis {
    /// The validator named `name` in the genesis file.
    pub fn validator_named(&self, name: &str) -> Option<ValidatorId> {
        self.names
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, id)| *id)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GenesisFile {
    chain_id: String,
    genesis_time_ms: u64,
    validator: Vec<ValidatorEntry>,
    #[serde(default)]
    consensus: ConsensusParams,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ValidatorEntry {
    name: String,
    /// Ed25519 public key, hex.
    key: String,
    power: u64,
}

impl Genesis {
    /// Parses and validates `config/genesis.toml`.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let file: GenesisFile =
            toml::from_str(text).map_err(|e| ConfigError::Parse(e.to_string()))?;
        if file.chain_id.is_empty() || file.chain_id.len() > MAX_CHAIN_ID_BYTES {
            return Err(field(
                "chain_id",
                format!("must be 1 to {MAX_CHAIN_ID_BYTES} bytes"),
            ));
        }
        let chain_id = ChainId::new(file.chain_id).map_err(|_| field("chain_id", "too long"))?;
        if file.validator.is_empty() || file.validator.len() > MAX_VALIDATORS {
            return Err(field(
                "validator",
                format!("need 1 to {MAX_VALIDATORS} validators"),
            ));
        }
        let mut members = Vec::with_capacity(file.validator.len());
        let mut names: Vec<(String, ValidatorId)> = Vec::with_capacity(file.validator.len());
        for (i, entry) in file.validator.iter().enumerate() {
            let at = |name: &str| format!("validator[{i}] ({}).{name}", entry.name);
            let bytes: [u8; 32] = hex::decode(&entry.key)
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| field(at("key"), "must be 64 hex digits (an Ed25519 public key)"))?;
            match bmpls_crypto::sign::check_public_key(&bmpls_types::PublicKeyBytes(bytes)) {
                Ok(()) => {}
                Err(bmpls_crypto::CryptoError::WeakPublicKey) => {
                    return Err(field(
                        at("key"),
                        "is a small-order Ed25519 key, under which anyone could sign",
                    ));
                }
                Err(_) => return Err(field(at("key"), "is not a valid Ed25519 public key")),
            }
            if entry.name.is_empty() || names.iter().any(|(n, _)| *n == entry.name) {
                return Err(field(at("name"), "must be non-empty and unique"));
            }
            names.push((entry.name.clone(), ValidatorId(bytes)));
            if entry.power == 0 {
                return Err(field(at("power"), "must be positive"));
            }
            members.push(bmpls_crypto::Validator {
                id: ValidatorId(bytes),
                power: entry.power,
            });
        }
        let set = bmpls_crypto::ValidatorSet::new(chain_id, members)
            .map_err(|e| field("validator", e.to_string()))?;
        file.consensus.validate()?;
        Ok(Self {
            validators: ValidatorSet::new(set),
            genesis_time_ms: file.genesis_time_ms,
            params: file.consensus,
            names,
        })
    }
}

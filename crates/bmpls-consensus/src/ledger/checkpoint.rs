//! The ledger's state as bytes, so that a restarted validator resumes from a checkpoint instead
//! of replaying its whole chain. The bytes hold every field the blocks change, in borsh; the
//! validator set is not in them (it comes from the genesis, which the restorer must pass).
//! Restoring is total: any byte string gives a ledger or a [`CheckpointError`].

use std::io::Read;

use borsh::{BorshDeserialize, BorshSerialize};

use bmpls_types::{BlockHash, ChainId, Height};

use super::Ledger;
use crate::context::ValidatorSet;

/// Leads the bytes; a layout change bumps it, and an older checkpoint is then ignored (the
/// validator replays its chain instead).
const CHECKPOINT_VERSION: u8 = 2;

/// Why checkpoint bytes did not give a ledger.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    /// Written by another layout version.
    #[error("checkpoint layout {0}, this build reads {CHECKPOINT_VERSION}")]
    Version(u8),
    /// Truncated, damaged or with trailing bytes.
    #[error("malformed checkpoint: {0}")]
    Malformed(String),
    /// The checkpoint is of another chain.
    #[error("the checkpoint is of chain {found}, not {expected}")]
    Chain {
        /// The genesis's chain.
        expected: String,
        /// The checkpoint's.
        found: String,
    },
}

impl Ledger {
    /// The state after the last applied block, as bytes [`Ledger::restore`] reads back.
    pub fn checkpoint(&self) -> Vec<u8> {
        let mut out = vec![CHECKPOINT_VERSION];
        (
            &self.chain_id,
            self.height,
            self.tip,
            self.tip_time_ms,
            self.txs,
            &self.patients,
            &self.carers,
            &self.grants,
            &self.key_txs,
            &self.fences,
            &self.audits,
        )
            .serialize(&mut out)
            .expect("serialising into a Vec cannot fail");
        out
    }

    /// The ledger a [`Ledger::checkpoint`] of the chain of `validators` describes.
    pub fn restore(validators: ValidatorSet, bytes: &[u8]) -> Result<Self, CheckpointError> {
        let (&version, mut body) = bytes
            .split_first()
            .ok_or_else(|| CheckpointError::Malformed("empty".into()))?;
        if version != CHECKPOINT_VERSION {
            return Err(CheckpointError::Version(version));
        }
        let reader = &mut body;
        let chain_id: ChainId = read(reader)?;
        if &chain_id != validators.crypto().chain_id() {
            return Err(CheckpointError::Chain {
                expected: validators.crypto().chain_id().as_str().to_owned(),
                found: chain_id.as_str().to_owned(),
            });
        }
        let height: Height = read(reader)?;
        let tip: BlockHash = read(reader)?;
        let ledger = Self {
            chain_id,
            validators,
            height,
            tip,
            tip_time_ms: read(reader)?,
            txs: read(reader)?,
            patients: read(reader)?,
            carers: read(reader)?,
            grants: read(reader)?,
            key_txs: read(reader)?,
            fences: read(reader)?,
            audits: read(reader)?,
        };
        if !reader.is_empty() {
            return Err(CheckpointError::Malformed(format!(
                "{} bytes after the last field",
                reader.len()
            )));
        }
        Ok(ledger)
    }
}

fn read<T: BorshDeserialize>(reader: &mut &[u8]) -> Result<T, CheckpointError> {
    T::deserialize_reader(&mut Read::by_ref(reader))
        .map_err(|e| CheckpointError::Malformed(e.to_string()))
}

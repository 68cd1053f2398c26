//! Blocks and commit certificates.

use borsh::{BorshDeserialize, BorshSerialize};

use crate::bounded::{BoundedString, BoundedVec};
use crate::ids::{BlockHash, Hash32, Height, Round, SignatureBytes, ValidatorId};
use crate::limits::{MAX_BLOCK_TXS, MAX_CHAIN_ID_BYTES, MAX_VALIDATORS};
use crate::tx::Transaction;

/// Name of a chain, from genesis; every block and vote names it so that nothing replays across
/// chains.
pub type ChainId = BoundedString<MAX_CHAIN_ID_BYTES>;

/// What a block commits to.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct BlockHeader {
    /// The chain.
    pub chain_id: ChainId,
    /// Height, from 1.
    pub height: Height,
    /// Hash of the previous block's header ([`BlockHash::ZERO`] at height 1).
    pub prev_hash: BlockHash,
    /// Proposer's clock at proposal, ms since the Unix epoch.
    pub time_ms: u64,
    /// Who proposed it.
    pub proposer: ValidatorId,
    /// Merkle root (RFC 6962 style) of the encoded transactions.
    pub tx_root: Hash32,
    /// Number of transactions.
    pub tx_count: u32,
}

/// A block: header and transactions.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Block {
    /// The header.
    pub header: BlockHeader,
    /// The transactions, in order.
    pub txs: BoundedVec<Transaction, MAX_BLOCK_TXS>,
}

/// Precommit signatures of validators holding more than two thirds of the voting power.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct CommitCertificate {
    /// Height committed.
    pub height: Height,
    /// Round in which it was committed.
    pub round: Round,
    /// Hash of the committed block's header.
    pub block_hash: BlockHash,
    /// Each signer and its precommit signature over [`PrecommitTarget`].
    pub signatures: BoundedVec<(ValidatorId, SignatureBytes), MAX_VALIDATORS>,
}

/// A precommit, the vote a commit certificate collects: what each signature covers.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct PrecommitTarget {
    /// The chain.
    pub chain_id: ChainId,
    /// Height voted on.
    pub height: Height,
    /// Round voted in.
    pub round: Round,
    /// The block voted for.
    pub block_hash: BlockHash,
}

impl PrecommitTarget {
    /// Domain-separation tag of precommit signatures.
    pub const TAG: &'static [u8] = b"bmpls/v1/sig/precommit";
}

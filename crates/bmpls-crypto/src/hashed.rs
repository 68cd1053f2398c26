//! A block's transaction hashes, computed once per validator. A report's name ([`tx_hash`]),
//! Merkle leaf and signed bytes all derive from its record's digest, which walks the record's
//! level chain (about 0.8 µs for a 540-byte ORE record). Without a shared copy, one validator
//! computed that digest about ten times per record on its way from the mempool to the store
//! (the proposal check, the certificate check, the ledger, the mempool's clean-up, the store's
//! leaves, the acknowledgement): a fifth of the cluster's CPU under ingest.
//!
//! [`HashedBlock`] owns its block and hands out only shared references, so the hashes it keeps
//! can never describe different transactions from the ones it holds.

use std::sync::{Arc, OnceLock};

use bmpls_types::limits::MAX_BLOCK_TXS;
use bmpls_types::{
    Block, BlockHeader, BoundedVec, ChainId, Hash32, RecordDigest, Signed, Transaction, TxHash,
    report_leaf_encode_to,
};
use sha2::{Digest, Sha256};

use crate::hash::tx_hash;
use crate::merkle::{MerkleTree, report_leaf_hash, tx_leaf_hash};

/// One transaction's hashes, from one pass over it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxHashes {
    /// Its name on the chain ([`tx_hash`]).
    pub hash: TxHash,
    /// Its Merkle leaf hash ([`tx_leaf_hash`]).
    pub leaf: Hash32,
    /// A report's record digest, from which its signed bytes follow.
    digest: Option<RecordDigest>,
}

impl TxHashes {
    /// Hashes `tx`, digesting a report's record once.
    pub fn of(tx: &Transaction) -> Self {
        match tx {
            Transaction::Report(record) => {
                let digest = record.digest();
                Self {
                    hash: report_tx_hash(&digest),
                    leaf: report_leaf_hash(&digest),
                    digest: Some(digest),
                }
            }
            other => Self {
                hash: tx_hash(other),
                leaf: tx_leaf_hash(other),
                digest: None,
            },
        }
    }

    /// The bytes `tx`'s signature covers on `chain` ([`Transaction::signing_bytes`]); `tx` must
    /// be the transaction these hashes are of.
    pub fn signing_bytes(&self, tx: &Transaction, chain: &ChainId) -> Vec<u8> {
        match &self.digest {
            Some(digest) => digest.signing_bytes(chain),
            None => tx.signing_bytes(chain),
        }
    }
}

/// [`tx_hash`] of a report whose record has `digest`.
pub fn report_tx_hash(digest: &RecordDigest) -> TxHash {
    let mut h = Sha256::new();
    h.update(b"bmpls/v1/hash/tx");
    h.update([0u8]);
    report_leaf_encode_to(digest, &mut h).expect("hashing a digest cannot fail");
    TxHash(h.finalize().into())
}

/// A block with its transactions' hashes, computed the first time they are asked for and kept.
/// Read-only: the block cannot be changed under its hashes.
#[derive(Clone, Debug)]
pub struct HashedBlock {
    block: Block,
    hashes: OnceLock<Arc<[TxHashes]>>,
}

impl HashedBlock {
    /// Wraps `block`; nothing is hashed until asked.
    pub fn new(block: Block) -> Self {
        Self {
            block,
            hashes: OnceLock::new(),
        }
    }

    /// A new block over `txs`, its header made by `header` from the transactions' Merkle root,
    /// hashing each transaction once for both.
    pub fn assemble(
        txs: BoundedVec<Transaction, MAX_BLOCK_TXS>,
        header: impl FnOnce(Hash32) -> BlockHeader,
    ) -> Self {
        let hashes: Arc<[TxHashes]> = txs.iter().map(TxHashes::of).collect();
        let header = header(root_of(&hashes));
        Self {
            block: Block { header, txs },
            hashes: OnceLock::from(hashes),
        }
    }

    /// The block.
    pub fn block(&self) -> &Block {
        &self.block
    }

    /// The block, owned (its hashes are dropped).
    pub fn into_block(self) -> Block {
        self.block
    }

    /// Each transaction's hashes, in block order.
    pub fn hashes(&self) -> &[TxHashes] {
        self.hashes
            .get_or_init(|| self.block.txs.iter().map(TxHashes::of).collect())
    }

    /// The Merkle root of the transactions (what the header's `tx_root` must be).
    pub fn tx_root(&self) -> Hash32 {
        root_of(self.hashes())
    }

    /// The Merkle tree over the transactions.
    pub fn merkle_tree(&self) -> MerkleTree {
        MerkleTree::from_leaf_hashes(self.hashes().iter().map(|h| h.leaf).collect())
    }
}

impl From<Block> for HashedBlock {
    fn from(block: Block) -> Self {
        Self::new(block)
    }
}

impl std::ops::Deref for HashedBlock {
    type Target = Block;
    fn deref(&self) -> &Block {
        &self.block
    }
}

impl PartialEq for HashedBlock {
    fn eq(&self, other: &Self) -> bool {
        self.block == other.block
    }
}

impl Eq for HashedBlock {}

fn root_of(hashes: &[TxHashes]) -> Hash32 {
    MerkleTree::from_leaf_hashes(hashes.iter().map(|h| h.leaf).collect()).root()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::tx_root;

    #[test]
    fn hashes_from_one_digest_equal_the_direct_ones() {
        let record = bmpls_types::LocationRecord {
            patient: bmpls_types::PatientId([3; 16]),
            seq: bmpls_types::Seq(7),
            fix_time_ms: 1_700_000_000_000,
            epoch: bmpls_types::Epoch(2),
            cells: BoundedVec::new(vec![
                bmpls_types::Cell::Ore(bmpls_types::OreRight(
                    BoundedVec::new(vec![9; 124]).expect("bounded"),
                )),
                bmpls_types::Cell::Ope(bmpls_types::OpeCiphertext(42)),
            ])
            .expect("bounded"),
            sealed: BoundedVec::new(vec![5; 60]).expect("bounded"),
            sig: bmpls_types::SignatureBytes([1; 64]),
        };
        let chain = ChainId::new("test").expect("chain id");
        let tx = Transaction::Report(record);
        let hashes = TxHashes::of(&tx);
        assert_eq!(hashes.hash, tx_hash(&tx));
        assert_eq!(hashes.leaf, tx_leaf_hash(&tx));
        assert_eq!(hashes.signing_bytes(&tx, &chain), tx.signing_bytes(&chain));

        let txs = BoundedVec::new(vec![tx.clone(), tx]).expect("bounded");
        let root = tx_root(&txs);
        let block = HashedBlock::assemble(txs, |tx_root| BlockHeader {
            chain_id: chain.clone(),
            height: bmpls_types::Height(1),
            prev_hash: bmpls_types::BlockHash([0; 32]),
            time_ms: 1,
            proposer: bmpls_types::ValidatorId([0; 32]),
            tx_root,
            tx_count: 2,
        });
        assert_eq!(block.header.tx_root, root);
        assert_eq!(HashedBlock::new(block.block().clone()).tx_root(), root);
    }
}

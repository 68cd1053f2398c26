//! Content hashes: of a transaction (its identity on the chain) and of a block header (what
//! validators vote for and the next block links to). Each under its own domain tag.

use bmpls_types::{BlockHash, BlockHeader, Canonical, Hash32, Transaction, TxHash};
use sha2::{Digest, Sha256};

/// SHA-256 of `tag ‖ 0x00 ‖ bytes`.
pub fn tagged_hash(tag: &[u8], bytes: &[u8]) -> Hash32 {
    let mut h = Sha256::new();
    h.update(tag);
    h.update([0u8]);
    h.update(bytes);
    Hash32(h.finalize().into())
}

/// The hash naming a transaction (what `Revoke` refers to and `tx_index` is keyed by): of its
/// leaf bytes, so a report is named by its record's digest.
pub fn tx_hash(tx: &Transaction) -> TxHash {
    // `tagged_hash(TX_TAG, &tx.leaf_bytes())`, streamed into the hasher (no copy of the record).
    let mut h = Sha256::new();
    h.update(b"bmpls/v1/hash/tx");
    h.update([0u8]);
    tx.leaf_encode_to(&mut h)
        .expect("hashing a transaction cannot fail");
    TxHash(h.finalize().into())
}

/// The hash of a block: of its header, which commits to the transactions through `tx_root`.
pub fn block_hash(header: &BlockHeader) -> BlockHash {
    BlockHash(tagged_hash(b"bmpls/v1/hash/block", &header.encode()).0)
}

//! SHA-256 Merkle trees in the style of RFC 6962 / RFC 9162 (Certificate Transparency): leaf
//! hashes `H(0x00 ‖ leaf)`, node hashes `H(0x01 ‖ left ‖ right)`, a tree of `n` leaves split at
//! the largest power of two below `n`, and inclusion proofs of at most `⌈log₂ n⌉` hashes.
//! Proofs travel in answers, so they have the canonical encoding too.

use bmpls_types::Hash32;
use sha2::{Digest, Sha256};

use crate::error::CryptoError;

/// Most hashes in a proof (trees of up to 2^64 leaves).
pub const MAX_PROOF_HASHES: usize = 64;

/// Proof that a leaf is at `index` of a tree of `size` leaves.
#[derive(Clone, Debug, PartialEq, Eq, borsh::BorshSerialize, borsh::BorshDeserialize)]
pub struct InclusionProof {
    /// Position of the leaf.
    pub index: u64,
    /// Leaves in the tree.
    pub size: u64,
    /// Sibling hashes from the leaf up.
    pub path: bmpls_types::BoundedVec<Hash32, MAX_PROOF_HASHES>,
}

/// The hash of one leaf.
pub fn leaf_hash(leaf: &[u8]) -> Hash32 {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(leaf);
    Hash32(h.finalize().into())
}

/// The leaf hash of a transaction: [`leaf_hash`] of its leaf bytes
/// ([`bmpls_types::Transaction::leaf_encode_to`]: the canonical encoding, a report's record as
/// its digest), streamed into the hasher (no copy of the transaction).
pub fn tx_leaf_hash(tx: &bmpls_types::Transaction) -> Hash32 {
    let mut h = Sha256::new();
    h.update([0u8]);
    tx.leaf_encode_to(&mut h)
        .expect("hashing a transaction cannot fail");
    Hash32(h.finalize().into())
}

/// The leaf hash of a report whose record has `digest` (what [`tx_leaf_hash`] gives for the
/// whole report).
pub fn report_leaf_hash(digest: &bmpls_types::RecordDigest) -> Hash32 {
    let mut h = Sha256::new();
    h.update([0u8]);
    bmpls_types::report_leaf_encode_to(digest, &mut h).expect("hashing a digest cannot fail");
    Hash32(h.finalize().into())
}

/// The root a block's header names for `txs`.
pub fn tx_root(txs: &[bmpls_types::Transaction]) -> Hash32 {
    MerkleTree::from_leaf_hashes(txs.iter().map(tx_leaf_hash).collect()).root()
}

fn node_hash(left: &Hash32, right: &Hash32) -> Hash32 {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left.0);
    h.update(right.0);
    Hash32(h.finalize().into())
}

/// A whole tree kept level by level, so that proving every leaf of a block costs `O(n log n)`
/// hashes rather than rebuilding subtrees for each proof. Pairing neighbours level by level and
/// carrying an unpaired last node up unchanged builds exactly RFC 6962's tree (which splits at
/// the largest power of two below `n`): the left part of every split is a complete subtree, so
/// only the rightmost node of a level can lack a partner.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MerkleTree {
    /// `levels[0]` are the leaf hashes, the last level is the root alone; empty for no leaves.
    levels: Vec<Vec<Hash32>>,
}

impl MerkleTree {
    /// Builds the tree over `leaves`.
    pub fn new<T: AsRef<[u8]>>(leaves: &[T]) -> Self {
        Self::from_leaf_hashes(leaves.iter().map(|l| leaf_hash(l.as_ref())).collect())
    }

    /// Builds the tree over leaves whose [`leaf_hash`]es are given (as a store keeps them).
    pub fn from_leaf_hashes(leaf_hashes: Vec<Hash32>) -> Self {
        if leaf_hashes.is_empty() {
            return Self { levels: Vec::new() };
        }
        let mut levels = vec![leaf_hashes];
        while let Some(below) = levels.last().filter(|level| level.len() > 1) {
            let above = below
                .chunks(2)
                .filter_map(|pair| pair.iter().copied().reduce(|l, r| node_hash(&l, &r)))
                .collect();
            levels.push(above);
        }
        Self { levels }
    }

    /// Every node, level by level from the leaf hashes up to the root, 32 bytes each: what a
    /// store keeps so that proofs need no hashing ([`MerkleTree::from_level_bytes`]).
    pub fn level_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 * self.size());
        for level in &self.levels {
            for node in level {
                out.extend_from_slice(&node.0);
            }
        }
        out
    }

    /// The tree of `size` leaves from [`MerkleTree::level_bytes`], or `None` if the length does
    /// not fit. The nodes are taken as they are: check the root against what it must be.
    pub fn from_level_bytes(size: usize, bytes: &[u8]) -> Option<Self> {
        let mut levels = Vec::new();
        let mut width = size;
        let mut rest = bytes;
        while width > 0 {
            let (level, tail) = rest.split_at_checked(32 * width)?;
            levels.push(
                level
                    .chunks_exact(32)
                    .map(|c| Hash32(c.try_into().expect("32-byte chunks")))
                    .collect(),
            );
            rest = tail;
            width = if width == 1 { 0 } else { width.div_ceil(2) };
        }
        rest.is_empty().then_some(Self { levels })
    }

    /// Number of leaves.
    pub fn size(&self) -> usize {
        self.levels.first().map_or(0, Vec::len)
    }

    /// The root (the hash of the empty string for no leaves, as RFC 6962 defines it).
    pub fn root(&self) -> Hash32 {
        match self.levels.last() {
            Some(top) => top[0],
            None => Hash32(Sha256::digest([]).into()),
        }
    }

    /// The inclusion proof of leaf `index` (RFC 6962 §2.1.1 PATH, from the leaf up), or `None`
    /// if out of range.
    pub fn prove(&self, index: usize) -> Option<InclusionProof> {
        if index >= self.size() {
            return None;
        }
        let mut path = Vec::new();
        let mut i = index;
        for level in &self.levels[..self.levels.len() - 1] {
            let sibling = i ^ 1;
            if sibling < level.len() {
                path.push(level[sibling]);
            }
            i >>= 1;
        }
        Some(InclusionProof {
            index: index as u64,
            size: self.size() as u64,
            path: bmpls_types::BoundedVec::new(path).ok()?,
        })
    }
}

/// The root of the tree over `leaves` (the hash of the empty string for no leaves).
pub fn root<T: AsRef<[u8]>>(leaves: &[T]) -> Hash32 {
    MerkleTree::new(leaves).root()
}

/// The inclusion proof of leaf `index`, or `None` if out of range. To prove many leaves of one
/// tree, build a [`MerkleTree`] once.
pub fn prove<T: AsRef<[u8]>>(leaves: &[T], index: usize) -> Option<InclusionProof> {
    MerkleTree::new(leaves).prove(index)
}

/// Checks that `leaf` is at `proof.index` of the tree with `root` (RFC 9162 §2.1.3.2).
pub fn verify(root: &Hash32, leaf: &[u8], proof: &InclusionProof) -> Result<(), CryptoError> {
    verify_leaf_hash(root, leaf_hash(leaf), proof)
}

/// [`verify`] for a leaf given by its [`leaf_hash`].
pub fn verify_leaf_hash(
    root: &Hash32,
    leaf_hash: Hash32,
    proof: &InclusionProof,
) -> Result<(), CryptoError> {
    if proof.index >= proof.size {
        return Err(CryptoError::BadProof);
    }
    let (mut fnode, mut snode) = (proof.index, proof.size - 1);
    let mut hash = leaf_hash;
    for sibling in proof.path.iter() {
        if snode == 0 {
            return Err(CryptoError::BadProof);
        }
        if fnode & 1 == 1 || fnode == snode {
            hash = node_hash(sibling, &hash);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            hash = node_hash(&hash, sibling);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode == 0 && hash == *root {
        Ok(())
    } else {
        Err(CryptoError::BadProof)
    }
}

impl bmpls_types::Canonical for InclusionProof {
    const NAME: &'static str = "inclusion proof";
    const MAX_BYTES: usize = 1 + 8 + 8 + 4 + MAX_PROOF_HASHES * 32;
}

//! SHA-256 Merkle trees in the style of RFC 6962 / RFC 9162 (Certificate Transparency): leaf
//! hashes `H(0x00 ‖ leaf)`, node hashes `H(0x01 ‖ left ‖ right)`, a tree of `n` leaves split at
//! the largest power of two below `n`, and inclusion proofs of at most `⌈log₂ n⌉` hashes.

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

fn node_hash(left: &Hash32, right: &Hash32) -> Hash32 {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left.0);
    h.update(right.0);
    Hash32(h.finalize().into())
}

/// The root of the tree over `leaves` (the hash of the empty string for no leaves).
pub fn root<T: AsRef<[u8]>>(leaves: &[T]) -> Hash32 {
    if leaves.is_empty() {
        return Hash32(Sha256::digest([]).into());
    }
    let hashes: Vec<Hash32> = leaves.iter().map(|l| leaf_hash(l.as_ref())).collect();
    subtree_root(&hashes)
}

fn subtree_root(hashes: &[Hash32]) -> Hash32 {
    match hashes.len() {
        1 => hashes[0],
        n => {
            let k = split(n);
            node_hash(&subtree_root(&hashes[..k]), &subtree_root(&hashes[k..]))
        }
    }
}

/// The largest power of two strictly below `n` (`n ≥ 2`).
fn split(n: usize) -> usize {
    1usize << (usize::BITS - 1 - (n - 1).leading_zeros())
}

/// The inclusion proof of leaf `index` (RFC 6962 §2.1.1 PATH), or `None` if out of range.
pub fn prove<T: AsRef<[u8]>>(leaves: &[T], index: usize) -> Option<InclusionProof> {
    if index >= leaves.len() {
        return None;
    }
    let hashes: Vec<Hash32> = leaves.iter().map(|l| leaf_hash(l.as_ref())).collect();
    let mut path = Vec::new();
    collect_path(&hashes, index, &mut path);
    Some(InclusionProof {
        index: index as u64,
        size: leaves.len() as u64,
        path: bmpls_types::BoundedVec::new(path).ok()?,
    })
}

fn collect_path(hashes: &[Hash32], index: usize, path: &mut Vec<Hash32>) {
    if hashes.len() <= 1 {
        return;
    }
    let k = split(hashes.len());
    if index < k {
        collect_path(&hashes[..k], index, path);
        path.push(subtree_root(&hashes[k..]));
    } else {
        collect_path(&hashes[k..], index - k, path);
        path.push(subtree_root(&hashes[..k]));
    }
}

/// Checks that `leaf` is at `proof.index` of the tree with `root` (RFC 9162 §2.1.3.2).
pub fn verify(root: &Hash32, leaf: &[u8], proof: &InclusionProof) -> Result<(), CryptoError> {
    if proof.index >= proof.size {
        return Err(CryptoError::BadProof);
    }
    let (mut fnode, mut snode) = (proof.index, proof.size - 1);
    let mut hash = leaf_hash(leaf);
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

//! The binary tree over epochs and the minimal cover of a window.
//!
//! Epochs are `u32` (one per day by default, so the tree spans eleven million years). A node at
//! depth `t` covers the `2^(32−t)` epochs whose top `t` bits equal its prefix; a window
//! `[from, to]` is covered exactly by at most `2·32` aligned subtrees, which is what a grant
//! carries instead of one key per day.

use crate::keys::KeyError;

/// Depth of the epoch tree: a leaf is one epoch.
pub const EPOCH_TREE_DEPTH: u8 = 32;
/// Largest number of nodes in a minimal cover (two per level, at most).
pub const MAX_COVER_NODES: usize = 2 * EPOCH_TREE_DEPTH as usize;

/// A key epoch (by default one UTC day).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Epoch(pub u32);

/// A node of the epoch tree: the epochs whose top `depth` bits equal `prefix`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TreeNode {
    /// 0 is the root (every epoch), [`EPOCH_TREE_DEPTH`] a single epoch.
    pub depth: u8,
    /// The top `depth` bits shared by the covered epochs.
    pub prefix: u32,
}

impl TreeNode {
    /// The node of depth `depth` above `epoch`.
    pub fn above(epoch: Epoch, depth: u8) -> Self {
        let prefix = if depth == 0 {
            0
        } else {
            epoch.0 >> (EPOCH_TREE_DEPTH - depth)
        };
        Self { depth, prefix }
    }

    /// The first and last epoch covered.
    pub fn span(&self) -> (Epoch, Epoch) {
        let width = u64::from(EPOCH_TREE_DEPTH - self.depth);
        let first = u64::from(self.prefix) << width;
        let last = first + ((1u64 << width) - 1);
        (Epoch(first as u32), Epoch(last as u32))
    }

    /// Whether `epoch` lies under this node.
    pub fn covers(&self, epoch: Epoch) -> bool {
        Self::above(epoch, self.depth) == *self
    }

    /// Whether the node is well formed (depth within the tree, prefix within `depth` bits).
    pub fn is_valid(&self) -> bool {
        self.depth <= EPOCH_TREE_DEPTH
            && (self.depth == EPOCH_TREE_DEPTH || u64::from(self.prefix) >> self.depth == 0)
    }
}

/// The minimal set of tree nodes covering exactly `[from, to]`, in epoch order.
pub fn minimal_cover(from: Epoch, to: Epoch) -> Result<Vec<TreeNode>, KeyError> {
    if from > to {
        return Err(KeyError::EmptyWindow { from, to });
    }
    let mut nodes = Vec::new();
    let mut next = u64::from(from.0);
    let end = u64::from(to.0);
    while next <= end {
        // The largest aligned block starting at `next` that does not pass `end`.
        let mut width_bits = next.trailing_zeros().min(u32::from(EPOCH_TREE_DEPTH));
        while next + (1u64 << width_bits) - 1 > end {
            width_bits -= 1;
        }
        let depth = EPOCH_TREE_DEPTH - width_bits as u8;
        nodes.push(TreeNode::above(Epoch(next as u32), depth));
        next += 1u64 << width_bits;
    }
    debug_assert!(nodes.len() <= MAX_COVER_NODES);
    Ok(nodes)
}

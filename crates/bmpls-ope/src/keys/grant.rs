//! What a carer holds after unwrapping a grant: node keys of the window's cover for the granted
//! level and every coarser one, and their canonical byte form (what is HPKE-wrapped).

use zeroize::Zeroizing;

use super::{EPOCH_TREE_DEPTH, Epoch, KeyError, MAX_LEVELS, SecretKey, TreeNode, minimal_cover};
use crate::keys::EpochKey;

/// Version byte of the serialised form.
const VERSION: u8 = 1;
/// Bytes before the nodes: version, level, level count, from, to, node count.
const HEADER_LEN: usize = 1 + 1 + 1 + 4 + 4 + 1;

/// One node of a grant's cover with its keys for the granted level and every coarser level.
#[derive(Clone, Debug)]
pub struct GrantNode {
    /// The epoch-tree node.
    pub node: TreeNode,
    /// Node keys for levels `granted, granted+1, …, count−1`.
    pub(crate) keys: Vec<SecretKey>,
}

/// Key material for one level (and the coarser ones) over one epoch window.
#[derive(Clone, Debug)]
pub struct GrantKeys {
    level: u8,
    level_count: u8,
    from: Epoch,
    to: Epoch,
    nodes: Vec<GrantNode>,
}

impl GrantKeys {
    /// Checks that `nodes` are exactly the minimal cover of `[from, to]`, each with one key per
    /// level from `level` to the coarsest.
    pub(crate) fn new(
        level: u8,
        level_count: u8,
        from: Epoch,
        to: Epoch,
        nodes: Vec<GrantNode>,
    ) -> Result<Self, KeyError> {
        if level_count == 0 || level_count > MAX_LEVELS {
            return Err(KeyError::LevelCount(level_count));
        }
        if level >= level_count {
            return Err(KeyError::NoSuchLevel {
                level,
                count: level_count,
            });
        }
        let cover = minimal_cover(from, to)?;
        let per_node = usize::from(level_count - level);
        let matches = cover.len() == nodes.len()
            && cover
                .iter()
                .zip(&nodes)
                .all(|(c, n)| *c == n.node && n.keys.len() == per_node);
        if !matches {
            return Err(KeyError::Malformed("nodes are not the window's cover"));
        }
        Ok(Self {
            level,
            level_count,
            from,
            to,
            nodes,
        })
    }

    /// The finest level these keys open.
    pub fn level(&self) -> u8 {
        self.level
    }

    /// The epoch window `[from, to]`.
    pub fn window(&self) -> (Epoch, Epoch) {
        (self.from, self.to)
    }

    /// The key of `level` in `epoch`, for any level at least as coarse as the grant's and any
    /// epoch in the window.
    pub fn epoch_key(&self, level: u8, epoch: Epoch) -> Result<EpochKey, KeyError> {
        if level < self.level {
            return Err(KeyError::FinerThanGranted {
                asked: level,
                granted: self.level,
            });
        }
        if level >= self.level_count {
            return Err(KeyError::NoSuchLevel {
                level,
                count: self.level_count,
            });
        }
        if epoch < self.from || epoch > self.to {
            return Err(KeyError::OutsideWindow(epoch));
        }
        let node = self
            .nodes
            .iter()
            .find(|n| n.node.covers(epoch))
            .ok_or(KeyError::OutsideWindow(epoch))?;
        let key = &node.keys[usize::from(level - self.level)];
        Ok(EpochKey(key.descend(node.node.depth, epoch)))
    }

    /// The canonical byte form: version, level, level count, window, then each node's depth,
    /// prefix and keys. Wiped when dropped.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let per_node = 5 + 32 * usize::from(self.level_count - self.level);
        let mut out = Zeroizing::new(Vec::with_capacity(HEADER_LEN + per_node * self.nodes.len()));
        out.extend_from_slice(&[VERSION, self.level, self.level_count]);
        out.extend_from_slice(&self.from.0.to_be_bytes());
        out.extend_from_slice(&self.to.0.to_be_bytes());
        out.push(self.nodes.len() as u8);
        for node in &self.nodes {
            out.push(node.node.depth);
            out.extend_from_slice(&node.node.prefix.to_be_bytes());
            for key in &node.keys {
                out.extend_from_slice(key.expose_secret());
            }
        }
        out
    }

    /// Parses [`GrantKeys::to_bytes`]; any other input is a typed error.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KeyError> {
        let header = bytes
            .get(..HEADER_LEN)
            .ok_or(KeyError::Malformed("truncated header"))?;
        if header[0] != VERSION {
            return Err(KeyError::Malformed("unknown version"));
        }
        let (level, level_count) = (header[1], header[2]);
        if level_count == 0 || level_count > MAX_LEVELS || level >= level_count {
            return Err(KeyError::Malformed("bad level"));
        }
        let from = Epoch(u32::from_be_bytes([
            header[3], header[4], header[5], header[6],
        ]));
        let to = Epoch(u32::from_be_bytes([
            header[7], header[8], header[9], header[10],
        ]));
        let count = usize::from(header[11]);
        if count > super::MAX_COVER_NODES {
            return Err(KeyError::Malformed("too many nodes"));
        }
        let per_node = 5 + 32 * usize::from(level_count - level);
        if bytes.len() != HEADER_LEN + count * per_node {
            return Err(KeyError::Malformed("length does not match the node count"));
        }
        let nodes = bytes[HEADER_LEN..]
            .chunks_exact(per_node)
            .map(|chunk| {
                let node = TreeNode {
                    depth: chunk[0],
                    prefix: u32::from_be_bytes([chunk[1], chunk[2], chunk[3], chunk[4]]),
                };
                if node.depth > EPOCH_TREE_DEPTH {
                    return Err(KeyError::Malformed("node depth"));
                }
                let keys = chunk[5..]
                    .chunks_exact(32)
                    .map(|k| {
                        let mut key = [0u8; 32];
                        key.copy_from_slice(k);
                        SecretKey::from_array(key)
                    })
                    .collect();
                Ok(GrantNode { node, keys })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(level, level_count, from, to, nodes).map_err(|e| match e {
            KeyError::EmptyWindow { .. } => KeyError::Malformed("empty window"),
            other => other,
        })
    }
}

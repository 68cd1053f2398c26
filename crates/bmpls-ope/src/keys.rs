//! The key hierarchy: one order-preserving key per (patient, precision level, epoch), all derived
//! with HMAC-SHA256 from the patient's master secret.
//!
//! ```text
//! master ──"level-root"──▶ root(0) ──"coarser"──▶ root(1) ──"coarser"──▶ … root(L−1)
//!                            │                      │
//!                       "epoch-tree"           "epoch-tree"
//!                            ▼                      ▼
//!                   32-level binary tree    32-level binary tree     (child = HMAC(parent,
//!                            ▼                      ▼                 "epoch-left|right" ‖ depth))
//!                     epoch key (0, e)       epoch key (1, e)
//! ```
//!
//! Level 0 is the finest. Holding `root(ℓ)` gives every coarser level's root and no finer one
//! (HMAC is one-way); holding a tree node gives the epochs below it and no other.
//!
//! **Descent and coarsening do not commute**: the level-`ℓ+1` key of an epoch is derived from
//! `root(ℓ+1)`, not from the level-`ℓ` key of that epoch. A grant for level `ℓ` over a window
//! therefore carries, for each node of the window's minimal cover, the node keys of levels
//! `ℓ, ℓ+1, …, L−1` ([`GrantNode`]): enough for every level the grant allows, inside the window
//! only, and nothing finer.

mod cover;
mod grant;

pub use cover::{EPOCH_TREE_DEPTH, Epoch, MAX_COVER_NODES, TreeNode, minimal_cover};
pub use grant::{GrantKeys, GrantNode};

use hmac::{Hmac, Mac};
use rand_core::CryptoRngCore;
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Most precision levels a patient's hierarchy has.
pub const MAX_LEVELS: u8 = 16;

const LEVEL_ROOT: &[u8] = b"bmpls/v1/ope/level-root";
const COARSER: &[u8] = b"bmpls/v1/ope/coarser";
const EPOCH_TREE: &[u8] = b"bmpls/v1/ope/epoch-tree";
const EPOCH_LEFT: &[u8] = b"bmpls/v1/ope/epoch-left";
const EPOCH_RIGHT: &[u8] = b"bmpls/v1/ope/epoch-right";
const SEAL: &[u8] = b"bmpls/v1/ope/seal";

/// Errors of key derivation and grant handling.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// A hierarchy must have between 1 and [`MAX_LEVELS`] levels.
    #[error("{0} levels: a key hierarchy has 1..={MAX_LEVELS}")]
    LevelCount(u8),
    /// A level index beyond the hierarchy.
    #[error("level {level} does not exist in a hierarchy of {count} levels")]
    NoSuchLevel {
        /// Requested level.
        level: u8,
        /// Levels in the hierarchy.
        count: u8,
    },
    /// A window whose start is after its end.
    #[error("empty epoch window [{}, {}]", from.0, to.0)]
    EmptyWindow {
        /// Start of the window.
        from: Epoch,
        /// End of the window.
        to: Epoch,
    },
    /// A grant for level `granted` cannot give keys of the finer level `asked`.
    #[error("level {asked} is finer than the granted level {granted}")]
    FinerThanGranted {
        /// Level asked for.
        asked: u8,
        /// Level granted.
        granted: u8,
    },
    /// The epoch lies outside the grant's window.
    #[error("epoch {} is outside the granted window", .0.0)]
    OutsideWindow(Epoch),
    /// Serialised grant keys that do not parse.
    #[error("malformed grant keys: {0}")]
    Malformed(&'static str),
}

/// A 32-byte secret that is wiped on drop and never printed.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SecretKey([u8; 32]);

impl SecretKey {
    pub(crate) fn from_array(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The secret bytes, for the OPE cipher ([`crate::OpeCipher::new`]) and the record seal.
    pub fn expose_secret(&self) -> &[u8; 32] {
        &self.0
    }

    fn hmac(&self, label: &[u8], extra: &[u8]) -> Self {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0)
            .expect("HMAC-SHA256 accepts keys of any length");
        mac.update(label);
        mac.update(extra);
        Self(mac.finalize().into_bytes().into())
    }

    /// Descends from a node key at `depth` to the child holding `epoch`.
    fn child(&self, depth: u8, epoch: Epoch) -> Self {
        let bit = (epoch.0 >> (EPOCH_TREE_DEPTH - 1 - depth)) & 1;
        let label = if bit == 0 { EPOCH_LEFT } else { EPOCH_RIGHT };
        self.hmac(label, &[depth])
    }

    /// Descends from a node key at `from_depth` down to the leaf of `epoch`.
    fn descend(&self, from_depth: u8, epoch: Epoch) -> Self {
        let mut key = self.clone();
        for depth in from_depth..EPOCH_TREE_DEPTH {
            key = key.child(depth, epoch);
        }
        key
    }
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

/// The patient's master secret: every key of every level and epoch derives from it.
#[derive(Clone, Debug, Zeroize, ZeroizeOnDrop)]
pub struct MasterSecret(SecretKey);

impl MasterSecret {
    /// A fresh random master secret.
    pub fn generate(rng: &mut impl CryptoRngCore) -> Self {
        let mut bytes = [0u8; 32];
        rng.fill_bytes(&mut bytes);
        let secret = Self(SecretKey(bytes));
        bytes.zeroize();
        secret
    }

    /// A master secret from its 32 bytes (e.g. read from the patient's keystore).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(SecretKey(bytes))
    }

    /// The secret bytes, for storing in the patient's keystore.
    pub fn expose_secret(&self) -> &[u8; 32] {
        self.0.expose_secret()
    }
}

/// The key of one (level, epoch): the OPE key of that level's ciphertexts in that epoch.
#[derive(Clone, Debug, Zeroize, ZeroizeOnDrop)]
pub struct EpochKey(SecretKey);

impl EpochKey {
    /// The secret bytes, to key [`crate::OpeCipher::new`].
    pub fn expose_secret(&self) -> &[u8; 32] {
        self.0.expose_secret()
    }

    /// The key that seals the exact fix (used with the finest level's epoch key only, so only
    /// holders of an `exact` grant can open it).
    pub fn seal_key(&self) -> SecretKey {
        self.0.hmac(SEAL, &[])
    }
}

/// All of a patient's keys: what the reporter and the custodian hold.
#[derive(Clone, Debug)]
pub struct PatientKeys {
    /// Root of each level's epoch tree, finest first.
    tree_roots: Vec<SecretKey>,
}

impl PatientKeys {
    /// Derives the hierarchy of `level_count` levels from `master`.
    pub fn new(master: &MasterSecret, level_count: u8) -> Result<Self, KeyError> {
        if level_count == 0 || level_count > MAX_LEVELS {
            return Err(KeyError::LevelCount(level_count));
        }
        let mut level_root = master.0.hmac(LEVEL_ROOT, &[]);
        let mut tree_roots = Vec::with_capacity(usize::from(level_count));
        for _ in 0..level_count {
            tree_roots.push(level_root.hmac(EPOCH_TREE, &[]));
            level_root = level_root.hmac(COARSER, &[]);
        }
        Ok(Self { tree_roots })
    }

    /// Number of levels.
    pub fn level_count(&self) -> u8 {
        self.tree_roots.len() as u8
    }

    /// The key of `level` in `epoch`.
    pub fn epoch_key(&self, level: u8, epoch: Epoch) -> Result<EpochKey, KeyError> {
        let root = self.tree_root(level)?;
        Ok(EpochKey(root.descend(0, epoch)))
    }

    /// The key material a carer needs for `level` (and every coarser one) over `[from, to]`.
    pub fn grant(&self, level: u8, from: Epoch, to: Epoch) -> Result<GrantKeys, KeyError> {
        self.tree_root(level)?;
        let nodes = minimal_cover(from, to)?
            .into_iter()
            .map(|node| GrantNode {
                node,
                keys: self.tree_roots[usize::from(level)..]
                    .iter()
                    .map(|root| node_key(root, node))
                    .collect(),
            })
            .collect();
        GrantKeys::new(level, self.level_count(), from, to, nodes)
    }

    fn tree_root(&self, level: u8) -> Result<&SecretKey, KeyError> {
        self.tree_roots
            .get(usize::from(level))
            .ok_or(KeyError::NoSuchLevel {
                level,
                count: self.level_count(),
            })
    }
}

/// The key of tree node `node` under the tree root `root`.
fn node_key(root: &SecretKey, node: TreeNode) -> SecretKey {
    let (first, _) = node.span();
    let mut key = root.clone();
    for depth in 0..node.depth {
        key = key.child(depth, first);
    }
    key
}

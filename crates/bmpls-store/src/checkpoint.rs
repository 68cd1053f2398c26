//! Checkpoints of the state a validator derives from its chain (the ledger, the alerts), so
//! that a restart replays only the blocks after the newest one instead of the whole chain. The
//! store keeps the bytes behind a checksum and knows nothing of what they mean; the node checks
//! that a checkpoint matches the chain before it trusts it.

use bmpls_types::Height;

use crate::error::StoreError;
use crate::layout::{self, CHECKPOINT, be_u64, height_key, open_value, seal_value};
use crate::store::Store;

/// Checkpoints kept: the newest and the one before, so a damaged newest one still leaves a
/// short replay.
pub const KEEP_CHECKPOINTS: usize = 2;

impl Store {
    /// Stores the checkpoint of the state after block `height`, and drops all but the newest
    /// [`KEEP_CHECKPOINTS`]. Durable with the next flush (a lost checkpoint costs a longer
    /// replay, never an acknowledgement).
    pub fn put_checkpoint(&self, height: Height, bytes: &[u8]) -> Result<(), StoreError> {
        self.tree
            .insert(height_key(CHECKPOINT, height), seal_value(bytes))?;
        for old in self.checkpoints()?.into_iter().skip(KEEP_CHECKPOINTS) {
            self.tree.remove(height_key(CHECKPOINT, old))?;
        }
        Ok(())
    }

    /// The heights of the stored checkpoints, newest first.
    pub fn checkpoints(&self) -> Result<Vec<Height>, StoreError> {
        let mut heights = Vec::new();
        for key in self.tree.scan_prefix([CHECKPOINT]).keys().rev() {
            let key = key?;
            let height = be_u64(&key, 1).ok_or_else(|| layout::corrupt("checkpoint", &key))?;
            heights.push(Height(height));
        }
        Ok(heights)
    }

    /// The checkpoint of the state after block `height`, checksum verified.
    pub fn checkpoint(&self, height: Height) -> Result<Option<Vec<u8>>, StoreError> {
        let key = height_key(CHECKPOINT, height);
        match self.tree.get(&key)? {
            None => Ok(None),
            Some(stored) => Ok(Some(open_value(&stored, "checkpoint", &key)?.to_vec())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_checkpoints_are_kept_and_a_damaged_one_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let chain = bmpls_types::ChainId::new("checkpoints").expect("short");
        let store = Store::open(dir.path(), &chain).expect("opens");
        assert_eq!(store.checkpoints().expect("reads"), Vec::new());
        for h in [10u64, 20, 300] {
            store
                .put_checkpoint(Height(h), &h.to_be_bytes())
                .expect("puts");
        }
        assert_eq!(
            store.checkpoints().expect("reads"),
            vec![Height(300), Height(20)]
        );
        assert_eq!(store.checkpoint(Height(10)).expect("reads"), None);
        assert_eq!(
            store.checkpoint(Height(300)).expect("reads"),
            Some(300u64.to_be_bytes().to_vec())
        );
        // A flipped bit on disk.
        let key = height_key(CHECKPOINT, Height(20));
        let mut stored = store
            .tree
            .get(&key)
            .expect("reads")
            .expect("there")
            .to_vec();
        *stored.last_mut().expect("bytes") ^= 1;
        store.tree.insert(&key, stored).expect("writes");
        assert!(matches!(
            store.checkpoint(Height(20)),
            Err(StoreError::Corrupt { .. })
        ));
    }
}

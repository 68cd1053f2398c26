//! A validator's derived state (the ledger and the alerts) checkpointed in its store, so that a
//! restart costs the blocks after the newest checkpoint, not the whole chain.
//!
//! A checkpoint is written after the blocks where the chain's count of transactions crosses a
//! multiple of [`CHECKPOINT_EVERY_RECORDS`], and at every multiple of
//! [`CHECKPOINT_EVERY_HEIGHTS`] (by default; the node configuration's `[checkpoints]`), so a
//! restart replays at most about that many; the heights are a function of the chain alone
//! ([`falls_after`]). On
//! start, the newest checkpoint at or below the store's tip is used only if the ledger it holds ends at the very block the store holds at its height
//! (same hash); a checkpoint that is damaged, of another layout, or off the chain is skipped with
//! a warning, and the one before it (or the whole chain) is replayed instead. A checkpoint is a
//! cache of a pure function of the chain: losing it costs time, never correctness.

use bmpls_consensus::{Genesis, Ledger};
use bmpls_store::Store;
use bmpls_types::Height;
use borsh::{BorshDeserialize, BorshSerialize};
use tracing::warn;

use crate::NodeError;
use crate::alerts::Alerts;
use crate::config::CheckpointPolicy;

/// Records committed between checkpoints by default (`[checkpoints] every_records`): a
/// restart replays about this many at most.
pub const CHECKPOINT_EVERY_RECORDS: u64 = 50_000;
/// Blocks committed between checkpoints by default when few records come (`[checkpoints]
/// every_heights`; empty blocks cost a replay too).
pub const CHECKPOINT_EVERY_HEIGHTS: u64 = 2_000;

/// The bytes of a checkpoint: the ledger's and the alerts' own, each versioned by its owner.
#[derive(BorshSerialize, BorshDeserialize)]
struct Stored {
    ledger: Vec<u8>,
    alerts: Vec<u8>,
}

/// The checkpoint of `ledger` and `alerts` (both after the same block).
pub(crate) fn encode(ledger: &Ledger, alerts: &Alerts) -> Vec<u8> {
    borsh::to_vec(&Stored {
        ledger: ledger.checkpoint(),
        alerts: alerts.checkpoint(),
    })
    .expect("serialising into a Vec cannot fail")
}

/// Whether a checkpoint falls after the block at `height`, of `block_txs` transactions, with
/// `committed_txs` committed up to and including it: at every multiple of the policy's
/// `every_heights`, and at the block where the chain's count of transactions crosses a multiple
/// of `every_records`. A pure function of the chain, so every validator with the same policy
/// checkpoints at the same heights, and a joining validator can ask several for the same
/// checkpoint and compare (`crate::snapshot`). A validator that applied several blocks in one
/// step (catching up) skips the heights it could not checkpoint at; it has the next one.
pub(crate) fn falls_after(
    policy: CheckpointPolicy,
    height: Height,
    block_txs: usize,
    committed_txs: u64,
) -> bool {
    let every_records = policy.every_records.max(1);
    let before = committed_txs.saturating_sub(block_txs as u64);
    height.0 % policy.every_heights.max(1) == 0
        || committed_txs / every_records != before / every_records
}

/// Where a rebuilt state came from.
#[derive(Debug)]
pub struct Rebuilt {
    /// The ledger after the store's tip.
    pub ledger: Ledger,
    /// The alerts after the store's tip.
    pub alerts: Alerts,
    /// The height of the checkpoint it started from (`None`: the genesis).
    pub checkpoint: Option<Height>,
    /// Blocks replayed after it.
    pub replayed: u64,
}

/// The state after the store's tip: from the newest usable checkpoint (if `use_checkpoints`)
/// plus the blocks after it, else by replaying the whole chain from the genesis.
pub fn rebuild(
    genesis: &Genesis,
    store: &Store,
    use_checkpoints: bool,
) -> Result<Rebuilt, NodeError> {
    let (tip, _) = store.tip()?;
    let start = if use_checkpoints {
        newest_usable(genesis, store, tip)?
    } else {
        None
    };
    let (mut ledger, mut alerts, checkpoint) = match start {
        Some((ledger, alerts)) => {
            let at = ledger.height();
            (ledger, alerts, Some(at))
        }
        None => {
            if let Some(base) = store.base()? {
                return Err(NodeError::Internal(format!(
                    "the store started from a snapshot after block {} and holds no block before \
                     it, but its checkpoint there is unusable (see the warnings above): move the \
                     data folder aside and join again from a snapshot",
                    base.height.0
                )));
            }
            (
                Ledger::genesis(genesis.validators.clone(), genesis.genesis_time_ms),
                Alerts::default(),
                None,
            )
        }
    };
    let from = ledger.height().0 + 1;
    apply_stored(store, (&mut ledger, &mut alerts), tip)?;
    Ok(Rebuilt {
        ledger,
        alerts,
        checkpoint,
        replayed: tip.0.saturating_sub(from - 1),
    })
}

/// The state after block `to` of `store`, replayed from the genesis (a check of a state
/// obtained otherwise: from a checkpoint, or from a snapshot on another validator).
pub fn replay_to(genesis: &Genesis, store: &Store, to: Height) -> Result<Rebuilt, NodeError> {
    let mut ledger = Ledger::genesis(genesis.validators.clone(), genesis.genesis_time_ms);
    let mut alerts = Alerts::default();
    apply_stored(store, (&mut ledger, &mut alerts), to)?;
    Ok(Rebuilt {
        ledger,
        alerts,
        checkpoint: None,
        replayed: to.0,
    })
}

/// Applies the stored blocks after the ledger's height up to `to`.
fn apply_stored(
    store: &Store,
    (ledger, alerts): (&mut Ledger, &mut Alerts),
    to: Height,
) -> Result<(), NodeError> {
    for height in ledger.height().0 + 1..=to.0 {
        let block = store.block(Height(height))?.ok_or_else(|| {
            NodeError::Internal(format!("block {height} is missing below {}", to.0))
        })?;
        let hash = bmpls_crypto::hash::block_hash(&block.header);
        let block = bmpls_crypto::HashedBlock::new(block);
        ledger.apply(&block, hash);
        alerts.on_block(&block);
    }
    Ok(())
}

/// The newest checkpoint at or below `tip` that decodes and sits on the stored chain.
fn newest_usable(
    genesis: &Genesis,
    store: &Store,
    tip: Height,
) -> Result<Option<(Ledger, Alerts)>, NodeError> {
    for height in store.checkpoints()? {
        if height > tip {
            // Written after a block the disk then lost (it cannot be: the checkpoint follows
            // its block in sled's log; kept as a check).
            warn!(
                checkpoint = height.0,
                tip = tip.0,
                "checkpoint above the tip; skipped"
            );
            continue;
        }
        match usable(genesis, store, height) {
            Ok(state) => return Ok(Some(state)),
            Err(why) => warn!(checkpoint = height.0, %why, "checkpoint skipped"),
        }
    }
    Ok(None)
}

/// The ledger and alerts of checkpoint `bytes` of the chain of `genesis` (not yet checked
/// against any block).
pub(crate) fn decode(genesis: &Genesis, bytes: &[u8]) -> Result<(Ledger, Alerts), String> {
    let stored: Stored = borsh::from_slice(bytes).map_err(|e| format!("malformed: {e}"))?;
    let ledger =
        Ledger::restore(genesis.validators.clone(), &stored.ledger).map_err(|e| e.to_string())?;
    let alerts = Alerts::restore(&stored.alerts)?;
    Ok((ledger, alerts))
}

fn usable(genesis: &Genesis, store: &Store, height: Height) -> Result<(Ledger, Alerts), String> {
    let bytes = store
        .checkpoint(height)
        .map_err(|e| e.to_string())?
        .ok_or("gone")?;
    let (ledger, alerts) = decode(genesis, &bytes)?;
    let header = store
        .header(height)
        .map_err(|e| e.to_string())?
        .ok_or("no block at its height")?;
    if ledger.height() != height || ledger.tip() != bmpls_crypto::hash::block_hash(&header) {
        return Err(format!(
            "it ends at height {} on another block than the stored one",
            ledger.height().0
        ));
    }
    Ok((ledger, alerts))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoints_fall_at_multiples_of_heights_and_where_the_count_crosses_a_multiple() {
        let policy = CheckpointPolicy {
            every_records: 100,
            every_heights: 10,
            join_from_snapshot: false,
        };
        assert!(falls_after(policy, Height(10), 0, 5));
        assert!(falls_after(policy, Height(20), 3, 8));
        assert!(!falls_after(policy, Height(11), 0, 5));
        // 70 → 120 crosses 100; 120 → 130 crosses nothing; 0 → 100 reaches it.
        assert!(falls_after(policy, Height(3), 50, 120));
        assert!(!falls_after(policy, Height(4), 10, 130));
        assert!(falls_after(policy, Height(1), 100, 100));
        // One block of many records crossing several multiples is one checkpoint.
        assert!(falls_after(policy, Height(5), 350, 480));
    }
}

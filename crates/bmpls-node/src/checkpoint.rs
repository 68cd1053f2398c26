//! A validator's derived state (the ledger and the alerts) checkpointed in its store, so that a
//! restart costs the blocks after the newest checkpoint, not the whole chain.
//!
//! A checkpoint is written after block `h` when [`CHECKPOINT_EVERY_RECORDS`] transactions or
//! [`CHECKPOINT_EVERY_HEIGHTS`] blocks (by default; the node configuration's `[checkpoints]`)
//! have been committed since the last one, so a restart replays at most about that many. On
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

/// Decides when the next checkpoint is due.
#[derive(Debug)]
pub(crate) struct Schedule {
    policy: CheckpointPolicy,
    records: u64,
    heights: u64,
}

impl Schedule {
    pub(crate) fn new(policy: CheckpointPolicy) -> Self {
        Self {
            policy,
            records: 0,
            heights: 0,
        }
    }

    /// Counts a committed block of `txs` transactions; true while a checkpoint is due.
    pub(crate) fn due(&mut self, txs: usize) -> bool {
        self.records += txs as u64;
        self.heights += 1;
        self.records >= self.policy.every_records || self.heights >= self.policy.every_heights
    }

    /// A checkpoint was written.
    pub(crate) fn written(&mut self) {
        (self.records, self.heights) = (0, 0);
    }
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
        None => (
            Ledger::genesis(genesis.validators.clone(), genesis.genesis_time_ms),
            Alerts::default(),
            None,
        ),
    };
    let from = ledger.height().0 + 1;
    for height in from..=tip.0 {
        let block = store.block(Height(height))?.ok_or_else(|| {
            NodeError::Internal(format!("block {height} is missing below the tip {}", tip.0))
        })?;
        let hash = bmpls_crypto::hash::block_hash(&block.header);
        let block = bmpls_crypto::HashedBlock::new(block);
        ledger.apply(&block, hash);
        alerts.on_block(&block);
    }
    Ok(Rebuilt {
        ledger,
        alerts,
        checkpoint,
        replayed: tip.0.saturating_sub(from - 1),
    })
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

fn usable(genesis: &Genesis, store: &Store, height: Height) -> Result<(Ledger, Alerts), String> {
    let bytes = store
        .checkpoint(height)
        .map_err(|e| e.to_string())?
        .ok_or("gone")?;
    let stored: Stored = borsh::from_slice(&bytes).map_err(|e| format!("malformed: {e}"))?;
    let ledger =
        Ledger::restore(genesis.validators.clone(), &stored.ledger).map_err(|e| e.to_string())?;
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
    let alerts = Alerts::restore(&stored.alerts)?;
    Ok((ledger, alerts))
}

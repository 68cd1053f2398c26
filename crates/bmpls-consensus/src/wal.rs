//! The consensus write-ahead log, behind a small storage trait: the node keeps it in files
//! (`bmpls_store::FileWal`), the simulator in memory that survives its simulated crashes. What a
//! validator received, decided to be valid and signed at a height is appended, durably, before
//! it acts on it; a restarted validator replays the log and re-signs only what it signed before.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Where the log lives. Entries are opaque bytes (encoded [`crate::message::WalRecord`]s).
pub trait WalStorage {
    /// The storage's error.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Appends `entry` to the log of `height`. With `durable`, this entry and every one before
    /// it are on stable storage when this returns; without, they may be lost in a crash (the
    /// next durable append carries them).
    fn append(&mut self, height: u64, entry: &[u8], durable: bool) -> Result<(), Self::Error>;

    /// The entries of every height from `height` on, in height then append order.
    fn entries_from(&self, height: u64) -> Result<Vec<(u64, Vec<u8>)>, Self::Error>;

    /// Forgets the entries of heights below `height`.
    fn prune_below(&mut self, height: u64) -> Result<(), Self::Error>;
}

/// A log in memory: what the simulator gives a validator as its "disk". Clones share one log, so
/// the simulator keeps a handle while a validator crashes and restarts.
#[derive(Clone, Debug, Default)]
pub struct MemoryWal {
    entries: Arc<Mutex<BTreeMap<u64, Vec<Vec<u8>>>>>,
}

impl MemoryWal {
    fn log(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Vec<Vec<u8>>>> {
        // A panic while holding the lock can only come from a bug elsewhere; the map is still
        // whole (every operation below completes or does nothing).
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Entries held, over all heights.
    pub fn len(&self) -> usize {
        self.log().values().map(Vec::len).sum()
    }

    /// Whether the log is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl WalStorage for MemoryWal {
    type Error = std::convert::Infallible;

    fn append(&mut self, height: u64, entry: &[u8], _durable: bool) -> Result<(), Self::Error> {
        self.log().entry(height).or_default().push(entry.to_vec());
        Ok(())
    }

    fn entries_from(&self, height: u64) -> Result<Vec<(u64, Vec<u8>)>, Self::Error> {
        Ok(self
            .log()
            .range(height..)
            .flat_map(|(h, entries)| entries.iter().map(move |e| (*h, e.clone())))
            .collect())
    }

    fn prune_below(&mut self, height: u64) -> Result<(), Self::Error> {
        let mut log = self.log();
        *log = log.split_off(&height);
        Ok(())
    }
}

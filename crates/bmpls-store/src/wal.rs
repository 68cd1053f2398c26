//! The consensus write-ahead log on sled, in its own database directory beside the store so that
//! its small, frequent flushes never wait behind a block's batch. Keys are `height ‖ sequence`,
//! big-endian, so a height's entries read back in append order; values carry the store's
//! checksum and are verified when replayed.

use std::path::Path;

use bmpls_consensus::WalStorage;

use crate::durable::Durability;
use crate::error::StoreError;
use crate::layout::{be_u64, hex, open_value, seal_value};

/// A validator's consensus log.
pub struct SledWal {
    db: sled::Db,
    next: u64,
    durability: Durability,
}

impl SledWal {
    /// Opens (or creates) the log in `dir`.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let db =
            crate::layout::open_sled(&sled::Config::new().path(dir).flush_every_ms(None), dir)?;
        // Sequence numbers continue after the last entry, whatever its height.
        let next = match db.iter().keys().next_back() {
            Some(key) => {
                let key = key?;
                be_u64(&key, 8).ok_or_else(|| StoreError::Corrupt {
                    what: "write-ahead log key",
                    key: hex(&key),
                })? + 1
            }
            None => 0,
        };
        Ok(Self {
            db,
            next,
            durability: Durability::new(dir),
        })
    }
}

fn wal_key(height: u64, sequence: u64) -> [u8; 16] {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&height.to_be_bytes());
    key[8..].copy_from_slice(&sequence.to_be_bytes());
    key
}

impl WalStorage for SledWal {
    type Error = StoreError;

    fn append(&mut self, height: u64, entry: &[u8], durable: bool) -> Result<(), StoreError> {
        self.db
            .insert(wal_key(height, self.next), seal_value(entry))?;
        self.next += 1;
        if durable {
            // What the engine signs next depends on this entry: it must survive a power cut,
            // or a restarted validator could sign a second value at the same height and round.
            self.db.flush()?;
            self.durability.sync().map_err(|source| StoreError::Sync {
                dir: self.durability.dir().to_path_buf(),
                source,
            })?;
        }
        Ok(())
    }

    fn entries_from(&self, height: u64) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let mut entries = Vec::new();
        for item in self.db.range(wal_key(height, 0)..) {
            let (key, value) = item?;
            let corrupt = || StoreError::Corrupt {
                what: "write-ahead log entry",
                key: hex(&key),
            };
            let at = be_u64(&key, 0).ok_or_else(corrupt)?;
            let payload = open_value(&value, "write-ahead log entry", &key)?;
            entries.push((at, payload.to_vec()));
        }
        Ok(entries)
    }

    fn prune_below(&mut self, height: u64) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for key in self.db.range(..wal_key(height, 0)).keys() {
            batch.remove(key?);
        }
        self.db.apply_batch(batch)?;
        Ok(())
    }
}

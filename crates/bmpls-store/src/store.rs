//! Opening a store, applying committed blocks atomically and durably, and reading blocks back.

use std::collections::BTreeMap;
use std::path::Path;

use bmpls_crypto::Verified;
use bmpls_crypto::hash::{block_hash, tx_hash};
use bmpls_types::{
    Block, BlockHash, Canonical, ChainId, CommitCertificate, Height, LevelIndex, LocationRecord,
    PatientId, Seq, Transaction, TxHash,
};

use crate::error::StoreError;
use crate::layout::{
    self, BLOCK, CERT, META, PATIENT, TX, be_u32, be_u64, cell_key, height_key, open_value,
    record_key, seal_value, time_key,
};

/// sled's page cache: indexes of a large caseload should stay in memory on a validator.
const CACHE_BYTES: u64 = 4 << 30;

/// Version of the on-disk layout this build reads and writes.
pub const SCHEMA_VERSION: u32 = 1;

const META_SCHEMA: &[u8] = b"schema";
const META_CHAIN: &[u8] = b"chain";
const META_TIP: &[u8] = b"tip";

/// What the store knows about one patient without scanning: enough to answer `last` and to
/// estimate how many records a time window holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PatientSummary {
    /// Highest sequence number stored.
    pub last_seq: Seq,
    /// Earliest fix time stored.
    pub first_fix_ms: u64,
    /// Latest fix time stored.
    pub last_fix_ms: u64,
    /// Records stored.
    pub count: u64,
}

impl PatientSummary {
    fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(32);
        for x in [
            self.last_seq.0,
            self.first_fix_ms,
            self.last_fix_ms,
            self.count,
        ] {
            v.extend_from_slice(&x.to_be_bytes());
        }
        v
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        (bytes.len() == 32).then_some(())?;
        Some(Self {
            last_seq: Seq(be_u64(bytes, 0)?),
            first_fix_ms: be_u64(bytes, 8)?,
            last_fix_ms: be_u64(bytes, 16)?,
            count: be_u64(bytes, 24)?,
        })
    }
}

/// A record as the store holds it: where it was committed, and the record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredRecord {
    /// Height of the block that committed it.
    pub height: Height,
    /// Its position among the block's transactions (for the Merkle proof).
    pub index: u32,
    /// The record.
    pub record: LocationRecord,
}

/// A validator's durable store.
#[derive(Clone, Debug)]
pub struct Store {
    pub(crate) db: sled::Db,
    pub(crate) tree: sled::Tree,
    chain_id: ChainId,
}

impl Store {
    /// Opens (or creates) the store in `dir` for `chain_id`; refuses another chain or schema.
    pub fn open(dir: &Path, chain_id: &ChainId) -> Result<Self, StoreError> {
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(CACHE_BYTES)
            .flush_every_ms(None)
            .open()?;
        let tree = db.open_tree("chain")?;
        let store = Self {
            db,
            tree,
            chain_id: chain_id.clone(),
        };
        store.check_meta()?;
        Ok(store)
    }

    fn check_meta(&self) -> Result<(), StoreError> {
        let schema_key = layout::key(META, &[META_SCHEMA]);
        match self.tree.get(&schema_key)? {
            None => {
                let mut batch = sled::Batch::default();
                batch.insert(schema_key, seal_value(&SCHEMA_VERSION.to_be_bytes()));
                batch.insert(
                    layout::key(META, &[META_CHAIN]),
                    seal_value(self.chain_id.as_str().as_bytes()),
                );
                self.tree.apply_batch(batch)?;
                self.db.flush()?;
            }
            Some(stored) => {
                let payload = open_value(&stored, "schema version", &schema_key)?;
                let found =
                    be_u32(payload, 0).ok_or_else(|| corrupt("schema version", &schema_key))?;
                if found != SCHEMA_VERSION {
                    return Err(StoreError::Schema {
                        found,
                        expected: SCHEMA_VERSION,
                    });
                }
                let chain_key = layout::key(META, &[META_CHAIN]);
                let stored = self
                    .tree
                    .get(&chain_key)?
                    .ok_or_else(|| corrupt("chain id", &chain_key))?;
                let found = String::from_utf8_lossy(open_value(&stored, "chain id", &chain_key)?)
                    .into_owned();
                if found != self.chain_id.as_str() {
                    return Err(StoreError::ChainMismatch {
                        found,
                        expected: self.chain_id.as_str().to_owned(),
                    });
                }
            }
        }
        Ok(())
    }

    /// The chain this store belongs to.
    pub fn chain_id(&self) -> &ChainId {
        &self.chain_id
    }

    /// Height and hash of the last applied block (height 0 and the zero hash when empty).
    pub fn tip(&self) -> Result<(Height, BlockHash), StoreError> {
        let key = layout::key(META, &[META_TIP]);
        match self.tree.get(&key)? {
            None => Ok((Height(0), BlockHash::ZERO)),
            Some(stored) => {
                let payload = open_value(&stored, "tip", &key)?;
                let height = be_u64(payload, 0).ok_or_else(|| corrupt("tip", &key))?;
                let hash: [u8; 32] = payload
                    .get(8..40)
                    .and_then(|h| h.try_into().ok())
                    .ok_or_else(|| corrupt("tip", &key))?;
                Ok((Height(height), BlockHash(hash)))
            }
        }
    }

    /// Applies the next committed block and its certificate: every index entry in one atomic
    /// batch, flushed to disk before returning. After a crash either all of it is there or
    /// none.
    pub fn apply_block(
        &self,
        block: &Verified<Block>,
        cert: &CommitCertificate,
    ) -> Result<(), StoreError> {
        let header = &block.header;
        let (tip_height, tip_hash) = self.tip()?;
        let expected = tip_height.0 + 1;
        if header.height.0 != expected || header.prev_hash != tip_hash {
            return Err(StoreError::NotNext {
                expected,
                got: header.height.0,
            });
        }
        let mut batch = sled::Batch::default();
        let mut summaries: BTreeMap<PatientId, PatientSummary> = BTreeMap::new();
        for (index, tx) in block.txs.iter().enumerate() {
            let index = index as u32;
            let mut position = header.height.0.to_be_bytes().to_vec();
            position.extend_from_slice(&index.to_be_bytes());
            batch.insert(layout::key(TX, &[&tx_hash(tx).0]), seal_value(&position));
            if let Transaction::Report(record) = tx {
                self.index_record(&mut batch, &mut summaries, record, &position)?;
            }
        }
        for (patient, summary) in &summaries {
            batch.insert(
                layout::key(PATIENT, &[&patient.0]),
                seal_value(&summary.encode()),
            );
        }
        batch.insert(
            height_key(BLOCK, header.height),
            seal_value(&block.get().encode()),
        );
        batch.insert(height_key(CERT, header.height), seal_value(&cert.encode()));
        let mut tip = header.height.0.to_be_bytes().to_vec();
        tip.extend_from_slice(&block_hash(header).0);
        batch.insert(layout::key(META, &[META_TIP]), seal_value(&tip));
        self.tree.apply_batch(batch)?;
        self.db.flush()?;
        Ok(())
    }

    fn index_record(
        &self,
        batch: &mut sled::Batch,
        summaries: &mut BTreeMap<PatientId, PatientSummary>,
        record: &LocationRecord,
        position: &[u8],
    ) -> Result<(), StoreError> {
        let summary = match summaries.get(&record.patient) {
            Some(s) => Some(*s),
            None => self.summary(&record.patient)?,
        };
        let last = summary.map_or(0, |s| s.last_seq.0);
        if record.seq.0 != last + 1 {
            return Err(StoreError::Sequence {
                last,
                got: record.seq.0,
            });
        }
        let mut value = position.to_vec();
        value.extend_from_slice(&record.encode());
        batch.insert(record_key(&record.patient, record.seq), seal_value(&value));
        // The time index carries the epoch and every level's ciphertext, so an area query
        // planned on time filters without fetching records that do not match.
        let mut cells = record.epoch.0.to_be_bytes().to_vec();
        for cell in record.cells.iter() {
            cells.extend_from_slice(&cell.0.to_be_bytes());
        }
        batch.insert(
            time_key(&record.patient, record.fix_time_ms, record.seq),
            seal_value(&cells),
        );
        for (level, cell) in record.cells.iter().enumerate() {
            batch.insert(
                cell_key(
                    LevelIndex(level as u8),
                    &record.patient,
                    record.epoch,
                    *cell,
                    record.seq,
                ),
                seal_value(&record.fix_time_ms.to_be_bytes()),
            );
        }
        let updated = match summary {
            None => PatientSummary {
                last_seq: record.seq,
                first_fix_ms: record.fix_time_ms,
                last_fix_ms: record.fix_time_ms,
                count: 1,
            },
            Some(s) => PatientSummary {
                last_seq: record.seq,
                first_fix_ms: s.first_fix_ms.min(record.fix_time_ms),
                last_fix_ms: s.last_fix_ms.max(record.fix_time_ms),
                count: s.count + 1,
            },
        };
        summaries.insert(record.patient, updated);
        Ok(())
    }

    /// The block at `height`, checked against its checksum and decoded.
    pub fn block(&self, height: Height) -> Result<Option<Block>, StoreError> {
        self.read(&height_key(BLOCK, height), "block", |p| {
            Block::decode(p).ok()
        })
    }

    /// The commit certificate of the block at `height`.
    pub fn certificate(&self, height: Height) -> Result<Option<CommitCertificate>, StoreError> {
        self.read(&height_key(CERT, height), "certificate", |p| {
            CommitCertificate::decode(p).ok()
        })
    }

    /// Where a transaction was committed: height and index in its block.
    pub fn tx_position(&self, hash: &TxHash) -> Result<Option<(Height, u32)>, StoreError> {
        self.read(&layout::key(TX, &[&hash.0]), "tx index", |p| {
            Some((Height(be_u64(p, 0)?), be_u32(p, 8)?))
        })
    }

    /// The summary of `patient`, if any record of theirs is stored.
    pub fn summary(&self, patient: &PatientId) -> Result<Option<PatientSummary>, StoreError> {
        self.read(
            &layout::key(PATIENT, &[&patient.0]),
            "patient summary",
            PatientSummary::decode,
        )
    }

    /// The record `(patient, seq)`.
    pub fn record(
        &self,
        patient: &PatientId,
        seq: Seq,
    ) -> Result<Option<StoredRecord>, StoreError> {
        self.read(&record_key(patient, seq), "record", |p| {
            Some(StoredRecord {
                height: Height(be_u64(p, 0)?),
                index: be_u32(p, 8)?,
                record: LocationRecord::decode(p.get(12..)?).ok()?,
            })
        })
    }

    /// Reads, checks and decodes one value; a value that fails either is `Corrupt`.
    pub(crate) fn read<T>(
        &self,
        key: &[u8],
        what: &'static str,
        decode: impl FnOnce(&[u8]) -> Option<T>,
    ) -> Result<Option<T>, StoreError> {
        match self.tree.get(key)? {
            None => Ok(None),
            Some(stored) => {
                let payload = open_value(&stored, what, key)?;
                decode(payload).map(Some).ok_or_else(|| corrupt(what, key))
            }
        }
    }
}

pub(crate) fn corrupt(what: &'static str, key: &[u8]) -> StoreError {
    StoreError::Corrupt {
        what,
        key: layout::hex(key),
    }
}

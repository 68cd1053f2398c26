//! Opening a store, applying committed blocks atomically and durably, and reading blocks back.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use bmpls_crypto::hash::{block_hash, tx_hash};
use bmpls_crypto::merkle::MerkleTree;
use bmpls_crypto::{HashedBlock, Verified};
use bmpls_types::{
    Block, BlockHash, BlockHeader, Canonical, ChainId, CommitCertificate, Height, LocationRecord,
    PatientId, Seq, Transaction,
};

use crate::chunk::RecordChunk;
use crate::durable::Durability;
use crate::error::StoreError;
use crate::layout::{
    self, BLOCK, CERT, LEAVES, META, PATIENT, SEGMENT_BYTES, TX, be_u32, be_u64, corrupt,
    height_key, open_value, records_key, seal_value, trailing_seq,
};
use crate::skeleton::Skeleton;

/// sled's page cache: indexes of a large caseload should stay in memory on a validator.
const CACHE_BYTES: u64 = 4 << 30;

/// Version of the on-disk layout this build reads and writes. 9: wire version 2 (records signed
/// and leaf-hashed through their digest), so every stored value and leaf hash changed. 10: the
/// fine levels are ORE right ciphertexts, which chunk indexes and zone maps leave out.
pub const SCHEMA_VERSION: u32 = 10;

const META_SCHEMA: &[u8] = b"schema";
const META_CHAIN: &[u8] = b"chain";
pub(crate) const META_TIP: &[u8] = b"tip";
pub(crate) const META_BASE: &[u8] = b"base";

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
    /// Blocks that carried the patient's records (each wrote a zone map per epoch).
    pub blocks: u64,
    /// Index chunks written: with `blocks`, how big the patient's chunks are.
    pub chunks: u64,
    /// The patient's latest chunks, each of one small block, not yet compacted.
    pub(crate) open: OpenRun,
}

/// A run of small chunks at the end of a patient's records, each written by a block that carried
/// fewer than [`crate::layout::INDEX_CHUNK_RECORDS`] of them (and so one chunk and one zone map per epoch).
/// Once it holds that many records it is rewritten as full chunks (`runs.rs`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct OpenRun {
    /// Its first sequence number; 0 when there is no run.
    pub(crate) first: u64,
    /// The key time of its first chunk.
    pub(crate) key_time_ms: u64,
    /// The patient's latest fix time before it.
    pub(crate) max_before_ms: u64,
    /// Blocks that wrote its chunks.
    pub(crate) blocks: u64,
}

impl PatientSummary {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(80);
        for x in [
            self.last_seq.0,
            self.first_fix_ms,
            self.last_fix_ms,
            self.count,
            self.blocks,
            self.chunks,
            self.open.first,
            self.open.key_time_ms,
            self.open.max_before_ms,
            self.open.blocks,
        ] {
            v.extend_from_slice(&x.to_be_bytes());
        }
        v
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        (bytes.len() == 80).then_some(())?;
        Some(Self {
            last_seq: Seq(be_u64(bytes, 0)?),
            first_fix_ms: be_u64(bytes, 8)?,
            last_fix_ms: be_u64(bytes, 16)?,
            count: be_u64(bytes, 24)?,
            blocks: be_u64(bytes, 32)?,
            chunks: be_u64(bytes, 40)?,
            open: OpenRun {
                first: be_u64(bytes, 48)?,
                key_time_ms: be_u64(bytes, 56)?,
                max_before_ms: be_u64(bytes, 64)?,
                blocks: be_u64(bytes, 72)?,
            },
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
    /// What of the database folder is on stable storage; synced after every flush.
    durability: std::sync::Arc<std::sync::Mutex<Durability>>,
}

impl Store {
    /// Opens (or creates) the store in `dir` for `chain_id`; refuses another chain or schema.
    pub fn open(dir: &Path, chain_id: &ChainId) -> Result<Self, StoreError> {
        let db = layout::open_sled(
            &sled::Config::new()
                .path(dir)
                .cache_capacity(CACHE_BYTES)
                .segment_size(SEGMENT_BYTES)
                .flush_every_ms(None),
            dir,
        )?;
        let tree = db.open_tree("chain")?;
        let store = Self {
            db,
            tree,
            chain_id: chain_id.clone(),
            durability: std::sync::Arc::new(std::sync::Mutex::new(Durability::new(dir))),
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
                self.flush()?;
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

    /// Applies the next committed block and its certificate: every record chunk, index entry
    /// and summary in one atomic batch, flushed to disk before returning. After a crash either
    /// all of it is there or none.
    pub fn apply_block(
        &self,
        block: &Verified<HashedBlock>,
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
        let mut skeleton = Skeleton::new(header, block.txs.len());
        // Each patient's reports, in block order, with their positions in the block.
        let mut runs: BTreeMap<PatientId, Vec<(u32, &LocationRecord)>> = BTreeMap::new();
        let hashes = block.hashes();
        for (index, (tx, hashed)) in block.txs.iter().zip(hashes).enumerate() {
            let index = index as u32;
            match tx {
                Transaction::Report(record) => {
                    skeleton.reference(record);
                    runs.entry(record.patient)
                        .or_default()
                        .push((index, record));
                }
                other => {
                    skeleton.inline(other);
                    let mut position = header.height.0.to_be_bytes().to_vec();
                    position.extend_from_slice(&index.to_be_bytes());
                    batch.insert(layout::key(TX, &[&hashed.hash.0]), seal_value(&position));
                    if let Transaction::Audit(audit) = other {
                        batch.insert(
                            layout::audit_key(&audit.patient, header.height, index),
                            seal_value(&[]),
                        );
                    }
                }
            }
        }
        for (patient, records) in &runs {
            self.stage_run(&mut batch, header.height, patient, records)?;
        }
        batch.insert(
            height_key(BLOCK, header.height),
            seal_value(&skeleton.finish()),
        );
        batch.insert(height_key(CERT, header.height), seal_value(&cert.encode()));
        let tree = block.merkle_tree();
        batch.insert(
            height_key(LEAVES, header.height),
            seal_value(&tree.level_bytes()),
        );
        let mut tip = header.height.0.to_be_bytes().to_vec();
        tip.extend_from_slice(&block_hash(header).0);
        batch.insert(layout::key(META, &[META_TIP]), seal_value(&tip));
        self.tree.apply_batch(batch)?;
        self.flush()?;
        Ok(())
    }

    /// Flushes sled's buffers and makes them durable ([`Durability::sync`]): what returns
    /// after this survives a power cut.
    pub(crate) fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        let mut durability = self
            .durability
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        durability.sync().map_err(|source| StoreError::Sync {
            dir: durability.dir().to_path_buf(),
            source,
        })
    }

    /// The block at `height`, reassembled from its stored skeleton and record chunks.
    pub fn block(&self, height: Height) -> Result<Option<Block>, StoreError> {
        let key = height_key(BLOCK, height);
        let Some(stored) = self.tree.get(&key)? else {
            return Ok(None);
        };
        let payload = open_value(&stored, "block", &key)?;
        let mut chunks: HashMap<PatientId, RecordChunk> = HashMap::new();
        let block = Skeleton::rebuild(payload, |patient, seq, position| {
            let cached = chunks.get(patient).is_some_and(|c| c.holds(seq));
            if !cached {
                let chunk = self
                    .chunk_holding(patient, seq)?
                    .ok_or_else(|| corrupt("record named by a block", &key))?;
                chunks.insert(*patient, chunk);
            }
            let stored = chunks[patient]
                .get(seq)?
                .filter(|s| s.height == height && s.index == position)
                .ok_or_else(|| corrupt("record named by a block", &key))?;
            Ok(stored.record)
        })?
        .ok_or_else(|| corrupt("block", &key))?;
        Ok(Some(block))
    }

    /// The header of the block at `height`, without reassembling the block.
    /// At a store's base ([`Store::base`]), the base's header (there is no block).
    pub fn header(&self, height: Height) -> Result<Option<BlockHeader>, StoreError> {
        match self.read(&height_key(BLOCK, height), "block", Skeleton::header)? {
            Some(header) => Ok(Some(header)),
            None => Ok(self.base()?.filter(|base| base.height == height)),
        }
    }

    /// The transaction at `index` of the block at `height` if it is not a report (reports are
    /// read by patient and sequence number), without reassembling the block.
    pub fn transaction_at(
        &self,
        height: Height,
        index: u32,
    ) -> Result<Option<Transaction>, StoreError> {
        let key = height_key(BLOCK, height);
        let Some(stored) = self.tree.get(&key)? else {
            return Ok(None);
        };
        Ok(Skeleton::inline_at(
            open_value(&stored, "block", &key)?,
            index,
        ))
    }

    /// The Merkle tree of the block of `header` (as [`Store::header`] read it), as stored, its
    /// root checked against the header's: proofs without the block and without hashing.
    pub fn merkle_tree(&self, header: &BlockHeader) -> Result<Option<MerkleTree>, StoreError> {
        let key = height_key(LEAVES, header.height);
        let Some(stored) = self.tree.get(&key)? else {
            return Ok(None);
        };
        let payload = open_value(&stored, "Merkle tree", &key)?;
        match MerkleTree::from_level_bytes(header.tx_count as usize, payload) {
            Some(tree) if tree.root() == header.tx_root => Ok(Some(tree)),
            _ => Err(corrupt("Merkle tree", &key)),
        }
    }

    /// The commit certificate of the block at `height`.
    pub fn certificate(&self, height: Height) -> Result<Option<CommitCertificate>, StoreError> {
        self.read(&height_key(CERT, height), "certificate", |p| {
            CommitCertificate::decode(p).ok()
        })
    }

    /// Where a committed transaction is: height and index in its block. A report is found by
    /// its patient and sequence number (and must be the stored record), any other transaction
    /// by its hash.
    pub fn tx_position(&self, tx: &Transaction) -> Result<Option<(Height, u32)>, StoreError> {
        if let Transaction::Report(record) = tx {
            let stored = self.record(&record.patient, record.seq)?;
            return Ok(stored
                .filter(|s| &s.record == record)
                .map(|s| (s.height, s.index)));
        }
        self.locate(&tx_hash(tx))
    }

    /// Where the committed transaction with this hash is, for any transaction but a report
    /// (reports are found by patient and sequence number).
    pub fn locate(&self, hash: &bmpls_types::TxHash) -> Result<Option<(Height, u32)>, StoreError> {
        self.read(&layout::key(TX, &[&hash.0]), "tx index", |p| {
            Some((Height(be_u64(p, 0)?), be_u32(p, 8)?))
        })
    }

    /// Where the audit entries about `patient` are, from `from` on in chain order: at most
    /// `limit` positions, and whether more follow.
    pub fn audits(
        &self,
        patient: &PatientId,
        from: Height,
        limit: usize,
    ) -> Result<(Vec<(Height, u32)>, bool), StoreError> {
        let start = layout::audit_key(patient, from, 0);
        let end = layout::audit_key(patient, Height(u64::MAX), u32::MAX);
        let mut found = Vec::new();
        for entry in self.tree.range(start..=end) {
            let (key, value) = entry?;
            open_value(&value, "audit entry", &key)?;
            if found.len() == limit {
                return Ok((found, true));
            }
            let tail = key.len().saturating_sub(12);
            let position = key
                .get(tail..)
                .and_then(|t| Some((Height(be_u64(t, 0)?), be_u32(t, 8)?)))
                .ok_or_else(|| layout::corrupt("audit entry", &key))?;
            found.push(position);
        }
        Ok((found, false))
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
        match self.chunk_holding(patient, seq)? {
            None => Ok(None),
            Some(chunk) => chunk.get(seq),
        }
    }

    /// The records `(patient, seq)` for each of `seqs` (ascending), reading each record chunk
    /// once: what a track's exclusion evidence needs (a run of sequence numbers). A sequence
    /// number the store does not hold is refused as [`StoreError::Corrupt`]: callers ask only
    /// for numbers between two stored ones, and the store keeps each patient's consecutive.
    pub fn records_at(
        &self,
        patient: &PatientId,
        seqs: impl IntoIterator<Item = Seq>,
    ) -> Result<Vec<StoredRecord>, StoreError> {
        let mut out = Vec::new();
        let mut current: Option<RecordChunk> = None;
        for seq in seqs {
            let chunk = match current.take() {
                Some(c) if c.holds(seq) => Some(c),
                _ => self.chunk_holding(patient, seq)?,
            };
            let missing = || corrupt("record in a patient's sequence", &records_key(patient, seq));
            let chunk = chunk.ok_or_else(missing)?;
            out.push(chunk.get(seq)?.ok_or_else(missing)?);
            current = Some(chunk);
        }
        Ok(out)
    }

    /// The record chunk of `patient` that holds `seq`, if any.
    pub(crate) fn chunk_holding(
        &self,
        patient: &PatientId,
        seq: Seq,
    ) -> Result<Option<RecordChunk>, StoreError> {
        let range = records_key(patient, Seq(0))..=records_key(patient, seq);
        let Some(item) = self.tree.range(range).next_back() else {
            return Ok(None);
        };
        let (key, value) = item?;
        let first = trailing_seq(&key).ok_or_else(|| corrupt("record chunk", &key))?;
        let chunk = RecordChunk::parse(value, key.to_vec(), first)?;
        Ok(chunk.holds(seq).then_some(chunk))
    }

    /// The record chunk of `patient` that starts at `first`, which an index names.
    pub(crate) fn chunk_at(
        &self,
        patient: &PatientId,
        first: Seq,
    ) -> Result<RecordChunk, StoreError> {
        let key = records_key(patient, first);
        match self.tree.get(&key)? {
            Some(value) => RecordChunk::parse(value, key, first),
            None => Err(corrupt("record chunk named by an index", &key)),
        }
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

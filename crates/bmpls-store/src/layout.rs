//! The on-disk layout: one sled tree, keyspaces separated by a leading byte, every integer
//! big-endian so that sled's byte order is numeric order, and every value behind a checksum.
//!
//! | prefix | key | value |
//! | --- | --- | --- |
//! | `M` | name | meta: schema version, chain id, tip; the base's header if the store started from a snapshot (`base.rs`) |
//! | `B` | height | the block's header and transactions, reports replaced by (patient, seq) |
//! | `C` | height | encoded commit certificate |
//! | `T` | tx hash | height ‖ index in block, for every transaction that is not a report |
//! | `R` | patient ‖ first seq | a chunk of the patient's records from one block |
//! | `I` | patient ‖ key time ‖ first seq | the same chunk's index: fix times and, per level, the ciphertexts sorted within each epoch |
//! | `Z` | patient ‖ epoch ‖ height | zone map of one block (`zones.rs`): its chunks holding records of the epoch, and per level a few intervals covering their ciphertexts |
//! | `O` | patient ‖ fix time ‖ seq | a record whose fix time is earlier than one already stored |
//! | `P` | patient | summary: last seq, first and last fix time, count |
//! | `A` | patient ‖ height ‖ index | (empty) an audit entry about the patient, at that position |
//! | `L` | height | the block's Merkle tree, level by level from the leaf hashes up, 32 bytes a node (proofs without the block or hashing) |
//! | `S` | height | a checkpoint of the node's state after that block (`checkpoint.rs`; the node's bytes, opaque here) |
//! | `N` | patient | the patient's last sequence number at the base, in a store started from a snapshot (`base.rs`) |
//!
//! Records are stored once, in record chunks of at most [`RECORD_CHUNK_RECORDS`] consecutive
//! records of one patient from one block, described by index chunks of at most
//! [`INDEX_CHUNK_RECORDS`] (`chunk.rs`); a block is reassembled from its chunks. sled's cost is
//! per key, not per byte, so a few dozen values per block apply an order of magnitude faster
//! than a handful of small keys per record.
//!
//! One tree rather than one per keyspace so that a block and all its index entries go in one
//! atomic `apply_batch`, which is several times faster than a multi-tree sled transaction.

use bmpls_types::{Height, PatientId, Seq};

use crate::error::StoreError;

pub(crate) const META: u8 = b'M';
pub(crate) const BLOCK: u8 = b'B';
pub(crate) const CERT: u8 = b'C';
pub(crate) const TX: u8 = b'T';
pub(crate) const RECORDS: u8 = b'R';
pub(crate) const INDEX: u8 = b'I';
pub(crate) const OUT_OF_ORDER: u8 = b'O';
pub(crate) const ZONES: u8 = b'Z';
pub(crate) const PATIENT: u8 = b'P';
pub(crate) const AUDIT: u8 = b'A';
pub(crate) const LEAVES: u8 = b'L';
pub(crate) const CHECKPOINT: u8 = b'S';
pub(crate) const BASE_SEQ: u8 = b'N';

/// Most records described by one index chunk: a query reads one index chunk per 128 records
/// of its window (~15 KiB, all levels), so a long window costs few reads, and slots fit a
/// `u16`. One key for all levels: a block of many patients' reports costs sled a key per
/// patient, where one per level made the cluster's ingest 10 % slower.
pub(crate) const INDEX_CHUNK_RECORDS: usize = 128;
/// Most records in one record chunk (~4.5 KiB of reports): a query reads the record chunks that
/// hold its answers, so small chunks keep a cold read close to the answers' own size, while one
/// key per 16 records keeps sled's per-key cost small when a block is applied.
pub(crate) const RECORD_CHUNK_RECORDS: usize = 16;
const _: () = assert!(INDEX_CHUNK_RECORDS <= u16::MAX as usize);
const _: () = assert!(RECORD_CHUNK_RECORDS <= INDEX_CHUNK_RECORDS);

/// sled's segment size. sled writes any page over a quarter of a segment as a separate blob
/// file, read back whole with a fresh allocation; leaves of chunks (sled splits leaves at 16
/// keys) stay under the quarter of 2 MiB and are read in place from the log. sled refuses to
/// open a store with another segment size, so this belongs to the schema version.
pub(crate) const SEGMENT_BYTES: usize = 2 << 20;

/// Bytes of checksum in front of every value.
const CHECKSUM_LEN: usize = 4;

pub(crate) fn key(prefix: u8, parts: &[&[u8]]) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + parts.iter().map(|p| p.len()).sum::<usize>());
    k.push(prefix);
    for part in parts {
        k.extend_from_slice(part);
    }
    k
}

pub(crate) fn height_key(prefix: u8, height: Height) -> Vec<u8> {
    key(prefix, &[&height.0.to_be_bytes()])
}

/// Key of the record chunk that starts at `first`.
pub(crate) fn records_key(patient: &PatientId, first: Seq) -> Vec<u8> {
    key(RECORDS, &[&patient.0, &first.0.to_be_bytes()])
}

/// Key of the index of the chunk that starts at `first`; `key_time_ms` orders chunks by time.
pub(crate) fn index_key(patient: &PatientId, key_time_ms: u64, first: Seq) -> Vec<u8> {
    key(
        INDEX,
        &[
            &patient.0,
            &key_time_ms.to_be_bytes(),
            &first.0.to_be_bytes(),
        ],
    )
}

/// Prefix of the zone maps of `patient`'s chunks holding records of `epoch`.
pub(crate) fn zones_prefix(patient: &PatientId, epoch: u32) -> Vec<u8> {
    key(ZONES, &[&patient.0, &epoch.to_be_bytes()])
}

/// Key of the zone map of the block at `height` for `patient` and `epoch`: written once with the
/// block, never rewritten, so a patient's day costs no growing value.
pub(crate) fn zones_key(patient: &PatientId, epoch: u32, height: Height) -> Vec<u8> {
    let mut k = zones_prefix(patient, epoch);
    k.extend_from_slice(&height.0.to_be_bytes());
    k
}

/// Key of the audit entry about `patient` at `(height, index)`.
pub(crate) fn audit_key(patient: &PatientId, height: Height, index: u32) -> Vec<u8> {
    key(
        AUDIT,
        &[&patient.0, &height.0.to_be_bytes(), &index.to_be_bytes()],
    )
}

pub(crate) fn out_of_order_key(patient: &PatientId, fix_time_ms: u64, seq: Seq) -> Vec<u8> {
    key(
        OUT_OF_ORDER,
        &[&patient.0, &fix_time_ms.to_be_bytes(), &seq.0.to_be_bytes()],
    )
}

/// The sequence number at the end of a chunk-index or out-of-order key.
pub(crate) fn trailing_seq(key: &[u8]) -> Option<Seq> {
    let tail: [u8; 8] = key.get(key.len().checked_sub(8)?..)?.try_into().ok()?;
    Some(Seq(u64::from_be_bytes(tail)))
}

/// CRC-32 (IEEE) of the payload. The checksum guards against a damaged disk, not an attacker
/// (who could rewrite any checksum), so a fast CRC does the job: a query checks every byte it
/// reads, and at about 25 GB/s that is a small part of its time where SHA-256 was most of it.
fn checksum(payload: &[u8]) -> [u8; CHECKSUM_LEN] {
    crc32fast::hash(payload).to_be_bytes()
}

/// A value as stored: checksum, then payload.
pub(crate) fn seal_value(payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(CHECKSUM_LEN + payload.len());
    v.extend_from_slice(&checksum(payload));
    v.extend_from_slice(payload);
    v
}

/// The payload of a stored value, after checking its checksum.
pub(crate) fn open_value<'a>(
    stored: &'a [u8],
    what: &'static str,
    key: &[u8],
) -> Result<&'a [u8], StoreError> {
    if stored.len() < CHECKSUM_LEN {
        return Err(corrupt(what, key));
    }
    let (sum, payload) = stored.split_at(CHECKSUM_LEN);
    if sum != checksum(payload) {
        return Err(corrupt(what, key));
    }
    Ok(payload)
}

/// The error for a value that fails its checksum or does not decode.
pub(crate) fn corrupt(what: &'static str, key: &[u8]) -> StoreError {
    StoreError::Corrupt {
        what,
        key: hex(key),
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Reads a big-endian `u64` at `offset`.
pub(crate) fn be_u64(bytes: &[u8], offset: usize) -> Option<u64> {
    Some(u64::from_be_bytes(
        bytes.get(offset..offset + 8)?.try_into().ok()?,
    ))
}

/// Reads a big-endian `u32` at `offset`.
pub(crate) fn be_u32(bytes: &[u8], offset: usize) -> Option<u32> {
    Some(u32::from_be_bytes(
        bytes.get(offset..offset + 4)?.try_into().ok()?,
    ))
}

/// A bounds-checked big-endian reader over a stored payload: every read of a short or damaged
/// value is `None`, never a panic.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { bytes }
    }

    pub(crate) fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.bytes.len() {
            return None;
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Some(head)
    }

    pub(crate) fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }

    pub(crate) fn u16(&mut self) -> Option<u16> {
        Some(u16::from_be_bytes(self.take(2)?.try_into().ok()?))
    }

    pub(crate) fn u32(&mut self) -> Option<u32> {
        Some(u32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }

    pub(crate) fn u64(&mut self) -> Option<u64> {
        Some(u64::from_be_bytes(self.take(8)?.try_into().ok()?))
    }

    pub(crate) fn remaining(&self) -> usize {
        self.bytes.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

/// How long opening waits for sled's file lock to be released.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Opens a sled database, waiting up to [`LOCK_WAIT`] for its file lock: a handle of the same
/// database just dropped in this process (a restarted node in a test, say) can hold the lock
/// while sled's I/O threads finish. A lock still held after the wait (another process owns
/// the database in `dir`) is [`StoreError::Locked`]; any other error is returned as it is.
pub(crate) fn open_sled(
    config: &sled::Config,
    dir: &std::path::Path,
) -> Result<sled::Db, crate::StoreError> {
    let deadline = std::time::Instant::now() + LOCK_WAIT;
    loop {
        match config.open() {
            Err(sled::Error::Io(e)) if e.to_string().contains("could not acquire lock") => {
                if std::time::Instant::now() >= deadline {
                    return Err(crate::StoreError::Locked(dir.to_path_buf()));
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => return Ok(other?),
        }
    }
}

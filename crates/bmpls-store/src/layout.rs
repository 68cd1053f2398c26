//! The on-disk layout: one sled tree, keyspaces separated by a leading byte, every integer
//! big-endian so that sled's byte order is numeric order, and every value behind a checksum.
//!
//! | prefix | key | value |
//! | --- | --- | --- |
//! | `M` | name | meta: schema version, chain id, tip |
//! | `B` | height | encoded block |
//! | `C` | height | encoded commit certificate |
//! | `T` | tx hash | height ‖ index in block |
//! | `R` | patient ‖ seq | height ‖ index ‖ encoded record |
//! | `I` | patient ‖ fix time ‖ seq | epoch ‖ each level's ciphertext: the time index |
//! | `L` | level ‖ patient ‖ epoch ‖ ciphertext ‖ seq | fix time: the cell index |
//! | `P` | patient | summary: last seq, first and last fix time, count |
//!
//! One tree rather than one per keyspace so that a block and all its index entries go in one
//! atomic `apply_batch`, which is several times faster than a multi-tree sled transaction.

use bmpls_types::{Epoch, Height, LevelIndex, OpeCiphertext, PatientId, Seq};
use sha2::{Digest, Sha256};

use crate::error::StoreError;

pub(crate) const META: u8 = b'M';
pub(crate) const BLOCK: u8 = b'B';
pub(crate) const CERT: u8 = b'C';
pub(crate) const TX: u8 = b'T';
pub(crate) const RECORD: u8 = b'R';
pub(crate) const BY_TIME: u8 = b'I';
pub(crate) const BY_CELL: u8 = b'L';
pub(crate) const PATIENT: u8 = b'P';

/// Bytes of checksum in front of every value.
const CHECKSUM_LEN: usize = 8;

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

pub(crate) fn record_key(patient: &PatientId, seq: Seq) -> Vec<u8> {
    key(RECORD, &[&patient.0, &seq.0.to_be_bytes()])
}

pub(crate) fn time_key(patient: &PatientId, fix_time_ms: u64, seq: Seq) -> Vec<u8> {
    key(
        BY_TIME,
        &[&patient.0, &fix_time_ms.to_be_bytes(), &seq.0.to_be_bytes()],
    )
}

pub(crate) fn cell_key(
    level: LevelIndex,
    patient: &PatientId,
    epoch: Epoch,
    cell: OpeCiphertext,
    seq: Seq,
) -> Vec<u8> {
    key(
        BY_CELL,
        &[
            &[level.0],
            &patient.0,
            &epoch.0.to_be_bytes(),
            &cell.0.to_be_bytes(),
            &seq.0.to_be_bytes(),
        ],
    )
}

/// The sequence number at the end of a time or cell index key.
pub(crate) fn trailing_seq(key: &[u8]) -> Option<Seq> {
    let tail: [u8; 8] = key.get(key.len().checked_sub(8)?..)?.try_into().ok()?;
    Some(Seq(u64::from_be_bytes(tail)))
}

fn checksum(payload: &[u8]) -> [u8; CHECKSUM_LEN] {
    let digest = Sha256::digest(payload);
    let mut out = [0u8; CHECKSUM_LEN];
    out.copy_from_slice(&digest[..CHECKSUM_LEN]);
    out
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
    let corrupt = || StoreError::Corrupt {
        what,
        key: hex(key),
    };
    if stored.len() < CHECKSUM_LEN {
        return Err(corrupt());
    }
    let (sum, payload) = stored.split_at(CHECKSUM_LEN);
    if sum != checksum(payload) {
        return Err(corrupt());
    }
    Ok(payload)
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

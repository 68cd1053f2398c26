//! Chunks of consecutive records of one patient from one block: stored once in record chunks
//! (`R`, up to `RECORD_CHUNK_RECORDS`) and described by index chunks (`I`, up to
//! `INDEX_CHUNK_RECORDS`) that queries read instead of the records.
//!
//! Record chunk payload: `count u16 ‖ count × (height u64 ‖ position u32 ‖ len u32 ‖ record)`,
//! the record in its canonical encoding, committed at `height` as transaction `position` of its
//! block (a compacted chunk holds records of several blocks).
//!
//! Index chunk payload: `first seq u64 ‖ max before u64 ‖ count u16 ‖ records per record chunk
//! u16 ‖ count × fix time u64 ‖
//! levels u8 ‖ levels × (len u32 ‖ groups u16 ‖ groups × (epoch u32 ‖ n u16 ‖ n × (ciphertext
//! u128 ‖ slot u16)))`. Within a level, each epoch's ciphertexts are sorted, so an area query
//! finds its ranges by binary search rather than testing every record. `max before` is the
//! patient's latest fix time before the chunk: a record whose fix time is earlier than every
//! time before it is *in order* and found through the chunk; any other is found through its own
//! `O` entry, so chunks ordered by time never hide a record.

use std::collections::BTreeMap;
use std::ops::Range;

use bmpls_types::{Canonical, Height, LocationRecord, Seq};

use crate::error::StoreError;
use crate::layout::{Reader, corrupt, open_value};
use crate::store::StoredRecord;
use crate::zones;

/// Bytes of one entry of a level: ciphertext and slot.
const ENTRY_LEN: usize = 18;

/// Encrypted ranges of one epoch, sorted and merged: inclusive `(low, high)`.
pub(crate) type Ranges = [(u128, u128)];

/// The payload of a record chunk: each record with its block's height and its position there.
pub(crate) fn encode_records(records: &[(Height, u32, &LocationRecord)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + records.len() * 310);
    out.extend_from_slice(&(records.len() as u16).to_be_bytes());
    for (height, position, record) in records {
        let encoded = record.encode();
        out.extend_from_slice(&height.0.to_be_bytes());
        out.extend_from_slice(&position.to_be_bytes());
        out.extend_from_slice(&(encoded.len() as u32).to_be_bytes());
        out.extend_from_slice(&encoded);
    }
    out
}

/// The payload of an index chunk of `records` (consecutive, from one patient), whose records are
/// stored in record chunks of `per_record_chunk` from the first; and the chunk's zones: for
/// each epoch of its records, each level's ciphertexts covered by a few intervals
/// ([`zones::intervals`]).
pub(crate) fn encode_index(
    records: &[(u32, &LocationRecord)],
    max_before_ms: u64,
    per_record_chunk: usize,
) -> (Vec<u8>, ChunkZones) {
    let levels = records
        .iter()
        .map(|(_, r)| r.cells.len())
        .max()
        .unwrap_or(0);
    let mut out = Vec::with_capacity(19 + records.len() * (8 + levels * ENTRY_LEN) + levels * 12);
    out.extend_from_slice(&records.first().map_or(0, |(_, r)| r.seq.0).to_be_bytes());
    out.extend_from_slice(&max_before_ms.to_be_bytes());
    out.extend_from_slice(&(records.len() as u16).to_be_bytes());
    out.extend_from_slice(&(per_record_chunk as u16).to_be_bytes());
    for (_, record) in records {
        out.extend_from_slice(&record.fix_time_ms.to_be_bytes());
    }
    out.push(levels as u8);
    let mut zones = ChunkZones::new();
    for level in 0..levels {
        let mut entries: Vec<(u32, u128, u16)> = records
            .iter()
            .enumerate()
            .filter_map(|(slot, (_, r))| {
                // ORE levels are not indexed: their ciphertexts cannot be sorted by anyone
                // without a key, and queries reach them through a coarser OPE level.
                let cell = r.cells.get(level)?.ope()?;
                Some((r.epoch.0, cell.0, slot as u16))
            })
            .collect();
        entries.sort_unstable();
        let mut section = Vec::with_capacity(2 + entries.len() * ENTRY_LEN + 8);
        let groups = entries.chunk_by(|a, b| a.0 == b.0).count();
        section.extend_from_slice(&(groups as u16).to_be_bytes());
        for group in entries.chunk_by(|a, b| a.0 == b.0) {
            section.extend_from_slice(&group[0].0.to_be_bytes());
            section.extend_from_slice(&(group.len() as u16).to_be_bytes());
            for &(_, cell, slot) in group {
                section.extend_from_slice(&cell.to_be_bytes());
                section.extend_from_slice(&slot.to_be_bytes());
            }
            let cells: Vec<u128> = group.iter().map(|&(_, cell, _)| cell).collect();
            zones
                .entry(group[0].0)
                .or_insert_with(|| vec![Vec::new(); levels])[level] = zones::intervals(&cells);
        }
        out.extend_from_slice(&(section.len() as u32).to_be_bytes());
        out.extend_from_slice(&section);
    }
    (out, zones)
}

/// A chunk's zones: epoch → each level's intervals (empty where no record of the epoch has the
/// level).
pub(crate) type ChunkZones = BTreeMap<u32, Vec<Vec<(u128, u128)>>>;

/// A record chunk read back and checked: the records stay encoded until asked for.
pub(crate) struct RecordChunk {
    value: sled::IVec,
    key: Vec<u8>,
    first: Seq,
    /// Block height, position in the block and byte range of each record's encoding in `value`.
    entries: Vec<(Height, u32, Range<usize>)>,
}

impl RecordChunk {
    /// Checks and parses the stored value of the chunk that starts at `first`.
    pub(crate) fn parse(value: sled::IVec, key: Vec<u8>, first: Seq) -> Result<Self, StoreError> {
        const WHAT: &str = "record chunk";
        let payload = open_value(&value, WHAT, &key)?;
        let offset = value.len() - payload.len();
        let mut r = Reader::new(payload);
        let parsed = (|| {
            let count = usize::from(r.u16()?);
            let mut entries = Vec::with_capacity(count);
            for _ in 0..count {
                let height = Height(r.u64()?);
                let position = r.u32()?;
                let len = r.u32()? as usize;
                let start = offset + payload.len() - r.remaining();
                r.take(len)?;
                entries.push((height, position, start..start + len));
            }
            (r.is_empty() && count > 0).then_some(entries)
        })();
        let entries = parsed.ok_or_else(|| corrupt(WHAT, &key))?;
        Ok(Self {
            value,
            key,
            first,
            entries,
        })
    }

    /// Whether `seq` is in this chunk.
    pub(crate) fn holds(&self, seq: Seq) -> bool {
        seq.0
            .checked_sub(self.first.0)
            .is_some_and(|slot| slot < self.entries.len() as u64)
    }

    /// Every record of the chunk, decoded, in sequence order.
    pub(crate) fn records(&self) -> Result<Vec<StoredRecord>, StoreError> {
        (0..self.entries.len() as u64)
            .map(|slot| {
                self.get(Seq(self.first.0 + slot))?
                    .ok_or_else(|| corrupt("record in a chunk", &self.key))
            })
            .collect()
    }

    /// The record `seq`, decoded; `None` if the chunk does not hold it.
    pub(crate) fn get(&self, seq: Seq) -> Result<Option<StoredRecord>, StoreError> {
        if !self.holds(seq) {
            return Ok(None);
        }
        let (height, position, range) = &self.entries[(seq.0 - self.first.0) as usize];
        let record = LocationRecord::decode(&self.value[range.clone()])
            .ok()
            .filter(|r| r.seq == seq)
            .ok_or_else(|| corrupt("record in a chunk", &self.key))?;
        Ok(Some(StoredRecord {
            height: *height,
            index: *position,
            record,
        }))
    }
}

/// An index chunk read back and checked, borrowed from its stored value.
pub(crate) struct IndexChunk<'a> {
    /// Sequence number of slot 0.
    pub(crate) first: Seq,
    per_record_chunk: u64,
    times: &'a [u8],
    /// Whether each slot's record is in order (found through this chunk).
    in_order: Vec<bool>,
    levels: Vec<&'a [u8]>,
}

impl<'a> IndexChunk<'a> {
    /// Parses a checked payload; `None` if it is malformed.
    pub(crate) fn parse(payload: &'a [u8]) -> Option<Self> {
        let mut r = Reader::new(payload);
        let first = Seq(r.u64()?);
        let mut latest = r.u64()?;
        let count = usize::from(r.u16()?);
        let per_record_chunk = u64::from(r.u16()?);
        let times = r.take(count.checked_mul(8)?)?;
        let in_order = times
            .chunks_exact(8)
            .map(|t| {
                let t = u64::from_be_bytes(t.try_into().expect("chunks of 8"));
                let in_order = t >= latest;
                latest = latest.max(t);
                in_order
            })
            .collect();
        let levels = (0..r.u8()?)
            .map(|_| {
                let len = r.u32()? as usize;
                r.take(len)
            })
            .collect::<Option<Vec<_>>>()?;
        (r.is_empty() && count > 0 && per_record_chunk > 0).then_some(Self {
            first,
            per_record_chunk,
            times,
            in_order,
            levels,
        })
    }

    /// Records in the chunk.
    pub(crate) fn len(&self) -> usize {
        self.in_order.len()
    }

    /// Sequence number of `slot`.
    pub(crate) fn seq(&self, slot: usize) -> Seq {
        Seq(self.first.0 + slot as u64)
    }

    /// First sequence number of the record chunk that holds `slot`.
    pub(crate) fn record_chunk(&self, slot: usize) -> Seq {
        let slot = slot as u64;
        Seq(self.first.0 + slot - slot % self.per_record_chunk)
    }

    /// Fix time of `slot`.
    pub(crate) fn time(&self, slot: usize) -> u64 {
        let at = slot * 8;
        u64::from_be_bytes(self.times[at..at + 8].try_into().expect("8 bytes"))
    }

    /// Slots of in-order records with a fix time in `from..=to`, in slot (and time) order.
    pub(crate) fn in_window(&self, from_ms: u64, to_ms: u64) -> impl Iterator<Item = usize> + '_ {
        (0..self.len())
            .filter(move |&s| self.in_order[s] && (from_ms..=to_ms).contains(&self.time(s)))
    }

    /// Slots of in-order records in `from..=to` whose `level` ciphertext lies in one of the
    /// ranges of its epoch, in slot order; `None` if the level's section is malformed.
    pub(crate) fn matching(
        &self,
        level: usize,
        ranges: &BTreeMap<u32, Vec<(u128, u128)>>,
        from_ms: u64,
        to_ms: u64,
    ) -> Option<Vec<usize>> {
        let mut slots = Vec::new();
        let Some(section) = self.levels.get(level) else {
            return Some(slots);
        };
        let mut r = Reader::new(section);
        for _ in 0..r.u16()? {
            let epoch = r.u32()?;
            let n = usize::from(r.u16()?);
            let entries = r.take(n.checked_mul(ENTRY_LEN)?)?;
            if let Some(ranges) = ranges.get(&epoch) {
                walk(entries, ranges, &mut slots);
            }
        }
        if !r.is_empty() || slots.iter().any(|&s| s >= self.len()) {
            return None;
        }
        slots.retain(|&s| self.in_order[s] && (from_ms..=to_ms).contains(&self.time(s)));
        slots.sort_unstable();
        Some(slots)
    }
}

/// Pushes the slot of every entry (sorted by ciphertext) inside one of `ranges` (sorted,
/// disjoint): a merge of the two sorted lists that jumps over gaps by binary search.
fn walk(entries: &[u8], ranges: &Ranges, slots: &mut Vec<usize>) {
    let n = entries.len() / ENTRY_LEN;
    let cell = |i: usize| {
        let at = i * ENTRY_LEN;
        u128::from_be_bytes(entries[at..at + 16].try_into().expect("16 bytes"))
    };
    let mut i = 0;
    for &(low, high) in ranges {
        // The first entry at or above `low`.
        i += partition_point(n - i, |k| cell(i + k) < low);
        while i < n && cell(i) <= high {
            let at = i * ENTRY_LEN + 16;
            slots.push(usize::from(u16::from_be_bytes([
                entries[at],
                entries[at + 1],
            ])));
            i += 1;
        }
        if i == n {
            break;
        }
    }
}

/// The number of leading indices in `0..n` for which `below` holds (it must hold on a prefix).
fn partition_point(n: usize, below: impl Fn(usize) -> bool) -> usize {
    let (mut lo, mut hi) = (0, n);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if below(mid) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

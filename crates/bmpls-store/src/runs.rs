//! One patient's reports of a block, staged into the block's batch: sequence numbers checked,
//! out-of-order entries, record chunks, index chunks, zone maps and the patient's summary.
//!
//! A block that carries fewer than [`INDEX_CHUNK_RECORDS`] of the patient's records (at a live
//! cluster's pace, one) writes one small chunk. Small chunks from consecutive blocks form the
//! patient's *open run*; once the run holds [`INDEX_CHUNK_RECORDS`] records, the block that
//! completes it also rewrites it as full chunks: it reads the run's records back, deletes the
//! run's record chunks, index chunks and zone maps, and writes the whole run again as new chunks,
//! all in the same atomic batch. Queries then cost per 128 records, not per block. Each record
//! is rewritten once.

use std::collections::{BTreeMap, BTreeSet};

use bmpls_types::{Height, LocationRecord, PatientId, Seq};

use crate::chunk::{self, RecordChunk};
use crate::error::StoreError;
use crate::layout::{
    self, INDEX_CHUNK_RECORDS, PATIENT, RECORD_CHUNK_RECORDS, corrupt, index_key, out_of_order_key,
    records_key, seal_value, trailing_seq, zones_key,
};
use crate::store::{OpenRun, PatientSummary, Store};
use crate::zones::ZoneMap;

/// A record to chunk: the block it was committed in, its position there, and the record.
type Placed<'a> = (Height, u32, &'a LocationRecord);

impl Store {
    /// Adds one patient's reports of a block to the batch.
    pub(crate) fn stage_run(
        &self,
        batch: &mut sled::Batch,
        height: Height,
        patient: &PatientId,
        records: &[(u32, &LocationRecord)],
    ) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        let before = self.summary(patient)?;
        let mut summary = before;
        // A store started from a snapshot continues each patient's numbering from the base.
        let base = match summary {
            Some(_) => Seq(0),
            None => self.base_seq(patient)?,
        };
        for (_, record) in records {
            let last = summary.map_or(base.0, |s| s.last_seq.0);
            if record.seq.0 != last + 1 {
                return Err(StoreError::Sequence {
                    last,
                    got: record.seq.0,
                });
            }
            let time = record.fix_time_ms;
            summary = Some(match summary {
                None => PatientSummary {
                    last_seq: record.seq,
                    first_fix_ms: time,
                    last_fix_ms: time,
                    count: 1,
                    blocks: 0,
                    chunks: 0,
                    open: OpenRun::default(),
                },
                Some(s) => {
                    if time < s.last_fix_ms {
                        batch.insert(out_of_order_key(patient, time, record.seq), seal_value(&[]));
                    }
                    PatientSummary {
                        last_seq: record.seq,
                        first_fix_ms: s.first_fix_ms.min(time),
                        last_fix_ms: s.last_fix_ms.max(time),
                        count: s.count + 1,
                        ..s
                    }
                }
            });
        }
        let Some(mut summary) = summary else {
            return Ok(());
        };
        let max_before = before.map_or(0, |s| s.last_fix_ms);
        let open = before.map_or(OpenRun::default(), |s| s.open);
        let placed: Vec<Placed<'_>> = records.iter().map(|&(i, r)| (height, i, r)).collect();
        let mut zones = BTreeMap::new();
        summary.blocks += 1;
        let small = records.len() < INDEX_CHUNK_RECORDS;
        let run_len = if open.first == 0 {
            0
        } else {
            // A run starting after the patient's last record is a damaged summary.
            (summary.last_seq.0 + 1)
                .checked_sub(open.first)
                .ok_or_else(|| corrupt("patient summary", &layout::key(PATIENT, &[&patient.0])))?
        };
        if small && open.first != 0 && run_len >= INDEX_CHUNK_RECORDS as u64 {
            // Compact: the open run and this block's records, as full chunks.
            let stored = self.take_open_run(batch, patient, &open)?;
            if open.first + stored.records.len() as u64 != records[0].1.seq.0 {
                return Err(corrupt(
                    "open run of record chunks",
                    &records_key(patient, Seq(open.first)),
                ));
            }
            summary.chunks = summary.chunks.saturating_sub(stored.chunks);
            summary.blocks = summary.blocks.saturating_sub(open.blocks);
            let mut run: Vec<Placed<'_>> = stored
                .records
                .iter()
                .map(|s| (s.height, s.index, &s.record))
                .collect();
            run.extend(placed);
            summary.chunks += stage_chunks(batch, patient, &run, open.max_before_ms, &mut zones);
            summary.open = OpenRun::default();
        } else {
            summary.chunks += stage_chunks(batch, patient, &placed, max_before, &mut zones);
            summary.open = if !small {
                OpenRun::default()
            } else if open.first == 0 {
                let first = records[0].1;
                OpenRun {
                    first: first.seq.0,
                    key_time_ms: max_before.max(first.fix_time_ms),
                    max_before_ms: max_before,
                    blocks: 1,
                }
            } else {
                OpenRun {
                    blocks: open.blocks + 1,
                    ..open
                }
            };
        }
        for (epoch, map) in zones {
            batch.insert(zones_key(patient, epoch, height), seal_value(&map.encode()));
        }
        batch.insert(
            layout::key(PATIENT, &[&patient.0]),
            seal_value(&summary.encode()),
        );
        Ok(())
    }

    /// Reads the open run's records back and removes its record chunks, index chunks and zone
    /// maps from the store (in the batch).
    fn take_open_run(
        &self,
        batch: &mut sled::Batch,
        patient: &PatientId,
        open: &OpenRun,
    ) -> Result<OpenRecords, StoreError> {
        let mut records = Vec::new();
        let mut zone_maps = BTreeSet::new();
        let first = Seq(open.first);
        for item in self
            .tree
            .range(records_key(patient, first)..=records_key(patient, Seq(u64::MAX)))
        {
            let (key, value) = item?;
            let start = trailing_seq(&key).ok_or_else(|| corrupt("record chunk", &key))?;
            for stored in RecordChunk::parse(value, key.to_vec(), start)?.records()? {
                if stored.record.seq.0 != open.first + records.len() as u64 {
                    return Err(corrupt("record chunk of an open run", &key));
                }
                zone_maps.insert((stored.record.epoch.0, stored.height));
                records.push(stored);
            }
            batch.remove(key);
        }
        let mut chunks = 0;
        for item in self.tree.range(
            index_key(patient, open.key_time_ms, first)
                ..=index_key(patient, u64::MAX, Seq(u64::MAX)),
        ) {
            let (key, _) = item?;
            batch.remove(key);
            chunks += 1;
        }
        for (epoch, height) in zone_maps {
            batch.remove(zones_key(patient, epoch, height));
        }
        Ok(OpenRecords { records, chunks })
    }
}

/// An open run read back.
struct OpenRecords {
    records: Vec<crate::store::StoredRecord>,
    /// Index chunks it had.
    chunks: u64,
}

/// Adds `run` (consecutive records of `patient`) to the batch as record chunks and index
/// chunks, and its chunks' zones to `zones`; returns the index chunks written.
fn stage_chunks(
    batch: &mut sled::Batch,
    patient: &PatientId,
    run: &[Placed<'_>],
    max_before_ms: u64,
    zones: &mut BTreeMap<u32, ZoneMap>,
) -> u64 {
    let mut max_before = max_before_ms;
    let mut written = 0;
    for chunk in run.chunks(INDEX_CHUNK_RECORDS) {
        let first = chunk[0].2;
        let key_time = max_before.max(first.fix_time_ms);
        let view: Vec<(u32, &LocationRecord)> = chunk.iter().map(|&(_, i, r)| (i, r)).collect();
        let (index, chunk_zones) = chunk::encode_index(&view, max_before, RECORD_CHUNK_RECORDS);
        batch.insert(index_key(patient, key_time, first.seq), seal_value(&index));
        for (epoch, per_level) in chunk_zones {
            zones
                .entry(epoch)
                .or_default()
                .push(key_time, first.seq, per_level);
        }
        for part in chunk.chunks(RECORD_CHUNK_RECORDS) {
            batch.insert(
                records_key(patient, part[0].2.seq),
                seal_value(&chunk::encode_records(part)),
            );
        }
        max_before = chunk
            .iter()
            .map(|(_, _, r)| r.fix_time_ms)
            .fold(max_before, u64::max);
        written += 1;
    }
    written
}

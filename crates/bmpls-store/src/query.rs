//! Queries on ciphertexts: a patient's last record, records in a time window, and records whose
//! level-`d` ciphertext falls in given ranges within a time window — with a planner that picks
//! the time index or the cell index by estimated size. The store never sees a position: range
//! bounds arrive already encrypted, one list per key epoch.

use bmpls_types::{Epoch, LevelIndex, OpeCiphertext, PatientId, Seq};

use crate::error::StoreError;
use crate::layout::{self, be_u64, open_value, trailing_seq};
use crate::store::{Store, StoredRecord, corrupt};

/// Most records one query returns.
pub const MAX_RESULTS: usize = 10_000;
/// Most ciphertext ranges in one `within` query (over all epochs).
pub const MAX_RANGES: usize = 4096;

/// Cell-index entries probed per requested result before the time index is preferred.
const PROBE_PER_RESULT: u64 = 4;

/// Encrypted ranges of one key epoch: inclusive `(low, high)` ciphertext bounds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EpochRanges {
    /// The epoch whose key encrypted the bounds.
    pub epoch: Epoch,
    /// Inclusive ciphertext ranges.
    pub ranges: Vec<(OpeCiphertext, OpeCiphertext)>,
}

/// Which index answered a `within` query (exposed for tests and metrics).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Plan {
    /// Scanned the patient's records in the time window and filtered them by ciphertext.
    TimeIndex,
    /// Scanned the ciphertext ranges and filtered the entries by time.
    CellIndex,
}

/// A query of one patient's records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Query {
    /// The latest record.
    Last {
        /// The patient.
        patient: PatientId,
    },
    /// Records with `from_ms ≤ fix_time ≤ to_ms`.
    Track {
        /// The patient.
        patient: PatientId,
        /// Window start, ms.
        from_ms: u64,
        /// Window end, ms (inclusive).
        to_ms: u64,
    },
    /// Records in the window whose ciphertext at `level` lies in one of the ranges of its epoch.
    Within {
        /// The patient.
        patient: PatientId,
        /// Level of the ciphertexts compared.
        level: LevelIndex,
        /// Encrypted ranges per epoch.
        ranges: Vec<EpochRanges>,
        /// Window start, ms.
        from_ms: u64,
        /// Window end, ms (inclusive).
        to_ms: u64,
    },
}

impl Store {
    /// The latest record of `patient`.
    pub fn last(&self, patient: &PatientId) -> Result<Option<StoredRecord>, StoreError> {
        match self.summary(patient)? {
            None => Ok(None),
            Some(summary) => self.record(patient, summary.last_seq),
        }
    }

    /// Records of `patient` with `from_ms ≤ fix_time ≤ to_ms`, in time order, at most `limit`.
    pub fn track(
        &self,
        patient: &PatientId,
        from_ms: u64,
        to_ms: u64,
        limit: usize,
    ) -> Result<Vec<StoredRecord>, StoreError> {
        check_limit(limit)?;
        let mut out = Vec::new();
        for seq in self.time_scan(patient, from_ms, to_ms) {
            if out.len() == limit {
                break;
            }
            out.push(self.must_record(patient, seq?)?);
        }
        Ok(out)
    }

    /// Records of `patient` in the window whose `level` ciphertext lies in a range of its epoch:
    /// the earliest `limit` of them, in time order; and which index answered.
    pub fn within(
        &self,
        patient: &PatientId,
        level: LevelIndex,
        ranges: &[EpochRanges],
        from_ms: u64,
        to_ms: u64,
        limit: usize,
    ) -> Result<(Vec<StoredRecord>, Plan), StoreError> {
        check_limit(limit)?;
        if ranges.iter().map(|e| e.ranges.len()).sum::<usize>() > MAX_RANGES {
            return Err(StoreError::QueryTooLarge("too many ranges"));
        }
        // The time plan reads the window in time order and stops after `limit` matches; the cell
        // plan must read every hit to find the earliest. Probe the cell index, and give up on it
        // once it holds more entries than the window, or than a few times the limit.
        let in_time = self.estimate_window(patient, from_ms, to_ms)?;
        let budget = in_time.min(PROBE_PER_RESULT * limit.max(1) as u64);
        let mut hits: Vec<(u64, Seq)> = Vec::new();
        let mut scanned = 0u64;
        let mut use_cells = true;
        'probe: for epoch in ranges {
            for &(low, high) in &epoch.ranges {
                let start = layout::cell_key(level, patient, epoch.epoch, low, Seq(0));
                let end = layout::cell_key(level, patient, epoch.epoch, high, Seq(u64::MAX));
                for item in self.tree.range(start..=end) {
                    let (key, value) = item?;
                    scanned += 1;
                    if scanned > budget {
                        use_cells = false;
                        break 'probe;
                    }
                    let time = be_u64(open_value(&value, "cell index", &key)?, 0)
                        .ok_or_else(|| corrupt("cell index", &key))?;
                    if (from_ms..=to_ms).contains(&time) {
                        hits.push((
                            time,
                            trailing_seq(&key).ok_or_else(|| corrupt("cell index", &key))?,
                        ));
                    }
                }
            }
        }
        if use_cells {
            hits.sort_unstable();
            hits.dedup();
            hits.truncate(limit);
            let records = hits
                .into_iter()
                .map(|(_, seq)| self.must_record(patient, seq))
                .collect::<Result<_, _>>()?;
            return Ok((records, Plan::CellIndex));
        }
        let mut out = Vec::new();
        let offset = 4 + 16 * usize::from(level.0);
        let start = layout::time_key(patient, from_ms, Seq(0));
        let end = layout::time_key(patient, to_ms, Seq(u64::MAX));
        for item in self.tree.range(start..=end) {
            if out.len() == limit {
                break;
            }
            let (key, value) = item?;
            let entry = open_value(&value, "time index", &key)?;
            let epoch = layout::be_u32(entry, 0).ok_or_else(|| corrupt("time index", &key))?;
            let Some(cell) = entry.get(offset..offset + 16) else {
                continue;
            };
            let cell = OpeCiphertext(u128::from_be_bytes(
                cell.try_into().map_err(|_| corrupt("time index", &key))?,
            ));
            let inside = ranges
                .iter()
                .filter(|e| e.epoch.0 == epoch)
                .flat_map(|e| e.ranges.iter())
                .any(|&(low, high)| low <= cell && cell <= high);
            if inside {
                let seq = trailing_seq(&key).ok_or_else(|| corrupt("time index", &key))?;
                out.push(self.must_record(patient, seq)?);
            }
        }
        Ok((out, Plan::TimeIndex))
    }

    /// Runs several queries (an operator's caseload); each answers or fails on its own.
    pub fn batch(
        &self,
        queries: &[Query],
        limit: usize,
    ) -> Vec<Result<Vec<StoredRecord>, StoreError>> {
        queries
            .iter()
            .map(|q| match q {
                Query::Last { patient } => self.last(patient).map(|r| r.into_iter().collect()),
                Query::Track {
                    patient,
                    from_ms,
                    to_ms,
                } => self.track(patient, *from_ms, *to_ms, limit),
                Query::Within {
                    patient,
                    level,
                    ranges,
                    from_ms,
                    to_ms,
                } => self
                    .within(patient, *level, ranges, *from_ms, *to_ms, limit)
                    .map(|(records, _)| records),
            })
            .collect()
    }

    /// Records of the patient expected in the window, from the patient's summary, assuming an
    /// even reporting rate (at least 1, so the probe of the cell index always starts).
    fn estimate_window(
        &self,
        patient: &PatientId,
        from_ms: u64,
        to_ms: u64,
    ) -> Result<u64, StoreError> {
        let Some(s) = self.summary(patient)? else {
            return Ok(1);
        };
        let start = from_ms.max(s.first_fix_ms);
        let end = to_ms.min(s.last_fix_ms);
        if start > end {
            return Ok(1);
        }
        let span = u128::from(s.last_fix_ms - s.first_fix_ms) + 1;
        let part = u128::from(end - start) + 1;
        Ok(((u128::from(s.count) * part / span) as u64).max(1))
    }

    /// Sequence numbers of the patient's records in the window, in time order.
    fn time_scan(
        &self,
        patient: &PatientId,
        from_ms: u64,
        to_ms: u64,
    ) -> impl Iterator<Item = Result<Seq, StoreError>> + '_ {
        let start = layout::time_key(patient, from_ms, Seq(0));
        let end = layout::time_key(patient, to_ms, Seq(u64::MAX));
        self.tree.range(start..=end).map(|item| {
            let (key, _) = item?;
            trailing_seq(&key).ok_or_else(|| corrupt("time index", &key))
        })
    }

    /// A record an index points to; its absence means the indexes are inconsistent.
    fn must_record(&self, patient: &PatientId, seq: Seq) -> Result<StoredRecord, StoreError> {
        self.record(patient, seq)?.ok_or_else(|| {
            corrupt(
                "record named by an index",
                &layout::record_key(patient, seq),
            )
        })
    }
}

fn check_limit(limit: usize) -> Result<(), StoreError> {
    if limit > MAX_RESULTS {
        return Err(StoreError::QueryTooLarge("result limit"));
    }
    Ok(())
}

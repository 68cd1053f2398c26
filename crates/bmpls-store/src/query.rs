//! Queries on ciphertexts: a patient's last record, records in a time window, and records whose
//! level-`d` ciphertext falls in given ranges within a time window. The store never sees a
//! position: range bounds arrive already encrypted, one list per key epoch.
//!
//! Both window queries walk the patient's chunk indexes in time order from the chunk holding the
//! window's start; in each chunk an area query finds its ranges by binary search among that
//! epoch's sorted ciphertexts, so it costs a few probes per chunk plus its answers, and it stops
//! once it has `limit` answers (later chunks hold only later records). For a long window, an
//! area query turns to the zone maps (`zones.rs`) after its first chunks and reads only the
//! chunks they name. Records that arrived with a fix time earlier than one already stored are
//! found through their own entries and merged.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;

use bmpls_ore_compare::{RightCiphertext, TokenRanges};
use bmpls_types::{Epoch, LevelIndex, LocationRecord, OpeCiphertext, PatientId, Seq};

use crate::chunk::{IndexChunk, RecordChunk};
use crate::error::StoreError;
use crate::layout::{
    be_u64, corrupt, index_key, open_value, out_of_order_key, trailing_seq, zones_prefix,
};
use crate::store::{Store, StoredRecord};
use crate::zones;

/// Most records one query returns.
pub const MAX_RESULTS: usize = 10_000;
/// Most ciphertext ranges in one `within` query (over all epochs).
pub const MAX_RANGES: usize = 4096;
/// Most candidate records one refined (ORE) query reads and compares: about 50 ms of work. A
/// pre-filter that selects more (a long window, an area whose district cells the patient
/// lives in) is refused, so that no query costs a validator without bound; the carer asks a
/// shorter window.
pub const MAX_REFINED_CANDIDATES: usize = 200_000;

/// Encrypted ranges of one key epoch: inclusive `(low, high)` ciphertext bounds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EpochRanges {
    /// The epoch whose key encrypted the bounds.
    pub epoch: Epoch,
    /// Inclusive ciphertext ranges.
    pub ranges: Vec<(OpeCiphertext, OpeCiphertext)>,
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

/// An area's left tokens at one ORE level, by epoch.
#[derive(Clone, Debug)]
pub struct OreTokens {
    /// The ORE level the tokens are for.
    pub level: LevelIndex,
    /// Each epoch's token ranges.
    pub by_epoch: BTreeMap<u32, TokenRanges>,
}

/// How an area query finds the chunk indexes it reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Plan {
    /// The planner's choice by estimated size (what [`Store::within`] does): a short window is
    /// walked; a long one is walked for its first [`WALK_FIRST`] chunks, then read through the
    /// zone maps.
    Auto,
    /// Walk the chunk indexes of the window in time order: best when the window holds few
    /// chunks or the answers are dense in it.
    TimeWalk,
    /// Read the zone maps of each epoch of the ranges, then only the chunks whose intervals at
    /// the query's level meet a range: best for long windows and rarely visited areas.
    Zones,
}

/// Chunks a long window's query walks before it turns to the zone maps: answers dense in the
/// window (a place the patient often is) end the query within them, and walking them costs
/// about a microsecond each from memory.
const WALK_FIRST: usize = 64;

/// A window is long for the planner when its estimated chunks exceed the walked ones plus this
/// many times the zone maps it would read (a zone map is a few hundred bytes per chunk it names,
/// a full chunk index ~15 KiB).
const ZONE_PLAN_FACTOR: u64 = 4;

/// A test a candidate record must pass as well as the ranges (an ORE comparison).
pub type Refine<'a> = dyn Fn(&LocationRecord) -> bool + 'a;

/// A chunk index read: its key and stored value.
type ChunkItem = Result<(sled::IVec, sled::IVec), StoreError>;

/// Ranges by epoch, each list sorted and merged.
type RangeMap = BTreeMap<u32, Vec<(u128, u128)>>;

/// An answer found, before its record is read.
struct Hit {
    time_ms: u64,
    seq: Seq,
    /// Where it is: in the record chunk that starts at this sequence number, or the record
    /// itself when it was already read to be tested (out-of-order records).
    at: Located,
}

enum Located {
    Chunk(Seq),
    Read(StoredRecord),
}

impl Store {
    /// The latest record of `patient`.
    pub fn last(&self, patient: &PatientId) -> Result<Option<StoredRecord>, StoreError> {
        match self.summary(patient)? {
            None => Ok(None),
            Some(summary) => self.record(patient, summary.last_seq),
        }
    }

    /// The newest fix of `patient` in the window: the record with the greatest (fix time, seq)
    /// among those with `from_ms ≤ fix_time ≤ to_ms`, which need not be the last submitted
    /// (phones flush backlogs of older fixes after live ones).
    ///
    /// Tracks read earliest first, so this reads the window's end: the last hour, then spans
    /// twice as long until one holds a record (a patient reporting live costs one short read),
    /// paging through a span that holds more than [`MAX_RESULTS`].
    pub fn newest(
        &self,
        patient: &PatientId,
        from_ms: u64,
        to_ms: u64,
    ) -> Result<Option<StoredRecord>, StoreError> {
        const FIRST_SPAN_MS: u64 = 3_600_000;
        if from_ms > to_ms {
            return Ok(None);
        }
        let mut span = FIRST_SPAN_MS;
        loop {
            let start = to_ms.saturating_sub(span).max(from_ms);
            if let Some(found) = self.newest_in(patient, start, to_ms)? {
                return Ok(Some(found));
            }
            if start == from_ms {
                return Ok(None);
            }
            span = span.saturating_mul(2);
        }
    }

    /// [`Store::newest`] by reading the whole of `[from_ms, to_ms]`, a page at a time.
    fn newest_in(
        &self,
        patient: &PatientId,
        mut from_ms: u64,
        to_ms: u64,
    ) -> Result<Option<StoredRecord>, StoreError> {
        let mut best: Option<StoredRecord> = None;
        loop {
            let page = self.track(patient, from_ms, to_ms, MAX_RESULTS)?;
            let full = page.len() == MAX_RESULTS;
            let last_time = page.last().map(|r| r.record.fix_time_ms);
            for r in page {
                let key = (r.record.fix_time_ms, r.record.seq);
                if best
                    .as_ref()
                    .is_none_or(|b| key > (b.record.fix_time_ms, b.record.seq))
                {
                    best = Some(r);
                }
            }
            match last_time {
                // The next page starts at the last time read (ties may straddle pages); a page
                // of one fix time only moves past it, or the walk would not advance.
                Some(t) if full && t < to_ms => {
                    from_ms = if t == from_ms { t + 1 } else { t };
                }
                _ => return Ok(best),
            }
        }
    }

    /// Records of `patient` with `from_ms ≤ fix_time ≤ to_ms`: the earliest `limit` of them, in
    /// time order (ties by sequence number).
    pub fn track(
        &self,
        patient: &PatientId,
        from_ms: u64,
        to_ms: u64,
        limit: usize,
    ) -> Result<Vec<StoredRecord>, StoreError> {
        check_limit(limit)?;
        if from_ms > to_ms || limit == 0 {
            return Ok(Vec::new());
        }
        let chunks = self.window_chunks(patient, (from_ms, to_ms));
        let hits = self.hits(
            patient,
            (from_ms, to_ms),
            limit,
            chunks,
            |chunk| Some(chunk.in_window(from_ms, to_ms).collect()),
            |_| true,
            None,
        )?;
        self.fetch(patient, hits)
    }

    /// Records of `patient` in the window whose `level` ciphertext lies in a range of its epoch:
    /// the earliest `limit` of them, in time order (ties by sequence number).
    pub fn within(
        &self,
        patient: &PatientId,
        level: LevelIndex,
        ranges: &[EpochRanges],
        from_ms: u64,
        to_ms: u64,
        limit: usize,
    ) -> Result<Vec<StoredRecord>, StoreError> {
        self.within_planned(patient, level, ranges, (from_ms, to_ms), limit, Plan::Auto)
    }

    /// [`Store::within`] with the plan chosen by the caller (benchmarks and tests compare them;
    /// every plan gives the same answer).
    pub fn within_planned(
        &self,
        patient: &PatientId,
        level: LevelIndex,
        ranges: &[EpochRanges],
        window: (u64, u64),
        limit: usize,
        plan: Plan,
    ) -> Result<Vec<StoredRecord>, StoreError> {
        self.within_refined(patient, level, ranges, window, limit, plan, None)
    }

    /// Records of `patient` in the window whose `level` ciphertext (an OPE level) lies in a
    /// range of its epoch and that `refine` accepts: the earliest `limit` of them, in time
    /// order. This is how a query at an ORE level runs: the ranges of a coarser OPE level
    /// covering the area find the candidate chunks and records as for [`Store::within`], and
    /// `refine` compares each candidate's right ciphertext with the carer's left tokens. Only
    /// accepted records count towards `limit`.
    #[allow(clippy::too_many_arguments)]
    pub fn within_refined(
        &self,
        patient: &PatientId,
        level: LevelIndex,
        ranges: &[EpochRanges],
        (from_ms, to_ms): (u64, u64),
        limit: usize,
        plan: Plan,
        refine: Option<&Refine<'_>>,
    ) -> Result<Vec<StoredRecord>, StoreError> {
        check_limit(limit)?;
        if ranges.iter().map(|e| e.ranges.len()).sum::<usize>() > MAX_RANGES {
            return Err(StoreError::QueryTooLarge("too many ranges"));
        }
        if from_ms > to_ms || limit == 0 {
            return Ok(Vec::new());
        }
        let ranges = normalise(ranges);
        let level = level.0;
        let select =
            |chunk: &IndexChunk<'_>| chunk.matching(usize::from(level), &ranges, from_ms, to_ms);
        let accept = |record: &LocationRecord| {
            inside(&ranges, record, usize::from(level)) && refine.is_none_or(|r| r(record))
        };
        let window = (from_ms, to_ms);
        let walk = self.window_chunks(patient, (from_ms, to_ms));
        let hits = match plan {
            Plan::TimeWalk => self.hits(patient, window, limit, walk, select, accept, refine)?,
            Plan::Zones => {
                let chunks = self.zone_chunks(patient, level, &ranges, to_ms, None)?;
                self.hits(patient, window, limit, chunks, select, accept, refine)?
            }
            Plan::Auto if !self.is_long(patient, from_ms, to_ms)? => {
                self.hits(patient, window, limit, walk, select, accept, refine)?
            }
            Plan::Auto => {
                // Walk first: answers dense in the window end the query here. Then the zone
                // maps, for the chunks after the last one walked.
                let walked = Cell::new(0);
                let last = RefCell::new(None::<sled::IVec>);
                let first = walk.take(WALK_FIRST).inspect(|item| {
                    walked.set(walked.get() + 1);
                    if let Ok((key, _)) = item {
                        *last.borrow_mut() = Some(key.clone());
                    }
                });
                let rest = std::iter::once_with(|| -> Box<dyn Iterator<Item = ChunkItem> + '_> {
                    if walked.get() < WALK_FIRST {
                        return Box::new(std::iter::empty());
                    }
                    let after = last.borrow().clone();
                    match self.zone_chunks(patient, level, &ranges, to_ms, after.as_deref()) {
                        Ok(chunks) => Box::new(chunks),
                        Err(e) => Box::new(std::iter::once(Err(e))),
                    }
                })
                .flatten();
                self.hits(
                    patient,
                    window,
                    limit,
                    first.chain(rest),
                    select,
                    accept,
                    refine,
                )?
            }
        };
        self.fetch(patient, hits)
    }

    /// Records of `patient` in the window whose right ciphertext at `tokens.level` (an ORE
    /// level) lies in its epoch's token ranges: the earliest `limit`, in time order. The
    /// `prefilter` ranges at `coarse` (an OPE level covering the same area) find the candidates
    /// through the chunk indexes and zone maps; each candidate is then compared with the
    /// tokens. A record whose ciphertext there does not parse, or is not ORE, is in no area.
    #[allow(clippy::too_many_arguments)]
    pub fn within_ore(
        &self,
        patient: &PatientId,
        coarse: LevelIndex,
        prefilter: &[EpochRanges],
        tokens: &OreTokens,
        window: (u64, u64),
        limit: usize,
        plan: Plan,
    ) -> Result<Vec<StoredRecord>, StoreError> {
        let level = usize::from(tokens.level.0);
        let refine = |record: &LocationRecord| {
            let (Some(ranges), Some(bmpls_types::Cell::Ore(right))) = (
                tokens.by_epoch.get(&record.epoch.0),
                record.cells.get(level),
            ) else {
                return false;
            };
            RightCiphertext::from_bytes(&right.0)
                .and_then(|right| ranges.contains(&right))
                .unwrap_or(false)
        };
        self.within_refined(
            patient,
            coarse,
            prefilter,
            window,
            limit,
            plan,
            Some(&refine),
        )
    }

    /// Whether the window is long for the planner: its chunks exceed those walked first by more
    /// than [`ZONE_PLAN_FACTOR`] times the zone maps the query would read instead. Both are
    /// estimated from the patient's summary, in proportion to the window's share of its span of
    /// fix times: chunks from its count of chunks, zone maps from its count of blocks (one per
    /// block and epoch). With small blocks each chunk has its own zone map, and the walk wins.
    fn is_long(&self, patient: &PatientId, from_ms: u64, to_ms: u64) -> Result<bool, StoreError> {
        let Some(summary) = self.summary(patient)? else {
            return Ok(false);
        };
        let span = summary
            .last_fix_ms
            .saturating_sub(summary.first_fix_ms)
            .saturating_add(1);
        let overlap = to_ms
            .min(summary.last_fix_ms)
            .saturating_add(1)
            .saturating_sub(from_ms.max(summary.first_fix_ms));
        let share = |n: u64| (u128::from(n) * u128::from(overlap) / u128::from(span)) as u64;
        let (chunks, zone_maps) = (share(summary.chunks), share(summary.blocks));
        Ok(chunks > WALK_FIRST as u64 + ZONE_PLAN_FACTOR * zone_maps)
    }

    /// The chunk indexes that the zone maps of the ranges' epochs name as possibly
    /// matching, keyed at most `to_ms` and after the key `after`, in key order; each read when
    /// the query gets to it.
    fn zone_chunks<'a>(
        &'a self,
        patient: &PatientId,
        level: u8,
        ranges: &RangeMap,
        to_ms: u64,
        after: Option<&[u8]>,
    ) -> Result<impl Iterator<Item = ChunkItem> + 'a, StoreError> {
        let mut candidates = Vec::new();
        for (&epoch, list) in ranges {
            for item in self.tree.scan_prefix(zones_prefix(patient, epoch)) {
                let (key, value) = item?;
                let payload = open_value(&value, "zone map", &key)?;
                let found = zones::candidates(payload, usize::from(level), list)
                    .ok_or_else(|| corrupt("zone map", &key))?;
                candidates.extend(
                    found
                        .into_iter()
                        .filter(|&(key_time, _)| key_time <= to_ms)
                        .map(|(key_time, first)| index_key(patient, key_time, first)),
                );
            }
        }
        candidates.sort_unstable();
        candidates.dedup();
        if let Some(after) = after {
            candidates.retain(|key| key.as_slice() > after);
        }
        Ok(candidates.into_iter().map(|key| match self.tree.get(&key) {
            Ok(Some(value)) => Ok((key.into(), value)),
            Ok(None) => Err(corrupt("chunk index named by a zone map", &key)),
            Err(e) => Err(e.into()),
        }))
    }

    /// The chunk indexes that may hold records of the window, in key (time) order: the
    /// last chunk keyed before the window may hold its first records, then every chunk keyed
    /// inside it.
    fn window_chunks(
        &self,
        patient: &PatientId,
        (from_ms, to_ms): (u64, u64),
    ) -> impl Iterator<Item = ChunkItem> {
        let start = index_key(patient, from_ms, Seq(0));
        let end = index_key(patient, to_ms, Seq(u64::MAX));
        let before = self
            .tree
            .range(index_key(patient, 0, Seq(0))..start.clone())
            .next_back();
        before
            .into_iter()
            .chain(self.tree.range(start..=end))
            .map(|item| item.map_err(Into::into))
    }

    /// The earliest `limit` answers in the window, in (time, seq) order, read from `chunks`
    /// (index chunks in key order, read until `limit` answers are found):
    /// `select` picks the answering slots of a chunk (`None` if the chunk is malformed),
    /// `accept` tests an out-of-order record, and `refine`, if given, every candidate the
    /// chunks select (which is then read from its record chunk).
    #[allow(clippy::too_many_arguments)]
    fn hits(
        &self,
        patient: &PatientId,
        (from_ms, to_ms): (u64, u64),
        limit: usize,
        chunks: impl Iterator<Item = Result<(sled::IVec, sled::IVec), StoreError>>,
        select: impl Fn(&IndexChunk<'_>) -> Option<Vec<usize>>,
        accept: impl Fn(&LocationRecord) -> bool,
        refine: Option<&Refine<'_>>,
    ) -> Result<Vec<Hit>, StoreError> {
        let mut hits = Vec::new();
        let mut current: Option<RecordChunk> = None;
        let mut candidates = 0usize;
        for item in chunks {
            let (key, value) = item?;
            let payload = open_value(&value, "chunk index", &key)?;
            let chunk = IndexChunk::parse(payload)
                .filter(|c| Some(c.first) == trailing_seq(&key))
                .ok_or_else(|| corrupt("chunk index", &key))?;
            let slots = select(&chunk).ok_or_else(|| corrupt("chunk index", &key))?;
            match refine {
                None => hits.extend(slots.into_iter().map(|slot| Hit {
                    time_ms: chunk.time(slot),
                    seq: chunk.seq(slot),
                    at: Located::Chunk(chunk.record_chunk(slot)),
                })),
                Some(refine) => {
                    candidates += slots.len();
                    if candidates > MAX_REFINED_CANDIDATES {
                        return Err(StoreError::QueryTooLarge(
                            "the area's pre-filter selects too many records: ask a shorter window",
                        ));
                    }
                    for slot in slots {
                        let (seq, first) = (chunk.seq(slot), chunk.record_chunk(slot));
                        let records = match current.take() {
                            Some(c) if c.holds(seq) => c,
                            _ => self.chunk_at(patient, first)?,
                        };
                        let stored = records.get(seq)?.ok_or_else(|| {
                            corrupt(
                                "record named by an index",
                                &crate::layout::records_key(patient, first),
                            )
                        })?;
                        current = Some(records);
                        if refine(&stored.record) {
                            hits.push(Hit {
                                time_ms: chunk.time(slot),
                                seq,
                                at: Located::Read(stored),
                            });
                        }
                    }
                }
            }
            if hits.len() >= limit {
                break;
            }
        }
        hits.truncate(limit);
        let mut late = Vec::new();
        let range = out_of_order_key(patient, from_ms, Seq(0))
            ..=out_of_order_key(patient, to_ms, Seq(u64::MAX));
        for item in self.tree.range(range) {
            if late.len() == limit {
                break;
            }
            let (key, value) = item?;
            open_value(&value, "out-of-order entry", &key)?;
            let (Some(time_ms), Some(seq)) = (be_u64(&key, 17), trailing_seq(&key)) else {
                return Err(corrupt("out-of-order entry", &key));
            };
            let stored = self
                .record(patient, seq)?
                .filter(|s| s.record.fix_time_ms == time_ms)
                .ok_or_else(|| corrupt("record named by an index", &key))?;
            if accept(&stored.record) {
                late.push(Hit {
                    time_ms,
                    seq,
                    at: Located::Read(stored),
                });
            }
        }
        if !late.is_empty() {
            hits.extend(late);
            hits.sort_unstable_by_key(|h| (h.time_ms, h.seq));
            hits.truncate(limit);
        }
        Ok(hits)
    }

    /// The records of `hits`, reading each chunk once.
    fn fetch(&self, patient: &PatientId, hits: Vec<Hit>) -> Result<Vec<StoredRecord>, StoreError> {
        let mut current: Option<RecordChunk> = None;
        let mut out = Vec::with_capacity(hits.len());
        for hit in hits {
            let first = match hit.at {
                Located::Read(stored) => {
                    out.push(stored);
                    continue;
                }
                Located::Chunk(first) => first,
            };
            let chunk = match current.take() {
                Some(c) if c.holds(hit.seq) => c,
                _ => self.chunk_at(patient, first)?,
            };
            let stored = chunk.get(hit.seq)?.ok_or_else(|| {
                corrupt(
                    "record named by an index",
                    &crate::layout::records_key(patient, first),
                )
            })?;
            out.push(stored);
            current = Some(chunk);
        }
        Ok(out)
    }
}

/// Each epoch's ranges sorted and merged (empty ranges dropped), for binary search.
fn normalise(ranges: &[EpochRanges]) -> RangeMap {
    let mut map = RangeMap::new();
    for epoch in ranges {
        map.entry(epoch.epoch.0).or_default().extend(
            epoch
                .ranges
                .iter()
                .filter(|(low, high)| low <= high)
                .map(|(low, high)| (low.0, high.0)),
        );
    }
    for list in map.values_mut() {
        list.sort_unstable();
        let mut merged: Vec<(u128, u128)> = Vec::with_capacity(list.len());
        for &(low, high) in list.iter() {
            match merged.last_mut() {
                Some(last) if low <= last.1.saturating_add(1) => last.1 = last.1.max(high),
                _ => merged.push((low, high)),
            }
        }
        *list = merged;
    }
    map
}

/// Whether the record's ciphertext at `level` lies in one of its epoch's ranges.
fn inside(ranges: &RangeMap, record: &LocationRecord, level: usize) -> bool {
    let (Some(list), Some(cell)) = (
        ranges.get(&record.epoch.0),
        record.cells.get(level).and_then(|c| c.ope()),
    ) else {
        return false;
    };
    let i = list.partition_point(|&(_, high)| high < cell.0);
    list.get(i).is_some_and(|&(low, _)| low <= cell.0)
}

fn check_limit(limit: usize) -> Result<(), StoreError> {
    if limit > MAX_RESULTS {
        return Err(StoreError::QueryTooLarge("result limit"));
    }
    Ok(())
}

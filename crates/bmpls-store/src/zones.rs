//! Zone maps: which index chunks an area query must read. Written once with each block, one value
//! per patient and key epoch (`Z`, patient ‖ epoch ‖ height), they name each of the block's
//! chunks holding the patient's records of that epoch and, per level, cover those records'
//! ciphertexts with at most [`ZONE_INTERVALS`] intervals. A query reads the zone maps of its
//! ranges' epochs and then only the chunks whose intervals meet a range.
//!
//! Payload: `levels u8 ‖ n u16 ‖ n × (key time u64 ‖ first seq u64) ‖ levels × n ×
//! ZONE_INTERVALS × (low u128 ‖ high u128)`. An interval with `low > high` is empty (fewer
//! intervals, or no record of the epoch at that level).
//!
//! A zone map holds only ciphertexts the records already hold: it reveals nothing more.

use bmpls_types::Seq;

use crate::chunk::Ranges;
use crate::layout::Reader;

/// Intervals per chunk and level. A place is a few runs of a space-filling curve's cell numbers,
/// and so are a patient's ciphertexts over a chunk: splitting them at the widest gaps keeps the
/// map tight where one lowest-to-highest interval would span the cells between.
pub(crate) const ZONE_INTERVALS: usize = 4;

/// Bytes of one interval.
const INTERVAL_LEN: usize = 32;

/// The intervals covering `sorted` ciphertexts: split at the (at most `ZONE_INTERVALS - 1`)
/// widest gaps; none for no ciphertexts.
pub(crate) fn intervals(sorted: &[u128]) -> Vec<(u128, u128)> {
    if sorted.is_empty() {
        return Vec::new();
    }
    let mut cuts: Vec<usize> = (1..sorted.len())
        .filter(|&i| sorted[i] > sorted[i - 1])
        .collect();
    cuts.sort_unstable_by_key(|&i| std::cmp::Reverse(sorted[i] - sorted[i - 1]));
    cuts.truncate(ZONE_INTERVALS - 1);
    cuts.sort_unstable();
    let mut out = Vec::with_capacity(ZONE_INTERVALS);
    let mut start = 0;
    for cut in cuts.into_iter().chain(std::iter::once(sorted.len())) {
        out.push((sorted[start], sorted[cut - 1]));
        start = cut;
    }
    out
}

/// One block's zone map of one patient and epoch, as it is built.
#[derive(Debug, Default)]
pub(crate) struct ZoneMap {
    chunks: Vec<(u64, Seq)>,
    /// Per level, per chunk, its intervals.
    levels: Vec<Vec<Vec<(u128, u128)>>>,
}

impl ZoneMap {
    /// Adds the chunk keyed `(key_time_ms, first)` with each level's intervals.
    pub(crate) fn push(&mut self, key_time_ms: u64, first: Seq, per_level: Vec<Vec<(u128, u128)>>) {
        let before = self.chunks.len();
        self.chunks.push((key_time_ms, first));
        if self.levels.len() < per_level.len() {
            self.levels
                .resize(per_level.len(), vec![Vec::new(); before]);
        }
        let mut given = per_level.into_iter();
        for list in &mut self.levels {
            list.push(given.next().unwrap_or_default());
        }
    }

    /// The stored payload.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let n = self.chunks.len();
        let mut out =
            Vec::with_capacity(3 + n * 16 + self.levels.len() * n * ZONE_INTERVALS * INTERVAL_LEN);
        out.push(self.levels.len() as u8);
        out.extend_from_slice(&(n as u16).to_be_bytes());
        for (key_time, first) in &self.chunks {
            out.extend_from_slice(&key_time.to_be_bytes());
            out.extend_from_slice(&first.0.to_be_bytes());
        }
        for per_chunk in &self.levels {
            for intervals in per_chunk {
                for i in 0..ZONE_INTERVALS {
                    let (low, high) = intervals.get(i).copied().unwrap_or((1, 0));
                    out.extend_from_slice(&low.to_be_bytes());
                    out.extend_from_slice(&high.to_be_bytes());
                }
            }
        }
        out
    }
}

/// The chunks a zone map (its checked payload) names at `level` whose ciphertexts may lie in one
/// of `ranges` (sorted, disjoint): `(key time, first seq)` each; `None` if the payload is
/// malformed.
pub(crate) fn candidates(payload: &[u8], level: usize, ranges: &Ranges) -> Option<Vec<(u64, Seq)>> {
    let mut r = Reader::new(payload);
    let levels = usize::from(r.u8()?);
    let n = usize::from(r.u16()?);
    let chunks = r.take(n.checked_mul(16)?)?;
    let section = n.checked_mul(ZONE_INTERVALS * INTERVAL_LEN)?;
    if r.remaining() != levels.checked_mul(section)? {
        return None;
    }
    if level >= levels {
        return Some(Vec::new());
    }
    r.take(level * section)?;
    let intervals = r.take(section)?;
    let u128_at = |at: usize| u128::from_be_bytes(intervals[at..at + 16].try_into().expect("16"));
    let u64_at = |at: usize| u64::from_be_bytes(chunks[at..at + 8].try_into().expect("8"));
    Some(
        (0..n)
            .filter(|&c| {
                (0..ZONE_INTERVALS).any(|k| {
                    let at = (c * ZONE_INTERVALS + k) * INTERVAL_LEN;
                    let (low, high) = (u128_at(at), u128_at(at + 16));
                    // The first range ending at or above `low` must start at or below `high`.
                    let i = ranges.partition_point(|&(_, end)| end < low);
                    low <= high && ranges.get(i).is_some_and(|&(start, _)| start <= high)
                })
            })
            .map(|c| (u64_at(c * 16), Seq(u64_at(c * 16 + 8))))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zone_map_splits_at_the_widest_gaps_and_names_only_overlapping_chunks() {
        let wide = intervals(&[1, 2, 3, 100, 101, 1000, 5000, 5001]);
        assert_eq!(wide, vec![(1, 3), (100, 101), (1000, 1000), (5000, 5001)]);
        assert_eq!(intervals(&[40, 40]), vec![(40, 40)]);
        assert_eq!(intervals(&[]), vec![]);

        let mut map = ZoneMap::default();
        // Chunk 1 at levels 0 and 1; chunk 2 at level 0 only.
        map.push(10, Seq(1), vec![wide, vec![(7, 7)]]);
        map.push(20, Seq(200), vec![intervals(&[40, 40])]);
        let payload = map.encode();
        let found = |level: usize, ranges: &Ranges| {
            candidates(&payload, level, ranges).expect("well formed")
        };
        // Between the first chunk's intervals, and away from the second's: nothing.
        assert_eq!(found(0, &[(4, 39), (41, 99), (2000, 4999)]), vec![]);
        assert_eq!(found(0, &[(1001, 1100)]), vec![]);
        // Touching one interval of either.
        assert_eq!(found(0, &[(3, 3)]), vec![(10, Seq(1))]);
        assert_eq!(found(0, &[(40, 41)]), vec![(20, Seq(200))]);
        assert_eq!(
            found(0, &[(0, 1), (40, 40)]),
            vec![(10, Seq(1)), (20, Seq(200))]
        );
        assert_eq!(found(0, &[(4500, 6000)]), vec![(10, Seq(1))]);
        // Level 1: only the first chunk has it; the empty intervals match nothing.
        assert_eq!(found(1, &[(0, u128::MAX)]), vec![(10, Seq(1))]);
        // A level past the map's: nothing.
        assert_eq!(found(2, &[(0, u128::MAX)]), vec![]);
        // A torn map is malformed, not an empty answer.
        assert_eq!(
            candidates(&payload[..payload.len() - 1], 0, &[(0, 1)]),
            None
        );
        assert_eq!(candidates(&[], 0, &[(0, 1)]), None);
    }
}

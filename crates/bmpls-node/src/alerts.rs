//! Geofence alerts, derived from the committed chain alone (pure: no I/O, no clock). A fence is
//! a `SetFence` transaction: a carer's safe zone covered at one level and encrypted per key
//! epoch. Every committed record of the patient is tested on its ciphertext at that level
//! (at an OPE level, integer comparison with the encrypted ranges of its epoch; at an ORE level,
//! bisection of the ranges' left tokens against the record's right ciphertext: the node never
//! learns where the zone is); `debounce` consecutive records on the other side switch the fence's state and fire
//! `Enter` or `Exit`. `Missing` fires when a block's time is [`MISSING_INTERVALS`] expected
//! reporting intervals after the block that committed the patient's last record.
//!
//! Because the events are a function of the chain, every honest validator derives the same
//! ones, a restarted validator derives them again by replaying its blocks, and a carer resumes
//! from the last height it saw.

use std::collections::BTreeMap;

use borsh::BorshSerialize;

use bmpls_crypto::hash::tx_hash;
use bmpls_net::alert::{AlertEvent, AlertKind};
use bmpls_ore_compare::{RightCiphertext, TokenRanges};
use bmpls_types::{
    Block, CarerId, Cell, Epoch, FenceRanges, Height, LevelIndex, PatientId, Seq, SetFence,
    Transaction, TxHash,
};

/// Leads an alert checkpoint's bytes; a layout change bumps it (an older checkpoint is then
/// ignored and the chain replayed).
const CHECKPOINT_VERSION: u8 = 1;

/// A fence as a checkpoint holds it: the transaction, its side, pending count and `Missing`.
type FenceState<'a> = (&'a SetFence, u8, u8, bool);

/// Expected reporting intervals of silence before `Missing` fires.
pub const MISSING_INTERVALS: u64 = 3;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    Unknown = 0,
    Inside = 1,
    Outside = 2,
}

/// One epoch's ranges of a fence, ready to test records with.
#[derive(Debug)]
enum Ranges {
    Ope(Vec<(u128, u128)>),
    Ore(TokenRanges),
    /// Tokens that do not parse (the ledger refuses them; kept so no record is judged by them).
    Unusable,
}

#[derive(Debug)]
struct Fence {
    id: TxHash,
    /// The transaction, kept for checkpoints (the ranges below are parsed from it).
    source: SetFence,
    carer: CarerId,
    level: usize,
    /// The level as the fence names it, carried by its events.
    level_index: LevelIndex,
    /// Encrypted ranges per epoch, as the custodian sent them (sorted, disjoint).
    epochs: BTreeMap<u32, Ranges>,
    debounce: u8,
    interval_ms: u64,
    side: Side,
    /// Consecutive records seen on the other side.
    pending: u8,
    /// `Missing` already fired since the last record.
    missing: bool,
}

impl Fence {
    fn new(id: TxHash, fence: &SetFence) -> Self {
        Self {
            id,
            source: fence.clone(),
            carer: fence.carer,
            level: usize::from(fence.level.0),
            level_index: fence.level,
            epochs: fence
                .epochs
                .iter()
                .map(|e| {
                    let ranges = match &e.ranges {
                        FenceRanges::Ope(r) => {
                            Ranges::Ope(r.iter().map(|(lo, hi)| (lo.0, hi.0)).collect())
                        }
                        FenceRanges::Ore(r) => {
                            TokenRanges::parse(r.iter()).map_or(Ranges::Unusable, Ranges::Ore)
                        }
                    };
                    (e.epoch.0, ranges)
                })
                .collect(),
            debounce: fence.debounce.max(1),
            interval_ms: fence.expected_interval_ms,
            side: Side::Unknown,
            pending: 0,
            missing: false,
        }
    }

    /// Whether the ciphertext lies in the fence, or `None` if the fence has no ranges for the
    /// record's epoch, or none under the ciphertext's scheme.
    fn holds(&self, epoch: u32, cell: &Cell) -> Option<bool> {
        match (self.epochs.get(&epoch)?, cell) {
            (Ranges::Ope(ranges), Cell::Ope(c)) => {
                let at = ranges.partition_point(|&(_, hi)| hi < c.0);
                Some(ranges.get(at).is_some_and(|&(lo, _)| lo <= c.0))
            }
            (Ranges::Ore(ranges), Cell::Ore(right)) => {
                let right = RightCiphertext::from_bytes(&right.0).ok()?;
                ranges.contains(&right).ok()
            }
            _ => None,
        }
    }
}

/// The alert state of a chain and the events derived so far.
#[derive(Debug, Default)]
pub struct Alerts {
    fences: BTreeMap<PatientId, Vec<Fence>>,
    /// Per patient: the time of the block that committed the last record, and its sequence.
    last_report: BTreeMap<PatientId, (u64, Seq)>,
    /// Per patient: the key epoch length, from the enrolment (a block time's epoch decides
    /// whether a fence's `Missing` applies).
    epoch_length_ms: BTreeMap<PatientId, u64>,
    events: Vec<AlertEvent>,
    /// Per carer, the indexes of its events in `events` (in chain order), so that a watch
    /// reads its carer's events only.
    by_carer: BTreeMap<CarerId, Vec<usize>>,
}

impl Alerts {
    /// Derives the events of the next committed block.
    pub fn on_block(&mut self, block: &Block) -> Vec<AlertEvent> {
        let height = block.header.height;
        let time_ms = block.header.time_ms;
        let mut fired = Vec::new();
        for tx in block.txs.iter() {
            match tx {
                Transaction::EnrolPatient(t) => {
                    self.epoch_length_ms.insert(t.patient, t.epoch_length_ms);
                }
                Transaction::RemoveFence(t) => {
                    if let Some(fences) = self.fences.get_mut(&t.patient) {
                        fences.retain(|f| f.id != t.fence);
                    }
                }
                Transaction::SetFence(fence) => {
                    let id = tx_hash(tx);
                    self.fences
                        .entry(fence.patient)
                        .or_default()
                        .push(Fence::new(id, fence));
                }
                Transaction::Report(record) => {
                    self.last_report
                        .insert(record.patient, (time_ms, record.seq));
                    let Some(fences) = self.fences.get_mut(&record.patient) else {
                        continue;
                    };
                    for fence in fences {
                        fence.missing = false;
                        let Some(cell) = record.cells.get(fence.level) else {
                            continue;
                        };
                        let Some(inside) = fence.holds(record.epoch.0, cell) else {
                            continue;
                        };
                        let side = if inside { Side::Inside } else { Side::Outside };
                        let kind = match (fence.side, side) {
                            (Side::Unknown, Side::Outside) => Some(AlertKind::Exit),
                            (Side::Unknown, _) => None,
                            (now, seen) if now == seen => {
                                fence.pending = 0;
                                continue;
                            }
                            (_, seen) => {
                                fence.pending += 1;
                                if fence.pending < fence.debounce {
                                    continue;
                                }
                                Some(if seen == Side::Inside {
                                    AlertKind::Enter
                                } else {
                                    AlertKind::Exit
                                })
                            }
                        };
                        fence.side = side;
                        fence.pending = 0;
                        if let Some(kind) = kind {
                            fired.push(AlertEvent {
                                fence: fence.id,
                                patient: record.patient,
                                carer: fence.carer,
                                kind,
                                seq: record.seq,
                                level: fence.level_index,
                                epoch: record.epoch,
                                height,
                                time_ms,
                            });
                        }
                    }
                }
                _ => {}
            }
        }
        for (patient, fences) in &mut self.fences {
            let Some(&(last_ms, seq)) = self.last_report.get(patient) else {
                continue;
            };
            // A fence applies in the epochs it was encrypted for only: past them it is silent.
            let Some(epoch) = self
                .epoch_length_ms
                .get(patient)
                .and_then(|len| u32::try_from(time_ms / len.max(&1)).ok())
            else {
                continue;
            };
            for fence in fences
                .iter_mut()
                .filter(|f| f.interval_ms > 0 && !f.missing && f.epochs.contains_key(&epoch))
            {
                let silence = fence.interval_ms.saturating_mul(MISSING_INTERVALS);
                if time_ms.saturating_sub(last_ms) > silence {
                    fence.missing = true;
                    fired.push(AlertEvent {
                        fence: fence.id,
                        patient: *patient,
                        carer: fence.carer,
                        kind: AlertKind::Missing,
                        seq,
                        level: fence.level_index,
                        epoch: Epoch(epoch),
                        height,
                        time_ms,
                    });
                }
            }
        }
        for event in &fired {
            self.by_carer
                .entry(event.carer)
                .or_default()
                .push(self.events.len());
            self.events.push(event.clone());
        }
        fired
    }

    /// The state after the last block, as bytes [`Alerts::restore`] reads back (events
    /// included: a watch may resume from any height).
    pub fn checkpoint(&self) -> Vec<u8> {
        let fences: Vec<(&PatientId, Vec<FenceState<'_>>)> = self
            .fences
            .iter()
            .map(|(patient, fences)| {
                let states = fences
                    .iter()
                    .map(|f| (&f.source, f.side as u8, f.pending, f.missing))
                    .collect();
                (patient, states)
            })
            .collect();
        let mut out = vec![CHECKPOINT_VERSION];
        (
            &fences,
            &self.last_report,
            &self.epoch_length_ms,
            &self.events,
        )
            .serialize(&mut out)
            .expect("serialising into a Vec cannot fail");
        out
    }

    /// The state an [`Alerts::checkpoint`] describes.
    pub fn restore(bytes: &[u8]) -> Result<Self, String> {
        let (&version, body) = bytes.split_first().ok_or("empty")?;
        if version != CHECKPOINT_VERSION {
            return Err(format!(
                "alert checkpoint layout {version}, this build reads {CHECKPOINT_VERSION}"
            ));
        }
        type Stored = (
            Vec<(PatientId, Vec<(SetFence, u8, u8, bool)>)>,
            BTreeMap<PatientId, (u64, Seq)>,
            BTreeMap<PatientId, u64>,
            Vec<AlertEvent>,
        );
        let (stored, last_report, epoch_length_ms, events): Stored =
            borsh::from_slice(body).map_err(|e| format!("malformed alert checkpoint: {e}"))?;
        let mut fences = BTreeMap::new();
        for (patient, states) in stored {
            let mut restored = Vec::with_capacity(states.len());
            for (source, side, pending, missing) in states {
                let mut fence =
                    Fence::new(tx_hash(&Transaction::SetFence(source.clone())), &source);
                fence.side = match side {
                    0 => Side::Unknown,
                    1 => Side::Inside,
                    2 => Side::Outside,
                    other => return Err(format!("fence side {other}")),
                };
                fence.pending = pending;
                fence.missing = missing;
                restored.push(fence);
            }
            fences.insert(patient, restored);
        }
        let mut by_carer: BTreeMap<CarerId, Vec<usize>> = BTreeMap::new();
        for (i, event) in events.iter().enumerate() {
            by_carer.entry(event.carer).or_default().push(i);
        }
        Ok(Self {
            fences,
            last_report,
            epoch_length_ms,
            events,
            by_carer,
        })
    }

    /// The events for `carer` from `from` on, in chain order (at most `limit`), and whether
    /// more follow.
    pub fn since(&self, carer: &CarerId, from: Height, limit: usize) -> (Vec<AlertEvent>, bool) {
        let Some(mine) = self.by_carer.get(carer) else {
            return (Vec::new(), false);
        };
        let start = mine.partition_point(|&i| self.events[i].height < from);
        let mut found = Vec::new();
        for &i in &mine[start..] {
            if found.len() == limit {
                return (found, true);
            }
            found.push(self.events[i].clone());
        }
        (found, false)
    }
}

#[cfg(test)]
mod tests {
    use bmpls_types::{
        BlockHeader, BoundedVec, ChainId, Epoch, FenceEpoch, Hash32, LevelIndex, LocationRecord,
        OpeCiphertext, SignatureBytes, ValidatorId,
    };

    use super::*;

    const PATIENT: PatientId = PatientId([1; 16]);
    const CARER: CarerId = CarerId([2; 16]);

    fn block(height: u64, time_ms: u64, txs: Vec<Transaction>) -> Block {
        Block {
            header: BlockHeader {
                chain_id: ChainId::new("alerts").expect("chain id"),
                height: Height(height),
                prev_hash: bmpls_types::BlockHash::ZERO,
                time_ms,
                proposer: ValidatorId([0; 32]),
                tx_root: Hash32([0; 32]),
                tx_count: txs.len() as u32,
            },
            txs: BoundedVec::new(txs).expect("bounded"),
        }
    }

    fn fence(debounce: u8, interval_ms: u64) -> Transaction {
        Transaction::SetFence(SetFence {
            patient: PATIENT,
            carer: CARER,
            level: LevelIndex(0),
            epochs: BoundedVec::new(vec![FenceEpoch {
                epoch: Epoch(0),
                ranges: FenceRanges::Ope(
                    BoundedVec::new(vec![
                        (OpeCiphertext(100), OpeCiphertext(200)),
                        (OpeCiphertext(300), OpeCiphertext(400)),
                    ])
                    .expect("bounded"),
                ),
            }])
            .expect("bounded"),
            debounce,
            expected_interval_ms: interval_ms,
            sig: SignatureBytes::UNSIGNED,
        })
    }

    fn report(seq: u64, ciphertext: u128) -> Transaction {
        Transaction::Report(LocationRecord {
            patient: PATIENT,
            seq: Seq(seq),
            fix_time_ms: seq * 1000,
            epoch: Epoch(0),
            cells: BoundedVec::new(vec![Cell::Ope(OpeCiphertext(ciphertext))]).expect("bounded"),
            sealed: BoundedVec::new(vec![]).expect("bounded"),
            sig: SignatureBytes::UNSIGNED,
        })
    }

    /// The patient's enrolment, with key epochs of `epoch_length_ms`.
    fn enrol(epoch_length_ms: u64) -> Transaction {
        Transaction::EnrolPatient(bmpls_types::EnrolPatient {
            patient: PATIENT,
            reporter_key: bmpls_types::PublicKeyBytes([3; 32]),
            custodian_key: bmpls_types::PublicKeyBytes([4; 32]),
            level_count: 1,
            ore_levels: 0,
            epoch_length_ms,
            operator: bmpls_types::PublicKeyBytes([5; 32]),
            sig: SignatureBytes::UNSIGNED,
        })
    }

    fn kinds(events: &[AlertEvent]) -> Vec<(AlertKind, u64)> {
        events.iter().map(|e| (e.kind, e.seq.0)).collect()
    }

    #[test]
    fn exit_and_enter_fire_after_the_debounce_and_only_on_a_change() {
        let mut alerts = Alerts::default();
        alerts.on_block(&block(1, 1_000, vec![fence(2, 0)]));
        // Inside both ranges and on their edges, out once (debounced away), out twice (an
        // exit), in once (not yet), in again (an entry), out once.
        let path = [150, 300, 400, 250, 150, 250, 260, 350, 150, 50];
        let mut all = Vec::new();
        for (i, c) in path.iter().enumerate() {
            let h = i as u64 + 2;
            all.extend(alerts.on_block(&block(h, h * 1_000, vec![report(i as u64 + 1, *c)])));
        }
        assert_eq!(
            kinds(&all),
            vec![(AlertKind::Exit, 7), (AlertKind::Enter, 9)],
            "one record outside is not an exit; two are; two inside are an entry"
        );
        assert_eq!(alerts.since(&CARER, Height(0), 10).0.len(), 2);
        assert_eq!(
            alerts.since(&CARER, Height(9), 10).0.len(),
            1,
            "resume from a height"
        );
        assert_eq!(
            alerts.since(&CARER, Height(0), 1),
            (vec![all[0].clone()], true)
        );
        assert!(alerts.since(&CarerId([9; 16]), Height(0), 10).0.is_empty());
    }

    #[test]
    fn a_restored_checkpoint_fires_what_the_replayed_state_fires() {
        // A debounced fence and one that reports `Missing`; blocks of records in and out and a
        // silence, checkpointed after every block: the restored state must go on exactly as
        // the original (debounce counts, sides, `Missing` already fired, events so far).
        let blocks: Vec<Block> = {
            let mut blocks = vec![block(1, 1_000, vec![enrol(86_400_000), fence(2, 0)])];
            blocks.push(block(2, 2_000, vec![fence(1, 1_000)]));
            let path = [150, 50, 50, 150, 50, 150, 150];
            for (i, c) in path.iter().enumerate() {
                let h = i as u64 + 3;
                blocks.push(block(h, h * 1_000, vec![report(i as u64 + 1, *c)]));
            }
            blocks.push(block(10, 60_000, vec![]));
            blocks.push(block(11, 90_000, vec![]));
            blocks
        };
        for split in 0..blocks.len() {
            let mut original = Alerts::default();
            for b in &blocks[..split] {
                original.on_block(b);
            }
            let mut restored = Alerts::restore(&original.checkpoint()).expect("restores");
            assert_eq!(restored.checkpoint(), original.checkpoint());
            for b in &blocks[split..] {
                assert_eq!(restored.on_block(b), original.on_block(b), "after {split}");
            }
            assert_eq!(
                restored.since(&CARER, Height(0), 100),
                original.since(&CARER, Height(0), 100)
            );
        }
        let mut all = Alerts::default();
        let fired: Vec<_> = blocks.iter().flat_map(|b| all.on_block(b)).collect();
        assert!(
            fired.iter().any(|e| e.kind == AlertKind::Missing)
                && fired.iter().any(|e| e.kind == AlertKind::Enter),
            "the blocks exercise every kind: {fired:?}"
        );
        let bytes = all.checkpoint();
        for cut in 0..bytes.len() {
            assert!(Alerts::restore(&bytes[..cut]).is_err(), "{cut} bytes");
        }
    }

    #[test]
    fn since_reads_only_the_carers_own_events_in_chain_order() {
        let other_carer = CarerId([9; 16]);
        let mut alerts = Alerts::default();
        let mut other = fence(1, 0);
        if let Transaction::SetFence(f) = &mut other {
            f.carer = other_carer;
        }
        alerts.on_block(&block(1, 1_000, vec![fence(1, 0), other]));
        // Out, in, out: each record fires on both carers' fences.
        for (i, c) in [50, 150, 50].into_iter().enumerate() {
            let h = i as u64 + 2;
            alerts.on_block(&block(h, h * 1_000, vec![report(i as u64 + 1, c)]));
        }
        let mine = alerts.since(&CARER, Height(0), 10).0;
        assert_eq!(
            kinds(&mine),
            vec![
                (AlertKind::Exit, 1),
                (AlertKind::Enter, 2),
                (AlertKind::Exit, 3)
            ]
        );
        assert!(mine.iter().all(|e| e.carer == CARER));
        assert_eq!(alerts.since(&other_carer, Height(3), 10).0.len(), 2);
        assert_eq!(
            alerts.since(&CARER, Height(3), 1),
            (vec![mine[1].clone()], true)
        );
    }

    #[test]
    fn missing_fires_only_in_the_fences_epochs() {
        let mut alerts = Alerts::default();
        // Epochs of 100 s; the fence has ranges for epoch 0 only.
        alerts.on_block(&block(1, 1_000, vec![enrol(100_000), fence(1, 10_000)]));
        alerts.on_block(&block(2, 2_000, vec![report(1, 150)]));
        let fired = alerts.on_block(&block(3, 40_000, vec![]));
        assert_eq!(kinds(&fired), vec![(AlertKind::Missing, 1)]);
        assert_eq!((fired[0].level, fired[0].epoch), (LevelIndex(0), Epoch(0)));
        alerts.on_block(&block(4, 90_000, vec![report(2, 150)]));
        assert!(
            alerts.on_block(&block(5, 150_000, vec![])).is_empty(),
            "silent in epoch 1, which the fence does not cover"
        );
    }

    #[test]
    fn a_removed_fence_fires_nothing_more() {
        let mut alerts = Alerts::default();
        let set = fence(1, 10_000);
        let id = tx_hash(&set);
        alerts.on_block(&block(1, 1_000, vec![enrol(86_400_000), set]));
        let fired = alerts.on_block(&block(2, 2_000, vec![report(1, 50)]));
        assert_eq!(kinds(&fired), vec![(AlertKind::Exit, 1)]);
        assert_eq!((fired[0].level, fired[0].epoch), (LevelIndex(0), Epoch(0)));
        let removal = Transaction::RemoveFence(bmpls_types::RemoveFence {
            patient: PATIENT,
            fence: id,
            sig: SignatureBytes::UNSIGNED,
        });
        alerts.on_block(&block(3, 3_000, vec![removal]));
        assert!(
            alerts
                .on_block(&block(4, 4_000, vec![report(2, 150)]))
                .is_empty(),
            "no Enter"
        );
        assert!(
            alerts.on_block(&block(5, 100_000, vec![])).is_empty(),
            "no Missing"
        );
    }

    #[test]
    fn first_seen_outside_is_an_exit_and_other_epochs_are_not_judged() {
        let mut alerts = Alerts::default();
        alerts.on_block(&block(1, 1_000, vec![fence(1, 0)]));
        let mut other_epoch = report(1, 50);
        if let Transaction::Report(r) = &mut other_epoch {
            r.epoch = Epoch(5);
        }
        assert!(
            alerts
                .on_block(&block(2, 2_000, vec![other_epoch]))
                .is_empty()
        );
        assert_eq!(
            kinds(&alerts.on_block(&block(3, 3_000, vec![report(2, 50)]))),
            vec![(AlertKind::Exit, 2)]
        );
    }

    #[test]
    fn missing_fires_once_per_silence_by_block_time() {
        let mut alerts = Alerts::default();
        alerts.on_block(&block(1, 1_000, vec![enrol(86_400_000), fence(1, 10_000)]));
        alerts.on_block(&block(2, 2_000, vec![report(1, 150)]));
        assert!(
            alerts.on_block(&block(3, 32_000, vec![])).is_empty(),
            "30 s is not yet 3 intervals"
        );
        let fired = alerts.on_block(&block(4, 32_001, vec![]));
        assert_eq!(kinds(&fired), vec![(AlertKind::Missing, 1)]);
        assert!(
            alerts.on_block(&block(5, 90_000, vec![])).is_empty(),
            "once per silence"
        );
        alerts.on_block(&block(6, 91_000, vec![report(2, 150)]));
        assert_eq!(
            kinds(&alerts.on_block(&block(7, 200_000, vec![]))),
            vec![(AlertKind::Missing, 2)]
        );
    }
}

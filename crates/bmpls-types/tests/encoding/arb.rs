//! Proptest strategies for every encoded type: arbitrary values within the limits.

use bmpls_types::limits::{
    MAX_FENCE_EPOCHS, MAX_FENCE_RANGES, MAX_LEVELS, MAX_PURPOSE_BYTES, MAX_SEALED_BYTES,
};
use bmpls_types::{
    AgreementKey, Audit, Block, BlockHash, BlockHeader, BoundedString, BoundedVec, CarerId,
    ChainId, EnrolCarer, EnrolPatient, Epoch, FenceEpoch, Grant, Hash32, Height, LevelIndex,
    LocationRecord, OpeCiphertext, PatientId, PublicKeyBytes, QueryKind, RemoveFence, Revoke, Role,
    RotateReporterKey, Seq, SetFence, SignatureBytes, Transaction, TxHash, ValidatorId,
};
use bmpls_types::{Cell, FenceRanges, OreLeft, OreRight};
use proptest::collection::vec;
use proptest::prelude::*;

fn bounded<T: std::fmt::Debug, const N: usize>(
    items: impl Strategy<Value = T>,
    max: usize,
) -> impl Strategy<Value = BoundedVec<T, N>> {
    vec(items, 0..=max).prop_map(|v| BoundedVec::new(v).expect("within the bound"))
}

fn signature() -> impl Strategy<Value = SignatureBytes> {
    (any::<[u8; 32]>(), any::<[u8; 32]>())
        .prop_map(|(a, b)| SignatureBytes([a, b].concat().try_into().expect("64 bytes")))
}

fn key() -> impl Strategy<Value = PublicKeyBytes> {
    any::<[u8; 32]>().prop_map(PublicKeyBytes)
}

/// A level's ciphertext of either scheme (ORE bytes kept short: their bound is tested apart).
fn cell() -> impl Strategy<Value = Cell> {
    prop_oneof![
        any::<u128>().prop_map(|c| Cell::Ope(OpeCiphertext(c))),
        bounded(any::<u8>(), 40).prop_map(|b| Cell::Ore(OreRight(b))),
    ]
}

/// Any location record within the limits.
pub fn record() -> impl Strategy<Value = LocationRecord> {
    (
        any::<[u8; 16]>(),
        any::<u64>(),
        any::<u64>(),
        any::<u32>(),
        bounded(cell(), MAX_LEVELS),
        bounded(any::<u8>(), MAX_SEALED_BYTES),
        signature(),
    )
        .prop_map(|(p, seq, t, e, cells, sealed, sig)| LocationRecord {
            patient: PatientId(p),
            seq: Seq(seq),
            fix_time_ms: t,
            epoch: Epoch(e),
            cells,
            sealed,
            sig,
        })
}

fn role() -> impl Strategy<Value = Role> {
    prop_oneof![
        Just(Role::Gp),
        Just(Role::Family),
        Just(Role::TelecareOperator),
        Just(Role::Insurer),
        Just(Role::Researcher),
    ]
}

fn grant() -> impl Strategy<Value = Grant> {
    (
        (any::<[u8; 16]>(), any::<[u8; 16]>(), any::<u8>()),
        (any::<u32>(), any::<u32>(), any::<u64>(), any::<u64>()),
        "[a-z é]{0,40}",
        bounded(any::<u8>(), 600),
        signature(),
    )
        .prop_map(
            |((p, c, l), (df, dt, vf, vu), purpose, wrapped_keys, sig)| Grant {
                patient: PatientId(p),
                carer: CarerId(c),
                level: LevelIndex(l),
                data_from: Epoch(df),
                data_to: Epoch(dt),
                valid_from_ms: vf,
                valid_until_ms: vu,
                purpose: BoundedString::<MAX_PURPOSE_BYTES>::new(purpose).expect("short"),
                wrapped_keys,
                sig,
            },
        )
}

fn fence() -> impl Strategy<Value = SetFence> {
    let epoch = (
        any::<u32>(),
        prop_oneof![
            bounded(
                (any::<u128>(), any::<u128>())
                    .prop_map(|(a, b)| (OpeCiphertext(a), OpeCiphertext(b))),
                MAX_FENCE_RANGES.min(8),
            )
            .prop_map(FenceRanges::Ope),
            bounded(
                (bounded(any::<u8>(), 20), bounded(any::<u8>(), 20))
                    .prop_map(|(a, b)| (OreLeft(a), OreLeft(b))),
                4,
            )
            .prop_map(FenceRanges::Ore),
        ],
    )
        .prop_map(|(e, ranges)| FenceEpoch {
            epoch: Epoch(e),
            ranges,
        });
    (
        (any::<[u8; 16]>(), any::<[u8; 16]>(), any::<u8>()),
        bounded(epoch, MAX_FENCE_EPOCHS.min(3)),
        (any::<u8>(), any::<u64>()),
        signature(),
    )
        .prop_map(|((p, c, l), epochs, (debounce, interval), sig)| SetFence {
            patient: PatientId(p),
            carer: CarerId(c),
            level: LevelIndex(l),
            epochs,
            debounce,
            expected_interval_ms: interval,
            sig,
        })
}

fn audit() -> impl Strategy<Value = Audit> {
    (
        (any::<[u8; 32]>(), any::<[u8; 16]>(), any::<[u8; 16]>()),
        prop_oneof![
            Just(QueryKind::Last),
            Just(QueryKind::Track),
            Just(QueryKind::Within),
            Just(QueryKind::Alerts)
        ],
        (any::<u8>(), any::<u64>(), any::<u64>(), any::<u64>()),
        signature(),
    )
        .prop_map(|((n, c, p), query, (l, from, to, h), sig)| Audit {
            node: ValidatorId(n),
            carer: CarerId(c),
            patient: PatientId(p),
            query,
            level: LevelIndex(l),
            from_ms: from,
            to_ms: to,
            at_height: Height(h),
            sig,
        })
}

/// Any transaction of any kind.
pub fn transaction() -> impl Strategy<Value = Transaction> {
    prop_oneof![
        (
            any::<[u8; 16]>(),
            key(),
            key(),
            (any::<u8>(), any::<u8>()),
            any::<u64>(),
            key(),
            signature()
        )
            .prop_map(
                |(p, r, c, (levels, ore), epoch, op, sig)| Transaction::EnrolPatient(
                    EnrolPatient {
                        patient: PatientId(p),
                        reporter_key: r,
                        custodian_key: c,
                        level_count: levels,
                        ore_levels: ore,
                        epoch_length_ms: epoch,
                        operator: op,
                        sig,
                    }
                )
            ),
        (
            any::<[u8; 16]>(),
            key(),
            any::<[u8; 32]>(),
            role(),
            key(),
            signature()
        )
            .prop_map(
                |(c, id, ag, role, op, sig)| Transaction::EnrolCarer(EnrolCarer {
                    carer: CarerId(c),
                    identity_key: id,
                    agreement_key: AgreementKey(ag),
                    role,
                    operator: op,
                    sig,
                })
            ),
        (any::<[u8; 16]>(), key(), any::<u64>(), signature()).prop_map(|(p, k, s, sig)| {
            Transaction::RotateReporterKey(RotateReporterKey {
                patient: PatientId(p),
                new_reporter_key: k,
                from_seq: Seq(s),
                sig,
            })
        }),
        record().prop_map(Transaction::Report),
        grant().prop_map(Transaction::Grant),
        (any::<[u8; 16]>(), any::<[u8; 32]>(), signature()).prop_map(|(p, g, sig)| {
            Transaction::Revoke(Revoke {
                patient: PatientId(p),
                grant: TxHash(g),
                sig,
            })
        }),
        fence().prop_map(Transaction::SetFence),
        audit().prop_map(Transaction::Audit),
        (any::<[u8; 16]>(), any::<[u8; 32]>(), signature()).prop_map(|(p, f, sig)| {
            Transaction::RemoveFence(RemoveFence {
                patient: PatientId(p),
                fence: TxHash(f),
                sig,
            })
        }),
    ]
}

/// Any block of up to eight transactions (the header need not match them: encoding does not
/// check, verification does).
pub fn block() -> impl Strategy<Value = Block> {
    (
        "[a-z0-9-]{0,64}",
        (
            any::<u64>(),
            any::<[u8; 32]>(),
            any::<u64>(),
            any::<[u8; 32]>(),
        ),
        (any::<[u8; 32]>(), any::<u32>()),
        bounded(transaction(), 8),
    )
        .prop_map(
            |(chain, (height, prev, time, proposer), (root, count), txs)| Block {
                header: BlockHeader {
                    chain_id: ChainId::new(chain).expect("short"),
                    height: Height(height),
                    prev_hash: BlockHash(prev),
                    time_ms: time,
                    proposer: ValidatorId(proposer),
                    tx_root: Hash32(root),
                    tx_count: count,
                },
                txs,
            },
        )
}

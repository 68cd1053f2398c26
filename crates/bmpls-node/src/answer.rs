//! Carers' queries: the grant check against the committed state, then the store query and the
//! proofs the carer verifies. A validator never decrypts: an area query arrives as encrypted
//! ranges, compared with stored ciphertexts as integers. An answer carries each record cut to
//! the level asked (`LocationRecord::view`): finer ciphertexts and the sealed fix (below level 0)
//! stay on the node.
//!
//! A track is the records whose fix time is in the window (and epoch in the grant's data
//! window), in (fix time, seq) order. Phones flush backlogs out of order, so their sequence
//! numbers need not be consecutive in that order: the answer adds, as exclusion evidence, every
//! record whose seq lies between two answered ones but is not answered (its fix time or epoch
//! is outside, or the limit cut the answer before it), so the carer checks that answer and
//! evidence together hold a consecutive run of sequence numbers and sees a dropped record.
//! Answer and evidence together are at most the query's limit: the answer is the longest
//! prefix whose span of sequence numbers fits ([`span_prefix`]).
//!
//! The check ([`authorize`]) runs on the core task, which owns the ledger; the answer
//! ([`answer`]) reads the store on a blocking thread.

use std::collections::BTreeMap;

use bmpls_consensus::{GrantTerms, Ledger, PatientState};
use bmpls_net::limits::MAX_PROVED_FENCES;
use bmpls_net::query::{
    Answer, Ask, AuditAnswer, AuditRequest, CertifiedHeader, FenceEvidence, FencesOutcome,
    FencesRequest, GrantEvidence, GrantOutcome, GrantRequest, MAX_ANSWER_RECORDS, ProvedRecord,
    ProvedTx, Query, QueryOutcome, Unauthorized,
};
use bmpls_ore_compare::{OreError, TokenRanges};
use bmpls_store::{EpochRanges, OreTokens, Plan, Store, StoreError, StoredRecord};
use bmpls_types::{
    BoundedVec, CarerId, Epoch, Height, LevelIndex, PatientId, PublicKeyBytes, Transaction, TxHash,
};

/// What a query may read, once its grant is checked.
#[derive(Clone, Debug)]
pub(crate) struct Permit {
    /// The grant relied on, and where it is.
    pub(crate) grant: GrantTerms,
    pub(crate) grant_at: (Height, u32),
    /// Where the patient's enrolment and key rotations are.
    pub(crate) keys_at: Vec<(Height, u32)>,
    /// The chain height when the query was allowed.
    pub(crate) at_height: Height,
    /// An ORE area's tokens, parsed when the query was allowed.
    pub(crate) tokens: Option<OreTokens>,
}

fn failed(why: impl std::fmt::Display) -> QueryOutcome {
    QueryOutcome::Failed(bmpls_net::proto::reason(why))
}

/// The outcome of a query whose answer failed with `e`: [`QueryOutcome::NotHeld`] if only
/// blocks before this store's base hold it (another validator can answer), else `Failed`.
pub(crate) fn query_failure(e: StoreError) -> QueryOutcome {
    match e {
        StoreError::BeforeBase { .. } => QueryOutcome::NotHeld(bmpls_net::proto::reason(e)),
        e => failed(e),
    }
}

/// Whether `e` says only blocks before this store's base hold the answer.
pub(crate) fn not_held(e: &StoreError) -> bool {
    matches!(e, StoreError::BeforeBase { .. })
}

/// Checks `query`, signed by `client`, against the committed grant it names: the grant is the
/// patient's, stands (not revoked), names the signer as its carer, is valid at `now_ms`, and
/// covers the level and the window asked.
pub(crate) fn authorize(
    ledger: &Ledger,
    store: &Store,
    client: &PublicKeyBytes,
    query: &Query,
    now_ms: u64,
) -> Result<Permit, QueryOutcome> {
    if query.from_ms > query.to_ms {
        return Err(failed("the window ends before it starts"));
    }
    if query.limit == 0 || query.limit as usize > MAX_ANSWER_RECORDS {
        return Err(failed(format!(
            "the limit must be 1 to {MAX_ANSWER_RECORDS}"
        )));
    }
    let (patient, grant) = standing_grant(ledger, client, &query.patient, &query.grant)
        .map_err(QueryOutcome::Unauthorized)?;
    if now_ms < grant.valid_from_ms || now_ms >= grant.valid_until_ms {
        return Err(QueryOutcome::Unauthorized(Unauthorized::OutsideValidity {
            valid_from_ms: grant.valid_from_ms,
            valid_until_ms: grant.valid_until_ms,
            now_ms,
        }));
    }
    if query.level.0 < grant.level.0 {
        return Err(QueryOutcome::Unauthorized(Unauthorized::LevelTooFine {
            granted: grant.level.0,
            asked: query.level.0,
        }));
    }
    if query.level.0 >= patient.level_count {
        return Err(failed("no such level"));
    }
    let length = patient.epoch_length_ms;
    let data_from_ms = u64::from(grant.data_from.0).saturating_mul(length);
    let data_to_ms = (u64::from(grant.data_to.0) + 1)
        .saturating_mul(length)
        .saturating_sub(1);
    if query.from_ms < data_from_ms || query.to_ms > data_to_ms {
        return Err(QueryOutcome::Unauthorized(Unauthorized::OutsideWindow {
            from_ms: query.from_ms,
            to_ms: query.to_ms,
            data_from_ms,
            data_to_ms,
        }));
    }
    let ore = query.level.0 < patient.ore_levels;
    let mut tokens = None;
    let epochs: Vec<Epoch> = match &query.ask {
        Ask::Last | Ask::Track => Vec::new(),
        Ask::Within(_) if ore => {
            return Err(failed(
                "the level is under ORE: ask with tokens and a coarser OPE pre-filter",
            ));
        }
        Ask::Within(epochs) => epochs.iter().map(|e| e.epoch).collect(),
        Ask::WithinOre(_) if !ore => {
            return Err(failed("the level is under OPE: ask with ciphertext ranges"));
        }
        Ask::WithinOre(area) => {
            let coarse = area.coarse.0;
            if coarse <= query.level.0 || coarse >= patient.level_count {
                return Err(failed("the pre-filter level must be a coarser level"));
            }
            if coarse < patient.ore_levels {
                return Err(failed("the pre-filter level must be under OPE"));
            }
            let mut by_epoch = BTreeMap::new();
            for e in area.tokens.iter() {
                let parsed = TokenRanges::parse(e.ranges.iter()).map_err(|e| {
                    failed(match e {
                        OreError::DomainMismatch => "query tokens of more than one domain",
                        _ => "query tokens that do not parse",
                    })
                })?;
                by_epoch.insert(e.epoch.0, parsed);
            }
            tokens = Some(OreTokens {
                level: query.level,
                by_epoch,
            });
            let prefilter = area.prefilter.iter().map(|e| e.epoch);
            prefilter
                .chain(area.tokens.iter().map(|e| e.epoch))
                .collect()
        }
    };
    if let Some(e) = epochs
        .iter()
        .find(|&&e| e < grant.data_from || e > grant.data_to)
    {
        return Err(QueryOutcome::Unauthorized(
            Unauthorized::EpochOutsideWindow(e.0),
        ));
    }
    // A validator that joined from a snapshot answers only windows it holds every record of;
    // refused before the audit entry is made, so a carer moving on is audited once.
    let complete_from = store.complete_from_ms().map_err(failed)?;
    if query.from_ms < complete_from {
        if let Some(refusal) = store.before_base().map_err(failed)? {
            return Err(query_failure(refusal));
        }
    }
    let (grant_at, keys_at) = grant_positions(ledger, store, &query.patient, &query.grant)?;
    Ok(Permit {
        grant,
        grant_at,
        keys_at,
        at_height: ledger.height(),
        tokens,
    })
}

/// The patient and the terms of `grant`, if it is the patient's, stands, and names `client`
/// as its carer.
fn standing_grant<'a>(
    ledger: &'a Ledger,
    client: &PublicKeyBytes,
    patient: &PatientId,
    grant: &TxHash,
) -> Result<(&'a PatientState, GrantTerms), Unauthorized> {
    let state = ledger.patient(patient).ok_or(Unauthorized::UnknownGrant)?;
    let terms = *ledger
        .grant(patient, grant)
        .ok_or(Unauthorized::UnknownGrant)?;
    if !terms.standing {
        return Err(Unauthorized::Revoked);
    }
    if ledger.carer_key(&terms.carer) != Some(*client) {
        return Err(Unauthorized::NotTheGrantee);
    }
    Ok((state, terms))
}

/// Where the grant and the patient's key transactions are in the chain.
type GrantPositions = ((Height, u32), Vec<(Height, u32)>);

fn grant_positions(
    ledger: &Ledger,
    store: &Store,
    patient: &PatientId,
    grant: &TxHash,
) -> Result<GrantPositions, QueryOutcome> {
    let locate = |hash: &TxHash| held(store, hash).map_err(query_failure);
    let grant_at = locate(grant)?;
    let mut keys_at = Vec::new();
    for hash in ledger.key_transactions(patient) {
        keys_at.push(locate(hash)?);
    }
    Ok((grant_at, keys_at))
}

/// Where the committed transaction `hash` is; a typed refusal if it is before the base of a
/// store that joined from a snapshot.
fn held(store: &Store, hash: &TxHash) -> Result<(Height, u32), StoreError> {
    match store.locate(hash)? {
        Some(at) => Ok(at),
        None => Err(store.before_base()?.unwrap_or(StoreError::Corrupt {
            what: "a committed transaction missing from the store",
            key: hex::encode(hash.0),
        })),
    }
}

/// Where the grant a [`GrantRequest`] names and the patient's key transactions are, if the
/// grant stands and is `client`'s; else the outcome to answer.
pub(crate) fn locate_grant(
    ledger: &Ledger,
    store: &Store,
    client: &PublicKeyBytes,
    request: &GrantRequest,
) -> Result<GrantPositions, GrantOutcome> {
    standing_grant(ledger, client, &request.patient, &request.grant)
        .map_err(GrantOutcome::Unauthorized)?;
    grant_positions(ledger, store, &request.patient, &request.grant).map_err(|e| match e {
        QueryOutcome::Failed(why) => GrantOutcome::Failed(why),
        QueryOutcome::NotHeld(why) => GrantOutcome::NotHeld(why),
        _ => GrantOutcome::Failed(bmpls_net::proto::reason("the grant could not be located")),
    })
}

/// The proof of the grant at `grant_at` and of the key transactions at `keys_at`.
pub(crate) fn grant_evidence(
    store: &Store,
    grant_at: (Height, u32),
    keys_at: &[(Height, u32)],
) -> Result<GrantEvidence, StoreError> {
    let mut wanted = vec![grant_at];
    wanted.extend_from_slice(keys_at);
    let mut prover = Prover::new(store, &wanted, [])?;
    let grant = prover.proved(grant_at)?;
    let keys = keys_at
        .iter()
        .map(|&at| prover.proved(at))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(GrantEvidence {
        blocks: BoundedVec::new(prover.blocks).map_err(|_| bad("too many blocks"))?,
        grant,
        keys: BoundedVec::new(keys).map_err(|_| bad("too many key transactions"))?,
    })
}

/// What a [`FencesRequest`] may read, once its grant is checked: the carer the fences must
/// alert, where the patient's enrolment is, and where each standing fence of the patient is.
#[derive(Clone, Debug)]
pub(crate) struct FencePermit {
    carer: CarerId,
    enrolment_at: (Height, u32),
    fences_at: Vec<(Height, u32)>,
}

/// Checks a [`FencesRequest`] as a [`GrantRequest`] is checked (the grant is the patient's,
/// stands and names the signer as its carer) and locates the patient's standing fences.
pub(crate) fn locate_fences(
    ledger: &Ledger,
    store: &Store,
    client: &PublicKeyBytes,
    request: &FencesRequest,
) -> Result<FencePermit, FencesOutcome> {
    let (_, terms) = standing_grant(ledger, client, &request.patient, &request.grant)
        .map_err(FencesOutcome::Unauthorized)?;
    let located = |hash: &TxHash| {
        held(store, hash).map_err(|e| FencesOutcome::Failed(bmpls_net::proto::reason(e)))
    };
    let enrolment = ledger
        .key_transactions(&request.patient)
        .first()
        .ok_or_else(|| FencesOutcome::Failed(bmpls_net::proto::reason("no enrolment")))?;
    let enrolment_at = located(enrolment)?;
    let mut fences_at = ledger
        .standing_fences(&request.patient)
        .map(located)
        .collect::<Result<Vec<_>, _>>()?;
    fences_at.sort_unstable();
    Ok(FencePermit {
        carer: terms.carer,
        enrolment_at,
        fences_at,
    })
}

/// The proof of the standing fences a [`FencePermit`] located that alert its carer (at most
/// [`MAX_PROVED_FENCES`], in chain order), of the patient's enrolment, and the certified `tip`.
pub(crate) fn fence_evidence(
    store: &Store,
    permit: &FencePermit,
    tip: CertifiedHeader,
) -> Result<FenceEvidence, StoreError> {
    // Fences that alert another carer are not this carer's business (who else cares for the
    // patient is itself sensitive), so they are left out before the bound is applied.
    // Fences the ledger holds past `tip` (a commit the alerts have not seen yet) wait for the
    // next answer: the carer checks that every fence is at or below the tip.
    let mut mine = Vec::new();
    for &(height, index) in &permit.fences_at {
        if height > tip.header.height {
            continue;
        }
        if mine.len() > MAX_PROVED_FENCES {
            break;
        }
        let tx = store
            .transaction_at(height, index)?
            .ok_or(StoreError::Corrupt {
                what: "fence named by the ledger",
                key: format!("block {} tx {index}", height.0),
            })?;
        if matches!(&tx, Transaction::SetFence(f) if f.carer == permit.carer) {
            mine.push((height, index));
        }
    }
    let more = mine.len() > MAX_PROVED_FENCES;
    mine.truncate(MAX_PROVED_FENCES);
    let mut wanted = vec![permit.enrolment_at];
    wanted.extend(&mine);
    let mut prover = Prover::new(store, &wanted, [])?;
    let enrolment = prover.proved(permit.enrolment_at)?;
    let fences = mine
        .iter()
        .map(|&at| prover.proved(at))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(FenceEvidence {
        tip,
        blocks: BoundedVec::new(prover.blocks).map_err(|_| bad("too many blocks"))?,
        enrolment,
        fences: BoundedVec::new(fences).map_err(|_| bad("too many fences"))?,
        more,
    })
}

/// Runs an allowed query on the store and proves every transaction of the answer.
pub(crate) fn answer(store: &Store, query: &Query, permit: &Permit) -> Result<Answer, StoreError> {
    let limit = query.limit as usize;
    let in_window = |r: &StoredRecord| {
        (query.from_ms..=query.to_ms).contains(&r.record.fix_time_ms)
            && (permit.grant.data_from..=permit.grant.data_to).contains(&r.record.epoch)
    };
    let mut records: Vec<StoredRecord> = match &query.ask {
        // The newest fix of the window, not the last record submitted (issue 16, item 15).
        Ask::Last => store
            .newest(&query.patient, query.from_ms, query.to_ms)?
            .into_iter()
            .collect(),
        Ask::Track => store.track(&query.patient, query.from_ms, query.to_ms, limit + 1)?,
        Ask::Within(epochs) => {
            let ranges = epoch_ranges(epochs);
            store.within(
                &query.patient,
                query.level,
                &ranges,
                query.from_ms,
                query.to_ms,
                limit + 1,
            )?
        }
        Ask::WithinOre(area) => {
            let tokens = permit.tokens.as_ref().ok_or(StoreError::QueryTooLarge(
                "an ORE area allowed without its tokens",
            ))?;
            store.within_ore(
                &query.patient,
                area.coarse,
                &epoch_ranges(&area.prefilter),
                tokens,
                (query.from_ms, query.to_ms),
                limit + 1,
                Plan::Auto,
            )?
        }
    };
    records.retain(|r| in_window(r));
    let (records, excluded, more) = match &query.ask {
        Ask::Track => {
            let kept = span_prefix(&records, limit);
            let more = kept < records.len();
            records.truncate(kept);
            let excluded = exclusion_evidence(store, &query.patient, &records)?;
            // Each piece of evidence must be excluded for a reason the carer can check; one
            // that is not means the store's track missed a record of the window.
            let last = records.last().map(|r| (r.record.fix_time_ms, r.record.seq));
            if let Some(e) = excluded.iter().find(|e| {
                in_window(e) && !(more && Some((e.record.fix_time_ms, e.record.seq)) > last)
            }) {
                return Err(StoreError::Corrupt {
                    what: "a track that misses a record of its window",
                    key: format!("seq {}", e.record.seq.0),
                });
            }
            (records, excluded, more)
        }
        _ => {
            let more = records.len() > limit;
            records.truncate(limit);
            (records, Vec::new(), more)
        }
    };

    // Positions to prove: the grant, the key transactions, the records (which the prover
    // takes over, to cut each into its view without a copy).
    let records_at: Vec<(Height, u32)> = records.iter().map(|r| (r.height, r.index)).collect();
    let excluded_at: Vec<(Height, u32)> = excluded.iter().map(|r| (r.height, r.index)).collect();
    let mut wanted = vec![permit.grant_at];
    wanted.extend(&permit.keys_at);
    wanted.extend(&records_at);
    wanted.extend(&excluded_at);
    let mut prover = Prover::new(store, &wanted, records.into_iter().chain(excluded))?;
    let grant = prover.proved(permit.grant_at)?;
    let keys = permit
        .keys_at
        .iter()
        .map(|&at| prover.proved(at))
        .collect::<Result<Vec<_>, _>>()?;
    let records = records_at
        .into_iter()
        .map(|at| prover.proved_view(at, query.level))
        .collect::<Result<Vec<_>, _>>()?;
    // Evidence is cut past the last level: it shows a record's seq, fix time and epoch, which
    // is all the carer checks, and no ciphertext of a record outside the window asked.
    let excluded = excluded_at
        .into_iter()
        .map(|at| prover.proved_view(at, LevelIndex(u8::MAX)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Answer {
        at_height: permit.at_height,
        blocks: BoundedVec::new(prover.blocks).map_err(|_| bad("too many blocks"))?,
        grant,
        keys: BoundedVec::new(keys).map_err(|_| bad("too many key transactions"))?,
        records: BoundedVec::new(records).map_err(|_| bad("too many records"))?,
        excluded: BoundedVec::new(excluded).map_err(|_| bad("too much exclusion evidence"))?,
        more,
    })
}

/// How many of a track's first records (in (fix time, seq) order) fit in `limit` with their
/// exclusion evidence: records and evidence together are every record of the prefix's span of
/// sequence numbers, so the longest prefix whose span is at most `limit`. The first record
/// always fits, so a carer paging through a window always moves on.
fn span_prefix(records: &[StoredRecord], limit: usize) -> usize {
    let mut span: Option<(u64, u64)> = None;
    for (i, r) in records.iter().enumerate() {
        let seq = r.record.seq.0;
        let (low, high) = span.map_or((seq, seq), |(l, h)| (l.min(seq), h.max(seq)));
        if i > 0 && high - low >= limit as u64 {
            return i;
        }
        span = Some((low, high));
    }
    records.len()
}

/// The records whose sequence numbers lie between the lowest and highest of `records` but are
/// not among them: a track's exclusion evidence (see [`Answer::excluded`]).
fn exclusion_evidence(
    store: &Store,
    patient: &bmpls_types::PatientId,
    records: &[StoredRecord],
) -> Result<Vec<StoredRecord>, StoreError> {
    let answered: std::collections::BTreeSet<u64> =
        records.iter().map(|r| r.record.seq.0).collect();
    let (Some(&low), Some(&high)) = (answered.first(), answered.last()) else {
        return Ok(Vec::new());
    };
    let gaps = (low..=high)
        .filter(|s| !answered.contains(s))
        .map(bmpls_types::Seq);
    store.records_at(patient, gaps)
}

/// The audit entries about `request.patient`, proved. The caller checked that the patient's
/// custodian signed the request.
pub(crate) fn audit_answer(
    store: &Store,
    request: &AuditRequest,
) -> Result<AuditAnswer, StoreError> {
    if let Some(refusal) = store.before_base()? {
        if store
            .base()?
            .is_some_and(|b| request.from_height <= b.height)
        {
            return Err(refusal);
        }
    }
    let (positions, more) = store.audits(
        &request.patient,
        request.from_height,
        request.limit as usize,
    )?;
    let mut prover = Prover::new(store, &positions, [])?;
    let entries = positions
        .iter()
        .map(|&at| prover.proved(at))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(AuditAnswer {
        blocks: BoundedVec::new(prover.blocks).map_err(|_| bad("too many blocks"))?,
        entries: BoundedVec::new(entries).map_err(|_| bad("too many entries"))?,
        more,
    })
}

fn bad(what: &'static str) -> StoreError {
    StoreError::QueryTooLarge(what)
}

/// Proves transactions by position from each block's stored leaf hashes, header and
/// certificate, without reassembling blocks: records come from the query, other transactions
/// are read from the block skeleton alone.
struct Prover {
    blocks: Vec<CertifiedHeader>,
    proved: BTreeMap<(Height, u32), ProvedTx>,
}

impl Prover {
    fn new(
        store: &Store,
        wanted: &[(Height, u32)],
        records: impl IntoIterator<Item = StoredRecord>,
    ) -> Result<Self, StoreError> {
        let mut known: BTreeMap<(Height, u32), StoredRecord> = records
            .into_iter()
            .map(|r| ((r.height, r.index), r))
            .collect();
        let mut by_height: BTreeMap<Height, Vec<u32>> = BTreeMap::new();
        for &(height, index) in wanted {
            by_height.entry(height).or_default().push(index);
        }
        let mut blocks = Vec::with_capacity(by_height.len());
        let mut proved = BTreeMap::new();
        for (height, indexes) in by_height {
            let missing = || StoreError::Corrupt {
                what: "block named by an index",
                key: format!("block {}", height.0),
            };
            let (Some(header), Some(cert)) = (store.header(height)?, store.certificate(height)?)
            else {
                return Err(store.before_base()?.unwrap_or_else(missing));
            };
            let Some(tree) = store.merkle_tree(&header)? else {
                return Err(store.before_base()?.unwrap_or_else(missing));
            };
            let slot = blocks.len() as u32;
            for index in indexes {
                let tx = match known.remove(&(height, index)) {
                    Some(stored) => Transaction::Report(stored.record),
                    None => store.transaction_at(height, index)?.ok_or_else(missing)?,
                };
                let proof = tree.prove(index as usize).ok_or_else(missing)?;
                proved.insert(
                    (height, index),
                    ProvedTx {
                        tx,
                        block: slot,
                        proof,
                    },
                );
            }
            blocks.push(CertifiedHeader { header, cert });
        }
        Ok(Self { blocks, proved })
    }

    /// The proof of the transaction at `at`, handed out once (each position is asked for once).
    fn proved(&mut self, at: (Height, u32)) -> Result<ProvedTx, StoreError> {
        self.proved
            .remove(&at)
            .ok_or(StoreError::QueryTooLarge("an unproved position"))
    }

    /// The proof of the report at `at`, its record cut to what a carer at `level` may see.
    fn proved_view(
        &mut self,
        at: (Height, u32),
        level: LevelIndex,
    ) -> Result<ProvedRecord, StoreError> {
        let ProvedTx { tx, block, proof } = self.proved(at)?;
        let Transaction::Report(record) = tx else {
            return Err(StoreError::QueryTooLarge(
                "a record position that is not a report",
            ));
        };
        Ok(ProvedRecord {
            view: record.into_view(level),
            block,
            proof,
        })
    }
}

/// An area query's ranges as the store takes them.
fn epoch_ranges(epochs: &[bmpls_net::query::EpochRanges]) -> Vec<EpochRanges> {
    epochs
        .iter()
        .map(|e| EpochRanges {
            epoch: e.epoch,
            ranges: e.ranges.to_vec(),
        })
        .collect()
}

//! The replicated state every validator keeps beside the chain, and the rules a transaction must
//! pass to enter a block: who must have signed it, that the patient and carer it names are
//! enrolled, that a patient's reports come in sequence. The mempool admits, the proposer builds
//! and every validator checks blocks with the same code.

use std::collections::{BTreeMap, BTreeSet};

use borsh::{BorshDeserialize, BorshSerialize};

use bmpls_crypto::HashedBlock;
use bmpls_crypto::hash::tx_hash;
use bmpls_types::limits::{MAX_FIX_AHEAD_MS, MAX_LEVELS};
use bmpls_types::{
    Block, BlockHash, CarerId, Cell, ChainId, Epoch, FenceRanges, Height, LevelIndex, PatientId,
    PublicKeyBytes, Seq, Transaction, TxHash,
};

use crate::context::ValidatorSet;

mod checkpoint;
pub use checkpoint::CheckpointError;

/// What the ledger knows of an enrolled patient.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct PatientState {
    /// Key that signs the patient's reports.
    pub reporter_key: PublicKeyBytes,
    /// Key that signs grants, revocations, fences and key rotations.
    pub custodian_key: PublicKeyBytes,
    /// Precision levels per record.
    pub level_count: u8,
    /// How many of them, the finest, are under ORE.
    pub ore_levels: u8,
    /// Sequence number of the last committed report (0 before the first).
    pub last_seq: Seq,
    /// Length of a key epoch, ms.
    pub epoch_length_ms: u64,
}

/// What a committed grant allows (its key material stays in the transaction).
#[derive(Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct GrantTerms {
    /// The carer.
    pub carer: CarerId,
    /// Finest level granted.
    pub level: LevelIndex,
    /// First epoch of data.
    pub data_from: Epoch,
    /// Last epoch of data.
    pub data_to: Epoch,
    /// Valid from (ms since the Unix epoch)…
    pub valid_from_ms: u64,
    /// …until.
    pub valid_until_ms: u64,
    /// Whether it still stands (not revoked).
    pub standing: bool,
    /// The height of the block that committed it (alerts decided before it are not its).
    pub granted_at: Height,
    /// The height of the block that revoked it, if one did.
    pub revoked_at: Option<Height>,
}

/// Why a transaction cannot enter a block. The mempool returns these to the submitter.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TxRefusal {
    /// The enrolling key is not a validator's.
    #[error("the enrolling operator is not a validator of this chain")]
    NotAnOperator,
    /// The patient is already enrolled.
    #[error("patient {0} is already enrolled")]
    PatientExists(PatientId),
    /// The carer is already enrolled.
    #[error("carer {0} is already enrolled")]
    CarerExists(CarerId),
    /// The patient is not enrolled.
    #[error("patient {0} is not enrolled")]
    UnknownPatient(PatientId),
    /// The carer is not enrolled.
    #[error("carer {0} is not enrolled")]
    UnknownCarer(CarerId),
    /// A fence for a carer that holds no standing grant of the patient: it would alert nobody.
    #[error("carer {0} holds no standing grant of this patient: grant it access before a fence")]
    NoStandingGrant(CarerId),
    /// A report out of sequence: a replay, or a gap.
    #[error("report {got} of patient {patient} is out of sequence: next is {expected}")]
    Sequence {
        /// The patient.
        patient: PatientId,
        /// The sequence number the ledger expects.
        expected: u64,
        /// The one submitted.
        got: u64,
    },
    /// A report with the wrong number of level ciphertexts.
    #[error("a report of patient {patient} carries {got} levels, the patient has {expected}")]
    Levels {
        /// The patient.
        patient: PatientId,
        /// Levels enrolled.
        expected: u8,
        /// Levels carried.
        got: usize,
    },
    /// A field outside its allowed range (named).
    #[error("invalid transaction: {0}")]
    Invalid(&'static str),
    /// The revoked grant does not exist for this patient.
    #[error("no grant {0} of this patient to revoke")]
    UnknownGrant(TxHash),
    /// The grant was revoked already.
    #[error("grant {0} is already revoked")]
    AlreadyRevoked(TxHash),
    /// The removed fence does not exist for this patient.
    #[error("no fence {0} of this patient to remove")]
    UnknownFence(TxHash),
    /// The fence was removed already.
    #[error("fence {0} is already removed")]
    FenceRemoved(TxHash),
    /// The audit is not signed by a validator.
    #[error("the auditing node is not a validator of this chain")]
    NotANode,
    /// The signature does not verify under the key the ledger expects.
    #[error("bad signature")]
    BadSignature,
    /// The same transaction twice.
    #[error("transaction {0} is already in the block or the pool")]
    Duplicate(TxHash),
    /// A key it registers (named) is not a curve point or is of small order: under the ZIP 215
    /// verification rules anyone could sign anything under it.
    #[error("the {0} key is malformed or of small order")]
    WeakKey(&'static str),
    /// A report whose fix time lies more than [`MAX_FIX_AHEAD_MS`] ahead of the block's time
    /// (or the validator's clock, in the pool): a time in the wrong unit.
    #[error(
        "report {seq} has fix time {fix_time_ms} ms since 1970, after {latest_ms}, the latest \
         allowed (fix times are Unix milliseconds, at most a day ahead of the clock)"
    )]
    FixTimeAhead {
        /// The report's sequence number.
        seq: u64,
        /// Its fix time.
        fix_time_ms: u64,
        /// The latest fix time allowed.
        latest_ms: u64,
    },
}

/// Refuses a report whose fix time lies more than [`MAX_FIX_AHEAD_MS`] after `clock_ms` (a
/// block's time, or a validator's clock); other transactions pass.
pub fn check_fix_time(tx: &Transaction, clock_ms: u64) -> Result<(), TxRefusal> {
    let Transaction::Report(record) = tx else {
        return Ok(());
    };
    let latest_ms = clock_ms.saturating_add(MAX_FIX_AHEAD_MS);
    if record.fix_time_ms > latest_ms {
        return Err(TxRefusal::FixTimeAhead {
            seq: record.seq.0,
            fix_time_ms: record.fix_time_ms,
            latest_ms,
        });
    }
    Ok(())
}

/// Refuses a key that may not be registered (see `bmpls_crypto::sign::check_public_key`).
fn registrable(key: &PublicKeyBytes, what: &'static str) -> Result<(), TxRefusal> {
    bmpls_crypto::sign::check_public_key(key).map_err(|_| TxRefusal::WeakKey(what))
}

/// Why a proposed block is invalid.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BlockRefusal {
    /// The header does not follow the ledger's tip.
    #[error("the header does not extend the tip: {0}")]
    Header(&'static str),
    /// The transactions do not hash to the header's root or count.
    #[error("the transactions do not match the header's root")]
    TxRoot,
    /// Transaction `index` breaks a rule.
    #[error("transaction {index}: {refusal}")]
    Tx {
        /// Position in the block.
        index: usize,
        /// The rule broken.
        refusal: TxRefusal,
    },
}

/// The replicated state after the last committed block.
#[derive(Clone, Debug)]
pub struct Ledger {
    chain_id: ChainId,
    validators: ValidatorSet,
    height: Height,
    tip: BlockHash,
    tip_time_ms: u64,
    /// Transactions committed up to the tip, every kind: with the height, what decides where
    /// checkpoints fall, alike on every validator.
    txs: u64,
    patients: BTreeMap<PatientId, PatientState>,
    carers: BTreeMap<CarerId, PublicKeyBytes>,
    /// Every grant ever committed, and whether it still stands: a revoked grant stays known so
    /// that replaying its transaction cannot bring it back.
    grants: BTreeMap<(PatientId, TxHash), GrantTerms>,
    /// Each patient's enrolment and key rotations, in chain order.
    key_txs: BTreeMap<PatientId, Vec<TxHash>>,
    /// Every fence ever set, and whether it still stands: a removed fence stays known so that
    /// replaying its transaction cannot bring it back.
    fences: BTreeMap<(PatientId, TxHash), bool>,
    /// Audits committed, by the height their answer was computed at, for the last
    /// [`AUDIT_WINDOW_HEIGHTS`] heights: an audit carries no sequence number, so without this a
    /// copy gossiped back after its commit (a late link, a restarted peer) entered a later block
    /// too (the nemesis found audits committed twice, seed 2).
    audits: BTreeMap<Height, BTreeSet<TxHash>>,
}

/// How many heights an audit stays admissible after the height it was answered at; older ones
/// are refused, so the set of committed audits kept for refusing replays is bounded. At a block
/// every 20 ms that is over five minutes; a validator cut off longer loses its unsent audits,
/// as one that crashes loses its mempool.
pub const AUDIT_WINDOW_HEIGHTS: u64 = 16_384;

impl Ledger {
    /// The state before the first block.
    pub fn genesis(validators: ValidatorSet, genesis_time_ms: u64) -> Self {
        Self {
            chain_id: validators.crypto().chain_id().clone(),
            validators,
            height: Height(0),
            tip: BlockHash::ZERO,
            tip_time_ms: genesis_time_ms,
            txs: 0,
            patients: BTreeMap::new(),
            carers: BTreeMap::new(),
            grants: BTreeMap::new(),
            key_txs: BTreeMap::new(),
            fences: BTreeMap::new(),
            audits: BTreeMap::new(),
        }
    }

    /// The chain.
    pub fn chain_id(&self) -> &ChainId {
        &self.chain_id
    }

    /// The validator set.
    pub fn validators(&self) -> &ValidatorSet {
        &self.validators
    }

    /// Each enrolled patient's last committed sequence number (what a store started from a
    /// snapshot continues from).
    pub fn last_seqs(&self) -> impl Iterator<Item = (PatientId, Seq)> + '_ {
        self.patients
            .iter()
            .map(|(id, state)| (*id, state.last_seq))
    }

    /// Transactions committed up to the last applied block, every kind.
    pub fn committed_txs(&self) -> u64 {
        self.txs
    }

    /// Height of the last applied block (0 before the first).
    pub fn height(&self) -> Height {
        self.height
    }

    /// Hash of the last applied block's header.
    pub fn tip(&self) -> BlockHash {
        self.tip
    }

    /// Time of the last applied block.
    pub fn tip_time_ms(&self) -> u64 {
        self.tip_time_ms
    }

    /// An enrolled patient.
    pub fn patient(&self, patient: &PatientId) -> Option<&PatientState> {
        self.patients.get(patient)
    }

    /// The identity key of an enrolled carer (which signs its queries).
    pub fn carer_key(&self, carer: &CarerId) -> Option<PublicKeyBytes> {
        self.carers.get(carer).copied()
    }

    /// The committed grant `grant` of `patient`, revoked or not.
    pub fn grant(&self, patient: &PatientId, grant: &TxHash) -> Option<&GrantTerms> {
        self.grants.get(&(*patient, *grant))
    }

    /// Whether `carer` may receive an alert about `patient` from a fence at `level`, decided at
    /// `height` by a record of `epoch`: it holds a standing grant of the patient, valid at
    /// `now_ms`, committed at or before `height`, at that level or a finer one, whose data window
    /// holds the epoch. A carer downgraded to a coarser level, outside its window, or granted
    /// only after the alert was decided, gets no alert it could not get by a query.
    pub fn carer_may_see_alert(
        &self,
        patient: &PatientId,
        carer: &CarerId,
        (level, epoch, height): (LevelIndex, Epoch, Height),
        now_ms: u64,
    ) -> bool {
        let first = (*patient, TxHash([0; 32]));
        let last = (*patient, TxHash([0xff; 32]));
        self.grants.range(first..=last).any(|(_, g)| {
            g.standing
                && g.carer == *carer
                && g.granted_at <= height
                && (g.valid_from_ms..g.valid_until_ms).contains(&now_ms)
                && g.level <= level
                && (g.data_from..=g.data_to).contains(&epoch)
        })
    }

    /// Whether `carer` was entitled, when it was decided, to an alert about `patient` from a
    /// fence at `level`, decided at `height` (a block of time `time_ms`) by a record of `epoch`:
    /// a grant of the patient committed at or before `height`, not revoked by then, valid at
    /// `time_ms`, at that level or finer, whose data window holds the epoch. Unlike
    /// [`Ledger::carer_may_see_alert`] it does not depend on the ledger's height or the clock,
    /// so validators agree on it whatever they have seen since; it decides which patients a
    /// watch answer names as held back, so that a carer never learns from that note of an alert
    /// it was never entitled to.
    pub fn carer_was_entitled_to_alert(
        &self,
        patient: &PatientId,
        carer: &CarerId,
        (level, epoch, height): (LevelIndex, Epoch, Height),
        time_ms: u64,
    ) -> bool {
        let first = (*patient, TxHash([0; 32]));
        let last = (*patient, TxHash([0xff; 32]));
        self.grants.range(first..=last).any(|(_, g)| {
            g.carer == *carer
                && g.granted_at <= height
                && g.revoked_at.is_none_or(|r| r > height)
                && (g.valid_from_ms..g.valid_until_ms).contains(&time_ms)
                && g.level <= level
                && (g.data_from..=g.data_to).contains(&epoch)
        })
    }

    /// Every committed grant, revoked or not, in (patient, grant hash) order.
    pub fn grants(&self) -> impl Iterator<Item = (&PatientId, &TxHash, &GrantTerms)> + '_ {
        self.grants.iter().map(|((p, h), g)| (p, h, g))
    }

    /// Whether `carer` holds a standing grant of `patient` that is valid at `now_ms`.
    pub fn carer_may_see(&self, patient: &PatientId, carer: &CarerId, now_ms: u64) -> bool {
        let first = (*patient, TxHash([0; 32]));
        let last = (*patient, TxHash([0xff; 32]));
        self.grants.range(first..=last).any(|(_, g)| {
            g.standing && g.carer == *carer && (g.valid_from_ms..g.valid_until_ms).contains(&now_ms)
        })
    }

    /// Every key that signs requests or transactions here: the validators' (operators'), the
    /// enrolled patients' reporter keys (current ones) and custodian keys, and the enrolled
    /// carers' identity keys. A node's request guard limits these as known clients.
    pub fn client_keys(&self) -> impl Iterator<Item = PublicKeyBytes> + '_ {
        let validators = self
            .validators
            .crypto()
            .validators()
            .iter()
            .map(|v| v.id.public_key());
        let patients = self
            .patients
            .values()
            .flat_map(|p| [p.reporter_key, p.custodian_key]);
        validators
            .chain(patients)
            .chain(self.carers.values().copied())
    }

    /// Hashes of the patient's enrolment and key rotations, in chain order.
    pub fn key_transactions(&self, patient: &PatientId) -> &[TxHash] {
        self.key_txs.get(patient).map_or(&[], Vec::as_slice)
    }

    /// Hashes of the patient's standing fences (committed `SetFence`s not removed), in hash
    /// order.
    pub fn standing_fences(&self, patient: &PatientId) -> impl Iterator<Item = &TxHash> + '_ {
        let patient = *patient;
        self.fences
            .range((patient, TxHash([0; 32]))..)
            .take_while(move |((p, _), _)| *p == patient)
            .filter(|(_, standing)| **standing)
            .map(|((_, hash), _)| hash)
    }

    /// Checks `block` as the next block: header, root and every transaction in order, with the
    /// signatures checked as one batch.
    pub fn check_block(
        &self,
        block: &Block,
        max_future_ms: u64,
        now_ms: u64,
    ) -> Result<(), BlockRefusal> {
        let block = HashedBlock::new(block.clone());
        self.check_block_known(&block, max_future_ms, now_ms, |_| None)
    }

    /// [`Ledger::check_block`], skipping the signatures `known` vouches for: it names, for a
    /// transaction hash, a key that transaction's signature was already verified under (the
    /// mempool's); the check is skipped only when that is the key these rules require.
    pub fn check_block_known(
        &self,
        block: &HashedBlock,
        max_future_ms: u64,
        now_ms: u64,
        known: impl Fn(&TxHash) -> Option<PublicKeyBytes>,
    ) -> Result<(), BlockRefusal> {
        let header = &block.header;
        if header.chain_id != self.chain_id {
            return Err(BlockRefusal::Header("chain id"));
        }
        if header.height.0 != self.height.0 + 1 {
            return Err(BlockRefusal::Header("height"));
        }
        if header.prev_hash != self.tip {
            return Err(BlockRefusal::Header("previous hash"));
        }
        if header.time_ms <= self.tip_time_ms {
            return Err(BlockRefusal::Header("time does not advance"));
        }
        if header.time_ms > now_ms.saturating_add(max_future_ms) {
            return Err(BlockRefusal::Header(
                "time too far ahead of this validator's clock",
            ));
        }
        if !self.validators.contains(&header.proposer) {
            return Err(BlockRefusal::Header("proposer is not a validator"));
        }
        if header.tx_count as usize != block.txs.len() || block.tx_root() != header.tx_root {
            return Err(BlockRefusal::TxRoot);
        }
        let hashes = block.hashes();
        let mut overlay = Overlay::new(self);
        let mut signers = Vec::with_capacity(block.txs.len());
        for (index, (tx, hashed)) in block.txs.iter().zip(hashes).enumerate() {
            let signer = check_fix_time(tx, header.time_ms)
                .and_then(|()| overlay.admit_as(tx, hashed.hash))
                .map_err(|refusal| BlockRefusal::Tx { index, refusal })?;
            signers.push(signer);
        }
        let mut unknown = Vec::new();
        let mut items = Vec::new();
        for (index, ((tx, hashed), signer)) in block.txs.iter().zip(hashes).zip(signers).enumerate()
        {
            if known(&hashed.hash) != Some(signer) {
                unknown.push(index);
                items.push((
                    signer,
                    hashed.signing_bytes(tx, self.chain_id()),
                    *tx.signature(),
                ));
            }
        }
        if items.is_empty() || bmpls_crypto::sign::verify_batch(&items).is_ok() {
            return Ok(());
        }
        // Name the first bad one.
        let bad = unknown
            .iter()
            .zip(&items)
            .find(|(_, (key, bytes, sig))| {
                bmpls_crypto::sign::verify_bytes(key, bytes, sig, "transaction").is_err()
            })
            .map_or(0, |(index, _)| *index);
        Err(BlockRefusal::Tx {
            index: bad,
            refusal: TxRefusal::BadSignature,
        })
    }

    /// Applies a committed block (already checked, or carried by a verified certificate).
    pub fn apply(&mut self, block: &HashedBlock, hash: BlockHash) {
        let mut overlay = Overlay::new(self);
        for (tx, hashed) in block.txs.iter().zip(block.hashes()) {
            // A committed block passed `check_block` on a quorum; a transaction it holds that
            // this ledger would refuse can only come from a bug, and is skipped alike everywhere.
            let _ = overlay.admit_as(tx, hashed.hash);
        }
        let Overlay { mut changes, .. } = overlay;
        for terms in changes.grants.values_mut() {
            terms.granted_at = block.header.height;
        }
        changes.apply_to(self, block.header.height);
        self.height = block.header.height;
        // Audits answered at or below this height are refused from now on (too old): they
        // need not be remembered.
        let oldest = Height(self.height.0.saturating_sub(AUDIT_WINDOW_HEIGHTS) + 1);
        self.audits = self.audits.split_off(&oldest);
        self.tip = hash;
        self.tip_time_ms = block.header.time_ms;
        self.txs += block.txs.len() as u64;
    }
}

/// Changes a block makes, kept apart from the ledger until the block is applied.
#[derive(Default)]
struct Changes {
    patients: BTreeMap<PatientId, PatientState>,
    carers: BTreeMap<CarerId, PublicKeyBytes>,
    grants: BTreeMap<(PatientId, TxHash), GrantTerms>,
    revoked: BTreeSet<(PatientId, TxHash)>,
    fences: BTreeSet<(PatientId, TxHash)>,
    removed_fences: BTreeSet<(PatientId, TxHash)>,
    txs: BTreeSet<TxHash>,
    key_txs: Vec<(PatientId, TxHash)>,
    audits: Vec<(Height, TxHash)>,
}

impl Changes {
    fn apply_to(self, ledger: &mut Ledger, height: Height) {
        ledger.patients.extend(self.patients);
        ledger.carers.extend(self.carers);
        ledger.grants.extend(self.grants);
        for grant in self.revoked {
            if let Some(terms) = ledger.grants.get_mut(&grant) {
                terms.standing = false;
                terms.revoked_at = Some(height);
            }
        }
        for (patient, tx) in self.key_txs {
            ledger.key_txs.entry(patient).or_default().push(tx);
        }
        ledger
            .fences
            .extend(self.fences.into_iter().map(|f| (f, true)));
        for fence in self.removed_fences {
            ledger.fences.insert(fence, false);
        }
        for (at, audit) in self.audits {
            ledger.audits.entry(at).or_default().insert(audit);
        }
    }
}

/// The ledger seen through a block's pending changes: each transaction is checked against the
/// state its predecessors in the block leave.
pub(crate) struct Overlay<'a> {
    ledger: &'a Ledger,
    changes: Changes,
}

impl<'a> Overlay<'a> {
    pub(crate) fn new(ledger: &'a Ledger) -> Self {
        Self {
            ledger,
            changes: Changes::default(),
        }
    }

    fn patient(&self, id: &PatientId) -> Option<&PatientState> {
        self.changes
            .patients
            .get(id)
            .or_else(|| self.ledger.patients.get(id))
    }

    fn carer_known(&self, id: &CarerId) -> bool {
        self.changes.carers.contains_key(id) || self.ledger.carers.contains_key(id)
    }

    /// Whether `carer` holds a grant of `patient` committed or earlier in this block and not
    /// revoked.
    fn holds_standing_grant(&self, patient: &PatientId, carer: &CarerId) -> bool {
        let range = (*patient, TxHash([0; 32]))..=(*patient, TxHash([0xff; 32]));
        self.ledger
            .grants
            .range(range.clone())
            .chain(self.changes.grants.range(range))
            .any(|(key, g)| g.carer == *carer && g.standing && !self.changes.revoked.contains(key))
    }

    fn enrolled(&self, id: &PatientId) -> Result<PatientState, TxRefusal> {
        self.patient(id)
            .cloned()
            .ok_or(TxRefusal::UnknownPatient(*id))
    }

    /// Checks `tx` against the state so far and, if it passes, records its effect. Returns the
    /// key its signature must verify under (checked by the caller, in a batch).
    pub(crate) fn admit(&mut self, tx: &Transaction) -> Result<PublicKeyBytes, TxRefusal> {
        self.admit_as(tx, tx_hash(tx))
    }

    /// [`Overlay::admit`] of `tx`, whose hash is `hash` (computed once by the caller).
    pub(crate) fn admit_as(
        &mut self,
        tx: &Transaction,
        hash: TxHash,
    ) -> Result<PublicKeyBytes, TxRefusal> {
        if !self.changes.txs.insert(hash) {
            return Err(TxRefusal::Duplicate(hash));
        }
        let validators = &self.ledger.validators;
        match tx {
            Transaction::EnrolPatient(t) => {
                if !validators.contains(&bmpls_types::ValidatorId(t.operator.0)) {
                    return Err(TxRefusal::NotAnOperator);
                }
                if self.patient(&t.patient).is_some() {
                    return Err(TxRefusal::PatientExists(t.patient));
                }
                if t.level_count == 0 || usize::from(t.level_count) > MAX_LEVELS {
                    return Err(TxRefusal::Invalid("level count"));
                }
                if t.ore_levels > t.level_count {
                    return Err(TxRefusal::Invalid("more ORE levels than levels"));
                }
                if t.epoch_length_ms == 0 {
                    return Err(TxRefusal::Invalid("epoch length"));
                }
                registrable(&t.reporter_key, "reporter")?;
                registrable(&t.custodian_key, "custodian")?;
                self.changes.patients.insert(
                    t.patient,
                    PatientState {
                        reporter_key: t.reporter_key,
                        custodian_key: t.custodian_key,
                        level_count: t.level_count,
                        ore_levels: t.ore_levels,
                        last_seq: Seq(0),
                        epoch_length_ms: t.epoch_length_ms,
                    },
                );
                self.changes.key_txs.push((t.patient, hash));
                Ok(t.operator)
            }
            Transaction::EnrolCarer(t) => {
                if !validators.contains(&bmpls_types::ValidatorId(t.operator.0)) {
                    return Err(TxRefusal::NotAnOperator);
                }
                if self.carer_known(&t.carer) {
                    return Err(TxRefusal::CarerExists(t.carer));
                }
                registrable(&t.identity_key, "carer identity")?;
                self.changes.carers.insert(t.carer, t.identity_key);
                Ok(t.operator)
            }
            Transaction::RotateReporterKey(t) => {
                let mut state = self.enrolled(&t.patient)?;
                if t.from_seq.0 != state.last_seq.0 + 1 {
                    return Err(TxRefusal::Invalid(
                        "rotation must take effect at the next report",
                    ));
                }
                registrable(&t.new_reporter_key, "new reporter")?;
                let signer = state.custodian_key;
                state.reporter_key = t.new_reporter_key;
                self.changes.patients.insert(t.patient, state);
                self.changes.key_txs.push((t.patient, hash));
                Ok(signer)
            }
            Transaction::Report(record) => {
                let mut state = self.enrolled(&record.patient)?;
                let expected = state.last_seq.0 + 1;
                if record.seq.0 != expected {
                    return Err(TxRefusal::Sequence {
                        patient: record.patient,
                        expected,
                        got: record.seq.0,
                    });
                }
                record_shape(record, &state)?;
                state.last_seq = record.seq;
                let signer = state.reporter_key;
                self.changes.patients.insert(record.patient, state);
                Ok(signer)
            }
            Transaction::Grant(t) => {
                let state = self.enrolled(&t.patient)?;
                if !self.carer_known(&t.carer) {
                    return Err(TxRefusal::UnknownCarer(t.carer));
                }
                if t.level.0 >= state.level_count {
                    return Err(TxRefusal::Invalid("granted level"));
                }
                if t.data_from > t.data_to {
                    return Err(TxRefusal::Invalid("data window"));
                }
                if t.valid_from_ms >= t.valid_until_ms {
                    return Err(TxRefusal::Invalid("validity period"));
                }
                // A grant's hash covers its whole body, so a replay has the same hash.
                if self.ledger.grants.contains_key(&(t.patient, hash)) {
                    return Err(TxRefusal::Duplicate(hash));
                }
                self.changes.grants.insert(
                    (t.patient, hash),
                    GrantTerms {
                        carer: t.carer,
                        level: t.level,
                        data_from: t.data_from,
                        data_to: t.data_to,
                        valid_from_ms: t.valid_from_ms,
                        valid_until_ms: t.valid_until_ms,
                        standing: true,
                        // Set when the block is applied; checks within a block need none.
                        granted_at: Height(0),
                        revoked_at: None,
                    },
                );
                Ok(state.custodian_key)
            }
            Transaction::Revoke(t) => {
                let state = self.enrolled(&t.patient)?;
                let key = (t.patient, t.grant);
                let exists =
                    self.ledger.grants.contains_key(&key) || self.changes.grants.contains_key(&key);
                if !exists {
                    return Err(TxRefusal::UnknownGrant(t.grant));
                }
                let standing = (self.ledger.grants.get(&key).is_some_and(|g| g.standing)
                    || self.changes.grants.contains_key(&key))
                    && !self.changes.revoked.contains(&key);
                if !standing {
                    return Err(TxRefusal::AlreadyRevoked(t.grant));
                }
                self.changes.revoked.insert(key);
                Ok(state.custodian_key)
            }
            Transaction::SetFence(t) => {
                let state = self.enrolled(&t.patient)?;
                if !self.carer_known(&t.carer) {
                    return Err(TxRefusal::UnknownCarer(t.carer));
                }
                if t.level.0 >= state.level_count {
                    return Err(TxRefusal::Invalid("fence level"));
                }
                // Alerts reach a carer only under a standing grant; a fence without one
                // would be accepted and alert nobody. Standing means committed (or earlier
                // in this block) and not revoked; the validity period is the query's and the
                // watch's to check, at their time (this check has no clock).
                if !self.holds_standing_grant(&t.patient, &t.carer) {
                    return Err(TxRefusal::NoStandingGrant(t.carer));
                }
                let epochs_increase = t.epochs.windows(2).all(|w| w[0].epoch < w[1].epoch);
                let ore = t.level.0 < state.ore_levels;
                // OPE bounds can be checked sorted; ORE tokens compare with nothing but right
                // ciphertexts, so only their form and shared domain are checked.
                let ranges_ok = t.epochs.iter().all(|e| match &e.ranges {
                    FenceRanges::Ope(r) => {
                        !ore && r.iter().all(|(lo, hi)| lo <= hi)
                            && r.windows(2).all(|w| w[0].1 < w[1].0)
                    }
                    FenceRanges::Ore(r) => {
                        ore && bmpls_ore_compare::TokenRanges::parse(r.iter()).is_ok()
                    }
                });
                if t.epochs.is_empty() || !epochs_increase || !ranges_ok {
                    return Err(TxRefusal::Invalid(
                        "fence epochs must increase and ranges be sorted, disjoint and under \
                         the scheme of the fence's level",
                    ));
                }
                // A fence's hash covers its whole body, so a replay has the same hash.
                if self.ledger.fences.contains_key(&(t.patient, hash)) {
                    return Err(TxRefusal::Duplicate(hash));
                }
                self.changes.fences.insert((t.patient, hash));
                Ok(state.custodian_key)
            }
            Transaction::RemoveFence(t) => {
                let state = self.enrolled(&t.patient)?;
                let key = (t.patient, t.fence);
                let standing = match self.ledger.fences.get(&key) {
                    Some(standing) => *standing,
                    None if self.changes.fences.contains(&key) => true,
                    None => return Err(TxRefusal::UnknownFence(t.fence)),
                };
                if !standing || self.changes.removed_fences.contains(&key) {
                    return Err(TxRefusal::FenceRemoved(t.fence));
                }
                self.changes.removed_fences.insert(key);
                Ok(state.custodian_key)
            }
            Transaction::Audit(t) => {
                if !validators.contains(&t.node) {
                    return Err(TxRefusal::NotANode);
                }
                let height = self.ledger.height.0;
                if t.at_height.0 > height {
                    return Err(TxRefusal::Invalid(
                        "an audit of an answer at a height not committed",
                    ));
                }
                if height - t.at_height.0 >= AUDIT_WINDOW_HEIGHTS {
                    return Err(TxRefusal::Invalid(
                        "an audit too old to be checked for replay",
                    ));
                }
                // Its hash covers its whole body (node, query, height), so a replay has the
                // same hash; within a block, `changes.txs` caught it above.
                if self
                    .ledger
                    .audits
                    .get(&t.at_height)
                    .is_some_and(|committed| committed.contains(&hash))
                {
                    return Err(TxRefusal::Duplicate(hash));
                }
                self.changes.audits.push((t.at_height, hash));
                Ok(t.node.public_key())
            }
        }
    }
}

/// Checks that `record` carries the levels its patient's enrolment names, each under its
/// scheme: the finest `ore_levels` levels ORE, the rest OPE, so that a reporter cannot store a
/// comparable ciphertext where the enrolment promised none. The mempool and the block check
/// both apply it.
pub(crate) fn record_shape(
    record: &bmpls_types::LocationRecord,
    state: &PatientState,
) -> Result<(), TxRefusal> {
    if record.cells.len() != usize::from(state.level_count) {
        return Err(TxRefusal::Levels {
            patient: record.patient,
            expected: state.level_count,
            got: record.cells.len(),
        });
    }
    let schemes_ok = record.cells.iter().enumerate().all(|(level, cell)| {
        matches!(cell, Cell::Ore(_)) == (level < usize::from(state.ore_levels))
    });
    if !schemes_ok {
        return Err(TxRefusal::Invalid(
            "a level's ciphertext is not under the scheme the patient's enrolment names",
        ));
    }
    Ok(())
}

//! Carers' queries and the proved answers nodes give, on the wire.
//!
//! A carer names the grant it relies on; the node checks the envelope's key against the carer
//! the grant names, and the query against the grant (patient, level, data window, validity,
//! not revoked). An answer carries every record with its Merkle inclusion proof and, once per
//! block, the block header with its commit certificate, plus the patient's enrolment and key
//! rotations proved the same way, so that the carer can check each record's signature under
//! the reporter key the chain says was in force. Records travel as views: the level asked and
//! coarser ones, a hash for the finer ones (the sealed fix only at level 0). The node is not
//! trusted: the client verifies
//! all of it (`bmpls_client::carer`).

use borsh::{BorshDeserialize, BorshSerialize};

use bmpls_crypto::merkle::InclusionProof;
use bmpls_types::{
    BlockHeader, BoundedVec, CommitCertificate, Epoch, Height, LevelIndex, OpeCiphertext, OreLeft,
    PatientId, RecordView, Transaction, TxHash,
};

use crate::proto::MAX_REASON_BYTES;

/// Queries in one request (an operator's caseload).
pub const MAX_QUERY_BATCH: usize = 64;
/// Records in one answer; a query asks for at most this many.
pub const MAX_ANSWER_RECORDS: usize = 2_000;
/// Key epochs in one area query.
pub const MAX_QUERY_EPOCHS: usize = 400;
/// Encrypted ranges in one epoch of an area query.
pub const MAX_EPOCH_RANGES: usize = 4_096;
/// Token ranges in one epoch of an ORE area query (two left tokens of ~130 bytes each per
/// range: an area this finely cut is asked at a coarser level or split).
pub const MAX_EPOCH_TOKEN_RANGES: usize = 512;
/// Enrolment and key rotations of one patient carried by an answer.
pub const MAX_KEY_TXS: usize = 256;

/// What a carer asks about one patient.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Query {
    /// The patient.
    pub patient: PatientId,
    /// Hash of the committed `Grant` the carer relies on.
    pub grant: TxHash,
    /// The level asked at: the granted one or a coarser one.
    pub level: LevelIndex,
    /// Window start, ms since the Unix epoch (fix time).
    pub from_ms: u64,
    /// Window end, inclusive.
    pub to_ms: u64,
    /// Which records.
    pub ask: Ask,
    /// At most this many records, a track's exclusion evidence included (1 to
    /// [`MAX_ANSWER_RECORDS`]).
    pub limit: u32,
}

/// Which records a query wants.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum Ask {
    /// The newest fix in the window: the greatest (fix time, seq), not the last submitted.
    Last,
    /// Every record in the window, in (fix time, sequence number) order, with the exclusion
    /// evidence ([`Answer::excluded`]) that lets the carer see that none is missing even when
    /// fix times do not follow sequence numbers.
    Track,
    /// The records in the window whose ciphertext at the query's level (an OPE level) lies in
    /// one of the ranges of its epoch (an area, covered and encrypted by the carer).
    Within(BoundedVec<EpochRanges, MAX_QUERY_EPOCHS>),
    /// The records in the window whose right ciphertext at the query's level (an ORE level)
    /// lies in one of the token ranges of its epoch. The node finds candidates through the
    /// `prefilter` ranges of a coarser OPE level covering the same area (so the store's
    /// indexes and zone maps serve), then compares each candidate with the tokens.
    WithinOre(Box<OreArea>),
}

/// An area at an ORE level: a coarse OPE pre-filter and the fine level's left tokens.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct OreArea {
    /// The OPE level of `prefilter`: coarser than the query's level.
    pub coarse: LevelIndex,
    /// The area covered at `coarse`, encrypted under each epoch's key of that level.
    pub prefilter: BoundedVec<EpochRanges, MAX_QUERY_EPOCHS>,
    /// The area covered at the query's level, as left tokens of each run's first and last cell.
    pub tokens: BoundedVec<EpochTokens, MAX_QUERY_EPOCHS>,
}

/// Inclusive ranges `(low, high)` of left tokens under one epoch's key.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct EpochTokens {
    /// The epoch whose key made the tokens.
    pub epoch: Epoch,
    /// The ranges, sorted and disjoint.
    pub ranges: BoundedVec<(OreLeft, OreLeft), MAX_EPOCH_TOKEN_RANGES>,
}

/// Inclusive ciphertext ranges `(low, high)` under one epoch's key.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct EpochRanges {
    /// The epoch whose key encrypted the bounds.
    pub epoch: Epoch,
    /// The ranges.
    pub ranges: BoundedVec<(OpeCiphertext, OpeCiphertext), MAX_EPOCH_RANGES>,
}

/// A block header and its commit certificate.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct CertifiedHeader {
    /// The header.
    pub header: BlockHeader,
    /// Its commit certificate.
    pub cert: CommitCertificate,
}

/// A transaction with its inclusion proof in one of the answer's blocks.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct ProvedTx {
    /// The transaction.
    pub tx: Transaction,
    /// Index into [`Answer::blocks`] of the block that holds it.
    pub block: u32,
    /// Its inclusion proof in that block.
    pub proof: InclusionProof,
}

/// A record, cut to the level asked, with the inclusion proof of its report in one of the
/// answer's blocks.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct ProvedRecord {
    /// The record as a carer at the query's level may see it.
    pub view: RecordView,
    /// Index into [`Answer::blocks`] of the block that holds it.
    pub block: u32,
    /// The inclusion proof of its report in that block.
    pub proof: InclusionProof,
}

/// A node's answer to one query.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Answer {
    /// The chain height the answer was computed at.
    pub at_height: Height,
    /// The blocks the proved transactions are in, each once.
    pub blocks: BoundedVec<CertifiedHeader, { MAX_ANSWER_RECORDS + MAX_KEY_TXS + 1 }>,
    /// The grant relied on.
    pub grant: ProvedTx,
    /// The patient's enrolment, then each key rotation, in chain order.
    pub keys: BoundedVec<ProvedTx, MAX_KEY_TXS>,
    /// The records, in (fix time, sequence number) order, each cut to the query's level.
    pub records: BoundedVec<ProvedRecord, MAX_ANSWER_RECORDS>,
    /// A track's exclusion evidence: every record whose sequence number lies between two of
    /// [`Answer::records`] but that is not one of them, because its fix time is outside the
    /// window (reports flushed out of order), its epoch is outside the grant's data window, or
    /// the limit cut the answer before it. Proved and signed like the records, but cut past
    /// the last level: no ciphertext at all, only the sequence number, fix time and epoch, so
    /// the carer checks that the sequence numbers of both together are consecutive and learns
    /// nothing of where those records are. Records and evidence together count against the
    /// query's limit. Empty for other asks.
    pub excluded: BoundedVec<ProvedRecord, MAX_ANSWER_RECORDS>,
    /// Whether the limit cut the answer short.
    pub more: bool,
}

/// Why a node refused a query.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, thiserror::Error)]
pub enum Unauthorized {
    /// No committed grant has this hash for this patient.
    #[error("no such grant for this patient")]
    UnknownGrant,
    /// The grant was revoked.
    #[error("the grant was revoked")]
    Revoked,
    /// The grant is for another carer than the request's signer.
    #[error("the grant is not the requester's")]
    NotTheGrantee,
    /// Not yet valid, or no longer.
    #[error(
        "the grant is valid from {valid_from_ms} until {valid_until_ms} ms, not now ({now_ms})"
    )]
    OutsideValidity {
        /// Start of validity.
        valid_from_ms: u64,
        /// End of validity.
        valid_until_ms: u64,
        /// The node's clock.
        now_ms: u64,
    },
    /// A finer level than granted.
    #[error("level {asked} is finer than the granted level {granted}")]
    LevelTooFine {
        /// The granted level.
        granted: u8,
        /// The level asked.
        asked: u8,
    },
    /// The window reaches outside the grant's data window.
    #[error(
        "the window {from_ms}..={to_ms} ms is outside the grant's data window {data_from_ms}..={data_to_ms} ms"
    )]
    OutsideWindow {
        /// Window asked, start.
        from_ms: u64,
        /// Window asked, end.
        to_ms: u64,
        /// Data window, start.
        data_from_ms: u64,
        /// Data window, end.
        data_to_ms: u64,
    },
    /// An area query's ranges are under an epoch outside the data window.
    #[error("ranges under epoch {0}, outside the grant's data window")]
    EpochOutsideWindow(u32),
}

/// The outcome of one query.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum QueryOutcome {
    /// Answered (and audited).
    Answered(Box<Answer>),
    /// Refused: the grant does not allow it.
    Unauthorized(Unauthorized),
    /// Malformed (an empty window, a zero limit…) or failed on the node.
    Failed(bmpls_types::BoundedString<MAX_REASON_BYTES>),
    /// This validator does not hold the blocks the answer needs (it joined from a snapshot
    /// after them): another validator can answer. A client asks the next one.
    NotHeld(bmpls_types::BoundedString<MAX_REASON_BYTES>),
}

impl QueryOutcome {
    /// Bytes this outcome takes in a response.
    pub fn encoded_len(&self) -> usize {
        borsh::object_length(self).unwrap_or(usize::MAX)
    }
}

/// A carer asks for the proof of a grant it holds, to open the grant's keys before it asks
/// anything under it (an area query's ranges and tokens are made with those keys). Not
/// audited: it reads the carer's own grant and the patient's enrolment, both already on the
/// chain, and no record.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct GrantRequest {
    /// The patient who gave the grant.
    pub patient: PatientId,
    /// The grant.
    pub grant: TxHash,
}

/// The proof of a grant: the grant and the patient's key history (enrolment, then each key
/// rotation), each proved in a certified block, as an [`Answer`] carries them.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct GrantEvidence {
    /// The blocks the proved transactions are in, each once.
    pub blocks: BoundedVec<CertifiedHeader, { MAX_KEY_TXS + 1 }>,
    /// The grant.
    pub grant: ProvedTx,
    /// The patient's enrolment, then each key rotation, in chain order.
    pub keys: BoundedVec<ProvedTx, MAX_KEY_TXS>,
}

/// The answer to a [`GrantRequest`].
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum GrantOutcome {
    /// The grant's proof.
    Proved(Box<GrantEvidence>),
    /// Unknown, revoked, or not the requester's.
    Unauthorized(Unauthorized),
    /// Failed on the node.
    Failed(bmpls_types::BoundedString<MAX_REASON_BYTES>),
    /// This validator does not hold the blocks of the proof (it joined from a snapshot after
    /// them): another validator can answer.
    NotHeld(bmpls_types::BoundedString<MAX_REASON_BYTES>),
}

/// A carer asks for the standing fences that alert it about a patient it holds a grant of, to
/// draw them and show their state before any alert about them arrived. Under the same
/// authorisation as a [`GrantRequest`] (the grant stands and is the requester's) and, like it,
/// not audited: it reads the custodian's fences for this carer, no record. A node can withhold
/// a fence or list a removed one (absence has no proof), so a carer believes a fence stands
/// when `f + 1` validators list it (`bmpls_client::standing_fences`).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct FencesRequest {
    /// The patient.
    pub patient: PatientId,
    /// The grant the carer holds of the patient.
    pub grant: TxHash,
}

/// The standing fences of a patient that alert the requesting carer, each `SetFence` proved in
/// a certified block, with the patient's enrolment (whose custodian key signs fences).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct FenceEvidence {
    /// The newest block the node's list is as of, certified: the list holds every fence standing
    /// after it, at most [`crate::limits::MAX_PROVED_FENCES`].
    pub tip: CertifiedHeader,
    /// The blocks the proved transactions are in, each once.
    pub blocks: BoundedVec<CertifiedHeader, { crate::limits::MAX_PROVED_FENCES + 1 }>,
    /// The patient's enrolment.
    pub enrolment: ProvedTx,
    /// The fences, in chain order.
    pub fences: BoundedVec<ProvedTx, { crate::limits::MAX_PROVED_FENCES }>,
    /// Whether more fences stand than the answer holds.
    pub more: bool,
}

/// The answer to a [`FencesRequest`].
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum FencesOutcome {
    /// The fences and their proofs.
    Proved(Box<FenceEvidence>),
    /// Unknown, revoked, or not the requester's grant.
    Unauthorized(Unauthorized),
    /// Failed on the node.
    Failed(bmpls_types::BoundedString<MAX_REASON_BYTES>),
}

/// Audit entries in one answer.
pub const MAX_AUDIT_ENTRIES: usize = 1_000;

/// A patient's custodian asks who looked: the audit entries about the patient from a height on.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct AuditRequest {
    /// The patient (the request must be signed by the patient's custodian key).
    pub patient: PatientId,
    /// The first height to look at.
    pub from_height: Height,
    /// At most this many entries (1 to [`MAX_AUDIT_ENTRIES`]).
    pub limit: u32,
}

/// The audit entries about a patient, each proved into its block.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct AuditAnswer {
    /// The blocks the entries are in, each once.
    pub blocks: BoundedVec<CertifiedHeader, MAX_AUDIT_ENTRIES>,
    /// The entries, in chain order.
    pub entries: BoundedVec<ProvedTx, MAX_AUDIT_ENTRIES>,
    /// Whether the limit cut the answer short.
    pub more: bool,
}

/// The outcome of an audit request.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum AuditOutcome {
    /// The entries.
    Answered(Box<AuditAnswer>),
    /// The signer is not the patient's custodian.
    NotTheCustodian,
    /// Malformed or failed on the node.
    Failed(bmpls_types::BoundedString<MAX_REASON_BYTES>),
    /// This validator does not hold the blocks from the height asked (it joined from a
    /// snapshot after them): another validator can answer.
    NotHeld(bmpls_types::BoundedString<MAX_REASON_BYTES>),
}

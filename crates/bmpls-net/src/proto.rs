//! What a client asks a node and what the node answers, in the canonical encoding.
//!
//! Every request travels in an [`Envelope`] signed by the client's Ed25519 key, with a random
//! nonce and the client's clock, naming the chain and the validator it is for: a node refuses a
//! request for another chain or node (so a validator cannot replay a carer's request to its
//! peers, nor a request cross from staging to production), a bad signature, a time outside
//! [`crate::limits::CLOCK_WINDOW_MS`], and a nonce it has seen.

use borsh::{BorshDeserialize, BorshSerialize};

use bmpls_types::limits::MAX_TX_BYTES;
use bmpls_types::{
    BoundedString, BoundedVec, Canonical, CarerId, ChainId, Epoch, Hash32, LevelIndex, PatientId,
    PublicKeyBytes, SignatureBytes, Signed, Transaction, TxHash, ValidatorId,
};

use crate::limits::{MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES, MAX_SUBMIT_BATCH};

/// Longest human-readable reason in an answer.
pub const MAX_REASON_BYTES: usize = 512;

/// A request, before it is signed.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum Request {
    /// Submit transactions (reports, enrolments…). Answered once each is committed and
    /// flushed on this node, or refused.
    Submit(BoundedVec<Transaction, MAX_SUBMIT_BATCH>),
    /// The node's height and tip.
    Status,
    /// A carer's queries, each under its own grant (see [`crate::query`]).
    Query(BoundedVec<crate::query::Query, { crate::query::MAX_QUERY_BATCH }>),
    /// A patient's custodian asks for the audit entries about the patient.
    Audit(crate::query::AuditRequest),
    /// A carer waits for its geofence alerts (a long poll; see [`crate::alert`]).
    Watch(crate::alert::WatchRequest),
    /// The committed grants a carer holds or a patient gave, so that tools can resolve an
    /// abbreviated id and check that a grant stands. Unproved: a hint, never a permission
    /// (a query proves its grant).
    Grants(GrantsAsked),
    /// The sequence number a patient's next report must carry (committed reports + 1), for a
    /// keystore restored from a backup. Unproved: a node that lies makes reports refused,
    /// never accepted wrongly.
    NextSeq(PatientId),
    /// A carer asks for the proof of a grant it holds (not audited; see
    /// [`crate::query::GrantRequest`]).
    Grant(crate::query::GrantRequest),
    /// A carer asks for a patient's standing fences that alert it (not audited; see
    /// [`crate::query::FencesRequest`]). Appended last: a variant's tag is its position, so
    /// every earlier request encodes as before and the wire version stays.
    Fences(crate::query::FencesRequest),
}

/// Most grants in one [`Response::Grants`].
pub const MAX_GRANTS: usize = 1024;

/// Whose grants [`Request::Grants`] asks for.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum GrantsAsked {
    /// Those this carer holds; the request must be signed by the carer's identity key.
    OfCarer(CarerId),
    /// Those this patient gave; the request must be signed by the patient's custodian key.
    OfPatient(PatientId),
}

/// A committed grant, as a tool names and checks it.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct GrantSummary {
    /// The patient who gave it.
    pub patient: PatientId,
    /// The carer who holds it.
    pub carer: CarerId,
    /// The grant's transaction hash (what `query --grant` and `revoke` name).
    pub grant: TxHash,
    /// The finest level granted.
    pub level: LevelIndex,
    /// First epoch of data.
    pub data_from: Epoch,
    /// Last epoch of data.
    pub data_to: Epoch,
    /// Valid from (Unix ms)…
    pub valid_from_ms: u64,
    /// …until.
    pub valid_until_ms: u64,
    /// Not revoked.
    pub standing: bool,
}

/// The answer to [`Request::Grants`].
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum GrantsOutcome {
    /// The grants (at most [`MAX_GRANTS`]; `more` when some were left out).
    Grants {
        /// The grants, in (patient, grant hash) order.
        grants: BoundedVec<GrantSummary, MAX_GRANTS>,
        /// Whether more exist.
        more: bool,
    },
    /// The key that signed is not the carer's (or the patient's custodian's), or the carer
    /// or patient is not enrolled.
    NotYours,
    /// This validator does not know the carer or patient yet and is catching up with the
    /// chain: not a refusal; ask another validator.
    NotHeld(BoundedString<MAX_REASON_BYTES>),
}

/// The answer to [`Request::NextSeq`].
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum NextSeqOutcome {
    /// The next report's sequence number, as of `height`.
    Next {
        /// The sequence number.
        seq: u64,
        /// The height it was read at.
        height: u64,
    },
    /// The key that signed is neither the patient's reporter nor custodian key, or the
    /// patient is not enrolled.
    NotYours,
}

/// A signed request.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Envelope {
    /// The client's key, which signs.
    pub client: PublicKeyBytes,
    /// The chain the request is for.
    pub chain: ChainId,
    /// The validator the request is for (the one whose certificate the client's TLS checked).
    pub node: ValidatorId,
    /// Random, never reused by this client.
    pub nonce: [u8; 16],
    /// The client's clock when it sent the request, in Unix milliseconds.
    pub sent_ms: u64,
    /// The request.
    pub request: Request,
    /// Signature by `client`.
    pub sig: SignatureBytes,
}

impl Signed for Envelope {
    const TAG: &'static [u8] = b"bmpls/request";

    fn signature(&self) -> &SignatureBytes {
        &self.sig
    }

    fn signature_mut(&mut self) -> &mut SignatureBytes {
        &mut self.sig
    }
}

impl Canonical for Envelope {
    const NAME: &'static str = "request";
    const MAX_BYTES: usize = MAX_REQUEST_BYTES;
}

/// Why a transaction was refused, for programs; the reason text is for people.
#[derive(Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
#[borsh(use_discriminant = true)]
#[repr(u8)]
pub enum RefusalCode {
    /// The node's mempool is full: retry later.
    Full = 0,
    /// Larger than a transaction may be.
    TooLarge = 1,
    /// A report already committed (or already waiting): a replay.
    Replay = 2,
    /// A report whose sequence number skips ahead.
    Gap = 3,
    /// The patient or carer is not enrolled.
    NotEnrolled = 4,
    /// Already enrolled.
    AlreadyEnrolled = 5,
    /// The signature does not verify under the key the ledger expects.
    BadSignature = 6,
    /// Signed by a key that may not sign this kind of transaction.
    NotAuthorised = 7,
    /// A field out of range.
    Invalid = 8,
    /// Not committed before the node's wait ran out; it may still commit later.
    Timeout = 9,
    /// The node is shutting down.
    ShuttingDown = 10,
    /// A key the transaction registers is malformed or of small order (anyone could sign
    /// under it).
    WeakKey = 11,
}

/// The outcome of one submitted transaction.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum Submitted {
    /// Committed at `height` and flushed to this node's disk.
    Committed {
        /// The transaction.
        tx: TxHash,
        /// The block.
        height: u64,
    },
    /// Refused.
    Refused {
        /// Why, for programs.
        code: RefusalCode,
        /// Why, for people.
        reason: BoundedString<MAX_REASON_BYTES>,
    },
}

/// A node's view of the chain.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct NodeStatus {
    /// Chain id.
    pub chain_id: BoundedString<64>,
    /// Last committed height.
    pub height: u64,
    /// Hash of the last committed block.
    pub tip: Hash32,
    /// Transactions waiting in the mempool.
    pub mempool: u64,
}

/// Why a request was not served.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum RequestError {
    /// The request frame is over the limit.
    TooLarge {
        /// Its length.
        len: u64,
        /// The limit.
        max: u64,
    },
    /// The bytes are not a request (garbage, truncated, an unknown message type).
    Malformed(BoundedString<MAX_REASON_BYTES>),
    /// The signature does not verify under the key the envelope names.
    BadSignature,
    /// The request's time is outside the node's window.
    Stale {
        /// Request time minus node time, in milliseconds.
        skew_ms: i64,
    },
    /// The nonce was used before: a replayed request.
    Replayed,
    /// Over the client's request rate; retry after this long.
    RateLimited {
        /// Milliseconds to wait.
        retry_after_ms: u64,
    },
    /// The node cannot take more work now.
    Busy,
    /// The node is shutting down.
    ShuttingDown,
    /// The request names another chain or another validator than this one.
    Misaddressed,
}

impl std::fmt::Display for RequestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::TooLarge { len, max } => write!(f, "request of {len} bytes is over {max}"),
            Self::Malformed(reason) => write!(f, "malformed request: {}", reason.as_str()),
            Self::BadSignature => write!(f, "the request's signature does not verify"),
            Self::Stale { skew_ms } => {
                write!(f, "the request's clock is {skew_ms} ms off the node's")
            }
            Self::Replayed => write!(f, "replayed request (nonce already seen)"),
            Self::RateLimited { retry_after_ms } => {
                write!(f, "rate limited: retry after {retry_after_ms} ms")
            }
            Self::Busy => write!(f, "the node is busy"),
            Self::ShuttingDown => write!(f, "the node is shutting down"),
            Self::Misaddressed => {
                write!(f, "the request is for another chain or another validator")
            }
        }
    }
}

impl std::error::Error for RequestError {}

/// A node's answer.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum Response {
    /// One outcome per submitted transaction, in order.
    Submitted(BoundedVec<Submitted, MAX_SUBMIT_BATCH>),
    /// The node's status.
    Status(NodeStatus),
    /// One outcome per query, in order.
    Answers(BoundedVec<crate::query::QueryOutcome, { crate::query::MAX_QUERY_BATCH }>),
    /// The audit entries asked for.
    Audit(crate::query::AuditOutcome),
    /// Alerts, or none before the wait ran out.
    Watch(crate::alert::WatchOutcome),
    /// The grants asked for.
    Grants(GrantsOutcome),
    /// A patient's next sequence number.
    NextSeq(NextSeqOutcome),
    /// A grant's proof.
    Grant(crate::query::GrantOutcome),
    /// The request was not served.
    Error(RequestError),
    /// A patient's standing fences. Appended last, after `Error`, so that every earlier
    /// response encodes as before and the wire version stays.
    Fences(crate::query::FencesOutcome),
}

impl Canonical for Response {
    const NAME: &'static str = "response";
    const MAX_BYTES: usize = MAX_RESPONSE_BYTES;
}

/// A reason, cut to fit (at a character boundary).
pub fn reason(text: impl std::fmt::Display) -> BoundedString<MAX_REASON_BYTES> {
    let mut text = text.to_string();
    if text.len() > MAX_REASON_BYTES {
        let mut cut = MAX_REASON_BYTES;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    BoundedString::new(text).expect("cut to the bound")
}

const _: () = assert!(MAX_REQUEST_BYTES >= MAX_TX_BYTES * 4);

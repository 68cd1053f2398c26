//! Geofence alerts on the wire: events derived from the chain, signed by the node that serves
//! them, and the long-poll a carer uses to receive them.
//!
//! Events are a deterministic function of the committed chain (fences, records, block times),
//! so every honest validator derives the same ones, and a carer that reconnects — to the same
//! node or another — resumes from the height it last saw without losing any.

use borsh::{BorshDeserialize, BorshSerialize};

use crate::proto::MAX_REASON_BYTES;
use crate::query::CertifiedHeader;
use bmpls_types::{
    BoundedVec, CarerId, Epoch, Height, LevelIndex, PatientId, Seq, SignatureBytes, Signed, TxHash,
    ValidatorId,
};

/// Events in one watch answer.
pub const MAX_WATCH_EVENTS: usize = 1_000;
/// Longest a node holds a watch request open before answering "nothing yet".
pub const MAX_WATCH_WAIT_MS: u64 = 20_000;
const _: () = assert!(MAX_WATCH_WAIT_MS < crate::limits::REQUEST_TIMEOUT.as_millis() as u64);

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, BorshSerialize, BorshDeserialize)]
#[borsh(use_discriminant = true)]
#[repr(u8)]
pub enum AlertKind {
    /// The patient entered the fence (after `debounce` records inside).
    Enter = 0,
    /// The patient left the fence (after `debounce` records outside), or was first seen
    /// outside it.
    Exit = 1,
    /// No record for several expected reporting intervals (by block time).
    Missing = 2,
}

/// An alert, as every validator derives it from the chain.
#[derive(Clone, Debug, PartialEq, Eq, Hash, BorshSerialize, BorshDeserialize)]
pub struct AlertEvent {
    /// The `SetFence` transaction.
    pub fence: TxHash,
    /// The patient.
    pub patient: PatientId,
    /// The carer alerted.
    pub carer: CarerId,
    /// What happened.
    pub kind: AlertKind,
    /// The record that decided it (for `Missing`: the last record seen).
    pub seq: Seq,
    /// The fence's level: a carer receives the event only under a grant at this level or a
    /// finer one.
    pub level: LevelIndex,
    /// The deciding record's key epoch (for `Missing`: the epoch of the block's time): a
    /// carer receives the event only under a grant whose data window holds it.
    pub epoch: Epoch,
    /// The block that decided it.
    pub height: Height,
    /// That block's time, ms since the Unix epoch.
    pub time_ms: u64,
}

/// An event signed by the validator that served it.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct SignedAlert {
    /// The event.
    pub event: AlertEvent,
    /// The signing validator.
    pub node: ValidatorId,
    /// Its signature.
    pub sig: SignatureBytes,
}

impl Signed for SignedAlert {
    const TAG: &'static [u8] = b"bmpls/alert";

    fn signature(&self) -> &SignatureBytes {
        &self.sig
    }

    fn signature_mut(&mut self) -> &mut SignatureBytes {
        &mut self.sig
    }
}

/// A carer asks for its alerts from a height on, waiting up to `wait_ms` for one to happen.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct WatchRequest {
    /// The carer (the request must be signed by its identity key).
    pub carer: CarerId,
    /// The first height of interest (the `next_height` of the previous answer).
    pub from_height: Height,
    /// How long the node may wait for an event, at most [`MAX_WATCH_WAIT_MS`].
    pub wait_ms: u64,
}

/// Alerts, and where to resume.
///
/// A carer believes no single validator: it delivers an event once `f + 1` distinct genesis
/// validators signed it, and moves its resume height only up to a height it holds a commit
/// certificate for ([`WatchAnswer::tip`]), and only as far as `f + 1` validators' answers
/// cover (see `bmpls_client::alerts`).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct WatchAnswer {
    /// The events from the height asked, in chain order.
    pub events: BoundedVec<SignedAlert, MAX_WATCH_EVENTS>,
    /// Ask from this height next: every event from the height asked and below this one is in
    /// this answer. At most one above [`WatchAnswer::tip`]'s height (1 when there is no tip).
    pub next_height: Height,
    /// The certified header of the node's last committed block (none before the first), which
    /// shows that the chain reaches `next_height - 1`.
    pub tip: Option<Box<CertifiedHeader>>,
    /// Patients some of whose events in the heights answered this node holds for the carer but
    /// does not hand over: the carer was entitled to them when they were decided, and its grant
    /// no longer allows them as this node sees it (revoked or expired since). Validators at different heights or clocks
    /// can differ on a grant, so an answer naming a patient does not count as denying that
    /// patient's events: otherwise a validator that has not yet seen a revocation would be
    /// judged a forger by those that have.
    pub withheld: BoundedVec<PatientId, MAX_WATCH_EVENTS>,
}

/// The outcome of a watch request.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum WatchOutcome {
    /// Events (possibly none, when the wait ran out).
    Events(WatchAnswer),
    /// The signer is not this enrolled carer.
    NotTheCarer,
    /// This validator does not know the carer yet and is catching up with the chain (it has
    /// not applied every block): not a refusal; ask another validator.
    NotHeld(bmpls_types::BoundedString<MAX_REASON_BYTES>),
}

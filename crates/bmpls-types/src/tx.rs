//! Transactions: everything that changes the ledger, each signed by the party entitled to it.

use borsh::{BorshDeserialize, BorshSerialize};

use crate::bounded::{BoundedString, BoundedVec};
use crate::cell::OreLeft;
use crate::encoding::WIRE_VERSION;
use crate::ids::{
    AgreementKey, CarerId, Epoch, Height, LevelIndex, OpeCiphertext, PatientId, PublicKeyBytes,
    Seq, SignatureBytes, TxHash, ValidatorId,
};
use crate::limits::{
    MAX_FENCE_EPOCHS, MAX_FENCE_RANGES, MAX_ORE_FENCE_RANGES, MAX_PURPOSE_BYTES,
    MAX_WRAPPED_KEY_BYTES,
};
use crate::record::{LocationRecord, RecordDigest};
use crate::signed::Signed;

/// A ledger transaction.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum Transaction {
    /// An operator enrols a patient (membership).
    EnrolPatient(EnrolPatient),
    /// An operator enrols a carer (membership).
    EnrolCarer(EnrolCarer),
    /// The custodian replaces the reporter key (lost or compromised device).
    RotateReporterKey(RotateReporterKey),
    /// A location record.
    Report(LocationRecord),
    /// The custodian grants a carer one level over a data window.
    Grant(Grant),
    /// The custodian revokes a grant.
    Revoke(Revoke),
    /// The custodian registers a safe zone for a carer's alerts.
    SetFence(SetFence),
    /// A node records that it answered a query.
    Audit(Audit),
    /// The custodian removes a safe zone: its alerts stop from the next block on.
    RemoveFence(RemoveFence),
}

/// Enrolment of a patient by a consortium operator.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct EnrolPatient {
    /// The patient's pseudonym.
    pub patient: PatientId,
    /// Key that signs the patient's records.
    pub reporter_key: PublicKeyBytes,
    /// Key of the custodian who grants, revokes and sets fences.
    pub custodian_key: PublicKeyBytes,
    /// Precision levels the patient's records carry.
    pub level_count: u8,
    /// How many of them, the finest, are under ORE: a record's cells at levels below this are
    /// ORE right ciphertexts and the others OPE ciphertexts, or the record is refused.
    pub ore_levels: u8,
    /// Length of a key epoch in milliseconds.
    pub epoch_length_ms: u64,
    /// The enrolling operator's key (must be a validator operator's).
    pub operator: PublicKeyBytes,
    /// SignatureBytes by `operator`.
    pub sig: SignatureBytes,
}

/// A carer's role, for the audit trail and policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
#[borsh(use_discriminant = true)]
#[repr(u8)]
pub enum Role {
    /// General practitioner.
    Gp = 0,
    /// Family member.
    Family = 1,
    /// Telecare operator.
    TelecareOperator = 2,
    /// Insurer.
    Insurer = 3,
    /// Researcher.
    Researcher = 4,
}

/// Enrolment of a carer by a consortium operator.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct EnrolCarer {
    /// The carer's identifier.
    pub carer: CarerId,
    /// Key that signs the carer's queries.
    pub identity_key: PublicKeyBytes,
    /// Key to which grants are wrapped.
    pub agreement_key: AgreementKey,
    /// The carer's role.
    pub role: Role,
    /// The enrolling operator's key.
    pub operator: PublicKeyBytes,
    /// SignatureBytes by `operator`.
    pub sig: SignatureBytes,
}

/// Replacement of a patient's reporter key.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct RotateReporterKey {
    /// The patient.
    pub patient: PatientId,
    /// The new reporter key.
    pub new_reporter_key: PublicKeyBytes,
    /// Records from this sequence number on must be signed with the new key.
    pub from_seq: Seq,
    /// SignatureBytes by the patient's custodian key.
    pub sig: SignatureBytes,
}

/// Access for one carer at one level over one data window, with the keys wrapped to it.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Grant {
    /// The patient.
    pub patient: PatientId,
    /// The carer.
    pub carer: CarerId,
    /// Finest level the carer may see.
    pub level: LevelIndex,
    /// First epoch of data the grant opens.
    pub data_from: Epoch,
    /// Last epoch of data the grant opens.
    pub data_to: Epoch,
    /// The grant may be used from this time (ms since the Unix epoch)…
    pub valid_from_ms: u64,
    /// …until this time.
    pub valid_until_ms: u64,
    /// Why access is given (shown to the patient).
    pub purpose: BoundedString<MAX_PURPOSE_BYTES>,
    /// HPKE-wrapped grant keys (the window's epoch-tree cover for the level and coarser ones).
    pub wrapped_keys: BoundedVec<u8, MAX_WRAPPED_KEY_BYTES>,
    /// SignatureBytes by the patient's custodian key.
    pub sig: SignatureBytes,
}

/// Revocation of a grant, named by the hash of its transaction.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Revoke {
    /// The patient.
    pub patient: PatientId,
    /// Hash of the `Grant` transaction revoked.
    pub grant: TxHash,
    /// SignatureBytes by the patient's custodian key.
    pub sig: SignatureBytes,
}

/// A fence's covering for one epoch, encrypted under that epoch's key of the fence's level.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct FenceEpoch {
    /// Epoch whose key encrypted the ranges.
    pub epoch: Epoch,
    /// Inclusive ranges, sorted and disjoint, under the scheme of the fence's level.
    pub ranges: FenceRanges,
}

/// A fence's ranges in one epoch.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum FenceRanges {
    /// OPE ciphertext bounds `(low, high)`, compared as integers.
    Ope(BoundedVec<(OpeCiphertext, OpeCiphertext), MAX_FENCE_RANGES>),
    /// ORE left tokens of each run's first and last cell, compared with records' right
    /// ciphertexts.
    Ore(BoundedVec<(OreLeft, OreLeft), MAX_ORE_FENCE_RANGES>),
}

impl FenceRanges {
    /// How many ranges.
    pub fn len(&self) -> usize {
        match self {
            Self::Ope(r) => r.len(),
            Self::Ore(r) => r.len(),
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A safe zone: its covering at one level, encrypted for each epoch it applies to (OPE keys are
/// per epoch, so one plaintext covering has a different ciphertext range list in every epoch).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct SetFence {
    /// The patient.
    pub patient: PatientId,
    /// The carer alerted.
    pub carer: CarerId,
    /// Level of the ranges.
    pub level: LevelIndex,
    /// The encrypted covering, one entry per epoch, epochs increasing.
    pub epochs: BoundedVec<FenceEpoch, MAX_FENCE_EPOCHS>,
    /// Consecutive records needed before an `Enter`/`Exit` fires.
    pub debounce: u8,
    /// Expected reporting interval; `Missing` fires after a few intervals of silence.
    pub expected_interval_ms: u64,
    /// Signature by the patient's custodian key.
    pub sig: SignatureBytes,
}

/// Removal of a fence, named by the hash of its `SetFence` transaction.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct RemoveFence {
    /// The patient.
    pub patient: PatientId,
    /// Hash of the `SetFence` transaction removed.
    pub fence: TxHash,
    /// Signature by the patient's custodian key.
    pub sig: SignatureBytes,
}

/// Kinds of query, for the audit trail.
#[derive(Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
#[borsh(use_discriminant = true)]
#[repr(u8)]
pub enum QueryKind {
    /// The latest record.
    Last = 0,
    /// Records in a time window.
    Track = 1,
    /// Records in an area and a time window.
    Within = 2,
    /// Geofence alerts delivered to a watching carer: the entry's level is the fences', its
    /// window the deciding blocks' times, its height the newest alert's.
    Alerts = 3,
}

/// A node's record of a query it answered.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Audit {
    /// The answering node.
    pub node: ValidatorId,
    /// Who asked.
    pub carer: CarerId,
    /// About whom.
    pub patient: PatientId,
    /// What was asked.
    pub query: QueryKind,
    /// At which level.
    pub level: LevelIndex,
    /// Start of the window asked for (ms since the Unix epoch).
    pub from_ms: u64,
    /// End of the window asked for.
    pub to_ms: u64,
    /// Chain height the answer was computed at.
    pub at_height: Height,
    /// SignatureBytes by `node`.
    pub sig: SignatureBytes,
}

macro_rules! signed {
    ($($ty:ident => $tag:literal),* $(,)?) => {$(
        impl Signed for $ty {
            const TAG: &'static [u8] = $tag;
            fn signature(&self) -> &SignatureBytes {
                &self.sig
            }
            fn signature_mut(&mut self) -> &mut SignatureBytes {
                &mut self.sig
            }
        }
    )*};
}

signed! {
    EnrolPatient => b"bmpls/v1/sig/enrol-patient",
    EnrolCarer => b"bmpls/v1/sig/enrol-carer",
    RotateReporterKey => b"bmpls/v1/sig/rotate-reporter-key",
    Grant => b"bmpls/v1/sig/grant",
    Revoke => b"bmpls/v1/sig/revoke",
    SetFence => b"bmpls/v1/sig/set-fence",
    Audit => b"bmpls/v1/sig/audit",
    RemoveFence => b"bmpls/v1/sig/remove-fence",
}

/// Borsh's tag of [`Transaction::Report`] (its variant index), checked by a test.
const REPORT_TAG: u8 = 3;

impl Transaction {
    /// What the transaction's Merkle leaf and hash cover: its canonical encoding, except that a
    /// report stands as its record's [`RecordDigest`] (so an answer proves a record from a
    /// [`crate::RecordView`] that lacks the finer levels).
    pub fn leaf_encode_to<W: std::io::Write>(&self, writer: &mut W) -> std::io::Result<()> {
        match self {
            Self::Report(record) => report_leaf_encode_to(&record.digest(), writer),
            other => {
                writer.write_all(&[WIRE_VERSION])?;
                other.serialize(writer)
            }
        }
    }

    /// [`Transaction::leaf_encode_to`] into a vector.
    pub fn leaf_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        self.leaf_encode_to(&mut out)
            .expect("serialising into a Vec cannot fail");
        out
    }

    /// The bytes the transaction's signature covers on `chain` (see [`Signed::signing_bytes`]).
    pub fn signing_bytes(&self, chain: &crate::ChainId) -> Vec<u8> {
        match self {
            Self::EnrolPatient(t) => t.signing_bytes(chain),
            Self::EnrolCarer(t) => t.signing_bytes(chain),
            Self::RotateReporterKey(t) => t.signing_bytes(chain),
            Self::Report(t) => t.signing_bytes(chain),
            Self::Grant(t) => t.signing_bytes(chain),
            Self::Revoke(t) => t.signing_bytes(chain),
            Self::SetFence(t) => t.signing_bytes(chain),
            Self::Audit(t) => t.signing_bytes(chain),
            Self::RemoveFence(t) => t.signing_bytes(chain),
        }
    }

    /// The transaction's signature.
    pub fn signature(&self) -> &SignatureBytes {
        match self {
            Self::EnrolPatient(t) => t.signature(),
            Self::EnrolCarer(t) => t.signature(),
            Self::RotateReporterKey(t) => t.signature(),
            Self::Report(t) => t.signature(),
            Self::Grant(t) => t.signature(),
            Self::Revoke(t) => t.signature(),
            Self::SetFence(t) => t.signature(),
            Self::Audit(t) => t.signature(),
            Self::RemoveFence(t) => t.signature(),
        }
    }

    /// The patient the transaction concerns, if any (enrolling a carer concerns none).
    pub fn patient(&self) -> Option<&PatientId> {
        match self {
            Self::EnrolPatient(t) => Some(&t.patient),
            Self::EnrolCarer(_) => None,
            Self::RotateReporterKey(t) => Some(&t.patient),
            Self::Report(t) => Some(&t.patient),
            Self::Grant(t) => Some(&t.patient),
            Self::Revoke(t) => Some(&t.patient),
            Self::SetFence(t) => Some(&t.patient),
            Self::Audit(t) => Some(&t.patient),
            Self::RemoveFence(t) => Some(&t.patient),
        }
    }
}

/// The leaf bytes of a report whose record has `digest`: what [`Transaction::leaf_encode_to`]
/// writes for it, for a reader that has only a view of the record.
pub fn report_leaf_encode_to<W: std::io::Write>(
    digest: &RecordDigest,
    writer: &mut W,
) -> std::io::Result<()> {
    writer.write_all(&[WIRE_VERSION, REPORT_TAG])?;
    digest.serialize(writer)
}

//! The patient's and carers' side of bmpls. The reporter turns GPS fixes into signed records
//! that carry one randomised order-preserving ciphertext per precision level and the sealed
//! exact fix; positions are encrypted here and never leave in the clear.
#![forbid(unsafe_code)]

pub mod alerts;
mod ask;
pub mod audit;
pub mod carer;
pub mod ciphers;
pub mod consortium;
pub mod fences;
pub mod import;
pub mod keystore;
pub mod network;
pub mod outbox;
mod reporter;

pub use alerts::{AlertStream, VerifiedWatch, WatchError, WatchFault, verify_alerts};
pub use ask::{AskError, ask, ask_area, grants_of, proved_grant, standing_at};
pub use audit::{AuditEntry, verify_audit};
pub use carer::{
    AnswerError, CarerKeystore, ProvedGrant, Seen, VerifiedAnswer, open_grant, verify_answer,
    verify_grant,
};
pub use ciphers::{CipherError, EncryptedRanges, EpochKeys, LevelCiphers};
pub use consortium::{Consortium, ConsortiumError};
pub use fences::{
    FenceFault, FenceSurvey, FencesError, ProvedFence, VerifiedFences, fence_zone, standing_fences,
    tally_fences, verify_fences,
};
pub use keystore::PatientKeystore;
pub use network::{DIAL_STAGGER, NetworkError, Nodes};
pub use outbox::{Outbox, OutboxError};
pub use reporter::{Fix, ReportError, Reporter, check_fix, check_fix_time};

mod query;

pub use query::{AreaError, area_query, encrypt_ranges};

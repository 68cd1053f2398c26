//! The one error the bindings throw (`ReporterException` in Kotlin, `ReporterError` in Swift and
//! Python), one variant per cause an app handles differently. A validator that does not answer
//! is not an error: the fix is queued, and the outcome says so.

use bmpls_client::OutboxError;
use bmpls_client::keystore::KeystoreError;

/// Why a call did nothing (or, for [`ReporterError::Storage`], may have failed half-way: what
/// was reported as queued before stays queued).
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum ReporterError {
    /// No keystore in that folder: `create` one (once, at set-up).
    #[error("no keystore in {dir}")]
    KeystoreMissing {
        /// The folder.
        dir: String,
    },
    /// `create` was given a folder that already holds a keystore; its keys are kept.
    #[error("{dir} already holds a keystore; refusing to overwrite its keys")]
    KeystoreExists {
        /// The folder.
        dir: String,
    },
    /// The keystore cannot be used: a file damaged, missing or readable by others.
    #[error("the keystore cannot be used: {reason}")]
    KeystoreCorrupt {
        /// What is wrong.
        reason: String,
    },
    /// The outbox file is damaged where a crash cannot have left it; nothing was skipped.
    #[error("the outbox is damaged: {reason}")]
    OutboxCorrupt {
        /// What is wrong.
        reason: String,
    },
    /// The outbox is full: nothing was queued. Flush it (or discard refused records).
    #[error("the outbox is full: {records} records in {bytes} bytes")]
    OutboxFull {
        /// Records waiting or refused.
        records: u64,
        /// Their bytes on disk.
        bytes: u64,
    },
    /// Another `Reporter` (in this process or another) holds this keystore's outbox.
    #[error("the keystore's outbox is in use by another reporter")]
    Busy,
    /// The fix cannot become a record (position, measurement or time out of range); nothing
    /// was queued.
    #[error("bad fix: {reason}")]
    BadFix {
        /// What is wrong (it quotes at most the out-of-range value, never a valid position).
        reason: String,
    },
    /// The consortium's description (CA certificate, genesis, levels) cannot be used.
    #[error("bad configuration: {reason}")]
    BadConfig {
        /// What is wrong.
        reason: String,
    },
    /// Reading or writing the phone's storage failed.
    #[error("storage: {reason}")]
    Storage {
        /// The failure.
        reason: String,
    },
    /// A bug in bmpls (a panic, caught at the boundary): report it. The `Reporter` should be
    /// opened again.
    #[error("internal error: {reason}")]
    Internal {
        /// What happened.
        reason: String,
    },
}

impl From<KeystoreError> for ReporterError {
    fn from(e: KeystoreError) -> Self {
        match e {
            KeystoreError::Exists(dir) => Self::KeystoreExists {
                dir: dir.display().to_string(),
            },
            // A fix is checked before it is queued; a keystore whose levels make no reporter
            // is the keystore's fault.
            other => Self::KeystoreCorrupt {
                reason: other.to_string(),
            },
        }
    }
}

impl From<OutboxError> for ReporterError {
    fn from(e: OutboxError) -> Self {
        match e {
            OutboxError::Io { .. } => Self::Storage {
                reason: e.to_string(),
            },
            OutboxError::Full { records, bytes } => Self::OutboxFull {
                records: records as u64,
                bytes,
            },
            OutboxError::Corrupt { .. } => Self::OutboxCorrupt {
                reason: e.to_string(),
            },
            OutboxError::Busy(_) => Self::Busy,
            OutboxError::Keystore(e) => e.into(),
            OutboxError::Report { source, .. } => Self::BadFix {
                reason: source.to_string(),
            },
            OutboxError::OutOfOrder { .. } => Self::Internal {
                reason: e.to_string(),
            },
        }
    }
}

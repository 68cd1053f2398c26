//! A patient's keystore, reporter and outbox together, as the one process that reports for
//! the patient holds them (`bmpls report`, the OwnTracks gateway, a phone app through
//! `bmpls-mobile`): a fix is built, signed and queued (synced) once, and a fix whose time was
//! already queued or reported — an app resending what it got no answer for, a file imported
//! twice — is the same fix and is not queued again.

use std::collections::BTreeSet;
use std::ops::Range;

use bmpls_types::ChainId;
use rand_core::CryptoRngCore;

use super::{Outbox, OutboxError};
use crate::{Fix, PatientKeystore, Reporter};

/// What [`ReportQueue::queue`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Queued {
    /// The sequence numbers the new records took (empty when every fix was a repeat).
    pub seqs: Range<u64>,
    /// Fixes left out: their time was already queued or reported, or repeated an earlier fix
    /// of the same call.
    pub repeated: usize,
}

/// A patient's keystore, its reporter (signing for one chain) and its outbox, open and locked.
pub struct ReportQueue {
    store: PatientKeystore,
    reporter: Reporter,
    outbox: Outbox,
    /// Fix times queued or reported from this keystore.
    seen: BTreeSet<u64>,
}

impl std::fmt::Debug for ReportQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReportQueue")
            .field("store", &self.store)
            .field("outbox", &self.outbox)
            .finish_non_exhaustive()
    }
}

impl ReportQueue {
    /// Opens the outbox of `store` (locked: [`OutboxError::Busy`] if another process holds
    /// it) and a reporter signing for `chain`.
    pub fn open(store: PatientKeystore, chain: &ChainId) -> Result<Self, OutboxError> {
        let reporter = store.reporter(chain)?;
        let outbox = Outbox::open(&store)?;
        let mut seen = store.reported_times()?;
        seen.extend(outbox.waiting().map(|r| r.fix_time_ms));
        Ok(Self {
            store,
            reporter,
            outbox,
            seen,
        })
    }

    /// Builds, signs and queues (synced) a record of each fix whose time is new, in the order
    /// given, then notes their times as reported. A fix that cannot be a record queues none.
    pub fn queue(
        &mut self,
        fixes: &[Fix],
        rng: &mut impl CryptoRngCore,
    ) -> Result<Queued, OutboxError> {
        let mut times = BTreeSet::new();
        let new: Vec<Fix> = fixes
            .iter()
            .filter(|f| !self.seen.contains(&f.fix_time_ms) && times.insert(f.fix_time_ms))
            .copied()
            .collect();
        let repeated = fixes.len() - new.len();
        if new.is_empty() {
            let next = self.outbox.next_seq(&self.store)?;
            return Ok(Queued {
                seqs: next..next,
                repeated,
            });
        }
        let seqs = self
            .outbox
            .queue(&self.store, &mut self.reporter, &new, rng)?;
        let times: Vec<u64> = new.iter().map(|f| f.fix_time_ms).collect();
        // Queued is as good as reported: the outbox holds them from now on.
        self.seen.extend(&times);
        self.store.add_reported_times(&times)?;
        Ok(Queued { seqs, repeated })
    }

    /// The keystore.
    pub fn store(&self) -> &PatientKeystore {
        &self.store
    }

    /// The outbox.
    pub fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    /// The keystore and the outbox at once, to send what waits.
    pub fn parts(&mut self) -> (&PatientKeystore, &mut Outbox) {
        (&self.store, &mut self.outbox)
    }

    /// The outbox, to send or settle what waits.
    pub fn outbox_mut(&mut self) -> &mut Outbox {
        &mut self.outbox
    }
}

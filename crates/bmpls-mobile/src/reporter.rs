//! The `Reporter` object: a patient's keystore, outbox and connections, behind one lock, with
//! its own single-threaded tokio runtime. Every method blocks until it is done (a report until
//! the fix is synced to disk and one send was tried), so an app calls them from a background
//! thread (Android's WorkManager or a coroutine on `Dispatchers.IO`, iOS's `BGTaskScheduler` or
//! a `Task.detached`), never from the UI thread. Calls from several threads are taken one at a
//! time. Nothing runs between calls: the runtime is driven only inside one, so a reporter
//! wakes neither the CPU nor the radio on its own.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bmpls_client::keystore::DEFAULT_EPOCH_MS;
use bmpls_client::outbox::{Flushed, MAX_OUTBOX_BYTES, MAX_OUTBOX_RECORDS, Patience, ReportQueue};
use bmpls_client::{Nodes, PatientKeystore};

use crate::error::ReporterError;
use crate::types::{Consortium, Fix, FlushOutcome, OutboxStatus, RefusedRecord, ReportOutcome};

/// The precision levels a keystore gets when `create` is given none: the shipped
/// `config/levels.toml` (six levels, the three finest ORE).
const DEFAULT_LEVELS: &str = include_str!("../../../config/levels.toml");

/// A connection unused this long has been closed by the validator (the client links' idle
/// timeout): it is dropped before the next call rather than tried and found dead.
const STALE_AFTER: Duration = bmpls_net::limits::IDLE_TIMEOUT;

/// Longest `flush(wait_s)` accepted: an hour (a background task gets far less).
const MAX_WAIT_S: u32 = 3_600;

struct Inner {
    queue: ReportQueue,
    /// Clients of the validators, made at the first send and kept while in use.
    nodes: Option<Nodes>,
    last_used: Instant,
}

/// A patient's reporter on a phone: reports fixes (queued on disk before anything is sent),
/// sends the outbox, and tells what waits. Blocking; safe to share between threads.
#[derive(uniffi::Object)]
pub struct Reporter {
    inner: Mutex<Inner>,
    consortium: bmpls_client::Consortium,
    runtime: tokio::runtime::Runtime,
    patient: String,
}

impl std::fmt::Debug for Reporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reporter")
            .field("patient", &self.patient)
            .finish_non_exhaustive()
    }
}

/// Runs `body`, turning a panic into [`ReporterError::Internal`]: nothing unwinds into the app.
fn guarded<T>(body: impl FnOnce() -> Result<T, ReporterError>) -> Result<T, ReporterError> {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or_else(|panic| {
        let reason = panic
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| panic.downcast_ref::<&str>().copied())
            .unwrap_or("a panic")
            .to_string();
        Err(ReporterError::Internal { reason })
    })
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn consortium_of(consortium: Consortium) -> Result<bmpls_client::Consortium, ReporterError> {
    bmpls_client::Consortium::new(
        consortium.nodes,
        &consortium.ca_pem,
        &consortium.genesis_toml,
    )
    .map_err(|e| ReporterError::BadConfig {
        reason: e.to_string(),
    })
}

#[uniffi::export]
impl Reporter {
    /// Creates a new patient's keystore in `dir` (fresh keys: the pseudonym, the reporter and
    /// custodian keys, the master secret; secret files owner-only) and opens it. `levels_toml`
    /// is the precision levels' configuration (none: the shipped six levels). Refuses a folder
    /// that holds a keystore already.
    #[uniffi::constructor]
    pub fn create(
        dir: String,
        consortium: Consortium,
        levels_toml: Option<String>,
    ) -> Result<Arc<Self>, ReporterError> {
        guarded(|| {
            let consortium = consortium_of(consortium)?;
            let dir = PathBuf::from(dir);
            let levels = levels_toml.as_deref().unwrap_or(DEFAULT_LEVELS);
            check_levels(levels)?;
            let store =
                PatientKeystore::create(&dir, levels, DEFAULT_EPOCH_MS, &mut rand_core::OsRng)?;
            Self::start(store, consortium)
        })
    }

    /// Opens the keystore in `dir`, which `create` made: its outbox is repaired if a crash cut
    /// an append, and what waited before waits still. One `Reporter` per keystore at a time
    /// (another gets `Busy`).
    #[uniffi::constructor]
    pub fn open(dir: String, consortium: Consortium) -> Result<Arc<Self>, ReporterError> {
        guarded(|| {
            let consortium = consortium_of(consortium)?;
            let dir = PathBuf::from(dir);
            if !dir.join("patient.toml").exists() {
                return Err(ReporterError::KeystoreMissing {
                    dir: dir.display().to_string(),
                });
            }
            Self::start(PatientKeystore::open(&dir)?, consortium)
        })
    }

    /// The patient's pseudonym, 32 hex digits: what carers are given.
    pub fn patient_id(&self) -> String {
        self.patient.clone()
    }

    /// The enrolment request the custodian hands to a validator operator (public: the
    /// pseudonym, the public keys, the records' shape), who enrols the patient with
    /// `bmpls patient enrol --request FILE --operator-key KEY`. Until then reports are refused
    /// (`NotEnrolled`) and kept aside.
    pub fn enrolment(&self) -> Result<String, ReporterError> {
        self.with(|inner, _| Ok(inner.queue.store().enrolment_request().to_text()))
    }

    /// Reports `fix`: checked, built, encrypted, signed and queued in the outbox, synced to
    /// disk; then one attempt to send the outbox. The fix is safe once this returns, whether a
    /// validator answered or not (the outcome says). A fix whose time was already reported is
    /// the same fix and is not queued again.
    pub fn report(&self, fix: Fix) -> Result<ReportOutcome, ReporterError> {
        self.with(|inner, this| {
            let seq = queue(inner, fix)?;
            let sent = this.send(inner, Patience::once())?;
            Ok(ReportOutcome { seq, sent })
        })
    }

    /// Queues `fix` (synced) without sending: for an app that sends in batches (`flush`
    /// later), which costs a phone a fraction of the bytes. Returns its sequence number, or
    /// none if a fix of that time was already reported.
    pub fn queue(&self, fix: Fix) -> Result<Option<u64>, ReporterError> {
        self.with(|inner, _| queue(inner, fix))
    }

    /// Sends what waits in the outbox, in order, in batches, each outcome written back before
    /// the next. While no validator answers it retries with backoff (0.5 s doubling to 30 s)
    /// for up to `wait_s` seconds (0: one attempt; at most 3600).
    pub fn flush(&self, wait_s: u32) -> Result<FlushOutcome, ReporterError> {
        self.with(|inner, this| {
            let patience = match wait_s {
                0 => Patience::once(),
                s => Patience::up_to(Duration::from_secs(u64::from(s.min(MAX_WAIT_S)))),
            };
            this.send(inner, patience)
        })
    }

    /// What waits in the outbox and what the chain refused.
    pub fn outbox_status(&self) -> Result<OutboxStatus, ReporterError> {
        self.with(|inner, _| {
            let outbox = inner.queue.outbox();
            let times: Vec<u64> = outbox.waiting().map(|r| r.fix_time_ms).collect();
            let refused = outbox
                .refused()
                .into_iter()
                .map(|r| RefusedRecord {
                    seq: r.record.seq.0,
                    fix_time_ms: r.record.fix_time_ms,
                    code: format!("{:?}", r.code),
                    reason: r.reason,
                })
                .collect();
            Ok(OutboxStatus {
                waiting: times.len() as u64,
                oldest_waiting_fix_time_ms: times.iter().min().copied(),
                newest_waiting_fix_time_ms: times.iter().max().copied(),
                refused,
                bytes: outbox.live_bytes(),
                next_seq: outbox.next_seq(inner.queue.store())?,
                max_records: MAX_OUTBOX_RECORDS as u64,
                max_bytes: MAX_OUTBOX_BYTES,
            })
        })
    }

    /// Forgets the records the chain refused (after the app showed why); returns how many.
    pub fn discard_refused(&self) -> Result<u64, ReporterError> {
        self.with(|inner, _| Ok(inner.queue.outbox_mut().discard_refused()?.len() as u64))
    }

    /// Closes the connections to the validators (before the app is suspended); the next send
    /// dials again.
    pub fn disconnect(&self) -> Result<(), ReporterError> {
        self.with(|inner, this| {
            this.close(inner);
            Ok(())
        })
    }
}

/// Checks a levels configuration before a keystore is made from it: a bad one is the app's
/// configuration, not a damaged keystore.
fn check_levels(levels: &str) -> Result<(), ReporterError> {
    bmpls_grid::LevelSet::from_toml(levels)
        .map(|_| ())
        .map_err(|e| ReporterError::BadConfig {
            reason: format!("levels: {e}"),
        })
}

/// Checks `fix` (a valid position and measurements, a time plausible against the clock) and
/// queues it.
fn queue(inner: &mut Inner, fix: Fix) -> Result<Option<u64>, ReporterError> {
    let fix = bmpls_client::Fix::from(fix);
    let bad = |e: bmpls_client::ReportError| ReporterError::BadFix {
        reason: e.to_string(),
    };
    bmpls_client::check_fix_time(fix.fix_time_ms, now_ms()).map_err(bad)?;
    bmpls_client::check_fix(&fix).map_err(bad)?;
    let queued = inner.queue.queue(&[fix], &mut rand_core::OsRng)?;
    Ok((!queued.seqs.is_empty()).then_some(queued.seqs.start))
}

impl Reporter {
    fn start(
        store: PatientKeystore,
        consortium: bmpls_client::Consortium,
    ) -> Result<Arc<Self>, ReporterError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| ReporterError::Internal {
                reason: format!("starting the runtime: {e}"),
            })?;
        let patient = hex_id(&store);
        let queue = ReportQueue::open(store, consortium.chain())?;
        Ok(Arc::new(Self {
            inner: Mutex::new(Inner {
                queue,
                nodes: None,
                last_used: Instant::now(),
            }),
            consortium,
            runtime,
            patient,
        }))
    }

    /// Runs `body` under the lock, panics caught. A lock poisoned by an earlier panic is
    /// refused: that call's state is not trusted.
    fn with<T>(
        &self,
        body: impl FnOnce(&mut Inner, &Self) -> Result<T, ReporterError>,
    ) -> Result<T, ReporterError> {
        guarded(|| {
            let mut inner = self.inner.lock().map_err(|_| ReporterError::Internal {
                reason: "an earlier call panicked; open the Reporter again".into(),
            })?;
            body(&mut inner, self)
        })
    }

    /// Sends the outbox as `patience` allows, dialling if no connection is open. A consortium
    /// that cannot be reached at all (a name that does not resolve offline) is one more
    /// validator that did not answer.
    fn send(&self, inner: &mut Inner, patience: Patience) -> Result<FlushOutcome, ReporterError> {
        let waiting = inner.queue.outbox().waiting_len();
        if waiting == 0 {
            return Ok(FlushOutcome::of(Flushed::default()));
        }
        if inner.last_used.elapsed() >= STALE_AFTER {
            self.close(inner);
        }
        let flushed = self.runtime.block_on(async {
            if inner.nodes.is_none() {
                let key = inner.queue.store().reporter_key();
                match self.consortium.connect(key).await {
                    Ok(nodes) => inner.nodes = Some(nodes),
                    Err(e) => {
                        return Ok(Flushed {
                            waiting,
                            last_failure: Some(e.to_string()),
                            ..Flushed::default()
                        });
                    }
                }
            }
            let Inner { queue, nodes, .. } = inner;
            match nodes {
                Some(nodes) => queue.outbox_mut().flush(nodes, patience).await,
                None => Ok(Flushed::default()),
            }
        })?;
        inner.last_used = Instant::now();
        Ok(FlushOutcome::of(flushed))
    }

    fn close(&self, inner: &mut Inner) {
        if let Some(nodes) = inner.nodes.take() {
            self.runtime.block_on(nodes.close());
        }
    }
}

impl Drop for Reporter {
    fn drop(&mut self) {
        if let Ok(inner) = self.inner.get_mut() {
            if let Some(nodes) = inner.nodes.take() {
                self.runtime.block_on(nodes.close());
            }
        }
    }
}

fn hex_id(store: &PatientKeystore) -> String {
    store.patient.0.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_inside_a_call_is_returned_as_an_internal_error() {
        let outcome: Result<(), ReporterError> = guarded(|| panic!("a bug"));
        match outcome {
            Err(ReporterError::Internal { reason }) => assert_eq!(reason, "a bug"),
            other => panic!("expected Internal, got {other:?}"),
        }
        assert_eq!(guarded(|| Ok(7)).expect("no panic"), 7);
    }
}

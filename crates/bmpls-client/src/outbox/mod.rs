//! The reporter's durable outbox: every record is built, signed and written here, synced to
//! disk, before anything is sent, so a fix survives a phone without signal, a kill -9 and a
//! reboot. Records leave in sequence order, in batches, when a validator answers
//! ([`Outbox::flush`], `flush.rs`); one already committed (a resend after a lost
//! acknowledgement) counts as delivered; one the chain refuses is kept aside with its reason.
//!
//! **Storage** (framing, torn-tail recovery and syncs in `bmpls_framelog`). One append-only file, `outbox.log` in the patient's keystore, of frames
//! `length (u32 BE) ‖ CRC-32 of the payload (u32 BE) ‖ payload`; a payload is a kind byte and
//! then a record (canonical encoding), a delivery (seq, height) or a refusal (seq, code,
//! reason). An append is `fsync`ed before [`Outbox::push`] returns, and the file's directory
//! when the file is created or replaced, so whatever the caller was told is queued is on
//! stable storage. Deliveries are synced too, though losing one is harmless: the record is
//! sent again and counted as delivered. When enough frames are settled the file is rewritten
//! with only what is still waiting or refused (a new file, synced, renamed over the old, the
//! directory synced). A crash mid-append leaves a *torn tail* — an incomplete or unchecked last
//! frame, never acknowledged to anyone — which [`Outbox::open`] cuts off and reports as
//! [`Recovery::TornTail`]; a bad frame with good frames after it is not a crash's doing and is
//! refused as [`OutboxError::Corrupt`], never skipped.
//!
//! **Bounds.** At most [`MAX_OUTBOX_RECORDS`] records waiting or refused, holding at most
//! [`MAX_OUTBOX_BYTES`]; past either, [`OutboxError::Full`]. A record with the shipped six
//! levels takes 549 bytes here, so a week of fixes every 30 s (20,160) takes about 11 MB.
//!
//! **Sequence numbers.** A record's number is the keystore's `next_seq` or one past the last
//! record waiting here, whichever is greater; the keystore's counter is advanced (and synced)
//! after the record is, and repaired when the outbox is opened, so a crash between the two
//! never gives two records one number. A refused record's number is not counted: the chain
//! never took it.
//!
//! One process at a time: the outbox holds an exclusive lock on `outbox.lock` while open
//! ([`OutboxError::Busy`] otherwise).

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

// The outbox holds only what validators see (ciphertexts, fix times), but it sits beside the
// keys and says when the patient was where no validator was told yet: `bmpls_framelog`
// creates its files owner-only.
#[cfg(test)]
use bmpls_framelog::HEADER_BYTES;
use bmpls_framelog::{Frame, LockError, LogFile, ScanError, TornTail};

use bmpls_net::RefusalCode;
use bmpls_types::limits::MAX_TX_BYTES;
use bmpls_types::{Canonical, LocationRecord, Seq};

use crate::keystore::KeystoreError;
use crate::{Fix, PatientKeystore, ReportError, Reporter};

mod flush;
mod queue;

pub use flush::{Backoff, Flushed, MAX_BATCH_BYTES, Patience, Step};
pub use queue::{Queued, ReportQueue};

/// Most records waiting or refused in one outbox: a week of fixes every 30 s is 20,160.
pub const MAX_OUTBOX_RECORDS: usize = 32_768;

/// Most bytes of frames holding records waiting or refused (32 MiB).
pub const MAX_OUTBOX_BYTES: u64 = 32 << 20;

/// Most bytes of a refusal's reason kept with it.
pub const MAX_REASON_BYTES: usize = 512;

/// Most bytes of one frame's payload: a record of the largest transaction, and its kind.
const MAX_FRAME_BYTES: usize = MAX_TX_BYTES + 1;

/// Settled frames (deliveries, and the records they settle) tolerated before the file is
/// rewritten without them; it is also rewritten whenever nothing waits.
const COMPACT_AFTER_SETTLED: usize = 4096;

const _: () = assert!(MAX_OUTBOX_RECORDS >= 20_160);
const _: () = assert!((MAX_FRAME_BYTES as u64) < MAX_OUTBOX_BYTES);

const KIND_RECORD: u8 = 1;
const KIND_DELIVERED: u8 = 2;
const KIND_REFUSED: u8 = 3;

/// The outbox's file name in the keystore.
pub const LOG_FILE: &str = "outbox.log";
const LOCK_FILE: &str = "outbox.lock";
const TMP_FILE: &str = "outbox.log.tmp";

/// Why the outbox cannot do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    /// Reading or writing the outbox failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
    /// The outbox is full: nothing more is queued until records are delivered (or refused
    /// ones discarded).
    #[error(
        "the outbox is full: {records} records in {bytes} bytes (at most {MAX_OUTBOX_RECORDS} \
         records, {MAX_OUTBOX_BYTES} bytes); nothing was queued: send the backlog \
         (bmpls report --flush) or discard refused records"
    )]
    Full {
        /// Records waiting or refused.
        records: usize,
        /// Their bytes on disk.
        bytes: u64,
    },
    /// A frame that is not a crash's torn tail is damaged: the file was changed by something
    /// else than the outbox, or the disk is failing. Nothing is skipped or truncated.
    #[error("{path}: damaged at byte {offset}: {why}; the file is left as it is")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Where the bad frame starts.
        offset: u64,
        /// What is wrong with it.
        why: String,
    },
    /// Another process holds the outbox.
    #[error("{0}: the outbox is in use by another bmpls process (a gateway, or a report)")]
    Busy(PathBuf),
    /// A record out of order: its sequence number is not above every waiting one.
    #[error("record {got} is not after the outbox's last record {last}")]
    OutOfOrder {
        /// The last waiting record's number.
        last: u64,
        /// The record's.
        got: u64,
    },
    /// The keystore could not be read or updated.
    #[error(transparent)]
    Keystore(#[from] KeystoreError),
    /// A fix could not become a record; nothing of its batch was queued.
    #[error("the fix at {fix_time_ms} ms: {source}")]
    Report {
        /// The fix's time.
        fix_time_ms: u64,
        /// Why.
        source: ReportError,
    },
}

/// What [`Outbox::open`] found and repaired.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Recovery {
    /// The last frame was incomplete or failed its checksum: an append cut by a crash, which
    /// no caller was told had been queued. It was cut off.
    TornTail {
        /// Where it started (the file's new length).
        offset: u64,
        /// How many bytes were cut.
        bytes: u64,
    },
}

impl std::fmt::Display for Recovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::TornTail { offset, bytes } => write!(
                f,
                "cut {bytes} bytes of an append interrupted by a crash at byte {offset} (never \
                 acknowledged as queued)"
            ),
        }
    }
}

/// A record the chain refused, kept with why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refused {
    /// The record, as it was signed.
    pub record: LocationRecord,
    /// Why, for programs.
    pub code: RefusalCode,
    /// Why, for people.
    pub reason: String,
}

struct Live {
    record: LocationRecord,
    frame_bytes: u64,
}

/// A patient's outbox, open and locked.
pub struct Outbox {
    dir: PathBuf,
    file: LogFile,
    /// Held for the lock.
    _lock: File,
    waiting: BTreeMap<u64, Live>,
    /// In the order they were refused (a number may recur: refused, then given to a new
    /// record after `patient resync`).
    refused: Vec<(Live, RefusalCode, String)>,
    live_bytes: u64,
    settled_frames: usize,
    recovery: Option<Recovery>,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox")
            .field("dir", &self.dir)
            .field("waiting", &self.waiting.len())
            .field("refused", &self.refused.len())
            .finish_non_exhaustive()
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> OutboxError + '_ {
    move |source| OutboxError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Syncs a directory, so that a file created or renamed in it survives a crash.
fn sync_dir(dir: &Path) -> Result<(), OutboxError> {
    bmpls_framelog::sync_dir(dir).map_err(io(dir))
}

fn record_frame(record: &LocationRecord) -> Vec<u8> {
    let mut payload = vec![KIND_RECORD];
    payload.extend_from_slice(&record.encode());
    bmpls_framelog::encode(&payload)
}

fn delivered_frame(seq: u64, height: u64) -> Vec<u8> {
    let mut payload = vec![KIND_DELIVERED];
    payload.extend_from_slice(&seq.to_be_bytes());
    payload.extend_from_slice(&height.to_be_bytes());
    bmpls_framelog::encode(&payload)
}

fn refused_frame(seq: u64, code: RefusalCode, reason: &str) -> Vec<u8> {
    let mut payload = vec![KIND_REFUSED];
    payload.extend_from_slice(&seq.to_be_bytes());
    payload.push(code as u8);
    payload.extend_from_slice(reason.as_bytes());
    bmpls_framelog::encode(&payload)
}

/// The longest prefix of `reason` of at most [`MAX_REASON_BYTES`] that ends on a character.
fn cut_reason(reason: &str) -> &str {
    let mut end = reason.len().min(MAX_REASON_BYTES);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    &reason[..end]
}

fn refusal_code(byte: u8) -> Option<RefusalCode> {
    use RefusalCode::*;
    [
        Full,
        TooLarge,
        Replay,
        Gap,
        NotEnrolled,
        AlreadyEnrolled,
        BadSignature,
        NotAuthorised,
        Invalid,
        Timeout,
        ShuttingDown,
        WeakKey,
    ]
    .into_iter()
    .find(|c| *c as u8 == byte)
}

/// One frame read back: what it says.
enum Entry {
    Record(LocationRecord),
    Delivered(u64),
    Refused(u64, RefusalCode, String),
}

fn be_u64(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(bytes.get(..8)?.try_into().ok()?))
}

fn parse_payload(payload: &[u8]) -> Result<Entry, String> {
    let (&kind, body) = payload.split_first().ok_or("an empty frame")?;
    match kind {
        KIND_RECORD => LocationRecord::decode(body)
            .map(Entry::Record)
            .map_err(|e| format!("a record that does not decode: {e}")),
        KIND_DELIVERED if body.len() == 16 => {
            Ok(Entry::Delivered(be_u64(body).ok_or("short delivery")?))
        }
        KIND_REFUSED if body.len() >= 9 && body.len() <= 9 + MAX_REASON_BYTES => {
            let seq = be_u64(body).ok_or("short refusal")?;
            let code = refusal_code(body[8]).ok_or("an unknown refusal code")?;
            let reason = std::str::from_utf8(&body[9..]).map_err(|_| "a reason not UTF-8")?;
            Ok(Entry::Refused(seq, code, reason.to_string()))
        }
        other => Err(format!("an unknown or malformed frame of kind {other}")),
    }
}

impl Outbox {
    /// Opens (creating it if need be) the outbox of the keystore `store`, locks it, cuts a
    /// torn tail ([`Outbox::recovery`]), and brings the keystore's `next_seq` past every
    /// record waiting here.
    pub fn open(store: &PatientKeystore) -> Result<Self, OutboxError> {
        let dir = store.dir().to_path_buf();
        let lock_path = dir.join(LOCK_FILE);
        // Released by the kernel when the process ends, however it ends (kill -9 included).
        let lock = match bmpls_framelog::lock_exclusive(&lock_path) {
            Ok(lock) => lock,
            Err(LockError::Busy) => return Err(OutboxError::Busy(dir)),
            Err(LockError::Io(e)) => return Err(io(&lock_path)(e)),
        };
        let path = dir.join(LOG_FILE);
        let (mut file, created) = LogFile::open(&path, true).map_err(io(&path))?;
        if created {
            sync_dir(&dir)?;
        }
        let (frames, torn) = file.scan(MAX_FRAME_BYTES).map_err(|e| match e {
            ScanError::Io(source) => io(&path)(source),
            ScanError::Corrupt { offset, damage } => OutboxError::Corrupt {
                path: path.clone(),
                offset,
                why: damage.to_string(),
            },
        })?;
        let mut outbox = Self {
            dir,
            file,
            _lock: lock,
            waiting: BTreeMap::new(),
            refused: Vec::new(),
            live_bytes: 0,
            settled_frames: 0,
            recovery: None,
        };
        outbox.replay(&frames, &path)?;
        if let Some(torn) = torn {
            outbox.cut_tail(torn, &path)?;
        }
        if let Some(last) = outbox.waiting.keys().next_back() {
            if store.next_seq()? <= *last {
                store.set_next_seq(last + 1)?;
            }
        }
        Ok(outbox)
    }

    /// Rebuilds the state from the file's frames (a torn tail was set aside by the scan).
    fn replay(&mut self, frames: &[Frame], path: &Path) -> Result<(), OutboxError> {
        for frame in frames {
            let corrupt = |why: String| OutboxError::Corrupt {
                path: path.to_path_buf(),
                offset: frame.offset,
                why,
            };
            let len = frame.bytes();
            match parse_payload(&frame.payload).map_err(&corrupt)? {
                Entry::Record(record) => {
                    let seq = record.seq.0;
                    if let Some(last) = self.waiting.keys().next_back() {
                        if seq <= *last {
                            return Err(corrupt(format!("record {seq} after record {last}")));
                        }
                    }
                    self.live_bytes += len;
                    self.waiting.insert(
                        seq,
                        Live {
                            record,
                            frame_bytes: len,
                        },
                    );
                }
                Entry::Delivered(seq) => {
                    let live = self.waiting.remove(&seq).ok_or_else(|| {
                        corrupt(format!("a delivery of record {seq}, not waiting"))
                    })?;
                    self.live_bytes -= live.frame_bytes;
                    self.settled_frames += 2;
                }
                Entry::Refused(seq, code, reason) => {
                    let live = self.waiting.remove(&seq).ok_or_else(|| {
                        corrupt(format!("a refusal of record {seq}, not waiting"))
                    })?;
                    self.refused.push((live, code, reason));
                }
            }
        }
        Ok(())
    }

    fn cut_tail(&mut self, torn: TornTail, path: &Path) -> Result<(), OutboxError> {
        self.file.cut_tail(torn).map_err(io(path))?;
        self.recovery = Some(Recovery::TornTail {
            offset: torn.offset,
            bytes: torn.bytes,
        });
        Ok(())
    }

    /// What opening found and repaired, if anything.
    pub fn recovery(&self) -> Option<&Recovery> {
        self.recovery.as_ref()
    }

    /// The records waiting to be sent, in sequence order.
    pub fn waiting(&self) -> impl Iterator<Item = &LocationRecord> {
        self.waiting.values().map(|l| &l.record)
    }

    /// How many records wait.
    pub fn waiting_len(&self) -> usize {
        self.waiting.len()
    }

    /// The records the chain refused, in sequence order, with why.
    pub fn refused(&self) -> Vec<Refused> {
        self.refused
            .iter()
            .map(|(live, code, reason)| Refused {
                record: live.record.clone(),
                code: *code,
                reason: reason.clone(),
            })
            .collect()
    }

    /// The bytes on disk of the records waiting or refused.
    pub fn live_bytes(&self) -> u64 {
        self.live_bytes
    }

    /// The sequence number the next record takes: the keystore's, or one past the last
    /// waiting record, whichever is greater.
    pub fn next_seq(&self, store: &PatientKeystore) -> Result<u64, OutboxError> {
        let after_waiting = self.waiting.keys().next_back().map_or(0, |s| s + 1);
        Ok(store.next_seq()?.max(after_waiting))
    }

    /// Queues `records` (each numbered above every waiting one, in order): appended and
    /// synced before it returns, all or none. Refused whole with [`OutboxError::Full`] when
    /// they do not fit.
    pub fn push(&mut self, records: Vec<LocationRecord>) -> Result<(), OutboxError> {
        let mut last = self.waiting.keys().next_back().copied();
        let mut bytes = Vec::new();
        let mut frames = Vec::with_capacity(records.len());
        for record in &records {
            if let Some(last) = last.filter(|l| record.seq.0 <= *l) {
                return Err(OutboxError::OutOfOrder {
                    last,
                    got: record.seq.0,
                });
            }
            last = Some(record.seq.0);
            let frame = record_frame(record);
            frames.push(frame.len() as u64);
            bytes.extend_from_slice(&frame);
        }
        let count = self.waiting.len() + self.refused.len();
        if count + records.len() > MAX_OUTBOX_RECORDS
            || self.live_bytes + bytes.len() as u64 > MAX_OUTBOX_BYTES
        {
            return Err(OutboxError::Full {
                records: count,
                bytes: self.live_bytes,
            });
        }
        self.append(&bytes)?;
        for (record, frame_bytes) in records.into_iter().zip(frames) {
            self.live_bytes += frame_bytes;
            self.waiting.insert(
                record.seq.0,
                Live {
                    record,
                    frame_bytes,
                },
            );
        }
        Ok(())
    }

    /// Builds, signs and queues a record of each of `fixes`, numbered from
    /// [`Outbox::next_seq`]: synced here, then the keystore's `next_seq` advanced past them.
    /// Returns the numbers given. A fix that cannot be a record queues none of them.
    pub fn queue(
        &mut self,
        store: &PatientKeystore,
        reporter: &mut Reporter,
        fixes: &[Fix],
        rng: &mut impl rand_core::CryptoRngCore,
    ) -> Result<std::ops::Range<u64>, OutboxError> {
        let first = self.next_seq(store)?;
        let mut records = Vec::with_capacity(fixes.len());
        for (i, fix) in fixes.iter().enumerate() {
            let record = reporter
                .build(fix, Seq(first + i as u64), rng)
                .map_err(|source| OutboxError::Report {
                    fix_time_ms: fix.fix_time_ms,
                    source,
                })?;
            records.push(record);
        }
        let end = first + records.len() as u64;
        self.push(records)?;
        store.set_next_seq(end)?;
        Ok(first..end)
    }

    /// Appends `bytes` and syncs the file.
    fn append(&mut self, bytes: &[u8]) -> Result<(), OutboxError> {
        let path = self.dir.join(LOG_FILE);
        // A failed append is taken back, so the next one does not follow half a frame.
        self.file.append(bytes).map_err(io(&path))?;
        self.file.sync_data().map_err(io(&path))
    }

    /// Records that each of `delivered` (seq, height) is committed and each of `refused` was
    /// refused: synced, and the file rewritten when enough is settled.
    fn settle(
        &mut self,
        delivered: &[(u64, u64)],
        refused: &[(u64, RefusalCode, String)],
    ) -> Result<(), OutboxError> {
        let mut bytes = Vec::new();
        for &(seq, height) in delivered {
            if let Some(live) = self.waiting.remove(&seq) {
                bytes.extend_from_slice(&delivered_frame(seq, height));
                self.live_bytes -= live.frame_bytes;
                self.settled_frames += 2;
            }
        }
        for (seq, code, reason) in refused {
            if let Some(live) = self.waiting.remove(seq) {
                let reason = cut_reason(reason).to_string();
                bytes.extend_from_slice(&refused_frame(*seq, *code, &reason));
                self.refused.push((live, *code, reason));
            }
        }
        if bytes.is_empty() {
            return Ok(());
        }
        self.append(&bytes)?;
        if self.settled_frames >= COMPACT_AFTER_SETTLED
            || (self.waiting.is_empty() && self.settled_frames > 0)
        {
            self.compact()?;
        }
        Ok(())
    }

    /// Forgets the refused records (after their reasons were shown): they no longer count
    /// against the bounds. Returns them.
    pub fn discard_refused(&mut self) -> Result<Vec<Refused>, OutboxError> {
        let gone = self.refused();
        let kept = std::mem::take(&mut self.refused);
        for (live, _, _) in &kept {
            self.live_bytes -= live.frame_bytes;
        }
        if let Err(e) = self.compact() {
            // Not rewritten: what is on disk still holds them, and so does this state.
            self.refused = kept;
            for (live, _, _) in &self.refused {
                self.live_bytes += live.frame_bytes;
            }
            return Err(e);
        }
        Ok(gone)
    }

    /// Rewrites the file with only the records waiting or refused: a new file, synced, renamed
    /// over the old one, the directory synced.
    fn compact(&mut self) -> Result<(), OutboxError> {
        let tmp = self.dir.join(TMP_FILE);
        let path = self.dir.join(LOG_FILE);
        // Refused records first, each followed by its refusal, then the waiting ones in order:
        // a number may be both refused and waiting (given again after `patient resync`).
        let mut bytes = Vec::new();
        for (live, code, reason) in &self.refused {
            bytes.extend_from_slice(&record_frame(&live.record));
            bytes.extend_from_slice(&refused_frame(live.record.seq.0, *code, reason));
        }
        for live in self.waiting.values() {
            bytes.extend_from_slice(&record_frame(&live.record));
        }
        bmpls_framelog::write_synced(&tmp, &bytes).map_err(io(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(io(&path))?;
        sync_dir(&self.dir)?;
        self.file = LogFile::open(&path, false).map_err(io(&path))?.0;
        self.settled_frames = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests;

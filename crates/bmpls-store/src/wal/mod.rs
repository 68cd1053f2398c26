//! The consensus write-ahead log: append-only files of checksummed frames (`bmpls_framelog`),
//! one file per height, in their own folder beside the store (`DATA_DIR/wal`).
//!
//! **Layout.** `wal/<height, 20 digits>.log`, each a run of frames `length (u32 BE) ‖ CRC-32
//! (u32 BE) ‖ payload`, payload = `height (u64 BE) ‖ entry` (the height again, so a file that
//! is not where its name says is caught); `wal/wal.lock` holds the exclusive lock of the
//! validator using the log.
//!
//! **Why a file per height.** The engine prunes every height below the one it starts, which
//! here is unlinking whole files and syncing the folder: nothing is ever rewritten, so no crash
//! can leave a half-rewritten log, and a torn tail can only be in a file appended to since the
//! last sync. The cost is one folder sync per height, when its file is created.
//!
//! **Durability.** `append(…, durable)` fdatasyncs every file written since the last sync and
//! syncs the folder when one was created, before it returns: this entry and every earlier one
//! are then on stable storage. Without `durable` nothing is synced (the next durable append
//! carries the entry).
//!
//! **Opening.** Every file is read back and each frame's checksum and height checked. A torn
//! tail (an incomplete last frame, or a last frame failing its checksum) is what a crash leaves
//! of an append nobody was told had happened: it is cut off, synced, and logged at `warn` with
//! the file and the bytes cut. A bad frame with good ones after it is not a crash's doing:
//! [`StoreError::CorruptLog`], naming the file and the offset, never skipped. A frame's
//! payload is at most [`MAX_WAL_ENTRY_BYTES`] plus its height, so a damaged length cannot make
//! the reader allocate more. A log of the old layout (a sled database) is migrated once
//! (`migrate.rs`).

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use bmpls_consensus::{WalRecord, WalStorage};
use bmpls_framelog::{Frame, FrameReader, LockError, LogFile, ScanError};
use bmpls_types::Canonical;
use bmpls_types::limits::MAX_BLOCK_BYTES;

use crate::error::StoreError;

mod migrate;

/// Most bytes of one entry: a whole proposed block, and room for what the engine logs with it.
pub const MAX_WAL_ENTRY_BYTES: usize = MAX_BLOCK_BYTES + 64 * 1024;

const _: () = assert!(MAX_WAL_ENTRY_BYTES >= <WalRecord as Canonical>::MAX_BYTES);

/// Most bytes of a frame's payload: the height, then the entry.
const MAX_PAYLOAD_BYTES: usize = HEIGHT_BYTES + MAX_WAL_ENTRY_BYTES;

const _: () = assert!(MAX_PAYLOAD_BYTES <= u32::MAX as usize);

const HEIGHT_BYTES: usize = 8;

/// Files kept open for appending at once; opening one more syncs and closes them first (the
/// engine appends to one height at a time, so this is never reached in practice).
const MAX_OPEN_FILES: usize = 8;

/// The lock file, in the log's folder.
pub(crate) const LOCK_FILE: &str = "wal.lock";
const SUFFIX: &str = ".log";

/// A height's file name.
pub(crate) fn file_name(height: u64) -> String {
    format!("{height:020}{SUFFIX}")
}

/// The height a file name stands for, if it is one of the log's.
fn height_of(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(SUFFIX)?;
    let height = digits.parse().ok()?;
    (file_name(height) == name).then_some(height)
}

/// The payload of `entry` at `height`.
pub(crate) fn payload(height: u64, entry: &[u8]) -> Vec<u8> {
    let mut payload = Vec::with_capacity(HEIGHT_BYTES + entry.len());
    payload.extend_from_slice(&height.to_be_bytes());
    payload.extend_from_slice(entry);
    payload
}

fn log_error(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Log {
        path: path.to_path_buf(),
        source,
    }
}

fn scan_error(path: &Path, error: ScanError) -> StoreError {
    match error {
        ScanError::Io(source) => log_error(path)(source),
        ScanError::Corrupt { offset, damage } => StoreError::CorruptLog {
            path: path.to_path_buf(),
            offset,
            why: damage.to_string(),
        },
    }
}

/// The entry of a frame read from the file of `height`.
fn entry_of(frame: Frame, height: u64, path: &Path) -> Result<Vec<u8>, StoreError> {
    let mut payload = frame.payload;
    let at = payload
        .get(..HEIGHT_BYTES)
        .and_then(|h| h.try_into().ok())
        .map(u64::from_be_bytes);
    if at != Some(height) {
        return Err(StoreError::CorruptLog {
            path: path.to_path_buf(),
            offset: frame.offset,
            why: format!("a frame of height {at:?} in the file of height {height}"),
        });
    }
    payload.drain(..HEIGHT_BYTES);
    Ok(payload)
}

struct Segment {
    file: LogFile,
    /// Written since it was last synced.
    dirty: bool,
}

/// A validator's consensus log.
pub struct FileWal {
    dir: PathBuf,
    /// Held for the lock.
    _lock: File,
    /// The heights that have a file.
    heights: BTreeSet<u64>,
    /// Files open for appending, by height.
    open: BTreeMap<u64, Segment>,
    /// A file was created since the folder was last synced.
    dir_dirty: bool,
}

impl std::fmt::Debug for FileWal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileWal")
            .field("dir", &self.dir)
            .field("heights", &self.heights.len())
            .finish_non_exhaustive()
    }
}

impl FileWal {
    /// Opens (or creates) the log in `dir`: locks it, migrates a log of the old layout, cuts
    /// a torn tail off any file and checks every frame.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        if !dir.exists() {
            std::fs::create_dir_all(dir).map_err(log_error(dir))?;
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                bmpls_framelog::sync_dir(parent).map_err(log_error(parent))?;
            }
        }
        let lock_path = dir.join(LOCK_FILE);
        let lock = match bmpls_framelog::lock_exclusive(&lock_path) {
            Ok(lock) => lock,
            Err(LockError::Busy) => return Err(StoreError::Locked(dir.to_path_buf())),
            Err(LockError::Io(e)) => return Err(log_error(&lock_path)(e)),
        };
        migrate::run(dir)?;
        let mut heights = BTreeSet::new();
        for item in std::fs::read_dir(dir).map_err(log_error(dir))? {
            let item = item.map_err(log_error(dir))?;
            if let Some(height) = item.file_name().to_str().and_then(height_of) {
                heights.insert(height);
            }
        }
        for &height in &heights {
            recover(&dir.join(file_name(height)), height)?;
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            _lock: lock,
            heights,
            open: BTreeMap::new(),
            dir_dirty: false,
        })
    }

    fn path(&self, height: u64) -> PathBuf {
        self.dir.join(file_name(height))
    }

    /// Syncs every file written since the last sync, and the folder if one was created; then
    /// keeps only the highest file open.
    fn sync(&mut self) -> Result<(), StoreError> {
        for (&height, segment) in &mut self.open {
            if segment.dirty {
                let path = self.dir.join(file_name(height));
                segment
                    .file
                    .sync_data()
                    .map_err(|source| StoreError::Sync { dir: path, source })?;
                segment.dirty = false;
            }
        }
        if self.dir_dirty {
            bmpls_framelog::sync_dir(&self.dir).map_err(|source| StoreError::Sync {
                dir: self.dir.clone(),
                source,
            })?;
            self.dir_dirty = false;
        }
        if let Some(&last) = self.open.keys().next_back() {
            self.open.retain(|&height, _| height == last);
        }
        Ok(())
    }

    fn segment(&mut self, height: u64) -> Result<&mut Segment, StoreError> {
        if !self.open.contains_key(&height) && self.open.len() >= MAX_OPEN_FILES {
            self.sync()?;
            self.open.clear();
        }
        let path = self.dir.join(file_name(height));
        match self.open.entry(height) {
            std::collections::btree_map::Entry::Occupied(open) => Ok(open.into_mut()),
            std::collections::btree_map::Entry::Vacant(slot) => {
                let (file, created) = LogFile::open(&path, true).map_err(log_error(&path))?;
                self.dir_dirty |= created;
                self.heights.insert(height);
                Ok(slot.insert(Segment { file, dirty: false }))
            }
        }
    }
}

/// Checks every frame of the file of `height`, cutting a torn tail.
fn recover(path: &Path, height: u64) -> Result<(), StoreError> {
    let (mut file, _) = LogFile::open(path, false).map_err(log_error(path))?;
    let (frames, torn) = file
        .scan(MAX_PAYLOAD_BYTES)
        .map_err(|e| scan_error(path, e))?;
    let whole = frames.len();
    for frame in frames {
        entry_of(frame, height, path)?;
    }
    if let Some(torn) = torn {
        file.cut_tail(torn).map_err(log_error(path))?;
        tracing::warn!(
            file = %path.display(),
            offset = torn.offset,
            bytes_cut = torn.bytes,
            entries_kept = whole,
            "cut the torn tail of a consensus log file (an append a crash interrupted, never \
             acknowledged)"
        );
    }
    Ok(())
}

impl WalStorage for FileWal {
    type Error = StoreError;

    fn append(&mut self, height: u64, entry: &[u8], durable: bool) -> Result<(), StoreError> {
        // The frame's payload is never empty: it starts with the height.
        if entry.len() > MAX_WAL_ENTRY_BYTES {
            return Err(StoreError::EntryTooLarge {
                bytes: entry.len(),
                limit: MAX_WAL_ENTRY_BYTES,
            });
        }
        let frame = bmpls_framelog::encode(&payload(height, entry));
        let path = self.path(height);
        let segment = self.segment(height)?;
        // A failed append is taken back (`LogFile`), so a full disk leaves no half frame.
        segment.file.append(&frame).map_err(log_error(&path))?;
        segment.dirty = true;
        if durable {
            // What the engine signs next depends on this entry: it must survive a power cut,
            // or a restarted validator could sign a second value at the same height and round.
            self.sync()?;
        }
        Ok(())
    }

    fn entries_from(&self, height: u64) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let mut entries = Vec::new();
        for &at in self.heights.range(height..) {
            let path = self.path(at);
            let file = File::open(&path).map_err(log_error(&path))?;
            let len = file.metadata().map_err(log_error(&path))?.len();
            let mut reader = FrameReader::new(BufReader::new(file), len, MAX_PAYLOAD_BYTES);
            while let Some(frame) = reader.next_frame().map_err(|e| scan_error(&path, e))? {
                entries.push((at, entry_of(frame, at, &path)?));
            }
            // Opening cut every torn tail and appends land whole: one now is damage.
            if let Some(torn) = reader.torn() {
                return Err(StoreError::CorruptLog {
                    path,
                    offset: torn.offset,
                    why: "an incomplete frame after the log was opened".into(),
                });
            }
        }
        Ok(entries)
    }

    fn prune_below(&mut self, height: u64) -> Result<(), StoreError> {
        let below: Vec<u64> = self.heights.range(..height).copied().collect();
        if below.is_empty() {
            return Ok(());
        }
        for at in below {
            self.open.remove(&at);
            let path = self.path(at);
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(log_error(&path)(e)),
            }
            self.heights.remove(&at);
        }
        // Not needed for safety (a pruned file that comes back is below every height read),
        // but it keeps a crash from bringing back what was forgotten.
        bmpls_framelog::sync_dir(&self.dir).map_err(|source| StoreError::Sync {
            dir: self.dir.clone(),
            source,
        })
    }
}

#[cfg(test)]
mod tests;

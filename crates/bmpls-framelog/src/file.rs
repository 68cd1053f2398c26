//! The file side: an append-only file of frames that never keeps half an append, the folder
//! sync that makes a created or renamed file survive a crash, a whole file written and synced,
//! and the exclusive lock that keeps a second process out.

use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, Seek, SeekFrom, Write};
use std::path::Path;

use crate::{Frame, FrameReader, ScanError, TornTail};

/// Logs hold what validators see and when a patient was somewhere: owner-only.
fn owner_only(options: &mut OpenOptions) -> &mut OpenOptions {
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(options, 0o600);
    options
}

/// Syncs a folder, so that a file created, renamed or removed in it stays so after a crash.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Writes `bytes` as the whole of `path` (created owner-only, or truncated) and syncs it. The
/// caller syncs the folder once the file has its final name.
pub fn write_synced(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut out = owner_only(OpenOptions::new().create(true).truncate(true))
        .write(true)
        .open(path)?;
    out.write_all(bytes)?;
    out.sync_all()
}

/// Why a lock was not taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process (or another handle in this one) holds it.
    #[error("held by another process")]
    Busy,
    /// The lock file could not be opened or locked.
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Takes an exclusive lock on `path` (created if need be), held while the returned file is
/// open and released by the kernel when the process ends, however it ends (kill -9 included).
pub fn lock_exclusive(path: &Path) -> Result<File, LockError> {
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)?;
    match rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(lock),
        Err(rustix::io::Errno::WOULDBLOCK) => Err(LockError::Busy),
        Err(e) => Err(LockError::Io(e.into())),
    }
}

/// An append-only file of frames, open for appending. An append either lands whole or is
/// taken back: a failed write (a full disk) is truncated away, so the next append does not
/// follow half a frame; if even that fails, every later append is refused.
#[derive(Debug)]
pub struct LogFile {
    file: File,
    len: u64,
    broken: bool,
}

impl LogFile {
    /// Opens `path` for appending, creating it (owner-only) if `create`; also returns whether
    /// it was created, in which case the caller syncs its folder before relying on it.
    pub fn open(path: &Path, create: bool) -> io::Result<(Self, bool)> {
        let created = create && !path.exists();
        let file = owner_only(OpenOptions::new().create(create).truncate(false))
            .read(true)
            .append(true)
            .open(path)?;
        let len = file.metadata()?.len();
        Ok((
            Self {
                file,
                len,
                broken: false,
            },
            created,
        ))
    }

    /// Its length in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Every frame from the start, and a torn tail if the file ends in one; changes nothing
    /// (cut the tail with [`LogFile::cut_tail`] once the frames were judged).
    pub fn scan(
        &mut self,
        max_payload: usize,
    ) -> Result<(Vec<Frame>, Option<TornTail>), ScanError> {
        self.file.seek(SeekFrom::Start(0))?;
        FrameReader::new(BufReader::new(&self.file), self.len, max_payload).read_all()
    }

    /// Cuts `torn` off and syncs the file.
    pub fn cut_tail(&mut self, torn: TornTail) -> io::Result<()> {
        self.file.set_len(torn.offset)?;
        self.file.sync_all()?;
        self.len = torn.offset;
        Ok(())
    }

    /// Appends `bytes` (whole frames). Not synced: see [`LogFile::sync_data`].
    pub fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        if self.broken {
            return Err(io::Error::other(
                "an earlier append failed and could not be taken back",
            ));
        }
        if let Err(e) = self.file.write_all(bytes) {
            if self.file.set_len(self.len).is_err() {
                self.broken = true;
            }
            return Err(e);
        }
        self.len += bytes.len() as u64;
        Ok(())
    }

    /// Puts what was appended on stable storage (`fdatasync`).
    pub fn sync_data(&self) -> io::Result<()> {
        self.file.sync_data()
    }
}

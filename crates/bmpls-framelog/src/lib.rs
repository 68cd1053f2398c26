//! Append-only logs of checksummed frames, the one piece of code behind the validator's
//! consensus log (`bmpls_store::FileWal`) and the reporter's outbox (`bmpls_client::Outbox`).
//!
//! **Frame.** `length of the payload (u32 BE) ‖ CRC-32 (IEEE) of the payload (u32 BE) ‖
//! payload`. A payload is never empty and at most the caller's bound, so a damaged length
//! cannot make a reader allocate more than that bound.
//!
//! **Reading back.** A crash mid-append leaves a *torn tail*: the last frame runs past the end
//! of the file, or fails its checksum with nothing but zeros after it (the file system may
//! leave zeros where unsynced data should be). Nobody was told such a frame was written, so it
//! is safe to cut off ([`TornTail`], [`LogFile::cut_tail`]). A bad frame with anything else
//! after it is not a crash's doing: [`ScanError::Corrupt`], never skipped. One case cannot be
//! told apart: a length field damaged so that its frame runs past the end of the file looks
//! like a torn append and is cut.
//!
//! This crate knows nothing of what the payloads mean; it holds no sled and no network.
#![forbid(unsafe_code)]

use std::io::{self, Read};

mod file;

pub use file::{LockError, LogFile, lock_exclusive, sync_dir, write_synced};

/// Bytes of a frame's header: length and checksum.
pub const HEADER_BYTES: usize = 8;

/// Zeros read at a time when checking that a file ends in zeros.
const ZERO_CHECK_CHUNK: usize = 64 * 1024;

/// Appends the frame of `payload` to `out`. The caller bounds `payload` (non-empty, at most
/// the bound it reads back with).
pub fn encode_into(out: &mut Vec<u8>, payload: &[u8]) {
    debug_assert!(!payload.is_empty() && u32::try_from(payload.len()).is_ok());
    out.reserve(HEADER_BYTES + payload.len());
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_be_bytes());
    out.extend_from_slice(payload);
}

/// The frame of `payload`.
pub fn encode(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_into(&mut out, payload);
    out
}

/// One frame read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// Where it starts in the file.
    pub offset: u64,
    /// What it holds, its checksum verified.
    pub payload: Vec<u8>,
}

impl Frame {
    /// Its bytes in the file, header included.
    pub fn bytes(&self) -> u64 {
        (HEADER_BYTES + self.payload.len()) as u64
    }
}

/// The end of a file that a crash cut mid-append.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TornTail {
    /// Where it starts: the length the file is cut to.
    pub offset: u64,
    /// How many bytes it holds.
    pub bytes: u64,
}

/// What is wrong with a damaged frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Damage {
    /// Its length is zero or above the bound.
    Length(u32),
    /// Its payload fails its checksum.
    Checksum,
}

impl std::fmt::Display for Damage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Length(len) => write!(f, "a frame length of {len} bytes"),
            Self::Checksum => f.write_str("a checksum mismatch"),
        }
    }
}

/// Why frames could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// Reading failed.
    #[error("reading: {0}")]
    Io(#[from] io::Error),
    /// A frame that is not a torn tail is damaged.
    #[error("damaged at byte {offset}: {damage}")]
    Corrupt {
        /// Where the bad frame starts.
        offset: u64,
        /// What is wrong with it.
        damage: Damage,
    },
}

/// Reads the frames of a file of `len` bytes one at a time, so that memory stays at one frame
/// (bounded by `max_payload`) whatever the file holds.
pub struct FrameReader<R> {
    reader: R,
    offset: u64,
    len: u64,
    max_payload: usize,
    torn: Option<TornTail>,
    done: bool,
}

impl<R: Read> FrameReader<R> {
    /// A reader of `len` bytes from `reader`, taking payloads of at most `max_payload` bytes.
    pub fn new(reader: R, len: u64, max_payload: usize) -> Self {
        Self {
            reader,
            offset: 0,
            len,
            max_payload,
            torn: None,
            done: false,
        }
    }

    /// The torn tail found at the end, once [`FrameReader::next_frame`] returned `None`.
    pub fn torn(&self) -> Option<TornTail> {
        self.torn
    }

    /// The next frame, or `None` at the end of the file or at a torn tail.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, ScanError> {
        if self.done {
            return Ok(None);
        }
        let offset = self.offset;
        let rest = self.len - offset;
        if rest == 0 {
            self.done = true;
            return Ok(None);
        }
        if rest < HEADER_BYTES as u64 {
            return Ok(self.torn_here());
        }
        let mut header = [0u8; HEADER_BYTES];
        self.reader.read_exact(&mut header)?;
        let declared = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
        let crc = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
        if declared == 0 || declared as usize > self.max_payload {
            // Never written so: only zeros the file system left, all the way to the end, are
            // a crash's doing.
            if header == [0; HEADER_BYTES] && self.rest_is_zero(rest - HEADER_BYTES as u64)? {
                return Ok(self.torn_here());
            }
            return Err(ScanError::Corrupt {
                offset,
                damage: Damage::Length(declared),
            });
        }
        let end = HEADER_BYTES as u64 + u64::from(declared);
        if end > rest {
            return Ok(self.torn_here());
        }
        let mut payload = vec![0u8; declared as usize];
        self.reader.read_exact(&mut payload)?;
        if crc32fast::hash(&payload) != crc {
            if self.rest_is_zero(rest - end)? {
                return Ok(self.torn_here());
            }
            return Err(ScanError::Corrupt {
                offset,
                damage: Damage::Checksum,
            });
        }
        self.offset += end;
        Ok(Some(Frame { offset, payload }))
    }

    /// Every remaining frame, and the torn tail if there is one.
    pub fn read_all(mut self) -> Result<(Vec<Frame>, Option<TornTail>), ScanError> {
        let mut frames = Vec::new();
        while let Some(frame) = self.next_frame()? {
            frames.push(frame);
        }
        Ok((frames, self.torn))
    }

    fn torn_here(&mut self) -> Option<Frame> {
        self.torn = Some(TornTail {
            offset: self.offset,
            bytes: self.len - self.offset,
        });
        self.done = true;
        None
    }

    /// Whether the next `n` bytes are all zero (reading them).
    fn rest_is_zero(&mut self, mut n: u64) -> io::Result<bool> {
        let mut chunk = vec![0u8; ZERO_CHECK_CHUNK.min(n as usize)];
        while n > 0 {
            let take = chunk.len().min(n as usize);
            self.reader.read_exact(&mut chunk[..take])?;
            if chunk[..take].iter().any(|&b| b != 0) {
                return Ok(false);
            }
            n -= take as u64;
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests;

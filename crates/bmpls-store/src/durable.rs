//! Making what sled flushed survive a power cut. sled 0.34's `flush` ends in
//! `sync_file_range`, which flushes neither the drive's write cache nor the file's metadata
//! (sled issue #1452), and it writes pages larger than a quarter of a segment to files under
//! `blobs/` that it never syncs at all. So after each flush the store calls
//! [`Durability::sync`]: `fdatasync` of the log file `db`, `fsync` of every blob file not synced
//! before and of the `blobs` folder when one appeared, and `fsync` of the database folder when
//! an entry appeared in it (a new snapshot or configuration file). `fsync` applies to the file,
//! whichever descriptor wrote it, so opening the files again here is enough.

use std::collections::HashSet;
use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

/// What of one sled database folder is known to be on stable storage.
#[derive(Debug)]
pub(crate) struct Durability {
    dir: PathBuf,
    /// Blob files synced (sled names them by log sequence number, never reusing a name).
    blobs: HashSet<OsString>,
    /// Entries of the folder when it was last synced.
    entries: HashSet<OsString>,
}

impl Durability {
    /// Nothing of `dir` synced yet: the first [`Durability::sync`] syncs all of it.
    pub(crate) fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
            blobs: HashSet::new(),
            entries: HashSet::new(),
        }
    }

    /// The database folder.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Puts everything sled has flushed in the folder on stable storage.
    pub(crate) fn sync(&mut self) -> io::Result<()> {
        File::open(self.dir.join("db"))?.sync_data()?;
        let blobs = self.dir.join("blobs");
        let mut present = HashSet::new();
        let mut new_blob = false;
        match std::fs::read_dir(&blobs) {
            Ok(listing) => {
                for entry in listing {
                    let entry = entry?;
                    let name = entry.file_name();
                    if !self.blobs.contains(&name) {
                        match File::open(entry.path()) {
                            Ok(file) => file.sync_data()?,
                            // Collected by sled since the listing: nothing to keep.
                            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                            Err(e) => return Err(e),
                        }
                        new_blob = true;
                    }
                    present.insert(name);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        if new_blob {
            File::open(&blobs)?.sync_all()?;
        }
        // Names sled has since removed are forgotten, so the set stays as small as the folder.
        self.blobs = present;
        let entries: HashSet<OsString> = std::fs::read_dir(&self.dir)?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<io::Result<_>>()?;
        if !entries.is_subset(&self.entries) {
            File::open(&self.dir)?.sync_all()?;
        }
        self.entries = entries;
        Ok(())
    }
}

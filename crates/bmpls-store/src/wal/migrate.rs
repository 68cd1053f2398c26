//! Migration of a consensus log of the old layout: a sled database in `DATA_DIR/wal` (keys
//! `height ‖ sequence`, big-endian; values `CRC-32 ‖ entry`, see `layout.rs`). It is read once
//! with the old reader below, written as the new files, and sled's files are removed.
//!
//! Crash-safe at every step. The new files are written and synced in `wal/` +
//! [`WRITING`], which is renamed to [`WRITTEN`] and the folder synced: the commit point.
//! Then sled's files are removed, the new files moved into `wal/`, the folder synced and
//! [`WRITTEN`] removed. Opening finds [`WRITTEN`]: it finishes from the removal of sled's files
//! on; sled's files without it: it starts over (a [`WRITING`] left by a crash is thrown away,
//! the sled log is still whole); neither: nothing to do.

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use crate::error::StoreError;
use crate::layout::{be_u64, corrupt, open_value};

use super::{file_name, log_error, payload};

/// Where the new files are written before the commit point.
const WRITING: &str = "sled-migration.tmp";
/// The new files, committed, until they are moved into the log's folder.
const WRITTEN: &str = "sled-migration.done";

/// Whether `name` is one of sled 0.34's files in a database folder.
fn is_sled(name: &str) -> bool {
    matches!(name, "conf" | "db" | "blobs") || name.starts_with("snap.")
}

fn names(dir: &Path) -> Result<Vec<String>, StoreError> {
    let mut names = Vec::new();
    for item in std::fs::read_dir(dir).map_err(log_error(dir))? {
        let item = item.map_err(log_error(dir))?;
        if let Some(name) = item.file_name().to_str() {
            names.push(name.to_string());
        }
    }
    Ok(names)
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    bmpls_framelog::sync_dir(dir).map_err(|source| StoreError::Sync {
        dir: dir.to_path_buf(),
        source,
    })
}

/// Migrates the log in `dir` if it is, or was being, migrated from sled.
pub(super) fn run(dir: &Path) -> Result<(), StoreError> {
    let written = dir.join(WRITTEN);
    if written.exists() {
        return finish(dir);
    }
    let writing = dir.join(WRITING);
    if writing.exists() {
        std::fs::remove_dir_all(&writing).map_err(log_error(&writing))?;
    }
    if !names(dir)?.iter().any(|n| is_sled(n)) {
        return Ok(());
    }
    let entries = read_old(dir)?;
    let mut files: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
    for (height, entry) in &entries {
        bmpls_framelog::encode_into(files.entry(*height).or_default(), &payload(*height, entry));
    }
    std::fs::create_dir(&writing).map_err(log_error(&writing))?;
    for (height, bytes) in &files {
        let path = writing.join(file_name(*height));
        bmpls_framelog::write_synced(&path, bytes).map_err(log_error(&path))?;
    }
    sync_dir(&writing)?;
    std::fs::rename(&writing, &written).map_err(log_error(&written))?;
    sync_dir(dir)?;
    tracing::info!(
        dir = %dir.display(),
        entries = entries.len(),
        heights = files.len(),
        "migrated the consensus log from sled to files"
    );
    finish(dir)
}

/// From the commit point on: sled's files removed, the new ones moved in.
fn finish(dir: &Path) -> Result<(), StoreError> {
    for name in names(dir)?.into_iter().filter(|n| is_sled(n)) {
        let path = dir.join(&name);
        let removed = if name == "blobs" {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        removed.map_err(log_error(&path))?;
    }
    sync_dir(dir)?;
    let written = dir.join(WRITTEN);
    for name in names(&written)? {
        let from = written.join(&name);
        std::fs::rename(&from, dir.join(&name)).map_err(log_error(&from))?;
    }
    sync_dir(dir)?;
    std::fs::remove_dir(&written).map_err(log_error(&written))?;
    sync_dir(dir)
}

/// Every entry of the sled log, in height then append order. sled 0.34 can panic opening a
/// database whose file lost its tail (issue 17): that is a typed error here, not a crash.
fn read_old(dir: &Path) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
    catch_unwind(AssertUnwindSafe(|| read_sled(dir))).unwrap_or_else(|panic| {
        let why = panic
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| panic.downcast_ref::<&str>().copied())
            .unwrap_or("sled panicked");
        Err(StoreError::OldLog {
            dir: dir.to_path_buf(),
            why: format!("sled panicked: {why}"),
        })
    })
}

/// The old `SledWal`'s reader, kept for this migration only.
fn read_sled(dir: &Path) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
    let db = crate::layout::open_sled(&sled::Config::new().path(dir).flush_every_ms(None), dir)?;
    let mut entries = Vec::new();
    for item in db.iter() {
        let (key, value) = item?;
        let height = be_u64(&key, 0).ok_or_else(|| corrupt("write-ahead log key", &key))?;
        let entry = open_value(&value, "write-ahead log entry", &key)?;
        entries.push((height, entry.to_vec()));
    }
    Ok(entries)
}

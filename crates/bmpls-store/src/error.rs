//! Errors of the store: the database failed, the data on disk is not what was written, or a
//! caller asked for something the chain does not allow.

/// What went wrong.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// sled reported an error (I/O, or its own corruption detection).
    #[error("database: {0}")]
    Database(#[from] sled::Error),
    /// Making flushed data durable failed (`fsync` of the database's files).
    #[error("syncing {} to disk: {source}", .dir.display())]
    Sync {
        /// The database folder.
        dir: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Another process holds the database's lock: most often the same node started twice.
    #[error("another node is using {}: its database is locked (is this node already running?)", .0.display())]
    Locked(std::path::PathBuf),
    /// A stored value failed its checksum or does not decode: the disk is not what was written.
    #[error("corrupt {what} at key {key}")]
    Corrupt {
        /// What was being read.
        what: &'static str,
        /// The key, in hex.
        key: String,
    },
    /// Reading or writing a file of the consensus log failed.
    #[error("consensus log {}: {source}", .path.display())]
    Log {
        /// The file or folder.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A frame of the consensus log that is not a crash's torn tail is damaged: something else
    /// than the validator changed the file, or the disk is failing. Nothing is skipped.
    #[error(
        "consensus log {}: damaged at byte {offset}: {why}; the file is left as it is (restore \
         the folder from a backup, or move it aside and start the validator on an empty log, \
         which is safe only if it did not vote at that height)",
        .path.display()
    )]
    CorruptLog {
        /// The file.
        path: std::path::PathBuf,
        /// Where the bad frame starts.
        offset: u64,
        /// What is wrong.
        why: String,
    },
    /// An entry larger than the consensus log takes (`wal::MAX_WAL_ENTRY_BYTES`).
    #[error("a consensus log entry of {bytes} bytes, above the limit of {limit}")]
    EntryTooLarge {
        /// Its size.
        bytes: usize,
        /// The limit.
        limit: usize,
    },
    /// A consensus log of the old layout (a sled database) could not be read to migrate it.
    #[error(
        "consensus log {}: the old sled log cannot be read ({why}); move the folder aside and \
         start the validator on an empty log, which is safe only if it did not vote at the \
         height it stopped at (else wait for that height to be decided by the others first)",
        .dir.display()
    )]
    OldLog {
        /// The folder.
        dir: std::path::PathBuf,
        /// Why.
        why: String,
    },
    /// The directory holds a store of another schema version.
    #[error(
        "schema version {found} on disk, this build reads {expected}; there is no migration: \
         move the data folder aside and start the validator on an empty one, and it catches up \
         from its peers (a store of the older version is unreadable by this build)"
    )]
    Schema {
        /// Version found.
        found: u32,
        /// Version this build writes.
        expected: u32,
    },
    /// The directory holds another chain.
    #[error("store belongs to chain {found:?}, not {expected:?}")]
    ChainMismatch {
        /// Chain id found.
        found: String,
        /// Chain id asked for.
        expected: String,
    },
    /// A block that does not extend the stored tip.
    #[error(
        "block at height {got} does not extend the tip (expected height {expected} on the tip's hash)"
    )]
    NotNext {
        /// Height the store expects next.
        expected: u64,
        /// Height given.
        got: u64,
    },
    /// A block whose records break a patient's sequence (consensus should have refused it).
    #[error("record {got} of a patient does not follow {last}")]
    Sequence {
        /// The patient's last stored sequence number.
        last: u64,
        /// The record's.
        got: u64,
    },
    /// A snapshot installed into a store that already holds blocks (or a base).
    #[error(
        "the store already holds blocks up to height {tip}: a snapshot is installed only into an \
         empty store"
    )]
    NotEmpty {
        /// The store's tip.
        tip: u64,
    },
    /// A question only blocks before this store's base answer (it started from a snapshot).
    #[error(
        "this validator joined from a snapshot after block {base} and holds no block before it \
         (records with fix times before {complete_from_ms} ms may be in them): ask another \
         validator"
    )]
    BeforeBase {
        /// The base's height.
        base: u64,
        /// The earliest fix time from which its records are complete.
        complete_from_ms: u64,
    },
    /// A snapshot whose certificate is not of its header.
    #[error("the snapshot's certificate is not of its block header")]
    BaseMismatch,
    /// A query over more results than allowed, or with too many ranges.
    #[error("query too large: {0}")]
    QueryTooLarge(&'static str),
}

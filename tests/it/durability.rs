//! Acknowledged means on stable storage: a child process applies blocks to a store and appends
//! durable entries to a consensus log, saying so on stdout after each returns (the
//! acknowledgement, and the point after which a validator signs). The parent runs it under
//! `strace` and checks, in the order the kernel saw the calls, that before each such line the
//! files it depends on were `fsync`ed or `fdatasync`ed. For the store: the database's log file,
//! every blob file created since the last one (sled writes large pages as separate files and
//! never syncs them) and the folder that gained it; sled's own flush only calls
//! `sync_file_range`, which this check does not count. For the consensus log: every log file
//! written since the last acknowledgement, after its last write, and the log's folder after a
//! file was created in it.

use std::path::Path;
use std::process::{Command, Stdio};

use bmpls_consensus::WalStorage;
use bmpls_it::{TestChain, chain_id, record};
use bmpls_store::{FileWal, Store};
use bmpls_types::{PatientId, Transaction};
use rand::SeedableRng;
use rand::rngs::StdRng;

const CHILD_ENV: &str = "BMPLS_DURABLE_CHILD_DIR";
/// Blocks the child applies, and consensus log entries it appends.
const ACKS: u64 = 3;

#[test]
#[ignore = "run by acknowledgements_follow_a_sync_of_what_they_acknowledge under strace"]
fn durable_child() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let dir = Path::new(&dir);
    let store = Store::open(&dir.join("store"), &chain_id()).expect("child opens the store");
    let mut chain = TestChain::new();
    let mut rng = StdRng::seed_from_u64(7);
    for height in 1..=ACKS {
        let txs = (0..200)
            .map(|i| {
                let seq = (height - 1) * 200 + i + 1;
                Transaction::Report(record(
                    PatientId([4; 16]),
                    seq,
                    1_790_000_000_000 + seq * 30_000,
                    &mut rng,
                ))
            })
            .collect();
        let (block, cert) = chain.next(txs);
        store.apply_block(&block, &cert).expect("child applies");
        println!("applied {height}");
    }
    // A proposal of a large block is one large log entry. Each height starts a file (the folder
    // must be synced), and a non-durable entry before the durable one must be synced with it.
    let mut wal = FileWal::open(&dir.join("wal")).expect("child opens the log");
    for height in 1..=ACKS {
        wal.append(height, b"a vote received", false)
            .expect("child logs");
        wal.append(height, &vec![height as u8; 600_000], true)
            .expect("child logs");
        println!("logged {height}");
    }
}

#[test]
fn acknowledgements_follow_a_sync_of_what_they_acknowledge() {
    if Command::new("strace").arg("-V").output().is_err() {
        panic!("this test needs strace (the Debian package `strace`, which .ci/run installs)");
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let trace = dir.path().join("trace");
    let exe = std::env::current_exe().expect("test binary");
    let status = Command::new("strace")
        .args(["-f", "-y", "-qq", "-s", "64", "-o"])
        .arg(&trace)
        .args(["-e", "trace=openat,write,fsync,fdatasync,sync_file_range"])
        .arg(&exe)
        .args(bmpls_it::child_test_args("durability::durable_child"))
        .env(CHILD_ENV, dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("strace runs");
    assert!(
        status.success(),
        "the child failed under strace: {status:?}"
    );
    let text = std::fs::read_to_string(&trace).expect("trace");
    let store = dir.path().join("store");
    let wal = dir.path().join("wal");
    let acks = check(&text, "applied ", &store);
    assert_eq!(acks.0, ACKS, "every block was acknowledged");
    let (logged, files) = check_log(&text, "logged ", &wal);
    assert_eq!(logged, ACKS, "every log entry was acknowledged");
    assert_eq!(
        files, ACKS as usize,
        "each height's entries went to a file of its own"
    );
}

/// Walks the trace; for each acknowledgement line starting with `ack`, checks that every file of
/// the consensus log in `dir` written since the previous one was synced after its last write,
/// and the folder after a file was created in it. Returns the acknowledgements seen and the
/// files created.
fn check_log(trace: &str, ack: &str, dir: &Path) -> (u64, usize) {
    let dir = dir.display().to_string();
    let in_dir = format!("{dir}/");
    let folder = format!("{dir}>");
    let (mut acks, mut created) = (0u64, 0usize);
    let mut unsynced: Vec<String> = Vec::new();
    let mut folder_synced = true;
    // The log file a descriptor names in strace's `-y` form: `5</path/…/00…1.log>`.
    let file_of = |line: &str| -> Option<String> {
        let start = line.find(&in_dir)?;
        let name: String = line[start..]
            .chars()
            .take_while(|c| *c != '>' && *c != '"')
            .collect();
        name.ends_with(".log").then_some(name)
    };
    for line in trace.lines() {
        let sync = line.contains(" fsync(") || line.contains(" fdatasync(");
        if line.contains(" openat(") && line.contains("O_CREAT") {
            // Opened to append: created unless it was there (each height is new here).
            if file_of(line).is_some() {
                created += 1;
                folder_synced = false;
            }
        } else if line.contains(" write(") && !line.contains(" write(1<") {
            if let Some(file) = file_of(line) {
                if !unsynced.contains(&file) {
                    unsynced.push(file);
                }
            }
        } else if sync && line.contains(&folder) {
            folder_synced = true;
        } else if sync {
            if let Some(file) = file_of(line) {
                unsynced.retain(|f| *f != file);
            }
        } else if line.contains(" write(1<") && line.contains(&format!("\"{ack}")) {
            acks += 1;
            assert!(
                unsynced.is_empty(),
                "acknowledgement {acks} ({ack}) before the log files {unsynced:?} were synced"
            );
            assert!(
                folder_synced,
                "acknowledgement {acks} ({ack}) before the folder {dir} that gained a file was synced"
            );
        }
    }
    (acks, created)
}

/// Walks the trace; for each acknowledgement line starting with `ack`, checks that since the
/// previous one the database in `db` had its log file synced, and every blob file created since
/// then was synced along with the blob folder. Returns the acknowledgements seen and the blob
/// files created.
fn check(trace: &str, ack: &str, db: &Path) -> (u64, usize) {
    let db = db.display().to_string();
    let log_file = format!("{db}/db>");
    let blobs_dir = format!("{db}/blobs>");
    let (mut acks, mut created) = (0u64, 0usize);
    let mut log_synced = false;
    let mut unsynced_blobs: Vec<String> = Vec::new();
    let mut blob_dir_synced = true;
    for line in trace.lines() {
        let sync = line.contains(" fsync(") || line.contains(" fdatasync(");
        if line.contains(" openat(") && line.contains(&format!("{db}/blobs/")) {
            if line.contains("O_CREAT") {
                let start = line.find(&format!("{db}/blobs/")).expect("found");
                let name: String = line[start..].chars().take_while(|c| *c != '"').collect();
                unsynced_blobs.push(format!("{name}>"));
                blob_dir_synced = false;
                created += 1;
            }
        } else if sync && line.contains(&log_file) {
            log_synced = true;
        } else if sync && line.contains(&blobs_dir) {
            blob_dir_synced = true;
        } else if sync {
            unsynced_blobs.retain(|blob| !line.contains(blob.as_str()));
        } else if line.contains(" write(1<") && line.contains(&format!("\"{ack}")) {
            acks += 1;
            assert!(
                log_synced,
                "acknowledgement {acks} ({ack}) without an fsync of {db}/db before it"
            );
            assert!(
                unsynced_blobs.is_empty() && blob_dir_synced,
                "acknowledgement {acks} ({ack}) before the blob files {unsynced_blobs:?} and their folder were synced"
            );
            log_synced = false;
        }
    }
    (acks, created)
}

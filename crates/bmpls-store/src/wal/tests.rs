//! The consensus log's files: whole entries back after any cut of a last frame, damage refused
//! by file and offset, bounds, pruning, and the migration from sled at each of its steps.

use super::*;
use crate::layout::seal_value;

fn open(dir: &Path) -> FileWal {
    FileWal::open(dir).expect("log opens")
}

fn all(wal: &FileWal) -> Vec<(u64, Vec<u8>)> {
    wal.entries_from(0).expect("entries")
}

fn entries(list: &[(u64, &[u8])]) -> Vec<(u64, Vec<u8>)> {
    list.iter().map(|(h, e)| (*h, e.to_vec())).collect()
}

fn corrupt_offset(dir: &Path) -> (PathBuf, u64, String) {
    match FileWal::open(dir) {
        Err(StoreError::CorruptLog { path, offset, why }) => (path, offset, why),
        other => panic!("not refused as corrupt: {other:?}"),
    }
}

/// A log of three entries at height 7; the ends of their frames.
fn three_entries(dir: &Path) -> [u64; 3] {
    let mut wal = open(dir);
    let mut ends = [0; 3];
    for (i, entry) in [&b"prevote"[..], b"signed prevote", b"a precommit"]
        .iter()
        .enumerate()
    {
        wal.append(7, entry, true).expect("append");
        ends[i] = std::fs::metadata(dir.join(file_name(7)))
            .expect("file")
            .len();
    }
    ends
}

#[test]
fn a_torn_tail_at_every_offset_of_the_last_frame_reopens_with_every_whole_entry() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ends = three_entries(dir.path());
    let path = dir.path().join(file_name(7));
    let full = std::fs::read(&path).expect("read");
    for cut in ends[1]..=ends[2] {
        std::fs::write(&path, &full[..cut as usize]).expect("cut");
        let mut wal = open(dir.path());
        let kept: &[(u64, &[u8])] = if cut == ends[2] {
            &[(7, b"prevote"), (7, b"signed prevote"), (7, b"a precommit")]
        } else {
            &[(7, b"prevote"), (7, b"signed prevote")]
        };
        assert_eq!(all(&wal), entries(kept), "cut at {cut}");
        let expected_len = if cut == ends[2] { ends[2] } else { ends[1] };
        assert_eq!(
            std::fs::metadata(&path).expect("file").len(),
            expected_len,
            "the tail was cut off the file (cut at {cut})"
        );
        // The log goes on after the cut, and the next reopening finds it whole.
        wal.append(7, b"after", true).expect("append");
        drop(wal);
        let wal = open(dir.path());
        let mut kept = entries(kept);
        kept.push((7, b"after".to_vec()));
        assert_eq!(all(&wal), kept, "cut at {cut}, then appended");
    }
    // A file a crash left empty (created, nothing written yet).
    std::fs::write(&path, b"").expect("empty");
    assert_eq!(all(&open(dir.path())), Vec::new());
}

#[test]
fn damage_before_the_last_frame_is_a_typed_error_naming_file_and_offset() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ends = three_entries(dir.path());
    let path = dir.path().join(file_name(7));
    let mut bytes = std::fs::read(&path).expect("read");
    bytes[ends[0] as usize + bmpls_framelog::HEADER_BYTES + 9] ^= 0x01;
    std::fs::write(&path, &bytes).expect("damage");
    let (file, offset, why) = corrupt_offset(dir.path());
    assert_eq!((file, offset), (path.clone(), ends[0]));
    assert!(why.contains("checksum"), "{why}");
    assert_eq!(std::fs::read(&path).expect("read"), bytes, "left as it is");
}

#[test]
fn a_length_beyond_the_bound_is_a_typed_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ends = three_entries(dir.path());
    let path = dir.path().join(file_name(7));
    let full = std::fs::read(&path).expect("read");
    for declared in [u32::MAX, MAX_PAYLOAD_BYTES as u32 + 1] {
        let mut bytes = full.clone();
        let at = ends[0] as usize;
        bytes[at..at + 4].copy_from_slice(&declared.to_be_bytes());
        std::fs::write(&path, &bytes).expect("damage");
        let (_, offset, why) = corrupt_offset(dir.path());
        assert_eq!(offset, ends[0]);
        assert!(
            why.contains(&format!("frame length of {declared}")),
            "{why}"
        );
    }
    std::fs::write(&path, &full).expect("restore");
    let mut wal = open(dir.path());
    let too_large = vec![0u8; MAX_WAL_ENTRY_BYTES + 1];
    assert!(matches!(
        wal.append(7, &too_large, true),
        Err(StoreError::EntryTooLarge { .. })
    ));
    assert_eq!(all(&wal).len(), 3, "nothing of it was written");
}

#[test]
fn entries_come_back_in_height_then_append_order_and_pruning_lasts() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut wal = open(dir.path());
    wal.append(2, b"b1", false).expect("append");
    wal.append(1, b"a1", false).expect("append");
    wal.append(2, b"b2", false).expect("append");
    wal.append(3, b"c1", true).expect("append");
    assert_eq!(
        all(&wal),
        entries(&[(1, b"a1"), (2, b"b1"), (2, b"b2"), (3, b"c1")])
    );
    assert_eq!(
        wal.entries_from(2).expect("entries"),
        entries(&[(2, b"b1"), (2, b"b2"), (3, b"c1")])
    );
    wal.prune_below(3).expect("prune");
    assert_eq!(all(&wal), entries(&[(3, b"c1")]));
    assert!(!dir.path().join(file_name(1)).exists());
    assert!(!dir.path().join(file_name(2)).exists());
    drop(wal);
    let mut wal = open(dir.path());
    assert_eq!(all(&wal), entries(&[(3, b"c1")]));
    wal.append(4, b"d1", true).expect("append");
    drop(wal);
    assert_eq!(all(&open(dir.path())), entries(&[(3, b"c1"), (4, b"d1")]));
}

#[test]
fn a_file_under_another_heights_name_is_corrupt() {
    let dir = tempfile::tempdir().expect("temp dir");
    three_entries(dir.path());
    std::fs::rename(dir.path().join(file_name(7)), dir.path().join(file_name(8))).expect("rename");
    let (path, offset, _) = corrupt_offset(dir.path());
    assert_eq!((path, offset), (dir.path().join(file_name(8)), 0));
}

#[test]
fn a_second_opening_is_refused_while_the_log_is_in_use() {
    let dir = tempfile::tempdir().expect("temp dir");
    let held = open(dir.path());
    assert!(matches!(
        FileWal::open(dir.path()),
        Err(StoreError::Locked(_))
    ));
    drop(held);
    open(dir.path());
}

/// Writes `list` as the old `SledWal` did: keys `height ‖ sequence`, checksummed values.
fn old_sled_log(dir: &Path, list: &[(u64, &[u8])]) {
    let db = sled::Config::new()
        .path(dir)
        .flush_every_ms(None)
        .open()
        .expect("sled opens");
    for (sequence, (height, entry)) in list.iter().enumerate() {
        let mut key = height.to_be_bytes().to_vec();
        key.extend_from_slice(&(sequence as u64).to_be_bytes());
        db.insert(key, seal_value(entry)).expect("insert");
    }
    db.flush().expect("flush");
    drop(db);
    // sled lets go of its lock from a background thread: wait for it as the store does.
    drop(crate::layout::open_sled(&sled::Config::new().path(dir), dir).expect("reopens"));
}

fn sled_files(dir: &Path) -> Vec<String> {
    migrate_names(dir)
        .into_iter()
        .filter(|n| matches!(n.as_str(), "conf" | "db" | "blobs") || n.starts_with("snap."))
        .collect()
}

fn migrate_names(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect()
}

const OLD: &[(u64, &[u8])] = &[(4, b"old a"), (4, b"old b"), (5, b"old c")];

#[test]
fn an_old_sled_log_is_migrated_once_and_its_files_removed() {
    let dir = tempfile::tempdir().expect("temp dir");
    old_sled_log(dir.path(), OLD);
    assert!(!sled_files(dir.path()).is_empty(), "sled wrote its files");
    let mut wal = open(dir.path());
    assert_eq!(all(&wal), entries(OLD));
    assert_eq!(sled_files(dir.path()), Vec::<String>::new());
    assert!(dir.path().join(file_name(4)).exists());
    wal.append(5, b"new", true).expect("append");
    drop(wal);
    let mut expected = entries(OLD);
    expected.push((5, b"new".to_vec()));
    assert_eq!(all(&open(dir.path())), expected);
    let mut names = migrate_names(dir.path());
    names.sort();
    assert_eq!(names, [file_name(4), file_name(5), LOCK_FILE.to_string()]);
}

#[test]
fn a_migration_cut_before_its_commit_point_starts_over_from_sled() {
    let dir = tempfile::tempdir().expect("temp dir");
    old_sled_log(dir.path(), OLD);
    // What a crash mid-write leaves: a partial new file in the folder being written.
    let writing = dir.path().join("sled-migration.tmp");
    std::fs::create_dir(&writing).expect("mkdir");
    std::fs::write(writing.join(file_name(4)), b"\0\0\0\x05half").expect("write");
    assert_eq!(all(&open(dir.path())), entries(OLD));
    assert!(!writing.exists());
    assert_eq!(sled_files(dir.path()), Vec::<String>::new());
}

#[test]
fn a_migration_cut_after_its_commit_point_finishes_from_the_new_files() {
    let dir = tempfile::tempdir().expect("temp dir");
    old_sled_log(dir.path(), &[(9, b"stale: sled must not be read again")]);
    // Committed new files, sled's files not yet removed, one file already moved in.
    let written = dir.path().join("sled-migration.done");
    std::fs::create_dir(&written).expect("mkdir");
    let frame = |h: u64, e: &[u8]| bmpls_framelog::encode(&payload(h, e));
    std::fs::write(written.join(file_name(5)), frame(5, b"old c")).expect("write");
    let mut four = frame(4, b"old a");
    four.extend_from_slice(&frame(4, b"old b"));
    std::fs::write(dir.path().join(file_name(4)), four).expect("write");
    assert_eq!(all(&open(dir.path())), entries(OLD));
    assert!(!written.exists());
    assert_eq!(sled_files(dir.path()), Vec::<String>::new());
}

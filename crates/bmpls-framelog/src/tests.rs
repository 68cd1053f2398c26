//! The reader's verdicts: whole frames back, a torn tail at every cut, damage elsewhere refused.

use super::*;

const MAX: usize = 1024;

fn file_of(payloads: &[&[u8]]) -> (Vec<u8>, Vec<u64>) {
    let mut bytes = Vec::new();
    let mut ends = Vec::new();
    for payload in payloads {
        encode_into(&mut bytes, payload);
        ends.push(bytes.len() as u64);
    }
    (bytes, ends)
}

fn read(bytes: &[u8]) -> Result<(Vec<Vec<u8>>, Option<TornTail>), ScanError> {
    let (frames, torn) = FrameReader::new(bytes, bytes.len() as u64, MAX).read_all()?;
    Ok((frames.into_iter().map(|f| f.payload).collect(), torn))
}

fn corrupt_at(bytes: &[u8]) -> (u64, Damage) {
    match read(bytes) {
        Err(ScanError::Corrupt { offset, damage }) => (offset, damage),
        other => panic!("not refused as corrupt: {other:?}"),
    }
}

#[test]
fn a_cut_anywhere_in_the_last_frame_keeps_every_whole_frame_and_nothing_else() {
    let (bytes, ends) = file_of(&[b"first", b"second", b"the third and last"]);
    for cut in ends[1]..=ends[2] {
        let (payloads, torn) = read(&bytes[..cut as usize]).expect("recovers");
        if cut == ends[2] {
            assert_eq!(payloads, [&b"first"[..], b"second", b"the third and last"]);
            assert_eq!(torn, None);
        } else {
            assert_eq!(payloads, [&b"first"[..], b"second"], "cut at {cut}");
            let expected = (cut > ends[1]).then_some(TornTail {
                offset: ends[1],
                bytes: cut - ends[1],
            });
            assert_eq!(torn, expected, "cut at {cut}");
        }
    }
}

#[test]
fn zeros_where_the_end_should_be_are_a_torn_tail() {
    let (mut bytes, ends) = file_of(&[b"first", b"second"]);
    bytes.extend_from_slice(&[0; 300]);
    let (payloads, torn) = read(&bytes).expect("recovers");
    assert_eq!(payloads.len(), 2);
    assert_eq!(
        torn,
        Some(TornTail {
            offset: ends[1],
            bytes: 300
        })
    );
    // A last frame whose payload the file system left as zeros, and zeros after it.
    let (mut bytes, ends) = file_of(&[b"first", b"second"]);
    let start = ends[0] as usize + HEADER_BYTES;
    bytes[start..].fill(0);
    bytes.extend_from_slice(&[0; 40]);
    let (payloads, torn) = read(&bytes).expect("recovers");
    assert_eq!(payloads, [b"first"]);
    assert_eq!(torn.map(|t| t.offset), Some(ends[0]));
}

#[test]
fn a_last_frame_failing_its_checksum_is_a_torn_tail() {
    let (mut bytes, ends) = file_of(&[b"first", b"second"]);
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    let (payloads, torn) = read(&bytes).expect("recovers");
    assert_eq!(payloads, [b"first"]);
    assert_eq!(torn.map(|t| t.offset), Some(ends[0]));
}

#[test]
fn damage_before_the_last_frame_is_corrupt_naming_its_offset() {
    let (bytes, ends) = file_of(&[b"first", b"second", b"third"]);
    // Every byte of the middle frame but its length field, whose growth past the end of the
    // file would look like a torn append (the module's documented limit).
    for at in ends[0] + 4..ends[1] {
        let mut damaged = bytes.clone();
        damaged[at as usize] ^= 0x40;
        let (offset, _) = corrupt_at(&damaged);
        assert_eq!(offset, ends[0], "byte {at} damaged");
    }
    let mut damaged = bytes.clone();
    damaged[ends[0] as usize + HEADER_BYTES] ^= 1;
    assert_eq!(corrupt_at(&damaged), (ends[0], Damage::Checksum));
}

#[test]
fn a_length_above_the_bound_is_corrupt_and_not_allocated() {
    let (mut bytes, _) = file_of(&[b"first"]);
    // A length of 4 GiB: the reader refuses it from the header alone.
    bytes[..4].copy_from_slice(&u32::MAX.to_be_bytes());
    assert_eq!(corrupt_at(&bytes), (0, Damage::Length(u32::MAX)));
    let (mut bytes, _) = file_of(&[b"first"]);
    bytes[..4].copy_from_slice(&(MAX as u32 + 1).to_be_bytes());
    assert_eq!(corrupt_at(&bytes), (0, Damage::Length(MAX as u32 + 1)));
    // A zero length with data after it is not a file system's zeros.
    let mut bytes = vec![0u8; HEADER_BYTES];
    bytes.extend_from_slice(&file_of(&[b"next"]).0);
    assert_eq!(corrupt_at(&bytes), (0, Damage::Length(0)));
}

#[test]
fn a_log_file_takes_a_failed_append_back_and_cuts_a_torn_tail() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("log");
    let (mut log, created) = LogFile::open(&path, true).expect("created");
    assert!(created);
    log.append(&encode(b"one")).expect("append");
    log.append(&encode(b"two")).expect("append");
    log.sync_data().expect("sync");
    drop(log);
    let mut torn = std::fs::read(&path).expect("read");
    torn.truncate(torn.len() - 2);
    std::fs::write(&path, &torn).expect("write");
    let (mut log, created) = LogFile::open(&path, true).expect("opened");
    assert!(!created);
    let (frames, tail) = log.scan(MAX).expect("scan");
    assert_eq!(frames.len(), 1);
    let tail = tail.expect("torn");
    log.cut_tail(tail).expect("cut");
    assert_eq!(std::fs::metadata(&path).expect("meta").len(), tail.offset);
    log.append(&encode(b"three")).expect("append");
    let (frames, tail) = log.scan(MAX).expect("scan");
    let payloads: Vec<_> = frames.into_iter().map(|f| f.payload).collect();
    assert_eq!(payloads, [&b"one"[..], b"three"]);
    assert_eq!(tail, None);
}

#[test]
fn a_second_lock_is_refused_while_the_first_is_held() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("lock");
    let held = lock_exclusive(&path).expect("first");
    assert!(matches!(lock_exclusive(&path), Err(LockError::Busy)));
    drop(held);
    lock_exclusive(&path).expect("free again");
}

//! The outbox's file: what was pushed is there after reopening, a torn tail is cut and
//! reported, damage elsewhere is refused, the bounds hold, numbers never repeat.

use std::fs::OpenOptions;
use std::io::Write;

use rand::SeedableRng;

use super::*;
use crate::keystore::DEFAULT_EPOCH_MS;
use bmpls_net::proto::reason;
use bmpls_types::{ChainId, Trigger, TxHash};

const LEVELS: &str = include_str!("../../../../config/levels.toml");

fn keystore(dir: &Path) -> PatientKeystore {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    PatientKeystore::create(&dir.join("alice"), LEVELS, DEFAULT_EPOCH_MS, &mut rng)
        .expect("keystore")
}

fn fix(i: u64) -> Fix {
    Fix {
        lat: 52.37 + i as f64 * 1e-4,
        lon: 4.89,
        accuracy_m: 5.0,
        altitude_m: 0.0,
        speed_m_s: 0.0,
        battery_percent: 50,
        trigger: Trigger::Periodic,
        fix_time_ms: 1_700_000_000_000 + i * 30_000,
    }
}

fn queue(outbox: &mut Outbox, store: &PatientKeystore, n: u64) -> std::ops::Range<u64> {
    let mut reporter = store
        .reporter(&ChainId::new("test").expect("chain"))
        .expect("reporter");
    let mut rng = rand::rngs::StdRng::seed_from_u64(n);
    let fixes: Vec<Fix> = (0..n).map(fix).collect();
    outbox
        .queue(store, &mut reporter, &fixes, &mut rng)
        .expect("queued")
}

fn seqs(outbox: &Outbox) -> Vec<u64> {
    outbox.waiting().map(|r| r.seq.0).collect()
}

fn log(store: &PatientKeystore) -> PathBuf {
    store.dir().join(LOG_FILE)
}

#[test]
fn queued_records_survive_reopening_and_numbers_go_on() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = keystore(dir.path());
    let mut outbox = Outbox::open(&store).expect("open");
    assert_eq!(queue(&mut outbox, &store, 3), 1..4);
    let before: Vec<LocationRecord> = outbox.waiting().cloned().collect();
    drop(outbox);
    let mut outbox = Outbox::open(&store).expect("reopen");
    assert_eq!(outbox.recovery(), None);
    assert_eq!(outbox.waiting().cloned().collect::<Vec<_>>(), before);
    assert_eq!(queue(&mut outbox, &store, 2), 4..6);
    assert_eq!(store.next_seq().expect("seq"), 6);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(log(&store))
        .expect("log")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "owner-only");
}

#[test]
fn a_second_process_is_refused_while_one_holds_the_outbox() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = keystore(dir.path());
    let _held = Outbox::open(&store).expect("open");
    assert!(matches!(Outbox::open(&store), Err(OutboxError::Busy(_))));
}

#[test]
fn a_keystore_behind_the_outbox_is_brought_past_it() {
    // A crash after the records were synced and before the keystore's counter was written.
    let dir = tempfile::tempdir().expect("temp dir");
    let store = keystore(dir.path());
    let mut outbox = Outbox::open(&store).expect("open");
    queue(&mut outbox, &store, 4);
    drop(outbox);
    store.set_next_seq(2).expect("set");
    let outbox = Outbox::open(&store).expect("reopen");
    assert_eq!(store.next_seq().expect("seq"), 5);
    assert_eq!(outbox.next_seq(&store).expect("next"), 5);
}

#[test]
fn a_torn_tail_is_cut_and_reported_and_nothing_synced_is_lost() {
    for tail in [
        vec![0, 0, 2],                      // a header cut short
        vec![0, 0, 1, 0, 1, 2, 3, 4, 1, 2], // a frame cut short
        vec![0; 600],                       // zeros where the end should be
    ] {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = keystore(dir.path());
        let mut outbox = Outbox::open(&store).expect("open");
        queue(&mut outbox, &store, 3);
        drop(outbox);
        let len = std::fs::metadata(log(&store)).expect("log").len();
        let mut file = OpenOptions::new()
            .append(true)
            .open(log(&store))
            .expect("log");
        file.write_all(&tail).expect("tail");
        drop(file);
        let outbox = Outbox::open(&store).expect("recovered");
        assert_eq!(
            outbox.recovery(),
            Some(&Recovery::TornTail {
                offset: len,
                bytes: tail.len() as u64
            })
        );
        assert_eq!(seqs(&outbox), [1, 2, 3]);
        assert_eq!(std::fs::metadata(log(&store)).expect("log").len(), len);
    }
}

#[test]
fn a_last_frame_failing_its_checksum_is_a_torn_tail() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = keystore(dir.path());
    let mut outbox = Outbox::open(&store).expect("open");
    queue(&mut outbox, &store, 3);
    drop(outbox);
    let mut bytes = std::fs::read(log(&store)).expect("log");
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(log(&store), &bytes).expect("write");
    let outbox = Outbox::open(&store).expect("recovered");
    assert!(matches!(outbox.recovery(), Some(Recovery::TornTail { .. })));
    assert_eq!(seqs(&outbox), [1, 2]);
}

#[test]
fn damage_before_the_last_frame_is_refused_not_skipped() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = keystore(dir.path());
    let mut outbox = Outbox::open(&store).expect("open");
    queue(&mut outbox, &store, 3);
    drop(outbox);
    let mut bytes = std::fs::read(log(&store)).expect("log");
    bytes[HEADER_BYTES + 20] ^= 0xff;
    std::fs::write(log(&store), &bytes).expect("write");
    match Outbox::open(&store) {
        Err(OutboxError::Corrupt { offset, .. }) => assert_eq!(offset, 0),
        other => panic!("not refused: {other:?}"),
    }
    // Left as it was.
    assert_eq!(std::fs::read(log(&store)).expect("log"), bytes);
}

fn committed(height: u64) -> Submitted {
    Submitted::Committed {
        tx: TxHash([0; 32]),
        height,
    }
}

fn refused(code: RefusalCode) -> Submitted {
    Submitted::Refused {
        code,
        reason: reason("why"),
    }
}

use bmpls_net::Submitted;

#[test]
fn settled_records_leave_and_refused_ones_stay_with_their_reason() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = keystore(dir.path());
    let mut outbox = Outbox::open(&store).expect("open");
    queue(&mut outbox, &store, 4);
    outbox
        .settle(&[(1, 10)], &[(2, RefusalCode::Invalid, "bad field".into())])
        .expect("settled");
    drop(outbox);
    let mut outbox = Outbox::open(&store).expect("reopen");
    assert_eq!(seqs(&outbox), [3, 4]);
    let kept = outbox.refused();
    assert_eq!(kept.len(), 1);
    assert_eq!(
        (kept[0].record.seq.0, kept[0].code),
        (2, RefusalCode::Invalid)
    );
    assert_eq!(kept[0].reason, "bad field");
    // Everything settled: the file is rewritten with the refused record alone.
    outbox.settle(&[(3, 11), (4, 11)], &[]).expect("settled");
    drop(outbox);
    let mut outbox = Outbox::open(&store).expect("reopen");
    assert_eq!(seqs(&outbox), Vec::<u64>::new());
    assert_eq!(outbox.refused().len(), 1);
    let one_record = outbox.live_bytes();
    assert_eq!(
        std::fs::metadata(log(&store)).expect("log").len(),
        one_record + 8 + 1 + 9 + 9
    );
    assert_eq!(outbox.discard_refused().expect("discarded").len(), 1);
    drop(outbox);
    let outbox = Outbox::open(&store).expect("reopen");
    assert!(outbox.refused().is_empty());
    assert_eq!(std::fs::metadata(log(&store)).expect("log").len(), 0);
}

#[test]
fn a_refused_number_is_given_again_after_resync_and_both_survive_compaction() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = keystore(dir.path());
    let mut outbox = Outbox::open(&store).expect("open");
    queue(&mut outbox, &store, 2);
    outbox
        .settle(
            &[],
            &[
                (1, RefusalCode::Replay, "taken".into()),
                (2, RefusalCode::Gap, "gap".into()),
            ],
        )
        .expect("settled");
    store.set_next_seq(1).expect("resync");
    assert_eq!(queue(&mut outbox, &store, 1), 1..2);
    outbox.compact().expect("compact");
    drop(outbox);
    let outbox = Outbox::open(&store).expect("reopen");
    assert_eq!(seqs(&outbox), [1]);
    assert_eq!(outbox.refused().len(), 2);
}

#[test]
fn a_full_outbox_refuses_the_whole_batch_with_a_typed_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = keystore(dir.path());
    let mut outbox = Outbox::open(&store).expect("open");
    let mut reporter = store
        .reporter(&ChainId::new("test").expect("chain"))
        .expect("reporter");
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let record = reporter.build(&fix(0), Seq(1), &mut rng).expect("record");
    // The stated size of a record here, with the shipped levels.
    assert_eq!(record_frame(&record).len(), 549);
    let records: Vec<LocationRecord> = (1..=MAX_OUTBOX_RECORDS as u64)
        .map(|seq| {
            let mut r = record.clone();
            r.seq = Seq(seq);
            r
        })
        .collect();
    outbox.push(records).expect("a week and more fits");
    let mut more = record.clone();
    more.seq = Seq(MAX_OUTBOX_RECORDS as u64 + 1);
    assert!(matches!(
        outbox.push(vec![more]),
        Err(OutboxError::Full { records, .. }) if records == MAX_OUTBOX_RECORDS
    ));
    assert!(outbox.live_bytes() <= MAX_OUTBOX_BYTES);
    drop(outbox);
    assert_eq!(
        Outbox::open(&store).expect("reopen").waiting_len(),
        MAX_OUTBOX_RECORDS
    );
}

#[test]
fn records_out_of_order_are_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = keystore(dir.path());
    let mut outbox = Outbox::open(&store).expect("open");
    queue(&mut outbox, &store, 2);
    let again = outbox.waiting().next().cloned().expect("one");
    assert!(matches!(
        outbox.push(vec![again]),
        Err(OutboxError::OutOfOrder { last: 2, got: 1 })
    ));
}

#[test]
fn verdicts_wait_after_the_first_record_that_must_wait() {
    use flush::{Verdict, verdicts};
    let got = verdicts(&[
        committed(5),
        refused(RefusalCode::Invalid),
        refused(RefusalCode::Full),
        committed(5),
    ]);
    assert_eq!(got[0], Verdict::Delivered(5));
    assert_eq!(got[1], Verdict::Refused(RefusalCode::Invalid, "why".into()));
    assert!(matches!(got[2], Verdict::Later(_)));
    assert!(matches!(got[3], Verdict::Later(_)));
    for code in [RefusalCode::Timeout, RefusalCode::ShuttingDown] {
        assert!(matches!(verdicts(&[refused(code)])[0], Verdict::Later(_)));
    }
    for code in [
        RefusalCode::Replay,
        RefusalCode::Gap,
        RefusalCode::NotEnrolled,
    ] {
        assert!(matches!(
            verdicts(&[refused(code)])[0],
            Verdict::Refused(..)
        ));
    }
}

#[test]
fn backoff_doubles_up_to_its_ceiling() {
    let b = Backoff::default();
    let waits: Vec<u64> = (1..=8).map(|n| b.wait(n).as_millis() as u64).collect();
    assert_eq!(waits, [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000]);
    assert_eq!(b.wait(200), b.max);
}

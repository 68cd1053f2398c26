//! The `Reporter` through its Rust API: fixes reported while no validator answers are queued
//! and delivered once the patient is enrolled, after a reopen; a patient not enrolled has its
//! records refused and kept aside; every bad input is a typed error.

use bmpls_mobile::{Reporter, ReporterError};

use crate::{Cluster, dead_node, fix, keystore, with_nodes};

#[test]
fn fixes_queued_offline_are_delivered_after_a_reopen_once_enrolled() {
    let chain = Cluster::start(1);
    let dir = tempfile::tempdir().expect("temp dir");
    let path = keystore(dir.path(), "alice");
    let offline = with_nodes(&chain.consortium(), vec![dead_node()]);
    let reporter = Reporter::create(path.clone(), offline, None).expect("create");
    for i in 0..3 {
        let outcome = reporter.report(fix(i)).expect("queued");
        assert_eq!(outcome.seq, Some(i + 1));
        assert!(outcome.sent.delivered.is_empty());
        assert_eq!(outcome.sent.waiting, i + 1);
        assert!(outcome.sent.last_failure.is_some(), "{outcome:?}");
    }
    // The same fix again is not a new record.
    assert_eq!(reporter.queue(fix(2)).expect("seen"), None);
    let request = reporter.enrolment().expect("request");
    assert!(request.contains(&reporter.patient_id()), "{request}");
    drop(reporter);

    chain.enrol(&request);
    let reporter = Reporter::open(path, chain.consortium()).expect("reopen");
    let status = reporter.outbox_status().expect("status");
    assert_eq!((status.waiting, status.next_seq), (3, 4));
    assert_eq!(status.oldest_waiting_fix_time_ms, Some(fix(0).fix_time_ms));
    let flushed = reporter.flush(30).expect("flush");
    let seqs: Vec<u64> = flushed.delivered.iter().map(|d| d.seq).collect();
    assert_eq!((seqs, flushed.waiting), (vec![1, 2, 3], 0), "{flushed:?}");
    // Online, a report is delivered at once.
    let outcome = reporter.report(fix(3)).expect("report");
    assert_eq!(outcome.seq, Some(4));
    assert_eq!(outcome.sent.delivered.len(), 1, "{outcome:?}");
    assert_eq!(reporter.outbox_status().expect("status").waiting, 0);
    reporter.disconnect().expect("disconnect");
}

#[test]
fn records_of_a_patient_not_enrolled_are_refused_and_kept_aside() {
    let chain = Cluster::start(1);
    let dir = tempfile::tempdir().expect("temp dir");
    let reporter =
        Reporter::create(keystore(dir.path(), "bob"), chain.consortium(), None).expect("create");
    let outcome = reporter.report(fix(0)).expect("report");
    assert_eq!(outcome.sent.refused.len(), 1, "{outcome:?}");
    assert_eq!(outcome.sent.refused[0].code, "NotEnrolled");
    let status = reporter.outbox_status().expect("status");
    assert_eq!((status.waiting, status.refused.len()), (0, 1));
    assert_eq!(status.refused[0].fix_time_ms, fix(0).fix_time_ms);
    assert_eq!(reporter.discard_refused().expect("discard"), 1);
    assert!(reporter.outbox_status().expect("status").refused.is_empty());
}

#[test]
fn bad_input_gives_typed_errors_and_queues_nothing() {
    let chain = Cluster::start(1);
    let consortium = with_nodes(&chain.consortium(), vec![dead_node()]);
    let dir = tempfile::tempdir().expect("temp dir");
    let path = keystore(dir.path(), "carol");
    assert!(matches!(
        Reporter::open(path.clone(), consortium.clone()),
        Err(ReporterError::KeystoreMissing { .. })
    ));
    let broken = bmpls_mobile::Consortium {
        ca_pem: "not a certificate".into(),
        ..consortium.clone()
    };
    assert!(matches!(
        Reporter::create(path.clone(), broken, None),
        Err(ReporterError::BadConfig { .. })
    ));
    assert!(matches!(
        Reporter::create(path.clone(), consortium.clone(), Some("levels = 3".into())),
        Err(ReporterError::BadConfig { .. })
    ));
    let reporter = Reporter::create(path.clone(), consortium.clone(), None).expect("create");
    assert!(matches!(
        Reporter::create(path.clone(), consortium.clone(), None),
        Err(ReporterError::KeystoreExists { .. })
    ));
    assert!(matches!(
        Reporter::open(path, consortium),
        Err(ReporterError::Busy)
    ));
    let bad = |edit: &dyn Fn(&mut bmpls_mobile::Fix)| {
        let mut f = fix(0);
        edit(&mut f);
        match reporter.report(f) {
            Err(ReporterError::BadFix { reason }) => reason,
            other => panic!("expected BadFix, got {other:?}"),
        }
    };
    assert!(bad(&|f| f.lat = f64::NAN).contains("not a finite number"));
    assert!(bad(&|f| f.lon = 181.0).contains("longitude"));
    assert!(bad(&|f| f.battery_percent = 101).contains("battery"));
    assert!(bad(&|f| f.accuracy_m = -1.0).contains("accuracy"));
    // Unix seconds where milliseconds are expected.
    assert!(bad(&|f| f.fix_time_ms /= 1000).contains("seconds"));
    let status = reporter.outbox_status().expect("status");
    assert_eq!((status.waiting, status.next_seq), (0, 1));
}

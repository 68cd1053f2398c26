//! Tracks whose fix times do not follow report order (a phone flushing a backlog after a live
//! fix), on a loopback cluster: every honest answer verifies, with the exclusion evidence that
//! lets the carer see a dropped record, and a byzantine node's misuse of that evidence is caught.

use bmpls_client::{AnswerError, CarerKeystore, Fix, Nodes, PatientKeystore, verify_answer};
use bmpls_grid::LevelSet;
use bmpls_net::query::{Answer, Ask, ProvedRecord, Query, QueryOutcome};
use bmpls_types::{BoundedVec, LevelIndex, LocationRecord, Role, Seq, Transaction};
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::consortium::{Consortium, LEVELS_TOML, commit, now_ms};

const NEIGHBOURHOOD: LevelIndex = LevelIndex(2);
const DAY_MS: u64 = 86_400_000;
const MINUTE_MS: u64 = 60_000;

fn fix(fix_time_ms: u64, i: u32) -> Fix {
    Fix {
        lat: 52.3600 + 0.0004 * f64::from(i),
        lon: 4.8800 + 0.0010 * f64::from(i),
        accuracy_m: 5.0,
        altitude_m: 2.0,
        speed_m_s: 1.2,
        battery_percent: 80,
        trigger: bmpls_types::Trigger::Periodic,
        fix_time_ms,
    }
}

/// `answer` with its records and evidence edited by `edit` (what a byzantine node could send).
fn edited(
    answer: &Answer,
    edit: impl FnOnce(&mut Vec<ProvedRecord>, &mut Vec<ProvedRecord>),
) -> Answer {
    let (mut records, mut excluded) = (answer.records.to_vec(), answer.excluded.to_vec());
    edit(&mut records, &mut excluded);
    Answer {
        records: BoundedVec::new(records).expect("bounded"),
        excluded: BoundedVec::new(excluded).expect("bounded"),
        ..answer.clone()
    }
}

fn seq_of(p: &ProvedRecord) -> u64 {
    p.view.seq.0
}

/// What a node may send as evidence for `record`: cut past the last level.
fn as_evidence(record: &LocationRecord) -> bmpls_types::RecordView {
    record.view(LevelIndex(u8::MAX))
}

#[test]
fn out_of_order_tracks_verify_and_a_dropped_record_shows() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(scenario());
}

#[allow(clippy::too_many_lines)]
async fn scenario() {
    let net = Consortium::start("tracks", 200).await;
    let levels = LevelSet::from_toml(LEVELS_TOML).expect("levels");
    let mut rng = StdRng::seed_from_u64(16);
    let patient =
        PatientKeystore::create(&net.dir.path().join("alice"), LEVELS_TOML, DAY_MS, &mut rng)
            .expect("patient");
    let carer = CarerKeystore::create(&net.dir.path().join("nurse"), Role::Family, &mut rng)
        .expect("carer");
    commit(
        &net.admin,
        vec![
            patient.enrolment(&net.operator, net.validators.chain_id()),
            carer.enrolment(&net.operator, net.validators.chain_id()),
        ],
    )
    .await;

    // The README's flow, generalised: a fix hours ago, a live fix now, then that walk's
    // backlog flushed from a file, interleaved with the first, then one more live fix.
    let now = now_ms();
    let live = now - MINUTE_MS;
    let morning = now - 6 * 60 * MINUTE_MS;
    let times = [
        morning,                  // seq 1
        live,                     // seq 2: live
        morning + 5 * MINUTE_MS,  // seq 3: backlog
        morning,                  // seq 4: the same time as seq 1 (a file imported twice)
        morning + 10 * MINUTE_MS, // seq 5
        live + 1,                 // seq 6: live
        morning + 2 * MINUTE_MS,  // seq 7: backlog
    ];
    let mut reporter = patient
        .reporter(net.validators.chain_id())
        .expect("reporter");
    let records: Vec<Transaction> = times
        .iter()
        .zip(1u32..)
        .map(|(&t, i)| {
            Transaction::Report(
                reporter
                    .build(&fix(t, i), Seq(u64::from(i)), &mut rng)
                    .expect("record"),
            )
        })
        .collect();
    let built: Vec<LocationRecord> = records
        .iter()
        .map(|tx| match tx {
            Transaction::Report(r) => r.clone(),
            _ => unreachable!("reports"),
        })
        .collect();
    let phone = Nodes::new(&net.addrs, &net.trust, patient.reporter_key()).expect("clients");
    for record in records {
        // One block each, as a phone that reports as it goes.
        commit(&phone, vec![record]).await;
    }

    // Yesterday and today: the walk hours ago may lie in either key epoch.
    let midnight = now / DAY_MS * DAY_MS;
    let window = (midnight - DAY_MS, midnight + DAY_MS - 1);
    let grant = patient
        .grant(
            net.validators.chain_id(),
            carer.carer,
            &carer.agreement().public(),
            NEIGHBOURHOOD,
            window,
            (now - MINUTE_MS, now + 3_600_000),
            "family",
            &mut rng,
        )
        .expect("grant");
    let grant_hash = commit(&net.admin, vec![grant]).await[0].0;
    let nodes = Nodes::new(&net.addrs, &net.trust, carer.identity()).expect("clients");
    let track = |from_ms: u64, to_ms: u64, limit: u32| Query {
        patient: patient.patient,
        grant: grant_hash,
        level: NEIGHBOURHOOD,
        from_ms,
        to_ms,
        ask: Ask::Track,
        limit,
    };
    let ask = async |query: &Query| -> Answer {
        let (_, mut outcomes) = nodes.query(vec![query.clone()]).await.expect("answer");
        match outcomes.remove(0) {
            QueryOutcome::Answered(answer) => *answer,
            other => panic!("not answered: {other:?}"),
        }
    };
    let verify = |answer: Answer, query: &Query| {
        verify_answer(answer, query, &net.validators, &levels, &carer)
    };
    let seqs = |answer: &bmpls_client::VerifiedAnswer| -> Vec<u64> {
        answer.records.iter().map(|r| r.seq.0).collect()
    };

    // The whole window: every record, in (fix time, seq) order, and nothing to exclude.
    let day_query = track(window.0, window.1, 1_000);
    let answer = ask(&day_query).await;
    let seen = verify(answer.clone(), &day_query).expect("an honest whole-day track verifies");
    assert_eq!(seqs(&seen), [1, 4, 7, 3, 5, 2, 6]);
    assert!(answer.excluded.is_empty() && !seen.more);

    // The morning only: the live fixes 2 and 6 lie between answered records but outside the
    // window, so they come as evidence, and the track verifies.
    let morning_query = track(morning, morning + 30 * MINUTE_MS, 1_000);
    let answer = ask(&morning_query).await;
    let seen = verify(answer.clone(), &morning_query).expect("an honest morning track verifies");
    assert_eq!(seqs(&seen), [1, 4, 7, 3, 5]);
    assert_eq!(
        answer.excluded.iter().map(seq_of).collect::<Vec<_>>(),
        [2, 6]
    );
    // Evidence shows seq, fix time and epoch only: no ciphertext of a record outside the window.
    assert!(
        answer
            .excluded
            .iter()
            .all(|p| p.view.cells.is_empty() && p.view.sealed().is_none())
    );
    let revealing = edited(&answer, |records, excluded| {
        excluded[0].view = built[1].view(NEIGHBOURHOOD);
        let _ = records;
    });
    let error = verify(revealing, &morning_query).expect_err("evidence with ciphertexts");
    assert!(error.to_string().contains("carries ciphertexts"), "{error}");

    // A byzantine node that withholds a record from the middle is caught, whether it drops the
    // evidence around it or not.
    let is_gap = |e: &AnswerError, what: &str| e.to_string().contains(what);
    let dropped = edited(&answer, |records, _| {
        records.retain(|r| seq_of(r) != 3);
    });
    let error = verify(dropped, &morning_query).expect_err("a withheld record is caught");
    assert!(
        is_gap(&error, "record 3 is missing from the track"),
        "{error}"
    );
    let dropped = edited(&answer, |records, excluded| {
        records.retain(|r| seq_of(r) != 4);
        excluded.clear();
    });
    let error = verify(dropped, &morning_query).expect_err("a withheld record is caught");
    assert!(is_gap(&error, "record 2 is missing"), "{error}");

    // Evidence that is itself in the window is refused: a record moved from the answer to it.
    let hidden = edited(&answer, |records, excluded| {
        let i = records.iter().position(|r| seq_of(r) == 3).expect("seq 3");
        let mut moved = records.remove(i);
        moved.view = as_evidence(&built[2]);
        excluded.push(moved);
    });
    let error = verify(hidden, &morning_query).expect_err("in-window evidence is refused");
    assert!(
        error.to_string().contains("record 3 is in the window"),
        "{error}"
    );

    // Forged evidence is refused: a record's fix time moved out of the window breaks its
    // signature and its inclusion proof.
    let forged = edited(&answer, |records, excluded| {
        let i = records.iter().position(|r| seq_of(r) == 3).expect("seq 3");
        let mut moved = records.remove(i);
        moved.view = as_evidence(&built[2]);
        moved.view.fix_time_ms = live;
        excluded.push(moved);
    });
    let error = verify(forged, &morning_query).expect_err("forged evidence is refused");
    assert!(matches!(error, AnswerError::Proof { .. }), "{error}");

    // Evidence outside the answered run, or given twice, is refused.
    let outside = edited(&answer, |records, _| {
        records.retain(|r| seq_of(r) != 7);
    });
    let error = verify(outside, &morning_query).expect_err("evidence past the run is refused");
    assert!(
        error.to_string().contains("not between answered"),
        "{error}"
    );
    let twice = edited(&answer, |_, excluded| {
        excluded.push(excluded[0].clone());
    });
    assert!(
        verify(twice, &morning_query).is_err(),
        "evidence given twice is refused"
    );

    // Evidence counts against the limit: with a limit of 4 the morning's first records whose
    // run of seqs fits (1, 4: run 1..=4 with evidence 2 and 3) are answered, 3 comes as
    // evidence cut by the limit, and the answer says there is more.
    let short_query = track(morning, morning + 30 * MINUTE_MS, 4);
    let answer = ask(&short_query).await;
    let seen = verify(answer.clone(), &short_query).expect("a cut track verifies");
    assert_eq!(seqs(&seen), [1, 4]);
    assert_eq!(
        answer.excluded.iter().map(seq_of).collect::<Vec<_>>(),
        [2, 3]
    );
    assert!(seen.more, "the limit cut the answer");
    // …and that evidence may not be passed off as excluded by an answer that claims to be
    // complete.
    let complete = Answer {
        more: false,
        ..answer.clone()
    };
    let error = verify(complete, &short_query).expect_err("a complete answer may not cut");
    assert!(
        error.to_string().contains("record 3 is in the window"),
        "{error}"
    );

    nodes.close().await;
    phone.close().await;
    net.admin.close().await;
    net.cluster.shutdown().await.expect("clean shutdown");
}

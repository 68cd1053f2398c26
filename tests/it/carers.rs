//! Carers on a loopback cluster (four validators over QUIC in this process): grants at a level
//! and a window, queries the nodes answer on ciphertexts, answers the carer verifies and
//! decrypts, refusals beyond the grant, audit entries, and a byzantine node's altered answers.

use std::time::Duration;

use bmpls_client::{CarerKeystore, Fix, Nodes, PatientKeystore, verify_answer, verify_audit};
use bmpls_crypto::ValidatorSet;
use bmpls_grid::{CellIndex, LevelSet, cover_lon_lat_box};
use bmpls_net::query::{
    Answer, Ask, AuditOutcome, AuditRequest, GrantOutcome, GrantRequest, Query, QueryOutcome,
    Unauthorized,
};
use bmpls_ope::keys::{Epoch as KeyEpoch, PatientKeys};
use bmpls_types::{Finer, LevelIndex, OpeCiphertext, QueryKind, Role, Seq, Transaction, TxHash};
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::consortium::{Consortium, LEVELS_TOML, commit, now_ms};

const EXACT: LevelIndex = LevelIndex(0);
const STREET: LevelIndex = LevelIndex(1);
const NEIGHBOURHOOD: LevelIndex = LevelIndex(2);
const DISTRICT: LevelIndex = LevelIndex(3);
const DAY_MS: u64 = 86_400_000;

/// A walk east through Amsterdam, one fix every 30 s, within one key epoch (day).
fn walk(start_ms: u64, n: usize) -> Vec<Fix> {
    (0..n)
        .map(|i| Fix {
            lat: 52.3600 + 0.0004 * i as f64,
            lon: 4.8800 + 0.0010 * i as f64,
            accuracy_m: 5.0,
            altitude_m: 2.0,
            speed_m_s: 1.2,
            battery_percent: 80,
            trigger: bmpls_types::Trigger::Periodic,
            fix_time_ms: start_ms + 30_000 * i as u64,
        })
        .collect()
}

struct World {
    validators: ValidatorSet,
    levels: LevelSet,
}

impl World {
    fn outcome(&self, outcome: QueryOutcome) -> Answer {
        match outcome {
            QueryOutcome::Answered(answer) => *answer,
            other => panic!("not answered: {other:?}"),
        }
    }
}

/// `answer` with its records edited by `edit` (what a byzantine node could send).
fn edit_records(
    answer: &Answer,
    edit: impl FnOnce(&mut Vec<bmpls_net::query::ProvedRecord>),
) -> Answer {
    let mut records = answer.records.to_vec();
    edit(&mut records);
    Answer {
        records: bmpls_types::BoundedVec::new(records).expect("bounded"),
        ..answer.clone()
    }
}

fn refusal(outcome: &QueryOutcome) -> &Unauthorized {
    match outcome {
        QueryOutcome::Unauthorized(why) => why,
        other => panic!("not refused: {other:?}"),
    }
}

#[test]
fn carers_see_their_level_and_nothing_more() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(carers_scenario());
}

#[allow(clippy::too_many_lines)]
async fn carers_scenario() {
    let net = Consortium::start("carers", 200).await;
    let world = World {
        validators: net.validators,
        levels: LevelSet::from_toml(LEVELS_TOML).expect("levels"),
    };
    let mut rng = StdRng::seed_from_u64(7);

    // A patient, a second patient, a district carer and a GP with an exact grant.
    let patient =
        PatientKeystore::create(&net.dir.path().join("alice"), LEVELS_TOML, DAY_MS, &mut rng)
            .expect("patient");
    let other = PatientKeystore::create(&net.dir.path().join("bob"), LEVELS_TOML, DAY_MS, &mut rng)
        .expect("patient");
    let district = CarerKeystore::create(
        &net.dir.path().join("operator"),
        Role::TelecareOperator,
        &mut rng,
    )
    .expect("carer");
    let gp = CarerKeystore::create(&net.dir.path().join("gp"), Role::Gp, &mut rng).expect("carer");
    commit(
        &net.admin,
        vec![
            patient.enrolment(&net.operator, world.validators.chain_id()),
            other.enrolment(&net.operator, world.validators.chain_id()),
            district.enrolment(&net.operator, world.validators.chain_id()),
            gp.enrolment(&net.operator, world.validators.chain_id()),
        ],
    )
    .await;

    // Today's walk (one key epoch), reported through the network.
    let now = now_ms();
    let day = now / DAY_MS;
    let start = day * DAY_MS + 1_000;
    // 140 fixes in small blocks: the store compacts the first 128 into full chunks, so the
    // answers below are proved from records read back from compacted chunks.
    let fixes = walk(start, 140);
    let mut reporter = patient
        .reporter(world.validators.chain_id())
        .expect("reporter");
    let records: Vec<Transaction> = fixes
        .iter()
        .enumerate()
        .map(|(i, fix)| {
            Transaction::Report(
                reporter
                    .build(fix, Seq(i as u64 + 1), &mut rng)
                    .expect("record"),
            )
        })
        .collect();
    let phone = Nodes::new(&net.addrs, &net.trust, patient.reporter_key()).expect("clients");
    for batch in records.chunks(10) {
        commit(&phone, batch.to_vec()).await;
    }

    // Grants: district and exact, today's data, valid for an hour; one already expired.
    let valid = (now - 60_000, now + 3_600_000);
    let window = (day * DAY_MS, day * DAY_MS + DAY_MS - 1);
    let district_grant = patient
        .grant(
            world.validators.chain_id(),
            district.carer,
            &district.agreement().public(),
            DISTRICT,
            window,
            valid,
            "telecare",
            &mut rng,
        )
        .expect("grant");
    let gp_grant = patient
        .grant(
            world.validators.chain_id(),
            gp.carer,
            &gp.agreement().public(),
            EXACT,
            window,
            valid,
            "care",
            &mut rng,
        )
        .expect("grant");
    let expired_grant = patient
        .grant(
            world.validators.chain_id(),
            gp.carer,
            &gp.agreement().public(),
            EXACT,
            window,
            (now - 7_200_000, now - 3_600_000),
            "old",
            &mut rng,
        )
        .expect("grant");
    let hashes = commit(&net.admin, vec![district_grant, gp_grant, expired_grant]).await;
    let (district_hash, gp_hash, expired_hash) = (hashes[0].0, hashes[1].0, hashes[2].0);

    let track = |grant: TxHash, level: LevelIndex, from_ms: u64, to_ms: u64| Query {
        patient: patient.patient,
        grant,
        level,
        from_ms,
        to_ms,
        ask: Ask::Track,
        limit: 1_000,
    };
    let district_nodes = Nodes::new(&net.addrs, &net.trust, district.identity()).expect("clients");
    let gp_nodes = Nodes::new(&net.addrs, &net.trust, gp.identity()).expect("clients");

    // The district carer gets district cells: exactly the cells of the reported fixes.
    let depth = world.levels.levels()[3].depth;
    let query = track(district_hash, DISTRICT, window.0, window.1);
    let (_, mut outcomes) = district_nodes
        .query(vec![query.clone()])
        .await
        .expect("answer");
    let answer = world.outcome(outcomes.remove(0));
    let seen = verify_answer(
        answer.clone(),
        &query,
        &world.validators,
        &world.levels,
        &district,
    )
    .expect("a true answer verifies");
    assert_eq!(seen.records.len(), fixes.len());
    for (record, fix) in seen.records.iter().zip(&fixes) {
        let truth = CellIndex::from_lon_lat(fix.lon, fix.lat, depth).expect("cell");
        assert_eq!(
            record.cell, truth,
            "the district cell of fix {}",
            record.seq.0
        );
        assert!(record.exact.is_none(), "no exact fix for a district grant");
    }

    // …and its query at neighbourhood level is refused.
    let finer = track(district_hash, NEIGHBOURHOOD, window.0, window.1);
    let (_, outcomes) = district_nodes.query(vec![finer]).await.expect("answer");
    assert_eq!(
        refusal(&outcomes[0]),
        &Unauthorized::LevelTooFine {
            granted: 3,
            asked: 2
        }
    );

    // With everything it holds, it cannot derive a finer key or open the sealed fix.
    let keys = bmpls_client::open_grant(&seen.grant, &district).expect("its keys open");
    let epoch = KeyEpoch(day as u32);
    assert!(keys.epoch_key(NEIGHBOURHOOD.0, epoch).is_err());
    assert!(keys.epoch_key(EXACT.0, epoch).is_err());
    let material = keys.to_bytes();
    let master = bmpls_ope::keys::MasterSecret::from_bytes(
        *bmpls_crypto::keyfile::read_secret(&net.dir.path().join("alice/master.key"))
            .expect("master"),
    );
    let truth = PatientKeys::new(&master, world.levels.len() as u8).expect("keys");
    for level in 0..3u8 {
        let finer = truth.epoch_key(level, epoch).expect("patient's key");
        assert!(
            !material.windows(32).any(|w| w == finer.expose_secret()),
            "the grant carries no level-{level} key"
        );
        for coarse in 3..world.levels.len() as u8 {
            let derived = keys.epoch_key(coarse, epoch).expect("coarser keys derive");
            assert_ne!(derived.expose_secret(), finer.expose_secret());
        }
    }
    // What reached it is its level and coarser ones only: no finer ciphertext, no sealed fix.
    for proved in answer.records.iter() {
        assert_eq!(proved.view.level, DISTRICT);
        assert_eq!(proved.view.cells.len(), world.levels.len() - 3);
        assert!(
            proved.view.sealed().is_none(),
            "no sealed fix in a district answer"
        );
    }

    // The GP with an exact grant gets the exact fixes.
    let exact = track(gp_hash, EXACT, window.0, window.1);
    let (_, mut outcomes) = gp_nodes.query(vec![exact.clone()]).await.expect("answer");
    let gp_answer = world.outcome(outcomes.remove(0));
    let seen_gp = verify_answer(
        gp_answer.clone(),
        &exact,
        &world.validators,
        &world.levels,
        &gp,
    )
    .expect("verifies");
    for (record, fix) in seen_gp.records.iter().zip(&fixes) {
        let exact = record.exact.expect("exact fix");
        assert_eq!(i64::from(exact.lat_e7), (fix.lat * 1e7).round() as i64);
        assert_eq!(i64::from(exact.lon_e7), (fix.lon * 1e7).round() as i64);
    }
    // The district answer holds none of the finer ciphertexts or sealed fixes the GP's holds
    // (searched in its bytes), and a coarse key does not open a sealed fix.
    let district_bytes = borsh::to_vec(&answer).expect("encodes");
    for proved in gp_answer.records.iter() {
        let view = &proved.view;
        assert_eq!(view.level, EXACT);
        for finer in &view.cells[..3] {
            let bytes = borsh::to_vec(finer).expect("encodes");
            assert!(
                !district_bytes.windows(bytes.len()).any(|w| w == bytes),
                "a finer ciphertext of record {} reached the district carer",
                view.seq.0
            );
        }
        let sealed = view.sealed().expect("the GP gets the sealed fix");
        assert!(!district_bytes.windows(sealed.len()).any(|w| w == sealed));
        for coarse in 3..world.levels.len() as u8 {
            let key = keys.epoch_key(coarse, epoch).expect("coarser keys derive");
            let seal = bmpls_crypto::SealKey::from_bytes(*key.seal_key().expose_secret());
            assert!(
                bmpls_crypto::seal::open_fix(&seal, sealed, &view.patient, view.seq, view.epoch)
                    .is_err(),
                "a level-{coarse} key does not open the exact fix"
            );
        }
    }

    // An area: a box around the first half of the walk, at district level.
    let first_half = &fixes[..12];
    let (lo_lat, hi_lat) = (first_half[0].lat - 0.0001, first_half[11].lat + 0.0001);
    let (lo_lon, hi_lon) = (first_half[0].lon - 0.0001, first_half[11].lon + 0.0001);
    let cells = cover_lon_lat_box(lo_lon, lo_lat, hi_lon, hi_lat, depth, 64).expect("cover");
    let ask = bmpls_client::area_query(
        &keys,
        &world.levels,
        DISTRICT.0,
        &cells,
        (
            bmpls_types::Epoch(day as u32),
            bmpls_types::Epoch(day as u32),
        ),
    )
    .expect("area");
    let area = Query {
        ask,
        ..track(district_hash, DISTRICT, window.0, window.1)
    };
    let (_, mut outcomes) = district_nodes
        .query(vec![area.clone()])
        .await
        .expect("answer");
    let area_answer = world.outcome(outcomes.remove(0));
    let inside = verify_answer(
        area_answer.clone(),
        &area,
        &world.validators,
        &world.levels,
        &district,
    )
    .expect("verifies");
    let expected: Vec<u64> = fixes
        .iter()
        .enumerate()
        .filter(|(_, f)| {
            let cell = CellIndex::from_lon_lat(f.lon, f.lat, depth).expect("cell");
            cells.iter().any(|&(a, b)| (a..=b).contains(&cell.index()))
        })
        .map(|(i, _)| i as u64 + 1)
        .collect();
    assert!(
        expected.len() >= 12,
        "the box holds at least the first half"
    );
    assert_eq!(
        inside.records.iter().map(|r| r.seq.0).collect::<Vec<_>>(),
        expected
    );

    // Refusals: outside the data window, another patient, someone else's grant, expired.
    let (_, outcomes) = district_nodes
        .query(vec![
            track(district_hash, DISTRICT, window.0 - DAY_MS, window.1),
            Query {
                patient: other.patient,
                ..track(district_hash, DISTRICT, window.0, window.1)
            },
            track(gp_hash, EXACT, window.0, window.1),
            track(expired_hash, EXACT, window.0, window.1),
        ])
        .await
        .expect("answers");
    assert!(matches!(
        refusal(&outcomes[0]),
        Unauthorized::OutsideWindow { .. }
    ));
    assert_eq!(refusal(&outcomes[1]), &Unauthorized::UnknownGrant);
    assert_eq!(refusal(&outcomes[2]), &Unauthorized::NotTheGrantee);
    let (_, outcomes) = gp_nodes
        .query(vec![track(expired_hash, EXACT, window.0, window.1)])
        .await
        .expect("answers");
    assert!(matches!(
        refusal(&outcomes[0]),
        Unauthorized::OutsideValidity { .. }
    ));

    // A byzantine node's answers are caught: an altered record, one dropped from the middle,
    // an invented one, a forged header.
    let altered = edit_records(&answer, |records| {
        let view = &mut records[5].view;
        let mut cells = view.cells.to_vec();
        let bmpls_types::Cell::Ope(c) = cells[0] else {
            panic!("district is an OPE level")
        };
        cells[0] = bmpls_types::Cell::Ope(OpeCiphertext(c.0 + 1));
        view.cells = bmpls_types::BoundedVec::new(cells).expect("bounded");
    });
    assert!(verify_answer(altered, &query, &world.validators, &world.levels, &district).is_err());
    let rehidden = edit_records(&answer, |records| {
        if let Finer::Hidden(below) = &mut records[2].view.finer {
            below.0[0] ^= 1;
        }
    });
    assert!(
        verify_answer(
            rehidden,
            &query,
            &world.validators,
            &world.levels,
            &district
        )
        .is_err(),
        "a view whose hidden levels were altered is caught"
    );
    let recut = edit_records(&answer, |records| {
        let view = gp_answer.records[1].view.clone();
        records[1].view = view;
    });
    assert!(
        verify_answer(recut, &query, &world.validators, &world.levels, &district).is_err(),
        "a record cut to another level than asked is refused"
    );
    let dropped = edit_records(&answer, |records| {
        records.remove(7);
    });
    let error = verify_answer(dropped, &query, &world.validators, &world.levels, &district)
        .expect_err("a gap is caught");
    assert!(error.to_string().contains("missing"), "{error}");
    let mut forger = patient
        .reporter(world.validators.chain_id())
        .expect("reporter");
    let mut fake = fixes[3];
    fake.fix_time_ms += 1;
    let fake_record = forger.build(&fake, Seq(4), &mut rng).expect("record");
    let invented = edit_records(&answer, |records| {
        records[3].view = fake_record.view(DISTRICT);
    });
    assert!(
        verify_answer(
            invented,
            &query,
            &world.validators,
            &world.levels,
            &district
        )
        .is_err(),
        "a record not in the block is caught, even signed by the real reporter key"
    );
    let mut forged = answer.clone();
    let mut blocks = forged.blocks.to_vec();
    blocks[0].header.time_ms += 1;
    forged.blocks = bmpls_types::BoundedVec::new(blocks).expect("bounded");
    assert!(verify_answer(forged, &query, &world.validators, &world.levels, &district).is_err());
    // An area far from the walk (Rotterdam): nothing inside, and records slipped in are caught.
    let far_cells = cover_lon_lat_box(4.45, 51.91, 4.50, 51.93, depth, 64).expect("cover");
    let far_ask = bmpls_client::area_query(
        &keys,
        &world.levels,
        DISTRICT.0,
        &far_cells,
        (
            bmpls_types::Epoch(day as u32),
            bmpls_types::Epoch(day as u32),
        ),
    )
    .expect("area");
    let far = Query {
        ask: far_ask,
        ..track(district_hash, DISTRICT, window.0, window.1)
    };
    let (_, mut outcomes) = district_nodes
        .query(vec![far.clone()])
        .await
        .expect("answer");
    let far_answer = world.outcome(outcomes.remove(0));
    assert!(far_answer.records.is_empty(), "nobody walked in Rotterdam");
    // The true track answer (same grant, same proofs) passed off as the far area's answer.
    let error = verify_answer(
        answer.clone(),
        &far,
        &world.validators,
        &world.levels,
        &district,
    )
    .expect_err("records outside the area asked are caught");
    assert!(error.to_string().contains("not in the area"), "{error}");
    drop(area_answer);

    // ORE levels: the GP asks at street and neighbourhood (coarser than its grant), where
    // records hold right ciphertexts that no one compares without a token. Its track decrypts
    // every cell by bisection to the truth.
    for level in [STREET, NEIGHBOURHOOD] {
        let depth = world.levels.levels()[usize::from(level.0)].depth;
        let query = track(gp_hash, level, window.0, window.1);
        let (_, mut outcomes) = gp_nodes.query(vec![query.clone()]).await.expect("answer");
        let seen = verify_answer(
            world.outcome(outcomes.remove(0)),
            &query,
            &world.validators,
            &world.levels,
            &gp,
        )
        .expect("verifies");
        assert_eq!(seen.records.len(), fixes.len());
        for (record, fix) in seen.records.iter().zip(&fixes) {
            let truth = CellIndex::from_lon_lat(fix.lon, fix.lat, depth).expect("cell");
            assert_eq!(
                record.cell, truth,
                "level {} of fix {}",
                level.0, record.seq.0
            );
        }
    }
    // An area at street level: tokens for the street cells, a district pre-filter; the node
    // answers exactly the fixes whose street cell is in the area.
    // The GP opens the grant's keys from the grant's proof, which is not a query: no audit
    // entry (checked at the end: the GP never asks `Last`, which the keys once came from).
    let gp_grant = GrantRequest {
        patient: patient.patient,
        grant: gp_hash,
    };
    let evidence = match gp_nodes.grant(gp_grant.clone()).await.expect("answer").1 {
        GrantOutcome::Proved(evidence) => *evidence,
        other => panic!("the GP's grant is not proved: {other:?}"),
    };
    let (proved, gp_keys) =
        bmpls_client::verify_grant(&evidence, &gp_grant, &world.validators, &gp)
            .expect("the grant's proof verifies");
    assert_eq!(proved.grant, seen_gp.grant, "the grant the answers carry");
    assert_eq!(proved.epoch_length_ms, DAY_MS);
    // A node passing off another proved transaction as the grant, or dropping the enrolment,
    // is caught; another carer's key is not given the GP's grant.
    let mut swapped = evidence.clone();
    swapped.grant = evidence.keys[0].clone();
    assert!(bmpls_client::verify_grant(&swapped, &gp_grant, &world.validators, &gp).is_err());
    let mut no_enrolment = evidence.clone();
    no_enrolment.keys = bmpls_types::BoundedVec::empty();
    assert!(bmpls_client::verify_grant(&no_enrolment, &gp_grant, &world.validators, &gp).is_err());
    assert!(
        bmpls_client::verify_grant(&evidence, &gp_grant, &world.validators, &district).is_err(),
        "the grant is wrapped to the GP"
    );
    assert_eq!(
        district_nodes
            .grant(gp_grant.clone())
            .await
            .expect("answer")
            .1,
        GrantOutcome::Unauthorized(Unauthorized::NotTheGrantee)
    );
    let street_depth = world.levels.levels()[1].depth;
    let street_cells =
        cover_lon_lat_box(lo_lon, lo_lat, hi_lon, hi_lat, street_depth, 64).expect("cover");
    let street_ask = bmpls_client::area_query(
        &gp_keys,
        &world.levels,
        STREET.0,
        &street_cells,
        (
            bmpls_types::Epoch(day as u32),
            bmpls_types::Epoch(day as u32),
        ),
    )
    .expect("area");
    assert!(
        matches!(&street_ask, Ask::WithinOre(area) if area.coarse == DISTRICT),
        "a street area is asked with tokens and a district pre-filter"
    );
    let street_area = Query {
        ask: street_ask,
        ..track(gp_hash, STREET, window.0, window.1)
    };
    let (_, mut outcomes) = gp_nodes
        .query(vec![street_area.clone()])
        .await
        .expect("answer");
    let street_answer = world.outcome(outcomes.remove(0));
    let inside = verify_answer(
        street_answer.clone(),
        &street_area,
        &world.validators,
        &world.levels,
        &gp,
    )
    .expect("verifies");
    let expected: Vec<u64> = fixes
        .iter()
        .enumerate()
        .filter(|(_, f)| {
            let cell = CellIndex::from_lon_lat(f.lon, f.lat, street_depth).expect("cell");
            street_cells
                .iter()
                .any(|&(a, b)| (a..=b).contains(&cell.index()))
        })
        .map(|(i, _)| i as u64 + 1)
        .collect();
    assert!(!expected.is_empty() && expected.len() < fixes.len());
    assert_eq!(
        inside.records.iter().map(|r| r.seq.0).collect::<Vec<_>>(),
        expected,
        "the street area holds exactly the fixes in its cells"
    );
    // A node passing off a record outside the area (the whole street track) is caught by the
    // same token comparison the node should have made; an altered right ciphertext breaks the
    // record's signature.
    let (_, mut outcomes) = gp_nodes
        .query(vec![track(gp_hash, STREET, window.0, window.1)])
        .await
        .expect("answer");
    let street_track = world.outcome(outcomes.remove(0));
    let error = verify_answer(
        street_track,
        &street_area,
        &world.validators,
        &world.levels,
        &gp,
    )
    .expect_err("records outside the area are caught");
    assert!(error.to_string().contains("not in the area"), "{error}");
    let altered = edit_records(&street_answer, |records| {
        let view = &mut records[0].view;
        let mut cells = view.cells.to_vec();
        let bmpls_types::Cell::Ore(right) = &cells[0] else {
            panic!("street is an ORE level")
        };
        let mut bytes = right.0.to_vec();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        cells[0] = bmpls_types::Cell::Ore(bmpls_types::OreRight(
            bmpls_types::BoundedVec::new(bytes).expect("same length"),
        ));
        view.cells = bmpls_types::BoundedVec::new(cells).expect("bounded");
    });
    assert!(verify_answer(altered, &street_area, &world.validators, &world.levels, &gp).is_err());
    // An OPE-style area at an ORE level is refused by the node, not answered.
    let wrong_kind = Query {
        ask: Ask::Within(bmpls_types::BoundedVec::empty()),
        ..track(gp_hash, STREET, window.0, window.1)
    };
    let (_, outcomes) = gp_nodes.query(vec![wrong_kind]).await.expect("answer");
    assert!(
        matches!(&outcomes[0], QueryOutcome::Failed(why) if why.as_str().contains("under ORE")),
        "{:?}",
        outcomes[0]
    );

    // After the revocation commits, the carer is refused.
    commit(
        &net.admin,
        vec![patient.revoke(world.validators.chain_id(), district_hash)],
    )
    .await;
    let (_, outcomes) = district_nodes
        .query(vec![query.clone()])
        .await
        .expect("answer");
    assert_eq!(refusal(&outcomes[0]), &Unauthorized::Revoked);
    let district_grant = GrantRequest {
        patient: patient.patient,
        grant: district_hash,
    };
    assert_eq!(
        district_nodes
            .grant(district_grant)
            .await
            .expect("answer")
            .1,
        GrantOutcome::Unauthorized(Unauthorized::Revoked),
        "a revoked grant's proof is not handed out either"
    );
    // Revoking it again says so, and an unknown grant is another refusal.
    let again = net
        .admin
        .submit(vec![
            patient.revoke(world.validators.chain_id(), district_hash),
            patient.revoke(world.validators.chain_id(), TxHash([7; 32])),
        ])
        .await
        .expect("submitted");
    let reasons: Vec<String> = again
        .iter()
        .map(|o| match o {
            bmpls_net::Submitted::Refused { reason, .. } => reason.as_str().to_string(),
            other => panic!("not refused: {other:?}"),
        })
        .collect();
    assert!(reasons[0].contains("is already revoked"), "{reasons:?}");
    assert!(reasons[1].contains("no grant"), "{reasons:?}");

    // Every answered query became an audit entry on the chain, which the patient's custodian
    // reads (verified) and nobody else may.
    let request = AuditRequest {
        patient: patient.patient,
        from_height: bmpls_types::Height(1),
        limit: 1_000,
    };
    let custodian = Nodes::new(&net.addrs, &net.trust, patient.custodian_key()).expect("clients");
    let mut entries = Vec::new();
    for _ in 0..50 {
        let (_, outcome) = custodian
            .audit(request.clone())
            .await
            .expect("audit answer");
        let AuditOutcome::Answered(answer) = outcome else {
            panic!("the custodian is refused: {outcome:?}");
        };
        entries = verify_audit(*answer, &request, &world.validators).expect("audit verifies");
        let kinds: Vec<_> = entries
            .iter()
            .map(|e| (e.audit.query, e.audit.level))
            .collect();
        let expected = [
            (QueryKind::Track, DISTRICT),
            (QueryKind::Within, DISTRICT),
            (QueryKind::Track, EXACT),
            (QueryKind::Within, STREET),
        ];
        if expected.iter().all(|k| kinds.contains(k)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let seen: Vec<_> = entries
        .iter()
        .map(|e| (e.audit.carer, e.audit.query, e.audit.level))
        .collect();
    assert!(
        seen.contains(&(district.carer, QueryKind::Track, DISTRICT)),
        "{seen:?}"
    );
    assert!(
        seen.contains(&(district.carer, QueryKind::Within, DISTRICT)),
        "{seen:?}"
    );
    assert!(
        seen.contains(&(gp.carer, QueryKind::Track, EXACT)),
        "{seen:?}"
    );
    assert!(
        seen.contains(&(gp.carer, QueryKind::Within, STREET)),
        "{seen:?}"
    );
    assert!(
        !seen
            .iter()
            .any(|(carer, kind, _)| *carer == gp.carer && *kind == QueryKind::Last),
        "fetching the grant's proof is not audited as a query: {seen:?}"
    );
    assert!(
        !seen
            .iter()
            .any(|(carer, _, level)| *carer == district.carer && *level == NEIGHBOURHOOD),
        "refused queries are not audited as answered"
    );
    let (_, outcome) = district_nodes.audit(request).await.expect("answer");
    assert_eq!(outcome, AuditOutcome::NotTheCustodian);

    custodian.close().await;
    district_nodes.close().await;
    gp_nodes.close().await;
    phone.close().await;
    net.admin.close().await;
    net.cluster.shutdown().await.expect("clean shutdown");
}

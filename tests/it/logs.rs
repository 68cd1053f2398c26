//! No coordinate, key or sealed payload in any log line: a four-validator cluster runs with every
//! log level on (malachite's too) while a patient reports known places, a GP with an exact grant
//! queries them and a fence fires; then the captured logs are searched for those places (as
//! text, micro-degrees and cell numbers), the patient's and carer's secrets, the records'
//! ciphertexts and sealed payloads.

use std::io::Write;
use std::sync::{Arc, Mutex};

use bmpls_client::{AlertStream, CarerKeystore, Fix, Nodes, PatientKeystore, verify_answer};
use bmpls_crypto::keyfile::read_secret;
use bmpls_grid::{CellIndex, LevelSet, cover_circle};
use bmpls_net::query::{Ask, Query, QueryOutcome};
use bmpls_types::{Height, LevelIndex, Role, Seq, Transaction};
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::consortium::{Consortium, LEVELS_TOML, commit, now_ms};

const DAY_MS: u64 = 86_400_000;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn no_position_key_or_sealed_payload_is_ever_logged() {
    let captured = Captured::default();
    let sink = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || sink.clone())
        .finish();
    // This test owns the process's subscriber; other tests log into it too, harmlessly.
    tracing::subscriber::set_global_default(subscriber).expect("first global subscriber");

    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let (places, secrets, record_bytes) = runtime.block_on(scenario());

    let logs = String::from_utf8_lossy(&captured.0.lock().expect("log buffer")).into_owned();
    assert!(logs.contains("committed"), "the logs were captured");
    assert!(
        logs.len() > 10_000,
        "trace-level logs of a whole run ({} bytes)",
        logs.len()
    );
    let lower = logs.to_lowercase();
    for needle in places.iter().chain(&secrets).chain(&record_bytes) {
        assert!(
            !appears(&lower, &needle.to_lowercase()),
            "{needle:?} appears in the logs"
        );
    }
}

/// Whether `needle` is in `text` as a whole number, not inside a longer one: every test of the
/// process logs here, and a short coordinate such as `5.83457` also occurs by chance inside an
/// unrelated duration (`15.834574ms`), which is not a leak.
/// Hex needles (keys, ciphertext bytes) count anywhere, since a leak would print them inside a
/// longer hex string.
fn appears(text: &str, needle: &str) -> bool {
    let number = needle
        .chars()
        .all(|c| c.is_ascii_digit() || c == '.' || c == '-');
    if !number {
        return text.contains(needle);
    }
    let digit = |c: Option<char>| c.is_some_and(|c| c.is_ascii_digit());
    text.match_indices(needle).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + needle.len()..].chars().next();
        !digit(before) && !digit(after)
    })
}

/// Runs the scenario; returns the places as text, the secrets in hex, and the records'
/// ciphertexts and sealed payloads as they could be printed.
async fn scenario() -> (Vec<String>, Vec<String>, Vec<String>) {
    let net = Consortium::start("logs", 100).await;
    let levels = LevelSet::from_toml(LEVELS_TOML).expect("levels");
    let mut rng = StdRng::seed_from_u64(99);
    let patient = PatientKeystore::create(&net.dir.path().join("p"), LEVELS_TOML, DAY_MS, &mut rng)
        .expect("patient");
    let gp = CarerKeystore::create(&net.dir.path().join("gp"), Role::Gp, &mut rng).expect("carer");
    commit(
        &net.admin,
        vec![
            patient.enrolment(&net.operator, net.validators.chain_id()),
            gp.enrolment(&net.operator, net.validators.chain_id()),
        ],
    )
    .await;

    let now = now_ms();
    let today = (now / DAY_MS * DAY_MS, now / DAY_MS * DAY_MS + DAY_MS - 1);
    let grant = patient
        .grant(
            net.validators.chain_id(),
            gp.carer,
            &gp.agreement().public(),
            LevelIndex(0),
            today,
            (now - 60_000, now + 3_600_000),
            "care",
            &mut rng,
        )
        .expect("grant");
    let home = (51.8123457, 5.8345679);
    let zone = cover_circle(
        home.1,
        home.0,
        200.0,
        levels.levels()[0].depth,
        bmpls_types::limits::MAX_ORE_FENCE_RANGES,
    )
    .expect("zone");
    let fence = patient
        .fence(
            net.validators.chain_id(),
            gp.carer,
            LevelIndex(0),
            &zone,
            today,
            1,
            0,
        )
        .expect("fence");
    // The grant first: a fence needs a standing grant on the committed ledger.
    let mut hashes = commit(&net.admin, vec![grant]).await;
    hashes.extend(commit(&net.admin, vec![fence]).await);

    // Distinctive places: near home, then away.
    let fixes: Vec<Fix> = (0..6)
        .map(|i| Fix {
            lat: home.0 + if i < 3 { 0.0 } else { 0.0213579 } + 0.0000011 * f64::from(i),
            lon: home.1 + 0.0000013 * f64::from(i),
            accuracy_m: 4.25,
            altitude_m: 12.5,
            speed_m_s: 1.25,
            battery_percent: 61,
            trigger: bmpls_types::Trigger::Periodic,
            fix_time_ms: now - 60_000 + u64::from(i as u32) * 1_000,
        })
        .collect();
    let mut reporter = patient
        .reporter(net.validators.chain_id())
        .expect("reporter");
    let records: Vec<_> = fixes
        .iter()
        .enumerate()
        .map(|(i, f)| {
            reporter
                .build(f, Seq(i as u64 + 1), &mut rng)
                .expect("record")
        })
        .collect();
    let phone = Nodes::new(&net.addrs, &net.trust, patient.reporter_key()).expect("clients");
    for record in &records {
        commit(&phone, vec![Transaction::Report(record.clone())]).await;
    }

    // The GP reads the exact fixes and is alerted of the exit.
    let gp_nodes = Nodes::new(&net.addrs, &net.trust, gp.identity()).expect("clients");
    let query = Query {
        patient: patient.patient,
        grant: hashes[0].0,
        level: LevelIndex(0),
        from_ms: today.0,
        to_ms: today.1,
        ask: Ask::Track,
        limit: 100,
    };
    let (_, mut outcomes) = gp_nodes.query(vec![query.clone()]).await.expect("answer");
    let Some(QueryOutcome::Answered(answer)) = outcomes.pop() else {
        panic!("not answered");
    };
    let seen = verify_answer(*answer, &query, &net.validators, &levels, &gp).expect("verifies");
    assert_eq!(seen.records.len(), fixes.len());
    let mut stream = AlertStream::new(gp.carer, net.validators, Height(1));
    let mut alerts = Vec::new();
    for _ in 0..20 {
        alerts.extend(stream.next_events(&gp_nodes, 500).await.expect("watch"));
        if !alerts.is_empty() {
            break;
        }
    }
    assert!(!alerts.is_empty(), "the exit alert fired");

    for nodes in [&gp_nodes, &phone, &net.admin] {
        nodes.close().await;
    }
    net.cluster.shutdown().await.expect("clean shutdown");

    let mut places = Vec::new();
    for f in &fixes {
        for value in [f.lat, f.lon] {
            places.push(format!("{value:.5}"));
            places.push(format!("{value}"));
            places.push(format!("{}", (value * 1e7).round() as i64));
            places.push(format!("{}", (value * 1e6).round() as i64));
        }
        for level in levels.levels() {
            let cell = CellIndex::from_lon_lat(f.lon, f.lat, level.depth).expect("cell");
            if level.depth >= 13 {
                places.push(cell.index().to_string());
            }
        }
    }
    let mut secrets = Vec::new();
    for file in ["master.key", "reporter.key", "custodian.key"] {
        secrets.push(hex::encode(
            *read_secret(&net.dir.path().join("p").join(file)).expect(file),
        ));
    }
    for file in ["identity.key", "agreement.key"] {
        secrets.push(hex::encode(
            *read_secret(&net.dir.path().join("gp").join(file)).expect(file),
        ));
    }
    let mut record_bytes = Vec::new();
    for record in &records {
        record_bytes.push(hex::encode(&record.sealed[..16]));
        for cell in record.cells.iter() {
            match cell {
                bmpls_types::Cell::Ope(c) => {
                    record_bytes.push(c.0.to_string());
                    record_bytes.push(format!("{:x}", c.0));
                }
                bmpls_types::Cell::Ore(r) => record_bytes.push(hex::encode(&r.0[4..24])),
            }
        }
    }
    (places, secrets, record_bytes)
}

//! How a client fares with the validators it is given: down nodes are each named with why, a
//! node that answers is found whichever position it has, and an address that is a validator's
//! peer or metrics port says so and names the client port. And what tools ask the ledger: the
//! grants a carer holds or a patient gave, and a patient's next sequence number, each told
//! only to the keys they concern.

use std::net::SocketAddr;

use bmpls_client::{CarerKeystore, Fix, NetworkError, Nodes, PatientKeystore};
use bmpls_crypto::SigningKey;
use bmpls_net::{GrantsAsked, GrantsOutcome, NextSeqOutcome};
use bmpls_types::{LevelIndex, Role, Seq, Transaction, Trigger};
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::consortium::{Consortium, LEVELS_TOML, commit, now_ms};

const DAY_MS: u64 = 86_400_000;

/// A UDP port nobody listens on (bound, read and released).
fn free_port() -> SocketAddr {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("a free port")
}

#[test]
fn clients_name_every_node_they_tried_and_the_port_they_wanted() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(scenario());
}

async fn scenario() {
    let net = Consortium::start("clients", 200).await;
    let key = SigningKey::from_seed(&[9; 32]);

    // Every node down: the error names each with why, and says how long a dial waited.
    let down = [free_port(), free_port()];
    let nodes = Nodes::new(&down, &net.trust, &key).expect("clients");
    let error = nodes.status().await.expect_err("nobody answers");
    let NetworkError::Unreachable(failures) = &error else {
        panic!("not unreachable: {error}");
    };
    assert_eq!(failures.len(), 2, "{error}");
    let text = error.to_string();
    for addr in down {
        assert_eq!(
            text.matches(&addr.to_string()).count(),
            1,
            "{addr} named once: {text}"
        );
    }
    assert_eq!(
        text.matches("no handshake within 3s").count(),
        2,
        "each dial waited one connect timeout: {text}"
    );
    nodes.close().await;

    // A down node first in the list does not hide the one that answers.
    let mixed = [free_port(), net.addrs[1]];
    let nodes = Nodes::new(&mixed, &net.trust, &key).expect("clients");
    let (answered, _) = nodes.status().await.expect("the second node answers");
    assert_eq!(answered, net.addrs[1]);
    nodes.close().await;
    assert_eq!(
        nodes.wire().await.connections,
        1,
        "the down node never connected, so only the second was counted"
    );

    // A phone whose validators are all up opens one connection, to the preferred one, not one
    // to each: each costs a handshake of kilobytes on a metered link (`bmpls bench phone`).
    let nodes = Nodes::new(&net.addrs, &net.trust, &key).expect("clients");
    let (answered, _) = nodes.status().await.expect("the first node answers");
    assert_eq!(answered, net.addrs[0]);
    // Longer than the stagger: a second dial would have started by now.
    tokio::time::sleep(bmpls_client::DIAL_STAGGER * 2).await;
    let (again, _) = nodes.status().await.expect("it answers again");
    assert_eq!(
        again, net.addrs[0],
        "the phone stays with the node that answered"
    );
    nodes.close().await;
    let wire = nodes.wire().await;
    assert_eq!(
        wire.connections, 1,
        "one handshake for two requests: {wire:?}"
    );
    assert!(
        wire.sent_bytes > 1_200 && wire.received_bytes > 0,
        "a QUIC handshake pads its first packet to 1,200 bytes: {wire:?}"
    );

    // The peer port and the metrics port of a validator, given by mistake.
    let node = &net.cluster.nodes[0];
    let nodes = Nodes::new(&[node.peer_addr()], &net.trust, &key).expect("clients");
    let text = nodes
        .status()
        .await
        .expect_err("not a client port")
        .to_string();
    assert!(
        text.contains("this is the peer port of a validator"),
        "{text}"
    );
    nodes.close().await;
    let metrics = node.metrics_addr().expect("metrics served");
    let nodes = Nodes::new(&[metrics], &net.trust, &key).expect("clients");
    let text = nodes
        .status()
        .await
        .expect_err("not a client port")
        .to_string();
    assert!(
        text.contains(&format!(
            "this is the metrics port of a validator; the client port is {}",
            node.client_addr()
        )),
        "{text}"
    );
    nodes.close().await;

    lookups(&net).await;
    net.admin.close().await;
    net.cluster.shutdown().await.expect("clean shutdown");
}

/// The grants and next sequence number a patient's and a carer's tools ask for.
async fn lookups(net: &Consortium) {
    let mut rng = StdRng::seed_from_u64(5);
    let chain = net.validators.chain_id();
    let patient =
        PatientKeystore::create(&net.dir.path().join("alice"), LEVELS_TOML, DAY_MS, &mut rng)
            .expect("patient");
    let carer =
        CarerKeystore::create(&net.dir.path().join("gp"), Role::Gp, &mut rng).expect("carer");
    commit(
        &net.admin,
        vec![
            patient.enrolment(&net.operator, chain),
            carer.enrolment(&net.operator, chain),
        ],
    )
    .await;
    let now = now_ms();
    let grant = patient
        .grant(
            chain,
            carer.carer,
            &carer.agreement().public(),
            LevelIndex(2),
            (now / DAY_MS * DAY_MS, now / DAY_MS * DAY_MS + DAY_MS - 1),
            (now - 60_000, now + 3_600_000),
            "care",
            &mut rng,
        )
        .expect("grant");
    let grant_hash = commit(&net.admin, vec![grant]).await[0].0;

    // A fence alerts only under a standing grant: the ledger refuses one for a carer the
    // patient never granted, and takes one for the granted carer.
    let stranger = CarerKeystore::create(&net.dir.path().join("stranger"), Role::Family, &mut rng)
        .expect("carer");
    commit(&net.admin, vec![stranger.enrolment(&net.operator, chain)]).await;
    let today = (now / DAY_MS * DAY_MS, now / DAY_MS * DAY_MS + DAY_MS - 1);
    let zone = bmpls_grid::cover_circle(4.8922, 52.3731, 300.0, 16, 64).expect("zone");
    let fence_for = |carer| {
        patient
            .fence(chain, carer, LevelIndex(2), &zone, today, 2, 0)
            .expect("fence")
    };
    let outcome = net
        .admin
        .submit(vec![fence_for(stranger.carer)])
        .await
        .expect("answered");
    assert!(
        matches!(
            &outcome[0],
            bmpls_net::Submitted::Refused { code: bmpls_net::RefusalCode::NotAuthorised, reason }
                if reason.as_str().contains("no standing grant")
        ),
        "{outcome:?}"
    );
    commit(&net.admin, vec![fence_for(carer.carer)]).await;

    let as_carer = Nodes::new(&net.addrs, &net.trust, carer.identity()).expect("clients");
    let as_custodian =
        Nodes::new(&net.addrs, &net.trust, patient.custodian_key()).expect("clients");
    let as_reporter = Nodes::new(&net.addrs, &net.trust, patient.reporter_key()).expect("clients");
    let grants = |outcome: GrantsOutcome| match outcome {
        GrantsOutcome::Grants { grants, more } => {
            assert!(!more);
            grants
                .into_inner()
                .into_iter()
                .map(|g| (g.patient, g.carer, g.grant, g.level, g.standing))
                .collect::<Vec<_>>()
        }
        GrantsOutcome::NotYours | GrantsOutcome::NotHeld(_) => panic!("refused"),
    };
    let expected = vec![(
        patient.patient,
        carer.carer,
        grant_hash,
        LevelIndex(2),
        true,
    )];
    let (_, held) = as_carer
        .grants(GrantsAsked::OfCarer(carer.carer))
        .await
        .expect("answers");
    assert_eq!(grants(held), expected, "the carer's grants");
    let (_, given) = as_custodian
        .grants(GrantsAsked::OfPatient(patient.patient))
        .await
        .expect("answers");
    assert_eq!(grants(given), expected, "the patient's grants");
    // Who cares for whom is told to nobody else.
    for (nodes, asked) in [
        (&as_reporter, GrantsAsked::OfCarer(carer.carer)),
        (&as_carer, GrantsAsked::OfPatient(patient.patient)),
        (&net.admin, GrantsAsked::OfPatient(patient.patient)),
    ] {
        let (_, outcome) = nodes.grants(asked).await.expect("answers");
        assert_eq!(outcome, GrantsOutcome::NotYours);
    }

    // The next sequence number follows the committed reports.
    let next = |outcome: NextSeqOutcome| match outcome {
        NextSeqOutcome::Next { seq, .. } => seq,
        NextSeqOutcome::NotYours => panic!("refused"),
    };
    let (_, outcome) = as_reporter
        .next_seq(patient.patient)
        .await
        .expect("answers");
    assert_eq!(next(outcome), 1);
    let mut reporter = patient.reporter(chain).expect("reporter");
    let fix = Fix {
        lat: 52.3731,
        lon: 4.8922,
        accuracy_m: 5.0,
        altitude_m: 0.0,
        speed_m_s: 0.0,
        battery_percent: 0,
        trigger: Trigger::Manual,
        fix_time_ms: now,
    };
    let records = (1..=2)
        .map(|seq| Transaction::Report(reporter.build(&fix, Seq(seq), &mut rng).expect("record")))
        .collect();
    commit(&as_reporter, records).await;
    let (_, outcome) = as_custodian
        .next_seq(patient.patient)
        .await
        .expect("answers");
    assert_eq!(next(outcome), 3);
    let (_, outcome) = as_carer.next_seq(patient.patient).await.expect("answers");
    assert_eq!(outcome, NextSeqOutcome::NotYours);
    for nodes in [as_carer, as_custodian, as_reporter] {
        nodes.close().await;
    }
}

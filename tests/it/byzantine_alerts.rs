//! A byzantine validator's alerts, beside three honest ones (four validators over QUIC in this
//! process). The byzantine node is a listener with node1's TLS identity and consensus key that
//! asks the real node1 and rewrites its watch answers: it withholds the patient's `Exit`,
//! forges an `Enter` (the carer would believe she is home) and names either a resume height
//! far past the chain's tip or a plausible one. Carers that ask it first still get the true
//! `Exit`, never the forged `Enter`, and are told what the node did.

use std::sync::Arc;

use bmpls_client::{AlertStream, CarerKeystore, Fix, Nodes, PatientKeystore, WatchFault};
use bmpls_crypto::SigningKey;
use bmpls_crypto::keyfile::read_signing_key;
use bmpls_grid::{LevelSet, cover_circle};
use bmpls_net::alert::{AlertEvent, AlertKind, SignedAlert, WatchOutcome};
use bmpls_net::{Client, ClientServer, Handler, Request, RequestError, Response};
use bmpls_types::{
    BoundedVec, ChainId, Height, LevelIndex, PublicKeyBytes, Role, Seq, SignatureBytes,
    Transaction, ValidatorId,
};
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::consortium::{Consortium, LEVELS_TOML, commit, now_ms};

const NEIGHBOURHOOD: LevelIndex = LevelIndex(2);
const DAY_MS: u64 = 86_400_000;
const HOME: (f64, f64) = (52.3579, 4.8686);

/// How the byzantine node rewrites an answer's resume height.
#[derive(Clone, Copy)]
enum Resume {
    /// Far past anything the chain reaches, so that an honest node is never asked again.
    Beyond,
    /// What the honest node said (only the events are altered).
    Honest,
}

/// node1 turned byzantine towards carers: every watch answer loses its `Exit`s and gains an
/// `Enter` at the same height, signed with node1's consensus key.
struct Forger {
    upstream: Client,
    key: SigningKey,
    chain: ChainId,
    resume: Resume,
}

impl Handler for Forger {
    async fn handle(&self, _client: PublicKeyBytes, request: Request) -> Response {
        let Request::Watch(watch) = request else {
            return Response::Error(RequestError::Busy);
        };
        let mut answer = match self.upstream.call(Request::Watch(watch)).await {
            Ok(Response::Watch(WatchOutcome::Events(answer))) => answer,
            Ok(other) => return other,
            Err(_) => return Response::Error(RequestError::Busy),
        };
        let mut events = Vec::new();
        for signed in answer.events.iter() {
            if signed.event.kind != AlertKind::Exit {
                events.push(signed.clone());
                continue;
            }
            let mut forged = SignedAlert {
                event: AlertEvent {
                    kind: AlertKind::Enter,
                    ..signed.event.clone()
                },
                node: ValidatorId(self.key.public().0),
                sig: SignatureBytes::UNSIGNED,
            };
            self.key.sign(&mut forged, &self.chain);
            events.push(forged);
        }
        answer.events = BoundedVec::new(events).expect("no more events than before");
        if let Resume::Beyond = self.resume {
            answer.next_height = Height(u64::MAX);
        }
        Response::Watch(WatchOutcome::Events(answer))
    }
}

/// Starts the byzantine node in front of the real node1.
fn forger(net: &Consortium, carer: &CarerKeystore, resume: Resume) -> (ClientServer, Nodes) {
    let node1 = &net.cluster.provisioned[0];
    let key = read_signing_key(&node1.dir.join("validator.key")).expect("node1's key");
    let forger = Forger {
        upstream: net.node1_as(carer),
        key,
        chain: net.validators.chain_id().clone(),
        resume,
    };
    net.in_front_of_node1(carer, Arc::new(forger))
}

/// Polls until an `Exit` is delivered (or 40 polls passed); every event delivered.
async fn until_exit(stream: &mut AlertStream, nodes: &Nodes) -> Vec<AlertEvent> {
    let mut events = Vec::new();
    for _ in 0..40 {
        events.extend(stream.next_events(nodes, 500).await.expect("watch"));
        if events.iter().any(|e| e.kind == AlertKind::Exit) {
            break;
        }
    }
    events
}

#[test]
fn a_byzantine_node_cannot_forge_or_withhold_a_carers_alerts() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(scenario());
}

#[allow(clippy::too_many_lines)]
async fn scenario() {
    let net = Consortium::start("byzalerts", 100).await;
    let levels = LevelSet::from_toml(LEVELS_TOML).expect("levels");
    let depth = levels.levels()[2].depth;
    let mut rng = StdRng::seed_from_u64(15);
    let patient =
        PatientKeystore::create(&net.dir.path().join("alice"), LEVELS_TOML, DAY_MS, &mut rng)
            .expect("patient");
    let carer = CarerKeystore::create(
        &net.dir.path().join("telecare"),
        Role::TelecareOperator,
        &mut rng,
    )
    .expect("carer");
    let chain = net.validators.chain_id().clone();
    commit(
        &net.admin,
        vec![
            patient.enrolment(&net.operator, &chain),
            carer.enrolment(&net.operator, &chain),
        ],
    )
    .await;
    let now = now_ms();
    let today = (now / DAY_MS * DAY_MS, now / DAY_MS * DAY_MS + DAY_MS - 1);
    let grant = patient
        .grant(
            &chain,
            carer.carer,
            &carer.agreement().public(),
            NEIGHBOURHOOD,
            today,
            (now - 60_000, now + 3_600_000),
            "telecare",
            &mut rng,
        )
        .expect("grant");
    // No expected interval: only Enter and Exit fire.
    let cells = cover_circle(HOME.1, HOME.0, 400.0, depth, 128).expect("cover");
    let fence = patient
        .fence(&chain, carer.carer, NEIGHBOURHOOD, &cells, today, 2, 0)
        .expect("fence");
    commit(&net.admin, vec![grant]).await;
    commit(&net.admin, vec![fence]).await;

    // Four fixes at home, then out: the second record outside decides the Exit.
    let phone = Nodes::new(&net.addrs, &net.trust, patient.reporter_key()).expect("clients");
    let mut reporter = patient.reporter(&chain).expect("reporter");
    let start = now_ms() - 60_000;
    for i in 0..7u64 {
        let east = if i < 4 { 0.0 } else { 0.03 + 0.001 * i as f64 };
        let fix = Fix {
            lat: HOME.0,
            lon: HOME.1 + east,
            accuracy_m: 5.0,
            altitude_m: 0.0,
            speed_m_s: 1.0,
            battery_percent: 70,
            trigger: bmpls_types::Trigger::Periodic,
            fix_time_ms: start + i * 1_000,
        };
        let record = reporter.build(&fix, Seq(i + 1), &mut rng).expect("record");
        commit(&phone, vec![Transaction::Report(record)]).await;
    }

    // A resume height past the tip: the answer is set aside whole, the honest nodes deliver.
    let (beyond, nodes) = forger(&net, &carer, Resume::Beyond);
    let mut stream = AlertStream::new(carer.carer, net.validators.clone(), Height(1));
    let events = until_exit(&mut stream, &nodes).await;
    let kinds: Vec<_> = events.iter().map(|e| (e.kind, e.seq)).collect();
    assert_eq!(kinds, vec![(AlertKind::Exit, Seq(6))], "the true Exit only");
    let faults = stream.take_faults();
    assert!(
        faults
            .iter()
            .any(|f| matches!(f, WatchFault::BadAnswer { node, .. } if *node == net.cluster.provisioned[0].id)),
        "{faults:?}"
    );
    assert!(
        stream.next_height().0 < u64::MAX / 2,
        "the stream never jumps to the forged height: {:?}",
        stream.next_height()
    );
    nodes.close().await;
    beyond.close().await;

    // A plausible resume height: the forged Enter is refuted by the honest answers that cover
    // its height, and the withheld Exit comes from them.
    let (plausible, nodes) = forger(&net, &carer, Resume::Honest);
    let mut stream = AlertStream::new(carer.carer, net.validators.clone(), Height(1));
    let events = until_exit(&mut stream, &nodes).await;
    let kinds: Vec<_> = events.iter().map(|e| (e.kind, e.seq)).collect();
    assert_eq!(kinds, vec![(AlertKind::Exit, Seq(6))], "the true Exit only");
    let faults = stream.take_faults();
    assert!(
        faults.iter().any(|f| matches!(
            f,
            WatchFault::Forged { event, .. } if event.kind == AlertKind::Enter && event.seq == Seq(6)
        )),
        "{faults:?}"
    );
    // Later polls deliver nothing more and move on past the chain's events.
    for _ in 0..3 {
        assert!(
            stream
                .next_events(&nodes, 200)
                .await
                .expect("watch")
                .is_empty()
        );
    }
    assert!(stream.next_height() > events[0].height);
    nodes.close().await;
    plausible.close().await;

    phone.close().await;
    net.admin.close().await;
    net.cluster.shutdown().await.expect("clean shutdown");
}

//! A carer learns a patient's standing fences (four validators over QUIC in this process): the
//! fences a custodian set for it come back proved and verify, decrypt with the grant's keys to
//! the zone the custodian covered, and a removed one is no longer listed; a tampered proof is
//! refused, and so is a carer without a grant. node1 is then put behind a byzantine listener
//! (its TLS identity, asking the real node1) that withholds a fence or replays a list from
//! before a removal: the carer still learns the fence from the others, never believes the
//! removed one, and is told what the node did.

use std::sync::Arc;

use bmpls_client::{
    CarerKeystore, FenceFault, FencesError, LevelCiphers, Nodes, PatientKeystore, fence_zone,
    standing_fences, verify_fences, verify_grant,
};
use bmpls_grid::{LevelSet, cover_circle};
use bmpls_net::query::{
    Ask, FenceEvidence, FencesOutcome, FencesRequest, GrantOutcome, GrantRequest, Query,
    QueryOutcome, Unauthorized,
};
use bmpls_net::{Client, ClientServer, Handler, Request, RequestError, Response};
use bmpls_types::{BoundedVec, LevelIndex, PublicKeyBytes, Role, Transaction, TxHash};
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::consortium::{Consortium, LEVELS_TOML, commit, now_ms};

const NEIGHBOURHOOD: LevelIndex = LevelIndex(2);
const DISTRICT: LevelIndex = LevelIndex(3);
const DAY_MS: u64 = 86_400_000;
const HOME: (f64, f64) = (52.3579, 4.8686);

/// What the byzantine node does to node1's fence lists.
enum Lie {
    /// Leaves out the last fence.
    Withhold,
    /// Answers with this list, taken before a fence was removed.
    Replay(Box<FenceEvidence>),
    /// Says it does not hold what grant proofs and queries need (as a validator that joined
    /// from a snapshot after them does), counting how often it was asked.
    NotHeld(Arc<std::sync::atomic::AtomicUsize>),
}

struct Liar {
    upstream: Client,
    lie: Lie,
}

impl Handler for Liar {
    async fn handle(&self, _client: PublicKeyBytes, request: Request) -> Response {
        if let Lie::NotHeld(asked) = &self.lie {
            asked.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let why = || bmpls_net::proto::reason("this validator joined from a snapshot");
            return match request {
                Request::Grant(_) => Response::Grant(GrantOutcome::NotHeld(why())),
                Request::Query(queries) => Response::Answers(
                    BoundedVec::new(
                        queries
                            .iter()
                            .map(|_| QueryOutcome::NotHeld(why()))
                            .collect(),
                    )
                    .expect("as many as asked"),
                ),
                _ => Response::Error(RequestError::Busy),
            };
        }
        let Request::Fences(asked) = request else {
            return Response::Error(RequestError::Busy);
        };
        if let Lie::Replay(stale) = &self.lie {
            return Response::Fences(FencesOutcome::Proved(stale.clone()));
        }
        match self.upstream.call(Request::Fences(asked)).await {
            Ok(Response::Fences(FencesOutcome::Proved(mut evidence))) => {
                let mut fences = evidence.fences.to_vec();
                fences.pop();
                evidence.fences = BoundedVec::new(fences).expect("fewer than before");
                Response::Fences(FencesOutcome::Proved(evidence))
            }
            Ok(other) => other,
            Err(_) => Response::Error(RequestError::Busy),
        }
    }
}

/// The byzantine node in front of node1.
fn liar(net: &Consortium, carer: &CarerKeystore, lie: Lie) -> (ClientServer, Nodes) {
    let liar = Liar {
        upstream: net.node1_as(carer),
        lie,
    };
    net.in_front_of_node1(carer, Arc::new(liar))
}

fn hash_of(tx: &Transaction) -> TxHash {
    bmpls_crypto::hash::tx_hash(tx)
}

#[test]
fn fences_a_carer_learns_its_standing_fences_and_a_byzantine_node_cannot_hide_or_revive_one() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(scenario());
}

#[allow(clippy::too_many_lines)]
async fn scenario() {
    let net = Consortium::start("fences", 100).await;
    let levels = LevelSet::from_toml(LEVELS_TOML).expect("levels");
    let mut rng = StdRng::seed_from_u64(19);
    let patient =
        PatientKeystore::create(&net.dir.path().join("alice"), LEVELS_TOML, DAY_MS, &mut rng)
            .expect("patient");
    let carer = CarerKeystore::create(
        &net.dir.path().join("telecare"),
        Role::TelecareOperator,
        &mut rng,
    )
    .expect("carer");
    let stranger = CarerKeystore::create(&net.dir.path().join("nosy"), Role::Insurer, &mut rng)
        .expect("stranger");
    let chain = net.validators.chain_id().clone();
    commit(
        &net.admin,
        vec![
            patient.enrolment(&net.operator, &chain),
            carer.enrolment(&net.operator, &chain),
            stranger.enrolment(&net.operator, &chain),
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
    let grant_hash = hash_of(&grant);
    commit(&net.admin, vec![grant]).await;
    // A safe zone at the granted (ORE) level and a wider one at district (OPE).
    let depth = |l: LevelIndex| levels.levels()[usize::from(l.0)].depth;
    let home = cover_circle(HOME.1, HOME.0, 400.0, depth(NEIGHBOURHOOD), 16).expect("cover");
    let home_street = cover_circle(HOME.1, HOME.0, 100.0, depth(LevelIndex(1)), 16).expect("cover");
    let town = cover_circle(HOME.1, HOME.0, 3_000.0, depth(DISTRICT), 16).expect("cover");
    let near = patient
        .fence(&chain, carer.carer, NEIGHBOURHOOD, &home, today, 2, 0)
        .expect("fence");
    let wide = patient
        .fence(&chain, carer.carer, DISTRICT, &town, today, 2, 0)
        .expect("fence");
    let (near_hash, wide_hash) = (hash_of(&near), hash_of(&wide));
    commit(&net.admin, vec![near.clone()]).await;
    commit(&net.admin, vec![wide.clone()]).await;

    let nodes = Nodes::new(&net.addrs, &net.trust, carer.identity()).expect("clients");
    let asked = FencesRequest {
        patient: patient.patient,
        grant: grant_hash,
    };
    let survey = standing_fences(&nodes, &asked, &net.validators, &carer.carer)
        .await
        .expect("fences");
    let standing: Vec<TxHash> = survey.standing.iter().map(|f| f.hash).collect();
    assert_eq!(standing, vec![near_hash, wide_hash], "both, in chain order");
    assert!(survey.faults.is_empty(), "{:?}", survey.faults);
    assert!(!survey.more);
    assert_eq!(survey.answered, 4);

    // The grant's keys open both fences to the cells the custodian covered.
    let GrantOutcome::Proved(proof) = nodes
        .grant(GrantRequest {
            patient: patient.patient,
            grant: grant_hash,
        })
        .await
        .expect("grant proof")
        .1
    else {
        panic!("the grant's proof");
    };
    let request = GrantRequest {
        patient: patient.patient,
        grant: grant_hash,
    };
    let (_, keys) = verify_grant(&proof, &request, &net.validators, &carer).expect("verifies");
    let mut ciphers = LevelCiphers::new(levels.clone());
    for (fence, cells) in survey.standing.iter().zip([&home, &town]) {
        let epoch = fence.fence.epochs[0].epoch.0;
        let zone = fence_zone(&mut ciphers, &keys, &fence.fence, epoch)
            .expect("the grant's keys open the fence");
        assert_eq!(&zone, cells, "level {}", fence.fence.level.0);
    }
    // A street-level fence would need keys finer than the grant's: they do not open it.
    let street = patient
        .fence(
            &chain,
            carer.carer,
            LevelIndex(1),
            &home_street,
            today,
            2,
            0,
        )
        .expect("fence");
    let Transaction::SetFence(street) = street else {
        panic!("a fence");
    };
    assert!(fence_zone(&mut ciphers, &keys, &street, street.epochs[0].epoch.0).is_err());

    // One node's list, tampered: a proof that leads elsewhere, a fence that was changed.
    let (_, outcome) = nodes.fences_on(1, asked.clone()).await.expect("node 2");
    let FencesOutcome::Proved(evidence) = outcome else {
        panic!("a list: {outcome:?}");
    };
    verify_fences(&evidence, &asked, &net.validators, &carer.carer).expect("verifies");
    let mut tampered = evidence.clone();
    let mut fences = tampered.fences.to_vec();
    fences[0].proof.index ^= 1;
    tampered.fences = BoundedVec::new(fences).expect("as many");
    assert!(verify_fences(&tampered, &asked, &net.validators, &carer.carer).is_err());
    let mut tampered = evidence.clone();
    let mut fences = tampered.fences.to_vec();
    if let Transaction::SetFence(f) = &mut fences[1].tx {
        f.debounce = 9;
    }
    tampered.fences = BoundedVec::new(fences).expect("as many");
    assert!(verify_fences(&tampered, &asked, &net.validators, &carer.carer).is_err());
    // Under another carer's name the fences are not this carer's.
    assert!(verify_fences(&evidence, &asked, &net.validators, &stranger.carer).is_err());

    // A carer without a grant of the patient is refused, by each node and so in the survey.
    let nosy = Nodes::new(&net.addrs, &net.trust, stranger.identity()).expect("clients");
    let (_, outcome) = nosy.fences_on(0, asked.clone()).await.expect("node 1");
    assert_eq!(
        outcome,
        FencesOutcome::Unauthorized(Unauthorized::NotTheGrantee)
    );
    assert!(matches!(
        standing_fences(&nosy, &asked, &net.validators, &stranger.carer).await,
        Err(FencesError::Unauthorized(Unauthorized::NotTheGrantee))
    ));
    nosy.close().await;

    // node1 withholds the last fence: the carer learns it from the other three.
    let (server, lying) = liar(&net, &carer, Lie::Withhold);
    let survey = standing_fences(&lying, &asked, &net.validators, &carer.carer)
        .await
        .expect("fences");
    let standing: Vec<TxHash> = survey.standing.iter().map(|f| f.hash).collect();
    assert_eq!(standing, vec![near_hash, wide_hash]);
    let node1 = net.cluster.provisioned[0].id;
    assert!(
        survey.faults.iter().any(|f| matches!(
            f,
            FenceFault::Withheld { fence, node } if *fence == wide_hash && *node == node1
        )),
        "{:?}",
        survey.faults
    );
    lying.close().await;
    server.close().await;

    // The custodian removes the wide fence: no honest node lists it any more, and node1
    // replaying its list from before cannot make the carer believe it stands.
    commit(&net.admin, vec![patient.remove_fence(&chain, wide_hash)]).await;
    let survey = standing_fences(&nodes, &asked, &net.validators, &carer.carer)
        .await
        .expect("fences");
    let standing: Vec<TxHash> = survey.standing.iter().map(|f| f.hash).collect();
    assert_eq!(standing, vec![near_hash], "the removed fence is not listed");
    let (server, lying) = liar(&net, &carer, Lie::Replay(evidence));
    let survey = standing_fences(&lying, &asked, &net.validators, &carer.carer)
        .await
        .expect("fences");
    let standing: Vec<TxHash> = survey.standing.iter().map(|f| f.hash).collect();
    assert_eq!(standing, vec![near_hash]);
    assert!(
        survey.faults.iter().any(|f| matches!(
            f,
            FenceFault::Unconfirmed { fence, listed_by } if *fence == wide_hash && listed_by == &vec![node1]
        )),
        "{:?}",
        survey.faults
    );
    lying.close().await;
    server.close().await;

    // node1 says it does not hold the grant's proof or the records (a validator that joined
    // from a snapshot): the carer's client asks the next validator and gets both.
    let asked_node1 = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (server, lying) = liar(&net, &carer, Lie::NotHeld(asked_node1.clone()));
    let request = GrantRequest {
        patient: patient.patient,
        grant: grant_hash,
    };
    bmpls_client::proved_grant(&lying, request, &net.validators, &carer)
        .await
        .expect("the grant, proved by another validator");
    let query = Query {
        patient: patient.patient,
        grant: grant_hash,
        level: NEIGHBOURHOOD,
        from_ms: today.0,
        to_ms: today.1,
        ask: Ask::Track,
        limit: 10,
    };
    lying.avoid(net.addrs[3]);
    let answer = bmpls_client::ask(&lying, query, &net.validators, &levels, &carer)
        .await
        .expect("an answer from another validator");
    assert!(answer.records.is_empty(), "no reports in this scenario");
    assert_eq!(
        asked_node1.load(std::sync::atomic::Ordering::Relaxed),
        2,
        "node1 was asked first, both times"
    );
    lying.close().await;
    server.close().await;

    nodes.close().await;
    net.admin.close().await;
    net.cluster.shutdown().await.expect("clean shutdown");
}

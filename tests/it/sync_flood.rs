//! A validator flooded with sync requests by a peer (four validators over QUIC in this process,
//! and a fifth link into node1 with node4's identity): the chain keeps committing, and node1
//! serves no more blocks than its limits allow, counted by its metrics.

use std::time::{Duration, Instant};

use bmpls_client::CarerKeystore;
use bmpls_consensus::{Height, Message, SYNC_BATCH};
use bmpls_net::limits::{SYNC_BURST, SYNC_REQUESTS_PER_PEER_PER_S};
use bmpls_net::{Identity, PeerConfig, Peers};
use bmpls_node::metrics::Reason;
use bmpls_types::{Canonical, Role};
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::consortium::{Consortium, commit};

/// Requests the flooding peer sends.
const FLOOD: u64 = 3_000;

#[test]
fn a_peer_flooding_sync_requests_does_not_stop_the_others_committing() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(scenario());
}

async fn scenario() {
    let net = Consortium::start("syncflood", 50).await;
    let mut rng = StdRng::seed_from_u64(3);

    let node4 = &net.cluster.provisioned[3];
    let identity =
        Identity::load(&node4.dir.join("tls.pem"), &node4.dir.join("tls.key")).expect("identity");
    let node1 = &net.cluster.nodes[0];
    let (flooder, _inbound) = Peers::start(PeerConfig {
        me: node4.id,
        listen: "127.0.0.1:0".parse().expect("address"),
        identity,
        trust: net.trust.clone(),
        peers: vec![(net.cluster.provisioned[0].id, node1.peer_addr())],
    })
    .expect("flooding peer");

    // Node1 holds blocks to ask for (block 1 may wait for every link to come up).
    let node1_id = net.cluster.provisioned[0].id;
    for _ in 0..400 {
        if node1.metrics().commits.get() >= 10 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(node1.metrics().commits.get() >= 10, "the cluster commits");

    // The flood, in bursts, each followed by a carer's enrolment that must commit.
    let started = Instant::now();
    for burst in 0..10u64 {
        for i in 0..FLOOD / 10 {
            let request = Message::SyncRequest(Height(1 + (burst * 7 + i) % 64)).encode();
            while !flooder.send(&node1_id, request.clone().into()) {
                tokio::task::yield_now().await;
            }
        }
        let carer = CarerKeystore::create(
            &net.dir.path().join(format!("carer{burst}")),
            Role::Family,
            &mut rng,
        )
        .expect("carer");
        commit(
            &net.admin,
            vec![carer.enrolment(&net.operator, net.validators.chain_id())],
        )
        .await;
    }
    // Let node1 take what is still queued.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let elapsed_s = started.elapsed().as_secs() + 1;

    let metrics = node1.metrics();
    let served = metrics.sync_served_blocks.get();
    let dropped = |reason: &str| {
        metrics
            .sync_dropped
            .get_or_create(&Reason {
                reason: reason.into(),
            })
            .get()
    };
    let dropped_all: u64 = ["nothing_new", "duplicate", "in_flight", "rate_limited"]
        .iter()
        .map(|r| dropped(r))
        .sum();
    eprintln!(
        "sync flood: {FLOOD} requests in {elapsed_s} s; node1 served {served} blocks, dropped \
         {} nothing_new, {} duplicate, {} in_flight, {} rate_limited, {} queued_bytes",
        dropped("nothing_new"),
        dropped("duplicate"),
        dropped("in_flight"),
        dropped("rate_limited"),
        dropped("queued_bytes"),
    );
    // The most a token bucket lets through in the time the flood took, a batch each.
    let allowed =
        (u64::from(SYNC_BURST) + u64::from(SYNC_REQUESTS_PER_PEER_PER_S) * elapsed_s) * SYNC_BATCH;
    assert!(
        served <= allowed,
        "{served} blocks served to the flood, at most {allowed} allowed"
    );
    assert!(
        dropped_all >= FLOOD / 2,
        "most of the {FLOOD} requests were dropped: {dropped_all}"
    );
    assert!(
        dropped("nothing_new") > 0,
        "node4 votes at the tip, so nothing below it is served: {}",
        dropped("nothing_new")
    );
    flooder.close().await;
    net.admin.close().await;
    net.cluster.shutdown().await.expect("clean shutdown");
}

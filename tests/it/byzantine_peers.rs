//! One byzantine validator among four, over real QUIC links (validators in this process): its
//! engine runs honestly and each consensus message it broadcasts is rewritten per peer by the
//! simulator's faults (`bmpls_sim::tamper`): equivocating votes and proposals, signatures that do
//! not verify, blocks that break the ledger's rules. The three honest validators keep committing
//! the carers' enrolments submitted to them, each reaches the last one's height, and after
//! shutdown their stores hold the same block at every height (and so does the byzantine one's,
//! where it has it).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bmpls_client::{CarerKeystore, Nodes};
use bmpls_crypto::hash::block_hash;
use bmpls_node::BlockPolicy;
use bmpls_node::byzantine::Tamper;
use bmpls_node::local::LocalCluster;
use bmpls_sim::Fault;
use bmpls_store::Store;
use bmpls_types::{BlockHash, ChainId, Height, Role};
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::consortium::commit;

/// Enrolments committed through the honest validators while the byzantine one misbehaves.
const COMMITS: usize = 8;

/// How long a lagging honest validator may take to catch up before the test calls it a hang.
const CATCH_UP: std::time::Duration = std::time::Duration::from_secs(60);

#[test]
fn an_equivocating_validator_does_not_stop_or_split_the_chain() {
    run(Fault::Equivocate, "byzequiv");
}

#[test]
fn a_validator_sending_bad_signatures_does_not_stop_or_split_the_chain() {
    run(Fault::BadSignatures, "byzsigs");
}

#[test]
fn a_validator_proposing_invalid_blocks_does_not_stop_or_split_the_chain() {
    run(Fault::InvalidBlocks, "byzblocks");
}

fn run(fault: Fault, name: &str) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(scenario(fault, name));
}

async fn scenario(fault: Fault, name: &str) {
    let dir = tempfile::tempdir().expect("temp dir");
    let chain = ChainId::new(name).expect("chain id");
    let tampered = Arc::new(AtomicUsize::new(0));
    let rng = Mutex::new(StdRng::seed_from_u64(5));
    let tamper: Tamper = {
        let (chain, tampered) = (chain.clone(), tampered.clone());
        Arc::new(move |message, peers, key| {
            let mut rng = rng.lock().expect("rng");
            let sent = bmpls_sim::tamper(fault, message, peers.len(), &chain, key, &mut *rng);
            if sent.iter().any(|m| m.as_ref() != Some(message)) {
                tampered.fetch_add(1, Ordering::Relaxed);
            }
            sent
        })
    };
    let policy = BlockPolicy {
        min_interval_ms: 10,
        empty_interval_ms: 100,
    };
    let cluster = LocalCluster::start_byzantine(dir.path(), 4, name, policy, (3, tamper))
        .await
        .expect("cluster starts");
    let honest = &cluster.client_addrs()[..3];
    let trust = cluster.trust().expect("trust");
    let operator = cluster.operator().expect("operator key");
    let admin = Nodes::new(honest, &trust, &operator).expect("clients");

    let mut rng = StdRng::seed_from_u64(9);
    let mut heights = Vec::new();
    for i in 0..COMMITS {
        let carer = CarerKeystore::create(
            &dir.path().join(format!("carer{i}")),
            Role::Family,
            &mut rng,
        )
        .expect("carer");
        let committed = commit(&admin, vec![carer.enrolment(&operator, &chain)]).await;
        heights.push(committed[0].1);
    }
    assert!(
        tampered.load(Ordering::Relaxed) > 0,
        "the byzantine validator's messages were rewritten"
    );
    let top = *heights.last().expect("commits");
    // Two honest validators and the byzantine one are a quorum, so the third honest one may be
    // a few heights behind when the last enrolment is acknowledged (CI saw node2 at 6 below 9);
    // it must catch up, within a bound that only flags a hang.
    let deadline = std::time::Instant::now() + CATCH_UP;
    loop {
        let behind: Vec<String> = admin
            .statuses()
            .await
            .into_iter()
            .filter_map(|(addr, status)| match status {
                Ok(status) if status.height >= top => None,
                Ok(status) => Some(format!("{addr} at {}", status.height)),
                Err(e) => Some(format!("{addr}: {e}")),
            })
            .collect();
        if behind.is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "honest validators did not reach height {top} within {CATCH_UP:?}: {behind:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    admin.close().await;
    let stores: Vec<_> = cluster
        .provisioned
        .iter()
        .map(|p| dir.path().join("data").join(&p.name).join("store"))
        .collect();
    cluster.shutdown().await.expect("clean shutdown");

    // Every honest store reaches the last enrolment's height; all four agree at every height
    // each holds.
    let chains: Vec<Vec<BlockHash>> = stores
        .iter()
        .map(|path| {
            let store = Store::open(path, &chain).expect("store opens");
            let (tip, _) = store.tip().expect("tip");
            (1..=tip.0)
                .map(|h| {
                    let header = store.header(Height(h)).expect("reads").expect("header");
                    block_hash(&header)
                })
                .collect()
        })
        .collect();
    for (i, honest_chain) in chains[..3].iter().enumerate() {
        assert!(
            honest_chain.len() as u64 >= top,
            "node{} stopped at height {} below {top}",
            i + 1,
            honest_chain.len()
        );
    }
    for chain in &chains[1..] {
        let common = chain.len().min(chains[0].len());
        assert_eq!(
            chain[..common],
            chains[0][..common],
            "two validators committed different blocks"
        );
    }
}

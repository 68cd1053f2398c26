//! A consortium of four validators on loopback QUIC inside the test process, and the helpers
//! the tests that talk to one share (carers, alerts, logs).

use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use bmpls_client::Nodes;
use bmpls_crypto::{SigningKey, ValidatorSet};
use bmpls_net::Submitted;
use bmpls_net::Trust;
use bmpls_node::BlockPolicy;
use bmpls_node::local::LocalCluster;
use bmpls_types::{Transaction, TxHash};

/// The shipped precision levels, as a patient's keystore reads them.
pub const LEVELS_TOML: &str = include_str!("../../config/levels.toml");

/// Milliseconds since 1970 by this machine's clock.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .expect("clock after 1970")
}

/// Submits `txs` and waits for their commit: each transaction's hash and height.
pub async fn commit(nodes: &Nodes, txs: Vec<Transaction>) -> Vec<(TxHash, u64)> {
    nodes
        .submit(txs)
        .await
        .expect("submitted")
        .into_iter()
        .map(|o| match o {
            Submitted::Committed { tx, height } => (tx, height),
            other => panic!("not committed: {other:?}"),
        })
        .collect()
}

/// A running four-validator cluster in a temporary folder, and what a test needs to talk to it.
pub struct Consortium {
    /// The folder holding the cluster's certificates and stores, and the test's keystores.
    pub dir: tempfile::TempDir,
    pub cluster: LocalCluster,
    /// The validators' client addresses.
    pub addrs: Vec<SocketAddr>,
    /// The consortium's CA, pinned by clients.
    pub trust: Trust,
    /// The operator's key, which enrols patients and carers.
    pub operator: SigningKey,
    pub validators: ValidatorSet,
    /// A client signing with the operator's key.
    pub admin: Nodes,
}

impl Consortium {
    /// Starts four validators named after `name` that make a block at most every 10 ms and an
    /// empty one every `empty_interval_ms`.
    pub async fn start(name: &str, empty_interval_ms: u64) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let policy = BlockPolicy {
            min_interval_ms: 10,
            empty_interval_ms,
        };
        let cluster = LocalCluster::start(dir.path(), 4, name, policy)
            .await
            .expect("cluster starts");
        let addrs = cluster.client_addrs();
        let trust = cluster.trust().expect("trust");
        let operator = cluster.operator().expect("operator key");
        let validators = cluster.validators().expect("validators");
        let admin = Nodes::new(&addrs, &trust, &operator).expect("clients");
        Self {
            dir,
            cluster,
            addrs,
            trust,
            operator,
            validators,
            admin,
        }
    }
}

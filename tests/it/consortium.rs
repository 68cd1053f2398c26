//! A consortium of four validators on loopback QUIC inside the test process, and the helpers
//! the tests that talk to one share (carers, alerts, logs).

use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use std::sync::Arc;

use bmpls_client::{CarerKeystore, Nodes};
use bmpls_crypto::{SigningKey, ValidatorSet};
use bmpls_net::Submitted;
use bmpls_net::guard::KnownClients;
use bmpls_net::{Client, ClientServer, Handler, Identity, Trust};
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

impl Consortium {
    /// A client of node1 that signs as `carer`: what a byzantine node in front of node1 asks.
    pub fn node1_as(&self, carer: &CarerKeystore) -> Client {
        Client::new(
            self.addrs[0],
            &self.trust,
            SigningKey::from_seed(&carer.identity().to_seed()),
        )
        .expect("client")
    }

    /// Starts `byzantine` as node1 towards clients (a listener with node1's TLS identity), and
    /// nodes for `carer` that ask it first, then the three honest validators.
    pub fn in_front_of_node1(
        &self,
        carer: &CarerKeystore,
        byzantine: Arc<impl Handler>,
    ) -> (ClientServer, Nodes) {
        let node1 = &self.cluster.provisioned[0];
        let identity = Identity::load(&node1.dir.join("tls.pem"), &node1.dir.join("tls.key"))
            .expect("identity");
        let server = ClientServer::start(
            "127.0.0.1:0".parse().expect("address"),
            &identity,
            (self.validators.chain_id().clone(), node1.id),
            byzantine,
            KnownClients::new(),
        )
        .expect("byzantine node listens");
        let mut addrs = vec![server.local_addr().expect("bound")];
        addrs.extend_from_slice(&self.addrs[1..]);
        let nodes = Nodes::new(&addrs, &self.trust, carer.identity()).expect("clients");
        (server, nodes)
    }
}

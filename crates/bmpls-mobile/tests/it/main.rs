//! The mobile library's tests, one binary: the `Reporter` through its Rust API against a real
//! in-process cluster (`reporter.rs`), and through generated Python bindings (`python.rs`,
//! running `tests/reporter.py`), the interface a Kotlin or Swift app gets.

mod python;
mod reporter;

use std::path::Path;

use bmpls_client::Nodes;
use bmpls_client::keystore::EnrolmentRequest;
use bmpls_mobile::{Consortium, Fix, Trigger};
use bmpls_net::Submitted;
use bmpls_node::BlockPolicy;
use bmpls_node::local::LocalCluster;

/// A validator cluster on loopback in its own runtime: the test's thread stays outside any
/// runtime, as an app's thread is, so the `Reporter`'s blocking calls are made as an app makes
/// them.
pub struct Cluster {
    runtime: tokio::runtime::Runtime,
    cluster: Option<LocalCluster>,
    _dir: tempfile::TempDir,
}

impl Cluster {
    /// `n` validators, blocks as soon as there is something to commit.
    pub fn start(n: usize) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let policy = BlockPolicy {
            min_interval_ms: 5,
            empty_interval_ms: 1_000,
        };
        let cluster = runtime
            .block_on(LocalCluster::start(
                dir.path(),
                n,
                "bmpls-mobile-test",
                policy,
            ))
            .expect("cluster");
        Self {
            runtime,
            cluster: Some(cluster),
            _dir: dir,
        }
    }

    fn cluster(&self) -> &LocalCluster {
        self.cluster.as_ref().expect("running")
    }

    /// The folder holding `ca.pem` and `genesis.toml`.
    pub fn certs(&self) -> std::path::PathBuf {
        self.cluster().dir.join("certs")
    }

    /// The consortium as an app is given it.
    pub fn consortium(&self) -> Consortium {
        let read = |name: &str| std::fs::read_to_string(self.certs().join(name)).expect(name);
        Consortium {
            nodes: self
                .cluster()
                .client_addrs()
                .iter()
                .map(ToString::to_string)
                .collect(),
            ca_pem: read("ca.pem"),
            genesis_toml: read("genesis.toml"),
        }
    }

    /// Enrols the patient of an enrolment request's text, as an operator does; panics unless
    /// it commits.
    pub fn enrol(&self, request: &str) {
        let request = EnrolmentRequest::from_text(request).expect("a valid request");
        let cluster = self.cluster();
        let operator = cluster.operator().expect("operator key");
        let trust = cluster.trust().expect("trust");
        let outcome = self.runtime.block_on(async {
            let nodes = Nodes::new(&cluster.client_addrs(), &trust, &operator).expect("nodes");
            let outcome = nodes
                .submit(vec![request.sign(&operator, trust.chain())])
                .await;
            nodes.close().await;
            outcome.expect("an answer")
        });
        assert!(
            matches!(outcome.as_slice(), [Submitted::Committed { .. }]),
            "enrolment: {outcome:?}"
        );
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some(cluster) = self.cluster.take() {
            // A failed shutdown ends the test's cluster anyway: its runtime is dropped next.
            let _ = self.runtime.block_on(cluster.shutdown());
        }
    }
}

/// The same consortium with `nodes` in place of the validators' addresses.
pub fn with_nodes(consortium: &Consortium, nodes: Vec<String>) -> Consortium {
    Consortium {
        nodes,
        ..consortium.clone()
    }
}

/// A loopback UDP port nothing listens on: a validator that does not answer.
pub fn dead_node() -> String {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let addr = socket.local_addr().expect("addr");
    drop(socket);
    addr.to_string()
}

/// A fix in Amsterdam, `i` half-minutes after an hour before the tests started.
pub fn fix(i: u64) -> Fix {
    static START_MS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let start_ms = *START_MS.get_or_init(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_millis() as u64
            - 3_600_000
    });
    Fix {
        lat: 52.3731 + i as f64 * 1e-4,
        lon: 4.8922,
        accuracy_m: 8.0,
        altitude_m: 0.0,
        speed_m_s: 1.2,
        battery_percent: 80,
        trigger: Trigger::Periodic,
        fix_time_ms: start_ms + i * 30_000,
    }
}

/// The keystore folder `name` in `dir`, as a string (the API takes strings).
pub fn keystore(dir: &Path, name: &str) -> String {
    dir.join(name).display().to_string()
}

//! A real cluster: four validator processes on loopback QUIC (this test binary re-executed as
//! `bmpls_node::run_until_signal`), reporters submitting real signed, encrypted records over the
//! network, validators killed with SIGKILL and restarted.

use std::collections::HashSet;
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bmpls_client::{Fix, Reporter};
use bmpls_crypto::SigningKey;
use bmpls_crypto::hash::tx_hash;
use bmpls_grid::LevelSet;
use bmpls_net::{Client, Request, Response, Submitted, Trust};
use bmpls_node::NodeConfig;
use bmpls_node::keyfile::read_signing_key;
use bmpls_node::provision::{self, Provisioned};
use bmpls_ope::keys::MasterSecret;
use bmpls_store::Store;
use bmpls_types::{
    BoundedVec, EnrolPatient, Height, PatientId, PublicKeyBytes, Seq, SignatureBytes, Transaction,
    TxHash, ValidatorId,
};
use rand::SeedableRng;
use rand::rngs::StdRng;

const NODE_ENV: &str = "BMPLS_IT_NODE_CONFIG";
const EPOCH_MS: u64 = 86_400_000;

/// The child: one validator, until SIGTERM (graceful) or SIGKILL.
#[test]
#[ignore = "run by the cluster tests as a validator process"]
fn node_process() {
    let Some(config) = std::env::var_os(NODE_ENV) else {
        return;
    };
    let config = NodeConfig::load(Path::new(&config)).expect("child loads its config");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime
        .block_on(bmpls_node::run_until_signal(&config))
        .expect("validator runs and stops cleanly");
}

fn free_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("a free UDP port")
        .port()
}

/// Validator processes sharing one temporary folder.
pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub nodes: Vec<Provisioned>,
    pub configs: Vec<PathBuf>,
    pub client_addrs: Vec<SocketAddr>,
    children: Vec<Option<Child>>,
}

impl Cluster {
    pub fn start(n: usize) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let certs = dir.path().join("certs");
        let genesis_ms = now_ms() - 60_000;
        let nodes = provision::init(&certs, n, "bmpls-it", genesis_ms).expect("provision");
        let peer_ports: Vec<u16> = (0..n).map(|_| free_port()).collect();
        let client_addrs: Vec<SocketAddr> = (0..n)
            .map(|_| SocketAddr::from(([127, 0, 0, 1], free_port())))
            .collect();
        let mut configs = Vec::new();
        for (i, node) in nodes.iter().enumerate() {
            let mut text = format!(
                "name = \"{name}\"\ngenesis = \"certs/genesis.toml\"\n\
                 validator_key = \"certs/{name}/validator.key\"\ndata_dir = \"data/{name}\"\n\
                 [tls]\nca = \"certs/ca.pem\"\ncert = \"certs/{name}/tls.pem\"\nkey = \"certs/{name}/tls.key\"\n\
                 [listen]\npeers = \"127.0.0.1:{}\"\nclients = \"{}\"\n\
                 [blocks]\nmin_interval_ms = 20\nempty_interval_ms = 500\n",
                peer_ports[i],
                client_addrs[i],
                name = node.name,
            );
            for (j, other) in nodes.iter().enumerate() {
                if j != i {
                    text.push_str(&format!(
                        "[[peer]]\nname = \"{}\"\naddress = \"127.0.0.1:{}\"\n",
                        other.name, peer_ports[j]
                    ));
                }
            }
            let path = dir.path().join(format!("{}.toml", node.name));
            std::fs::write(&path, text).expect("write config");
            configs.push(path);
        }
        let mut cluster = Self {
            dir,
            nodes,
            configs,
            client_addrs,
            children: (0..n).map(|_| None).collect(),
        };
        for i in 0..n {
            cluster.spawn(i);
        }
        cluster
    }

    pub fn spawn(&mut self, i: usize) {
        let exe = std::env::current_exe().expect("test binary");
        let log = std::fs::File::create(self.dir.path().join(format!("node{}.log", i + 1)))
            .expect("log file");
        let child = Command::new(exe)
            .args([
                "cluster::node_process",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(NODE_ENV, &self.configs[i])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn validator");
        self.children[i] = Some(child);
    }

    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.children[i].take() {
            child.kill().expect("SIGKILL");
            child.wait().expect("reaped");
        }
    }

    /// SIGTERM, and waits for a clean exit.
    pub fn stop(&mut self, i: usize) {
        if let Some(mut child) = self.children[i].take() {
            let pid = child.id().to_string();
            let sent = Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .expect("kill -TERM");
            assert!(sent.success());
            let status = child.wait().expect("exits");
            assert!(status.success(), "node {} exited with {status}", i + 1);
        }
    }

    pub fn trust(&self) -> Trust {
        let ids: Vec<ValidatorId> = self.nodes.iter().map(|n| n.id).collect();
        Trust::load(&self.dir.path().join("certs/ca.pem"), &ids).expect("trust")
    }

    pub fn operator(&self) -> SigningKey {
        read_signing_key(&self.nodes[0].dir.join("validator.key")).expect("operator key")
    }

    pub fn store(&self, i: usize) -> Store {
        Store::open(
            &self
                .dir
                .path()
                .join(format!("data/{}/store", self.nodes[i].name)),
            &bmpls_types::ChainId::new("bmpls-it").expect("short"),
        )
        .expect("open a stopped node's store")
    }

    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("node{}.log", i + 1)))
            .unwrap_or_default()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.children.len() {
            self.kill(i);
        }
    }
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as u64
}

/// A patient's phone: keys, a reporter, the next sequence number, a position that wanders.
pub struct Phone {
    pub id: PatientId,
    pub key: SigningKey,
    reporter: Reporter,
    next_seq: u64,
    lat: f64,
    lon: f64,
    rng: StdRng,
}

impl Phone {
    pub fn new(seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let id = PatientId(rand::Rng::r#gen(&mut rng));
        let key = SigningKey::generate(&mut rng);
        let master = MasterSecret::generate(&mut rng);
        let reporter = Reporter::new(
            id,
            &master,
            SigningKey::from_seed(&key.to_seed()),
            LevelSet::default_levels(),
            EPOCH_MS,
        )
        .expect("reporter");
        Self {
            id,
            key,
            reporter,
            next_seq: 1,
            lat: 52.37 + (seed % 10) as f64 * 0.01,
            lon: 4.89,
            rng,
        }
    }

    pub fn enrolment(&self, operator: &SigningKey) -> Transaction {
        let mut enrol = EnrolPatient {
            patient: self.id,
            reporter_key: self.key.public(),
            custodian_key: self.key.public(),
            level_count: LevelSet::default_levels().len() as u8,
            epoch_length_ms: EPOCH_MS,
            operator: PublicKeyBytes(operator.public().0),
            sig: SignatureBytes::UNSIGNED,
        };
        operator.sign(&mut enrol);
        Transaction::EnrolPatient(enrol)
    }

    /// The next `n` reports.
    pub fn reports(&mut self, n: usize) -> Vec<Transaction> {
        (0..n)
            .map(|_| {
                self.lat += (rand::Rng::r#gen::<f64>(&mut self.rng) - 0.5) * 1e-4;
                self.lon += (rand::Rng::r#gen::<f64>(&mut self.rng) - 0.5) * 1e-4;
                let fix = Fix {
                    lat: self.lat,
                    lon: self.lon,
                    accuracy_m: 8.0,
                    altitude_m: 3.0,
                    speed_m_s: 1.2,
                    battery_percent: 80,
                    trigger: bmpls_types::Trigger::Periodic,
                    fix_time_ms: now_ms(),
                };
                let record = self
                    .reporter
                    .build(&fix, Seq(self.next_seq), &mut self.rng)
                    .expect("record");
                self.next_seq += 1;
                Transaction::Report(record)
            })
            .collect()
    }
}

/// Submits `txs` to the first node of `order` that answers; returns each outcome.
pub async fn submit(
    clients: &[Arc<Client>],
    order: &[usize],
    txs: Vec<Transaction>,
) -> Vec<Submitted> {
    let request = Request::Submit(BoundedVec::new(txs).expect("batch within the limit"));
    let mut last = String::new();
    for _ in 0..20 {
        for &i in order {
            match clients[i].call(request.clone()).await {
                Ok(Response::Submitted(results)) => return results.into_inner(),
                Ok(other) => last = format!("{other:?}"),
                Err(e) => last = e.to_string(),
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("no node accepted the submission: {last}");
}

pub async fn status_height(client: &Client) -> Option<u64> {
    match client.call(Request::Status).await {
        Ok(Response::Status(s)) => Some(s.height),
        _ => None,
    }
}

pub fn clients(cluster: &Cluster, key: &SigningKey) -> Vec<Arc<Client>> {
    let trust = cluster.trust();
    cluster
        .client_addrs
        .iter()
        .map(|addr| {
            Arc::new(
                Client::new(*addr, &trust, SigningKey::from_seed(&key.to_seed())).expect("client"),
            )
        })
        .collect()
}

/// Enrols `phones` through node 1 and waits for the commit.
pub async fn enrol(cluster: &Cluster, phones: &[Phone]) {
    let operator = cluster.operator();
    let clients = clients(cluster, &operator);
    let txs = phones.iter().map(|p| p.enrolment(&operator)).collect();
    for outcome in submit(&clients, &[0, 1, 2, 3], txs).await {
        assert!(
            matches!(outcome, Submitted::Committed { .. }),
            "enrolment: {outcome:?}"
        );
    }
}

/// Streams `batches` batches of `per_batch` reports from `phone`, through the nodes in
/// `order` (failing over), and returns the hashes of the acknowledged ones.
pub async fn stream(
    mut phone: Phone,
    clients: Vec<Arc<Client>>,
    order: Vec<usize>,
    batches: usize,
    per_batch: usize,
) -> Vec<TxHash> {
    let mut acked = Vec::new();
    for _ in 0..batches {
        let txs = phone.reports(per_batch);
        let hashes: Vec<TxHash> = txs.iter().map(tx_hash).collect();
        let outcomes = submit(&clients, &order, txs).await;
        for (hash, outcome) in hashes.into_iter().zip(outcomes) {
            match outcome {
                Submitted::Committed { tx, .. } => {
                    assert_eq!(tx, hash);
                    acked.push(hash);
                }
                other => panic!("report refused: {other:?}"),
            }
        }
    }
    acked
}

/// Waits until every listed node reports a height of at least `height`.
pub async fn wait_for_height(clients: &[Arc<Client>], nodes: &[usize], height: u64) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let mut all = true;
        for &i in nodes {
            if status_height(&clients[i]).await.is_none_or(|h| h < height) {
                all = false;
            }
        }
        if all {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "nodes {nodes:?} did not reach height {height}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub async fn max_height(clients: &[Arc<Client>]) -> u64 {
    let mut max = 0;
    for c in clients {
        max = max.max(status_height(c).await.unwrap_or(0));
    }
    max
}

/// Stops every node and checks their stores hold one chain up to the lowest tip; returns it.
fn identical_chains(cluster: &mut Cluster) -> Vec<Store> {
    for i in 0..cluster.nodes.len() {
        cluster.stop(i);
    }
    let stores: Vec<Store> = (0..cluster.nodes.len()).map(|i| cluster.store(i)).collect();
    let tips: Vec<u64> = stores.iter().map(|s| s.tip().expect("tip").0.0).collect();
    let low = *tips.iter().min().expect("nodes");
    assert!(low > 0, "no blocks committed: tips {tips:?}");
    for height in 1..=low {
        let hashes: HashSet<_> = stores
            .iter()
            .map(|s| {
                s.certificate(Height(height))
                    .expect("reads")
                    .expect("certificate below the tip")
                    .block_hash
            })
            .collect();
        assert_eq!(hashes.len(), 1, "validators disagree at height {height}");
    }
    stores
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

#[test]
fn four_validators_and_several_reporters_end_with_one_chain() {
    let mut cluster = Cluster::start(4);
    let rt = runtime();
    let (acked, height) = rt.block_on(async {
        let phones: Vec<Phone> = (0..8).map(|s| Phone::new(100 + s)).collect();
        enrol(&cluster, &phones).await;
        let mut tasks = Vec::new();
        for (p, phone) in phones.into_iter().enumerate() {
            let clients = clients(&cluster, &phone.key);
            let order = vec![p % 4, (p + 1) % 4, (p + 2) % 4, (p + 3) % 4];
            // 8 phones × 25 batches × 50 reports = 10,000 records.
            tasks.push(tokio::spawn(stream(phone, clients, order, 25, 50)));
        }
        let mut acked = Vec::new();
        for task in tasks {
            acked.extend(task.await.expect("phone task"));
        }
        let probe = clients(&cluster, &cluster.operator());
        let height = max_height(&probe).await;
        wait_for_height(&probe, &[0, 1, 2, 3], height).await;
        (acked, height)
    });
    assert_eq!(acked.len(), 10_000);
    let stores = identical_chains(&mut cluster);
    for store in &stores {
        assert!(store.tip().expect("tip").0.0 >= height);
    }
    // Every acknowledged report is in every validator's chain.
    let mut reports = 0usize;
    let low = stores
        .iter()
        .map(|s| s.tip().expect("tip").0.0)
        .min()
        .unwrap_or(0);
    let mut in_chain = HashSet::new();
    for h in 1..=low {
        let block = stores[0].block(Height(h)).expect("reads").expect("block");
        for tx in block.txs.iter() {
            if matches!(tx, Transaction::Report(_)) {
                reports += 1;
                in_chain.insert(tx_hash(tx));
            }
        }
    }
    assert_eq!(reports, 10_000, "each record committed exactly once");
    assert!(acked.iter().all(|h| in_chain.contains(h)));
}

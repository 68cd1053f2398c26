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
use bmpls_crypto::keyfile::read_signing_key;
use bmpls_grid::LevelSet;
use bmpls_net::certs::Ca;
use bmpls_net::limits::MAX_REQUEST_BYTES;
use bmpls_net::{
    Client, Envelope, Identity, RefusalCode, Request, RequestError, Response, Submitted, Trust,
};
use bmpls_node::NodeConfig;
use bmpls_node::provision::{self, Provisioned};
use bmpls_ope::keys::MasterSecret;
use bmpls_store::Store;
use bmpls_types::{
    BoundedVec, Canonical, EnrolPatient, Height, PatientId, PublicKeyBytes, Seq, SignatureBytes,
    Transaction, TxHash, ValidatorId,
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
    pub peer_addrs: Vec<SocketAddr>,
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
                 [blocks]\nmin_interval_ms = 20\nempty_interval_ms = 500\n\
                 [checkpoints]\nevery_records = 300\nevery_heights = 10\n",
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
            peer_addrs: peer_ports
                .iter()
                .map(|p| SocketAddr::from(([127, 0, 0, 1], *p)))
                .collect(),
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
        Trust::load(&self.dir.path().join("certs/ca.pem"), &chain(), &ids).expect("trust")
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
            &chain(),
        )
        .expect("open a stopped node's store")
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
            chain(),
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
            ore_levels: LevelSet::default_levels().ore_levels() as u8,
            epoch_length_ms: EPOCH_MS,
            operator: PublicKeyBytes(operator.public().0),
            sig: SignatureBytes::UNSIGNED,
        };
        operator.sign(&mut enrol, &chain());
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
    let mut top = 0;
    for outcome in submit(&clients, &[0, 1, 2, 3], txs).await {
        match outcome {
            Submitted::Committed { height, .. } => top = top.max(height),
            other => panic!("enrolment: {other:?}"),
        }
    }
    // A phone's first report may go to any validator: each must have applied the enrolment,
    // or it refuses the report as from a patient it does not know (under load on two cores
    // one node can lag the one that acknowledged).
    wait_for_height(&clients, &[0, 1, 2, 3], top).await;
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
    // A store started from a snapshot holds certificates from its base on.
    let bases: Vec<u64> = stores
        .iter()
        .map(|s| s.base().expect("reads").map_or(0, |b| b.height.0))
        .collect();
    for height in 1..=low {
        let hashes: HashSet<_> = stores
            .iter()
            .zip(&bases)
            .filter(|&(_, &base)| height >= base)
            .map(|(s, _)| {
                s.certificate(Height(height))
                    .expect("reads")
                    .expect("certificate below the tip")
                    .block_hash
            })
            .collect();
        assert_eq!(hashes.len(), 1, "validators disagree at height {height}");
    }
    // Each validator checkpoints its state often here ([checkpoints] above), so every restart
    // in these tests started from a checkpoint: the state it rebuilds must be the one a replay
    // of the whole chain gives.
    let genesis = NodeConfig::load(&cluster.configs[0])
        .expect("config")
        .genesis;
    for (i, store) in stores.iter().enumerate() {
        let quick = bmpls_node::checkpoint::rebuild(&genesis, store, true).expect("rebuilds");
        if bases[i] > 0 {
            // No chain to replay: the state must be the one a replay of a whole chain gives
            // at the same height.
            let tip = store.tip().expect("tip").0;
            let whole = stores
                .iter()
                .zip(&bases)
                .find(|&(s, &base)| base == 0 && s.tip().expect("tip").0 >= tip)
                .map(|(s, _)| bmpls_node::checkpoint::replay_to(&genesis, s, tip).expect("replays"))
                .expect("a validator with the whole chain, as far");
            assert!(
                quick.ledger.checkpoint() == whole.ledger.checkpoint()
                    && quick.alerts.checkpoint() == whole.alerts.checkpoint(),
                "node {}: the state from its snapshot differs from the replayed one",
                i + 1
            );
            continue;
        }
        let whole = bmpls_node::checkpoint::rebuild(&genesis, store, false).expect("replays");
        let at = quick.checkpoint.expect("a checkpoint was written");
        assert!(at.0 > 0 && whole.checkpoint.is_none());
        assert_eq!(quick.replayed + at.0, whole.replayed, "node {}", i + 1);
        assert!(
            quick.ledger.checkpoint() == whole.ledger.checkpoint()
                && quick.alerts.checkpoint() == whole.alerts.checkpoint(),
            "node {}: the state from checkpoint {} differs from the replayed one",
            i + 1,
            at.0
        );
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

#[test]
fn a_validator_killed_mid_stream_catches_up_after_restart() {
    let mut cluster = Cluster::start(4);
    let rt = runtime();
    rt.block_on(async {
        let phones: Vec<Phone> = (0..3).map(|s| Phone::new(200 + s)).collect();
        enrol(&cluster, &phones).await;
        let probe = clients(&cluster, &cluster.operator());
        let mut tasks = Vec::new();
        for (p, phone) in phones.into_iter().enumerate() {
            let clients = clients(&cluster, &phone.key);
            // Node 4 is about to die: the phones use nodes 1-3.
            let order = vec![p % 3, (p + 1) % 3, (p + 2) % 3];
            tasks.push(tokio::spawn(stream(phone, clients, order, 40, 20)));
        }
        wait_for_height(&probe, &[3], 3).await;
        cluster.kill(3);
        let at_kill = max_height(&probe[..3]).await;
        // Commits continue with three of four.
        wait_for_height(&probe, &[0, 1, 2], at_kill + 5).await;
        let mut acked = 0;
        for task in tasks {
            acked += task.await.expect("phone task").len();
        }
        assert_eq!(acked, 3 * 40 * 20);
        let before_restart = max_height(&probe[..3]).await;
        assert!(before_restart > at_kill + 5);
        cluster.spawn(3);
        wait_for_height(&probe, &[3], before_restart).await;
    });
    identical_chains(&mut cluster);
}

/// A validator whose disk is wiped joins again from a checkpoint its peers offer, not by
/// replaying the chain: it starts after a checkpoint height, holds no block before it, catches
/// up with the blocks after it and then commits with the others, its state the one a replay
/// gives.
#[test]
fn a_wiped_validator_joins_again_from_a_snapshot() {
    let mut cluster = Cluster::start(4);
    let rt = runtime();
    rt.block_on(async {
        let phones: Vec<Phone> = (0..3).map(|s| Phone::new(400 + s)).collect();
        enrol(&cluster, &phones).await;
        let custodian = (
            phones[0].id,
            SigningKey::from_seed(&phones[0].key.to_seed()),
        );
        let probe = clients(&cluster, &cluster.operator());
        let mut tasks = Vec::new();
        for (p, phone) in phones.into_iter().enumerate() {
            let clients = clients(&cluster, &phone.key);
            let order = vec![p % 3, (p + 1) % 3, (p + 2) % 3];
            tasks.push(tokio::spawn(stream(phone, clients, order, 30, 20)));
        }
        wait_for_height(&probe, &[3], 3).await;
        cluster.kill(3);
        let at_kill = max_height(&probe[..3]).await;
        // Past a few checkpoint heights (every 10 blocks or 300 transactions here).
        wait_for_height(&probe, &[0, 1, 2], at_kill + 25).await;
        let data = cluster
            .dir
            .path()
            .join(format!("data/{}", cluster.nodes[3].name));
        std::fs::remove_dir_all(&data).expect("wipe the validator's disk");
        let config = std::fs::read_to_string(&cluster.configs[3]).expect("config");
        let joining = config.replace(
            "every_heights = 10\n",
            "every_heights = 10\njoin_from_snapshot = true\n",
        );
        assert_ne!(config, joining);
        std::fs::write(&cluster.configs[3], joining).expect("config");
        cluster.spawn(3);
        let mut acked = 0;
        for task in tasks {
            acked += task.await.expect("phone task").len();
        }
        assert_eq!(acked, 3 * 30 * 20);
        let now = max_height(&probe[..3]).await;
        wait_for_height(&probe, &[3], now + 3).await;

        // The patient's audit trail from the first block: the joined validator does not hold
        // it and says so (a client then asks another); a validator with the whole chain answers.
        let trail = Request::Audit(bmpls_net::query::AuditRequest {
            patient: custodian.0,
            from_height: Height(1),
            limit: 10,
        });
        let asked = clients(&cluster, &custodian.1);
        match asked[3].call(trail.clone()).await.expect("node 4 answers") {
            Response::Audit(bmpls_net::query::AuditOutcome::NotHeld(why)) => {
                assert!(
                    why.as_str().contains("joined from a snapshot"),
                    "{}",
                    why.as_str()
                );
            }
            other => panic!("node 4 answered the trail before its base: {other:?}"),
        }
        assert!(matches!(
            asked[0].call(trail).await.expect("node 1 answers"),
            Response::Audit(bmpls_net::query::AuditOutcome::Answered(_))
        ));
    });
    let stores = identical_chains(&mut cluster);
    let base = stores[3]
        .base()
        .expect("reads")
        .expect("node 4 started from a snapshot");
    assert!(
        base.height.0 > 1,
        "a snapshot after block {}",
        base.height.0
    );
    assert_eq!(stores[3].block(Height(1)).expect("reads"), None);
    let tip = stores[3].tip().expect("tip").0;
    assert_eq!(
        stores[3].block(tip).expect("reads"),
        stores[0].block(tip).expect("reads"),
        "the same blocks after the base"
    );
}

#[test]
fn killing_every_validator_loses_no_acknowledged_record() {
    let mut cluster = Cluster::start(4);
    let rt = runtime();
    let acked = rt.block_on(async {
        let phones: Vec<Phone> = (0..4).map(|s| Phone::new(300 + s)).collect();
        enrol(&cluster, &phones).await;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        for (p, mut phone) in phones.into_iter().enumerate() {
            let clients = clients(&cluster, &phone.key);
            let tx = tx.clone();
            tokio::spawn(async move {
                // Submit until the cluster dies; report each acknowledgement as it comes.
                loop {
                    let txs = phone.reports(10);
                    let hashes: Vec<TxHash> = txs.iter().map(tx_hash).collect();
                    let request =
                        Request::Submit(BoundedVec::new(txs).expect("batch within the limit"));
                    let Ok(Response::Submitted(outcomes)) = clients[p].call(request).await else {
                        return;
                    };
                    for (hash, outcome) in hashes.into_iter().zip(outcomes.into_inner()) {
                        if matches!(outcome, Submitted::Committed { .. }) && tx.send(hash).is_err()
                        {
                            return;
                        }
                    }
                }
            });
        }
        drop(tx);
        let mut acked = Vec::new();
        while acked.len() < 400 {
            acked.push(rx.recv().await.expect("acknowledgements arrive"));
        }
        for i in 0..4 {
            cluster.kill(i);
        }
        while let Ok(hash) = rx.try_recv() {
            acked.push(hash);
        }
        acked
    });
    for i in 0..4 {
        cluster.spawn(i);
    }
    rt.block_on(async {
        let probe = clients(&cluster, &cluster.operator());
        let height = max_height(&probe).await;
        wait_for_height(&probe, &[0, 1, 2, 3], height + 2).await;
    });
    let stores = identical_chains(&mut cluster);
    let low = stores
        .iter()
        .map(|s| s.tip().expect("tip").0.0)
        .min()
        .unwrap_or(0);
    let mut in_chain = HashSet::new();
    for h in 1..=low {
        let block = stores[0].block(Height(h)).expect("reads").expect("block");
        in_chain.extend(block.txs.iter().map(tx_hash));
    }
    let lost: Vec<_> = acked.iter().filter(|h| !in_chain.contains(h)).collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged records lost",
        lost.len(),
        acked.len()
    );
}

/// Dials validator `id` at `addr` as a peer presenting `identity`; true if the validator
/// refuses the link (the handshake fails, or the connection is closed at once).
async fn peer_link_refused(
    identity: &Identity,
    trust: &Trust,
    addr: SocketAddr,
    id: ValidatorId,
) -> bool {
    let config = bmpls_net::tls::peer_client(identity, trust, &id).expect("client config");
    let endpoint =
        quinn::Endpoint::client(SocketAddr::from(([127, 0, 0, 1], 0))).expect("endpoint");
    let name = bmpls_net::tls::validator_dns_name(&id);
    let connection = match endpoint
        .connect_with(config, addr, &name)
        .expect("dial")
        .await
    {
        Ok(c) => c,
        Err(_) => return true,
    };
    let sent = async {
        let mut stream = connection.open_uni().await.ok()?;
        bmpls_net::frame::write_frame(&mut stream, b"hello")
            .await
            .ok()?;
        stream.finish().ok()
    }
    .await;
    if sent.is_none() {
        return true;
    }
    let closed = tokio::time::timeout(Duration::from_secs(2), connection.closed()).await;
    connection.close(0u32.into(), b"done");
    closed.is_ok()
}

#[test]
fn strangers_and_bad_requests_are_refused_while_the_node_serves() {
    let cluster = Cluster::start(4);
    let rt = runtime();
    rt.block_on(async {
        let mut phone = Phone::new(400);
        enrol(&cluster, std::slice::from_ref(&phone)).await;
        let trust = cluster.trust();
        let certs = cluster.dir.path().join("certs");
        let target = cluster.nodes[0].id;
        let read = |p: &str| std::fs::read_to_string(certs.join(p)).expect("read");

        // A genuine validator's certificate is accepted: the refusals below can fail.
        let genuine = Identity::load(&certs.join("node2/tls.pem"), &certs.join("node2/tls.key"))
            .expect("node2 identity");
        assert!(!peer_link_refused(&genuine, &trust, cluster.peer_addrs[0], target).await);

        // A certificate for a genesis validator, but from another CA.
        let foreign_ca = Ca::generate("elsewhere").expect("CA");
        let pem = foreign_ca
            .issue_validator("node2", &cluster.nodes[1].id)
            .expect("cert");
        let foreign = Identity::from_pem(&pem.cert, &pem.key).expect("identity");
        assert!(peer_link_refused(&foreign, &trust, cluster.peer_addrs[0], target).await);

        // A certificate from the consortium CA for a validator that is not in genesis.
        let ca = Ca::from_pem(&read("ca.pem"), &read("ca.key")).expect("reload the CA");
        let outsider = ValidatorId(SigningKey::from_seed(&[42; 32]).public().0);
        let pem = ca.issue_validator("node9", &outsider).expect("cert");
        let stranger = Identity::from_pem(&pem.cert, &pem.key).expect("identity");
        assert!(peer_link_refused(&stranger, &trust, cluster.peer_addrs[0], target).await);

        // A client that pins another CA does not talk to the node.
        let other_trust =
            Trust::from_pem(&foreign_ca.pem().cert, &chain(), &[target]).expect("other trust");
        let misled = Client::new(
            cluster.client_addrs[0],
            &other_trust,
            SigningKey::from_seed(&phone.key.to_seed()),
        )
        .expect("client");
        assert!(misled.call(Request::Status).await.is_err());

        let client = &clients(&cluster, &phone.key)[0];
        let malformed = |r: Response| matches!(r, Response::Error(RequestError::Malformed(_)));
        // Garbage bytes.
        let answer = client
            .call_raw(b"\x01\xffgarbage")
            .await
            .expect("an answer");
        assert!(malformed(answer.clone()), "{answer:?}");
        // An oversized frame.
        let answer = client
            .call_raw(&vec![1u8; MAX_REQUEST_BYTES + 1])
            .await
            .expect("an answer");
        assert!(
            matches!(answer, Response::Error(RequestError::TooLarge { .. })),
            "{answer:?}"
        );
        // An unknown message type: a well-signed envelope whose request tag is unknown.
        let node0 = client.node().await.expect("connected");
        assert_eq!(
            node0, cluster.nodes[0].id,
            "the client knows whom it talks to"
        );
        let mut envelope = Envelope {
            client: phone.key.public(),
            chain: chain(),
            node: node0,
            nonce: [7; 16],
            sent_ms: now_ms(),
            request: Request::Status,
            sig: SignatureBytes::UNSIGNED,
        };
        phone.key.sign(&mut envelope, &chain());
        let mut bytes = envelope.encode();
        let chain_len = 4 + chain().as_str().len();
        bytes[1 + 32 + chain_len + 32 + 16 + 8] = 0x7f;
        let answer = client.call_raw(&bytes).await.expect("an answer");
        assert!(malformed(answer.clone()), "{answer:?}");
        // A replayed request: the same signed envelope twice.
        let mut envelope = envelope.clone();
        envelope.nonce = [8; 16];
        phone.key.sign(&mut envelope, &chain());
        let first = client
            .call_raw(&envelope.encode())
            .await
            .expect("an answer");
        assert!(matches!(first, Response::Status(_)), "{first:?}");
        let again = client
            .call_raw(&envelope.encode())
            .await
            .expect("an answer");
        assert_eq!(again, Response::Error(RequestError::Replayed));
        // A request signed for one validator, replayed by it to another, is refused there;
        // so is one signed for another chain (staging's request on production).
        let other_node = &clients(&cluster, &phone.key)[1];
        let mut for_node0 = envelope.clone();
        for_node0.nonce = [9; 16];
        phone.key.sign(&mut for_node0, &chain());
        let replayed = other_node
            .call_raw(&for_node0.encode())
            .await
            .expect("an answer");
        assert_eq!(replayed, Response::Error(RequestError::Misaddressed));
        let mut staging = envelope.clone();
        staging.nonce = [10; 16];
        staging.chain = bmpls_types::ChainId::new("bmpls-staging").expect("short");
        let staging_chain = staging.chain.clone();
        phone.key.sign(&mut staging, &staging_chain);
        let crossed = client.call_raw(&staging.encode()).await.expect("an answer");
        assert_eq!(crossed, Response::Error(RequestError::Misaddressed));

        // A record sent again (its acknowledgement lost) is answered as committed where it
        // was, once; a different record with the same number is refused as a replay.
        let record = phone.reports(1);
        let clients = clients(&cluster, &phone.key);
        let first = submit(&clients, &[0], record.clone()).await;
        assert!(matches!(first[0], Submitted::Committed { .. }), "{first:?}");
        let again = submit(&clients, &[0], record).await;
        assert_eq!(again, first, "the resend is the same commit");
        phone.next_seq -= 1;
        let other = submit(&clients, &[0], phone.reports(1)).await;
        assert!(
            matches!(
                other[0],
                Submitted::Refused {
                    code: RefusalCode::Replay,
                    ..
                }
            ),
            "{other:?}"
        );

        // Through all of it the node kept serving.
        let next = submit(&clients, &[0], phone.reports(1)).await;
        assert!(matches!(next[0], Submitted::Committed { .. }), "{next:?}");
    });
}

fn chain() -> bmpls_types::ChainId {
    bmpls_types::ChainId::new("bmpls-it").expect("short")
}

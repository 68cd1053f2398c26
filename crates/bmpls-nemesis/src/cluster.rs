//! The validators: real processes, each in its own namespace, its data directory on its own
//! size-limited tmpfs (so one can be filled), its peers reached through the relays. Every
//! process and mount is ended on drop.

use std::fs::OpenOptions;
use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bmpls_crypto::keyfile::read_signing_key;
use bmpls_crypto::{SigningKey, ValidatorSet};
use bmpls_net::Trust;
use bmpls_node::provision::{self, Provisioned};
use bmpls_store::Store;
use bmpls_types::{ChainId, Height, ValidatorId};

use crate::checker::{BlockView, ChainView, ResourceSample};
use crate::netns::Net;
use crate::relay::{Relays, Shape};

/// Every validator checkpoints often here, so that a wiped one has checkpoints to join from
/// in a run of minutes.
const CHECKPOINTS: &str = "every_heights = 50\n";
/// The heights between checkpoints that [`CHECKPOINTS`] sets.
pub const CHECKPOINT_HEIGHTS: u64 = 50;

/// Port validators listen on for peers, inside their namespaces.
pub const PEER_PORT: u16 = 7100;
/// Port validators listen on for clients.
pub const CLIENT_PORT: u16 = 7200;
/// libfaketime, as Debian installs it.
pub const FAKETIME_LIB: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

/// How a validator process is started: `program args…` with the configuration's path in the
/// environment variable `config_env`.
#[derive(Clone, Debug)]
pub struct NodeCommand {
    /// The executable.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
    /// The variable that names the configuration file.
    pub config_env: String,
}

/// A failure to set the cluster up or to act on it.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The network.
    #[error(transparent)]
    Net(#[from] crate::netns::NetError),
    /// A file or process.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Why it failed.
        source: std::io::Error,
    },
    /// Anything else.
    #[error("{0}")]
    Other(String),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ClusterError {
    let what = what.into();
    move |source| ClusterError::Io { what, source }
}

fn run(program: &str, args: &[&str]) -> Result<(), ClusterError> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(io(format!("run {program}")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(ClusterError::Other(format!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// The cluster's chain id.
pub fn chain() -> ChainId {
    ChainId::new("bmpls-nemesis").unwrap_or_else(|_| unreachable!("a short, valid id"))
}

/// Validator processes in their namespaces.
pub struct Cluster {
    /// The folder holding certificates, configurations, logs, data and keystores.
    pub dir: tempfile::TempDir,
    /// The validators as provisioned.
    pub nodes: Vec<Provisioned>,
    command: NodeCommand,
    configs: Vec<PathBuf>,
    children: Vec<Option<Child>>,
    /// Validators now stopped with SIGSTOP.
    paused: Vec<bool>,
    /// Each validator's clock offset when it was last started.
    skews: Vec<Option<i64>>,
    /// When each validator was last started.
    started: Vec<Instant>,
    mounts: Vec<PathBuf>,
    relays: Option<Relays>,
    net: Net,
}

impl Cluster {
    /// Makes the network, the relays shaped as `shape`, `n` validators' certificates,
    /// configurations and data tmpfs of `disk_mib` each, and starts every validator.
    pub fn start(
        n: usize,
        command: NodeCommand,
        shape: Shape,
        disk_mib: u64,
        seed: u64,
    ) -> Result<Self, ClusterError> {
        let net = Net::create(n)?;
        // Without it a skewed validator would start with the true clock (the loader ignores a
        // missing preload): the run would test less than it says.
        if !Path::new(FAKETIME_LIB).exists() {
            return Err(ClusterError::Other(format!(
                "{FAKETIME_LIB} is missing: apt-get install libfaketime"
            )));
        }
        let dir = tempfile::Builder::new()
            .prefix("bmpls-nemesis-")
            .tempdir()
            .map_err(io("temp dir"))?;
        let certs = dir.path().join("certs");
        let genesis_ms = crate::workload::now_ms() - 60_000;
        let nodes = provision::init(&certs, n, chain().as_str(), genesis_ms)
            .map_err(|e| ClusterError::Other(format!("provision: {e}")))?;
        let peers: Vec<SocketAddr> = (0..n)
            .map(|i| SocketAddr::from((net.node_ip(i), PEER_PORT)))
            .collect();
        let relays = Relays::start(net.host_ip(), &peers, shape, seed).map_err(io("relays"))?;
        let mut cluster = Self {
            dir,
            nodes,
            command,
            configs: Vec::new(),
            children: (0..n).map(|_| None).collect(),
            paused: vec![false; n],
            skews: vec![None; n],
            started: vec![Instant::now(); n],
            mounts: Vec::new(),
            relays: None,
            net,
        };
        for i in 0..n {
            let data = cluster.data_dir(i);
            std::fs::create_dir_all(&data).map_err(io("data dir"))?;
            let size = format!("size={disk_mib}m");
            run(
                "mount",
                &["-t", "tmpfs", "-o", &size, "tmpfs", &data.to_string_lossy()],
            )?;
            cluster.mounts.push(data);
            let name = &cluster.nodes[i].name;
            let mut text = format!(
                "name = \"{name}\"\ngenesis = \"certs/genesis.toml\"\n\
                 validator_key = \"certs/{name}/validator.key\"\ndata_dir = \"data/{name}\"\n\
                 [tls]\nca = \"certs/ca.pem\"\ncert = \"certs/{name}/tls.pem\"\n\
                 key = \"certs/{name}/tls.key\"\n\
                 [listen]\npeers = \"{}:{PEER_PORT}\"\nclients = \"{}:{CLIENT_PORT}\"\n\
                 [blocks]\nmin_interval_ms = 20\nempty_interval_ms = 500\n\
                 [checkpoints]\n{CHECKPOINTS}",
                cluster.net.node_ip(i),
                cluster.net.node_ip(i),
            );
            for (j, other) in cluster.nodes.iter().enumerate() {
                if j != i {
                    text.push_str(&format!(
                        "[[peer]]\nname = \"{}\"\naddress = \"{}:{}\"\n",
                        other.name,
                        cluster.net.host_ip(),
                        relays.ports[i][j]
                    ));
                }
            }
            let path = cluster.dir.path().join(format!("{name}.toml"));
            std::fs::write(&path, text).map_err(io("write config"))?;
            cluster.configs.push(path);
        }
        cluster.relays = Some(relays);
        for i in 0..n {
            cluster.spawn(i)?;
        }
        Ok(cluster)
    }

    /// Validators.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Never: a cluster has validators.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The relays (cuts and counters).
    pub fn relays(&self) -> &Relays {
        self.relays
            .as_ref()
            .unwrap_or_else(|| unreachable!("set in start"))
    }

    fn data_dir(&self, i: usize) -> PathBuf {
        self.dir.path().join("data").join(&self.nodes[i].name)
    }

    /// Validator `i`'s log.
    pub fn log_path(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("{}.log", self.nodes[i].name))
    }

    /// Where clients reach each validator.
    pub fn client_addrs(&self) -> Vec<SocketAddr> {
        (0..self.len())
            .map(|i| SocketAddr::from((self.net.node_ip(i), CLIENT_PORT)))
            .collect()
    }

    /// The trust clients pin.
    pub fn trust(&self) -> Result<Trust, ClusterError> {
        let ids: Vec<ValidatorId> = self.nodes.iter().map(|n| n.id).collect();
        Trust::load(&self.dir.path().join("certs/ca.pem"), &chain(), &ids)
            .map_err(|e| ClusterError::Other(format!("trust: {e}")))
    }

    /// The genesis validator set, as carers check certificates against it.
    pub fn validators(&self) -> Result<ValidatorSet, ClusterError> {
        let path = self.dir.path().join("certs/genesis.toml");
        let text = std::fs::read_to_string(&path).map_err(io("read genesis"))?;
        let genesis = bmpls_consensus::Genesis::from_toml(&text)
            .map_err(|e| ClusterError::Other(format!("genesis: {e}")))?;
        Ok(genesis.validators.crypto().clone())
    }

    /// The operator's key (the first validator's), which enrols patients and carers.
    pub fn operator(&self) -> Result<SigningKey, ClusterError> {
        read_signing_key(&self.nodes[0].dir.join("validator.key"))
            .map_err(|e| ClusterError::Other(format!("operator key: {e}")))
    }

    /// Starts validator `i` (with its clock skewed, if [`Cluster::set_skew`] said so).
    pub fn spawn(&mut self, i: usize) -> Result<(), ClusterError> {
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path(i))
            .map_err(io("log file"))?;
        let _ = writeln!(log, "=== start, clock offset {:?} ms", self.skews[i]);
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", self.net.namespace(i)])
            .arg(&self.command.program)
            .args(&self.command.args)
            .env(&self.command.config_env, &self.configs[i])
            // malachite's WARN lines are normal in restarts and round changes (`bmpls node`
            // filters them the same way); its errors stay.
            .env(
                "RUST_LOG",
                "warn,informalsystems_malachitebft_core_consensus=error",
            )
            .env("RUST_BACKTRACE", "1")
            .stdout(Stdio::null())
            .stderr(log);
        if let Some(offset_ms) = self.skews[i] {
            // Wall-clock time only: tokio's timers run on the monotonic clock, which a skewed
            // NTP does not move either.
            let sign = if offset_ms < 0 { "-" } else { "+" };
            let seconds = offset_ms.unsigned_abs() as f64 / 1000.0;
            command
                .env("LD_PRELOAD", FAKETIME_LIB)
                .env("FAKETIME", format!("{sign}{seconds:.3}s"))
                .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
                .env("FAKETIME_DONT_RESET", "1");
        }
        let child = command.spawn().map_err(io("spawn validator"))?;
        self.children[i] = Some(child);
        self.started[i] = Instant::now();
        self.paused[i] = false;
        Ok(())
    }

    /// How long ago validator `i` was last started.
    pub fn since_start(&self, i: usize) -> Duration {
        self.started[i].elapsed()
    }

    /// Whether validator `i` runs (started and not yet seen to end).
    pub fn running(&self, i: usize) -> bool {
        self.children[i].is_some()
    }

    /// The clock offset validator `i` gets at its next start.
    pub fn set_skew(&mut self, i: usize, offset_ms: Option<i64>) {
        self.skews[i] = offset_ms;
    }

    fn signal(&self, i: usize, signal: &str) -> Result<(), ClusterError> {
        match &self.children[i] {
            Some(child) => run("kill", &[signal, &child.id().to_string()]),
            None => Ok(()),
        }
    }

    /// `kill -9`, and reaps it.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.children[i].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.paused[i] = false;
    }

    /// `SIGSTOP`.
    pub fn pause(&mut self, i: usize) -> Result<(), ClusterError> {
        self.signal(i, "-STOP")?;
        self.paused[i] = true;
        Ok(())
    }

    /// `SIGCONT`.
    pub fn resume(&mut self, i: usize) -> Result<(), ClusterError> {
        self.signal(i, "-CONT")?;
        self.paused[i] = false;
        Ok(())
    }

    /// SIGTERM, waiting up to 30 s for a clean exit before SIGKILL; the exit status if the
    /// process ended on its own terms.
    pub fn stop(&mut self, i: usize) -> Option<std::process::ExitStatus> {
        if self.paused[i] {
            let _ = self.resume(i);
        }
        let _ = self.signal(i, "-TERM");
        let mut child = self.children[i].take()?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }

    /// Validator `i`'s exit status if it has ended (it is then forgotten: not running).
    pub fn reap(&mut self, i: usize) -> Option<String> {
        let status = self.children[i].as_mut()?.try_wait().ok()??;
        self.children[i] = None;
        Some(status.to_string())
    }

    /// Validators that ended without being told to, with their exit status; each is
    /// forgotten (not running) after it is returned.
    pub fn exited(&mut self) -> Vec<(usize, String)> {
        let mut ended = Vec::new();
        for (i, slot) in self.children.iter_mut().enumerate() {
            if let Some(child) = slot
                && let Ok(Some(status)) = child.try_wait()
            {
                ended.push((i, status.to_string()));
                *slot = None;
            }
        }
        ended
    }

    /// Fills validator `i`'s data tmpfs: writes a file until the disk refuses.
    pub fn fill_disk(&self, i: usize) -> Result<u64, ClusterError> {
        let path = self.data_dir(i).join("filler");
        let mut file = std::fs::File::create(&path).map_err(io("filler"))?;
        let chunk = vec![0u8; 1 << 20];
        let mut written = 0u64;
        loop {
            match file.write(&chunk) {
                Ok(0) | Err(_) => break,
                Ok(k) => written += k as u64,
            }
        }
        let _ = file.flush();
        Ok(written)
    }

    /// Frees what [`Cluster::fill_disk`] took.
    pub fn free_disk(&self, i: usize) -> Result<(), ClusterError> {
        let path = self.data_dir(i).join("filler");
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io("free disk")(e)),
        }
    }

    /// Empties validator `i`'s data directory (store and consensus log; it must be stopped)
    /// and has it join from a snapshot when it next starts.
    pub fn wipe(&mut self, i: usize) -> Result<(), ClusterError> {
        let data = self.data_dir(i);
        // The directory is a tmpfs mount: its entries go, the mount point stays.
        for entry in std::fs::read_dir(&data).map_err(io("read data dir"))? {
            let path = entry.map_err(io("read data dir"))?.path();
            let removed = if path.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            removed.map_err(io("wipe data dir"))?;
        }
        let text = std::fs::read_to_string(&self.configs[i]).map_err(io("read config"))?;
        if !text.contains("join_from_snapshot") {
            let joining = text.replace(
                CHECKPOINTS,
                &format!("{CHECKPOINTS}join_from_snapshot = true\n"),
            );
            std::fs::write(&self.configs[i], joining).map_err(io("write config"))?;
        }
        Ok(())
    }

    /// Cuts up to `bytes` off the end of the largest file of validator `i`'s consensus log
    /// (never more than half of it); the bytes cut.
    pub fn truncate_wal(&self, i: usize, bytes: u64) -> Result<u64, ClusterError> {
        let wal = self.data_dir(i).join("wal");
        let mut largest: Option<(u64, PathBuf)> = None;
        for entry in walk(&wal) {
            let len = entry.metadata().map(|m| m.len()).unwrap_or(0);
            if largest.as_ref().is_none_or(|(l, _)| len > *l) {
                largest = Some((len, entry));
            }
        }
        let Some((len, path)) = largest else {
            return Ok(0);
        };
        let cut = bytes.min(len / 2);
        let file = OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(io("open WAL file"))?;
        file.set_len(len - cut).map_err(io("truncate WAL"))?;
        Ok(cut)
    }

    /// Resident memory and open files of each running validator.
    pub fn resources(&self) -> Vec<ResourceSample> {
        let mut samples = Vec::new();
        for (node, child) in self.children.iter().enumerate() {
            let Some(child) = child else { continue };
            let proc = PathBuf::from(format!("/proc/{}", child.id()));
            let rss_kib = std::fs::read_to_string(proc.join("status"))
                .ok()
                .and_then(|s| {
                    s.lines()
                        .find(|l| l.starts_with("VmRSS:"))
                        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
                })
                .unwrap_or(0);
            let open_files = std::fs::read_dir(proc.join("fd"))
                .map(|d| d.count() as u64)
                .unwrap_or(0);
            samples.push(ResourceSample {
                node,
                rss_kib,
                open_files,
            });
        }
        samples
    }

    /// Lines of the validators' logs that report a panic.
    pub fn panics(&self) -> Vec<(usize, String)> {
        let mut found = Vec::new();
        for i in 0..self.len() {
            let Ok(file) = std::fs::File::open(self.log_path(i)) else {
                continue;
            };
            for line in std::io::BufReader::new(file).lines().map_while(Result::ok) {
                if line.contains("panicked at") {
                    found.push((i, line));
                }
            }
        }
        found
    }

    /// Validator `i`'s chain, read from its store (the validator must be stopped).
    pub fn chain_view(&self, i: usize) -> Result<ChainView, ClusterError> {
        let store = Store::open(&self.data_dir(i).join("store"), &chain())
            .map_err(|e| ClusterError::Other(format!("open store {i}: {e}")))?;
        let (tip, _) = store
            .tip()
            .map_err(|e| ClusterError::Other(format!("tip {i}: {e}")))?;
        let read = |e: bmpls_store::StoreError| ClusterError::Other(format!("read {i}: {e}"));
        // A validator that joined from a snapshot holds the blocks after its base only.
        let based = store.base().map_err(read)?;
        let base = based.as_ref().map_or(0, |b| b.height.0);
        let base_hash = based.map(|b| bmpls_crypto::hash::block_hash(&b).0);
        let mut blocks = Vec::with_capacity(tip.0.saturating_sub(base) as usize);
        for h in base + 1..=tip.0 {
            let cert = store
                .certificate(Height(h))
                .map_err(read)?
                .ok_or_else(|| ClusterError::Other(format!("{i}: no certificate at {h}")))?;
            let block = store
                .block(Height(h))
                .map_err(read)?
                .ok_or_else(|| ClusterError::Other(format!("{i}: no block at {h}")))?;
            blocks.push(BlockView {
                hash: cert.block_hash.0,
                txs: block
                    .txs
                    .iter()
                    .map(|tx| bmpls_crypto::hash::tx_hash(tx).0)
                    .collect(),
                kinds: block.txs.iter().map(kind_of).collect(),
            });
        }
        Ok(ChainView {
            node: i,
            base,
            base_hash,
            blocks,
        })
    }
}

/// A transaction's kind, for reports.
fn kind_of(tx: &bmpls_types::Transaction) -> &'static str {
    use bmpls_types::Transaction as T;
    match tx {
        T::EnrolPatient(_) => "enrol patient",
        T::EnrolCarer(_) => "enrol carer",
        T::RotateReporterKey(_) => "rotate key",
        T::Report(_) => "report",
        T::Grant(_) => "grant",
        T::Revoke(_) => "revoke",
        T::SetFence(_) => "fence",
        T::Audit(_) => "audit",
        _ => "other",
    }
}

/// Every file under `dir`.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return files;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.len() {
            if self.paused[i] {
                let _ = self.resume(i);
            }
            self.kill(i);
        }
        self.relays = None;
        for mount in &self.mounts {
            let _ = run("umount", &["-l", &mount.to_string_lossy()]);
        }
    }
}

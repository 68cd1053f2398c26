//! A validator's configuration file (`config/node1.toml`…). Paths are relative to the file's
//! own directory. Loading validates every field and names the bad one.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use bmpls_consensus::Genesis;
use bmpls_types::ValidatorId;

/// Longest wait before an empty block may be proposed: beyond it, a quiet chain would look
/// dead to `Missing` alerts and to validators catching up.
pub const MAX_EMPTY_BLOCK_INTERVAL_MS: u64 = 60_000;

/// A configuration that cannot be used, naming the field.
#[derive(Debug, thiserror::Error)]
pub enum NodeConfigError {
    /// The file cannot be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Not TOML of the expected shape.
    #[error("{path}: {reason}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message (with line and column).
        reason: String,
    },
    /// A field is wrong.
    #[error("{path}: field `{field}`: {reason}")]
    Field {
        /// The file.
        path: PathBuf,
        /// Dotted path of the field.
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// The genesis file it names is wrong.
    #[error("{path}: {source}")]
    Genesis {
        /// The genesis file.
        path: PathBuf,
        /// What is wrong.
        source: bmpls_consensus::ConfigError,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    name: String,
    genesis: PathBuf,
    validator_key: PathBuf,
    data_dir: PathBuf,
    tls: TlsFile,
    listen: ListenFile,
    #[serde(default)]
    peer: Vec<PeerFile>,
    #[serde(default)]
    blocks: BlockPolicy,
    #[serde(default)]
    checkpoints: CheckpointPolicy,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsFile {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListenFile {
    peers: String,
    clients: String,
    #[serde(default)]
    metrics: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PeerFile {
    name: String,
    address: String,
}

/// When this validator starts the next height after a commit. Local policy: each validator
/// decides when it is ready; a height needs a quorum of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BlockPolicy {
    /// Least time between two heights, so a busy chain batches transactions into blocks.
    pub min_interval_ms: u64,
    /// With nothing to propose and no peer ahead, wait this long before an empty height.
    pub empty_interval_ms: u64,
}

impl Default for BlockPolicy {
    fn default() -> Self {
        Self {
            min_interval_ms: 20,
            empty_interval_ms: 1_000,
        }
    }
}

/// How often the validator checkpoints its ledger and alert state in its store: a restart
/// replays the blocks after the newest checkpoint, so these bound its cost (see
/// [`crate::checkpoint`]). Local policy, but a validator that joins from a snapshot needs more
/// than a third of the voting power to offer the same checkpoint, so a consortium keeps one
/// policy (the default) on every validator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CheckpointPolicy {
    /// After this many committed transactions (records, mostly).
    pub every_records: u64,
    /// Or after this many blocks, whichever comes first.
    pub every_heights: u64,
    /// A validator whose store is empty (a wiped disk, a new validator) starts from a
    /// checkpoint its peers offer (more than a third of the voting power offering the same
    /// one) instead of replaying the chain from the genesis ([`crate::snapshot`]). It then
    /// holds no block before that checkpoint, and refuses questions only those blocks answer.
    pub join_from_snapshot: bool,
}

impl Default for CheckpointPolicy {
    fn default() -> Self {
        Self {
            every_records: crate::checkpoint::CHECKPOINT_EVERY_RECORDS,
            every_heights: crate::checkpoint::CHECKPOINT_EVERY_HEIGHTS,
            join_from_snapshot: false,
        }
    }
}

/// TLS material of a validator.
#[derive(Clone, Debug)]
pub struct TlsPaths {
    /// The consortium CA certificate.
    pub ca: PathBuf,
    /// This validator's certificate.
    pub cert: PathBuf,
    /// Its private key.
    pub key: PathBuf,
}

/// A validated node configuration.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// The validator's name in genesis.
    pub name: String,
    /// Its key (from genesis).
    pub id: ValidatorId,
    /// The chain's genesis.
    pub genesis: Genesis,
    /// The genesis file.
    pub genesis_path: PathBuf,
    /// The validator's Ed25519 key file.
    pub validator_key: PathBuf,
    /// Where the store and the consensus log live.
    pub data_dir: PathBuf,
    /// TLS files.
    pub tls: TlsPaths,
    /// Where peers reach this validator.
    pub listen_peers: SocketAddr,
    /// Where clients reach it.
    pub listen_clients: SocketAddr,
    /// Where Prometheus scrapes its metrics (`GET /metrics`), if anywhere.
    pub listen_metrics: Option<SocketAddr>,
    /// The other validators and their peer addresses.
    pub peers: Vec<(ValidatorId, SocketAddr)>,
    /// When to start the next height.
    pub blocks: BlockPolicy,
    /// When to checkpoint the derived state.
    pub checkpoints: CheckpointPolicy,
}

/// `text` as a socket address: `IP:port`, or `host:port` resolved now (the first address the
/// resolver gives), so operators can name validators by DNS. A name is resolved once, when
/// the configuration is loaded: a node restarts to follow a changed DNS record.
pub fn resolve(text: &str) -> Result<SocketAddr, String> {
    use std::net::ToSocketAddrs;
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let mut addrs = text
        .to_socket_addrs()
        .map_err(|e| format!("{text:?} is not an address (IP:port or host:port): {e}"))?;
    addrs
        .next()
        .ok_or_else(|| format!("{text:?} resolves to no address"))
}

impl NodeConfig {
    /// Loads and validates the file at `path` and the genesis file it names.
    pub fn load(path: &Path) -> Result<Self, NodeConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| NodeConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        let file: File = toml::from_str(&text).map_err(|e| NodeConfigError::Parse {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        let field = |field: &str, reason: String| NodeConfigError::Field {
            path: path.to_path_buf(),
            field: field.to_string(),
            reason,
        };
        let genesis_path = base.join(&file.genesis);
        let genesis_text = std::fs::read_to_string(&genesis_path)
            .map_err(|e| field("genesis", format!("{}: {e}", genesis_path.display())))?;
        let genesis =
            Genesis::from_toml(&genesis_text).map_err(|source| NodeConfigError::Genesis {
                path: genesis_path.clone(),
                source,
            })?;
        let id = genesis.validator_named(&file.name).ok_or_else(|| {
            field(
                "name",
                format!(
                    "no validator named {:?} in {}",
                    file.name,
                    genesis_path.display()
                ),
            )
        })?;
        let address = |name: &str, text: &str| resolve(text).map_err(|e| field(name, e));
        let listen_peers = address("listen.peers", &file.listen.peers)?;
        let listen_clients = address("listen.clients", &file.listen.clients)?;
        if listen_peers == listen_clients {
            return Err(field(
                "listen.clients",
                "must differ from listen.peers".to_string(),
            ));
        }
        let listen_metrics = file
            .listen
            .metrics
            .as_deref()
            .map(|text| address("listen.metrics", text))
            .transpose()?;
        let mut peers = Vec::new();
        for (i, peer) in file.peer.iter().enumerate() {
            let at = |f: &str| format!("peer[{i}].{f}");
            let peer_id = genesis.validator_named(&peer.name).ok_or_else(|| {
                field(
                    &at("name"),
                    format!("no validator named {:?} in genesis", peer.name),
                )
            })?;
            if peer_id == id {
                return Err(field(&at("name"), "is this validator itself".to_string()));
            }
            if peers.iter().any(|(p, _)| *p == peer_id) {
                return Err(field(&at("name"), "listed twice".to_string()));
            }
            peers.push((peer_id, address(&at("address"), &peer.address)?));
        }
        if file.blocks.empty_interval_ms > MAX_EMPTY_BLOCK_INTERVAL_MS {
            return Err(field(
                "blocks.empty_interval_ms",
                format!("at most {MAX_EMPTY_BLOCK_INTERVAL_MS}"),
            ));
        }
        if file.blocks.min_interval_ms > file.blocks.empty_interval_ms {
            return Err(field(
                "blocks.min_interval_ms",
                "must not exceed blocks.empty_interval_ms".to_string(),
            ));
        }
        if file.checkpoints.every_records == 0 {
            return Err(field("checkpoints.every_records", "at least 1".to_string()));
        }
        if file.checkpoints.every_heights == 0 {
            return Err(field("checkpoints.every_heights", "at least 1".to_string()));
        }
        Ok(Self {
            name: file.name,
            id,
            genesis,
            genesis_path,
            validator_key: base.join(file.validator_key),
            data_dir: base.join(file.data_dir),
            tls: TlsPaths {
                ca: base.join(file.tls.ca),
                cert: base.join(file.tls.cert),
                key: base.join(file.tls.key),
            },
            listen_peers,
            listen_clients,
            listen_metrics,
            peers,
            blocks: file.blocks,
            checkpoints: file.checkpoints,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoints_default_and_a_zero_interval_names_its_field() {
        let dir = tempfile::tempdir().expect("temp dir");
        crate::provision::init(&dir.path().join("certs"), 1, "config-test", 0).expect("provision");
        let write = |extra: &str| {
            let path = dir.path().join("node1.toml");
            let text = format!(
                "name = \"node1\"\ngenesis = \"certs/genesis.toml\"\n\
                 validator_key = \"certs/node1/validator.key\"\ndata_dir = \"data\"\n\
                 [tls]\nca = \"certs/ca.pem\"\ncert = \"certs/node1/tls.pem\"\n\
                 key = \"certs/node1/tls.key\"\n\
                 [listen]\npeers = \"127.0.0.1:7101\"\nclients = \"127.0.0.1:7201\"\n{extra}"
            );
            std::fs::write(&path, text).expect("write");
            NodeConfig::load(&path)
        };
        assert_eq!(
            write("").expect("loads").checkpoints,
            CheckpointPolicy::default()
        );
        let set = write("[checkpoints]\nevery_heights = 7\n").expect("loads");
        assert_eq!(set.checkpoints.every_heights, 7);
        for (text, name) in [
            ("every_records = 0", "checkpoints.every_records"),
            ("every_heights = 0", "checkpoints.every_heights"),
        ] {
            match write(&format!("[checkpoints]\n{text}\n")) {
                Err(NodeConfigError::Field { field, .. }) => assert_eq!(field, name),
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    #[test]
    fn addresses_are_ip_port_or_host_port() {
        assert_eq!(
            resolve("127.0.0.1:7101").expect("an IP"),
            "127.0.0.1:7101".parse().expect("literal")
        );
        let named = resolve("localhost:7101").expect("a host name");
        assert!(named.ip().is_loopback(), "{named}");
        assert_eq!(named.port(), 7101);
        for bad in ["localhost", "7101", "no-such-host.invalid:7101"] {
            let error = resolve(bad).expect_err(bad);
            assert!(error.contains(&format!("{bad:?}")), "{error}");
        }
    }
}

//! A whole consortium in one process, for `bmpls bench ingest` and `bmpls demo`: validators
//! provisioned in a folder (fresh CA, keys, certificates, genesis) and started as [`Node`]s on
//! loopback QUIC. Everything is the real thing (TLS, consensus, sled); only the processes are
//! shared.

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use bmpls_crypto::SigningKey;
use bmpls_crypto::keyfile::read_signing_key;
use bmpls_net::Trust;
use bmpls_types::ValidatorId;

use crate::provision::{self, Provisioned};
use crate::{BlockPolicy, Node, NodeConfig, NodeError};

/// A running in-process consortium.
#[derive(Debug)]
pub struct LocalCluster {
    /// The validators, in order (node1…).
    pub nodes: Vec<Node>,
    /// Their provisioning (names, keys, folders).
    pub provisioned: Vec<Provisioned>,
    /// The folder holding certificates, configuration and data.
    pub dir: PathBuf,
}

fn free_port() -> Result<u16, NodeError> {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .map_err(|e| NodeError::Internal(format!("no free port: {e}")))
}

#[cfg(feature = "byzantine")]
type ByzantineHook = crate::byzantine::Tamper;
#[cfg(not(feature = "byzantine"))]
type ByzantineHook = std::convert::Infallible;

impl LocalCluster {
    /// Provisions `n` validators of chain `chain_id` in `dir` (which must not hold a CA yet),
    /// writes their configurations and starts them. Must run inside a tokio runtime.
    pub async fn start(
        dir: &Path,
        n: usize,
        chain_id: &str,
        blocks: BlockPolicy,
    ) -> Result<Self, NodeError> {
        Self::start_with(dir, n, chain_id, blocks, None).await
    }

    /// Test-only: [`LocalCluster::start`] with the validator at `index` byzantine, its
    /// broadcasts rewritten by `tamper` (see [`crate::byzantine`]).
    #[cfg(feature = "byzantine")]
    pub async fn start_byzantine(
        dir: &Path,
        n: usize,
        chain_id: &str,
        blocks: BlockPolicy,
        (index, tamper): (usize, crate::byzantine::Tamper),
    ) -> Result<Self, NodeError> {
        Self::start_with(dir, n, chain_id, blocks, Some((index, tamper))).await
    }

    async fn start_with(
        dir: &Path,
        n: usize,
        chain_id: &str,
        blocks: BlockPolicy,
        byzantine: Option<(usize, ByzantineHook)>,
    ) -> Result<Self, NodeError> {
        let certs = dir.join("certs");
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let provisioned = provision::init(&certs, n, chain_id, now_ms.saturating_sub(60_000))
            .map_err(|e| NodeError::Internal(e.to_string()))?;
        let mut peer_ports = Vec::with_capacity(n);
        for _ in 0..n {
            peer_ports.push(free_port()?);
        }
        let mut nodes = Vec::with_capacity(n);
        for (i, node) in provisioned.iter().enumerate() {
            let mut text = format!(
                "name = \"{name}\"\ngenesis = \"certs/genesis.toml\"\n\
                 validator_key = \"certs/{name}/validator.key\"\ndata_dir = \"data/{name}\"\n\
                 [tls]\nca = \"certs/ca.pem\"\ncert = \"certs/{name}/tls.pem\"\n\
                 key = \"certs/{name}/tls.key\"\n\
                 [listen]\npeers = \"127.0.0.1:{peer}\"\nclients = \"127.0.0.1:{client}\"\n\
                 metrics = \"127.0.0.1:0\"\n\
                 [blocks]\nmin_interval_ms = {min}\nempty_interval_ms = {empty}\n",
                name = node.name,
                peer = peer_ports[i],
                client = free_port()?,
                min = blocks.min_interval_ms,
                empty = blocks.empty_interval_ms,
            );
            for (j, other) in provisioned.iter().enumerate() {
                if j != i {
                    text.push_str(&format!(
                        "[[peer]]\nname = \"{}\"\naddress = \"127.0.0.1:{}\"\n",
                        other.name, peer_ports[j]
                    ));
                }
            }
            let path = dir.join(format!("{}.toml", node.name));
            std::fs::write(&path, text)
                .map_err(|e| NodeError::Internal(format!("{}: {e}", path.display())))?;
            let config = NodeConfig::load(&path)?;
            let node = match &byzantine {
                #[cfg(feature = "byzantine")]
                Some((index, tamper)) if *index == i => {
                    Node::start_byzantine(&config, tamper.clone()).await?
                }
                _ => Node::start(&config).await?,
            };
            nodes.push(node);
        }
        Ok(Self {
            nodes,
            provisioned,
            dir: dir.to_path_buf(),
        })
    }

    /// Where clients reach each validator.
    pub fn client_addrs(&self) -> Vec<SocketAddr> {
        self.nodes.iter().map(Node::client_addr).collect()
    }

    /// What a client trusts: the cluster's CA and its validators.
    pub fn trust(&self) -> Result<Trust, NodeError> {
        let ids: Vec<ValidatorId> = self.provisioned.iter().map(|p| p.id).collect();
        let validators = self.validators()?;
        Ok(Trust::load(
            &self.dir.join("certs/ca.pem"),
            validators.chain_id(),
            &ids,
        )?)
    }

    /// The genesis validators, as a client checks certificates against them.
    pub fn validators(&self) -> Result<bmpls_crypto::ValidatorSet, NodeError> {
        let path = self.dir.join("certs/genesis.toml");
        let text = std::fs::read_to_string(&path)
            .map_err(|e| NodeError::Internal(format!("{}: {e}", path.display())))?;
        let genesis = bmpls_consensus::Genesis::from_toml(&text)
            .map_err(|e| NodeError::Internal(format!("{}: {e}", path.display())))?;
        Ok(genesis.validators.crypto().clone())
    }

    /// The first validator's operator key (enrols patients and carers).
    pub fn operator(&self) -> Result<SigningKey, NodeError> {
        Ok(read_signing_key(
            &self.provisioned[0].dir.join("validator.key"),
        )?)
    }

    /// Shuts every validator down gracefully.
    pub async fn shutdown(self) -> Result<(), NodeError> {
        for node in self.nodes {
            node.shutdown().await?;
        }
        Ok(())
    }
}

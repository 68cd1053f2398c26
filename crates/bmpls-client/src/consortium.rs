//! The consortium a reporter or carer talks to, from what its operators publish: the
//! validators' client addresses, the CA certificate (PEM) that signs their certificates, and the
//! genesis file that names their keys. The command line reads these from files, an app from its
//! bundled assets; both build the same [`Consortium`].

use std::net::SocketAddr;

use bmpls_consensus::Genesis;
use bmpls_crypto::SigningKey;
use bmpls_net::{TlsError, Trust};
use bmpls_types::{ChainId, ValidatorId};

use crate::{NetworkError, Nodes};

/// Why a consortium's description cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConsortiumError {
    /// The genesis file does not parse or validate.
    #[error("the genesis: {0}")]
    Genesis(#[from] bmpls_consensus::ConfigError),
    /// The CA certificate is not PEM of a certificate.
    #[error("the CA certificate: {0}")]
    Ca(#[from] TlsError),
}

/// Where the validators are and how to recognise them.
#[derive(Clone, Debug)]
pub struct Consortium {
    /// Client addresses, `IP:port` or `host:port`, in order of preference.
    nodes: Vec<String>,
    trust: Trust,
}

/// The trust of the CA in `ca_pem` and the validators of `genesis`.
pub fn trust_of(genesis: &Genesis, ca_pem: &str) -> Result<Trust, TlsError> {
    let ids: Vec<ValidatorId> = genesis.names.iter().map(|(_, id)| *id).collect();
    Trust::from_pem(ca_pem, genesis.validators.crypto().chain_id(), &ids)
}

impl Consortium {
    /// The validators at `nodes` (resolved when connecting), recognised by the CA certificate
    /// `ca_pem` and the genesis file's text `genesis_toml`.
    pub fn new(
        nodes: Vec<String>,
        ca_pem: &str,
        genesis_toml: &str,
    ) -> Result<Self, ConsortiumError> {
        let genesis = Genesis::from_toml(genesis_toml)?;
        let trust = trust_of(&genesis, ca_pem)?;
        Ok(Self { nodes, trust })
    }

    /// The chain every transaction is signed for.
    pub fn chain(&self) -> &ChainId {
        self.trust.chain()
    }

    /// The CA and validators, as clients pin them.
    pub fn trust(&self) -> &Trust {
        &self.trust
    }

    /// The addresses given, as given.
    pub fn nodes(&self) -> &[String] {
        &self.nodes
    }

    /// Clients of the validators, signing with `key` (inside a tokio runtime: the QUIC
    /// endpoint needs one). A name is resolved now: offline, a host name fails here.
    pub async fn connect(&self, key: &SigningKey) -> Result<Nodes, NetworkError> {
        Nodes::resolve(&self.nodes, &self.trust, key).await
    }
}

/// A validator's address given as text: `IP:port` as it is, `host:port` through the system's
/// resolver (the first address it gives).
pub async fn resolve(node: &str) -> Result<SocketAddr, NetworkError> {
    if let Ok(addr) = node.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let bad = |reason: String| NetworkError::BadAddress {
        node: node.to_string(),
        reason,
    };
    let mut addrs = tokio::net::lookup_host(node)
        .await
        .map_err(|e| bad(format!("is not an address (IP:port or host:port): {e}")))?;
    addrs
        .next()
        .ok_or_else(|| bad("resolves to no address".to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_ip_address_is_taken_as_it_is_and_a_bad_one_is_named() {
        assert_eq!(
            resolve("127.0.0.1:7201").await.expect("an address"),
            "127.0.0.1:7201".parse::<SocketAddr>().expect("addr")
        );
        match resolve("no port here").await {
            Err(NetworkError::BadAddress { node, .. }) => assert_eq!(node, "no port here"),
            other => panic!("expected BadAddress, got {other:?}"),
        }
    }

    #[test]
    fn a_genesis_that_does_not_parse_is_a_genesis_error() {
        assert!(matches!(
            Consortium::new(vec![], "", "chain_id = 3"),
            Err(ConsortiumError::Genesis(_))
        ));
    }
}

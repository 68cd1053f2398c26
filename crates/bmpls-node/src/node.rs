//! Starting, observing and stopping a validator.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, watch};
use tracing::info;

use bmpls_consensus::Engine;
use bmpls_net::guard::KnownClients;
use bmpls_net::query::CertifiedHeader;
use bmpls_net::{ClientServer, Identity, PeerConfig, Peers, Trust};
use bmpls_store::{FileWal, Store};
use bmpls_types::{Height, ValidatorId};

use crate::NodeError;
use crate::config::NodeConfig;
use crate::driver::{COMMAND_QUEUE, Driver};
use crate::metrics::Metrics;
use crate::service::Service;
use bmpls_crypto::keyfile::read_signing_key;

/// A running validator.
pub struct Node {
    name: String,
    peer_addr: SocketAddr,
    client_addr: SocketAddr,
    metrics: Arc<Metrics>,
    metrics_server: Option<(SocketAddr, tokio::task::JoinHandle<()>)>,
    server: ClientServer,
    shutdown: watch::Sender<bool>,
    driver: tokio::task::JoinHandle<Result<(), NodeError>>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("name", &self.name)
            .field("client_addr", &self.client_addr)
            .finish_non_exhaustive()
    }
}

/// The hook of a byzantine validator (feature `byzantine`); nothing otherwise.
#[cfg(feature = "byzantine")]
type Tamper = crate::byzantine::Tamper;
#[cfg(not(feature = "byzantine"))]
type Tamper = std::convert::Infallible;

impl Node {
    /// Opens the node's disk, rebuilds its state, and starts consensus, peer links and the
    /// client service. Must run inside a tokio runtime.
    pub async fn start(config: &NodeConfig) -> Result<Self, NodeError> {
        Self::start_with(config, None).await
    }

    /// Test-only: [`Node::start`] of a byzantine validator, whose every consensus broadcast
    /// `tamper` rewrites per peer (see [`crate::byzantine`]).
    #[cfg(feature = "byzantine")]
    pub async fn start_byzantine(
        config: &NodeConfig,
        tamper: crate::byzantine::Tamper,
    ) -> Result<Self, NodeError> {
        Self::start_with(config, Some(tamper)).await
    }

    #[cfg_attr(not(feature = "byzantine"), allow(unused_variables, unused_mut))]
    async fn start_with(config: &NodeConfig, tamper: Option<Tamper>) -> Result<Self, NodeError> {
        let key = read_signing_key(&config.validator_key)?;
        if ValidatorId(key.public().0) != config.id {
            return Err(NodeError::WrongKey {
                path: config.validator_key.display().to_string(),
                name: config.name.clone(),
            });
        }
        let identity = Identity::load(&config.tls.cert, &config.tls.key)?;
        let members: Vec<ValidatorId> = config
            .genesis
            .validators
            .crypto()
            .validators()
            .iter()
            .map(|v| v.id)
            .collect();
        let chain_id = config.genesis.validators.crypto().chain_id().clone();
        let trust = Trust::load(&config.tls.ca, &chain_id, &members)?;

        let store = Arc::new(Store::open(&config.data_dir.join("store"), &chain_id)?);
        let wal = FileWal::open(&config.data_dir.join("wal"))?;
        let start_peers = || {
            Peers::start(PeerConfig {
                me: config.id,
                listen: config.listen_peers,
                identity: identity.clone(),
                trust: trust.clone(),
                peers: config.peers.clone(),
            })
        };
        // A validator joining from a snapshot needs its peer links before its state.
        let mut linked = None;
        if config.checkpoints.join_from_snapshot
            && store.tip()?.0 == Height(0)
            && store.base()?.is_none()
        {
            let (peers, mut inbound) = start_peers()?;
            crate::snapshot::join(
                (&config.genesis, config.id),
                &store,
                &peers,
                &mut inbound,
                crate::snapshot::JOIN_WAIT,
            )
            .await?;
            linked = Some((peers, inbound));
        }
        let started = std::time::Instant::now();
        let rebuilt = crate::checkpoint::rebuild(&config.genesis, &store, true)?;
        info!(
            checkpoint = rebuilt.checkpoint.map_or(0, |h| h.0),
            replayed = rebuilt.replayed,
            ms = started.elapsed().as_millis() as u64,
            "state rebuilt"
        );
        let (ledger, alerts) = (rebuilt.ledger, rebuilt.alerts);
        let resumed = ledger.height().0;
        // Watch answers carry the certified header of the last block the alerts have seen.
        let tip = match resumed {
            0 => None,
            h => match (store.header(Height(h))?, store.certificate(Height(h))?) {
                (Some(header), Some(cert)) => Some(CertifiedHeader { header, cert }),
                _ => {
                    return Err(NodeError::Internal(format!(
                        "the store lacks the header or certificate of its tip {h}"
                    )));
                }
            },
        };
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        // The key also signs the audit entries of the queries this node answers.
        let auditor = bmpls_crypto::SigningKey::from_seed(&key.to_seed());
        // The request guard limits enrolled keys apart from strangers; the driver adds keys as
        // enrolments commit.
        let known = KnownClients::new();
        known.extend(ledger.client_keys());
        let (engine, initial) = Engine::start(config.genesis.clone(), key, ledger, wal, now_ms)?;
        let (peers, inbound) = match linked {
            Some(linked) => linked,
            None => start_peers()?,
        };
        let peer_addr = peers
            .local_addr()
            .map_err(|e| NodeError::Internal(e.to_string()))?;
        let (commands, command_rx) = mpsc::channel(COMMAND_QUEUE);
        let server = ClientServer::start(
            config.listen_clients,
            &identity,
            (chain_id.clone(), config.id),
            Arc::new(Service { commands }),
            known.clone(),
        )?;
        let client_addr = server
            .local_addr()
            .map_err(|e| NodeError::Internal(e.to_string()))?;
        let metrics = Arc::new(Metrics::default());
        metrics.set_client_address(client_addr);
        let metrics_server =
            match config.listen_metrics {
                Some(addr) => Some(crate::metrics::serve(addr, metrics.clone()).await.map_err(
                    |source| NodeError::Net(bmpls_net::NetError::Bind { addr, source }),
                )?),
                None => None,
            };
        let (shutdown, shutdown_rx) = watch::channel(false);
        let mut driver = Driver::new(
            engine,
            auditor,
            (alerts, tip),
            store,
            peers,
            (config.blocks, config.checkpoints),
            metrics.clone(),
            known,
        );
        #[cfg(feature = "byzantine")]
        {
            let peers = config.peers.iter().map(|(id, _)| *id).collect();
            driver.tamper = tamper.map(|t| (t, peers));
        }
        let driver = tokio::spawn(driver.run(initial, inbound, command_rx, shutdown_rx));
        info!(
            name = %config.name,
            height = resumed,
            peers = %peer_addr,
            clients = %client_addr,
            "validator started"
        );
        Ok(Self {
            name: config.name.clone(),
            peer_addr,
            client_addr,
            metrics,
            metrics_server,
            server,
            shutdown,
            driver,
        })
    }

    /// Where peers reach this node.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer_addr
    }

    /// Where clients reach this node.
    pub fn client_addr(&self) -> SocketAddr {
        self.client_addr
    }

    /// Where the metrics are served, if they are.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_server.as_ref().map(|(addr, _)| *addr)
    }

    /// The Prometheus metrics (also served on `listen.metrics` if configured).
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Whether the core task has stopped (after a fatal error).
    pub fn is_finished(&self) -> bool {
        self.driver.is_finished()
    }

    /// Stops serving clients, answers pending submissions, closes peer links; returns the
    /// core task's result (an error if it had failed).
    pub async fn shutdown(self) -> Result<(), NodeError> {
        if let Some((_, task)) = &self.metrics_server {
            task.abort();
        }
        self.server.close().await;
        let _ = self.shutdown.send(true);
        let result = self
            .driver
            .await
            .map_err(|e| NodeError::Internal(format!("core task: {e}")))?;
        info!(name = %self.name, "validator stopped");
        result
    }

    /// Runs until the core task stops by itself (a fatal error) or `stop` resolves.
    pub async fn run_until(
        mut self,
        stop: impl std::future::Future<Output = ()>,
    ) -> Result<(), NodeError> {
        tokio::select! {
            () = stop => self.shutdown().await,
            result = &mut self.driver => {
                self.server.close().await;
                result.map_err(|e| NodeError::Internal(format!("core task: {e}")))?
            }
        }
    }
}

/// Runs the validator of `config` until SIGTERM or Ctrl-C, then shuts down gracefully.
pub async fn run_until_signal(config: &NodeConfig) -> Result<(), NodeError> {
    let node = Node::start(config).await?;
    node.run_until(async {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            match signal(SignalKind::terminate()) {
                Ok(mut term) => {
                    tokio::select! {
                        _ = term.recv() => {}
                        _ = tokio::signal::ctrl_c() => {}
                    }
                }
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        info!("signal received; shutting down");
    })
    .await
}

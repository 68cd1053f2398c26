//! A validator's links to the other validators.
//!
//! Each validator listens for its peers and dials each of them; a message to a peer goes on the
//! dialled connection, one unidirectional stream per message, and arrives through the peer's
//! listener. Both directions are mutual TLS against the consortium CA and the genesis set, so a
//! message is attributed to the validator its certificate names. Messages are opaque bytes
//! here; the node encodes and decodes them. When a peer is unreachable its queue fills and new
//! messages are dropped: consensus re-sends what matters.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use bmpls_types::ValidatorId;

use crate::NetError;
use crate::frame::{read_frame, write_frame};
use crate::limits::{
    BACKOFF_MAX, BACKOFF_MIN, CLOSE_WAIT, CONNECT_TIMEOUT, INBOUND_QUEUE, MAX_PEER_FRAME_BYTES,
    PEER_QUEUE,
};
use crate::tls::{self, Identity, Trust, peer_member, validator_dns_name};

/// How a validator reaches the others.
#[derive(Clone, Debug)]
pub struct PeerConfig {
    /// This validator.
    pub me: ValidatorId,
    /// Where to listen for peers.
    pub listen: SocketAddr,
    /// This validator's TLS certificate and key.
    pub identity: Identity,
    /// The CA and the genesis set.
    pub trust: Trust,
    /// The other validators and where to dial them.
    pub peers: Vec<(ValidatorId, SocketAddr)>,
}

/// A message from a peer.
#[derive(Debug)]
pub struct Inbound {
    /// The validator whose certificate the connection presented.
    pub from: ValidatorId,
    /// The frame.
    pub bytes: Vec<u8>,
}

/// Counters of the peer links (for metrics and tests).
#[derive(Debug, Default)]
pub struct PeerStats {
    /// Messages dropped because a peer's queue was full.
    pub dropped: AtomicU64,
    /// Connections refused or closed because of a bad peer (failed handshake, bad frame).
    pub refused: AtomicU64,
}

/// The running links. Dropping it closes them.
pub struct Peers {
    endpoint: quinn::Endpoint,
    sender: PeerSender,
    tasks: JoinSet<()>,
}

impl std::fmt::Debug for Peers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peers")
            .field("peers", &self.sender.queues.len())
            .finish_non_exhaustive()
    }
}

/// One peer's send queue and the bytes waiting in it.
#[derive(Debug)]
struct Queue {
    tx: mpsc::Sender<Arc<[u8]>>,
    queued_bytes: Arc<AtomicUsize>,
}

/// Queues messages for the peers; cheap to clone, so that work off the core task (a sync
/// answer read from the store) sends without it.
#[derive(Clone, Debug)]
pub struct PeerSender {
    queues: Arc<HashMap<ValidatorId, Queue>>,
    stats: Arc<PeerStats>,
}

impl PeerSender {
    /// Queues `bytes` for `to`; false if `to` is unknown or its queue is full (dropped).
    pub fn send(&self, to: &ValidatorId, bytes: Arc<[u8]>) -> bool {
        let Some(queue) = self.queues.get(to) else {
            return false;
        };
        let len = bytes.len();
        queue.queued_bytes.fetch_add(len, Ordering::Relaxed);
        let sent = queue.tx.try_send(bytes).is_ok();
        if !sent {
            queue.queued_bytes.fetch_sub(len, Ordering::Relaxed);
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
        }
        sent
    }

    /// Bytes queued for `to` and not yet taken by its link (0 for an unknown peer).
    pub fn queued_bytes(&self, to: &ValidatorId) -> usize {
        self.queues
            .get(to)
            .map_or(0, |q| q.queued_bytes.load(Ordering::Relaxed))
    }
}

impl Peers {
    /// Listens and starts dialling every peer. Messages received arrive on the returned
    /// channel.
    pub fn start(config: PeerConfig) -> Result<(Self, mpsc::Receiver<Inbound>), NetError> {
        let server = tls::peer_server(&config.identity, &config.trust)?;
        let endpoint = crate::udp::endpoint(
            config.listen,
            Some(server),
            Some(config.identity.reset_key("peers")),
        )
        .map_err(|source| NetError::Bind {
            addr: config.listen,
            source,
        })?;
        let (inbound_tx, inbound_rx) = mpsc::channel(INBOUND_QUEUE);
        let stats = Arc::new(PeerStats::default());
        let mut tasks = JoinSet::new();
        tasks.spawn(listen(
            endpoint.clone(),
            config.trust.clone(),
            config.me,
            inbound_tx,
            stats.clone(),
        ));
        let mut queues = HashMap::new();
        for (peer, addr) in &config.peers {
            if *peer == config.me {
                continue;
            }
            let client = tls::peer_client(&config.identity, &config.trust, peer)?;
            let (tx, rx) = mpsc::channel(PEER_QUEUE);
            let queued_bytes = Arc::new(AtomicUsize::new(0));
            tasks.spawn(dial(
                endpoint.clone(),
                client,
                *peer,
                *addr,
                (rx, queued_bytes.clone()),
            ));
            queues.insert(*peer, Queue { tx, queued_bytes });
        }
        Ok((
            Self {
                endpoint,
                sender: PeerSender {
                    queues: Arc::new(queues),
                    stats,
                },
                tasks,
            },
            inbound_rx,
        ))
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.endpoint.local_addr()
    }

    /// Counters.
    pub fn stats(&self) -> &PeerStats {
        &self.sender.stats
    }

    /// Queues `bytes` for `to`; false if `to` is unknown or its queue is full (dropped).
    pub fn send(&self, to: &ValidatorId, bytes: Arc<[u8]>) -> bool {
        self.sender.send(to, bytes)
    }

    /// A handle that queues messages from another task.
    pub fn sender(&self) -> PeerSender {
        self.sender.clone()
    }

    /// Queues `bytes` for every peer.
    pub fn broadcast(&self, bytes: Arc<[u8]>) {
        for to in self.sender.queues.keys() {
            self.sender.send(to, bytes.clone());
        }
    }

    /// Closes every link and waits for the endpoint to finish.
    pub async fn close(mut self) {
        self.endpoint.close(0u32.into(), b"shutdown");
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
        // Close frames go out at once; waiting out the whole drain period (3 PTO) gains nothing.
        let _ = tokio::time::timeout(CLOSE_WAIT, self.endpoint.wait_idle()).await;
    }
}

async fn listen(
    endpoint: quinn::Endpoint,
    trust: Trust,
    me: ValidatorId,
    inbound: mpsc::Sender<Inbound>,
    stats: Arc<PeerStats>,
) {
    let mut connections = JoinSet::new();
    while let Some(incoming) = endpoint.accept().await {
        let trust = trust.clone();
        let inbound = inbound.clone();
        let stats = stats.clone();
        connections.spawn(async move {
            let connection = match incoming.await {
                Ok(c) => c,
                Err(e) => {
                    stats.refused.fetch_add(1, Ordering::Relaxed);
                    warn!(error = %e, "peer handshake failed");
                    return;
                }
            };
            let Some(from) = peer_member(&connection, &trust).filter(|v| *v != me) else {
                stats.refused.fetch_add(1, Ordering::Relaxed);
                connection.close(1u32.into(), b"not a validator of this chain");
                return;
            };
            debug!(peer = %from, "peer connected");
            receive(connection, from, inbound, stats).await;
        });
        // Reap finished connection tasks so the set stays small.
        while connections.try_join_next().is_some() {}
    }
}

async fn receive(
    connection: quinn::Connection,
    from: ValidatorId,
    inbound: mpsc::Sender<Inbound>,
    stats: Arc<PeerStats>,
) {
    loop {
        let mut stream = match connection.accept_uni().await {
            Ok(s) => s,
            Err(e) => {
                debug!(peer = %from, error = %e, "peer connection ended");
                return;
            }
        };
        match read_frame(&mut stream, MAX_PEER_FRAME_BYTES).await {
            Ok(bytes) => {
                if inbound.send(Inbound { from, bytes }).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                stats.refused.fetch_add(1, Ordering::Relaxed);
                warn!(peer = %from, error = %e, "bad frame from peer");
                let _ = stream.stop(2u32.into());
            }
        }
    }
}

async fn dial(
    endpoint: quinn::Endpoint,
    client: quinn::ClientConfig,
    peer: ValidatorId,
    addr: SocketAddr,
    (mut queue, queued_bytes): (mpsc::Receiver<Arc<[u8]>>, Arc<AtomicUsize>),
) {
    let take = |bytes: &Arc<[u8]>| queued_bytes.fetch_sub(bytes.len(), Ordering::Relaxed);
    let name = validator_dns_name(&peer);
    let mut backoff = BACKOFF_MIN;
    loop {
        let connection = match endpoint.connect_with(client.clone(), addr, &name) {
            Ok(connecting) => tokio::time::timeout(CONNECT_TIMEOUT, connecting)
                .await
                .unwrap_or(Err(quinn::ConnectionError::TimedOut)),
            Err(e) => {
                warn!(peer = %peer, error = %e, "cannot dial peer");
                return;
            }
        };
        let connection = match connection {
            Ok(c) => {
                info!(peer = %peer, %addr, "connected to peer");
                backoff = BACKOFF_MIN;
                c
            }
            Err(e) => {
                debug!(peer = %peer, error = %e, "dial failed; retrying");
                // Messages queued while the peer is away are stale by the time it is back;
                // consensus re-sends what is still needed.
                while let Ok(bytes) = queue.try_recv() {
                    take(&bytes);
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
                continue;
            }
        };
        loop {
            let bytes = tokio::select! {
                message = queue.recv() => match message {
                    Some(bytes) => {
                        take(&bytes);
                        bytes
                    }
                    None => return,
                },
                _ = connection.closed() => break,
            };
            let sent = async {
                let mut stream = connection.open_uni().await.ok()?;
                write_frame(&mut stream, &bytes).await.ok()?;
                stream.finish().ok()
            }
            .await;
            if sent.is_none() {
                break;
            }
        }
        debug!(peer = %peer, "peer connection lost; redialling");
    }
}

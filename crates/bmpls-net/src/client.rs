//! A client of the validators (a reporter's phone, a carer's tool): dials a node with the CA
//! pinned, signs every request, and redials with backoff when the connection is lost.

use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use rand::RngCore;
use tokio::sync::Mutex;

use bmpls_crypto::SigningKey;
use bmpls_types::{Canonical, DecodeError, SignatureBytes, ValidatorId};

use crate::frame::{FrameError, read_frame, write_frame};
use crate::limits::{
    BACKOFF_MAX, BACKOFF_MIN, CLOSE_WAIT, CONNECT_TIMEOUT, MAX_RESPONSE_BYTES, REQUEST_TIMEOUT,
};
use crate::proto::{Envelope, Request, Response};
use crate::tls::{self, CLIENT_SERVER_NAME, TlsError, Trust};

/// A request that got no answer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// TLS material could not be used.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// No connection could be made (the node is down, is not a validator of the CA, or the
    /// address is another port of a validator: see [`diagnose`]).
    #[error("cannot connect to {addr}: {reason}")]
    Connect {
        /// The node.
        addr: SocketAddr,
        /// The last failure.
        reason: String,
    },
    /// The stream failed mid-request.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// The node's answer does not decode.
    #[error("bad answer: {0}")]
    Decode(#[from] DecodeError),
    /// No answer within the request timeout.
    #[error("no answer within {0:?}")]
    Timeout(std::time::Duration),
}

/// What a client's connections carried, QUIC and TLS included: UDP payloads, so the IP and UDP
/// headers (28 bytes a datagram over IPv4, 48 over IPv6) come on top for what a radio sends.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WireStats {
    /// Connections opened (handshakes completed).
    pub connections: u64,
    /// Bytes sent in UDP datagrams.
    pub sent_bytes: u64,
    /// Datagrams sent.
    pub sent_datagrams: u64,
    /// Bytes received in UDP datagrams.
    pub received_bytes: u64,
    /// Datagrams received: each one wakes a sleeping radio and CPU.
    pub received_datagrams: u64,
}

impl WireStats {
    fn of(connection: &quinn::Connection) -> Self {
        let stats = connection.stats();
        Self {
            connections: 1,
            sent_bytes: stats.udp_tx.bytes,
            sent_datagrams: stats.udp_tx.datagrams,
            received_bytes: stats.udp_rx.bytes,
            received_datagrams: stats.udp_rx.datagrams,
        }
    }
}

impl std::ops::Add for WireStats {
    type Output = Self;

    fn add(self, other: Self) -> Self {
        Self {
            connections: self.connections + other.connections,
            sent_bytes: self.sent_bytes + other.sent_bytes,
            sent_datagrams: self.sent_datagrams + other.sent_datagrams,
            received_bytes: self.received_bytes + other.received_bytes,
            received_datagrams: self.received_datagrams + other.received_datagrams,
        }
    }
}

impl std::ops::Sub for WireStats {
    type Output = Self;

    fn sub(self, other: Self) -> Self {
        Self {
            connections: self.connections.saturating_sub(other.connections),
            sent_bytes: self.sent_bytes.saturating_sub(other.sent_bytes),
            sent_datagrams: self.sent_datagrams.saturating_sub(other.sent_datagrams),
            received_bytes: self.received_bytes.saturating_sub(other.received_bytes),
            received_datagrams: self
                .received_datagrams
                .saturating_sub(other.received_datagrams),
        }
    }
}

/// A connection to one node, re-established as needed.
pub struct Client {
    endpoint: quinn::Endpoint,
    config: quinn::ClientConfig,
    trust: Trust,
    addr: SocketAddr,
    key: SigningKey,
    /// The open connection and the validator its certificate names.
    connection: Mutex<Option<(quinn::Connection, ValidatorId)>>,
    /// What the connections no longer open carried.
    carried: std::sync::Mutex<WireStats>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client of the node at `addr`, trusting `trust`, signing with `key`. Does not dial yet.
    /// Must be called inside a tokio runtime (the QUIC endpoint's socket needs one).
    pub fn new(addr: SocketAddr, trust: &Trust, key: SigningKey) -> Result<Self, ClientError> {
        let config = tls::client(trust)?;
        let bind: SocketAddr = if addr.is_ipv6() {
            "[::]:0".parse().expect("literal address")
        } else {
            "0.0.0.0:0".parse().expect("literal address")
        };
        let endpoint =
            crate::udp::endpoint(bind, None, None).map_err(|e| ClientError::Connect {
                addr,
                reason: e.to_string(),
            })?;
        Ok(Self {
            endpoint,
            config,
            trust: trust.clone(),
            addr,
            key,
            connection: Mutex::new(None),
            carried: std::sync::Mutex::new(WireStats::default()),
        })
    }

    /// Moves this client to a fresh UDP socket on the same local interface (a new port), as a
    /// phone's switch from Wi-Fi to cellular gives it a new address. An open connection
    /// migrates (the node validates the new path) and requests in flight on it go on; nothing
    /// is dialled again. Returns the new local address.
    pub fn rebind(&self) -> Result<SocketAddr, ClientError> {
        let failed = |e: std::io::Error| ClientError::Connect {
            addr: self.addr,
            reason: format!("rebinding the local socket: {e}"),
        };
        let mut local = self.endpoint.local_addr().map_err(failed)?;
        local.set_port(0);
        crate::udp::rebind(&self.endpoint, local).map_err(failed)
    }

    /// The node this client talks to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Signs and sends `request`, and returns the node's answer. The envelope names the chain
    /// and the validator at the other end of the connection, so it is good for that node only.
    pub async fn call(&self, request: Request) -> Result<Response, ClientError> {
        let (connection, node) = self.connection(DIALS).await?;
        let mut envelope = Envelope {
            client: self.key.public(),
            chain: self.trust.chain().clone(),
            node,
            nonce: {
                let mut nonce = [0u8; 16];
                rand::thread_rng().fill_bytes(&mut nonce);
                nonce
            },
            sent_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
            request,
            sig: SignatureBytes::UNSIGNED,
        };
        self.key.sign(&mut envelope, self.trust.chain());
        self.exchange(connection, &envelope.encode()).await
    }

    /// Sends `bytes` as one request frame as they are (tests send garbage through this).
    pub async fn call_raw(&self, bytes: &[u8]) -> Result<Response, ClientError> {
        let (connection, _) = self.connection(DIALS).await?;
        self.exchange(connection, bytes).await
    }

    /// The validator this client is connected to (dialling it if need be).
    pub async fn node(&self) -> Result<ValidatorId, ClientError> {
        Ok(self.connection(DIALS).await?.1)
    }

    /// Opens a connection unless one is open, dialling once: at most [`CONNECT_TIMEOUT`]. A
    /// failure says why, and names the port when it is a validator's peer or metrics port.
    pub async fn dial(&self) -> Result<ValidatorId, ClientError> {
        Ok(self.connection(1).await?.1)
    }

    /// Whether a connection is open (a call would not dial).
    pub async fn is_connected(&self) -> bool {
        self.connection
            .lock()
            .await
            .as_ref()
            .is_some_and(|(c, _)| c.close_reason().is_none())
    }

    async fn exchange(
        &self,
        connection: quinn::Connection,
        bytes: &[u8],
    ) -> Result<Response, ClientError> {
        let exchange = async {
            let (mut send, mut recv) = connection
                .open_bi()
                .await
                .map_err(|e| FrameError::Stream(e.to_string()))?;
            // Write and read at once: a node may answer (a refusal) before reading it all.
            let write = async {
                write_frame(&mut send, bytes).await?;
                let _ = send.finish();
                Ok::<_, FrameError>(())
            };
            let (written, answer) = tokio::join!(write, read_frame(&mut recv, MAX_RESPONSE_BYTES));
            let answer = match (written, answer) {
                (_, Ok(answer)) => answer,
                (Err(e), Err(_)) | (Ok(()), Err(e)) => return Err(e.into()),
            };
            Ok::<_, ClientError>(Response::decode(&answer)?)
        };
        match tokio::time::timeout(REQUEST_TIMEOUT, exchange).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(e)) => {
                self.forget(&connection).await;
                // A validator's peer port lets the client's handshake end and then refuses
                // the connection for want of a validator certificate, on the first stream.
                match e {
                    ClientError::Frame(e) if e.to_string().contains(CERTIFICATE_REQUIRED) => {
                        Err(ClientError::Connect {
                            addr: self.addr,
                            reason: diagnose(self.addr, e.to_string()).await,
                        })
                    }
                    e => Err(e),
                }
            }
            Err(_) => Err(ClientError::Timeout(REQUEST_TIMEOUT)),
        }
    }

    /// Closes the connection.
    pub async fn close(&self) {
        let closed = self.connection.lock().await.take();
        if let Some((c, _)) = &closed {
            c.close(0u32.into(), b"bye");
        }
        // Close frames go out at once; waiting out the whole drain period (3 PTO) gains nothing.
        let _ = tokio::time::timeout(CLOSE_WAIT, self.endpoint.wait_idle()).await;
        if let Some((c, _)) = closed {
            self.count(&c);
        }
    }

    /// Everything this client's connections carried so far, the open one included (a closed
    /// one with its close: [`Client::close`] counts it after the close went out).
    pub async fn wire(&self) -> WireStats {
        let open = self
            .connection
            .lock()
            .await
            .as_ref()
            .map(|(c, _)| WireStats::of(c))
            .unwrap_or_default();
        self.carried() + open
    }

    fn carried(&self) -> WireStats {
        *self
            .carried
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds a connection that left the slot to what was carried.
    fn count(&self, gone: &quinn::Connection) {
        let mut carried = self
            .carried
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *carried = *carried + WireStats::of(gone);
    }

    async fn forget(&self, broken: &quinn::Connection) {
        let mut slot = self.connection.lock().await;
        if slot
            .as_ref()
            .is_some_and(|(c, _)| c.stable_id() == broken.stable_id())
        {
            if let Some((gone, _)) = slot.take() {
                self.count(&gone);
            }
        }
    }

    /// The open connection, or a new one after up to `attempts` dials with backoff.
    async fn connection(
        &self,
        attempts: u32,
    ) -> Result<(quinn::Connection, ValidatorId), ClientError> {
        let mut slot = self.connection.lock().await;
        if let Some(open) = slot.as_ref().filter(|(c, _)| c.close_reason().is_none()) {
            return Ok(open.clone());
        }
        if let Some((gone, _)) = slot.take() {
            self.count(&gone);
        }
        let mut backoff = BACKOFF_MIN;
        let mut last = String::new();
        let attempts = attempts.max(1);
        for attempt in 0..attempts {
            if attempt > 0 {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
            let connecting = self
                .endpoint
                .connect_with(self.config.clone(), self.addr, CLIENT_SERVER_NAME)
                .map_err(|e| ClientError::Connect {
                    addr: self.addr,
                    reason: e.to_string(),
                })?;
            match tokio::time::timeout(CONNECT_TIMEOUT, connecting).await {
                Err(_) => last = format!("no handshake within {CONNECT_TIMEOUT:?}"),
                Ok(Err(e)) => last = e.to_string(),
                Ok(Ok(c)) => {
                    // The handshake checked that the certificate names a genesis validator.
                    let Some(node) = tls::peer_member(&c, &self.trust) else {
                        last = "the certificate names no genesis validator".into();
                        continue;
                    };
                    *slot = Some((c.clone(), node));
                    return Ok((c, node));
                }
            }
        }
        let mut reason = diagnose(self.addr, last).await;
        if attempts > 1 {
            reason.push_str(&format!(" ({attempts} dials)"));
        }
        Err(ClientError::Connect {
            addr: self.addr,
            reason,
        })
    }
}

/// How often [`Client::call`] dials a node before giving up (with backoff between dials), so
/// that a node restarting under a long-lived client is reached again.
const DIALS: u32 = 3;

/// The TLS alert `certificate_required` (RFC 8446), as quinn names a handshake it ended: what
/// a validator's peer port answers a client that brings no validator certificate.
const CERTIFICATE_REQUIRED: &str = "error 116";

/// The metric a validator's metrics endpoint names its client address in
/// (`bmpls_client_address_info{address="…"} 1`).
pub const CLIENT_ADDRESS_METRIC: &str = "bmpls_client_address_info";

/// Largest metrics page the probe of [`diagnose`] reads.
const MAX_PROBE_BYTES: usize = 256 * 1024;

/// `reason` (why a dial to `addr` failed), with what the address is when it is a validator's
/// other port: users paste the peer port (it is first in the configuration) or the metrics
/// port, and QUIC then only says that the handshake failed or timed out.
pub async fn diagnose(addr: SocketAddr, reason: String) -> String {
    if reason.contains(CERTIFICATE_REQUIRED) {
        return format!(
            "{reason}: this is the peer port of a validator (it asks for a validator's certificate); \
             the client port is the `clients` address in the [listen] section of its configuration"
        );
    }
    match probe_metrics(addr).await {
        Some(Some(clients)) => format!(
            "{reason}: this is the metrics port of a validator; the client port is {clients}"
        ),
        Some(None) => format!(
            "{reason}: this is the metrics port of a validator; the client port is the `clients` \
             address in the [listen] section of its configuration"
        ),
        None => reason,
    }
}

/// Asks `addr` over TCP for `GET /metrics`: `None` if it does not answer as a bmpls validator's
/// metrics endpoint, else the client address it names (if any). Bounded in time and size.
async fn probe_metrics(addr: SocketAddr) -> Option<Option<String>> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let probe = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
        stream
            .write_all(b"GET /metrics HTTP/1.0\r\n\r\n")
            .await
            .ok()?;
        let mut page = Vec::new();
        let _ = (&mut stream)
            .take(MAX_PROBE_BYTES as u64)
            .read_to_end(&mut page)
            .await;
        Some(page)
    };
    let page = tokio::time::timeout(PROBE_TIMEOUT, probe).await.ok()??;
    let page = String::from_utf8_lossy(&page);
    if !page.starts_with("HTTP/") || !page.contains("bmpls_") {
        return None;
    }
    let clients = page.lines().find_map(|line| {
        let rest = line.strip_prefix(CLIENT_ADDRESS_METRIC)?;
        let rest = rest.strip_prefix("{address=\"")?;
        let end = rest.find('"')?;
        rest[..end]
            .parse::<SocketAddr>()
            .ok()
            .map(|a| a.to_string())
    });
    Some(clients)
}

/// How long the probe of a metrics port may take (the dial has already failed).
const PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

//! The node's listener for clients: one request per bidirectional stream. Each request is read
//! within [`MAX_REQUEST_BYTES`], decoded, and admitted by the [`Guard`] before the [`Handler`]
//! sees it; whatever goes wrong, the client gets a typed [`RequestError`] on that stream and
//! the connection keeps serving.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::task::JoinSet;
use tracing::debug;

use bmpls_types::{Canonical, ChainId, PublicKeyBytes, ValidatorId};

use crate::NetError;
use crate::frame::{FrameError, read_frame, write_frame};
use crate::guard::{Guard, KnownClients};
use crate::limits::{CLOSE_WAIT, MAX_REQUEST_BYTES};
use crate::proto::{Envelope, Request, RequestError, Response, reason};
use crate::tls::{self, Identity};

/// What serves admitted requests (the node).
pub trait Handler: Send + Sync + 'static {
    /// Answers `request`, signed by `client`.
    fn handle(
        &self,
        client: PublicKeyBytes,
        request: Request,
    ) -> impl Future<Output = Response> + Send;
}

/// Whom requests must name: this chain and this validator.
struct Addressee {
    chain: ChainId,
    node: ValidatorId,
}

/// The running listener. Dropping it stops accepting.
pub struct ClientServer {
    endpoint: quinn::Endpoint,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for ClientServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientServer").finish_non_exhaustive()
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl ClientServer {
    /// Listens on `listen` with `identity` and serves requests with `handler`: requests that
    /// name `chain` and this validator, `node`. The keys in `known` are limited as enrolled
    /// clients, every other key harder (see [`crate::guard`]).
    pub fn start<H: Handler>(
        listen: SocketAddr,
        identity: &Identity,
        (chain, node): (ChainId, ValidatorId),
        handler: Arc<H>,
        known: KnownClients,
    ) -> Result<Self, NetError> {
        let config = tls::client_server(identity)?;
        let endpoint =
            crate::udp::endpoint(listen, Some(config), Some(identity.reset_key("clients")))
                .map_err(|source| NetError::Bind {
                    addr: listen,
                    source,
                })?;
        let guard = Arc::new(Guard::with_known(known));
        let addressee = Arc::new(Addressee { chain, node });
        let task = tokio::spawn(accept(endpoint.clone(), handler, guard, addressee));
        Ok(Self { endpoint, task })
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.endpoint.local_addr()
    }

    /// Stops accepting, tells connected clients, and waits for the endpoint to finish.
    pub async fn close(self) {
        self.endpoint.close(0u32.into(), b"shutdown");
        self.task.abort();
        let _ = self.task.await;
        // Close frames go out at once; waiting out the whole drain period (3 PTO) gains nothing.
        let _ = tokio::time::timeout(CLOSE_WAIT, self.endpoint.wait_idle()).await;
    }
}

async fn accept<H: Handler>(
    endpoint: quinn::Endpoint,
    handler: Arc<H>,
    guard: Arc<Guard>,
    addressee: Arc<Addressee>,
) {
    let mut connections = JoinSet::new();
    while let Some(incoming) = endpoint.accept().await {
        let handler = handler.clone();
        let guard = guard.clone();
        let addressee = addressee.clone();
        connections.spawn(async move {
            let Ok(connection) = incoming.await else {
                return;
            };
            let mut streams = JoinSet::new();
            while let Ok((send, recv)) = connection.accept_bi().await {
                streams.spawn(serve(
                    send,
                    recv,
                    handler.clone(),
                    guard.clone(),
                    addressee.clone(),
                ));
                while streams.try_join_next().is_some() {}
            }
        });
        while connections.try_join_next().is_some() {}
    }
}

async fn serve<H: Handler>(
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
    handler: Arc<H>,
    guard: Arc<Guard>,
    addressee: Arc<Addressee>,
) {
    let response = match admit(&mut recv, &guard, &addressee).await {
        Ok(envelope) => handler.handle(envelope.client, envelope.request).await,
        Err(None) => return,
        Err(Some(error)) => {
            debug!(%error, "request refused");
            Response::Error(error)
        }
    };
    if write_frame(&mut send, &response.encode()).await.is_ok() {
        let _ = send.finish();
        // Wait until the client has the answer (or leaves) before dropping the stream.
        let _ = send.stopped().await;
    }
}

/// The admitted envelope; `Err(None)` when the stream failed and there is nobody to answer.
async fn admit(
    recv: &mut quinn::RecvStream,
    guard: &Guard,
    addressee: &Addressee,
) -> Result<Envelope, Option<RequestError>> {
    let bytes = match read_frame(recv, MAX_REQUEST_BYTES).await {
        Ok(bytes) => bytes,
        Err(FrameError::TooLarge { len, max }) => {
            return Err(Some(RequestError::TooLarge {
                len: len as u64,
                max: max as u64,
            }));
        }
        Err(FrameError::Truncated) => {
            return Err(Some(RequestError::Malformed(reason("truncated frame"))));
        }
        Err(FrameError::Stream(_)) => return Err(None),
    };
    let envelope =
        Envelope::decode(&bytes).map_err(|e| Some(RequestError::Malformed(reason(e))))?;
    if envelope.chain != addressee.chain || envelope.node != addressee.node {
        return Err(Some(RequestError::Misaddressed));
    }
    guard.admit(&envelope, now_ms()).map_err(Some)?;
    Ok(envelope)
}

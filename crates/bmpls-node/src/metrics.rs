//! Prometheus metrics of a validator, served at `GET /metrics` on `listen.metrics` (text
//! exposition format): commits and their latency, mempool depth, refused submissions by reason,
//! queries by kind and outcome, alerts and their delivery latency, undecodable peer messages,
//! sync blocks served and sync requests dropped, watch requests refused for full watchers. No label ever carries a
//! patient, carer, key or place.
//!
//! The endpoint is one fixed route answered with one HTTP/1.0 response and the connection
//! closed, which a few lines of tokio do; an HTTP stack would be most of the node's dependency
//! tree for it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tracing::debug;

/// Longest a scrape request may take to arrive.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest request head read.
const MAX_REQUEST_BYTES: usize = 8 * 1024;

/// A label with one value.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Reason {
    /// Why (a refusal code).
    pub reason: String,
}

/// Labels of a query.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueryLabels {
    /// last, track or within.
    pub kind: String,
    /// answered or refused.
    pub outcome: String,
}

/// The label of the client address metric.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Address {
    /// `IP:port`.
    pub address: String,
}

/// The node's metrics.
pub struct Metrics {
    registry: Registry,
    /// Blocks committed and flushed here.
    pub commits: Counter,
    /// Transactions committed.
    pub committed_txs: Counter,
    /// From a block's proposal time to its flush here, seconds; blocks this validator decided
    /// in its own rounds only (not catch-up).
    pub commit_latency: Histogram,
    /// Transactions waiting in the mempool.
    pub mempool: Gauge,
    /// Submissions refused, by reason.
    pub refused: Family<Reason, Counter>,
    /// Queries, by kind and outcome.
    pub queries: Family<QueryLabels, Counter>,
    /// Alerts derived from committed blocks.
    pub alerts: Counter,
    /// From the deciding block's time to the alert's delivery to a carer, seconds; alerts
    /// committed before the watch asked for them (a replay from an old height) are not counted.
    pub alert_latency: Histogram,
    /// Messages from peers that did not decode.
    pub bad_peer_messages: Counter,
    /// Blocks sent to peers in answer to their sync requests.
    pub sync_served_blocks: Counter,
    /// Sync requests (or the rest of their batch) not served, by reason.
    pub sync_dropped: Family<Reason, Counter>,
    /// Watch requests answered at once because the carer's or the node's watchers are full.
    pub watchers_refused: Counter,
    /// Alert long polls held, waiting for an event or their deadline.
    pub watchers: Gauge,
    /// The address reporters and carers reach this validator at (one series, value 1), so a
    /// client pointed at this port by mistake can say which port it wanted
    /// (`bmpls_net::client::diagnose`).
    pub client_address: Family<Address, Gauge>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("bmpls");
        let metrics = Self {
            registry: Registry::default(),
            commits: Counter::default(),
            committed_txs: Counter::default(),
            commit_latency: Histogram::new(exponential_buckets(0.005, 2.0, 14)),
            mempool: Gauge::default(),
            refused: Family::default(),
            queries: Family::default(),
            alerts: Counter::default(),
            alert_latency: Histogram::new(exponential_buckets(0.005, 2.0, 14)),
            bad_peer_messages: Counter::default(),
            sync_served_blocks: Counter::default(),
            sync_dropped: Family::default(),
            watchers_refused: Counter::default(),
            watchers: Gauge::default(),
            client_address: Family::default(),
        };
        registry.register(
            "commits",
            "Blocks committed and flushed",
            metrics.commits.clone(),
        );
        registry.register(
            "committed_transactions",
            "Transactions committed",
            metrics.committed_txs.clone(),
        );
        registry.register(
            "commit_latency_seconds",
            "From a block's proposal time to its flush on this validator (blocks it decided, not catch-up)",
            metrics.commit_latency.clone(),
        );
        registry.register(
            "mempool_transactions",
            "Transactions waiting for a block",
            metrics.mempool.clone(),
        );
        registry.register(
            "refused_submissions",
            "Submitted transactions refused, by reason",
            metrics.refused.clone(),
        );
        registry.register(
            "queries",
            "Carers' queries, by kind and outcome",
            metrics.queries.clone(),
        );
        registry.register(
            "alerts",
            "Geofence alerts derived from committed blocks",
            metrics.alerts.clone(),
        );
        registry.register(
            "alert_latency_seconds",
            "From the deciding block's time to an alert's delivery to a watching carer",
            metrics.alert_latency.clone(),
        );
        registry.register(
            "bad_peer_messages",
            "Messages from other validators that did not decode",
            metrics.bad_peer_messages.clone(),
        );
        registry.register(
            "sync_served_blocks",
            "Blocks sent to other validators answering their sync requests",
            metrics.sync_served_blocks.clone(),
        );
        registry.register(
            "sync_dropped",
            "Sync requests or parts of their batch not served, by reason",
            metrics.sync_dropped.clone(),
        );
        registry.register(
            "watchers_refused",
            "Alert long polls answered at once because watchers were full",
            metrics.watchers_refused.clone(),
        );
        registry.register(
            "watchers",
            "Alert long polls held, waiting for an event or their deadline",
            metrics.watchers.clone(),
        );
        registry.register(
            "client_address_info",
            "The address clients reach this validator at (value 1)",
            metrics.client_address.clone(),
        );
        Self {
            registry,
            ..metrics
        }
    }
}

impl Metrics {
    /// Names the client address in [`Metrics::client_address`].
    pub fn set_client_address(&self, addr: SocketAddr) {
        self.client_address
            .get_or_create(&Address {
                address: addr.to_string(),
            })
            .set(1);
    }

    /// The text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// Serves `GET /metrics` on `addr` until the task is aborted; returns the address bound (port 0
/// picks one) and the task.
pub async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    Ok((
        bound,
        tokio::spawn(async move {
            loop {
                let Ok((mut stream, peer)) = listener.accept().await else {
                    continue;
                };
                let metrics = metrics.clone();
                tokio::spawn(async move {
                    let mut head = Vec::with_capacity(512);
                    let read = tokio::time::timeout(REQUEST_TIMEOUT, async {
                        let mut buf = [0u8; 1024];
                        while !head.windows(4).any(|w| w == b"\r\n\r\n")
                            && head.len() < MAX_REQUEST_BYTES
                        {
                            let n = stream.read(&mut buf).await?;
                            if n == 0 {
                                break;
                            }
                            head.extend_from_slice(&buf[..n]);
                        }
                        std::io::Result::Ok(())
                    })
                    .await;
                    if !matches!(read, Ok(Ok(()))) {
                        debug!(%peer, "metrics request timed out or failed");
                        return;
                    }
                    let response = if head.starts_with(b"GET /metrics ")
                        || head.starts_with(b"GET /metrics?")
                    {
                        let body = metrics.encode();
                        format!(
                            "HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        )
                    } else {
                        "HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                            .to_string()
                    };
                    let _ = stream.write_all(response.as_bytes()).await;
                    let _ = stream.shutdown().await;
                });
            }
        }),
    ))
}

//! `bmpls gateway owntracks`: the OwnTracks app as a bmpls reporter. The app, in HTTP mode,
//! POSTs each message as JSON (HTTP Basic auth, optionally an `encrypted` payload under the
//! shared secret); the gateway turns each `location` or `transition` into a signed record,
//! queues it in the patient's outbox — synced to disk — and only then answers (the app counts
//! any answer as a delivery, even an error), with a JSON array, as the app expects. A
//! background task sends the outbox in order, with backoff while no validator answers. Other
//! message types are answered `[]` and dropped; a body that is not a fix is answered 400 and
//! logged without its content. It runs where the patient's keys may be (the phone, the
//! custodian's home server), never on a validator.
//!
//! `GET /metrics` (same credentials) serves the gateway's state in the Prometheus text format:
//! what waits in the outbox and its bounds, and counters of fixes queued, fixes the full outbox
//! could not take, and records sent and refused — so a custodian's monitoring sees a backlog
//! grow, and a full outbox, before a patient's fixes stop being kept.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use axum::body::Body;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use clap::{Args, Subcommand};
use subtle::ConstantTimeEq;
use tracing::{info, warn};
use zeroize::Zeroizing;

use bmpls_client::PatientKeystore;
use bmpls_client::import::{MAX_MESSAGE_BYTES, OwnTracksMessage, owntracks_message_of};
use bmpls_client::outbox::{Backoff, MAX_OUTBOX_BYTES, MAX_OUTBOX_RECORDS, ReportQueue};
use bmpls_client::{Outbox, OutboxError};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::client::Consortium;

/// `bmpls gateway …`.
#[derive(Debug, Subcommand)]
pub enum GatewayCommand {
    /// Accept the OwnTracks app's HTTP mode for one patient: each fix is signed, encrypted and
    /// queued in the patient's outbox (synced) before the app is answered, then sent.
    #[command(
        after_help = "Example: bmpls gateway owntracks --patient patients/alice --listen 127.0.0.1:8083 --auth-file patients/alice/owntracks.auth"
    )]
    Owntracks(OwnTracksArgs),
}

/// Arguments of `bmpls gateway owntracks`.
#[derive(Debug, Args)]
pub struct OwnTracksArgs {
    /// The patient's keystore.
    #[arg(long)]
    patient: PathBuf,
    /// The HTTP address to listen on (the app's URL is http://ADDR/pub, or any path).
    #[arg(long, value_name = "IP:PORT")]
    listen: SocketAddr,
    /// A file holding `user:password`, the HTTP Basic credentials the app is given (owner-only).
    #[arg(long)]
    auth_file: PathBuf,
    /// The app's encryption secret, read from this file: `encrypted` payloads are opened with it.
    #[arg(long)]
    passphrase_file: Option<PathBuf>,
    #[command(flatten)]
    consortium: Consortium,
}

/// What the handler and the sender share: the keystore, its reporter and its outbox, behind
/// one lock taken only for queueing and for writing outcomes back, never across the network.
struct Gateway {
    queue: Mutex<ReportQueue>,
    /// `user:password`, as the app sends it.
    credentials: Zeroizing<Vec<u8>>,
    passphrase: Option<Zeroizing<String>>,
    /// Wakes the sender when a record is queued.
    queued: tokio::sync::Notify,
    metrics: GatewayMetrics,
}

/// What `GET /metrics` shows. No label carries a place, a time or a key.
struct GatewayMetrics {
    registry: Registry,
    waiting: Gauge,
    refused_kept: Gauge,
    bytes: Gauge,
    queued: Counter,
    full: Counter,
    failed: Counter,
    sent: Counter,
    refused: Counter,
}

impl GatewayMetrics {
    fn new() -> Self {
        let mut metrics = Self {
            registry: Registry::with_prefix("bmpls_gateway"),
            waiting: Gauge::default(),
            refused_kept: Gauge::default(),
            bytes: Gauge::default(),
            queued: Counter::default(),
            full: Counter::default(),
            failed: Counter::default(),
            sent: Counter::default(),
            refused: Counter::default(),
        };
        let registry = &mut metrics.registry;
        registry.register(
            "outbox_waiting_records",
            "Records in the patient's outbox waiting to be sent",
            metrics.waiting.clone(),
        );
        registry.register(
            "outbox_refused_records",
            "Records the chain refused, kept aside in the outbox (bmpls outbox shows why)",
            metrics.refused_kept.clone(),
        );
        registry.register(
            "outbox_bytes",
            "Bytes on disk of the records waiting or refused",
            metrics.bytes.clone(),
        );
        let records_bound = Gauge::<i64>::default();
        records_bound.set(MAX_OUTBOX_RECORDS as i64);
        registry.register(
            "outbox_max_records",
            "Records the outbox holds at most (waiting and refused); past it a fix is refused",
            records_bound,
        );
        let bytes_bound = Gauge::<i64>::default();
        bytes_bound.set(MAX_OUTBOX_BYTES as i64);
        registry.register(
            "outbox_max_bytes",
            "Bytes the outbox holds at most",
            bytes_bound,
        );
        registry.register(
            "fixes_queued",
            "Fixes queued in the outbox (synced) and acknowledged to the app",
            metrics.queued.clone(),
        );
        registry.register(
            "fixes_outbox_full",
            "Fixes the full outbox could not take (answered 503; the fix is not kept)",
            metrics.full.clone(),
        );
        registry.register(
            "fixes_not_queued",
            "Fixes that could not be queued for another reason (answered 503; see the log)",
            metrics.failed.clone(),
        );
        registry.register(
            "records_sent",
            "Records committed by the validators",
            metrics.sent.clone(),
        );
        registry.register(
            "records_refused",
            "Records the chain refused (kept aside in the outbox)",
            metrics.refused.clone(),
        );
        metrics
    }

    /// Sets the gauges from `outbox`.
    fn observe(&self, outbox: &Outbox) {
        self.waiting.set(outbox.waiting_len() as i64);
        self.refused_kept.set(outbox.refused().len() as i64);
        self.bytes.set(outbox.live_bytes() as i64);
    }

    fn encode(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

/// A secret's file, refused when others may read it (as the keystore's keys are).
fn secret_file(path: &std::path::Path) -> anyhow::Result<Zeroizing<String>> {
    bmpls_crypto::keyfile::check_private(path)?;
    let text = Zeroizing::new(
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?,
    );
    Ok(Zeroizing::new(
        text.trim_end_matches(['\n', '\r']).to_string(),
    ))
}

/// `bmpls gateway`.
pub fn run(command: GatewayCommand) -> anyhow::Result<()> {
    let GatewayCommand::Owntracks(args) = command;
    crate::init_logs();
    let store = PatientKeystore::open(&args.patient)?;
    let credentials = secret_file(&args.auth_file)?;
    anyhow::ensure!(
        credentials.contains(':'),
        "{}: expected one line user:password",
        args.auth_file.display()
    );
    let passphrase = args
        .passphrase_file
        .as_deref()
        .map(secret_file)
        .transpose()?;
    let chain = args.consortium.chain()?;
    args.consortium.trust()?;
    let queue = crate::send::open_queue(store, &chain)?;
    let gateway = Arc::new(Gateway {
        queue: Mutex::new(queue),
        credentials: Zeroizing::new(credentials.as_bytes().to_vec()),
        passphrase,
        queued: tokio::sync::Notify::new(),
        metrics: GatewayMetrics::new(),
    });
    if let Ok(queue) = gateway.queue.lock() {
        gateway.metrics.observe(queue.outbox());
    }
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(serve(gateway, args.listen, args.consortium))
}

async fn serve(
    gateway: Arc<Gateway>,
    listen: SocketAddr,
    consortium: Consortium,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("--listen {listen}"))?;
    let addr = listener.local_addr()?;
    // What waits from before is sent now, as what comes next.
    let sender = tokio::spawn(send_forever(gateway.clone(), consortium));
    let app = axum::Router::new().fallback(handle).with_state(gateway);
    println!("gateway listening on http://{addr}");
    info!(%addr, "owntracks gateway listening");
    // Stops on Ctrl-C or SIGTERM; nothing is lost either way (what was answered is on disk).
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    });
    let result = server.await.context("serving HTTP");
    sender.abort();
    result
}

fn answer(status: StatusCode, body: &'static str) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn authorised(gateway: &Gateway, headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let Some(encoded) = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))
    else {
        return false;
    };
    let Ok(given) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
        return false;
    };
    let given = Zeroizing::new(given);
    bool::from(given.as_slice().ct_eq(gateway.credentials.as_slice()))
}

async fn handle(
    axum::extract::State(gateway): axum::extract::State<Arc<Gateway>>,
    method: Method,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if !authorised(&gateway, &headers) {
        let mut response = answer(StatusCode::UNAUTHORIZED, "[]");
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Basic realm=\"bmpls\""),
        );
        return response;
    }
    if method == Method::GET && uri.path() == "/metrics" {
        return (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            gateway.metrics.encode(),
        )
            .into_response();
    }
    if method != Method::POST {
        return answer(StatusCode::METHOD_NOT_ALLOWED, "[]");
    }
    let Ok(bytes) = axum::body::to_bytes(body, MAX_MESSAGE_BYTES).await else {
        return answer(StatusCode::PAYLOAD_TOO_LARGE, "[]");
    };
    let Ok(text) = std::str::from_utf8(&bytes) else {
        warn!(bytes = bytes.len(), "a message that is not UTF-8");
        return answer(StatusCode::BAD_REQUEST, "[]");
    };
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let fix = match owntracks_message_of(
        text,
        gateway.passphrase.as_deref().map(String::as_str),
        now_ms,
    ) {
        Ok(OwnTracksMessage::Fix(fix)) => fix,
        Ok(OwnTracksMessage::Other(_)) => return answer(StatusCode::OK, "[]"),
        Err(_) => {
            // The reason may quote the message (a coordinate out of range): not logged.
            warn!(bytes = bytes.len(), "a message that is not a fix");
            return answer(StatusCode::BAD_REQUEST, "[]");
        }
    };
    // Queueing syncs to disk: off the async threads. The answer waits for it.
    let queued = {
        let gateway = gateway.clone();
        tokio::task::spawn_blocking(move || queue_fix(&gateway, fix)).await
    };
    match queued {
        Ok(Ok(())) => {
            gateway.queued.notify_one();
            answer(StatusCode::OK, "[]")
        }
        Ok(Err(e)) => {
            if matches!(e.downcast_ref(), Some(OutboxError::Full { .. })) {
                gateway.metrics.full.inc();
            } else {
                gateway.metrics.failed.inc();
            }
            warn!(error = %e, "a fix could not be queued");
            // The app takes any answer as delivered; a 5xx at least shows in its log.
            answer(StatusCode::SERVICE_UNAVAILABLE, "[]")
        }
        Err(_) => answer(StatusCode::INTERNAL_SERVER_ERROR, "[]"),
    }
}

/// Queues `fix` (synced) unless a fix of that time is already queued or reported.
fn queue_fix(gateway: &Gateway, fix: bmpls_client::Fix) -> anyhow::Result<()> {
    let mut queue = gateway
        .queue
        .lock()
        .map_err(|_| anyhow::anyhow!("the queue's lock is poisoned"))?;
    let queued = queue.queue(&[fix], &mut rand::rngs::OsRng)?;
    gateway
        .metrics
        .queued
        .inc_by(queued.seqs.end - queued.seqs.start);
    gateway.metrics.observe(queue.outbox());
    Ok(())
}

/// Sends the outbox for as long as the gateway runs: a batch at a time, the lock held only to
/// take the batch and to write its outcomes back; while no validator answers, backing off.
async fn send_forever(gateway: Arc<Gateway>, consortium: Consortium) {
    let backoff = Backoff::default();
    let mut failures = 0u32;
    let mut nodes = None;
    loop {
        let batch = match gateway.queue.lock() {
            Ok(queue) => queue.outbox().next_batch(),
            Err(_) => return,
        };
        if batch.is_empty() {
            gateway.queued.notified().await;
            continue;
        }
        if nodes.is_none() {
            let key = match gateway.queue.lock() {
                Ok(queue) => {
                    bmpls_crypto::SigningKey::from_seed(&queue.store().reporter_key().to_seed())
                }
                Err(_) => return,
            };
            match consortium.connect(&key).await {
                Ok(n) => nodes = Some(n),
                Err(e) => warn!(error = %crate::describe(&e), "no validator to send to"),
            }
        }
        let mut progressed = false;
        if let Some(nodes) = &nodes {
            match nodes.submit(batch.clone()).await {
                Ok(outcomes) => {
                    let gateway = gateway.clone();
                    let step = tokio::task::spawn_blocking(move || {
                        let mut queue = gateway
                            .queue
                            .lock()
                            .map_err(|_| anyhow::anyhow!("the queue's lock is poisoned"))?;
                        let step = queue.outbox_mut().apply_outcomes(&batch, &outcomes)?;
                        gateway.metrics.sent.inc_by(step.delivered.len() as u64);
                        gateway.metrics.refused.inc_by(step.refused.len() as u64);
                        gateway.metrics.observe(queue.outbox());
                        Ok::<_, anyhow::Error>(step)
                    })
                    .await;
                    match step {
                        Ok(Ok(step)) => {
                            if let Some((seq, height)) = step.delivered.last() {
                                info!(records = step.delivered.len(), last = seq, height, "sent");
                            }
                            for (seq, code, reason) in &step.refused {
                                warn!(
                                    seq,
                                    ?code,
                                    reason,
                                    "a record was refused: kept aside in the outbox"
                                );
                            }
                            progressed = step.progressed() || step.later.is_none();
                            if let Some(why) = step.later.filter(|_| !progressed) {
                                warn!(why, "records wait");
                            }
                        }
                        Ok(Err(e)) => {
                            warn!(error = %e, "the outbox could not be updated");
                        }
                        Err(_) => return,
                    }
                }
                Err(e) => warn!(error = %e, "no validator answered"),
            }
        }
        if progressed {
            failures = 0;
        } else {
            failures += 1;
            tokio::time::sleep(backoff.wait(failures).min(Duration::from_secs(30))).await;
        }
    }
}

//! The validator's core task: the only owner of the consensus engine. It turns peer messages,
//! timers and client submissions into engine inputs, and the engine's outputs into messages,
//! timers, and committed blocks applied to the store. A submission is answered only after the
//! block holding it is applied and flushed.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, oneshot, watch};
use tracing::{debug, info, warn};

use bmpls_consensus::{Address, Engine, EngineError, Message, Output, Refusal, Timeout, TxRefusal};
use bmpls_crypto::hash::tx_hash;
use bmpls_crypto::{HashedBlock, SigningKey, Verified};
use bmpls_net::alert::WatchRequest;
use bmpls_net::guard::KnownClients;
use bmpls_net::proto::reason;
use bmpls_net::query::{AuditOutcome, AuditRequest, CertifiedHeader, Query, QueryOutcome};
use bmpls_net::{Inbound, NodeStatus, Peers, RefusalCode, Submitted};
use bmpls_store::{FileWal, Store};
use bmpls_types::{
    BoundedVec, Canonical, CarerId, CommitCertificate, Height, PublicKeyBytes, Transaction, TxHash,
};

use crate::NodeError;
use crate::alerts::Alerts;
use crate::config::BlockPolicy;
use crate::metrics::{Metrics, Reason};

mod carers;
mod lookup;
mod resend;
mod sync;
mod watchers;

/// How long a submission waits for its block before the node answers
/// [`RefusalCode::Timeout`] (the transaction may still commit later).
pub const COMMIT_WAIT: Duration = Duration::from_secs(20);

use bmpls_consensus::message::GOSSIP_BATCH;

/// Client commands queued for the core task.
pub const COMMAND_QUEUE: usize = 1024;

/// At most this many transactions — from queued client submissions, or from queued gossip —
/// are admitted together, their signatures verified as one batch (larger batches verify faster
/// per signature). Only what is already queued is taken: nothing waits to fill a batch.
pub const ADMIT_BATCH: usize = 4096;

/// At most this many queued peer messages are taken at once, so that consensus messages
/// are not held behind a long run of gossip.
const INBOUND_BURST: usize = 64;

/// What the client service asks of the core task.
pub(crate) enum Command {
    Submit {
        txs: Vec<Transaction>,
        reply: oneshot::Sender<Vec<Submitted>>,
    },
    Status {
        reply: oneshot::Sender<NodeStatus>,
    },
    Query {
        client: PublicKeyBytes,
        queries: Vec<Query>,
        reply: oneshot::Sender<Result<Vec<QueryOutcome>, bmpls_net::RequestError>>,
    },
    Audit {
        client: PublicKeyBytes,
        request: AuditRequest,
        reply: oneshot::Sender<AuditOutcome>,
    },
    Watch {
        client: PublicKeyBytes,
        request: WatchRequest,
        reply: watchers::WatchReply,
    },
    Grants {
        client: PublicKeyBytes,
        asked: bmpls_net::GrantsAsked,
        reply: oneshot::Sender<bmpls_net::GrantsOutcome>,
    },
    NextSeq {
        client: PublicKeyBytes,
        patient: bmpls_types::PatientId,
        reply: oneshot::Sender<bmpls_net::NextSeqOutcome>,
    },
    Grant {
        client: PublicKeyBytes,
        request: bmpls_net::query::GrantRequest,
        reply: oneshot::Sender<bmpls_net::query::GrantOutcome>,
    },
    Fences {
        client: PublicKeyBytes,
        request: bmpls_net::query::FencesRequest,
        reply: oneshot::Sender<bmpls_net::query::FencesOutcome>,
    },
}

/// Carers whose last delivered alert a validator remembers, to leave replays out of the
/// alert latency; past it the memory starts afresh (replays may then be timed once).
const MAX_TIMED_CARERS: usize = 100_000;

struct Batch {
    results: Vec<Option<Submitted>>,
    remaining: usize,
    reply: oneshot::Sender<Vec<Submitted>>,
    deadline: Instant,
}

/// When the next height may start, after a commit.
struct NextHeight {
    earliest: Instant,
    latest: Instant,
    peer_ahead: bool,
}

pub(crate) struct Driver {
    engine: Engine<FileWal>,
    /// This validator's key, for the audit entries of the queries it answers and the alerts
    /// it serves.
    auditor: SigningKey,
    alerts: Alerts,
    /// The certified header of the last block `alerts` has seen: a watch answer's resume
    /// height is one above it, and the carer checks it.
    tip: Option<CertifiedHeader>,
    watchers: watchers::Watchers,
    /// Per carer, the highest height of an alert this validator delivered to it: a watch
    /// that asks again from below (a restarted `bmpls watch` from height 1) gets those alerts
    /// again, and their age is not a delivery latency. At most [`MAX_TIMED_CARERS`] entries.
    delivered: HashMap<CarerId, Height>,
    store: Arc<Store>,
    peers: Peers,
    policy: BlockPolicy,
    metrics: Arc<Metrics>,
    timers: HashMap<Timeout, Instant>,
    batches: HashMap<u64, Batch>,
    next_batch: u64,
    waiting: HashMap<TxHash, (u64, usize)>,
    next_height: Option<NextHeight>,
    /// The client keys the request guard limits as known; grows as enrolments commit.
    known: KnownClients,
    /// Admission of peers' sync requests.
    sync: sync::SyncServer,
    /// Checkpoints served to joining peers.
    snapshots: crate::snapshot::SnapshotServer,
    /// Where checkpoints of the ledger and alerts fall.
    checkpoints: crate::config::CheckpointPolicy,
    /// Test-only: rewrites this validator's broadcasts, with its peers' ids.
    #[cfg(feature = "byzantine")]
    pub(crate) tamper: Option<(crate::byzantine::Tamper, Vec<bmpls_types::ValidatorId>)>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn refusal(code: RefusalCode, why: impl std::fmt::Display) -> Submitted {
    Submitted::Refused {
        code,
        reason: reason(why),
    }
}

/// The client keys a committed transaction registers (the request guard's known keys).
fn registered_keys(tx: &Transaction) -> Vec<PublicKeyBytes> {
    match tx {
        Transaction::EnrolPatient(t) => vec![t.reporter_key, t.custodian_key],
        Transaction::EnrolCarer(t) => vec![t.identity_key],
        Transaction::RotateReporterKey(t) => vec![t.new_reporter_key],
        _ => Vec::new(),
    }
}

/// The wire code of a mempool refusal.
pub fn refusal_code(refusal: &Refusal) -> RefusalCode {
    match refusal {
        Refusal::Full { .. } => RefusalCode::Full,
        Refusal::TooLarge(_) => RefusalCode::TooLarge,
        Refusal::Rule(rule) => match rule {
            TxRefusal::Sequence { expected, got, .. } if got < expected => RefusalCode::Replay,
            TxRefusal::Sequence { .. } => RefusalCode::Gap,
            TxRefusal::Duplicate(_) => RefusalCode::Replay,
            TxRefusal::UnknownPatient(_) | TxRefusal::UnknownCarer(_) => RefusalCode::NotEnrolled,
            TxRefusal::PatientExists(_) | TxRefusal::CarerExists(_) => RefusalCode::AlreadyEnrolled,
            TxRefusal::BadSignature => RefusalCode::BadSignature,
            TxRefusal::WeakKey(_) => RefusalCode::WeakKey,
            TxRefusal::NotAnOperator | TxRefusal::NotANode | TxRefusal::NoStandingGrant(_) => {
                RefusalCode::NotAuthorised
            }
            TxRefusal::Levels { .. }
            | TxRefusal::Invalid(_)
            | TxRefusal::UnknownGrant(_)
            | TxRefusal::UnknownFence(_)
            | TxRefusal::FixTimeAhead { .. } => RefusalCode::Invalid,
            // Asking for what is already so is a replay: nothing is left to do.
            TxRefusal::AlreadyRevoked(_) | TxRefusal::FenceRemoved(_) => RefusalCode::Replay,
        },
    }
}

impl Driver {
    #[allow(clippy::too_many_arguments)] // wires the core task to every part it owns
    pub(crate) fn new(
        engine: Engine<FileWal>,
        auditor: SigningKey,
        (alerts, tip): (Alerts, Option<CertifiedHeader>),
        store: Arc<Store>,
        peers: Peers,
        (policy, checkpoints): (BlockPolicy, crate::config::CheckpointPolicy),
        metrics: Arc<Metrics>,
        known: KnownClients,
    ) -> Self {
        Self {
            engine,
            auditor,
            alerts,
            tip,
            watchers: watchers::Watchers::default(),
            delivered: HashMap::new(),
            store,
            peers,
            policy,
            metrics,
            timers: HashMap::new(),
            batches: HashMap::new(),
            next_batch: 0,
            waiting: HashMap::new(),
            next_height: None,
            known,
            sync: sync::SyncServer::default(),
            snapshots: crate::snapshot::SnapshotServer::default(),
            checkpoints,
            #[cfg(feature = "byzantine")]
            tamper: None,
        }
    }

    pub(crate) async fn run(
        mut self,
        initial: Vec<Output>,
        mut inbound: mpsc::Receiver<Inbound>,
        mut commands: mpsc::Receiver<Command>,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<(), NodeError> {
        let result = async {
            self.handle(initial).await?;
            loop {
                let wake = self.next_wake();
                tokio::select! {
                    _ = shutdown.changed() => return Ok(()),
                    Some(message) = inbound.recv() => self.on_inbound(message, &mut inbound).await?,
                    Some(command) = commands.recv() => self.on_commands(command, &mut commands),
                    () = tokio::time::sleep_until(wake.into()) => self.on_tick().await?,
                }
            }
        }
        .await;
        for (_, batch) in self.batches.drain() {
            let results = batch
                .results
                .into_iter()
                .map(|r| r.unwrap_or_else(|| refusal(RefusalCode::ShuttingDown, "shutting down")))
                .collect();
            let _ = batch.reply.send(results);
        }
        // Every applied block was flushed when it was applied; nothing else needs saving.
        self.peers.close().await;
        result
    }

    fn next_wake(&self) -> Instant {
        let far = Instant::now() + Duration::from_secs(3600);
        let timers = self.timers.values().copied();
        let batches = self.batches.values().map(|b| b.deadline);
        let watchers = self.watchers.next_deadline();
        let next = self.next_height.as_ref().map(|n| {
            if n.peer_ahead {
                Instant::now()
            } else if self.engine.mempool_len() > 0 {
                n.earliest
            } else {
                n.latest
            }
        });
        timers
            .chain(batches)
            .chain(watchers)
            .chain(next)
            .min()
            .unwrap_or(far)
    }

    /// Handles `first` and whatever else is already queued (up to [`INBOUND_BURST`] messages):
    /// the gossiped transactions among them are admitted as one batch, before the consensus
    /// messages, which keep their order.
    async fn on_inbound(
        &mut self,
        first: Inbound,
        queue: &mut mpsc::Receiver<Inbound>,
    ) -> Result<(), NodeError> {
        let mut gossip = Vec::new();
        let mut rest = Vec::new();
        let mut next = Some(first);
        let mut taken = 0;
        while let Some(inbound) = next.take() {
            taken += 1;
            match Message::decode(&inbound.bytes) {
                Ok(Message::Transactions(txs)) => gossip.extend(txs.into_inner()),
                Ok(message) => rest.push((inbound.from, message)),
                Err(e) => {
                    self.metrics.bad_peer_messages.inc();
                    debug!(peer = %inbound.from, error = %e, "undecodable peer message");
                }
            }
            if taken < INBOUND_BURST && gossip.len() < ADMIT_BATCH {
                next = queue.try_recv().ok();
            }
        }
        if !gossip.is_empty() {
            // Refusals are expected: a transaction already held or committed.
            let _ = self.engine.submit_all(gossip);
        }
        for (from, message) in rest {
            self.on_message(from, message).await?;
        }
        Ok(())
    }

    async fn on_message(
        &mut self,
        from: bmpls_types::ValidatorId,
        message: Message,
    ) -> Result<(), NodeError> {
        match message {
            Message::SyncRequest(height) => {
                self.serve_sync(from, height.0);
                return Ok(());
            }
            Message::SnapshotRequest | Message::SnapshotChunkRequest(..) => {
                self.serve_snapshot(from, &message);
                return Ok(());
            }
            // Late answers to this node's own join, after it started.
            Message::SnapshotOffer(_) | Message::SnapshotChunk(..) => return Ok(()),
            _ => {}
        }
        // A peer's own vote or proposal, on its own link, shows the height it has reached.
        let own = match &message {
            Message::Proposal(p) if p.proposer.0 == from => Some(p.height),
            Message::Vote(v) if v.vote.validator.0 == from => Some(v.vote.height),
            _ => None,
        };
        if let Some(height) = own {
            self.sync.note_height(from, height.0, Instant::now());
        }
        if let Some(next) = self.next_height.as_mut() {
            let height = match &message {
                Message::Proposal(p) => Some(p.height),
                Message::Vote(v) => Some(v.vote.height),
                Message::Polka(c) => Some(c.height),
                Message::RoundCert(c) => Some(c.height),
                _ => None,
            };
            if height.is_some_and(|h| h > self.engine.height()) {
                next.peer_ahead = true;
            }
        }
        let outputs = self.engine.on_message(Address(from), message, now_ms())?;
        self.handle(outputs).await
    }

    /// Admits a peer's sync request here and serves it on a blocking thread (`sync.rs`): the
    /// core task only decides.
    fn serve_sync(&mut self, to: bmpls_types::ValidatorId, from: u64) {
        let tip = self.tip.as_ref().map_or(0, |t| t.header.height.0);
        match self.sync.admit(to, from, tip, Instant::now()) {
            Ok((start, end)) => self.sync.serve(
                (to, start, end),
                self.store.clone(),
                self.peers.sender(),
                self.metrics.clone(),
            ),
            Err(why) => {
                self.metrics
                    .sync_dropped
                    .get_or_create(&Reason {
                        reason: why.label().into(),
                    })
                    .inc();
                debug!(peer = %to, from, reason = why.label(), "sync request dropped");
            }
        }
    }

    /// Admits a joining peer's request for checkpoint offers or a checkpoint's piece, within
    /// its sync token bucket, and serves it on a blocking thread (`crate::snapshot`).
    fn serve_snapshot(&mut self, to: bmpls_types::ValidatorId, message: &Message) {
        if let Err(why) = self.sync.admit_snapshot(to, Instant::now()) {
            self.metrics
                .sync_dropped
                .get_or_create(&Reason {
                    reason: why.label().into(),
                })
                .inc();
            debug!(peer = %to, reason = why.label(), "snapshot request dropped");
            return;
        }
        let (store, sender) = (self.store.clone(), self.peers.sender());
        if !self.snapshots.serve(to, message, store, sender) {
            debug!(peer = %to, "snapshot request dropped: one is being served");
        }
    }

    /// Handles `first` and the commands already queued: their submissions are admitted as
    /// one batch of at most [`ADMIT_BATCH`] transactions.
    fn on_commands(&mut self, first: Command, queue: &mut mpsc::Receiver<Command>) {
        let mut submissions = Vec::new();
        let mut txs = 0;
        let mut next = Some(first);
        while let Some(command) = next.take() {
            match command {
                Command::Status { reply } => {
                    let ledger = self.engine.ledger();
                    let _ = reply.send(NodeStatus {
                        chain_id: ledger.chain_id().clone(),
                        height: ledger.height().0,
                        tip: bmpls_types::Hash32(ledger.tip().0),
                        mempool: self.engine.mempool_len() as u64,
                    });
                }
                Command::Grants {
                    client,
                    asked,
                    reply,
                } => {
                    let lagging = self.catching_up(bmpls_types::Height(0));
                    let outcome = lookup::grants(self.engine.ledger(), &client, &asked, lagging);
                    let _ = reply.send(outcome);
                }
                Command::NextSeq {
                    client,
                    patient,
                    reply,
                } => {
                    let _ = reply.send(lookup::next_seq(self.engine.ledger(), &client, &patient));
                }
                Command::Submit { txs: batch, reply } => {
                    txs += batch.len();
                    submissions.push((batch, reply));
                }
                Command::Query {
                    client,
                    queries,
                    reply,
                } => self.query(client, queries, reply),
                Command::Audit {
                    client,
                    request,
                    reply,
                } => self.audit_trail(client, request, reply),
                Command::Watch {
                    client,
                    request,
                    reply,
                } => self.watch(client, request, reply),
                Command::Grant {
                    client,
                    request,
                    reply,
                } => self.grant_evidence(client, request, reply),
                Command::Fences {
                    client,
                    request,
                    reply,
                } => self.fences(client, request, reply),
            }
            if txs < ADMIT_BATCH {
                next = queue.try_recv().ok();
            }
        }
        if !submissions.is_empty() {
            self.submit(submissions);
        }
    }

    fn submit(&mut self, submissions: Vec<(Vec<Transaction>, oneshot::Sender<Vec<Submitted>>)>) {
        let mut replies = Vec::with_capacity(submissions.len());
        let mut all = Vec::new();
        for (txs, reply) in submissions {
            replies.push((txs.len(), reply));
            all.extend(txs);
        }
        let outcomes = self.engine.submit_all(all.clone());
        let mut outcomes = all.into_iter().zip(outcomes);
        let mut admitted = Vec::new();
        for (len, reply) in replies {
            let id = self.next_batch;
            self.next_batch += 1;
            let mut results = Vec::with_capacity(len);
            let mut remaining = 0;
            for (index, (tx, outcome)) in outcomes.by_ref().take(len).enumerate() {
                match outcome {
                    Ok(hash) => {
                        self.waiting.insert(hash, (id, index));
                        remaining += 1;
                        results.push(None);
                        admitted.push(tx);
                    }
                    Err(why) => {
                        match self.resent(&tx, &why) {
                            Some(resend::Resent::Committed(height)) => {
                                let tx = tx_hash(&tx);
                                results.push(Some(Submitted::Committed { tx, height }));
                                continue;
                            }
                            Some(resend::Resent::Wait) => {
                                self.waiting.insert(tx_hash(&tx), (id, index));
                                remaining += 1;
                                results.push(None);
                                continue;
                            }
                            Some(resend::Resent::AlreadyAwaited) => {
                                results.push(Some(refusal(
                                    RefusalCode::Timeout,
                                    "already waiting for its block (sent before); it may still commit",
                                )));
                                continue;
                            }
                            None => {}
                        }
                        let code = refusal_code(&why);
                        self.metrics
                            .refused
                            .get_or_create(&Reason {
                                reason: format!("{code:?}"),
                            })
                            .inc();
                        results.push(Some(refusal(code, why)));
                    }
                }
            }
            let batch = Batch {
                results,
                remaining,
                reply,
                deadline: Instant::now() + COMMIT_WAIT,
            };
            if remaining == 0 {
                finish(batch);
            } else {
                self.batches.insert(id, batch);
            }
        }
        // Whoever proposes next should have them.
        while !admitted.is_empty() {
            let rest = admitted.split_off(admitted.len().min(GOSSIP_BATCH));
            if let Ok(txs) = BoundedVec::new(std::mem::replace(&mut admitted, rest)) {
                self.peers
                    .broadcast(Message::Transactions(txs).encode().into());
            }
        }
    }

    async fn on_tick(&mut self) -> Result<(), NodeError> {
        let now = Instant::now();
        let due: Vec<Timeout> = self
            .timers
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(t, _)| *t)
            .collect();
        for timeout in due {
            self.timers.remove(&timeout);
            let outputs = self.engine.on_timeout(timeout, now_ms())?;
            self.handle(outputs).await?;
        }
        let expired: Vec<u64> = self
            .batches
            .iter()
            .filter(|(_, b)| b.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            if let Some(mut batch) = self.batches.remove(&id) {
                self.waiting.retain(|_, (b, _)| *b != id);
                for slot in batch.results.iter_mut().filter(|r| r.is_none()) {
                    *slot = Some(refusal(
                        RefusalCode::Timeout,
                        format!("not committed within {COMMIT_WAIT:?}; it may still commit"),
                    ));
                }
                finish(batch);
            }
        }
        if self.watchers.next_deadline().is_some_and(|d| d <= now) {
            self.serve_expired(now);
        }
        let ready = self.next_height.as_ref().is_some_and(|n| {
            n.peer_ahead || now >= n.latest || (now >= n.earliest && self.engine.mempool_len() > 0)
        });
        if ready {
            self.next_height = None;
            let outputs = self.engine.start_next_height(now_ms())?;
            self.handle(outputs).await?;
        }
        Ok(())
    }

    async fn handle(&mut self, outputs: Vec<Output>) -> Result<(), NodeError> {
        for output in outputs {
            match output {
                #[cfg(feature = "byzantine")]
                Output::Broadcast(message) if self.tamper.is_some() => {
                    if let Some((tamper, peers)) = &self.tamper {
                        for (to, sent) in peers.iter().zip(tamper(&message, peers, &self.auditor)) {
                            if let Some(sent) = sent {
                                self.peers.send(to, sent.encode().into());
                            }
                        }
                    }
                }
                Output::Broadcast(message) => self.peers.broadcast(message.encode().into()),
                Output::Send(to, message) => {
                    self.peers.send(&to.0, message.encode().into());
                }
                Output::Schedule { timeout, after_ms } => {
                    self.timers
                        .insert(timeout, Instant::now() + Duration::from_millis(after_ms));
                }
                Output::Cancel(timeout) => {
                    self.timers.remove(&timeout);
                }
                Output::CancelAll => self.timers.clear(),
                Output::Committed(block, cert) => self.commit(block, cert).await?,
            }
        }
        Ok(())
    }

    async fn commit(
        &mut self,
        block: Verified<HashedBlock>,
        cert: CommitCertificate,
    ) -> Result<(), NodeError> {
        let started = Instant::now();
        let store = self.store.clone();
        let (block, cert) = tokio::task::spawn_blocking(move || {
            store.apply_block(&block, &cert).map(|()| (block, cert))
        })
        .await
        .map_err(|e| NodeError::Internal(format!("store task: {e}")))??;
        let height = block.header.height.0;
        let txs = block.txs.len();
        self.metrics.commits.inc();
        self.metrics.committed_txs.inc_by(txs as u64);
        // Catch-up blocks (after a restart, or behind a partition) were proposed long before
        // they arrive: their age is not a commit latency.
        if !self.engine.committed_by_sync() {
            self.metrics
                .commit_latency
                .observe(now_ms().saturating_sub(block.header.time_ms) as f64 / 1000.0);
        }
        self.metrics.mempool.set(self.engine.mempool_len() as i64);
        self.known
            .extend(block.txs.iter().flat_map(registered_keys));
        let fired = self.alerts.on_block(&block);
        // The ledger runs ahead of the alerts when the engine committed several blocks in one
        // step (catching up): the checkpoint then waits for a block where both agree.
        let ledger = self.engine.ledger();
        if ledger.height() == block.header.height
            && crate::checkpoint::falls_after(
                self.checkpoints,
                block.header.height,
                txs,
                ledger.committed_txs(),
            )
        {
            self.checkpoint(block.header.height).await;
        }
        self.tip = Some(CertifiedHeader {
            header: block.header.clone(),
            cert,
        });
        if !fired.is_empty() {
            self.metrics.alerts.inc_by(fired.len() as u64);
            let carers: std::collections::BTreeSet<CarerId> =
                fired.iter().map(|e| e.carer).collect();
            self.serve_carers(&carers);
        }
        if !self.waiting.is_empty() {
            for hash in block.hashes().iter().map(|h| h.hash) {
                let Some((id, index)) = self.waiting.remove(&hash) else {
                    continue;
                };
                let Some(batch) = self.batches.get_mut(&id) else {
                    continue;
                };
                batch.results[index] = Some(Submitted::Committed { tx: hash, height });
                batch.remaining -= 1;
                if batch.remaining == 0 {
                    if let Some(batch) = self.batches.remove(&id) {
                        finish(batch);
                    }
                }
            }
        }
        if txs > 0 {
            info!(
                height,
                txs,
                apply_ms = started.elapsed().as_millis() as u64,
                "committed"
            );
        } else {
            debug!(height, "committed an empty block");
        }
        let now = Instant::now();
        self.next_height = Some(NextHeight {
            earliest: now + Duration::from_millis(self.policy.min_interval_ms),
            latest: now + Duration::from_millis(self.policy.empty_interval_ms),
            peer_ahead: false,
        });
        Ok(())
    }
}

impl Driver {
    /// Writes the checkpoint of the state after block `height`. A failure costs a longer
    /// replay at the next start, nothing else: it is logged, not fatal.
    async fn checkpoint(&mut self, height: Height) {
        let started = Instant::now();
        let bytes = crate::checkpoint::encode(self.engine.ledger(), &self.alerts);
        let encode_ms = started.elapsed().as_millis() as u64;
        let store = self.store.clone();
        let len = bytes.len();
        match tokio::task::spawn_blocking(move || store.put_checkpoint(height, &bytes)).await {
            Ok(Ok(())) => {
                info!(
                    height = height.0,
                    bytes = len,
                    encode_ms,
                    ms = started.elapsed().as_millis() as u64,
                    "checkpoint written"
                );
            }
            Ok(Err(e)) => warn!(height = height.0, error = %e, "checkpoint not written"),
            Err(e) => warn!(height = height.0, error = %e, "checkpoint task failed"),
        }
    }
}

fn finish(batch: Batch) {
    let results = batch
        .results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| refusal(RefusalCode::Timeout, "not committed")))
        .collect();
    let _ = batch.reply.send(results);
}

impl From<EngineError> for NodeError {
    fn from(e: EngineError) -> Self {
        NodeError::Consensus(e)
    }
}

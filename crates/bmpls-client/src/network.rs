//! Talking to the consortium: a set of validators. A phone keeps using the node that last
//! answered and fails over to the others when it stops answering, dialling them in order of
//! preference, each [`DIAL_STAGGER`] after the one before or as soon as it failed (Happy
//! Eyeballs, RFC 8305): a phone whose validator is up makes one handshake, not one per
//! validator (`bmpls bench phone` counts them), and any number of down nodes still costs about
//! one connect timeout, not one each. Resubmitting a transaction is safe (a node that already
//! has it answers once it commits, or refuses it as a replay once committed).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bmpls_crypto::SigningKey;
use bmpls_net::alert::{WatchOutcome, WatchRequest};
use bmpls_net::limits::MAX_SUBMIT_BATCH;
use bmpls_net::query::{AuditOutcome, AuditRequest, MAX_QUERY_BATCH, Query, QueryOutcome};
use bmpls_net::{
    Client, ClientError, GrantsAsked, GrantsOutcome, NextSeqOutcome, NodeStatus, Request,
    RequestError, Response, Submitted, Trust,
};
use bmpls_types::{BoundedVec, Transaction, ValidatorId};

/// A request no validator served.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    /// No node address was given.
    #[error("no validator address given")]
    NoNodes,
    /// More transactions (or queries) than one request may carry.
    #[error(
        "{0} transactions or queries in one request; at most {MAX_SUBMIT_BATCH} transactions or {MAX_QUERY_BATCH} queries"
    )]
    TooMany(usize),
    /// Every node failed: each node and why, in the order given.
    #[error("no validator answered: {}", failures(.0))]
    Unreachable(Vec<(SocketAddr, ClientError)>),
    /// A node refused the request itself.
    #[error("refused: {0}")]
    Refused(RequestError),
    /// A node answered something else than the request calls for.
    #[error("unexpected answer from {0}")]
    Unexpected(SocketAddr),
    /// A validator's address is neither `IP:port` nor a `host:port` that resolves.
    #[error("{node:?} {reason}")]
    BadAddress {
        /// The address as given.
        node: String,
        /// Why it is not one.
        reason: String,
    },
}

/// Each failure on its own, naming its node once.
fn failures(list: &[(SocketAddr, ClientError)]) -> String {
    let each: Vec<String> = list
        .iter()
        .map(|(addr, e)| match e {
            ClientError::Connect { .. } => e.to_string(),
            other => format!("{addr}: {other}"),
        })
        .collect();
    each.join("; ")
}

/// How long a dial has to succeed before the next validator is dialled too. Longer than a
/// QUIC handshake over a mobile network (one round trip, ~50–300 ms) so that a phone whose
/// validator is up opens one connection; far shorter than [`CONNECT_TIMEOUT`], so that a
/// validator that is down delays a request by about this much.
///
/// [`CONNECT_TIMEOUT`]: bmpls_net::limits::CONNECT_TIMEOUT
pub const DIAL_STAGGER: std::time::Duration = std::time::Duration::from_millis(500);

/// Validators of one consortium, as seen by one client key.
#[derive(Debug)]
pub struct Nodes {
    clients: Vec<Arc<Client>>,
    preferred: AtomicUsize,
}

impl Nodes {
    /// Clients of the nodes at `addrs`, trusting `trust`, signing with `key`.
    pub fn new(
        addrs: &[SocketAddr],
        trust: &Trust,
        key: &SigningKey,
    ) -> Result<Self, NetworkError> {
        if addrs.is_empty() {
            return Err(NetworkError::NoNodes);
        }
        let clients = addrs
            .iter()
            .map(|addr| {
                Client::new(*addr, trust, SigningKey::from_seed(&key.to_seed()))
                    .map(Arc::new)
                    .map_err(|e| NetworkError::Unreachable(vec![(*addr, e)]))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            clients,
            preferred: AtomicUsize::new(0),
        })
    }

    /// Clients of the nodes named by `nodes` (`IP:port`, or `host:port` resolved now through
    /// the system's resolver: [`crate::consortium::resolve`]), trusting `trust`, signing with
    /// `key`.
    pub async fn resolve(
        nodes: &[String],
        trust: &Trust,
        key: &SigningKey,
    ) -> Result<Self, NetworkError> {
        let mut addrs = Vec::with_capacity(nodes.len());
        for node in nodes {
            addrs.push(crate::consortium::resolve(node).await?);
        }
        Self::new(&addrs, trust, key)
    }

    /// Sends `request` to the preferred node, then to the others in turn, until one answers;
    /// with no connection open, the nodes are dialled in order of preference, each
    /// [`DIAL_STAGGER`] after the one before or at once when it failed, and the first that
    /// connects is asked (each node is dialled once), so down nodes cost about one connect
    /// timeout together, not one each. A client keeps using the validator that answered (it
    /// reads from the one that acknowledged its writes). Every node that failed is named in
    /// the error. An answer that is a request error (busy, rate limited…) is returned
    /// as it is.
    pub async fn call(&self, request: Request) -> Result<(SocketAddr, Response), NetworkError> {
        let count = self.clients.len();
        let start = self.preferred.load(Ordering::Relaxed) % count;
        let order: Vec<usize> = (0..count).map(|step| (start + step) % count).collect();
        let mut failed: Vec<Option<ClientError>> = self.clients.iter().map(|_| None).collect();
        let preferred = &self.clients[start];
        if preferred.is_connected().await {
            match preferred.call(request.clone()).await {
                Ok(response) => return Ok((preferred.addr(), response)),
                Err(e) => failed[start] = Some(e),
            }
        }
        // Dials in order of preference, staggered; the first to connect and answer wins. A
        // dial holds its client's connection slot until it ends, so the ones still under way
        // are aborted (the set is dropped) once an answer is in.
        let mut waiting = order
            .iter()
            .copied()
            .filter(|&index| failed[index].is_none())
            .collect::<Vec<_>>()
            .into_iter();
        let mut dials = tokio::task::JoinSet::new();
        let mut dialling = std::collections::HashMap::new();
        let mut dial_next =
            |dials: &mut tokio::task::JoinSet<_>,
             dialling: &mut std::collections::HashMap<_, _>| match waiting.next() {
                Some(index) => {
                    let client = self.clients[index].clone();
                    let handle = dials.spawn(async move { (index, client.dial().await) });
                    dialling.insert(handle.id(), index);
                    true
                }
                None => false,
            };
        dial_next(&mut dials, &mut dialling);
        let mut more = true;
        loop {
            if dials.is_empty() {
                more = dial_next(&mut dials, &mut dialling);
                if !more {
                    break;
                }
            }
            let joined = tokio::select! {
                joined = dials.join_next_with_id() => joined,
                () = tokio::time::sleep(DIAL_STAGGER), if more => {
                    more = dial_next(&mut dials, &mut dialling);
                    continue;
                }
            };
            let Some(joined) = joined else { continue };
            let (index, outcome) = match joined {
                Ok((_, (index, Ok(_)))) => (index, self.clients[index].call(request.clone()).await),
                Ok((_, (index, Err(e)))) => (index, Err(e)),
                Err(e) => {
                    let Some(&index) = dialling.get(&e.id()) else {
                        continue;
                    };
                    let failure = ClientError::Connect {
                        addr: self.clients[index].addr(),
                        reason: format!("the dial failed: {e}"),
                    };
                    (index, Err(failure))
                }
            };
            match outcome {
                Ok(response) => {
                    self.preferred.store(index, Ordering::Relaxed);
                    return Ok((self.clients[index].addr(), response));
                }
                Err(e) => {
                    failed[index] = Some(e);
                    // A failure need not wait out the stagger.
                    more = dial_next(&mut dials, &mut dialling);
                }
            }
        }
        let failures: Vec<(SocketAddr, ClientError)> = order
            .iter()
            .filter_map(|&index| Some((self.clients[index].addr(), failed[index].take()?)))
            .collect();
        if failures.is_empty() {
            return Err(NetworkError::NoNodes);
        }
        Err(NetworkError::Unreachable(failures))
    }

    /// Moves the preference to the node after the one at `addr` (in the order given), so the
    /// next call asks another validator first: after `addr` said it does not hold what was
    /// asked (it joined from a snapshot after it).
    pub fn avoid(&self, addr: SocketAddr) {
        if let Some(index) = self.clients.iter().position(|c| c.addr() == addr) {
            self.preferred
                .store((index + 1) % self.clients.len(), Ordering::Relaxed);
        }
    }

    /// Submits `txs` and returns each outcome, once committed (or refused).
    pub async fn submit(&self, txs: Vec<Transaction>) -> Result<Vec<Submitted>, NetworkError> {
        let count = txs.len();
        let batch = BoundedVec::new(txs).map_err(|_| NetworkError::TooMany(count))?;
        match self.call(Request::Submit(batch)).await? {
            (_, Response::Submitted(outcomes)) => Ok(outcomes.into_inner()),
            (_, Response::Error(e)) => Err(NetworkError::Refused(e)),
            (addr, _) => Err(NetworkError::Unexpected(addr)),
        }
    }

    /// Sends a carer's queries; each outcome comes back as the node gave it, to be verified
    /// ([`crate::verify_answer`]) before it is believed.
    pub async fn query(
        &self,
        queries: Vec<Query>,
    ) -> Result<(SocketAddr, Vec<QueryOutcome>), NetworkError> {
        let count = queries.len();
        let batch = BoundedVec::new(queries).map_err(|_| NetworkError::TooMany(count))?;
        match self.call(Request::Query(batch)).await? {
            (addr, Response::Answers(outcomes)) if outcomes.len() == count => {
                Ok((addr, outcomes.into_inner()))
            }
            (_, Response::Error(e)) => Err(NetworkError::Refused(e)),
            (addr, _) => Err(NetworkError::Unexpected(addr)),
        }
    }

    /// Asks for the audit entries about a patient (signed by the patient's custodian key); to
    /// be verified ([`crate::verify_audit`]) before it is believed.
    pub async fn audit(
        &self,
        request: AuditRequest,
    ) -> Result<(SocketAddr, AuditOutcome), NetworkError> {
        match self.call(Request::Audit(request)).await? {
            (addr, Response::Audit(outcome)) => Ok((addr, outcome)),
            (_, Response::Error(e)) => Err(NetworkError::Refused(e)),
            (addr, _) => Err(NetworkError::Unexpected(addr)),
        }
    }

    /// A carer's long poll for alerts (see [`crate::AlertStream`]).
    pub async fn watch(
        &self,
        request: WatchRequest,
    ) -> Result<(SocketAddr, WatchOutcome), NetworkError> {
        match self.call(Request::Watch(request)).await? {
            (addr, Response::Watch(outcome)) => Ok((addr, outcome)),
            (_, Response::Error(e)) => Err(NetworkError::Refused(e)),
            (addr, _) => Err(NetworkError::Unexpected(addr)),
        }
    }

    /// Moves every client to a fresh local socket (see [`Client::rebind`]): what a phone's
    /// network change does to it. Returns each client's new local address, in the order given.
    pub fn rebind(&self) -> Result<Vec<SocketAddr>, NetworkError> {
        self.clients
            .iter()
            .map(|client| {
                client
                    .rebind()
                    .map_err(|e| NetworkError::Unreachable(vec![(client.addr(), e)]))
            })
            .collect()
    }

    /// How many validators these are.
    pub fn len(&self) -> usize {
        self.clients.len()
    }

    /// Whether there are none (never: [`Nodes::new`] refuses an empty list).
    pub fn is_empty(&self) -> bool {
        self.clients.is_empty()
    }

    /// A carer's long poll for alerts on the `index`-th node only, and the validator its
    /// certificate names (an [`crate::AlertStream`] asks several to corroborate events).
    pub async fn watch_on(
        &self,
        index: usize,
        request: WatchRequest,
    ) -> Result<(ValidatorId, WatchOutcome), NetworkError> {
        match self.call_on(index, Request::Watch(request)).await? {
            (node, _, Response::Watch(outcome)) => Ok((node, outcome)),
            (_, _, Response::Error(e)) => Err(NetworkError::Refused(e)),
            (_, addr, _) => Err(NetworkError::Unexpected(addr)),
        }
    }

    /// The standing fences of a patient that alert this carer, as the `index`-th node alone
    /// lists them, and the validator its certificate names (a node can withhold a fence, so
    /// [`crate::standing_fences`] asks them all); check it with [`crate::verify_fences`].
    pub async fn fences_on(
        &self,
        index: usize,
        request: bmpls_net::query::FencesRequest,
    ) -> Result<(ValidatorId, bmpls_net::query::FencesOutcome), NetworkError> {
        match self.call_on(index, Request::Fences(request)).await? {
            (node, _, Response::Fences(outcome)) => Ok((node, outcome)),
            (_, _, Response::Error(e)) => Err(NetworkError::Refused(e)),
            (_, addr, _) => Err(NetworkError::Unexpected(addr)),
        }
    }

    /// Sends `request` to the `index`-th node only; returns the validator its certificate
    /// names, its address and its answer.
    async fn call_on(
        &self,
        index: usize,
        request: Request,
    ) -> Result<(ValidatorId, SocketAddr, Response), NetworkError> {
        let client = self
            .clients
            .get(index % self.clients.len())
            .ok_or(NetworkError::NoNodes)?;
        let unreachable = |e| NetworkError::Unreachable(vec![(client.addr(), e)]);
        let node = client.node().await.map_err(unreachable)?;
        let response = client.call(request).await.map_err(unreachable)?;
        Ok((node, client.addr(), response))
    }

    /// The grants a carer holds or a patient gave (signed by the carer's identity key or the
    /// patient's custodian key), as one node says: a hint for naming and checking grants,
    /// unproved (a query proves the grant it relies on).
    pub async fn grants(
        &self,
        asked: GrantsAsked,
    ) -> Result<(SocketAddr, GrantsOutcome), NetworkError> {
        match self.call(Request::Grants(asked)).await? {
            (addr, Response::Grants(outcome)) => Ok((addr, outcome)),
            (_, Response::Error(e)) => Err(NetworkError::Refused(e)),
            (addr, _) => Err(NetworkError::Unexpected(addr)),
        }
    }

    /// The sequence number the patient's next report must carry, as one node says (signed by
    /// the patient's reporter or custodian key). A wrong answer only gets reports refused.
    pub async fn next_seq(
        &self,
        patient: bmpls_types::PatientId,
    ) -> Result<(SocketAddr, NextSeqOutcome), NetworkError> {
        match self.call(Request::NextSeq(patient)).await? {
            (addr, Response::NextSeq(outcome)) => Ok((addr, outcome)),
            (_, Response::Error(e)) => Err(NetworkError::Refused(e)),
            (addr, _) => Err(NetworkError::Unexpected(addr)),
        }
    }

    /// The proof of a grant this carer holds, as one node gives it (signed by the carer's
    /// identity key); check it with [`crate::verify_grant`].
    pub async fn grant(
        &self,
        request: bmpls_net::query::GrantRequest,
    ) -> Result<(SocketAddr, bmpls_net::query::GrantOutcome), NetworkError> {
        match self.call(Request::Grant(request)).await? {
            (addr, Response::Grant(outcome)) => Ok((addr, outcome)),
            (_, Response::Error(e)) => Err(NetworkError::Refused(e)),
            (addr, _) => Err(NetworkError::Unexpected(addr)),
        }
    }

    /// The status of the first node that answers.
    pub async fn status(&self) -> Result<(SocketAddr, NodeStatus), NetworkError> {
        match self.call(Request::Status).await? {
            (addr, Response::Status(status)) => Ok((addr, status)),
            (_, Response::Error(e)) => Err(NetworkError::Refused(e)),
            (addr, _) => Err(NetworkError::Unexpected(addr)),
        }
    }

    /// Each node's status (or why it did not answer), in the order given; all asked at once,
    /// each dialled once.
    pub async fn statuses(&self) -> Vec<(SocketAddr, Result<NodeStatus, String>)> {
        self.ask_all(Request::Status)
            .await
            .into_iter()
            .map(|(addr, answer)| {
                let status = answer.and_then(|response| match response {
                    Response::Status(s) => Ok(s),
                    Response::Error(e) => Err(e.to_string()),
                    _ => Err("unexpected answer".to_string()),
                });
                (addr, status)
            })
            .collect()
    }

    /// Each node's sequence number for the patient's next report (or why it did not answer),
    /// in the order given: a validator still catching up answers an older one, so a caller
    /// takes the answer read at the greatest height.
    pub async fn next_seqs(
        &self,
        patient: bmpls_types::PatientId,
    ) -> Vec<(SocketAddr, Result<NextSeqOutcome, String>)> {
        self.ask_all(Request::NextSeq(patient))
            .await
            .into_iter()
            .map(|(addr, answer)| {
                let outcome = answer.and_then(|response| match response {
                    Response::NextSeq(outcome) => Ok(outcome),
                    Response::Error(e) => Err(e.to_string()),
                    _ => Err("unexpected answer".to_string()),
                });
                (addr, outcome)
            })
            .collect()
    }

    /// Sends `request` to every node at once (each dialled once) and returns each answer or
    /// why there is none, in the order given.
    async fn ask_all(&self, request: Request) -> Vec<(SocketAddr, Result<Response, String>)> {
        let mut asks = tokio::task::JoinSet::new();
        for (index, client) in self.clients.iter().enumerate() {
            let client = client.clone();
            let request = request.clone();
            asks.spawn(async move {
                let answer = match client.dial().await {
                    Ok(_) => client.call(request).await.map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                };
                (index, answer)
            });
        }
        let mut out: Vec<(SocketAddr, Result<Response, String>)> = self
            .clients
            .iter()
            .map(|c| (c.addr(), Err("no answer".to_string())))
            .collect();
        while let Some(joined) = asks.join_next().await {
            if let Ok((index, answer)) = joined {
                out[index].1 = answer;
            }
        }
        out
    }

    /// Everything the connections to these nodes carried so far, QUIC and TLS included
    /// ([`bmpls_net::WireStats`]): what a phone pays in bytes and wake-ups.
    pub async fn wire(&self) -> bmpls_net::WireStats {
        let mut total = bmpls_net::WireStats::default();
        for client in &self.clients {
            total = total + client.wire().await;
        }
        total
    }

    /// Closes every connection, all at once (each waits up to a moment for its peer's
    /// acknowledgement, which a node that never answered does not send).
    pub async fn close(&self) {
        let mut closing = tokio::task::JoinSet::new();
        for client in &self.clients {
            let client = client.clone();
            closing.spawn(async move { client.close().await });
        }
        while closing.join_next().await.is_some() {}
    }
}

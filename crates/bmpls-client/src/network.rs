//! Talking to the consortium: a set of validators, tried in turn. A phone keeps using the node
//! that last answered and fails over to the others when it stops answering; resubmitting a
//! transaction is safe (a node that already has it answers once it commits, or refuses it as a
//! replay once committed).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};

use bmpls_crypto::SigningKey;
use bmpls_net::alert::{WatchOutcome, WatchRequest};
use bmpls_net::limits::MAX_SUBMIT_BATCH;
use bmpls_net::query::{AuditOutcome, AuditRequest, MAX_QUERY_BATCH, Query, QueryOutcome};
use bmpls_net::{
    Client, ClientError, NodeStatus, Request, RequestError, Response, Submitted, Trust,
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
    /// Every node failed; the last failure.
    #[error(transparent)]
    Unreachable(#[from] ClientError),
    /// A node refused the request itself.
    #[error("refused: {0}")]
    Refused(RequestError),
    /// A node answered something else than the request calls for.
    #[error("unexpected answer from {0}")]
    Unexpected(SocketAddr),
}

/// Validators of one consortium, as seen by one client key.
#[derive(Debug)]
pub struct Nodes {
    clients: Vec<Client>,
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
            .map(|addr| Client::new(*addr, trust, SigningKey::from_seed(&key.to_seed())))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            clients,
            preferred: AtomicUsize::new(0),
        })
    }

    /// Sends `request` to the preferred node, then to the others in turn, until one answers.
    /// An answer that is a request error (busy, rate limited…) is returned as it is.
    pub async fn call(&self, request: Request) -> Result<(SocketAddr, Response), NetworkError> {
        let start = self.preferred.load(Ordering::Relaxed);
        let mut last = None;
        for step in 0..self.clients.len() {
            let index = (start + step) % self.clients.len();
            match self.clients[index].call(request.clone()).await {
                Ok(response) => {
                    self.preferred.store(index, Ordering::Relaxed);
                    return Ok((self.clients[index].addr(), response));
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.map_or(NetworkError::NoNodes, NetworkError::Unreachable))
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
        let client = self
            .clients
            .get(index % self.clients.len())
            .ok_or(NetworkError::NoNodes)?;
        let node = client.node().await?;
        match client.call(Request::Watch(request)).await? {
            Response::Watch(outcome) => Ok((node, outcome)),
            Response::Error(e) => Err(NetworkError::Refused(e)),
            _ => Err(NetworkError::Unexpected(client.addr())),
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

    /// Each node's status (or why it did not answer), in the order given.
    pub async fn statuses(&self) -> Vec<(SocketAddr, Result<NodeStatus, String>)> {
        let mut out = Vec::with_capacity(self.clients.len());
        for client in &self.clients {
            let status = match client.call(Request::Status).await {
                Ok(Response::Status(s)) => Ok(s),
                Ok(Response::Error(e)) => Err(e.to_string()),
                Ok(_) => Err("unexpected answer".to_string()),
                Err(e) => Err(e.to_string()),
            };
            out.push((client.addr(), status));
        }
        out
    }

    /// Closes every connection.
    pub async fn close(&self) {
        for client in &self.clients {
            client.close().await;
        }
    }
}

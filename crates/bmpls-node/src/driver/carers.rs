//! The core task's answers to carers and custodians: queries (checked against the committed
//! grants, audited, answered from the store on a blocking thread), the audit trail, and the
//! long poll for geofence alerts.

use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use tracing::debug;

use bmpls_consensus::{Message, Refusal, TxRefusal};
use bmpls_net::alert::{
    MAX_WATCH_EVENTS, MAX_WATCH_WAIT_MS, SignedAlert, WatchAnswer, WatchOutcome, WatchRequest,
};
use bmpls_net::limits::MAX_RESPONSE_BYTES;
use bmpls_net::proto::reason;
use bmpls_net::query::{Ask, AuditOutcome, AuditRequest, MAX_AUDIT_ENTRIES, Query, QueryOutcome};
use bmpls_types::{
    Audit, BoundedVec, Canonical, CarerId, Height, PublicKeyBytes, QueryKind, SignatureBytes,
    Transaction, ValidatorId,
};

use super::{Driver, Watcher, now_ms};
use crate::answer::{Permit, answer, audit_answer, authorize};
use crate::metrics::QueryLabels;

impl Driver {
    /// Checks each query against the committed grants here (the core task owns the ledger),
    /// writes an audit entry for each one allowed, and answers them from the store on a
    /// blocking thread.
    pub(super) fn query(
        &mut self,
        client: PublicKeyBytes,
        queries: Vec<Query>,
        reply: oneshot::Sender<Vec<QueryOutcome>>,
    ) {
        let now = now_ms();
        let mut audits = Vec::new();
        let checked: Vec<(Query, Result<Permit, QueryOutcome>)> = queries
            .into_iter()
            .map(|query| {
                let permit = authorize(self.engine.ledger(), &self.store, &client, &query, now);
                if let Ok(permit) = &permit {
                    audits.push(self.audit(&query, permit));
                }
                let kind = match query.ask {
                    Ask::Last => "last",
                    Ask::Track => "track",
                    Ask::Within(_) => "within",
                };
                self.metrics
                    .queries
                    .get_or_create(&QueryLabels {
                        kind: kind.into(),
                        outcome: if permit.is_ok() { "allowed" } else { "refused" }.into(),
                    })
                    .inc();
                (query, permit)
            })
            .collect();
        if !audits.is_empty() {
            let mut admitted = Vec::new();
            for (tx, outcome) in audits
                .clone()
                .into_iter()
                .zip(self.engine.submit_all(audits))
            {
                match outcome {
                    Ok(_) => admitted.push(tx),
                    // The same query at the same height is one audit entry.
                    Err(Refusal::Rule(TxRefusal::Duplicate(_))) => {}
                    Err(why) => debug!(error = %why, "audit entry not admitted"),
                }
            }
            if let Ok(txs) = BoundedVec::new(admitted) {
                self.peers
                    .broadcast(Message::Transactions(txs).encode().into());
            }
        }
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || {
            let mut budget = MAX_RESPONSE_BYTES - 1024;
            let outcomes = checked
                .into_iter()
                .map(|(query, permit)| {
                    let outcome = match permit {
                        Err(refused) => refused,
                        Ok(permit) => match answer(&store, &query, &permit) {
                            Ok(answer) => QueryOutcome::Answered(Box::new(answer)),
                            Err(e) => QueryOutcome::Failed(reason(e)),
                        },
                    };
                    let size = outcome.encoded_len();
                    if size > budget {
                        return QueryOutcome::Failed(reason(
                            "the answers are over the response size: ask fewer queries or a smaller limit",
                        ));
                    }
                    budget -= size;
                    outcome
                })
                .collect();
            let _ = reply.send(outcomes);
        });
    }

    /// The audit entries about a patient, for the patient's custodian only.
    pub(super) fn audit_trail(
        &mut self,
        client: PublicKeyBytes,
        request: AuditRequest,
        reply: oneshot::Sender<AuditOutcome>,
    ) {
        let custodian = self
            .engine
            .ledger()
            .patient(&request.patient)
            .map(|p| p.custodian_key);
        if custodian != Some(client) {
            let _ = reply.send(AuditOutcome::NotTheCustodian);
            return;
        }
        if request.limit == 0 || request.limit as usize > MAX_AUDIT_ENTRIES {
            let _ = reply.send(AuditOutcome::Failed(reason(format!(
                "the limit must be 1 to {MAX_AUDIT_ENTRIES}"
            ))));
            return;
        }
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || {
            let outcome = match audit_answer(&store, &request) {
                Ok(answer) => AuditOutcome::Answered(Box::new(answer)),
                Err(e) => AuditOutcome::Failed(reason(e)),
            };
            let _ = reply.send(outcome);
        });
    }

    /// A carer's long poll for alerts: answered at once if there are events from the height
    /// asked, else when a commit brings one or the wait runs out.
    pub(super) fn watch(
        &mut self,
        client: PublicKeyBytes,
        request: WatchRequest,
        reply: oneshot::Sender<WatchOutcome>,
    ) {
        if self.engine.ledger().carer_key(&request.carer) != Some(client) {
            let _ = reply.send(WatchOutcome::NotTheCarer);
            return;
        }
        let watcher = Watcher {
            carer: request.carer,
            from: request.from_height,
            reply,
            deadline: Instant::now()
                + Duration::from_millis(request.wait_ms.min(MAX_WATCH_WAIT_MS)),
        };
        let answer = self.alerts_for(&watcher.carer, watcher.from);
        if !answer.events.is_empty() || request.wait_ms == 0 {
            self.observe_delivery(&answer);
            let _ = watcher.reply.send(WatchOutcome::Events(answer));
        } else {
            self.watchers.push(watcher);
        }
    }

    /// The alerts for `carer` from `from` on that it may see now (it holds a standing, valid
    /// grant of the patient), signed by this validator.
    fn alerts_for(&self, carer: &CarerId, from: Height) -> WatchAnswer {
        let ledger = self.engine.ledger();
        let now = now_ms();
        let (events, more) = self.alerts.since(carer, from, MAX_WATCH_EVENTS);
        let next_height = match events.last() {
            Some(last) if more => last.height,
            _ => Height(ledger.height().0 + 1),
        };
        let events = events
            .into_iter()
            .filter(|e| ledger.carer_may_see(&e.patient, carer, now))
            .map(|event| {
                let mut signed = SignedAlert {
                    event,
                    node: ValidatorId(self.auditor.public().0),
                    sig: SignatureBytes::UNSIGNED,
                };
                self.auditor.sign(&mut signed);
                signed
            })
            .collect();
        WatchAnswer {
            events: BoundedVec::new(events).expect("at most MAX_WATCH_EVENTS"),
            next_height,
        }
    }

    /// Records the delivery latency of the events about to be sent.
    fn observe_delivery(&self, answer: &WatchAnswer) {
        let now = now_ms();
        for signed in answer.events.iter() {
            self.metrics
                .alert_latency
                .observe(now.saturating_sub(signed.event.time_ms) as f64 / 1000.0);
        }
    }

    /// Answers the watchers that have events now, or whose wait ran out.
    pub(super) fn serve_watchers(&mut self, now: Instant) {
        let watchers = std::mem::take(&mut self.watchers);
        for watcher in watchers {
            let answer = self.alerts_for(&watcher.carer, watcher.from);
            if !answer.events.is_empty() || watcher.deadline <= now {
                self.observe_delivery(&answer);
                let _ = watcher.reply.send(WatchOutcome::Events(answer));
            } else if !watcher.reply.is_closed() {
                self.watchers.push(watcher);
            }
        }
    }

    /// The signed audit entry of an allowed query.
    fn audit(&self, query: &Query, permit: &Permit) -> Transaction {
        let mut audit = Audit {
            node: ValidatorId(self.auditor.public().0),
            carer: permit.grant.carer,
            patient: query.patient,
            query: match query.ask {
                Ask::Last => QueryKind::Last,
                Ask::Track => QueryKind::Track,
                Ask::Within(_) => QueryKind::Within,
            },
            level: query.level,
            from_ms: query.from_ms,
            to_ms: query.to_ms,
            at_height: permit.at_height,
            sig: SignatureBytes::UNSIGNED,
        };
        self.auditor.sign(&mut audit);
        Transaction::Audit(audit)
    }
}

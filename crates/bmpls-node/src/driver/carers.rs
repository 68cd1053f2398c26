//! The core task's answers to carers and custodians: queries (checked against the committed
//! grants, audited, answered from the store on a blocking thread), the audit trail, and the
//! long poll for geofence alerts.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use tracing::warn;

use bmpls_consensus::{Engine, Message, Refusal, TxRefusal, WalStorage};
use bmpls_net::RequestError;
use bmpls_net::alert::{
    MAX_WATCH_EVENTS, MAX_WATCH_WAIT_MS, SignedAlert, WatchAnswer, WatchOutcome, WatchRequest,
};
use bmpls_net::limits::MAX_RESPONSE_BYTES;
use bmpls_net::proto::reason;
use bmpls_net::query::{
    Ask, AuditOutcome, AuditRequest, FencesOutcome, FencesRequest, GrantOutcome, GrantRequest,
    MAX_AUDIT_ENTRIES, Query, QueryOutcome, Unauthorized,
};
use bmpls_types::{
    Audit, BoundedVec, Canonical, CarerId, Height, LevelIndex, PatientId, PublicKeyBytes,
    QueryKind, SignatureBytes, Transaction, ValidatorId,
};

use super::watchers::{WatchReply, Watcher};
use super::{Driver, MAX_TIMED_CARERS, now_ms};
use crate::answer::{
    Permit, answer, audit_answer, authorize, fence_evidence, grant_evidence, locate_fences,
    locate_grant, not_held, query_failure,
};
use crate::metrics::QueryLabels;

impl Driver {
    /// Checks each query against the committed grants here (the core task owns the ledger),
    /// writes an audit entry for each one allowed, and answers them from the store on a
    /// blocking thread.
    pub(super) fn query(
        &mut self,
        client: PublicKeyBytes,
        queries: Vec<Query>,
        reply: oneshot::Sender<Result<Vec<QueryOutcome>, RequestError>>,
    ) {
        let now = now_ms();
        let mut audits = Vec::new();
        let checked: Vec<(Query, Result<Permit, QueryOutcome>)> = queries
            .into_iter()
            .map(|query| {
                let permit = authorize(self.engine.ledger(), &self.store, &client, &query, now)
                    .map_err(|refused| self.unless_catching_up(refused));
                if let Ok(permit) = &permit {
                    audits.push(self.audit(&query, permit));
                }
                let kind = match query.ask {
                    Ask::Last => "last",
                    Ask::Track => "track",
                    Ask::Within(_) | Ask::WithinOre(_) => "within",
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
        // Fail closed: no answer leaves unless the audit entry of every allowed query is in
        // the mempool (or already was). A refused entry (a full mempool during an ingest
        // burst, which a carer can itself cause) refuses the whole request with `Busy`, which
        // the carer may retry; entries admitted meanwhile stay, so an entry may outnumber the
        // answers it stands for, never the reverse.
        if let Err(why) = self.admit_and_gossip(audits) {
            warn!(error = %why, "audit entry not admitted: the queries are not answered");
            let _ = reply.send(Err(RequestError::Busy));
            return;
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
                            Err(e) => query_failure(e),
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
            let _ = reply.send(Ok(outcomes));
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
            let _ = reply.send(match self.catching_up(Height(0)) {
                Some(why) if custodian.is_none() => AuditOutcome::NotHeld(reason(why)),
                _ => AuditOutcome::NotTheCustodian,
            });
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
                Err(e) if not_held(&e) => AuditOutcome::NotHeld(reason(e)),
                Err(e) => AuditOutcome::Failed(reason(e)),
            };
            let _ = reply.send(outcome);
        });
    }

    /// The proof of a standing grant, for its carer only (who cares for whom is itself
    /// sensitive), read from the store on a blocking thread. Not audited: no record is read.
    pub(super) fn grant_evidence(
        &mut self,
        client: PublicKeyBytes,
        request: GrantRequest,
        reply: oneshot::Sender<GrantOutcome>,
    ) {
        let ledger = self.engine.ledger();
        let positions = match locate_grant(ledger, &self.store, &client, &request) {
            Ok(positions) => positions,
            Err(GrantOutcome::Unauthorized(why)) => {
                let _ = reply.send(match self.not_known_yet(&why) {
                    Some(lag) => GrantOutcome::NotHeld(reason(lag)),
                    None => GrantOutcome::Unauthorized(why),
                });
                return;
            }
            Err(refused) => {
                let _ = reply.send(refused);
                return;
            }
        };
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || {
            let (grant_at, keys_at) = positions;
            let outcome = match grant_evidence(&store, grant_at, &keys_at) {
                Ok(evidence) => GrantOutcome::Proved(Box::new(evidence)),
                Err(e) if not_held(&e) => GrantOutcome::NotHeld(reason(e)),
                Err(e) => GrantOutcome::Failed(reason(e)),
            };
            let _ = reply.send(outcome);
        });
    }

    /// The standing fences of a patient that alert the carer of a standing grant, for that
    /// carer only, proved from the store on a blocking thread. Not audited: no record is read.
    pub(super) fn fences(
        &mut self,
        client: PublicKeyBytes,
        request: FencesRequest,
        reply: oneshot::Sender<FencesOutcome>,
    ) {
        let ledger = self.engine.ledger();
        let permit = match locate_fences(ledger, &self.store, &client, &request) {
            Ok(permit) => permit,
            Err(FencesOutcome::Unauthorized(why)) => {
                let _ = reply.send(match self.not_known_yet(&why) {
                    Some(lag) => FencesOutcome::Failed(reason(lag)),
                    None => FencesOutcome::Unauthorized(why),
                });
                return;
            }
            Err(refused) => {
                let _ = reply.send(refused);
                return;
            }
        };
        // The last block the alerts have seen, which the store holds; the ledger (whose fences
        // were read) may be a few blocks past it, so the list is as of this block or later.
        let Some(tip) = self.tip.clone() else {
            let _ = reply.send(FencesOutcome::Failed(reason("no block committed yet")));
            return;
        };
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || {
            let outcome = match fence_evidence(&store, &permit, tip) {
                Ok(evidence) => FencesOutcome::Proved(Box::new(evidence)),
                Err(e) => FencesOutcome::Failed(reason(e)),
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
        reply: WatchReply,
    ) {
        if self.engine.ledger().carer_key(&request.carer) != Some(client) {
            // The carer's client resumes from one above a height it saw certified: a
            // validator below it has not applied every block yet, and the carer's enrolment
            // may be among those it has still to apply.
            let client_saw = Height(request.from_height.0.saturating_sub(1));
            let _ = reply.send(Ok(match self.catching_up(client_saw) {
                Some(why) => WatchOutcome::NotHeld(reason(why)),
                None => WatchOutcome::NotTheCarer,
            }));
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
            self.deliver(watcher, answer, false);
            return;
        }
        if let Err(watcher) = self.watchers.add(watcher) {
            // Full: "nothing yet" now, which the carer's client asks again after.
            self.metrics.watchers_refused.inc();
            let _ = watcher.reply.send(Ok(WatchOutcome::Events(answer)));
        }
        self.count_watchers();
    }

    /// Why this validator cannot yet tell whether what a request names exists, if it is
    /// catching up: a peer was seen deciding a later height than this validator has applied,
    /// or the client has seen the chain reach `client_saw` (0 when it does not say), past this
    /// validator's last block. A grant or an enrolment it does not know may then be in the
    /// blocks it has still to apply, and a refusal would be false: it says "not held here"
    /// instead, and the client asks another validator.
    ///
    /// A byzantine peer can name any height, so an honest validator may say this of a carer
    /// that is truly unknown while such a peer lies: the client then hears "catching up" from
    /// it rather than a refusal, and no answer either way.
    pub(super) fn catching_up(&self, client_saw: Height) -> Option<String> {
        lagging(
            self.engine.ledger().height(),
            self.engine.seen_ahead().map(|h| Height(h.0)),
            client_saw,
        )
    }

    /// Why this validator may not know yet what the refusal `why` names, if it may not: the
    /// refusal is of a grant or a carer, and the validator is catching up (see
    /// [`Driver::catching_up`]).
    fn not_known_yet(&self, why: &Unauthorized) -> Option<String> {
        unknown_yet(why)
            .then(|| self.catching_up(Height(0)))
            .flatten()
    }

    /// A query refused for naming what this validator does not know is "not held here" while
    /// it catches up.
    fn unless_catching_up(&self, refused: QueryOutcome) -> QueryOutcome {
        match refused {
            QueryOutcome::Unauthorized(why) => {
                not_held_if(self.not_known_yet(&why), QueryOutcome::Unauthorized(why))
            }
            other => other,
        }
    }

    /// Shows how many long polls are held.
    fn count_watchers(&self) {
        let held = i64::try_from(self.watchers.len()).unwrap_or(i64::MAX);
        self.metrics.watchers.set(held);
    }

    /// The alerts for `carer` from `from` on that it may see now (it holds a standing, valid
    /// grant of the patient), signed by this validator.
    fn alerts_for(&self, carer: &CarerId, from: Height) -> WatchAnswer {
        let ledger = self.engine.ledger();
        let now = now_ms();
        let (events, more) = self.alerts.since(carer, from, MAX_WATCH_EVENTS);
        // One above the last block the alerts have seen, which the answer's certified tip
        // shows the carer (the ledger may be ahead of it while a batch of blocks is applied).
        let seen = self.tip.as_ref().map_or(0, |t| t.header.height.0);
        let next_height = match events.last() {
            Some(last) if more => last.height,
            _ => Height(seen + 1),
        };
        // At the fence's level or finer, inside the data window, and under a grant that
        // stood when the event was decided: an Exit of a time nobody was granted is not
        // handed to whoever is granted later. The patients of the others are named.
        let (events, held_back): (Vec<_>, Vec<_>) = events.into_iter().partition(|e| {
            ledger.carer_may_see_alert(&e.patient, carer, (e.level, e.epoch, e.height), now)
        });
        // Only where the carer was entitled to the event when it was decided (a revocation
        // or an expiry since), so that the note tells a carer of no alert it never could see.
        let withheld: BTreeSet<PatientId> = held_back
            .iter()
            .filter(|e| {
                let decided = (e.level, e.epoch, e.height);
                ledger.carer_was_entitled_to_alert(&e.patient, carer, decided, e.time_ms)
            })
            .map(|e| e.patient)
            .collect();
        let events = events
            .into_iter()
            .map(|event| {
                let mut signed = SignedAlert {
                    event,
                    node: ValidatorId(self.auditor.public().0),
                    sig: SignatureBytes::UNSIGNED,
                };
                self.auditor.sign(&mut signed, ledger.chain_id());
                signed
            })
            .collect();
        WatchAnswer {
            events: BoundedVec::new(events).expect("at most MAX_WATCH_EVENTS"),
            next_height,
            tip: self.tip.clone().map(Box::new),
            // At most one per event held back, and those are at most MAX_WATCH_EVENTS.
            withheld: BoundedVec::new(withheld.into_iter().collect())
                .expect("at most MAX_WATCH_EVENTS"),
        }
    }

    /// Records the delivery latency of the events about to be sent to `carer`, leaving out
    /// those this validator delivered to it before (a watch resuming from an old height) and
    /// every event of an answer that is not `live`: an event given at once to a request that
    /// found it already there (a replay, a watch that was not waiting when it was decided, or
    /// another validator corroborating an alert the carer's client heard of elsewhere) does not
    /// measure how fast the system delivers; one pushed to a watch that was waiting does.
    fn observe_delivery(&mut self, carer: &CarerId, answer: &WatchAnswer, live: bool) {
        let now = now_ms();
        let delivered = self.delivered.get(carer).copied();
        let newest = answer.events.iter().map(|s| s.event.height).max();
        if let Some(newest) = newest.filter(|n| delivered.is_none_or(|d| *n > d)) {
            if self.delivered.len() >= MAX_TIMED_CARERS && delivered.is_none() {
                self.delivered.clear();
            }
            self.delivered.insert(*carer, newest);
        }
        for signed in answer
            .events
            .iter()
            .filter(|_| live)
            .filter(|s| delivered.is_none_or(|d| s.event.height > d))
        {
            self.metrics
                .alert_latency
                .observe(now.saturating_sub(signed.event.time_ms) as f64 / 1000.0);
        }
    }

    /// Answers the watchers of `carers` (a commit brought them events) that have events now.
    pub(super) fn serve_carers(&mut self, carers: &BTreeSet<CarerId>) {
        for carer in carers {
            for watcher in self.watchers.take_carer(carer) {
                let answer = self.alerts_for(&watcher.carer, watcher.from);
                if !answer.events.is_empty() {
                    self.deliver(watcher, answer, true);
                } else if !watcher.reply.is_closed() {
                    // Its events were below what it asks from: it waits on. It held a place
                    // a moment ago, so there is room.
                    if let Err(watcher) = self.watchers.add(watcher) {
                        let _ = watcher.reply.send(Ok(WatchOutcome::Events(answer)));
                    }
                }
            }
        }
        self.count_watchers();
    }

    /// Answers the watchers whose wait ran out.
    pub(super) fn serve_expired(&mut self, now: Instant) {
        for watcher in self.watchers.take_expired(now) {
            let answer = self.alerts_for(&watcher.carer, watcher.from);
            self.deliver(watcher, answer, false);
        }
        self.count_watchers();
    }

    /// Answers `watcher` with `answer` (`live`: pushed to a watch that was waiting, see
    /// [`Driver::observe_delivery`]). A delivery of events is audited like a query, one entry per
    /// patient and fence level (kind `Alerts`, the window the events' block times, at the
    /// newest event's height), and fails closed as a query does: unless every entry was admitted
    /// (or already waits or is committed: the same delivery again is the same entry), the
    /// watch is refused as `Busy`, which the carer's client retries elsewhere or later.
    fn deliver(&mut self, watcher: Watcher, answer: WatchAnswer, live: bool) {
        let audits = self.delivery_audits(&watcher.carer, &answer);
        if let Err(why) = self.admit_and_gossip(audits) {
            warn!(error = %why, "audit entry of an alert delivery not admitted: not delivered");
            let _ = watcher.reply.send(Err(RequestError::Busy));
            return;
        }
        self.observe_delivery(&watcher.carer, &answer, live);
        let _ = watcher.reply.send(Ok(WatchOutcome::Events(answer)));
    }

    /// Submits audit entries ([`admit_audits`]) and gossips those newly admitted; the first
    /// refusal other than "already waiting", if any, means nothing they stand for may leave.
    fn admit_and_gossip(&mut self, audits: Vec<Transaction>) -> Result<(), Refusal> {
        if audits.is_empty() {
            return Ok(());
        }
        let AuditAdmission { admitted, refused } = admit_audits(&mut self.engine, audits);
        if let Ok(txs) = BoundedVec::new(admitted) {
            self.peers
                .broadcast(Message::Transactions(txs).encode().into());
        }
        refused.map_or(Ok(()), Err)
    }

    /// The signed audit entries of delivering `answer` to `carer`.
    fn delivery_audits(&self, carer: &CarerId, answer: &WatchAnswer) -> Vec<Transaction> {
        let mut groups: BTreeMap<(PatientId, LevelIndex), (u64, u64, Height)> = BTreeMap::new();
        for signed in answer.events.iter() {
            let e = &signed.event;
            let group = groups
                .entry((e.patient, e.level))
                .or_insert((e.time_ms, e.time_ms, e.height));
            group.0 = group.0.min(e.time_ms);
            group.1 = group.1.max(e.time_ms);
            group.2 = group.2.max(e.height);
        }
        groups
            .into_iter()
            .map(|((patient, level), (from_ms, to_ms, at_height))| {
                let mut audit = Audit {
                    node: ValidatorId(self.auditor.public().0),
                    carer: *carer,
                    patient,
                    query: QueryKind::Alerts,
                    level,
                    from_ms,
                    to_ms,
                    at_height,
                    sig: SignatureBytes::UNSIGNED,
                };
                self.auditor
                    .sign(&mut audit, self.engine.ledger().chain_id());
                Transaction::Audit(audit)
            })
            .collect()
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
                Ask::Within(_) | Ask::WithinOre(_) => QueryKind::Within,
            },
            level: query.level,
            from_ms: query.from_ms,
            to_ms: query.to_ms,
            at_height: permit.at_height,
            sig: SignatureBytes::UNSIGNED,
        };
        self.auditor
            .sign(&mut audit, self.engine.ledger().chain_id());
        Transaction::Audit(audit)
    }
}

/// The outcome of submitting a request's audit entries.
#[derive(Debug)]
struct AuditAdmission {
    /// Entries newly in the mempool, to gossip.
    admitted: Vec<Transaction>,
    /// The first refusal other than "already waiting", if any: then no query may be answered.
    refused: Option<Refusal>,
}

/// Submits the audit entries of a request's allowed queries. The same query at the same
/// height is one entry, so an entry already waiting counts as admitted.
fn admit_audits<W: WalStorage>(engine: &mut Engine<W>, audits: Vec<Transaction>) -> AuditAdmission {
    let mut admission = AuditAdmission {
        admitted: Vec::new(),
        refused: None,
    };
    for (tx, outcome) in audits.clone().into_iter().zip(engine.submit_all(audits)) {
        match outcome {
            Ok(_) => admission.admitted.push(tx),
            Err(Refusal::Rule(TxRefusal::Duplicate(_))) => {}
            Err(why) => {
                admission.refused.get_or_insert(why);
            }
        }
    }
    admission
}

/// Whether a refusal names something a validator that has not applied every block may not
/// know yet: a grant committed since, or the carer's enrolment. A revocation, a level or a
/// window is as final behind as ahead, or the client's own to fix.
fn unknown_yet(why: &Unauthorized) -> bool {
    matches!(
        why,
        Unauthorized::UnknownGrant | Unauthorized::NotTheGrantee
    )
}

/// Why a validator whose last block is `applied` may not know yet what a request names, if it
/// may not: a peer was seen deciding `peers_decide` (already past the next height, see
/// `Engine::seen_ahead`), or the client saw the chain reach `client_saw`, beyond `applied`.
fn lagging(applied: Height, peers_decide: Option<Height>, client_saw: Height) -> Option<String> {
    if peers_decide.is_none() && client_saw <= applied {
        return None;
    }
    let past = peers_decide.map_or(client_saw.0, |h| h.0.saturating_sub(1).max(client_saw.0));
    Some(format!(
        "this validator is catching up (it has applied blocks up to {}, the chain is at {} or later) and may not know it yet: ask another",
        applied.0, past
    ))
}

/// `refused`, or "not held here" if the validator is `lagging`.
fn not_held_if(lagging: Option<String>, refused: QueryOutcome) -> QueryOutcome {
    match lagging {
        Some(why) => QueryOutcome::NotHeld(reason(why)),
        None => refused,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bmpls_consensus::{Genesis, Ledger, MemoryWal};
    use bmpls_crypto::SigningKey;
    use bmpls_types::{LevelIndex, PatientId};

    const GENESIS: &str = include_str!("../../../../config/genesis.toml");

    /// An engine of the shipped genesis whose mempool holds at most `mempool_txs`.
    fn engine(mempool_txs: usize) -> Engine<MemoryWal> {
        let text = GENESIS
            .replace(
                "mempool_txs = 100000",
                &format!("mempool_txs = {mempool_txs}"),
            )
            .replace(
                "max_block_txs = 5000",
                &format!("max_block_txs = {mempool_txs}"),
            );
        let genesis = Genesis::from_toml(&text).expect("genesis");
        let ledger = Ledger::genesis(genesis.validators.clone(), genesis.genesis_time_ms);
        let now = genesis.genesis_time_ms;
        Engine::start(
            genesis,
            SigningKey::from_seed(&[1; 32]),
            ledger,
            MemoryWal::default(),
            now,
        )
        .expect("starts")
        .0
    }

    fn audit_of(node: &SigningKey, from_ms: u64) -> Transaction {
        let mut audit = Audit {
            node: ValidatorId(node.public().0),
            carer: CarerId([3; 16]),
            patient: PatientId([7; 16]),
            query: QueryKind::Track,
            level: LevelIndex(0),
            from_ms,
            to_ms: from_ms + 1,
            at_height: Height(0),
            sig: SignatureBytes::UNSIGNED,
        };
        let chain = Genesis::from_toml(GENESIS)
            .expect("genesis")
            .validators
            .crypto()
            .chain_id()
            .clone();
        node.sign(&mut audit, &chain);
        Transaction::Audit(audit)
    }

    #[test]
    fn a_validator_behind_says_so_instead_of_refusing_what_it_may_not_know() {
        let unknown = || QueryOutcome::Unauthorized(Unauthorized::UnknownGrant);
        // In step: a refusal stands.
        assert_eq!(lagging(Height(10), None, Height(0)), None);
        assert_eq!(lagging(Height(10), None, Height(10)), None);
        assert_eq!(not_held_if(None, unknown()), unknown());
        // A peer deciding height 40, or a client that saw height 30 certified: not held here.
        let peer = lagging(Height(10), Some(Height(40)), Height(0)).expect("behind");
        assert!(
            peer.contains("up to 10") && peer.contains("at 39"),
            "{peer}"
        );
        let client = lagging(Height(10), None, Height(30)).expect("behind");
        assert!(client.contains("at 30"), "{client}");
        assert!(matches!(
            not_held_if(Some(client), unknown()),
            QueryOutcome::NotHeld(_)
        ));
        // What catching up cannot change is refused whatever the height.
        assert!(unknown_yet(&Unauthorized::UnknownGrant));
        assert!(unknown_yet(&Unauthorized::NotTheGrantee));
        assert!(!unknown_yet(&Unauthorized::Revoked));
        assert!(!unknown_yet(&Unauthorized::LevelTooFine {
            granted: 2,
            asked: 1
        }));
    }

    #[test]
    fn a_full_mempool_refuses_the_queries_and_a_waiting_entry_does_not() {
        let node = SigningKey::from_seed(&[1; 32]);
        let mut engine = engine(2);
        let first = admit_audits(&mut engine, vec![audit_of(&node, 1)]);
        assert_eq!((first.admitted.len(), first.refused), (1, None));
        // The same query again: its entry is already waiting, which is enough.
        let again = admit_audits(&mut engine, vec![audit_of(&node, 1)]);
        assert_eq!((again.admitted.len(), again.refused), (0, None));
        // Two more queries, one of which no longer fits: the request is refused.
        let full = admit_audits(&mut engine, vec![audit_of(&node, 2), audit_of(&node, 3)]);
        assert_eq!(full.admitted.len(), 1);
        assert!(
            matches!(full.refused, Some(Refusal::Full { .. })),
            "{full:?}"
        );
    }
}

//! A carer's geofence alerts: a long poll that resumes from the last height seen, on whichever
//! validators answer, so that no event is lost across reconnects or a validator's failure, and
//! no single validator can deceive the carer.
//!
//! One byzantine validator could otherwise forge an event (an `Enter`: the carer believes the
//! patient is home), withhold one (the real `Exit`), or name a resume height far ahead so that
//! the carer never asks for the real events again. So:
//! - an answer is believed only if its resume height is at most one above a block the answer
//!   proves with a commit certificate ([`WatchAnswer::tip`]), every event is addressed to this
//!   carer, signed by a genesis validator and at a certified height ([`verify_alerts`]);
//! - an event is delivered once `f + 1` distinct genesis validators signed it (`f = (n - 1) / 3`
//!   of `n`), so at least one honest validator derived it from the chain; the stream asks
//!   further validators while an event lacks them;
//! - an event fewer than `f + 1` signed, while `f + 1` validators' answers cover its height
//!   without it, is forged (an honest validator that reached its height would hold it): it is
//!   reported as a [`WatchFault`] and dropped;
//! - the resume height moves only to what `f + 1` answers cover (one of them is honest, and
//!   held every event below it) and never past an event still waiting for signatures.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use bmpls_crypto::ValidatorSet;
use bmpls_crypto::sign::verify;
use bmpls_net::alert::{AlertEvent, AlertKind, WatchAnswer, WatchOutcome, WatchRequest};
use bmpls_types::{CarerId, Height, PatientId, TxHash, ValidatorId};

use crate::carer::{AnswerError, verify_headers};
use crate::network::{NetworkError, Nodes};

/// Faults a stream keeps for its caller (the oldest are dropped first).
pub const MAX_WATCH_FAULTS: usize = 64;

/// How long a poll pauses when an event still waits for signatures after every node was
/// asked (a node lagging behind): the nodes answer such a poll at once, so without a pause a
/// carer's loop would spin into their rate limits.
pub const CORROBORATION_PAUSE: Duration = Duration::from_millis(200);

/// Why a watch step failed.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// No validator answered; retry later (the stream resumes where it was).
    #[error(transparent)]
    Network(#[from] NetworkError),
    /// `f + 1` nodes say this key is not the carer's.
    #[error("the nodes refused: this key is not the enrolled carer's")]
    NotTheCarer,
    /// The validators that answered are catching up with the chain and do not know the carer
    /// yet; retry later (the stream resumes where it was).
    #[error("the validators are catching up with the chain: {0}")]
    Lagging(String),
    /// An event failed verification.
    #[error(transparent)]
    Answer(#[from] AnswerError),
    /// Fewer validators' addresses than it takes to corroborate an event: one validator alone
    /// could forge or hide alerts.
    #[error(
        "alerts need {needed} validators' addresses to be believed ({given} given): one validator alone could forge or hide an alert"
    )]
    TooFewNodes {
        /// Addresses given.
        given: usize,
        /// `f + 1` of the genesis validators.
        needed: usize,
    },
}

/// Something a validator did that an honest one does not; the stream carried on without it.
#[derive(Debug, thiserror::Error)]
pub enum WatchFault {
    /// The validator's answer failed verification and was set aside whole.
    #[error("validator {node}'s watch answer was set aside: {error}")]
    BadAnswer {
        /// The validator that answered.
        node: ValidatorId,
        /// What failed.
        error: AnswerError,
    },
    /// An event too few validators signed, which `f + 1` answers covering its height lack.
    #[error("a forged {:?} alert at height {} signed by {signers:?} was dropped", event.kind, event.height.0)]
    Forged {
        /// The event.
        event: AlertEvent,
        /// Who signed it.
        signers: Vec<ValidatorId>,
    },
    /// The validator said this key is not the carer's, which fewer than `f + 1` said.
    #[error("validator {node} refused the carer's key, which other validators accept")]
    FalseRefusal {
        /// The validator that answered.
        node: ValidatorId,
    },
}

/// A watch answer after [`verify_alerts`]: events with the validator that signed each, and a
/// resume height the chain is proved to reach.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedWatch {
    /// The events, in the answer's order, each with its signer.
    pub events: Vec<(AlertEvent, ValidatorId)>,
    /// Where the answer says to resume; at most one above its certified tip.
    pub next_height: Height,
    /// Patients whose events the node says it holds back under the carer's grant as it sees
    /// it ([`WatchAnswer::withheld`]).
    pub withheld: HashSet<PatientId>,
}

fn wrong(why: &str) -> AnswerError {
    AnswerError::Wrong(why.into())
}

/// Checks a watch answer to a request from `from`: its tip's commit certificate; a resume
/// height at most one above the tip; each event addressed to `carer`, from `from` up to the
/// tip, and signed by a genesis validator. It does not make an event true: one validator's
/// signature is not corroboration (see the module documentation).
pub fn verify_alerts(
    answer: &WatchAnswer,
    carer: &CarerId,
    from: Height,
    validators: &ValidatorSet,
) -> Result<VerifiedWatch, AnswerError> {
    let tip = match &answer.tip {
        Some(tip) => verify_headers(std::slice::from_ref(&**tip), validators)?
            .first()
            .map_or(0, |h| h.height.0),
        None => 0,
    };
    if answer.next_height.0 > tip.saturating_add(1) {
        return Err(wrong("a resume height above the certified tip"));
    }
    let events = answer
        .events
        .iter()
        .map(|signed| {
            if signed.event.carer != *carer {
                return Err(wrong("an alert for another carer"));
            }
            if signed.event.height < from || signed.event.height.0 > tip {
                return Err(wrong("an alert outside the heights asked and certified"));
            }
            if validators.get(&signed.node).is_none() {
                return Err(wrong("an alert signed outside genesis"));
            }
            verify(
                signed,
                validators.chain_id(),
                &signed.node.public_key(),
                "alert",
            )
            .map_err(|source| AnswerError::Proof {
                what: "alert signature",
                source,
            })?;
            Ok((signed.event.clone(), signed.node))
        })
        .collect::<Result<_, _>>()?;
    Ok(VerifiedWatch {
        events,
        next_height: answer.next_height,
        withheld: answer.withheld.iter().copied().collect(),
    })
}

/// What the answers of one round say about each event, and how far they cover.
#[derive(Debug)]
struct Tally {
    from: Height,
    /// `f + 1`.
    quorum: usize,
    /// Per answering validator: its resume height, the events its answer held and the
    /// patients whose events it says it holds back.
    answers: HashMap<ValidatorId, (Height, HashSet<AlertEvent>, HashSet<PatientId>)>,
    /// Per event: its distinct signers, and when it was first seen (to keep chain order).
    signers: HashMap<AlertEvent, (HashSet<ValidatorId>, usize)>,
}

/// An event judged forged, with the validators that signed it.
type Forged = (AlertEvent, Vec<ValidatorId>);

/// Where an event stands after a round.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Corroborated,
    Forged,
    Waiting,
}

impl Tally {
    fn new(from: Height, validators: usize) -> Self {
        Self {
            from,
            quorum: validators.saturating_sub(1) / 3 + 1,
            answers: HashMap::new(),
            signers: HashMap::new(),
        }
    }

    fn add(&mut self, node: ValidatorId, answer: VerifiedWatch) {
        let mut held = HashSet::new();
        for (event, signer) in answer.events {
            let order = self.signers.len();
            self.signers
                .entry(event.clone())
                .or_insert_with(|| (HashSet::new(), order))
                .0
                .insert(signer);
            held.insert(event);
        }
        self.answers
            .insert(node, (answer.next_height, held, answer.withheld));
    }

    fn verdict(&self, event: &AlertEvent) -> Verdict {
        let signed = self.signers.get(event).map_or(0, |(s, _)| s.len());
        if signed >= self.quorum {
            return Verdict::Corroborated;
        }
        // An honest validator whose answer covers the event's height holds the event if it
        // is true, unless it says it holds the patient's events back under the grant (which
        // validators at different heights can judge differently); `f + 1` answers that cover
        // the height, lack the event and hold nothing back include an honest one.
        let denied = self
            .answers
            .values()
            .filter(|(next, held, withheld)| {
                event.height < *next && !held.contains(event) && !withheld.contains(&event.patient)
            })
            .count();
        if denied >= self.quorum {
            Verdict::Forged
        } else {
            Verdict::Waiting
        }
    }

    /// Whether asking another validator could still change the outcome.
    fn unsettled(&self) -> bool {
        self.answers.len() < self.quorum
            || self
                .signers
                .keys()
                .any(|e| self.verdict(e) == Verdict::Waiting)
    }

    /// The corroborated events in chain order, the forged ones, and the height to resume
    /// from: what `f + 1` answers cover, held below any event still waiting.
    fn settle(&self) -> (Vec<AlertEvent>, Vec<Forged>, Height) {
        let mut covered: Vec<Height> = self.answers.values().map(|(next, ..)| *next).collect();
        covered.sort_unstable_by(|a, b| b.cmp(a));
        let mut next = covered
            .get(self.quorum - 1)
            .copied()
            .unwrap_or(self.from)
            .max(self.from);
        let mut delivered = Vec::new();
        let mut forged = Vec::new();
        for (event, (signers, order)) in &self.signers {
            match self.verdict(event) {
                Verdict::Corroborated => delivered.push((event.clone(), *order)),
                Verdict::Forged => forged.push((event.clone(), signers.iter().copied().collect())),
                Verdict::Waiting => next = next.min(event.height.max(self.from)),
            }
        }
        delivered.sort_by_key(|(e, order)| (e.height, *order));
        let delivered = delivered.into_iter().map(|(e, _)| e).collect();
        (delivered, forged, next)
    }
}

/// A carer's stream of alerts.
pub struct AlertStream {
    carer: CarerId,
    validators: ValidatorSet,
    next: Height,
    seen: HashSet<(TxHash, u64, AlertKind, u64)>,
    /// Which node a round asks first; it turns, so that a node that answers "nothing" to
    /// every long poll delays the carer by one wait at most.
    round: usize,
    faults: Vec<WatchFault>,
}

impl AlertStream {
    /// A stream for `carer` from `from` on.
    pub fn new(carer: CarerId, validators: ValidatorSet, from: Height) -> Self {
        Self {
            carer,
            validators,
            next: from,
            seen: HashSet::new(),
            round: 0,
            faults: Vec::new(),
        }
    }

    /// The height the stream will ask from next (persist it to resume after a restart).
    pub fn next_height(&self) -> Height {
        self.next
    }

    /// The faults seen since the last call, oldest first (at most [`MAX_WATCH_FAULTS`]).
    pub fn take_faults(&mut self) -> Vec<WatchFault> {
        std::mem::take(&mut self.faults)
    }

    fn fault(&mut self, fault: WatchFault) {
        if self.faults.len() == MAX_WATCH_FAULTS {
            self.faults.remove(0);
        }
        self.faults.push(fault);
    }

    /// Waits up to `wait_ms` for alerts on one node, asks others until every event is
    /// corroborated or shown forged (or every node was asked), and returns the new
    /// corroborated ones, in chain order, each once.
    pub async fn next_events(
        &mut self,
        nodes: &Nodes,
        wait_ms: u64,
    ) -> Result<Vec<AlertEvent>, WatchError> {
        let from = self.next;
        let mut tally = Tally::new(from, self.validators.validators().len());
        if nodes.len() < tally.quorum {
            return Err(WatchError::TooFewNodes {
                given: nodes.len(),
                needed: tally.quorum,
            });
        }
        let start = self.round;
        self.round = self.round.wrapping_add(1);
        let mut refusals = Vec::new();
        let mut last_error = None;
        for step in 0..nodes.len() {
            if !tally.unsettled() {
                break;
            }
            let request = WatchRequest {
                carer: self.carer,
                from_height: from,
                // Only the first answer is a long poll; the others corroborate what it said.
                wait_ms: if tally.answers.is_empty() { wait_ms } else { 0 },
            };
            let (node, answer) = match nodes.watch_on(start.wrapping_add(step), request).await {
                Ok((node, WatchOutcome::Events(answer))) => (node, answer),
                Ok((_, WatchOutcome::NotHeld(why))) => {
                    // Catching up with the chain, it may not know the carer yet: no answer
                    // and no refusal, as if it were down.
                    last_error = Some(WatchError::Lagging(why.as_str().to_string()));
                    continue;
                }
                Ok((node, WatchOutcome::NotTheCarer)) => {
                    refusals.push(node);
                    if refusals.len() >= tally.quorum {
                        return Err(WatchError::NotTheCarer);
                    }
                    continue;
                }
                Err(e) => {
                    last_error = Some(e.into());
                    continue;
                }
            };
            if tally.answers.contains_key(&node) {
                continue;
            }
            match verify_alerts(&answer, &self.carer, from, &self.validators) {
                Ok(verified) => tally.add(node, verified),
                Err(error) => self.fault(WatchFault::BadAnswer { node, error }),
            }
        }
        if tally.answers.is_empty() {
            if let Some(e) = last_error {
                return Err(e);
            }
        }
        for node in refusals {
            self.fault(WatchFault::FalseRefusal { node });
        }
        let waiting = tally.unsettled();
        let (delivered, forged, next) = tally.settle();
        if waiting && delivered.is_empty() && wait_ms > 0 {
            tokio::time::sleep(CORROBORATION_PAUSE.min(Duration::from_millis(wait_ms))).await;
        }
        for (event, signers) in forged {
            self.fault(WatchFault::Forged { event, signers });
        }
        self.next = self.next.max(next);
        // Nothing below the resume height is asked again: forget it.
        let floor = self.next.0;
        self.seen.retain(|(_, height, _, _)| *height >= floor);
        Ok(delivered
            .into_iter()
            .filter(|e| self.seen.insert((e.fence, e.height.0, e.kind, e.seq.0)))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use bmpls_types::{Epoch, LevelIndex, Seq};

    use super::*;

    fn node(i: u8) -> ValidatorId {
        ValidatorId([i; 32])
    }

    fn event(kind: AlertKind, height: u64) -> AlertEvent {
        AlertEvent {
            fence: TxHash([7; 32]),
            patient: PatientId([1; 16]),
            carer: CarerId([2; 16]),
            kind,
            seq: Seq(height),
            level: LevelIndex(2),
            epoch: Epoch(0),
            height: Height(height),
            time_ms: height * 1_000,
        }
    }

    /// An answer from validator `from`, every event signed by it.
    fn answer(from: u8, events: &[AlertEvent], next: u64) -> (ValidatorId, VerifiedWatch) {
        (
            node(from),
            VerifiedWatch {
                events: events.iter().map(|e| (e.clone(), node(from))).collect(),
                next_height: Height(next),
                withheld: HashSet::new(),
            },
        )
    }

    /// Tallies `answers` of four validators (f = 1) to a request from height 1.
    fn check(answers: Vec<(ValidatorId, VerifiedWatch)>) -> (Tally, Vec<AlertEvent>, usize, u64) {
        let mut tally = Tally::new(Height(1), 4);
        for (node, answer) in answers {
            tally.add(node, answer);
        }
        let (delivered, forged, next) = tally.settle();
        (tally, delivered, forged.len(), next.0)
    }

    #[test]
    fn one_answer_alone_delivers_nothing_and_moves_nothing() {
        let exit = event(AlertKind::Exit, 5);
        let (tally, delivered, forged, next) = check(vec![answer(1, &[exit], 10)]);
        assert!(tally.unsettled(), "ask another validator");
        assert_eq!((delivered, forged, next), (vec![], 0, 1));
    }

    #[test]
    fn an_event_two_validators_sign_is_delivered_and_the_stream_moves_on() {
        let exit = event(AlertKind::Exit, 5);
        let (tally, delivered, forged, next) = check(vec![
            answer(1, std::slice::from_ref(&exit), 10),
            answer(2, std::slice::from_ref(&exit), 9),
        ]);
        assert!(!tally.unsettled());
        assert_eq!((delivered, forged, next), (vec![exit], 0, 9));
    }

    #[test]
    fn a_withheld_event_holds_the_stream_until_a_third_validator_corroborates_it() {
        let exit = event(AlertKind::Exit, 5);
        let withheld = vec![
            answer(1, &[], 10),
            answer(2, std::slice::from_ref(&exit), 10),
        ];
        let (tally, delivered, _, next) = check(withheld.clone());
        assert!(tally.unsettled());
        assert_eq!((delivered, next), (vec![], 5), "not past the waiting event");
        let mut three = withheld;
        three.push(answer(3, std::slice::from_ref(&exit), 10));
        let (tally, delivered, forged, next) = check(three);
        assert!(!tally.unsettled());
        assert_eq!((delivered, forged, next), (vec![exit], 0, 10));
    }

    #[test]
    fn a_forged_event_is_refuted_by_two_answers_that_cover_its_height() {
        let enter = event(AlertKind::Enter, 5);
        let exit = event(AlertKind::Exit, 6);
        let (tally, delivered, forged, next) = check(vec![
            answer(1, std::slice::from_ref(&enter), 10),
            answer(2, std::slice::from_ref(&exit), 10),
            answer(3, std::slice::from_ref(&exit), 10),
        ]);
        assert!(!tally.unsettled());
        assert_eq!((delivered, forged, next), (vec![exit], 1, 10));
    }

    #[test]
    fn validators_that_hold_a_patient_back_under_a_revoked_grant_do_not_refute_its_events() {
        // Node 1 has not seen the revocation yet and delivers the Exit; nodes 2 and 3 have, and
        // say they hold the patient's events back: no forgery, and nothing delivered.
        let exit = event(AlertKind::Exit, 5);
        let revoked = |from: u8| {
            let (n, mut answer) = answer(from, &[], 10);
            answer.withheld.insert(exit.patient);
            (n, answer)
        };
        let (_, delivered, forged, _) = check(vec![
            answer(1, std::slice::from_ref(&exit), 10),
            revoked(2),
            revoked(3),
        ]);
        assert_eq!((delivered, forged), (vec![], 0));
        // Without the note, the same two answers refute it.
        let (_, _, forged, _) = check(vec![
            answer(1, std::slice::from_ref(&exit), 10),
            answer(2, &[], 10),
            answer(3, &[], 10),
        ]);
        assert_eq!(forged, 1);
    }

    #[test]
    fn lagging_answers_neither_refute_nor_move_past_an_event() {
        let exit = event(AlertKind::Exit, 5);
        // Two validators have not reached height 5 yet: they deny nothing.
        let (tally, delivered, forged, next) = check(vec![
            answer(1, std::slice::from_ref(&exit), 6),
            answer(2, &[], 5),
            answer(3, &[], 4),
        ]);
        assert!(tally.unsettled());
        assert_eq!((delivered, forged, next), (vec![], 0, 5));
    }

    #[test]
    fn the_same_validator_signing_twice_is_one_signature() {
        let exit = event(AlertKind::Exit, 5);
        let mut tally = Tally::new(Height(1), 4);
        let (n, mut twice) = answer(1, std::slice::from_ref(&exit), 10);
        twice.events.push((exit.clone(), node(1)));
        tally.add(n, twice);
        tally.add(node(2), answer(2, &[], 10).1);
        assert_eq!(tally.verdict(&exit), Verdict::Waiting);
        // Another validator relaying node 3's signature counts node 3.
        tally.add(
            node(4),
            VerifiedWatch {
                events: vec![(exit.clone(), node(3))],
                next_height: Height(10),
                withheld: HashSet::new(),
            },
        );
        assert_eq!(tally.verdict(&exit), Verdict::Corroborated);
    }
}

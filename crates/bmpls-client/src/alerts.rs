//! A carer's geofence alerts: a long poll that resumes from the last height seen, on whichever
//! validator answers, so that no event is lost across reconnects or a validator's failure. Every
//! event is checked to be signed by a genesis validator and addressed to this carer.

use std::collections::HashSet;

use bmpls_crypto::ValidatorSet;
use bmpls_crypto::sign::verify;
use bmpls_net::alert::{AlertEvent, AlertKind, WatchAnswer, WatchOutcome, WatchRequest};
use bmpls_types::{CarerId, Height, TxHash};

use crate::carer::AnswerError;
use crate::network::{NetworkError, Nodes};

/// Why a watch step failed.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// No validator answered; retry later (the stream resumes where it was).
    #[error(transparent)]
    Network(#[from] NetworkError),
    /// The node says this key is not the carer's.
    #[error("the node refused: this key is not the enrolled carer's")]
    NotTheCarer,
    /// An event failed verification.
    #[error(transparent)]
    Answer(#[from] AnswerError),
}

/// Checks the events of a watch answer: each addressed to `carer` and signed by a genesis
/// validator.
pub fn verify_alerts(
    answer: &WatchAnswer,
    carer: &CarerId,
    validators: &ValidatorSet,
) -> Result<Vec<AlertEvent>, AnswerError> {
    answer
        .events
        .iter()
        .map(|signed| {
            if signed.event.carer != *carer {
                return Err(AnswerError::Wrong("an alert for another carer".into()));
            }
            if validators.get(&signed.node).is_none() {
                return Err(AnswerError::Wrong("an alert signed outside genesis".into()));
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
            Ok(signed.event.clone())
        })
        .collect()
}

/// A carer's stream of alerts.
pub struct AlertStream {
    carer: CarerId,
    validators: ValidatorSet,
    next: Height,
    seen: HashSet<(TxHash, u64, AlertKind, u64)>,
}

impl AlertStream {
    /// A stream for `carer` from `from` on.
    pub fn new(carer: CarerId, validators: ValidatorSet, from: Height) -> Self {
        Self {
            carer,
            validators,
            next: from,
            seen: HashSet::new(),
        }
    }

    /// The height the stream will ask from next (persist it to resume after a restart).
    pub fn next_height(&self) -> Height {
        self.next
    }

    /// Waits up to `wait_ms` for alerts and returns the new ones (each event once, even when
    /// a node repeats events it already sent).
    pub async fn next_events(
        &mut self,
        nodes: &Nodes,
        wait_ms: u64,
    ) -> Result<Vec<AlertEvent>, WatchError> {
        let request = WatchRequest {
            carer: self.carer,
            from_height: self.next,
            wait_ms,
        };
        let answer = match nodes.watch(request).await? {
            (_, WatchOutcome::Events(answer)) => answer,
            (_, WatchOutcome::NotTheCarer) => return Err(WatchError::NotTheCarer),
        };
        let events = verify_alerts(&answer, &self.carer, &self.validators)?;
        // A lagging node may answer from below what another already covered: never go back.
        self.next = self.next.max(answer.next_height);
        Ok(events
            .into_iter()
            .filter(|e| self.seen.insert((e.fence, e.height.0, e.kind, e.seq.0)))
            .collect())
    }
}

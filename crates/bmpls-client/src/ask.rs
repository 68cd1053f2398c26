//! A carer's questions to the consortium, answered and verified: one query, an area query (whose
//! area is encrypted under keys opened from the grant's proof), and the grants a carer holds. The command line (`bmpls query`, `bmpls watch`) and the operator's console both ask
//! through here, so that they verify alike.

use std::net::SocketAddr;

use bmpls_crypto::ValidatorSet;
use bmpls_grid::{IndexRange, LevelSet};
use bmpls_net::query::{GrantOutcome, GrantRequest, Query, QueryOutcome, Unauthorized};
use bmpls_net::{GrantSummary, GrantsAsked, GrantsOutcome};
use bmpls_ope::keys::GrantKeys;
use bmpls_types::Epoch;

use crate::carer::{
    AnswerError, CarerKeystore, ProvedGrant, VerifiedAnswer, verify_answer, verify_grant,
};
use crate::query::{AreaError, area_query};
use crate::{NetworkError, Nodes};

/// Why a carer's question got no verified answer.
#[derive(Debug, thiserror::Error)]
pub enum AskError {
    /// No validator answered.
    #[error(transparent)]
    Network(#[from] NetworkError),
    /// A validator refused the query under the grant.
    #[error("refused by {node}: {why}")]
    Unauthorized {
        /// The validator.
        node: SocketAddr,
        /// Its reason.
        why: Unauthorized,
    },
    /// A validator failed to answer (a malformed query, a fault on the node).
    #[error("{node} failed: {reason}")]
    Failed {
        /// The validator.
        node: SocketAddr,
        /// What it said.
        reason: String,
    },
    /// A validator answered with nothing or something else than was asked.
    #[error("{0} gave no answer")]
    NoAnswer(SocketAddr),
    /// The answer does not verify: nothing of it is believed.
    #[error("the answer of {node} does not verify: {error}")]
    Invalid {
        /// The validator.
        node: SocketAddr,
        /// What failed.
        error: AnswerError,
    },
    /// The grant's keys, proved in an answer, do not open for this carer.
    #[error(transparent)]
    Keys(AnswerError),
    /// The area cannot be encrypted for a query.
    #[error(transparent)]
    Area(#[from] AreaError),
    /// A validator refused to list grants: the key is not the carer's (or not enrolled).
    #[error(
        "{0} refused to list grants: this key is not the enrolled carer's or the patient's custodian's (enrolled on this chain?)"
    )]
    NotYours(SocketAddr),
}

/// Sends one query and verifies its answer against the genesis `validators`, decrypting it with
/// the grant's keys opened by `carer`.
pub async fn ask(
    nodes: &Nodes,
    query: Query,
    validators: &ValidatorSet,
    levels: &LevelSet,
    carer: &CarerKeystore,
) -> Result<VerifiedAnswer, AskError> {
    let (node, mut outcomes) = first_held(
        nodes,
        || nodes.query(vec![query.clone()]),
        |outcomes| matches!(outcomes.last(), Some(QueryOutcome::NotHeld(_))),
    )
    .await?;
    query_outcome(outcomes.pop(), node, &query, (validators, levels, carer))
}

/// Asks with `call` and, while the answer says the validator does not hold what was asked
/// (`not_held`: it joined from a snapshot after it, or it is catching up with the chain), asks
/// the next validator, each once; returns the last answer.
async fn first_held<T, Call, Answer>(
    nodes: &Nodes,
    call: Call,
    not_held: impl Fn(&T) -> bool,
) -> Result<(SocketAddr, T), NetworkError>
where
    Call: Fn() -> Answer,
    Answer: std::future::Future<Output = Result<(SocketAddr, T), NetworkError>>,
{
    let (mut node, mut outcome) = call().await?;
    for _ in 1..nodes.len() {
        if !not_held(&outcome) {
            break;
        }
        nodes.avoid(node);
        (node, outcome) = call().await?;
    }
    Ok((node, outcome))
}

fn query_outcome(
    outcome: Option<QueryOutcome>,
    node: SocketAddr,
    query: &Query,
    (validators, levels, carer): (&ValidatorSet, &LevelSet, &CarerKeystore),
) -> Result<VerifiedAnswer, AskError> {
    match outcome {
        Some(QueryOutcome::Answered(answer)) => {
            verify_answer(*answer, query, validators, levels, carer)
                .map_err(|error| AskError::Invalid { node, error })
        }
        Some(QueryOutcome::Unauthorized(why)) => Err(AskError::Unauthorized { node, why }),
        Some(QueryOutcome::Failed(why) | QueryOutcome::NotHeld(why)) => Err(AskError::Failed {
            node,
            reason: why.as_str().to_string(),
        }),
        None => Err(AskError::NoAnswer(node)),
    }
}

/// The proof of `grant` (the patient's, held by `carer`), verified against the genesis
/// `validators`, and the keys it wraps to the carer. Not a query, so not audited: it reads the
/// grant and the patient's key history, no record.
pub async fn proved_grant(
    nodes: &Nodes,
    request: GrantRequest,
    validators: &ValidatorSet,
    carer: &CarerKeystore,
) -> Result<(ProvedGrant, GrantKeys), AskError> {
    // As for a query: a validator that joined from a snapshot after the grant cannot prove it.
    let (node, outcome) = first_held(
        nodes,
        || nodes.grant(request.clone()),
        |outcome| matches!(outcome, GrantOutcome::NotHeld(_)),
    )
    .await?;
    match outcome {
        GrantOutcome::Proved(evidence) => verify_grant(&evidence, &request, validators, carer)
            .map_err(|error| AskError::Invalid { node, error }),
        GrantOutcome::Unauthorized(why) => Err(AskError::Unauthorized { node, why }),
        GrantOutcome::Failed(why) | GrantOutcome::NotHeld(why) => Err(AskError::Failed {
            node,
            reason: why.as_str().to_string(),
        }),
    }
}

/// Asks `base` (its window, level and limit) for the records in `cells` (index ranges at the
/// query level's depth). The area is encrypted under the grant's keys, which the carer opens
/// from the grant's proof first ([`proved_grant`], not audited, so the patient's trail shows
/// the one area query the carer made), over the key epochs of the window that the grant's data
/// window holds.
pub async fn ask_area(
    nodes: &Nodes,
    base: Query,
    cells: &[IndexRange],
    validators: &ValidatorSet,
    levels: &LevelSet,
    carer: &CarerKeystore,
) -> Result<VerifiedAnswer, AskError> {
    let request = GrantRequest {
        patient: base.patient,
        grant: base.grant,
    };
    let (proved, keys) = proved_grant(nodes, request, validators, carer).await?;
    // Key epochs from the patient's proved enrolment.
    let epoch =
        |ms: u64| Epoch(u32::try_from(ms / proved.epoch_length_ms.max(1)).unwrap_or(u32::MAX));
    let span = (
        epoch(base.from_ms).max(proved.grant.data_from),
        epoch(base.to_ms).min(proved.grant.data_to),
    );
    let ask_cells = area_query(&keys, levels, base.level.0, cells, span)?;
    ask(
        nodes,
        Query {
            ask: ask_cells,
            ..base
        },
        validators,
        levels,
        carer,
    )
    .await
}

/// The grants the chain holds for `asked`, as one validator says (a hint for naming and
/// checking grants; a query proves the grant it relies on). The request is signed by the
/// carer's identity key or the patient's custodian key, whichever `nodes` signs with.
pub async fn grants_of(nodes: &Nodes, asked: GrantsAsked) -> Result<Vec<GrantSummary>, AskError> {
    // A validator catching up with the chain may not know the carer yet.
    let (node, outcome) = first_held(
        nodes,
        || nodes.grants(asked.clone()),
        |outcome| matches!(outcome, GrantsOutcome::NotHeld(_)),
    )
    .await?;
    match outcome {
        GrantsOutcome::Grants { grants, .. } => Ok(grants.into_inner()),
        GrantsOutcome::NotYours => Err(AskError::NotYours(node)),
        GrantsOutcome::NotHeld(why) => Err(AskError::Failed {
            node,
            reason: why.as_str().to_string(),
        }),
    }
}

/// Whether `grant` stands (not revoked) and is valid at `now_ms`.
pub fn standing_at(grant: &GrantSummary, now_ms: u64) -> bool {
    grant.standing && (grant.valid_from_ms..grant.valid_until_ms).contains(&now_ms)
}

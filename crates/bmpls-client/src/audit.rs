//! The patient's view of who looked: the audit entries validators wrote for the queries they
//! answered about the patient, each proved into a committed block and signed by its validator.

use bmpls_crypto::sign::verify;
use bmpls_crypto::{ValidatorSet, verify_inclusion};
use bmpls_net::query::{AuditAnswer, AuditRequest};
use bmpls_types::{Audit, Height, Transaction};

use crate::carer::AnswerError;

/// One verified audit entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEntry {
    /// The block that holds it.
    pub height: Height,
    /// That block's time (ms since the Unix epoch).
    pub block_time_ms: u64,
    /// The entry: which node answered whom, about what, at which level and window.
    pub audit: Audit,
}

/// Verifies an audit answer to `request`: certified headers, inclusion proofs, entries about
/// this patient in chain order from the height asked, each signed by a genesis validator.
/// (One answer cannot prove that no entry was withheld; ask a second node to compare.)
pub fn verify_audit(
    answer: AuditAnswer,
    request: &AuditRequest,
    validators: &ValidatorSet,
) -> Result<Vec<AuditEntry>, AnswerError> {
    let headers = crate::carer::verify_headers(&answer.blocks, validators)?;
    let mut entries = Vec::with_capacity(answer.entries.len());
    let mut last = None;
    for proved in answer.entries.iter() {
        let header = headers
            .get(proved.block as usize)
            .ok_or_else(|| AnswerError::Wrong("an entry names a block the answer lacks".into()))?;
        let committed =
            verify_inclusion(header, proved.tx.clone(), &proved.proof).map_err(|source| {
                AnswerError::Proof {
                    what: "audit inclusion",
                    source,
                }
            })?;
        let position = (committed.height(), committed.position());
        if last.is_some_and(|l| l >= position) || position.0 < request.from_height {
            return Err(AnswerError::Wrong("audit entries out of order".into()));
        }
        last = Some(position);
        let Transaction::Audit(audit) = committed.into_inner() else {
            return Err(AnswerError::Wrong("an entry that is not an audit".into()));
        };
        if audit.patient != request.patient {
            return Err(AnswerError::Wrong("an entry about another patient".into()));
        }
        if validators.get(&audit.node).is_none() {
            return Err(AnswerError::Wrong(
                "an entry by a node outside genesis".into(),
            ));
        }
        verify(
            &audit,
            validators.chain_id(),
            &audit.node.public_key(),
            "audit entry",
        )
        .map_err(|source| AnswerError::Proof {
            what: "audit signature",
            source,
        })?;
        entries.push(AuditEntry {
            height: header.height,
            block_time_ms: header.time_ms,
            audit,
        });
    }
    if entries.len() > request.limit as usize {
        return Err(AnswerError::Wrong("more entries than the limit".into()));
    }
    Ok(entries)
}

//! A carer's view of a patient's standing fences: which ones alert it, and where they are at
//! the levels its grant opens.
//!
//! One node's list is checked by [`verify_fences`]: every header carries a commit certificate
//! of the genesis validators, the patient's enrolment and every fence are proved into their
//! blocks, each fence is a `SetFence` of the patient that alerts this carer, signed by the
//! custodian key of the proved enrolment (as the ledger requires), in chain order, and no later
//! than the certified tip. A node can still withhold a fence or list one that was removed since
//! (there is no proof of absence), so [`standing_fences`] asks every validator and believes a
//! fence stands when `f + 1` of them list it (`f = (n - 1) / 3` of `n`): at least one honest
//! validator does. A fence fewer list is a [`FenceFault::Unconfirmed`], never believed; a
//! validator that leaves out a believed fence while its tip is past the fence's block is a
//! [`FenceFault::Withheld`].

use std::collections::{BTreeMap, BTreeSet};

use bmpls_crypto::sign::verify;
use bmpls_crypto::{CryptoError, ValidatorSet, verify_header, verify_inclusion};
use bmpls_grid::IndexRange;
use bmpls_net::query::{FenceEvidence, FencesOutcome, FencesRequest};
use bmpls_ope::keys::KeyError;
use bmpls_types::{
    CarerId, FenceEpoch, FenceRanges, Height, SetFence, Transaction, TxHash, ValidatorId,
};

use crate::carer::{AnswerError, verify_headers};
use crate::ciphers::{CipherError, EncryptedRanges, EpochKeys, LevelCiphers};
use crate::network::Nodes;

/// A fence proved into a certified block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProvedFence {
    /// The hash of its `SetFence` (what alerts and `RemoveFence` name).
    pub hash: TxHash,
    /// The block that committed it.
    pub height: Height,
    /// The fence.
    pub fence: SetFence,
}

/// One node's list of standing fences, verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedFences {
    /// The certified block the list is as of (or later).
    pub tip: Height,
    /// The fences, in chain order.
    pub fences: Vec<ProvedFence>,
    /// Whether the node holds more than it sent.
    pub more: bool,
}

fn wrong(why: &str) -> AnswerError {
    AnswerError::Wrong(why.to_string())
}

fn proof(what: &'static str) -> impl Fn(CryptoError) -> AnswerError {
    move |source| AnswerError::Proof { what, source }
}

/// Verifies one node's `evidence` for `asked` against the genesis `validators`, for `carer`
/// (see the module documentation for what is checked).
pub fn verify_fences(
    evidence: &FenceEvidence,
    asked: &FencesRequest,
    validators: &ValidatorSet,
    carer: &CarerId,
) -> Result<VerifiedFences, AnswerError> {
    let tip = verify_header(evidence.tip.header.clone(), &evidence.tip.cert, validators)
        .map_err(proof("tip certificate"))?;
    let headers = verify_headers(&evidence.blocks, validators)?;
    let prove = |p: &bmpls_net::query::ProvedTx, what: &'static str| {
        let header = headers
            .get(p.block as usize)
            .ok_or_else(|| wrong("a transaction names a block the answer lacks"))?;
        verify_inclusion(header, p.tx.clone(), &p.proof).map_err(proof(what))
    };
    let custodian = match prove(&evidence.enrolment, "enrolment inclusion")?.into_inner() {
        Transaction::EnrolPatient(e) if e.patient == asked.patient => e.custodian_key,
        _ => return Err(wrong("the enrolment is not the patient's")),
    };
    let mut fences = Vec::with_capacity(evidence.fences.len());
    let mut last_position = None;
    for proved in evidence.fences.iter() {
        let committed = prove(proved, "fence inclusion")?;
        let position = (committed.height(), committed.position());
        if last_position.is_some_and(|p| p >= position) {
            return Err(wrong("fences out of chain order"));
        }
        last_position = Some(position);
        if committed.height() > tip.get().height {
            return Err(wrong("a fence committed after the answer's tip"));
        }
        let hash = bmpls_crypto::hash::tx_hash(committed.get());
        let Transaction::SetFence(fence) = committed.into_inner() else {
            return Err(wrong("a fence that is not a SetFence"));
        };
        if fence.patient != asked.patient || fence.carer != *carer {
            return Err(wrong("a fence of another patient or for another carer"));
        }
        verify(&fence, validators.chain_id(), &custodian, "fence").map_err(proof("fence"))?;
        fences.push(ProvedFence {
            hash,
            height: position.0,
            fence,
        });
    }
    Ok(VerifiedFences {
        tip: tip.get().height,
        fences,
        more: evidence.more,
    })
}

/// The zone of `fence` as cell index ranges at its level, decrypted with `keys` (a grant's, for
/// the fence's level or a coarser one than granted): under the key of epoch `prefer` when the
/// fence has it (the custodian covers one zone, encrypted afresh per epoch), else of the
/// latest epoch the keys open.
pub fn fence_zone(
    ciphers: &mut LevelCiphers,
    keys: &impl EpochKeys,
    fence: &SetFence,
    prefer: u32,
) -> Result<Vec<IndexRange>, CipherError> {
    let mut epochs: Vec<&FenceEpoch> = fence.epochs.iter().collect();
    epochs.sort_by_key(|e| (e.epoch.0 != prefer, std::cmp::Reverse(e.epoch.0)));
    let mut refused = None;
    for e in epochs {
        let encrypted = match &e.ranges {
            FenceRanges::Ope(r) => EncryptedRanges::Ope(r.to_vec()),
            FenceRanges::Ore(r) => EncryptedRanges::Ore(r.to_vec()),
        };
        match ciphers.decrypt_ranges(keys, fence.level.0, e.epoch.0, &encrypted) {
            Err(CipherError::Keys(why)) => refused = Some(why),
            other => return other,
        }
    }
    Err(CipherError::Keys(
        refused.unwrap_or(KeyError::Malformed("a fence with no epoch")),
    ))
}

/// Why a fence was not believed, or a node's list was not.
#[derive(Debug, thiserror::Error)]
pub enum FenceFault {
    /// Listed by fewer than `f + 1` validators: removed since (a node lagging or lying), or
    /// forged into a list by a node; not believed to stand.
    #[error("fence {fence} is listed by {} validator(s) only, fewer than f + 1", listed_by.len())]
    Unconfirmed {
        /// The fence.
        fence: TxHash,
        /// The validators that listed it.
        listed_by: Vec<ValidatorId>,
    },
    /// A fence `f + 1` validators list that this one left out, although its tip is past the
    /// fence's block and its list was complete.
    #[error("validator {node} withheld fence {fence}")]
    Withheld {
        /// The fence.
        fence: TxHash,
        /// The validator.
        node: ValidatorId,
    },
    /// A validator's list did not verify: nothing of it is believed.
    #[error("the fences of validator {node} do not verify: {error}")]
    BadAnswer {
        /// The validator.
        node: ValidatorId,
        /// What failed.
        error: AnswerError,
    },
    /// A validator could not be asked.
    #[error("a validator could not be asked: {0}")]
    Unreachable(String),
    /// A validator refused or failed to answer.
    #[error("validator {node} did not list fences: {reason}")]
    NoList {
        /// The validator.
        node: ValidatorId,
        /// What it said.
        reason: String,
    },
}

/// The fences of a patient as the validators together show them.
#[derive(Debug, Default)]
pub struct FenceSurvey {
    /// The fences `f + 1` validators list, in chain order.
    pub standing: Vec<ProvedFence>,
    /// Whether a validator said it holds more than it sent.
    pub more: bool,
    /// Fences not believed and validators that misbehaved.
    pub faults: Vec<FenceFault>,
    /// Validators whose list verified.
    pub answered: usize,
}

/// Combines the verified lists of distinct validators: a fence stands when `quorum` of them
/// list it (see the module documentation).
pub fn tally_fences(lists: &[(ValidatorId, VerifiedFences)], quorum: usize) -> FenceSurvey {
    let mut listed: BTreeMap<TxHash, (&ProvedFence, BTreeSet<ValidatorId>)> = BTreeMap::new();
    for (node, list) in lists {
        for fence in &list.fences {
            listed
                .entry(fence.hash)
                .or_insert_with(|| (fence, BTreeSet::new()))
                .1
                .insert(*node);
        }
    }
    let mut survey = FenceSurvey {
        more: lists.iter().any(|(_, l)| l.more),
        answered: lists.len(),
        ..FenceSurvey::default()
    };
    for (hash, (fence, by)) in &listed {
        if by.len() < quorum {
            survey.faults.push(FenceFault::Unconfirmed {
                fence: *hash,
                listed_by: by.iter().copied().collect(),
            });
            continue;
        }
        for (node, list) in lists {
            if !by.contains(node) && !list.more && list.tip >= fence.height {
                survey.faults.push(FenceFault::Withheld {
                    fence: *hash,
                    node: *node,
                });
            }
        }
        survey.standing.push((*fence).clone());
    }
    survey.standing.sort_by_key(|f| (f.height, f.hash.0));
    survey
}

/// Asks every validator for the standing fences of `request.patient` that alert `carer`,
/// verifies each list and tallies them ([`tally_fences`], `f + 1` of the genesis validators).
/// Errs when fewer than `f + 1` lists verify: nothing can then be believed either way.
pub async fn standing_fences(
    nodes: &Nodes,
    request: &FencesRequest,
    validators: &ValidatorSet,
    carer: &CarerId,
) -> Result<FenceSurvey, FencesError> {
    let quorum = validators.validators().len().saturating_sub(1) / 3 + 1;
    let mut lists: Vec<(ValidatorId, VerifiedFences)> = Vec::new();
    let mut faults = Vec::new();
    let mut refused = None;
    for index in 0..nodes.len() {
        let (node, outcome) = match nodes.fences_on(index, request.clone()).await {
            Ok(answer) => answer,
            Err(e) => {
                faults.push(FenceFault::Unreachable(e.to_string()));
                continue;
            }
        };
        if lists.iter().any(|(n, _)| *n == node) || validators.get(&node).is_none() {
            continue;
        }
        match outcome {
            FencesOutcome::Proved(evidence) => {
                match verify_fences(&evidence, request, validators, carer) {
                    Ok(list) => lists.push((node, list)),
                    Err(error) => faults.push(FenceFault::BadAnswer { node, error }),
                }
            }
            FencesOutcome::Unauthorized(why) => {
                refused = Some(why.clone());
                faults.push(FenceFault::NoList {
                    node,
                    reason: why.to_string(),
                });
            }
            FencesOutcome::Failed(why) => faults.push(FenceFault::NoList {
                node,
                reason: why.as_str().to_string(),
            }),
        }
    }
    if lists.len() < quorum {
        return Err(match refused {
            Some(why) => FencesError::Unauthorized(why),
            None => FencesError::TooFewLists {
                verified: lists.len(),
                needed: quorum,
                faults,
            },
        });
    }
    let mut survey = tally_fences(&lists, quorum);
    survey.faults.extend(faults);
    Ok(survey)
}

/// Why the fences of a patient could not be learnt.
#[derive(Debug, thiserror::Error)]
pub enum FencesError {
    /// The validators refused: the grant is unknown, revoked or not this carer's.
    #[error("refused: {0}")]
    Unauthorized(bmpls_net::query::Unauthorized),
    /// Fewer than `f + 1` validators gave a list that verifies.
    #[error("{verified} validator(s) gave fences that verify, {needed} are needed")]
    TooFewLists {
        /// Lists that verified.
        verified: usize,
        /// `f + 1`.
        needed: usize,
        /// What the others did.
        faults: Vec<FenceFault>,
    },
}

#[cfg(test)]
mod tests {
    use bmpls_types::{
        BoundedVec, FenceEpoch, FenceRanges, LevelIndex, OpeCiphertext, PatientId, SignatureBytes,
    };

    use super::*;

    fn fence(n: u8, height: u64) -> ProvedFence {
        ProvedFence {
            hash: TxHash([n; 32]),
            height: Height(height),
            fence: SetFence {
                patient: PatientId([1; 16]),
                carer: CarerId([2; 16]),
                level: LevelIndex(2),
                epochs: BoundedVec::new(vec![FenceEpoch {
                    epoch: bmpls_types::Epoch(0),
                    ranges: FenceRanges::Ope(
                        BoundedVec::new(vec![(OpeCiphertext(1), OpeCiphertext(2))])
                            .expect("bounded"),
                    ),
                }])
                .expect("bounded"),
                debounce: 1,
                expected_interval_ms: 0,
                sig: SignatureBytes::UNSIGNED,
            },
        }
    }

    fn list(node: u8, tip: u64, fences: &[ProvedFence]) -> (ValidatorId, VerifiedFences) {
        let list = VerifiedFences {
            tip: Height(tip),
            fences: fences.to_vec(),
            more: false,
        };
        (ValidatorId([node; 32]), list)
    }

    /// The hashes believed, and per fault its kind and fence.
    fn check(lists: &[(ValidatorId, VerifiedFences)], standing: &[u8], faults: &[(&str, u8)]) {
        let survey = tally_fences(lists, 2);
        let got: Vec<u8> = survey.standing.iter().map(|f| f.hash.0[0]).collect();
        assert_eq!(got, standing);
        let got: Vec<(&str, u8)> = survey
            .faults
            .iter()
            .map(|f| match f {
                FenceFault::Unconfirmed { fence, .. } => ("unconfirmed", fence.0[0]),
                FenceFault::Withheld { fence, .. } => ("withheld", fence.0[0]),
                _ => ("other", 0),
            })
            .collect();
        assert_eq!(got, faults);
    }

    #[test]
    fn a_fence_stands_when_f_plus_one_list_it_and_a_lone_listing_is_a_fault() {
        let (a, b) = (fence(1, 5), fence(2, 7));
        // All four agree.
        let both = [a.clone(), b.clone()];
        let lists: Vec<_> = (0..4).map(|n| list(n, 9, &both)).collect();
        check(&lists, &[1, 2], &[]);
        // One validator withholds b: believed from the three others, the withholder named.
        let lists = vec![
            list(0, 9, std::slice::from_ref(&a)),
            list(1, 9, &[a.clone(), b.clone()]),
            list(2, 9, &[a.clone(), b.clone()]),
        ];
        check(&lists, &[1, 2], &[("withheld", 2)]);
        // One validator lists b (removed, or forged): not believed.
        let lists = vec![
            list(0, 9, &[a.clone(), b.clone()]),
            list(1, 9, std::slice::from_ref(&a)),
            list(2, 9, std::slice::from_ref(&a)),
        ];
        check(&lists, &[1], &[("unconfirmed", 2)]);
        // A validator whose tip is below b's block did not withhold it: it has not seen it.
        let lists = vec![
            list(0, 6, std::slice::from_ref(&a)),
            list(1, 9, &[a.clone(), b.clone()]),
            list(2, 9, &[a, b]),
        ];
        check(&lists, &[1, 2], &[]);
    }
}

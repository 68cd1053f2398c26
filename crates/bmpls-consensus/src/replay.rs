//! The write-ahead log's side of the engine: which inputs are logged, and how a restarted
//! validator reads them back into the same inputs, its own proposals and its signing guard.

use std::collections::{HashMap, HashSet};

use malachite_consensus::{Input, LocallyProposedValue, ProposedValue};
use malachite_types::{self as mt, Timeout, TimeoutKind, Validity, ValueOrigin};

use bmpls_types::{BlockHash, Canonical};

use crate::context::{Ctx, Height, ProposedBlock, defined};
use crate::engine::{EngineError, Host};
use crate::message::{Polka, RoundCert, SignedProposal, SignedVote, WalRecord};
use crate::wal::WalStorage;

impl<W: WalStorage> Host<W> {
    /// Reads the log from `height` on: fills the double-signing guard and this validator's
    /// own proposals, and returns the inputs to replay.
    pub(crate) fn load_wal(&mut self, height: Height) -> Result<Vec<Input<Ctx>>, EngineError> {
        let entries = self
            .wal
            .entries_from(height.0)
            .map_err(|e| EngineError::Wal(e.to_string()))?;
        let mut inputs = Vec::new();
        // Every block the log holds, by height and hash, for the records that name one.
        let mut logged: HashMap<(u64, BlockHash), ProposedBlock> = HashMap::new();
        for (h, bytes) in entries {
            let record = WalRecord::decode(&bytes).map_err(|e| EngineError::CorruptWal {
                height: h,
                reason: e.to_string(),
            })?;
            match record {
                WalRecord::Signed {
                    height,
                    round,
                    step,
                    digest,
                } => {
                    self.signed.insert((height.0, round, step), digest);
                }
                WalRecord::Vote(v) => inputs.push(Input::Vote(v.into_mt())),
                WalRecord::Polka(c) => match c.into_mt() {
                    Ok(c) => inputs.push(Input::PolkaCertificate(c)),
                    Err(e) => {
                        return Err(EngineError::CorruptWal {
                            height: h,
                            reason: e.to_string(),
                        });
                    }
                },
                WalRecord::RoundCert(c) => match c.into_mt() {
                    Ok(c) => inputs.push(Input::RoundCertificate(c)),
                    Err(e) => {
                        return Err(EngineError::CorruptWal {
                            height: h,
                            reason: e.to_string(),
                        });
                    }
                },
                WalRecord::Propose {
                    height: vh,
                    round,
                    block,
                } => {
                    let value = ProposedBlock::new(block);
                    logged.insert((vh.0, value.hash()), value.clone());
                    if vh == height {
                        self.blocks.insert(value.hash(), (value.clone(), true));
                        self.own_proposals.insert(round, value.clone());
                    }
                    inputs.push(Input::Propose(LocallyProposedValue::new(
                        vh,
                        mt::Round::new(round),
                        value,
                    )));
                }
                WalRecord::Proposal(p) => {
                    let p = p.into_mt();
                    let value = &p.message.block;
                    logged.insert((p.message.height.0, value.hash()), value.clone());
                    if p.message.height == height {
                        self.blocks
                            .entry(value.hash())
                            .or_insert((value.clone(), false));
                    }
                    inputs.push(Input::Proposal(p));
                }
                WalRecord::Timeout(kind, round) => {
                    let kind = match kind {
                        0 => TimeoutKind::Propose,
                        1 => TimeoutKind::Prevote,
                        2 => TimeoutKind::Precommit,
                        _ => TimeoutKind::Rebroadcast,
                    };
                    inputs.push(Input::TimeoutElapsed(Timeout::new(
                        mt::Round::new(round),
                        kind,
                    )));
                }
                WalRecord::ProposedValue {
                    height: vh,
                    round,
                    valid_round,
                    proposer,
                    block,
                    valid,
                } => {
                    let value = ProposedBlock::new(block);
                    logged.insert((vh.0, value.hash()), value.clone());
                    if vh == height {
                        self.blocks.insert(value.hash(), (value.clone(), valid));
                    }
                    inputs.push(proposed_value(
                        vh,
                        round,
                        valid_round,
                        proposer,
                        value,
                        valid,
                    ));
                }
                WalRecord::ProposedValueOf {
                    height: vh,
                    round,
                    valid_round,
                    proposer,
                    block,
                    valid,
                } => {
                    // The block was logged before this record, at its height: the log is
                    // append-only and cut only at its tail, so a missing one is damage.
                    let value = logged.get(&(vh.0, block)).cloned().ok_or_else(|| {
                        EngineError::CorruptWal {
                            height: h,
                            reason: format!(
                                "a proposed value names block {block} the log does not hold"
                            ),
                        }
                    })?;
                    if vh == height {
                        self.blocks.insert(value.hash(), (value.clone(), valid));
                    }
                    inputs.push(proposed_value(
                        vh,
                        round,
                        valid_round,
                        proposer,
                        value,
                        valid,
                    ));
                }
            }
        }
        self.logged_blocks = logged.into_keys().filter(|(h, _)| *h >= height.0).collect();
        Ok(inputs)
    }
}

/// The log record of an input, and the height it belongs to (`None`: not logged). `logged`
/// holds the blocks the log already has, by height and hash: a proposed value of one of them is
/// logged by reference.
pub(crate) fn input_record(
    input: &Input<Ctx>,
    current: Height,
    logged: &HashSet<(u64, BlockHash)>,
) -> Option<(u64, WalRecord)> {
    Some(match input {
        Input::StartHeight(..) | Input::SyncValueResponse(_) => return None,
        Input::Vote(v) => (v.message.height.0, WalRecord::Vote(SignedVote::from_mt(v))),
        Input::Proposal(p) => (
            p.message.height.0,
            WalRecord::Proposal(SignedProposal::from_mt(p)),
        ),
        Input::PolkaCertificate(c) => (c.height.0, WalRecord::Polka(Polka::from_mt(c))),
        Input::RoundCertificate(c) => (c.height.0, WalRecord::RoundCert(RoundCert::from_mt(c))),
        Input::Propose(v) => (
            v.height.0,
            WalRecord::Propose {
                height: v.height,
                round: defined(v.round),
                block: v.value.block().block().clone(),
            },
        ),
        Input::TimeoutElapsed(t) => {
            let kind = match t.kind {
                TimeoutKind::Propose => 0,
                TimeoutKind::Prevote => 1,
                TimeoutKind::Precommit => 2,
                TimeoutKind::Rebroadcast => 3,
            };
            // A timeout names no height: it belongs to the one being decided.
            (current.0, WalRecord::Timeout(kind, defined(t.round)))
        }
        Input::ProposedValue(v, _) if logged.contains(&(v.height.0, v.value.hash())) => (
            v.height.0,
            WalRecord::ProposedValueOf {
                height: v.height,
                round: defined(v.round),
                valid_round: v.valid_round.as_u32(),
                proposer: v.proposer,
                block: v.value.hash(),
                valid: v.validity.is_valid(),
            },
        ),
        Input::ProposedValue(v, _) => (
            v.height.0,
            WalRecord::ProposedValue {
                height: v.height,
                round: defined(v.round),
                valid_round: v.valid_round.as_u32(),
                proposer: v.proposer,
                block: v.value.block().block().clone(),
                valid: v.validity.is_valid(),
            },
        ),
    })
}

/// The block the log record of `input` holds in full, by height and hash (`None`: none).
pub(crate) fn logged_block(input: &Input<Ctx>) -> Option<(u64, BlockHash)> {
    match input {
        Input::Proposal(p) => Some((p.message.height.0, p.message.block.hash())),
        Input::Propose(v) => Some((v.height.0, v.value.hash())),
        Input::ProposedValue(v, _) => Some((v.height.0, v.value.hash())),
        _ => None,
    }
}

/// The input a logged proposed value replays into.
fn proposed_value(
    height: Height,
    round: u32,
    valid_round: Option<u32>,
    proposer: crate::context::Address,
    value: ProposedBlock,
    valid: bool,
) -> Input<Ctx> {
    Input::ProposedValue(
        ProposedValue {
            height,
            round: mt::Round::new(round),
            valid_round: valid_round.map_or(mt::Round::Nil, mt::Round::new),
            proposer,
            value,
            validity: Validity::from_bool(valid),
        },
        ValueOrigin::Consensus,
    )
}

//! How the engine answers each effect malachite yields: sign (through the double-signing
//! guard), verify, build a block, decide; everything involving the network or the clock becomes
//! an [`Output`] for the host.

use malachite_consensus::{
    Effect, Input, LivenessMsg, LocallyProposedValue, Resumable, Resume, SignedConsensusMsg,
    VoteExtensionError,
};
use malachite_types::{SigningProvider, SigningProviderExt};

use bmpls_crypto::hash::tagged_hash;

use crate::context::{Ctx, defined};
use crate::engine::{EngineError, Host, Output};
use crate::message::{Message, Polka, RoundCert, SignedProposal, SignedVote};
use crate::signing::{proposal_bytes, vote_bytes};
use crate::wal::WalStorage;

impl<W: WalStorage> Host<W> {
    pub(crate) fn handle(&mut self, effect: Effect<Ctx>) -> Result<Resume<Ctx>, EngineError> {
        Ok(match effect {
            Effect::ResetTimeouts(r) => r.resume_with(()),
            Effect::CancelAllTimeouts(r) => {
                self.outputs.push(Output::CancelAll);
                r.resume_with(())
            }
            Effect::CancelTimeout(timeout, r) => {
                self.outputs.push(Output::Cancel(timeout));
                r.resume_with(())
            }
            Effect::ScheduleTimeout(timeout, r) => {
                let after_ms = self.duration_ms(timeout);
                self.outputs.push(Output::Schedule { timeout, after_ms });
                r.resume_with(())
            }
            Effect::GetValidatorSet(_, r) => r.resume_with(Some(self.validators().clone())),
            Effect::StartRound(height, _, _, _, r) => {
                self.height = height;
                r.resume_with(())
            }
            Effect::PublishConsensusMsg(msg, r) => {
                let message = match msg {
                    SignedConsensusMsg::Vote(v) => Message::Vote(SignedVote::from_mt(&v)),
                    SignedConsensusMsg::Proposal(p) => {
                        Message::Proposal(SignedProposal::from_mt(&p))
                    }
                };
                self.outputs.push(Output::Broadcast(message));
                r.resume_with(())
            }
            Effect::PublishLivenessMsg(msg, r) => {
                let message = match msg {
                    LivenessMsg::Vote(v) => Message::Vote(SignedVote::from_mt(&v)),
                    LivenessMsg::PolkaCertificate(c) => Message::Polka(Polka::from_mt(&c)),
                    LivenessMsg::SkipRoundCertificate(c) => {
                        Message::RoundCert(RoundCert::from_mt(&c))
                    }
                };
                self.outputs.push(Output::Broadcast(message));
                r.resume_with(())
            }
            Effect::RepublishVote(v, r) => {
                self.outputs
                    .push(Output::Broadcast(Message::Vote(SignedVote::from_mt(&v))));
                r.resume_with(())
            }
            Effect::RepublishRoundCertificate(c, r) => {
                self.outputs
                    .push(Output::Broadcast(Message::RoundCert(RoundCert::from_mt(
                        &c,
                    ))));
                r.resume_with(())
            }
            Effect::GetValue(height, round, _, r) => {
                let value = self.value_for(height, defined(round));
                self.follow_ups
                    .push_back(Input::Propose(LocallyProposedValue::new(
                        height, round, value,
                    )));
                r.resume_with(())
            }
            // The block travels inside the proposal, which malachite republishes itself.
            Effect::RestreamProposal(.., r) => r.resume_with(()),
            Effect::SyncValue(_, r) => r.resume_with(()),
            Effect::Decide(certificate, _, r) => {
                self.on_decide(&certificate);
                r.resume_with(())
            }
            Effect::SignVote(vote, r) => {
                let step = match vote.kind {
                    crate::context::VoteKind::Prevote => 1,
                    crate::context::VoteKind::Precommit => 2,
                };
                let digest = tagged_hash(
                    b"bmpls/v1/wal/signed",
                    &vote_bytes(self.ctx.chain_id(), &vote),
                );
                self.guard(vote.height, vote.round, step, digest)?;
                r.resume_with(self.signer.sign_vote(vote))
            }
            Effect::SignProposal(proposal, r) => {
                let digest = tagged_hash(
                    b"bmpls/v1/wal/signed",
                    &proposal_bytes(self.ctx.chain_id(), &proposal),
                );
                self.guard(proposal.height, proposal.round, 0, digest)?;
                r.resume_with(self.signer.sign_proposal(proposal))
            }
            Effect::VerifySignature(signed, public_key, r) => {
                let ok = match &signed.message {
                    malachite_consensus::ConsensusMsg::Vote(v) => {
                        self.signer
                            .verify_signed_vote(v, &signed.signature, &public_key)
                    }
                    malachite_consensus::ConsensusMsg::Proposal(p) => self
                        .signer
                        .verify_signed_proposal(p, &signed.signature, &public_key),
                };
                r.resume_with(ok)
            }
            Effect::VerifyCommitCertificate(c, set, thresholds, r) => r.resume_with(
                self.signer
                    .verify_commit_certificate(&self.ctx, &c, &set, thresholds),
            ),
            Effect::VerifyPolkaCertificate(c, set, thresholds, r) => r.resume_with(
                self.signer
                    .verify_polka_certificate(&self.ctx, &c, &set, thresholds),
            ),
            Effect::VerifyRoundCertificate(c, set, thresholds, r) => r.resume_with(
                self.signer
                    .verify_round_certificate(&self.ctx, &c, &set, thresholds),
            ),
            // The engine logs every input itself (see `input_record`), which covers what
            // malachite logs and the certificates it does not.
            Effect::WalAppend(_, r) => r.resume_with(()),
            Effect::ExtendVote(.., r) => r.resume_with(None),
            Effect::VerifyVoteExtension(.., r) => {
                r.resume_with(Err(VoteExtensionError::InvalidVoteExtension))
            }
        })
    }
}

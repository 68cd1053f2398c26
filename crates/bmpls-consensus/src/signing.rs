//! What a validator's signatures cover. Every message names the chain and carries its own
//! domain-separation tag; a precommit for a block signs exactly the bytes a stored
//! `CommitCertificate` is checked against (`bmpls_crypto::precommit_bytes`), so a certificate
//! malachite assembles is one `bmpls-crypto` verifies.

use borsh::BorshSerialize;
use malachite_types::{self as mt, NilOrVal, SignedMessage};

use bmpls_crypto::{SigningKey, precommit_bytes, sign::verify_bytes};
use bmpls_types::{BlockHash, ChainId, PrecommitTarget, PublicKeyBytes, Round, SignatureBytes};

use crate::context::{Address, Ctx, Height, NoParts, Proposal, Vote, VoteKind};

/// Tag of prevotes and nil precommits.
const VOTE_TAG: &[u8] = b"bmpls/v1/sig/vote";
/// Tag of proposals.
const PROPOSAL_TAG: &[u8] = b"bmpls/v1/sig/proposal";

/// What a prevote or a nil precommit signs.
#[derive(BorshSerialize)]
struct VoteBody<'a> {
    chain_id: &'a ChainId,
    kind: VoteKind,
    height: Height,
    round: u32,
    block: Option<BlockHash>,
    validator: Address,
}

/// What a proposal signs: the block by its hash.
#[derive(BorshSerialize)]
struct ProposalBody<'a> {
    chain_id: &'a ChainId,
    height: Height,
    round: u32,
    pol_round: Option<u32>,
    block: BlockHash,
    proposer: Address,
}

fn tagged<T: BorshSerialize>(tag: &[u8], body: &T) -> Vec<u8> {
    let mut out = tag.to_vec();
    out.push(0);
    body.serialize(&mut out)
        .expect("serialising into a Vec cannot fail");
    out
}

/// The bytes a vote's signature covers.
pub fn vote_bytes(chain_id: &ChainId, vote: &Vote) -> Vec<u8> {
    match (vote.kind, &vote.block) {
        (VoteKind::Precommit, NilOrVal::Val(hash)) => precommit_bytes(&PrecommitTarget {
            chain_id: chain_id.clone(),
            height: vote.height.into(),
            round: Round(vote.round),
            block_hash: *hash,
        }),
        (kind, block) => tagged(
            VOTE_TAG,
            &VoteBody {
                chain_id,
                kind,
                height: vote.height,
                round: vote.round,
                block: match block {
                    NilOrVal::Nil => None,
                    NilOrVal::Val(hash) => Some(*hash),
                },
                validator: vote.validator,
            },
        ),
    }
}

/// The bytes a proposal's signature covers.
pub fn proposal_bytes(chain_id: &ChainId, proposal: &Proposal) -> Vec<u8> {
    tagged(
        PROPOSAL_TAG,
        &ProposalBody {
            chain_id,
            height: proposal.height,
            round: proposal.round,
            pol_round: proposal.pol_round,
            block: proposal.block.hash(),
            proposer: proposal.proposer,
        },
    )
}

/// A validator's key bound to its chain: signs and verifies consensus messages. (Malachite
/// verifies certificates through this type's [`mt::SigningProvider`] implementation.)
pub struct Signer {
    chain_id: ChainId,
    key: SigningKey,
}

impl Signer {
    /// Binds `key` to `chain_id`.
    pub fn new(chain_id: ChainId, key: SigningKey) -> Self {
        Self { chain_id, key }
    }

    /// This validator's address.
    pub fn address(&self) -> Address {
        Address(bmpls_types::ValidatorId(self.key.public().0))
    }

    /// The chain.
    pub fn chain_id(&self) -> &ChainId {
        &self.chain_id
    }
}

/// Signs `vote` with `key` for `chain_id`.
pub fn sign_vote(chain_id: &ChainId, key: &SigningKey, vote: Vote) -> SignedMessage<Ctx, Vote> {
    let signature = key.sign_bytes(&vote_bytes(chain_id, &vote));
    SignedMessage::new(vote, signature)
}

/// Signs `proposal` with `key` for `chain_id`.
pub fn sign_proposal(
    chain_id: &ChainId,
    key: &SigningKey,
    proposal: Proposal,
) -> SignedMessage<Ctx, Proposal> {
    let signature = key.sign_bytes(&proposal_bytes(chain_id, &proposal));
    SignedMessage::new(proposal, signature)
}

impl mt::SigningProvider<Ctx> for Signer {
    fn sign_vote(&self, vote: Vote) -> SignedMessage<Ctx, Vote> {
        sign_vote(&self.chain_id, &self.key, vote)
    }

    fn verify_signed_vote(
        &self,
        vote: &Vote,
        signature: &SignatureBytes,
        public_key: &PublicKeyBytes,
    ) -> bool {
        vote.validator.0.public_key() == *public_key
            && verify_bytes(
                public_key,
                &vote_bytes(&self.chain_id, vote),
                signature,
                "vote",
            )
            .is_ok()
    }

    fn sign_proposal(&self, proposal: Proposal) -> SignedMessage<Ctx, Proposal> {
        sign_proposal(&self.chain_id, &self.key, proposal)
    }

    fn verify_signed_proposal(
        &self,
        proposal: &Proposal,
        signature: &SignatureBytes,
        public_key: &PublicKeyBytes,
    ) -> bool {
        proposal.proposer.0.public_key() == *public_key
            && verify_bytes(
                public_key,
                &proposal_bytes(&self.chain_id, proposal),
                signature,
                "proposal",
            )
            .is_ok()
    }

    fn sign_proposal_part(&self, part: NoParts) -> SignedMessage<Ctx, NoParts> {
        match part {}
    }

    fn verify_signed_proposal_part(
        &self,
        part: &NoParts,
        _signature: &SignatureBytes,
        _public_key: &PublicKeyBytes,
    ) -> bool {
        match *part {}
    }

    fn sign_vote_extension(&self, extension: ()) -> SignedMessage<Ctx, ()> {
        // Extensions are never enabled (`ExtendVote` is answered with none); should malachite
        // ask anyway, an all-zero signature verifies under no key.
        SignedMessage::new(extension, SignatureBytes::UNSIGNED)
    }

    fn verify_signed_vote_extension(
        &self,
        _extension: &(),
        _signature: &SignatureBytes,
        _public_key: &PublicKeyBytes,
    ) -> bool {
        false
    }
}

//! Byzantine validators: each runs an honest engine, and the simulator rewrites what it sends.
//! Every forged message is properly signed with the byzantine validator's own key unless the
//! fault is a bad signature, so honest validators must reject it on its merits.

use rand::{Rng, RngCore};

use bmpls_consensus::context::VoteKind;
use bmpls_consensus::signing::{proposal_bytes, vote_bytes};
use bmpls_consensus::{Message, NilOrVal, SignedProposal, SignedVote};
use bmpls_crypto::SigningKey;
use bmpls_types::{
    BlockHash, BoundedVec, ChainId, LocationRecord, OpeCiphertext, PatientId, Seq, SignatureBytes,
    Transaction,
};

/// How a byzantine validator misbehaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Sends one vote to half its peers and a conflicting one to the others; proposes two
    /// different blocks in the same round.
    Equivocate,
    /// Proposes blocks holding a transaction that breaks the ledger's rules.
    InvalidBlocks,
    /// Signs nothing correctly.
    BadSignatures,
    /// Votes for blocks that were never proposed.
    UnknownBlockVotes,
    /// Sends nothing at all.
    Silent,
}

/// What a byzantine validator sends instead of `message`: one message per peer index.
pub fn tamper(
    fault: Fault,
    message: &Message,
    peers: usize,
    chain_id: &ChainId,
    key: &SigningKey,
    rng: &mut impl RngCore,
) -> Vec<Option<Message>> {
    let same = |m: &Message| vec![Some(m.clone()); peers];
    match (fault, message) {
        (Fault::Silent, _) => vec![None; peers],
        (Fault::Equivocate, Message::Vote(v)) => {
            let mut other = v.clone();
            other.vote.block = match v.vote.block {
                NilOrVal::Nil => NilOrVal::Val(random_hash(rng)),
                NilOrVal::Val(_) => NilOrVal::Nil,
            };
            let other = Message::Vote(resign_vote(other, chain_id, key));
            split(message, &other, peers)
        }
        (Fault::Equivocate, Message::Proposal(p)) => {
            let mut other = p.clone();
            other.block.header.time_ms += 1;
            let other = Message::Proposal(resign_proposal(other, chain_id, key));
            split(message, &other, peers)
        }
        (Fault::InvalidBlocks, Message::Proposal(p)) => {
            let mut bad = p.clone();
            let mut txs = bad.block.txs.clone().into_inner();
            txs.push(invalid_report(rng));
            bad.block.header.tx_root = bmpls_crypto::merkle::tx_root(&txs);
            bad.block.header.tx_count = txs.len() as u32;
            bad.block.txs = BoundedVec::new(txs).unwrap_or_else(|_| BoundedVec::empty());
            same(&Message::Proposal(resign_proposal(bad, chain_id, key)))
        }
        (Fault::BadSignatures, Message::Vote(v)) => {
            let mut bad = v.clone();
            bad.signature.0[0] ^= 1;
            same(&Message::Vote(bad))
        }
        (Fault::BadSignatures, Message::Proposal(p)) => {
            let mut bad = p.clone();
            bad.signature.0[0] ^= 1;
            same(&Message::Proposal(bad))
        }
        (Fault::UnknownBlockVotes, Message::Vote(v))
            if v.vote.kind == VoteKind::Prevote || v.vote.block != NilOrVal::Nil =>
        {
            let mut bad = v.clone();
            bad.vote.block = NilOrVal::Val(random_hash(rng));
            same(&Message::Vote(resign_vote(bad, chain_id, key)))
        }
        _ => same(message),
    }
}

fn split(first: &Message, second: &Message, peers: usize) -> Vec<Option<Message>> {
    (0..peers)
        .map(|i| {
            Some(if i % 2 == 0 {
                first.clone()
            } else {
                second.clone()
            })
        })
        .collect()
}

fn random_hash(rng: &mut impl RngCore) -> BlockHash {
    let mut bytes = [0u8; 32];
    rng.fill_bytes(&mut bytes);
    BlockHash(bytes)
}

fn resign_vote(mut v: SignedVote, chain_id: &ChainId, key: &SigningKey) -> SignedVote {
    v.signature = key.sign_bytes(&vote_bytes(chain_id, &v.vote));
    v
}

fn resign_proposal(mut p: SignedProposal, chain_id: &ChainId, key: &SigningKey) -> SignedProposal {
    let proposal = p.clone().into_mt().message;
    p.signature = key.sign_bytes(&proposal_bytes(chain_id, &proposal));
    p
}

/// A report of a patient nobody enrolled, with a signature by nobody in particular.
fn invalid_report(rng: &mut impl RngCore) -> Transaction {
    let mut id = [0u8; 16];
    rng.fill_bytes(&mut id);
    Transaction::Report(LocationRecord {
        patient: PatientId(id),
        seq: Seq(1),
        fix_time_ms: rng.gen_range(0..1_000_000),
        epoch: bmpls_types::Epoch(0),
        cells: BoundedVec::new(vec![bmpls_types::Cell::Ope(OpeCiphertext(rng.r#gen())); 3])
            .unwrap_or_else(|_| BoundedVec::empty()),
        sealed: BoundedVec::empty(),
        sig: SignatureBytes([7; 64]),
    })
}

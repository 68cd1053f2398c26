//! What validators send each other, and what the write-ahead log holds, in the canonical encoding
//! (version byte + borsh, bounded). Conversions to malachite's types recompute every block hash
//! from the block itself; nothing a peer claims about a hash is taken on trust.

use borsh::{BorshDeserialize, BorshSerialize};
use malachite_types::{
    self as mt, NilOrVal, PolkaCertificate, PolkaSignature, RoundCertificate, RoundCertificateType,
    RoundSignature, SignedMessage, VoteType,
};

use bmpls_types::limits::{MAX_BLOCK_BYTES, MAX_VALIDATORS};
use bmpls_types::{
    Block, BlockHash, BlockHeader, BoundedVec, Canonical, CommitCertificate, Hash32,
    SignatureBytes, Transaction,
};

use crate::context::{Address, Ctx, Height, Proposal, ProposedBlock, Vote, defined};

/// A signed vote.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct SignedVote {
    /// The vote.
    pub vote: Vote,
    /// The voter's signature over `signing::vote_bytes`.
    pub signature: SignatureBytes,
}

/// A signed proposal carrying its whole block.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct SignedProposal {
    /// Height proposed for.
    pub height: Height,
    /// Round proposed in.
    pub round: u32,
    /// Proof-of-lock round of a re-proposal.
    pub pol_round: Option<u32>,
    /// The proposer.
    pub proposer: Address,
    /// The block.
    pub block: Block,
    /// The proposer's signature over `signing::proposal_bytes`.
    pub signature: SignatureBytes,
}

/// Signatures proving a quorum of prevotes for one block in one round (a polka).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Polka {
    /// Height.
    pub height: Height,
    /// Round.
    pub round: u32,
    /// Block prevoted for.
    pub block: BlockHash,
    /// Each prevoter and its signature.
    pub signatures: Vec<(Address, SignatureBytes)>,
}

/// Signatures proving a round was reached or passed (a skip or precommit-any certificate).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct RoundCert {
    /// Height.
    pub height: Height,
    /// Round.
    pub round: u32,
    /// Skip (f+1 votes of a later round) or precommit (2f+1 precommits).
    pub cert_type: RoundCertificateType,
    /// Each vote's kind, block, voter and signature.
    pub signatures: Vec<(VoteType, NilOrVal<BlockHash>, Address, SignatureBytes)>,
}

/// A message between validators.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum Message {
    /// A proposal with its block.
    Proposal(SignedProposal),
    /// A vote.
    Vote(SignedVote),
    /// A polka certificate (liveness).
    Polka(Polka),
    /// A round certificate (liveness).
    RoundCert(RoundCert),
    /// "Send me the committed blocks from this height on."
    SyncRequest(Height),
    /// A committed block and its commit certificate, answering a sync request.
    SyncResponse(Box<Block>, CommitCertificate),
    /// Transactions a validator admitted from its clients, so that whoever proposes next can
    /// include them (mempool gossip). Each receiver checks them as it would a client's.
    Transactions(BoundedVec<Transaction, GOSSIP_BATCH>),
    /// "Which checkpoints of the chain's state do you hold?" (a validator joining from a
    /// snapshot instead of replaying the chain).
    SnapshotRequest,
    /// The checkpoints a validator holds, newest first.
    SnapshotOffer(BoundedVec<OfferedCheckpoint, MAX_OFFERED_CHECKPOINTS>),
    /// "Send me piece `index` of the checkpoint after block `height`."
    SnapshotChunkRequest(bmpls_types::Height, u32),
    /// Piece `index` of the checkpoint after block `height`: bytes
    /// `index × SNAPSHOT_CHUNK_BYTES` on.
    SnapshotChunk(
        bmpls_types::Height,
        u32,
        BoundedVec<u8, SNAPSHOT_CHUNK_BYTES>,
    ),
}

/// A checkpoint a validator offers: the state after the block of `header`, certified by `cert`,
/// `len` bytes in pieces of [`SNAPSHOT_CHUNK_BYTES`] whose hashes are `pieces`, and whose
/// `digest` is the hash of those hashes. Neither the header nor the certificate says anything
/// of the state: a joining validator believes the digest only when validators of more than a
/// third of the voting power offer it for the same block, and then checks each piece as it
/// comes, whoever sends it.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct OfferedCheckpoint {
    /// The block the state is after.
    pub header: BlockHeader,
    /// Its commit certificate.
    pub cert: CommitCertificate,
    /// The hash of the pieces' hashes.
    pub digest: Hash32,
    /// The checkpoint's length in bytes.
    pub len: u64,
    /// Each piece's hash, in order.
    pub pieces: BoundedVec<Hash32, MAX_SNAPSHOT_PIECES>,
}

/// Checkpoints in one offer (a validator keeps two).
pub const MAX_OFFERED_CHECKPOINTS: usize = 4;
/// Bytes of a checkpoint in one [`Message::SnapshotChunk`].
pub const SNAPSHOT_CHUNK_BYTES: usize = 4 * 1024 * 1024;
/// The largest checkpoint a joining validator fetches.
pub const MAX_SNAPSHOT_BYTES: u64 = 1 << 30;
/// Pieces of the largest checkpoint.
pub const MAX_SNAPSHOT_PIECES: usize = (MAX_SNAPSHOT_BYTES as usize).div_ceil(SNAPSHOT_CHUNK_BYTES);
const _: () = assert!(SNAPSHOT_CHUNK_BYTES + 1024 < MAX_BLOCK_BYTES);

/// Transactions in one gossip message.
pub const GOSSIP_BATCH: usize = 1024;

impl Canonical for Message {
    const NAME: &'static str = "consensus message";
    const MAX_BYTES: usize = MAX_BLOCK_BYTES + 4096;
}

/// One entry of the consensus write-ahead log: every input the engine hands malachite at a
/// height, in order, so that a restarted validator replays into exactly the state it had (locks
/// included), and what it signed.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum WalRecord {
    /// A vote received (or cast).
    Vote(SignedVote),
    /// A proposal received (or made).
    Proposal(SignedProposal),
    /// A timeout that elapsed (kind as malachite numbers it, round).
    Timeout(u8, u32),
    /// A full proposed value and its validity as this validator judged it.
    ProposedValue {
        /// Height.
        height: Height,
        /// Round.
        round: u32,
        /// Valid round (proof-of-lock), if any.
        valid_round: Option<u32>,
        /// Proposer.
        proposer: Address,
        /// The block.
        block: Block,
        /// Whether it passed validation.
        valid: bool,
    },
    /// The block this validator proposes at `(height, round)`.
    Propose {
        /// Height.
        height: Height,
        /// Round.
        round: u32,
        /// The block.
        block: Block,
    },
    /// A polka certificate received.
    Polka(Polka),
    /// A round certificate received.
    RoundCert(RoundCert),
    /// This validator signed `digest` (a hash of the signed bytes) as its message of `step`
    /// (0 proposal, 1 prevote, 2 precommit) at `(height, round)`. Written durably, with every
    /// input before it, before the signature leaves: the double-signing guard.
    Signed {
        /// Height.
        height: Height,
        /// Round.
        round: u32,
        /// Step.
        step: u8,
        /// Hash of the signed bytes.
        digest: Hash32,
    },
    /// [`WalRecord::ProposedValue`] of a block this log already holds at the same height (in
    /// the `Proposal` or `Propose` record just before): a validator receiving a proposal logs
    /// its block once, not twice. Appended last, so older logs read as before.
    ProposedValueOf {
        /// Height.
        height: Height,
        /// Round.
        round: u32,
        /// Valid round (proof-of-lock), if any.
        valid_round: Option<u32>,
        /// Proposer.
        proposer: Address,
        /// The hash of the block, logged earlier at this height.
        block: BlockHash,
        /// Whether it passed validation.
        valid: bool,
    },
}

impl Canonical for WalRecord {
    const NAME: &'static str = "write-ahead log entry";
    const MAX_BYTES: usize = MAX_BLOCK_BYTES + 4096;
}

/// A malformed message: a field out of bounds after decoding.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("malformed consensus message: {0}")]
pub struct Malformed(pub &'static str);

impl SignedVote {
    /// To malachite's form.
    pub fn into_mt(self) -> SignedMessage<Ctx, Vote> {
        SignedMessage::new(self.vote, self.signature)
    }

    /// From malachite's form.
    pub fn from_mt(signed: &SignedMessage<Ctx, Vote>) -> Self {
        Self {
            vote: signed.message.clone(),
            signature: signed.signature,
        }
    }
}

impl SignedProposal {
    /// To malachite's form, hashing the block.
    pub fn into_mt(self) -> SignedMessage<Ctx, Proposal> {
        SignedMessage::new(
            Proposal {
                height: self.height,
                round: self.round,
                pol_round: self.pol_round,
                block: ProposedBlock::new(self.block),
                proposer: self.proposer,
            },
            self.signature,
        )
    }

    /// From malachite's form.
    pub fn from_mt(signed: &SignedMessage<Ctx, Proposal>) -> Self {
        let p = &signed.message;
        Self {
            height: p.height,
            round: p.round,
            pol_round: p.pol_round,
            proposer: p.proposer,
            block: p.block.block().block().clone(),
            signature: signed.signature,
        }
    }
}

impl Polka {
    /// From malachite's form.
    pub fn from_mt(cert: &PolkaCertificate<Ctx>) -> Self {
        Self {
            height: cert.height,
            round: defined(cert.round),
            block: cert.value_id,
            signatures: cert
                .polka_signatures
                .iter()
                .map(|s| (s.address, s.signature))
                .collect(),
        }
    }

    /// To malachite's form; refuses more signatures than validators.
    pub fn into_mt(self) -> Result<PolkaCertificate<Ctx>, Malformed> {
        if self.signatures.len() > MAX_VALIDATORS {
            return Err(Malformed("polka certificate signatures"));
        }
        Ok(PolkaCertificate {
            height: self.height,
            round: mt::Round::new(self.round),
            value_id: self.block,
            polka_signatures: self
                .signatures
                .into_iter()
                .map(|(address, signature)| PolkaSignature::new(address, signature))
                .collect(),
        })
    }
}

impl RoundCert {
    /// From malachite's form.
    pub fn from_mt(cert: &RoundCertificate<Ctx>) -> Self {
        Self {
            height: cert.height,
            round: defined(cert.round),
            cert_type: cert.cert_type.clone(),
            signatures: cert
                .round_signatures
                .iter()
                .map(|s| (s.vote_type, s.value_id, s.address, s.signature))
                .collect(),
        }
    }

    /// To malachite's form; refuses more signatures than validators.
    pub fn into_mt(self) -> Result<RoundCertificate<Ctx>, Malformed> {
        if self.signatures.len() > MAX_VALIDATORS {
            return Err(Malformed("round certificate signatures"));
        }
        Ok(RoundCertificate {
            height: self.height,
            round: mt::Round::new(self.round),
            cert_type: self.cert_type,
            round_signatures: self
                .signatures
                .into_iter()
                .map(|(vote_type, value_id, address, signature)| RoundSignature {
                    vote_type,
                    value_id,
                    address,
                    signature,
                })
                .collect(),
        })
    }
}

//! Our types for malachite's `Context`: heights, validators, the value (a whole block), votes and
//! proposals. They carry what is signed; the bytes each signature covers are in `signing.rs`.

use std::sync::Arc;

use borsh::{BorshDeserialize, BorshSerialize};
use malachite_types as mt;
use malachite_types::{NilOrVal, Round, VoteType};

use bmpls_crypto::HashedBlock;
use bmpls_crypto::hash::block_hash;
use bmpls_types::{BlockHash, ChainId, PublicKeyBytes, SignatureBytes, ValidatorId};

/// The malachite context of one chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ctx {
    chain_id: ChainId,
}

impl Ctx {
    /// The context of chain `chain_id`.
    pub fn new(chain_id: ChainId) -> Self {
        Self { chain_id }
    }

    /// The chain.
    pub fn chain_id(&self) -> &ChainId {
        &self.chain_id
    }
}

/// A block height as malachite counts it (1 is the first block).
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    BorshSerialize,
    BorshDeserialize,
)]
pub struct Height(pub u64);

impl std::fmt::Display for Height {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl mt::Height for Height {
    const ZERO: Self = Self(0);
    const INITIAL: Self = Self(1);

    fn increment_by(&self, n: u64) -> Self {
        Self(self.0.saturating_add(n))
    }

    fn decrement_by(&self, n: u64) -> Option<Self> {
        self.0.checked_sub(n).map(Self)
    }

    fn as_u64(&self) -> u64 {
        self.0
    }
}

impl From<Height> for bmpls_types::Height {
    fn from(h: Height) -> Self {
        bmpls_types::Height(h.0)
    }
}

impl From<bmpls_types::Height> for Height {
    fn from(h: bmpls_types::Height) -> Self {
        Height(h.0)
    }
}

/// A validator's address: its Ed25519 vote-signing key.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize,
)]
pub struct Address(pub ValidatorId);

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl mt::Address for Address {}

/// One validator of the set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Validator {
    address: Address,
    public_key: PublicKeyBytes,
    power: u64,
}

impl mt::Validator<Ctx> for Validator {
    fn address(&self) -> &Address {
        &self.address
    }

    fn public_key(&self) -> &PublicKeyBytes {
        &self.public_key
    }

    fn voting_power(&self) -> u64 {
        self.power
    }
}

/// The validator set (from genesis; it does not change in this version), sorted by address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidatorSet {
    validators: Arc<[Validator]>,
    set: Arc<bmpls_crypto::ValidatorSet>,
}

impl ValidatorSet {
    /// Wraps a checked set (non-empty, distinct, positive powers, sum fits).
    pub fn new(set: bmpls_crypto::ValidatorSet) -> Self {
        let validators = set
            .validators()
            .iter()
            .map(|v| Validator {
                address: Address(v.id),
                public_key: v.id.public_key(),
                power: v.power,
            })
            .collect();
        Self {
            validators,
            set: Arc::new(set),
        }
    }

    /// The set as the certificate checks of `bmpls-crypto` take it.
    pub fn crypto(&self) -> &bmpls_crypto::ValidatorSet {
        &self.set
    }

    /// The validators, sorted by address.
    pub fn validators(&self) -> &[Validator] {
        &self.validators
    }

    /// Whether `id` is a member.
    pub fn contains(&self, id: &ValidatorId) -> bool {
        self.set.get(id).is_some()
    }
}

impl mt::ValidatorSet<Ctx> for ValidatorSet {
    fn count(&self) -> usize {
        self.validators.len()
    }

    fn total_voting_power(&self) -> u64 {
        self.set.total_power()
    }

    fn get_by_address(&self, address: &Address) -> Option<&Validator> {
        self.set
            .get(&address.0)
            .map(|(position, _)| &self.validators[position])
    }

    fn get_by_index(&self, index: usize) -> Option<&Validator> {
        self.validators.get(index)
    }
}

/// The value consensus decides on: a whole block, identified by its header hash. The hash is
/// computed when the value is made, never taken from the wire.
#[derive(Clone, Debug)]
pub struct ProposedBlock {
    hash: BlockHash,
    block: Arc<HashedBlock>,
}

impl ProposedBlock {
    /// Wraps `block`, hashing its header (its transactions are hashed when first checked,
    /// once however many copies of the value there are).
    pub fn new(block: impl Into<HashedBlock>) -> Self {
        let block = block.into();
        Self {
            hash: block_hash(&block.header),
            block: Arc::new(block),
        }
    }

    /// The header hash.
    pub fn hash(&self) -> BlockHash {
        self.hash
    }

    /// The block, with its transactions' hashes.
    pub fn block(&self) -> &HashedBlock {
        &self.block
    }
}

impl PartialEq for ProposedBlock {
    fn eq(&self, other: &Self) -> bool {
        self.hash == other.hash
    }
}

impl Eq for ProposedBlock {}

impl PartialOrd for ProposedBlock {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ProposedBlock {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.hash.cmp(&other.hash)
    }
}

impl mt::Value for ProposedBlock {
    type Id = BlockHash;

    fn id(&self) -> BlockHash {
        self.hash
    }
}

/// Prevote or precommit, in our encoding.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize,
)]
#[borsh(use_discriminant = true)]
#[repr(u8)]
pub enum VoteKind {
    /// First voting step.
    Prevote = 0,
    /// Second voting step; a quorum of these for a block commits it.
    Precommit = 1,
}

/// A vote: for a block, or for nil.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize)]
pub struct Vote {
    /// Prevote or precommit.
    pub kind: VoteKind,
    /// Height voted on.
    pub height: Height,
    /// Round voted in (votes are only cast in defined rounds).
    pub round: u32,
    /// The block voted for, or nil.
    pub block: NilOrVal<BlockHash>,
    /// The voter.
    pub validator: Address,
}

/// A round that must be defined, as a number.
pub(crate) fn defined(round: Round) -> u32 {
    // Malachite casts votes and proposals only in defined rounds; `Nil` maps to an impossible
    // round so that a vote built from it can never match a real one.
    round.as_u32().unwrap_or(u32::MAX)
}

impl mt::Vote<Ctx> for Vote {
    fn height(&self) -> Height {
        self.height
    }

    fn round(&self) -> Round {
        Round::new(self.round)
    }

    fn value(&self) -> &NilOrVal<BlockHash> {
        &self.block
    }

    fn take_value(self) -> NilOrVal<BlockHash> {
        self.block
    }

    fn vote_type(&self) -> VoteType {
        match self.kind {
            VoteKind::Prevote => VoteType::Prevote,
            VoteKind::Precommit => VoteType::Precommit,
        }
    }

    fn validator_address(&self) -> &Address {
        &self.validator
    }

    fn extension(&self) -> Option<&mt::SignedExtension<Ctx>> {
        None
    }

    fn take_extension(&mut self) -> Option<mt::SignedExtension<Ctx>> {
        None
    }

    fn extend(self, _extension: mt::SignedExtension<Ctx>) -> Self {
        // Vote extensions are not used: `ExtendVote` is always answered with none.
        self
    }
}

/// A proposal: a block proposed by the round's proposer, with the round of its proof of lock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proposal {
    /// Height proposed for.
    pub height: Height,
    /// Round proposed in.
    pub round: u32,
    /// The proof-of-lock round, if the block is re-proposed.
    pub pol_round: Option<u32>,
    /// The block.
    pub block: ProposedBlock,
    /// The proposer.
    pub proposer: Address,
}

impl mt::Proposal<Ctx> for Proposal {
    fn height(&self) -> Height {
        self.height
    }

    fn round(&self) -> Round {
        Round::new(self.round)
    }

    fn value(&self) -> &ProposedBlock {
        &self.block
    }

    fn take_value(self) -> ProposedBlock {
        self.block
    }

    fn pol_round(&self) -> Round {
        self.pol_round.map_or(Round::Nil, Round::new)
    }

    fn validator_address(&self) -> &Address {
        &self.proposer
    }
}

/// Proposal parts are not used: the block travels inside the proposal. The type has no values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NoParts {}

impl mt::ProposalPart<Ctx> for NoParts {
    fn is_first(&self) -> bool {
        match *self {}
    }

    fn is_last(&self) -> bool {
        match *self {}
    }
}

/// Ed25519 as malachite's signing scheme. Private keys never pass through malachite: the host
/// signs when asked by an effect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ed25519;

impl mt::SigningScheme for Ed25519 {
    type DecodingError = &'static str;
    type Signature = SignatureBytes;
    type PublicKey = PublicKeyBytes;
    type PrivateKey = ();

    fn decode_signature(bytes: &[u8]) -> Result<SignatureBytes, &'static str> {
        <[u8; 64]>::try_from(bytes)
            .map(SignatureBytes)
            .map_err(|_| "an Ed25519 signature is 64 bytes")
    }

    fn encode_signature(signature: &SignatureBytes) -> Vec<u8> {
        signature.0.to_vec()
    }
}

impl mt::Context for Ctx {
    type Address = Address;
    type Height = Height;
    type ProposalPart = NoParts;
    type Proposal = Proposal;
    type Validator = Validator;
    type ValidatorSet = ValidatorSet;
    type Value = ProposedBlock;
    type Vote = Vote;
    type Extension = ();
    type SigningScheme = Ed25519;

    fn select_proposer<'a>(
        &self,
        validator_set: &'a ValidatorSet,
        height: Height,
        round: Round,
    ) -> &'a Validator {
        proposer(validator_set, height, defined(round))
    }

    fn new_proposal(
        &self,
        height: Height,
        round: Round,
        value: ProposedBlock,
        pol_round: Round,
        address: Address,
    ) -> Proposal {
        Proposal {
            height,
            round: defined(round),
            pol_round: pol_round.as_u32(),
            block: value,
            proposer: address,
        }
    }

    fn new_prevote(
        &self,
        height: Height,
        round: Round,
        value_id: NilOrVal<BlockHash>,
        address: Address,
    ) -> Vote {
        new_vote(VoteKind::Prevote, height, round, value_id, address)
    }

    fn new_precommit(
        &self,
        height: Height,
        round: Round,
        value_id: NilOrVal<BlockHash>,
        address: Address,
    ) -> Vote {
        new_vote(VoteKind::Precommit, height, round, value_id, address)
    }
}

fn new_vote(
    kind: VoteKind,
    height: Height,
    round: Round,
    value_id: NilOrVal<BlockHash>,
    validator: Address,
) -> Vote {
    Vote {
        kind,
        height,
        round: defined(round),
        block: value_id,
        validator,
    }
}

/// The proposer of `(height, round)`: validators take turns in proportion to their power, a
/// deterministic walk every validator computes alike.
pub fn proposer(set: &ValidatorSet, height: Height, round: u32) -> &Validator {
    let total = set.set.total_power();
    let mut ticket = height.0.wrapping_add(u64::from(round)) % total;
    for validator in set.validators.iter() {
        if ticket < validator.power {
            return validator;
        }
        ticket -= validator.power;
    }
    // The powers sum to `total`, so the walk always ends inside the loop.
    &set.validators[0]
}

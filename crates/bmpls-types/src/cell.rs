//! A record's ciphertext at one level: order-preserving (coarse levels) or the right half of an
//! order-revealing encryption (fine levels), and the left tokens that queries and fences compare
//! with right ciphertexts. The bytes of ORE ciphertexts are `bmpls-ore-compare`'s canonical
//! encodings; this crate only bounds and carries them (a validator parses them when it compares).

use borsh::{BorshDeserialize, BorshSerialize};

use crate::bounded::BoundedVec;
use crate::ids::OpeCiphertext;
use crate::limits::{MAX_ORE_LEFT_BYTES, MAX_ORE_RIGHT_BYTES};

/// An ORE right ciphertext, as records store it: semantically secure on its own, comparable
/// only with a left token ([`OreLeft`]) made with the level's key.
#[derive(Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct OreRight(pub BoundedVec<u8, MAX_ORE_RIGHT_BYTES>);

/// An ORE left ciphertext: a carer's query bound or a fence endpoint. Deterministic in the key
/// and the value: equal endpoints give equal tokens.
#[derive(Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct OreLeft(pub BoundedVec<u8, MAX_ORE_LEFT_BYTES>);

impl AsRef<[u8]> for OreLeft {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

// Ciphertexts stay out of logs: their length is enough to debug with.
impl std::fmt::Debug for OreRight {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OreRight({} bytes)", self.0.len())
    }
}

impl std::fmt::Debug for OreLeft {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OreLeft({} bytes)", self.0.len())
    }
}

/// A record's ciphertext of one level's cell.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum Cell {
    /// Randomised OPE: compared as an integer.
    Ope(OpeCiphertext),
    /// ORE right ciphertext: compared only with a left token.
    Ore(OreRight),
}

impl Cell {
    /// The OPE ciphertext, if the level is under OPE.
    pub fn ope(&self) -> Option<OpeCiphertext> {
        match self {
            Self::Ope(c) => Some(*c),
            Self::Ore(_) => None,
        }
    }

    /// The ORE right ciphertext's bytes, if the level is under ORE.
    pub fn ore(&self) -> Option<&[u8]> {
        match self {
            Self::Ope(_) => None,
            Self::Ore(r) => Some(&r.0),
        }
    }
}

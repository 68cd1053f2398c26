//! Left ciphertexts: what a carer sends as a query endpoint and a fence stores as a zone's run
//! endpoint. Per block, the slot the plaintext's block occupies under the block's permutation
//! and the key of that slot.

use std::fmt;

use crate::wire::{self, HEADER_LEN, KIND_LEFT};
use crate::{Domain, MAX_BLOCKS, OreError};

/// Bytes per block: the slot (one byte) and its 16-byte key.
const BLOCK_LEN: usize = 17;

/// One block of a left ciphertext, as [`LeftCiphertext::from_blocks`] takes it.
#[derive(Clone, Copy)]
pub struct LeftBlock {
    /// The slot of the plaintext's block, `π(x_i)`, below `2^block_len`.
    pub slot: u8,
    /// The slot's key, `F(k, i ‖ prefix ‖ slot)`.
    pub key: [u8; 16],
}

/// A left ciphertext: compares against any right ciphertext of the same key and domain.
///
/// Deterministic: one plaintext under one key always gives the same left ciphertext, so two
/// queries with an equal endpoint send equal tokens. `Debug` shows the domain only, so that
/// tokens do not reach logs.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct LeftCiphertext {
    domain: Domain,
    /// The canonical encoding, which is also the representation: header, then the blocks.
    encoded: Vec<u8>,
}

impl LeftCiphertext {
    /// Largest encoding over all domains (64 bits in 2-bit blocks).
    pub const MAX_LEN: usize = HEADER_LEN + MAX_BLOCKS * BLOCK_LEN;

    /// Length of the encoding over `domain`.
    pub const fn encoded_len(domain: &Domain) -> usize {
        HEADER_LEN + domain.blocks() * BLOCK_LEN
    }

    /// Assembles a left ciphertext from its blocks, most significant first. This is the last
    /// step of `bmpls_ore::OreKey::encrypt_left`; without the key nobody can compute blocks
    /// that compare meaningfully.
    pub fn from_blocks(domain: Domain, blocks: &[LeftBlock]) -> Result<Self, OreError> {
        if blocks.len() != domain.blocks() {
            return Err(OreError::BadBlocks {
                expected: domain.blocks(),
                got: blocks.len(),
            });
        }
        let mut encoded = Vec::with_capacity(Self::encoded_len(&domain));
        encoded.extend_from_slice(&wire::header(KIND_LEFT, domain));
        for (i, block) in blocks.iter().enumerate() {
            if usize::from(block.slot) >= domain.slots(i) {
                return Err(OreError::BadSlot { block: i });
            }
            encoded.push(block.slot);
            encoded.extend_from_slice(&block.key);
        }
        Ok(Self { domain, encoded })
    }

    /// Parses a canonical encoding: exactly [`LeftCiphertext::encoded_len`] bytes, every slot
    /// inside its block.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, OreError> {
        let domain = wire::parse(bytes, KIND_LEFT, "left", Self::encoded_len)?;
        for i in 0..domain.blocks() {
            if usize::from(bytes[HEADER_LEN + i * BLOCK_LEN]) >= domain.slots(i) {
                return Err(OreError::BadSlot { block: i });
            }
        }
        Ok(Self {
            domain,
            encoded: bytes.to_vec(),
        })
    }

    /// The canonical encoding: version, kind `'L'`, bits, block bits, then per block its slot
    /// and 16-byte key.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.encoded.clone()
    }

    /// The canonical encoding, borrowed.
    pub fn as_bytes(&self) -> &[u8] {
        &self.encoded
    }

    /// The domain of the key that made it.
    pub fn domain(&self) -> Domain {
        self.domain
    }

    /// Block `i` (below [`Domain::blocks`]) as [`LeftCiphertext::from_blocks`] took it: what
    /// `bmpls_ore::OreKey::decrypt_left` reads back.
    pub fn left_block(&self, i: usize) -> Option<LeftBlock> {
        if i >= self.domain.blocks() {
            return None;
        }
        let (slot, key) = self.block(i);
        Some(LeftBlock {
            // A slot is one byte of the encoding.
            slot: slot as u8,
            key: key.try_into().ok()?,
        })
    }

    /// Block `i`'s slot and its 16-byte key.
    #[inline]
    pub(crate) fn block(&self, i: usize) -> (usize, &[u8]) {
        let at = HEADER_LEN + i * BLOCK_LEN;
        (
            usize::from(self.encoded[at]),
            &self.encoded[at + 1..at + BLOCK_LEN],
        )
    }
}

impl fmt::Debug for LeftCiphertext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LeftCiphertext")
            .field("domain", &self.domain)
            .finish_non_exhaustive()
    }
}

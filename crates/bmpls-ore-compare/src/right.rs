//! Right ciphertexts: what a record stores. A fresh nonce, then for every block and every slot
//! of that block the slot's comparison value masked by `H(slot key, nonce)`, mod 3, packed five
//! values to a byte.

use std::fmt;

use zeroize::Zeroize;

use crate::hash::{self, BATCH, Block, Oracle};
use crate::wire::{self, HEADER_LEN, KIND_RIGHT};
use crate::{Domain, MAX_BITS, MAX_BLOCK_BITS, OreError};

/// Nonce length.
pub(crate) const NONCE_LEN: usize = 16;
/// Values mod 3 per packed byte: `3^5 = 243 ≤ 256`, 1.6 bits per value against the ideal 1.585.
const PER_BYTE: usize = 5;
/// Powers of three, the weight of each value inside its byte (the first value is the lowest).
const POW3: [u8; PER_BYTE] = [1, 3, 9, 27, 81];
/// Bytes 243..=255 are not packings.
const PACKED_LIMIT: u8 = 243;

/// `DIGITS[b][k]` is value `k` of packed byte `b`: a table instead of a division per read.
static DIGITS: [[u8; PER_BYTE]; PACKED_LIMIT as usize] = {
    let mut table = [[0u8; PER_BYTE]; PACKED_LIMIT as usize];
    let mut b = 0;
    while b < PACKED_LIMIT as usize {
        let mut k = 0;
        while k < PER_BYTE {
            table[b][k] = (b / POW3[k] as usize % 3) as u8;
            k += 1;
        }
        b += 1;
    }
    table
};

/// A right ciphertext: semantically secure on its own, comparable only against a left
/// ciphertext of the same key and domain ([`crate::compare`]).
///
/// It implements no ordering, and this crate has no function that takes two right
/// ciphertexts: the values in its slots are masked by keys that only a left ciphertext
/// supplies, so two right ciphertexts carry nothing to compare. Equality (`==`) is byte
/// identity, and two encryptions of one value are unequal because their nonces differ.
/// `Debug` shows the domain only.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RightCiphertext {
    domain: Domain,
    /// The canonical encoding, which is also the representation: header, nonce, packed values.
    encoded: Vec<u8>,
}

impl RightCiphertext {
    /// Largest encoding over all domains (64 bits in 8-bit blocks).
    pub const MAX_LEN: usize = HEADER_LEN
        + NONCE_LEN
        + ((MAX_BITS / MAX_BLOCK_BITS) as usize * (1 << MAX_BLOCK_BITS)).div_ceil(PER_BYTE);

    /// Length of the encoding over `domain`.
    pub const fn encoded_len(domain: &Domain) -> usize {
        HEADER_LEN + NONCE_LEN + domain.total_slots().div_ceil(PER_BYTE)
    }

    /// Assembles a right ciphertext: slot `t` (over all blocks, block by block) holds
    /// `cmp[t] + H(slot key t, nonce) mod 3`. This is the last step of
    /// `bmpls_ore::OreKey::encrypt_right`, which computes the slot keys and comparison values
    /// from the key and the plaintext; `H` lives here because the comparison needs it too.
    /// The slot keys come as an iterator so that the caller's AES output needs no copy.
    pub fn from_slots<K>(
        domain: Domain,
        nonce: [u8; 16],
        slot_keys: K,
        cmp: &[u8],
    ) -> Result<Self, OreError>
    where
        K: IntoIterator<Item = [u8; 16]>,
        K::IntoIter: ExactSizeIterator,
    {
        let mut slot_keys = slot_keys.into_iter();
        let slots = domain.total_slots();
        if slot_keys.len() != slots || cmp.len() != slots || cmp.iter().any(|&v| v >= 3) {
            return Err(OreError::BadSlots {
                expected: slots,
                got: slot_keys.len().min(cmp.len()),
            });
        }
        let mut encoded = vec![0u8; Self::encoded_len(&domain)];
        encoded[..HEADER_LEN].copy_from_slice(&wire::header(KIND_RIGHT, domain));
        encoded[HEADER_LEN..HEADER_LEN + NONCE_LEN].copy_from_slice(&nonce);
        let packed = &mut encoded[HEADER_LEN + NONCE_LEN..];
        let oracle = Oracle::new(&nonce);
        let mut batch = [Block::default(); BATCH];
        for start in (0..slots).step_by(BATCH) {
            let count = BATCH.min(slots - start);
            for (block, key) in batch[..count].iter_mut().zip(&mut slot_keys) {
                *block = key.into();
            }
            oracle.apply(&mut batch[..count]);
            for (t, image) in (start..).zip(&batch[..count]) {
                let value = (cmp[t] + hash::trit(image)) % 3;
                packed[t / PER_BYTE] += value * POW3[t % PER_BYTE];
            }
        }
        // The batch ends holding masks, which with the ciphertext would give the comparison
        // values away.
        for block in &mut batch {
            block.as_mut_slice().zeroize();
        }
        Ok(Self { domain, encoded })
    }

    /// Parses a canonical encoding: exactly [`RightCiphertext::encoded_len`] bytes, every
    /// packed byte below 243, and zero padding after the last value.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, OreError> {
        let domain = wire::parse(bytes, KIND_RIGHT, "right", Self::encoded_len)?;
        let packed = &bytes[HEADER_LEN + NONCE_LEN..];
        if let Some(byte) = packed.iter().position(|&b| b >= PACKED_LIMIT) {
            return Err(OreError::BadPacking { byte });
        }
        let used = domain.total_slots() % PER_BYTE;
        if used != 0 {
            let last = packed.len() - 1;
            if packed[last] >= POW3[used] {
                return Err(OreError::BadPacking { byte: last });
            }
        }
        Ok(Self {
            domain,
            encoded: bytes.to_vec(),
        })
    }

    /// The canonical encoding: version, kind `'R'`, bits, block bits, the 16-byte nonce, then
    /// the slot values mod 3, five to a byte (`v0 + 3·v1 + 9·v2 + 27·v3 + 81·v4`).
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

    /// The nonce.
    pub(crate) fn nonce(&self) -> [u8; 16] {
        let mut nonce = [0u8; 16];
        nonce.copy_from_slice(&self.encoded[HEADER_LEN..HEADER_LEN + NONCE_LEN]);
        nonce
    }

    /// The masked value of slot `t`.
    #[inline]
    pub(crate) fn slot(&self, t: usize) -> u8 {
        let byte = self.encoded[HEADER_LEN + NONCE_LEN + t / PER_BYTE];
        DIGITS[usize::from(byte)][t % PER_BYTE]
    }
}

impl fmt::Debug for RightCiphertext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RightCiphertext")
            .field("domain", &self.domain)
            .finish_non_exhaustive()
    }
}

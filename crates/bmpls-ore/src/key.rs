//! `OreKey`: the two AES-256 keys of one (patient, level, epoch) and the two encryptions.

use std::fmt;

use aes::Aes256Enc;
use aes::cipher::{BlockEncrypt, KeyInit};
use bmpls_ore_compare::{
    Domain, LeftBlock, LeftCiphertext, MAX_BLOCK_BITS, MAX_BLOCKS, OreError, RightCiphertext,
};
use hmac::{Hmac, Mac};
use rand_core::CryptoRngCore;
use sha2::Sha256;
use zeroize::{Zeroize, Zeroizing};

use crate::prp::{self, PURPOSE_PRP};

/// Label of the PRF key derivation.
const PRF_LABEL: &[u8] = b"bmpls/v1/ore/prf";
/// Label of the permutation key derivation.
const PRP_LABEL: &[u8] = b"bmpls/v1/ore/prp";
/// Label byte of slot-key PRF inputs.
const PURPOSE_SLOT: u8 = 1;
const _: () = assert!(PURPOSE_SLOT != PURPOSE_PRP);
/// Slots of the largest block.
const MAX_SLOTS: usize = 1 << MAX_BLOCK_BITS;

/// The key of one (patient, level, epoch) for one [`Domain`].
///
/// Holds two AES-256 key schedules derived from the caller's 32-byte secret: the PRF `F` of the
/// slot keys and the key of the slot permutations. They are wiped when the key is dropped, and
/// `Debug` prints the domain only.
pub struct OreKey {
    domain: Domain,
    prf: Aes256Enc,
    prp: Aes256Enc,
}

impl OreKey {
    /// The key for `domain` from a 32-byte secret, which the caller derives per patient, level
    /// and epoch. The subkeys are HMAC-SHA256 of the secret under distinct labels and the
    /// domain, so one secret used with two domains gives unrelated keys.
    pub fn new(secret: &[u8; 32], domain: Domain) -> Self {
        let derive = |label: &[u8]| {
            let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret)
                .expect("HMAC-SHA256 accepts keys of any length");
            mac.update(label);
            mac.update(&[domain.bits(), domain.block_bits()]);
            let okm = Zeroizing::new(<[u8; 32]>::from(mac.finalize().into_bytes()));
            Aes256Enc::new(&(*okm).into())
        };
        Self {
            domain,
            prf: derive(PRF_LABEL),
            prp: derive(PRP_LABEL),
        }
    }

    /// The domain the key encrypts.
    pub fn domain(&self) -> Domain {
        self.domain
    }

    /// The left ciphertext of `x`: deterministic, compares against any right ciphertext of
    /// this key. `x` must lie in the domain.
    pub fn encrypt_left(&self, x: u64) -> Result<LeftCiphertext, OreError> {
        self.domain.check(x)?;
        let blocks = self.domain.blocks();
        let mut slots = [0u8; MAX_BLOCKS];
        let mut keys = SecretBlocks([aes::Block::default(); MAX_BLOCKS]);
        let mut perm = [0u8; MAX_SLOTS];
        for i in 0..blocks {
            let prefix = self.domain.prefix(x, i);
            let perm = &mut perm[..self.domain.slots(i)];
            prp::permutation(&self.prp, i, prefix, perm);
            slots[i] = perm[self.domain.block_value(x, i)];
            keys[i] = slot_input(slot_base(i, prefix), slots[i]);
        }
        self.prf.encrypt_blocks(&mut keys[..blocks]);
        let parts: Vec<LeftBlock> = (0..blocks)
            .map(|i| LeftBlock {
                slot: slots[i],
                key: keys[i].into(),
            })
            .collect();
        LeftCiphertext::from_blocks(self.domain, &parts)
    }

    /// The plaintext of a left ciphertext this key made (a fence's run endpoint, for a carer
    /// that holds the level key and draws the fence). Block by block: the prefix decrypted so
    /// far names the block's permutation, whose inverse gives the block's value, and the slot
    /// key is recomputed and must equal the ciphertext's, so a token of another key (or of no
    /// key) is refused with [`OreError::NotUnderThisKey`], never read as some plaintext.
    pub fn decrypt_left(&self, left: &LeftCiphertext) -> Result<u64, OreError> {
        if left.domain() != self.domain {
            return Err(OreError::DomainMismatch);
        }
        let mut x = 0u64;
        let mut perm = [0u8; MAX_SLOTS];
        for i in 0..self.domain.blocks() {
            let block = left.left_block(i).ok_or(OreError::BadBlocks {
                expected: self.domain.blocks(),
                got: i,
            })?;
            // The bits above block i, already decrypted, are the block's prefix.
            let prefix = x;
            let perm = &mut perm[..self.domain.slots(i)];
            prp::permutation(&self.prp, i, prefix, perm);
            let value = perm
                .iter()
                .position(|&slot| slot == block.slot)
                .ok_or(OreError::BadSlot { block: i })?;
            if *self.slot_key(slot_base(i, prefix), block.slot) != block.key {
                return Err(OreError::NotUnderThisKey);
            }
            x = (x << self.domain.block_len(i)) | value as u64;
        }
        Ok(x)
    }

    /// The plaintext of a right ciphertext this key made (a carer reading a record's cell).
    /// Block by block: the prefix decrypted so far names the block's permutation, computed
    /// once, and the block's value is found by bisection, each probe one slot key against the
    /// block's slot ([`bmpls_ore_compare::Comparator::block_order`]); one permutation per
    /// block, where bisecting with whole left ciphertexts costs one per block per step. A
    /// block in which no value compares equal means the ciphertext is not under this key:
    /// [`OreError::NotUnderThisKey`] (a wrong key that happens to compare equal in every block
    /// gives a wrong plaintext, with probability about 3^-blocks; the record's signature, not
    /// this, is what says who made it).
    pub fn decrypt_right(&self, right: &RightCiphertext) -> Result<u64, OreError> {
        if right.domain() != self.domain {
            return Err(OreError::DomainMismatch);
        }
        let comparator = right.comparator();
        let mut x = 0u64;
        let mut perm = [0u8; MAX_SLOTS];
        for i in 0..self.domain.blocks() {
            let prefix = x;
            let perm = &mut perm[..self.domain.slots(i)];
            prp::permutation(&self.prp, i, prefix, perm);
            let base = slot_base(i, prefix);
            let probe = |value: usize| {
                let slot = perm[value];
                comparator.block_order(i, slot, &self.slot_key(base, slot))
            };
            let (mut lo, mut hi) = (0usize, perm.len() - 1);
            while lo < hi {
                let mid = lo + (hi - lo) / 2;
                if probe(mid)? == std::cmp::Ordering::Less {
                    lo = mid + 1;
                } else {
                    hi = mid;
                }
            }
            if probe(lo)? != std::cmp::Ordering::Equal {
                return Err(OreError::NotUnderThisKey);
            }
            x = (x << self.domain.block_len(i)) | lo as u64;
        }
        Ok(x)
    }

    /// The slot key of `slot` in the block whose [`slot_base`] is `base`, one PRF call.
    fn slot_key(&self, base: u128, slot: u8) -> Zeroizing<[u8; 16]> {
        let mut key = [slot_input(base, slot)];
        self.prf.encrypt_blocks(&mut key);
        Zeroizing::new(<[u8; 16]>::from(key[0]))
    }

    /// A right ciphertext of `x` under a fresh nonce from `rng`: semantically secure, and
    /// unrelated to every other right ciphertext of `x`. `x` must lie in the domain.
    pub fn encrypt_right(
        &self,
        x: u64,
        rng: &mut impl CryptoRngCore,
    ) -> Result<RightCiphertext, OreError> {
        self.domain.check(x)?;
        let total = self.domain.total_slots();
        let mut inputs = SecretBlocks(vec![aes::Block::default(); total]);
        let mut cmp = Zeroizing::new(vec![0u8; total]);
        let mut perm = [0u8; MAX_SLOTS];
        for i in 0..self.domain.blocks() {
            let prefix = self.domain.prefix(x, i);
            let offset = self.domain.slot_offset(i);
            let slots = self.domain.slots(i);
            let perm = &mut perm[..slots];
            prp::permutation(&self.prp, i, prefix, perm);
            let value = self.domain.block_value(x, i);
            for (v, &slot) in perm.iter().enumerate() {
                // cmp(v, x_i): 0 equal, 1 greater, 2 less.
                cmp[offset + usize::from(slot)] = u8::from(v > value) + 2 * u8::from(v < value);
            }
            let base = slot_base(i, prefix);
            for (j, input) in inputs[offset..offset + slots].iter_mut().enumerate() {
                // Slots number at most 256, so `j` fits in a byte.
                *input = slot_input(base, j as u8);
            }
        }
        // One call for all slot keys, so that AES-NI pipelines them.
        self.prf.encrypt_blocks(inputs.as_mut_slice());
        let mut nonce = [0u8; 16];
        rng.fill_bytes(&mut nonce);
        let keys = inputs.iter().map(|block| <[u8; 16]>::from(*block));
        RightCiphertext::from_slots(self.domain, nonce, keys, &cmp)
    }
}

/// The PRF inputs of block `block` under `prefix` without their slot:
/// purpose ‖ block ‖ prefix (8 bytes, big-endian) ‖ slot ‖ zeros, as a big-endian integer, so
/// that each slot's input is one `or` (building it byte by byte in memory and reading it back
/// as a block stalled on store forwarding, half of a right encryption's time).
fn slot_base(block: usize, prefix: u64) -> u128 {
    (u128::from(PURPOSE_SLOT) << 120) | ((block as u128) << 112) | (u128::from(prefix) << 48)
}

/// The PRF input naming `slot` of the block whose [`slot_base`] is `base`.
#[inline]
fn slot_input(base: u128, slot: u8) -> aes::Block {
    (base | (u128::from(slot) << 40)).to_be_bytes().into()
}

/// AES blocks that hold slot keys, wiped when dropped (the `aes` crate's block type does not
/// implement `Zeroize` in this build, so `Zeroizing` cannot hold it).
struct SecretBlocks<A: AsMut<[aes::Block]>>(A);

impl<A: AsMut<[aes::Block]>> Drop for SecretBlocks<A> {
    fn drop(&mut self) {
        for block in self.0.as_mut() {
            block.as_mut_slice().zeroize();
        }
    }
}

impl<A: AsMut<[aes::Block]>> std::ops::Deref for SecretBlocks<A> {
    type Target = A;
    fn deref(&self) -> &A {
        &self.0
    }
}

impl<A: AsMut<[aes::Block]>> std::ops::DerefMut for SecretBlocks<A> {
    fn deref_mut(&mut self) -> &mut A {
        &mut self.0
    }
}

impl fmt::Debug for OreKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OreKey")
            .field("domain", &self.domain)
            .field("keys", &"<redacted>")
            .finish()
    }
}

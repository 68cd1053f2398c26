//! For tests only (feature `torsion`): Ed25519 signatures with small-order components, the
//! inputs on which verification rules disagree. A signer here holds its secret scalar, so
//! nothing in this module forges under a key it does not own; what it crafts is what a
//! byzantine reporter or validator could send to split honest validators' verdicts.

use bmpls_types::{PublicKeyBytes, SignatureBytes};
use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT, EIGHT_TORSION};
use curve25519_dalek::edwards::EdwardsPoint;
use curve25519_dalek::scalar::Scalar;
use sha2::{Digest, Sha512};

/// The order of the prime subgroup, little-endian: added to a canonical `s`, it gives a
/// non-canonical encoding of the same scalar.
const L: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];

/// A signer whose public key is `[a]B + T` for a chosen torsion point `T` (of order 1, 2, 4
/// or 8: `EIGHT_TORSION[i]`), signing with a nonce point that may carry a torsion point too.
pub struct TorsionSigner {
    secret: Scalar,
    public: EdwardsPoint,
}

impl TorsionSigner {
    /// A signer from 64 bytes of seed; `key_torsion` picks `T` (0 is the identity: a key of
    /// prime order, as an honest signer's).
    pub fn new(seed: &[u8; 64], key_torsion: usize) -> Self {
        let secret = Scalar::from_bytes_mod_order_wide(seed);
        let public = ED25519_BASEPOINT_POINT * secret + EIGHT_TORSION[key_torsion % 8];
        Self { secret, public }
    }

    /// The signer of an ordinary key's 32-byte seed (as `SigningKey::from_seed` takes it): its
    /// secret scalar is the clamped hash of the seed (RFC 8032), its key the same as ever.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        let hash: [u8; 64] = Sha512::digest(seed).into();
        let mut bits = [0u8; 32];
        bits.copy_from_slice(&hash[..32]);
        bits[0] &= 248;
        bits[31] &= 127;
        bits[31] |= 64;
        // B has prime order, so reducing the clamped integer changes no multiple of B.
        let secret = Scalar::from_bytes_mod_order(bits);
        let public = ED25519_BASEPOINT_POINT * secret;
        Self { secret, public }
    }

    /// The public key's encoding.
    pub fn public(&self) -> PublicKeyBytes {
        PublicKeyBytes(self.public.compress().to_bytes())
    }

    /// Signs `message` with nonce point `[r]B + EIGHT_TORSION[r_torsion]`, `r` from `nonce`,
    /// solving `s = r + k·a`: the cofactored equation holds, the cofactorless one only when the
    /// torsion terms cancel.
    pub fn sign(&self, message: &[u8], nonce: &[u8; 64], r_torsion: usize) -> SignatureBytes {
        let r = Scalar::from_bytes_mod_order_wide(nonce);
        let big_r = ED25519_BASEPOINT_POINT * r + EIGHT_TORSION[r_torsion % 8];
        let r_bytes = big_r.compress().to_bytes();
        let mut hash = Sha512::new();
        hash.update(r_bytes);
        hash.update(self.public().0);
        hash.update(message);
        let k = Scalar::from_bytes_mod_order_wide(&hash.finalize().into());
        let s = r + k * self.secret;
        let mut out = [0u8; 64];
        out[..32].copy_from_slice(&r_bytes);
        out[32..].copy_from_slice(s.as_bytes());
        SignatureBytes(out)
    }
}

/// The same signature with `s + l` in place of `s`: the same scalar, encoded non-canonically.
pub fn non_canonical_s(signature: &SignatureBytes) -> SignatureBytes {
    let mut out = signature.0;
    let mut carry = 0u16;
    for (byte, l) in out[32..].iter_mut().zip(L) {
        let sum = u16::from(*byte) + u16::from(l) + carry;
        *byte = sum as u8;
        carry = sum >> 8;
    }
    SignatureBytes(out)
}

/// The `i`-th point of the small-order subgroup, as a public key (`i` in 0..8).
pub fn small_order_key(i: usize) -> PublicKeyBytes {
    PublicKeyBytes(EIGHT_TORSION[i % 8].compress().to_bytes())
}

/// A signature that verifies under the ZIP 215 rules for any message under any small-order
/// key: `R` of small order and `s = 0`, so both sides of `[8][s]B = [8]R + [8][k]A` vanish.
pub fn small_order_forgery(i: usize) -> SignatureBytes {
    let mut out = [0u8; 64];
    out[..32].copy_from_slice(&EIGHT_TORSION[i % 8].compress().to_bytes());
    SignatureBytes(out)
}

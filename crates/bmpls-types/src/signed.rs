//! What a signature covers: a domain-separation tag naming the signed type, the chain, then the
//! canonical encoding of every field but the signature.
//!
//! Every signed type ends with its 64-byte signature field, so the encoding of "every field but
//! the signature" is the value's encoding without its last 64 bytes: one encoder, no second
//! hand-written layout to drift out of step.

use borsh::BorshSerialize;

use crate::block::ChainId;
use crate::encoding::WIRE_VERSION;
use crate::ids::SignatureBytes;

/// A value carrying an Ed25519 signature as its last field.
pub trait Signed: BorshSerialize {
    /// Domain-separation tag: a signature over one type never verifies as another.
    const TAG: &'static [u8];

    /// The signature field.
    fn signature(&self) -> &SignatureBytes;

    /// The signature field, to fill in after signing.
    fn signature_mut(&mut self) -> &mut SignatureBytes;

    /// The bytes the signature covers: tag, wire version, the chain it is for, then every
    /// field but the signature. Naming the chain means a transaction or request signed for one
    /// consortium (staging) is not valid on another (production) that shares the keys.
    fn signing_bytes(&self, chain: &ChainId) -> Vec<u8> {
        let mut out = Vec::with_capacity(Self::TAG.len() + 1024);
        out.extend_from_slice(Self::TAG);
        out.push(0);
        out.push(WIRE_VERSION);
        chain
            .serialize(&mut out)
            .expect("serialising into a Vec cannot fail");
        let head = out.len();
        self.serialize(&mut out)
            .expect("serialising into a Vec cannot fail");
        debug_assert!(out.len() >= head + 64 && out[out.len() - 64..] == self.signature().0);
        out.truncate(out.len().saturating_sub(64).max(head));
        out
    }
}

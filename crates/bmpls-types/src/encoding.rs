//! The canonical, versioned binary encoding of everything bmpls stores, signs or sends.
//!
//! Format: one version byte ([`WIRE_VERSION`]), then the value in borsh. Borsh was chosen
//! because it is canonical by design (one byte string per value: fixed-width little-endian
//! integers, u32-length-prefixed sequences, no maps, floats or optional padding in our types),
//! specified (borsh.io), widely deployed for exactly this purpose (consensus hashing), and has a
//! derive that keeps encoder and decoder in step. Decoding is total: any byte string gives a
//! value or a [`DecodeError`]; lengths are checked against [`crate::limits`] before anything is
//! allocated, enum tags and booleans are validated, and trailing bytes are refused.

use borsh::{BorshDeserialize, BorshSerialize};

use crate::limits::MAX_ENCODED_BYTES;

/// Version byte leading every encoding. Version 2, one bump for the privacy and byzantine
/// changes of the same round (no build of version 2 was released before all of them): a record
/// is signed and put in its block's Merkle tree through its digest (the level chain), so answers
/// carry only granted levels; a cell is OPE or an ORE right ciphertext, named by its scheme;
/// transactions and requests name their chain; a watch answer carries the certified tip; a
/// carer may ask for the proof of its grant.
pub const WIRE_VERSION: u8 = 2;

/// Why bytes did not decode.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// No bytes at all.
    #[error("empty input")]
    Empty,
    /// A version this build does not know.
    #[error("unknown wire version {0}")]
    Version(u8),
    /// More bytes than any value may have.
    #[error("{len} bytes is over the limit of {max}")]
    TooLarge {
        /// Input length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The body is malformed: truncated, an over-long list, an unknown tag, trailing bytes.
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// The type being decoded.
        what: &'static str,
        /// What the decoder found.
        reason: String,
    },
}

/// A value with the canonical encoding.
pub trait Canonical: BorshSerialize + BorshDeserialize + Sized {
    /// Name of the type, for errors.
    const NAME: &'static str;

    /// Largest accepted encoding of this type.
    const MAX_BYTES: usize = MAX_ENCODED_BYTES;

    /// The canonical bytes.
    fn encode(&self) -> Vec<u8> {
        let mut out = vec![WIRE_VERSION];
        self.serialize(&mut out)
            .expect("serialising into a Vec cannot fail");
        out
    }

    /// Writes the canonical bytes to `writer` (a hasher, say) without building them in memory.
    fn encode_to<W: std::io::Write>(&self, writer: &mut W) -> std::io::Result<()> {
        writer.write_all(&[WIRE_VERSION])?;
        self.serialize(writer)
    }

    /// The length of the canonical bytes, computed without building them.
    fn encoded_len(&self) -> usize {
        1 + borsh::object_length(self).expect("a canonical value has a length")
    }

    /// Parses canonical bytes; anything else is an error.
    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        if bytes.len() > Self::MAX_BYTES {
            return Err(DecodeError::TooLarge {
                len: bytes.len(),
                max: Self::MAX_BYTES,
            });
        }
        let (&version, body) = bytes.split_first().ok_or(DecodeError::Empty)?;
        if version != WIRE_VERSION {
            return Err(DecodeError::Version(version));
        }
        borsh::from_slice(body).map_err(|e| DecodeError::Malformed {
            what: Self::NAME,
            reason: e.to_string(),
        })
    }
}

macro_rules! canonical {
    ($($ty:ty => $name:literal, $max:expr);* $(;)?) => {$(
        impl Canonical for $ty {
            const NAME: &'static str = $name;
            const MAX_BYTES: usize = $max;
        }
    )*};
}

canonical! {
    crate::LocationRecord => "location record", crate::limits::MAX_TX_BYTES;
    crate::Transaction => "transaction", crate::limits::MAX_TX_BYTES;
    crate::BlockHeader => "block header", crate::limits::MAX_HEADER_BYTES;
    crate::Block => "block", crate::limits::MAX_BLOCK_BYTES;
    crate::CommitCertificate => "commit certificate", crate::limits::MAX_CERTIFICATE_BYTES;
    crate::PrecommitTarget => "precommit", crate::limits::MAX_HEADER_BYTES;
}

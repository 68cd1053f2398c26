//! The header both ciphertext formats share: version, kind, domain. Parsing is total: any
//! byte string gives a value or a typed error.

use crate::{Domain, OreError};

/// Version byte of both ciphertext formats. Changing either format, or the construction
/// behind it, changes this.
pub const VERSION: u8 = 1;
/// Header length: version, kind, bits, block bits.
pub(crate) const HEADER_LEN: usize = 4;
/// Kind byte of a left ciphertext (`'L'`).
pub(crate) const KIND_LEFT: u8 = b'L';
/// Kind byte of a right ciphertext (`'R'`).
pub(crate) const KIND_RIGHT: u8 = b'R';

/// The header for a ciphertext of `kind` over `domain`.
pub(crate) fn header(kind: u8, domain: Domain) -> [u8; HEADER_LEN] {
    [VERSION, kind, domain.bits(), domain.block_bits()]
}

/// Parses a header of `kind` and returns its domain; `len_of` gives the whole encoding's
/// length for that domain, which `bytes` must match exactly.
pub(crate) fn parse(
    bytes: &[u8],
    kind: u8,
    expected: &'static str,
    len_of: fn(&Domain) -> usize,
) -> Result<Domain, OreError> {
    let Some(&[version, found, bits, block_bits]) = bytes.first_chunk::<HEADER_LEN>() else {
        return Err(OreError::Truncated {
            needed: HEADER_LEN,
            got: bytes.len(),
        });
    };
    if version != VERSION {
        return Err(OreError::UnknownVersion(version));
    }
    if found != kind {
        return Err(OreError::WrongKind { expected, found });
    }
    let domain = Domain::new(bits, block_bits)?;
    let len = len_of(&domain);
    match bytes.len() {
        got if got < len => Err(OreError::Truncated { needed: len, got }),
        got if got > len => Err(OreError::TrailingBytes {
            expected: len,
            extra: got - len,
        }),
        _ => Ok(domain),
    }
}

//! Errors of the order-revealing encryption. Messages name sizes and positions, never a
//! plaintext, so that they can be logged.

/// Everything that can go wrong when building, parsing or comparing ciphertexts.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OreError {
    /// A domain needs 1..=64 bits and an even block size in 2..=8.
    #[error(
        "no domain of {bits} bits in blocks of {block_bits} bits (need 1..=64 bits, even blocks of 2..=8)"
    )]
    InvalidDomain {
        /// Requested plaintext bits.
        bits: u8,
        /// Requested block bits.
        block_bits: u8,
    },
    /// A plaintext at or above `2^bits`.
    #[error("plaintext outside the {bits}-bit domain")]
    PlaintextOutOfDomain {
        /// Domain size in bits.
        bits: u8,
    },
    /// The two ciphertexts of a comparison belong to different domains.
    #[error("ciphertexts of different domains cannot be compared")]
    DomainMismatch,
    /// The bytes end before the encoding does.
    #[error("ciphertext truncated: {needed} bytes needed, {got} given")]
    Truncated {
        /// Bytes the encoding needs.
        needed: usize,
        /// Bytes given.
        got: usize,
    },
    /// Bytes follow the end of the encoding.
    #[error("ciphertext of {expected} bytes followed by {extra} more")]
    TrailingBytes {
        /// Length of the encoding.
        expected: usize,
        /// Bytes after it.
        extra: usize,
    },
    /// A format version this code does not know.
    #[error("unknown ciphertext version {0}")]
    UnknownVersion(u8),
    /// A left ciphertext given where a right one was expected, or the reverse, or neither.
    #[error("not a {expected} ciphertext (kind byte {found:#04x})")]
    WrongKind {
        /// The kind expected: "left" or "right".
        expected: &'static str,
        /// The kind byte found.
        found: u8,
    },
    /// A left ciphertext names a slot outside its block.
    #[error("left ciphertext block {block} names a slot outside the block")]
    BadSlot {
        /// Index of the block.
        block: usize,
    },
    /// A right ciphertext's packed values are not canonical: a byte of 243 or more, or
    /// non-zero padding after the last value.
    #[error("right ciphertext byte {byte} is not a canonical packing of values mod 3")]
    BadPacking {
        /// Offset of the byte inside the packed values.
        byte: usize,
    },
    /// Slot keys or comparison values of the wrong count or range handed to
    /// [`crate::RightCiphertext::from_slots`] (a bug in the caller).
    #[error(
        "right ciphertext assembled from {got} slots, the domain has {expected}, or a value is not mod 3"
    )]
    BadSlots {
        /// Slots the domain has.
        expected: usize,
        /// Slots given.
        got: usize,
    },
    /// A left ciphertext that this key did not make: a slot key differs from the key's own
    /// (another key, another domain's key, or forged bytes).
    #[error("the left ciphertext was not made with this key")]
    NotUnderThisKey,
    /// A left ciphertext assembled from the wrong number of blocks (a bug in the caller).
    #[error("left ciphertext assembled from {got} blocks, the domain has {expected}")]
    BadBlocks {
        /// Blocks the domain has.
        expected: usize,
        /// Blocks given.
        got: usize,
    },
}

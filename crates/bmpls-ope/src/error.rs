//! Errors of the order-preserving encryption.

/// Everything that can go wrong when setting up or using an order-preserving cipher.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OpeError {
    /// The plaintext domain must have between 1 and [`crate::MAX_DOMAIN_BITS`] bits.
    #[error("plaintext domain of {0} bits is outside 1..={max}", max = crate::MAX_DOMAIN_BITS)]
    DomainBits(u8),
    /// The ciphertext range must exceed the domain by at least [`crate::MIN_EXPANSION_BITS`] bits
    /// and fit in [`crate::MAX_RANGE_BITS`] bits.
    #[error(
        "ciphertext range of {range} bits for a {domain}-bit domain: need at least \
         domain + {min} and at most {max} bits",
        min = crate::MIN_EXPANSION_BITS,
        max = crate::MAX_RANGE_BITS
    )]
    RangeBits {
        /// Requested domain bits.
        domain: u8,
        /// Requested range bits.
        range: u8,
    },
    /// A plaintext outside the domain `[0, 2^domain_bits)`.
    #[error("plaintext {value} is outside the {bits}-bit domain")]
    PlaintextOutOfDomain {
        /// The offending plaintext.
        value: u64,
        /// Domain size in bits.
        bits: u8,
    },
    /// A ciphertext outside the range, or in a gap of the range that no plaintext owns.
    #[error("not a ciphertext of this key")]
    NotACiphertext,
    /// An empty or reversed plaintext interval.
    #[error("empty plaintext interval [{from}, {to}]")]
    EmptyInterval {
        /// Lower end.
        from: u64,
        /// Upper end.
        to: u64,
    },
    /// A table was requested for a domain too large to enumerate.
    #[error("a table needs a domain of at most {max} bits, not {bits}", max = crate::MAX_TABLE_BITS)]
    TableTooLarge {
        /// Requested domain bits.
        bits: u8,
    },
    /// The sampler was asked for parameters outside its documented range (an internal bug).
    #[error("hypergeometric sampler parameters out of range")]
    SamplerOutOfRange,
    /// The arbitrary-precision decision did not separate after its bounded refinement
    /// (probability below 2^-200).
    #[error("hypergeometric sampler could not decide within its precision bound")]
    SamplerPrecision,
}

//! Signatures, hashing, Merkle proofs, key wrapping and sealing for bmpls.
#![forbid(unsafe_code)]

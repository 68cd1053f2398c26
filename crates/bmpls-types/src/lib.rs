//! Shared vocabulary of bmpls: identifiers, units, limits, and the canonical encoding of what
//! travels between reporters, carers and validators.
#![forbid(unsafe_code)]

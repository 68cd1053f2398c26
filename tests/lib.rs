//! Support for the cross-crate integration tests in `it/`.
#![forbid(unsafe_code)]

//! Helpers shared by the fuzz targets in `fuzz_targets/` (see `docs/fuzzing.md`).
//!
//! Every target feeds untrusted bytes to a decoder the network or a file reaches and, where it
//! is cheap, checks a property of what was decoded. A panic, an abort, an allocation over
//! libFuzzer's `-rss_limit_mb` or a hang is a finding.
//!
//! The targets cannot `forbid(unsafe_code)`: `libfuzzer_sys::fuzz_target!` exports the entry
//! point with `#[no_mangle]`, which the lint counts as unsafe. They contain no unsafe code of
//! their own, and the crates they fuzz forbid it.

use bmpls_types::Canonical;

/// Decodes `bytes` as `T`; when they decode, checks that the encoding is canonical: the value
/// encodes back to exactly `bytes` (one byte string per value, which signatures and hashes
/// over re-encoded values rely on) and its computed length agrees.
pub fn canonical<T: Canonical>(bytes: &[u8]) -> Option<T> {
    let decoded = T::decode(bytes);
    if trace() {
        eprintln!("{}: {:?}", T::NAME, decoded.as_ref().map(|_| "decoded"));
    }
    let value = decoded.ok()?;
    let encoded = value.encode();
    assert!(
        encoded == bytes,
        "{} decoded from {} bytes that it does not encode back to ({} bytes)",
        T::NAME,
        bytes.len(),
        encoded.len()
    );
    assert_eq!(value.encoded_len(), bytes.len(), "{}: encoded_len", T::NAME);
    Some(value)
}

/// Whether `BMPLS_FUZZ_TRACE` is set: each decode then prints its outcome (not the value), to
/// see why a seed does not decode (`BMPLS_FUZZ_TRACE=1 cargo fuzz run net corpus/net/x`).
fn trace() -> bool {
    static TRACE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *TRACE.get_or_init(|| std::env::var_os("BMPLS_FUZZ_TRACE").is_some())
}

/// Splits `data` in two at a length given by its first two bytes (big-endian), for targets
/// that take two inputs; `None` when too short.
pub fn split2(data: &[u8]) -> Option<(&[u8], &[u8])> {
    let (len, rest) = data.split_first_chunk::<2>()?;
    let len = usize::from(u16::from_be_bytes(*len)).min(rest.len());
    Some(rest.split_at(len))
}

/// A fixed clock for the targets that take one (2026-12-01T00:00:00Z, in Unix milliseconds),
/// so that a finding replays.
pub const NOW_MS: u64 = 1_796_083_200_000;

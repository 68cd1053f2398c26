//! The location grid: WGS84 fixes quantised to a Hilbert curve, nested precision levels, and
//! coverings of areas as index ranges. Pure: no I/O, no clock.
#![forbid(unsafe_code)]

//! The attacker's side of bmpls: leakage-abuse attacks on the ciphertexts records store and
//! answers carry, run on a simulated patient and scored against the truth in metres, so that
//! the privacy claims are measured rather than asserted (issue 14). Pure: no I/O, no clock;
//! every key, nonce and simulated day comes from a seed.
//!
//! * [`patient`]: a patient in Amsterdam, a fix every 30 s for as many days as asked: home at
//!   night, walks along streets to a clinic, the Vondelpark and a shop, GPS noise of a few
//!   metres.
//! * [`observe`]: what each party sees, built by really encrypting — the reporter's signed
//!   records (`bmpls_client::Reporter`, per-day epochs) and, for the levels a [`Layout`]
//!   makes order-revealing, right ciphertexts from `bmpls_ore::OreKey`. An [`Observation`]
//!   shows each level as [`Seen::Ope`] (orderable), [`Seen::Opaque`] (a right ciphertext or a
//!   level not sent) or [`Seen::Cell`] (a level the viewer decrypts). [`observe::observe`] is
//!   the one adapter from stored records to observations.
//! * [`attacks`]: (a) [`attacks::anchored`], a node's disk plus the home address; (b)
//!   [`attacks::carer`], a level-`L` carer using everything its answers carry, against
//!   [`attacks::granted_centres`]; (c) [`attacks::daily_places`] and
//!   [`attacks::averaged_place`], a daily place averaged across per-day keys with no key and
//!   no auxiliary knowledge.
//! * [`experiment::run`]: all of it over a [`Setup`], per layout, as [`Figures`].
//! * [`cost`]: record and answer sizes per layout.
//!
//! The layouts compared are [`Layout::all_ope`] (today's records), [`Layout::ore_fine`]
//! (order-revealing below district, the secure default of issue 14) and
//! [`Layout::ope_to_street`] (only the exact level hidden).
#![forbid(unsafe_code)]

pub mod attacks;
pub mod cost;
pub mod experiment;
mod geo;
pub mod observe;
pub mod patient;

pub use attacks::Score;
pub use experiment::{CarerFigures, Figures, Setup, run};
pub use geo::{LatLon, centre_of_index, metres};
pub use observe::{Answer, Layout, Observation, Scheme, Seen};

/// Why a measurement could not be made. Every cause is a bug or a bad setup, never the
/// simulated data: the crate reads no input from outside.
#[derive(Debug, thiserror::Error)]
pub enum LeakageError {
    /// The setup is inconsistent (a level missing, a name too long).
    #[error("setup: {0}")]
    Setup(&'static str),
    /// The reporter refused a fix.
    #[error("reporter: {0}")]
    Report(#[from] bmpls_client::ReportError),
    /// Key derivation failed.
    #[error("keys: {0}")]
    Keys(#[from] bmpls_ope::keys::KeyError),
    /// Order-preserving encryption or decryption failed.
    #[error("OPE: {0}")]
    Ope(#[from] bmpls_ope::OpeError),
    /// Order-revealing encryption failed.
    #[error("ORE: {0}")]
    Ore(#[from] bmpls_ore::OreError),
    /// A position or depth outside the grid.
    #[error("grid: {0}")]
    Grid(#[from] bmpls_grid::GridError),
}

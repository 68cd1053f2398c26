//! The exact fix: what the reporter seals inside a record, in fixed-width integer units so the
//! sealed payload has one length and no floating-point edge cases.

use borsh::{BorshDeserialize, BorshSerialize};

/// Why the reporter took the fix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
#[borsh(use_discriminant = true)]
#[repr(u8)]
pub enum Trigger {
    /// The regular reporting interval.
    Periodic = 0,
    /// Movement detected.
    Motion = 1,
    /// The patient pressed a button.
    Manual = 2,
    /// A fall was detected.
    Fall = 3,
    /// Entering or leaving a region known to the device.
    Region = 4,
}

/// One GPS fix with the device's context. Never stored or sent in the clear, and its `Debug`
/// shows no position, so that a stray log line cannot leak one.
#[derive(Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct ExactFix {
    /// Latitude in units of 10^-7 degree (about 1 cm).
    pub lat_e7: i32,
    /// Longitude in units of 10^-7 degree.
    pub lon_e7: i32,
    /// Horizontal accuracy radius, centimetres.
    pub accuracy_cm: u32,
    /// Altitude above the WGS84 ellipsoid, centimetres.
    pub altitude_cm: i32,
    /// Ground speed, centimetres per second.
    pub speed_cm_s: u32,
    /// Battery charge, percent.
    pub battery_percent: u8,
    /// Why the fix was taken.
    pub trigger: Trigger,
    /// When the fix was taken, ms since the Unix epoch.
    pub fix_time_ms: u64,
}

impl ExactFix {
    /// Encoded size: every fix seals to the same length.
    pub const ENCODED_LEN: usize = 4 + 4 + 4 + 4 + 4 + 1 + 1 + 8;

    /// Latitude in degrees.
    pub fn lat(&self) -> f64 {
        f64::from(self.lat_e7) / 1e7
    }

    /// Longitude in degrees.
    pub fn lon(&self) -> f64 {
        f64::from(self.lon_e7) / 1e7
    }
}

impl std::fmt::Debug for ExactFix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExactFix")
            .field("position", &"<redacted>")
            .field("trigger", &self.trigger)
            .field("fix_time_ms", &self.fix_time_ms)
            .finish_non_exhaustive()
    }
}

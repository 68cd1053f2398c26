//! The reporter: from a GPS fix and the patient's keys, the signed record — one randomised
//! ciphertext per precision level (an ORE right ciphertext at the fine levels, OPE at the coarse
//! ones: `config/levels.toml`) and the sealed exact fix. No plaintext position and no
//! deterministic function of one leaves this module.

use bmpls_crypto::seal::seal_fix;
use bmpls_crypto::{SealKey, SigningKey};
use bmpls_grid::{CellIndex, GridError, LevelSet};
use bmpls_ope::keys::{Epoch as KeyEpoch, KeyError, MasterSecret, PatientKeys};
use bmpls_types::limits::{MAX_FIX_AHEAD_MS, MIN_FIX_TIME_MS};
use bmpls_types::{
    BoundedVec, ChainId, Epoch, ExactFix, LocationRecord, PatientId, Seq, SignatureBytes, Trigger,
};

use crate::ciphers::{CipherError, LevelCiphers};
use rand_core::CryptoRngCore;

/// One GPS fix as the device reports it. Its `Debug` shows no position, altitude, accuracy or
/// speed (as [`ExactFix`]'s), so that a stray log line or a panic message cannot leak one.
#[derive(Clone, Copy, PartialEq)]
pub struct Fix {
    /// Latitude, degrees.
    pub lat: f64,
    /// Longitude, degrees.
    pub lon: f64,
    /// Horizontal accuracy radius, metres.
    pub accuracy_m: f64,
    /// Altitude, metres.
    pub altitude_m: f64,
    /// Ground speed, metres per second.
    pub speed_m_s: f64,
    /// Battery charge, percent.
    pub battery_percent: u8,
    /// Why the fix was taken.
    pub trigger: Trigger,
    /// When, ms since the Unix epoch.
    pub fix_time_ms: u64,
}

impl std::fmt::Debug for Fix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fix")
            .field("position", &"<redacted>")
            .field("battery_percent", &self.battery_percent)
            .field("trigger", &self.trigger)
            .field("fix_time_ms", &self.fix_time_ms)
            .finish_non_exhaustive()
    }
}

/// Why a fix could not become a record.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The position is not a valid WGS84 point.
    #[error("bad position: {0}")]
    Position(#[from] GridError),
    /// A measurement that is negative, not finite, or out of range.
    #[error("bad {0}")]
    Measurement(&'static str),
    /// The fix time is beyond the last epoch.
    #[error("fix time out of range")]
    Time,
    /// The fix time is implausible against the clock: a time in the wrong unit.
    #[error(
        "fix time {fix_time_ms} is {why}: fix times are Unix milliseconds, from 2000-01-01 to \
         a day ahead of the clock"
    )]
    ImplausibleTime {
        /// The fix time given.
        fix_time_ms: u64,
        /// What is wrong with it.
        why: &'static str,
    },
    /// Key derivation failed.
    #[error("keys: {0}")]
    Keys(#[from] KeyError),
    /// Encryption failed.
    #[error("encryption: {0}")]
    Cipher(#[from] CipherError),
    /// Sealing failed.
    #[error("sealing: {0}")]
    Seal(#[from] bmpls_crypto::CryptoError),
}

/// A patient's reporter: keys, levels, and the ciphers of the current epoch.
pub struct Reporter {
    /// The chain its records are signed for.
    chain: ChainId,
    patient: PatientId,
    keys: PatientKeys,
    signing: SigningKey,
    epoch_length_ms: u64,
    /// Ciphers of the current epoch, one per level (OPE's memoised trees make repeat
    /// encryptions fast); dropped when the epoch changes.
    ciphers: LevelCiphers,
}

impl std::fmt::Debug for Reporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reporter")
            .field("patient", &self.patient)
            .field("levels", &self.ciphers.levels().len())
            .finish_non_exhaustive()
    }
}

impl Reporter {
    /// A reporter for `patient` on `chain` with the hierarchy of `master` over `levels`.
    pub fn new(
        chain: ChainId,
        patient: PatientId,
        master: &MasterSecret,
        signing: SigningKey,
        levels: LevelSet,
        epoch_length_ms: u64,
    ) -> Result<Self, ReportError> {
        if epoch_length_ms == 0 {
            return Err(ReportError::Measurement("epoch length"));
        }
        let keys = PatientKeys::new(master, levels.len() as u8)?;
        Ok(Self {
            chain,
            patient,
            keys,
            signing,
            epoch_length_ms,
            ciphers: LevelCiphers::new(levels),
        })
    }

    /// The key epoch of a fix time.
    pub fn epoch_of(&self, fix_time_ms: u64) -> Result<Epoch, ReportError> {
        u32::try_from(fix_time_ms / self.epoch_length_ms)
            .map(Epoch)
            .map_err(|_| ReportError::Time)
    }

    /// The signed record of `fix` with sequence number `seq`.
    pub fn build(
        &mut self,
        fix: &Fix,
        seq: Seq,
        rng: &mut impl CryptoRngCore,
    ) -> Result<LocationRecord, ReportError> {
        let exact = exact_fix(fix)?;
        let epoch = self.epoch_of(fix.fix_time_ms)?;
        let levels = self.ciphers.levels();
        let finest = CellIndex::from_lon_lat(fix.lon, fix.lat, levels.grid_depth())?;
        let depths: Vec<u8> = levels.levels().iter().map(|l| l.depth).collect();
        self.ciphers.keep_only_epoch(epoch.0);
        let mut cells = Vec::with_capacity(depths.len());
        for (index, depth) in depths.into_iter().enumerate() {
            let cell = finest.at_depth(depth)?;
            cells.push(self.ciphers.encrypt(
                &self.keys,
                index as u8,
                epoch.0,
                cell.index(),
                rng,
            )?);
        }
        let seal_key = SealKey::from_bytes(
            *self
                .keys
                .epoch_key(0, KeyEpoch(epoch.0))?
                .seal_key()
                .expose_secret(),
        );
        let sealed = seal_fix(&seal_key, &exact, &self.patient, seq, epoch, rng)?;
        let mut record = LocationRecord {
            patient: self.patient,
            seq,
            fix_time_ms: fix.fix_time_ms,
            epoch,
            cells: BoundedVec::new(cells).map_err(|_| ReportError::Measurement("level count"))?,
            sealed: BoundedVec::new(sealed).map_err(|_| ReportError::Measurement("sealed size"))?,
            sig: SignatureBytes::UNSIGNED,
        };
        self.signing.sign(&mut record, &self.chain);
        Ok(record)
    }
}

/// The fixed-width integer form of a fix, checking every measurement.
/// Checks that `fix` can become a record: a valid position and measurements in range.
pub fn check_fix(fix: &Fix) -> Result<(), ReportError> {
    exact_fix(fix).map(|_| ())
}

/// Checks that `fix_time_ms` is plausible against the clock `now_ms`: not before
/// [`MIN_FIX_TIME_MS`] nor more than [`MAX_FIX_AHEAD_MS`] ahead (as the ledger checks against
/// the block's time). Seconds given as milliseconds land in 1970; milliseconds given as
/// microseconds or scaled twice, thousands of years ahead.
pub fn check_fix_time(fix_time_ms: u64, now_ms: u64) -> Result<(), ReportError> {
    let why = if fix_time_ms < MIN_FIX_TIME_MS {
        if fix_time_ms.saturating_mul(1000) >= MIN_FIX_TIME_MS
            && fix_time_ms.saturating_mul(1000) <= now_ms.saturating_add(MAX_FIX_AHEAD_MS)
        {
            "before 2000-01-01 (Unix seconds, not milliseconds?)"
        } else {
            "before 2000-01-01"
        }
    } else if fix_time_ms > now_ms.saturating_add(MAX_FIX_AHEAD_MS) {
        "more than a day in the future"
    } else {
        return Ok(());
    };
    Err(ReportError::ImplausibleTime { fix_time_ms, why })
}

fn exact_fix(fix: &Fix) -> Result<ExactFix, ReportError> {
    CellIndex::from_lon_lat(fix.lon, fix.lat, 0)?;
    let scaled = |v: f64, factor: f64, what: &'static str, min: f64, max: f64| {
        if v.is_finite() && (min..=max).contains(&v) {
            Ok((v * factor).round())
        } else {
            Err(ReportError::Measurement(what))
        }
    };
    if fix.battery_percent > 100 {
        return Err(ReportError::Measurement("battery"));
    }
    Ok(ExactFix {
        lat_e7: scaled(fix.lat, 1e7, "latitude", -90.0, 90.0)? as i32,
        lon_e7: scaled(fix.lon, 1e7, "longitude", -180.0, 180.0)? as i32,
        accuracy_cm: scaled(fix.accuracy_m, 100.0, "accuracy", 0.0, 4.0e7)? as u32,
        altitude_cm: scaled(fix.altitude_m, 100.0, "altitude", -2.0e6, 2.0e6)? as i32,
        speed_cm_s: scaled(fix.speed_m_s, 100.0, "speed", 0.0, 4.0e7)? as u32,
        battery_percent: fix.battery_percent,
        trigger: fix.trigger,
        fix_time_ms: fix.fix_time_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fix_debug_shows_no_position() {
        let fix = Fix {
            lat: 52.379_189,
            lon: 4.899_431,
            accuracy_m: 7.25,
            altitude_m: 13.5,
            speed_m_s: 1.375,
            battery_percent: 64,
            trigger: Trigger::Periodic,
            fix_time_ms: 1_700_000_000_000,
        };
        let shown = format!("{fix:?} {fix:#?}");
        for secret in ["52.3", "4.89", "7.25", "13.5", "1.375"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(shown.contains("1700000000000"), "{shown}");
    }
}

//! The records and enums the bindings carry: plain data, converted to and from
//! `bmpls-client`'s types at the boundary. Positions cross it only inside a [`Fix`], whose
//! `Debug` shows none.

use bmpls_client::outbox::Flushed;

/// Why a fix was taken (as the record's sealed fix says it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum Trigger {
    /// The regular reporting interval.
    Periodic,
    /// Movement detected.
    Motion,
    /// The patient pressed a button.
    Manual,
    /// A fall was detected.
    Fall,
    /// Entering or leaving a region known to the device.
    Region,
}

impl From<Trigger> for bmpls_types::Trigger {
    fn from(trigger: Trigger) -> Self {
        match trigger {
            Trigger::Periodic => Self::Periodic,
            Trigger::Motion => Self::Motion,
            Trigger::Manual => Self::Manual,
            Trigger::Fall => Self::Fall,
            Trigger::Region => Self::Region,
        }
    }
}

/// One GPS fix, as the phone's location API gives it. Measurements the device does not have
/// are 0 (carers read 0 as absent).
#[derive(Clone, Copy, PartialEq, uniffi::Record)]
pub struct Fix {
    /// Latitude, degrees (WGS84).
    pub lat: f64,
    /// Longitude, degrees (WGS84).
    pub lon: f64,
    /// Horizontal accuracy radius, metres.
    pub accuracy_m: f64,
    /// Altitude, metres.
    pub altitude_m: f64,
    /// Ground speed, metres per second.
    pub speed_m_s: f64,
    /// Battery charge, per cent (0 to 100).
    pub battery_percent: u8,
    /// Why the fix was taken.
    pub trigger: Trigger,
    /// When, in Unix milliseconds (Android's `Location.getTime()`, iOS's
    /// `timestamp.timeIntervalSince1970 * 1000`).
    pub fix_time_ms: u64,
}

impl std::fmt::Debug for Fix {
    /// No position, no measurement: a fix in a log line would say where the patient was.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fix")
            .field("trigger", &self.trigger)
            .field("fix_time_ms", &self.fix_time_ms)
            .finish_non_exhaustive()
    }
}

impl From<Fix> for bmpls_client::Fix {
    fn from(fix: Fix) -> Self {
        Self {
            lat: fix.lat,
            lon: fix.lon,
            accuracy_m: fix.accuracy_m,
            altitude_m: fix.altitude_m,
            speed_m_s: fix.speed_m_s,
            battery_percent: fix.battery_percent,
            trigger: fix.trigger.into(),
            fix_time_ms: fix.fix_time_ms,
        }
    }
}

/// Where the validators are and how to recognise them: what the consortium's operators publish
/// (an app bundles it as assets).
#[derive(Clone, Debug, uniffi::Record)]
pub struct Consortium {
    /// Validators' client addresses, `IP:port` or `host:port`, in order of preference.
    pub nodes: Vec<String>,
    /// The consortium CA's certificate, PEM (`ca.pem`).
    pub ca_pem: String,
    /// The genesis file's text (`genesis.toml`): the chain and its validators' keys.
    pub genesis_toml: String,
}

/// A record the chain committed.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct Delivery {
    /// Its sequence number.
    pub seq: u64,
    /// The height of the block that holds it.
    pub height: u64,
}

/// A record the chain refused for good, kept aside in the outbox.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct Refusal {
    /// Its sequence number.
    pub seq: u64,
    /// Why, for programs: the validator's refusal code (`Replay`, `Gap`, `NotEnrolled`…).
    pub code: String,
    /// Why, for people.
    pub reason: String,
}

/// What a flush did.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct FlushOutcome {
    /// Records committed (or found committed already), in order.
    pub delivered: Vec<Delivery>,
    /// Records refused by this flush (kept aside; see [`OutboxStatus::refused`]).
    pub refused: Vec<Refusal>,
    /// Records still waiting in the outbox.
    pub waiting: u64,
    /// Why the last attempt did not send everything (no validator answered…), if it did not.
    pub last_failure: Option<String>,
    /// Submissions made or tried.
    pub attempts: u32,
}

impl FlushOutcome {
    pub(crate) fn of(flushed: Flushed) -> Self {
        Self {
            delivered: flushed
                .delivered
                .into_iter()
                .map(|(seq, height)| Delivery { seq, height })
                .collect(),
            refused: flushed
                .refused
                .into_iter()
                .map(|(seq, code, reason)| Refusal {
                    seq,
                    code: format!("{code:?}"),
                    reason,
                })
                .collect(),
            waiting: flushed.waiting as u64,
            last_failure: flushed.last_failure,
            attempts: flushed.attempts,
        }
    }
}

/// What [`crate::Reporter::report`] did: the fix is on disk either way.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct ReportOutcome {
    /// The sequence number of the fix's record; none when a fix of the same time was already
    /// queued or reported (the same fix given twice), which is not queued again.
    pub seq: Option<u64>,
    /// What sending the outbox then did (the new record and any backlog before it).
    pub sent: FlushOutcome,
}

/// What waits in the outbox and what was refused.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct OutboxStatus {
    /// Records waiting to be sent.
    pub waiting: u64,
    /// The oldest waiting record's fix time, Unix ms (none when nothing waits).
    pub oldest_waiting_fix_time_ms: Option<u64>,
    /// The newest waiting record's fix time, Unix ms.
    pub newest_waiting_fix_time_ms: Option<u64>,
    /// Records the chain refused, kept aside until [`crate::Reporter::discard_refused`].
    pub refused: Vec<RefusedRecord>,
    /// Bytes on disk of the records waiting or refused.
    pub bytes: u64,
    /// The sequence number the next record takes.
    pub next_seq: u64,
    /// Most records (waiting and refused) the outbox holds; past it a report fails with
    /// `OutboxFull`.
    pub max_records: u64,
    /// Most bytes the outbox holds.
    pub max_bytes: u64,
}

/// A refused record in the outbox.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct RefusedRecord {
    /// Its sequence number.
    pub seq: u64,
    /// Its fix time, Unix ms.
    pub fix_time_ms: u64,
    /// The validator's refusal code.
    pub code: String,
    /// Why, for people.
    pub reason: String,
}

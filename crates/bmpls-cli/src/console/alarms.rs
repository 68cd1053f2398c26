//! Alarms as the console keeps them: each verified alert event (corroborated by `f + 1`
//! validators in `bmpls_client::AlertStream`) once, with its acknowledgement, and the state of
//! each fence that the latest event of the fence implies. Pure: the watch task feeds it.

use std::collections::{BTreeMap, VecDeque};

use serde::Serialize;

use bmpls_net::alert::{AlertEvent, AlertKind};

use super::acks::{Ack, AckError, AckLog};

/// Alarms the console holds; the oldest go first (they stay on the chain, and in the log).
pub const MAX_ALARMS: usize = 2_000;
/// Fences whose state the console tracks.
pub const MAX_FENCES: usize = 4_096;

/// An alarm as the operator sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Alarm {
    /// Stable across restarts: the fence, block, kind and record that decided it.
    pub id: String,
    /// `Enter`, `Exit` or `Missing`.
    pub kind: &'static str,
    /// The patient's pseudonym, hex.
    pub patient: String,
    /// The fence's transaction hash, hex.
    pub fence: String,
    /// The deciding record (for `Missing`: the last one seen).
    pub seq: u64,
    /// The deciding block.
    pub height: u64,
    /// That block's time, ms since the Unix epoch.
    pub time_ms: u64,
    /// When the console received it, ms since the Unix epoch.
    pub received_ms: u64,
    /// Who acknowledged it and when, once someone did.
    pub ack: Option<Ack>,
}

/// What a fence's latest event says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FenceState {
    /// The fence, hex.
    pub fence: String,
    /// The patient, hex.
    pub patient: String,
    /// `inside` (after Enter), `outside` (after Exit) or `silent` (after Missing).
    pub state: &'static str,
    /// The block time of that event.
    pub since_ms: u64,
}

fn kind_name(kind: AlertKind) -> &'static str {
    match kind {
        AlertKind::Enter => "Enter",
        AlertKind::Exit => "Exit",
        AlertKind::Missing => "Missing",
    }
}

/// The id of the alarm `event` raises.
pub fn alarm_id(event: &AlertEvent) -> String {
    format!(
        "{}-{}-{}-{}",
        hex::encode(event.fence.0),
        event.height.0,
        kind_name(event.kind),
        event.seq.0
    )
}

/// The console's alarms and fence states.
#[derive(Debug, Default)]
pub struct AlarmBook {
    alarms: VecDeque<Alarm>,
    fences: BTreeMap<String, FenceState>,
}

impl AlarmBook {
    /// Takes in a verified `event` received at `received_ms`, with the acknowledgement `acks`
    /// hold for it; returns the new alarm, or `None` for an event already held.
    pub fn add(&mut self, event: &AlertEvent, received_ms: u64, acks: &AckLog) -> Option<Alarm> {
        let id = alarm_id(event);
        if self.alarms.iter().any(|a| a.id == id) {
            return None;
        }
        let fence = hex::encode(event.fence.0);
        let state = match event.kind {
            AlertKind::Enter => "inside",
            AlertKind::Exit => "outside",
            AlertKind::Missing => "silent",
        };
        let newer = self
            .fences
            .get(&fence)
            .is_none_or(|f| f.since_ms <= event.time_ms);
        if newer && (self.fences.len() < MAX_FENCES || self.fences.contains_key(&fence)) {
            self.fences.insert(
                fence.clone(),
                FenceState {
                    fence: fence.clone(),
                    patient: hex::encode(event.patient.0),
                    state,
                    since_ms: event.time_ms,
                },
            );
        }
        let alarm = Alarm {
            ack: acks.get(&id).cloned(),
            id,
            kind: kind_name(event.kind),
            patient: hex::encode(event.patient.0),
            fence,
            seq: event.seq.0,
            height: event.height.0,
            time_ms: event.time_ms,
            received_ms,
        };
        if self.alarms.len() == MAX_ALARMS {
            self.alarms.pop_front();
        }
        self.alarms.push_back(alarm.clone());
        Some(alarm)
    }

    /// Acknowledges alarm `id` as `by` at `at_ms`, kept in `acks` before it shows here.
    pub fn acknowledge(
        &mut self,
        id: &str,
        by: String,
        at_ms: u64,
        acks: &mut AckLog,
    ) -> Result<Alarm, AckError> {
        let alarm = self
            .alarms
            .iter_mut()
            .find(|a| a.id == id)
            .ok_or(AckError::UnknownAlarm)?;
        if alarm.ack.is_some() {
            return Err(AckError::Already);
        }
        let ack = Ack {
            alarm: id.to_string(),
            by,
            at_ms,
        };
        acks.record(ack.clone())?;
        alarm.ack = Some(ack);
        Ok(alarm.clone())
    }

    /// The alarms, newest first.
    pub fn newest_first(&self) -> Vec<Alarm> {
        self.alarms.iter().rev().cloned().collect()
    }

    /// The fence states of `patient` (hex).
    pub fn fences_of(&self, patient: &str) -> Vec<FenceState> {
        self.fences
            .values()
            .filter(|f| f.patient == patient)
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use bmpls_types::{CarerId, Epoch, Height, LevelIndex, PatientId, Seq, TxHash};

    use super::*;

    fn event(kind: AlertKind, height: u64) -> AlertEvent {
        AlertEvent {
            fence: TxHash([7; 32]),
            patient: PatientId([1; 16]),
            carer: CarerId([2; 16]),
            kind,
            seq: Seq(height * 2),
            level: LevelIndex(2),
            epoch: Epoch(0),
            height: Height(height),
            time_ms: height * 1_000,
        }
    }

    fn log() -> (tempfile::TempDir, AckLog) {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = AckLog::open(&dir.path().join("acks.jsonl")).expect("log");
        (dir, log)
    }

    #[test]
    fn each_event_is_one_alarm_and_the_fence_follows_the_latest() {
        let (_dir, acks) = log();
        let mut book = AlarmBook::default();
        assert!(book.add(&event(AlertKind::Exit, 5), 5_100, &acks).is_some());
        assert!(book.add(&event(AlertKind::Exit, 5), 5_200, &acks).is_none());
        let patient = hex::encode([1u8; 16]);
        assert_eq!(book.fences_of(&patient)[0].state, "outside");
        book.add(&event(AlertKind::Enter, 9), 9_100, &acks);
        // An older event arriving late does not turn the fence back.
        book.add(&event(AlertKind::Missing, 7), 9_200, &acks);
        assert_eq!(book.fences_of(&patient)[0].state, "inside");
        let kinds: Vec<&str> = book.newest_first().iter().map(|a| a.kind).collect();
        assert_eq!(kinds, ["Missing", "Enter", "Exit"]);
        assert!(book.fences_of(&hex::encode([9u8; 16])).is_empty());
    }

    #[test]
    fn an_acknowledgement_is_kept_once_and_matched_after_a_restart() {
        let (dir, mut acks) = log();
        let mut book = AlarmBook::default();
        let exit = event(AlertKind::Exit, 5);
        let id = book.add(&exit, 5_100, &acks).expect("new").id;
        let done = book
            .acknowledge(&id, "Sam".into(), 6_000, &mut acks)
            .expect("acknowledged");
        assert_eq!(
            done.ack.as_ref().map(|a| (a.by.as_str(), a.at_ms)),
            Some(("Sam", 6_000))
        );
        assert!(matches!(
            book.acknowledge(&id, "Kim".into(), 7_000, &mut acks),
            Err(AckError::Already)
        ));
        assert!(matches!(
            book.acknowledge("nope", "Kim".into(), 7_000, &mut acks),
            Err(AckError::UnknownAlarm)
        ));
        // A restarted console reads the event again from the chain and the ack from disk.
        let reopened = AckLog::open(&dir.path().join("acks.jsonl")).expect("reopened");
        let mut fresh = AlarmBook::default();
        let again = fresh
            .add(&exit, 9_000, &reopened)
            .expect("new to this book");
        assert_eq!(again.ack.map(|a| a.by), Some("Sam".to_string()));
    }

    #[test]
    fn the_book_holds_at_most_max_alarms_dropping_the_oldest() {
        let (_dir, acks) = log();
        let mut book = AlarmBook::default();
        for height in 1..=(MAX_ALARMS as u64 + 3) {
            book.add(&event(AlertKind::Exit, height), height, &acks);
        }
        let alarms = book.newest_first();
        assert_eq!(alarms.len(), MAX_ALARMS);
        assert_eq!(alarms.last().map(|a| a.height), Some(4));
    }
}

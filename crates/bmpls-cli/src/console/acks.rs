//! The operator's acknowledgements, kept on disk: one JSON line per acknowledgement (which
//! alarm, who, when), appended and synced before the console says it is kept. The alarms
//! themselves are not stored: they are a function of the chain, and the console reads them
//! again from height 1 when it starts, matching them to the acknowledgements by id.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Largest acknowledgement log read at start (about 80,000 acknowledgements).
pub const MAX_ACK_LOG_BYTES: u64 = 16 * 1024 * 1024;
/// Longest operator name kept with an acknowledgement, in characters.
pub const MAX_OPERATOR_CHARS: usize = 64;
/// Longest alarm id (a fence hash and three numbers).
pub const MAX_ALARM_ID_CHARS: usize = 128;

/// One acknowledgement.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    /// The alarm's id ([`super::alarms::Alarm::id`]).
    pub alarm: String,
    /// Who acknowledged it, as the operator typed their name.
    pub by: String,
    /// When, ms since the Unix epoch.
    pub at_ms: u64,
}

/// Why an acknowledgement was not kept.
#[derive(Debug, thiserror::Error)]
pub enum AckError {
    /// The operator's name is empty, too long or holds control characters.
    #[error("an operator name is 1 to {MAX_OPERATOR_CHARS} printable characters")]
    BadName,
    /// The alarm id is not one the console gave.
    #[error("no such alarm")]
    UnknownAlarm,
    /// The alarm was acknowledged before (the first acknowledgement stands).
    #[error("already acknowledged")]
    Already,
    /// The log could not be read or written.
    #[error("the acknowledgement log {path}: {source}")]
    Io {
        /// The log's path.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// The log is larger than the console reads.
    #[error("the acknowledgement log {0} is over {MAX_ACK_LOG_BYTES} bytes; move it aside")]
    TooLarge(PathBuf),
}

/// A name fit to keep: trimmed, 1 to [`MAX_OPERATOR_CHARS`] characters, none a control.
pub fn operator_name(text: &str) -> Result<String, AckError> {
    let name = text.trim();
    let count = name.chars().count();
    if count == 0 || count > MAX_OPERATOR_CHARS || name.chars().any(char::is_control) {
        return Err(AckError::BadName);
    }
    Ok(name.to_string())
}

/// The acknowledgements, in memory and in their log.
#[derive(Debug)]
pub struct AckLog {
    path: PathBuf,
    by_alarm: HashMap<String, Ack>,
    /// Lines of the log that could not be read (a line cut by a crash mid-write, say).
    pub skipped_lines: usize,
}

impl AckLog {
    /// Opens the log at `path` (created on the first acknowledgement).
    pub fn open(path: &Path) -> Result<Self, AckError> {
        let io = |source| AckError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut by_alarm = HashMap::new();
        let mut skipped_lines = 0;
        match std::fs::metadata(path) {
            Ok(meta) if meta.len() > MAX_ACK_LOG_BYTES => {
                return Err(AckError::TooLarge(path.to_path_buf()));
            }
            Ok(_) => {
                let text = std::fs::read(path).map_err(io)?;
                for line in text.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                    match serde_json::from_slice::<Ack>(line) {
                        Ok(ack) if ack.alarm.len() <= MAX_ALARM_ID_CHARS => {
                            // The first acknowledgement of an alarm stands.
                            by_alarm.entry(ack.alarm.clone()).or_insert(ack);
                        }
                        _ => skipped_lines += 1,
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(e)),
        }
        Ok(Self {
            path: path.to_path_buf(),
            by_alarm,
            skipped_lines,
        })
    }

    /// The acknowledgement of `alarm`, if it has one.
    pub fn get(&self, alarm: &str) -> Option<&Ack> {
        self.by_alarm.get(alarm)
    }

    /// Appends `ack` to the log and syncs it to stable storage; only then is it kept.
    pub fn record(&mut self, ack: Ack) -> Result<(), AckError> {
        if self.by_alarm.contains_key(&ack.alarm) {
            return Err(AckError::Already);
        }
        let io = |source| AckError::Io {
            path: self.path.clone(),
            source,
        };
        let mut line = serde_json::to_vec(&ack).map_err(|e| io(e.into()))?;
        line.push(b'\n');
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(io)?;
        file.write_all(&line).map_err(io)?;
        file.sync_data().map_err(io)?;
        self.by_alarm.insert(ack.alarm.clone(), ack);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ack(alarm: &str, by: &str, at_ms: u64) -> Ack {
        Ack {
            alarm: alarm.into(),
            by: by.into(),
            at_ms,
        }
    }

    #[test]
    fn acknowledgements_survive_a_restart_and_the_first_one_stands() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("acks.jsonl");
        let mut log = AckLog::open(&path).expect("new log");
        log.record(ack("a-1", "Sam", 10)).expect("kept");
        log.record(ack("b-2", "Kim", 20)).expect("kept");
        assert!(matches!(
            log.record(ack("a-1", "Kim", 30)),
            Err(AckError::Already)
        ));
        let again = AckLog::open(&path).expect("reopened");
        assert_eq!(again.get("a-1"), Some(&ack("a-1", "Sam", 10)));
        assert_eq!(again.get("b-2").map(|a| a.by.as_str()), Some("Kim"));
        assert_eq!(again.skipped_lines, 0);
    }

    #[test]
    fn a_line_cut_by_a_crash_is_skipped_and_counted_not_fatal() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("acks.jsonl");
        std::fs::write(
            &path,
            "{\"alarm\":\"a-1\",\"by\":\"Sam\",\"at_ms\":10}\n{\"alarm\":\"b-2\",\"by\":\"K",
        )
        .expect("write");
        let log = AckLog::open(&path).expect("opens");
        assert_eq!(log.skipped_lines, 1);
        assert_eq!(log.get("a-1").map(|a| a.at_ms), Some(10));
        assert!(log.get("b-2").is_none());
    }

    #[test]
    fn an_oversized_log_is_refused_rather_than_read() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("acks.jsonl");
        let file = std::fs::File::create(&path).expect("create");
        file.set_len(MAX_ACK_LOG_BYTES + 1).expect("grow");
        assert!(matches!(AckLog::open(&path), Err(AckError::TooLarge(_))));
    }

    #[test]
    fn operator_names_are_trimmed_bounded_and_printable() {
        assert_eq!(operator_name("  Sam Jones ").expect("ok"), "Sam Jones");
        for bad in ["", "   ", "a\nb", "\u{7}bell"] {
            assert!(operator_name(bad).is_err(), "{bad:?}");
        }
        assert!(operator_name(&"x".repeat(MAX_OPERATOR_CHARS)).is_ok());
        assert!(operator_name(&"x".repeat(MAX_OPERATOR_CHARS + 1)).is_err());
    }
}

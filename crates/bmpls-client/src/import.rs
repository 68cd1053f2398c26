//! Fixes from the files phones and trackers already write: OwnTracks JSON (`location` and
//! `transition` messages, one per line, as the recorder stores them or as raw payloads, and
//! `encrypted` payloads opened with the user's passphrase), GPX tracks, and GeoJSON points (as
//! `bmpls query --format geojson` writes exact fixes). Parsing is pure: text and the clock in,
//! fixes out, and every input that does not become a fix is reported with where it is, never
//! dropped silently: a line without a message, a position or measurement out of range, a fix
//! time that is implausible (before [`MIN_FIX_TIME_MS`] or more than [`MAX_FIX_AHEAD_MS`] ahead
//! of the clock, which is how a time in the wrong unit shows). Only a document that is not the
//! format at all (GPX, GeoJSON) is refused whole. A UTF-8 byte order mark is skipped; a line
//! with NUL bytes is a bad line.

use base64::Engine;
use crypto_secretbox::aead::{Aead, KeyInit};
use crypto_secretbox::{Key, Nonce, XSalsa20Poly1305};
use zeroize::Zeroizing;

use bmpls_types::Trigger;
use bmpls_types::limits::{MAX_FIX_AHEAD_MS, MIN_FIX_TIME_MS};

use crate::Fix;

/// Largest input accepted (a year of 30-second fixes is about 100 MB of OwnTracks JSON).
pub const MAX_IMPORT_BYTES: usize = 256 << 20;

/// A file format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// OwnTracks JSON, one message per line.
    OwnTracks,
    /// GPX 1.1 (track, route and way points).
    Gpx,
    /// GeoJSON: Point features with a `time` property.
    GeoJson,
}

impl Format {
    /// The format of `name` by its extension, else by its content: its first non-blank
    /// character, or an OwnTracks `_type` or a `<gpx` element after a garbage first line.
    pub fn detect(name: &str, text: &str) -> Option<Self> {
        let lower = name.to_ascii_lowercase();
        if lower.ends_with(".gpx") {
            return Some(Self::Gpx);
        }
        if lower.ends_with(".geojson") {
            return Some(Self::GeoJson);
        }
        if lower.ends_with(".rec") || lower.ends_with(".jsonl") || lower.ends_with(".owntracks") {
            return Some(Self::OwnTracks);
        }
        let start = text.trim_start_matches(['\u{feff}', '\0']).trim_start();
        if start.starts_with('<') {
            Some(Self::Gpx)
        } else if start.contains("\"FeatureCollection\"") || start.contains("\"Feature\"") {
            Some(Self::GeoJson)
        } else if start.starts_with('{')
            || start.chars().next().is_some_and(|c| c.is_ascii_digit())
            || start.contains("\"_type\"")
        {
            Some(Self::OwnTracks)
        } else if start.contains("<gpx") {
            Some(Self::Gpx)
        } else {
            None
        }
    }
}

/// What an input gave.
#[derive(Debug, Default)]
pub struct Imported {
    /// The fixes, with the line (or feature) each came from.
    pub fixes: Vec<(usize, Fix)>,
    /// What did not become a fix: where (line number, or feature number for GeoJSON) and why.
    pub problems: Vec<(usize, String)>,
}

/// Why a whole input was refused.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// Over [`MAX_IMPORT_BYTES`].
    #[error("the file is {0} bytes; at most {MAX_IMPORT_BYTES}")]
    TooLarge(usize),
    /// Not a document of the format at all.
    #[error("not {format}: {reason}")]
    Malformed {
        /// The format expected.
        format: &'static str,
        /// What was found.
        reason: String,
    },
}

/// Parses `text` as `format`; `passphrase` opens OwnTracks `encrypted` payloads; `now_ms` (the
/// clock, ms since 1970) bounds the fix times accepted.
pub fn parse(
    text: &str,
    format: Format,
    passphrase: Option<&str>,
    now_ms: u64,
) -> Result<Imported, ImportError> {
    if text.len() > MAX_IMPORT_BYTES {
        return Err(ImportError::TooLarge(text.len()));
    }
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = match format {
        Format::OwnTracks => owntracks(text, passphrase, now_ms),
        // A whole-document format: NUL padding left by a crash at its end is not the document.
        Format::Gpx => gpx(text.trim_end_matches(['\0']), now_ms)?,
        Format::GeoJson => geojson(text.trim_end_matches(['\0']), now_ms)?,
    };
    // Positions and measurements out of range become bad lines, with their line.
    let mut fixes = Vec::with_capacity(out.fixes.len());
    for (at, fix) in out.fixes {
        match check_measurements(&fix) {
            Ok(()) => fixes.push((at, fix)),
            Err(why) => out.problems.push((at, why)),
        }
    }
    out.fixes = fixes;
    out.problems.sort_by_key(|(at, _)| *at);
    Ok(out)
}

/// One OwnTracks message, as the app posts it in HTTP mode.
#[derive(Debug, PartialEq)]
pub enum OwnTracksMessage {
    /// A `location` or `transition` message (opened first if it came `encrypted`).
    Fix(Fix),
    /// Any other message type (`waypoint`, `card`, `lwt`…): not a position.
    Other(String),
}

/// Most bytes of one OwnTracks message [`owntracks_message_of`] reads.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// Parses one OwnTracks message (a JSON object), checked as a file's lines are: `passphrase`
/// opens an `encrypted` one; `now_ms` bounds the fix time. The error says why the message is
/// not a fix.
pub fn owntracks_message_of(
    json: &str,
    passphrase: Option<&str>,
    now_ms: u64,
) -> Result<OwnTracksMessage, String> {
    if json.len() > MAX_MESSAGE_BYTES {
        return Err(format!(
            "a message of {} bytes; at most {MAX_MESSAGE_BYTES}",
            json.len()
        ));
    }
    let mut text = std::borrow::Cow::Borrowed(json);
    for depth in 0..2 {
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| format!("not JSON: {e}"))?;
        let kind = value
            .get("_type")
            .and_then(serde_json::Value::as_str)
            .ok_or("no _type")?;
        match kind {
            "location" | "transition" => {
                let fix = owntracks_message(&text, passphrase, 1, now_ms)?;
                check_measurements(&fix)?;
                return Ok(OwnTracksMessage::Fix(fix));
            }
            "encrypted" if depth == 0 => {
                let data = value
                    .get("data")
                    .and_then(serde_json::Value::as_str)
                    .ok_or("an encrypted message without data")?;
                let passphrase =
                    passphrase.ok_or("encrypted, and the gateway has no --passphrase-file")?;
                text = std::borrow::Cow::Owned(open_encrypted(data, passphrase)?);
            }
            other => return Ok(OwnTracksMessage::Other(other.to_string())),
        }
    }
    Err("an encrypted message inside an encrypted message".into())
}

/// Why a fix's position or measurements cannot be reported, in the terms of the file.
fn check_measurements(fix: &Fix) -> Result<(), String> {
    let range = |what: &str, v: f64, min: f64, max: f64| {
        if v.is_finite() && (min..=max).contains(&v) {
            Ok(())
        } else {
            Err(format!("{what} {v} is out of range ({min} to {max})"))
        }
    };
    range("lat", fix.lat, -90.0, 90.0)?;
    range("lon", fix.lon, -180.0, 180.0)?;
    range("accuracy", fix.accuracy_m, 0.0, 4.0e7)?;
    range("altitude", fix.altitude_m, -2.0e6, 2.0e6)?;
    range("speed", fix.speed_m_s, 0.0, 4.0e7)?;
    crate::reporter::check_fix(fix).map_err(|e| e.to_string())
}

/// Why a fix time (ms since 1970) is implausible against the clock `now_ms`, if it is.
fn implausible_ms(time_ms: u64, now_ms: u64) -> Option<&'static str> {
    if time_ms < MIN_FIX_TIME_MS {
        Some("before 2000-01-01")
    } else if time_ms > now_ms.saturating_add(MAX_FIX_AHEAD_MS) {
        Some("more than a day in the future")
    } else {
        None
    }
}

/// A number of seconds (`unit_ms` 1000) or milliseconds (1) as ms since 1970, if it is a
/// plausible fix time.
fn plausible(value: f64, unit_ms: f64, now_ms: u64) -> Option<u64> {
    let ms = value * unit_ms;
    if !ms.is_finite() || ms < 0.0 || ms > u64::MAX as f64 {
        return None;
    }
    let ms = ms.round() as u64;
    implausible_ms(ms, now_ms).is_none().then_some(ms)
}

/// A fix time given as a number in `unit` (`"s"` or `"ms"`), checked; the reason names the
/// unit expected and says when the other unit fits.
fn time_in_unit(what: &str, value: f64, seconds: bool, now_ms: u64) -> Result<u64, String> {
    let (unit_ms, name, other_ms, other) = if seconds {
        (1000.0, "Unix seconds", 1.0, "milliseconds")
    } else {
        (1.0, "Unix milliseconds", 1000.0, "seconds")
    };
    if let Some(ms) = plausible(value, unit_ms, now_ms) {
        return Ok(ms);
    }
    if plausible(value, other_ms, now_ms).is_some() {
        return Err(format!(
            "{what} {value} looks like {other}; it must be {name}"
        ));
    }
    let when = if value * unit_ms < MIN_FIX_TIME_MS as f64 {
        "before 2000-01-01"
    } else {
        "more than a day in the future"
    };
    Err(format!(
        "{what} {value} is out of range: {when} ({what} is {name})"
    ))
}

fn fix(lat: f64, lon: f64, time_ms: u64, trigger: Trigger) -> Fix {
    Fix {
        lat,
        lon,
        accuracy_m: 0.0,
        altitude_m: 0.0,
        speed_m_s: 0.0,
        battery_percent: 0,
        trigger,
        fix_time_ms: time_ms,
    }
}

fn number(value: &serde_json::Value, key: &str) -> Option<f64> {
    value.get(key).and_then(serde_json::Value::as_f64)
}

/// A required number: missing, or present but not a number, are told apart.
fn required(value: &serde_json::Value, key: &str) -> Result<f64, String> {
    match value.get(key) {
        None | Some(serde_json::Value::Null) => Err(format!("no {key}")),
        Some(v) => v
            .as_f64()
            .ok_or_else(|| format!("{key} is not a number: {v}")),
    }
}

fn owntracks(text: &str, passphrase: Option<&str>, now_ms: u64) -> Imported {
    let mut out = Imported::default();
    for (index, line) in text.lines().enumerate() {
        let line_no = index + 1;
        if line.trim().is_empty() {
            continue;
        }
        if line.contains('\0') {
            out.problems
                .push((line_no, "NUL bytes on the line, not a message".into()));
            continue;
        }
        // The recorder's .rec lines: `time \t topic-or-* \t {json}`.
        let Some(start) = line.find('{') else {
            out.problems
                .push((line_no, "no JSON object on the line".into()));
            continue;
        };
        match owntracks_message(&line[start..], passphrase, 0, now_ms) {
            Ok(fix) => out.fixes.push((line_no, fix)),
            Err(why) => out.problems.push((line_no, why)),
        }
    }
    out
}

fn owntracks_message(
    json: &str,
    passphrase: Option<&str>,
    depth: u8,
    now_ms: u64,
) -> Result<Fix, String> {
    let value: serde_json::Value =
        serde_json::from_str(json).map_err(|e| format!("not JSON: {e}"))?;
    let kind = value
        .get("_type")
        .and_then(serde_json::Value::as_str)
        .ok_or("no _type")?;
    match kind {
        "location" | "transition" => {}
        "encrypted" if depth == 0 => {
            let data = value
                .get("data")
                .and_then(serde_json::Value::as_str)
                .ok_or("an encrypted message without data")?;
            let passphrase = passphrase
                .ok_or("encrypted: give the passphrase (bmpls report --passphrase-file FILE)")?;
            let opened = open_encrypted(data, passphrase)?;
            return owntracks_message(&opened, Some(passphrase), depth + 1, now_ms);
        }
        other => return Err(format!("skipped: a {other:?} message, not a position")),
    }
    let lat = required(&value, "lat")?;
    let lon = required(&value, "lon")?;
    let tst = match value.get("tst") {
        None | Some(serde_json::Value::Null) => {
            return Err("no tst (the fix time in Unix seconds)".into());
        }
        Some(v) => v
            .as_f64()
            .ok_or_else(|| format!("tst is not a number (Unix seconds): {v}"))?,
    };
    let time_ms = time_in_unit("tst", tst, true, now_ms)?;
    let trigger = if kind == "transition" {
        Trigger::Region
    } else {
        match value.get("t").and_then(serde_json::Value::as_str) {
            Some("u") => Trigger::Manual,
            Some("c" | "b" | "r") => Trigger::Region,
            Some("v") => Trigger::Motion,
            _ => Trigger::Periodic,
        }
    };
    let mut f = fix(lat, lon, time_ms, trigger);
    f.accuracy_m = number(&value, "acc").unwrap_or(0.0);
    f.altitude_m = number(&value, "alt").unwrap_or(0.0);
    // OwnTracks gives km/h.
    f.speed_m_s = number(&value, "vel").map_or(0.0, |v| v.max(0.0) / 3.6);
    f.battery_percent = number(&value, "batt").map_or(0, |b| b.clamp(0.0, 100.0) as u8);
    Ok(f)
}

/// Opens an OwnTracks `encrypted` payload: base64 of a 24-byte nonce and a libsodium
/// `crypto_secretbox` (XSalsa20-Poly1305) box, keyed by the passphrase's UTF-8 bytes padded
/// with zeros (or cut) to 32 bytes, as the OwnTracks apps do.
fn open_encrypted(data: &str, passphrase: &str) -> Result<String, String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .map_err(|_| "encrypted: data is not base64".to_string())?;
    if bytes.len() < 24 + 16 {
        return Err("encrypted: too short".into());
    }
    let mut key = Zeroizing::new([0u8; 32]);
    let pass = passphrase.as_bytes();
    let n = pass.len().min(32);
    key[..n].copy_from_slice(&pass[..n]);
    let cipher = XSalsa20Poly1305::new(Key::from_slice(&key[..]));
    let (nonce, body) = bytes.split_at(24);
    let plain = cipher
        .decrypt(Nonce::from_slice(nonce), body)
        .map_err(|_| "encrypted: the passphrase does not open it".to_string())?;
    String::from_utf8(plain).map_err(|_| "encrypted: not UTF-8 inside".to_string())
}

fn rfc3339_ms(text: &str) -> Option<u64> {
    let t =
        time::OffsetDateTime::parse(text.trim(), &time::format_description::well_known::Rfc3339)
            .ok()?;
    u64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

/// An RFC 3339 time, checked against the clock.
fn rfc3339_checked(what: &str, text: &str, now_ms: u64) -> Result<u64, String> {
    let ms = rfc3339_ms(text)
        .ok_or_else(|| format!("{what} {:?} is not an RFC 3339 time", text.trim()))?;
    match implausible_ms(ms, now_ms) {
        None => Ok(ms),
        Some(why) => Err(format!("{what} {} is out of range: {why}", text.trim())),
    }
}

/// A GPX point being read: its line, its position (or why it has none), and the text of its
/// `<ele>` and `<time>` children.
type GpxPoint = (
    usize,
    Result<(f64, f64), String>,
    Option<String>,
    Option<String>,
);

fn gpx(text: &str, now_ms: u64) -> Result<Imported, ImportError> {
    use quick_xml::events::Event;
    let malformed = |reason: String| ImportError::Malformed {
        format: "GPX",
        reason,
    };
    let line_at = |offset: u64| {
        text[..(offset as usize).min(text.len())]
            .matches('\n')
            .count()
            + 1
    };
    let mut reader = quick_xml::Reader::from_str(text);
    let mut out = Imported::default();
    // The point being read: its line, position, and what its children said.
    let mut point: Option<GpxPoint> = None;
    let mut field: Option<&'static str> = None;
    let mut saw_gpx = false;
    loop {
        let offset = reader.buffer_position();
        let event = reader
            .read_event()
            .map_err(|e| malformed(format!("line {}: {e}", line_at(offset))))?;
        match event {
            Event::Start(e) | Event::Empty(e) if e.local_name().as_ref() == b"gpx" => {
                saw_gpx = true;
            }
            Event::Start(ref e) | Event::Empty(ref e)
                if matches!(e.local_name().as_ref(), b"trkpt" | b"rtept" | b"wpt") =>
            {
                let attr = |name: &[u8]| {
                    e.attributes()
                        .flatten()
                        .find(|a| a.key.local_name().as_ref() == name)
                        .and_then(|a| String::from_utf8(a.value.to_vec()).ok())
                        .and_then(|v| v.trim().parse::<f64>().ok())
                };
                let position = match (attr(b"lat"), attr(b"lon")) {
                    (Some(lat), Some(lon)) => Ok((lat, lon)),
                    _ => Err("a point without numeric lat and lon".to_string()),
                };
                let line = line_at(offset);
                if matches!(event, Event::Empty(_)) {
                    out.problems.push((line, "a point without a time".into()));
                } else {
                    point = Some((line, position, None, None));
                }
            }
            Event::Start(e) => {
                field = match e.local_name().as_ref() {
                    b"ele" => Some("ele"),
                    b"time" => Some("time"),
                    _ => None,
                };
            }
            // A child's text may come in pieces (text, CDATA sections): they are joined.
            Event::Text(_) | Event::CData(_) => {
                if let (Some(name), Some((_, _, ele, time))) = (field, point.as_mut()) {
                    let piece = match &event {
                        Event::Text(t) => t
                            .unescape()
                            .map(|v| v.into_owned())
                            .map_err(|e| malformed(format!("line {}: {e}", line_at(offset))))?,
                        Event::CData(c) => String::from_utf8_lossy(c).into_owned(),
                        _ => String::new(),
                    };
                    let slot = if name == "ele" { ele } else { time };
                    slot.get_or_insert_with(String::new).push_str(&piece);
                }
            }
            Event::End(e) => {
                field = None;
                if matches!(e.local_name().as_ref(), b"trkpt" | b"rtept" | b"wpt") {
                    if let Some((line, position, ele, time)) = point.take() {
                        match gpx_point(position, ele, time, now_ms) {
                            Ok(f) => out.fixes.push((line, f)),
                            Err(why) => out.problems.push((line, why)),
                        }
                    }
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !saw_gpx {
        return Err(malformed("no <gpx> element".into()));
    }
    Ok(out)
}

/// A GPX point from its position and the text of its `<ele>` and `<time>`.
fn gpx_point(
    position: Result<(f64, f64), String>,
    ele: Option<String>,
    time: Option<String>,
    now_ms: u64,
) -> Result<Fix, String> {
    let (lat, lon) = position?;
    let time = time.ok_or("a point without a <time>")?;
    let ms = rfc3339_checked("<time>", &time, now_ms)?;
    let mut f = fix(lat, lon, ms, Trigger::Periodic);
    if let Some(ele) = ele {
        f.altitude_m = ele
            .trim()
            .parse()
            .map_err(|_| format!("<ele> {:?} is not a number (metres)", ele.trim()))?;
    }
    Ok(f)
}

fn geojson(text: &str, now_ms: u64) -> Result<Imported, ImportError> {
    let malformed = |reason: String| ImportError::Malformed {
        format: "GeoJSON",
        reason,
    };
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| malformed(e.to_string()))?;
    let features: Vec<&serde_json::Value> = match value.get("type").and_then(|t| t.as_str()) {
        Some("FeatureCollection") => value
            .get("features")
            .and_then(|f| f.as_array())
            .ok_or_else(|| malformed("a FeatureCollection without features".into()))?
            .iter()
            .collect(),
        Some("Feature") => vec![&value],
        _ => {
            return Err(malformed(
                "expected a FeatureCollection or a Feature".into(),
            ));
        }
    };
    let mut out = Imported::default();
    for (index, feature) in features.into_iter().enumerate() {
        let number_of = index + 1;
        let geometry = feature.get("geometry");
        let kind = geometry
            .and_then(|g| g.get("type"))
            .and_then(|t| t.as_str());
        if kind != Some("Point") {
            out.problems.push((
                number_of,
                format!(
                    "skipped: a {} feature, not a Point",
                    kind.unwrap_or("geometry-less")
                ),
            ));
            continue;
        }
        let coords = geometry
            .and_then(|g| g.get("coordinates"))
            .and_then(|c| c.as_array())
            .filter(|c| c.len() >= 2);
        let (Some(lon), Some(lat)) = (
            coords.and_then(|c| c[0].as_f64()),
            coords.and_then(|c| c[1].as_f64()),
        ) else {
            out.problems
                .push((number_of, "a Point without numeric coordinates".into()));
            continue;
        };
        let props = feature.get("properties");
        let prop = |key: &str| props.and_then(|p| p.get(key));
        let time = match prop("time").or_else(|| prop("timestamp")) {
            Some(serde_json::Value::String(s)) => rfc3339_checked("time", s, now_ms),
            // GeoJSON names no unit: Unix milliseconds and Unix seconds are both written, and
            // their plausible ranges (2000 to a day from now) do not overlap.
            Some(serde_json::Value::Number(n)) => {
                let value = n.as_f64().unwrap_or(f64::NAN);
                plausible(value, 1.0, now_ms)
                    .or_else(|| plausible(value, 1000.0, now_ms))
                    .ok_or_else(|| {
                        format!(
                            "time {n} is neither Unix milliseconds nor Unix seconds from \
                             2000-01-01 to a day from now"
                        )
                    })
            }
            Some(other) => Err(format!("time {other} is not an RFC 3339 time or a number")),
            None => Err("no time property (RFC 3339, Unix ms or Unix s)".into()),
        };
        let time = match time {
            Ok(time) => time,
            Err(why) => {
                out.problems.push((number_of, why));
                continue;
            }
        };
        let mut f = fix(lat, lon, time, Trigger::Periodic);
        f.altitude_m = coords
            .and_then(|c| c.get(2))
            .and_then(|v| v.as_f64())
            .unwrap_or(0.0);
        f.accuracy_m = prop("accuracy_m")
            .or_else(|| prop("accuracy"))
            .and_then(|v| v.as_f64())
            .unwrap_or(0.0);
        // As `bmpls query --format geojson` writes them, so that an export imports whole.
        f.speed_m_s = prop("speed_m_s")
            .and_then(serde_json::Value::as_f64)
            .unwrap_or(0.0);
        f.battery_percent = prop("battery_percent")
            .and_then(serde_json::Value::as_f64)
            .map_or(0, |b| b.clamp(0.0, 100.0) as u8);
        out.fixes.push((number_of, f));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The clock of these tests: 2025-11-24.
    const NOW_MS: u64 = 1_764_000_000_000;

    /// The problems of `got` as (line, reason) with reasons cut to what they must contain.
    fn check_problems(got: &Imported, expected: &[(usize, &str)]) {
        let lines: Vec<usize> = got.problems.iter().map(|(l, _)| *l).collect();
        let want: Vec<usize> = expected.iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, want, "{:?}", got.problems);
        for ((_, why), (_, part)) in got.problems.iter().zip(expected) {
            assert!(why.contains(part), "{why:?} should say {part:?}");
        }
    }

    #[test]
    fn an_out_of_range_point_is_skipped_with_its_line_in_every_format() {
        let owntracks = concat!(
            "{\"_type\":\"location\",\"lat\":52.37,\"lon\":4.89,\"tst\":1700000000}\n",
            "{\"_type\":\"location\",\"lat\":200,\"lon\":4.89,\"tst\":1700000010}\n",
            "{\"_type\":\"location\",\"lat\":52.37,\"lon\":184,\"tst\":1700000020}\n",
            "{\"_type\":\"location\",\"lat\":52.37,\"lon\":4.89,\"tst\":1700000030,\"acc\":-1}\n",
            "{\"_type\":\"location\",\"lat\":52.38,\"lon\":4.89,\"tst\":1700000040}\n",
        );
        let got = parse(owntracks, Format::OwnTracks, None, NOW_MS).expect("parses");
        assert_eq!(
            got.fixes.iter().map(|(l, _)| *l).collect::<Vec<_>>(),
            [1, 5]
        );
        check_problems(
            &got,
            &[
                (2, "lat 200 is out of range"),
                (3, "lon 184 is out of range"),
                (4, "accuracy -1 is out of range"),
            ],
        );
        let gpx = r#"<gpx version="1.1">
<trk><trkseg>
<trkpt lat="200" lon="4.89"><time>2023-11-14T22:13:20Z</time></trkpt>
<trkpt lat="52.37" lon="4.89"><time>2023-11-14T22:13:30Z</time></trkpt>
</trkseg></trk></gpx>"#;
        let got = parse(gpx, Format::Gpx, None, NOW_MS).expect("parses");
        assert_eq!(got.fixes.iter().map(|(l, _)| *l).collect::<Vec<_>>(), [4]);
        check_problems(&got, &[(3, "lat 200 is out of range")]);
        let geojson = r#"{"type":"FeatureCollection","features":[
          {"type":"Feature","geometry":{"type":"Point","coordinates":[184,52.37]},"properties":{"time":"2023-11-14T22:13:20Z"}},
          {"type":"Feature","geometry":{"type":"Point","coordinates":[4.89,52.37]},"properties":{"time":"2023-11-14T22:13:20Z","accuracy_m":-1}},
          {"type":"Feature","geometry":{"type":"Point","coordinates":[4.89,52.37]},"properties":{"time":"2023-11-14T22:13:20Z"}}
        ]}"#;
        let got = parse(geojson, Format::GeoJson, None, NOW_MS).expect("parses");
        assert_eq!(got.fixes.iter().map(|(l, _)| *l).collect::<Vec<_>>(), [3]);
        check_problems(
            &got,
            &[
                (1, "lon 184 is out of range"),
                (2, "accuracy -1 is out of range"),
            ],
        );
    }

    #[test]
    fn owntracks_reasons_name_what_is_wrong_and_the_unit_expected() {
        let text = concat!(
            "{\"_type\":\"location\",\"lat\":\"52.37\",\"lon\":4.89,\"tst\":1700000000}\n",
            "{\"_type\":\"location\",\"lat\":52.37,\"lon\":4.89,\"tst\":-5}\n",
            "{\"_type\":\"location\",\"lat\":52.37,\"lon\":4.89,\"tst\":1e10}\n",
            "{\"_type\":\"location\",\"lat\":52.37,\"lon\":4.89,\"tst\":1700000000000}\n",
            "{\"_type\":\"location\",\"lat\":52.37,\"lon\":4.89,\"tst\":\"soon\"}\n",
            "{\"_type\":\"location\",\"lat\":52.37,\"lon\":4.89,\"tst\":1700000000.5}\n",
            "{\"_type\":\"encrypted\",\"data\":\"AAAA\"}\n",
        );
        let got = parse(text, Format::OwnTracks, None, NOW_MS).expect("parses");
        assert_eq!(got.fixes.len(), 1);
        assert_eq!(got.fixes[0].1.fix_time_ms, 1_700_000_000_500);
        check_problems(
            &got,
            &[
                (1, "lat is not a number"),
                (
                    2,
                    "tst -5 is out of range: before 2000-01-01 (tst is Unix seconds)",
                ),
                (
                    3,
                    "tst 10000000000 is out of range: more than a day in the future",
                ),
                (4, "looks like milliseconds; it must be Unix seconds"),
                (5, "tst is not a number"),
                (7, "--passphrase-file"),
            ],
        );
    }

    #[test]
    fn a_garbage_first_line_a_bom_and_nul_bytes_are_bad_lines_not_a_bad_file() {
        let good = "{\"_type\":\"location\",\"lat\":52.37,\"lon\":4.89,\"tst\":1700000000}";
        for first in ["garbage", "\u{feff}garbage", "\0\0\0\0"] {
            let text = format!("{first}\n{good}\n\0\0\0\n{good}\n");
            let format = Format::detect("upload.txt", &text);
            assert_eq!(format, Some(Format::OwnTracks), "{first:?}");
            let got = parse(&text, Format::OwnTracks, None, NOW_MS).expect("parses");
            assert_eq!(got.fixes.len(), 2, "{:?}", got.problems);
            assert_eq!(
                got.problems.iter().map(|(l, _)| *l).collect::<Vec<_>>(),
                [1, 3]
            );
        }
        let with_bom = format!("\u{feff}{good}\n");
        let got = parse(&with_bom, Format::OwnTracks, None, NOW_MS).expect("parses");
        assert_eq!((got.fixes.len(), got.problems.len()), (1, 0));
        let gpx = "\u{feff}<gpx><trk><trkseg><trkpt lat=\"52.37\" lon=\"4.89\"><time>2023-11-14T22:13:20Z</time></trkpt></trkseg></trk></gpx>\0\0";
        assert_eq!(Format::detect("x", gpx), Some(Format::Gpx));
        let got = parse(gpx, Format::Gpx, None, NOW_MS).expect("a BOM and NUL padding");
        assert_eq!(got.fixes.len(), 1, "{:?}", got.problems);
    }

    #[test]
    fn gpx_times_in_cdata_or_with_entities_and_a_bad_elevation() {
        let text = r#"<gpx version="1.1"><trk><trkseg>
<trkpt lat="52.37" lon="4.89"><time><![CDATA[2023-11-14T22:13:20Z]]></time></trkpt>
<trkpt lat="52.37" lon="4.89"><time>2023&#45;11-14T22:13:30Z</time></trkpt>
<trkpt lat="52.37" lon="4.89"><ele>high</ele><time>2023-11-14T22:13:40Z</time></trkpt>
<trkpt lat="52.37" lon="4.89"><time>1970-01-01T00:00:05Z</time></trkpt>
<trkpt lat="52.37" lon="4.89"><time>yesterday</time></trkpt>
</trkseg></trk></gpx>"#;
        let got = parse(text, Format::Gpx, None, NOW_MS).expect("parses");
        let times: Vec<u64> = got.fixes.iter().map(|(_, f)| f.fix_time_ms).collect();
        assert_eq!(times, [1_700_000_000_000, 1_700_000_010_000]);
        check_problems(
            &got,
            &[
                (4, "<ele> \"high\" is not a number"),
                (5, "before 2000-01-01"),
                (6, "\"yesterday\" is not an RFC 3339 time"),
            ],
        );
    }

    #[test]
    fn geojson_times_in_seconds_or_milliseconds_and_unparseable_ones() {
        let feature = |time: &str| {
            format!(
                r#"{{"type":"Feature","geometry":{{"type":"Point","coordinates":[4.89,52.37]}},"properties":{{"timestamp":{time}}}}}"#
            )
        };
        let features: Vec<String> = [
            "1700000000",
            "1700000000000",
            "\"yesterday\"",
            "5",
            "99999999999999",
        ]
        .iter()
        .map(|t| feature(t))
        .collect();
        let text = format!(
            r#"{{"type":"FeatureCollection","features":[{}]}}"#,
            features.join(",")
        );
        let got = parse(&text, Format::GeoJson, None, NOW_MS).expect("parses");
        let times: Vec<u64> = got.fixes.iter().map(|(_, f)| f.fix_time_ms).collect();
        assert_eq!(
            times,
            [1_700_000_000_000, 1_700_000_000_000],
            "seconds, then ms"
        );
        check_problems(
            &got,
            &[
                (3, "\"yesterday\" is not an RFC 3339 time"),
                (4, "neither Unix milliseconds nor Unix seconds"),
                (5, "neither Unix milliseconds nor Unix seconds"),
            ],
        );
    }

    #[test]
    fn implausible_fix_times_are_refused_naming_the_unit() {
        for (time, why) in [
            (0, "before 2000-01-01"),
            (1_700_000_000, "Unix seconds, not milliseconds?"),
            (99_999_999_999_999, "more than a day in the future"),
            (
                NOW_MS + MAX_FIX_AHEAD_MS + 1,
                "more than a day in the future",
            ),
        ] {
            let error = crate::check_fix_time(time, NOW_MS).expect_err("implausible");
            let text = error.to_string();
            assert!(
                text.contains(why) && text.contains("Unix milliseconds"),
                "{text}"
            );
        }
        crate::check_fix_time(NOW_MS + MAX_FIX_AHEAD_MS, NOW_MS).expect("a day ahead");
        crate::check_fix_time(MIN_FIX_TIME_MS, NOW_MS).expect("2000-01-01");
    }

    #[test]
    fn owntracks_locations_transitions_recorder_lines_and_bad_lines() {
        let text = concat!(
            "{\"_type\":\"location\",\"lat\":52.3731,\"lon\":4.8922,\"tst\":1700000000,\"acc\":12,\"alt\":3,\"vel\":18,\"batt\":77,\"t\":\"u\",\"tid\":\"al\"}\n",
            "2023-11-14T22:13:30Z\t*                 \t{\"_type\":\"transition\",\"lat\":52.37,\"lon\":4.89,\"tst\":1700000010,\"acc\":20,\"event\":\"leave\",\"desc\":\"home\",\"wtst\":1690000000,\"t\":\"c\"}\n",
            "\n",
            "{\"_type\":\"lwt\",\"tst\":1700000020}\n",
            "{\"_type\":\"location\",\"lon\":4.8,\"tst\":1700000030}\n",
            "garbage\n",
            "{\"_type\":\"location\",\"lat\":52.1,\n",
        );
        let got = parse(text, Format::OwnTracks, None, NOW_MS).expect("parses");
        assert_eq!(got.fixes.len(), 2);
        let (line, first) = &got.fixes[0];
        assert_eq!(*line, 1);
        assert_eq!(
            (first.lat, first.lon, first.fix_time_ms),
            (52.3731, 4.8922, 1_700_000_000_000)
        );
        assert_eq!(
            (first.accuracy_m, first.altitude_m, first.battery_percent),
            (12.0, 3.0, 77)
        );
        assert!((first.speed_m_s - 5.0).abs() < 1e-9, "18 km/h is 5 m/s");
        assert_eq!(first.trigger, Trigger::Manual);
        assert_eq!(got.fixes[1].0, 2);
        assert_eq!(got.fixes[1].1.trigger, Trigger::Region);
        let lines: Vec<usize> = got.problems.iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, vec![4, 5, 6, 7], "{:?}", got.problems);
        assert!(got.problems[0].1.contains("lwt"));
        assert!(got.problems[1].1.contains("no lat"));
    }

    #[test]
    fn owntracks_encrypted_payloads_open_with_the_passphrase_only() {
        let inner =
            "{\"_type\":\"location\",\"lat\":48.8584,\"lon\":2.2945,\"tst\":1700000100,\"acc\":5}";
        let mut key = [0u8; 32];
        key[..6].copy_from_slice(b"s3cret");
        let nonce = [7u8; 24];
        let sealed = XSalsa20Poly1305::new(Key::from_slice(&key))
            .encrypt(Nonce::from_slice(&nonce), inner.as_bytes())
            .expect("seal");
        let data =
            base64::engine::general_purpose::STANDARD.encode([nonce.as_slice(), &sealed].concat());
        let line = format!("{{\"_type\":\"encrypted\",\"data\":\"{data}\"}}\n");
        let got = parse(&line, Format::OwnTracks, Some("s3cret"), NOW_MS).expect("parses");
        assert_eq!(got.fixes.len(), 1, "{:?}", got.problems);
        assert_eq!((got.fixes[0].1.lat, got.fixes[0].1.lon), (48.8584, 2.2945));
        for (pass, why) in [(None, "passphrase"), (Some("wrong"), "does not open")] {
            let got = parse(&line, Format::OwnTracks, pass, NOW_MS).expect("parses");
            assert!(got.fixes.is_empty());
            assert!(got.problems[0].1.contains(why), "{:?}", got.problems);
        }
    }

    #[test]
    fn one_owntracks_message_is_a_fix_another_type_or_why_not() {
        let location = "{\"_type\":\"location\",\"lat\":52.37,\"lon\":4.89,\"tst\":1700000100}";
        match owntracks_message_of(location, None, NOW_MS) {
            Ok(OwnTracksMessage::Fix(fix)) => assert_eq!(fix.fix_time_ms, 1_700_000_100_000),
            other => panic!("{other:?}"),
        }
        let waypoint = "{\"_type\":\"waypoint\",\"desc\":\"home\"}";
        assert_eq!(
            owntracks_message_of(waypoint, None, NOW_MS),
            Ok(OwnTracksMessage::Other("waypoint".into()))
        );
        let mut key = [0u8; 32];
        key[..6].copy_from_slice(b"s3cret");
        let sealed = XSalsa20Poly1305::new(Key::from_slice(&key))
            .encrypt(Nonce::from_slice(&[9u8; 24]), location.as_bytes())
            .expect("seal");
        let data = base64::engine::general_purpose::STANDARD
            .encode([[9u8; 24].as_slice(), &sealed].concat());
        let encrypted = format!("{{\"_type\":\"encrypted\",\"data\":\"{data}\"}}");
        assert!(matches!(
            owntracks_message_of(&encrypted, Some("s3cret"), NOW_MS),
            Ok(OwnTracksMessage::Fix(_))
        ));
        for (json, pass, why) in [
            (encrypted.as_str(), None, "no --passphrase-file"),
            (encrypted.as_str(), Some("wrong"), "does not open"),
            (
                "{\"_type\":\"location\",\"lat\":200,\"lon\":4.89,\"tst\":1700000100}",
                None,
                "out of range",
            ),
            ("[1,2]", None, "no _type"),
            ("{\"_type\":", None, "not JSON"),
        ] {
            let got = owntracks_message_of(json, pass, NOW_MS);
            assert!(
                got.as_ref().is_err_and(|e| e.contains(why)),
                "{json}: {got:?}"
            );
        }
        let huge = " ".repeat(MAX_MESSAGE_BYTES + 1);
        assert!(owntracks_message_of(&huge, None, NOW_MS).is_err());
    }

    #[test]
    fn gpx_track_points_with_times_and_points_without() {
        let text = r#"<?xml version="1.0" encoding="UTF-8"?>
<gpx version="1.1" creator="test" xmlns="http://www.topografix.com/GPX/1/1">
  <trk><name>walk</name><trkseg>
    <trkpt lat="52.3731" lon="4.8922"><ele>2.5</ele><time>2023-11-14T22:13:20Z</time></trkpt>
    <trkpt lat="52.3741" lon="4.8932"><time>2023-11-14T22:13:50.500Z</time></trkpt>
    <trkpt lat="52.3751" lon="4.8942"></trkpt>
    <trkpt lat="north" lon="4.8952"><time>2023-11-14T22:14:20Z</time></trkpt>
    <trkpt lat="52.3761" lon="4.8962"><time>yesterday</time></trkpt>
  </trkseg></trk>
</gpx>"#;
        let got = parse(text, Format::Gpx, None, NOW_MS).expect("parses");
        assert_eq!(got.fixes.len(), 2);
        assert_eq!(got.fixes[0].0, 4);
        assert_eq!(got.fixes[0].1.fix_time_ms, 1_700_000_000_000);
        assert_eq!(got.fixes[0].1.altitude_m, 2.5);
        assert_eq!(got.fixes[1].1.fix_time_ms, 1_700_000_030_500);
        let lines: Vec<usize> = got.problems.iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, vec![6, 7, 8], "{:?}", got.problems);
        assert!(parse("<html></html>", Format::Gpx, None, NOW_MS).is_err());
        assert!(parse("<gpx><trk>", Format::Gpx, None, NOW_MS).is_ok_and(|i| i.fixes.is_empty()));
    }

    #[test]
    fn geojson_points_and_what_is_not_one() {
        let text = r#"{"type":"FeatureCollection","features":[
          {"type":"Feature","geometry":{"type":"Point","coordinates":[4.8922,52.3731,3.0]},"properties":{"time":"2023-11-14T22:13:20Z","accuracy_m":4}},
          {"type":"Feature","geometry":{"type":"Point","coordinates":[4.8932,52.3741]},"properties":{"time":1700000030000}},
          {"type":"Feature","geometry":{"type":"Polygon","coordinates":[]},"properties":{}},
          {"type":"Feature","geometry":{"type":"Point","coordinates":[4.9]},"properties":{"time":1}},
          {"type":"Feature","geometry":{"type":"Point","coordinates":[4.9,52.3]},"properties":{}}
        ]}"#;
        let got = parse(text, Format::GeoJson, None, NOW_MS).expect("parses");
        assert_eq!(got.fixes.len(), 2);
        assert_eq!(
            (
                got.fixes[0].1.lat,
                got.fixes[0].1.altitude_m,
                got.fixes[0].1.accuracy_m
            ),
            (52.3731, 3.0, 4.0)
        );
        assert_eq!(got.fixes[1].1.fix_time_ms, 1_700_000_030_000);
        let numbers: Vec<usize> = got.problems.iter().map(|(n, _)| *n).collect();
        assert_eq!(numbers, vec![3, 4, 5]);
        assert!(parse("[1,2]", Format::GeoJson, None, NOW_MS).is_err());
    }

    #[test]
    fn formats_are_detected_by_name_then_content() {
        assert_eq!(Format::detect("walk.gpx", ""), Some(Format::Gpx));
        assert_eq!(Format::detect("x", "  <?xml"), Some(Format::Gpx));
        assert_eq!(
            Format::detect("x.json", "{\"type\":\"FeatureCollection\"}"),
            Some(Format::GeoJson)
        );
        assert_eq!(
            Format::detect("x.json", "{\"_type\":\"location\"}"),
            Some(Format::OwnTracks)
        );
        assert_eq!(Format::detect("2023-11.rec", ""), Some(Format::OwnTracks));
        assert_eq!(Format::detect("x", "hello"), None);
    }
}

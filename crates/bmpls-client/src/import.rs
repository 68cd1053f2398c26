//! Fixes from the files phones and trackers already write: OwnTracks JSON (`location` and
//! `transition` messages, one per line, as the recorder stores them or as raw payloads, and
//! `encrypted` payloads opened with the user's passphrase), GPX tracks, and GeoJSON points (as
//! `bmpls query --format geojson` writes exact fixes). Parsing is pure: text in, fixes out, and
//! every input that does not become a fix is reported with where it is, never dropped silently.

use base64::Engine;
use crypto_secretbox::aead::{Aead, KeyInit};
use crypto_secretbox::{Key, Nonce, XSalsa20Poly1305};
use zeroize::Zeroizing;

use bmpls_types::Trigger;

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
    /// The format of `name` by its extension, else by its first non-blank character.
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
        let start = text.trim_start();
        if start.starts_with('<') {
            Some(Self::Gpx)
        } else if start.contains("\"FeatureCollection\"") || start.contains("\"Feature\"") {
            Some(Self::GeoJson)
        } else if start.starts_with('{') || start.chars().next().is_some_and(|c| c.is_ascii_digit())
        {
            Some(Self::OwnTracks)
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

/// Parses `text` as `format`; `passphrase` opens OwnTracks `encrypted` payloads.
pub fn parse(
    text: &str,
    format: Format,
    passphrase: Option<&str>,
) -> Result<Imported, ImportError> {
    if text.len() > MAX_IMPORT_BYTES {
        return Err(ImportError::TooLarge(text.len()));
    }
    match format {
        Format::OwnTracks => Ok(owntracks(text, passphrase)),
        Format::Gpx => gpx(text),
        Format::GeoJson => geojson(text),
    }
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

fn owntracks(text: &str, passphrase: Option<&str>) -> Imported {
    let mut out = Imported::default();
    for (index, line) in text.lines().enumerate() {
        let line_no = index + 1;
        if line.trim().is_empty() {
            continue;
        }
        // The recorder's .rec lines: `time \t topic-or-* \t {json}`.
        let Some(start) = line.find('{') else {
            out.problems
                .push((line_no, "no JSON object on the line".into()));
            continue;
        };
        match owntracks_message(&line[start..], passphrase, 0) {
            Ok(fix) => out.fixes.push((line_no, fix)),
            Err(why) => out.problems.push((line_no, why)),
        }
    }
    out
}

fn owntracks_message(json: &str, passphrase: Option<&str>, depth: u8) -> Result<Fix, String> {
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
            let passphrase = passphrase.ok_or("encrypted: give the passphrase")?;
            let opened = open_encrypted(data, passphrase)?;
            return owntracks_message(&opened, Some(passphrase), depth + 1);
        }
        other => return Err(format!("skipped: a {other:?} message, not a position")),
    }
    let lat = number(&value, "lat").ok_or("no lat")?;
    let lon = number(&value, "lon").ok_or("no lon")?;
    let tst = value
        .get("tst")
        .and_then(serde_json::Value::as_u64)
        .ok_or("no tst (the fix time in Unix seconds)")?;
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
    let mut f = fix(lat, lon, tst.saturating_mul(1000), trigger);
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

/// A GPX point being read: its line, its position (or why it has none), elevation and time.
type GpxPoint = (usize, Result<(f64, f64), String>, Option<f64>, Option<u64>);

fn gpx(text: &str) -> Result<Imported, ImportError> {
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
            Event::Text(t) => {
                if let (Some(name), Some((_, _, ele, time))) = (field, point.as_mut()) {
                    let value = t.unescape().map(|v| v.into_owned()).unwrap_or_default();
                    match name {
                        "ele" => *ele = value.trim().parse().ok(),
                        _ => *time = rfc3339_ms(&value),
                    }
                }
            }
            Event::End(e) => {
                field = None;
                if matches!(e.local_name().as_ref(), b"trkpt" | b"rtept" | b"wpt") {
                    if let Some((line, position, ele, time)) = point.take() {
                        match (position, time) {
                            (Err(why), _) => out.problems.push((line, why)),
                            (Ok(_), None) => out
                                .problems
                                .push((line, "a point without a valid <time>".into())),
                            (Ok((lat, lon)), Some(ms)) => {
                                let mut f = fix(lat, lon, ms, Trigger::Periodic);
                                f.altitude_m = ele.unwrap_or(0.0);
                                out.fixes.push((line, f));
                            }
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

fn geojson(text: &str) -> Result<Imported, ImportError> {
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
            Some(serde_json::Value::String(s)) => rfc3339_ms(s),
            Some(serde_json::Value::Number(n)) => n.as_u64(),
            _ => None,
        };
        let Some(time) = time else {
            out.problems
                .push((number_of, "no time property (RFC 3339 or Unix ms)".into()));
            continue;
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
        out.fixes.push((number_of, f));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let got = parse(text, Format::OwnTracks, None).expect("parses");
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
        let got = parse(&line, Format::OwnTracks, Some("s3cret")).expect("parses");
        assert_eq!(got.fixes.len(), 1, "{:?}", got.problems);
        assert_eq!((got.fixes[0].1.lat, got.fixes[0].1.lon), (48.8584, 2.2945));
        for (pass, why) in [(None, "passphrase"), (Some("wrong"), "does not open")] {
            let got = parse(&line, Format::OwnTracks, pass).expect("parses");
            assert!(got.fixes.is_empty());
            assert!(got.problems[0].1.contains(why), "{:?}", got.problems);
        }
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
        let got = parse(text, Format::Gpx, None).expect("parses");
        assert_eq!(got.fixes.len(), 2);
        assert_eq!(got.fixes[0].0, 4);
        assert_eq!(got.fixes[0].1.fix_time_ms, 1_700_000_000_000);
        assert_eq!(got.fixes[0].1.altitude_m, 2.5);
        assert_eq!(got.fixes[1].1.fix_time_ms, 1_700_000_030_500);
        let lines: Vec<usize> = got.problems.iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, vec![6, 7, 8], "{:?}", got.problems);
        assert!(parse("<html></html>", Format::Gpx, None).is_err());
        assert!(parse("<gpx><trk>", Format::Gpx, None).is_ok_and(|i| i.fixes.is_empty()));
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
        let got = parse(text, Format::GeoJson, None).expect("parses");
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
        assert!(parse("[1,2]", Format::GeoJson, None).is_err());
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

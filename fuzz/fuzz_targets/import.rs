//! `bmpls report --from FILE`: the format detection and the parsers of OwnTracks JSON (with
//! encrypted payloads), GPX and GeoJSON (`bmpls_client::import`), on any bytes, read as the
//! CLI reads them (lossy UTF-8). Every fix a parser gives must be within its documented
//! ranges (position, measurements, a plausible time), and every problem must name a line or
//! feature, in order.
#![no_main]

use bmpls_client::check_fix;
use bmpls_client::import::{Format, parse};
use bmpls_fuzz::NOW_MS;
use bmpls_types::limits::{MAX_FIX_AHEAD_MS, MIN_FIX_TIME_MS};
use libfuzzer_sys::fuzz_target;

/// The passphrase encrypted OwnTracks seeds were sealed with, so that the fuzzer can reach
/// the messages inside.
const PASSPHRASE: &str = "fuzz";

fuzz_target!(|data: &[u8]| {
    let Some((&which, bytes)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(bytes);
    let format = match which % 4 {
        0 => Format::OwnTracks,
        1 => Format::Gpx,
        2 => Format::GeoJson,
        _ => match Format::detect("upload", &text) {
            Some(format) => format,
            None => return,
        },
    };
    let Ok(imported) = parse(&text, format, Some(PASSPHRASE), NOW_MS) else {
        return;
    };
    for (at, fix) in &imported.fixes {
        assert!(*at >= 1, "a fix from line or feature 0");
        assert!((-90.0..=90.0).contains(&fix.lat), "lat out of range");
        assert!((-180.0..=180.0).contains(&fix.lon), "lon out of range");
        assert!(
            (MIN_FIX_TIME_MS..=NOW_MS + MAX_FIX_AHEAD_MS).contains(&fix.fix_time_ms),
            "implausible fix time"
        );
        assert!(fix.battery_percent <= 100, "battery over 100%");
        check_fix(fix).expect("a fix the reporter refuses");
    }
    assert!(
        imported.problems.is_sorted_by_key(|(at, _)| *at),
        "problems out of order"
    );
});

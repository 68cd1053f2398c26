//! How `bmpls query` prints a verified answer: a table, GeoJSON or CSV.

use bmpls_client::VerifiedAnswer;
use bmpls_types::ExactFix;

use crate::carer::{Format, iso};

/// The style of a progress bar counting `what`: elapsed time, bar, count, and the rate as a
/// whole number per second (indicatif's own `{per_sec}` prints `3,587.6057/s`).
pub(crate) fn progress_style(
    what: &str,
) -> Result<indicatif::ProgressStyle, indicatif::style::TemplateError> {
    Ok(indicatif::ProgressStyle::with_template(&format!(
        "{{elapsed_precise}} [{{bar:40}}] {{pos}}/{{len}} {what} ({{rate}})"
    ))?
    .with_key(
        "rate",
        |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = write!(w, "{}", rate(state.per_sec()));
        },
    )
    .progress_chars("=> "))
}

/// A rate per second as a whole number (one decimal below 10).
fn rate(per_sec: f64) -> String {
    if per_sec < 10.0 {
        format!("{per_sec:.1}/s")
    } else {
        format!("{per_sec:.0}/s")
    }
}

/// Prints `answer` in `format`; `depth` is the level's cell depth, for the table.
pub(crate) fn print_answer(answer: &VerifiedAnswer, format: Format, depth: u8) {
    match format {
        Format::Table => {
            let n = answer.records.len();
            println!(
                "{n} record{}, verified against the commit certificates (chain height {}){}",
                if n == 1 { "" } else { "s" },
                answer.at_height.0,
                if answer.more {
                    "; more in the window: raise --limit"
                } else {
                    ""
                }
            );
            for r in &answer.records {
                let rect = r.cell.rect();
                match r.exact {
                    Some(fix) => println!(
                        "{:>6}  {}  height {:>6}  lat {:.7} lon {:.7}{}",
                        r.seq.0,
                        iso(r.fix_time_ms),
                        r.height.0,
                        f64::from(fix.lat_e7) / 1e7,
                        f64::from(fix.lon_e7) / 1e7,
                        measured(&fix)
                    ),
                    None => println!(
                        "{:>6}  {}  height {:>6}  cell lat {:.5}..{:.5} lon {:.5}..{:.5} (depth {depth})",
                        r.seq.0,
                        iso(r.fix_time_ms),
                        r.height.0,
                        rect.min().y,
                        rect.max().y,
                        rect.min().x,
                        rect.max().x
                    ),
                }
            }
        }
        Format::Geojson => println!("{}", geojson(answer)),
        Format::Csv => print!("{}", csv(answer)),
    }
}

/// A fix's measurements in metres, metres per second and per cent, each `None` when the fix
/// does not carry it. A sealed fix has no "absent" mark: a reporter without the measurement
/// writes 0 (GPX has no accuracy, `report --lat` no battery), so 0 reads as absent. An
/// accuracy, speed or battery of exactly 0 is no real measurement; an altitude of exactly 0 cm
/// is dropped with them, which loses nothing a GPS gives.
fn measurements(fix: &ExactFix) -> [Option<f64>; 4] {
    [
        (fix.accuracy_cm > 0).then(|| f64::from(fix.accuracy_cm) / 100.0),
        (fix.altitude_cm != 0).then(|| f64::from(fix.altitude_cm) / 100.0),
        (fix.speed_cm_s > 0).then(|| f64::from(fix.speed_cm_s) / 100.0),
        (fix.battery_percent > 0).then(|| f64::from(fix.battery_percent)),
    ]
}

/// A fix's measurements for the table: `  ±5.0 m  alt 3.0 m  5.0 m/s  battery 77%`, each
/// only when the fix carries it.
fn measured(fix: &ExactFix) -> String {
    let [accuracy, altitude, speed, battery] = measurements(fix);
    let mut out = String::new();
    if let Some(a) = accuracy {
        out.push_str(&format!("  ±{a:.1} m"));
    }
    if let Some(a) = altitude {
        out.push_str(&format!("  alt {a:.1} m"));
    }
    if let Some(s) = speed {
        out.push_str(&format!("  {s:.1} m/s"));
    }
    if let Some(b) = battery {
        out.push_str(&format!("  battery {b:.0}%"));
    }
    out
}

/// The records as CSV (a header line, then one row per record); a measurement the fix does
/// not carry is an empty field.
pub fn csv(answer: &VerifiedAnswer) -> String {
    let mut out = String::from(
        "seq,time,height,west,south,east,north,lat,lon,accuracy_m,altitude_m,speed_m_s,battery_percent\n",
    );
    for r in &answer.records {
        let rect = r.cell.rect();
        let exact = r.exact.map_or_else(
            || ",,,,,".to_string(),
            |f| {
                let [accuracy, altitude, speed, battery] = measurements(&f);
                let field = |v: Option<f64>, decimals: usize| {
                    v.map_or_else(String::new, |v| format!("{v:.decimals$}"))
                };
                format!(
                    "{:.7},{:.7},{},{},{},{}",
                    f64::from(f.lat_e7) / 1e7,
                    f64::from(f.lon_e7) / 1e7,
                    field(accuracy, 2),
                    field(altitude, 2),
                    field(speed, 2),
                    field(battery, 0)
                )
            },
        );
        out.push_str(&format!(
            "{},{},{},{:.7},{:.7},{:.7},{:.7},{exact}\n",
            r.seq.0,
            iso(r.fix_time_ms),
            r.height.0,
            rect.min().x,
            rect.min().y,
            rect.max().x,
            rect.max().y
        ));
    }
    out
}

/// The records as a GeoJSON FeatureCollection.
pub fn geojson(answer: &VerifiedAnswer) -> String {
    let features: Vec<String> = answer
        .records
        .iter()
        .map(|r| {
            let mut extra = String::new();
            let geometry = match r.exact {
                Some(fix) => {
                    let [accuracy, altitude, speed, battery] = measurements(&fix);
                    // Altitude is a point's third coordinate (RFC 7946); the rest are
                    // properties, named as the importer reads them.
                    for (name, value) in [
                        ("accuracy_m", accuracy),
                        ("speed_m_s", speed),
                        ("battery_percent", battery),
                    ] {
                        if let Some(v) = value {
                            extra.push_str(&format!(",\"{name}\":{v}"));
                        }
                    }
                    format!(
                        "{{\"type\":\"Point\",\"coordinates\":[{:.7},{:.7}{}]}}",
                        f64::from(fix.lon_e7) / 1e7,
                        f64::from(fix.lat_e7) / 1e7,
                        altitude.map_or_else(String::new, |a| format!(",{a}"))
                    )
                }
                None => {
                    let rect = r.cell.rect();
                    let (w, s, e, n) = (rect.min().x, rect.min().y, rect.max().x, rect.max().y);
                    format!(
                        "{{\"type\":\"Polygon\",\"coordinates\":[[[{w:.7},{s:.7}],[{e:.7},{s:.7}],[{e:.7},{n:.7}],[{w:.7},{n:.7}],[{w:.7},{s:.7}]]]}}"
                    )
                }
            };
            format!(
                "{{\"type\":\"Feature\",\"geometry\":{geometry},\"properties\":{{\"seq\":{},\"time\":\"{}\",\"height\":{}{extra}}}}}",
                r.seq.0,
                iso(r.fix_time_ms),
                r.height.0
            )
        })
        .collect();
    format!(
        "{{\"type\":\"FeatureCollection\",\"features\":[{}]}}",
        features.join(",")
    )
}

#[cfg(test)]
mod tests {
    use bmpls_client::Seen;
    use bmpls_client::import::{Format, parse};
    use bmpls_grid::CellIndex;
    use bmpls_types::{
        BoundedString, BoundedVec, CarerId, Epoch, ExactFix, Grant, Height, LevelIndex, PatientId,
        Seq, SignatureBytes, Trigger,
    };

    use super::*;

    #[test]
    fn rates_print_as_whole_numbers() {
        assert_eq!(rate(3_587.605_7), "3588/s");
        assert_eq!(rate(2.345), "2.3/s");
        progress_style("fixes committed").expect("the template parses");
    }

    fn answer(exact: bool) -> VerifiedAnswer {
        let records = (0..5u64)
            .map(|i| {
                let (lat, lon) = (52.3731 + 0.0001 * i as f64, 4.8922 - 0.0002 * i as f64);
                Seen {
                    seq: Seq(i + 1),
                    fix_time_ms: 1_700_000_000_000 + 30_000 * i,
                    height: Height(10 + i),
                    cell: CellIndex::from_lon_lat(lon, lat, 16).expect("cell"),
                    // The first fix carries no measurement (as a GPX point without them).
                    exact: exact.then(|| ExactFix {
                        lat_e7: (lat * 1e7).round() as i32,
                        lon_e7: (lon * 1e7).round() as i32,
                        accuracy_cm: if i == 0 { 0 } else { 500 + 25 * i as u32 },
                        altitude_cm: if i == 0 { 0 } else { -150 + 300 * i as i32 },
                        speed_cm_s: if i == 0 { 0 } else { 125 * i as u32 },
                        battery_percent: if i == 0 { 0 } else { 90 - i as u8 },
                        trigger: Trigger::Periodic,
                        fix_time_ms: 1_700_000_000_000 + 30_000 * i,
                    }),
                }
            })
            .collect();
        VerifiedAnswer {
            at_height: Height(20),
            grant: Grant {
                patient: PatientId([1; 16]),
                carer: CarerId([2; 16]),
                level: LevelIndex(0),
                data_from: Epoch(0),
                data_to: Epoch(1),
                valid_from_ms: 0,
                valid_until_ms: 1,
                purpose: BoundedString::new(String::new()).expect("empty"),
                wrapped_keys: BoundedVec::new(Vec::new()).expect("empty"),
                sig: SignatureBytes::UNSIGNED,
            },
            epoch_length_ms: 86_400_000,
            records,
            more: false,
        }
    }

    #[test]
    fn exact_fixes_exported_as_geojson_import_back_unchanged() {
        let exported = answer(true);
        let imported = parse(
            &geojson(&exported),
            Format::GeoJson,
            None,
            1_800_000_000_000,
        )
        .expect("parses");
        assert!(imported.problems.is_empty(), "{:?}", imported.problems);
        assert_eq!(imported.fixes.len(), exported.records.len());
        for ((_, fix), seen) in imported.fixes.iter().zip(&exported.records) {
            let exact = seen.exact.expect("exact");
            assert_eq!(fix.fix_time_ms, seen.fix_time_ms);
            assert_eq!((fix.lat * 1e7).round() as i32, exact.lat_e7);
            assert_eq!((fix.lon * 1e7).round() as i32, exact.lon_e7);
            assert_eq!((fix.accuracy_m * 100.0).round() as u32, exact.accuracy_cm);
            assert_eq!((fix.altitude_m * 100.0).round() as i32, exact.altitude_cm);
            assert_eq!((fix.speed_m_s * 100.0).round() as u32, exact.speed_cm_s);
            assert_eq!(fix.battery_percent, exact.battery_percent);
        }
    }

    #[test]
    fn exact_fixes_show_what_they_carry_and_nothing_they_lack() {
        let answer = answer(true);
        let fix = |i: usize| answer.records[i].exact.expect("exact");
        assert_eq!(
            measured(&fix(0)),
            "",
            "no '±0.0 m' for a fix without accuracy"
        );
        assert_eq!(
            measured(&fix(2)),
            "  ±5.5 m  alt 4.5 m  2.5 m/s  battery 88%"
        );
        let text = csv(&answer);
        let rows: Vec<&str> = text.lines().collect();
        assert!(
            rows[0].ends_with(",lat,lon,accuracy_m,altitude_m,speed_m_s,battery_percent"),
            "{}",
            rows[0]
        );
        assert!(
            rows[1].ends_with(",52.3731000,4.8922000,,,,"),
            "{}",
            rows[1]
        );
        assert!(rows[3].ends_with(",5.50,4.50,2.50,88"), "{}", rows[3]);
    }

    #[test]
    fn cells_export_as_polygons_and_csv_rows_and_do_not_import_as_fixes() {
        let exported = answer(false);
        let imported = parse(
            &geojson(&exported),
            Format::GeoJson,
            None,
            1_800_000_000_000,
        )
        .expect("parses");
        assert!(imported.fixes.is_empty(), "a cell is not a fix");
        assert_eq!(imported.problems.len(), exported.records.len());
        let text = csv(&exported);
        let rows: Vec<&str> = text.lines().collect();
        assert_eq!(rows.len(), 1 + exported.records.len());
        assert!(rows[0].starts_with("seq,time,height,west,south,east,north"));
        assert!(rows[1].starts_with("1,2023-11-14T22:13:20.000Z,10,"));
        assert!(
            rows[1].ends_with(",,,,,,"),
            "no exact fix in a cell row: {}",
            rows[1]
        );
    }
}

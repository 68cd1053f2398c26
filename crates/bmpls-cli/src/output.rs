//! How `bmpls query` prints a verified answer: a table, GeoJSON or CSV.

use bmpls_client::VerifiedAnswer;

use crate::carer::{Format, iso};

/// Prints `answer` in `format`; `depth` is the level's cell depth, for the table.
pub(crate) fn print_answer(answer: &VerifiedAnswer, format: Format, depth: u8) {
    match format {
        Format::Table => {
            println!(
                "{} records, verified against the commit certificates (chain height {}){}",
                answer.records.len(),
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
                        "{:>6}  {}  height {:>6}  lat {:.7} lon {:.7}  ±{:.1} m",
                        r.seq.0,
                        iso(r.fix_time_ms),
                        r.height.0,
                        f64::from(fix.lat_e7) / 1e7,
                        f64::from(fix.lon_e7) / 1e7,
                        f64::from(fix.accuracy_cm) / 100.0
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

/// The records as CSV (a header line, then one row per record).
pub fn csv(answer: &VerifiedAnswer) -> String {
    let mut out = String::from("seq,time,height,west,south,east,north,lat,lon,accuracy_m\n");
    for r in &answer.records {
        let rect = r.cell.rect();
        let exact = r.exact.map_or_else(
            || ",,".to_string(),
            |f| {
                format!(
                    "{:.7},{:.7},{:.2}",
                    f64::from(f.lat_e7) / 1e7,
                    f64::from(f.lon_e7) / 1e7,
                    f64::from(f.accuracy_cm) / 100.0
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
            let geometry = match r.exact {
                Some(fix) => format!(
                    "{{\"type\":\"Point\",\"coordinates\":[{:.7},{:.7}]}}",
                    f64::from(fix.lon_e7) / 1e7,
                    f64::from(fix.lat_e7) / 1e7
                ),
                None => {
                    let rect = r.cell.rect();
                    let (w, s, e, n) = (rect.min().x, rect.min().y, rect.max().x, rect.max().y);
                    format!(
                        "{{\"type\":\"Polygon\",\"coordinates\":[[[{w:.7},{s:.7}],[{e:.7},{s:.7}],[{e:.7},{n:.7}],[{w:.7},{n:.7}],[{w:.7},{s:.7}]]]}}"
                    )
                }
            };
            format!(
                "{{\"type\":\"Feature\",\"geometry\":{geometry},\"properties\":{{\"seq\":{},\"time\":\"{}\",\"height\":{}}}}}",
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

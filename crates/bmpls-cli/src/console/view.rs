//! What the console shows, built from verified answers only: the caseload (one row per patient
//! under a standing grant, with the latest position at the granted level) and a history (the
//! records of a window and the distinct cells they fall in). Pure: no I/O, no clock.

use std::collections::BTreeMap;

use serde::Serialize;

use bmpls_client::{Seen, VerifiedAnswer};
use bmpls_net::GrantSummary;

use super::fences::Fences;

/// A cell's rectangle in degrees.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Bounds {
    /// West edge (longitude).
    pub w: f64,
    /// South edge (latitude).
    pub s: f64,
    /// East edge.
    pub e: f64,
    /// North edge.
    pub n: f64,
}

/// The exact fix, which only an exact grant shows.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Exact {
    /// Latitude, degrees.
    pub lat: f64,
    /// Longitude, degrees.
    pub lon: f64,
    /// Accuracy radius in metres (absent when the fix carries none).
    pub accuracy_m: Option<f64>,
    /// Battery charge in per cent (absent when the fix carries none).
    pub battery_percent: Option<u8>,
}

/// One verified record as the console draws it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Position {
    /// Its sequence number.
    pub seq: u64,
    /// When the fix was taken, ms since the Unix epoch.
    pub time_ms: u64,
    /// The block that committed it.
    pub height: u64,
    /// The cell at the query's level.
    pub cell: Bounds,
    /// The exact fix, under an exact grant.
    pub exact: Option<Exact>,
}

/// A cell's rectangle, as the page draws it.
pub fn bounds(cell: &bmpls_grid::CellIndex) -> Bounds {
    let rect = cell.rect();
    Bounds {
        w: rect.min().x,
        s: rect.min().y,
        e: rect.max().x,
        n: rect.max().y,
    }
}

/// A verified record for the map and the table.
pub fn position(seen: &Seen) -> Position {
    Position {
        seq: seen.seq.0,
        time_ms: seen.fix_time_ms,
        height: seen.height.0,
        cell: bounds(&seen.cell),
        exact: seen.exact.map(|fix| Exact {
            lat: f64::from(fix.lat_e7) / 1e7,
            lon: f64::from(fix.lon_e7) / 1e7,
            // A sealed fix has no "absent" mark: 0 is what a reporter without it writes.
            accuracy_m: (fix.accuracy_cm > 0).then(|| f64::from(fix.accuracy_cm) / 100.0),
            battery_percent: (fix.battery_percent > 0).then_some(fix.battery_percent),
        }),
    }
}

/// One patient of the caseload.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Row {
    /// The patient's pseudonym, hex.
    pub patient: String,
    /// The grant relied on, hex.
    pub grant: String,
    /// The granted level's name.
    pub level: String,
    /// Until when the grant may be used, ms since the Unix epoch.
    pub valid_until_ms: u64,
    /// The latest record of the grant's data window, verified.
    pub latest: Option<Position>,
    /// How old the latest fix is at `now_ms`, in seconds.
    pub age_s: Option<u64>,
    /// Why there is no latest position (no record yet, a refusal, no validator answering).
    pub problem: Option<String>,
    /// The patient's standing fences, each with the state its latest alarm says.
    pub fences: Fences,
}

/// The grant a patient's row relies on, among the standing ones this carer holds of them: the
/// one whose data reaches latest, the finest level on a tie.
pub fn grants_by_patient(standing: &[GrantSummary]) -> Vec<&GrantSummary> {
    let mut best: BTreeMap<[u8; 16], &GrantSummary> = BTreeMap::new();
    for grant in standing {
        best.entry(grant.patient.0)
            .and_modify(|held| {
                if (grant.data_to, std::cmp::Reverse(grant.level.0))
                    > (held.data_to, std::cmp::Reverse(held.level.0))
                {
                    *held = grant;
                }
            })
            .or_insert(grant);
    }
    best.into_values().collect()
}

/// A caseload row from a grant, the verified answer to its `Last` query (or why there is
/// none), the fence states and the time now.
pub fn row(
    grant: &GrantSummary,
    level: &str,
    latest: Result<&VerifiedAnswer, String>,
    fences: Fences,
    now_ms: u64,
) -> Row {
    let (latest, problem) = match latest {
        Ok(answer) => match answer.records.last() {
            Some(seen) => (Some(position(seen)), None),
            None => (
                None,
                Some("no record in the granted window yet".to_string()),
            ),
        },
        Err(why) => (None, Some(why)),
    };
    Row {
        patient: hex::encode(grant.patient.0),
        grant: hex::encode(grant.grant.0),
        level: level.to_string(),
        valid_until_ms: grant.valid_until_ms,
        age_s: latest
            .as_ref()
            .map(|p| now_ms.saturating_sub(p.time_ms) / 1000),
        latest,
        problem,
        fences,
    }
}

/// A distinct cell of a history and how many records fell in it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CellCount {
    /// The cell.
    pub cell: Bounds,
    /// Records in it.
    pub records: usize,
}

/// A history: the records of a window (or of an area in it) and the cells they fall in.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct History {
    /// The chain height the answer was verified at.
    pub at_height: u64,
    /// The records, in fix-time order.
    pub records: Vec<Position>,
    /// The distinct cells, in the order first seen.
    pub cells: Vec<CellCount>,
    /// Whether the limit cut the answer short.
    pub more: bool,
}

/// The history of a verified answer.
pub fn history(answer: &VerifiedAnswer) -> History {
    let mut order: Vec<(u8, u64)> = Vec::new();
    let mut counts: BTreeMap<(u8, u64), (Bounds, usize)> = BTreeMap::new();
    for seen in &answer.records {
        let key = (seen.cell.depth(), seen.cell.index());
        counts
            .entry(key)
            .and_modify(|(_, n)| *n += 1)
            .or_insert_with(|| {
                order.push(key);
                (bounds(&seen.cell), 1)
            });
    }
    History {
        at_height: answer.at_height.0,
        records: answer.records.iter().map(position).collect(),
        cells: order
            .iter()
            .filter_map(|key| counts.get(key))
            .map(|(cell, records)| CellCount {
                cell: *cell,
                records: *records,
            })
            .collect(),
        more: answer.more,
    }
}

#[cfg(test)]
mod tests {
    use bmpls_grid::CellIndex;
    use bmpls_types::{
        BoundedString, BoundedVec, CarerId, Epoch, ExactFix, Grant, Height, LevelIndex, PatientId,
        Seq, SignatureBytes, Trigger, TxHash,
    };

    use super::*;

    fn seen(i: u64, lat: f64, lon: f64, exact: bool) -> Seen {
        Seen {
            seq: Seq(i),
            fix_time_ms: 1_000_000 + i * 30_000,
            height: Height(10 + i),
            cell: CellIndex::from_lon_lat(lon, lat, 16).expect("cell"),
            exact: exact.then(|| ExactFix {
                lat_e7: (lat * 1e7) as i32,
                lon_e7: (lon * 1e7) as i32,
                accuracy_cm: 450,
                altitude_cm: 0,
                speed_cm_s: 0,
                battery_percent: 0,
                trigger: Trigger::Periodic,
                fix_time_ms: 1_000_000 + i * 30_000,
            }),
        }
    }

    fn answer(records: Vec<Seen>) -> VerifiedAnswer {
        VerifiedAnswer {
            at_height: Height(99),
            grant: Grant {
                patient: PatientId([1; 16]),
                carer: CarerId([2; 16]),
                level: LevelIndex(2),
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

    fn summary(patient: u8, grant: u8, level: u8, data_to: u32) -> GrantSummary {
        GrantSummary {
            patient: PatientId([patient; 16]),
            carer: CarerId([2; 16]),
            grant: TxHash([grant; 32]),
            level: LevelIndex(level),
            data_from: Epoch(0),
            data_to: Epoch(data_to),
            valid_from_ms: 0,
            valid_until_ms: 10,
            standing: true,
        }
    }

    #[test]
    fn a_history_counts_each_distinct_cell_once_in_the_order_first_seen() {
        // Three records in one neighbourhood cell, then two in another, then back.
        let home = (52.3579, 4.8686);
        let park = (52.3641, 4.8828);
        let records = vec![
            seen(1, home.0, home.1, false),
            seen(2, home.0 + 0.0001, home.1, false),
            seen(3, home.0, home.1 + 0.0001, false),
            seen(4, park.0, park.1, false),
            seen(5, park.0, park.1, false),
            seen(6, home.0, home.1, false),
        ];
        let h = history(&answer(records));
        assert_eq!(h.records.len(), 6);
        let counts: Vec<usize> = h.cells.iter().map(|c| c.records).collect();
        assert_eq!(counts, [4, 2]);
        let first = h.cells[0].cell;
        assert!(first.w < home.1 && home.1 < first.e && first.s < home.0 && home.0 < first.n);
        assert!(
            h.records.iter().all(|r| r.exact.is_none()),
            "no fix at a cell level"
        );
    }

    #[test]
    fn a_row_shows_the_latest_record_its_age_and_only_what_the_grant_reveals() {
        let grant = summary(1, 5, 2, 1);
        let cells = answer(vec![
            seen(1, 52.35, 4.86, false),
            seen(2, 52.36, 4.87, false),
        ]);
        let r = row(
            &grant,
            "neighbourhood",
            Ok(&cells),
            Fences::default(),
            1_000_000 + 90_000,
        );
        let latest = r.latest.expect("latest");
        assert_eq!((latest.seq, r.age_s), (2, Some(30)));
        assert!(latest.exact.is_none());
        let exact = answer(vec![seen(3, 52.36, 4.87, true)]);
        let r = row(&grant, "exact", Ok(&exact), Fences::default(), 0);
        let fix = r.latest.and_then(|p| p.exact).expect("exact");
        assert_eq!((fix.accuracy_m, fix.battery_percent), (Some(4.5), None));
        let r = row(
            &grant,
            "neighbourhood",
            Ok(&answer(Vec::new())),
            Fences::default(),
            0,
        );
        assert!(r.latest.is_none() && r.problem.is_some());
        let r = row(
            &grant,
            "neighbourhood",
            Err("refused".into()),
            Fences::default(),
            0,
        );
        assert_eq!(r.problem.as_deref(), Some("refused"));
    }

    #[test]
    fn each_patient_has_one_row_under_the_grant_reaching_latest_then_finest() {
        let grants = [
            summary(1, 1, 3, 4),
            summary(1, 2, 2, 4),
            summary(1, 3, 1, 2),
            summary(2, 4, 3, 1),
        ];
        let chosen: Vec<u8> = grants_by_patient(&grants)
            .iter()
            .map(|g| g.grant.0[0])
            .collect();
        assert_eq!(chosen, [2, 4]);
    }
}

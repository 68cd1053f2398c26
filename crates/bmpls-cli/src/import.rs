//! `bmpls report --from FILE`: every fix of an OwnTracks, GPX or GeoJSON file, encrypted and
//! signed by the patient's reporter, queued in the outbox (synced) a batch at a time, each
//! batch then sent with what waited before it, with a progress bar.

use std::path::Path;

use anyhow::Context;
use indicatif::ProgressBar;

use bmpls_client::PatientKeystore;
use bmpls_client::import::{Format, MAX_IMPORT_BYTES, parse};
use bmpls_client::outbox::Patience;

use crate::client::{Consortium, runtime};

/// Fixes queued (one sync) and then sent at a time.
const BATCH: usize = 500;

/// Reports every fix of `path` for the patient in `patient`.
pub fn report_file(
    patient: &Path,
    path: &Path,
    passphrase_file: Option<&Path>,
    strict: bool,
    consortium: &Consortium,
    patience: Patience,
) -> anyhow::Result<()> {
    let store = PatientKeystore::open(patient)?;
    let size = std::fs::metadata(path)
        .with_context(|| format!("reading {}", path.display()))?
        .len();
    anyhow::ensure!(
        size as usize <= MAX_IMPORT_BYTES,
        "{} is {size} bytes; at most {MAX_IMPORT_BYTES}",
        path.display()
    );
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    // Bytes that are not UTF-8 spoil only their line (as U+FFFD), like any other bad line.
    let text = String::from_utf8_lossy(&bytes);
    anyhow::ensure!(
        !text
            .trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}' || c == '\0')
            .is_empty(),
        "{}: the file is empty: no fixes to report",
        path.display()
    );
    let passphrase = match passphrase_file {
        Some(file) => Some(zeroize::Zeroizing::new(
            std::fs::read_to_string(file)
                .with_context(|| format!("reading {}", file.display()))?
                .trim_end_matches(['\n', '\r'])
                .to_string(),
        )),
        None => None,
    };
    let name = path.to_string_lossy();
    let format = Format::detect(&name, &text)
        .with_context(|| format!("{}: not OwnTracks JSON, GPX or GeoJSON", path.display()))?;
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as u64;
    let imported = parse(
        &text,
        format,
        passphrase.as_deref().map(String::as_str),
        now_ms,
    )
    .with_context(|| format!("{}", path.display()))?;
    let unit = if format == Format::GeoJson {
        "feature"
    } else {
        "line"
    };
    let units = |n: usize| format!("{n} {unit}{}", if n == 1 { "" } else { "s" });
    for (at, why) in &imported.problems {
        eprintln!("{}: {unit} {at}: {why}", path.display());
    }
    anyhow::ensure!(
        !strict || imported.problems.is_empty(),
        "{} of {} not fixes; refusing the file (--strict)",
        units(imported.problems.len()),
        path.display()
    );
    anyhow::ensure!(
        !imported.fixes.is_empty(),
        "{}: no fixes ({} not fixes)",
        path.display(),
        units(imported.problems.len())
    );
    let mut outbox = crate::send::open(&store)?;
    // A fix waiting in the outbox is as good as reported.
    let mut reported = store.reported_times()?;
    reported.extend(outbox.waiting().map(|r| r.fix_time_ms));
    let (fixes, repeated) = new_fixes(
        imported.fixes.into_iter().map(|(_, f)| f).collect(),
        &reported,
    );
    if fixes.is_empty() {
        println!(
            "{}: every fix was already reported ({} skipped)",
            path.display(),
            plural(repeated, "fix", "fixes")
        );
        return Ok(());
    }

    let mut reporter = store.reporter(&consortium.chain()?)?;
    consortium.trust()?;
    let first = outbox.next_seq(&store)?;
    let bar = ProgressBar::new(fixes.len() as u64);
    bar.set_style(crate::output::progress_style("fixes queued")?);
    let mut rng = rand::rngs::OsRng;
    let mut next = first;
    let mut delivered = Vec::new();
    let mut sending = true;
    let mut failure = None;
    let mut refused = bmpls_client::outbox::Flushed::default();
    runtime()?.block_on(async {
        let nodes = match consortium.connect(store.reporter_key()).await {
            Ok(nodes) => Some(nodes),
            Err(e) => {
                failure = Some(crate::describe(&e));
                None
            }
        };
        let result = async {
            for chunk in fixes.chunks(BATCH) {
                next = outbox.queue(&store, &mut reporter, chunk, &mut rng)?.end;
                let times: Vec<u64> = chunk.iter().map(|f| f.fix_time_ms).collect();
                store.add_reported_times(&times)?;
                bar.inc(chunk.len() as u64);
                let Some(nodes) = nodes.as_ref().filter(|_| sending) else {
                    continue;
                };
                let flushed = outbox.flush(nodes, patience).await?;
                delivered.extend(flushed.delivered.iter().copied());
                // Once a batch is left waiting, the rest is only queued: the next flush
                // sends it all, in order.
                sending = flushed.waiting == 0 && flushed.refused.is_empty();
                failure.clone_from(&flushed.last_failure);
                if !flushed.refused.is_empty() {
                    refused = flushed;
                    break;
                }
            }
            anyhow::Ok(())
        }
        .await;
        if let Some(nodes) = nodes {
            nodes.close().await;
        }
        result
    })?;
    bar.finish_and_clear();
    let skipped = format!(
        "{} skipped, {} already reported",
        units(imported.problems.len()),
        plural(repeated, "fix", "fixes")
    );
    let ours = crate::send::records(&(first..next).collect::<Vec<u64>>());
    crate::send::refusals(&refused, patient)
        .with_context(|| format!("{ours} queued of {} fixes", fixes.len()))?;
    let waiting = outbox.waiting_len();
    match delivered.last() {
        Some((_, height)) if waiting == 0 => {
            println!("{ours} committed (last at height {height}); {skipped}");
        }
        _ => {
            let flushed = bmpls_client::outbox::Flushed {
                waiting,
                last_failure: failure,
                ..Default::default()
            };
            println!(
                "{ours} queued ({} committed); {skipped}\n  {}",
                delivered.len(),
                crate::send::still_waiting(&flushed, patient)
            );
        }
    }
    Ok(())
}

/// The fixes to report, in fix-time order (sequence numbers follow fix time, as a phone would
/// have reported them), and how many were left out: a fix whose time was already reported
/// (the same file imported again) or that repeats one before it in the file is the same fix.
fn new_fixes(
    mut fixes: Vec<bmpls_client::Fix>,
    reported: &std::collections::BTreeSet<u64>,
) -> (Vec<bmpls_client::Fix>, usize) {
    fixes.sort_by_key(|f| f.fix_time_ms);
    let before = fixes.len();
    fixes.dedup_by_key(|f| f.fix_time_ms);
    fixes.retain(|f| !reported.contains(&f.fix_time_ms));
    let left_out = before - fixes.len();
    (fixes, left_out)
}

/// `n` and the noun in the number it needs.
pub(crate) fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(fix_time_ms: u64) -> bmpls_client::Fix {
        bmpls_client::Fix {
            lat: 52.37,
            lon: 4.89,
            accuracy_m: 5.0,
            altitude_m: 0.0,
            speed_m_s: 0.0,
            battery_percent: 50,
            trigger: bmpls_types::Trigger::Periodic,
            fix_time_ms,
        }
    }

    #[test]
    fn fixes_already_reported_or_repeated_are_left_out_and_counted() {
        let file = vec![at(30), at(10), at(20), at(10)];
        let (fixes, left_out) = new_fixes(file.clone(), &Default::default());
        let times: Vec<u64> = fixes.iter().map(|f| f.fix_time_ms).collect();
        assert_eq!((times, left_out), (vec![10, 20, 30], 1));
        // The same file again, after its fixes were reported: nothing new.
        let reported = [10, 20, 30].into_iter().collect();
        let (fixes, left_out) = new_fixes(file, &reported);
        assert_eq!((fixes.len(), left_out), (0, 4));
        let (fixes, left_out) = new_fixes(vec![at(20), at(40)], &reported);
        assert_eq!((fixes.len(), left_out), (1, 1));
        assert_eq!(plural(1, "fix", "fixes"), "1 fix");
        assert_eq!(plural(2, "fix", "fixes"), "2 fixes");
    }
}

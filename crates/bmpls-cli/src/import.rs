//! `bmpls report --from FILE`: every fix of an OwnTracks, GPX or GeoJSON file, encrypted and
//! signed by the patient's reporter and submitted in batches, with a progress bar.

use std::path::Path;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};

use bmpls_client::PatientKeystore;
use bmpls_client::import::{Format, MAX_IMPORT_BYTES, parse};
use bmpls_net::Submitted;
use bmpls_types::{Seq, Transaction};

use crate::client::{Consortium, runtime};

/// Fixes per submission.
const BATCH: usize = 500;

/// Reports every fix of `path` for the patient in `patient`.
pub fn report_file(
    patient: &Path,
    path: &Path,
    passphrase_file: Option<&Path>,
    strict: bool,
    consortium: &Consortium,
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
    let mut fixes: Vec<_> = imported.fixes.into_iter().map(|(_, f)| f).collect();
    // Sequence numbers follow fix time, as a phone would have reported them.
    fixes.sort_by_key(|f| f.fix_time_ms);

    let mut reporter = store.reporter()?;
    let first = store.next_seq()?;
    let bar = ProgressBar::new(fixes.len() as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{elapsed_precise} [{bar:40}] {pos}/{len} fixes committed ({per_sec})",
        )?
        .progress_chars("=> "),
    );
    let mut rng = rand::rngs::OsRng;
    let mut next = first;
    let mut last_height = 0;
    runtime()?.block_on(async {
        let nodes = consortium.connect(store.reporter_key())?;
        let result = async {
            for chunk in fixes.chunks(BATCH) {
                let mut batch = Vec::with_capacity(chunk.len());
                for (i, fix) in chunk.iter().enumerate() {
                    let record = reporter
                        .build(fix, Seq(next + i as u64), &mut rng)
                        .with_context(|| format!("the fix at {} ms", fix.fix_time_ms))?;
                    batch.push(Transaction::Report(record));
                }
                for outcome in nodes.submit(batch).await? {
                    match outcome {
                        Submitted::Committed { height, .. } => {
                            next += 1;
                            last_height = height;
                        }
                        Submitted::Refused { code, reason } => {
                            store.set_next_seq(next)?;
                            anyhow::bail!("record {next} refused ({code:?}): {}", reason.as_str());
                        }
                    }
                }
                store.set_next_seq(next)?;
                bar.inc(chunk.len() as u64);
            }
            anyhow::Ok(())
        }
        .await;
        nodes.close().await;
        result
    })?;
    bar.finish_and_clear();
    println!(
        "records {first} to {} committed (last at height {last_height}); {} skipped",
        next - 1,
        units(imported.problems.len())
    );
    Ok(())
}

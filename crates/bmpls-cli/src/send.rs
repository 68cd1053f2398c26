//! The reporter's side of the outbox on the command line: `bmpls report` queues each record
//! (synced) and then sends the backlog, `bmpls report --flush` sends it, `bmpls outbox` shows
//! what waits and what was refused. A report that no validator answers is queued, not lost:
//! the command says so and exits 0.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::Args;

use bmpls_client::outbox::{Flushed, Patience, ReportQueue};
use bmpls_client::{Outbox, PatientKeystore};
use bmpls_types::ChainId;

use crate::client::{Consortium, report_refused, runtime};

/// Opens the keystore's outbox, saying on stderr what it repaired.
pub(crate) fn open(store: &PatientKeystore) -> anyhow::Result<Outbox> {
    let outbox = Outbox::open(store)?;
    if let Some(recovery) = outbox.recovery() {
        eprintln!("outbox: {recovery}");
    }
    Ok(outbox)
}

/// Opens the keystore's outbox with a reporter signing for `chain`, saying on stderr what it
/// repaired.
pub(crate) fn open_queue(store: PatientKeystore, chain: &ChainId) -> anyhow::Result<ReportQueue> {
    let queue = ReportQueue::open(store, chain)?;
    if let Some(recovery) = queue.outbox().recovery() {
        eprintln!("outbox: {recovery}");
    }
    Ok(queue)
}

/// Sends what waits in `outbox` to the consortium, as `patience` allows. A consortium that
/// cannot even be dialled (a host name that does not resolve offline) is one more validator
/// that did not answer.
pub(crate) async fn send(
    outbox: &mut Outbox,
    store: &PatientKeystore,
    consortium: &Consortium,
    patience: Patience,
) -> anyhow::Result<Flushed> {
    if outbox.waiting_len() == 0 {
        return Ok(Flushed::default());
    }
    let nodes = match consortium.connect(store.reporter_key()).await {
        Ok(nodes) => nodes,
        Err(e) => {
            return Ok(Flushed {
                waiting: outbox.waiting_len(),
                last_failure: Some(crate::describe(&e)),
                ..Flushed::default()
            });
        }
    };
    let flushed = outbox.flush(&nodes, patience).await;
    nodes.close().await;
    Ok(flushed?)
}

/// "record 5" or "records 5 to 9" (of numbers in order; gaps are refusals, told apart).
pub(crate) fn records(seqs: &[u64]) -> String {
    match seqs {
        [] => "no records".into(),
        [one] => format!("record {one}"),
        [first, .., last] => format!("records {first} to {last}"),
    }
}

/// The refusals of a flush, on stderr, and an error naming the first (with the way forward).
pub(crate) fn refusals(flushed: &Flushed, patient: &Path) -> anyhow::Result<()> {
    let mut first = None;
    for (seq, code, reason) in &flushed.refused {
        let error = report_refused(*seq, *code, reason, patient);
        if first.is_none() {
            first = Some(error);
        } else {
            eprintln!("{error}");
        }
    }
    match first {
        None => Ok(()),
        Some(error) => Err(error.context(format!(
            "kept aside in the outbox (bmpls outbox --patient {})",
            patient.display()
        ))),
    }
}

/// What waits, and why it was not sent, as one line.
pub(crate) fn still_waiting(flushed: &Flushed, patient: &Path) -> String {
    format!(
        "{} waiting in the outbox ({}); send with: bmpls report --flush --patient {}",
        crate::import::plural(flushed.waiting, "record", "records"),
        flushed.last_failure.as_deref().unwrap_or("not sent yet"),
        patient.display()
    )
}

/// The patience of `--wait-s`: 0 is one attempt.
pub(crate) fn patience(wait_s: u64) -> Patience {
    if wait_s == 0 {
        Patience::once()
    } else {
        Patience::up_to(Duration::from_secs(wait_s))
    }
}

/// `bmpls report --flush`: the backlog, sent. Fails when records still wait or were refused.
pub(crate) fn flush(patient: &Path, wait_s: u64, consortium: &Consortium) -> anyhow::Result<()> {
    let store = PatientKeystore::open(patient)?;
    let mut outbox = open(&store)?;
    if outbox.waiting_len() == 0 {
        println!("nothing waits in the outbox");
        return Ok(());
    }
    let flushed = runtime()?.block_on(send(&mut outbox, &store, consortium, patience(wait_s)))?;
    if let Some((_, height)) = flushed.delivered.last() {
        let seqs: Vec<u64> = flushed.delivered.iter().map(|(s, _)| *s).collect();
        println!("{} committed (last at height {height})", records(&seqs));
    }
    refusals(&flushed, patient)?;
    anyhow::ensure!(flushed.waiting == 0, "{}", still_waiting(&flushed, patient));
    Ok(())
}

/// Arguments of `bmpls outbox`.
#[derive(Debug, Args)]
pub struct OutboxArgs {
    /// The patient's keystore.
    #[arg(long)]
    patient: PathBuf,
    /// Forget the refused records, after listing them (they no longer count against the
    /// outbox's bounds).
    #[arg(long)]
    discard_refused: bool,
}

fn utc(ms: u64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| format!("{ms} ms"))
}

/// `bmpls outbox`: what waits, what was refused and why.
pub fn show(args: OutboxArgs) -> anyhow::Result<()> {
    let store = PatientKeystore::open(&args.patient)?;
    let mut outbox = open(&store).context("opening the outbox")?;
    let waiting: Vec<(u64, u64)> = outbox.waiting().map(|r| (r.seq.0, r.fix_time_ms)).collect();
    match (waiting.first(), waiting.last()) {
        (Some((_, from)), Some((_, to))) => println!(
            "{} waiting: {} ({} bytes), fixes from {} to {}",
            crate::import::plural(waiting.len(), "record", "records"),
            records(&waiting.iter().map(|(seq, _)| *seq).collect::<Vec<_>>()),
            outbox.live_bytes(),
            utc(*from),
            utc(*to)
        ),
        _ => println!("nothing waits"),
    }
    let refused = outbox.refused();
    if refused.is_empty() {
        println!("nothing refused");
    } else {
        println!(
            "{} refused, kept aside:",
            crate::import::plural(refused.len(), "record", "records")
        );
        for r in &refused {
            println!(
                "  record {} (fix at {}): {:?}: {}",
                r.record.seq.0,
                utc(r.record.fix_time_ms),
                r.code,
                r.reason
            );
        }
    }
    if args.discard_refused && !refused.is_empty() {
        let gone = outbox.discard_refused()?;
        println!(
            "discarded {}",
            crate::import::plural(gone.len(), "refused record", "refused records")
        );
    }
    Ok(())
}

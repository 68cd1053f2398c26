//! Sending the outbox: the waiting records in sequence order, in batches of at most
//! [`MAX_SUBMIT_BATCH`] records and [`MAX_BATCH_BYTES`], each outcome written back before the
//! next batch; while no validator answers (or one answers that it is busy), waiting with
//! exponential backoff for as long as the caller's [`Patience`] allows.

use std::time::Duration;

use bmpls_net::limits::MAX_SUBMIT_BATCH;
use bmpls_net::{RefusalCode, Submitted};
use bmpls_types::{Canonical, Transaction};

use super::{Outbox, OutboxError};
use crate::Nodes;

/// Most encoded bytes of records in one submission, well inside a request's limit.
pub const MAX_BATCH_BYTES: usize = 2 << 20;

const _: () = assert!(MAX_BATCH_BYTES + 64 * 1024 <= bmpls_net::limits::MAX_REQUEST_BYTES);

/// Exponential backoff between attempts while no validator answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// The first wait.
    pub first: Duration,
    /// The longest wait.
    pub max: Duration,
}

impl Default for Backoff {
    /// 500 ms, doubling up to 30 s: a phone out of signal wakes at most twice a minute.
    fn default() -> Self {
        Self {
            first: Duration::from_millis(500),
            max: Duration::from_secs(30),
        }
    }
}

impl Backoff {
    /// The wait before attempt `failures + 1`, after `failures` failed attempts in a row.
    pub fn wait(&self, failures: u32) -> Duration {
        let factor = 1u32
            .checked_shl(failures.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.first.saturating_mul(factor).min(self.max)
    }
}

/// How long [`Outbox::flush`] keeps trying when no validator answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Patience {
    /// Give up after this long in all (none: one attempt only).
    pub for_at_most: Option<Duration>,
    /// The waits between attempts.
    pub backoff: Backoff,
}

impl Patience {
    /// One attempt: what `bmpls report` does (a fix is queued either way).
    pub fn once() -> Self {
        Self {
            for_at_most: None,
            backoff: Backoff::default(),
        }
    }

    /// Keep trying for up to `limit`.
    pub fn up_to(limit: Duration) -> Self {
        Self {
            for_at_most: Some(limit),
            backoff: Backoff::default(),
        }
    }
}

/// What a flush did.
#[derive(Debug, Default)]
pub struct Flushed {
    /// Records committed (or found committed already), with their heights, in order.
    pub delivered: Vec<(u64, u64)>,
    /// Records refused by this flush: sequence number, code and reason.
    pub refused: Vec<(u64, RefusalCode, String)>,
    /// Records still waiting.
    pub waiting: usize,
    /// Why the last attempt did not deliver everything, if it did not.
    pub last_failure: Option<String>,
    /// Attempts made (submissions sent, or tried while none answered).
    pub attempts: u32,
}

/// What the chain's answer means for one record.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Committed at this height.
    Delivered(u64),
    /// Not now: the node is full, shutting down or timed out, or an earlier record of the
    /// batch was not taken. Sent again later.
    Later(String),
    /// Refused for good: kept aside.
    Refused(RefusalCode, String),
}

/// The verdicts of one batch's outcomes: after the first record that must wait, every later
/// one waits too (sequence numbers are consecutive: it cannot commit before it).
pub(crate) fn verdicts(outcomes: &[Submitted]) -> Vec<Verdict> {
    let mut later = false;
    outcomes
        .iter()
        .map(|outcome| {
            if later {
                return Verdict::Later("an earlier record must be sent first".into());
            }
            match outcome {
                Submitted::Committed { height, .. } => Verdict::Delivered(*height),
                Submitted::Refused { code, reason } => match code {
                    RefusalCode::Full | RefusalCode::Timeout | RefusalCode::ShuttingDown => {
                        later = true;
                        Verdict::Later(format!("{code:?}: {}", reason.as_str()))
                    }
                    code => Verdict::Refused(*code, reason.as_str().to_string()),
                },
            }
        })
        .collect()
}

/// What one batch's outcomes did ([`Outbox::apply_outcomes`]).
#[derive(Debug, Default)]
pub struct Step {
    /// Records committed (or found committed already), with their heights.
    pub delivered: Vec<(u64, u64)>,
    /// Records refused for good: sequence number, code and reason.
    pub refused: Vec<(u64, RefusalCode, String)>,
    /// Why some records of the batch must wait, if some must.
    pub later: Option<String>,
}

impl Step {
    /// Whether the batch settled any record.
    pub fn progressed(&self) -> bool {
        !self.delivered.is_empty() || !self.refused.is_empty()
    }
}

impl Outbox {
    /// The next batch to send: the first waiting records, in order, at most
    /// [`MAX_SUBMIT_BATCH`] and [`MAX_BATCH_BYTES`]. For a caller that sends it itself (without
    /// holding the outbox meanwhile) and hands the outcomes to [`Outbox::apply_outcomes`].
    pub fn next_batch(&self) -> Vec<Transaction> {
        let mut bytes = 0;
        let mut batch = Vec::new();
        for record in self.waiting().take(MAX_SUBMIT_BATCH) {
            let len = record.encoded_len();
            if !batch.is_empty() && bytes + len > MAX_BATCH_BYTES {
                break;
            }
            bytes += len;
            batch.push(Transaction::Report(record.clone()));
        }
        batch
    }

    /// Writes back (synced) the outcomes a node gave for `batch` (as [`Outbox::next_batch`]
    /// gave it): committed records leave, refused ones are kept aside with their reason, the
    /// rest wait. Outcomes that do not match the batch one for one settle nothing.
    pub fn apply_outcomes(
        &mut self,
        batch: &[Transaction],
        outcomes: &[Submitted],
    ) -> Result<Step, OutboxError> {
        let mut step = Step::default();
        if outcomes.len() != batch.len() {
            step.later = Some(format!(
                "the node answered {} outcomes for {} records",
                outcomes.len(),
                batch.len()
            ));
            return Ok(step);
        }
        for (tx, verdict) in batch.iter().zip(verdicts(outcomes)) {
            let Transaction::Report(record) = tx else {
                continue;
            };
            let seq = record.seq.0;
            match verdict {
                Verdict::Delivered(height) => step.delivered.push((seq, height)),
                Verdict::Refused(code, reason) => step.refused.push((seq, code, reason)),
                Verdict::Later(why) => {
                    step.later.get_or_insert(format!("record {seq}: {why}"));
                }
            }
        }
        self.settle(&step.delivered, &step.refused)?;
        Ok(step)
    }

    /// Sends every waiting record, in order, in batches, writing each outcome back (synced)
    /// before the next batch. While no validator answers, waits and tries again as `patience`
    /// allows. A refused record is kept aside with its reason ([`Outbox::refused`]); one
    /// already committed counts as delivered. Errors only when the outbox itself fails.
    pub async fn flush(
        &mut self,
        nodes: &Nodes,
        patience: Patience,
    ) -> Result<Flushed, OutboxError> {
        let started = tokio::time::Instant::now();
        let mut out = Flushed::default();
        let mut failures = 0u32;
        loop {
            let batch = self.next_batch();
            if batch.is_empty() {
                out.last_failure = None;
                break;
            }
            out.attempts += 1;
            let failure = match nodes.submit(batch.clone()).await {
                Ok(outcomes) => {
                    let step = self.apply_outcomes(&batch, &outcomes)?;
                    let progressed = step.progressed();
                    out.delivered.extend(step.delivered);
                    out.refused.extend(step.refused);
                    match step.later {
                        // Progress, then a wait: try again at once, as after a full batch.
                        None => {
                            failures = 0;
                            continue;
                        }
                        Some(_) if progressed => {
                            failures = 0;
                            continue;
                        }
                        Some(why) => why,
                    }
                }
                Err(e) => e.to_string(),
            };
            out.last_failure = Some(failure);
            failures += 1;
            let wait = patience.backoff.wait(failures);
            match patience.for_at_most {
                Some(limit) if started.elapsed() + wait <= limit => tokio::time::sleep(wait).await,
                _ => break,
            }
        }
        out.waiting = self.waiting_len();
        Ok(out)
    }
}

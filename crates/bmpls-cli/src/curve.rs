//! `bmpls bench ingest --curve`: the cluster's saturation curve, open loop.
//!
//! For each offered load (records per second) in turn, submissions of `--batch` records are
//! *scheduled* at a fixed interval for `--step-s` seconds, whatever the cluster does, and handed
//! round-robin to the phones; each phone sends its submissions one after the other, in sequence
//! order, as a phone does. Latency runs from a submission's scheduled time to its
//! acknowledgement, so time spent queued behind a slow cluster counts (no coordinated
//! omission). A step ends when everything it scheduled is acknowledged; the next starts then.
//! Below saturation the committed rate follows the offered one and latency stays flat; past it,
//! the committed rate levels off and latency grows with the queue: where it turns is the
//! operator's capacity figure.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::sync::mpsc;

use bmpls_client::Nodes;
use bmpls_net::Submitted;
use bmpls_types::Transaction;

use crate::ingest::{Phone, percentile};

/// One submission handed to a phone: when it was due, and its records.
struct Due {
    at: Instant,
    records: Vec<Transaction>,
}

/// What a phone reports of one submission (of the current step: a step starts only when the
/// last one is answered).
struct Sent {
    latency: Duration,
    done: Instant,
    committed: u64,
    refused: u64,
}

/// One offered load's outcome.
#[derive(Clone, Debug)]
pub(crate) struct Point {
    /// Records per second offered.
    pub(crate) offered: u32,
    /// Records committed per second, from the step's start to its last acknowledgement.
    pub(crate) committed: f64,
    /// Records refused (the cluster full, or a timeout).
    pub(crate) refused: u64,
    /// Latency from scheduled submission to acknowledgement.
    pub(crate) p50: Duration,
    pub(crate) p99: Duration,
}

/// Records needed for `loads` over `step_s` seconds each, in batches of `batch` handed
/// round-robin to `phones`: the same whole number of batches for every phone.
pub(crate) fn records_needed(loads: &[u32], step_s: u64, batch: usize, phones: usize) -> usize {
    let total: usize = loads
        .iter()
        .map(|&load| submissions(load, step_s, batch))
        .sum();
    total.div_ceil(phones) * batch * phones
}

fn submissions(load: u32, step_s: u64, batch: usize) -> usize {
    (u64::from(load) * step_s).div_ceil(batch as u64) as usize
}

/// Runs every step against the cluster at `addrs`; `phones` hold enough records
/// ([`records_needed`]), each phone's in sequence order.
pub(crate) async fn run(
    phones: Vec<Phone>,
    addrs: &[std::net::SocketAddr],
    trust: &bmpls_net::Trust,
    (loads, step_s, batch): (&[u32], u64, usize),
) -> anyhow::Result<Vec<Point>> {
    let (sent_tx, mut sent_rx) = mpsc::unbounded_channel::<Sent>();
    let mut queues = Vec::new();
    let mut records = Vec::new();
    let mut tasks = Vec::new();
    for (r, phone) in phones.into_iter().enumerate() {
        let mut order = addrs.to_vec();
        order.rotate_left(r % addrs.len());
        let nodes = Nodes::new(&order, trust, &phone.key)?;
        let (tx, mut rx) = mpsc::unbounded_channel::<Due>();
        queues.push(tx);
        records.push(phone.records.into_iter());
        let sent_tx = sent_tx.clone();
        tasks.push(tokio::spawn(async move {
            while let Some(due) = rx.recv().await {
                let count = due.records.len() as u64;
                let committed = match nodes.submit(due.records).await {
                    Ok(outcomes) => outcomes
                        .iter()
                        .filter(|o| matches!(o, Submitted::Committed { .. }))
                        .count() as u64,
                    Err(_) => 0,
                };
                let done = Instant::now();
                let _ = sent_tx.send(Sent {
                    latency: done - due.at,
                    done,
                    committed,
                    refused: count - committed,
                });
            }
            nodes.close().await;
        }));
    }
    drop(sent_tx);
    let mut points = Vec::with_capacity(loads.len());
    let mut next_phone = 0;
    for &load in loads {
        let count = submissions(load, step_s, batch);
        let interval = Duration::from_secs_f64(batch as f64 / f64::from(load));
        let start = Instant::now();
        for k in 0..count {
            let at = start + interval.mul_f64(k as f64);
            tokio::time::sleep_until(at.into()).await;
            let phone = next_phone % queues.len();
            next_phone += 1;
            let batch: Vec<Transaction> = records[phone].by_ref().take(batch).collect();
            anyhow::ensure!(!batch.is_empty(), "phone {phone} ran out of records");
            queues[phone]
                .send(Due { at, records: batch })
                .map_err(|_| anyhow::anyhow!("phone {phone} stopped"))?;
        }
        let mut latencies = Vec::with_capacity(count);
        let (mut committed, mut refused, mut last) = (0u64, 0u64, start);
        while latencies.len() < count {
            let sent = sent_rx
                .recv()
                .await
                .context("every phone stopped before its submissions were answered")?;
            latencies.push(sent.latency);
            committed += sent.committed;
            refused += sent.refused;
            last = last.max(sent.done);
        }
        latencies.sort();
        let point = Point {
            offered: load,
            committed: committed as f64 / (last - start).as_secs_f64().max(1e-9),
            refused,
            p50: percentile(&latencies, 0.50),
            p99: percentile(&latencies, 0.99),
        };
        println!(
            "offered {:>6} records/s: committed {:>7.0} records/s ({} refused), latency p50 {:>6.0} ms, p99 {:>6.0} ms",
            point.offered,
            point.committed,
            point.refused,
            point.p50.as_secs_f64() * 1e3,
            point.p99.as_secs_f64() * 1e3
        );
        points.push(point);
    }
    drop(queues);
    for task in tasks {
        task.await?;
    }
    Ok(points)
}

/// The curve as a table in Markdown.
pub(crate) fn table(points: &[Point]) -> String {
    let mut text = String::from(
        "| offered records/s | committed records/s | refused | p50 ms | p99 ms |\n| --- | --- | --- | --- | --- |\n",
    );
    for p in points {
        text.push_str(&format!(
            "| {} | {:.0} | {} | {:.0} | {:.0} |\n",
            p.offered,
            p.committed,
            p.refused,
            p.p50.as_secs_f64() * 1e3,
            p.p99.as_secs_f64() * 1e3
        ));
    }
    text
}

/// The curve as an SVG: committed against offered records/s (the diagonal is "keeps up"), and
/// latency p50 and p99 on a log scale.
pub(crate) fn chart(points: &[Point], title: &str) -> String {
    const W: f64 = 760.0;
    const PANEL: f64 = 260.0;
    const LEFT: f64 = 70.0;
    const RIGHT: f64 = 20.0;
    let plot_w = W - LEFT - RIGHT;
    let max_x = points
        .iter()
        .map(|p| f64::from(p.offered))
        .fold(1.0, f64::max);
    let max_rate = points
        .iter()
        .map(|p| p.committed.max(f64::from(p.offered)))
        .fold(1.0, f64::max);
    let x = |v: f64| LEFT + plot_w * v / max_x;
    let ms = |d: Duration| (d.as_secs_f64() * 1e3).max(1.0);
    let (lo, hi) = points.iter().fold((f64::MAX, 1.0f64), |(lo, hi), p| {
        (lo.min(ms(p.p50)), hi.max(ms(p.p99)))
    });
    let (lo, hi) = (
        lo.min(hi).log10().floor(),
        hi.log10().ceil().max(lo.log10() + 1.0),
    );
    let top1 = 50.0;
    let top2 = top1 + PANEL + 60.0;
    let y_rate = |v: f64| top1 + PANEL - PANEL * v / max_rate;
    let y_ms = |v: f64| top2 + PANEL - PANEL * (v.log10() - lo) / (hi - lo);
    let height = top2 + PANEL + 50.0;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"20\" y=\"24\" font-size=\"15\">{}</text>\n",
        escape(title)
    );
    for (top, label) in [
        (top1, "committed records/s"),
        (top2, "latency, ms (log scale)"),
    ] {
        svg.push_str(&format!(
            "<rect x=\"{LEFT}\" y=\"{top}\" width=\"{plot_w}\" height=\"{PANEL}\" fill=\"none\" stroke=\"#555\"/>\n<text x=\"{LEFT}\" y=\"{}\">{label}</text>\n<text x=\"{}\" y=\"{}\" text-anchor=\"end\">offered records/s</text>\n",
            top - 6.0,
            LEFT + plot_w,
            top + PANEL + 30.0
        ));
    }
    for p in points {
        let px = x(f64::from(p.offered));
        for top in [top1, top2] {
            svg.push_str(&format!(
                "<text x=\"{px:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>\n",
                top + PANEL + 15.0,
                p.offered
            ));
        }
    }
    for tick in 0..=4 {
        let v = max_rate * f64::from(tick) / 4.0;
        svg.push_str(&format!(
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{v:.0}</text>\n",
            LEFT - 6.0,
            y_rate(v) + 4.0
        ));
    }
    let mut decade = lo;
    while decade <= hi {
        let v = 10f64.powf(decade);
        svg.push_str(&format!(
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{v:.0}</text>\n<line x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#ddd\"/>\n",
            LEFT - 6.0,
            y_ms(v) + 4.0,
            LEFT + plot_w,
            y_ms(v),
            y_ms(v)
        ));
        decade += 1.0;
    }
    // "Keeps up": committed = offered.
    svg.push_str(&format!(
        "<line x1=\"{LEFT}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"#bbb\" stroke-dasharray=\"4 4\"/>\n",
        y_rate(0.0),
        x(max_x),
        y_rate(max_x)
    ));
    let line = |values: Vec<(f64, f64)>, colour: &str| {
        let path: Vec<String> = values
            .iter()
            .map(|(px, py)| format!("{px:.1},{py:.1}"))
            .collect();
        let mut out = format!(
            "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{}\"/>\n",
            path.join(" ")
        );
        for (px, py) in values {
            out.push_str(&format!(
                "<circle cx=\"{px:.1}\" cy=\"{py:.1}\" r=\"3\" fill=\"{colour}\"/>\n"
            ));
        }
        out
    };
    svg.push_str(&line(
        points
            .iter()
            .map(|p| (x(f64::from(p.offered)), y_rate(p.committed)))
            .collect(),
        "#1f77b4",
    ));
    svg.push_str(&line(
        points
            .iter()
            .map(|p| (x(f64::from(p.offered)), y_ms(ms(p.p50))))
            .collect(),
        "#2ca02c",
    ));
    svg.push_str(&line(
        points
            .iter()
            .map(|p| (x(f64::from(p.offered)), y_ms(ms(p.p99))))
            .collect(),
        "#d62728",
    ));
    svg.push_str(&format!(
        "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"#2ca02c\">p50</text>\n<text x=\"{:.1}\" y=\"{:.1}\" fill=\"#d62728\">p99</text>\n</svg>\n",
        LEFT + 10.0,
        top2 + 16.0,
        LEFT + 50.0,
        top2 + 16.0
    ));
    svg
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Writes the chart to `path`.
pub(crate) fn write_chart(path: &Path, points: &[Point], title: &str) -> anyhow::Result<()> {
    std::fs::write(path, chart(points, title))
        .with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(offered: u32, committed: f64, p50_ms: u64, p99_ms: u64) -> Point {
        Point {
            offered,
            committed,
            refused: 0,
            p50: Duration::from_millis(p50_ms),
            p99: Duration::from_millis(p99_ms),
        }
    }

    #[test]
    fn the_schedule_covers_every_step_in_whole_batches() {
        assert_eq!(submissions(1_000, 10, 20), 500);
        assert_eq!(submissions(1_001, 1, 20), 51);
        // 1,500 submissions over 7 phones: 215 batches of 20 each.
        assert_eq!(records_needed(&[1_000, 2_000], 10, 20, 7), 215 * 20 * 7);
        assert_eq!(records_needed(&[1_000, 2_000], 10, 20, 1), 30_000);
    }

    #[test]
    fn the_chart_draws_a_point_per_load_on_each_line_and_the_table_a_row() {
        let points = [
            point(2_000, 1_990.0, 40, 90),
            point(4_000, 3_950.0, 60, 150),
            point(8_000, 5_800.0, 900, 2_400),
        ];
        let svg = chart(&points, "a <test>");
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline").count(), 3);
        assert_eq!(svg.matches("<circle").count(), 9);
        assert!(svg.contains("a &lt;test&gt;"));
        let table = table(&points);
        assert_eq!(table.lines().count(), 2 + 3);
        assert!(
            table.contains("| 8000 | 5800 | 0 | 900 | 2400 |"),
            "{table}"
        );
    }
}

//! `bmpls bench privacy`: the leakage-abuse attacks of `bmpls-leakage` on a simulated patient,
//! per storage scheme and level, in metres, beside what each scheme costs (reporter encryption
//! and node comparison per record, record and answer sizes). For researchers comparing
//! order-preserving and order-revealing range queries.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use bmpls_grid::{LevelIndex, LevelSet};
use bmpls_leakage::observe::{Encryptor, Sealed};
use bmpls_leakage::patient::simulate_day;
use bmpls_leakage::{Answer, Figures, Layout, Scheme, Setup, cost, run};
use bmpls_ope::{OpeCipher, OpeParams};
use bmpls_ore::{Domain, OreKey, compare};
use clap::Args;
use rand::{Rng, SeedableRng, rngs::StdRng};

/// Options of `bmpls bench privacy`.
#[derive(Debug, Args)]
pub struct PrivacyBenchArgs {
    /// Days of the simulated patient (a fix every 30 s). 30 takes seconds in a release build;
    /// 365 gives the year-long averaging figure (about a minute and a half).
    #[arg(long, default_value_t = 30)]
    days: u32,
    /// Of those, the days on which carers are attacked too (one decryption per fix and level).
    #[arg(long, default_value_t = 7)]
    carer_days: u32,
    /// Seed of the simulated patient, its keys and every nonce.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Also write the attack figures as an SVG chart to this file.
    #[arg(long)]
    svg: Option<PathBuf>,
    /// Records timed per cost figure.
    #[arg(long, default_value_t = 2_000)]
    samples: usize,
}

/// The costs of one level under each scheme.
struct LevelCost {
    ope_encrypt_us: f64,
    ore_encrypt_us: f64,
    ope_compare_ns: f64,
    ore_compare_ns: f64,
    ore_bytes: usize,
}

/// Runs `bmpls bench privacy`.
pub fn run_privacy(args: &PrivacyBenchArgs) -> anyhow::Result<()> {
    let levels = LevelSet::default_levels();
    let layouts = vec![
        Layout::all_ope(&levels),
        Layout::ope_to_street(&levels),
        Layout::ore_fine(&levels),
    ];
    let carer_levels: Vec<LevelIndex> = (1..levels.len() as u8).map(LevelIndex).collect();
    let setup = Setup {
        seed: args.seed,
        days: args.days.max(1),
        carer_days: args.carer_days.min(args.days.max(1)),
        carer_levels,
        answer: Answer::WholeRecord,
        levels: levels.clone(),
        layouts: layouts.clone(),
    };
    let start = Instant::now();
    let figures = run(&setup).context("the attacks")?;
    let attack_s = start.elapsed().as_secs_f64();
    let costs = level_costs(&levels, args)?;
    let ore_levels: Vec<bool> = (0..levels.len())
        .map(|i| layouts[2].scheme(i) == Scheme::Ore)
        .collect();
    let (reporter_us, ore_reporter_us, sealed) = reporter_cost(&levels, &ore_levels, args)?;

    println!(
        "bmpls bench privacy: seed {}, {} days (carers on {}), a fix every 30 s; attacks took {attack_s:.1} s",
        args.seed, setup.days, setup.carer_days
    );
    println!(
        "Errors in metres (median / p90) against the reported fixes more than 200 m from home.\n"
    );
    println!("Whole records, as a node's disk or a curious validator holds them:");
    println!(
        "{:<11} {:>22} {:>20} {:>14}",
        "scheme", "(a) anchored, home known", "(c) home, averaged", "district cells"
    );
    for f in &figures {
        println!(
            "{:<11} {:>22} {:>20} {:>14}",
            f.layout.name(),
            pair(f.anchored.median_m, f.anchored.p90_m),
            format!(
                "{} ({} days)",
                f.averaged_m.map_or("-".into(), metres_text),
                f.days_averaged
            ),
            metres_text(f.district_scale.median_m),
        );
    }

    let (ope, ore) = (&figures[0], &figures[2]);
    println!(
        "\nPer level: (a) from that level (or the finest orderable coarser one); (b) a carer granted it,\nreceiving whole records (before wire version 2; version 2 views carry nothing finer, so (b) is the\ngranted centre under either scheme); costs per record and level."
    );
    println!(
        "{:<18} {:>17} {:>17} {:>12} {:>9} {:>9} {:>13} {:>11} {:>10}",
        "level",
        "(a) OPE",
        "(a) ORE",
        "(b) granted",
        "(b) OPE",
        "(b) ORE",
        "encrypt µs",
        "compare ns",
        "bytes"
    );
    println!(
        "{:<18} {:>17} {:>17} {:>12} {:>9} {:>9} {:>13} {:>11} {:>10}",
        "", "", "", "cell centre", "", "", "OPE / ORE", "OPE / ORE", "OPE / ORE"
    );
    for (i, level) in levels.levels().iter().enumerate() {
        let carer = |f: &Figures| {
            f.carers
                .iter()
                .find(|c| usize::from(c.level.0) == i)
                .map(|c| (c.granted.median_m, c.attack.median_m))
        };
        let (granted, b_ope) = carer(ope).map_or(("exact fix".into(), "-".into()), |(g, a)| {
            (metres_text(g), metres_text(a))
        });
        let b_ore = carer(ore).map_or("-".into(), |(_, a)| metres_text(a));
        let c = &costs[i];
        println!(
            "{:<18} {:>17} {:>17} {:>12} {:>9} {:>9} {:>13} {:>11} {:>10}",
            format!("{} ({})", level.name, level.depth),
            pair(
                ope.anchored_by_level[i].median_m,
                ope.anchored_by_level[i].p90_m
            ),
            pair(
                ore.anchored_by_level[i].median_m,
                ore.anchored_by_level[i].p90_m
            ),
            granted,
            b_ope,
            b_ore,
            format!("{:.1} / {:.1}", c.ope_encrypt_us, c.ore_encrypt_us),
            format!("{:.0} / {:.0}", c.ope_compare_ns, c.ore_compare_ns),
            format!("{OPE_BYTES} / {}", c.ore_bytes),
        );
    }

    println!("\nPer record (6 levels, sealed and signed):");
    for (layout, us) in [(&layouts[0], reporter_us), (&layouts[2], ore_reporter_us)] {
        let views: Vec<String> = (0..levels.len())
            .map(|i| cost::view_bytes(&sealed, layout, LevelIndex(i as u8)).to_string())
            .collect();
        println!(
            "  {:<4} reporter {us:>6.1} µs/record (Reporter::build); record {} B; answer per record at exact..region: {} B",
            layout.name(),
            cost::record_bytes(&sealed, layout),
            views.join(" / ")
        );
    }

    if let Some(path) = &args.svg {
        std::fs::write(path, chart(&levels, &figures, setup.days))
            .with_context(|| format!("writing {}", path.display()))?;
        println!("\nchart written to {}", path.display());
    }
    Ok(())
}

/// The costs of each level under OPE and ORE, on the simulated patient's own cells.
fn level_costs(levels: &LevelSet, args: &PrivacyBenchArgs) -> anyhow::Result<Vec<LevelCost>> {
    let mut rng = StdRng::seed_from_u64(args.seed ^ 0xc057);
    let fixes = simulate_day(args.seed, 0);
    let samples = args.samples.max(1);
    let mut costs = Vec::with_capacity(levels.len());
    for level in levels.levels() {
        let bits = 2 * level.depth;
        let plaintexts: Vec<u64> = (0..samples)
            .map(|k| {
                let at = fixes[k * 7919 % fixes.len()].at;
                at.cell(level.depth).map(|c| c.index())
            })
            .collect::<Result<_, _>>()?;
        let key: [u8; 32] = rng.r#gen();

        let mut ope = OpeCipher::new(&key, OpeParams::with_default_expansion(bits)?);
        // A first pass fills the cipher's memoised tree top, as a reporter's cipher is
        // filled after its first fixes of the day; the second is timed.
        for &m in &plaintexts {
            black_box(ope.encrypt(m, &mut rng)?);
        }
        let start = Instant::now();
        let ope_cts: Vec<u128> = plaintexts
            .iter()
            .map(|&m| ope.encrypt(m, &mut rng))
            .collect::<Result<_, _>>()?;
        let ope_encrypt_us = start.elapsed().as_secs_f64() * 1e6 / samples as f64;
        let (lo, hi) = (ope_cts[0].min(ope_cts[1]), ope_cts[0].max(ope_cts[1]));
        let ope_compare_ns = median_pass_ns(samples, || {
            let inside = ope_cts
                .iter()
                .filter(|&&c| black_box(lo) <= c && c <= black_box(hi))
                .count();
            black_box(inside);
            Ok(())
        })?;

        let ore = OreKey::new(&key, Domain::for_level_bits(bits)?);
        for &m in &plaintexts {
            black_box(ore.encrypt_right(m, &mut rng)?);
        }
        let start = Instant::now();
        let rights: Vec<_> = plaintexts
            .iter()
            .map(|&m| ore.encrypt_right(m, &mut rng))
            .collect::<Result<_, _>>()?;
        let ore_encrypt_us = start.elapsed().as_secs_f64() * 1e6 / samples as f64;
        let token = ore.encrypt_left(plaintexts[0])?;
        let ore_compare_ns = median_pass_ns(samples, || {
            let mut below = 0usize;
            for right in &rights {
                below += usize::from(compare(&token, right)?.is_lt());
            }
            black_box(below);
            Ok(())
        })?;
        costs.push(LevelCost {
            ope_encrypt_us,
            ore_encrypt_us,
            ope_compare_ns,
            ore_compare_ns,
            ore_bytes: rights[0].as_bytes().len(),
        });
    }
    Ok(costs)
}

/// Passes of a comparison loop timed; the median is reported. A pass is short (microseconds
/// to a millisecond), so one preemption on a shared machine would otherwise be the figure.
const COMPARE_PASSES: usize = 25;

/// Nanoseconds per item of `pass` (over `items` items): the median of [`COMPARE_PASSES`].
fn median_pass_ns(
    items: usize,
    mut pass: impl FnMut() -> anyhow::Result<()>,
) -> anyhow::Result<f64> {
    let mut times = Vec::with_capacity(COMPARE_PASSES);
    for _ in 0..COMPARE_PASSES {
        let start = Instant::now();
        pass()?;
        times.push(start.elapsed().as_secs_f64() * 1e9 / items as f64);
    }
    times.sort_by(f64::total_cmp);
    Ok(times[COMPARE_PASSES / 2])
}

/// Bytes of an OPE ciphertext (a `u128`).
const OPE_BYTES: usize = 16;

/// Microseconds per `Reporter::build` over the simulated day's fixes with every level OPE, and
/// with `ore_levels` under ORE; and one fix stored both ways, for the sizes.
fn reporter_cost(
    levels: &LevelSet,
    ore_levels: &[bool],
    args: &PrivacyBenchArgs,
) -> anyhow::Result<(f64, f64, Sealed)> {
    let fixes = simulate_day(args.seed, 0);
    let samples = args.samples.clamp(1, fixes.len());
    let time = |ore: &[bool]| -> anyhow::Result<f64> {
        // The reporter under test is the second one `Encryptor` builds when any level is ORE.
        let mut phone = Encryptor::new(args.seed, levels.clone(), ore.to_vec())?;
        let mut build = |fix| -> anyhow::Result<()> {
            if ore.iter().any(|&o| o) {
                black_box(phone.encrypt_stored(fix)?);
            } else {
                black_box(phone.encrypt_ope(fix)?);
            }
            Ok(())
        };
        // The first pass fills the day's ciphers (as the day's first fixes do); the second
        // is timed.
        for fix in &fixes[..samples] {
            build(fix)?;
        }
        let start = Instant::now();
        for fix in &fixes[..samples] {
            build(fix)?;
        }
        Ok(start.elapsed().as_secs_f64() * 1e6 / samples as f64)
    };
    let (ope_us, ore_us) = (time(&[])?, time(ore_levels)?);
    let mut sizing = Encryptor::new(args.seed, levels.clone(), ore_levels.to_vec())?;
    Ok((ope_us, ore_us, sizing.encrypt(&fixes[0])?))
}

fn metres_text(m: f64) -> String {
    if !m.is_finite() {
        "-".into()
    } else if m >= 10_000.0 {
        format!("{:.0} km", m / 1000.0)
    } else if m >= 1_000.0 {
        format!("{:.1} km", m / 1000.0)
    } else {
        format!("{m:.0} m")
    }
}

fn pair(median: f64, p90: f64) -> String {
    format!("{} / {}", metres_text(median), metres_text(p90))
}

/// A chart panel: its title, and per layout and level the bar's and the baseline's metres.
type Panel = (&'static str, fn(&Figures, usize) -> Option<(f64, f64)>);

/// Two panels of horizontal bars on a log scale: (a) per level for each scheme against the
/// district scale, and (b) per carer level for each scheme against the granted cell's centre.
fn chart(levels: &LevelSet, figures: &[Figures], days: u32) -> String {
    const W: f64 = 980.0;
    const ROW: f64 = 16.0;
    const LEFT: f64 = 150.0;
    const PLOT: f64 = 700.0;
    let colours = ["#c0392b", "#e67e22", "#1d4f99"];
    let (min_m, max_m) = (1.0f64, 1.0e6f64);
    let x = |m: f64| {
        LEFT + (m.clamp(min_m, max_m).log10() - min_m.log10()) / (max_m.log10() - min_m.log10())
            * PLOT
    };
    let n = levels.len();
    let group = ROW * figures.len() as f64 + 10.0;
    let panel = group * n as f64 + 40.0;
    let height = 60.0 + 2.0 * panel + 70.0;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{height:.0}\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"20\" y=\"24\" font-size=\"15\">bmpls bench privacy: median error of each attack, metres (log scale), {days} simulated days</text>\n"
    );
    let panels: [Panel; 2] = [
        (
            "(a) a node's disk + the home address, from each level (bar) — district cell centres (line)",
            |f: &Figures, i: usize| {
                Some((f.anchored_by_level[i].median_m, f.district_scale.median_m))
            },
        ),
        (
            "(b) a carer granted the level, whole records (bar) — its granted cell's centre (line)",
            |f: &Figures, i: usize| {
                f.carers
                    .iter()
                    .find(|c| usize::from(c.level.0) == i)
                    .map(|c| (c.attack.median_m, c.granted.median_m))
            },
        ),
    ];
    for (p, (title, value)) in panels.iter().enumerate() {
        let top = 50.0 + p as f64 * panel;
        svg.push_str(&format!(
            "<text x=\"20\" y=\"{:.0}\" font-weight=\"bold\">{title}</text>\n",
            top + 14.0
        ));
        for decade in 0..=6 {
            let m = 10f64.powi(decade);
            let gx = x(m);
            svg.push_str(&format!(
                "<line x1=\"{gx:.1}\" y1=\"{:.0}\" x2=\"{gx:.1}\" y2=\"{:.0}\" stroke=\"#ddd\"/>\n<text x=\"{gx:.1}\" y=\"{:.0}\" text-anchor=\"middle\" fill=\"#666\">{}</text>\n",
                top + 22.0,
                top + panel - 14.0,
                top + panel - 2.0,
                metres_text(m)
            ));
        }
        for (i, level) in levels.levels().iter().enumerate() {
            let y0 = top + 24.0 + i as f64 * group;
            svg.push_str(&format!(
                "<text x=\"{:.0}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>\n",
                LEFT - 8.0,
                y0 + group / 2.0,
                level.name
            ));
            for (k, f) in figures.iter().enumerate() {
                let Some((bar, line)) = value(f, i) else {
                    continue;
                };
                let y = y0 + k as f64 * ROW;
                svg.push_str(&format!(
                    "<rect x=\"{LEFT}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{:.0}\" fill=\"{}\"/>\n<text x=\"{:.1}\" y=\"{:.1}\" fill=\"#333\">{}</text>\n",
                    x(bar) - LEFT,
                    ROW - 3.0,
                    colours[k % colours.len()],
                    x(bar) + 4.0,
                    y + ROW - 5.0,
                    metres_text(bar)
                ));
                let lx = x(line);
                svg.push_str(&format!(
                    "<line x1=\"{lx:.1}\" y1=\"{y:.1}\" x2=\"{lx:.1}\" y2=\"{:.1}\" stroke=\"black\" stroke-width=\"2\"/>\n",
                    y + ROW - 3.0
                ));
            }
        }
    }
    let legend_y = 60.0 + 2.0 * panel;
    for (k, f) in figures.iter().enumerate() {
        let lx = 20.0 + k as f64 * 200.0;
        svg.push_str(&format!(
            "<rect x=\"{lx}\" y=\"{legend_y:.0}\" width=\"12\" height=\"12\" fill=\"{}\"/>\n<text x=\"{:.0}\" y=\"{:.0}\">{}</text>\n",
            colours[k % colours.len()],
            lx + 16.0,
            legend_y + 11.0,
            f.layout.name()
        ));
    }
    let averaged: Vec<String> = figures
        .iter()
        .map(|f| {
            format!(
                "{} {}",
                f.layout.name(),
                f.averaged_m.map_or("-".into(), metres_text)
            )
        })
        .collect();
    svg.push_str(&format!(
        "<text x=\"20\" y=\"{:.0}\">(c) the home averaged over {days} days with no key and no auxiliary knowledge: {}</text>\n</svg>\n",
        legend_y + 40.0,
        averaged.join(", ")
    ));
    svg
}

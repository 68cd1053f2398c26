//! `bmpls demo`: the whole system in one process on an embedded default. Four validators on
//! loopback QUIC with fresh certificates and temporary sled folders; a patient, three carers at
//! three precisions (GP `exact`, telecare operator `neighbourhood`, researcher `city`); a walk
//! through Amsterdam reported through the network; each carer's verified view; the moment the
//! patient leaves her safe zone, as the operator's verified area query shows it; and a picture of
//! the walk as each carer sees it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use clap::Args;
use rand::{Rng, SeedableRng, rngs::StdRng};

use bmpls_client::{
    AlertStream, CarerKeystore, Fix, Nodes, PatientKeystore, VerifiedAnswer, verify_audit,
};
use bmpls_grid::{CellIndex, LevelSet, cover_circle};
use bmpls_net::Submitted;
use bmpls_net::alert::AlertKind;
use bmpls_net::query::{Ask, AuditOutcome, AuditRequest, Query};
use bmpls_node::BlockPolicy;
use bmpls_node::local::LocalCluster;
use bmpls_types::{Epoch, Height, LevelIndex, Role, Seq, Transaction, Trigger, TxHash};

const LEVELS: &str = include_str!("../../../config/levels.toml");
/// Where the patient lives, and her safe zone around it.
const HOME: (f64, f64) = (52.3579, 4.8686);
const SAFE_ZONE_M: f64 = 500.0;
/// The walk: home, Vondelpark, Museumplein, Leidseplein, home (lat, lon).
const WAYPOINTS: [(f64, f64); 6] = [
    HOME,
    (52.3603, 4.8745),
    (52.3584, 4.8811),
    (52.3641, 4.8828),
    (52.3620, 4.8760),
    HOME,
];
const STEP_MS: u64 = 30_000;
/// The demo replays the walk in seconds, so `Missing` (three expected intervals of silence by
/// block time) uses an interval of one second rather than the walk's 30 s.
const MISSING_INTERVAL_MS: u64 = 1_000;

/// Options of `bmpls demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Keep the cluster's certificates, configurations, sled data and keystores in this folder
    /// (it must not exist yet) to explore afterwards with the other commands.
    #[arg(long)]
    keep: Option<PathBuf>,
    /// Where to write the picture of the walk as each carer sees it (SVG).
    #[arg(long, default_value = "bmpls-demo.svg")]
    picture: PathBuf,
    /// Fixes in the walk, one every 30 seconds.
    #[arg(long, default_value_t = 120)]
    fixes: usize,
    /// Serve the telecare operator's console at this loopback address (e.g. 127.0.0.1:8080)
    /// while the walk is reported, slowly enough to watch, and keep the cluster and the console
    /// running after the demo until Ctrl-C. The map is a plain grid: nothing is fetched.
    #[arg(long, value_name = "ADDR")]
    console: Option<std::net::SocketAddr>,
}

struct Viewer {
    title: &'static str,
    level: &'static str,
    keystore: CarerKeystore,
    grant: TxHash,
    seen: Option<VerifiedAnswer>,
}

fn metres(a: (f64, f64), b: (f64, f64)) -> f64 {
    let lat = (a.0 + b.0).to_radians() / 2.0;
    let dy = (b.0 - a.0).to_radians() * 6_371_000.0;
    let dx = (b.1 - a.1).to_radians() * 6_371_000.0 * lat.cos();
    (dx * dx + dy * dy).sqrt()
}

/// A walking pace along the waypoints, one fix per step, with a few metres of GPS noise.
fn walk(fixes: usize, end_ms: u64, rng: &mut StdRng) -> Vec<Fix> {
    let legs: Vec<f64> = WAYPOINTS.windows(2).map(|w| metres(w[0], w[1])).collect();
    let total: f64 = legs.iter().sum();
    let start_ms = end_ms - STEP_MS * (fixes as u64 - 1);
    (0..fixes)
        .map(|i| {
            let mut along = total * i as f64 / (fixes - 1).max(1) as f64;
            let mut leg = 0;
            while leg + 1 < legs.len() && along > legs[leg] {
                along -= legs[leg];
                leg += 1;
            }
            let t = (along / legs[leg]).clamp(0.0, 1.0);
            let (a, b) = (WAYPOINTS[leg], WAYPOINTS[leg + 1]);
            Fix {
                lat: a.0 + (b.0 - a.0) * t + rng.gen_range(-0.00003..0.00003),
                lon: a.1 + (b.1 - a.1) * t + rng.gen_range(-0.00004..0.00004),
                accuracy_m: rng.gen_range(3.0..12.0),
                altitude_m: 1.0,
                speed_m_s: total / (STEP_MS as f64 / 1000.0 * fixes as f64),
                battery_percent: (90 - i * 20 / fixes) as u8,
                trigger: Trigger::Periodic,
                fix_time_ms: start_ms + STEP_MS * i as u64,
            }
        })
        .collect()
}

async fn commit(nodes: &Nodes, txs: Vec<Transaction>, what: &str) -> anyhow::Result<Vec<TxHash>> {
    let mut hashes = Vec::with_capacity(txs.len());
    for outcome in nodes.submit(txs).await? {
        match outcome {
            Submitted::Committed { tx, .. } => hashes.push(tx),
            Submitted::Refused { code, reason } => {
                anyhow::bail!("{what} refused ({code:?}): {}", reason.as_str())
            }
        }
    }
    Ok(hashes)
}

/// Runs the demo.
pub fn run(args: &DemoArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        (10..=2_000).contains(&args.fixes),
        "--fixes must be 10 to 2000"
    );
    let temp;
    let dir: PathBuf = match &args.keep {
        Some(dir) => {
            anyhow::ensure!(
                !dir.exists(),
                "{} exists; --keep wants a new folder",
                dir.display()
            );
            std::fs::create_dir_all(dir)?;
            dir.clone()
        }
        None => {
            temp = tempfile::tempdir()?;
            temp.path().to_path_buf()
        }
    };
    let started = Instant::now();
    tokio::runtime::Runtime::new()?.block_on(demo(&dir, args))?;
    println!("\ndone in {:.1} s", started.elapsed().as_secs_f64());
    if let Some(dir) = &args.keep {
        println!(
            "kept in {}: restart the validators with `bmpls node --config {}/node1.toml` (…node4)",
            dir.display(),
            dir.display()
        );
    }
    Ok(())
}

#[allow(clippy::too_many_lines)]
async fn demo(dir: &Path, args: &DemoArgs) -> anyhow::Result<()> {
    let policy = BlockPolicy {
        min_interval_ms: 10,
        empty_interval_ms: 500,
    };
    let cluster = LocalCluster::start(dir, 4, "bmpls-demo", policy)
        .await
        .context("starting four validators")?;
    let addrs = cluster.client_addrs();
    println!(
        "1. four validators on loopback QUIC (mutual TLS, fresh CA), each with its own sled store:"
    );
    for (node, addr) in cluster.provisioned.iter().zip(&addrs) {
        println!("   {}  clients at {addr}", node.name);
    }
    let trust = cluster.trust()?;
    let operator = cluster.operator()?;
    let validators = cluster.validators()?;
    let levels = LevelSet::from_toml(LEVELS)?;
    let mut rng = StdRng::from_entropy();

    let patient =
        PatientKeystore::create(&dir.join("patients/alice"), LEVELS, 86_400_000, &mut rng)?;
    let mut viewers = Vec::new();
    for (title, level, role, folder) in [
        ("GP", "exact", Role::Gp, "gp"),
        (
            "telecare operator",
            "neighbourhood",
            Role::TelecareOperator,
            "telecare",
        ),
        ("researcher", "city", Role::Researcher, "researcher"),
    ] {
        viewers.push(Viewer {
            title,
            level,
            keystore: CarerKeystore::create(&dir.join("carers").join(folder), role, &mut rng)?,
            grant: TxHash([0; 32]),
            seen: None,
        });
    }
    let admin = Nodes::new(&addrs, &trust, &operator)?;
    let chain = validators.chain_id();
    let mut enrolments = vec![patient.enrolment(&operator, chain)];
    enrolments.extend(
        viewers
            .iter()
            .map(|v| v.keystore.enrolment(&operator, chain)),
    );
    commit(&admin, enrolments, "enrolment").await?;
    println!(
        "2. enrolled patient {} (a pseudonym) and three carers",
        hex::encode(patient.patient.0)
    );

    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as u64;
    let fixes = walk(args.fixes, now - 1_000, &mut rng);
    let window = (fixes[0].fix_time_ms, fixes[fixes.len() - 1].fix_time_ms);
    let valid = (now - 60_000, now + 86_400_000);
    for viewer in &mut viewers {
        let (level, _) = levels
            .by_name(viewer.level)
            .context("the embedded levels name every demo level")?;
        let grant = patient.grant(
            chain,
            viewer.keystore.carer,
            &viewer.keystore.agreement().public(),
            LevelIndex(level.0),
            window,
            valid,
            "bmpls demo",
            &mut rng,
        )?;
        viewer.grant = commit(&admin, vec![grant], "grant").await?[0];
    }
    println!(
        "3. the patient's custodian granted: GP exact, telecare operator neighbourhood, researcher city (keys wrapped with HPKE)"
    );

    // The operator's safe zone: covered at its level, encrypted per key epoch; a watcher
    // waits for alerts while the walk is reported.
    let (op_level, op_entry) = levels.by_name(viewers[1].level).context("level")?;
    let zone = cover_circle(HOME.1, HOME.0, SAFE_ZONE_M, op_entry.depth, 128)?;
    let fence = patient.fence(
        chain,
        viewers[1].keystore.carer,
        LevelIndex(op_level.0),
        &zone,
        window,
        2,
        MISSING_INTERVAL_MS,
    )?;
    commit(&admin, vec![fence], "fence").await?;
    let watcher_nodes = Nodes::new(&addrs, &trust, viewers[1].keystore.identity())?;
    let mut stream = AlertStream::new(viewers[1].keystore.carer, validators.clone(), Height(1));
    let watcher = tokio::spawn(async move {
        let mut received = Vec::new();
        let deadline = Instant::now() + std::time::Duration::from_secs(60);
        while Instant::now() < deadline {
            for event in stream.next_events(&watcher_nodes, 2_000).await? {
                let delay_ms = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as i128
                    - i128::from(event.time_ms);
                let missing = event.kind == AlertKind::Missing;
                received.push((event, delay_ms));
                if missing {
                    watcher_nodes.close().await;
                    return anyhow::Ok(received);
                }
            }
        }
        watcher_nodes.close().await;
        Ok(received)
    });
    println!(
        "4. the custodian set a {SAFE_ZONE_M:.0} m safe zone around home for the telecare operator (encrypted: validators test each record against it without learning where it is); the operator watches"
    );

    // The operator's console, on the same validators, before the walk: a newcomer watches the
    // cells move and the safe-zone alarm arrive.
    let console = match args.console {
        None => None,
        Some(listen) => {
            let folder = dir.join("carers/telecare");
            let running = crate::console::start(crate::console::Setup {
                carer: CarerKeystore::open(&folder)?,
                nodes: Nodes::new(&addrs, &trust, viewers[1].keystore.identity())?,
                validators: validators.clone(),
                levels: levels.clone(),
                listen,
                tiles: crate::console::Tiles::Grid,
                operator: "demo operator".to_string(),
                acks: folder.join("console-acks.jsonl"),
            })
            .await?;
            println!("   the telecare operator's console: open {}", running.url);
            Some(running)
        }
    };

    let mut reporter = patient.reporter(chain)?;
    let records = fixes
        .iter()
        .enumerate()
        .map(|(i, fix)| {
            Ok(Transaction::Report(reporter.build(
                fix,
                Seq(i as u64 + 1),
                &mut rng,
            )?))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let phone = Nodes::new(&addrs, &trust, patient.reporter_key())?;
    for chunk in records.chunks(10) {
        commit(&phone, chunk.to_vec(), "report").await?;
        if console.is_some() {
            // At this pace the console's map follows the walk.
            tokio::time::sleep(std::time::Duration::from_millis(700)).await;
        }
    }
    // The keystore remembers where the phone is, for `--keep` and `bmpls report` afterwards.
    patient.set_next_seq(records.len() as u64 + 1)?;
    let length: f64 = fixes
        .windows(2)
        .map(|w| metres((w[0].lat, w[0].lon), (w[1].lat, w[1].lon)))
        .sum();
    println!(
        "5. the phone reported a {:.1} km walk: {} fixes, each signed and encrypted at 6 levels, committed by BFT consensus",
        length / 1000.0,
        fixes.len()
    );

    println!(
        "6. each carer asks for the walk; every answer is checked (commit certificates signed by over two thirds of the validators, Merkle proofs, record signatures) before it is decrypted:"
    );
    for viewer in &mut viewers {
        let (level, entry) = levels.by_name(viewer.level).context("level")?;
        let nodes = Nodes::new(&addrs, &trust, viewer.keystore.identity())?;
        let query = Query {
            patient: patient.patient,
            grant: viewer.grant,
            level: LevelIndex(level.0),
            from_ms: window.0,
            to_ms: window.1,
            ask: Ask::Track,
            limit: args.fixes as u32,
        };
        let seen = crate::carer::ask(&nodes, query, &validators, &levels, &viewer.keystore).await?;
        nodes.close().await;
        anyhow::ensure!(
            seen.records.len() == fixes.len(),
            "{} saw {} of {} records",
            viewer.title,
            seen.records.len(),
            fixes.len()
        );
        let cells: BTreeSet<u64> = seen.records.iter().map(|r| r.cell.index()).collect();
        let blocks: BTreeSet<u64> = seen.records.iter().map(|r| r.height.0).collect();
        let what = if seen.records.iter().all(|r| r.exact.is_some()) {
            let worst = seen
                .records
                .iter()
                .zip(&fixes)
                .filter_map(|(r, f)| {
                    r.exact.map(|e| {
                        metres(
                            (f64::from(e.lat_e7) / 1e7, f64::from(e.lon_e7) / 1e7),
                            (f.lat, f.lon),
                        )
                    })
                })
                .fold(0.0, f64::max);
            format!("the exact fixes (within {worst:.2} m of what the phone measured)")
        } else {
            let rect = seen.records[0].cell.rect();
            let size = metres((rect.min().y, rect.min().x), (rect.min().y, rect.max().x));
            let plural = if cells.len() == 1 { "" } else { "s" };
            format!(
                "{} distinct cell{plural} about {:.0} m wide",
                cells.len(),
                size
            )
        };
        println!(
            "   {:<18} at {:<13} {} records in {} blocks, all verified: {}",
            viewer.title,
            entry.name,
            seen.records.len(),
            blocks.len(),
            what
        );
        viewer.seen = Some(seen);
    }

    // The operator's area query: which records fall in the zone's cells (encrypted ranges).
    let seen = viewers[1].seen.as_ref().context("the operator's view")?;
    let keys = bmpls_client::open_grant(&seen.grant, &viewers[1].keystore)?;
    let epoch = |ms: u64| Epoch((ms / seen.epoch_length_ms) as u32);
    let area = bmpls_client::area_query(
        &keys,
        &levels,
        op_level.0,
        &zone,
        (epoch(window.0), epoch(window.1)),
    )?;
    let nodes = Nodes::new(&addrs, &trust, viewers[1].keystore.identity())?;
    let query = Query {
        patient: patient.patient,
        grant: viewers[1].grant,
        level: LevelIndex(op_level.0),
        from_ms: window.0,
        to_ms: window.1,
        ask: area,
        limit: args.fixes as u32,
    };
    let inside =
        crate::carer::ask(&nodes, query, &validators, &levels, &viewers[1].keystore).await?;
    nodes.close().await;
    println!(
        "   the operator's area query for the zone (the nodes compare ciphertexts only): {} of {} records in the zone's cells, verified",
        inside.records.len(),
        fixes.len()
    );

    // The alerts the operator's watch received.
    let received = watcher.await??;
    let truly_outside = fixes
        .iter()
        .position(|f| metres((f.lat, f.lon), HOME) > SAFE_ZONE_M);
    println!("7. alerts pushed to the operator (signed by a validator, each checked):");
    for (event, delay_ms) in &received {
        println!(
            "   {:?} at record {} (block {}), delivered {delay_ms} ms after the block's time",
            event.kind, event.seq.0, event.height.0
        );
    }
    if let Some(i) = truly_outside {
        println!(
            "   (the phone measured her first outside the circle at record {}; at the operator's level the zone is whole neighbourhood cells, and two records outside decide an exit)",
            i + 1
        );
    }
    anyhow::ensure!(
        received.iter().any(|(e, _)| e.kind == AlertKind::Exit),
        "the operator received no Exit alert"
    );

    std::fs::write(&args.picture, picture(&viewers))
        .with_context(|| format!("writing {}", args.picture.display()))?;
    println!(
        "8. picture of the walk as each carer sees it: {}",
        args.picture.display()
    );

    // What the patient sees: who looked (the audit entries of the queries above).
    let request = AuditRequest {
        patient: patient.patient,
        from_height: Height(1),
        limit: 1_000,
    };
    let custodian = Nodes::new(&addrs, &trust, patient.custodian_key())?;
    let mut entries = Vec::new();
    for _ in 0..40 {
        let (addr, outcome) = custodian.audit(request.clone()).await?;
        let AuditOutcome::Answered(answer) = outcome else {
            anyhow::bail!("{addr} refused the custodian: {outcome:?}");
        };
        entries = verify_audit(*answer, &request, &validators)?;
        if entries.len() > viewers.len() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    custodian.close().await;
    println!(
        "9. the patient's audit trail ({} entries, each signed by the answering validator and proved on the chain):",
        entries.len()
    );
    for entry in &entries {
        let who = viewers
            .iter()
            .find(|v| v.keystore.carer == entry.audit.carer)
            .map_or("someone", |v| v.title);
        let level = levels
            .levels()
            .get(usize::from(entry.audit.level.0))
            .map_or("?", |l| l.name.as_str());
        println!(
            "   height {:>4}: the {who} {} at {level}",
            entry.height.0,
            match entry.audit.query {
                bmpls_types::QueryKind::Alerts => "was delivered alerts".to_string(),
                kind => format!("asked {kind:?}"),
            }
        );
    }

    admin.close().await;
    phone.close().await;
    if let Some(running) = console {
        println!(
            "10. the cluster and the console keep running: open {}\n    (report more fixes with `bmpls report`, given --keep; Ctrl-C stops)",
            running.url
        );
        crate::alerts::stop_signal().await;
        running.stop().await;
    }
    cluster.shutdown().await?;
    Ok(())
}

/// Three panels side by side: exact fixes, neighbourhood cells, city cell, each with the safe zone.
fn picture(viewers: &[Viewer]) -> String {
    const W: f64 = 420.0;
    const H: f64 = 420.0;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" font-family=\"sans-serif\" font-size=\"13\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n",
        3.0 * W + 40.0,
        H + 60.0
    );
    let zone: Vec<(f64, f64)> = (0..=64)
        .map(|i| {
            let a = f64::from(i) / 64.0 * std::f64::consts::TAU;
            let dlat = SAFE_ZONE_M * a.sin() / 6_371_000.0;
            let dlon = SAFE_ZONE_M * a.cos() / (6_371_000.0 * HOME.0.to_radians().cos());
            (HOME.0 + dlat.to_degrees(), HOME.1 + dlon.to_degrees())
        })
        .collect();
    for (panel, viewer) in viewers.iter().enumerate() {
        let Some(seen) = &viewer.seen else { continue };
        let rects: Vec<(f64, f64, f64, f64)> = seen
            .records
            .iter()
            .filter(|r| r.exact.is_none())
            .map(|r| (r.cell.index(), r.cell))
            .collect::<std::collections::BTreeMap<u64, CellIndex>>()
            .values()
            .map(|c| {
                let r = c.rect();
                (r.min().y, r.min().x, r.max().y, r.max().x)
            })
            .collect();
        let points: Vec<(f64, f64)> = seen
            .records
            .iter()
            .filter_map(|r| {
                r.exact
                    .map(|e| (f64::from(e.lat_e7) / 1e7, f64::from(e.lon_e7) / 1e7))
            })
            .collect();
        let mut lats: Vec<f64> = zone
            .iter()
            .map(|p| p.0)
            .chain(points.iter().map(|p| p.0))
            .collect();
        let mut lons: Vec<f64> = zone
            .iter()
            .map(|p| p.1)
            .chain(points.iter().map(|p| p.1))
            .collect();
        for &(s, w, n, e) in &rects {
            lats.extend([s, n]);
            lons.extend([w, e]);
        }
        let (s, n) = (
            lats.iter().copied().fold(f64::MAX, f64::min),
            lats.iter().copied().fold(f64::MIN, f64::max),
        );
        let (w, e) = (
            lons.iter().copied().fold(f64::MAX, f64::min),
            lons.iter().copied().fold(f64::MIN, f64::max),
        );
        let kx = HOME.0.to_radians().cos();
        let span = ((e - w) * kx).max(n - s) * 1.08;
        let (cx, cy) = ((w + e) / 2.0, (s + n) / 2.0);
        let x0 = 20.0 + panel as f64 * (W + 0.0);
        let px = |lat: f64, lon: f64| {
            (
                x0 + W / 2.0 + (lon - cx) * kx / span * W,
                40.0 + H / 2.0 - (lat - cy) / span * H,
            )
        };
        svg.push_str(&format!(
            "<rect x=\"{x0:.1}\" y=\"40\" width=\"{W}\" height=\"{H}\" fill=\"#f6f6f2\" stroke=\"#999\"/>\n<text x=\"{:.1}\" y=\"28\">{} — {} ({} records)</text>\n",
            x0 + 4.0,
            viewer.title,
            viewer.level,
            seen.records.len()
        ));
        for &(s, w, n, e) in &rects {
            let (ax, ay) = px(n, w);
            let (bx, by) = px(s, e);
            svg.push_str(&format!(
                "<rect x=\"{ax:.1}\" y=\"{ay:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"#3b7dd8\" fill-opacity=\"0.35\" stroke=\"#1d4f99\"/>\n",
                bx - ax,
                by - ay
            ));
        }
        let polyline = |line: &[(f64, f64)], style: &str| {
            let points: Vec<String> = line
                .iter()
                .map(|&(la, lo)| {
                    let (x, y) = px(la, lo);
                    format!("{x:.1},{y:.1}")
                })
                .collect();
            format!(
                "<polyline points=\"{}\" fill=\"none\" {style}/>\n",
                points.join(" ")
            )
        };
        svg.push_str(&polyline(
            &zone,
            "stroke=\"#2a9d3a\" stroke-width=\"2\" stroke-dasharray=\"6 4\"",
        ));
        if !points.is_empty() {
            svg.push_str(&polyline(&points, "stroke=\"#c0392b\" stroke-width=\"2\""));
        }
    }
    svg.push_str(&format!(
        "<text x=\"20\" y=\"{:.0}\">dashed green: the {SAFE_ZONE_M:.0} m safe zone around home. Each panel is what one carer decrypted from verified answers.</text>\n</svg>\n",
        H + 58.0
    ));
    svg
}

//! The alert commands: `bmpls fence` (a custodian sets a carer's safe zone) and `bmpls watch`
//! (a carer waits for Enter, Exit and Missing).

use std::path::PathBuf;

use clap::Args;

use bmpls_client::carer::CarerCard;
use bmpls_client::{AlertStream, CarerKeystore, PatientKeystore, WatchError};
use bmpls_net::alert::MAX_WATCH_WAIT_MS;
use bmpls_types::Height;

use bmpls_net::{GrantSummary, GrantsAsked};
use bmpls_types::{CarerId, LevelIndex};

use crate::carer::{area_arg, grants_of, iso, level_arg, submit, window};
use crate::client::{Consortium, runtime};

/// Arguments of `bmpls fence`.
#[derive(Debug, Args)]
pub struct FenceArgs {
    /// The patient's keystore (its custodian key signs the fence).
    #[arg(long)]
    patient: PathBuf,
    /// The carer to alert (its public card, `carer.toml`).
    #[arg(long)]
    carer: PathBuf,
    /// The level the zone is covered at: the carer's granted level (nodes test records there).
    #[arg(long)]
    level: String,
    /// The safe zone: a circle lat,lon,radius in metres.
    #[arg(long, value_name = "LAT,LON,METRES", allow_hyphen_values = true)]
    circle: Option<String>,
    /// The safe zone: a box west,south,east,north in degrees (longitude first, unlike
    /// --circle).
    #[arg(
        long = "box",
        value_name = "W,S,E,N",
        allow_hyphen_values = true,
        conflicts_with = "circle"
    )]
    area_box: Option<String>,
    /// The safe zone: a GeoJSON Polygon file (geometry, Feature or FeatureCollection).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["area_box", "circle"])]
    polygon: Option<PathBuf>,
    /// First day the fence applies to, YYYY-MM-DD in UTC (default: today).
    #[arg(long)]
    from: Option<String>,
    /// Days the fence applies to (at most 16 key epochs).
    #[arg(long, default_value_t = 1)]
    days: u64,
    /// Consecutive records on the other side before Enter or Exit fires.
    #[arg(long, default_value_t = 2)]
    debounce: u8,
    /// The patient's reporting interval in seconds; Missing fires after three of silence (0: never).
    #[arg(long, default_value_t = 60)]
    interval_s: u64,
    #[command(flatten)]
    consortium: Consortium,
}

/// Arguments of `bmpls watch`.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// The carer's keystore.
    #[arg(long)]
    carer: PathBuf,
    /// Resume from this block height (a previous `watch` prints it on its last line, when it
    /// stops on Ctrl-C or after --count alerts).
    #[arg(long, default_value_t = 1)]
    from_height: u64,
    /// Stop after this many alerts (default: run until interrupted).
    #[arg(long)]
    count: Option<usize>,
    #[command(flatten)]
    consortium: Consortium,
}

/// `bmpls fence`.
pub fn fence(args: FenceArgs) -> anyhow::Result<()> {
    let patient = PatientKeystore::open(&args.patient)?;
    let card = CarerCard::read(&args.carer)?;
    let (level, depth) = level_arg(&patient.levels, &args.level)?;
    let cells = area_arg(
        args.circle.as_deref(),
        args.area_box.as_deref(),
        args.polygon.as_deref(),
        depth,
        // ORE tokens are ~130 bytes each: an ORE level's fence is covered by fewer runs.
        match patient
            .levels
            .get(bmpls_grid::LevelIndex(level.0))
            .map(|l| l.scheme)
        {
            Some(bmpls_grid::Scheme::Ore) => bmpls_types::limits::MAX_ORE_FENCE_RANGES,
            _ => bmpls_types::limits::MAX_FENCE_RANGES,
        },
    )?
    .ok_or_else(|| anyhow::anyhow!("give the safe zone as --circle, --box or --polygon"))?;
    let days = window(args.from.as_deref(), args.days)?;
    // A fence alerts its carer only under a standing grant: refuse one that would alert nobody.
    let chain = args.consortium.chain()?;
    runtime()?.block_on(async {
        let nodes = args.consortium.connect(patient.custodian_key()).await?;
        let given = grants_of(&nodes, GrantsAsked::OfPatient(patient.patient)).await;
        nodes.close().await;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_millis() as u64;
        standing_grant(&given?, &card.carer, level, now).map_err(|why| {
            anyhow::anyhow!(
                "no fence for carer {}: {why}; grant it access first (bmpls grant --patient {} --carer {} --level {})",
                hex::encode(card.carer.0),
                args.patient.display(),
                args.carer.display(),
                args.level
            )
        })
    })?;
    let tx = patient.fence(
        &chain,
        card.carer,
        level,
        &cells,
        days,
        args.debounce,
        args.interval_s * 1000,
    )?;
    let (hash, height) = submit(&args.consortium, patient.custodian_key(), tx, "fence")?;
    println!(
        "fence {} committed at height {height}: carer {} is alerted on Enter/Exit (after {} record{}) and Missing ({} s of silence), {} to {}",
        hex::encode(hash.0),
        hex::encode(card.carer.0),
        args.debounce.max(1),
        if args.debounce.max(1) == 1 { "" } else { "s" },
        3 * args.interval_s,
        iso(days.0),
        iso(days.1)
    );
    Ok(())
}

/// Whether `grants` hold a standing grant to `carer`, valid at `now_ms`, at `level` or finer
/// (a fence is covered at the carer's level or a coarser one); if not, why not.
fn standing_grant(
    grants: &[GrantSummary],
    carer: &CarerId,
    level: LevelIndex,
    now_ms: u64,
) -> Result<(), &'static str> {
    let theirs: Vec<&GrantSummary> = grants.iter().filter(|g| g.carer == *carer).collect();
    let standing: Vec<&&GrantSummary> = theirs
        .iter()
        .filter(|g| g.standing && (g.valid_from_ms..g.valid_until_ms).contains(&now_ms))
        .collect();
    if theirs.is_empty() {
        Err("the patient gave it no grant")
    } else if standing.is_empty() {
        Err("its grants are revoked or expired")
    } else if !standing.iter().any(|g| g.level.0 <= level.0) {
        Err("the level is finer than its grant")
    } else {
        Ok(())
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub(crate) async fn stop_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = interrupt => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(_) => {
                let _ = interrupt.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}

/// The last line of `bmpls watch`: how many alerts it printed and the height to resume from.
fn resume_hint(printed: usize, next: Height) -> String {
    format!(
        "stopped after {printed} alert{}; resume with --from-height {}",
        if printed == 1 { "" } else { "s" },
        next.0
    )
}

/// `bmpls watch`: waits for the carer's alerts and prints each once, resuming on another
/// validator when one stops answering.
pub fn watch(args: WatchArgs) -> anyhow::Result<()> {
    let carer = CarerKeystore::open(&args.carer)?;
    let genesis = args.consortium.genesis()?;
    let validators = genesis.validators.crypto().clone();
    runtime()?.block_on(async {
        let nodes = args.consortium.connect(carer.identity()).await?;
        let mut stream = AlertStream::new(carer.carer, validators, Height(args.from_height));
        let mut printed = 0usize;
        let mut backoff = std::time::Duration::from_millis(200);
        println!(
            "watching alerts of carer {} from height {}",
            hex::encode(carer.carer.0),
            args.from_height
        );
        // Alerts come only under a standing grant: say so rather than wait in silence.
        if let Ok(held) = grants_of(&nodes, GrantsAsked::OfCarer(carer.carer)).await {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_millis() as u64;
            let standing = held
                .iter()
                .filter(|g| bmpls_client::standing_at(g, now))
                .count();
            if standing == 0 {
                eprintln!(
                    "carer {} holds no standing grant: no alert comes until a patient's custodian grants it access (bmpls grant) and sets a fence (bmpls fence)",
                    hex::encode(carer.carer.0)
                );
            }
        }
        // Ctrl-C (or SIGTERM) ends the watch between answers, saying where to resume: events
        // below that height have all been printed.
        let stop = stop_signal();
        tokio::pin!(stop);
        while args.count.is_none_or(|n| printed < n) {
            let step = tokio::select! {
                step = stream.next_events(&nodes, MAX_WATCH_WAIT_MS) => step,
                () = &mut stop => break,
            };
            match step {
                Ok(events) => {
                    backoff = std::time::Duration::from_millis(200);
                    for fault in stream.take_faults() {
                        eprintln!("warning: {fault}");
                    }
                    for e in events {
                        println!(
                            "{}  height {:>6}  {:?}  patient {}  record {}  fence {}",
                            iso(e.time_ms),
                            e.height.0,
                            e.kind,
                            hex::encode(e.patient.0),
                            e.seq.0,
                            hex::encode(&e.fence.0[..8])
                        );
                        printed += 1;
                    }
                }
                Err(WatchError::Network(e)) => {
                    eprintln!(
                        "no validator answers ({e}); retrying from height {}",
                        stream.next_height().0
                    );
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => {}
                        () = &mut stop => break,
                    }
                    backoff = (backoff * 2).min(std::time::Duration::from_secs(10));
                }
                Err(e) => return Err(e.into()),
            }
        }
        println!("{}", resume_hint(printed, stream.next_height()));
        nodes.close().await;
        anyhow::Ok(())
    })
}

#[cfg(test)]
mod tests {
    use bmpls_net::GrantSummary;
    use bmpls_types::{CarerId, Epoch, LevelIndex, PatientId, TxHash};

    use super::standing_grant;

    fn grant(carer: u8, level: u8, standing: bool, valid: (u64, u64)) -> GrantSummary {
        GrantSummary {
            patient: PatientId([1; 16]),
            carer: CarerId([carer; 16]),
            grant: TxHash([carer; 32]),
            level: LevelIndex(level),
            data_from: Epoch(0),
            data_to: Epoch(1),
            valid_from_ms: valid.0,
            valid_until_ms: valid.1,
            standing,
        }
    }

    #[test]
    fn a_fence_needs_a_standing_grant_at_its_level_or_finer() {
        let nurse = CarerId([2; 16]);
        let check = |grants: &[GrantSummary], level: u8| {
            standing_grant(grants, &nurse, LevelIndex(level), 500)
        };
        assert_eq!(check(&[grant(2, 2, true, (0, 1000))], 2), Ok(()));
        assert_eq!(check(&[grant(2, 2, true, (0, 1000))], 3), Ok(()), "coarser");
        assert_eq!(
            check(&[grant(2, 2, true, (0, 1000))], 1),
            Err("the level is finer than its grant")
        );
        assert_eq!(
            check(&[grant(3, 2, true, (0, 1000))], 2),
            Err("the patient gave it no grant")
        );
        for revoked_or_expired in [grant(2, 2, false, (0, 1000)), grant(2, 2, true, (0, 400))] {
            assert_eq!(
                check(&[revoked_or_expired], 2),
                Err("its grants are revoked or expired")
            );
        }
    }
}

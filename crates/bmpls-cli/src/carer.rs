//! The carer commands and the custodian's grant commands: `bmpls carer new|enrol`, `bmpls
//! grant`, `bmpls revoke`, `bmpls query`.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};

use bmpls_client::carer::{CarerCard, role_by_name};
use bmpls_client::{AskError, CarerKeystore, Nodes, PatientKeystore, VerifiedAnswer, verify_audit};
use bmpls_crypto::keyfile::read_signing_key;
use bmpls_grid::{LevelSet, cover_circle, cover_lon_lat_box};
use bmpls_net::query::{Ask, AuditOutcome, AuditRequest, MAX_ANSWER_RECORDS, Query};
use bmpls_net::{GrantSummary, GrantsAsked, Submitted};
use bmpls_types::{Height, LevelIndex, PatientId, QueryKind, Transaction, TxHash};

use crate::client::{Consortium, runtime};
use crate::ids::Typed;

const DAY_MS: u64 = 86_400_000;

/// A carer's keystore.
#[derive(Debug, Subcommand)]
pub enum CarerCommand {
    /// Create a carer's keystore: an id, the identity key that signs queries and the HPKE key
    /// grants are wrapped to (secret files are owner-only). `carer.toml` is the public card a
    /// patient's custodian needs to grant access.
    #[command(after_help = "Example: bmpls carer new --out carers/op --role telecare")]
    New {
        /// Folder to create.
        #[arg(long)]
        out: PathBuf,
        /// gp, family, telecare, insurer or researcher.
        #[arg(long)]
        role: String,
    },
    /// Enrol the carer on the chain, signed by a validator operator's key.
    #[command(
        after_help = "Example: bmpls carer enrol --carer carers/op --operator-key certs/local/node1/validator.key"
    )]
    Enrol {
        /// The carer's keystore.
        #[arg(long)]
        carer: PathBuf,
        /// The operator's key (a validator's key file).
        #[arg(long)]
        operator_key: PathBuf,
        #[command(flatten)]
        consortium: Consortium,
    },
}

/// Arguments of `bmpls grant`.
#[derive(Debug, Args)]
pub struct GrantArgs {
    /// The patient's keystore (its custodian key signs the grant).
    #[arg(long)]
    patient: PathBuf,
    /// The carer's public card (`carer.toml` of its keystore).
    #[arg(long)]
    carer: PathBuf,
    /// The finest level the carer may see (a name from the patient's levels.toml).
    #[arg(long)]
    level: String,
    /// First day of data the grant opens, YYYY-MM-DD in UTC (default: today).
    #[arg(long)]
    from: Option<String>,
    /// Days of data the grant opens, from --from.
    #[arg(long, default_value_t = 1)]
    days: u64,
    /// Days the grant may be used, from now.
    #[arg(long, default_value_t = 30)]
    valid_days: u64,
    /// Why access is given (the patient sees it).
    #[arg(long)]
    purpose: String,
    #[command(flatten)]
    consortium: Consortium,
}

/// Arguments of `bmpls revoke`.
#[derive(Debug, Args)]
pub struct RevokeArgs {
    /// The patient's keystore.
    #[arg(long)]
    patient: PathBuf,
    /// The grant's transaction hash, as `bmpls grant` printed it, or enough of its first hex
    /// digits to name one of the grants this patient gave.
    #[arg(long)]
    grant: String,
    #[command(flatten)]
    consortium: Consortium,
}

/// Arguments of `bmpls unfence`.
#[derive(Debug, Args)]
pub struct UnfenceArgs {
    /// The patient's keystore.
    #[arg(long)]
    patient: PathBuf,
    /// The fence's transaction hash, as `bmpls fence` printed it.
    #[arg(long)]
    fence: String,
    #[command(flatten)]
    consortium: Consortium,
}

/// Arguments of `bmpls audit`.
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// The patient's keystore (its custodian key signs the request).
    #[arg(long)]
    patient: PathBuf,
    /// The first block height to look at.
    #[arg(long, default_value_t = 1)]
    from_height: u64,
    /// At most this many entries.
    #[arg(long, default_value_t = 1000)]
    limit: u32,
    #[command(flatten)]
    consortium: Consortium,
}

/// How `bmpls query` prints what it saw.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Format {
    /// One line per record.
    Table,
    /// A GeoJSON FeatureCollection: cells as polygons, exact fixes as points.
    Geojson,
    /// CSV: one row per record, the cell's bounds and, with an exact grant, the fix.
    Csv,
}

/// Arguments of `bmpls query`.
#[derive(Debug, Args)]
pub struct QueryArgs {
    /// The carer's keystore.
    #[arg(long)]
    carer: PathBuf,
    /// The patient's pseudonym: 32 hex digits, or enough of its first ones to name one of the
    /// patients whose grants this carer holds (`a63d1d26`, or `a63d1d26…828`).
    #[arg(long)]
    patient_id: String,
    /// The grant relied on: its transaction hash (64 hex digits), or enough of its first ones
    /// to name one of this carer's grants of the patient.
    #[arg(long)]
    grant: String,
    /// The level to see at: the granted one or a coarser one.
    #[arg(long)]
    level: String,
    /// The latest record of the window only.
    #[arg(long, conflicts_with_all = ["area_box", "circle", "polygon"])]
    last: bool,
    /// Only records in this box: west,south,east,north in degrees (longitude first, unlike
    /// --circle).
    #[arg(
        long = "box",
        value_name = "W,S,E,N",
        allow_hyphen_values = true,
        conflicts_with = "circle"
    )]
    area_box: Option<String>,
    /// Only records in this circle: lat,lon,radius in metres.
    #[arg(long, value_name = "LAT,LON,METRES", allow_hyphen_values = true)]
    circle: Option<String>,
    /// Only records in this GeoJSON Polygon (a file: geometry, Feature or FeatureCollection).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["area_box", "circle"])]
    polygon: Option<PathBuf>,
    /// First day of the window, YYYY-MM-DD in UTC (default: today).
    #[arg(long)]
    from: Option<String>,
    /// Days in the window.
    #[arg(long, default_value_t = 1)]
    days: u64,
    /// At most this many records.
    #[arg(long, default_value_t = 1000)]
    limit: u32,
    /// The precision levels (as the patient's).
    #[arg(long, default_value = "config/levels.toml")]
    levels: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    #[command(flatten)]
    consortium: Consortium,
}

fn now_ms() -> anyhow::Result<u64> {
    Ok(SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as u64)
}

/// The first millisecond of `day` (YYYY-MM-DD, UTC), or of today.
fn day_start(day: Option<&str>) -> anyhow::Result<u64> {
    let Some(day) = day else {
        return Ok(now_ms()? / DAY_MS * DAY_MS);
    };
    let format = time::format_description::parse("[year]-[month]-[day]")?;
    let date = time::Date::parse(day, &format)
        .with_context(|| format!("{day:?} is not a date of the form YYYY-MM-DD"))?;
    let seconds = date.midnight().assume_utc().unix_timestamp();
    u64::try_from(seconds)
        .map(|s| s * 1000)
        .map_err(|_| anyhow::anyhow!("{day} is before 1970"))
}

pub(crate) fn window(from: Option<&str>, days: u64) -> anyhow::Result<(u64, u64)> {
    anyhow::ensure!((1..=3660).contains(&days), "--days must be 1 to 3660");
    let start = day_start(from)?;
    Ok((start, start + days * DAY_MS - 1))
}

pub(crate) fn iso(ms: u64) -> String {
    // Always three fractional digits, so that times line up in a column (RFC 3339 still).
    let format = time::format_description::parse(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z",
    );
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .zip(format.ok())
        .and_then(|(t, format)| t.format(&format).ok())
        .unwrap_or_else(|| format!("{ms} ms"))
}

pub(crate) fn level_arg(levels: &LevelSet, name: &str) -> anyhow::Result<(LevelIndex, u8)> {
    let (index, level) = levels.by_name(name).ok_or_else(|| {
        let names: Vec<&str> = levels.levels().iter().map(|l| l.name.as_str()).collect();
        anyhow::anyhow!("no level {name:?}; the levels are {}", names.join(", "))
    })?;
    Ok((LevelIndex(index.0), level.depth))
}

fn committed(outcome: Option<&Submitted>, what: &str) -> anyhow::Result<(TxHash, u64)> {
    match outcome {
        Some(Submitted::Committed { tx, height }) => Ok((*tx, *height)),
        Some(Submitted::Refused { code, reason }) => {
            anyhow::bail!("{what} refused ({code:?}): {}", reason.as_str())
        }
        None => anyhow::bail!("the node gave no outcome"),
    }
}

pub(crate) fn submit(
    consortium: &Consortium,
    key: &bmpls_crypto::SigningKey,
    tx: Transaction,
    what: &str,
) -> anyhow::Result<(TxHash, u64)> {
    let outcome = runtime()?.block_on(async {
        let nodes = consortium.connect(key).await?;
        let outcome = nodes.submit(vec![tx]).await;
        nodes.close().await;
        anyhow::Ok(outcome?)
    })?;
    committed(outcome.first(), what)
}

/// `bmpls carer …`.
pub fn carer(command: CarerCommand) -> anyhow::Result<()> {
    match command {
        CarerCommand::New { out, role } => {
            let role = role_by_name(&role).ok_or_else(|| {
                anyhow::anyhow!(
                    "unknown role {role:?}: gp, family, telecare, insurer or researcher"
                )
            })?;
            let store = CarerKeystore::create(&out, role, &mut rand::rngs::OsRng)?;
            println!(
                "carer {} in {}\n  enrol it (an operator, with a validator's key): bmpls carer enrol --carer {} --operator-key {}\n  a custodian grants it access with: bmpls grant --carer {}",
                hex::encode(store.carer.0),
                out.display(),
                out.display(),
                crate::client::OPERATOR_KEY_EXAMPLE,
                out.join("carer.toml").display()
            );
            Ok(())
        }
        CarerCommand::Enrol {
            carer,
            operator_key,
            consortium,
        } => {
            let store = CarerKeystore::open(&carer)?;
            let operator = read_signing_key(&operator_key)?;
            let (_, height) = submit(
                &consortium,
                &operator,
                store.enrolment(&operator, &consortium.chain()?),
                "enrolment",
            )?;
            println!(
                "carer {} enrolled at height {height}",
                hex::encode(store.carer.0)
            );
            Ok(())
        }
    }
}

/// `bmpls grant`.
pub fn grant(args: GrantArgs) -> anyhow::Result<()> {
    let patient = PatientKeystore::open(&args.patient)?;
    let card = CarerCard::read(&args.carer)?;
    let (level, _) = level_arg(&patient.levels, &args.level)?;
    let data = window(args.from.as_deref(), args.days)?;
    anyhow::ensure!(
        (1..=3660).contains(&args.valid_days),
        "--valid-days must be 1 to 3660"
    );
    let now = now_ms()?;
    let valid = (now, now + args.valid_days * DAY_MS);
    let tx = patient.grant(
        &args.consortium.chain()?,
        card.carer,
        &card.agreement_key,
        level,
        data,
        valid,
        &args.purpose,
        &mut rand::rngs::OsRng,
    )?;
    let (hash, height) = submit(&args.consortium, patient.custodian_key(), tx, "grant")?;
    println!("grant {} committed at height {height}", hex::encode(hash.0));
    println!(
        "  carer {} sees level {} of {} to {}, until {}",
        hex::encode(card.carer.0),
        args.level,
        iso(data.0),
        iso(data.1),
        iso(valid.1)
    );
    let carer_dir = args.carer.parent().unwrap_or(std::path::Path::new("."));
    println!(
        "  the carer asks with: {}",
        query_hint(carer_dir, &patient.patient, &hash, &args.level)
    );
    Ok(())
}

/// The `bmpls query` command a carer runs under a new grant, with the full ids to paste.
fn query_hint(
    carer_dir: &std::path::Path,
    patient: &PatientId,
    grant: &TxHash,
    level: &str,
) -> String {
    format!(
        "bmpls query --carer {} --patient-id {} --grant {} --level {level}",
        carer_dir.display(),
        hex::encode(patient.0),
        hex::encode(grant.0)
    )
}

/// `bmpls revoke`.
pub fn revoke(args: RevokeArgs) -> anyhow::Result<()> {
    let patient = PatientKeystore::open(&args.patient)?;
    let typed = Typed::<32>::parse(&args.grant, "a grant hash")?;
    let grant = match typed {
        Typed::Full(bytes) => TxHash(bytes),
        abbreviated => runtime()?.block_on(async {
            let nodes = args.consortium.connect(patient.custodian_key()).await?;
            let given = grants_of(&nodes, GrantsAsked::OfPatient(patient.patient)).await;
            nodes.close().await;
            let given: Vec<[u8; 32]> = given?.iter().map(|g| g.grant.0).collect();
            anyhow::Ok(TxHash(abbreviated.resolve(
                &given,
                "grant",
                "the grants this patient gave",
            )?))
        })?,
    };
    let (_, height) = submit(
        &args.consortium,
        patient.reporter_key(),
        patient.revoke(&args.consortium.chain()?, grant),
        "revocation",
    )?;
    println!("grant {} revoked at height {height}", hex::encode(grant.0));
    Ok(())
}

/// `bmpls unfence`.
pub fn unfence(args: UnfenceArgs) -> anyhow::Result<()> {
    let patient = PatientKeystore::open(&args.patient)?;
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(args.fence.trim(), &mut bytes).map_err(|_| {
        anyhow::anyhow!(
            "a fence is named by its transaction hash, 64 hex digits, not {:?} (`bmpls fence` \
             prints it in full)",
            args.fence.trim()
        )
    })?;
    let fence = TxHash(bytes);
    let (_, height) = submit(
        &args.consortium,
        patient.custodian_key(),
        patient.remove_fence(&args.consortium.chain()?, fence),
        "fence removal",
    )?;
    println!(
        "fence {} removed at height {height}: its alerts stop",
        args.fence.trim()
    );
    Ok(())
}

fn parse_numbers<const N: usize>(text: &str, what: &str) -> anyhow::Result<[f64; N]> {
    let values: Vec<f64> = text
        .split(',')
        .map(|v| v.trim().parse::<f64>())
        .collect::<Result<_, _>>()
        .map_err(|_| anyhow::anyhow!("{what}: expected {N} comma-separated numbers"))?;
    values
        .try_into()
        .map_err(|_| anyhow::anyhow!("{what}: expected {N} comma-separated numbers"))
}

/// `bmpls query`.
pub fn query(args: QueryArgs) -> anyhow::Result<()> {
    let carer = CarerKeystore::open(&args.carer)?;
    let levels = crate::client::read_levels(&args.levels)?;
    let (level, depth) = level_arg(&levels, &args.level)?;
    let patient_typed = Typed::<16>::parse(&args.patient_id, "a patient id")?;
    let grant_typed = Typed::<32>::parse(&args.grant, "a grant hash")?;
    let (from_ms, to_ms) = window(args.from.as_deref(), args.days)?;
    anyhow::ensure!(
        (1..=MAX_ANSWER_RECORDS as u32).contains(&args.limit),
        "--limit must be 1 to {MAX_ANSWER_RECORDS}"
    );
    let area = area_arg(
        args.circle.as_deref(),
        args.area_box.as_deref(),
        args.polygon.as_deref(),
        depth,
        256,
    )?;
    let consortium = &args.consortium;
    let genesis = consortium.genesis()?;
    let validators = genesis.validators.crypto().clone();
    let verified = runtime()?.block_on(async {
        let nodes = consortium.connect(carer.identity()).await?;
        let result = async {
            let (patient, grant) =
                resolve_ids(&nodes, &carer, &patient_typed, &grant_typed).await?;
            let base = Query {
                patient,
                grant,
                level,
                from_ms,
                to_ms,
                ask: if args.last { Ask::Last } else { Ask::Track },
                limit: args.limit,
            };
            match &area {
                None => ask(&nodes, base, &validators, &levels, &carer).await,
                Some(cells) => {
                    bmpls_client::ask_area(&nodes, base, cells, &validators, &levels, &carer)
                        .await
                        .map_err(|e| ask_error(e, &levels))
                }
            }
        }
        .await;
        nodes.close().await;
        result
    })?;
    crate::output::print_answer(&verified, args.format, depth);
    if verified.records.is_empty() && args.area_box.is_some() {
        // A box given latitude first is valid and empty more often than not.
        eprintln!("no record in the box; note that --box is W,S,E,N (longitude first)");
    }
    Ok(())
}

/// The grants the chain holds for `asked`, as one validator says (see
/// [`bmpls_client::grants_of`]).
pub(crate) async fn grants_of(
    nodes: &Nodes,
    asked: GrantsAsked,
) -> anyhow::Result<Vec<GrantSummary>> {
    Ok(bmpls_client::grants_of(nodes, asked).await?)
}

/// `--patient-id` and `--grant` as the carer typed them: in full they are used as they are,
/// abbreviated they are resolved among the grants the chain holds for this carer.
async fn resolve_ids(
    nodes: &Nodes,
    carer: &CarerKeystore,
    patient: &Typed<16>,
    grant: &Typed<32>,
) -> anyhow::Result<(PatientId, TxHash)> {
    if let (Typed::Full(p), Typed::Full(g)) = (patient, grant) {
        return Ok((PatientId(*p), TxHash(*g)));
    }
    let held = grants_of(nodes, GrantsAsked::OfCarer(carer.carer)).await?;
    let patients: Vec<[u8; 16]> = held.iter().map(|g| g.patient.0).collect();
    let p = patient.resolve(
        &patients,
        "patient",
        "the patients whose grants this carer holds",
    )?;
    let grants: Vec<[u8; 32]> = held
        .iter()
        .filter(|g| g.patient.0 == p)
        .map(|g| g.grant.0)
        .collect();
    let g = grant.resolve(
        &grants,
        "grant",
        &format!("this carer's grants of patient {}", hex::encode(p)),
    )?;
    Ok((PatientId(p), TxHash(g)))
}

/// Sends one query and verifies its answer; a refusal or failure is an error naming the node.
pub(crate) async fn ask(
    nodes: &Nodes,
    query: Query,
    validators: &bmpls_crypto::ValidatorSet,
    levels: &LevelSet,
    carer: &CarerKeystore,
) -> anyhow::Result<VerifiedAnswer> {
    bmpls_client::ask(nodes, query, validators, levels, carer)
        .await
        .map_err(|e| ask_error(e, levels))
}

/// A failed question for people: a refusal says its times as dates and its levels by name.
pub(crate) fn ask_error(error: AskError, levels: &LevelSet) -> anyhow::Error {
    match error {
        AskError::Unauthorized { node, why } => {
            anyhow::anyhow!("refused by {node}: {}", refusal_text(&why, levels))
        }
        other => other.into(),
    }
}

/// [`ask_error`] as one line, for the console's pages.
pub(crate) fn ask_error_text(error: &AskError, levels: &LevelSet) -> String {
    match error {
        AskError::Unauthorized { node, why } => {
            format!("refused by {node}: {}", refusal_text(why, levels))
        }
        other => other.to_string(),
    }
}

/// A node's refusal for people: times as dates, levels by name.
pub(crate) fn refusal_text(why: &bmpls_net::query::Unauthorized, levels: &LevelSet) -> String {
    use bmpls_net::query::Unauthorized;
    let level = |index: u8| {
        levels
            .levels()
            .get(usize::from(index))
            .map_or_else(|| format!("level {index}"), |l| l.name.clone())
    };
    match *why {
        Unauthorized::OutsideValidity {
            valid_from_ms,
            valid_until_ms,
            now_ms,
        } => format!(
            "the grant is valid from {} until {}, not now ({})",
            iso(valid_from_ms),
            iso(valid_until_ms),
            iso(now_ms)
        ),
        Unauthorized::LevelTooFine { granted, asked } => format!(
            "{} is finer than the granted level, {}",
            level(asked),
            level(granted)
        ),
        Unauthorized::OutsideWindow {
            from_ms,
            to_ms,
            data_from_ms,
            data_to_ms,
        } => format!(
            "the window {} to {} reaches outside the grant's data, {} to {}",
            iso(from_ms),
            iso(to_ms),
            iso(data_from_ms),
            iso(data_to_ms)
        ),
        ref other => other.to_string(),
    }
}

/// `bmpls audit`: who looked at the patient's records, as the chain says, verified.
pub fn audit(args: AuditArgs) -> anyhow::Result<()> {
    let patient = PatientKeystore::open(&args.patient)?;
    let genesis = args.consortium.genesis()?;
    let validators = genesis.validators.crypto().clone();
    let request = AuditRequest {
        patient: patient.patient,
        from_height: Height(args.from_height),
        limit: args.limit,
    };
    let (addr, outcome) = runtime()?.block_on(async {
        let nodes = args.consortium.connect(patient.custodian_key()).await?;
        let mut outcome = nodes.audit(request.clone()).await;
        // A validator that joined from a snapshot after `from_height` does not hold the
        // trail: the others are asked in turn.
        for _ in 1..nodes.len() {
            let Ok((addr, AuditOutcome::NotHeld(_))) = &outcome else {
                break;
            };
            nodes.avoid(*addr);
            outcome = nodes.audit(request.clone()).await;
        }
        nodes.close().await;
        anyhow::Ok(outcome?)
    })?;
    let answer = match outcome {
        AuditOutcome::Answered(answer) => *answer,
        AuditOutcome::NotTheCustodian => anyhow::bail!(
            "refused by {addr}: only the patient's custodian may read the audit trail"
        ),
        AuditOutcome::Failed(why) | AuditOutcome::NotHeld(why) => {
            anyhow::bail!("{addr} failed: {}", why.as_str())
        }
    };
    let more = answer.more;
    let entries = verify_audit(answer, &request, &validators)
        .with_context(|| format!("the answer of {addr} does not verify"))?;
    let node_name = |id: &bmpls_types::ValidatorId| {
        genesis
            .names
            .iter()
            .find(|(_, v)| v == id)
            .map_or_else(|| hex::encode(&id.0[..8]), |(name, _)| name.clone())
    };
    println!(
        "{} audit entr{}, verified (each signed by its validator and proved into a committed block){}",
        entries.len(),
        if entries.len() == 1 { "y" } else { "ies" },
        if more {
            "; more: raise --limit or --from-height"
        } else {
            ""
        }
    );
    for entry in &entries {
        let a = &entry.audit;
        let level = patient
            .levels
            .levels()
            .get(usize::from(a.level.0))
            .map_or_else(|| a.level.0.to_string(), |l| l.name.clone());
        let what = match a.query {
            QueryKind::Alerts => format!(
                "delivered alerts to carer {}: fences at {level}, decided {} to {}",
                hex::encode(a.carer.0),
                iso(a.from_ms),
                iso(a.to_ms)
            ),
            kind => format!(
                "answered carer {}: {kind:?} at {level} for {} to {}",
                hex::encode(a.carer.0),
                iso(a.from_ms),
                iso(a.to_ms)
            ),
        };
        println!(
            "{}  height {:>6}  {} {what}",
            iso(entry.block_time_ms),
            entry.height.0,
            node_name(&a.node),
        );
    }
    Ok(())
}

/// The polygon of a GeoJSON file: a Polygon geometry, or a Feature or FeatureCollection whose
/// first geometry is one (coordinates in longitude, latitude).
pub(crate) fn polygon_file(path: &std::path::Path) -> anyhow::Result<geo::Polygon<f64>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let parsed: geojson::GeoJson = text
        .parse()
        .with_context(|| format!("{} is not GeoJSON", path.display()))?;
    let geometry = match parsed {
        geojson::GeoJson::Geometry(g) => Some(g),
        geojson::GeoJson::Feature(f) => f.geometry,
        geojson::GeoJson::FeatureCollection(c) => c.features.into_iter().find_map(|f| f.geometry),
    };
    let Some(geojson::Geometry {
        value: geojson::Value::Polygon(rings),
        ..
    }) = geometry
    else {
        anyhow::bail!("{}: expected a GeoJSON Polygon", path.display());
    };
    let ring = |points: &Vec<Vec<f64>>| -> anyhow::Result<geo::LineString<f64>> {
        points
            .iter()
            .map(|p| match p.as_slice() {
                [lon, lat, ..] => Ok(geo::coord! { x: *lon, y: *lat }),
                _ => anyhow::bail!(
                    "{}: a position needs longitude and latitude",
                    path.display()
                ),
            })
            .collect::<anyhow::Result<Vec<_>>>()
            .map(geo::LineString::new)
    };
    let mut rings = rings.iter();
    let exterior = ring(rings.next().context("a polygon without rings")?)?;
    let interiors = rings.map(ring).collect::<anyhow::Result<Vec<_>>>()?;
    Ok(geo::Polygon::new(exterior, interiors))
}

/// `--box W,S,E,N`, checked: its latitudes must be latitudes and its south edge south of its
/// north edge, which is how a box given latitude first (as `--circle` is) shows. A west edge
/// east of the east edge is a box across the antimeridian, and allowed.
fn box_arg(text: &str) -> anyhow::Result<[f64; 4]> {
    let [w, s, e, n] = parse_numbers::<4>(text, "--box")?;
    let hint = "--box is W,S,E,N: longitude first, unlike --circle";
    for (name, lat) in [("south", s), ("north", n)] {
        anyhow::ensure!(
            (-90.0..=90.0).contains(&lat),
            "--box: the {name} edge {lat} is not a latitude ({hint})"
        );
    }
    for (name, lon) in [("west", w), ("east", e)] {
        anyhow::ensure!(
            (-180.0..=180.0).contains(&lon),
            "--box: the {name} edge {lon} is not a longitude ({hint})"
        );
    }
    anyhow::ensure!(
        s <= n,
        "--box: the south edge {s} is north of the north edge {n} ({hint})"
    );
    Ok([w, s, e, n])
}

/// The cells of `--circle`, `--box` or `--polygon` at `depth`, in at most `max` runs.
pub(crate) fn area_arg(
    circle: Option<&str>,
    area_box: Option<&str>,
    polygon: Option<&std::path::Path>,
    depth: u8,
    max: usize,
) -> anyhow::Result<Option<Vec<bmpls_grid::IndexRange>>> {
    if let Some(path) = polygon {
        return Ok(Some(bmpls_grid::cover_polygon(
            &polygon_file(path)?,
            depth,
            max,
        )?));
    }
    Ok(match (area_box, circle) {
        (Some(_), Some(_)) => anyhow::bail!("give --box or --circle, not both"),
        (Some(b), None) => {
            let [w, s, e, n] = box_arg(b)?;
            Some(cover_lon_lat_box(w, s, e, n, depth, max)?)
        }
        (None, Some(c)) => {
            let [lat, lon, radius] = parse_numbers::<3>(c, "--circle")?;
            Some(cover_circle(lon, lat, radius, depth, max)?)
        }
        (None, None) => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_name_levels_and_dates() {
        let levels =
            LevelSet::from_toml(include_str!("../../../config/levels.toml")).expect("levels");
        let text = refusal_text(
            &bmpls_net::query::Unauthorized::LevelTooFine {
                granted: 3,
                asked: 2,
            },
            &levels,
        );
        assert_eq!(
            text,
            "neighbourhood is finer than the granted level, district"
        );
        let text = refusal_text(
            &bmpls_net::query::Unauthorized::OutsideWindow {
                from_ms: 1_700_000_000_000,
                to_ms: 1_700_086_399_999,
                data_from_ms: 1_700_092_800_000,
                data_to_ms: 1_700_179_199_999,
            },
            &levels,
        );
        assert!(
            text.starts_with("the window 2023-11-14T22:13:20.000Z to 2023-11-15T22:13:19.999Z"),
            "{text}"
        );
    }

    #[test]
    fn times_print_with_three_fractional_digits() {
        assert_eq!(iso(1_700_000_000_000), "2023-11-14T22:13:20.000Z");
        assert_eq!(iso(1_700_000_000_500), "2023-11-14T22:13:20.500Z");
        assert_eq!(iso(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
    }

    #[test]
    fn ids_are_printed_and_asked_for_in_full() {
        let hint = query_hint(
            std::path::Path::new("nurse"),
            &PatientId([0xab; 16]),
            &TxHash([0xcd; 32]),
            "street",
        );
        assert_eq!(
            hint,
            format!(
                "bmpls query --carer nurse --patient-id {} --grant {} --level street",
                "ab".repeat(16),
                "cd".repeat(32)
            )
        );
        let typed = Typed::<32>::parse("a63d1d26…828", "a grant hash").expect("abbreviated");
        assert!(matches!(typed, Typed::Abbreviated { .. }));
    }

    #[test]
    fn a_box_latitude_first_or_with_a_circle_is_refused_saying_why() {
        assert_eq!(
            box_arg("4.88,52.36,4.90,52.38").expect("lon first"),
            [4.88, 52.36, 4.90, 52.38]
        );
        box_arg("179.5,-17,-179.5,-16").expect("across the antimeridian");
        for (text, why) in [
            (
                "4.88,52.38,4.90,52.36",
                "the south edge 52.38 is north of the north edge 52.36",
            ),
            (
                "-33.9,151.2,-33.8,151.3",
                "the south edge 151.2 is not a latitude",
            ),
            (
                "4.88,52.36,190,52.38",
                "the east edge 190 is not a longitude",
            ),
            ("4.88,52.36,4.90", "expected 4 comma-separated numbers"),
        ] {
            let error = box_arg(text).expect_err(text).to_string();
            assert!(error.contains(why), "{text}: {error}");
            assert!(
                why.starts_with("expected") || error.contains("longitude first"),
                "{error}"
            );
        }
        let error = area_arg(
            Some("52.37,4.89,100"),
            Some("4.88,52.36,4.90,52.38"),
            None,
            16,
            64,
        )
        .expect_err("both");
        assert!(error.to_string().contains("not both"), "{error}");
    }

    fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("write");
        path
    }

    #[test]
    fn geojson_polygons_are_read_from_geometries_features_and_collections() {
        let dir = tempfile::tempdir().expect("temp dir");
        let ring = "[[[4.88,52.36],[4.90,52.36],[4.90,52.38],[4.88,52.38],[4.88,52.36]]]";
        let geometry = format!("{{\"type\":\"Polygon\",\"coordinates\":{ring}}}");
        for (name, text) in [
            ("g.json", geometry.clone()),
            (
                "f.json",
                format!("{{\"type\":\"Feature\",\"properties\":{{}},\"geometry\":{geometry}}}"),
            ),
            (
                "c.json",
                format!(
                    "{{\"type\":\"FeatureCollection\",\"features\":[{{\"type\":\"Feature\",\"properties\":{{}},\"geometry\":{geometry}}}]}}"
                ),
            ),
        ] {
            let polygon = polygon_file(&write(&dir, name, &text)).expect(name);
            assert_eq!(polygon.exterior().0.len(), 5, "{name}");
            assert_eq!(polygon.exterior().0[1], geo::coord! { x: 4.90, y: 52.36 });
            let cells = area_arg(None, None, Some(&dir.path().join(name)), 16, 64)
                .expect("covers")
                .expect("an area");
            assert!(!cells.is_empty());
        }
    }

    #[test]
    fn other_geojson_and_garbage_are_refused_with_the_file_named() {
        let dir = tempfile::tempdir().expect("temp dir");
        for (name, text) in [
            (
                "point.json",
                "{\"type\":\"Point\",\"coordinates\":[4.9,52.37]}",
            ),
            ("garbage.json", "not json at all"),
            (
                "short.json",
                "{\"type\":\"Polygon\",\"coordinates\":[[[4.9],[4.8,52.3],[4.9,52.3],[4.9]]]}",
            ),
        ] {
            let error = polygon_file(&write(&dir, name, text)).expect_err(name);
            assert!(format!("{error:#}").contains(name), "{error:#}");
        }
    }
}

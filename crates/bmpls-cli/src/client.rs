//! The client commands: `bmpls status`, `bmpls patient`, `bmpls report`.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use clap::{Args, Subcommand};

use bmpls_client::keystore::{DEFAULT_EPOCH_MS, EnrolmentRequest};
use bmpls_client::{Fix, Nodes, PatientKeystore};
use bmpls_consensus::Genesis;
use bmpls_crypto::SigningKey;
use bmpls_crypto::keyfile::read_signing_key;
use bmpls_net::{NextSeqOutcome, RefusalCode, Submitted, Trust};
use bmpls_types::{ChainId, Trigger};

/// How to reach the consortium (defaults: the local cluster of README "A local cluster").
#[derive(Debug, Args)]
pub struct Consortium {
    /// A validator's client address, IP:port or host:port (a DNS name is resolved when the
    /// command starts); repeat it to fail over between validators.
    #[arg(
        long = "node",
        value_name = "HOST:PORT",
        default_value = "127.0.0.1:7201"
    )]
    nodes: Vec<String>,
    /// The consortium CA certificate, pinned: a node must present a certificate it signed.
    #[arg(long, default_value = "certs/local/ca.pem")]
    ca: PathBuf,
    /// The genesis file: a node's certificate must name one of its validators.
    #[arg(long, default_value = "certs/local/genesis.toml")]
    genesis: PathBuf,
}

impl Consortium {
    /// The genesis file, read and validated.
    pub(crate) fn genesis(&self) -> anyhow::Result<Genesis> {
        let text = std::fs::read_to_string(&self.genesis).with_context(|| {
            format!(
                "reading {} (--genesis{})",
                self.genesis.display(),
                outside_hint(&self.genesis)
            )
        })?;
        Genesis::from_toml(&text).with_context(|| format!("in {}", self.genesis.display()))
    }

    /// The chain the genesis names: what every transaction is signed for.
    pub(crate) fn chain(&self) -> anyhow::Result<ChainId> {
        Ok(self.genesis()?.validators.crypto().chain_id().clone())
    }

    /// The consortium's CA and validators, as clients pin them.
    pub(crate) fn trust(&self) -> anyhow::Result<Trust> {
        let genesis = self.genesis()?;
        let hint = || format!("--ca {}{}", self.ca.display(), outside_hint(&self.ca));
        let ca = std::fs::read_to_string(&self.ca).with_context(hint)?;
        bmpls_client::consortium::trust_of(&genesis, &ca).with_context(hint)
    }

    /// Clients of the validators (inside a tokio runtime: the QUIC endpoint needs one).
    pub(crate) async fn connect(&self, key: &SigningKey) -> anyhow::Result<Nodes> {
        let trust = self.trust()?;
        Nodes::resolve(&self.nodes, &trust, key)
            .await
            .context("--node")
    }
}

/// What to say when a default path relative to the repository root is missing: the command
/// probably runs elsewhere (docs/operating.md, "Outside the repository root").
pub(crate) fn outside_hint(path: &std::path::Path) -> &'static str {
    if path.is_relative() && !path.exists() {
        "; the defaults are relative to the repository root: give the path when running elsewhere"
    } else {
        ""
    }
}

/// The level configuration at `path` (`--levels`), each failure naming the file.
pub(crate) fn read_levels(path: &std::path::Path) -> anyhow::Result<bmpls_grid::LevelSet> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "reading {} (--levels{})",
            path.display(),
            outside_hint(path)
        )
    })?;
    bmpls_grid::LevelSet::from_toml(&text).with_context(|| format!("in {}", path.display()))
}

/// A validator's key file in the local cluster, as enrol hints name it.
pub(crate) const OPERATOR_KEY_EXAMPLE: &str = "certs/local/node1/validator.key";

/// Arguments of `bmpls status`. Its `--node` is every node to ask, not a failover list.
#[derive(Debug, Args)]
#[command(mut_arg("nodes", |arg| arg.help(
    "A validator's client address, IP:port or host:port; repeat it to ask several (each is \
     asked, and listed)"
)))]
pub struct StatusArgs {
    #[command(flatten)]
    consortium: Consortium,
}

/// A patient's keystore.
#[derive(Debug, Subcommand)]
pub enum PatientCommand {
    /// Create a patient's keystore: a pseudonym, the reporter and custodian keys, the master
    /// secret of the location keys (secret files are owner-only).
    #[command(after_help = "Example: bmpls patient new --out patients/alice")]
    New {
        /// Folder to create.
        #[arg(long)]
        out: PathBuf,
        /// The precision levels the records will carry.
        #[arg(long, default_value = "config/levels.toml")]
        levels: PathBuf,
        /// Length of a key epoch in hours (grants open whole epochs).
        #[arg(long, default_value_t = 24)]
        epoch_hours: u64,
    },
    /// Set the keystore's next sequence number to the chain's, as a validator reads it from
    /// the committed reports: for a keystore restored from a backup, whose reports are refused
    /// as `Replay … next is N`. Signed by the reporter key.
    #[command(after_help = "Example: bmpls patient resync --patient patients/alice")]
    Resync {
        /// The patient's keystore.
        #[arg(long)]
        patient: PathBuf,
        #[command(flatten)]
        consortium: Consortium,
    },
    /// Write the patient's enrolment request: the pseudonym, public keys and record shape an
    /// operator signs with `patient enrol --request` (no secret in it). A phone app's keystore
    /// (bmpls-mobile) writes the same text.
    #[command(
        after_help = "Example: bmpls patient request --patient patients/alice --out alice.enrol"
    )]
    Request {
        /// The patient's keystore.
        #[arg(long)]
        patient: PathBuf,
        /// The file to write (default: standard output).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Enrol the patient on the chain, signed by a validator operator's key: from the
    /// patient's keystore, or from the enrolment request its custodian handed over.
    #[command(
        after_help = "Example: bmpls patient enrol --patient patients/alice --operator-key certs/local/node1/validator.key"
    )]
    Enrol {
        /// The patient's keystore.
        #[arg(long, required_unless_present = "request", conflicts_with = "request")]
        patient: Option<PathBuf>,
        /// The patient's enrolment request (`patient request`, or a phone app's), in place of
        /// the keystore: check its pseudonym with the custodian before signing it.
        #[arg(long)]
        request: Option<PathBuf>,
        /// The operator's key (a validator's key file, e.g. certs/local/node1/validator.key).
        #[arg(long)]
        operator_key: PathBuf,
        #[command(flatten)]
        consortium: Consortium,
    },
}

/// Arguments of `bmpls report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The patient's keystore.
    #[arg(long)]
    patient: PathBuf,
    /// Latitude in degrees (WGS84).
    #[arg(long, allow_hyphen_values = true, required_unless_present_any = ["from", "flush"])]
    lat: Option<f64>,
    /// Longitude in degrees (WGS84).
    #[arg(long, allow_hyphen_values = true, required_unless_present_any = ["from", "flush"])]
    lon: Option<f64>,
    /// Report no new fix: send the records waiting in the outbox (fails if some still wait).
    #[arg(long, conflicts_with_all = ["lat", "lon", "from", "time_ms", "altitude_m", "speed_m_s", "battery"])]
    flush: bool,
    /// Keep trying for up to this many seconds while no validator answers, waiting longer
    /// between tries (0: try once; what is not sent waits in the outbox either way).
    #[arg(long, default_value_t = 0)]
    wait_s: u64,
    /// Report every fix of a file instead: OwnTracks JSON (one message per line, as the
    /// recorder stores them; encrypted payloads need --passphrase-file), GPX, or GeoJSON points.
    /// Lines that are not fixes are listed with their line number and skipped.
    #[arg(long, conflicts_with_all = ["lat", "lon", "time_ms", "altitude_m", "speed_m_s", "battery"])]
    from: Option<PathBuf>,
    /// The OwnTracks encryption passphrase, read from this file (never from the command line).
    #[arg(long, requires = "from")]
    passphrase_file: Option<PathBuf>,
    /// With --from: refuse the whole file if any line is not a fix.
    #[arg(long, requires = "from")]
    strict: bool,
    /// Horizontal accuracy in metres.
    #[arg(long, default_value_t = 10.0)]
    accuracy: f64,
    /// Altitude in metres (default: not given).
    #[arg(long, allow_hyphen_values = true)]
    altitude_m: Option<f64>,
    /// Ground speed in metres per second (default: not given).
    #[arg(long)]
    speed_m_s: Option<f64>,
    /// Battery charge in per cent, 1 to 100 (default: not given).
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=100))]
    battery: Option<u8>,
    /// Fix time in Unix milliseconds (default: now), from 2000-01-01 to a day ahead of now.
    #[arg(long)]
    time_ms: Option<u64>,
    #[command(flatten)]
    consortium: Consortium,
}

pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

/// `bmpls status`.
pub fn status(args: StatusArgs) -> anyhow::Result<()> {
    // Status needs no identity: a throwaway key signs the request.
    let key = SigningKey::generate(&mut rand::rngs::OsRng);
    runtime()?.block_on(async {
        let nodes = args.consortium.connect(&key).await?;
        let statuses = nodes.statuses().await;
        nodes.close().await;
        for (addr, status) in &statuses {
            match status {
                Ok(s) => println!(
                    "{addr}  chain {}  height {}  tip {}  mempool {}",
                    s.chain_id.as_str(),
                    s.height,
                    hex::encode(&s.tip.0[..8]),
                    s.mempool
                ),
                Err(e) => println!("{addr}  unreachable: {e}"),
            }
        }
        // A health check: it fails when no node answers.
        let answered = statuses.iter().filter(|(_, s)| s.is_ok()).count();
        anyhow::ensure!(
            answered > 0,
            "no node answered (of {} asked)",
            statuses.len()
        );
        Ok(())
    })
}

/// `bmpls patient …`.
pub fn patient(command: PatientCommand) -> anyhow::Result<()> {
    match command {
        PatientCommand::New {
            out,
            levels,
            epoch_hours,
        } => {
            let text = std::fs::read_to_string(&levels).with_context(|| {
                format!(
                    "reading {} (--levels{})",
                    levels.display(),
                    outside_hint(&levels)
                )
            })?;
            anyhow::ensure!(
                (1..=24 * 366).contains(&epoch_hours),
                "--epoch-hours must be 1 to 8784"
            );
            let epoch_ms = if epoch_hours == 24 {
                DEFAULT_EPOCH_MS
            } else {
                epoch_hours * 3_600_000
            };
            let store = PatientKeystore::create(&out, &text, epoch_ms, &mut rand::rngs::OsRng)?;
            println!(
                "patient {} in {} ({} levels)\n  enrol it (an operator, with a validator's key): bmpls patient enrol --patient {} --operator-key {OPERATOR_KEY_EXAMPLE}",
                hex::encode(store.patient.0),
                out.display(),
                store.levels.len(),
                out.display()
            );
            Ok(())
        }
        PatientCommand::Resync {
            patient,
            consortium,
        } => resync(&patient, &consortium),
        PatientCommand::Request { patient, out } => {
            let text = PatientKeystore::open(&patient)?
                .enrolment_request()
                .to_text();
            match out {
                Some(path) => std::fs::write(&path, text)
                    .with_context(|| format!("writing {}", path.display()))?,
                None => print!("{text}"),
            }
            Ok(())
        }
        PatientCommand::Enrol {
            patient,
            request,
            operator_key,
            consortium,
        } => {
            let request = match (patient, request) {
                (Some(dir), _) => PatientKeystore::open(&dir)?.enrolment_request(),
                (None, Some(path)) => EnrolmentRequest::from_text(
                    &std::fs::read_to_string(&path)
                        .with_context(|| format!("reading {}", path.display()))?,
                )
                .with_context(|| format!("in {}", path.display()))?,
                (None, None) => anyhow::bail!("give --patient or --request"),
            };
            let operator = read_signing_key(&operator_key)?;
            let outcome = runtime()?.block_on(async {
                let nodes = consortium.connect(&operator).await?;
                let chain = consortium.chain()?;
                let outcome = nodes.submit(vec![request.sign(&operator, &chain)]).await;
                nodes.close().await;
                anyhow::Ok(outcome?)
            })?;
            match outcome.first() {
                Some(Submitted::Committed { height, .. }) => {
                    println!(
                        "patient {} enrolled at height {height}",
                        hex::encode(request.patient.0)
                    );
                    Ok(())
                }
                Some(Submitted::Refused { code, reason }) => {
                    anyhow::bail!("refused ({code:?}): {}", reason.as_str())
                }
                None => anyhow::bail!("the node gave no outcome"),
            }
        }
    }
}

/// `bmpls patient resync`: the keystore's next sequence number from the chain.
fn resync(dir: &std::path::Path, consortium: &Consortium) -> anyhow::Result<()> {
    let store = PatientKeystore::open(dir)?;
    let had = store.next_seq()?;
    // Every --node is asked: one still catching up after a restart knows an older number, so
    // the answer read at the greatest height wins.
    let answers = runtime()?.block_on(async {
        let nodes = consortium.connect(store.reporter_key()).await?;
        let answers = nodes.next_seqs(store.patient).await;
        nodes.close().await;
        anyhow::Ok(answers)
    })?;
    let best = answers
        .iter()
        .filter_map(|(addr, answer)| match answer {
            Ok(NextSeqOutcome::Next { seq, height }) => Some((*height, *seq, *addr)),
            _ => None,
        })
        .max();
    let Some((height, seq, _)) = best else {
        let why: Vec<String> = answers
            .iter()
            .map(|(addr, answer)| match answer {
                Ok(_) => format!(
                    "{addr} knows no patient {} with this reporter key (enrolled on this chain?)",
                    hex::encode(store.patient.0)
                ),
                Err(e) => format!("{addr}: {e}"),
            })
            .collect();
        anyhow::bail!(
            "no validator gave the next sequence number: {}",
            why.join("; ")
        );
    };
    store.set_next_seq(seq)?;
    if seq == had {
        println!("next record is {seq}, as the chain says at height {height} (unchanged)");
    } else {
        println!(
            "next record is {seq}, as the chain says at height {height} (the keystore said {had})"
        );
    }
    Ok(())
}

/// The refusal of record `seq`, with the way forward when the keystore is behind the chain
/// (restored from a backup, or copied): `patient resync` reads the chain's next number.
pub(crate) fn report_refused(
    seq: u64,
    code: RefusalCode,
    reason: &str,
    patient: &std::path::Path,
) -> anyhow::Error {
    let mut text = format!("record {seq} refused ({code:?}): {reason}");
    if code == RefusalCode::Replay {
        text.push_str(&format!(
            "; if this keystore is behind the chain (restored from a backup?), run: bmpls patient resync --patient {}",
            patient.display()
        ));
    }
    anyhow::anyhow!(text)
}

/// `bmpls report`: the fix is queued in the outbox (synced) before anything is sent, then the
/// outbox is sent; a fix no validator took waits there, and the command still succeeds.
pub fn report(args: ReportArgs) -> anyhow::Result<()> {
    if args.flush {
        return crate::send::flush(&args.patient, args.wait_s, &args.consortium);
    }
    if let Some(path) = &args.from {
        return crate::import::report_file(
            &args.patient,
            path,
            args.passphrase_file.as_deref(),
            args.strict,
            &args.consortium,
            crate::send::patience(args.wait_s),
        );
    }
    let store = PatientKeystore::open(&args.patient)?;
    let (Some(lat), Some(lon)) = (args.lat, args.lon) else {
        anyhow::bail!("give --lat and --lon, or --from FILE");
    };
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as u64;
    let fix = Fix {
        lat,
        lon,
        accuracy_m: args.accuracy,
        // A measurement not given is 0, which carers' output reads as absent.
        altitude_m: args.altitude_m.unwrap_or(0.0),
        speed_m_s: args.speed_m_s.unwrap_or(0.0),
        battery_percent: args.battery.unwrap_or(0),
        trigger: Trigger::Manual,
        fix_time_ms: args.time_ms.unwrap_or(now_ms),
    };
    bmpls_client::check_fix_time(fix.fix_time_ms, now_ms).context("--time-ms")?;
    bmpls_client::check_fix(&fix)?;
    // The genesis (for the chain the record is signed for) and the CA are read before the fix
    // is queued: a mistake there is told now, not after the fix waited for nothing.
    let chain = args.consortium.chain()?;
    args.consortium.trust()?;
    let mut queue = crate::send::open_queue(store, &chain)?;
    let queued = queue.queue(&[fix], &mut rand::rngs::OsRng)?;
    if queued.seqs.is_empty() {
        println!(
            "a fix at {} ms was already reported: not queued again",
            fix.fix_time_ms
        );
    }
    let seq = queued.seqs.start;
    let (store, outbox) = queue.parts();
    let flushed = runtime()?.block_on(crate::send::send(
        outbox,
        store,
        &args.consortium,
        crate::send::patience(args.wait_s),
    ))?;
    let seqs: Vec<u64> = flushed.delivered.iter().map(|(s, _)| *s).collect();
    match flushed.delivered.last() {
        Some((_, height)) if seqs == [seq] => println!("record {seq} committed at height {height}"),
        Some((_, height)) => println!(
            "{} committed (last at height {height})",
            crate::send::records(&seqs)
        ),
        None => {}
    }
    crate::send::refusals(&flushed, &args.patient)?;
    if flushed.waiting > 0 {
        let what = if queued.seqs.is_empty() {
            "nothing new queued".to_string()
        } else {
            format!("record {seq} queued")
        };
        println!(
            "{what}: {}",
            crate::send::still_waiting(&flushed, &args.patient)
        );
    }
    Ok(())
}

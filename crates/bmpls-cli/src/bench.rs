//! `bmpls bench …`: quick speed measurements printed as a table (the criterion benches in
//! `benches/` give the statistically careful figures).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};
use bmpls_ope::{OpeCipher, OpeParams, OpeTable};
use clap::{Args, Subcommand};
use rand::{Rng, SeedableRng, rngs::StdRng};

/// What to measure.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Order-preserving encryption: encrypt and decrypt plaintexts under one random key.
    #[command(after_help = "Example: target/release/bmpls bench ope --bits 32 --count 100000")]
    Ope(OpeArgs),
    /// Ingest: start a loopback cluster of validators in this process, drive it from many
    /// reporters submitting real encrypted, signed records, and print committed records/s and
    /// commit latency.
    #[command(after_help = "Example: target/release/bmpls bench ingest --records 20000")]
    Ingest(crate::ingest::IngestArgs),
    /// Queries: fill a validator with a million records over the network, then measure a
    /// carer's last / one-day track / 1 km² area queries over QUIC (answered, and verified);
    /// then restart the validator and time its start from its checkpoint beside a whole replay.
    #[command(
        after_help = "Example: target/release/bmpls bench query --records 100000 --queries 50"
    )]
    Query(crate::querybench::QueryBenchArgs),
    /// Alerts: a patient steps in and out of a fence one report at a time; measure submit to
    /// delivery at the watching carer.
    #[command(after_help = "Example: target/release/bmpls bench alerts --alerts 100")]
    Alerts(crate::querybench::AlertBenchArgs),
    /// Phone: what reporting costs a phone on the wire (bytes and datagrams per fix, QUIC and
    /// TLS included) when it wakes for each fix, for a batch, or keeps its connection open;
    /// the keep-alive of an idle connection; the CPU time to build a record.
    #[command(after_help = "Example: target/release/bmpls bench phone --wakeups 20 --batch 20")]
    Phone(crate::phonebench::PhoneBenchArgs),
    /// Privacy: leakage-abuse attacks on a simulated patient's encrypted records, in metres,
    /// per storage scheme (all levels order-preserving, as records were before store schema
    /// 10; order-revealing below district, as they are now) and level, beside each scheme's
    /// costs.
    ///
    /// The attacks: (a) a node's disk plus the patient's home address places every fix from
    /// the ciphertexts' distances to home's (window distance); (b) a carer granted a level
    /// refines its cells from any finer orderable ciphertexts its answers carry; (c) a daily
    /// place (home) averaged across per-day keys, with no key and no auxiliary knowledge. The
    /// costs: reporter encryption and node comparison per record and level, record and
    /// answer bytes. Runs in process, no cluster; prints tables, and an SVG chart with --svg.
    #[command(
        after_help = "Example: target/release/bmpls bench privacy --days 365 --seed 1 --svg privacy.svg"
    )]
    Privacy(crate::privacybench::PrivacyBenchArgs),
}

/// Options of `bmpls bench ope`.
#[derive(Debug, Args)]
pub struct OpeArgs {
    /// Plaintext domain sizes in bits (1–52).
    #[arg(long, value_delimiter = ',', default_value = "20,32,50")]
    bits: Vec<u8>,
    /// Ciphertext range in bits (default: domain + 64, at most 127).
    #[arg(long)]
    range_bits: Option<u8>,
    /// Random plaintexts encrypted per measurement.
    #[arg(long, default_value_t = 100_000)]
    count: u32,
    /// Top tree levels memoised per key (0 = none, as in implementations without a cache).
    #[arg(long, default_value_t = bmpls_ope::DEFAULT_CACHE_DEPTH)]
    cache_depth: u8,
    /// Read the plaintexts from this file (one decimal integer per line) instead.
    #[arg(long)]
    plaintexts: Option<PathBuf>,
}

/// Runs one benchmark command.
pub fn run(command: BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::Ope(args) => ope(&args),
        BenchCommand::Ingest(args) => crate::ingest::run(&args),
        BenchCommand::Query(args) => crate::querybench::run_query(&args),
        BenchCommand::Alerts(args) => crate::querybench::run_alerts(&args),
        BenchCommand::Phone(args) => crate::phonebench::run(&args),
        BenchCommand::Privacy(args) => crate::privacybench::run_privacy(&args),
    }
}

fn ope(args: &OpeArgs) -> anyhow::Result<()> {
    let mut rng = StdRng::from_entropy();
    let from_file = args.plaintexts.as_ref().map(read_plaintexts).transpose()?;
    println!(
        "bits range  mode            ns/op   (one key, cache depth {})",
        args.cache_depth
    );
    for &bits in &args.bits {
        let params = match args.range_bits {
            Some(range) => OpeParams::new(bits, range),
            None => OpeParams::with_default_expansion(bits),
        }
        .with_context(|| format!("{bits}-bit domain"))?;
        let plaintexts = match &from_file {
            Some(list) => {
                if let Some(bad) = list.iter().find(|&&m| m >> bits != 0) {
                    bail!("plaintext {bad} does not fit in {bits} bits");
                }
                list.clone()
            }
            None => (0..args.count)
                .map(|_| rng.gen_range(0..1u64 << bits))
                .collect(),
        };
        let key: [u8; 32] = rng.r#gen();
        let fresh = || OpeCipher::new(&key, params).with_cache_depth(args.cache_depth);
        let range = params.range_bits();
        let report = |label: &str, ns: f64| println!("{bits:>4} {range:>5}  {label:<14} {ns:>7.0}");

        let mut cipher = fresh();
        let ns = time_each(&plaintexts, |m| cipher.encrypt_deterministic(m))?;
        report("deterministic", ns);
        let mut cipher = fresh();
        let mut coins = StdRng::from_entropy();
        let ns = time_each(&plaintexts, |m| cipher.encrypt(m, &mut coins))?;
        report("randomised", ns);
        let ciphertexts: Vec<u128> = plaintexts
            .iter()
            .map(|&m| cipher.encrypt(m, &mut coins))
            .collect::<Result<_, _>>()?;
        let mut cipher = fresh();
        let ns = time_each(&ciphertexts, |c| cipher.decrypt(c).map(u128::from))?;
        report("decrypt", ns);
        if bits <= bmpls_ope::MAX_TABLE_BITS {
            let start = Instant::now();
            let table = OpeTable::build(&mut fresh())?;
            let build_ms = start.elapsed().as_secs_f64() * 1e3;
            let ns = time_each(&plaintexts, |m| table.encrypt(m, &mut coins))?;
            report("table rand.", ns);
            println!("{bits:>4} {range:>5}  table build    {build_ms:>7.0} ms");
        }
    }
    Ok(())
}

/// Mean nanoseconds per call of `f` over `inputs`.
fn time_each<T: Copy, E: std::error::Error + Send + Sync + 'static>(
    inputs: &[T],
    mut f: impl FnMut(T) -> Result<u128, E>,
) -> anyhow::Result<f64> {
    let start = Instant::now();
    let mut sink = 0u128;
    for &x in inputs {
        sink ^= f(x)?;
    }
    std::hint::black_box(sink);
    Ok(start.elapsed().as_nanos() as f64 / inputs.len().max(1) as f64)
}

fn read_plaintexts(path: &PathBuf) -> anyhow::Result<Vec<u64>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(number, line)| {
            line.trim()
                .parse()
                .with_context(|| format!("{}:{}: not a plaintext", path.display(), number + 1))
        })
        .collect()
}

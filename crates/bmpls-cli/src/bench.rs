//! `bmpls bench …`: quick speed measurements printed as a table (criterion benches in `benches/`
//! give the statistically careful figures).

use std::time::Instant;

use anyhow::Context;
use bmpls_ope::{OpeCipher, OpeParams, OpeTable};
use clap::Subcommand;
use rand::{Rng, SeedableRng, rngs::StdRng};

/// What to measure.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Order-preserving encryption: encrypt and decrypt random plaintexts under one key.
    Ope {
        /// Plaintext domain sizes in bits (1–52).
        #[arg(long, value_delimiter = ',', default_value = "20,32,50")]
        bits: Vec<u8>,
        /// Plaintexts encrypted per measurement.
        #[arg(long, default_value_t = 100_000)]
        count: u32,
    },
}

/// Runs one benchmark command.
pub fn run(command: BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::Ope { bits, count } => ope(&bits, count),
    }
}

fn ope(bits: &[u8], count: u32) -> anyhow::Result<()> {
    println!("bits  mode            ns/op   (count {count}, one key, warm cache)");
    let mut rng = StdRng::from_entropy();
    for &b in bits {
        let params = OpeParams::with_default_expansion(b).context("domain size")?;
        let key: [u8; 32] = rng.r#gen();
        let mut cipher = OpeCipher::new(&key, params);
        let plaintexts: Vec<u64> = (0..count).map(|_| rng.gen_range(0..1u64 << b)).collect();
        let time = |label: &str, f: &mut dyn FnMut(u64) -> anyhow::Result<u128>| {
            let start = Instant::now();
            let mut sink = 0u128;
            for &m in &plaintexts {
                sink ^= f(m)?;
            }
            let ns = start.elapsed().as_nanos() as f64 / f64::from(count);
            println!("{b:>4}  {label:<14} {ns:>7.0}   ({sink:x})");
            Ok::<_, anyhow::Error>(())
        };
        time("deterministic", &mut |m| {
            Ok(cipher.encrypt_deterministic(m)?)
        })?;
        let mut cipher = OpeCipher::new(&key, params);
        let mut coins = StdRng::from_entropy();
        time("randomised", &mut |m| Ok(cipher.encrypt(m, &mut coins)?))?;
        let ciphertexts: Vec<u128> = plaintexts
            .iter()
            .map(|&m| cipher.encrypt(m, &mut coins))
            .collect::<Result<_, _>>()?;
        let mut index = 0usize;
        time("decrypt", &mut |_| {
            let c = ciphertexts[index];
            index += 1;
            Ok(u128::from(cipher.decrypt(c)?))
        })?;
        if b <= bmpls_ope::MAX_TABLE_BITS {
            let start = Instant::now();
            let table = OpeTable::build(&mut cipher)?;
            println!(
                "{b:>4}  table build    {:>7.0} ms",
                start.elapsed().as_secs_f64() * 1e3
            );
            time("table rand.", &mut |m| Ok(table.encrypt(m, &mut coins)?))?;
        }
    }
    Ok(())
}

//! Order-preserving encryption: encrypt and decrypt at 20-, 32- and 50-bit domains, both modes,
//! and the table for small domains. Run with `cargo bench -p bmpls-benches --bench ope`.
#![allow(missing_docs)]

use bmpls_ope::{OpeCipher, OpeParams, OpeTable};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const KEY: [u8; 32] = [42; 32];
/// Distinct plaintexts cycled through, so the memoised top of the tree is as warm as it is for a
/// reporter that has encrypted a few thousand fixes under the key.
const PLAINTEXTS: usize = 4096;

fn plaintexts(bits: u8) -> Vec<u64> {
    let mut rng = StdRng::seed_from_u64(u64::from(bits));
    (0..PLAINTEXTS)
        .map(|_| rng.gen_range(0..1u64 << bits))
        .collect()
}

fn encrypt(c: &mut Criterion) {
    let mut group = c.benchmark_group("ope");
    group.throughput(Throughput::Elements(1));
    for bits in [20u8, 32, 50] {
        let params = OpeParams::with_default_expansion(bits).expect("valid");
        let inputs = plaintexts(bits);
        let mut cipher = OpeCipher::new(&KEY, params);
        let mut i = 0usize;
        group.bench_function(BenchmarkId::new("encrypt_deterministic", bits), |b| {
            b.iter(|| {
                i = (i + 1) % PLAINTEXTS;
                cipher.encrypt_deterministic(inputs[i]).expect("in domain")
            })
        });
        let mut rng = StdRng::seed_from_u64(1);
        group.bench_function(BenchmarkId::new("encrypt_randomised", bits), |b| {
            b.iter(|| {
                i = (i + 1) % PLAINTEXTS;
                cipher.encrypt(inputs[i], &mut rng).expect("in domain")
            })
        });
        let ciphertexts: Vec<u128> = inputs
            .iter()
            .map(|&m| cipher.encrypt(m, &mut rng).expect("in domain"))
            .collect();
        group.bench_function(BenchmarkId::new("decrypt", bits), |b| {
            b.iter(|| {
                i = (i + 1) % PLAINTEXTS;
                cipher.decrypt(ciphertexts[i]).expect("valid")
            })
        });
        let mut cold = OpeCipher::new(&KEY, params).with_cache_depth(0);
        group.bench_function(BenchmarkId::new("encrypt_no_cache", bits), |b| {
            b.iter(|| {
                i = (i + 1) % PLAINTEXTS;
                cold.encrypt_deterministic(inputs[i]).expect("in domain")
            })
        });
        if bits <= bmpls_ope::MAX_TABLE_BITS {
            let table = OpeTable::build(&mut cipher).expect("small domain");
            group.bench_function(BenchmarkId::new("table_encrypt_randomised", bits), |b| {
                b.iter(|| {
                    i = (i + 1) % PLAINTEXTS;
                    table.encrypt(inputs[i], &mut rng).expect("in domain")
                })
            });
            group.bench_function(BenchmarkId::new("table_decrypt", bits), |b| {
                b.iter(|| {
                    i = (i + 1) % PLAINTEXTS;
                    table.decrypt(ciphertexts[i]).expect("valid")
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, encrypt);
criterion_main!(benches);

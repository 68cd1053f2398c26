//! Order-revealing encryption: right and left encryption and one comparison at the level sizes
//! bmpls uses (50 bits = exact, 38 = street, 32 = neighbourhood), for every block size, so that
//! the default block size is chosen by measurement. Sizes are printed before the timings.
//! Run with `cargo bench -p bmpls-benches --bench ore -- --warm-up-time 1 --measurement-time 2`.
#![allow(missing_docs)]

use bmpls_ore::{Domain, LeftCiphertext, OreKey, RightCiphertext, compare};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const SECRET: [u8; 32] = [42; 32];
/// Distinct plaintexts cycled through, so that no timing is of one lucky value.
const PLAINTEXTS: usize = 256;
const LEVEL_BITS: [u8; 3] = [50, 38, 32];
const BLOCK_BITS: [u8; 4] = [2, 4, 6, 8];

fn plaintexts(bits: u8) -> Vec<u64> {
    let mut rng = StdRng::seed_from_u64(u64::from(bits));
    (0..PLAINTEXTS)
        .map(|_| rng.gen_range(0..1u64 << bits))
        .collect()
}

fn sizes() {
    println!("ore sizes in bytes (left / right):");
    for block_bits in BLOCK_BITS {
        let row: Vec<String> = LEVEL_BITS
            .iter()
            .map(|&bits| {
                let d = Domain::new(bits, block_bits).expect("valid");
                format!(
                    "{bits} bits {} / {}",
                    LeftCiphertext::encoded_len(&d),
                    RightCiphertext::encoded_len(&d)
                )
            })
            .collect();
        println!("  block_bits {block_bits}: {}", row.join(", "));
    }
}

fn ore(c: &mut Criterion) {
    sizes();
    let mut group = c.benchmark_group("ore");
    group.throughput(Throughput::Elements(1));
    for block_bits in BLOCK_BITS {
        for bits in LEVEL_BITS {
            let key = OreKey::new(&SECRET, Domain::new(bits, block_bits).expect("valid"));
            let inputs = plaintexts(bits);
            let mut rng = StdRng::seed_from_u64(1);
            let id = |what: &str| BenchmarkId::new(format!("{what}/b{block_bits}"), bits);
            let mut i = 0usize;
            group.bench_function(id("encrypt_right"), |b| {
                b.iter(|| {
                    i = (i + 1) % PLAINTEXTS;
                    key.encrypt_right(inputs[i], &mut rng).expect("in domain")
                })
            });
            group.bench_function(id("encrypt_left"), |b| {
                b.iter(|| {
                    i = (i + 1) % PLAINTEXTS;
                    key.encrypt_left(inputs[i]).expect("in domain")
                })
            });
            let lefts: Vec<_> = inputs
                .iter()
                .map(|&x| key.encrypt_left(x).expect("in domain"))
                .collect();
            let rights: Vec<_> = inputs
                .iter()
                .rev()
                .map(|&x| key.encrypt_right(x, &mut rng).expect("in domain"))
                .collect();
            group.bench_function(id("compare"), |b| {
                b.iter(|| {
                    i = (i + 1) % PLAINTEXTS;
                    compare(&lefts[i], &rights[i]).expect("one domain")
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, ore);
criterion_main!(benches);

//! Order-revealing encryption: right and left encryption and one comparison at the level sizes
//! bmpls uses (50 bits = exact, 38 = street, 32 = neighbourhood), for every block size, so that
//! the default block size is chosen by measurement. Sizes are printed before the timings, and
//! raw AES (64 blocks, pipelined) is timed first: on a shared machine it shows what a core gave
//! at the time, since the ORE's cost is mostly AES.
//! Run with `cargo bench -p bmpls-benches --bench ore -- --warm-up-time 1 --measurement-time 2`.
#![allow(missing_docs)]

use aes::cipher::{BlockEncrypt, KeyInit};
use aes::{Aes128Enc, Aes256Enc};
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

fn aes_reference(c: &mut Criterion) {
    let mut group = c.benchmark_group("aes");
    group.throughput(Throughput::Elements(64));
    let mut blocks = [aes::Block::default(); 64];
    let aes128 = Aes128Enc::new(&[1u8; 16].into());
    group.bench_function("aes128_64_blocks", |b| {
        b.iter(|| aes128.encrypt_blocks(&mut blocks))
    });
    let aes256 = Aes256Enc::new(&[1u8; 32].into());
    group.bench_function("aes256_64_blocks", |b| {
        b.iter(|| aes256.encrypt_blocks(&mut blocks))
    });
    group.bench_function("aes128_key_schedule", |b| {
        b.iter(|| Aes128Enc::new(&std::hint::black_box([2u8; 16]).into()))
    });
    group.finish();
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
            // One right ciphertext against many left ones (a fence's endpoints): the nonce's
            // key schedule is paid once, outside the loop.
            let comparator = rights[0].comparator();
            group.bench_function(id("compare_prepared"), |b| {
                b.iter(|| {
                    i = (i + 1) % PLAINTEXTS;
                    comparator.compare(&lefts[i]).expect("one domain")
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, aes_reference, ore);
criterion_main!(benches);

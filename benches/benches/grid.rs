//! The grid: encoding a fix into its cell, and covering safe zones at the levels carers use.
//! Run with `cargo bench -p bmpls-benches --bench grid`.
#![allow(missing_docs)]

use bmpls_grid::{CellIndex, cover_circle, cover_polygon};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use geo::polygon;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn encode(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(7);
    let fixes: Vec<(f64, f64)> = (0..4096)
        .map(|_| (rng.gen_range(-180.0..180.0), rng.gen_range(-90.0..90.0)))
        .collect();
    let mut i = 0usize;
    c.bench_function("grid/encode_depth_25", |b| {
        b.iter(|| {
            i = (i + 1) % fixes.len();
            CellIndex::from_lon_lat(fixes[i].0, fixes[i].1, 25).expect("valid")
        })
    });
}

fn cover(c: &mut Criterion) {
    let mut group = c.benchmark_group("grid/cover");
    // A 1 km safe zone around a house in Leeds, at street, neighbourhood and district depth.
    for depth in [19u8, 16, 13] {
        group.bench_function(BenchmarkId::new("circle_1km", depth), |b| {
            b.iter(|| cover_circle(-1.5491, 53.8008, 1000.0, depth, 64).expect("valid"))
        });
    }
    let park = polygon![
        (x: -1.560, y: 53.795), (x: -1.540, y: 53.795), (x: -1.535, y: 53.805),
        (x: -1.550, y: 53.812), (x: -1.565, y: 53.804),
    ];
    for depth in [19u8, 16] {
        group.bench_function(BenchmarkId::new("polygon_park", depth), |b| {
            b.iter(|| cover_polygon(&park, depth, 64).expect("valid"))
        });
    }
    group.finish();
}

criterion_group!(benches, encode, cover);
criterion_main!(benches);

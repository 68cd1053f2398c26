//! What a node's disk holds about where a patient was: after storing records of known places
//! through the real reporter, no file under the sled directory contains those places in any
//! encoding we can think of, and the same place reported twice gives unrelated bytes.

use bmpls_client::{Fix, Reporter};
use bmpls_crypto::SigningKey;
use bmpls_grid::{CellIndex, LevelSet};
use bmpls_it::{TestChain, chain_id};
use bmpls_ope::keys::MasterSecret;
use bmpls_store::Store;
use bmpls_types::{Canonical, Cell, PatientId, Seq, Transaction, Trigger};
use rand::SeedableRng;
use rand::rngs::StdRng;

/// Places around Leeds, as a dementia patient's day might visit them.
const PLACES: [(f64, f64); 4] = [
    (53.800_812, -1.549_077),
    (53.795_734, -1.546_221),
    (53.807_611, -1.555_390),
    (53.802_004, -1.541_873),
];

fn fix(lat: f64, lon: f64, minute: u64) -> Fix {
    Fix {
        lat,
        lon,
        accuracy_m: 4.5,
        altitude_m: 63.2,
        speed_m_s: 1.1,
        battery_percent: 81,
        trigger: Trigger::Periodic,
        fix_time_ms: 1_790_000_000_000 + minute * 60_000,
    }
}

fn reporter() -> Reporter {
    Reporter::new(
        chain_id(),
        PatientId([42; 16]),
        &MasterSecret::from_bytes([7; 32]),
        SigningKey::from_seed(&[8; 32]),
        LevelSet::default_levels(),
        86_400_000,
    )
    .expect("valid reporter")
}

/// Every byte pattern that would give a place away.
fn patterns(lat: f64, lon: f64) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    for (axis, v) in [("lat", lat), ("lon", lon)] {
        for text in [format!("{v}"), format!("{v:.4}"), format!("{v:.5}")] {
            out.push((format!("{axis} as text {text}"), text.into_bytes()));
        }
        out.push((format!("{axis} f64 le"), v.to_le_bytes().to_vec()));
        out.push((format!("{axis} f64 be"), v.to_be_bytes().to_vec()));
        out.push((format!("{axis} f32 le"), (v as f32).to_le_bytes().to_vec()));
        out.push((format!("{axis} f32 be"), (v as f32).to_be_bytes().to_vec()));
        for (unit, scale) in [("e6", 1e6), ("e7", 1e7)] {
            let i = (v * scale).round() as i32;
            out.push((format!("{axis} {unit} le"), i.to_le_bytes().to_vec()));
            out.push((format!("{axis} {unit} be"), i.to_be_bytes().to_vec()));
        }
    }
    // Grid indices of the levels whose indices are long enough to search without chance hits
    // (coarser levels have indices of a few bytes, which any file contains by accident).
    let levels = LevelSet::default_levels();
    let finest = CellIndex::from_lon_lat(lon, lat, levels.grid_depth()).expect("valid");
    for level in levels.levels().iter().filter(|l| l.depth >= 16) {
        let index = finest.at_depth(level.depth).expect("coarser").index();
        out.push((
            format!("{} index be", level.name),
            index.to_be_bytes()[2..].to_vec(),
        ));
        out.push((
            format!("{} index le", level.name),
            index.to_le_bytes()[..6].to_vec(),
        ));
    }
    out
}

fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("readable").flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[test]
fn no_stored_byte_gives_a_place_away() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path(), &chain_id()).expect("opens");
    let mut reporter = reporter();
    let mut rng = StdRng::seed_from_u64(1);
    let mut chain = TestChain::new();
    let mut txs = Vec::new();
    for (i, &(lat, lon)) in PLACES.iter().cycle().take(40).enumerate() {
        let record = reporter
            .build(&fix(lat, lon, i as u64), Seq(i as u64 + 1), &mut rng)
            .expect("builds");
        txs.push(Transaction::Report(record));
    }
    let (block, cert) = chain.next(txs);
    store.apply_block(&block, &cert).expect("applies");
    drop(store);
    let files = files_under(dir.path());
    assert!(!files.is_empty());
    let contents: Vec<Vec<u8>> = files
        .iter()
        .map(|f| std::fs::read(f).expect("readable"))
        .collect();
    // The test can find what it looks for: the patient's pseudonym is on disk.
    assert!(
        contents
            .iter()
            .any(|c| c.windows(16).any(|w| w == [42u8; 16]))
    );
    for &(lat, lon) in &PLACES {
        for (what, pattern) in patterns(lat, lon) {
            for (file, content) in files.iter().zip(&contents) {
                assert!(
                    !content
                        .windows(pattern.len())
                        .any(|w| w == pattern.as_slice()),
                    "{what} of ({lat}, {lon}) found in {}",
                    file.display()
                );
            }
        }
    }
}

#[test]
fn the_same_place_twice_gives_unrelated_bytes() {
    let mut reporter = reporter();
    let mut rng = StdRng::seed_from_u64(2);
    let (lat, lon) = PLACES[0];
    let a = reporter
        .build(&fix(lat, lon, 0), Seq(1), &mut rng)
        .expect("builds");
    let b = reporter
        .build(&fix(lat, lon, 0), Seq(2), &mut rng)
        .expect("builds");
    for (level, (x, y)) in a.cells.iter().zip(b.cells.iter()).enumerate() {
        assert_ne!(x, y, "level {level} ciphertexts equal");
        match (x, y) {
            // Not even a shared 4-byte run beyond the common high bits of the bucket.
            (Cell::Ope(x), Cell::Ope(y)) => {
                let (xb, yb) = (x.0.to_be_bytes(), y.0.to_be_bytes());
                assert_ne!(xb[8..], yb[8..], "level {level}: low halves equal");
            }
            // Past the shared header, right ciphertexts agree in about a third of their
            // packed bytes by chance at most (a byte holds five uniform trits).
            (Cell::Ore(x), Cell::Ore(y)) => {
                assert_eq!(x.0[..4], y.0[..4], "level {level}: one header");
                let same = x.0[4..]
                    .iter()
                    .zip(&y.0[4..])
                    .filter(|(p, q)| p == q)
                    .count();
                assert!(
                    same < (x.0.len() - 4) / 8,
                    "level {level}: {same} equal bytes"
                );
            }
            _ => panic!("level {level}: two schemes for one level"),
        }
    }
    assert_ne!(a.sealed, b.sealed);
    let (sa, sb) = (a.sealed.as_slice(), b.sealed.as_slice());
    assert!(sa.iter().zip(sb).filter(|(p, q)| p == q).count() < sa.len() / 4);
    assert!(a.encode() != b.encode());
}

/// A validator cannot encrypt, derive a key or decrypt: the crates a validator runs link no
/// crate that holds keys (OPE, the ORE's keyed half, the grid that turns positions into cells),
/// only the keyless ORE comparison.
#[test]
fn validators_link_no_key_holding_crate() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for package in ["bmpls-node", "bmpls-store", "bmpls-consensus"] {
        let output = std::process::Command::new(env!("CARGO"))
            .args([
                "tree",
                "--offline",
                "-e",
                "normal",
                "--prefix",
                "none",
                "-p",
                package,
            ])
            .current_dir(&root)
            .output()
            .expect("cargo tree runs");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let tree = String::from_utf8_lossy(&output.stdout);
        let names: Vec<&str> = tree.lines().filter_map(|l| l.split(' ').next()).collect();
        for forbidden in ["bmpls-ope", "bmpls-ore", "bmpls-grid", "bmpls-client"] {
            assert!(
                !names.contains(&forbidden),
                "{package} links {forbidden}:\n{tree}"
            );
        }
        // The check sees the tree: it names the keyless half they do link.
        assert!(names.contains(&"bmpls-ore-compare"), "{package}: {tree}");
    }
}

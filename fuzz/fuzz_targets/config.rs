//! The files a validator or the CLI reads: the levels configuration
//! (`LevelSet::from_toml`), the genesis file (`Genesis::from_toml`), a node's configuration
//! with the genesis file it names (`NodeConfig::load`), a patient keystore
//! (`PatientKeystore::open`: `patient.toml`, `levels.toml`, a key file) and a carer's card
//! (`CarerCard::read`) and a patient's enrolment request (`EnrolmentRequest::from_text`, which
//! an operator reads before signing). The first byte picks the file; files that come in pairs
//! or threes are split by two-byte lengths. Files are written to a scratch directory and read
//! by the functions the binaries call.
#![no_main]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use bmpls_client::PatientKeystore;
use bmpls_client::carer::CarerCard;
use bmpls_client::keystore::EnrolmentRequest;
use bmpls_consensus::Genesis;
use bmpls_fuzz::split2;
use bmpls_grid::LevelSet;
use bmpls_node::NodeConfig;
use libfuzzer_sys::fuzz_target;

/// A scratch directory for this process, with the key files that are not fuzzed.
fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("bmpls-fuzz-config")
            .tempdir()
            .expect("a scratch directory")
            .keep();
        for name in ["reporter.key", "custodian.key", "master.key"] {
            write(&dir.join(name), format!("{}\n", "11".repeat(32)).as_bytes());
        }
        dir
    })
}

/// Writes `bytes` to `path`, owner-only (key files are refused otherwise).
fn write(path: &Path, bytes: &[u8]) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, bytes).expect("write a scratch file");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .expect("owner-only scratch file");
}

/// Whether `NodeConfig::load` may be given `text` here. A node configuration names other
/// files and resolves host names: an input naming another genesis file (which could be
/// `/dev/zero`, or a FIFO, under an operator's hand as under the fuzzer's) or an address that
/// is not a literal `IP:port` (which would query DNS) is left out; everything else is loaded.
fn loadable(text: &str) -> bool {
    let Ok(table) = text.parse::<toml::Table>() else {
        return true;
    };
    let literal = |value: Option<&toml::Value>| match value {
        Some(toml::Value::String(s)) => s.parse::<SocketAddr>().is_ok(),
        _ => true,
    };
    let genesis_ok = match table.get("genesis") {
        Some(toml::Value::String(s)) => s == "genesis.toml",
        _ => true,
    };
    let listen_ok = match table.get("listen") {
        Some(toml::Value::Table(listen)) => ["peers", "clients", "metrics"]
            .iter()
            .all(|key| literal(listen.get(*key))),
        _ => true,
    };
    let peers_ok = match table.get("peer") {
        Some(toml::Value::Array(peers)) => peers.iter().all(|peer| match peer {
            toml::Value::Table(peer) => literal(peer.get("address")),
            _ => true,
        }),
        _ => true,
    };
    genesis_ok && listen_ok && peers_ok
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, bytes)) = data.split_first() else {
        return;
    };
    let dir = scratch();
    match which % 6 {
        0 => {
            let Ok(text) = std::str::from_utf8(bytes) else {
                return;
            };
            if let Ok(levels) = LevelSet::from_toml(text) {
                assert!(!levels.is_empty(), "a level set without levels");
                assert!(levels.ore_levels() <= levels.len());
                for level in levels.levels() {
                    assert!(level.depth <= levels.grid_depth(), "a level below the grid");
                }
            }
        }
        1 => {
            let Ok(text) = std::str::from_utf8(bytes) else {
                return;
            };
            if let Ok(genesis) = Genesis::from_toml(text) {
                assert!(!genesis.names.is_empty(), "a genesis without validators");
            }
        }
        2 => {
            let Some((node, genesis)) = split2(bytes) else {
                return;
            };
            if !loadable(&String::from_utf8_lossy(node)) {
                return;
            }
            write(&dir.join("genesis.toml"), genesis);
            write(&dir.join("node.toml"), node);
            if let Ok(config) = NodeConfig::load(&dir.join("node.toml")) {
                assert!(
                    config.peers.iter().all(|(peer, _)| *peer != config.id),
                    "a node that is its own peer"
                );
            }
        }
        3 => {
            let Some((patient, rest)) = split2(bytes) else {
                return;
            };
            let Some((levels, key)) = split2(rest) else {
                return;
            };
            write(&dir.join("patient.toml"), patient);
            write(&dir.join("levels.toml"), levels);
            write(&dir.join("reporter.key"), key);
            let _ = PatientKeystore::open(dir);
        }
        4 => {
            write(&dir.join("carer.toml"), bytes);
            let _ = CarerCard::read(&dir.join("carer.toml"));
        }
        _ => {
            let Ok(text) = std::str::from_utf8(bytes) else {
                return;
            };
            if let Ok(request) = EnrolmentRequest::from_text(text) {
                assert!(request.level_count >= 1 && request.ore_levels <= request.level_count);
                assert!(request.epoch_length_ms > 0);
                let again = EnrolmentRequest::from_text(&request.to_text())
                    .expect("a request's own text parses");
                assert_eq!(again, request, "a request does not read back as itself");
            }
        }
    }
});

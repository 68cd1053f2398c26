//! The library through generated Python bindings, the same UniFFI interface Kotlin and Swift
//! apps get: bindings generated from the built cdylib, then `tests/reporter.py` run by
//! `python3` in two phases around an enrolment on a real cluster. Without python3 the test
//! fails, unless `BMPLS_ALLOW_NO_PYTHON=1` says a machine may lack it.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{Cluster, dead_node};

/// The cdylib cargo built for this test: beside the test binary (`target/debug/deps`) or one
/// folder up.
fn cdylib() -> PathBuf {
    let name = format!(
        "{}bmpls_mobile{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    );
    let exe = std::env::current_exe().expect("test binary");
    let deps = exe.parent().expect("deps folder");
    [deps.join(&name), deps.join("..").join(&name)]
        .into_iter()
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("no {name} beside {}", exe.display()))
}

/// Generates the Python bindings of `library` into `out`, with the library beside them (the
/// generated module loads it from its own folder).
fn bindings(library: &Path, out: &Path) {
    uniffi::generate(uniffi::GenerateOptions {
        languages: vec![uniffi::TargetLanguage::Python],
        source: library.display().to_string().into(),
        out_dir: out.display().to_string().into(),
        config_override: None,
        format: false,
        crate_filter: None,
        metadata_no_deps: true,
    })
    .expect("generating Python bindings");
    assert!(out.join("bmpls_mobile.py").exists(), "no bmpls_mobile.py");
    std::fs::copy(library, out.join(library.file_name().expect("name"))).expect("copy");
}

fn python_available() -> bool {
    let found = Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var("BMPLS_ALLOW_NO_PYTHON").as_deref() == Ok("1"),
            "python3 is not installed: install it (.ci/run does), or set \
             BMPLS_ALLOW_NO_PYTHON=1 to skip this test knowingly"
        );
        eprintln!("python3 missing and BMPLS_ALLOW_NO_PYTHON=1: the Python test is skipped");
    }
    found
}

/// Runs one phase of `tests/reporter.py`; panics with its output unless it succeeds.
fn phase(bindings: &Path, name: &str, env: &[(&str, String)]) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reporter.py");
    let output = Command::new("python3")
        .arg(&script)
        .arg(name)
        .env("PYTHONPATH", bindings)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .expect("running python3");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "reporter.py {name} failed:\n{text}"
    );
    assert!(text.contains(&format!("phase {name}: ok")), "{text}");
}

#[test]
fn python_reports_offline_reopens_and_delivers_once_enrolled() {
    if !python_available() {
        return;
    }
    let work = tempfile::tempdir().expect("temp dir");
    let out = work.path().join("bindings");
    bindings(&cdylib(), &out);
    let chain = Cluster::start(1);
    let consortium = chain.consortium();
    let certs = chain.certs();
    let env = |nodes: &[String]| {
        vec![
            (
                "BMPLS_KEYSTORE",
                work.path().join("alice").display().to_string(),
            ),
            ("BMPLS_NODES", nodes.join(",")),
            ("BMPLS_CA", certs.join("ca.pem").display().to_string()),
            (
                "BMPLS_GENESIS",
                certs.join("genesis.toml").display().to_string(),
            ),
            (
                "BMPLS_REQUEST",
                work.path().join("alice.enrol").display().to_string(),
            ),
        ]
    };
    phase(&out, "offline", &env(&[dead_node()]));
    let request =
        std::fs::read_to_string(work.path().join("alice.enrol")).expect("the request written");
    chain.enrol(&request);
    phase(&out, "online", &env(&consortium.nodes));
}

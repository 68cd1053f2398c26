//! `bmpls demo` as a newcomer runs it (a shorter walk): it exits 0, every carer's answer
//! verifies, each sees its own precision, the safe-zone exit is reported and the picture is
//! written; `--keep` leaves a folder the other commands can use.

use std::process::Command;

fn demo(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_bmpls"))
        .arg("demo")
        .args(args)
        .output()
        .expect("the binary runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_demo_shows_three_precisions_verified() {
    let dir = tempfile::tempdir().expect("temp dir");
    let picture = dir.path().join("walk.svg");
    let keep = dir.path().join("kept");
    let (ok, out, err) = demo(&[
        "--fixes",
        "40",
        "--picture",
        picture.to_str().expect("utf-8 path"),
        "--keep",
        keep.to_str().expect("utf-8 path"),
    ]);
    assert!(ok, "demo failed:\n{out}\n{err}");
    for line in [
        "GP                 at exact         40 records",
        "telecare operator  at neighbourhood 40 records",
        "researcher         at city          40 records",
    ] {
        assert!(out.contains(line), "missing {line:?} in:\n{out}");
    }
    assert_eq!(out.matches("all verified").count(), 3, "{out}");
    assert!(out.contains("the exact fixes (within"), "{out}");
    assert!(
        out.contains("1 distinct cell about"),
        "the city carer sees one cell:\n{out}"
    );
    assert!(
        out.contains("Exit at record"),
        "the operator's watch got the exit:\n{out}"
    );
    assert!(
        out.contains("Missing at record 40"),
        "silence after the last record:\n{out}"
    );
    assert!(
        out.contains("the GP asked Track at exact"),
        "the audit trail names the GP:\n{out}"
    );
    assert!(
        out.contains("the telecare operator asked Within at neighbourhood"),
        "the operator's area query is audited:\n{out}"
    );
    let svg = std::fs::read_to_string(&picture).expect("picture written");
    assert!(
        svg.starts_with("<svg") && svg.contains("telecare operator"),
        "an SVG with three panels"
    );
    assert!(keep.join("node1.toml").exists() && keep.join("certs/ca.pem").exists());
    assert!(keep.join("patients/alice/patient.toml").exists());

    // --keep refuses a folder that exists.
    let (ok, _, err) = demo(&["--keep", keep.to_str().expect("utf-8 path")]);
    assert!(!ok && err.contains("exists"), "{err}");
}

//! `bmpls report` refuses what cannot be a fix before it reaches a node: implausible fix times
//! name the unit expected, out-of-range points in a file are listed with their line, an empty
//! file says so once with its path. No cluster runs here: each refusal comes before connecting
//! (the default node address has nobody listening, so a command that tried would fail
//! differently).

use std::path::Path;
use std::process::Command;

fn bmpls(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_bmpls"))
        .args(args)
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("the binary runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn patient(dir: &Path) -> String {
    let patient = dir.join("alice");
    let levels = concat!(env!("CARGO_MANIFEST_DIR"), "/../../config/levels.toml");
    let path = patient.to_str().expect("utf-8").to_string();
    let (ok, out, err) = bmpls(&["patient", "new", "--out", &path, "--levels", levels]);
    assert!(ok, "patient new:\n{out}\n{err}");
    path
}

#[test]
fn implausible_fix_times_are_refused_naming_the_unit() {
    let dir = tempfile::tempdir().expect("temp dir");
    let patient = patient(dir.path());
    for (time, why) in [
        ("0", "before 2000-01-01"),
        ("1700000000", "Unix seconds, not milliseconds?"),
        ("99999999999999", "more than a day in the future"),
    ] {
        let (ok, out, err) = bmpls(&[
            "report",
            "--patient",
            &patient,
            "--lat",
            "52.37",
            "--lon",
            "4.89",
            "--time-ms",
            time,
        ]);
        assert!(!ok, "--time-ms {time} accepted:\n{out}");
        assert!(
            err.contains(why) && err.contains("Unix milliseconds"),
            "--time-ms {time}:\n{err}"
        );
    }
}

#[test]
fn bad_points_of_a_file_are_listed_by_line_and_an_empty_file_named_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let patient = patient(dir.path());
    let file = dir.path().join("bad.rec");
    std::fs::write(
        &file,
        concat!(
            "\u{feff}{\"_type\":\"location\",\"lat\":200,\"lon\":4.89,\"tst\":1700000000}\n",
            "{\"_type\":\"location\",\"lat\":52.37,\"lon\":184,\"tst\":1700000010}\n",
            "{\"_type\":\"location\",\"lat\":52.37,\"lon\":4.89,\"tst\":1700000020000}\n",
        ),
    )
    .expect("write");
    let name = file.to_str().expect("utf-8");
    let (ok, _, err) = bmpls(&["report", "--patient", &patient, "--from", name]);
    assert!(!ok, "a file without a fix is refused");
    for line in [
        format!("{name}: line 1: lat 200 is out of range"),
        format!("{name}: line 2: lon 184 is out of range"),
        format!("{name}: line 3: tst 1700000020000 looks like milliseconds"),
        format!("{name}: no fixes (3 lines not fixes)"),
    ] {
        assert!(err.contains(&line), "missing {line:?} in:\n{err}");
    }

    for (file, text) in [
        ("empty.gpx", ""),
        ("blank.rec", "\u{feff}\n\n"),
        ("nul.geojson", "\0\0"),
    ] {
        let path = dir.path().join(file);
        std::fs::write(&path, text).expect("write");
        let name = path.to_str().expect("utf-8");
        let (ok, _, err) = bmpls(&["report", "--patient", &patient, "--from", name]);
        assert!(!ok);
        let expected = format!("{name}: the file is empty: no fixes to report");
        assert!(err.contains(&expected), "{file}:\n{err}");
        assert_eq!(err.trim().lines().count(), 1, "one message:\n{err}");
    }
}

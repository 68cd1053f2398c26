//! How `bmpls` behaves as a shell command: errors are one line without a backtrace, a closed
//! stdout ends it quietly, `status` fails when no node answers, and the hints it prints can be
//! pasted as they are.

use std::process::{Command, Stdio};

fn bmpls(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_bmpls"));
    command.args(args);
    command
}

fn run(command: &mut Command) -> (bool, String, String) {
    let out = command.output().expect("the binary runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const LEVELS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../config/levels.toml");

#[test]
fn a_user_error_is_one_line_even_with_rust_backtrace_set() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("nobody");
    let (ok, _, err) = run(bmpls(&[
        "report",
        "--patient",
        missing.to_str().expect("utf-8"),
        "--lat",
        "52.37",
        "--lon",
        "4.89",
    ])
    .env("RUST_BACKTRACE", "1"));
    assert!(!ok);
    assert!(err.starts_with("error: "), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line:\n{err}");
    assert!(!err.to_lowercase().contains("backtrace"), "{err}");
}

#[test]
fn a_closed_stdout_ends_the_command_quietly() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("alice");
    let mut child = bmpls(&[
        "patient",
        "new",
        "--out",
        out.to_str().expect("utf-8"),
        "--levels",
        LEVELS,
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("spawns");
    // `| head -0`: the reader is gone before bmpls writes (it first makes the patient's keys).
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("ends");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert!(out.status.success(), "{err}");
}

#[test]
fn status_fails_when_no_node_answers() {
    let dir = tempfile::tempdir().expect("temp dir");
    let certs = dir.path().join("certs");
    let (ok, out, err) = run(&mut bmpls(&[
        "certs",
        "init",
        "--out",
        certs.to_str().expect("utf-8"),
    ]));
    assert!(ok, "certs init:\n{out}\n{err}");
    // A port nobody listens on.
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("a free port")
        .port();
    let node = format!("127.0.0.1:{port}");
    let (ok, out, err) = run(&mut bmpls(&[
        "status",
        "--node",
        &node,
        "--ca",
        certs.join("ca.pem").to_str().expect("utf-8"),
        "--genesis",
        certs.join("genesis.toml").to_str().expect("utf-8"),
    ]));
    assert!(!ok, "status exited 0 with no node up:\n{out}");
    assert!(out.contains(&format!("{node}  unreachable")), "{out}");
    assert!(err.contains("no node answered (of 1 asked)"), "{err}");
}

#[test]
fn enrol_hints_name_the_operator_key_they_need() {
    let dir = tempfile::tempdir().expect("temp dir");
    let patient = dir.path().join("alice");
    let (ok, out, err) = run(&mut bmpls(&[
        "patient",
        "new",
        "--out",
        patient.to_str().expect("utf-8"),
        "--levels",
        LEVELS,
    ]));
    assert!(ok, "{err}");
    let hint = format!(
        "bmpls patient enrol --patient {} --operator-key certs/local/node1/validator.key",
        patient.display()
    );
    assert!(out.contains(&hint), "{out}");
    let carer = dir.path().join("nurse");
    let (ok, out, err) = run(&mut bmpls(&[
        "carer",
        "new",
        "--out",
        carer.to_str().expect("utf-8"),
        "--role",
        "family",
    ]));
    assert!(ok, "{err}");
    let hint = format!(
        "bmpls carer enrol --carer {} --operator-key certs/local/node1/validator.key",
        carer.display()
    );
    assert!(out.contains(&hint), "{out}");
}

/// `bench privacy` prints each scheme's attack figures and costs and writes its chart.
#[test]
fn bench_privacy_prints_the_attacks_per_scheme_and_writes_a_chart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let chart = dir.path().join("privacy.svg");
    let (ok, out, err) = run(&mut bmpls(&[
        "bench",
        "privacy",
        "--days",
        "1",
        "--carer-days",
        "1",
        "--samples",
        "20",
        "--svg",
        chart.to_str().expect("utf-8"),
    ]));
    assert!(ok, "{err}");
    for row in [
        "OPE ",
        "ORE ",
        "neighbourhood (16)",
        "reporter",
        "answer per record",
    ] {
        assert!(out.contains(row), "no {row:?} in:\n{out}");
    }
    let svg = std::fs::read_to_string(&chart).expect("the chart is written");
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    assert!(svg.contains("district") && svg.contains("(c) the home averaged"));
}

#[test]
fn watch_prints_the_height_to_resume_from_when_interrupted() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().expect("temp dir");
    let certs = dir.path().join("certs");
    let (ok, _, err) = run(&mut bmpls(&[
        "certs",
        "init",
        "--out",
        certs.to_str().expect("utf-8"),
    ]));
    assert!(ok, "certs init: {err}");
    let carer = dir.path().join("nurse");
    let (ok, _, err) = run(&mut bmpls(&[
        "carer",
        "new",
        "--out",
        carer.to_str().expect("utf-8"),
        "--role",
        "family",
    ]));
    assert!(ok, "carer new: {err}");
    // No node answers, so the watch waits and retries until interrupted (two nodes: one
    // alone could not corroborate an alert).
    let free_port = || {
        std::net::UdpSocket::bind("127.0.0.1:0")
            .and_then(|s| s.local_addr())
            .expect("a free port")
            .port()
    };
    let (port, other) = (free_port(), free_port());
    let mut child = bmpls(&[
        "watch",
        "--carer",
        carer.to_str().expect("utf-8"),
        "--from-height",
        "7",
        "--node",
        &format!("127.0.0.1:{port}"),
        "--node",
        &format!("127.0.0.1:{other}"),
        "--ca",
        certs.join("ca.pem").to_str().expect("utf-8"),
        "--genesis",
        certs.join("genesis.toml").to_str().expect("utf-8"),
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("spawns");
    // Its first retry shows that it is waiting (and has set up its signal handling).
    let mut stderr = std::io::BufReader::new(child.stderr.take().expect("stderr"));
    let mut line = String::new();
    stderr.read_line(&mut line).expect("a line");
    assert!(line.contains("no validator answers"), "{line}");
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let out = child.wait_with_output().expect("ends");
    assert!(out.status.success(), "{:?}", out.status);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout.lines().last(),
        Some("stopped after 0 alerts; resume with --from-height 7"),
        "{stdout}"
    );
}

#[test]
fn outside_the_repository_a_missing_default_names_its_option() {
    let dir = tempfile::tempdir().expect("temp dir");
    for (args, option) in [
        (
            &["status"][..],
            "(--genesis; the defaults are relative to the repository root",
        ),
        (
            &["patient", "new", "--out", "alice"][..],
            "(--levels; the defaults are relative to the repository root",
        ),
    ] {
        let (ok, _, err) = run(bmpls(args).current_dir(dir.path()));
        assert!(!ok);
        assert!(err.contains(option), "{args:?}: {err}");
    }
}

//! The reporter that never loses a fix, as a user runs it: four `bmpls node` processes on
//! loopback, `bmpls report` while every validator is down (queued, exit 0) and after they are
//! back (every fix committed once, in order), a `bmpls report --from` killed with SIGKILL in
//! the middle of its flush (nothing it synced is lost, nothing is committed twice), and the
//! OwnTracks gateway fed real app payloads over HTTP, killed mid-burst: everything it
//! acknowledged reaches the chain.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;

const LEVELS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../config/levels.toml");

/// A hung cluster must fail the test, not stall it; far above what a start takes.
const GUARD: Duration = Duration::from_secs(120);

fn bmpls(dir: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_bmpls"))
        .args(args)
        .current_dir(dir)
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("the binary runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let (ok, out, err) = bmpls(dir, args);
    assert!(ok, "bmpls {args:?} failed:\n{out}\n{err}");
    out
}

/// `n` distinct UDP ports nobody listens on: all held until all are chosen, so that none is
/// handed out twice.
fn free_udp_ports(n: usize) -> Vec<u16> {
    let held: Vec<std::net::UdpSocket> = (0..n)
        .map(|_| std::net::UdpSocket::bind("127.0.0.1:0").expect("a free port"))
        .collect();
    held.iter()
        .map(|s| s.local_addr().expect("bound").port())
        .collect()
}

fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

/// Four validators as processes, in a folder laid out as the README's local cluster (the
/// commands' default paths work from it), on ports nobody else uses.
struct Cluster {
    dir: tempfile::TempDir,
    nodes: Vec<Option<Child>>,
    clients: Vec<String>,
}

impl Cluster {
    fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        ok(
            dir.path(),
            &["certs", "init", "--out", "certs/local", "--nodes", "4"],
        );
        std::fs::create_dir_all(dir.path().join("config")).expect("config");
        std::fs::create_dir_all(dir.path().join("data")).expect("data");
        let ports = free_udp_ports(8);
        let (peers, clients) = ports.split_at(4);
        for i in 0..4 {
            let n = i + 1;
            let mut text = format!(
                "name = \"node{n}\"\ngenesis = \"../certs/local/genesis.toml\"\n\
                 validator_key = \"../certs/local/node{n}/validator.key\"\n\
                 data_dir = \"../data/node{n}\"\n\n[tls]\nca = \"../certs/local/ca.pem\"\n\
                 cert = \"../certs/local/node{n}/tls.pem\"\nkey = \"../certs/local/node{n}/tls.key\"\n\n\
                 [listen]\npeers = \"127.0.0.1:{}\"\nclients = \"127.0.0.1:{}\"\n\n\
                 [blocks]\nmin_interval_ms = 20\nempty_interval_ms = 500\n",
                peers[i], clients[i]
            );
            for j in (0..4).filter(|j| *j != i) {
                text.push_str(&format!(
                    "\n[[peer]]\nname = \"node{}\"\naddress = \"127.0.0.1:{}\"\n",
                    j + 1,
                    peers[j]
                ));
            }
            std::fs::write(dir.path().join(format!("config/node{n}.toml")), text).expect("config");
        }
        let mut cluster = Self {
            dir,
            nodes: (0..4).map(|_| None).collect(),
            clients: clients.iter().map(|p| format!("127.0.0.1:{p}")).collect(),
        };
        cluster.up();
        cluster
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `--node` for every validator.
    fn node_args(&self) -> Vec<String> {
        self.clients
            .iter()
            .flat_map(|c| ["--node".to_string(), c.clone()])
            .collect()
    }

    /// Runs `args` followed by every `--node`.
    fn run(&self, args: &[&str]) -> (bool, String, String) {
        let nodes = self.node_args();
        let all: Vec<&str> = args
            .iter()
            .copied()
            .chain(nodes.iter().map(String::as_str))
            .collect();
        bmpls(self.path(), &all)
    }

    fn ok(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.run(args);
        assert!(ok, "bmpls {args:?} failed:\n{out}\n{err}");
        out
    }

    /// Starts every validator and waits until each answers.
    fn up(&mut self) {
        for i in 0..4 {
            let log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.path().join(format!("data/node{}.log", i + 1)))
                .expect("log");
            let child = Command::new(env!("CARGO_BIN_EXE_bmpls"))
                .args(["node", "--config", &format!("config/node{}.toml", i + 1)])
                .current_dir(self.path())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("node starts");
            self.nodes[i] = Some(child);
        }
        let started = Instant::now();
        loop {
            let (_, out, _) = self.run(&["status"]);
            if out.lines().count() == 4 && !out.contains("unreachable") {
                return;
            }
            if started.elapsed() > GUARD {
                let logs: Vec<String> = (1..=4)
                    .map(|n| {
                        let log = self.path().join(format!("data/node{n}.log"));
                        let text = std::fs::read_to_string(log).unwrap_or_default();
                        let tail: Vec<&str> = text.lines().rev().take(5).collect();
                        format!("node{n}: {}", tail.join(" | "))
                    })
                    .collect();
                panic!("the cluster did not start:\n{out}\n{}", logs.join("\n"));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Stops every validator (SIGKILL: the store and log are synced before anything is
    /// acknowledged, so this is a crash they survive).
    fn down(&mut self) {
        for node in self.nodes.iter_mut() {
            if let Some(mut child) = node.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }

    /// A patient in `name`, enrolled.
    fn patient(&self, name: &str) -> String {
        ok(
            self.path(),
            &["patient", "new", "--out", name, "--levels", LEVELS],
        );
        self.ok(&[
            "patient",
            "enrol",
            "--patient",
            name,
            "--operator-key",
            "certs/local/node1/validator.key",
        ]);
        name.to_string()
    }

    /// The chain's next sequence number for `patient` (as `patient resync` reads it).
    fn chain_next(&self, patient: &str) -> u64 {
        let out = self.ok(&["patient", "resync", "--patient", patient]);
        out.split_whitespace()
            .nth(3)
            .and_then(|n| n.trim_end_matches(',').parse().ok())
            .unwrap_or_else(|| panic!("no number in {out:?}"))
    }

    fn keystore_next(&self, patient: &str) -> u64 {
        std::fs::read_to_string(self.path().join(patient).join("next_seq"))
            .expect("next_seq")
            .trim()
            .parse()
            .expect("a number")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.down();
    }
}

/// How many records `bmpls outbox` says wait (0 for "nothing waits").
fn waiting(outbox: &str) -> u64 {
    let first = outbox.lines().next().unwrap_or("");
    if first.starts_with("nothing waits") {
        return 0;
    }
    first
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("not a count: {outbox:?}"))
}

fn owntracks_line(tst: u64, i: u64) -> String {
    format!(
        "{{\"_type\":\"location\",\"lat\":{:.5},\"lon\":4.8922,\"tst\":{tst},\"acc\":5,\"batt\":80,\"tid\":\"al\"}}",
        52.3731 + i as f64 * 1e-5
    )
}

#[test]
fn fixes_while_every_validator_is_down_are_queued_then_committed_once_in_order() {
    let mut cluster = Cluster::start();
    let patient = cluster.patient("alice");
    cluster.down();

    let out = cluster.ok(&[
        "report",
        "--patient",
        &patient,
        "--lat",
        "52.3731",
        "--lon",
        "4.8922",
    ]);
    assert!(out.contains("record 1 queued"), "{out}");
    // An hour of fixes every 30 s, from the phone's own recorder file.
    let start = now_s() - 3_600;
    let hour: String = (0..120)
        .map(|i| owntracks_line(start + i * 30, i) + "\n")
        .collect();
    std::fs::write(cluster.path().join("hour.rec"), hour).expect("write");
    let out = cluster.ok(&["report", "--patient", &patient, "--from", "hour.rec"]);
    assert!(
        out.contains("records 2 to 121 queued (0 committed)"),
        "{out}"
    );
    assert!(out.contains("121 records waiting in the outbox"), "{out}");
    let (sent, _, err) = cluster.run(&["report", "--flush", "--patient", &patient]);
    assert!(!sent && err.contains("121 records waiting"), "{err}");
    let shown = ok(cluster.path(), &["outbox", "--patient", &patient]);
    assert!(
        shown.starts_with("121 records waiting: records 1 to 121"),
        "{shown}"
    );
    assert!(shown.contains("nothing refused"), "{shown}");

    cluster.up();
    let out = cluster.ok(&["report", "--flush", "--wait-s", "60", "--patient", &patient]);
    assert!(out.contains("records 1 to 121 committed"), "{out}");
    // The chain holds records 1 to 121 of the patient, consecutive: each fix once.
    assert_eq!(cluster.chain_next(&patient), 122);
    let shown = ok(cluster.path(), &["outbox", "--patient", &patient]);
    assert!(
        shown.contains("nothing waits") && shown.contains("nothing refused"),
        "{shown}"
    );
    let out = cluster.ok(&["report", "--flush", "--patient", &patient]);
    assert!(out.contains("nothing waits"), "{out}");
}

#[test]
fn a_reporter_killed_mid_flush_loses_nothing_it_synced_and_sends_nothing_twice() {
    let cluster = Cluster::start();
    let patient = cluster.patient("alice");
    let fixes = 3_000u64;
    let start = now_s() - fixes * 20;
    let file: String = (0..fixes)
        .map(|i| owntracks_line(start + i * 20, i) + "\n")
        .collect();
    std::fs::write(cluster.path().join("trip.rec"), file).expect("write");
    let mut args = vec!["report", "--patient", &patient, "--from", "trip.rec"]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>();
    args.extend(cluster.node_args());
    let mut child = Command::new(env!("CARGO_BIN_EXE_bmpls"))
        .args(&args)
        .current_dir(cluster.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("report runs");
    // The second batch is synced (the keystore's counter moves after it; the first batch was
    // sent before it was queued), and its flush has begun: it is killed with a submission in
    // flight.
    let started = Instant::now();
    while cluster.keystore_next(&patient) <= 501 {
        assert!(started.elapsed() < GUARD, "nothing was queued");
        std::thread::sleep(Duration::from_millis(1));
    }
    std::thread::sleep(Duration::from_millis(40));
    child.kill().expect("SIGKILL");
    child.wait().expect("ended");
    let queued = cluster.keystore_next(&patient) - 1;
    assert!(queued < fixes, "killed before the end");

    // Every record it queued is on the chain or still waiting (or both: committed, its
    // acknowledgement lost with the process).
    let shown = ok(cluster.path(), &["outbox", "--patient", &patient]);
    let committed = cluster.chain_next(&patient) - 1;
    assert!(
        committed <= queued,
        "{committed} committed of {queued} queued"
    );
    assert!(
        committed + waiting(&shown) >= queued,
        "{committed} committed:\n{shown}"
    );

    // The import again: the rest is queued, the backlog sent, nothing twice.
    let out = cluster.ok(&[
        "report",
        "--patient",
        &patient,
        "--from",
        "trip.rec",
        "--wait-s",
        "60",
    ]);
    assert!(out.contains("committed"), "{out}");
    assert!(
        out.contains(&format!("{queued} fixes already reported")),
        "{out}"
    );
    let (sent, _, err) =
        cluster.run(&["report", "--flush", "--wait-s", "60", "--patient", &patient]);
    assert!(sent, "{err}");
    assert_eq!(cluster.chain_next(&patient), fixes + 1);
}

/// A running gateway and where it listens.
struct Gateway {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
}

impl Gateway {
    fn start(cluster: &Cluster, patient: &str) -> Self {
        let mut args = vec![
            "gateway",
            "owntracks",
            "--patient",
            patient,
            "--listen",
            "127.0.0.1:0",
            "--auth-file",
            "owntracks.auth",
            "--passphrase-file",
            "owntracks.secret",
        ]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>();
        args.extend(cluster.node_args());
        let log = cluster.path().join("gateway.log");
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("log");
        let mut child = Command::new(env!("CARGO_BIN_EXE_bmpls"))
            .args(&args)
            .current_dir(cluster.path())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("gateway runs");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("its address");
        let addr = line
            .trim()
            .strip_prefix("gateway listening on http://")
            .unwrap_or_else(|| panic!("{line:?}"))
            .parse()
            .expect("an address");
        Self { child, addr, log }
    }

    fn kill(mut self) -> PathBuf {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.log.clone()
    }
}

/// One HTTP/1.1 request as the app sends it; the status and the body of the answer.
fn post(
    addr: SocketAddr,
    method: &str,
    auth: Option<&str>,
    body: &str,
) -> std::io::Result<(u16, String)> {
    request(addr, method, "/pub", auth, body)
}

/// The gateway's metrics, as a scraper with the app's credentials asks for them.
fn metrics(addr: SocketAddr) -> String {
    let (status, body) =
        request(addr, "GET", "/metrics", Some("alice:correct horse"), "").expect("answered");
    assert_eq!(status, 200, "{body}");
    body
}

/// The value of the metric `name` (without labels) in `text`.
fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in:\n{text}"))
}

/// One HTTP/1.1 request to `path`; the status and the body of the answer.
fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    auth: Option<&str>,
    body: &str,
) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(GUARD))?;
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: Owntracks-Android/2.5\r\n\
         Content-Type: application/json\r\nX-Limit-U: alice\r\nX-Limit-D: phone\r\n\
         Content-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if let Some(auth) = auth {
        let encoded = base64::engine::general_purpose::STANDARD.encode(auth);
        request.push_str(&format!("Authorization: Basic {encoded}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes())?;
    stream.write_all(body.as_bytes())?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not HTTP: {answer:?}")))?;
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    Ok((status, body))
}

/// The app's `encrypted` message: libsodium secretbox under the secret padded to 32 bytes.
fn encrypted(inner: &str, secret: &str) -> String {
    use crypto_secretbox::aead::{Aead, KeyInit};
    let mut key = [0u8; 32];
    key[..secret.len()].copy_from_slice(secret.as_bytes());
    let nonce = [3u8; 24];
    let sealed = crypto_secretbox::XSalsa20Poly1305::new(crypto_secretbox::Key::from_slice(&key))
        .encrypt(
            crypto_secretbox::Nonce::from_slice(&nonce),
            inner.as_bytes(),
        )
        .expect("seal");
    let data =
        base64::engine::general_purpose::STANDARD.encode([nonce.as_slice(), &sealed].concat());
    format!("{{\"_type\":\"encrypted\",\"data\":\"{data}\"}}")
}

#[test]
fn the_owntracks_app_reports_through_the_gateway_and_a_killed_gateway_loses_nothing_acknowledged() {
    let cluster = Cluster::start();
    let patient = cluster.patient("alice");
    for (file, text) in [
        ("owntracks.auth", "alice:correct horse\n"),
        ("owntracks.secret", "s3cret\n"),
    ] {
        let path = cluster.path().join(file);
        std::fs::write(&path, text).expect("write");
        // Readable by others: the gateway refuses to start.
        let (started, _, err) = cluster.run(&[
            "gateway",
            "owntracks",
            "--patient",
            &patient,
            "--listen",
            "127.0.0.1:0",
            "--auth-file",
            "owntracks.auth",
            "--passphrase-file",
            "owntracks.secret",
        ]);
        assert!(!started && err.contains(file), "{err}");
        let owner_only = std::os::unix::fs::PermissionsExt::from_mode(0o600);
        std::fs::set_permissions(&path, owner_only).expect("chmod");
    }
    let auth = Some("alice:correct horse");
    let gateway = Gateway::start(&cluster, &patient);
    let addr = gateway.addr;

    // What is not a fix from the app is answered, and nothing is queued for it.
    let t0 = now_s() - 4_000;
    let location = owntracks_line(t0, 0);
    for (method, auth, body, status) in [
        ("POST", None, location.as_str(), 401),
        ("POST", Some("alice:wrong"), location.as_str(), 401),
        ("GET", auth, "", 405),
        (
            "POST",
            auth,
            "{\"_type\":\"waypoint\",\"desc\":\"home\",\"lat\":52.1,\"lon\":4.1,\"tst\":1}",
            200,
        ),
        ("POST", auth, "{\"_type\":\"lwt\",\"tst\":1}", 200),
        (
            "POST",
            auth,
            "{\"_type\":\"location\",\"lat\":252.3731,\"lon\":4.8922,\"tst\":1}",
            400,
        ),
        ("POST", auth, "not json", 400),
    ] {
        let (got, body) = post(addr, method, auth, body).expect("answered");
        assert_eq!(got, status, "{method} {body}");
    }
    let (got, _) = post(addr, "POST", auth, &" ".repeat(100_000)).expect("answered");
    assert_eq!(got, 413);
    let (got, _) = request(addr, "GET", "/metrics", None, "").expect("answered");
    assert_eq!(got, 401, "the metrics need the credentials too");
    assert_eq!(
        metric(&metrics(addr), "bmpls_gateway_fixes_queued_total"),
        0
    );

    // A plain location and an encrypted transition: each answered with a JSON array.
    let (got, body) = post(addr, "POST", auth, &location).expect("answered");
    assert_eq!((got, body.as_str()), (200, "[]"));
    let transition = format!(
        "{{\"_type\":\"transition\",\"event\":\"leave\",\"desc\":\"home\",\"lat\":52.3732,\"lon\":4.8923,\"tst\":{},\"acc\":10,\"t\":\"c\"}}",
        t0 + 30
    );
    let (got, body) =
        post(addr, "POST", auth, &encrypted(&transition, "s3cret")).expect("answered");
    assert_eq!((got, body.as_str()), (200, "[]"));

    // The app's backlog after a day in a basement: a burst, the gateway killed in the middle.
    let burst: Vec<String> = (1..=300)
        .map(|i| owntracks_line(t0 + 60 + i * 10, i))
        .collect();
    let mut acknowledged = 2u64;
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let poster = {
        let burst = burst.clone();
        std::thread::spawn(move || {
            for message in &burst {
                match post(addr, "POST", Some("alice:correct horse"), message) {
                    Ok((200, _)) => done_tx.send(()).expect("counted"),
                    _ => return,
                }
            }
        })
    };
    while acknowledged < 2 + 150 {
        done_rx.recv_timeout(GUARD).expect("acknowledged");
        acknowledged += 1;
    }
    let log = gateway.kill();
    poster.join().expect("poster");
    acknowledged += done_rx.try_iter().count() as u64;

    // Every fix it acknowledged was queued (at most the one in flight more), and every queued
    // record is on the chain or still waiting (or both: committed, its acknowledgement lost).
    let queued = cluster.keystore_next(&patient) - 1;
    assert!(
        (acknowledged..=acknowledged + 1).contains(&queued),
        "{queued} queued, {acknowledged} acknowledged"
    );
    let shown = ok(cluster.path(), &["outbox", "--patient", &patient]);
    let committed = cluster.chain_next(&patient) - 1;
    assert!(committed <= queued, "{committed} committed of {queued}");
    assert!(
        committed + waiting(&shown) >= queued,
        "{committed} committed of {queued} queued:\n{shown}"
    );

    // The app sends again what it got no answer for (and here everything): nothing twice.
    let gateway = Gateway::start(&cluster, &patient);
    for message in [location.clone(), encrypted(&transition, "s3cret")]
        .iter()
        .chain(&burst)
    {
        let (got, _) = post(gateway.addr, "POST", auth, message).expect("answered");
        assert_eq!(got, 200);
    }
    // The gateway sends on its own; a flush after it stops sends whatever it had not yet.
    let started = Instant::now();
    while !std::fs::read_to_string(&log).expect("log").contains("sent") {
        assert!(started.elapsed() < GUARD, "the gateway sent nothing");
        std::thread::sleep(Duration::from_millis(100));
    }
    let shown = metrics(gateway.addr);
    assert!(
        metric(&shown, "bmpls_gateway_records_sent_total") > 0,
        "{shown}"
    );
    assert_eq!(metric(&shown, "bmpls_gateway_fixes_outbox_full_total"), 0);
    assert_eq!(metric(&shown, "bmpls_gateway_records_refused_total"), 0);
    gateway.kill();
    let (sent, _, err) =
        cluster.run(&["report", "--flush", "--wait-s", "60", "--patient", &patient]);
    assert!(sent || err.contains("nothing waits"), "{err}");
    assert_eq!(cluster.chain_next(&patient), 2 + 300 + 1, "each fix once");
    let text = std::fs::read_to_string(&log).expect("log");
    assert!(
        !text.contains("52.37") && !text.contains("252.3731"),
        "a coordinate in the log:\n{text}"
    );
}

#[test]
fn a_full_outbox_refuses_the_next_fix_with_503_and_says_so_in_the_metrics_and_the_log() {
    let mut cluster = Cluster::start();
    let patient = cluster.patient("alice");
    for file in ["owntracks.auth", "owntracks.secret"] {
        let path = cluster.path().join(file);
        std::fs::write(&path, "alice:correct horse\n").expect("write");
        let owner_only = std::os::unix::fs::PermissionsExt::from_mode(0o600);
        std::fs::set_permissions(&path, owner_only).expect("chmod");
    }
    // No validator answers for longer than the outbox holds: it fills up.
    cluster.down();
    const CAPACITY: u64 = bmpls_client::outbox::MAX_OUTBOX_RECORDS as u64;
    let start = now_s() - 2 * CAPACITY * 30;
    let backlog: String = (0..CAPACITY)
        .map(|i| owntracks_line(start + i * 30, i % 1_000) + "\n")
        .collect();
    std::fs::write(cluster.path().join("backlog.rec"), backlog).expect("write");
    let out = cluster.ok(&["report", "--patient", &patient, "--from", "backlog.rec"]);
    assert!(
        out.contains(&format!("{CAPACITY} records waiting")),
        "{out}"
    );

    let gateway = Gateway::start(&cluster, &patient);
    let shown = metrics(gateway.addr);
    assert_eq!(
        metric(&shown, "bmpls_gateway_outbox_waiting_records"),
        CAPACITY
    );
    assert_eq!(metric(&shown, "bmpls_gateway_outbox_max_records"), CAPACITY);
    let next = owntracks_line(start + CAPACITY * 30, 1);
    let (got, body) =
        post(gateway.addr, "POST", Some("alice:correct horse"), &next).expect("answered");
    assert_eq!(
        (got, body.as_str()),
        (503, "[]"),
        "a full outbox is not a delivery"
    );
    let shown = metrics(gateway.addr);
    assert_eq!(metric(&shown, "bmpls_gateway_fixes_outbox_full_total"), 1);
    assert_eq!(metric(&shown, "bmpls_gateway_fixes_queued_total"), 0);
    assert_eq!(
        metric(&shown, "bmpls_gateway_outbox_waiting_records"),
        CAPACITY
    );
    let log = gateway.kill();
    let text = std::fs::read_to_string(&log).expect("log");
    assert!(text.contains("the outbox is full"), "{text}");
    assert!(!text.contains("52.37"), "a coordinate in the log:\n{text}");
    // Nothing already queued was touched.
    let shown = ok(cluster.path(), &["outbox", "--patient", &patient]);
    assert_eq!(waiting(&shown), CAPACITY, "{shown}");
}

//! The operator's console in a real browser: `bmpls demo --console` serves it against a live
//! four-validator cluster, headless Chromium (driven through chromedriver, WebDriver) opens the
//! printed URL, and the test checks what an operator would: the caseload loads, an Exit
//! reported during the test appears and is acknowledged (kept on disk with who and when), the
//! demo's safe zone is listed with its state and drawn as a polygon, and a history draws as
//! many cells as `bmpls query` reports for the same window. The HTTP access
//! checks (token, host, CSRF, body size) are tried against the same console.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs them). Set
//! `BMPLS_CONSOLE_SCREENSHOT=path.png` to keep a screenshot (docs/console.png is one).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};

/// How long the test waits for anything before it fails (a liveness bound, not a measure).
const PATIENCE: Duration = Duration::from_secs(30);

/// Kills a child process when the test ends, however it ends.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What the demo printed that the test needs.
struct Demo {
    _process: Killed,
    url: String,
    base: String,
    patient: String,
    nodes: Vec<String>,
}

fn start_demo(dir: &Path) -> Demo {
    let mut child = Command::new(env!("CARGO_BIN_EXE_bmpls"))
        .args([
            "demo",
            "--console",
            "127.0.0.1:0",
            "--fixes",
            "20",
            "--picture",
        ])
        .arg(dir.join("walk.svg"))
        .arg("--keep")
        .arg(dir.join("kept"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the binary runs");
    let stdout = child.stdout.take().expect("stdout");
    let process = Killed(child);
    let (lines, received) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut printed = String::new();
    let (mut patient, mut nodes) = (None, Vec::new());
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = received
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("the demo did not reach its console:\n{printed}"));
        printed.push_str(&line);
        printed.push('\n');
        if let Some(addr) = line.split("clients at ").nth(1) {
            nodes.push(addr.trim().to_string());
        }
        if let Some(rest) = line.strip_prefix("2. enrolled patient ") {
            patient = rest.split_whitespace().next().map(str::to_string);
        }
        if line.starts_with("10. the cluster and the console keep running: open ") {
            let url = line.rsplit(' ').next().expect("url").to_string();
            let base = url.split("/?token=").next().expect("base").to_string();
            return Demo {
                _process: process,
                url,
                base,
                patient: patient.expect("the demo names its patient"),
                nodes,
            };
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn start_chromedriver(port: u16) -> Killed {
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        // Headless Chromium's clock and dates are UTC, as the CLI's days are.
        .env("TZ", "UTC")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver runs (Debian package chromium-driver; .ci/run installs it)");
    let deadline = Instant::now() + PATIENCE;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "chromedriver does not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
    Killed(child)
}

async fn browser(port: u16, profile: &Path) -> Client {
    let args = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1400,1000",
        &format!("--user-data-dir={}", profile.display()),
    ];
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({"args": args, "binary": "/usr/bin/chromium"}),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("a browser session")
}

/// Waits until `css` matches at least `count` elements; returns them.
async fn wait_for(client: &Client, css: &str, count: usize) -> Vec<fantoccini::elements::Element> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let found = client.find_all(Locator::Css(css)).await.expect("find");
        if found.len() >= count {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "{css}: {} of {count} after {PATIENCE:?}",
            found.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// An attribute of the first element `css` matches, found afresh on each try: the page may
/// rebuild an element between finding it and reading it.
async fn attr(client: &Client, css: &str, name: &str) -> String {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Ok(element) = client.find(Locator::Css(css)).await {
            if let Ok(Some(value)) = element.attr(name).await {
                return value;
            }
        }
        assert!(Instant::now() < deadline, "{css}: no {name}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The text of the first element `css` matches, found afresh on each try.
async fn text(client: &Client, css: &str) -> String {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Ok(element) = client.find(Locator::Css(css)).await {
            if let Ok(text) = element.text().await {
                return text;
            }
        }
        assert!(Instant::now() < deadline, "{css}: no text");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Sends Enter to the first element `css` matches (WebDriver focuses it first), found afresh
/// on each try.
async fn press_enter(client: &Client, css: &str) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Ok(element) = client.find(Locator::Css(css)).await {
            if element.send_keys("\u{E007}").await.is_ok() {
                return;
            }
        }
        assert!(Instant::now() < deadline, "{css}: cannot press Enter");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The WCAG contrast ratio of each element's text against the background it is drawn on.
const CONTRAST: &str = "
  const rgb = (c) => (c.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const background = (node) => {
    for (; node; node = node.parentElement) {
      const c = rgb(getComputedStyle(node).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] > 0)) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  return arguments[0].map((css) => {
    const node = document.querySelector(css);
    if (!node) return [css, 0];
    const a = lum(rgb(getComputedStyle(node).color).slice(0, 3)), b = lum(background(node));
    return [css, (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05)];
  });
";

/// Clicks the first element `css` matches, found afresh on each try.
async fn click(client: &Client, css: &str) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Ok(element) = client.find(Locator::Css(css)).await {
            if element.click().await.is_ok() {
                return;
            }
        }
        assert!(Instant::now() < deadline, "{css}: cannot click");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn report(demo: &Demo, dir: &Path, lat: f64, lon: f64) {
    let kept = dir.join("kept");
    let mut command = Command::new(env!("CARGO_BIN_EXE_bmpls"));
    command
        .arg("report")
        .arg("--patient")
        .arg(kept.join("patients/alice"))
        .args(["--lat", &lat.to_string(), "--lon", &lon.to_string()])
        .arg("--ca")
        .arg(kept.join("certs/ca.pem"))
        .arg("--genesis")
        .arg(kept.join("certs/genesis.toml"));
    for node in &demo.nodes {
        command.args(["--node", node]);
    }
    let out = command.output().expect("report runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The distinct cells and the records `bmpls query` sees for the operator today (CSV).
fn query_today(demo: &Demo, dir: &Path, grant: &str) -> (usize, usize) {
    let kept = dir.join("kept");
    let mut command = Command::new(env!("CARGO_BIN_EXE_bmpls"));
    command
        .arg("query")
        .arg("--carer")
        .arg(kept.join("carers/telecare"))
        .args(["--patient-id", &demo.patient, "--grant", grant])
        .args(["--level", "neighbourhood", "--format", "csv"])
        .arg("--levels")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../config/levels.toml"
        ))
        .arg("--ca")
        .arg(kept.join("certs/ca.pem"))
        .arg("--genesis")
        .arg(kept.join("certs/genesis.toml"));
    for node in &demo.nodes {
        command.args(["--node", node]);
    }
    let out = command.output().expect("query runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let rows: Vec<&str> = text.lines().skip(1).collect();
    let cells: std::collections::BTreeSet<String> = rows
        .iter()
        .map(|row| row.split(',').skip(3).take(4).collect::<Vec<_>>().join(","))
        .collect();
    (cells.len(), rows.len())
}

/// One plain HTTP/1.1 exchange; returns the status code.
fn http(addr: SocketAddr, request: &str) -> u16 {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(PATIENCE))
        .expect("read timeout");
    stream.write_all(request.as_bytes()).expect("send");
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).expect("status line");
    let line = String::from_utf8_lossy(&head).into_owned();
    line[9..12].parse().expect("a status code")
}

/// A GET (`Connection: close`); returns the whole response, head and body.
fn get_all(addr: SocketAddr, path: &str, cookie: &str) -> String {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(PATIENCE))
        .expect("read timeout");
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("response");
    response
}

/// `bmpls console` itself, started anew for the same carer: it serves the caseload, and the
/// acknowledgement made in the browser is still there (read from its log).
fn console_command(demo: &Demo, dir: &Path, id: &str) {
    let kept = dir.join("kept");
    let mut command = Command::new(env!("CARGO_BIN_EXE_bmpls"));
    command
        .arg("console")
        .arg("--carer")
        .arg(kept.join("carers/telecare"))
        .args(["--listen", "127.0.0.1:0", "--tiles", "grid"])
        .arg("--levels")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../config/levels.toml"
        ))
        .arg("--ca")
        .arg(kept.join("certs/ca.pem"))
        .arg("--genesis")
        .arg(kept.join("certs/genesis.toml"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for node in &demo.nodes {
        command.args(["--node", node]);
    }
    let mut child = command.spawn().expect("console runs");
    let stdout = child.stdout.take().expect("stdout");
    let _process = Killed(child);
    let mut first = String::new();
    BufReader::new(stdout)
        .read_line(&mut first)
        .expect("the console prints its URL");
    let url = first
        .rsplit("open ")
        .next()
        .expect("url")
        .trim()
        .to_string();
    let rest = url.strip_prefix("http://").expect("an http URL");
    let (addr, path) = rest.split_once('/').expect("a path");
    let addr: SocketAddr = addr.parse().expect("addr");
    let entry = get_all(addr, &format!("/{path}"), "");
    assert!(entry.starts_with("HTTP/1.1 303"), "{entry}");
    let cookie = entry
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .and_then(|c| c.split(';').next())
        .expect("a cookie")
        .to_string();
    let caseload = get_all(addr, "/api/caseload", &cookie);
    assert!(caseload.starts_with("HTTP/1.1 200"), "{caseload}");
    assert!(caseload.contains(&demo.patient), "{caseload}");
    let deadline = Instant::now() + PATIENCE;
    loop {
        let alarms = get_all(addr, "/api/alarms", &cookie);
        if alarms.contains(id) {
            assert!(alarms.contains("\"by\":\"Sam Jones\""), "{alarms}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the restarted console lacks {id}: {alarms}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn access_checks(demo: &Demo, cookie: &str, csrf: &str) {
    let addr: SocketAddr = demo
        .base
        .trim_start_matches("http://")
        .parse()
        .expect("addr");
    let host = addr.to_string();
    let get = |path: &str, host: &str, cookie: &str| {
        http(
            addr,
            &format!(
                "GET {path} HTTP/1.1\r\nHost: {host}\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"
            ),
        )
    };
    assert_eq!(get("/api/alarms", &host, cookie), 200, "with the cookie");
    assert_eq!(get("/api/alarms", &host, "x=y"), 401, "without the cookie");
    assert_eq!(get("/?token=00", &host, ""), 401, "a wrong token");
    assert_eq!(
        get("/api/alarms", "rebound.example:80", cookie),
        421,
        "a rebound host name"
    );
    let post = |body: &str, extra: &str| {
        http(
            addr,
            &format!(
                "POST /api/ack HTTP/1.1\r\nHost: {host}\r\nCookie: {cookie}\r\n{extra}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            ),
        )
    };
    assert_eq!(
        post("{\"id\":\"x\",\"by\":\"y\"}", ""),
        403,
        "no CSRF token"
    );
    assert_eq!(
        post("{\"id\":\"x\",\"by\":\"y\"}", "X-Csrf-Token: 0\r\n"),
        403,
        "a wrong CSRF token"
    );
    assert_eq!(
        post(
            "{\"id\":\"x\",\"by\":\"y\"}",
            &format!("X-Csrf-Token: {csrf}\r\nOrigin: http://rebound.example\r\n")
        ),
        403,
        "another page's origin"
    );
    assert_eq!(
        post(
            "{\"id\":\"x\",\"by\":\"y\"}",
            &format!("X-Csrf-Token: {csrf}\r\n")
        ),
        404,
        "the console's own page, acknowledging an alarm it does not hold"
    );
    let big = format!("{{\"id\":\"x\",\"by\":\"{}\"}}", "y".repeat(3_000));
    assert_eq!(
        post(&big, &format!("X-Csrf-Token: {csrf}\r\n")),
        413,
        "a body over the limit"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_sees_the_caseload_acknowledges_an_exit_and_draws_a_history() {
    let dir = tempfile::tempdir().expect("temp dir");
    let demo = start_demo(dir.path());
    let port = free_port();
    let _driver = start_chromedriver(port);
    let client = browser(port, &dir.path().join("profile")).await;

    // The caseload: the demo's one patient, with a verified latest cell.
    client.goto(&demo.url).await.expect("open the console");
    let row = format!(
        "#caseload[data-loaded=true] tbody tr[data-patient='{}']",
        demo.patient
    );
    let rows = wait_for(&client, &row, 1).await;
    assert_eq!(rows.len(), 1);
    let shown = text(&client, &row).await;
    assert!(shown.contains("neighbourhood"), "{shown}");
    // The demo's safe zone is set at the operator's granted level: listed in the row with its
    // state, and drawn as one polygon per fence the console serves cells for.
    assert!(shown.contains("neighbourhood fence: "), "{shown}");
    let served = client
        .execute(
            "return fetch('/api/caseload').then(r => r.json())
               .then(c => c.rows.flatMap(r => r.fences.fences).filter(f => f.cells.length).length);",
            vec![],
        )
        .await
        .expect("the caseload's fences");
    let served = served.as_u64().expect("a count") as usize;
    assert_eq!(
        served, 1,
        "the demo's one safe zone, drawable at the granted level"
    );
    let zones = client
        .find_all(Locator::Css("#map path.fence-zone"))
        .await
        .expect("paths");
    assert_eq!(zones.len(), served, "fence polygons drawn");
    assert_eq!(
        attr(&client, "#caseload", "data-fences").await,
        served.to_string()
    );
    assert_eq!(
        client.current_url().await.expect("url").query(),
        None,
        "the token leaves the address bar"
    );
    let cookie = client
        .get_named_cookie("bmpls_console")
        .await
        .expect("the access cookie");
    let csrf = client
        .execute(
            "return fetch('/api/session').then(r => r.json()).then(s => s.csrf);",
            vec![],
        )
        .await
        .expect("the page's CSRF token");
    access_checks(
        &demo,
        &format!("bmpls_console={}", cookie.value()),
        csrf.as_str().expect("a string"),
    );

    // The demo's walk left the zone once already; the alarms of the past are listed.
    wait_for(&client, "#alarms li[data-kind=Exit]", 1).await;
    // She leaves home again: two records outside decide an Exit.
    report(&demo, dir.path(), 52.3700, 4.8950);
    report(&demo, dir.path(), 52.3702, 4.8953);
    let committed = Instant::now();
    // The Exit is decided by the second record reported (the walk's 20, then 21 and 22).
    let exit = "#alarms li[data-kind=Exit][data-seq='22'][data-acked=false]";
    wait_for(&client, exit, 1).await;
    let shown = committed.elapsed();
    let id = attr(&client, exit, "data-id").await;
    let delay_ms = attr(&client, exit, "data-delay-ms").await;
    eprintln!(
        "figure: the Exit showed in the page {} ms after `bmpls report` returned (committed); the console received it {delay_ms} ms after its block's time",
        shown.as_millis()
    );

    // Acknowledged by a named operator, kept on disk.
    let name = client
        .find(Locator::Id("operator"))
        .await
        .expect("operator field");
    name.clear().await.expect("clear");
    name.send_keys("Sam Jones").await.expect("type");
    // From the keyboard: Enter on the focused button, as an operator tabbing through does.
    press_enter(&client, &format!("#alarms li[data-id='{id}'] button.ack")).await;
    let acked = format!("#alarms li[data-id='{id}'][data-acked=true]");
    wait_for(&client, &acked, 1).await;
    let shown = text(&client, &acked).await;
    assert!(shown.contains("Acknowledged by Sam Jones at"), "{shown}");
    let log = std::fs::read_to_string(dir.path().join("kept/carers/telecare/console-acks.jsonl"))
        .expect("the acknowledgement log");
    assert!(
        log.lines()
            .any(|l| l.contains(&id) && l.contains("\"by\":\"Sam Jones\"")),
        "{log}"
    );

    // History of today: as many cells on the map as `bmpls query` finds.
    let today = client
        .execute(
            "const d = new Date(); d.setUTCHours(0, 0, 0, 0);
             const day = d.toISOString().slice(0, 10);
             document.getElementById('history-from').value = day + 'T00:00';
             document.getElementById('history-to').value = day + 'T23:59';
             return day;",
            vec![],
        )
        .await
        .expect("set the window");
    assert!(today.is_string());
    click(&client, "#history-run").await;
    wait_for(&client, "#history-status[data-cells]", 1).await;
    let cells: usize = attr(&client, "#history-status", "data-cells")
        .await
        .parse()
        .expect("a number");
    let drawn = client
        .find_all(Locator::Css("#map path.history-cell"))
        .await
        .expect("paths");
    let table = client
        .find_all(Locator::Css("#history tbody tr"))
        .await
        .expect("rows");
    let grant = client
        .execute(
            "return fetch('/api/caseload').then(r => r.json()).then(c => c.rows[0].grant);",
            vec![],
        )
        .await
        .expect("grant");
    let (expected_cells, expected_records) =
        query_today(&demo, dir.path(), grant.as_str().expect("hex"));
    assert_eq!(drawn.len(), expected_cells, "cells drawn");
    assert_eq!(cells, expected_cells, "cells counted");
    assert_eq!(table.len(), expected_records, "records in the table");
    assert_eq!(
        expected_records, 22,
        "the walk's 20 records and the two reported"
    );

    // The exports are of the same answer: a GeoJSON feature and a CSV row per record.
    let exported = client
        .execute(
            "const get = (id) => fetch(document.getElementById(id).href).then(r => r.text());
             return Promise.all([get('export-geojson'), get('export-csv')])
               .then(([g, c]) => [JSON.parse(g).features.length, c.trim().split('\\n').length - 1]);",
            vec![],
        )
        .await
        .expect("the exports");
    assert_eq!(
        exported,
        serde_json::json!([expected_records, expected_records]),
        "GeoJSON features and CSV rows"
    );

    // Readable: every kind of text on the page has at least WCAG AA's 4.5:1 contrast.
    let selectors = [
        "body",
        "#watch",
        "#banner",
        "#alarms li .state",
        "#alarms li .muted",
        "#alarms button.ack",
        ".count",
        "#caseload td",
        ".fence-outside, .fence-silent, .fence-inside, .fence-unknown",
        "#caseload button.show-fence",
        ".legend",
        "#history-status",
        "#history td",
        ".grid-tile",
    ];
    let ratios = client
        .execute(CONTRAST, vec![serde_json::json!(selectors)])
        .await
        .expect("contrast");
    for pair in ratios.as_array().expect("pairs") {
        let (css, ratio) = (
            pair[0].as_str().expect("css"),
            pair[1].as_f64().expect("ratio"),
        );
        assert!(ratio >= 4.5, "{css}: contrast {ratio:.2}:1");
    }

    console_command(&demo, dir.path(), &id);

    if let Ok(path) = std::env::var("BMPLS_CONSOLE_SCREENSHOT") {
        // The map's zoom and the banner's flash animate; the picture is of where they end.
        tokio::time::sleep(Duration::from_millis(3500)).await;
        let png = client.screenshot().await.expect("screenshot");
        std::fs::write(&path, png).expect("write the screenshot");
    }
    client.close().await.expect("close the browser");
}

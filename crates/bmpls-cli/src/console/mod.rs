//! `bmpls console`: the telecare operator's console, a local web application on the carer's
//! side. It holds the carer's keys, asks the validators over QUIC as `bmpls query` and `bmpls
//! watch` do (through `bmpls_client::ask` and `AlertStream`), and shows only verified answers at
//! the granted level: the caseload on a map, live alarms with their acknowledgements, history.
//!
//! - `auth.rs`: the access token, cookie and CSRF checks;
//! - `server.rs`: the HTTP routes (axum) and the JSON API;
//! - `view.rs`: caseload rows and histories from verified answers (pure);
//! - `alarms.rs`: alarms and fence states from alert events (pure);
//! - `fences.rs`: each patient's standing fences, their states, and their zones where the grant
//!   allows drawing them (pure);
//! - `acks.rs`: the acknowledgement log on disk;
//! - `assets/`: the page (HTML, JavaScript, CSS) and Leaflet, vendored (BSD-2-Clause).

mod acks;
mod alarms;
mod auth;
mod fences;
mod server;
mod view;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use clap::Args;

use bmpls_client::{AlertStream, CarerKeystore, Nodes, WatchError};
use bmpls_crypto::ValidatorSet;
use bmpls_grid::LevelSet;
use bmpls_net::alert::MAX_WATCH_WAIT_MS;
use bmpls_types::Height;

use crate::client::{Consortium, runtime};

pub(crate) use server::Console;

/// Arguments of `bmpls console`.
#[derive(Debug, Args)]
pub struct ConsoleArgs {
    /// The carer's keystore (the operator's: its keys sign queries and open grants).
    #[arg(long)]
    carer: PathBuf,
    /// Where to serve the console: a loopback address (it speaks plain HTTP).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Map tiles: `osm` (OpenStreetMap's tile server), `grid` (a plain scale grid, nothing
    /// fetched: offline use and tests) or a URL template with {z}, {x} and {y}.
    #[arg(long, default_value = "osm")]
    tiles: String,
    /// The name acknowledgements are signed with unless the operator types another.
    #[arg(long)]
    operator: Option<String>,
    /// The acknowledgement log (default: console-acks.jsonl in the carer's keystore).
    #[arg(long)]
    acks: Option<PathBuf>,
    /// The precision levels (as the patients').
    #[arg(long, default_value = "config/levels.toml")]
    levels: PathBuf,
    #[command(flatten)]
    consortium: Consortium,
}

/// Where the map's tiles come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tiles {
    /// A plain scale grid drawn in the page: nothing is fetched.
    Grid,
    /// A tile server: its URL template and origin (which the page's policy allows).
    Url {
        /// `https://host/{z}/{x}/{y}.png`.
        template: String,
        /// `https://host`.
        origin: String,
        /// The attribution the tile server asks for.
        attribution: String,
    },
}

/// OpenStreetMap's standard tiles (their usage policy asks for the attribution).
const OSM_TILES: &str = "https://tile.openstreetmap.org/{z}/{x}/{y}.png";

impl Tiles {
    /// `grid`, `osm` or a URL template.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let (template, attribution) = match text {
            "grid" => return Ok(Self::Grid),
            "osm" => (OSM_TILES, "© OpenStreetMap contributors"),
            other => (other, ""),
        };
        let rest = template
            .strip_prefix("https://")
            .map(|r| ("https://", r))
            .or_else(|| template.strip_prefix("http://").map(|r| ("http://", r)));
        let Some((scheme, rest)) = rest else {
            anyhow::bail!("--tiles: grid, osm or an http(s) URL template, not {template:?}");
        };
        anyhow::ensure!(
            template.len() <= 256
                && ["{z}", "{x}", "{y}"].iter().all(|p| template.contains(p))
                && !template
                    .chars()
                    .any(|c| c.is_whitespace() || "'\";<>\\".contains(c)),
            "--tiles: a URL template holds {{z}}, {{x}} and {{y}}, no spaces or quotes, at most 256 characters"
        );
        let host = rest.split('/').next().unwrap_or("");
        anyhow::ensure!(!host.is_empty(), "--tiles: the URL names no host");
        Ok(Self::Url {
            template: template.to_string(),
            origin: format!("{scheme}{host}"),
            attribution: attribution.to_string(),
        })
    }

    /// The origin the page may load images from, for a tile server.
    pub fn origin(&self) -> Option<&str> {
        match self {
            Self::Grid => None,
            Self::Url { origin, .. } => Some(origin),
        }
    }

    fn to_json(&self) -> serde_json::Value {
        match self {
            Self::Grid => serde_json::json!({"kind": "grid"}),
            Self::Url {
                template,
                attribution,
                ..
            } => {
                serde_json::json!({"kind": "url", "template": template, "attribution": attribution})
            }
        }
    }
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// What a console needs: the carer, its validators and where to listen.
pub(crate) struct Setup {
    pub carer: CarerKeystore,
    pub nodes: Nodes,
    pub validators: ValidatorSet,
    pub levels: LevelSet,
    pub listen: SocketAddr,
    pub tiles: Tiles,
    pub operator: String,
    pub acks: PathBuf,
}

/// A console being served.
pub(crate) struct Running {
    /// The URL to open, token included.
    pub url: String,
    console: Arc<Console>,
    server: tokio::task::JoinHandle<()>,
    watcher: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Stops serving and watching, and closes the connections to the validators.
    pub async fn stop(self) {
        self.server.abort();
        self.watcher.abort();
        let _ = self.server.await;
        let _ = self.watcher.await;
        self.console.nodes.close().await;
    }
}

/// Refuses an address off loopback: the console speaks plain HTTP and holds the carer's keys.
fn check_listen(listen: SocketAddr) -> anyhow::Result<()> {
    anyhow::ensure!(
        listen.ip().is_loopback(),
        "--listen {listen}: the console speaks plain HTTP and holds the carer's keys; serve it on a \
         loopback address (127.0.0.1 or [::1]) and reach it from elsewhere through an SSH or TLS tunnel"
    );
    Ok(())
}

/// Binds the console's address and serves it (inside a tokio runtime).
pub(crate) async fn start(setup: Setup) -> anyhow::Result<Running> {
    check_listen(setup.listen)?;
    let acks = acks::AckLog::open(&setup.acks)?;
    if acks.skipped_lines > 0 {
        tracing::warn!(
            "{} unreadable line(s) in the acknowledgement log {} were skipped",
            acks.skipped_lines,
            setup.acks.display()
        );
    }
    let listener = tokio::net::TcpListener::bind(setup.listen)
        .await
        .with_context(|| format!("listening on {}", setup.listen))?;
    let addr = listener.local_addr()?;
    let access = auth::Access::new(addr, &mut rand::rngs::OsRng);
    let url = access.url();
    let console = Arc::new(Console::new(
        setup.carer,
        setup.nodes,
        setup.validators,
        setup.levels,
        access,
        setup.tiles,
        setup.operator,
        acks,
    ));
    let app = server::router(console.clone());
    let server = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!("the console stopped serving: {e}");
        }
    });
    let watcher = tokio::spawn(watch(console.clone()));
    Ok(Running {
        url,
        console,
        server,
        watcher,
    })
}

/// Follows the carer's alerts from height 1 (alarms are a function of the chain; their
/// acknowledgements are on disk) and hands each verified one to the pages.
async fn watch(console: Arc<Console>) {
    let mut stream = AlertStream::new(console.carer.carer, console.validators.clone(), Height(1));
    let mut backoff = Duration::from_millis(200);
    loop {
        let status = match stream.next_events(&console.nodes, MAX_WATCH_WAIT_MS).await {
            Ok(events) => {
                backoff = Duration::from_millis(200);
                for fault in stream.take_faults() {
                    tracing::warn!("alert stream: {fault}");
                }
                let received = now_ms();
                let mut fresh = Vec::new();
                if let (Ok(mut book), Ok(acks)) = (console.book.lock(), console.acks.lock()) {
                    for event in &events {
                        fresh.extend(book.add(event, received, &acks));
                    }
                }
                if !fresh.is_empty() {
                    console.caseload_stale().await;
                }
                for alarm in fresh {
                    console.push("alarm", serde_json::to_string(&alarm).unwrap_or_default());
                }
                serde_json::json!({"ok": true, "height": stream.next_height().0})
            }
            Err(e) => {
                let message = match &e {
                    WatchError::Network(_) => format!("no validator answers: {e}"),
                    _ => e.to_string(),
                };
                tracing::warn!("alert stream: {message}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
                serde_json::json!({"ok": false, "message": message})
            }
        };
        let changed = console
            .watch_status
            .lock()
            .map(|mut s| {
                let changed = s.get("ok") != status.get("ok");
                *s = status.clone();
                changed
            })
            .unwrap_or(false);
        if changed {
            console.push("watch", status.to_string());
        }
    }
}

/// `bmpls console`.
pub fn run(args: ConsoleArgs) -> anyhow::Result<()> {
    check_listen(args.listen)?;
    crate::init_logs();
    let carer = CarerKeystore::open(&args.carer)?;
    let levels = crate::client::read_levels(&args.levels)?;
    let tiles = Tiles::parse(&args.tiles)?;
    let validators = args.consortium.genesis()?.validators.crypto().clone();
    let operator = args
        .operator
        .clone()
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "operator".to_string());
    let acks = args
        .acks
        .clone()
        .unwrap_or_else(|| args.carer.join("console-acks.jsonl"));
    runtime()?.block_on(async {
        let nodes = args.consortium.connect(carer.identity()).await?;
        let carer_id = hex::encode(carer.carer.0);
        let running = start(Setup {
            carer,
            nodes,
            validators,
            levels,
            listen: args.listen,
            tiles,
            operator,
            acks,
        })
        .await?;
        println!(
            "console of carer {carer_id}: open {}\n  (the token is this start's; Ctrl-C stops the console)",
            running.url
        );
        crate::alerts::stop_signal().await;
        running.stop().await;
        anyhow::Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::{Tiles, check_listen};

    #[test]
    fn the_console_listens_on_loopback_only() {
        for ok in ["127.0.0.1:8080", "127.0.0.2:1", "[::1]:8080"] {
            check_listen(ok.parse().expect("addr")).expect(ok);
        }
        for off in ["0.0.0.0:8080", "192.0.2.7:8080", "[::]:8080"] {
            let error = check_listen(off.parse().expect("addr")).expect_err(off);
            assert!(error.to_string().contains("loopback"), "{error}");
        }
    }

    #[test]
    fn tiles_are_the_grid_osm_or_a_checked_url_template() {
        assert_eq!(Tiles::parse("grid").expect("grid"), Tiles::Grid);
        let osm = Tiles::parse("osm").expect("osm");
        assert_eq!(osm.origin(), Some("https://tile.openstreetmap.org"));
        let own = Tiles::parse("http://127.0.0.1:9000/tiles/{z}/{x}/{y}.png").expect("own");
        assert_eq!(own.origin(), Some("http://127.0.0.1:9000"));
        for bad in [
            "ftp://x/{z}/{x}/{y}",
            "https://x/{z}/{x}.png",
            "https://x/{z}/{x}/{y}.png' unsafe-inline",
            "https:///{z}/{x}/{y}",
        ] {
            assert!(Tiles::parse(bad).is_err(), "{bad}");
        }
    }
}

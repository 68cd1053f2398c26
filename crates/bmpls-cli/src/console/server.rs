//! The console's HTTP side (axum): the page and its assets, a JSON API over verified answers,
//! server-sent events for alarms, and the access checks of `auth.rs` in front of all of it.
//! Every answer shown comes from `bmpls_client::ask` (verified, then decrypted at the granted
//! level); nothing here logs a position or a secret.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Query as UrlQuery, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use tokio::sync::broadcast;

use bmpls_client::{AskError, CarerKeystore, LevelCiphers, Nodes, VerifiedAnswer, fence_zone};
use bmpls_crypto::ValidatorSet;
use bmpls_grid::LevelSet;
use bmpls_net::GrantSummary;
use bmpls_net::query::{Ask, FencesRequest, GrantRequest, MAX_ANSWER_RECORDS, Query, Unauthorized};
use bmpls_types::{LevelIndex, PatientId, TxHash};

use super::acks::{AckError, AckLog, MAX_ALARM_ID_CHARS, operator_name};
use super::alarms::AlarmBook;
use super::auth::Access;
use super::fences::{Fences, drawable, fences};
use super::view::{self, Row};
use super::{Tiles, now_ms};

/// Largest request body the console reads (an acknowledgement is well under it).
pub const MAX_BODY_BYTES: usize = 2 * 1024;
/// Alarm streams (browser tabs) open at once.
pub const MAX_EVENT_STREAMS: usize = 16;
/// Events queued for a slow stream before it is told to fetch the alarms again.
pub const EVENT_QUEUE: usize = 256;
/// Patients in the caseload: more are left out, and said so.
pub const MAX_CASELOAD: usize = 200;
/// How long a caseload is served again before it is asked anew (each ask is an audit entry
/// on the chain, so a page left open must not write one every few seconds).
pub const CASELOAD_FRESH: Duration = Duration::from_secs(10);
/// Longest query-string value read (an area, an id, a level name).
pub const MAX_PARAM_CHARS: usize = 200;
/// Queries the console has out to the validators at once; more wait their turn.
pub const MAX_QUERIES_IN_FLIGHT: usize = 4;
/// Fence zones the console keeps decrypted; past it a zone is decrypted again when shown.
pub const MAX_ZONES: usize = 4_096;
/// Runs of cells an area of a history query is covered by.
pub const MAX_AREA_RANGES: usize = 256;

/// What the console pushes to its pages.
#[derive(Clone, Debug)]
pub struct Pushed {
    /// The SSE event name: `alarm`, `ack`, `caseload`, `watch`.
    pub name: &'static str,
    /// Its JSON.
    pub json: String,
}

/// The console: the carer's keys and validators, and what it has seen.
pub struct Console {
    pub(super) carer: CarerKeystore,
    pub(super) nodes: Nodes,
    pub(super) validators: ValidatorSet,
    pub(super) levels: LevelSet,
    pub(super) access: Access,
    pub(super) tiles: Tiles,
    pub(super) operator: String,
    pub(super) book: Mutex<AlarmBook>,
    pub(super) acks: Mutex<AckLog>,
    pub(super) events: broadcast::Sender<Pushed>,
    pub(super) watch_status: Mutex<serde_json::Value>,
    caseload: tokio::sync::Mutex<Option<(Instant, serde_json::Value)>>,
    /// Each drawn fence's zone (cell runs at its level), decrypted once: a fence never changes.
    zones: Mutex<HashMap<TxHash, Vec<bmpls_grid::IndexRange>>>,
    /// Each grant's data window in ms, as a node's refusal or an answer showed it.
    windows: Mutex<HashMap<TxHash, (u64, u64)>>,
    streams: AtomicUsize,
    /// Queries to the validators at once (each answered query is an audit entry).
    queries: tokio::sync::Semaphore,
}

impl Console {
    /// A console for `carer` over `nodes`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        carer: CarerKeystore,
        nodes: Nodes,
        validators: ValidatorSet,
        levels: LevelSet,
        access: Access,
        tiles: Tiles,
        operator: String,
        acks: AckLog,
    ) -> Self {
        Self {
            carer,
            nodes,
            validators,
            levels,
            access,
            tiles,
            operator,
            book: Mutex::new(AlarmBook::default()),
            acks: Mutex::new(acks),
            events: broadcast::channel(EVENT_QUEUE).0,
            watch_status: Mutex::new(serde_json::json!({"ok": false, "message": "connecting"})),
            caseload: tokio::sync::Mutex::new(None),
            windows: Mutex::new(HashMap::new()),
            zones: Mutex::new(HashMap::new()),
            streams: AtomicUsize::new(0),
            queries: tokio::sync::Semaphore::new(MAX_QUERIES_IN_FLIGHT),
        }
    }

    /// Tells the pages something happened (nobody listening is fine).
    pub fn push(&self, name: &'static str, json: String) {
        let _ = self.events.send(Pushed { name, json });
    }

    /// Forgets the cached caseload: an alarm means a position changed.
    pub async fn caseload_stale(&self) {
        *self.caseload.lock().await = None;
    }

    fn level_name(&self, index: u8) -> String {
        self.levels
            .get(bmpls_grid::LevelIndex(index))
            .map_or_else(|| format!("level {index}"), |l| l.name.clone())
    }

    /// The grant's data window in ms: as learned, or as the default epoch length gives it.
    fn window_of(&self, grant: &GrantSummary) -> (u64, u64) {
        let learned = self
            .windows
            .lock()
            .ok()
            .and_then(|w| w.get(&grant.grant).copied());
        learned.unwrap_or_else(|| {
            let epoch = bmpls_client::keystore::DEFAULT_EPOCH_MS;
            (
                u64::from(grant.data_from.0) * epoch,
                (u64::from(grant.data_to.0) + 1) * epoch - 1,
            )
        })
    }

    fn learn_window(&self, grant: TxHash, window: (u64, u64)) {
        if let Ok(mut windows) = self.windows.lock() {
            if windows.len() < MAX_CASELOAD * 4 || windows.contains_key(&grant) {
                windows.insert(grant, window);
            }
        }
    }

    /// Asks `query` (clipped to the grant's data window), and once more with the window a
    /// node's refusal names: the patient's epoch length is known only from the chain. Fails
    /// with the page's text.
    async fn ask_clipped(
        &self,
        grant: &GrantSummary,
        mut query: Query,
        area: Option<&[bmpls_grid::IndexRange]>,
    ) -> Result<VerifiedAnswer, String> {
        let _turn = self
            .queries
            .acquire()
            .await
            .map_err(|_| "the console is stopping".to_string())?;
        let asked = (query.from_ms, query.to_ms);
        let mut retried = false;
        loop {
            let (lo, hi) = self.window_of(grant);
            if asked.1 < lo || asked.0 > hi {
                return Err(format!(
                    "the window is outside the grant's data, {} to {}",
                    crate::carer::iso(lo),
                    crate::carer::iso(hi)
                ));
            }
            query.from_ms = asked.0.max(lo);
            query.to_ms = asked.1.min(hi);
            let result = match area {
                None => {
                    bmpls_client::ask(
                        &self.nodes,
                        query.clone(),
                        &self.validators,
                        &self.levels,
                        &self.carer,
                    )
                    .await
                }
                Some(cells) => {
                    bmpls_client::ask_area(
                        &self.nodes,
                        query.clone(),
                        cells,
                        &self.validators,
                        &self.levels,
                        &self.carer,
                    )
                    .await
                }
            };
            match result {
                Err(AskError::Unauthorized {
                    why:
                        Unauthorized::OutsideWindow {
                            data_from_ms,
                            data_to_ms,
                            ..
                        },
                    ..
                }) if !retried => {
                    self.learn_window(grant.grant, (data_from_ms, data_to_ms));
                    retried = true;
                }
                Ok(answer) => {
                    // The proved enrolment gives the epoch length: a grant's data may reach
                    // further than the default length said, and then the window is asked again.
                    let length = answer.epoch_length_ms.max(1);
                    let proved = (
                        u64::from(answer.grant.data_from.0).saturating_mul(length),
                        (u64::from(answer.grant.data_to.0) + 1)
                            .saturating_mul(length)
                            .saturating_sub(1),
                    );
                    self.learn_window(grant.grant, proved);
                    // Asked wider than the assumed window, and the proved one reaches further.
                    let wider = (asked.0 < lo && proved.0 < lo) || (asked.1 > hi && proved.1 > hi);
                    if retried || !wider {
                        return Ok(answer);
                    }
                    retried = true;
                }
                Err(e) => return Err(crate::carer::ask_error_text(&e, &self.levels)),
            }
        }
    }

    async fn standing_grants(&self) -> Result<Vec<GrantSummary>, AskError> {
        let now = now_ms();
        let held = bmpls_client::grants_of(
            &self.nodes,
            bmpls_net::GrantsAsked::OfCarer(self.carer.carer),
        )
        .await?;
        Ok(held
            .into_iter()
            .filter(|g| g.carer == self.carer.carer && bmpls_client::standing_at(g, now))
            .collect())
    }

    /// The standing fences of the grant's patient that alert this carer, as `f + 1` validators
    /// list them, with the states the alarms set and, for those at the granted level or
    /// coarser, their zones (decrypted once per fence with the grant's keys, then kept).
    async fn patient_fences(&self, grant: &GrantSummary) -> Fences {
        let states = self
            .book
            .lock()
            .map(|b| b.fences_of(&hex::encode(grant.patient.0)))
            .unwrap_or_default();
        let request = FencesRequest {
            patient: grant.patient,
            grant: grant.grant,
        };
        let survey = {
            let Ok(_turn) = self.queries.acquire().await else {
                return Fences::default();
            };
            bmpls_client::standing_fences(
                &self.nodes,
                &request,
                &self.validators,
                &self.carer.carer,
            )
            .await
        };
        let survey = match survey {
            Ok(survey) => survey,
            Err(e) => {
                return Fences {
                    problem: Some(e.to_string()),
                    ..Fences::default()
                };
            }
        };
        let known = |hash: &TxHash| self.zones.lock().is_ok_and(|z| z.contains_key(hash));
        let unopened = survey
            .standing
            .iter()
            .any(|f| drawable(f.fence.level.0, grant.level.0) && !known(&f.hash));
        // The grant's keys, from its proof (not a query: no audit entry), only when a fence
        // not drawn before needs them.
        let keys = if unopened {
            let asked = GrantRequest {
                patient: grant.patient,
                grant: grant.grant,
            };
            Some(
                bmpls_client::proved_grant(&self.nodes, asked, &self.validators, &self.carer)
                    .await
                    .map_err(|e| crate::carer::ask_error_text(&e, &self.levels)),
            )
        } else {
            None
        };
        let mut ciphers = LevelCiphers::new(self.levels.clone());
        fences(&survey, grant.level.0, &self.levels, &states, |proved| {
            if let Some(zone) = self
                .zones
                .lock()
                .ok()
                .and_then(|z| z.get(&proved.hash).cloned())
            {
                return Ok(zone);
            }
            let (grant, keys) = match &keys {
                Some(Ok(opened)) => opened,
                Some(Err(why)) => return Err(why.clone()),
                None => return Err("the grant's keys were not asked for".to_string()),
            };
            // The epoch of now, when the fence has it.
            let today = u32::try_from(now_ms() / grant.epoch_length_ms.max(1)).unwrap_or(u32::MAX);
            let zone =
                fence_zone(&mut ciphers, keys, &proved.fence, today).map_err(|e| e.to_string())?;
            if let Ok(mut zones) = self.zones.lock() {
                if zones.len() < MAX_ZONES {
                    zones.insert(proved.hash, zone.clone());
                }
            }
            Ok(zone)
        })
    }

    async fn build_caseload(&self) -> serde_json::Value {
        let grants = match self.standing_grants().await {
            Ok(g) => g,
            Err(e) => {
                return serde_json::json!({"rows": [], "problem": e.to_string(), "at_ms": now_ms()});
            }
        };
        let chosen = view::grants_by_patient(&grants);
        let left_out = chosen.len().saturating_sub(MAX_CASELOAD);
        let mut rows: Vec<Row> = Vec::with_capacity(chosen.len().min(MAX_CASELOAD));
        for grant in chosen.into_iter().take(MAX_CASELOAD) {
            let query = Query {
                patient: grant.patient,
                grant: grant.grant,
                level: grant.level,
                from_ms: 0,
                to_ms: u64::MAX,
                ask: Ask::Last,
                limit: 1,
            };
            let answer = self.ask_clipped(grant, query, None).await;
            let answer = answer.as_ref().map_err(String::clone);
            let fences = self.patient_fences(grant).await;
            rows.push(view::row(
                grant,
                &self.level_name(grant.level.0),
                answer,
                fences,
                now_ms(),
            ));
        }
        serde_json::json!({
            "rows": rows,
            "left_out": left_out,
            "at_ms": now_ms(),
        })
    }
}

type Shared = Arc<Console>;

/// The console's routes, behind its access checks.
pub fn router(console: Shared) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/assets/{name}", get(asset))
        .route("/api/session", get(session))
        .route("/api/caseload", get(caseload))
        .route("/api/alarms", get(alarms))
        .route("/api/events", get(events))
        .route("/api/ack", post(acknowledge))
        .route("/api/history", get(history))
        .layer(middleware::from_fn_with_state(console.clone(), guard))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(console)
}

fn text(status: StatusCode, body: &'static str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}

/// The access checks (see `auth.rs`) and the headers every answer carries.
async fn guard(State(console): State<Shared>, request: Request, next: Next) -> Response {
    let access = &console.access;
    let headers = request.headers();
    if !access.host_ok(headers) {
        return text(
            StatusCode::MISDIRECTED_REQUEST,
            "this console answers only to its own address\n",
        );
    }
    let mut response = if request.uri().path() == "/" && request.uri().query().is_some() {
        // The printed URL: trade its token for the cookie, and take it out of the address bar.
        let token = request
            .uri()
            .query()
            .unwrap_or("")
            .split('&')
            .find_map(|pair| pair.strip_prefix("token="))
            .unwrap_or("");
        if access.token_matches(token) {
            let mut response = Response::new(Body::empty());
            *response.status_mut() = StatusCode::SEE_OTHER;
            response
                .headers_mut()
                .insert(header::LOCATION, HeaderValue::from_static("/"));
            if let Ok(cookie) = HeaderValue::from_str(&access.cookie()) {
                response.headers_mut().insert(header::SET_COOKIE, cookie);
            }
            response
        } else {
            text(
                StatusCode::UNAUTHORIZED,
                "wrong token: open the URL that `bmpls console` printed at its last start\n",
            )
        }
    } else if !access.cookie_ok(headers) {
        text(
            StatusCode::UNAUTHORIZED,
            "open the URL that `bmpls console` printed (it carries this start's token)\n",
        )
    } else if request.method() != Method::GET && !access.csrf_ok(headers) {
        text(StatusCode::FORBIDDEN, "missing or wrong CSRF token\n")
    } else {
        next.run(request).await
    };
    let csp = format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:{}; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
        console
            .tiles
            .origin()
            .map(|o| format!(" {o}"))
            .unwrap_or_default()
    );
    let h = response.headers_mut();
    if let Ok(csp) = HeaderValue::from_str(&csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn index() -> Response {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        include_str!("assets/index.html"),
    )
        .into_response()
}

/// The page's files, compiled in: nothing is fetched at run time.
async fn asset(axum::extract::Path(name): axum::extract::Path<String>) -> Response {
    let (kind, body): (&str, &'static str) = match name.as_str() {
        "app.js" => ("text/javascript", include_str!("assets/app.js")),
        "style.css" => ("text/css", include_str!("assets/style.css")),
        "leaflet.js" => (
            "text/javascript",
            include_str!("assets/vendor/leaflet/leaflet.js"),
        ),
        "leaflet.css" => (
            "text/css",
            include_str!("assets/vendor/leaflet/leaflet.css"),
        ),
        _ => return text(StatusCode::NOT_FOUND, "no such file\n"),
    };
    ([(header::CONTENT_TYPE, kind)], body).into_response()
}

async fn session(State(console): State<Shared>) -> Response {
    let levels: Vec<&str> = console
        .levels
        .levels()
        .iter()
        .map(|l| l.name.as_str())
        .collect();
    Json(serde_json::json!({
        "carer": hex::encode(console.carer.carer.0),
        "role": bmpls_client::carer::role_name(console.carer.role),
        "operator": console.operator,
        "csrf": console.access.csrf(),
        "tiles": console.tiles.to_json(),
        "levels": levels,
        "validators": console.nodes.len(),
    }))
    .into_response()
}

async fn caseload(State(console): State<Shared>) -> Response {
    let mut cached = console.caseload.lock().await;
    if let Some((at, value)) = cached.as_ref() {
        if at.elapsed() < CASELOAD_FRESH {
            return Json(value.clone()).into_response();
        }
    }
    let value = console.build_caseload().await;
    *cached = Some((Instant::now(), value.clone()));
    Json(value).into_response()
}

async fn alarms(State(console): State<Shared>) -> Response {
    let list = console
        .book
        .lock()
        .map(|b| b.newest_first())
        .unwrap_or_default();
    let status = console
        .watch_status
        .lock()
        .map(|s| s.clone())
        .unwrap_or_default();
    Json(serde_json::json!({"alarms": list, "watch": status})).into_response()
}

/// Frees a stream's slot when its page goes away.
struct StreamSlot(Shared);

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.0.streams.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn events(State(console): State<Shared>) -> Response {
    if console.streams.fetch_add(1, Ordering::SeqCst) >= MAX_EVENT_STREAMS {
        console.streams.fetch_sub(1, Ordering::SeqCst);
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many console pages are open\n",
        );
    }
    let slot = StreamSlot(console.clone());
    let receiver = console.events.subscribe();
    let stream = futures_util::stream::unfold((receiver, slot), |(mut receiver, slot)| async {
        let event = match receiver.recv().await {
            Ok(pushed) => Event::default().event(pushed.name).data(pushed.json),
            // The page missed some: it fetches the alarms anew.
            Err(broadcast::error::RecvError::Lagged(_)) => {
                Event::default().event("resync").data("{}")
            }
            Err(broadcast::error::RecvError::Closed) => return None,
        };
        Some((Ok::<_, Infallible>(event), (receiver, slot)))
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

#[derive(Deserialize)]
struct AckBody {
    id: String,
    by: String,
}

async fn acknowledge(State(console): State<Shared>, body: Json<AckBody>) -> Response {
    if body.id.len() > MAX_ALARM_ID_CHARS {
        return text(StatusCode::BAD_REQUEST, "no such alarm\n");
    }
    let by = match operator_name(&body.by) {
        Ok(by) => by,
        Err(e) => return (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    };
    let result = {
        let (Ok(mut book), Ok(mut acks)) = (console.book.lock(), console.acks.lock()) else {
            return text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "console state poisoned\n",
            );
        };
        book.acknowledge(&body.id, by, now_ms(), &mut acks)
    };
    match result {
        Ok(alarm) => {
            let json = serde_json::to_string(&alarm).unwrap_or_default();
            console.push("ack", json.clone());
            ([(header::CONTENT_TYPE, "application/json")], json).into_response()
        }
        Err(e @ AckError::UnknownAlarm) => (StatusCode::NOT_FOUND, e.to_string()).into_response(),
        Err(e @ AckError::Already) => (StatusCode::CONFLICT, e.to_string()).into_response(),
        Err(e) => {
            tracing::error!("acknowledgement not kept: {e}");
            (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response()
        }
    }
}

/// A history query as the page sends it.
#[derive(Deserialize)]
struct HistoryParams {
    patient: String,
    from_ms: u64,
    to_ms: u64,
    /// A level name (default: the granted one); it may be coarser than the grant's.
    level: Option<String>,
    /// `circle:LAT,LON,METRES` or `box:W,S,E,N`; absent for the whole track.
    area: Option<String>,
    /// `json` (default), `geojson` or `csv`.
    format: Option<String>,
}

fn bad(why: impl Into<String>) -> Response {
    (StatusCode::BAD_REQUEST, why.into()).into_response()
}

async fn history(State(console): State<Shared>, params: UrlQuery<HistoryParams>) -> Response {
    let p = &params.0;
    for value in [
        &p.patient,
        p.level.as_ref().unwrap_or(&String::new()),
        p.area.as_ref().unwrap_or(&String::new()),
    ] {
        if value.len() > MAX_PARAM_CHARS {
            return bad("a parameter is too long");
        }
    }
    let mut patient = [0u8; 16];
    if hex::decode_to_slice(p.patient.trim(), &mut patient).is_err() {
        return bad("patient: 32 hex digits");
    }
    if p.to_ms < p.from_ms {
        return bad("the window ends before it starts");
    }
    let grants = match console.standing_grants().await {
        Ok(g) => g,
        Err(e) => return (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    };
    let Some(grant) = view::grants_by_patient(&grants)
        .into_iter()
        .find(|g| g.patient == PatientId(patient))
        .cloned()
    else {
        return (
            StatusCode::FORBIDDEN,
            "this carer holds no standing grant of that patient",
        )
            .into_response();
    };
    let (level, depth) = match p.level.as_deref().filter(|l| !l.is_empty()) {
        None => match console.levels.get(bmpls_grid::LevelIndex(grant.level.0)) {
            Some(l) => (grant.level, l.depth),
            None => return bad("the grant's level is not in the levels configuration"),
        },
        Some(name) => match crate::carer::level_arg(&console.levels, name) {
            Ok((index, _)) if index.0 < grant.level.0 => {
                return bad("that level is finer than the grant");
            }
            Ok((index, depth)) => (index, depth),
            Err(e) => return bad(e.to_string()),
        },
    };
    let area = match area_param(p.area.as_deref(), depth) {
        Ok(area) => area,
        Err(why) => return bad(why),
    };
    let query = Query {
        patient: grant.patient,
        grant: grant.grant,
        level: LevelIndex(level.0),
        from_ms: p.from_ms,
        to_ms: p.to_ms,
        ask: Ask::Track,
        limit: MAX_ANSWER_RECORDS as u32,
    };
    let answer = match console.ask_clipped(&grant, query, area.as_deref()).await {
        Ok(answer) => answer,
        Err(why) => return (StatusCode::BAD_GATEWAY, why).into_response(),
    };
    let name = format!("bmpls-{}", &p.patient.trim()[..8]);
    match p.format.as_deref().unwrap_or("json") {
        "json" => Json(view::history(&answer)).into_response(),
        "geojson" => download(
            "application/geo+json",
            &format!("{name}.geojson"),
            crate::output::geojson(&answer),
        ),
        "csv" => download(
            "text/csv; charset=utf-8",
            &format!("{name}.csv"),
            crate::output::csv(&answer),
        ),
        _ => bad("format: json, geojson or csv"),
    }
}

/// A history's area as the page sends it: `circle:LAT,LON,METRES` or `box:W,S,E,N` (the
/// command line's `--circle` and `--box`), covered at `depth`; nothing or empty for a track.
fn area_param(
    text: Option<&str>,
    depth: u8,
) -> Result<Option<Vec<bmpls_grid::IndexRange>>, String> {
    let Some(text) = text.map(str::trim).filter(|a| !a.is_empty()) else {
        return Ok(None);
    };
    let (circle, area_box) = match text.split_once(':') {
        Some(("circle", c)) => (Some(c), None),
        Some(("box", b)) => (None, Some(b)),
        _ => return Err("area: circle:LAT,LON,METRES or box:W,S,E,N".to_string()),
    };
    crate::carer::area_arg(circle, area_box, None, depth, MAX_AREA_RANGES)
        .map_err(|e| e.to_string())
}

fn download(kind: &'static str, file: &str, body: String) -> Response {
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{file}\""))
        .unwrap_or_else(|_| HeaderValue::from_static("attachment"));
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(kind)),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::area_param;

    #[test]
    fn a_history_area_is_a_circle_or_a_box_and_anything_else_is_refused_saying_so() {
        assert_eq!(area_param(None, 16), Ok(None));
        assert_eq!(area_param(Some("  "), 16), Ok(None));
        let circle = area_param(Some("circle:52.3579,4.8686,500"), 16)
            .expect("a circle")
            .expect("cells");
        assert!(!circle.is_empty());
        let square = area_param(Some("box:4.86,52.35,4.88,52.37"), 16)
            .expect("a box")
            .expect("cells");
        assert!(!square.is_empty());
        // Whatever the page sends, an answer and no panic: not-a-number, huge, the whole world.
        for odd in [
            "circle:NaN,4.8,100",
            "circle:52.3,4.8,inf",
            "circle:52.3,4.8,1e12",
            "circle:95,4.8,100",
            "box:-180,-90,180,90",
            "box:NaN,1,2,3",
        ] {
            let _ = area_param(Some(odd), 16);
            let _ = area_param(Some(odd), 25);
        }
        for bad in ["polygon:1,2", "52.3,4.8,100", "circle:52.3,4.8"] {
            assert!(area_param(Some(bad), 16).is_err(), "{bad}");
        }
        let latitude_first =
            area_param(Some("box:4.88,52.38,4.90,52.36"), 16).expect_err("latitude first");
        assert!(
            latitude_first.contains("longitude first"),
            "{latitude_first}"
        );
    }
}

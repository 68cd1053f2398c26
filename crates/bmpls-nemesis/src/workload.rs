//! The clients, running throughout the faults: reporters submitting records continuously and
//! resubmitting what was not acknowledged, a carer querying one patient's track and checking
//! every record it accepts against what was reported, the same carer watching alerts from a
//! fence the patient walks in and out of, and a probe asking every validator for its tip.
//! Everything they see goes into the shared [`History`].

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bmpls_client::{AlertStream, CarerKeystore, Fix, Nodes, PatientKeystore, verify_answer};
use bmpls_crypto::hash::tx_hash;
use bmpls_crypto::{SigningKey, ValidatorSet};
use bmpls_grid::{CellIndex, LevelSet};
use bmpls_net::query::{Ask, Query, QueryOutcome};
use bmpls_net::{Client, RefusalCode, Request, Response, Submitted, Trust};
use bmpls_types::{Height, LevelIndex, Role, Seq, Transaction};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::checker::{Ack, AnswerOutcome, History, StatusSample};
use crate::cluster::chain;

/// The shipped precision levels.
pub const LEVELS_TOML: &str = include_str!("../../../config/levels.toml");
/// The level the carer is granted and queries at (neighbourhood, an ORE level).
pub const GRANTED: LevelIndex = LevelIndex(2);
const DAY_MS: u64 = 86_400_000;
/// The patient's home: the fence is around it.
const HOME: (f64, f64) = (52.3579, 4.8686);
/// Longest wait for one request before it counts as unanswered (the client's own timeout is
/// longer; a validator cut off from the others would hold a submission that long).
const CALL_TIMEOUT: Duration = Duration::from_secs(15);

/// Milliseconds since 1970 by this machine's clock.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The shared record of a run.
pub type Shared = Arc<Mutex<History>>;

fn record(history: &Shared, f: impl FnOnce(&mut History)) {
    f(&mut history.lock().unwrap_or_else(|e| e.into_inner()));
}

/// Whom the clients talk to.
#[derive(Clone)]
pub struct Target {
    /// The validators' client addresses.
    pub addrs: Vec<SocketAddr>,
    /// The CA clients pin.
    pub trust: Trust,
    /// Genesis validators, to check certificates.
    pub validators: ValidatorSet,
    /// The operator's key.
    pub operator: SigningKey,
}

/// The highest height each validator last reported.
#[derive(Debug)]
pub struct Heights(Vec<AtomicU64>);

impl Heights {
    /// The highest.
    pub fn max(&self) -> u64 {
        self.0
            .iter()
            .map(|h| h.load(Ordering::Relaxed))
            .max()
            .unwrap_or(0)
    }

    /// The lowest.
    pub fn min(&self) -> u64 {
        self.0
            .iter()
            .map(|h| h.load(Ordering::Relaxed))
            .min()
            .unwrap_or(0)
    }
}

/// Asks every validator for its tip every 250 ms and records each new tip.
pub fn probe(target: &Target, history: Shared, stop: Arc<AtomicBool>) -> Arc<Heights> {
    let heights = Arc::new(Heights(
        target.addrs.iter().map(|_| AtomicU64::new(0)).collect(),
    ));
    for (node, addr) in target.addrs.iter().enumerate() {
        let Ok(client) = Client::new(
            *addr,
            &target.trust,
            SigningKey::from_seed(&target.operator.to_seed()),
        ) else {
            continue;
        };
        let (heights, history, stop) = (heights.clone(), history.clone(), stop.clone());
        tokio::spawn(async move {
            let mut last = 0;
            while !stop.load(Ordering::Relaxed) {
                let asked =
                    tokio::time::timeout(Duration::from_secs(2), client.call(Request::Status));
                if let Ok(Ok(Response::Status(s))) = asked.await {
                    heights.0[node].store(s.height, Ordering::Relaxed);
                    if s.height != last {
                        last = s.height;
                        record(&history, |h| {
                            h.statuses.push(StatusSample {
                                node,
                                height: s.height,
                                tip: s.tip.0,
                            });
                        });
                    }
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        });
    }
    heights
}

/// The running clients.
pub struct Workload {
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Workload {
    /// Stops the clients, waiting up to `patience` for requests in flight.
    pub async fn stop(self, patience: Duration) {
        self.stop.store(true, Ordering::Relaxed);
        let deadline = tokio::time::Instant::now() + patience;
        for task in self.tasks {
            let abort = task.abort_handle();
            if tokio::time::timeout_at(deadline, task).await.is_err() {
                abort.abort();
            }
        }
    }
}

/// Submits `txs` until each is committed; the heights.
async fn commit(nodes: &Nodes, txs: Vec<Transaction>) -> Result<Vec<u64>, String> {
    let mut last = String::new();
    for _ in 0..60 {
        match tokio::time::timeout(CALL_TIMEOUT, nodes.submit(txs.clone())).await {
            Ok(Ok(outcomes)) => {
                let heights: Option<Vec<u64>> = outcomes
                    .iter()
                    .map(|o| match o {
                        Submitted::Committed { height, .. } => Some(*height),
                        _ => None,
                    })
                    .collect();
                match heights {
                    Some(h) => return Ok(h),
                    None => last = format!("{outcomes:?}"),
                }
            }
            Ok(Err(e)) => last = e.to_string(),
            Err(_) => last = "timeout".into(),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Err(format!("setup transactions not committed: {last}"))
}

/// Expected cell (at [`GRANTED`]) of each of the watched patient's records, by sequence number.
type Expected = Arc<Mutex<HashMap<u64, CellIndex>>>;

/// Enrols `reporters` patients and a carer, grants the carer the first patient's
/// neighbourhood level with a fence around home, and starts every client.
pub async fn start(
    target: &Target,
    dir: &Path,
    reporters: usize,
    batch: usize,
    seed: u64,
    history: Shared,
) -> Result<Workload, String> {
    let levels = LevelSet::from_toml(LEVELS_TOML).map_err(|e| e.to_string())?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let patients: Vec<PatientKeystore> = (0..reporters.max(1))
        .map(|p| {
            PatientKeystore::create(
                &dir.join(format!("patient{p}")),
                LEVELS_TOML,
                DAY_MS,
                &mut rng,
            )
            .map_err(|e| e.to_string())
        })
        .collect::<Result<_, _>>()?;
    let carer = CarerKeystore::create(&dir.join("carer"), Role::TelecareOperator, &mut rng)
        .map_err(|e| e.to_string())?;
    let admin =
        Nodes::new(&target.addrs, &target.trust, &target.operator).map_err(|e| e.to_string())?;
    let mut enrolments: Vec<Transaction> = patients
        .iter()
        .map(|p| p.enrolment(&target.operator, &chain()))
        .collect();
    enrolments.push(carer.enrolment(&target.operator, &chain()));
    commit(&admin, enrolments).await?;

    let now = now_ms();
    let window = (
        now / DAY_MS * DAY_MS - DAY_MS,
        now / DAY_MS * DAY_MS + 2 * DAY_MS - 1,
    );
    let watched = &patients[0];
    let grant = watched
        .grant(
            &chain(),
            carer.carer,
            &carer.agreement().public(),
            GRANTED,
            window,
            (now - 60_000, now + DAY_MS),
            "telecare",
            &mut rng,
        )
        .map_err(|e| e.to_string())?;
    let grant_hash = tx_hash(&grant);
    commit(&admin, vec![grant]).await?;
    let depth = levels.levels()[usize::from(GRANTED.0)].depth;
    let cells =
        bmpls_grid::cover_circle(HOME.1, HOME.0, 400.0, depth, 128).map_err(|e| e.to_string())?;
    let fence = watched
        .fence(&chain(), carer.carer, GRANTED, &cells, window, 2, 0)
        .map_err(|e| e.to_string())?;
    commit(&admin, vec![fence]).await?;

    let stop = Arc::new(AtomicBool::new(false));
    let expected: Expected = Arc::default();
    let mut tasks = Vec::new();
    for (p, patient) in patients.iter().enumerate() {
        let phone = Nodes::new(&target.addrs, &target.trust, patient.reporter_key())
            .map_err(|e| e.to_string())?;
        let reporter = patient.reporter(&chain()).map_err(|e| e.to_string())?;
        let state = Phone {
            index: p,
            reporter,
            phone,
            batch,
            next_seq: 1,
            rng: ChaCha8Rng::seed_from_u64(seed.wrapping_add(1 + p as u64)),
            grid_depth: levels.grid_depth(),
            depth,
            expected: (p == 0).then(|| expected.clone()),
        };
        tasks.push(tokio::spawn(state.run(history.clone(), stop.clone())));
    }
    let carer = Arc::new(carer);
    let carer_nodes = Arc::new(
        Nodes::new(&target.addrs, &target.trust, carer.identity()).map_err(|e| e.to_string())?,
    );
    let querier = Querier {
        carer: carer.clone(),
        nodes: carer_nodes.clone(),
        validators: target.validators.clone(),
        levels,
        patient: watched.patient,
        grant: grant_hash,
        expected,
    };
    tasks.push(tokio::spawn(querier.run(history.clone(), stop.clone())));
    let mut stream = AlertStream::new(carer.carer, target.validators.clone(), Height(1));
    let (watch_history, watch_stop) = (history.clone(), stop.clone());
    tasks.push(tokio::spawn(async move {
        while !watch_stop.load(Ordering::Relaxed) {
            let polled = tokio::time::timeout(
                Duration::from_secs(20),
                stream.next_events(&carer_nodes, 1_000),
            )
            .await;
            let faults = stream.take_faults();
            let failed = !matches!(polled, Ok(Ok(_)));
            record(&watch_history, |h| {
                match polled {
                    Ok(Ok(events)) => h.alerts += events.len(),
                    Ok(Err(e)) => h.watch_errors.push(e.to_string()),
                    Err(_) => h.watch_errors.push("no answer within 20 s".into()),
                }
                h.watch_faults
                    .extend(faults.iter().map(|f| format!("{f:?}")));
            });
            if failed {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }));
    Ok(Workload { stop, tasks })
}

struct Pending {
    tx: Transaction,
    hash: [u8; 32],
    seq: u64,
    first_sent: Instant,
}

/// One patient's phone.
struct Phone {
    index: usize,
    reporter: bmpls_client::Reporter,
    phone: Nodes,
    batch: usize,
    next_seq: u64,
    rng: ChaCha8Rng,
    grid_depth: u8,
    depth: u8,
    expected: Option<Expected>,
}

impl Phone {
    /// The next fix: the watched patient spends ten fixes at home, ten 3 km east, and so on
    /// (an exit and an entry for the fence each time); the others wander.
    fn fix(&mut self, seq: u64) -> Fix {
        let away = (seq / 10) % 2 == 1;
        let jitter = |rng: &mut ChaCha8Rng| (rand::Rng::r#gen::<f64>(rng) - 0.5) * 1e-3;
        let lat = HOME.0 + jitter(&mut self.rng) + self.index as f64 * 0.01;
        let lon = HOME.1 + jitter(&mut self.rng) + if away { 0.03 } else { 0.0 };
        Fix {
            lat,
            lon,
            accuracy_m: 8.0,
            altitude_m: 3.0,
            speed_m_s: 1.2,
            battery_percent: 80,
            trigger: bmpls_types::Trigger::Periodic,
            fix_time_ms: now_ms(),
        }
    }

    fn build(&mut self) -> Vec<Pending> {
        let mut built = Vec::with_capacity(self.batch);
        for _ in 0..self.batch {
            let seq = self.next_seq;
            let fix = self.fix(seq);
            let Ok(record) = self.reporter.build(&fix, Seq(seq), &mut self.rng) else {
                continue;
            };
            if let Some(expected) = &self.expected
                && let Ok(cell) = CellIndex::from_lon_lat(fix.lon, fix.lat, self.grid_depth)
                    .and_then(|c| c.at_depth(self.depth))
            {
                expected
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(seq, cell);
            }
            self.next_seq += 1;
            let tx = Transaction::Report(record);
            built.push(Pending {
                hash: tx_hash(&tx).0,
                tx,
                seq,
                first_sent: Instant::now(),
            });
        }
        built
    }

    async fn run(mut self, history: Shared, stop: Arc<AtomicBool>) {
        let mut pending: Vec<Pending> = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            if pending.is_empty() {
                pending = self.build();
            }
            let txs: Vec<Transaction> = pending.iter().map(|p| p.tx.clone()).collect();
            let answer = tokio::time::timeout(CALL_TIMEOUT, self.phone.submit(txs)).await;
            let Ok(Ok(outcomes)) = answer else {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            };
            let mut kept = Vec::new();
            for (p, outcome) in pending.into_iter().zip(outcomes) {
                match outcome {
                    Submitted::Committed { height, .. } => record(&history, |h| {
                        h.acks.push(Ack {
                            tx: p.hash,
                            reporter: self.index,
                            seq: p.seq,
                            height,
                            latency_ms: p.first_sent.elapsed().as_millis() as u64,
                        });
                    }),
                    // Committed earlier, its acknowledgement lost with a node or a link.
                    Submitted::Refused {
                        code: RefusalCode::Replay,
                        ..
                    } => record(&history, |h| h.unacked_commits += 1),
                    Submitted::Refused { code, .. } => {
                        record(&history, |h| {
                            *h.refusals.entry(format!("{code:?}")).or_default() += 1;
                        });
                        kept.push(p);
                    }
                }
            }
            pending = kept;
            if !pending.is_empty() {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

/// The carer asking for the watched patient's recent track.
struct Querier {
    carer: Arc<CarerKeystore>,
    nodes: Arc<Nodes>,
    validators: ValidatorSet,
    levels: LevelSet,
    patient: bmpls_types::PatientId,
    grant: bmpls_types::TxHash,
    expected: Expected,
}

impl Querier {
    async fn run(self, history: Shared, stop: Arc<AtomicBool>) {
        while !stop.load(Ordering::Relaxed) {
            let now = now_ms();
            let query = Query {
                patient: self.patient,
                grant: self.grant,
                level: GRANTED,
                from_ms: now.saturating_sub(30_000),
                to_ms: now,
                ask: Ask::Track,
                limit: 64,
            };
            let outcome = self.ask(query).await;
            record(&history, |h| h.answers.push(outcome));
            tokio::time::sleep(Duration::from_millis(700)).await;
        }
    }

    async fn ask(&self, query: Query) -> AnswerOutcome {
        // As `bmpls_client::ask` does: a validator that joined from a snapshot after the
        // window says it does not hold it, and the next one is asked.
        let mut left = self.nodes.len();
        let outcome = loop {
            let answered =
                tokio::time::timeout(CALL_TIMEOUT, self.nodes.query(vec![query.clone()])).await;
            let (node, outcome) = match answered {
                Err(_) => return AnswerOutcome::Unreachable("no answer in time".into()),
                Ok(Err(bmpls_client::NetworkError::Refused(e))) => {
                    return AnswerOutcome::Refused(format!("{e:?}"));
                }
                Ok(Err(e)) => return AnswerOutcome::Unreachable(e.to_string()),
                Ok(Ok((node, mut outcomes))) => match outcomes.pop() {
                    Some(o) => (node, o),
                    None => return AnswerOutcome::FailedVerification("an empty answer".into()),
                },
            };
            left -= 1;
            if left > 0 && matches!(outcome, QueryOutcome::NotHeld(_)) {
                self.nodes.avoid(node);
                continue;
            }
            break outcome;
        };
        let answer = match outcome {
            QueryOutcome::Answered(answer) => answer,
            QueryOutcome::Unauthorized(why) => return AnswerOutcome::Refused(why.to_string()),
            QueryOutcome::Failed(why) | QueryOutcome::NotHeld(why) => {
                return AnswerOutcome::Refused(why.as_str().to_string());
            }
        };
        match verify_answer(*answer, &query, &self.validators, &self.levels, &self.carer) {
            Err(e) => AnswerOutcome::FailedVerification(e.to_string()),
            Ok(verified) => {
                let expected = self.expected.lock().unwrap_or_else(|e| e.into_inner());
                let wrong =
                    verified
                        .records
                        .iter()
                        .find_map(|seen| match expected.get(&seen.seq.0) {
                            None => Some(format!("seq {} was never reported", seen.seq.0)),
                            Some(cell) if *cell != seen.cell => {
                                Some(format!("seq {} answered in another cell", seen.seq.0))
                            }
                            Some(_) => None,
                        });
                AnswerOutcome::Verified {
                    records: verified.records.len(),
                    wrong,
                }
            }
        }
    }
}

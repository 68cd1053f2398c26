//! The consensus write-ahead log in files (`FileWal`): a validator that stops after signing and
//! starts again from its log — whole, or cut anywhere a crash can cut it — re-signs only what it
//! signed before and reaches the same decision; durable appends survive kill -9 of a process
//! appending in a loop, and what is read back is exactly a prefix of what was written.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use bmpls_consensus::{
    ConsensusParams, Engine, Genesis, Ledger, Message, Output, ValidatorSet, WalRecord, WalStorage,
};
use bmpls_crypto::SigningKey;
use bmpls_store::{FileWal, StoreError};
use bmpls_types::{Canonical, ChainId, ValidatorId};

fn genesis(key: &SigningKey) -> Genesis {
    let chain = ChainId::new("wal-test").expect("short");
    let set = bmpls_crypto::ValidatorSet::new(
        chain,
        vec![bmpls_crypto::Validator {
            id: ValidatorId(key.public().0),
            power: 1,
        }],
    )
    .expect("valid set");
    Genesis {
        validators: ValidatorSet::new(set),
        genesis_time_ms: 0,
        params: ConsensusParams::default(),
        names: Vec::new(),
    }
}

fn committed(outputs: &[Output]) -> Vec<bmpls_types::BlockHash> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Committed(_, cert) => Some(cert.block_hash),
            _ => None,
        })
        .collect()
}

/// A single validator of seed `seed` started on `wal` at `now_ms`: its own quorum, it proposes,
/// votes and decides on start.
fn start<W: WalStorage>(seed: [u8; 32], wal: W, now_ms: u64) -> (Engine<W>, Vec<Output>) {
    let genesis = genesis(&SigningKey::from_seed(&seed));
    let ledger = Ledger::genesis(genesis.validators.clone(), 0);
    Engine::start(genesis, SigningKey::from_seed(&seed), ledger, wal, now_ms).expect("start")
}

#[test]
fn a_restarted_validator_replays_its_log_to_the_same_decision() {
    let dir = tempfile::tempdir().expect("tempdir");
    let seed = [9u8; 32];
    // A single validator is its own quorum: it proposes, votes and decides on start.
    let (engine, outputs) = start(seed, FileWal::open(dir.path()).expect("open log"), 1_000);
    let first = committed(&outputs);
    assert_eq!(first.len(), 1, "one block decided: {outputs:?}");
    // Stop before the block is persisted (the engine, and its log handle, are dropped).
    drop(engine);

    // Later, with a different clock: a fresh proposal would carry another time and hash; the
    // log makes the validator propose and sign exactly what it did before.
    let wal = FileWal::open(dir.path()).expect("reopen log");
    assert!(
        !wal.entries_from(1).expect("read").is_empty(),
        "the log kept the height"
    );
    let (engine, outputs) = start(seed, wal, 50_000);
    assert_eq!(committed(&outputs), first, "same decision after restart");
    assert_eq!(
        engine.refusals().double_sign,
        0,
        "nothing different was asked to be signed"
    );
}

/// What a validator signed, by (height, round, step): the encoded message.
type Signed = BTreeMap<(u64, u32, u8), Vec<u8>>;

/// Adds what `outputs` sign to `signed`; a second, different message for a key it already
/// holds is a double signature, and fails the test.
fn note_signatures(signed: &mut Signed, outputs: &[Output], context: &str) {
    for output in outputs {
        let (Output::Broadcast(message) | Output::Send(_, message)) = output else {
            continue;
        };
        let key = match message {
            Message::Proposal(p) => (p.height.0, p.round, 0),
            Message::Vote(v) => (
                v.vote.height.0,
                v.vote.round,
                1 + matches!(v.vote.kind, bmpls_consensus::VoteKind::Precommit) as u8,
            ),
            _ => continue,
        };
        let bytes = message.encode();
        if let Some(before) = signed.get(&key) {
            assert_eq!(before, &bytes, "{context}: signed twice at {key:?}");
        }
        signed.insert(key, bytes);
    }
}

/// A log that notes how long each height's file was after every durable append: where a crash
/// may cut it from.
struct Noting {
    wal: FileWal,
    dir: PathBuf,
    /// Shared with the test, which keeps it while the engine owns the log.
    durable_ends: std::rc::Rc<std::cell::RefCell<Vec<(u64, u64)>>>,
}

impl WalStorage for Noting {
    type Error = StoreError;

    fn append(&mut self, height: u64, entry: &[u8], durable: bool) -> Result<(), StoreError> {
        self.wal.append(height, entry, durable)?;
        if durable {
            let len = std::fs::metadata(log_file(&self.dir, height)).map_or(0, |m| m.len());
            self.durable_ends.borrow_mut().push((height, len));
        }
        Ok(())
    }

    fn entries_from(&self, height: u64) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        self.wal.entries_from(height)
    }

    fn prune_below(&mut self, height: u64) -> Result<(), StoreError> {
        self.wal.prune_below(height)
    }
}

fn log_file(dir: &Path, height: u64) -> PathBuf {
    dir.join(format!("{height:020}.log"))
}

#[test]
fn a_validator_restarted_from_a_log_cut_anywhere_after_its_last_sync_never_signs_twice() {
    let dir = tempfile::tempdir().expect("tempdir");
    let seed = [11u8; 32];
    let durable_ends = std::rc::Rc::default();
    let wal = Noting {
        wal: FileWal::open(dir.path()).expect("open log"),
        dir: dir.path().to_path_buf(),
        durable_ends: std::rc::Rc::clone(&durable_ends),
    };
    let (engine, outputs) = start(seed, wal, 1_000);
    let first = committed(&outputs);
    assert_eq!(first.len(), 1, "one block decided: {outputs:?}");
    let mut signed = Signed::new();
    note_signatures(&mut signed, &outputs, "first run");
    assert!(signed.len() >= 3, "a proposal and two votes: {signed:?}");
    drop(engine);
    // A crash between two durable appends leaves everything up to the first on disk and any
    // prefix of what was written after it: every such log, in turn.
    let ends = durable_ends.borrow().clone();
    let height = ends
        .first()
        .expect("the engine logged durably before signing")
        .0;
    assert!(
        ends.iter().all(|(h, _)| *h == height),
        "one height: {ends:?}"
    );
    let full = std::fs::read(log_file(dir.path(), height)).expect("log file");
    assert!(
        ends.len() >= 3,
        "a durable entry before each signature: {ends:?}"
    );
    for cut in ends[0].1..=full.len() as u64 {
        let copy = tempfile::tempdir().expect("tempdir");
        std::fs::write(log_file(copy.path(), height), &full[..cut as usize]).expect("cut copy");
        let wal = FileWal::open(copy.path()).expect("a cut log opens");
        // What the crashed validator had signed: each signature is logged durably before it
        // leaves, so exactly those whose `Signed` entry the cut log holds.
        let mut before = Signed::new();
        for (_, entry) in wal.entries_from(0).expect("entries") {
            if let WalRecord::Signed {
                height,
                round,
                step,
                ..
            } = WalRecord::decode(&entry).expect("an entry the engine wrote")
            {
                let key = (height.0, round, step);
                before.insert(key, signed[&key].clone());
            }
        }
        let (engine, outputs) = start(seed, wal, 50_000);
        let context = format!("log cut to {cut} of {} bytes", full.len());
        note_signatures(&mut before, &outputs, &context);
        assert_eq!(committed(&outputs).len(), 1, "{context}: decided");
        assert_eq!(engine.refusals().double_sign, 0, "{context}");
    }
}

const CHILD_ENV: &str = "BMPLS_WAL_CHILD_DIR";

/// The `i`th entry the writer appends: its height, bytes and durability.
fn nth_entry(i: u64) -> (u64, Vec<u8>, bool) {
    let height = 1 + i / 16;
    let len = 1 + (i * 7919) % 20_000;
    let entry = (0..len).map(|j| (i + j) as u8).collect();
    (height, entry, i % 3 == 0)
}

#[test]
#[ignore = "run by durable_appends_survive_kill_9_of_a_process_appending_in_a_loop"]
fn wal_writer_child() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let mut wal = FileWal::open(Path::new(&dir)).expect("child opens the log");
    let mut i = wal.entries_from(0).expect("child reads").len() as u64;
    loop {
        let (height, entry, durable) = nth_entry(i);
        wal.append(height, &entry, durable).expect("child appends");
        if durable {
            println!("durable {i}");
        }
        i += 1;
    }
}

#[test]
fn durable_appends_survive_kill_9_of_a_process_appending_in_a_loop() {
    let dir = tempfile::tempdir().expect("temp dir");
    let exe = std::env::current_exe().expect("test binary");
    let mut acknowledged: Option<u64> = None;
    for run in 0..6 {
        let mut child = Command::new(&exe)
            .args(bmpls_it::child_test_args("wal::wal_writer_child"))
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn child");
        let stdout = child.stdout.take().expect("piped");
        // Kill it while it writes: after it acknowledged 40 more durable appends.
        let mut seen = 0;
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(i) = line.strip_prefix("durable ").and_then(|i| i.parse().ok()) {
                acknowledged = Some(i);
                seen += 1;
                if seen == 40 {
                    break;
                }
            }
        }
        child.kill().expect("SIGKILL");
        child.wait().expect("reaped");
        let acknowledged = acknowledged.expect("the child acknowledged appends");
        let wal = FileWal::open(dir.path()).expect("reopens after kill -9");
        let got = wal.entries_from(0).expect("reads");
        assert!(
            got.len() as u64 > acknowledged,
            "run {run}: acknowledged entry {acknowledged} lost ({} read back)",
            got.len()
        );
        for (i, (height, entry)) in got.iter().enumerate() {
            let (h, e, _) = nth_entry(i as u64);
            assert!(
                *height == h && *entry == e,
                "run {run}: entry {i} is not what was written"
            );
        }
    }
}

//! The consensus write-ahead log on sled: a validator that stops after signing and starts again
//! from its log re-signs only what it signed before and reaches the same decision.

use bmpls_consensus::{ConsensusParams, Engine, Genesis, Ledger, Output, ValidatorSet, WalStorage};
use bmpls_crypto::SigningKey;
use bmpls_store::SledWal;
use bmpls_types::{ChainId, ValidatorId};

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

#[test]
fn a_restarted_validator_replays_its_log_to_the_same_decision() {
    let dir = tempfile::tempdir().expect("tempdir");
    let seed = [9u8; 32];
    let genesis = genesis(&SigningKey::from_seed(&seed));
    let ledger = Ledger::genesis(genesis.validators.clone(), 0);

    // A single validator is its own quorum: it proposes, votes and decides on start.
    let wal = SledWal::open(dir.path()).expect("open log");
    let (engine, outputs) = Engine::start(
        genesis.clone(),
        SigningKey::from_seed(&seed),
        ledger.clone(),
        wal,
        1_000,
    )
    .expect("start");
    let first = committed(&outputs);
    assert_eq!(first.len(), 1, "one block decided: {outputs:?}");
    // Stop before the block is persisted (the engine, and its log handle, are dropped).
    drop(engine);

    // Later, with a different clock: a fresh proposal would carry another time and hash; the
    // log makes the validator propose and sign exactly what it did before.
    let wal = SledWal::open(dir.path()).expect("reopen log");
    assert!(
        !wal.entries_from(1).expect("read").is_empty(),
        "the log kept the height"
    );
    let (engine, outputs) =
        Engine::start(genesis, SigningKey::from_seed(&seed), ledger, wal, 50_000).expect("restart");
    assert_eq!(committed(&outputs), first, "same decision after restart");
    assert_eq!(
        engine.refusals().double_sign,
        0,
        "nothing different was asked to be signed"
    );
}

#[test]
fn a_corrupt_log_entry_is_a_typed_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let mut wal = SledWal::open(dir.path()).expect("open");
        wal.append(1, b"entry", true).expect("append");
    }
    // Flip a byte of the stored value through sled itself.
    {
        // sled releases its file lock from a background thread after the last handle drops:
        // under load that takes a moment, so wait for it rather than fail.
        let mut tries = 0;
        let db = loop {
            match sled::open(dir.path()) {
                Ok(db) => break db,
                Err(_) if tries < 100 => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                Err(e) => panic!("sled: {e}"),
            }
        };
        let (key, value) = db.iter().next().expect("one entry").expect("read");
        let mut bad = value.to_vec();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        db.insert(key, bad).expect("write");
        db.flush().expect("flush");
    }
    // The same wait for the lock of the handle just dropped.
    let wal = (0..100)
        .find_map(|_| {
            SledWal::open(dir.path()).ok().or_else(|| {
                std::thread::sleep(std::time::Duration::from_millis(50));
                None
            })
        })
        .expect("open");
    let error = wal.entries_from(0).expect_err("checksum fails");
    assert!(
        error.to_string().contains("corrupt write-ahead log entry"),
        "{error}"
    );
}

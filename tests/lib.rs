//! Support for the cross-crate integration tests in `it/`: a small chain of four validator
//! keys that commits blocks of given transactions, and records with random ciphertexts.
#![forbid(unsafe_code)]

use bmpls_crypto::{
    HashedBlock, SigningKey, Validator, ValidatorSet, Verified, certify, merkle, verify_block,
};
use bmpls_types::{
    Block, BlockHash, BlockHeader, BoundedVec, Cell, ChainId, CommitCertificate, Epoch, Height,
    LocationRecord, OpeCiphertext, PatientId, Round, Seq, SignatureBytes, Transaction, ValidatorId,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Levels of the records made by [`record`].
pub const LEVELS: usize = 6;
/// One key epoch.
pub const DAY_MS: u64 = 86_400_000;

/// The chain of the tests.
pub fn chain_id() -> ChainId {
    ChainId::new("bmpls-store-test").expect("short")
}

/// Validator keys and the tip of a test chain.
pub struct TestChain {
    keys: Vec<SigningKey>,
    set: ValidatorSet,
    height: u64,
    prev: BlockHash,
}

impl Default for TestChain {
    fn default() -> Self {
        Self::new()
    }
}

impl TestChain {
    /// A chain with no blocks.
    pub fn new() -> Self {
        let mut rng = StdRng::seed_from_u64(1);
        let keys: Vec<SigningKey> = (0..4).map(|_| SigningKey::generate(&mut rng)).collect();
        let set = ValidatorSet::new(
            chain_id(),
            keys.iter()
                .map(|k| Validator {
                    id: ValidatorId(k.public().0),
                    power: 1,
                })
                .collect(),
        )
        .expect("valid set");
        Self {
            keys,
            set,
            height: 0,
            prev: BlockHash::ZERO,
        }
    }

    /// Continues after a store's tip.
    pub fn resume(tip: (Height, BlockHash)) -> Self {
        let mut chain = Self::new();
        chain.height = tip.0.0;
        chain.prev = tip.1;
        chain
    }

    /// The next block of `txs`, verified, with its certificate.
    pub fn next(&mut self, txs: Vec<Transaction>) -> (Verified<HashedBlock>, CommitCertificate) {
        self.height += 1;
        let block = Block {
            header: BlockHeader {
                chain_id: chain_id(),
                height: Height(self.height),
                prev_hash: self.prev,
                time_ms: 1_790_000_000_000 + self.height,
                proposer: ValidatorId(self.keys[(self.height % 4) as usize].public().0),
                tx_root: merkle::tx_root(&txs),
                tx_count: txs.len() as u32,
            },
            txs: BoundedVec::new(txs).expect("within the block limit"),
        };
        let signers: Vec<&SigningKey> = self.keys.iter().take(3).collect();
        let cert = certify(&block, Round(0), &signers);
        self.prev = bmpls_crypto::hash::block_hash(&block.header);
        let verified = verify_block(block, &cert, &self.set).expect("a well-formed block verifies");
        (verified, cert)
    }
}

/// A record with random ciphertexts (the store never interprets them) and a dummy signature
/// (the store trusts committed blocks; signatures are checked before consensus).
pub fn record(patient: PatientId, seq: u64, fix_time_ms: u64, rng: &mut StdRng) -> LocationRecord {
    LocationRecord {
        patient,
        seq: Seq(seq),
        fix_time_ms,
        epoch: Epoch((fix_time_ms / DAY_MS) as u32),
        cells: BoundedVec::new(
            (0..LEVELS)
                .map(|_| Cell::Ope(OpeCiphertext(rng.r#gen())))
                .collect(),
        )
        .expect("six"),
        sealed: BoundedVec::new(vec![0x5a; 60]).expect("small"),
        sig: SignatureBytes([0x11; 64]),
    }
}

/// The arguments that run the one ignored test `name` of the integration-test binary alone, in
/// a child process: how the crash, durability and log tests start the writer they kill or trace.
pub fn child_test_args(name: &str) -> [&str; 5] {
    [
        name,
        "--exact",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ]
}

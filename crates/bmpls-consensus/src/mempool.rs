//! The bounded pool of transactions waiting for a block. Admission runs the ledger's rules and
//! checks the signature, so a refused submission gets its reason at once; a patient may have
//! several reports in flight, admitted in sequence.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use bmpls_crypto::sign::{verify_batch, verify_bytes};
use bmpls_crypto::{HashedBlock, TxHashes};
use bmpls_types::limits::MAX_TX_BYTES;
use bmpls_types::{Canonical, PatientId, PublicKeyBytes, Transaction, TxHash};

use crate::ledger::{Ledger, Overlay, TxRefusal};

/// Why the mempool refused a transaction.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The pool is at its transaction or byte bound; the submitter should retry later.
    #[error("the mempool is full ({txs} transactions, {bytes} bytes)")]
    Full {
        /// Transactions held.
        txs: usize,
        /// Bytes held.
        bytes: usize,
    },
    /// The encoded transaction is larger than any block may carry.
    #[error("transaction of {0} bytes is larger than the limit of {MAX_TX_BYTES}")]
    TooLarge(usize),
    /// The ledger's rules refuse it.
    #[error(transparent)]
    Rule(#[from] TxRefusal),
}

struct Entry {
    hash: TxHash,
    tx: Transaction,
    bytes: usize,
}

/// Transactions waiting for a block, in arrival order.
pub struct Mempool {
    max_txs: usize,
    max_bytes: usize,
    entries: VecDeque<Entry>,
    /// Every waiting transaction, with the key its signature was verified under.
    hashes: HashMap<TxHash, PublicKeyBytes>,
    bytes: usize,
    /// Highest report sequence number admitted per patient, beyond the ledger's.
    next_report: BTreeMap<PatientId, u64>,
    /// The validator's clock, ms, if the engine has told it: reports whose fix time lies too far
    /// ahead of it are refused on admission ([`crate::check_fix_time`]).
    clock_ms: Option<u64>,
}

impl Mempool {
    /// An empty pool holding at most `max_txs` transactions and `max_bytes` encoded bytes.
    pub fn new(max_txs: usize, max_bytes: usize) -> Self {
        Self {
            max_txs,
            max_bytes,
            entries: VecDeque::new(),
            hashes: HashMap::new(),
            bytes: 0,
            next_report: BTreeMap::new(),
            clock_ms: None,
        }
    }

    /// Sets the validator's clock, ms, against which admitted reports' fix times are checked.
    pub fn set_clock(&mut self, now_ms: u64) {
        self.clock_ms = Some(now_ms);
    }

    /// Transactions waiting.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether none is waiting.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Checks `tx` against `ledger` and the reports already waiting, verifies its signature and
    /// queues it.
    pub fn admit(&mut self, tx: Transaction, ledger: &Ledger) -> Result<TxHash, Refusal> {
        let hashes = TxHashes::of(&tx);
        self.admit_checked(tx, &hashes, ledger, None)
    }

    /// Admits many transactions in order, verifying their signatures as one batch first (about
    /// twice as fast per signature); each gets its own outcome, as from [`Mempool::admit`].
    pub fn admit_all(
        &mut self,
        txs: Vec<Transaction>,
        ledger: &Ledger,
    ) -> Vec<Result<TxHash, Refusal>> {
        // The key each must be signed by depends on the ledger only, not on the order.
        let signers: Vec<Option<PublicKeyBytes>> = txs
            .iter()
            .map(|tx| match tx {
                Transaction::Report(record) => {
                    ledger.patient(&record.patient).map(|s| s.reporter_key)
                }
                other => Overlay::new(ledger).admit(other).ok(),
            })
            .collect();
        // Each report's record is digested once, for its signed bytes and its hash.
        let hashes: Vec<TxHashes> = txs.iter().map(TxHashes::of).collect();
        let items: Vec<_> = txs
            .iter()
            .zip(&hashes)
            .zip(&signers)
            .filter_map(|((tx, hashed), key)| {
                key.map(|k| {
                    let bytes = hashed.signing_bytes(tx, ledger.chain_id());
                    (k, bytes, *tx.signature())
                })
            })
            .collect();
        let batch_ok = !items.is_empty() && verify_batch(&items).is_ok();
        txs.into_iter()
            .zip(hashes)
            .zip(signers)
            .map(|((tx, hashed), key)| {
                self.admit_checked(tx, &hashed, ledger, key.filter(|_| batch_ok))
            })
            .collect()
    }

    /// [`Mempool::admit`], where `verified` is a key the signature is already known to verify
    /// under (the check is skipped if it is the key the rules name).
    fn admit_checked(
        &mut self,
        tx: Transaction,
        hashed: &TxHashes,
        ledger: &Ledger,
        verified: Option<PublicKeyBytes>,
    ) -> Result<TxHash, Refusal> {
        let bytes = tx.encoded_len();
        if bytes > MAX_TX_BYTES {
            return Err(Refusal::TooLarge(bytes));
        }
        if self.entries.len() >= self.max_txs || self.bytes + bytes > self.max_bytes {
            return Err(Refusal::Full {
                txs: self.entries.len(),
                bytes: self.bytes,
            });
        }
        let hash = hashed.hash;
        if self.hashes.contains_key(&hash) {
            return Err(TxRefusal::Duplicate(hash).into());
        }
        if let Some(clock_ms) = self.clock_ms {
            crate::check_fix_time(&tx, clock_ms)?;
        }
        let signer = match &tx {
            Transaction::Report(record) => {
                let state = ledger
                    .patient(&record.patient)
                    .ok_or(TxRefusal::UnknownPatient(record.patient))?;
                let after = self
                    .next_report
                    .get(&record.patient)
                    .copied()
                    .unwrap_or(state.last_seq.0)
                    .max(state.last_seq.0);
                if record.seq.0 != after + 1 {
                    return Err(TxRefusal::Sequence {
                        patient: record.patient,
                        expected: after + 1,
                        got: record.seq.0,
                    }
                    .into());
                }
                crate::ledger::record_shape(record, state)?;
                state.reporter_key
            }
            other => Overlay::new(ledger).admit_as(other, hash)?,
        };
        if verified != Some(signer) {
            verify_bytes(
                &signer,
                &hashed.signing_bytes(&tx, ledger.chain_id()),
                tx.signature(),
                "transaction",
            )
            .map_err(|_| TxRefusal::BadSignature)?;
        }
        if let Transaction::Report(record) = &tx {
            self.next_report.insert(record.patient, record.seq.0);
        }
        self.hashes.insert(hash, signer);
        self.bytes += bytes;
        self.entries.push_back(Entry { hash, tx, bytes });
        Ok(hash)
    }

    /// The key a waiting transaction's signature was verified under, if it is waiting. A block
    /// check may skip the signatures it vouches for.
    pub fn verified_signer(&self, hash: &TxHash) -> Option<PublicKeyBytes> {
        self.hashes.get(hash).copied()
    }

    /// The transactions of the next block, whose time is `time_ms`: in arrival order, each
    /// valid after the ones before it, within the block limits. What does not fit, or is not
    /// valid yet (a fix time too far ahead of the block's), stays.
    pub fn take_block(
        &self,
        ledger: &Ledger,
        time_ms: u64,
        max_txs: usize,
        max_bytes: usize,
    ) -> Vec<Transaction> {
        let mut overlay = Overlay::new(ledger);
        let mut chosen = Vec::new();
        let mut bytes = 0usize;
        for entry in &self.entries {
            if chosen.len() == max_txs {
                break;
            }
            if bytes + entry.bytes > max_bytes {
                continue;
            }
            let valid = crate::check_fix_time(&entry.tx, time_ms)
                .and_then(|()| overlay.admit_as(&entry.tx, entry.hash));
            if valid.is_ok() {
                bytes += entry.bytes;
                chosen.push(entry.tx.clone());
            }
        }
        chosen
    }

    /// Drops what `block` committed and whatever the new `ledger` makes invalid for good
    /// (reports at or below a patient's committed sequence number).
    pub fn on_commit(&mut self, block: &HashedBlock, ledger: &Ledger) {
        let committed: HashSet<TxHash> = block.hashes().iter().map(|h| h.hash).collect();
        let stale = |tx: &Transaction| match tx {
            Transaction::Report(record) => ledger
                .patient(&record.patient)
                .is_none_or(|state| record.seq <= state.last_seq),
            other => Overlay::new(ledger).admit(other).is_err(),
        };
        let mut bytes = self.bytes;
        let hashes = &mut self.hashes;
        self.entries.retain(|entry| {
            let keep = !committed.contains(&entry.hash) && !stale(&entry.tx);
            if !keep {
                hashes.remove(&entry.hash);
                bytes -= entry.bytes;
            }
            keep
        });
        self.bytes = bytes;
        self.next_report
            .retain(|patient, seq| ledger.patient(patient).is_some_and(|s| s.last_seq.0 < *seq));
    }
}

//! One validator's consensus: malachite's state machine, driven by inputs the host hands in and
//! answered effect by effect. The host owns the network, the clock and the disk; this type asks
//! for them through [`Output`]s.
//!
//! Call order: [`Engine::start`] once (it replays the write-ahead log), then any of
//! [`Engine::on_message`], [`Engine::on_timeout`] and [`Engine::submit`]; whenever an
//! [`Output::Committed`] comes out, persist the block and call [`Engine::start_next_height`].

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use malachite_consensus::{Input, ProposedValue, State};
use malachite_types::{self as mt, Timeout, TimeoutKind, Validity, ValueOrigin};

use bmpls_crypto::{HashedBlock, SigningKey, Verified, verify_block};
use bmpls_types::{
    Block, BlockHash, BlockHeader, BoundedVec, Canonical, CommitCertificate, Hash32, Transaction,
    TxHash,
};

use crate::config::Genesis;
use crate::context::{Address, Ctx, Height, ProposedBlock, ValidatorSet, defined};
use crate::ledger::Ledger;
use crate::mempool::{Mempool, Refusal};
use crate::message::{Message, SignedProposal, WalRecord};
use crate::signing::Signer;
use crate::wal::WalStorage;

/// Heights ahead of ours whose proposals are kept until we get there.
pub const FUTURE_HEIGHTS: u64 = 2;
/// Proposals kept per future height (a byzantine proposer may send many).
pub const FUTURE_PROPOSALS_PER_HEIGHT: usize = 16;
/// Committed blocks a host sends in answer to one sync request.
pub const SYNC_BATCH: u64 = 16;
/// Inputs malachite buffers for heights it has not reached.
pub const INPUT_QUEUE: usize = 1024;

/// What the engine asks of its host.
#[derive(Clone, Debug)]
#[must_use]
pub enum Output {
    /// Send to every other validator.
    Broadcast(Message),
    /// Send to one validator.
    Send(Address, Message),
    /// Start a timer; when it fires, call [`Engine::on_timeout`] with `timeout`.
    Schedule {
        /// Which timeout.
        timeout: Timeout,
        /// After how long.
        after_ms: u64,
    },
    /// Stop the timer of `timeout`.
    Cancel(Timeout),
    /// Stop every timer.
    CancelAll,
    /// A block was committed: persist it, then call [`Engine::start_next_height`].
    Committed(Verified<HashedBlock>, CommitCertificate),
}

/// An error the host must act on.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The write-ahead log failed: the validator must stop, it cannot vouch for what it signs.
    #[error("write-ahead log: {0}")]
    Wal(String),
    /// A log entry does not decode: the log is corrupt.
    #[error("write-ahead log entry at height {height}: {reason}")]
    CorruptWal {
        /// Height of the entry.
        height: u64,
        /// What is wrong.
        reason: String,
    },
    /// An internal invariant broke (a decided block that was never seen, a certificate of our
    /// own quorum that does not verify).
    #[error("consensus invariant broken: {0}")]
    Invariant(String),
    /// The host called out of order.
    #[error("out of order: {0}")]
    Misuse(&'static str),
}

/// What happened to inputs that were refused without harm (counted for tests and metrics).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Refusals {
    /// Signatures refused because they would have contradicted an earlier one.
    pub double_sign: u64,
    /// Inputs malachite rejected with an error.
    pub consensus: u64,
    /// Messages that did not convert (malformed certificates).
    pub malformed: u64,
}

/// One validator's consensus engine.
pub struct Engine<W: WalStorage> {
    state: State<Ctx>,
    host: Host<W>,
}

pub(crate) struct Host<W: WalStorage> {
    pub(crate) ctx: Ctx,
    pub(crate) signer: Signer,
    pub(crate) address: Address,
    pub(crate) genesis: Genesis,
    pub(crate) wal: W,
    pub(crate) ledger: Ledger,
    pub(crate) mempool: Mempool,
    pub(crate) now_ms: u64,
    pub(crate) replaying: bool,
    pub(crate) outputs: Vec<Output>,
    pub(crate) follow_ups: VecDeque<Input<Ctx>>,
    /// Blocks of the current height by hash, with their validity.
    pub(crate) blocks: HashMap<BlockHash, (ProposedBlock, bool)>,
    /// The blocks the write-ahead log holds in full, by height and hash (heights from the
    /// current one): a proposed value of one of them is logged by reference.
    pub(crate) logged_blocks: HashSet<(u64, BlockHash)>,
    /// This validator's proposals at the current height, by round.
    pub(crate) own_proposals: BTreeMap<u32, ProposedBlock>,
    /// What this validator signed, by (height, round, step).
    pub(crate) signed: BTreeMap<(u64, u32, u8), Hash32>,
    pub(crate) future: BTreeMap<u64, Vec<SignedProposal>>,
    /// The height being decided, as malachite last announced it.
    pub(crate) height: Height,
    pub(crate) decided: bool,
    /// Whether the block committed last came by catch-up (a synced block under its
    /// certificate) rather than from this validator's own round.
    pub(crate) decided_by_sync: bool,
    pub(crate) behind_since_ms: Option<u64>,
    /// The furthest peer seen ahead of us, and the height it was at.
    pub(crate) ahead: Option<(Address, Height)>,
    /// Heights below this were asked for in the last sync request.
    pub(crate) sync_until: u64,
    /// Synced blocks that arrived ahead of their turn (they travel independently).
    pub(crate) synced: BTreeMap<u64, (Block, CommitCertificate)>,
    pub(crate) fatal: Option<EngineError>,
    pub(crate) refusals: Refusals,
}

impl<W: WalStorage> Engine<W> {
    /// Starts validating at the height after `ledger`'s tip, replaying what the write-ahead log
    /// holds from there. `key` must be a member of the genesis set to vote (otherwise the engine
    /// follows without voting).
    pub fn start(
        genesis: Genesis,
        key: SigningKey,
        ledger: Ledger,
        wal: W,
        now_ms: u64,
    ) -> Result<(Self, Vec<Output>), EngineError> {
        let chain_id = ledger.chain_id().clone();
        let ctx = Ctx::new(chain_id.clone());
        let signer = Signer::new(chain_id, key);
        let address = signer.address();
        let height = Height(ledger.height().0 + 1);
        let params = malachite_consensus::Params {
            initial_height: height,
            initial_validator_set: genesis.validators.clone(),
            address,
            threshold_params: Default::default(),
            value_payload: mt::ValuePayload::ProposalAndParts,
        };
        let state = State::new(ctx.clone(), params, INPUT_QUEUE);
        let mempool = Mempool::new(genesis.params.mempool_txs, genesis.params.mempool_bytes);
        let mut engine = Self {
            state,
            host: Host {
                ctx,
                signer,
                address,
                genesis,
                wal,
                ledger,
                mempool,
                now_ms,
                replaying: false,
                outputs: Vec::new(),
                follow_ups: VecDeque::new(),
                blocks: HashMap::new(),
                logged_blocks: HashSet::new(),
                own_proposals: BTreeMap::new(),
                signed: BTreeMap::new(),
                future: BTreeMap::new(),
                height,
                decided: false,
                decided_by_sync: false,
                behind_since_ms: None,
                ahead: None,
                sync_until: 0,
                synced: BTreeMap::new(),
                fatal: None,
                refusals: Refusals::default(),
            },
        };
        let replay = engine.host.load_wal(height)?;
        let validators = engine.host.validators().clone();
        // Starting the height is new work (what it proposes is logged, or taken from the log);
        // only the inputs read back from the log are not logged again.
        engine.host.replaying = false;
        engine.run(Input::StartHeight(height, validators));
        engine.host.replaying = true;
        for input in replay {
            engine.run(input);
        }
        engine.host.replaying = false;
        let outputs = engine.finish()?;
        Ok((engine, outputs))
    }

    /// This validator's address.
    pub fn address(&self) -> Address {
        self.host.address
    }

    /// The height being decided.
    pub fn height(&self) -> Height {
        self.state.height()
    }

    /// The furthest height a peer was seen deciding (in a message it sent), if beyond the
    /// height after this validator's last committed block: this validator is behind the chain
    /// and catching up, so what it does not know yet (a grant, a carer's enrolment) may be in
    /// blocks it has still to apply. The height is the peer's word (a byzantine one can name
    /// any), so it only ever makes this validator more modest.
    pub fn seen_ahead(&self) -> Option<Height> {
        let next = self.host.ledger.height().0 + 1;
        self.host
            .ahead
            .map(|(_, seen)| seen)
            .filter(|seen| seen.0 > next)
    }

    /// The current round, if started.
    pub fn round(&self) -> Option<u32> {
        self.state.round().as_u32()
    }

    /// The ledger after the last committed block.
    pub fn ledger(&self) -> &Ledger {
        &self.host.ledger
    }

    /// Whether the block of the last [`Output::Committed`] came by catch-up (from a peer,
    /// under its certificate) rather than from a round this validator took part in: a
    /// catch-up block was proposed long before it arrives, so hosts leave it out of commit
    /// latency.
    pub fn committed_by_sync(&self) -> bool {
        self.host.decided_by_sync
    }

    /// Inputs refused without harm so far.
    pub fn refusals(&self) -> Refusals {
        self.host.refusals
    }

    /// Transactions waiting in the mempool.
    pub fn mempool_len(&self) -> usize {
        self.host.mempool.len()
    }

    /// Admits a transaction to the mempool (checked against the ledger; signature verified).
    pub fn submit(&mut self, tx: Transaction) -> Result<TxHash, Refusal> {
        self.host.mempool.set_clock(self.host.now_ms);
        self.host.mempool.admit(tx, &self.host.ledger)
    }

    /// Admits transactions in order, their signatures verified as one batch.
    pub fn submit_all(&mut self, txs: Vec<Transaction>) -> Vec<Result<TxHash, Refusal>> {
        self.host.mempool.set_clock(self.host.now_ms);
        self.host.mempool.admit_all(txs, &self.host.ledger)
    }

    /// Handles a message from validator `from`. Sync requests are the host's to answer from its
    /// store; the engine ignores them.
    pub fn on_message(
        &mut self,
        from: Address,
        message: Message,
        now_ms: u64,
    ) -> Result<Vec<Output>, EngineError> {
        self.host.now_ms = self.host.now_ms.max(now_ms);
        let height = self.state.height();
        let msg_height = match &message {
            Message::Proposal(p) => Some(p.height),
            Message::Vote(v) => Some(v.vote.height),
            Message::Polka(c) => Some(c.height),
            Message::RoundCert(c) => Some(c.height),
            Message::SyncRequest(_)
            | Message::SyncResponse(..)
            | Message::Transactions(_)
            | Message::SnapshotRequest
            | Message::SnapshotOffer(_)
            | Message::SnapshotChunkRequest(..)
            | Message::SnapshotChunk(..) => None,
        };
        if let Some(h) = msg_height {
            self.host.note_height_seen(from, h, height);
        }
        let fresh = matches!(
            message,
            Message::Proposal(_) | Message::SyncResponse(..) | Message::Transactions(_)
        );
        if self.host.decided && !fresh {
            // Waiting for the host to persist: malachite would buffer later-height inputs, but
            // the current height is over; votes for it are of no further use.
            if msg_height.is_some_and(|h| h > height) {
                self.feed(message, height);
            }
            return self.finish();
        }
        self.feed(message, height);
        self.finish()
    }

    /// Handles an elapsed timer.
    pub fn on_timeout(
        &mut self,
        timeout: Timeout,
        now_ms: u64,
    ) -> Result<Vec<Output>, EngineError> {
        self.host.now_ms = self.host.now_ms.max(now_ms);
        if !self.host.decided {
            self.run(Input::TimeoutElapsed(timeout));
        }
        self.finish()
    }

    /// After the host persisted the block of an [`Output::Committed`]: applies it to the
    /// ledger, clears the mempool of what it held, prunes the log and starts the next height.
    pub fn start_next_height(&mut self, now_ms: u64) -> Result<Vec<Output>, EngineError> {
        if !self.host.decided {
            return Err(EngineError::Misuse(
                "start_next_height without a committed block",
            ));
        }
        self.host.now_ms = self.host.now_ms.max(now_ms);
        let next = Height(self.host.ledger.height().0 + 1);
        self.host
            .wal
            .prune_below(next.0)
            .map_err(|e| EngineError::Wal(e.to_string()))?;
        self.host.decided = false;
        self.host.blocks.clear();
        self.host.own_proposals.clear();
        self.host.behind_since_ms = None;
        self.host.catch_up(next);
        self.host.signed.retain(|(h, _, _), _| *h >= next.0);
        let validators = self.host.validators().clone();
        self.run(Input::StartHeight(next, validators));
        let waiting = self.host.future.remove(&next.0).unwrap_or_default();
        self.host.future.retain(|h, _| *h > next.0);
        for proposal in waiting {
            self.feed(Message::Proposal(proposal), next);
        }
        self.host.synced.retain(|h, _| *h >= next.0);
        if let Some((block, cert)) = self.host.synced.remove(&next.0) {
            self.host.on_synced_block(block, cert, next);
        }
        self.finish()
    }

    fn feed(&mut self, message: Message, height: Height) {
        let input = match message {
            Message::Proposal(p) => {
                if p.height > height {
                    self.host.keep_for_later(p, height);
                    return;
                }
                if p.height < height {
                    return;
                }
                let Some(value) = self.host.proposed_value(&p) else {
                    return;
                };
                self.run(Input::Proposal(p.into_mt()));
                Input::ProposedValue(value, ValueOrigin::Consensus)
            }
            Message::Vote(v) => Input::Vote(v.into_mt()),
            Message::Polka(c) => match c.into_mt() {
                Ok(c) => Input::PolkaCertificate(c),
                Err(_) => {
                    self.host.refusals.malformed += 1;
                    return;
                }
            },
            Message::RoundCert(c) => match c.into_mt() {
                Ok(c) => Input::RoundCertificate(c),
                Err(_) => {
                    self.host.refusals.malformed += 1;
                    return;
                }
            },
            // Snapshots are the node's, served and fetched beside the engine.
            Message::SyncRequest(_)
            | Message::SnapshotRequest
            | Message::SnapshotOffer(_)
            | Message::SnapshotChunkRequest(..)
            | Message::SnapshotChunk(..) => return,
            Message::Transactions(txs) => {
                // Refusals are expected: a transaction already held or committed.
                self.host.mempool.set_clock(self.host.now_ms);
                let _ = self
                    .host
                    .mempool
                    .admit_all(txs.into_inner(), &self.host.ledger);
                return;
            }
            Message::SyncResponse(block, cert) => {
                self.host.on_synced_block(*block, cert, height);
                return;
            }
        };
        self.run(input);
    }

    fn run(&mut self, input: Input<Ctx>) {
        self.host.follow_ups.push_back(input);
        while let Some(input) = self.host.follow_ups.pop_front() {
            if self.host.fatal.is_some() {
                self.host.follow_ups.clear();
                return;
            }
            if !self.host.replaying
                && let Some((height, record)) =
                    crate::replay::input_record(&input, self.host.height, &self.host.logged_blocks)
            {
                if self.host.append(height, &record, false).is_err() {
                    return;
                }
                if let Some(logged) = crate::replay::logged_block(&input) {
                    let current = self.host.height.0;
                    self.host.logged_blocks.retain(|(h, _)| *h >= current);
                    self.host.logged_blocks.insert(logged);
                }
            }
            let host = &mut self.host;
            let result: Result<(), malachite_consensus::Error<Ctx>> = malachite_consensus::process!(
                input: input,
                state: &mut self.state,
                metrics: &(),
                with: effect => host.handle(effect)
            );
            if result.is_err() {
                // A refused signature surfaces here as an unexpected resume; it was counted
                // where it happened. Anything else is an input malachite rejected.
                self.host.refusals.consensus += 1;
            }
        }
    }

    fn finish(&mut self) -> Result<Vec<Output>, EngineError> {
        if let Some(error) = self.host.fatal.take() {
            return Err(error);
        }
        Ok(std::mem::take(&mut self.host.outputs))
    }
}

impl<W: WalStorage> Host<W> {
    pub(crate) fn validators(&self) -> &ValidatorSet {
        &self.genesis.validators
    }

    pub(crate) fn duration_ms(&self, timeout: Timeout) -> u64 {
        let t = &self.genesis.params.timeouts;
        let round = u64::from(timeout.round.as_u32().unwrap_or(0));
        match timeout.kind {
            TimeoutKind::Propose => t.propose_ms + round * t.propose_delta_ms,
            TimeoutKind::Prevote => t.prevote_ms + round * t.prevote_delta_ms,
            TimeoutKind::Precommit => t.precommit_ms + round * t.precommit_delta_ms,
            TimeoutKind::Rebroadcast => t.rebroadcast_ms,
        }
    }

    pub(crate) fn append(
        &mut self,
        height: u64,
        record: &WalRecord,
        durable: bool,
    ) -> Result<(), EngineError> {
        if let Err(e) = self.wal.append(height, &record.encode(), durable) {
            let error = EngineError::Wal(e.to_string());
            self.fatal = Some(EngineError::Wal(e.to_string()));
            return Err(error);
        }
        Ok(())
    }

    /// The double-signing guard: refuses to sign anything but what was signed before at the
    /// same `(height, round, step)`, and logs a new signature durably before it is made.
    pub(crate) fn guard(
        &mut self,
        height: Height,
        round: u32,
        step: u8,
        digest: Hash32,
    ) -> Result<(), EngineError> {
        match self.signed.get(&(height.0, round, step)) {
            Some(previous) if *previous == digest => Ok(()),
            Some(_) => {
                self.refusals.double_sign += 1;
                Err(EngineError::Misuse(
                    "refused to sign a second, different message",
                ))
            }
            None => {
                self.append(
                    height.0,
                    &WalRecord::Signed {
                        height,
                        round,
                        step,
                        digest,
                    },
                    true,
                )?;
                self.signed.insert((height.0, round, step), digest);
                Ok(())
            }
        }
    }

    /// The block this validator proposes at `(height, round)`: the one it proposed before a
    /// restart, or a new one from the mempool.
    pub(crate) fn value_for(&mut self, height: Height, round: u32) -> ProposedBlock {
        if let Some(value) = self.own_proposals.get(&round) {
            return value.clone();
        }
        let params = &self.genesis.params;
        let time_ms = self.now_ms.max(self.ledger.tip_time_ms() + 1);
        let txs = self.mempool.take_block(
            &self.ledger,
            time_ms,
            params.max_block_txs,
            params.max_block_bytes,
        );
        // `take_block` stops at `max_block_txs`, which validation bounds by MAX_BLOCK_TXS.
        let txs = BoundedVec::new(txs).unwrap_or_else(|_| BoundedVec::empty());
        let tx_count = txs.len() as u32;
        let block = HashedBlock::assemble(txs, |tx_root| BlockHeader {
            chain_id: self.ledger.chain_id().clone(),
            height: height.into(),
            prev_hash: self.ledger.tip(),
            time_ms,
            proposer: self.address.0,
            tx_root,
            tx_count,
        });
        let value = ProposedBlock::new(block);
        self.own_proposals.insert(round, value.clone());
        self.blocks.insert(value.hash(), (value.clone(), true));
        value
    }

    /// Validates the block of a proposal at the current height (once per block) and returns
    /// the full proposed value malachite needs.
    fn proposed_value(&mut self, p: &SignedProposal) -> Option<ProposedValue<Ctx>> {
        let value = ProposedBlock::new(p.block.clone());
        let valid = match self.blocks.get(&value.hash()) {
            Some((_, valid)) => *valid,
            None => {
                // The header names the validator that built the block; a later round's
                // proposer may re-propose it (Tendermint's valid value), so the two differ.
                // Signatures this validator's mempool already verified are not checked again.
                let mempool = &self.mempool;
                // The value's block keeps the hashes the check computes, for the commit.
                let valid = self
                    .ledger
                    .check_block_known(
                        value.block(),
                        self.genesis.params.max_clock_drift_ms,
                        self.now_ms,
                        |hash| mempool.verified_signer(hash),
                    )
                    .is_ok();
                self.blocks.insert(value.hash(), (value.clone(), valid));
                valid
            }
        };
        Some(ProposedValue {
            height: p.height,
            round: mt::Round::new(p.round),
            valid_round: p.pol_round.map_or(mt::Round::Nil, mt::Round::new),
            proposer: p.proposer,
            value,
            validity: Validity::from_bool(valid),
        })
    }

    fn keep_for_later(&mut self, p: SignedProposal, height: Height) {
        if p.height.0 > height.0 + FUTURE_HEIGHTS {
            return;
        }
        let kept = self.future.entry(p.height.0).or_default();
        if kept.len() < FUTURE_PROPOSALS_PER_HEIGHT && !kept.contains(&p) {
            kept.push(p);
        }
    }

    /// Asks `from` for committed blocks once this validator has seen later heights for longer
    /// than a propose timeout: it missed a decision (it was down or cut off).
    fn note_height_seen(&mut self, from: Address, seen: Height, ours: Height) {
        if seen <= ours || from == self.address {
            return;
        }
        if self.ahead.is_none_or(|(_, h)| seen > h) {
            self.ahead = Some((from, seen));
        }
        if self.decided {
            return;
        }
        let since = *self.behind_since_ms.get_or_insert(self.now_ms);
        if self.now_ms.saturating_sub(since) >= self.genesis.params.timeouts.propose_ms {
            self.request_blocks(from, ours);
            self.behind_since_ms = Some(self.now_ms);
        }
    }

    /// At a new height: if a peer is known to be further ahead than one height and the last
    /// batch asked for is used up, asks for the next batch at once.
    fn catch_up(&mut self, next: Height) {
        match self.ahead {
            Some((peer, seen)) if seen.0 > next.0 => {
                if next.0 >= self.sync_until {
                    self.request_blocks(peer, next);
                }
            }
            _ => self.ahead = None,
        }
    }

    fn request_blocks(&mut self, peer: Address, from: Height) {
        self.outputs
            .push(Output::Send(peer, Message::SyncRequest(from)));
        self.sync_until = from.0 + SYNC_BATCH;
    }

    pub(crate) fn on_decide(&mut self, certificate: &mt::CommitCertificate<Ctx>) {
        let Some((value, _)) = self.blocks.get(&certificate.value_id) else {
            self.fatal = Some(EngineError::Invariant(format!(
                "decided block {} was never seen",
                certificate.value_id
            )));
            return;
        };
        let signatures = certificate
            .commit_signatures
            .iter()
            .map(|s| (s.address.0, s.signature))
            .collect();
        let cert = CommitCertificate {
            height: certificate.height.into(),
            round: bmpls_types::Round(defined(certificate.round)),
            block_hash: certificate.value_id,
            signatures: BoundedVec::new(signatures).unwrap_or_else(|_| BoundedVec::empty()),
        };
        let block = value.block().clone();
        self.commit(block, cert);
    }

    fn on_synced_block(&mut self, block: Block, cert: CommitCertificate, height: Height) {
        let at = block.header.height.0;
        if at > height.0 || (at == height.0 && self.decided) {
            // Kept until its turn, within the window a request asks for; checked then.
            if at < height.0 + 2 * SYNC_BATCH {
                self.synced.insert(at, (block, cert));
            }
            return;
        }
        if at != height.0 {
            return;
        }
        // A block under a valid commit certificate is final: validators holding more than two
        // thirds of the power, so at least one honest one, judged it valid. It is applied as a
        // decided block is, without judging its transactions again: a validator whose verdict
        // differed would otherwise refuse the chain's next block forever and never catch up.
        // Only its place is checked (the certificate binds its height, the tip binds the rest).
        if block.header.prev_hash != self.ledger.tip() {
            self.refusals.malformed += 1;
            return;
        }
        match verify_block(block, &cert, self.validators().crypto()) {
            Ok(verified) => {
                self.apply_committed(verified, cert);
                self.decided_by_sync = true;
            }
            Err(_) => self.refusals.malformed += 1,
        }
    }

    fn commit(&mut self, block: HashedBlock, cert: CommitCertificate) {
        match verify_block(block, &cert, self.validators().crypto()) {
            Ok(verified) => self.apply_committed(verified, cert),
            Err(e) => {
                self.fatal = Some(EngineError::Invariant(format!(
                    "the certificate of a decided block does not verify: {e}"
                )));
            }
        }
    }

    fn apply_committed(&mut self, verified: Verified<HashedBlock>, cert: CommitCertificate) {
        let hash = cert.block_hash;
        self.ledger.apply(&verified, hash);
        self.mempool.on_commit(&verified, &self.ledger);
        self.decided = true;
        self.decided_by_sync = false;
        self.outputs.push(Output::Committed(verified, cert));
    }
}

//! The simulator: `n` engines, a seeded network and a virtual clock in one event queue. After
//! every event it checks what the protocol promises (see [`crate`]); a broken promise stops the
//! run with its seed and the command that replays it.

use std::collections::{BTreeMap, HashMap};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use bmpls_consensus::{
    Address, ConsensusParams, Engine, Genesis, Ledger, MemoryWal, Message, NilOrVal, Output,
    Timeout, Timeouts, ValidatorSet,
};
use bmpls_crypto::{HashedBlock, SigningKey, verify_block};
use bmpls_types::{BlockHash, ChainId, CommitCertificate, ValidatorId};

use crate::byzantine::tamper;
use crate::scenario::{Action, Scenario};
use crate::workload::Workload;

/// Events the simulator processes at most per run: a run that needs more is stuck in a loop.
pub const MAX_EVENTS: u64 = 5_000_000;
/// Blocks every honest validator must commit past the furthest one once all faults have healed.
pub const PAST_HEAL: u64 = 3;

/// What a run did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// Committed height of each validator at the end.
    pub heights: Vec<u64>,
    /// Events processed.
    pub events: u64,
    /// Virtual time at the end.
    pub virtual_ms: u64,
    /// Transactions in the committed chain (of the longest honest chain).
    pub committed_txs: u64,
    /// Messages sent (before drops).
    pub messages: u64,
    /// Signatures the double-signing guard refused (over all validators).
    pub refused_signatures: u64,
    /// Hash of the longest honest chain's tip, for comparing replays.
    pub tip: Option<BlockHash>,
}

/// A broken promise, with what replays it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "scenario `{scenario}` seed {seed} failed at {at_ms} ms (event {event}): {reason}\n  \
     replay: cargo run --release -- sim --scenario {scenario} --seed {seed}"
)]
pub struct SimFailure {
    /// Scenario name.
    pub scenario: String,
    /// Seed.
    pub seed: u64,
    /// Virtual time of the failure.
    pub at_ms: u64,
    /// Event number.
    pub event: u64,
    /// What broke.
    pub reason: String,
}

enum Event {
    Deliver {
        to: usize,
        from: usize,
        message: Box<Message>,
    },
    Timer {
        node: usize,
        incarnation: u64,
        timeout: Timeout,
        generation: u64,
    },
    StartNext {
        node: usize,
        incarnation: u64,
    },
    Act(Action),
    Report,
}

struct Node {
    key_seed: [u8; 32],
    address: Address,
    engine: Option<Engine<MemoryWal>>,
    wal: MemoryWal,
    chain: Vec<(HashedBlock, CommitCertificate)>,
    timers: HashMap<Timeout, u64>,
    incarnation: u64,
    byzantine: Option<crate::Fault>,
}

struct Sim<'a> {
    scenario: &'a Scenario,
    rng: StdRng,
    now_ms: u64,
    events: u64,
    sequence: u64,
    queue: BTreeMap<(u64, u64), Event>,
    nodes: Vec<Node>,
    genesis: Genesis,
    chain_id: ChainId,
    partition: Option<Vec<usize>>,
    workload: Workload,
    /// First committed hash per height (agreement) and the reference ledger (validity).
    decided: BTreeMap<u64, BlockHash>,
    reference: Ledger,
    /// What each honest validator signed: (node, height, round, step) → block or nil.
    signed: HashMap<(usize, u64, u32, u8), Option<BlockHash>>,
    enrolments: Vec<bmpls_types::Transaction>,
    messages: u64,
    refused_signatures: u64,
    goal: Option<u64>,
}

/// Runs `scenario` with `seed`.
pub fn run(scenario: &Scenario, seed: u64) -> Result<Outcome, SimFailure> {
    let mut sim = Sim::new(scenario, seed);
    sim.run().map_err(|reason| SimFailure {
        scenario: scenario.name.clone(),
        seed,
        at_ms: sim.now_ms,
        event: sim.events,
        reason,
    })
}

/// Consensus timeouts of simulated validators: short, so that runs cover many rounds.
pub fn sim_params() -> ConsensusParams {
    ConsensusParams {
        timeouts: Timeouts {
            propose_ms: 300,
            propose_delta_ms: 100,
            prevote_ms: 150,
            prevote_delta_ms: 50,
            precommit_ms: 150,
            precommit_delta_ms: 50,
            rebroadcast_ms: 500,
        },
        ..ConsensusParams::default()
    }
}

impl<'a> Sim<'a> {
    fn new(scenario: &'a Scenario, seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let chain_id = ChainId::new("bmpls-sim").unwrap_or_else(|_| unreachable!("short id"));
        let mut seeds = Vec::new();
        for _ in 0..scenario.validators {
            let mut s = [0u8; 32];
            rng.fill(&mut s);
            seeds.push(s);
        }
        let members = seeds
            .iter()
            .map(|s| bmpls_crypto::Validator {
                id: ValidatorId(SigningKey::from_seed(s).public().0),
                power: 1,
            })
            .collect();
        let set = bmpls_crypto::ValidatorSet::new(chain_id.clone(), members)
            .unwrap_or_else(|e| unreachable!("simulated set is valid: {e}"));
        let genesis = Genesis {
            validators: ValidatorSet::new(set),
            genesis_time_ms: 0,
            params: sim_params(),
            names: Vec::new(),
        };
        let reference = Ledger::genesis(genesis.validators.clone(), 0);
        let operator = SigningKey::from_seed(&seeds[0]);
        let (workload, enrolments) = Workload::enrol(
            scenario.patients,
            reference.chain_id(),
            &operator,
            &mut seed_rng(&mut rng),
        );
        let nodes = seeds
            .iter()
            .enumerate()
            .map(|(i, s)| Node {
                key_seed: *s,
                address: Address(ValidatorId(SigningKey::from_seed(s).public().0)),
                engine: None,
                wal: MemoryWal::default(),
                chain: Vec::new(),
                timers: HashMap::new(),
                incarnation: 0,
                byzantine: scenario
                    .byzantine
                    .iter()
                    .find(|(n, _)| *n == i)
                    .map(|(_, f)| *f),
            })
            .collect();
        let mut sim = Self {
            scenario,
            rng,
            now_ms: 1,
            events: 0,
            sequence: 0,
            queue: BTreeMap::new(),
            nodes,
            genesis,
            chain_id,
            partition: None,
            workload,
            decided: BTreeMap::new(),
            reference,
            signed: HashMap::new(),
            enrolments,
            messages: 0,
            refused_signatures: 0,
            goal: None,
        };
        for (at, action) in &scenario.actions {
            sim.push(*at, Event::Act(action.clone()));
        }
        sim
    }

    fn push(&mut self, at_ms: u64, event: Event) {
        self.sequence += 1;
        self.queue.insert((at_ms, self.sequence), event);
    }

    fn honest(&self, node: usize) -> bool {
        self.nodes[node].byzantine.is_none()
    }

    fn run(&mut self) -> Result<Outcome, String> {
        for node in 0..self.nodes.len() {
            self.start(node)?;
        }
        if self.scenario.report_every_ms > 0 {
            self.push(self.scenario.report_every_ms, Event::Report);
        }
        let quiet_from = self
            .scenario
            .actions
            .iter()
            .map(|(at, _)| *at)
            .max()
            .unwrap_or(0);
        let deadline = quiet_from + self.scenario.liveness_bound_ms;
        while let Some(((at, _), event)) = self.queue.pop_first() {
            if at > deadline {
                break;
            }
            if at > quiet_from && self.goal.is_none() {
                // Every fault has healed: from here every honest validator must get a few
                // blocks past the furthest one, and at least to the target.
                let furthest = self.heights().into_iter().max().unwrap_or(0);
                self.goal = Some(self.scenario.target_height.max(furthest + PAST_HEAL));
            }
            self.now_ms = at;
            self.events += 1;
            if self.events > MAX_EVENTS {
                return Err(format!("more than {MAX_EVENTS} events"));
            }
            self.step(event)?;
            if self.done() {
                return Ok(self.outcome());
            }
        }
        if self.scenario.expect_progress {
            return Err(format!(
                "liveness: honest validators did not all reach height {} within {} ms after the \
                 last fault healed (heights {:?}, rounds {:?})",
                self.goal.unwrap_or(self.scenario.target_height),
                self.scenario.liveness_bound_ms,
                self.heights(),
                self.rounds()
            ));
        }
        Ok(self.outcome())
    }

    fn heights(&self) -> Vec<u64> {
        self.nodes.iter().map(|n| n.chain.len() as u64).collect()
    }

    fn rounds(&self) -> Vec<Option<u32>> {
        self.nodes
            .iter()
            .map(|n| n.engine.as_ref().and_then(Engine::round))
            .collect()
    }

    fn done(&self) -> bool {
        let Some(goal) = self.goal else {
            return false;
        };
        self.scenario.expect_progress
            && self
                .nodes
                .iter()
                .filter(|n| n.byzantine.is_none())
                .all(|n| n.chain.len() as u64 >= goal)
    }

    fn outcome(&self) -> Outcome {
        let longest = (0..self.nodes.len())
            .filter(|i| self.honest(*i))
            .max_by_key(|i| self.nodes[*i].chain.len());
        let chain = longest.map(|i| &self.nodes[i].chain);
        Outcome {
            heights: self.heights(),
            events: self.events,
            virtual_ms: self.now_ms,
            committed_txs: chain.map_or(0, |c| c.iter().map(|(b, _)| b.txs.len() as u64).sum()),
            messages: self.messages,
            refused_signatures: self.refused_signatures,
            tip: chain
                .and_then(|c| c.last())
                .map(|(_, cert)| cert.block_hash),
        }
    }

    fn start(&mut self, node: usize) -> Result<(), String> {
        let n = &mut self.nodes[node];
        let mut ledger = Ledger::genesis(
            self.genesis.validators.clone(),
            self.genesis.genesis_time_ms,
        );
        for (block, cert) in &n.chain {
            ledger.apply(block, cert.block_hash);
        }
        n.incarnation += 1;
        n.timers.clear();
        let key = SigningKey::from_seed(&n.key_seed);
        let (mut engine, outputs) = Engine::start(
            self.genesis.clone(),
            key,
            ledger,
            n.wal.clone(),
            self.now_ms,
        )
        .map_err(|e| format!("validator {node} failed to start: {e}"))?;
        for tx in &self.enrolments {
            // Already-committed enrolments are refused on restart; that is expected.
            let _ = engine.submit(tx.clone());
        }
        self.nodes[node].engine = Some(engine);
        self.handle(node, outputs)
    }

    fn step(&mut self, event: Event) -> Result<(), String> {
        match event {
            Event::Deliver { to, from, message } => self.deliver(to, from, *message),
            Event::Timer {
                node,
                incarnation,
                timeout,
                generation,
            } => {
                let n = &mut self.nodes[node];
                if n.incarnation != incarnation || n.timers.get(&timeout) != Some(&generation) {
                    return Ok(());
                }
                n.timers.remove(&timeout);
                let Some(engine) = n.engine.as_mut() else {
                    return Ok(());
                };
                let outputs = engine
                    .on_timeout(timeout, self.now_ms)
                    .map_err(|e| format!("validator {node}: {e}"))?;
                self.handle(node, outputs)
            }
            Event::StartNext { node, incarnation } => {
                let n = &mut self.nodes[node];
                if n.incarnation != incarnation {
                    return Ok(());
                }
                let Some(engine) = n.engine.as_mut() else {
                    return Ok(());
                };
                let outputs = engine
                    .start_next_height(self.now_ms)
                    .map_err(|e| format!("validator {node}: {e}"))?;
                self.handle(node, outputs)
            }
            Event::Act(action) => self.act(action),
            Event::Report => {
                let mut rng = seed_rng(&mut self.rng);
                if let Some(tx) = self.workload.report(self.now_ms, &mut rng) {
                    for n in &mut self.nodes {
                        if let Some(engine) = n.engine.as_mut() {
                            // A validator whose ledger is behind refuses the report; another
                            // includes it.
                            let _ = engine.submit(tx.clone());
                        }
                    }
                }
                self.push(self.now_ms + self.scenario.report_every_ms, Event::Report);
                Ok(())
            }
        }
    }

    fn act(&mut self, action: Action) -> Result<(), String> {
        match action {
            Action::Crash(node) => self.crash(node),
            Action::Restart(node) => {
                if self.nodes[node].engine.is_none() {
                    self.start(node)?;
                }
            }
            Action::CrashAll => (0..self.nodes.len()).for_each(|n| self.crash(n)),
            Action::RestartAll => {
                for node in 0..self.nodes.len() {
                    if self.nodes[node].engine.is_none() {
                        self.start(node)?;
                    }
                }
            }
            Action::Partition(groups) => {
                let mut of = vec![usize::MAX; self.nodes.len()];
                for (g, members) in groups.iter().enumerate() {
                    for m in members {
                        of[*m] = g;
                    }
                }
                self.partition = Some(of);
            }
            Action::Heal => self.partition = None,
        }
        Ok(())
    }

    fn crash(&mut self, node: usize) {
        let n = &mut self.nodes[node];
        if let Some(engine) = n.engine.take() {
            self.refused_signatures += engine.refusals().double_sign;
        }
        n.timers.clear();
        n.incarnation += 1;
    }

    fn deliver(&mut self, to: usize, from: usize, message: Message) -> Result<(), String> {
        if self.nodes[to].engine.is_none() {
            return Ok(());
        }
        if let Message::SyncRequest(height) = message {
            // The host answers from its store.
            let start = (height.0 as usize).saturating_sub(1);
            let blocks: Vec<_> = self.nodes[to]
                .chain
                .iter()
                .skip(start)
                .take(bmpls_consensus::SYNC_BATCH as usize)
                .cloned()
                .collect();
            for (block, cert) in blocks {
                let block = Box::new(block.into_block());
                self.send(to, from, Message::SyncResponse(block, cert));
            }
            return Ok(());
        }
        let address = self.nodes[from].address;
        let now = self.now_ms;
        let Some(engine) = self.nodes[to].engine.as_mut() else {
            return Ok(());
        };
        let outputs = engine
            .on_message(address, message, now)
            .map_err(|e| format!("validator {to}: {e}"))?;
        self.handle(to, outputs)
    }

    fn send(&mut self, from: usize, to: usize, message: Message) {
        self.messages += 1;
        if let Some(groups) = &self.partition
            && groups[from] != groups[to]
        {
            return;
        }
        let net = &self.scenario.network;
        if self.rng.gen_bool(net.drop) {
            return;
        }
        let copies = if self.rng.gen_bool(net.duplicate) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let delay = self.rng.gen_range(net.min_delay_ms..=net.max_delay_ms);
            let message = Box::new(message.clone());
            self.push(self.now_ms + delay, Event::Deliver { to, from, message });
        }
    }

    fn handle(&mut self, node: usize, outputs: Vec<Output>) -> Result<(), String> {
        for output in outputs {
            match output {
                Output::Broadcast(message) => self.broadcast(node, message)?,
                Output::Send(address, message) => {
                    if let Some(to) = self.nodes.iter().position(|n| n.address == address) {
                        self.send(node, to, message);
                    }
                }
                Output::Schedule { timeout, after_ms } => {
                    let n = &mut self.nodes[node];
                    let generation = self.sequence + 1;
                    n.timers.insert(timeout, generation);
                    let incarnation = n.incarnation;
                    self.push(
                        self.now_ms + after_ms,
                        Event::Timer {
                            node,
                            incarnation,
                            timeout,
                            generation,
                        },
                    );
                }
                Output::Cancel(timeout) => {
                    self.nodes[node].timers.remove(&timeout);
                }
                Output::CancelAll => self.nodes[node].timers.clear(),
                Output::Committed(block, cert) => {
                    self.check_commit(node, block.get(), &cert)?;
                    let n = &mut self.nodes[node];
                    n.chain.push((block.into_inner(), cert));
                    let incarnation = n.incarnation;
                    // The host persists before starting the next height; a crash can fall
                    // between the two.
                    self.push(self.now_ms + 1, Event::StartNext { node, incarnation });
                }
            }
        }
        Ok(())
    }

    fn broadcast(&mut self, node: usize, message: Message) -> Result<(), String> {
        let peers: Vec<usize> = (0..self.nodes.len()).filter(|p| *p != node).collect();
        match self.nodes[node].byzantine {
            None => {
                self.check_signed(node, &message)?;
                for to in peers {
                    self.send(node, to, message.clone());
                }
            }
            Some(fault) => {
                let key = SigningKey::from_seed(&self.nodes[node].key_seed);
                let mut rng = seed_rng(&mut self.rng);
                let forged = tamper(fault, &message, peers.len(), &self.chain_id, &key, &mut rng);
                for (to, message) in peers.into_iter().zip(forged) {
                    if let Some(message) = message {
                        self.send(node, to, message);
                    }
                }
            }
        }
        Ok(())
    }

    /// No honest validator signs two different messages for one height, round and step, even
    /// across restarts.
    fn check_signed(&mut self, node: usize, message: &Message) -> Result<(), String> {
        let (key, value) = match message {
            Message::Vote(v) => {
                let step = match v.vote.kind {
                    bmpls_consensus::VoteKind::Prevote => 1,
                    bmpls_consensus::VoteKind::Precommit => 2,
                };
                let value = match v.vote.block {
                    NilOrVal::Nil => None,
                    NilOrVal::Val(h) => Some(h),
                };
                ((node, v.vote.height.0, v.vote.round, step), value)
            }
            Message::Proposal(p) => (
                (node, p.height.0, p.round, 0),
                Some(bmpls_crypto::hash::block_hash(&p.block.header)),
            ),
            _ => return Ok(()),
        };
        match self.signed.insert(key, value) {
            Some(previous) if previous != value => Err(format!(
                "honest validator {node} signed two different messages at height {} round {} \
                 step {}: {previous:?} then {value:?}",
                key.1, key.2, key.3
            )),
            _ => Ok(()),
        }
    }

    /// Agreement (one block per height among honest validators) and validity (every committed
    /// block carries its certificate and passes the ledger's rules).
    fn check_commit(
        &mut self,
        node: usize,
        block: &HashedBlock,
        cert: &CommitCertificate,
    ) -> Result<(), String> {
        let height = block.header.height.0;
        if !self.honest(node) {
            return Ok(());
        }
        if let Some(hash) = self.decided.get(&height) {
            if *hash != cert.block_hash {
                return Err(format!(
                    "agreement: validator {node} committed {} at height {height}, another honest \
                     validator committed {hash}",
                    cert.block_hash
                ));
            }
            return Ok(());
        }
        if height != self.reference.height().0 + 1 {
            return Err(format!(
                "validator {node} committed height {height} out of order"
            ));
        }
        verify_block(block.clone(), cert, self.genesis.validators.crypto()).map_err(|e| {
            format!("validity: committed block {height} has a bad certificate: {e}")
        })?;
        self.reference
            .check_block(block, u64::MAX, self.now_ms)
            .map_err(|e| format!("validity: committed block {height} breaks a rule: {e}"))?;
        self.reference.apply(block, cert.block_hash);
        self.decided.insert(height, cert.block_hash);
        Ok(())
    }
}

fn seed_rng(rng: &mut StdRng) -> StdRng {
    StdRng::seed_from_u64(rng.r#gen())
}

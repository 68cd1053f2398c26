//! Joining from a snapshot: a validator whose disk was wiped, or a new one, starts from a
//! checkpoint of the chain's state fetched from its peers, plus the blocks after it, instead of
//! replaying the whole chain.
//!
//! Checkpoints fall at heights that are a function of the chain ([`crate::checkpoint`]) and
//! their bytes are a function of the chain up to them, so honest validators hold identical
//! checkpoints at the same heights. A block header says nothing about the state, so the joiner
//! believes a checkpoint only when validators of more than a third of the voting power (at least
//! one honest one, with `f` byzantine) offer the same digest for the same certified block. The
//! digest is the hash of the hashes of the checkpoint's pieces, which the offer lists, so each
//! piece is checked as it arrives, whoever sends it: the joiner fetches pieces from every
//! offerer at once, one outstanding piece each, gives a late piece to another offerer, and
//! drops an offerer that sends a bad piece or is late three times. It then decodes the bytes, checks that the ledger they hold ends at that very
//! block, and installs them in its store ([`bmpls_store::Store::install_base`]) in one durable
//! batch. Consensus then starts at the next height and catches up with ordinary sync. A join
//! that makes no progress for [`JOIN_WAIT`] starts from the genesis instead, as a validator
//! without `join_from_snapshot` does.
//!
//! Serving: a validator computes each checkpoint's piece hashes once, keeps the bytes of the
//! checkpoint it last served in memory (so a fetch outlives the checkpoint's pruning), and
//! serves each peer one request at a time, within the peer's sync token bucket.
//!
//! What this costs: the node holds no block at or below the base, so it cannot answer what
//! only those blocks prove (records, audits and grant or fence proofs from before it); it
//! refuses such questions and the client asks another validator (`crate::answer`).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bmpls_consensus::{
    Genesis, MAX_OFFERED_CHECKPOINTS, MAX_SNAPSHOT_BYTES, Message, OfferedCheckpoint,
    SNAPSHOT_CHUNK_BYTES,
};
use bmpls_net::{Inbound, PeerSender, Peers};
use bmpls_store::{Base, Store};
use bmpls_types::{
    BlockHash, BlockHeader, BoundedVec, Canonical, CommitCertificate, Hash32, Height, ValidatorId,
};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{info, warn};

use crate::NodeError;

/// Domain tag of a checkpoint's digest (over its pieces' hashes).
const DIGEST_TAG: &[u8] = b"bmpls/checkpoint";
/// Domain tag of a piece's hash.
const PIECE_TAG: &[u8] = b"bmpls/checkpoint-piece";
/// How long a join may go without progress (an offer believed, a piece received) before the
/// validator starts from the genesis instead.
pub const JOIN_WAIT: Duration = Duration::from_secs(30);
/// How often the joiner asks again for offers.
const ASK_EVERY: Duration = Duration::from_secs(1);
/// How long a piece asked of one offerer may take before it is asked of another.
const PIECE_TIMEOUT: Duration = Duration::from_secs(5);
/// Pieces an offerer may let time out before the fetch stops asking it.
const MAX_LATE: usize = 3;

/// The hash of each [`SNAPSHOT_CHUNK_BYTES`] piece of `bytes`.
pub(crate) fn piece_hashes(bytes: &[u8]) -> Vec<Hash32> {
    bytes
        .chunks(SNAPSHOT_CHUNK_BYTES)
        .map(|piece| bmpls_crypto::hash::tagged_hash(PIECE_TAG, piece))
        .collect()
}

/// The digest a checkpoint of these piece hashes is offered under.
pub(crate) fn digest_of(pieces: &[Hash32]) -> Hash32 {
    let joined: Vec<u8> = pieces.iter().flat_map(|h| h.0).collect();
    bmpls_crypto::hash::tagged_hash(DIGEST_TAG, &joined)
}

/// A checkpoint's length and hashes, computed once.
#[derive(Debug)]
struct Summary {
    len: u64,
    pieces: Vec<Hash32>,
    digest: Hash32,
}

/// What a validator keeps to serve joining peers.
#[derive(Debug, Default)]
struct Served {
    /// Each checkpoint's summary, by height.
    summaries: BTreeMap<Height, Arc<Summary>>,
    /// The bytes of the checkpoints offered, and of the one last served after the store
    /// pruned it (so a fetch outlives the pruning): at most the store's checkpoints and one.
    bytes: BTreeMap<Height, Arc<Vec<u8>>>,
    /// The height last served a piece of.
    last_served: Option<Height>,
    /// Peers with a request being served.
    busy: HashSet<ValidatorId>,
}

/// The server side of joins: answers offer and piece requests on blocking threads, one at a
/// time per peer.
#[derive(Clone, Debug, Default)]
pub(crate) struct SnapshotServer {
    served: Arc<Mutex<Served>>,
}

/// Frees a peer's slot when its request has been served, however that ends.
struct Busy {
    served: Arc<Mutex<Served>>,
    peer: ValidatorId,
}

impl Drop for Busy {
    fn drop(&mut self) {
        lock(&self.served).busy.remove(&self.peer);
    }
}

fn lock(served: &Mutex<Served>) -> std::sync::MutexGuard<'_, Served> {
    served
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl SnapshotServer {
    /// Serves `message` (an offer request or a piece request) from `peer`; false if a request
    /// of the peer is still being served (this one is dropped: the joiner asks again).
    pub(crate) fn serve(
        &self,
        peer: ValidatorId,
        message: &Message,
        store: Arc<Store>,
        sender: PeerSender,
    ) -> bool {
        let piece = match message {
            Message::SnapshotRequest => None,
            Message::SnapshotChunkRequest(height, index) => Some((*height, *index)),
            _ => return true,
        };
        if !lock(&self.served).busy.insert(peer) {
            return false;
        }
        let busy = Busy {
            served: self.served.clone(),
            peer,
        };
        let server = self.clone();
        tokio::task::spawn_blocking(move || {
            let _busy = busy;
            let reply = match piece {
                None => server.offers(&store).map(|offers| {
                    let offers = BoundedVec::new(offers).expect("truncated to the bound");
                    Some(Message::SnapshotOffer(offers))
                }),
                Some((height, index)) => server.piece(&store, height, index),
            };
            match reply {
                Ok(Some(message)) => {
                    // A peer that does not read its link gets no more than sync would queue.
                    if sender.queued_bytes(&peer)
                        < bmpls_net::limits::MAX_SYNC_QUEUED_BYTES_PER_PEER
                    {
                        sender.send(&peer, message.encode().into());
                    }
                }
                Ok(None) => {}
                Err(e) => warn!(%peer, error = %e, "cannot read a checkpoint for a joining peer"),
            }
        });
        true
    }

    /// The bytes of the checkpoint at `height`: the kept ones, else read from the store (and
    /// kept).
    fn bytes(
        &self,
        store: &Store,
        height: Height,
    ) -> Result<Option<Arc<Vec<u8>>>, bmpls_store::StoreError> {
        if let Some(bytes) = lock(&self.served).bytes.get(&height) {
            return Ok(Some(bytes.clone()));
        }
        let Some(bytes) = store.checkpoint(height)? else {
            return Ok(None);
        };
        let bytes = Arc::new(bytes);
        lock(&self.served).bytes.insert(height, bytes.clone());
        Ok(Some(bytes))
    }

    /// The checkpoints the store holds, newest first, each with the certified header of its
    /// block (a store started from a snapshot holds both at its base).
    fn offers(&self, store: &Store) -> Result<Vec<OfferedCheckpoint>, bmpls_store::StoreError> {
        let heights = store.checkpoints()?;
        let mut offers = Vec::new();
        for &height in heights.iter().take(MAX_OFFERED_CHECKPOINTS) {
            let (Some(header), Some(cert)) = (store.header(height)?, store.certificate(height)?)
            else {
                continue;
            };
            let known = lock(&self.served).summaries.get(&height).cloned();
            let summary = match known {
                Some(summary) => summary,
                None => {
                    let Some(bytes) = self.bytes(store, height)? else {
                        continue;
                    };
                    let pieces = piece_hashes(&bytes);
                    let summary = Arc::new(Summary {
                        len: bytes.len() as u64,
                        digest: digest_of(&pieces),
                        pieces,
                    });
                    lock(&self.served).summaries.insert(height, summary.clone());
                    summary
                }
            };
            let Ok(pieces) = BoundedVec::new(summary.pieces.clone()) else {
                continue;
            };
            offers.push(OfferedCheckpoint {
                header,
                cert,
                digest: summary.digest,
                len: summary.len,
                pieces,
            });
        }
        // Summaries of pruned checkpoints are of no further use, nor their bytes unless a
        // fetch of them is under way.
        let mut served = lock(&self.served);
        served
            .summaries
            .retain(|height, _| heights.contains(height));
        let last = served.last_served;
        served
            .bytes
            .retain(|height, _| heights.contains(height) || Some(*height) == last);
        Ok(offers)
    }

    /// Piece `index` of the checkpoint at `height`, if this node holds it.
    fn piece(
        &self,
        store: &Store,
        height: Height,
        index: u32,
    ) -> Result<Option<Message>, bmpls_store::StoreError> {
        let Some(bytes) = self.bytes(store, height)? else {
            return Ok(None);
        };
        {
            // Kept while it is being fetched; the others (pruned, not being fetched) go.
            let mut served = lock(&self.served);
            if served.last_served != Some(height) {
                let previous = served.last_served.replace(height);
                if let Some(previous) = previous {
                    if !served.summaries.contains_key(&previous) {
                        served.bytes.remove(&previous);
                    }
                }
            }
        }
        let Some(piece) = bytes.chunks(SNAPSHOT_CHUNK_BYTES).nth(index as usize) else {
            return Ok(None);
        };
        let piece = BoundedVec::new(piece.to_vec()).expect("at most a piece");
        Ok(Some(Message::SnapshotChunk(height, index, piece)))
    }
}

/// Which checkpoint, as offered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    height: Height,
    block: BlockHash,
    digest: Hash32,
    len: u64,
}

/// A checkpoint as one peer offered it, checked: its block is certified, its piece hashes are
/// the digest's and as many as its length needs.
#[derive(Clone, Debug)]
struct Offered {
    key: Key,
    header: BlockHeader,
    cert: CommitCertificate,
    pieces: Vec<Hash32>,
}

impl Offered {
    /// Whether `piece` is piece `index` of this checkpoint: its hash is the one offered, so
    /// its length is right too (the last piece is the only short one).
    fn holds(&self, index: u32, piece: &[u8]) -> bool {
        let start = index as usize * SNAPSHOT_CHUNK_BYTES;
        self.pieces.get(index as usize) == Some(&bmpls_crypto::hash::tagged_hash(PIECE_TAG, piece))
            && (start + piece.len()) as u64 <= self.key.len
    }
}

/// Each peer's latest offer, checked.
#[derive(Default)]
struct Offers {
    by_peer: BTreeMap<ValidatorId, Vec<Offered>>,
}

impl Offers {
    /// Takes `from`'s offer in place of its last one, keeping the checkpoints that check.
    fn add(&mut self, genesis: &Genesis, from: ValidatorId, offered: Vec<OfferedCheckpoint>) {
        if genesis.validators.crypto().get(&from).is_none() {
            return;
        }
        let checked = offered
            .into_iter()
            .filter_map(|offer| {
                let certified = bmpls_crypto::verify_header(
                    offer.header.clone(),
                    &offer.cert,
                    genesis.validators.crypto(),
                );
                let pieces = offer.pieces.into_inner();
                let sized = offer.len > 0
                    && offer.len <= MAX_SNAPSHOT_BYTES
                    && pieces.len() as u64 == offer.len.div_ceil(SNAPSHOT_CHUNK_BYTES as u64);
                if certified.is_err() || !sized || digest_of(&pieces) != offer.digest {
                    warn!(peer = %from, height = offer.header.height.0,
                        "offered a checkpoint that does not check; ignored");
                    return None;
                }
                Some(Offered {
                    key: Key {
                        height: offer.header.height,
                        block: bmpls_crypto::hash::block_hash(&offer.header),
                        digest: offer.digest,
                        len: offer.len,
                    },
                    header: offer.header,
                    cert: offer.cert,
                    pieces,
                })
            })
            .collect();
        self.by_peer.insert(from, checked);
    }

    /// Whether no checkpoint can be believed whatever the peers yet to answer offer: those that
    /// answered with no checkpoint, with `me`, hold so much of the voting power that the rest
    /// is at most a third (a new chain: nobody has one).
    fn hopeless(&self, genesis: &Genesis, me: ValidatorId) -> bool {
        let set = genesis.validators.crypto();
        let power = |id: &ValidatorId| set.get(id).map_or(0, |(_, v)| v.power);
        let without: u64 = self
            .by_peer
            .iter()
            .filter(|(_, offers)| offers.is_empty())
            .map(|(id, _)| power(id))
            .sum::<u64>()
            + power(&me);
        u128::from(set.total_power().saturating_sub(without)) * 3 <= u128::from(set.total_power())
    }

    /// The highest checkpoint not in `refused` that validators of more than a third of the
    /// voting power offer (so an honest one does), and who offers it.
    fn believed(
        &self,
        genesis: &Genesis,
        refused: &BTreeSet<Key>,
    ) -> Option<(Offered, Vec<ValidatorId>)> {
        let set = genesis.validators.crypto();
        let mut by_key: BTreeMap<Key, (&Offered, Vec<ValidatorId>)> = BTreeMap::new();
        for (peer, offers) in &self.by_peer {
            for offer in offers {
                by_key
                    .entry(offer.key)
                    .or_insert((offer, Vec::new()))
                    .1
                    .push(*peer);
            }
        }
        by_key
            .into_iter()
            .rev()
            .filter(|(key, _)| !refused.contains(key))
            .find(|(_, (_, who))| {
                let power: u64 = who
                    .iter()
                    .filter_map(|id| set.get(id).map(|(_, v)| v.power))
                    .sum();
                u128::from(power) * 3 > u128::from(set.total_power())
            })
            .map(|(_, (offer, who))| (offer.clone(), who))
    }
}

/// Verifies checkpoint `bytes` against the certified block of `header` and installs them as
/// the base of the empty `store`: the certificate must verify under the genesis, the bytes
/// must decode, and the ledger they hold must end at that very block.
pub fn install(
    genesis: &Genesis,
    store: &Store,
    (header, cert): (&BlockHeader, &CommitCertificate),
    bytes: &[u8],
) -> Result<(), NodeError> {
    let bad = |why: String| NodeError::Snapshot(why);
    bmpls_crypto::verify_header(header.clone(), cert, genesis.validators.crypto())
        .map_err(|e| bad(format!("the block's certificate: {e}")))?;
    let (ledger, _alerts) = crate::checkpoint::decode(genesis, bytes).map_err(bad)?;
    if ledger.height() != header.height || ledger.tip() != bmpls_crypto::hash::block_hash(header) {
        return Err(bad(format!(
            "the checkpoint ends at height {}, not at the offered block {}",
            ledger.height().0,
            header.height.0
        )));
    }
    let last_seqs: Vec<_> = ledger.last_seqs().filter(|(_, s)| s.0 > 0).collect();
    store.install_base(&Base {
        header,
        cert,
        checkpoint: bytes,
        last_seqs: &last_seqs,
    })?;
    Ok(())
}

/// What waiting for a peer message gave.
enum Received {
    Message(Inbound),
    Timeout,
    /// The peer links are gone.
    Closed,
}

async fn receive(inbound: &mut mpsc::Receiver<Inbound>, until: Instant) -> Received {
    match tokio::time::timeout_at(until, inbound.recv()).await {
        Ok(Some(message)) => Received::Message(message),
        Ok(None) => Received::Closed,
        Err(_) => Received::Timeout,
    }
}

/// Fetches a checkpoint from the peers and installs it in the empty `store`: the height it
/// starts after, or `None` if the join made no progress for `wait` (the node then starts from
/// the genesis and syncs every block). Peer messages other than offers and pieces are dropped
/// meanwhile: consensus has not started, and catches up by sync once it has.
pub(crate) async fn join(
    (genesis, me): (&Genesis, ValidatorId),
    store: &Store,
    peers: &Peers,
    inbound: &mut mpsc::Receiver<Inbound>,
    wait: Duration,
) -> Result<Option<Height>, NodeError> {
    let mut offers = Offers::default();
    let mut refused: BTreeSet<Key> = BTreeSet::new();
    let started = Instant::now();
    // However the peers behave, the join ends: after `wait` without an offer believed or a
    // piece received, and after a few fetches at most.
    let give_up = Instant::now() + wait * 4;
    info!("joining from a snapshot: asking the peers for their checkpoints");
    loop {
        if Instant::now() >= give_up {
            warn!("the join takes too long; starting from the genesis and syncing every block");
            return Ok(None);
        }
        let Some((offer, sources)) = offers.believed(genesis, &refused) else {
            if offers.hopeless(genesis, me) {
                info!("no peer holds a checkpoint (a new chain): starting from the genesis");
                return Ok(None);
            }
            if started.elapsed() >= wait {
                warn!(
                    answered = offers.by_peer.len(),
                    "no checkpoint offered alike by more than a third of the voting power; \
                     starting from the genesis and syncing every block"
                );
                return Ok(None);
            }
            peers.broadcast(Message::SnapshotRequest.encode().into());
            let until = Instant::now() + ASK_EVERY;
            // A peer that floods offers cannot hold this loop past `until`: a message waiting
            // is taken even after it, so the time is checked here too.
            while Instant::now() < until {
                match receive(inbound, until).await {
                    Received::Message(m) => {
                        let Ok(Message::SnapshotOffer(o)) = Message::decode(&m.bytes) else {
                            continue;
                        };
                        offers.add(genesis, m.from, o.into_inner());
                        if offers.believed(genesis, &refused).is_some() {
                            break;
                        }
                    }
                    Received::Timeout => break,
                    Received::Closed => return Ok(None),
                }
            }
            continue;
        };
        let height = offer.key.height;
        info!(
            height = height.0,
            bytes = offer.key.len,
            offerers = sources.len(),
            "fetching a checkpoint"
        );
        let fetched = fetch(peers, inbound, &offer, sources, wait).await;
        let Some(bytes) = fetched else {
            warn!(
                height = height.0,
                "the checkpoint's pieces did not all arrive"
            );
            refused.insert(offer.key);
            continue;
        };
        match install(genesis, store, (&offer.header, &offer.cert), &bytes) {
            Ok(()) => {
                info!(
                    height = height.0,
                    bytes = bytes.len(),
                    "joined from a snapshot"
                );
                return Ok(Some(height));
            }
            // An honest validator's checkpoint of another layout (a rolling upgrade): another
            // checkpoint, or the genesis.
            Err(NodeError::Snapshot(why)) => {
                warn!(height = height.0, %why, "the checkpoint does not install");
                refused.insert(offer.key);
            }
            Err(e) => return Err(e),
        }
    }
}

/// The bytes of `offer`, fetched from `sources` at once (one outstanding piece each, every
/// piece checked against its hash as it comes); `None` if every source was dropped (a bad
/// piece, or [`MAX_LATE`] pieces late) or nothing arrived for `wait`.
async fn fetch(
    peers: &Peers,
    inbound: &mut mpsc::Receiver<Inbound>,
    offer: &Offered,
    mut sources: Vec<ValidatorId>,
    wait: Duration,
) -> Option<Vec<u8>> {
    let len = usize::try_from(offer.key.len).ok()?;
    // At most MAX_SNAPSHOT_BYTES, and vouched for by an honest validator.
    let mut bytes = vec![0u8; len];
    let mut missing: BTreeSet<u32> = (0..offer.pieces.len() as u32).collect();
    let mut asked: HashMap<ValidatorId, (u32, Instant)> = HashMap::new();
    // Pieces each source let time out; a source late [`MAX_LATE`] times is dropped.
    let mut late: HashMap<ValidatorId, BTreeSet<u32>> = HashMap::new();
    let mut progress = Instant::now();
    while let Some(&first_missing) = missing.first() {
        if sources.is_empty() || progress.elapsed() >= wait {
            return None;
        }
        let now = Instant::now();
        let expired: Vec<ValidatorId> = asked
            .iter()
            .filter(|(_, (_, since))| now.duration_since(*since) >= PIECE_TIMEOUT)
            .map(|(source, _)| *source)
            .collect();
        for source in expired {
            if let Some((index, _)) = asked.remove(&source) {
                late.entry(source).or_default().insert(index);
            }
        }
        sources.retain(|s| late.get(s).is_none_or(|l| l.len() < MAX_LATE));
        // Each idle source gets a missing piece no one else is fetching and it was not late
        // with (or, near the end, any missing piece).
        for source in &sources {
            if asked.contains_key(source) {
                continue;
            }
            let taken: HashSet<u32> = asked.values().map(|(i, _)| *i).collect();
            let was_late = late.get(source);
            let index = missing
                .iter()
                .find(|i| !taken.contains(i) && !was_late.is_some_and(|l| l.contains(i)))
                .copied()
                .unwrap_or(first_missing);
            let request = Message::SnapshotChunkRequest(offer.key.height, index);
            peers.send(source, request.encode().into());
            asked.insert(*source, (index, now));
        }
        let until = asked
            .values()
            .map(|(_, since)| *since + PIECE_TIMEOUT)
            .min()
            .unwrap_or(now + PIECE_TIMEOUT);
        let inbound = match receive(inbound, until).await {
            Received::Message(m) => m,
            Received::Timeout => continue,
            Received::Closed => return None,
        };
        let Ok(Message::SnapshotChunk(height, index, piece)) = Message::decode(&inbound.bytes)
        else {
            continue;
        };
        if height != offer.key.height || !sources.contains(&inbound.from) {
            continue;
        }
        if asked.get(&inbound.from).is_some_and(|(i, _)| *i == index) {
            asked.remove(&inbound.from);
        }
        if !missing.contains(&index) {
            continue;
        }
        let start = index as usize * SNAPSHOT_CHUNK_BYTES;
        if !offer.holds(index, &piece) {
            warn!(peer = %inbound.from, index, "sent a checkpoint piece that does not match its hash; dropped");
            sources.retain(|s| *s != inbound.from);
            asked.remove(&inbound.from);
            continue;
        }
        bytes[start..start + piece.len()].copy_from_slice(&piece);
        missing.remove(&index);
        progress = Instant::now();
    }
    Some(bytes)
}

#[cfg(test)]
mod tests {
    use bmpls_crypto::{SigningKey, Validator};
    use bmpls_types::{Block, ChainId, Round};
    use rand::SeedableRng;

    use super::*;

    /// Four validators of equal power (f = 1), and a certified empty block at height 12.
    fn chain() -> (Vec<SigningKey>, Genesis, BlockHeader, CommitCertificate) {
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let keys: Vec<SigningKey> = (0..4).map(|_| SigningKey::generate(&mut rng)).collect();
        let chain = ChainId::new("snapshots").expect("short");
        let set = bmpls_crypto::ValidatorSet::new(
            chain.clone(),
            keys.iter()
                .map(|k| Validator {
                    id: ValidatorId(k.public().0),
                    power: 1,
                })
                .collect(),
        )
        .expect("a set");
        let genesis = Genesis {
            validators: bmpls_consensus::ValidatorSet::new(set),
            genesis_time_ms: 1_000,
            params: Default::default(),
            names: Vec::new(),
        };
        let block = Block {
            header: BlockHeader {
                chain_id: chain,
                height: Height(12),
                prev_hash: BlockHash([7; 32]),
                time_ms: 2_000,
                proposer: ValidatorId(keys[0].public().0),
                tx_root: bmpls_crypto::merkle::tx_root(&[]),
                tx_count: 0,
            },
            txs: BoundedVec::new(Vec::new()).expect("empty"),
        };
        let signers: Vec<&SigningKey> = keys.iter().take(3).collect();
        let cert = bmpls_crypto::certify(&block, Round(0), &signers);
        (keys, genesis, block.header, cert)
    }

    fn offer(header: &BlockHeader, cert: &CommitCertificate, bytes: &[u8]) -> OfferedCheckpoint {
        let pieces = piece_hashes(bytes);
        OfferedCheckpoint {
            header: header.clone(),
            cert: cert.clone(),
            digest: digest_of(&pieces),
            len: bytes.len() as u64,
            pieces: BoundedVec::new(pieces).expect("few"),
        }
    }

    /// The attack: one byzantine validator offers a forged state for a real certified block.
    /// It is believed only if more than a third of the voting power offers the same, which one
    /// validator of four is not; two honest ones offering the real state are.
    #[test]
    fn a_forged_offer_is_not_believed_and_more_than_a_third_alike_is() {
        let (keys, genesis, header, cert) = chain();
        let id = |i: usize| ValidatorId(keys[i].public().0);
        let none = BTreeSet::new();
        let mut offers = Offers::default();
        offers.add(
            &genesis,
            id(0),
            vec![offer(&header, &cert, b"forged state")],
        );
        assert!(offers.believed(&genesis, &none).is_none(), "one of four");
        offers.add(
            &genesis,
            id(1),
            vec![offer(&header, &cert, b"the real state")],
        );
        assert!(offers.believed(&genesis, &none).is_none(), "one each");
        // The byzantine one offering again counts once.
        offers.add(
            &genesis,
            id(0),
            vec![offer(&header, &cert, b"forged state")],
        );
        assert!(offers.believed(&genesis, &none).is_none());
        offers.add(
            &genesis,
            id(2),
            vec![offer(&header, &cert, b"the real state")],
        );
        let (believed, who) = offers.believed(&genesis, &none).expect("two of four");
        assert_eq!(who, {
            let mut w = vec![id(1), id(2)];
            w.sort();
            w
        });
        assert_eq!(believed.pieces, piece_hashes(b"the real state"));
        assert!(believed.holds(0, b"the real state"));
        assert!(
            !believed.holds(0, b"forged state"),
            "a bad piece is refused"
        );
        assert!(!believed.holds(1, b"the real state"), "no second piece");
        // Once refused (it did not install), nothing else is believed.
        let refused = BTreeSet::from([believed.key]);
        assert!(offers.believed(&genesis, &refused).is_none());
    }

    #[test]
    fn a_join_gives_up_at_once_when_too_few_peers_could_still_offer() {
        let (keys, genesis, header, cert) = chain();
        let id = |i: usize| ValidatorId(keys[i].public().0);
        let mut offers = Offers::default();
        // Validator 3 joins; 0 has no checkpoint: 1 and 2 could still offer alike.
        offers.add(&genesis, id(0), Vec::new());
        assert!(!offers.hopeless(&genesis, id(3)));
        // 1 holds one: still possible (with 2).
        offers.add(&genesis, id(1), vec![offer(&header, &cert, b"state")]);
        assert!(!offers.hopeless(&genesis, id(3)));
        // 2 has none either: only 1 is left, a quarter of the power.
        offers.add(&genesis, id(2), Vec::new());
        assert!(offers.hopeless(&genesis, id(3)));
    }

    #[test]
    fn offers_that_do_not_check_are_ignored() {
        let (keys, genesis, header, cert) = chain();
        let id = |i: usize| ValidatorId(keys[i].public().0);
        let real = offer(&header, &cert, b"state");
        // A certificate of another block; piece hashes that are not the digest's; a length
        // that does not match the pieces; a stranger's offer.
        let mut other_block = header.clone();
        other_block.time_ms += 1;
        let uncertified = OfferedCheckpoint {
            header: other_block,
            ..real.clone()
        };
        let mut bad_pieces = real.clone();
        bad_pieces.pieces = BoundedVec::new(piece_hashes(b"other")).expect("few");
        let mut bad_len = real.clone();
        bad_len.len = SNAPSHOT_CHUNK_BYTES as u64 + 1;
        let mut offers = Offers::default();
        for (i, bad) in [uncertified, bad_pieces, bad_len].into_iter().enumerate() {
            offers.add(&genesis, id(i), vec![bad]);
        }
        offers.add(&genesis, ValidatorId([9; 32]), vec![real.clone()]);
        assert!(offers.by_peer.values().all(Vec::is_empty));
        assert!(!offers.by_peer.contains_key(&ValidatorId([9; 32])));
        assert!(offers.believed(&genesis, &BTreeSet::new()).is_none());
    }

    #[test]
    fn a_digest_commits_to_every_piece_and_their_order() {
        let bytes: Vec<u8> = (0..SNAPSHOT_CHUNK_BYTES * 2 + 10)
            .map(|i| (i % 251) as u8)
            .collect();
        let pieces = piece_hashes(&bytes);
        assert_eq!(pieces.len(), 3, "two whole pieces and a short one");
        let digest = digest_of(&pieces);
        let mut changed = bytes.clone();
        changed[SNAPSHOT_CHUNK_BYTES + 7] ^= 1;
        let changed_pieces = piece_hashes(&changed);
        assert_eq!(changed_pieces[0], pieces[0]);
        assert_ne!(
            changed_pieces[1], pieces[1],
            "the changed piece's hash changes"
        );
        assert_ne!(digest_of(&changed_pieces), digest);
        let swapped = vec![pieces[1], pieces[0], pieces[2]];
        assert_ne!(digest_of(&swapped), digest, "order counts");
    }
}

//! Joining from a snapshot: a validator whose disk was wiped, or a new one, starts from a
//! checkpoint of the chain's state fetched from its peers, plus the blocks after it, instead of
//! replaying the whole chain.
//!
//! Checkpoints fall at heights that are a function of the chain ([`crate::checkpoint`]) and
//! their bytes are a function of the chain up to them, so honest validators hold identical
//! checkpoints at the same heights. A block header says nothing about the state, so the joiner
//! believes a checkpoint only when validators of more than a third of the voting power (at least
//! one honest one, with `f` byzantine) offer the same digest for the same certified block. It
//! then fetches the bytes piece by piece, checks them against the digest, decodes them, checks
//! that the ledger they hold ends at that very block, and installs them in its store
//! ([`bmpls_store::Store::install_base`]) in one durable batch. Consensus then starts at the
//! next height and catches up with ordinary sync.
//!
//! What this costs: the node holds no block at or below the base, so it cannot answer what
//! only those blocks prove (records, audits and grant or fence proofs from before it); it
//! refuses such questions and the client asks another validator (`crate::answer`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use bmpls_consensus::{
    Genesis, MAX_SNAPSHOT_BYTES, Message, OfferedCheckpoint, SNAPSHOT_CHUNK_BYTES,
};
use bmpls_net::{Inbound, PeerSender, Peers};
use bmpls_store::{Base, Store};
use bmpls_types::{
    BlockHash, BlockHeader, BoundedVec, Canonical, CommitCertificate, Hash32, Height, ValidatorId,
};
use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::NodeError;

/// Domain tag of a checkpoint's digest.
const DIGEST_TAG: &[u8] = b"bmpls/checkpoint";
/// How long a joining validator waits for a checkpoint before it starts from the genesis.
pub const JOIN_WAIT: Duration = Duration::from_secs(30);
/// How often the joiner asks again for offers and for missing pieces.
const ASK_EVERY: Duration = Duration::from_secs(1);

/// The digest a checkpoint is offered and checked under.
pub(crate) fn digest(bytes: &[u8]) -> Hash32 {
    bmpls_crypto::hash::tagged_hash(DIGEST_TAG, bytes)
}

/// The checkpoints `store` holds, as offered to a joining peer: each with the certified
/// header of its block. A checkpoint whose header or certificate is missing (a store started
/// from a snapshot holds both at its base) is not offered.
pub(crate) fn offers(store: &Store) -> Result<Vec<OfferedCheckpoint>, bmpls_store::StoreError> {
    let mut offers = Vec::new();
    for height in store.checkpoints()? {
        let (Some(bytes), Some(header), Some(cert)) = (
            store.checkpoint(height)?,
            store.header(height)?,
            store.certificate(height)?,
        ) else {
            continue;
        };
        offers.push(OfferedCheckpoint {
            header,
            cert,
            digest: digest(&bytes),
            len: bytes.len() as u64,
        });
    }
    Ok(offers)
}

/// Answers a peer's offer request on a blocking thread (reading and hashing checkpoints costs
/// milliseconds per megabyte).
pub(crate) fn serve_offers(peer: ValidatorId, store: Arc<Store>, sender: PeerSender) {
    tokio::task::spawn_blocking(move || match offers(&store) {
        Ok(mut offers) => {
            offers.truncate(bmpls_consensus::MAX_OFFERED_CHECKPOINTS);
            let offers = BoundedVec::new(offers).expect("truncated to the bound");
            sender.send(&peer, Message::SnapshotOffer(offers).encode().into());
        }
        Err(e) => warn!(%peer, error = %e, "cannot read checkpoints to offer"),
    });
}

/// Sends piece `index` of the checkpoint at `height` to `peer`, on a blocking thread; nothing
/// if this node holds no such checkpoint or piece.
pub(crate) fn serve_chunk(
    peer: ValidatorId,
    (height, index): (Height, u32),
    store: Arc<Store>,
    sender: PeerSender,
) {
    tokio::task::spawn_blocking(move || {
        let bytes = match store.checkpoint(height) {
            Ok(Some(bytes)) => bytes,
            Ok(None) => return,
            Err(e) => {
                warn!(%peer, height = height.0, error = %e, "cannot read a checkpoint to send");
                return;
            }
        };
        let start = index as usize * SNAPSHOT_CHUNK_BYTES;
        let Some(piece) = bytes.get(start..) else {
            return;
        };
        if sender.queued_bytes(&peer) >= bmpls_net::limits::MAX_SYNC_QUEUED_BYTES_PER_PEER {
            return;
        }
        let piece = piece[..piece.len().min(SNAPSHOT_CHUNK_BYTES)].to_vec();
        let piece = BoundedVec::new(piece).expect("at most a chunk");
        sender.send(
            &peer,
            Message::SnapshotChunk(height, index, piece).encode().into(),
        );
    });
}

/// Which checkpoint, as offered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    height: Height,
    block: BlockHash,
    digest: Hash32,
    len: u64,
}

/// The offers received so far: by checkpoint, who offered it, and a certified header of it.
#[derive(Default)]
struct Offers {
    by_key: BTreeMap<Key, (BTreeSet<ValidatorId>, BlockHeader, CommitCertificate)>,
    answered: BTreeSet<ValidatorId>,
}

impl Offers {
    /// Counts `from`'s offer, each checkpoint only if its header's certificate verifies.
    fn add(&mut self, genesis: &Genesis, from: ValidatorId, offered: Vec<OfferedCheckpoint>) {
        if !self.answered.insert(from) {
            return;
        }
        for offer in offered {
            let checked = bmpls_crypto::verify_header(
                offer.header.clone(),
                &offer.cert,
                genesis.validators.crypto(),
            );
            if let Err(e) = checked {
                warn!(peer = %from, height = offer.header.height.0, error = %e,
                    "offered a checkpoint of an uncertified block; ignored");
                continue;
            }
            if offer.len == 0 || offer.len > MAX_SNAPSHOT_BYTES {
                continue;
            }
            let key = Key {
                height: offer.header.height,
                block: bmpls_crypto::hash::block_hash(&offer.header),
                digest: offer.digest,
                len: offer.len,
            };
            self.by_key
                .entry(key)
                .or_insert_with(|| (BTreeSet::new(), offer.header, offer.cert))
                .0
                .insert(from);
        }
    }

    /// The highest checkpoint offered by validators of more than a third of the voting power
    /// (so by an honest one), with its certified header and its offerers.
    fn believed(
        &self,
        genesis: &Genesis,
    ) -> Option<(Key, BlockHeader, CommitCertificate, Vec<ValidatorId>)> {
        let set = genesis.validators.crypto();
        self.by_key
            .iter()
            .rev()
            .find(|(_, (who, _, _))| {
                let power: u64 = who
                    .iter()
                    .filter_map(|id| set.get(id).map(|(_, v)| v.power))
                    .sum();
                u128::from(power) * 3 > u128::from(set.total_power())
            })
            .map(|(key, (who, header, cert))| {
                (
                    *key,
                    header.clone(),
                    cert.clone(),
                    who.iter().copied().collect(),
                )
            })
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

/// Fetches a checkpoint from the peers and installs it in the empty `store`: the height it
/// starts after, or `None` if no checkpoint was offered by more than a third of the voting
/// power within `wait` (the node then starts from the genesis and syncs every block). Peer
/// messages other than offers and pieces are dropped meanwhile: consensus has not started, and
/// catches up by sync once it has.
pub(crate) async fn join(
    genesis: &Genesis,
    store: &Store,
    peers: &Peers,
    inbound: &mut mpsc::Receiver<Inbound>,
    wait: Duration,
) -> Result<Option<Height>, NodeError> {
    let deadline = tokio::time::Instant::now() + wait;
    let mut offers = Offers::default();
    let mut refused: BTreeSet<ValidatorId> = BTreeSet::new();
    info!("joining from a snapshot: asking the peers for their checkpoints");
    loop {
        // Offers first, until one is believed.
        let (key, header, cert, offerers) = loop {
            if let Some(found) = offers.believed(genesis) {
                let usable: Vec<_> = found.3.iter().filter(|p| !refused.contains(p)).collect();
                if !usable.is_empty() {
                    break found;
                }
            }
            peers.broadcast(Message::SnapshotRequest.encode().into());
            let until = (tokio::time::Instant::now() + ASK_EVERY).min(deadline);
            while let Some(inbound) = receive(inbound, until).await {
                if let Ok(Message::SnapshotOffer(offered)) = Message::decode(&inbound.bytes) {
                    offers.add(genesis, inbound.from, offered.into_inner());
                }
            }
            if tokio::time::Instant::now() >= deadline {
                warn!(
                    answered = offers.answered.len(),
                    "no checkpoint offered by more than a third of the voting power; starting \
                     from the genesis and syncing every block"
                );
                return Ok(None);
            }
        };
        let sources: Vec<ValidatorId> = offerers
            .into_iter()
            .filter(|p| !refused.contains(p))
            .collect();
        let source = sources[0];
        info!(height = key.height.0, bytes = key.len, peer = %source, "fetching a checkpoint");
        match fetch(peers, inbound, (source, key), deadline).await {
            Some(bytes) if digest(&bytes) == key.digest => {
                install(genesis, store, (&header, &cert), &bytes)?;
                info!(
                    height = key.height.0,
                    bytes = bytes.len(),
                    "joined from a snapshot"
                );
                return Ok(Some(key.height));
            }
            Some(_) => {
                warn!(peer = %source, height = key.height.0,
                    "the checkpoint's bytes do not match the digest offered; asking another");
                refused.insert(source);
            }
            None if tokio::time::Instant::now() >= deadline => {
                warn!("the checkpoint did not arrive in time; starting from the genesis");
                return Ok(None);
            }
            None => {
                refused.insert(source);
            }
        }
    }
}

/// The next inbound message before `until`, if any.
async fn receive(
    inbound: &mut mpsc::Receiver<Inbound>,
    until: tokio::time::Instant,
) -> Option<Inbound> {
    tokio::time::timeout_at(until, inbound.recv())
        .await
        .ok()
        .flatten()
}

/// The bytes of the checkpoint `key` from `source`, piece by piece (each asked again if it
/// has not come within [`ASK_EVERY`]); `None` if `source` stops answering for ten rounds or
/// `deadline` passes.
async fn fetch(
    peers: &Peers,
    inbound: &mut mpsc::Receiver<Inbound>,
    (source, key): (ValidatorId, Key),
    deadline: tokio::time::Instant,
) -> Option<Vec<u8>> {
    let len = usize::try_from(key.len).ok()?;
    let pieces = len.div_ceil(SNAPSHOT_CHUNK_BYTES);
    let mut bytes = vec![0u8; len];
    let mut missing: BTreeSet<u32> = (0..pieces as u32).collect();
    let mut silent_rounds = 0;
    while !missing.is_empty() {
        // A few pieces in flight at once, so that one link's window is kept busy.
        for &index in missing.iter().take(4) {
            peers.send(
                &source,
                Message::SnapshotChunkRequest(key.height, index)
                    .encode()
                    .into(),
            );
        }
        let until = (tokio::time::Instant::now() + ASK_EVERY).min(deadline);
        let mut progressed = false;
        while let Some(inbound) = receive(inbound, until).await {
            if inbound.from != source {
                continue;
            }
            let Ok(Message::SnapshotChunk(height, index, piece)) = Message::decode(&inbound.bytes)
            else {
                continue;
            };
            if height != key.height || !missing.contains(&index) {
                continue;
            }
            let start = index as usize * SNAPSHOT_CHUNK_BYTES;
            let expected = (len - start).min(SNAPSHOT_CHUNK_BYTES);
            if piece.len() != expected {
                warn!(peer = %source, index, "a checkpoint piece of the wrong length");
                return None;
            }
            bytes[start..start + expected].copy_from_slice(&piece);
            missing.remove(&index);
            progressed = true;
            if missing.is_empty() {
                break;
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        silent_rounds = if progressed { 0 } else { silent_rounds + 1 };
        if silent_rounds >= 10 {
            warn!(peer = %source, "stopped sending checkpoint pieces");
            return None;
        }
    }
    Some(bytes)
}

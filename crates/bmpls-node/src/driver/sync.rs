//! Answers to peers' sync requests, served off the core task. Reading and reassembling a batch
//! of blocks costs tens of milliseconds and megabytes each, so a request is first admitted
//! here: only above the height the peer showed it has reached (its own signed votes and
//! proposals), not while the same request is being served, at most
//! [`MAX_SYNC_IN_FLIGHT_PER_PEER`] at once and within a per-peer token bucket
//! ([`SYNC_REQUESTS_PER_PEER_PER_S`], [`SYNC_BURST`]). The batch is then read on a blocking
//! thread and queued for the peer until its queue holds [`MAX_SYNC_QUEUED_BYTES_PER_PEER`].

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bmpls_consensus::{Message, SYNC_BATCH};
use bmpls_net::PeerSender;
use bmpls_net::limits::{
    MAX_SYNC_IN_FLIGHT_PER_PEER, MAX_SYNC_QUEUED_BYTES_PER_PEER, SYNC_BURST,
    SYNC_REQUESTS_PER_PEER_PER_S,
};
use bmpls_store::Store;
use bmpls_types::{Canonical, Height, ValidatorId};
use tracing::warn;

use crate::metrics::{Metrics, Reason};

/// Why a sync request was not served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum SyncDrop {
    /// It asks for nothing above what the peer has shown it holds, or above this tip.
    NothingNew,
    /// The same request is being served.
    Duplicate,
    /// The peer has [`MAX_SYNC_IN_FLIGHT_PER_PEER`] requests being served.
    InFlight,
    /// The peer's token bucket is empty.
    RateLimited,
}

impl SyncDrop {
    pub(super) fn label(self) -> &'static str {
        match self {
            Self::NothingNew => "nothing_new",
            Self::Duplicate => "duplicate",
            Self::InFlight => "in_flight",
            Self::RateLimited => "rate_limited",
        }
    }
}

#[derive(Debug)]
struct PeerSync {
    tokens: u32,
    refilled: Instant,
    /// The height of the peer's latest own vote or proposal: it holds every block below.
    proven: u64,
}

impl PeerSync {
    /// Refills the bucket for the time passed and takes a token from it.
    fn take_token(&mut self, now: Instant) -> Result<(), SyncDrop> {
        let per_token_ms = 1000 / u64::from(SYNC_REQUESTS_PER_PEER_PER_S);
        let earned = now.saturating_duration_since(self.refilled).as_millis() as u64 / per_token_ms;
        if earned > 0 {
            self.tokens = (u64::from(self.tokens) + earned).min(u64::from(SYNC_BURST)) as u32;
            self.refilled = now;
        }
        if self.tokens == 0 {
            return Err(SyncDrop::RateLimited);
        }
        self.tokens -= 1;
        Ok(())
    }
}

type InFlight = Arc<Mutex<HashMap<ValidatorId, HashSet<u64>>>>;

/// The admission state of every peer's sync requests.
#[derive(Debug, Default)]
pub(super) struct SyncServer {
    peers: HashMap<ValidatorId, PeerSync>,
    in_flight: InFlight,
}

/// Removes a served request from the in-flight set when its task ends, however it ends.
struct Serving {
    in_flight: InFlight,
    peer: ValidatorId,
    start: u64,
}

impl Drop for Serving {
    fn drop(&mut self) {
        let mut in_flight = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(set) = in_flight.get_mut(&self.peer) {
            set.remove(&self.start);
        }
    }
}

impl SyncServer {
    fn peer(&mut self, peer: ValidatorId, now: Instant) -> &mut PeerSync {
        self.peers.entry(peer).or_insert(PeerSync {
            tokens: SYNC_BURST,
            refilled: now,
            proven: 0,
        })
    }

    /// The peer sent its own vote or proposal at `height`, so it holds every block below. The
    /// latest counts, not the highest: a validator restarted on an empty disk votes low again.
    pub(super) fn note_height(&mut self, peer: ValidatorId, height: u64, now: Instant) {
        self.peer(peer, now).proven = height;
    }

    /// Admits `peer`'s request for blocks from `from` on, given this node's `tip`: the heights
    /// to send, or why not.
    pub(super) fn admit(
        &mut self,
        peer: ValidatorId,
        from: u64,
        tip: u64,
        now: Instant,
    ) -> Result<(u64, u64), SyncDrop> {
        let in_flight = self.in_flight.clone();
        let state = self.peer(peer, now);
        let start = from.max(state.proven).max(1);
        let end = tip.min(start.saturating_add(SYNC_BATCH - 1));
        if start > end {
            return Err(SyncDrop::NothingNew);
        }
        let mut in_flight = in_flight.lock().unwrap_or_else(|e| e.into_inner());
        let serving = in_flight.entry(peer).or_default();
        if serving.contains(&start) {
            return Err(SyncDrop::Duplicate);
        }
        if serving.len() >= MAX_SYNC_IN_FLIGHT_PER_PEER {
            return Err(SyncDrop::InFlight);
        }
        state.take_token(now)?;
        serving.insert(start);
        Ok((start, end))
    }

    /// Admits `peer`'s snapshot request (an offer, or a piece of a checkpoint) within the
    /// same token bucket as its sync requests.
    pub(super) fn admit_snapshot(
        &mut self,
        peer: ValidatorId,
        now: Instant,
    ) -> Result<(), SyncDrop> {
        self.peer(peer, now).take_token(now)
    }

    /// Reads blocks `start..=end` on a blocking thread and queues each for `peer`, stopping
    /// when its queue holds [`MAX_SYNC_QUEUED_BYTES_PER_PEER`].
    pub(super) fn serve(
        &self,
        (peer, start, end): (ValidatorId, u64, u64),
        store: Arc<Store>,
        sender: PeerSender,
        metrics: Arc<Metrics>,
    ) {
        let serving = Serving {
            in_flight: self.in_flight.clone(),
            peer,
            start,
        };
        tokio::task::spawn_blocking(move || {
            let _serving = serving;
            for height in start..=end {
                if sender.queued_bytes(&peer) >= MAX_SYNC_QUEUED_BYTES_PER_PEER {
                    metrics
                        .sync_dropped
                        .get_or_create(&Reason {
                            reason: "queued_bytes".into(),
                        })
                        .inc();
                    return;
                }
                let read = store
                    .block(Height(height))
                    .and_then(|b| Ok((b, store.certificate(Height(height))?)));
                let (block, cert) = match read {
                    Ok((Some(block), Some(cert))) => (block, cert),
                    Ok(_) => return,
                    Err(e) => {
                        warn!(height, error = %e, "cannot read a block to sync a peer");
                        return;
                    }
                };
                let message = Message::SyncResponse(Box::new(block), cert);
                if !sender.send(&peer, message.encode().into()) {
                    return;
                }
                metrics.sync_served_blocks.inc();
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const PEER: ValidatorId = ValidatorId([4; 32]);

    #[test]
    fn a_flood_is_served_up_to_the_burst_then_at_the_rate() {
        let mut sync = SyncServer::default();
        let t0 = Instant::now();
        let served: Vec<_> = (0..100)
            .map(|i| sync.admit(PEER, 1 + i * SYNC_BATCH, 10_000, t0))
            .collect();
        // Two at once (the in-flight cap), then nothing while they are served.
        assert_eq!(served.iter().filter(|r| r.is_ok()).count(), 2);
        assert_eq!(served[2], Err(SyncDrop::InFlight));
        // With nothing in flight, the bucket limits: the burst, then one per 1/rate s.
        sync.in_flight.lock().expect("lock").clear();
        let mut ok = 2;
        for i in 0..100 {
            if sync.admit(PEER, 1 + i * SYNC_BATCH, 10_000, t0).is_ok() {
                ok += 1;
            }
            sync.in_flight.lock().expect("lock").clear();
        }
        assert_eq!(ok, SYNC_BURST, "the burst, no more");
        assert_eq!(sync.admit(PEER, 1, 10_000, t0), Err(SyncDrop::RateLimited));
        let later = t0 + Duration::from_millis(1000 / u64::from(SYNC_REQUESTS_PER_PEER_PER_S));
        assert!(sync.admit(PEER, 1, 10_000, later).is_ok(), "a token earned");
        assert_eq!(
            sync.admit(PEER, 17, 10_000, later),
            Err(SyncDrop::RateLimited)
        );
    }

    #[test]
    fn a_request_in_flight_is_not_served_twice() {
        let mut sync = SyncServer::default();
        let now = Instant::now();
        assert_eq!(sync.admit(PEER, 5, 100, now), Ok((5, 5 + SYNC_BATCH - 1)));
        assert_eq!(sync.admit(PEER, 5, 100, now), Err(SyncDrop::Duplicate));
        // Once served, it may be asked again.
        drop(Serving {
            in_flight: sync.in_flight.clone(),
            peer: PEER,
            start: 5,
        });
        assert!(sync.admit(PEER, 5, 100, now).is_ok());
    }

    #[test]
    fn only_heights_above_what_the_peer_showed_and_up_to_the_tip_are_served() {
        let mut sync = SyncServer::default();
        let now = Instant::now();
        sync.note_height(PEER, 50, now);
        assert_eq!(
            sync.admit(PEER, 1, 60, now),
            Ok((50, 60)),
            "from its vote's height to the tip"
        );
        assert_eq!(sync.admit(PEER, 61, 60, now), Err(SyncDrop::NothingNew));
        // Voting low again (an empty disk) lets it ask from there.
        sync.note_height(PEER, 1, now);
        assert_eq!(sync.admit(PEER, 1, 60, now), Ok((1, SYNC_BATCH)));
    }
}

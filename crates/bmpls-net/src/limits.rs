//! Every bound of the network layer, named. Constants that depend on each other are asserted
//! together at the bottom.

use std::time::Duration;

use bmpls_types::limits::{MAX_BLOCK_BYTES, MAX_CERTIFICATE_BYTES, MAX_HEADER_BYTES, MAX_TX_BYTES};

/// ALPN protocol id of every bmpls connection.
pub const ALPN: &[u8] = b"bmpls/1";

/// Largest validator ↔ validator frame: a consensus message carrying a whole block and its
/// certificate, with room for the envelope.
pub const MAX_PEER_FRAME_BYTES: usize = MAX_BLOCK_BYTES + MAX_CERTIFICATE_BYTES + 64 * 1024;

/// Largest client request frame (a batch of submissions).
pub const MAX_REQUEST_BYTES: usize = 4 * 1024 * 1024;

/// Largest answer a node sends a client.
pub const MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

/// Transactions one submission may carry (a phone that was offline sends its backlog at once).
pub const MAX_SUBMIT_BATCH: usize = 1024;

/// A connection with no traffic for this long is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Keep-alive pings, well inside the idle timeout, so quiet links stay open — and well inside
/// the 30 s a mobile network's NAT binding commonly lasts, so a phone's connection survives
/// its silences.
pub const KEEP_ALIVE: Duration = Duration::from_secs(5);

/// Concurrent requests (bidirectional streams) one client connection may have open.
pub const MAX_CLIENT_STREAMS: u32 = 256;

/// Concurrent messages (unidirectional streams) one peer connection may have open.
pub const MAX_PEER_STREAMS: u32 = 1024;

/// Messages queued for one peer; when full, new ones are dropped (consensus re-sends).
pub const PEER_QUEUE: usize = 4096;

/// Messages received from all peers, waiting for the node.
pub const INBOUND_QUEUE: usize = 8192;

/// First wait before redialling a peer or a node; doubles up to [`BACKOFF_MAX`].
pub const BACKOFF_MIN: Duration = Duration::from_millis(50);

/// Longest wait between dials.
pub const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// How far a request's timestamp may be from the node's clock, either way.
pub const CLOCK_WINDOW_MS: u64 = 30_000;

/// How long a request nonce is remembered: a request sent at `now + window` is still
/// acceptable until `now + 2 × window`.
pub const NONCE_LIFETIME_MS: u64 = 2 * CLOCK_WINDOW_MS;

/// Sustained requests per second per client key.
pub const CLIENT_RATE_PER_S: u32 = 200;

/// Requests a client key may make in a burst above the sustained rate.
pub const CLIENT_BURST: u32 = 400;

/// Nonces remembered for one key the node knows (an enrolled patient's or carer's key, a
/// validator's): as many as the key's rate allows in a nonce's lifetime, so this cap never
/// binds before the rate limit does. When any nonce cap is reached, requests are refused as
/// busy rather than forgetting a nonce early.
pub const MAX_NONCES_PER_KEY: usize =
    CLIENT_BURST as usize + CLIENT_RATE_PER_S as usize * (NONCE_LIFETIME_MS / 1000) as usize;

/// Nonces remembered for all known keys together.
pub const MAX_KNOWN_NONCES: usize = 1 << 20;

/// Nonces remembered for one key the node does not know: nobody enrolled it, so it is anyone's
/// and it is limited hardest (a few requests per nonce lifetime: a status check, a first try).
pub const MAX_NONCES_PER_UNKNOWN_KEY: usize = 16;

/// Nonces remembered for all unknown keys together: a flood of fresh keys fills this table
/// alone, never the known keys' one.
pub const MAX_UNKNOWN_NONCES: usize = 1 << 16;

/// Client keys whose rate is tracked; the least recently seen are forgotten first.
pub const MAX_TRACKED_CLIENTS: usize = 100_000;

/// How long a dial may take before it counts as failed.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// How long closing an endpoint waits for its peers to acknowledge.
pub const CLOSE_WAIT: Duration = Duration::from_millis(500);

/// How long a client waits for an answer before giving up on the request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Sync requests a peer may have answered per second, on average (a catching-up validator asks
/// one per batch of blocks it applied).
pub const SYNC_REQUESTS_PER_PEER_PER_S: u32 = 8;

/// Sync requests a peer may have answered at once after a quiet spell.
pub const SYNC_BURST: u32 = 8;

/// Sync requests of one peer being read from the store at once; a further one is dropped.
pub const MAX_SYNC_IN_FLIGHT_PER_PEER: usize = 2;

/// Bytes waiting in a peer's send queue above which sync answers to it stop (the rest of the
/// batch is dropped, and the peer asks again): a slow or flooding peer cannot make the node
/// hold more than this for it. Consensus messages are queued whatever the level.
pub const MAX_SYNC_QUEUED_BYTES_PER_PEER: usize = 2 * MAX_PEER_FRAME_BYTES;

/// Standing fences one [`crate::query::FenceEvidence`] proves; past them the answer says
/// `more`. Each is a whole `SetFence` (at most [`MAX_TX_BYTES`]) in its own block, so all of
/// them, their blocks' certificates and the enrolment fit one response.
pub const MAX_PROVED_FENCES: usize = 32;

/// Watchers (open alert long polls) one carer may hold on a node; one more is answered at once.
pub const MAX_WATCHERS_PER_CARER: usize = 16;

/// Watchers a node holds in all; one more is answered at once.
pub const MAX_WATCHERS: usize = 65_536;

const _: () = assert!(MAX_REQUEST_BYTES >= 2 * MAX_TX_BYTES);
// A fence answer at its bound: the fences and the enrolment, each with its proof (at most
// 64 hashes of 32 bytes) in a certified block of its own, and the certified tip.
const _: () = assert!(
    (MAX_PROVED_FENCES + 2) * (MAX_TX_BYTES + 64 * 32 + MAX_HEADER_BYTES + MAX_CERTIFICATE_BYTES)
        < MAX_RESPONSE_BYTES
);
const _: () = assert!(SYNC_BURST >= 1 && SYNC_REQUESTS_PER_PEER_PER_S >= 1);
const _: () = assert!(MAX_SYNC_IN_FLIGHT_PER_PEER >= 1);
// One whole block always fits, so a catching-up peer makes progress.
const _: () = assert!(MAX_SYNC_QUEUED_BYTES_PER_PEER >= MAX_PEER_FRAME_BYTES);
const _: () = assert!(MAX_WATCHERS_PER_CARER >= 1 && MAX_WATCHERS >= 64 * MAX_WATCHERS_PER_CARER);
const _: () = assert!(MAX_PEER_FRAME_BYTES > MAX_BLOCK_BYTES);
const _: () = assert!(KEEP_ALIVE.as_millis() * 3 <= IDLE_TIMEOUT.as_millis());
// Under the 30 s a NAT binding on a mobile network commonly lasts (see `KEEP_ALIVE`).
const _: () = assert!(KEEP_ALIVE.as_secs() < 30);
const _: () = assert!(BACKOFF_MIN.as_millis() < BACKOFF_MAX.as_millis());
const _: () = assert!(CLIENT_BURST >= CLIENT_RATE_PER_S);
const _: () = assert!(NONCE_LIFETIME_MS >= 2 * CLOCK_WINDOW_MS);
// A known key at full rate fits its own cap, and many such keys fit the known keys' table.
const _: () = assert!(
    MAX_NONCES_PER_KEY as u64
        >= CLIENT_BURST as u64 + CLIENT_RATE_PER_S as u64 * NONCE_LIFETIME_MS / 1000
);
const _: () = assert!(MAX_KNOWN_NONCES >= 64 * MAX_NONCES_PER_KEY);
// Unknown keys are limited harder than known ones, each and together.
const _: () = assert!(MAX_NONCES_PER_UNKNOWN_KEY < MAX_NONCES_PER_KEY);
const _: () = assert!(MAX_UNKNOWN_NONCES >= 1024 * MAX_NONCES_PER_UNKNOWN_KEY);
const _: () = assert!(MAX_UNKNOWN_NONCES < MAX_KNOWN_NONCES);

/// Bytes asked for each UDP socket's receive and send buffers. The default (about 208 KiB on
/// Linux) overflows when a block of a few hundred KiB or a query answer arrives while the
/// receiving task is busy; every dropped datagram costs a QUIC loss recovery of tens of
/// milliseconds. The kernel caps the request at `net.core.rmem_max`/`wmem_max`.
pub const UDP_BUFFER_BYTES: usize = 4 << 20;

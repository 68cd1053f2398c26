//! Every bound of the network layer, named. Constants that depend on each other are asserted
//! together at the bottom.

use std::time::Duration;

use bmpls_types::limits::{MAX_BLOCK_BYTES, MAX_CERTIFICATE_BYTES, MAX_TX_BYTES};

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

/// Keep-alive pings, well inside the idle timeout, so quiet links stay open.
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

/// Request nonces remembered (each for [`CLOCK_WINDOW_MS`] either side); when full, requests
/// are refused as busy rather than forgetting a nonce early.
pub const MAX_NONCES: usize = 1 << 20;

/// Sustained requests per second per client key.
pub const CLIENT_RATE_PER_S: u32 = 200;

/// Requests a client key may make in a burst above the sustained rate.
pub const CLIENT_BURST: u32 = 400;

/// Client keys whose rate is tracked; the least recently seen are forgotten first.
pub const MAX_TRACKED_CLIENTS: usize = 100_000;

/// How long a dial may take before it counts as failed.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// How long closing an endpoint waits for its peers to acknowledge.
pub const CLOSE_WAIT: Duration = Duration::from_millis(500);

/// How long a client waits for an answer before giving up on the request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

const _: () = assert!(MAX_REQUEST_BYTES >= 2 * MAX_TX_BYTES);
const _: () = assert!(MAX_PEER_FRAME_BYTES > MAX_BLOCK_BYTES);
const _: () = assert!(KEEP_ALIVE.as_millis() * 3 <= IDLE_TIMEOUT.as_millis());
const _: () = assert!(BACKOFF_MIN.as_millis() < BACKOFF_MAX.as_millis());
const _: () = assert!(CLIENT_BURST >= CLIENT_RATE_PER_S);

/// Bytes asked for each UDP socket's receive and send buffers. The default (about 208 KiB on
/// Linux) overflows when a block of a few hundred KiB or a query answer arrives while the
/// receiving task is busy; every dropped datagram costs a QUIC loss recovery of tens of
/// milliseconds. The kernel caps the request at `net.core.rmem_max`/`wmem_max`.
pub const UDP_BUFFER_BYTES: usize = 4 << 20;

//! The network of bmpls, on QUIC (quinn) with TLS 1.3 (rustls, ring provider), ALPN `bmpls/1`.
//!
//! - [`tls`]: the consortium's trust: its CA, the names that bind a certificate to a genesis
//!   validator, and the four endpoint configurations (validator ↔ validator with mutual TLS,
//!   client → validator with the CA pinned).
//! - [`certs`]: a CA and validator certificates generated with rcgen (`bmpls certs`).
//! - [`frame`]: length-prefixed frames with a size limit.
//! - [`proto`]: what clients ask and nodes answer, and the signed envelope of every request.
//! - [`peers`]: a validator's links to the others: one dialer per peer with backoff, one
//!   listener; messages are opaque bytes (the node encodes them).
//! - [`server`] and [`client`]: one request per bidirectional stream, checked by [`guard`]
//!   (signature, clock window, nonce, rate) before the node sees it.
//!
//! Every limit is a named constant in [`limits`].
#![forbid(unsafe_code)]

pub mod alert;
pub mod certs;
pub mod client;
pub mod frame;
pub mod guard;
pub mod limits;
pub mod peers;
pub mod proto;
pub mod query;
pub mod server;
pub mod tls;
mod udp;

pub use client::{Client, ClientError, WireStats};
pub use frame::FrameError;
pub use peers::{Inbound, PeerConfig, PeerSender, Peers};
pub use proto::{
    Envelope, GrantSummary, GrantsAsked, GrantsOutcome, NextSeqOutcome, NodeStatus, RefusalCode,
    Request, RequestError, Response, Submitted,
};
pub use server::{ClientServer, Handler};
pub use tls::{Identity, TlsError, Trust};

/// An error starting or running an endpoint.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// TLS material could not be loaded or used.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// A socket could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

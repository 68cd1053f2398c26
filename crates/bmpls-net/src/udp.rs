//! QUIC endpoints on UDP sockets with large buffers (see [`crate::limits::UDP_BUFFER_BYTES`]).

use std::net::SocketAddr;
use std::sync::Arc;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use socket2::{Domain, Protocol, Socket, Type};

use crate::limits::UDP_BUFFER_BYTES;

/// The keys of a server endpoint's QUIC stateless resets and connection ids, the same across
/// restarts. quinn's defaults are random per endpoint: a validator restarted after a crash
/// then drops its peers' packets on the connections they still hold to its former self (their
/// connection ids no longer validate) and could not reset them anyway (its tokens would not
/// match), so each peer keeps sending into the dead connection until the idle timeout (30 s).
/// The nemesis measured restarted validators catching up only after that. With both keys
/// derived from the endpoint's TLS private key, the first packet a peer sends on its stale
/// connection is answered with a reset it accepts, and it redials at once.
pub(crate) struct ResetKey(Hmac<Sha256>, u64);

impl ResetKey {
    /// The key for an endpoint presenting `secret` (its TLS private key), for `purpose`.
    pub(crate) fn derive(secret: &[u8], purpose: &str) -> Self {
        let mut derive = <Hmac<Sha256> as Mac>::new_from_slice(b"bmpls/v1/quic-stateless-reset")
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        derive.update(purpose.as_bytes());
        derive.update(&[0]);
        derive.update(secret);
        let key = derive.finalize().into_bytes();
        let mut cid_key = [0u8; 8];
        cid_key.copy_from_slice(&key[24..]);
        Self(
            <Hmac<Sha256> as Mac>::new_from_slice(&key[..24])
                .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length")),
            u64::from_le_bytes(cid_key),
        )
    }
}

impl quinn::crypto::HmacKey for ResetKey {
    fn sign(&self, data: &[u8], signature_out: &mut [u8]) {
        let mut mac = self.0.clone();
        mac.update(data);
        let tag = mac.finalize().into_bytes();
        let len = signature_out.len().min(tag.len());
        signature_out[..len].copy_from_slice(&tag[..len]);
    }

    fn signature_len(&self) -> usize {
        32
    }

    fn verify(&self, data: &[u8], signature: &[u8]) -> Result<(), quinn::crypto::CryptoError> {
        let mut mac = self.0.clone();
        mac.update(data);
        mac.verify_slice(signature)
            .map_err(|_| quinn::crypto::CryptoError)
    }
}

/// A quinn endpoint bound to `addr`, serving with `server` if given, resetting stale
/// connections with `reset` if given (random otherwise). The buffer sizes are asked for, not
/// required: a kernel that grants less still works, with more loss under load.
pub(crate) fn endpoint(
    addr: SocketAddr,
    server: Option<quinn::ServerConfig>,
    reset: Option<ResetKey>,
) -> std::io::Result<quinn::Endpoint> {
    let runtime = quinn::default_runtime()
        .ok_or_else(|| std::io::Error::other("no async runtime (call inside tokio)"))?;
    let config = match reset {
        Some(key) => {
            let cid_key = key.1;
            let mut config = quinn::EndpointConfig::new(Arc::new(key));
            config.cid_generator(move || {
                Box::new(quinn_proto::HashedConnectionIdGenerator::from_key(cid_key))
            });
            config
        }
        None => quinn::EndpointConfig::default(),
    };
    quinn::Endpoint::new(config, server, socket(addr)?, runtime)
}

/// Moves `endpoint` to a new socket bound to `addr` (port 0: a fresh one), as a phone's switch
/// from Wi-Fi to cellular moves it; its connections migrate. Returns the new local address.
pub(crate) fn rebind(endpoint: &quinn::Endpoint, addr: SocketAddr) -> std::io::Result<SocketAddr> {
    endpoint.rebind(socket(addr)?)?;
    endpoint.local_addr()
}

fn socket(addr: SocketAddr) -> std::io::Result<std::net::UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    let _ = socket.set_recv_buffer_size(UDP_BUFFER_BYTES);
    let _ = socket.set_send_buffer_size(UDP_BUFFER_BYTES);
    if addr.is_ipv6() {
        socket.set_only_v6(false)?;
    }
    socket.bind(&addr.into())?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

//! QUIC endpoints on UDP sockets with large buffers (see [`crate::limits::UDP_BUFFER_BYTES`]).

use std::net::SocketAddr;

use socket2::{Domain, Protocol, Socket, Type};

use crate::limits::UDP_BUFFER_BYTES;

/// A quinn endpoint bound to `addr`, serving with `server` if given. The buffer sizes are
/// asked for, not required: a kernel that grants less still works, with more loss under load.
pub(crate) fn endpoint(
    addr: SocketAddr,
    server: Option<quinn::ServerConfig>,
) -> std::io::Result<quinn::Endpoint> {
    let runtime = quinn::default_runtime()
        .ok_or_else(|| std::io::Error::other("no async runtime (call inside tokio)"))?;
    quinn::Endpoint::new(
        quinn::EndpointConfig::default(),
        server,
        socket(addr)?,
        runtime,
    )
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

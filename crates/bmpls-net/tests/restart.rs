//! A validator that crashed and restarted on the same address resets, with its first answer,
//! the connections its peers still hold to its former self (a QUIC stateless reset), instead of
//! leaving them to send into nothing until the idle timeout. The nemesis
//! (`crates/bmpls-nemesis`) measured restarted validators catching up only after that timeout.

use std::net::SocketAddr;
use std::time::Duration;

use bmpls_crypto::SigningKey;
use bmpls_net::certs::Ca;
use bmpls_net::tls::{peer_client, validator_dns_name};
use bmpls_net::{Identity, PeerConfig, Peers, Trust};
use bmpls_types::{ChainId, ValidatorId};

fn id(seed: u8) -> ValidatorId {
    ValidatorId(SigningKey::from_seed(&[seed; 32]).public().0)
}

#[test]
fn a_restarted_validator_resets_its_peers_stale_connections() {
    let chain = ChainId::new("bmpls-restart").expect("short");
    let (server, client) = (id(1), id(2));
    let ca = Ca::generate("bmpls-restart").expect("CA");
    let trust = Trust::from_pem(&ca.pem().cert, &chain, &[server, client]).expect("trust");
    let identity = |name: &str, who: &ValidatorId| {
        let pem = ca.issue_validator(name, who).expect("certificate");
        Identity::from_pem(&pem.cert, &pem.key).expect("identity")
    };
    let server_identity = identity("node1", &server);
    let client_identity = identity("node2", &client);
    let config = |listen: SocketAddr| PeerConfig {
        me: server,
        listen,
        identity: server_identity.clone(),
        trust: trust.clone(),
        peers: Vec::new(),
    };

    // The validator's first life, on a runtime of its own so that it can die without a word
    // (as under kill -9: no close frame).
    let first_life = tokio::runtime::Runtime::new().expect("runtime");
    let (peers, _inbound) = first_life
        .block_on(async { Peers::start(config(SocketAddr::from(([127, 0, 0, 1], 0)))) })
        .expect("listens");
    let addr = peers.local_addr().expect("bound");
    first_life.spawn(async move {
        let _alive = peers;
        std::future::pending::<()>().await;
    });

    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let connection = runtime.block_on(async {
        let endpoint =
            quinn::Endpoint::client(SocketAddr::from(([127, 0, 0, 1], 0))).expect("endpoint");
        let config = peer_client(&client_identity, &trust, &server).expect("client config");
        endpoint
            .connect_with(config, addr, &validator_dns_name(&server))
            .expect("dial")
            .await
            .expect("handshake")
    });

    // Every task dropped unpolled: the socket closes and nothing more is sent.
    first_life.shutdown_timeout(Duration::from_secs(5));
    let (_second_life, _inbound) = runtime
        .block_on(async { Peers::start(config(addr)) })
        .expect("listens again on the same address");

    let closed = runtime.block_on(async {
        // A packet on the stale connection, as a peer's next message would be.
        if let Ok(mut stream) = connection.open_uni().await {
            let _ = stream.write_all(b"still there?").await;
        }
        // Far below the 30 s idle timeout: without the reset this waits it out.
        tokio::time::timeout(Duration::from_secs(10), connection.closed()).await
    });
    assert!(
        matches!(closed, Ok(quinn::ConnectionError::Reset)),
        "the stale connection is reset at once: {closed:?}"
    );
}

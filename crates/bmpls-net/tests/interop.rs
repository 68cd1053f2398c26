//! Interoperability with an independent QUIC/TLS implementation: a client built on aioquic
//! (Python; its certificate parser is strict DER) completes the handshake with ALPN `bmpls/1`
//! against a node's client listener, pinning the consortium CA; a garbage request gets a typed
//! error, and the node keeps serving. Skipped, with a message, where python3 or aioquic is
//! missing (`pip install aioquic`).

use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;

use bmpls_crypto::SigningKey;
use bmpls_net::certs::Ca;
use bmpls_net::guard::KnownClients;
use bmpls_net::tls::validator_dns_name;
use bmpls_net::{
    Client, ClientServer, Handler, Identity, NodeStatus, Request, RequestError, Response, Trust,
};
use bmpls_types::{BoundedString, Canonical, Hash32, PublicKeyBytes, ValidatorId};

/// Answers every request with a fixed status.
struct Status;

impl Handler for Status {
    async fn handle(&self, _client: PublicKeyBytes, _request: Request) -> Response {
        Response::Status(NodeStatus {
            chain_id: BoundedString::new("bmpls-interop").expect("short"),
            height: 7,
            tip: Hash32([0; 32]),
            mempool: 0,
        })
    }
}

fn aioquic_available() -> bool {
    Command::new("python3")
        .args(["-c", "import aioquic"])
        .output()
        .is_ok_and(|out| out.status.success())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aioquic_client_handshakes_and_is_refused_a_garbage_request() {
    if !aioquic_available() {
        eprintln!("skipped: python3 with aioquic is not installed (pip install aioquic)");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = Ca::generate("bmpls-interop").expect("CA");
    let id = ValidatorId(SigningKey::from_seed(&[1; 32]).public().0);
    let pair = ca
        .issue_validator("node1", &id)
        .expect("validator certificate");
    let identity = Identity::from_pem(&pair.cert, &pair.key).expect("identity");
    let ca_pem = dir.path().join("ca.pem");
    std::fs::write(&ca_pem, ca.pem().cert).expect("write the CA");
    let listen: SocketAddr = "127.0.0.1:0".parse().expect("address");
    let chain = BoundedString::new("bmpls-interop").expect("short");
    let server = ClientServer::start(
        listen,
        &identity,
        (chain.clone(), id),
        Arc::new(Status),
        KnownClients::new(),
    )
    .expect("listens");
    let addr = server.local_addr().expect("bound");

    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/interop/aioquic_client.py"
    );
    let name = validator_dns_name(&id);
    let args = [
        script.to_string(),
        addr.ip().to_string(),
        addr.port().to_string(),
        ca_pem.display().to_string(),
        name,
    ];
    let out = tokio::task::spawn_blocking(move || Command::new("python3").args(args).output())
        .await
        .expect("joins")
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the aioquic client failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.lines().any(|l| l == "alpn bmpls/1"), "{stdout}");
    let answer = stdout
        .lines()
        .find_map(|l| l.strip_prefix("answer "))
        .expect("an answer line");
    let answer = Response::decode(&hex::decode(answer).expect("hex")).expect("a response");
    assert!(
        matches!(answer, Response::Error(RequestError::Malformed(_))),
        "{answer:?}"
    );

    // The node keeps serving.
    let trust = Trust::from_pem(&ca.pem().cert, &chain, &[id]).expect("trust");
    let client = Client::new(addr, &trust, SigningKey::from_seed(&[2; 32])).expect("client");
    match client.call(Request::Status).await {
        Ok(Response::Status(status)) => assert_eq!(status.height, 7),
        other => panic!("expected a status, got {other:?}"),
    }
    client.close().await;
    server.close().await;
}

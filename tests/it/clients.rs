//! How a client fares with the validators it is given: down nodes are each named with why, a
//! node that answers is found whichever position it has, and an address that is a validator's
//! peer or metrics port says so and names the client port.

use std::net::SocketAddr;

use bmpls_client::{NetworkError, Nodes};
use bmpls_crypto::SigningKey;

use crate::consortium::Consortium;

/// A UDP port nobody listens on (bound, read and released).
fn free_port() -> SocketAddr {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("a free port")
}

#[test]
fn clients_name_every_node_they_tried_and_the_port_they_wanted() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(scenario());
}

async fn scenario() {
    let net = Consortium::start("clients", 200).await;
    let key = SigningKey::from_seed(&[9; 32]);

    // Every node down: the error names each with why, and says how long a dial waited.
    let down = [free_port(), free_port()];
    let nodes = Nodes::new(&down, &net.trust, &key).expect("clients");
    let error = nodes.status().await.expect_err("nobody answers");
    let NetworkError::Unreachable(failures) = &error else {
        panic!("not unreachable: {error}");
    };
    assert_eq!(failures.len(), 2, "{error}");
    let text = error.to_string();
    for addr in down {
        assert_eq!(
            text.matches(&addr.to_string()).count(),
            1,
            "{addr} named once: {text}"
        );
    }
    assert_eq!(
        text.matches("no handshake within 3s").count(),
        2,
        "each dial waited one connect timeout: {text}"
    );
    nodes.close().await;

    // A down node first in the list does not hide the one that answers.
    let mixed = [free_port(), net.addrs[1]];
    let nodes = Nodes::new(&mixed, &net.trust, &key).expect("clients");
    let (answered, _) = nodes.status().await.expect("the second node answers");
    assert_eq!(answered, net.addrs[1]);
    nodes.close().await;

    // The peer port and the metrics port of a validator, given by mistake.
    let node = &net.cluster.nodes[0];
    let nodes = Nodes::new(&[node.peer_addr()], &net.trust, &key).expect("clients");
    let text = nodes
        .status()
        .await
        .expect_err("not a client port")
        .to_string();
    assert!(
        text.contains("this is the peer port of a validator"),
        "{text}"
    );
    nodes.close().await;
    let metrics = node.metrics_addr().expect("metrics served");
    let nodes = Nodes::new(&[metrics], &net.trust, &key).expect("clients");
    let text = nodes
        .status()
        .await
        .expect_err("not a client port")
        .to_string();
    assert!(
        text.contains(&format!(
            "this is the metrics port of a validator; the client port is {}",
            node.client_addr()
        )),
        "{text}"
    );
    nodes.close().await;
    net.admin.close().await;
    net.cluster.shutdown().await.expect("clean shutdown");
}

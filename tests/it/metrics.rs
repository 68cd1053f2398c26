//! What the validators' latency metrics count: a restarted validator does not time the blocks
//! it catches up on as commits.

use bmpls_client::Nodes;
use bmpls_node::{Node, NodeConfig};

use crate::consortium::Consortium;

/// The `_count` of histogram `name` in a metrics page.
fn histogram_count(page: &str, name: &str) -> u64 {
    let prefix = format!("{name}_count ");
    page.lines()
        .find_map(|l| l.strip_prefix(&prefix)?.parse::<u64>().ok())
        .unwrap_or(0)
}

/// The height of the first of `nodes` that answers (0 if none does).
async fn height(nodes: &Nodes) -> u64 {
    nodes.status().await.map_or(0, |(_, s)| s.height)
}

#[test]
fn a_restarted_validator_does_not_time_catch_up_blocks_as_commits() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let mut net = Consortium::start("metrics", 50).await;
        let name = net.cluster.provisioned[3].name.clone();
        let own = Nodes::new(&[net.addrs[3]], &net.trust, &net.operator).expect("client");
        while height(&own).await < 3 {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        own.close().await;
        let node = net.cluster.nodes.remove(3);
        node.shutdown().await.expect("stops");
        let stopped_at = {
            // Its store's height: what it will resume from.
            let config =
                NodeConfig::load(&net.cluster.dir.join(format!("{name}.toml"))).expect("config");
            let store = bmpls_store::Store::open(
                &config.data_dir.join("store"),
                config.genesis.validators.crypto().chain_id(),
            )
            .expect("store");
            store.tip().expect("tip").0.0
        };
        // The other three go on without it.
        let others = Nodes::new(&net.addrs[..3], &net.trust, &net.operator).expect("clients");
        while height(&others).await < stopped_at + 10 {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let missed = height(&others).await - stopped_at;
        others.close().await;
        let config =
            NodeConfig::load(&net.cluster.dir.join(format!("{name}.toml"))).expect("config");
        let node = Node::start(&config).await.expect("restarts");
        // It catches up, then decides blocks with the others: wait for the first it times.
        let timed = || histogram_count(&node.metrics().encode(), "bmpls_commit_latency_seconds");
        while timed() == 0 || node.metrics().commits.get() < missed {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        // Read in this order, since both only grow: what was timed, then what was committed.
        let timed = timed();
        let commits = node.metrics().commits.get();
        assert!(
            timed <= commits - missed,
            "{timed} commits timed of {commits}, {missed} of them caught up"
        );
        net.cluster.nodes.push(node);
        net.admin.close().await;
        net.cluster.shutdown().await.expect("clean shutdown");
    });
}

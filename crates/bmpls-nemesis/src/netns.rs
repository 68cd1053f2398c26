//! The network: one namespace per validator, each with a veth pair into a bridge in the
//! harness's namespace, which holds the bridge's address (where the relays listen and the
//! clients come from). Made with `ip` as root, torn down on drop, even when the test fails.

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// Why the network could not be made.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// Namespaces need root (CAP_NET_ADMIN) and `ip`.
    #[error("network namespaces need root and iproute2 (`ip`): {0}")]
    NotRoot(String),
    /// An `ip` command failed.
    #[error("`ip {args}` failed: {stderr}")]
    Ip {
        /// Its arguments.
        args: String,
        /// What it printed.
        stderr: String,
    },
}

/// Runs `ip` with `args`.
pub fn ip(args: &[&str]) -> Result<(), NetError> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| NetError::NotRoot(format!("cannot run ip: {e}")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(NetError::Ip {
            args: args.join(" "),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

/// Distinguishes networks made by one process (tests run side by side).
static NETWORKS: AtomicU32 = AtomicU32::new(0);

/// The namespaces, veths and bridge of one cluster.
#[derive(Debug)]
pub struct Net {
    tag: String,
    subnet: [u8; 3],
    namespaces: Vec<String>,
    bridge: Option<String>,
}

impl Net {
    /// Makes a bridge and `n` namespaces; fails with [`NetError::NotRoot`] when namespaces
    /// cannot be made here.
    pub fn create(n: usize) -> Result<Self, NetError> {
        let serial = NETWORKS.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        // Names are at most 15 bytes (IFNAMSIZ): `bn<pid>x<serial>br` fits a 7-digit pid. The
        // subnet is 10.213.x.0/24.
        let tag = format!("bn{pid}x{}", serial % 10);
        let third = ((pid.wrapping_mul(7).wrapping_add(serial)) % 200 + 20) as u8;
        let mut net = Self {
            tag: tag.clone(),
            subnet: [10, 213, third],
            namespaces: Vec::new(),
            bridge: None,
        };
        let probe = format!("{tag}-probe");
        ip(&["netns", "add", &probe]).map_err(|e| NetError::NotRoot(e.to_string()))?;
        ip(&["netns", "del", &probe])?;
        sweep();
        let bridge = format!("{tag}br");
        ip(&["link", "add", &bridge, "type", "bridge"])?;
        net.bridge = Some(bridge.clone());
        let host = format!("{}/24", net.host_ip());
        ip(&["addr", "add", &host, "dev", &bridge])?;
        ip(&["link", "set", &bridge, "up"])?;
        for i in 0..n {
            let ns = format!("{tag}-{i}");
            ip(&["netns", "add", &ns])?;
            net.namespaces.push(ns.clone());
            let outside = format!("{tag}v{i}");
            let inside = format!("{tag}p{i}");
            ip(&[
                "link", "add", &outside, "type", "veth", "peer", "name", &inside,
            ])?;
            ip(&["link", "set", &inside, "netns", &ns])?;
            ip(&["link", "set", &outside, "master", &bridge, "up"])?;
            let addr = format!("{}/24", net.node_ip(i));
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
            ip(&["-n", &ns, "addr", "add", &addr, "dev", &inside])?;
            ip(&["-n", &ns, "link", "set", &inside, "up"])?;
        }
        Ok(net)
    }

    /// The harness's address on the bridge.
    pub fn host_ip(&self) -> Ipv4Addr {
        let [a, b, c] = self.subnet;
        Ipv4Addr::new(a, b, c, 1)
    }

    /// Validator `i`'s address.
    pub fn node_ip(&self, i: usize) -> Ipv4Addr {
        let [a, b, c] = self.subnet;
        Ipv4Addr::new(a, b, c, 10 + i as u8)
    }

    /// Validator `i`'s namespace.
    pub fn namespace(&self, i: usize) -> &str {
        &self.namespaces[i]
    }

    /// The tag naming this network's interfaces.
    pub fn tag(&self) -> &str {
        &self.tag
    }
}

/// The harness pid a name of ours (`bn<pid>x…`) carries.
fn owner(name: &str) -> Option<u32> {
    name.strip_prefix("bn")?.split_once('x')?.0.parse().ok()
}

/// Removes what harnesses that were killed before their clean-up left behind: their
/// validators (killed), namespaces and bridges. Names whose harness still runs are left alone.
fn sweep() {
    let dead =
        |name: &str| owner(name).is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists());
    let listed = |args: &[&str]| {
        Command::new("ip")
            .args(args)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    };
    for line in listed(&["netns", "list"]).lines() {
        let Some(ns) = line.split_whitespace().next() else {
            continue;
        };
        if !dead(ns) {
            continue;
        }
        for pid in listed(&["netns", "pids", ns]).split_whitespace() {
            let _ = Command::new("kill").args(["-KILL", pid]).output();
        }
        let _ = ip(&["netns", "del", ns]);
    }
    for line in listed(&["-o", "link", "show", "type", "bridge"]).lines() {
        let Some(name) = line.split(": ").nth(1) else {
            continue;
        };
        if dead(name) {
            let _ = ip(&["link", "del", name]);
        }
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        // Deleting a namespace deletes the veth end inside it, and so the pair.
        for ns in &self.namespaces {
            let _ = ip(&["netns", "del", ns]);
        }
        if let Some(bridge) = &self.bridge {
            let _ = ip(&["link", "del", bridge]);
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_name_says_which_harness_made_it() {
        assert_eq!(super::owner("bn12345x0-3"), Some(12345));
        assert_eq!(super::owner("bn12345x0br"), Some(12345));
        assert_eq!(super::owner("docker0"), None);
        assert_eq!(super::owner("bnfoo"), None);
    }
}

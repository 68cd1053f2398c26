//! The links between validators: one UDP relay per ordered pair `(from, to)`, listening on the
//! bridge address. Validator `from`'s configuration names the relay as `to`'s peer address; the
//! relay forwards what `from` sends to `to` and what `to` answers back to `from`, each packet
//! after a delay with jitter (which reorders), some lost, some duplicated, and none at all while
//! the pair is cut. These kernels have no `netem`, and QUIC is UDP, so this is where the
//! network's misbehaviour lives.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::net::UdpSocket;

use crate::schedule::Partition;

/// Largest datagram relayed (QUIC's are at most a path MTU).
const MAX_DATAGRAM: usize = 65_535;
/// Most packets held in flight per relay, so that a stalled peer cannot grow memory.
const MAX_IN_FLIGHT: u64 = 4_096;

/// How every link misbehaves.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    /// Least one-way delay.
    pub delay_min_ms: u64,
    /// Most one-way delay (uniform in between: jitter, and so reordering).
    pub delay_max_ms: u64,
    /// Chance a packet is dropped.
    pub loss: f64,
    /// Chance a packet is sent twice.
    pub duplicate: f64,
}

/// Packets relayed, dropped and duplicated, over all links.
#[derive(Debug, Default)]
pub struct Counters {
    /// Forwarded.
    pub forwarded: AtomicU64,
    /// Dropped at random.
    pub lost: AtomicU64,
    /// Dropped because the link was cut.
    pub cut: AtomicU64,
    /// Sent twice.
    pub duplicated: AtomicU64,
}

/// Which links are cut now.
#[derive(Debug, Default)]
pub struct Cuts(RwLock<Option<Partition>>);

impl Cuts {
    /// Cuts the network as `partition` says.
    pub fn set(&self, partition: Partition) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = Some(partition);
    }

    /// Restores every link.
    pub fn heal(&self) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = None;
    }

    fn cut(&self, a: usize, b: usize) -> bool {
        self.0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .is_some_and(|p| p.cuts(a, b))
    }
}

/// The relays of one cluster, on their own runtime so that the harness's work (building
/// records, verifying answers) does not add to the links' delay.
pub struct Relays {
    runtime: Option<tokio::runtime::Runtime>,
    /// `ports[from][to]`: where `from` reaches `to` (0 on the diagonal).
    pub ports: Vec<Vec<u16>>,
    /// The cut links.
    pub cuts: Arc<Cuts>,
    /// What the links did.
    pub counters: Arc<Counters>,
}

impl Relays {
    /// Starts a relay on `host` for every ordered pair of the validators whose peer addresses
    /// are `peers`.
    pub fn start(
        host: std::net::Ipv4Addr,
        peers: &[SocketAddr],
        shape: Shape,
        seed: u64,
    ) -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("relay")
            .enable_all()
            .build()?;
        let cuts = Arc::new(Cuts::default());
        let counters = Arc::new(Counters::default());
        let n = peers.len();
        let mut ports = vec![vec![0u16; n]; n];
        for (from, row) in ports.iter_mut().enumerate() {
            for (to, port) in row.iter_mut().enumerate() {
                if from == to {
                    continue;
                }
                let socket = runtime.block_on(UdpSocket::bind(SocketAddr::from((host, 0))))?;
                *port = socket.local_addr()?.port();
                let link = Link {
                    from,
                    to,
                    target: peers[to],
                    socket: Arc::new(socket),
                    shape,
                    cuts: cuts.clone(),
                    counters: counters.clone(),
                    in_flight: Arc::new(AtomicU64::new(0)),
                };
                let rng = ChaCha8Rng::seed_from_u64(seed ^ ((from as u64) << 32 | to as u64));
                runtime.spawn(link.run(rng));
            }
        }
        Ok(Self {
            runtime: Some(runtime),
            ports,
            cuts,
            counters,
        })
    }
}

impl Drop for Relays {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

struct Link {
    from: usize,
    to: usize,
    target: SocketAddr,
    socket: Arc<UdpSocket>,
    shape: Shape,
    cuts: Arc<Cuts>,
    counters: Arc<Counters>,
    in_flight: Arc<AtomicU64>,
}

impl Link {
    async fn run(self, mut rng: ChaCha8Rng) {
        let mut buf = vec![0u8; MAX_DATAGRAM];
        // Where `from` sends from: learnt from its packets (its QUIC endpoint's port).
        let mut source: Option<SocketAddr> = None;
        loop {
            let Ok((len, sender)) = self.socket.recv_from(&mut buf).await else {
                continue;
            };
            let dest = if sender == self.target {
                match source {
                    Some(s) => s,
                    None => continue,
                }
            } else {
                source = Some(sender);
                self.target
            };
            if self.cuts.cut(self.from, self.to) {
                self.counters.cut.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            if rng.gen_bool(self.shape.loss) {
                self.counters.lost.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let copies = if rng.gen_bool(self.shape.duplicate) {
                self.counters.duplicated.fetch_add(1, Ordering::Relaxed);
                2
            } else {
                1
            };
            for _ in 0..copies {
                if self.in_flight.load(Ordering::Relaxed) >= MAX_IN_FLIGHT {
                    self.counters.lost.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                let delay = rng.gen_range(
                    self.shape.delay_min_ms..=self.shape.delay_max_ms.max(self.shape.delay_min_ms),
                );
                let packet = buf[..len].to_vec();
                let socket = self.socket.clone();
                let in_flight = self.in_flight.clone();
                let counters = self.counters.clone();
                in_flight.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(delay)).await;
                    if socket.send_to(&packet, dest).await.is_ok() {
                        counters.forwarded.fetch_add(1, Ordering::Relaxed);
                    }
                    in_flight.fetch_sub(1, Ordering::Relaxed);
                });
            }
        }
    }
}

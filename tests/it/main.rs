//! Cross-crate integration tests: one binary, one module per concern.
#![forbid(unsafe_code)]

mod alerts;
mod byzantine_alerts;
mod byzantine_peers;
mod carers;
mod clients;
mod cluster;
mod consortium;
mod crash;
mod durability;
mod fences;
mod logs;
mod metrics;
mod outbox;
mod privacy;
mod store;
mod sync_flood;
mod tracks;
mod wal;

//! A validator's logs: stderr at the level of `RUST_LOG`, and, by default, without the WARN
//! lines malachite writes in every restart and round change, which are normal there and made
//! operators look for a fault that was not (22 to 45 per node in 12 minutes of restarts).
//!
//! Quieted (normal when a validator restarts, lags or a peer is down): messages for a height or
//! round already left or not reached yet (`Ignoring … for height`, `Received proposal for lower
//! height`, certificate height and round mismatches), `Rebroadcasting vote` and the vote-count
//! dump that follows it (a round waiting for a down peer), `Not the proposer` (a value built
//! after the round moved on). Kept: every other WARN and every ERROR, among them the ones that
//! signal a real problem — a message from an unknown validator or a non-proposer, an invalid
//! signature, vote extension or certificate. `docs/operating.md` lists both.

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Metadata};
use tracing_subscriber::layer::{Context, Filter};

/// The target prefix of malachite's consensus crate.
const MALACHITE: &str = "informalsystems_malachitebft";

/// Beginnings of malachite WARN messages that are normal in restarts and round changes.
const NORMAL: &[&str] = &[
    "Ignoring ",
    "Received proposal for lower height",
    "Polka certificate height mismatch",
    "Round certificate height mismatch",
    "Precommit round certificate from older round",
    "Skip round certificate from same or older round",
    "Rebroadcasting vote",
    "Number of validators having voted",
    "Total voting power",
    "Voting power required",
    "Total weight of",
    "Not the proposer for round",
];

/// Drops malachite's normal WARN lines ([`NORMAL`]); everything else passes.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct QuietMalachite;

impl QuietMalachite {
    /// Whether an event of `metadata` saying `message` is one of the normal lines.
    fn is_normal(metadata: &Metadata<'_>, message: &str) -> bool {
        *metadata.level() == Level::WARN
            && metadata.target().starts_with(MALACHITE)
            && NORMAL.iter().any(|start| message.starts_with(start))
    }
}

/// Reads an event's message.
struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            value.clone_into(&mut self.0);
        }
    }
}

impl<S> Filter<S> for QuietMalachite {
    fn enabled(&self, _: &Metadata<'_>, _: &Context<'_, S>) -> bool {
        true
    }

    fn event_enabled(&self, event: &Event<'_>, _: &Context<'_, S>) -> bool {
        let metadata = event.metadata();
        if *metadata.level() != Level::WARN || !metadata.target().starts_with(MALACHITE) {
            return true;
        }
        let mut message = Message(String::new());
        event.record(&mut message);
        !Self::is_normal(metadata, &message.0)
    }
}

/// Logs to stderr at the level of `RUST_LOG` (default: `info` for bmpls, `warn` for
/// malachite's per-vote chatter, without its normal WARN lines; set `RUST_LOG` to see those
/// too). Logs never carry coordinates, keys or sealed payloads.
pub(crate) fn init() {
    use std::io::IsTerminal;
    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let fmt = tracing_subscriber::fmt::layer()
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let _ = match tracing_subscriber::EnvFilter::try_from_default_env() {
        Ok(filter) => tracing_subscriber::registry()
            .with(fmt.with_filter(filter).boxed())
            .try_init(),
        Err(_) => {
            let filter = tracing_subscriber::EnvFilter::new(
                "info,informalsystems_malachitebft_core_consensus=warn",
            );
            tracing_subscriber::registry()
                .with(fmt.with_filter(filter).with_filter(QuietMalachite).boxed())
                .try_init()
        }
    };
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::SubscriberExt;

    use super::QuietMalachite;

    /// A writer into a shared buffer.
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn normal_malachite_warnings_are_quiet_and_real_problems_are_not() {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::registry().with(
            tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .with_writer(move || writer.clone())
                .with_filter(QuietMalachite),
        );
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(
                target: "informalsystems_malachitebft_core_consensus::handle::driver",
                "Ignoring vote for height {}, current height: {}", 7, 9
            );
            tracing::warn!(
                target: "informalsystems_malachitebft_core_consensus::handle::proposal",
                proposer = "ab12",
                "Received proposal for lower height, dropping"
            );
            tracing::warn!(
                target: "informalsystems_malachitebft_core_consensus::handle::rebroadcast_timeout",
                "Rebroadcasting vote at {:?} step", "Prevote"
            );
            tracing::warn!(
                target: "informalsystems_malachitebft_core_consensus::handle::proposal",
                proposer = "ab12",
                "Received proposal from a non-proposer"
            );
            tracing::warn!(
                target: "informalsystems_malachitebft_core_consensus::handle::vote",
                "Received vote with invalid signature: {}", "vote"
            );
            tracing::info!(
                target: "informalsystems_malachitebft_core_consensus::handle::driver",
                "Ignoring something at info"
            );
            tracing::warn!(target: "bmpls_node::driver", "Ignoring a peer's block");
        });
        let text = String::from_utf8(buffer.0.lock().expect("lock").clone()).expect("utf-8");
        for quiet in [
            "Ignoring vote for height",
            "lower height",
            "Rebroadcasting vote",
        ] {
            assert!(!text.contains(quiet), "{quiet:?} is normal:\n{text}");
        }
        for kept in [
            "Received proposal from a non-proposer",
            "Received vote with invalid signature",
            "Ignoring something at info",
            "Ignoring a peer's block",
        ] {
            assert!(text.contains(kept), "{kept:?} is kept:\n{text}");
        }
    }
}

//! Test-only: a validator that misbehaves on the wire (feature `byzantine`, never in a release
//! build). Its engine runs honestly and a [`Tamper`] rewrites each consensus message it
//! broadcasts, per peer, so that the honest validators beside it face equivocation, bad
//! signatures or invalid blocks over real QUIC links, exactly as they would from a byzantine
//! operator. The rewriting itself lives with the simulator's faults (`bmpls_sim::byzantine`).

use std::sync::Arc;

use bmpls_consensus::Message;
use bmpls_crypto::SigningKey;
use bmpls_types::ValidatorId;

/// Given a message this validator broadcasts, its peers and its own key (to sign what it
/// forges), what to send each peer instead (`None`: nothing).
pub type Tamper =
    Arc<dyn Fn(&Message, &[ValidatorId], &SigningKey) -> Vec<Option<Message>> + Send + Sync>;

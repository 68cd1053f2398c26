//! The checks every client request passes before the node sees it: signature, clock window,
//! fresh nonce, and the client's request rate. Each check's state is bounded.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use bmpls_crypto::sign::verify;
use bmpls_types::PublicKeyBytes;

use crate::limits::{
    CLIENT_BURST, CLIENT_RATE_PER_S, CLOCK_WINDOW_MS, MAX_NONCES, MAX_TRACKED_CLIENTS,
};
use crate::proto::{Envelope, RequestError};

/// Admission of signed requests.
#[derive(Debug, Default)]
pub struct Guard {
    nonces: Mutex<Nonces>,
    rates: Mutex<Rates>,
}

impl Guard {
    /// A guard with empty memory.
    pub fn new() -> Self {
        Self::default()
    }

    /// Checks `envelope` at the node's time `now_ms`. A request that passes has its nonce
    /// remembered: the same envelope is refused as [`RequestError::Replayed`] from then on.
    pub fn admit(&self, envelope: &Envelope, now_ms: u64) -> Result<(), RequestError> {
        let skew_ms = envelope.sent_ms as i64 - now_ms as i64;
        if skew_ms.unsigned_abs() > CLOCK_WINDOW_MS {
            return Err(RequestError::Stale { skew_ms });
        }
        verify(envelope, &envelope.client, "request").map_err(|_| RequestError::BadSignature)?;
        self.rates
            .lock()
            .expect("rate table lock")
            .take(envelope.client, now_ms)?;
        self.nonces.lock().expect("nonce table lock").insert(
            envelope.client,
            envelope.nonce,
            now_ms,
        )
    }
}

/// Nonces seen, each kept until no request carrying it could be inside the clock window.
#[derive(Debug, Default)]
struct Nonces {
    seen: HashMap<(PublicKeyBytes, [u8; 16]), u64>,
    by_expiry: VecDeque<(u64, PublicKeyBytes, [u8; 16])>,
}

impl Nonces {
    fn insert(
        &mut self,
        client: PublicKeyBytes,
        nonce: [u8; 16],
        now_ms: u64,
    ) -> Result<(), RequestError> {
        while let Some(&(expiry, key, n)) = self.by_expiry.front() {
            if expiry > now_ms {
                break;
            }
            self.by_expiry.pop_front();
            self.seen.remove(&(key, n));
        }
        if self.seen.contains_key(&(client, nonce)) {
            return Err(RequestError::Replayed);
        }
        if self.seen.len() >= MAX_NONCES {
            return Err(RequestError::Busy);
        }
        // A request sent at `now + window` is still acceptable until `now + 2 × window`.
        let expiry = now_ms + 2 * CLOCK_WINDOW_MS;
        self.seen.insert((client, nonce), expiry);
        self.by_expiry.push_back((expiry, client, nonce));
        Ok(())
    }
}

/// A token bucket per client key.
#[derive(Debug, Default)]
struct Rates {
    buckets: HashMap<PublicKeyBytes, Bucket>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    /// Tokens, in thousandths.
    milli_tokens: u64,
    last_ms: u64,
}

impl Rates {
    fn take(&mut self, client: PublicKeyBytes, now_ms: u64) -> Result<(), RequestError> {
        let full = u64::from(CLIENT_BURST) * 1000;
        if self.buckets.len() >= MAX_TRACKED_CLIENTS && !self.buckets.contains_key(&client) {
            // Forget clients whose buckets have refilled: they are indistinguishable from new.
            self.buckets.retain(|_, b| {
                b.milli_tokens + now_ms.saturating_sub(b.last_ms) * u64::from(CLIENT_RATE_PER_S)
                    < full
            });
            if self.buckets.len() >= MAX_TRACKED_CLIENTS {
                return Err(RequestError::Busy);
            }
        }
        let bucket = self.buckets.entry(client).or_insert(Bucket {
            milli_tokens: full,
            last_ms: now_ms,
        });
        let refill = now_ms.saturating_sub(bucket.last_ms) * u64::from(CLIENT_RATE_PER_S);
        bucket.milli_tokens = (bucket.milli_tokens + refill).min(full);
        bucket.last_ms = bucket.last_ms.max(now_ms);
        if bucket.milli_tokens < 1000 {
            let missing = 1000 - bucket.milli_tokens;
            return Err(RequestError::RateLimited {
                retry_after_ms: missing.div_ceil(u64::from(CLIENT_RATE_PER_S)),
            });
        }
        bucket.milli_tokens -= 1000;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use bmpls_crypto::SigningKey;
    use bmpls_types::{BoundedVec, SignatureBytes};

    use super::*;
    use crate::proto::Request;

    fn envelope(key: &SigningKey, nonce: u8, sent_ms: u64) -> Envelope {
        let mut e = Envelope {
            client: key.public(),
            chain: bmpls_types::ChainId::new("guard-test").expect("short"),
            node: bmpls_types::ValidatorId([3; 32]),
            nonce: [nonce; 16],
            sent_ms,
            request: Request::Submit(BoundedVec::empty()),
            sig: SignatureBytes::UNSIGNED,
        };
        key.sign(&mut e);
        e
    }

    #[test]
    fn a_signed_fresh_request_passes_once() {
        let key = SigningKey::from_seed(&[7; 32]);
        let guard = Guard::new();
        let e = envelope(&key, 1, 1_000_000);
        assert_eq!(guard.admit(&e, 1_000_000), Ok(()));
        assert_eq!(guard.admit(&e, 1_000_001), Err(RequestError::Replayed));
        assert_eq!(
            guard.admit(&envelope(&key, 2, 1_000_000), 1_000_002),
            Ok(())
        );
    }

    #[test]
    fn bad_signature_and_stale_time_are_refused() {
        let key = SigningKey::from_seed(&[7; 32]);
        let guard = Guard::new();
        let mut e = envelope(&key, 1, 1_000_000);
        e.sent_ms += 1;
        assert_eq!(guard.admit(&e, 1_000_000), Err(RequestError::BadSignature));
        let late = envelope(&key, 3, 1_000_000);
        assert_eq!(
            guard.admit(&late, 1_000_000 + CLOCK_WINDOW_MS + 1),
            Err(RequestError::Stale {
                skew_ms: -(CLOCK_WINDOW_MS as i64) - 1
            })
        );
    }

    #[test]
    fn a_burst_over_the_rate_is_limited_then_refills() {
        let key = SigningKey::from_seed(&[7; 32]);
        let guard = Guard::new();
        let now = 5_000_000;
        for i in 0..CLIENT_BURST {
            let mut e = envelope(&key, 0, now);
            e.nonce[..4].copy_from_slice(&i.to_be_bytes());
            key.sign(&mut e);
            assert_eq!(guard.admit(&e, now), Ok(()), "request {i}");
        }
        let e = envelope(&key, 0xff, now);
        assert!(matches!(
            guard.admit(&e, now),
            Err(RequestError::RateLimited { .. })
        ));
        assert_eq!(guard.admit(&e, now + 1000), Ok(()));
    }
}

//! The checks every client request passes before the node sees it: signature, clock window,
//! fresh nonce, and the client's request rate. Each check's state is bounded, per key and in
//! total; keys the node does not know (nobody enrolled them) have their own, smaller nonce
//! table, so a flood of fresh keys cannot crowd out enrolled clients.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, RwLock};

use bmpls_crypto::sign::verify;
use bmpls_types::PublicKeyBytes;

use crate::limits::{
    CLIENT_BURST, CLIENT_RATE_PER_S, CLOCK_WINDOW_MS, MAX_KNOWN_NONCES, MAX_NONCES_PER_KEY,
    MAX_NONCES_PER_UNKNOWN_KEY, MAX_TRACKED_CLIENTS, MAX_UNKNOWN_NONCES, NONCE_LIFETIME_MS,
};
use crate::proto::{Envelope, RequestError};

/// The client keys a node knows: enrolled patients' reporter and custodian keys, carers'
/// identity keys, validators' keys. Shared between the node, which adds keys as enrolments
/// commit, and the [`Guard`]. It grows only with the chain's enrolments, which operators make.
#[derive(Clone, Debug, Default)]
pub struct KnownClients(Arc<RwLock<HashSet<PublicKeyBytes>>>);

impl KnownClients {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds keys.
    pub fn extend(&self, keys: impl IntoIterator<Item = PublicKeyBytes>) {
        self.0.write().expect("known clients lock").extend(keys);
    }

    /// Whether `key` is known.
    pub fn contains(&self, key: &PublicKeyBytes) -> bool {
        self.0.read().expect("known clients lock").contains(key)
    }
}

/// Admission of signed requests.
#[derive(Debug, Default)]
pub struct Guard {
    known: KnownClients,
    nonces: Mutex<Nonces>,
    rates: Mutex<Rates>,
}

impl Guard {
    /// A guard with empty memory that knows no client key (each is limited as unknown).
    pub fn new() -> Self {
        Self::default()
    }

    /// A guard with empty memory that limits the keys in `known` as known.
    pub fn with_known(known: KnownClients) -> Self {
        Self {
            known,
            ..Self::default()
        }
    }

    /// Checks `envelope` at the node's time `now_ms`. A request that passes has its nonce
    /// remembered: the same envelope is refused as [`RequestError::Replayed`] from then on.
    pub fn admit(&self, envelope: &Envelope, now_ms: u64) -> Result<(), RequestError> {
        // In i128: the client's time is any u64, whose difference with ours an i64 may not
        // hold; a skew beyond an i64 is reported as the nearest end.
        let skew = i128::from(envelope.sent_ms) - i128::from(now_ms);
        if skew.unsigned_abs() > u128::from(CLOCK_WINDOW_MS) {
            let skew_ms = i64::try_from(skew).unwrap_or(if skew < 0 { i64::MIN } else { i64::MAX });
            return Err(RequestError::Stale { skew_ms });
        }
        verify(envelope, &envelope.chain, &envelope.client, "request")
            .map_err(|_| RequestError::BadSignature)?;
        self.rates
            .lock()
            .expect("rate table lock")
            .take(envelope.client, now_ms)?;
        let known = self.known.contains(&envelope.client);
        self.nonces.lock().expect("nonce table lock").insert(
            envelope.client,
            envelope.nonce,
            now_ms,
            known,
        )
    }
}

/// Nonces seen, each kept until no request carrying it could be inside the clock window;
/// counted per key and per class (known or unknown key), each count capped.
#[derive(Debug, Default)]
struct Nonces {
    seen: HashMap<(PublicKeyBytes, [u8; 16]), u64>,
    /// Expiry, key, nonce, and whether the key was known when the nonce was taken (what it
    /// is counted against until it expires).
    by_expiry: VecDeque<(u64, PublicKeyBytes, [u8; 16], bool)>,
    per_key: HashMap<PublicKeyBytes, usize>,
    /// Nonces held for known keys, then for unknown ones.
    totals: [usize; 2],
}

impl Nonces {
    fn insert(
        &mut self,
        client: PublicKeyBytes,
        nonce: [u8; 16],
        now_ms: u64,
        known: bool,
    ) -> Result<(), RequestError> {
        while let Some(&(expiry, key, n, was_known)) = self.by_expiry.front() {
            if expiry > now_ms {
                break;
            }
            self.by_expiry.pop_front();
            self.seen.remove(&(key, n));
            self.totals[usize::from(!was_known)] -= 1;
            if let Some(count) = self.per_key.get_mut(&key) {
                *count -= 1;
                if *count == 0 {
                    self.per_key.remove(&key);
                }
            }
        }
        if self.seen.contains_key(&(client, nonce)) {
            return Err(RequestError::Replayed);
        }
        let (per_key_cap, total_cap) = if known {
            (MAX_NONCES_PER_KEY, MAX_KNOWN_NONCES)
        } else {
            (MAX_NONCES_PER_UNKNOWN_KEY, MAX_UNKNOWN_NONCES)
        };
        let held = self.per_key.get(&client).copied().unwrap_or(0);
        if held >= per_key_cap || self.totals[usize::from(!known)] >= total_cap {
            return Err(RequestError::Busy);
        }
        let expiry = now_ms + NONCE_LIFETIME_MS;
        self.seen.insert((client, nonce), expiry);
        self.by_expiry.push_back((expiry, client, nonce, known));
        *self.per_key.entry(client).or_insert(0) += 1;
        self.totals[usize::from(!known)] += 1;
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
        let chain = e.chain.clone();
        key.sign(&mut e, &chain);
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

    /// Found by `fuzz/fuzz_targets/net.rs`: a request time past `i64::MAX` overflowed the skew
    /// (a panic where overflow is checked, as in debug builds) instead of being refused.
    #[test]
    fn a_time_at_the_ends_of_the_clock_is_stale_not_an_overflow() {
        let key = SigningKey::from_seed(&[7; 32]);
        let guard = Guard::new();
        let now_ms = 1_796_083_200_000;
        for (sent_ms, skew_ms) in [
            (u64::MAX, i64::MAX),
            ((1 << 63) + now_ms, i64::MAX),
            (1 << 63, i64::MAX - (now_ms as i64 - 1)),
            (0, -(now_ms as i64)),
        ] {
            assert_eq!(
                guard.admit(&envelope(&key, 1, sent_ms), now_ms),
                Err(RequestError::Stale { skew_ms }),
                "sent at {sent_ms}"
            );
        }
        assert_eq!(
            guard.admit(&envelope(&key, 2, 0), u64::MAX),
            Err(RequestError::Stale { skew_ms: i64::MIN })
        );
    }

    /// An envelope of `key` with nonce number `i`.
    fn numbered(key: &SigningKey, i: u32, sent_ms: u64) -> Envelope {
        let mut e = envelope(key, 0, sent_ms);
        e.nonce[..4].copy_from_slice(&i.to_be_bytes());
        let chain = e.chain.clone();
        key.sign(&mut e, &chain);
        e
    }

    #[test]
    fn a_flood_of_fresh_keys_does_not_deny_an_enrolled_key() {
        let enrolled = SigningKey::from_seed(&[1; 32]);
        let known = KnownClients::new();
        known.extend([enrolled.public()]);
        let guard = Guard::with_known(known);
        let now = 9_000_000;
        // Fresh keys, each sending as many requests as its rate would allow in a nonce's
        // lifetime, until a fresh key gets nothing. (The nonce table is driven directly:
        // signing a million envelopes would only slow the test.)
        let mut nonces = guard.nonces.lock().expect("lock");
        let mut fresh = 0u32;
        'flood: loop {
            let mut key = [0u8; 32];
            key[..4].copy_from_slice(&fresh.to_be_bytes());
            fresh += 1;
            for i in 0..=MAX_NONCES_PER_KEY as u32 {
                let mut nonce = [0u8; 16];
                nonce[..4].copy_from_slice(&i.to_be_bytes());
                match nonces.insert(PublicKeyBytes(key), nonce, now, false) {
                    Ok(()) => {}
                    Err(RequestError::Busy) if i == 0 => break 'flood,
                    Err(RequestError::Busy) => break,
                    Err(e) => panic!("unexpected {e:?}"),
                }
            }
        }
        drop(nonces);
        // Through the whole guard: another fresh key is busy, the enrolled one is served.
        let stranger = SigningKey::from_seed(&[2; 32]);
        assert_eq!(
            guard.admit(&numbered(&stranger, 0, now), now),
            Err(RequestError::Busy)
        );
        for i in 0..CLIENT_BURST {
            assert_eq!(
                guard.admit(&numbered(&enrolled, i, now), now),
                Ok(()),
                "request {i}"
            );
        }
        // The flood filled only the unknown keys' table, at the per-key cap.
        let nonces = guard.nonces.lock().expect("lock");
        assert_eq!(nonces.totals, [CLIENT_BURST as usize, MAX_UNKNOWN_NONCES]);
        assert_eq!(
            fresh as usize,
            MAX_UNKNOWN_NONCES / MAX_NONCES_PER_UNKNOWN_KEY + 1
        );
        drop(nonces);
        // Once the flood's nonces expire, a fresh key is served again.
        let later = now + NONCE_LIFETIME_MS;
        assert_eq!(guard.admit(&numbered(&stranger, 1, later), later), Ok(()));
    }

    #[test]
    fn one_key_is_capped_by_its_class() {
        let guard = Guard::new();
        let key = SigningKey::from_seed(&[3; 32]);
        let now = 7_000_000;
        for i in 0..MAX_NONCES_PER_UNKNOWN_KEY as u32 {
            assert_eq!(
                guard.admit(&numbered(&key, i, now), now),
                Ok(()),
                "request {i}"
            );
        }
        let over = numbered(&key, MAX_NONCES_PER_UNKNOWN_KEY as u32, now);
        assert_eq!(guard.admit(&over, now), Err(RequestError::Busy));
        // The same key once enrolled is held to the (rate-sized) known keys' cap.
        let mut nonces = guard.nonces.lock().expect("lock");
        for i in 0..MAX_NONCES_PER_KEY as u32 {
            let mut nonce = [0xee; 16];
            nonce[..4].copy_from_slice(&i.to_be_bytes());
            let held = nonces.per_key[&key.public()];
            let outcome = nonces.insert(key.public(), nonce, now, true);
            assert_eq!(outcome.is_ok(), held < MAX_NONCES_PER_KEY, "nonce {i}");
        }
    }

    #[test]
    fn a_burst_over_the_rate_is_limited_then_refills() {
        let key = SigningKey::from_seed(&[7; 32]);
        let known = KnownClients::new();
        known.extend([key.public()]);
        let guard = Guard::with_known(known);
        let now = 5_000_000;
        for i in 0..CLIENT_BURST {
            let mut e = envelope(&key, 0, now);
            e.nonce[..4].copy_from_slice(&i.to_be_bytes());
            let chain = e.chain.clone();
            key.sign(&mut e, &chain);
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

//! Who may use the console. It listens on loopback, but any local process, and any web page the
//! operator's browser opens, can send it requests, so:
//! - a per-start random access token, printed in the URL; the first visit trades it for an
//!   `HttpOnly`, `SameSite=Strict` cookie and a redirect that takes it out of the address bar;
//! - the `Host` header must name the console's own address, which defeats DNS rebinding (a
//!   page on `evil.example` whose name later resolves to 127.0.0.1 sends `Host: evil.example`);
//! - every state-changing request carries a second per-start secret in a header
//!   (`X-Csrf-Token`), which only the console's own page can read, and an `Origin`, when the
//!   browser sends one, that is the console's.
//!
//! Comparisons of secrets are constant time.

use std::net::SocketAddr;

use axum::http::HeaderMap;
use axum::http::header::{COOKIE, HOST, ORIGIN};
use rand::RngCore;
use subtle::ConstantTimeEq;

/// The cookie that carries the access token.
pub const COOKIE_NAME: &str = "bmpls_console";
/// The header that carries the CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The console's secrets for one start.
#[derive(Clone)]
pub struct Access {
    token: String,
    csrf: String,
    addr: SocketAddr,
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Access")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

fn secret(rng: &mut impl RngCore) -> String {
    let mut bytes = [0u8; 32];
    rng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

impl Access {
    /// Fresh secrets for a console listening on `addr`.
    pub fn new(addr: SocketAddr, rng: &mut impl RngCore) -> Self {
        Self {
            token: secret(rng),
            csrf: secret(rng),
            addr,
        }
    }

    /// The URL to open, token included.
    pub fn url(&self) -> String {
        format!("http://{}/?token={}", self.addr, self.token)
    }

    /// The CSRF token the console's page sends back with every change.
    pub fn csrf(&self) -> &str {
        &self.csrf
    }

    /// The `Set-Cookie` value that lets the browser in.
    pub fn cookie(&self) -> String {
        format!(
            "{COOKIE_NAME}={}; HttpOnly; SameSite=Strict; Path=/",
            self.token
        )
    }

    /// Whether `token` (from the URL) is this start's.
    pub fn token_matches(&self, token: &str) -> bool {
        same(token, &self.token)
    }

    /// Whether the request is addressed to the console by its own name: the listening
    /// address, or `localhost` with its port.
    pub fn host_ok(&self, headers: &HeaderMap) -> bool {
        let Some(host) = headers.get(HOST).and_then(|h| h.to_str().ok()) else {
            return false;
        };
        host == self.addr.to_string() || host == format!("localhost:{}", self.addr.port())
    }

    /// Whether the request carries the access cookie.
    pub fn cookie_ok(&self, headers: &HeaderMap) -> bool {
        headers
            .get_all(COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .any(|(name, value)| name == COOKIE_NAME && same(value, &self.token))
    }

    /// Whether a state-changing request comes from the console's own page: the CSRF header,
    /// and the `Origin` (when the browser sends one) naming the console.
    pub fn csrf_ok(&self, headers: &HeaderMap) -> bool {
        let token = headers
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| same(v, &self.csrf));
        let origin = match headers.get(ORIGIN).and_then(|v| v.to_str().ok()) {
            None => true,
            Some(origin) => {
                origin == format!("http://{}", self.addr)
                    || origin == format!("http://localhost:{}", self.addr.port())
            }
        };
        token && origin
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;
    use rand::SeedableRng;

    use super::*;

    fn access() -> Access {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        Access::new("127.0.0.1:8080".parse().expect("addr"), &mut rng)
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).expect("header"));
        }
        map
    }

    #[test]
    fn the_url_carries_a_token_that_the_cookie_repeats_and_debug_hides() {
        let a = access();
        let url = a.url();
        let token = url.split("token=").nth(1).expect("token");
        assert_eq!(token.len(), 64);
        assert!(url.starts_with("http://127.0.0.1:8080/?token="));
        assert!(a.token_matches(token));
        assert!(!a.token_matches(&token[..63]));
        assert!(a.cookie().contains(token) && a.cookie().contains("HttpOnly"));
        assert!(a.cookie().contains("SameSite=Strict"));
        let shown = format!("{a:?}");
        assert!(
            !shown.contains(token) && !shown.contains(a.csrf()),
            "{shown}"
        );
        let other = Access::new(
            "127.0.0.1:8080".parse().expect("addr"),
            &mut rand::rngs::StdRng::seed_from_u64(8),
        );
        assert!(!other.token_matches(token), "each start has its own token");
    }

    #[test]
    fn only_the_consoles_own_host_name_is_served() {
        let a = access();
        assert!(a.host_ok(&headers(&[("host", "127.0.0.1:8080")])));
        assert!(a.host_ok(&headers(&[("host", "localhost:8080")])));
        for rebound in ["evil.example:8080", "127.0.0.1:9090", "127.0.0.1"] {
            assert!(!a.host_ok(&headers(&[("host", rebound)])), "{rebound}");
        }
        assert!(!a.host_ok(&HeaderMap::new()));
    }

    #[test]
    fn the_cookie_is_found_among_others_and_a_wrong_one_is_refused() {
        let a = access();
        let token = a.url().split("token=").nth(1).expect("token").to_string();
        let good = format!("theme=dark; {COOKIE_NAME}={token}");
        assert!(a.cookie_ok(&headers(&[("cookie", &good)])));
        let bad = format!("{COOKIE_NAME}={}", "0".repeat(64));
        assert!(!a.cookie_ok(&headers(&[("cookie", &bad)])));
        assert!(!a.cookie_ok(&HeaderMap::new()));
    }

    #[test]
    fn a_change_needs_the_csrf_header_and_the_consoles_origin() {
        let a = access();
        let csrf = a.csrf().to_string();
        assert!(a.csrf_ok(&headers(&[(CSRF_HEADER, &csrf)])));
        assert!(a.csrf_ok(&headers(&[
            (CSRF_HEADER, &csrf),
            ("origin", "http://127.0.0.1:8080")
        ])));
        assert!(!a.csrf_ok(&headers(&[
            (CSRF_HEADER, &csrf),
            ("origin", "http://evil.example")
        ])));
        assert!(!a.csrf_ok(&headers(&[("origin", "http://127.0.0.1:8080")])));
        assert!(!a.csrf_ok(&headers(&[(CSRF_HEADER, "0")])));
    }
}

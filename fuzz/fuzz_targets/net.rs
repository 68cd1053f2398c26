//! What a validator's client port decodes (`Envelope`, holding the `Request`) and what a
//! client decodes from a validator (`Response`, holding answers, alerts, grants), as
//! `bmpls-net` does. The first byte picks the type. An envelope that decodes goes on through
//! the node's admission guard (clock window, signature, rate and nonce tables) at a fixed
//! clock, as the server does next.
#![no_main]

use bmpls_fuzz::{NOW_MS, canonical};
use bmpls_net::guard::Guard;
use bmpls_net::{Envelope, Response};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&which, bytes)) = data.split_first() else {
        return;
    };
    if which % 2 == 0 {
        if let Some(envelope) = canonical::<Envelope>(bytes) {
            let _ = Guard::new().admit(&envelope, NOW_MS);
        }
    } else if let Some(Response::Error(error)) = canonical::<Response>(bytes) {
        // Errors are shown to people: their text must not fail either.
        let _ = error.to_string();
    }
});

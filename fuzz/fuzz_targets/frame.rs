//! A QUIC stream as `bmpls-net` reads it: length-prefixed frames (`frame::read_frame`, the
//! length checked against the limit before anything is allocated), each decoded as the
//! receiver would. The first byte picks the stream: a client's request stream (frames up to
//! `MAX_REQUEST_BYTES`, decoded as `Envelope`) or a peer's stream (up to
//! `MAX_PEER_FRAME_BYTES`, decoded as a consensus `Message`).
#![no_main]

use std::sync::OnceLock;

use bmpls_consensus::message::Message;
use bmpls_fuzz::canonical;
use bmpls_net::Envelope;
use bmpls_net::frame::read_frame;
use bmpls_net::limits::{MAX_PEER_FRAME_BYTES, MAX_REQUEST_BYTES};
use libfuzzer_sys::fuzz_target;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a current-thread runtime")
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, mut stream)) = data.split_first() else {
        return;
    };
    let peer = which % 2 == 1;
    let max = if peer {
        MAX_PEER_FRAME_BYTES
    } else {
        MAX_REQUEST_BYTES
    };
    runtime().block_on(async {
        // Each read either takes a whole frame off the stream or ends it.
        while let Ok(frame) = read_frame(&mut stream, max).await {
            assert!(frame.len() <= max, "a frame over the limit was read");
            if peer {
                let _ = canonical::<Message>(&frame);
            } else {
                let _ = canonical::<Envelope>(&frame);
            }
        }
    });
});

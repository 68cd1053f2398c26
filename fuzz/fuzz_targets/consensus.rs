//! What validators send each other (`Message`) and what a validator reads back from its
//! write-ahead log at start (`WalRecord`), as `bmpls-consensus` decodes them, then the
//! conversions to malachite's types that the engine applies to each message (block hashes
//! recomputed, certificates' signature counts checked). The first byte picks the type.
#![no_main]

use bmpls_consensus::message::{Message, WalRecord};
use bmpls_fuzz::canonical;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&which, bytes)) = data.split_first() else {
        return;
    };
    if which % 2 == 0 {
        match canonical::<Message>(bytes) {
            Some(Message::Proposal(proposal)) => {
                let _ = proposal.into_mt();
            }
            Some(Message::Vote(vote)) => {
                let _ = vote.into_mt();
            }
            Some(Message::Polka(polka)) => {
                let _ = polka.into_mt();
            }
            Some(Message::RoundCert(cert)) => {
                let _ = cert.into_mt();
            }
            _ => {}
        }
    } else {
        let _ = canonical::<WalRecord>(bytes);
    }
});

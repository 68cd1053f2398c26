//! A report sent again: a phone whose acknowledgement was lost (the connection dropped, the
//! node timed out) sends the same signed record again. The ledger refuses it as a replay, but
//! the reporter needs to know whether *its* record holds the sequence number, so that it can
//! count it as delivered, or a different one (a keystore restored from a backup), which it must
//! keep aside. The same bytes already committed are answered `Committed` with their height;
//! the same bytes still waiting in the pool wait for their block like a first submission.

use bmpls_consensus::{Refusal, TxRefusal};
use bmpls_types::Transaction;

use super::Driver;

/// What a refused report turned out to be.
pub(super) enum Resent {
    /// The same record is committed at this height.
    Committed(u64),
    /// The same record waits in the pool and nobody waits for it yet: wait for its block.
    Wait,
    /// The same record waits in the pool and an earlier submission waits for it: this one is
    /// answered as timed out (it may still commit; asking again after the block finds it).
    AlreadyAwaited,
}

impl Driver {
    /// Whether the refused `tx` is a report sent again (see the module comment); `None` when
    /// the refusal stands. Only replays are looked up, each in one store read: a replay is a
    /// resend or a mistake, never the bulk of a node's traffic.
    pub(super) fn resent(&self, tx: &Transaction, why: &Refusal) -> Option<Resent> {
        let Transaction::Report(_) = tx else {
            return None;
        };
        let duplicate = match why {
            Refusal::Rule(TxRefusal::Duplicate(hash)) => Some(*hash),
            Refusal::Rule(TxRefusal::Sequence { expected, got, .. }) if got < expected => None,
            _ => return None,
        };
        // The store holds what is committed (a block is applied before the next submission is
        // taken), and `tx_position` compares the whole record, not only its sequence number.
        if let Ok(Some((height, _))) = self.store.tx_position(tx) {
            return Some(Resent::Committed(height.0));
        }
        let hash = duplicate?;
        Some(if self.waiting.contains_key(&hash) {
            Resent::AlreadyAwaited
        } else {
            Resent::Wait
        })
    }
}

//! The carers' open alert long polls, indexed by carer and by deadline, so that a commit
//! re-evaluates only the watchers of the carers it brought events for, and a tick touches only
//! the watchers whose wait ran out. Capped per carer ([`MAX_WATCHERS_PER_CARER`]) and in all
//! ([`MAX_WATCHERS`]): a watch request over a cap is answered at once, with what there is.

use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

use tokio::sync::oneshot;

use bmpls_net::RequestError;
use bmpls_net::alert::WatchOutcome;
use bmpls_net::limits::{MAX_WATCHERS, MAX_WATCHERS_PER_CARER};
use bmpls_types::{CarerId, Height};

/// Where a watch request's outcome goes: the events, or an error (a delivery whose audit entry
/// could not be admitted is refused as `Busy`, as a query is).
pub(super) type WatchReply = oneshot::Sender<Result<WatchOutcome, RequestError>>;

/// A carer's watch request waiting for an alert.
#[derive(Debug)]
pub(super) struct Watcher {
    pub(super) carer: CarerId,
    pub(super) from: Height,
    pub(super) reply: WatchReply,
    pub(super) deadline: Instant,
}

/// The waiting watchers.
#[derive(Debug, Default)]
pub(super) struct Watchers {
    /// Per carer, by id.
    by_carer: HashMap<CarerId, HashMap<u64, Watcher>>,
    /// Every watcher's deadline, id and carer, earliest first.
    deadlines: BTreeSet<(Instant, u64, CarerId)>,
    next_id: u64,
}

impl Watchers {
    /// Watchers held.
    pub(super) fn len(&self) -> usize {
        self.deadlines.len()
    }

    /// Holds `watcher`, or hands it back when its carer or the node is at its cap. Watchers of
    /// the carer whose client went away are dropped first, so a reconnecting carer is not
    /// refused for its own abandoned polls.
    pub(super) fn add(&mut self, watcher: Watcher) -> Result<(), Watcher> {
        if let Some(mine) = self.by_carer.get_mut(&watcher.carer) {
            let gone: Vec<u64> = mine
                .iter()
                .filter(|(_, w)| w.reply.is_closed())
                .map(|(id, _)| *id)
                .collect();
            for id in gone {
                if let Some(w) = mine.remove(&id) {
                    self.deadlines.remove(&(w.deadline, id, w.carer));
                }
            }
        }
        let mine = self.by_carer.get(&watcher.carer).map_or(0, HashMap::len);
        if mine >= MAX_WATCHERS_PER_CARER || self.len() >= MAX_WATCHERS {
            return Err(watcher);
        }
        let id = self.next_id;
        self.next_id += 1;
        self.deadlines.insert((watcher.deadline, id, watcher.carer));
        self.by_carer
            .entry(watcher.carer)
            .or_default()
            .insert(id, watcher);
        Ok(())
    }

    /// The earliest deadline.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.first().map(|(at, _, _)| *at)
    }

    /// Takes every watcher of `carer`.
    pub(super) fn take_carer(&mut self, carer: &CarerId) -> Vec<Watcher> {
        let Some(mine) = self.by_carer.remove(carer) else {
            return Vec::new();
        };
        mine.into_iter()
            .map(|(id, w)| {
                self.deadlines.remove(&(w.deadline, id, w.carer));
                w
            })
            .collect()
    }

    /// Takes every watcher whose deadline is at or before `now`.
    pub(super) fn take_expired(&mut self, now: Instant) -> Vec<Watcher> {
        let mut expired = Vec::new();
        while let Some(&(at, id, carer)) = self.deadlines.first() {
            if at > now {
                break;
            }
            self.deadlines.pop_first();
            if let Some(mine) = self.by_carer.get_mut(&carer) {
                if let Some(w) = mine.remove(&id) {
                    expired.push(w);
                }
                if mine.is_empty() {
                    self.by_carer.remove(&carer);
                }
            }
        }
        expired
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn watcher(
        carer: u8,
        deadline: Instant,
    ) -> (
        Watcher,
        oneshot::Receiver<Result<WatchOutcome, RequestError>>,
    ) {
        let (reply, answer) = oneshot::channel();
        (
            Watcher {
                carer: CarerId([carer; 16]),
                from: Height(1),
                reply,
                deadline,
            },
            answer,
        )
    }

    #[test]
    fn a_carer_holds_at_most_its_cap_and_abandoned_polls_make_room() {
        let mut watchers = Watchers::default();
        let at = Instant::now() + Duration::from_secs(20);
        let mut open: Vec<_> = (0..MAX_WATCHERS_PER_CARER)
            .map(|_| {
                let (w, answer) = watcher(1, at);
                watchers.add(w).expect("under the cap");
                answer
            })
            .collect();
        let (over, _answer) = watcher(1, at);
        assert!(watchers.add(over).is_err(), "one more is refused");
        let (other, _other_answer) = watcher(2, at);
        assert!(watchers.add(other).is_ok(), "another carer is not");
        // A client gives up on one poll: the next one fits.
        drop(open.pop());
        let (again, _again_answer) = watcher(1, at);
        assert!(watchers.add(again).is_ok());
        assert_eq!(watchers.len(), MAX_WATCHERS_PER_CARER + 1);
    }

    #[test]
    fn the_node_holds_at_most_its_cap() {
        let mut watchers = Watchers::default();
        let at = Instant::now() + Duration::from_secs(20);
        let mut answers = Vec::new();
        let carers = MAX_WATCHERS / MAX_WATCHERS_PER_CARER;
        for carer in 0..carers {
            for _ in 0..MAX_WATCHERS_PER_CARER {
                let (reply, answer) = oneshot::channel();
                let mut id = [0; 16];
                id[..8].copy_from_slice(&(carer as u64).to_be_bytes());
                watchers
                    .add(Watcher {
                        carer: CarerId(id),
                        from: Height(1),
                        reply,
                        deadline: at,
                    })
                    .expect("under the cap");
                answers.push(answer);
            }
        }
        assert_eq!(watchers.len(), MAX_WATCHERS);
        let (fresh, _answer) = watcher(0xff, at);
        assert!(watchers.add(fresh).is_err(), "a new carer is refused too");
    }

    #[test]
    fn a_carer_s_watchers_are_taken_alone_and_deadlines_in_order() {
        let mut watchers = Watchers::default();
        let now = Instant::now();
        let mut answers = Vec::new();
        for (carer, after_ms) in [(1, 300), (2, 100), (1, 200), (3, 400)] {
            let (w, answer) = watcher(carer, now + Duration::from_millis(after_ms));
            watchers.add(w).expect("room");
            answers.push(answer);
        }
        let ones = watchers.take_carer(&CarerId([1; 16]));
        assert_eq!(ones.len(), 2);
        assert!(ones.iter().all(|w| w.carer == CarerId([1; 16])));
        assert_eq!(watchers.len(), 2, "the others wait on");
        assert_eq!(
            watchers.next_deadline(),
            Some(now + Duration::from_millis(100))
        );
        let expired = watchers.take_expired(now + Duration::from_millis(250));
        assert_eq!(
            expired.iter().map(|w| w.carer).collect::<Vec<_>>(),
            vec![CarerId([2; 16])]
        );
        assert_eq!(watchers.len(), 1);
        assert!(watchers.take_carer(&CarerId([2; 16])).is_empty());
    }
}

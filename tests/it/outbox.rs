//! The reporter's outbox against a real four-validator cluster: an hour of fixes queued while
//! no validator answers goes out in order, exactly once, when one does; a record sent again
//! after its acknowledgement was lost counts as delivered; a different record holding the
//! number, and a patient nobody enrolled, are refused and kept aside with their reasons.

use std::net::SocketAddr;

use bmpls_client::outbox::Patience;
use bmpls_client::{Fix, Nodes, Outbox, PatientKeystore};
use bmpls_net::{NextSeqOutcome, RefusalCode, Submitted};
use bmpls_types::{Seq, Transaction, Trigger};
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::consortium::{Consortium, LEVELS_TOML, commit, now_ms};

const DAY_MS: u64 = 86_400_000;

fn fix(time_ms: u64, i: u64) -> Fix {
    Fix {
        lat: 52.37 + i as f64 * 1e-5,
        lon: 4.89,
        accuracy_m: 5.0,
        altitude_m: 0.0,
        speed_m_s: 1.0,
        battery_percent: 80,
        trigger: Trigger::Periodic,
        fix_time_ms: time_ms,
    }
}

fn unreachable() -> Vec<SocketAddr> {
    (0..4)
        .map(|_| {
            std::net::UdpSocket::bind("127.0.0.1:0")
                .and_then(|s| s.local_addr())
                .expect("a free port")
        })
        .collect()
}

async fn next_seq(nodes: &Nodes, patient: &PatientKeystore) -> u64 {
    match nodes.next_seq(patient.patient).await.expect("asked") {
        (_, NextSeqOutcome::Next { seq, .. }) => seq,
        (_, other) => panic!("{other:?}"),
    }
}

#[test]
fn an_hour_offline_then_back_delivers_every_record_once_in_order() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let net = Consortium::start("outbox-offline", 200).await;
        let chain = net.validators.chain_id();
        let mut rng = StdRng::seed_from_u64(18);
        let store =
            PatientKeystore::create(&net.dir.path().join("alice"), LEVELS_TOML, DAY_MS, &mut rng)
                .expect("keystore");
        commit(&net.admin, vec![store.enrolment(&net.operator, chain)]).await;
        let reporter_nodes =
            Nodes::new(&net.addrs, &net.trust, store.reporter_key()).expect("clients");
        let down = Nodes::new(&unreachable(), &net.trust, store.reporter_key()).expect("clients");
        let mut reporter = store.reporter(chain).expect("reporter");
        let mut outbox = Outbox::open(&store).expect("outbox");

        // An hour of fixes every 30 s, each queued and a send tried, no validator answering.
        let start = now_ms() - 3_600_000;
        for i in 0..120u64 {
            let seqs = outbox
                .queue(
                    &store,
                    &mut reporter,
                    &[fix(start + i * 30_000, i)],
                    &mut rng,
                )
                .expect("queued");
            assert_eq!(seqs, i + 1..i + 2);
            if i % 40 == 0 {
                let flushed = outbox.flush(&down, Patience::once()).await.expect("flush");
                assert!(flushed.delivered.is_empty());
                assert!(
                    flushed
                        .last_failure
                        .expect("why")
                        .contains("no validator answered")
                );
            }
        }
        assert_eq!(outbox.waiting_len(), 120);
        assert_eq!(
            next_seq(&reporter_nodes, &store).await,
            1,
            "nothing reached the chain"
        );

        // The validators answer again: everything goes, in order, once.
        let flushed = outbox
            .flush(&reporter_nodes, Patience::once())
            .await
            .expect("flush");
        let seqs: Vec<u64> = flushed.delivered.iter().map(|(s, _)| *s).collect();
        assert_eq!(seqs, (1..=120).collect::<Vec<u64>>());
        assert!(
            flushed.refused.is_empty() && flushed.waiting == 0,
            "{flushed:?}"
        );
        assert_eq!(next_seq(&reporter_nodes, &store).await, 121);
        // Nothing is left to send, and reopening finds nothing waiting.
        drop(outbox);
        let outbox = Outbox::open(&store).expect("reopen");
        assert_eq!(outbox.waiting_len(), 0);
        assert!(outbox.refused().is_empty());
        reporter_nodes.close().await;
        down.close().await;
        net.admin.close().await;
        net.cluster.shutdown().await.expect("shutdown");
    });
}

#[test]
fn a_resend_after_a_lost_ack_is_delivered_and_a_different_record_is_kept_aside() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let net = Consortium::start("outbox-resend", 200).await;
        let chain = net.validators.chain_id();
        let mut rng = StdRng::seed_from_u64(19);
        let store =
            PatientKeystore::create(&net.dir.path().join("alice"), LEVELS_TOML, DAY_MS, &mut rng)
                .expect("keystore");
        commit(&net.admin, vec![store.enrolment(&net.operator, chain)]).await;
        let nodes = Nodes::new(&net.addrs, &net.trust, store.reporter_key()).expect("clients");
        let mut reporter = store.reporter(chain).expect("reporter");
        let mut outbox = Outbox::open(&store).expect("outbox");
        let t = now_ms() - 60_000;
        outbox
            .queue(
                &store,
                &mut reporter,
                &[fix(t, 0), fix(t + 30_000, 1)],
                &mut rng,
            )
            .expect("queued");

        // Both records reach the chain, but the acknowledgement never reaches the outbox.
        let sent: Vec<Transaction> = outbox.waiting().cloned().map(Transaction::Report).collect();
        let heights = commit(&nodes, sent).await;
        let flushed = outbox.flush(&nodes, Patience::once()).await.expect("flush");
        assert_eq!(
            flushed.delivered,
            vec![(1, heights[0].1), (2, heights[1].1)],
            "sent again, counted as delivered at the heights they committed at"
        );
        assert!(flushed.refused.is_empty());
        assert_eq!(next_seq(&nodes, &store).await, 3, "committed once");

        // A keystore restored from a backup signs a different record with number 3 after
        // the chain took another record 3: that one is refused and kept, with why.
        let other = reporter
            .build(&fix(t + 50_000, 9), Seq(3), &mut rng)
            .expect("record");
        commit(&nodes, vec![Transaction::Report(other)]).await;
        outbox
            .queue(&store, &mut reporter, &[fix(t + 55_000, 3)], &mut rng)
            .expect("queued");
        let flushed = outbox.flush(&nodes, Patience::once()).await.expect("flush");
        assert!(flushed.delivered.is_empty(), "{flushed:?}");
        assert_eq!(flushed.refused.len(), 1);
        assert_eq!(flushed.refused[0].1, RefusalCode::Replay);
        drop(outbox);
        let outbox = Outbox::open(&store).expect("reopen");
        let kept = outbox.refused();
        assert_eq!(kept.len(), 1);
        assert_eq!(
            (kept[0].record.seq, kept[0].code),
            (Seq(3), RefusalCode::Replay)
        );
        assert!(
            kept[0].reason.contains("out of sequence: next is 4"),
            "{}",
            kept[0].reason
        );
        assert_eq!(outbox.waiting_len(), 0);

        // A patient nobody enrolled: refused, kept with the reason.
        let stranger =
            PatientKeystore::create(&net.dir.path().join("bob"), LEVELS_TOML, DAY_MS, &mut rng)
                .expect("keystore");
        let mut theirs = Outbox::open(&stranger).expect("outbox");
        let mut their_reporter = stranger.reporter(chain).expect("reporter");
        theirs
            .queue(&stranger, &mut their_reporter, &[fix(t, 0)], &mut rng)
            .expect("queued");
        let flushed = theirs.flush(&nodes, Patience::once()).await.expect("flush");
        assert_eq!(flushed.refused.len(), 1, "{flushed:?}");
        assert_eq!(theirs.refused()[0].code, RefusalCode::NotEnrolled);
        assert!(!theirs.refused()[0].reason.is_empty());

        nodes.close().await;
        net.admin.close().await;
        net.cluster.shutdown().await.expect("shutdown");
    });
}

/// A resend while the first submission still waits for its block is never a replay: at
/// another validator (which has it from gossip, or takes it fresh) it waits for the block; at
/// the same one, whose earlier submission already waits, it is answered as timed out (the
/// outbox sends it again later and then finds it committed).
#[test]
fn a_resend_while_the_first_waits_is_answered_with_the_commit() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        // Blocks only every 2 s when idle: the resends arrive while the first waits.
        let net = Consortium::start("outbox-pending", 2_000).await;
        let chain = net.validators.chain_id();
        let mut rng = StdRng::seed_from_u64(20);
        let store =
            PatientKeystore::create(&net.dir.path().join("alice"), LEVELS_TOML, DAY_MS, &mut rng)
                .expect("keystore");
        commit(&net.admin, vec![store.enrolment(&net.operator, chain)]).await;
        let mut reporter = store.reporter(chain).expect("reporter");
        let record = reporter
            .build(&fix(now_ms() - 1_000, 0), Seq(1), &mut rng)
            .expect("record");
        let key = store.reporter_key();
        let first = Nodes::new(&net.addrs[..1], &net.trust, key).expect("clients");
        let same = Nodes::new(&net.addrs[..1], &net.trust, key).expect("clients");
        let other = Nodes::new(&net.addrs[1..2], &net.trust, key).expect("clients");
        let tx = Transaction::Report(record);
        let later = || tokio::time::sleep(std::time::Duration::from_millis(50));
        let (a, b, c) = tokio::join!(
            first.submit(vec![tx.clone()]),
            async {
                later().await;
                other.submit(vec![tx.clone()]).await
            },
            async {
                later().await;
                same.submit(vec![tx.clone()]).await
            }
        );
        let (a, b, c) = (a.expect("first"), b.expect("other"), c.expect("same"));
        let committed = |o: &[Submitted]| matches!(o, [Submitted::Committed { .. }]);
        assert!(committed(&a), "{a:?}");
        assert!(committed(&b), "at another validator: {b:?}");
        assert!(
            committed(&c)
                || matches!(
                    c.as_slice(),
                    [Submitted::Refused {
                        code: RefusalCode::Timeout,
                        ..
                    }]
                ),
            "at the same validator: {c:?}"
        );
        assert_eq!(next_seq(&first, &store).await, 2);
        for nodes in [first, same, other] {
            nodes.close().await;
        }
        net.admin.close().await;
        net.cluster.shutdown().await.expect("shutdown");
    });
}

/// A phone that moves from Wi-Fi to cellular in the middle of sending its backlog: its socket
/// changes address five times during the flush; the connection migrates, every record arrives
/// once, in order, and no submission fails (each batch is sent once).
#[test]
fn a_reporter_whose_address_changes_mid_flush_delivers_every_record_once() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let net = Consortium::start("outbox-rebind", 200).await;
        let chain = net.validators.chain_id();
        let mut rng = StdRng::seed_from_u64(21);
        let store =
            PatientKeystore::create(&net.dir.path().join("alice"), LEVELS_TOML, DAY_MS, &mut rng)
                .expect("keystore");
        commit(&net.admin, vec![store.enrolment(&net.operator, chain)]).await;
        let mut reporter = store.reporter(chain).expect("reporter");
        let mut outbox = Outbox::open(&store).expect("outbox");
        let count = 2_000u64;
        let start = now_ms() - count * 20_000;
        let fixes: Vec<Fix> = (0..count).map(|i| fix(start + i * 20_000, i)).collect();
        outbox
            .queue(&store, &mut reporter, &fixes, &mut rng)
            .expect("queued");
        // One validator only: a submission the move broke could not be failed over to another
        // within the same attempt, it would show as a second attempt.
        let nodes = Nodes::new(&net.addrs[..1], &net.trust, store.reporter_key()).expect("clients");
        // Connected before the first move, so that there is a connection to migrate.
        nodes.status().await.expect("status");
        let (flushed, moves) = tokio::join!(
            outbox.flush(&nodes, Patience::up_to(std::time::Duration::from_secs(60))),
            async {
                let mut seen = Vec::new();
                for _ in 0..5 {
                    tokio::time::sleep(std::time::Duration::from_millis(40)).await;
                    seen.push(nodes.rebind().expect("rebound")[0]);
                }
                seen
            }
        );
        let flushed = flushed.expect("flush");
        let distinct: std::collections::BTreeSet<_> = moves.iter().collect();
        assert_eq!(distinct.len(), 5, "a new address each time: {moves:?}");
        let seqs: Vec<u64> = flushed.delivered.iter().map(|(s, _)| *s).collect();
        assert_eq!(seqs, (1..=count).collect::<Vec<u64>>());
        assert!(flushed.refused.is_empty() && flushed.waiting == 0);
        assert_eq!(
            flushed.attempts, 2,
            "two batches, each sent once (last failure: {:?})",
            flushed.last_failure
        );
        assert_eq!(next_seq(&nodes, &store).await, count + 1);
        nodes.close().await;
        net.admin.close().await;
        net.cluster.shutdown().await.expect("shutdown");
    });
}

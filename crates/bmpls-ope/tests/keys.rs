//! The key hierarchy: covers, grants, one-way derivation, redaction, and the byte form.

use bmpls_ope::keys::{
    Epoch, GrantKeys, KeyError, MAX_COVER_NODES, MasterSecret, PatientKeys, TreeNode, minimal_cover,
};
use proptest::prelude::*;

const LEVELS: u8 = 6;

fn patient() -> PatientKeys {
    PatientKeys::new(&MasterSecret::from_bytes([3u8; 32]), LEVELS).expect("valid level count")
}

/// The cover is sorted, disjoint, exactly covers the window, and is no larger than a reference
/// that merges sibling leaves bottom up.
fn check_cover(from: u32, to: u32) {
    let cover = minimal_cover(Epoch(from), Epoch(to)).expect("non-empty window");
    assert!(cover.len() <= MAX_COVER_NODES);
    let mut next = u64::from(from);
    for node in &cover {
        assert!(node.is_valid());
        let (first, last) = node.span();
        assert_eq!(u64::from(first.0), next, "gap or overlap at {next}");
        next = u64::from(last.0) + 1;
    }
    assert_eq!(next, u64::from(to) + 1, "cover ends early or late");
    if to - from < 4096 {
        assert_eq!(
            cover.len(),
            reference_cover_size(from, to),
            "[{from}, {to}]"
        );
    }
}

/// Size of the minimal cover by bottom-up merging of complete sibling pairs.
fn reference_cover_size(from: u32, to: u32) -> usize {
    let mut nodes: Vec<TreeNode> = (from..=to).map(|e| TreeNode::above(Epoch(e), 32)).collect();
    loop {
        let mut merged = Vec::new();
        let mut changed = false;
        let mut i = 0;
        while i < nodes.len() {
            let a = nodes[i];
            if let Some(&b) = nodes.get(i + 1) {
                if a.depth == b.depth
                    && a.depth > 0
                    && a.prefix % 2 == 0
                    && b.prefix == a.prefix + 1
                {
                    merged.push(TreeNode {
                        depth: a.depth - 1,
                        prefix: a.prefix / 2,
                    });
                    i += 2;
                    changed = true;
                    continue;
                }
            }
            merged.push(a);
            i += 1;
        }
        nodes = merged;
        if !changed {
            return nodes.len();
        }
    }
}

#[test]
fn covers_of_edge_windows() {
    for (from, to) in [
        (0, 0),
        (0, u32::MAX),
        (u32::MAX, u32::MAX),
        (5, 5),
        (1, u32::MAX - 1),
        ((1 << 31) - 1, 1 << 31),
        (1023, 2048),
        (20_000, 20_365),
    ] {
        check_cover(from, to);
    }
    assert_eq!(
        minimal_cover(Epoch(0), Epoch(u32::MAX)).expect("ok").len(),
        1
    );
    assert!(matches!(
        minimal_cover(Epoch(2), Epoch(1)),
        Err(KeyError::EmptyWindow { .. })
    ));
}

/// Every epoch inside a grant's window gives the patient's key at the granted and coarser
/// levels; the epochs just outside and every finer level are refused.
fn check_grant(level: u8, from: u32, to: u32) {
    let keys = patient();
    let grant = keys
        .grant(level, Epoch(from), Epoch(to))
        .expect("valid grant");
    let mut epochs: Vec<u32> = vec![from, to, from + (to - from) / 2];
    if to - from < 64 {
        epochs.extend(from..=to);
    }
    for e in epochs {
        for l in level..LEVELS {
            let expected = keys.epoch_key(l, Epoch(e)).expect("valid");
            let derived = grant.epoch_key(l, Epoch(e)).expect("inside the grant");
            assert_eq!(derived.expose_secret(), expected.expose_secret());
        }
        if level > 0 {
            assert_eq!(
                grant.epoch_key(level - 1, Epoch(e)).map(|_| ()),
                Err(KeyError::FinerThanGranted {
                    asked: level - 1,
                    granted: level
                })
            );
        }
    }
    if let Some(before) = from.checked_sub(1) {
        assert_eq!(
            grant.epoch_key(level, Epoch(before)).map(|_| ()),
            Err(KeyError::OutsideWindow(Epoch(before)))
        );
    }
    if let Some(after) = to.checked_add(1) {
        assert_eq!(
            grant.epoch_key(level, Epoch(after)).map(|_| ()),
            Err(KeyError::OutsideWindow(Epoch(after)))
        );
    }
}

#[test]
fn grants_derive_exactly_their_window_and_levels() {
    check_grant(0, 0, 0);
    check_grant(2, 20_000, 20_030);
    check_grant(5, 1, 1000);
    check_grant(3, u32::MAX - 10, u32::MAX);
    check_grant(1, 0, u32::MAX);
}

#[test]
fn grant_bytes_round_trip_and_reject_garbage() {
    let grant = patient().grant(2, Epoch(100), Epoch(200)).expect("valid");
    let bytes = grant.to_bytes();
    let parsed = GrantKeys::from_bytes(&bytes).expect("round trip");
    assert_eq!(parsed.level(), 2);
    assert_eq!(parsed.window(), (Epoch(100), Epoch(200)));
    for e in [100, 150, 200] {
        assert_eq!(
            parsed.epoch_key(3, Epoch(e)).expect("ok").expose_secret(),
            grant.epoch_key(3, Epoch(e)).expect("ok").expose_secret()
        );
    }
    assert!(GrantKeys::from_bytes(&bytes[..bytes.len() - 1]).is_err());
    let mut longer = bytes.to_vec();
    longer.push(0);
    assert!(GrantKeys::from_bytes(&longer).is_err());
    let mut other_version = bytes.to_vec();
    other_version[0] = 2;
    assert!(GrantKeys::from_bytes(&other_version).is_err());
    // A node list that is not the window's cover (here: the window widened) is refused.
    let mut widened = bytes.to_vec();
    widened[10] = 201;
    assert!(GrantKeys::from_bytes(&widened).is_err());
}

#[test]
fn keys_are_distinct_across_levels_and_epochs() {
    let keys = patient();
    let mut seen = std::collections::BTreeSet::new();
    for level in 0..LEVELS {
        for epoch in [0, 1, 2, 1000, u32::MAX] {
            let key = keys.epoch_key(level, Epoch(epoch)).expect("valid");
            assert!(seen.insert(*key.expose_secret()), "repeated key");
            assert!(
                seen.insert(*key.seal_key().expose_secret()),
                "seal key repeats"
            );
        }
    }
    let other = PatientKeys::new(&MasterSecret::from_bytes([4u8; 32]), LEVELS).expect("valid");
    let key = other.epoch_key(0, Epoch(0)).expect("valid");
    assert!(!seen.contains(key.expose_secret()));
}

#[test]
fn secrets_never_print() {
    let master = MasterSecret::from_bytes([0xab; 32]);
    let keys = PatientKeys::new(&master, LEVELS).expect("valid");
    let epoch = keys.epoch_key(0, Epoch(7)).expect("valid");
    let grant = keys.grant(1, Epoch(0), Epoch(9)).expect("valid");
    for (secret, printed) in [
        (*master.expose_secret(), format!("{master:?}")),
        (*epoch.expose_secret(), format!("{epoch:?} {keys:?}")),
        (
            *epoch.seal_key().expose_secret(),
            format!("{:?}", epoch.seal_key()),
        ),
        (
            *grant.epoch_key(1, Epoch(3)).expect("ok").expose_secret(),
            format!("{grant:?}"),
        ),
    ] {
        let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
        assert!(!printed.contains(&hex[..16]), "secret printed: {printed}");
    }
}

#[test]
fn bad_levels_are_typed_errors() {
    let master = MasterSecret::from_bytes([1u8; 32]);
    assert_eq!(
        PatientKeys::new(&master, 0).map(|_| ()),
        Err(KeyError::LevelCount(0))
    );
    assert_eq!(
        PatientKeys::new(&master, 17).map(|_| ()),
        Err(KeyError::LevelCount(17))
    );
    let keys = patient();
    assert!(matches!(
        keys.epoch_key(LEVELS, Epoch(0)),
        Err(KeyError::NoSuchLevel { .. })
    ));
    assert!(matches!(
        keys.grant(0, Epoch(5), Epoch(4)),
        Err(KeyError::EmptyWindow { .. })
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn covers_are_exact_and_minimal(from in any::<u32>(), len in 0u32..5000) {
        let to = from.saturating_add(len);
        check_cover(from, to);
    }

    #[test]
    fn grants_hold_for_random_windows(level in 0u8..LEVELS, from in any::<u32>(), len in 0u32..100_000) {
        check_grant(level, from, from.saturating_add(len));
    }

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = GrantKeys::from_bytes(&bytes);
    }
}

//! The secrecy of the exact fix and of grant keys: AEAD sealing and HPKE wrapping.

use bmpls_crypto::seal::{open_fix, seal_fix};
use bmpls_crypto::wrap::{grant_aad, unwrap, unwrap_grant_keys, wrap, wrap_grant_keys};
use bmpls_crypto::{AgreementSecret, SealKey};
use bmpls_types::{
    BoundedString, BoundedVec, CarerId, Epoch, ExactFix, Grant, LevelIndex, PatientId, Seq,
    SignatureBytes, Trigger,
};

use crate::rng;

fn fix() -> ExactFix {
    ExactFix {
        lat_e7: 538_008_000,
        lon_e7: -15_491_000,
        accuracy_cm: 500,
        altitude_cm: 6_300,
        speed_cm_s: 120,
        battery_percent: 77,
        trigger: Trigger::Periodic,
        fix_time_ms: 1_790_000_000_000,
    }
}

#[test]
fn a_sealed_fix_opens_only_with_its_key_and_record() {
    let key = SealKey::from_bytes([3u8; 32]);
    let mut r = rng();
    let patient = PatientId([1; 16]);
    let sealed = seal_fix(&key, &fix(), &patient, Seq(4), Epoch(9), &mut r).expect("seals");
    assert_eq!(
        open_fix(&key, &sealed, &patient, Seq(4), Epoch(9)),
        Ok(fix())
    );
    let again = seal_fix(&key, &fix(), &patient, Seq(4), Epoch(9), &mut r).expect("seals");
    assert_ne!(sealed, again, "sealing is deterministic");
    assert_eq!(sealed.len(), again.len());
    assert!(
        open_fix(
            &SealKey::from_bytes([4u8; 32]),
            &sealed,
            &patient,
            Seq(4),
            Epoch(9)
        )
        .is_err()
    );
    assert!(open_fix(&key, &sealed, &patient, Seq(5), Epoch(9)).is_err());
    assert!(open_fix(&key, &sealed, &PatientId([2; 16]), Seq(4), Epoch(9)).is_err());
    for i in 0..sealed.len() {
        let mut changed = sealed.clone();
        changed[i] ^= 0x10;
        assert!(
            open_fix(&key, &changed, &patient, Seq(4), Epoch(9)).is_err(),
            "byte {i}"
        );
    }
    assert!(
        open_fix(
            &key,
            &sealed[..sealed.len() - 1],
            &patient,
            Seq(4),
            Epoch(9)
        )
        .is_err()
    );
}

#[test]
fn wrapped_keys_open_only_for_the_carer_and_the_grant() {
    let mut r = rng();
    let (secret, public) = AgreementSecret::generate(&mut r);
    assert_eq!(secret.public(), public);
    let wrapped = wrap(&public, b"grant key material", b"grant fields", &mut r).expect("wraps");
    assert_eq!(
        unwrap(&secret, &wrapped, b"grant fields")
            .expect("opens")
            .as_slice(),
        b"grant key material"
    );
    let (other, _) = AgreementSecret::generate(&mut r);
    assert!(unwrap(&other, &wrapped, b"grant fields").is_err());
    assert!(unwrap(&secret, &wrapped, b"other grant").is_err());
    assert!(unwrap(&secret, &wrapped[..20], b"grant fields").is_err());
    let mut changed = wrapped.clone();
    changed[40] ^= 1;
    assert!(unwrap(&secret, &changed, b"grant fields").is_err());
    assert!(!format!("{secret:?}").contains(&format!("{:?}", secret.to_bytes().as_slice())));
}

fn grant() -> Grant {
    Grant {
        patient: PatientId([1; 16]),
        carer: CarerId([2; 16]),
        level: LevelIndex(3),
        data_from: Epoch(100),
        data_to: Epoch(130),
        valid_from_ms: 1_000,
        valid_until_ms: 2_000,
        purpose: BoundedString::new("telecare").expect("short"),
        wrapped_keys: BoundedVec::empty(),
        sig: SignatureBytes::UNSIGNED,
    }
}

#[test]
fn grant_keys_open_only_under_the_grant_they_were_wrapped_for() {
    let mut r = rng();
    let (secret, public) = AgreementSecret::generate(&mut r);
    let mut g = grant();
    wrap_grant_keys(&mut g, &public, b"epoch-tree cover", &mut r).expect("wraps");
    assert_eq!(
        unwrap_grant_keys(&g, &secret).expect("opens").as_slice(),
        b"epoch-tree cover"
    );
    assert!(grant_aad(&g).starts_with(b"bmpls/v1/hpke/grant-aad"));
    let changes: [fn(&mut Grant); 8] = [
        |g| g.patient.0[0] ^= 1,
        |g| g.carer.0[0] ^= 1,
        |g| g.level.0 -= 1,
        |g| g.data_from.0 -= 1,
        |g| g.data_to.0 += 1,
        |g| g.valid_from_ms -= 1,
        |g| g.valid_until_ms += 1,
        |g| g.purpose = BoundedString::new("insurance").expect("short"),
    ];
    for (i, change) in changes.iter().enumerate() {
        let mut moved = g.clone();
        change(&mut moved);
        assert!(unwrap_grant_keys(&moved, &secret).is_err(), "field {i}");
    }
    let (other, _) = AgreementSecret::generate(&mut r);
    assert!(unwrap_grant_keys(&g, &other).is_err());
    let too_much = vec![0u8; bmpls_types::limits::MAX_WRAPPED_KEY_BYTES];
    assert!(wrap_grant_keys(&mut grant(), &public, &too_much, &mut r).is_err());
}

#[test]
fn secrets_print_redacted() {
    let key = SealKey::from_bytes([0x42; 32]);
    assert_eq!(format!("{key:?}"), "SealKey(<redacted>)");
    let (secret, _) = AgreementSecret::generate(&mut rng());
    assert_eq!(format!("{secret:?}"), "AgreementSecret(<redacted>)");
}

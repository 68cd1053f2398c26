//! Answers read from the ledger alone: the grants a carer holds or a patient gave, and a
//! patient's next sequence number. Each is given only to the key it concerns (the carer's
//! identity key; the patient's custodian key, or reporter key for the sequence number), since
//! who cares for whom is itself sensitive.

use bmpls_consensus::Ledger;
use bmpls_net::proto::MAX_GRANTS;
use bmpls_net::{GrantSummary, GrantsAsked, GrantsOutcome, NextSeqOutcome};
use bmpls_types::{BoundedVec, PatientId, PublicKeyBytes};

/// The grants `asked` for, if `client` may see them. `lagging` says why this validator may not
/// know the carer or patient yet (it is catching up with the chain), if it may not.
pub(super) fn grants(
    ledger: &Ledger,
    client: &PublicKeyBytes,
    asked: &GrantsAsked,
    lagging: Option<String>,
) -> GrantsOutcome {
    let known = match asked {
        GrantsAsked::OfCarer(carer) => ledger.carer_key(carer),
        GrantsAsked::OfPatient(patient) => ledger.patient(patient).map(|p| p.custodian_key),
    };
    match (known, lagging) {
        (Some(key), _) if key == *client => {}
        (None, Some(why)) => return GrantsOutcome::NotHeld(bmpls_net::proto::reason(why)),
        _ => return GrantsOutcome::NotYours,
    }
    let mut matching = ledger
        .grants()
        .filter(|(patient, _, terms)| match asked {
            GrantsAsked::OfCarer(carer) => terms.carer == *carer,
            GrantsAsked::OfPatient(of) => *patient == of,
        })
        .map(|(patient, grant, terms)| GrantSummary {
            patient: *patient,
            carer: terms.carer,
            grant: *grant,
            level: terms.level,
            data_from: terms.data_from,
            data_to: terms.data_to,
            valid_from_ms: terms.valid_from_ms,
            valid_until_ms: terms.valid_until_ms,
            standing: terms.standing,
        });
    let grants: Vec<GrantSummary> = matching.by_ref().take(MAX_GRANTS).collect();
    GrantsOutcome::Grants {
        grants: BoundedVec::new(grants).expect("at most MAX_GRANTS"),
        more: matching.next().is_some(),
    }
}

/// The patient's next sequence number, if `client` is its reporter or custodian key.
pub(super) fn next_seq(
    ledger: &Ledger,
    client: &PublicKeyBytes,
    patient: &PatientId,
) -> NextSeqOutcome {
    match ledger.patient(patient) {
        Some(state) if state.reporter_key == *client || state.custodian_key == *client => {
            NextSeqOutcome::Next {
                seq: state.last_seq.0 + 1,
                height: ledger.height().0,
            }
        }
        _ => NextSeqOutcome::NotYours,
    }
}

//! The transactions the simulated clients submit: patients enrolled by an operator, then their
//! reports in sequence. Contents are random bytes of the right shape: consensus never looks
//! inside a ciphertext.

use rand::{Rng, RngCore};

use bmpls_crypto::SigningKey;
use bmpls_types::{
    BoundedVec, Cell, ChainId, EnrolPatient, Epoch, LocationRecord, OpeCiphertext, PatientId,
    PublicKeyBytes, Seq, SignatureBytes, Transaction,
};

/// Levels per simulated record.
pub const LEVELS: u8 = 3;

/// One simulated patient: keys and the next sequence number.
pub struct Patient {
    id: PatientId,
    reporter: SigningKey,
    next_seq: u64,
}

/// Makes the workload's transactions.
pub struct Workload {
    chain: ChainId,
    patients: Vec<Patient>,
}

impl Workload {
    /// `count` patients and the transactions enrolling them on `chain`, signed by `operator` (a
    /// validator's key).
    pub fn enrol(
        count: usize,
        chain: &ChainId,
        operator: &SigningKey,
        rng: &mut impl RngCore,
    ) -> (Self, Vec<Transaction>) {
        let mut patients = Vec::with_capacity(count);
        let mut txs = Vec::with_capacity(count);
        for _ in 0..count {
            let mut id = [0u8; 16];
            rng.fill_bytes(&mut id);
            let reporter = seeded_key(rng);
            let custodian = seeded_key(rng);
            let mut enrol = EnrolPatient {
                patient: PatientId(id),
                reporter_key: reporter.public(),
                custodian_key: custodian.public(),
                level_count: LEVELS,
                // The simulator tests ordering, not privacy: its random ciphertexts are all
                // of the OPE kind.
                ore_levels: 0,
                epoch_length_ms: 86_400_000,
                operator: PublicKeyBytes(operator.public().0),
                sig: SignatureBytes::UNSIGNED,
            };
            operator.sign(&mut enrol, chain);
            txs.push(Transaction::EnrolPatient(enrol));
            patients.push(Patient {
                id: PatientId(id),
                reporter,
                next_seq: 1,
            });
        }
        (
            Self {
                chain: chain.clone(),
                patients,
            },
            txs,
        )
    }

    /// The next report of a random patient, signed by its reporter.
    pub fn report(&mut self, now_ms: u64, rng: &mut impl RngCore) -> Option<Transaction> {
        if self.patients.is_empty() {
            return None;
        }
        let index = rng.gen_range(0..self.patients.len());
        let patient = &mut self.patients[index];
        let cells = (0..LEVELS)
            .map(|_| Cell::Ope(OpeCiphertext(rng.r#gen())))
            .collect();
        let mut sealed = vec![0u8; 64];
        rng.fill_bytes(&mut sealed);
        let mut record = LocationRecord {
            patient: patient.id,
            seq: Seq(patient.next_seq),
            fix_time_ms: now_ms,
            epoch: Epoch(0),
            cells: BoundedVec::new(cells).ok()?,
            sealed: BoundedVec::new(sealed).ok()?,
            sig: SignatureBytes::UNSIGNED,
        };
        patient.reporter.sign(&mut record, &self.chain);
        patient.next_seq += 1;
        Some(Transaction::Report(record))
    }
}

/// A key drawn from the simulation's seeded generator, so that a seed replays exactly.
pub fn seeded_key(rng: &mut impl RngCore) -> SigningKey {
    let mut seed = [0u8; 32];
    rng.fill_bytes(&mut seed);
    SigningKey::from_seed(&seed)
}

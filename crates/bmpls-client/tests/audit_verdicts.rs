//! One verdict per signature on the audit path: an `Audit` whose signature carries a
//! small-order component, or a non-canonical `s`, is admitted by the mempool, passes the
//! proposal check and verifies in the patient's audit trail exactly when it verifies alone.

use bmpls_client::verify_audit;
use bmpls_consensus::{Genesis, Ledger, Mempool};
use bmpls_crypto::sign::verify_bytes;
use bmpls_crypto::torsion::{TorsionSigner, non_canonical_s};
use bmpls_crypto::{SigningKey, certify, merkle};
use bmpls_net::query::{AuditAnswer, AuditRequest, CertifiedHeader, ProvedTx};
use bmpls_types::{
    Audit, Block, BlockHeader, BoundedVec, Canonical, CarerId, Height, LevelIndex, PatientId,
    QueryKind, Round, SignatureBytes, Signed, Transaction, ValidatorId,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const GENESIS: &str = include_str!("../../../config/genesis.toml");

fn audit(node: &SigningKey, at: u64) -> Audit {
    Audit {
        node: ValidatorId(node.public().0),
        carer: CarerId([3; 16]),
        patient: PatientId([7; 16]),
        query: QueryKind::Track,
        level: LevelIndex(0),
        from_ms: at,
        to_ms: at + 1000,
        at_height: Height(0),
        sig: SignatureBytes::UNSIGNED,
    }
}

#[test]
fn mempool_proposal_check_and_audit_trail_agree_on_crafted_audit_signatures() {
    let genesis = Genesis::from_toml(GENESIS).expect("the shipped genesis loads");
    let keys: Vec<SigningKey> = (1u8..=4).map(|s| SigningKey::from_seed(&[s; 32])).collect();
    let byzantine = TorsionSigner::from_seed(&[1; 32]);
    let ledger = Ledger::genesis(genesis.validators.clone(), genesis.genesis_time_ms);
    let mut rng = StdRng::seed_from_u64(215);
    let mut seen = [0usize; 2];
    for trial in 0..200u64 {
        let mut crafted = audit(&keys[0], trial);
        let mut nonce = [0u8; 64];
        rng.fill(&mut nonce[..]);
        crafted.sig = byzantine.sign(
            &crafted.signing_bytes(ledger.chain_id()),
            &nonce,
            rng.gen_range(0..8),
        );
        if trial % 5 == 4 {
            crafted.sig = non_canonical_s(&crafted.sig);
        }
        let alone = verify_bytes(
            &keys[0].public(),
            &crafted.signing_bytes(ledger.chain_id()),
            &crafted.sig,
            "t",
        )
        .is_ok();
        seen[usize::from(alone)] += 1;
        // Honest companions by the other validators, before and after it.
        let mut txs = Vec::new();
        for key in &keys[1..] {
            if rng.gen_bool(0.5) {
                let mut honest = audit(key, trial);
                key.sign(&mut honest, ledger.chain_id());
                txs.push(Transaction::Audit(honest));
            }
        }
        let at = rng.gen_range(0..=txs.len());
        txs.insert(at, Transaction::Audit(crafted));

        let mut pool = Mempool::new(100, 1 << 20);
        let pooled = pool.admit_all(txs.clone(), &ledger);
        assert_eq!(pooled[at].is_ok(), alone, "trial {trial}: mempool");

        let encoded: Vec<Vec<u8>> = txs.iter().map(Canonical::encode).collect();
        let header = BlockHeader {
            chain_id: ledger.chain_id().clone(),
            height: Height(1),
            prev_hash: ledger.tip(),
            time_ms: ledger.tip_time_ms() + 1,
            proposer: ValidatorId(keys[1].public().0),
            tx_root: merkle::root(&encoded),
            tx_count: txs.len() as u32,
        };
        let block = Block {
            header: header.clone(),
            txs: BoundedVec::new(txs.clone()).expect("few"),
        };
        let checked = ledger.check_block(&block, 1000, header.time_ms);
        assert_eq!(checked.is_ok(), alone, "trial {trial}: proposal check");

        // The patient's audit trail, as a node that holds the certified block would serve it.
        let cert = certify(&block, Round(0), &[&keys[1], &keys[2], &keys[3]]);
        let entries = (0..txs.len())
            .map(|i| ProvedTx {
                tx: txs[i].clone(),
                block: 0,
                proof: merkle::prove(&encoded, i).expect("in range"),
            })
            .collect();
        let answer = AuditAnswer {
            blocks: BoundedVec::new(vec![CertifiedHeader { header, cert }]).expect("one"),
            entries: BoundedVec::new(entries).expect("few"),
            more: false,
        };
        let request = AuditRequest {
            patient: PatientId([7; 16]),
            from_height: Height(0),
            limit: 16,
        };
        let trail = verify_audit(answer, &request, genesis.validators.crypto());
        assert_eq!(trail.is_ok(), alone, "trial {trial}: audit trail");
    }
    assert!(
        seen[0] > 0 && seen[1] > 0,
        "both verdicts are exercised: {seen:?}"
    );
}

//! Blocks: the transaction root, the commit certificate's quorum, and transaction signatures.

use bmpls_crypto::hash::block_hash;
use bmpls_crypto::{
    CryptoError, SigningKey, Validator, ValidatorSet, merkle, precommit_bytes, verify_block,
    verify_header, verify_inclusion, verify_transactions, verify_view_inclusion, verify_views,
};
use bmpls_types::{
    Block, BlockHash, BlockHeader, BoundedVec, Canonical, ChainId, CommitCertificate, Finer,
    Height, LevelIndex, PrecommitTarget, Round, Transaction, ValidatorId,
};
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::{rng, signed_record};

struct Chain {
    keys: Vec<SigningKey>,
    reporter: SigningKey,
    set: ValidatorSet,
    block: Block,
}

fn chain_id() -> ChainId {
    ChainId::new("test-chain").expect("short")
}

fn chain() -> Chain {
    let mut r = rng();
    let keys: Vec<SigningKey> = (0..4).map(|_| SigningKey::generate(&mut r)).collect();
    let set = ValidatorSet::new(
        chain_id(),
        keys.iter()
            .map(|k| Validator {
                id: ValidatorId(k.public().0),
                power: 1,
            })
            .collect(),
    )
    .expect("valid set");
    let reporter = SigningKey::generate(&mut r);
    let txs: Vec<Transaction> = (0..3)
        .map(|i| {
            let mut record = signed_record(&reporter);
            record.seq.0 += i;
            reporter.sign(&mut record, &chain_id());
            Transaction::Report(record)
        })
        .collect();
    let block = Block {
        header: BlockHeader {
            chain_id: chain_id(),
            height: Height(5),
            prev_hash: BlockHash([1; 32]),
            time_ms: 7,
            proposer: ValidatorId(keys[1].public().0),
            tx_root: merkle::tx_root(&txs),
            tx_count: 3,
        },
        txs: BoundedVec::new(txs).expect("small"),
    };
    Chain {
        keys,
        reporter,
        set,
        block,
    }
}

fn id(chain: &Chain, i: usize) -> ValidatorId {
    ValidatorId(chain.keys[i].public().0)
}

/// A certificate signed by the validators at positions `signers` of `chain.keys`.
fn certificate(chain: &Chain, signers: &[usize]) -> CommitCertificate {
    let hash = block_hash(&chain.block.header);
    let message = precommit_bytes(&PrecommitTarget {
        chain_id: chain.block.header.chain_id.clone(),
        height: chain.block.header.height,
        round: Round(0),
        block_hash: hash,
    });
    CommitCertificate {
        height: chain.block.header.height,
        round: Round(0),
        block_hash: hash,
        signatures: BoundedVec::new(
            signers
                .iter()
                .map(|&i| (id(chain, i), chain.keys[i].sign_bytes(&message)))
                .collect(),
        )
        .expect("small"),
    }
}

fn check(chain: &Chain, cert: &CommitCertificate, expected: Result<(), CryptoError>) {
    assert_eq!(
        verify_block(chain.block.clone(), cert, &chain.set).map(|_| ()),
        expected
    );
}

#[test]
fn a_block_verifies_with_a_quorum_certificate_only() {
    let c = chain();
    let good = certificate(&c, &[0, 1, 3]);
    check(&c, &good, Ok(()));
    check(&c, &certificate(&c, &[0, 1, 2, 3]), Ok(()));
    check(
        &c,
        &certificate(&c, &[0, 1]),
        Err(CryptoError::NoQuorum { power: 2, total: 4 }),
    );
    check(
        &c,
        &certificate(&c, &[0, 1, 1]),
        Err(CryptoError::RepeatedSigner(id(&c, 1))),
    );

    let outsider = SigningKey::generate(&mut StdRng::seed_from_u64(99));
    let mut unknown = good.clone();
    let mut sigs = unknown.signatures.clone().into_inner();
    sigs[0].0 = ValidatorId(outsider.public().0);
    unknown.signatures = BoundedVec::new(sigs).expect("small");
    check(
        &c,
        &unknown,
        Err(CryptoError::UnknownSigner(ValidatorId(outsider.public().0))),
    );

    let mut forged = good.clone();
    let mut sigs = forged.signatures.clone().into_inner();
    sigs[2].1.0[5] ^= 1;
    forged.signatures = BoundedVec::new(sigs).expect("small");
    check(&c, &forged, Err(CryptoError::BadSignature("precommit")));

    let mut other_round = good.clone();
    other_round.round = Round(1);
    check(
        &c,
        &other_round,
        Err(CryptoError::BadSignature("precommit")),
    );
    let mut other_height = good.clone();
    other_height.height = Height(6);
    check(&c, &other_height, Err(CryptoError::CertificateMismatch));
}

#[test]
fn a_block_of_another_chain_is_refused() {
    let mut c = chain();
    c.block.header.chain_id = ChainId::new("other-chain").expect("short");
    let cert = certificate(&c, &[0, 1, 2, 3]);
    check(&c, &cert, Err(CryptoError::WrongChain));
}

#[test]
fn a_header_that_does_not_match_the_transactions_is_refused() {
    let mut c = chain();
    c.block.header.tx_count = 2;
    let cert = certificate(&c, &[0, 1, 2, 3]);
    check(&c, &cert, Err(CryptoError::BadTxRoot));
    let mut c = chain();
    let mut txs = c.block.txs.clone().into_inner();
    // A validly signed transaction that the header's root does not commit to.
    let mut other = signed_record(&c.reporter);
    other.seq.0 += 10;
    c.reporter.sign(&mut other, &chain_id());
    txs[1] = Transaction::Report(other);
    c.block.txs = BoundedVec::new(txs).expect("small");
    let cert = certificate(&c, &[0, 1, 2, 3]);
    check(&c, &cert, Err(CryptoError::BadTxRoot));
}

#[test]
fn any_changed_byte_of_a_committed_block_fails() {
    let c = chain();
    let cert = certificate(&c, &[0, 1, 2, 3]);
    let bytes = c.block.encode();
    for i in 1..bytes.len() {
        for flip in [0x01u8, 0x80] {
            let mut changed = bytes.clone();
            changed[i] ^= flip;
            if let Ok(decoded) = Block::decode(&changed) {
                assert!(
                    verify_block(decoded, &cert, &c.set).is_err(),
                    "byte {i} flip {flip:#x} still verifies"
                );
            }
        }
    }
}

#[test]
fn transaction_signatures_are_checked_as_a_batch_and_the_bad_one_named() {
    let c = chain();
    let reporter = c.reporter.public();
    let txs = c.block.txs.clone().into_inner();
    assert_eq!(
        verify_transactions(&txs, &chain_id(), |_| Some(reporter)),
        Ok(())
    );
    assert_eq!(
        verify_transactions(&txs, &chain_id(), |_| Some(c.keys[0].public())),
        Err(CryptoError::BadTransaction { index: 0 })
    );
    assert_eq!(
        verify_transactions(&txs, &chain_id(), |tx| (tx != &txs[1]).then_some(reporter)),
        Err(CryptoError::BadTransaction { index: 1 })
    );
    let mut tampered = txs.clone();
    if let Transaction::Report(record) = &mut tampered[2] {
        record.fix_time_ms += 1;
    }
    assert_eq!(
        verify_transactions(&tampered, &chain_id(), |_| Some(reporter)),
        Err(CryptoError::BadTransaction { index: 2 })
    );
}

#[test]
fn a_validator_set_refuses_repeats_zero_power_and_emptiness() {
    let c = chain();
    let mut repeated = c.set.validators().to_vec();
    repeated.push(repeated[0].clone());
    assert!(ValidatorSet::new(chain_id(), repeated).is_err());
    let mut zero = c.set.validators().to_vec();
    zero[0].power = 0;
    assert!(ValidatorSet::new(chain_id(), zero).is_err());
    assert!(ValidatorSet::new(chain_id(), Vec::new()).is_err());
    let mut overflow = c.set.validators().to_vec();
    overflow[0].power = u64::MAX;
    assert!(ValidatorSet::new(chain_id(), overflow).is_err());
}

/// A carer holds the header, the certificate, one transaction and its proof.
#[test]
fn a_transaction_proves_its_place_in_a_committed_header() {
    let c = chain();
    let cert = certificate(&c, &[0, 2, 3]);
    let header = verify_header(c.block.header.clone(), &cert, &c.set).expect("committed");
    let tree = merkle::MerkleTree::from_leaf_hashes(
        c.block.txs.iter().map(merkle::tx_leaf_hash).collect(),
    );
    for (index, tx) in c.block.txs.iter().enumerate() {
        let proof = tree.prove(index).expect("in range");
        let committed = verify_inclusion(&header, tx.clone(), &proof).expect("included");
        assert_eq!(
            (committed.height(), committed.position(), committed.get()),
            (Height(5), index as u64, tx)
        );
        // A proof that claims a bigger tree than the header's count is refused even where
        // its path alone would still lead to the root.
        let mut bigger = proof.clone();
        bigger.size += 1;
        assert_eq!(
            verify_inclusion(&header, tx.clone(), &bigger),
            Err(CryptoError::BadProof)
        );
        let other = c.block.txs[(index + 1) % 3].clone();
        assert_eq!(
            verify_inclusion(&header, other, &proof),
            Err(CryptoError::BadProof)
        );
    }
    let mut altered = c.block.header.clone();
    altered.time_ms += 1;
    assert_eq!(
        verify_header(altered, &cert, &c.set).map(|_| ()),
        Err(CryptoError::CertificateMismatch)
    );
}

/// A carer receives a record cut to its level: every cut proves the same leaf and carries the
/// reporter's signature, and a cut whose parts were changed proves nothing.
#[test]
fn a_record_view_at_any_level_proves_and_verifies_and_changes_are_caught() {
    let c = chain();
    let cert = certificate(&c, &[0, 1, 2]);
    let header = verify_header(c.block.header.clone(), &cert, &c.set).expect("committed");
    let tree = merkle::MerkleTree::from_leaf_hashes(
        c.block.txs.iter().map(merkle::tx_leaf_hash).collect(),
    );
    let Transaction::Report(record) = &c.block.txs[1] else {
        unreachable!("the test chain holds reports")
    };
    let proof = tree.prove(1).expect("in range");
    let reporter = c.reporter.public();
    for level in 0..=record.cells.len() as u8 {
        let view = record.view(LevelIndex(level));
        assert_eq!(view.level, LevelIndex(level));
        assert_eq!(
            view.sealed().is_some(),
            level == 0,
            "the sealed fix only at level 0"
        );
        assert_eq!(view.cells.len(), record.cells.len() - usize::from(level));
        assert_eq!(view.digest().expect("consistent"), record.digest());
        let committed = verify_view_inclusion(&header, view.clone(), &proof).expect("proved");
        assert_eq!(committed.position(), 1);
        assert!(verify_views(vec![(view.clone(), reporter)], &chain_id()).is_ok());

        let mut other_proof = proof.clone();
        other_proof.index = 0;
        assert_eq!(
            verify_view_inclusion(&header, view.clone(), &other_proof).map(|_| ()),
            Err(CryptoError::BadProof)
        );
        let mut later = view.clone();
        later.fix_time_ms += 1;
        assert!(verify_view_inclusion(&header, later.clone(), &proof).is_err());
        assert!(verify_views(vec![(later, reporter)], &chain_id()).is_err());
        if let Some(first) = view.cells.first() {
            let mut moved = view.clone();
            let mut cells = moved.cells.to_vec();
            cells[0] = match first {
                bmpls_types::Cell::Ope(c) => {
                    bmpls_types::Cell::Ope(bmpls_types::OpeCiphertext(c.0 ^ 1))
                }
                // The same bytes passed off as the other scheme's are another ciphertext.
                bmpls_types::Cell::Ore(r) => bmpls_types::Cell::Ope(bmpls_types::OpeCiphertext(
                    u128::from(r.0.first().copied().unwrap_or(0)),
                )),
            };
            moved.cells = BoundedVec::new(cells).expect("bounded");
            assert!(verify_view_inclusion(&header, moved, &proof).is_err());
        }
        // Claiming a level other than the cut's breaks the chain.
        let mut relabelled = view.clone();
        relabelled.level = LevelIndex(level.wrapping_add(1));
        assert!(verify_view_inclusion(&header, relabelled, &proof).is_err());
    }
    // A sealed fix above level 0, or a hidden chain at level 0, is malformed.
    let mut sealed_high = record.view(LevelIndex(1));
    sealed_high.finer = Finer::Sealed(record.sealed.clone());
    assert_eq!(
        verify_view_inclusion(&header, sealed_high, &proof).map(|_| ()),
        Err(CryptoError::BadView)
    );
    let mut hidden_low = record.view(LevelIndex(0));
    hidden_low.finer = Finer::Hidden(bmpls_types::Hash32([0; 32]));
    assert_eq!(
        verify_views(vec![(hidden_low, reporter)], &chain_id()).map(|_| ()),
        Err((0, CryptoError::BadView))
    );
}

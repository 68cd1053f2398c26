//! Proof types: a [`Verified<T>`] can only be made by the checks in this module, so code that
//! forgot to verify a record or a block does not compile.

use bmpls_types::{
    Block, BlockHeader, Canonical, ChainId, CommitCertificate, Height, LocationRecord,
    PrecommitTarget, PublicKeyBytes, RecordView, Signed, Transaction,
};

use crate::error::CryptoError;
use crate::hash::block_hash;
use crate::hashed::HashedBlock;
use crate::merkle::{self, InclusionProof};
use crate::sign::{verify, verify_batch, verify_bytes};
use crate::validators::ValidatorSet;

/// A value whose signatures and proofs were checked. Only this crate's verifying functions make
/// one; elsewhere the constructor is private:
///
/// ```compile_fail
/// let forged: bmpls_crypto::Verified<u8> = bmpls_crypto::Verified(0);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified<T>(T);

impl<T> Verified<T> {
    /// The verified value.
    pub fn get(&self) -> &T {
        &self.0
    }

    /// The verified value, owned (it stops being marked as verified).
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for Verified<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// Checks a record's signature for `chain` under the patient's reporter key.
pub fn verify_record(
    record: LocationRecord,
    chain: &ChainId,
    reporter: &PublicKeyBytes,
) -> Result<Verified<LocationRecord>, CryptoError> {
    verify(&record, chain, reporter, "location record")?;
    Ok(Verified(record))
}

/// Checks many records' signatures, each under its reporter key, as one Ed25519 batch (about
/// twice as fast per signature); on failure, the first bad record is named by its position.
pub fn verify_records(
    records: Vec<(LocationRecord, PublicKeyBytes)>,
    chain: &ChainId,
) -> Result<Vec<Verified<LocationRecord>>, (usize, CryptoError)> {
    let batch: Vec<_> = records
        .iter()
        .map(|(record, key)| (*key, record.signing_bytes(chain), record.sig))
        .collect();
    check_batch(&batch, "location record")?;
    Ok(records.into_iter().map(|(r, _)| Verified(r)).collect())
}

/// Checks `batch` as one Ed25519 batch; on failure names the first bad signature by position.
fn check_batch(
    batch: &[(PublicKeyBytes, Vec<u8>, bmpls_types::SignatureBytes)],
    what: &'static str,
) -> Result<(), (usize, CryptoError)> {
    if !batch.is_empty() && verify_batch(batch).is_err() {
        for (index, (key, bytes, sig)) in batch.iter().enumerate() {
            verify_bytes(key, bytes, sig, what).map_err(|e| (index, e))?;
        }
        return Err((0, CryptoError::BadSignature(what)));
    }
    Ok(())
}

/// Checks that `block` is exactly what `cert` commits: the transactions hash to the header's
/// `tx_root` and count, the block belongs to the set's chain, the certificate names this
/// header's hash and height, and distinct known validators holding more than two thirds of the
/// power signed the precommit (checked as one Ed25519 batch). The transactions' own signatures
/// need the ledger's state to know their keys: see [`crate::verify_transactions`].
///
/// The block comes back with its transactions' hashes, which the checks computed and which
/// the ledger, the mempool and the store then use rather than hashing it again.
pub fn verify_block(
    block: impl Into<HashedBlock>,
    cert: &CommitCertificate,
    validators: &ValidatorSet,
) -> Result<Verified<HashedBlock>, CryptoError> {
    let block = block.into();
    if block.header.tx_count as usize != block.txs.len() || block.tx_root() != block.header.tx_root
    {
        return Err(CryptoError::BadTxRoot);
    }
    verify_certificate(&block.header, cert, validators)?;
    Ok(Verified(block))
}

/// Checks that `header` is what `cert` commits, as [`verify_block`] does, for a reader that has
/// the header but not the transactions (a carer checking an answer): what the header commits
/// to is then proved transaction by transaction with [`verify_inclusion`].
pub fn verify_header(
    header: BlockHeader,
    cert: &CommitCertificate,
    validators: &ValidatorSet,
) -> Result<Verified<BlockHeader>, CryptoError> {
    verify_certificate(&header, cert, validators)?;
    Ok(Verified(header))
}

/// A transaction proved to be at `position` of the committed block at `height`. Only
/// [`verify_inclusion`] makes one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Committed<T> {
    height: Height,
    position: u64,
    value: T,
}

impl<T> Committed<T> {
    /// Height of the block that holds it.
    pub fn height(&self) -> Height {
        self.height
    }

    /// Position in that block.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// The value.
    pub fn get(&self) -> &T {
        &self.value
    }

    /// The value, owned (it stops being marked as committed).
    pub fn into_inner(self) -> T {
        self.value
    }
}

/// Checks that `tx` is in the committed block of `header`: the proof is for a tree of the
/// header's `tx_count` leaves (a proof's size is otherwise unchecked by the path alone) and
/// leads from the transaction's leaf bytes to the header's `tx_root`.
pub fn verify_inclusion(
    header: &Verified<BlockHeader>,
    tx: Transaction,
    proof: &InclusionProof,
) -> Result<Committed<Transaction>, CryptoError> {
    let leaf = merkle::tx_leaf_hash(&tx);
    included(header, leaf, proof, tx)
}

/// Checks that the record `view` was cut from is a report in the committed block of `header`,
/// as [`verify_inclusion`] does for a whole transaction. The reporter's signature is checked
/// apart ([`verify_views`]), because only the ledger knows the key in force.
pub fn verify_view_inclusion(
    header: &Verified<BlockHeader>,
    view: RecordView,
    proof: &InclusionProof,
) -> Result<Committed<RecordView>, CryptoError> {
    let digest = view.digest().ok_or(CryptoError::BadView)?;
    included(header, merkle::report_leaf_hash(&digest), proof, view)
}

/// `value`, whose leaf hash is `leaf`, as committed at `proof.index` of `header`'s block: the
/// proof must be for a tree of the header's `tx_count` leaves (a proof's size is otherwise
/// unchecked by the path alone) and lead from `leaf` to the header's `tx_root`.
fn included<T>(
    header: &Verified<BlockHeader>,
    leaf: bmpls_types::Hash32,
    proof: &InclusionProof,
    value: T,
) -> Result<Committed<T>, CryptoError> {
    if proof.size != u64::from(header.tx_count) {
        return Err(CryptoError::BadProof);
    }
    merkle::verify_leaf_hash(&header.tx_root, leaf, proof)?;
    Ok(Committed {
        height: header.height,
        position: proof.index,
        value,
    })
}

/// Checks the reporter's signature of the record each view was cut from, each under its key,
/// as one Ed25519 batch; on failure, the first bad view is named by its position.
pub fn verify_views(
    views: Vec<(RecordView, PublicKeyBytes)>,
    chain: &ChainId,
) -> Result<Vec<Verified<RecordView>>, (usize, CryptoError)> {
    let mut batch = Vec::with_capacity(views.len());
    for (index, (view, key)) in views.iter().enumerate() {
        let digest = view.digest().ok_or((index, CryptoError::BadView))?;
        batch.push((*key, digest.signing_bytes(chain), view.sig));
    }
    check_batch(&batch, "location record")?;
    Ok(views.into_iter().map(|(v, _)| Verified(v)).collect())
}

/// Checks the certificate of `header` (its chain, hash, height and quorum of signatures).
fn verify_certificate(
    header: &BlockHeader,
    cert: &CommitCertificate,
    validators: &ValidatorSet,
) -> Result<(), CryptoError> {
    if header.chain_id != *validators.chain_id() {
        return Err(CryptoError::WrongChain);
    }
    let hash = block_hash(header);
    if cert.block_hash != hash || cert.height != header.height {
        return Err(CryptoError::CertificateMismatch);
    }
    let target = PrecommitTarget {
        chain_id: header.chain_id.clone(),
        height: cert.height,
        round: cert.round,
        block_hash: hash,
    };
    let message = precommit_bytes(&target);
    let mut seen = vec![false; validators.validators().len()];
    let mut power = 0u64;
    let mut batch = Vec::with_capacity(cert.signatures.len());
    for (id, signature) in cert.signatures.iter() {
        let (position, validator) = validators.get(id).ok_or(CryptoError::UnknownSigner(*id))?;
        if std::mem::replace(&mut seen[position], true) {
            return Err(CryptoError::RepeatedSigner(*id));
        }
        // Distinct members of a set whose total fits in a u64: no overflow.
        power += validator.power;
        batch.push((id.public_key(), message.clone(), *signature));
    }
    if !validators.is_quorum(power) {
        return Err(CryptoError::NoQuorum {
            power,
            total: validators.total_power(),
        });
    }
    if verify_batch(&batch).is_err() {
        // Name the culprit for the caller's error message.
        for (key, message, signature) in &batch {
            verify_bytes(key, message, signature, "precommit")?;
        }
        return Err(CryptoError::BadSignature("precommit"));
    }
    Ok(())
}

/// The bytes a validator signs to precommit: tag, then the canonical target.
pub fn precommit_bytes(target: &PrecommitTarget) -> Vec<u8> {
    let mut out = PrecommitTarget::TAG.to_vec();
    out.push(0);
    out.extend_from_slice(&target.encode());
    out
}

/// Assembles the commit certificate of `block` from the precommits that `signers` make in
/// `round`: what a validator does once it holds a quorum of them (and how tests and benches
/// commit blocks without running consensus).
pub fn certify(
    block: &Block,
    round: bmpls_types::Round,
    signers: &[&crate::SigningKey],
) -> CommitCertificate {
    let hash = block_hash(&block.header);
    let message = precommit_bytes(&bmpls_types::PrecommitTarget {
        chain_id: block.header.chain_id.clone(),
        height: block.header.height,
        round,
        block_hash: hash,
    });
    let signatures = signers
        .iter()
        .take(bmpls_types::limits::MAX_VALIDATORS)
        .map(|key| {
            (
                bmpls_types::ValidatorId(key.public().0),
                key.sign_bytes(&message),
            )
        })
        .collect();
    CommitCertificate {
        height: block.header.height,
        round,
        block_hash: hash,
        signatures: bmpls_types::BoundedVec::new(signatures)
            .unwrap_or_else(|_| bmpls_types::BoundedVec::empty()),
    }
}

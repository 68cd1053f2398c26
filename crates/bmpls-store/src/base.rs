//! A store that starts at a snapshot instead of the genesis: a validator whose disk was wiped,
//! or a new one, installs the checkpoint of the state after block `h` (verified by the node
//! against its peers first; the store knows nothing of what the bytes mean), the certified
//! header of block `h`, and each patient's last sequence number at `h`. The store then holds no
//! block at or below `h` — only that header and its certificate — and applies blocks from
//! `h + 1` on as any store does. What it answers is complete only for what the blocks after
//! the base carry; [`Store::base`] names the base so that the node refuses the rest.

use bmpls_types::limits::MAX_FIX_AHEAD_MS;
use bmpls_types::{BlockHeader, Canonical, CommitCertificate, PatientId, Seq};

use crate::error::StoreError;
use crate::layout::{self, BASE_SEQ, CERT, CHECKPOINT, META, be_u64, height_key, seal_value};
use crate::store::{META_BASE, META_TIP, Store};

/// What a store starts from when it does not start at the genesis.
#[derive(Debug)]
pub struct Base<'a> {
    /// The header of the last block the snapshot includes.
    pub header: &'a BlockHeader,
    /// Its commit certificate.
    pub cert: &'a CommitCertificate,
    /// The node's checkpoint of the state after that block (stored as the checkpoint at its
    /// height).
    pub checkpoint: &'a [u8],
    /// Each patient's last committed sequence number at that block (patients with none need
    /// not be named).
    pub last_seqs: &'a [(PatientId, Seq)],
}

impl Store {
    /// Makes an empty store start after `base`: its header, certificate and checkpoint, the
    /// tip at its block, and the patients' sequence numbers, in one atomic batch, flushed to
    /// stable storage before returning. Refused unless the store holds no block.
    pub fn install_base(&self, base: &Base<'_>) -> Result<(), StoreError> {
        let (tip, _) = self.tip()?;
        if tip.0 != 0 || self.base()?.is_some() {
            return Err(StoreError::NotEmpty { tip: tip.0 });
        }
        let header = base.header;
        let hash = bmpls_crypto::hash::block_hash(header);
        if base.cert.height != header.height || base.cert.block_hash != hash {
            return Err(StoreError::BaseMismatch);
        }
        let mut batch = sled::Batch::default();
        batch.insert(
            layout::key(META, &[META_BASE]),
            seal_value(&header.encode()),
        );
        batch.insert(
            height_key(CERT, header.height),
            seal_value(&base.cert.encode()),
        );
        batch.insert(
            height_key(CHECKPOINT, header.height),
            seal_value(base.checkpoint),
        );
        for (patient, seq) in base.last_seqs {
            batch.insert(
                layout::key(BASE_SEQ, &[&patient.0]),
                seal_value(&seq.0.to_be_bytes()),
            );
        }
        let mut tip = header.height.0.to_be_bytes().to_vec();
        tip.extend_from_slice(&hash.0);
        batch.insert(layout::key(META, &[META_TIP]), seal_value(&tip));
        self.tree.apply_batch(batch)?;
        self.flush()
    }

    /// The header of the block this store starts after, if it was installed from a snapshot
    /// ([`Store::install_base`]); `None` for a store that starts at the genesis.
    pub fn base(&self) -> Result<Option<BlockHeader>, StoreError> {
        self.read(&layout::key(META, &[META_BASE]), "base", |p| {
            BlockHeader::decode(p).ok()
        })
    }

    /// The earliest fix time from which this store holds every committed record (0 for a
    /// store that starts at the genesis). A record in a block at or before the base has a fix
    /// time at most [`MAX_FIX_AHEAD_MS`] after that block's time; a later fix is in a later
    /// block, so a window starting after that is complete. Records of earlier fixes that a
    /// phone uploaded late are in later blocks too, but the window's answer could miss others.
    pub fn complete_from_ms(&self) -> Result<u64, StoreError> {
        Ok(self
            .base()?
            .map_or(0, |b| b.time_ms.saturating_add(MAX_FIX_AHEAD_MS + 1)))
    }

    /// The error of a question about what only blocks at or before the base hold; `None` for a
    /// store that starts at the genesis (where a missing block is damage, not a base).
    pub fn before_base(&self) -> Result<Option<StoreError>, StoreError> {
        Ok(self.base()?.map(|b| StoreError::BeforeBase {
            base: b.height.0,
            complete_from_ms: b.time_ms.saturating_add(MAX_FIX_AHEAD_MS + 1),
        }))
    }

    /// The patient's last sequence number at the base (0 without a base, or for a patient
    /// with no report before it): where the patient's stored records must continue from.
    pub(crate) fn base_seq(&self, patient: &PatientId) -> Result<Seq, StoreError> {
        let key = layout::key(BASE_SEQ, &[&patient.0]);
        Ok(self
            .read(&key, "base sequence number", |p| be_u64(p, 0).map(Seq))?
            .unwrap_or(Seq(0)))
    }
}

//! A block as stored: its header and its transactions in order, each report replaced by its
//! patient and sequence number, so that a record is stored once (in its chunk) and the block is
//! reassembled byte for byte when read.
//!
//! Payload: `header len u32 ‖ header ‖ count u32 ‖ count × (0 ‖ len u32 ‖ transaction | 1 ‖
//! patient 16 bytes ‖ seq u64)`.

use bmpls_types::{
    Block, BlockHeader, BoundedVec, Canonical, LocationRecord, PatientId, Seq, Transaction,
};

use crate::error::StoreError;
use crate::layout::Reader;

const INLINE: u8 = 0;
const REPORT: u8 = 1;

/// A block skeleton being written.
pub(crate) struct Skeleton {
    out: Vec<u8>,
}

impl Skeleton {
    /// Starts the skeleton of a block of `count` transactions.
    pub(crate) fn new(header: &BlockHeader, count: usize) -> Self {
        let encoded = header.encode();
        let mut out = Vec::with_capacity(8 + encoded.len() + count * 25);
        out.extend_from_slice(&(encoded.len() as u32).to_be_bytes());
        out.extend_from_slice(&encoded);
        out.extend_from_slice(&(count as u32).to_be_bytes());
        Self { out }
    }

    /// The next transaction is this report, stored in its patient's chunk.
    pub(crate) fn reference(&mut self, record: &LocationRecord) {
        self.out.push(REPORT);
        self.out.extend_from_slice(&record.patient.0);
        self.out.extend_from_slice(&record.seq.0.to_be_bytes());
    }

    /// The next transaction is stored here.
    pub(crate) fn inline(&mut self, tx: &Transaction) {
        let encoded = tx.encode();
        self.out.push(INLINE);
        self.out
            .extend_from_slice(&(encoded.len() as u32).to_be_bytes());
        self.out.extend_from_slice(&encoded);
    }

    /// The payload to store.
    pub(crate) fn finish(self) -> Vec<u8> {
        self.out
    }

    /// The header of a checked payload, without reading its transactions.
    pub(crate) fn header(payload: &[u8]) -> Option<BlockHeader> {
        let mut r = Reader::new(payload);
        r.u32()
            .and_then(|len| r.take(len as usize))
            .and_then(|h| BlockHeader::decode(h).ok())
    }

    /// The transaction at `index` of a checked payload if it is stored inline (any but a
    /// report), skipping the others without reading them.
    pub(crate) fn inline_at(payload: &[u8], index: u32) -> Option<Transaction> {
        let mut r = Reader::new(payload);
        r.u32().and_then(|len| r.take(len as usize))?;
        let count = r.u32()?;
        if index >= count {
            return None;
        }
        for position in 0..=index {
            match r.u8()? {
                INLINE => {
                    let body = r.u32().and_then(|len| r.take(len as usize))?;
                    if position == index {
                        return Transaction::decode(body).ok();
                    }
                }
                REPORT => {
                    r.take(16 + 8)?;
                    if position == index {
                        return None;
                    }
                }
                _ => return None,
            }
        }
        None
    }

    /// The block of a checked payload; `fetch(patient, seq, position)` supplies each report.
    /// `Ok(None)` if the payload is malformed.
    pub(crate) fn rebuild(
        payload: &[u8],
        mut fetch: impl FnMut(&PatientId, Seq, u32) -> Result<LocationRecord, StoreError>,
    ) -> Result<Option<Block>, StoreError> {
        let mut r = Reader::new(payload);
        let Some(header) = r
            .u32()
            .and_then(|len| r.take(len as usize))
            .and_then(|h| BlockHeader::decode(h).ok())
        else {
            return Ok(None);
        };
        let Some(count) = r.u32() else {
            return Ok(None);
        };
        let mut txs = Vec::with_capacity((count as usize).min(r.remaining()));
        for position in 0..count {
            let tx = match r.u8() {
                Some(INLINE) => {
                    match r
                        .u32()
                        .and_then(|len| r.take(len as usize))
                        .and_then(|t| Transaction::decode(t).ok())
                    {
                        Some(tx) => tx,
                        None => return Ok(None),
                    }
                }
                Some(REPORT) => {
                    let Some((patient, seq)) = r
                        .take(16)
                        .and_then(|p| p.try_into().ok())
                        .zip(r.u64())
                        .map(|(p, s)| (PatientId(p), Seq(s)))
                    else {
                        return Ok(None);
                    };
                    Transaction::Report(fetch(&patient, seq, position)?)
                }
                _ => return Ok(None),
            };
            txs.push(tx);
        }
        if !r.is_empty() || header.tx_count != count {
            return Ok(None);
        }
        Ok(BoundedVec::new(txs).ok().map(|txs| Block { header, txs }))
    }
}

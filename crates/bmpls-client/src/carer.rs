//! A carer's side: its keystore on disk, and the verification of a node's answer.
//!
//! ```text
//! carer.toml      the carer's id and role (public)
//! identity.key    signs the carer's queries (secret)
//! agreement.key   opens the grant keys wrapped to the carer with HPKE (secret)
//! ```
//!
//! A node is not trusted. [`verify_answer`] accepts an answer only if every block header
//! carries a commit certificate of a quorum of the genesis validators, every transaction is
//! proved into its block, the grant is the one asked under, each record is signed by the
//! reporter key the chain had in force for it, lies in the window asked, and (for an area)
//! matches the encrypted ranges (OPE bounds compared as integers; at an ORE level the query's
//! left tokens compared with the record's right ciphertext, as the node should have). Cells are
//! then decrypted ([`crate::ciphers::LevelCiphers::decrypt`]: ORE by bisection under the parent
//! cell, which the view carries). A track is the records whose fix time is in the window, in
//! (fix time, seq) order; since reports flushed out of order make their sequence numbers
//! non-consecutive in that order, the node adds as exclusion evidence the records whose seq
//! lies between answered ones but whose fix time is outside the window (or that the limit cut
//! off). The evidence is proved and signed like the records and must really be excluded; the
//! records and evidence together must hold consecutive sequence numbers, so a record dropped
//! from between them shows. The evidence is then dropped, and only the records are decrypted
//! with the grant's keys. A record withheld from either end of the track's run of sequence
//! numbers does not show: the carer cannot know where the run should start or end.
//! Records arrive as views cut to the level asked: the carer never receives a finer level's
//! ciphertext, nor the sealed fix unless it asked at level 0 (exact); exclusion evidence arrives
//! cut past the last level, with no ciphertext at all.

use std::collections::BTreeMap;
use std::path::Path;

use rand_core::CryptoRngCore;

use bmpls_crypto::keyfile::{read_secret, write_secret};
use bmpls_crypto::wrap::unwrap_grant_keys;
use bmpls_crypto::{
    AgreementSecret, CryptoError, SealKey, SigningKey, ValidatorSet, Verified, verify_header,
    verify_inclusion, verify_view_inclusion, verify_views,
};
use bmpls_grid::{CellIndex, LevelSet};
use bmpls_net::query::{Answer, Ask, Query};
use bmpls_ope::keys::{Epoch as KeyEpoch, GrantKeys};
use bmpls_ore::{RightCiphertext, TokenRanges};
use bmpls_types::{
    AgreementKey, BlockHeader, CarerId, Cell, ChainId, EnrolCarer, ExactFix, Grant, Height,
    PatientId, PublicKeyBytes, Role, Seq, SignatureBytes, Transaction, TxHash,
};

use crate::ciphers::LevelCiphers;
use crate::keystore::KeystoreError;

/// A carer's keys.
pub struct CarerKeystore {
    /// The carer's id.
    pub carer: CarerId,
    /// The carer's role.
    pub role: Role,
    identity: SigningKey,
    agreement: AgreementSecret,
}

impl std::fmt::Debug for CarerKeystore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CarerKeystore")
            .field("carer", &self.carer)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

fn file_error(path: &Path, reason: impl std::fmt::Display) -> KeystoreError {
    KeystoreError::File {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

/// A role's name on the command line and in `carer.toml`.
pub fn role_name(role: Role) -> &'static str {
    match role {
        Role::Gp => "gp",
        Role::Family => "family",
        Role::TelecareOperator => "telecare",
        Role::Insurer => "insurer",
        Role::Researcher => "researcher",
    }
}

/// The role named `name` (see [`role_name`]).
pub fn role_by_name(name: &str) -> Option<Role> {
    [
        Role::Gp,
        Role::Family,
        Role::TelecareOperator,
        Role::Insurer,
        Role::Researcher,
    ]
    .into_iter()
    .find(|r| role_name(*r) == name)
}

impl CarerKeystore {
    /// Creates a carer with fresh keys in `dir`.
    pub fn create(
        dir: &Path,
        role: Role,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Self, KeystoreError> {
        if dir.join("carer.toml").exists() {
            return Err(KeystoreError::Exists(dir.to_path_buf()));
        }
        std::fs::create_dir_all(dir).map_err(|e| file_error(dir, e))?;
        let mut id = [0u8; 16];
        rng.fill_bytes(&mut id);
        let identity = SigningKey::generate(rng);
        let (agreement, _) = AgreementSecret::generate(rng);
        write_secret(&dir.join("identity.key"), &identity.to_seed())?;
        let secret: [u8; 32] = agreement
            .to_bytes()
            .as_slice()
            .try_into()
            .map_err(|_| file_error(dir, "agreement key of the wrong length"))?;
        write_secret(&dir.join("agreement.key"), &secret)?;
        let path = dir.join("carer.toml");
        std::fs::write(
            &path,
            format!(
                "# A bmpls carer's public card: give it to a patient's custodian to be granted\n\
                 # access. The secrets are the .key files beside it.\n\
                 carer = \"{}\"\nrole = \"{}\"\nidentity_key = \"{}\"\nagreement_key = \"{}\"\n",
                hex::encode(id),
                role_name(role),
                hex::encode(identity.public().0),
                hex::encode(agreement.public().0)
            ),
        )
        .map_err(|e| file_error(&path, e))?;
        Ok(Self {
            carer: CarerId(id),
            role,
            identity,
            agreement,
        })
    }

    /// Opens the carer keystore in `dir`.
    pub fn open(dir: &Path) -> Result<Self, KeystoreError> {
        let path = dir.join("carer.toml");
        let card = CarerCard::read(&path)?;
        let agreement = AgreementSecret::from_bytes(&*read_secret(&dir.join("agreement.key"))?)
            .map_err(|e| file_error(&dir.join("agreement.key"), e))?;
        let identity = SigningKey::from_seed(&*read_secret(&dir.join("identity.key"))?);
        if identity.public() != card.identity_key || agreement.public() != card.agreement_key {
            return Err(file_error(&path, "the card's keys are not the keystore's"));
        }
        Ok(Self {
            carer: card.carer,
            role: card.role,
            identity,
            agreement,
        })
    }

    /// The key that signs this carer's queries.
    pub fn identity(&self) -> &SigningKey {
        &self.identity
    }

    /// The secret that opens grants wrapped to this carer.
    pub fn agreement(&self) -> &AgreementSecret {
        &self.agreement
    }

    /// The enrolment of this carer on `chain`, signed by `operator` (a validator operator's
    /// key).
    pub fn enrolment(&self, operator: &SigningKey, chain: &ChainId) -> Transaction {
        let mut enrol = EnrolCarer {
            carer: self.carer,
            identity_key: self.identity.public(),
            agreement_key: self.agreement.public(),
            role: self.role,
            operator: PublicKeyBytes(operator.public().0),
            sig: SignatureBytes::UNSIGNED,
        };
        operator.sign(&mut enrol, chain);
        Transaction::EnrolCarer(enrol)
    }
}

/// A carer's public card (`carer.toml`): what a custodian needs to grant it access.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CarerCard {
    /// The carer's id.
    pub carer: CarerId,
    /// Its role.
    pub role: Role,
    /// The key that signs its queries.
    pub identity_key: PublicKeyBytes,
    /// The key grants are wrapped to.
    pub agreement_key: AgreementKey,
}

impl CarerCard {
    /// Reads and checks a card; a wrong field is named in the error.
    pub fn read(path: &Path) -> Result<Self, KeystoreError> {
        let text = std::fs::read_to_string(path).map_err(|e| file_error(path, e))?;
        let (mut carer, mut role, mut identity, mut agreement) = (None, None, None, None);
        let hex_field = |value: &str, out: &mut [u8], what: &str| {
            hex::decode_to_slice(value, out).map_err(|_| {
                file_error(path, format!("{what} must be {} hex digits", 2 * out.len()))
            })
        };
        for line in text
            .lines()
            .map(str::trim)
            .filter(|l| !l.starts_with('#') && !l.is_empty())
        {
            let (key, value) = line
                .split_once('=')
                .ok_or_else(|| file_error(path, format!("bad line {line:?}")))?;
            let value = value.trim().trim_matches('"');
            match key.trim() {
                "carer" => {
                    let mut id = [0u8; 16];
                    hex_field(value, &mut id, "carer")?;
                    carer = Some(CarerId(id));
                }
                "role" => {
                    role = Some(
                        role_by_name(value)
                            .ok_or_else(|| file_error(path, format!("unknown role {value:?}")))?,
                    );
                }
                "identity_key" => {
                    let mut key = [0u8; 32];
                    hex_field(value, &mut key, "identity_key")?;
                    identity = Some(PublicKeyBytes(key));
                }
                "agreement_key" => {
                    let mut key = [0u8; 32];
                    hex_field(value, &mut key, "agreement_key")?;
                    agreement = Some(AgreementKey(key));
                }
                other => return Err(file_error(path, format!("unknown field {other:?}"))),
            }
        }
        let missing = |what: &str| file_error(path, format!("missing {what}"));
        Ok(Self {
            carer: carer.ok_or_else(|| missing("carer"))?,
            role: role.ok_or_else(|| missing("role"))?,
            identity_key: identity.ok_or_else(|| missing("identity_key"))?,
            agreement_key: agreement.ok_or_else(|| missing("agreement_key"))?,
        })
    }
}

/// Why an answer was not believed.
#[derive(Debug, thiserror::Error)]
pub enum AnswerError {
    /// A header, certificate, proof or signature does not verify.
    #[error("{what}: {source}")]
    Proof {
        /// What was being checked.
        what: &'static str,
        /// Why it failed.
        source: CryptoError,
    },
    /// The answer is inconsistent with the question or with itself.
    #[error("the node's answer is wrong: {0}")]
    Wrong(String),
    /// The grant's keys cannot be opened or do not open this record.
    #[error("the grant's keys: {0}")]
    Keys(String),
}

fn wrong(why: impl Into<String>) -> AnswerError {
    AnswerError::Wrong(why.into())
}

/// A record as the carer sees it, after verification and decryption.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    /// The record's sequence number.
    pub seq: Seq,
    /// When the fix was taken.
    pub fix_time_ms: u64,
    /// The block that committed it.
    pub height: Height,
    /// The cell at the query's level.
    pub cell: CellIndex,
    /// The exact fix, when the query was at the finest level under an exact grant.
    pub exact: Option<ExactFix>,
}

/// A verified, decrypted answer.
#[derive(Clone, Debug)]
pub struct VerifiedAnswer {
    /// The chain height the node answered at.
    pub at_height: Height,
    /// The grant relied on.
    pub grant: Grant,
    /// The patient's key epoch length, from the proved enrolment.
    pub epoch_length_ms: u64,
    /// The records, in fix-time order.
    pub records: Vec<Seen>,
    /// Whether the limit cut the answer short.
    pub more: bool,
}

/// Checks each certified header of an answer against the genesis validators.
pub(crate) fn verify_headers(
    blocks: &[bmpls_net::query::CertifiedHeader],
    validators: &ValidatorSet,
) -> Result<Vec<Verified<BlockHeader>>, AnswerError> {
    blocks
        .iter()
        .map(|b| verify_header(b.header.clone(), &b.cert, validators))
        .collect::<Result<_, _>>()
        .map_err(|source| AnswerError::Proof {
            what: "block certificate",
            source,
        })
}

/// Opens the keys `grant` wraps to `carer`: the window's epoch-tree cover at the granted level
/// and every coarser one.
pub fn open_grant(grant: &Grant, carer: &CarerKeystore) -> Result<GrantKeys, AnswerError> {
    let material = unwrap_grant_keys(grant, carer.agreement())
        .map_err(|e| AnswerError::Keys(e.to_string()))?;
    GrantKeys::from_bytes(&material).map_err(|e| AnswerError::Keys(e.to_string()))
}

/// A grant and the patient's key history, verified.
#[derive(Clone, Debug)]
pub struct ProvedGrant {
    /// The grant.
    pub grant: Grant,
    /// The patient's key epoch length, from the proved enrolment.
    pub epoch_length_ms: u64,
    /// The reporter key in force from each sequence number on.
    pub reporter_keys: BTreeMap<u64, PublicKeyBytes>,
}

/// Checks that `grant` is the grant `asked` (patient, grant hash) names, held by `carer`, and
/// that `keys` are the patient's enrolment then key rotations in chain order, each proved into
/// one of the verified `headers`.
fn prove_grant(
    headers: &[Verified<BlockHeader>],
    grant: &bmpls_net::query::ProvedTx,
    keys: &[bmpls_net::query::ProvedTx],
    asked: (&PatientId, &TxHash),
    carer: &CarerKeystore,
) -> Result<ProvedGrant, AnswerError> {
    let (patient, grant_hash) = asked;
    let prove = |p: &bmpls_net::query::ProvedTx, what: &'static str| {
        let header = headers
            .get(p.block as usize)
            .ok_or_else(|| wrong(format!("{what} names a block the answer lacks")))?;
        verify_inclusion(header, p.tx.clone(), &p.proof)
            .map_err(|source| AnswerError::Proof { what, source })
    };

    let proved = prove(grant, "grant inclusion")?;
    let asked_for = bmpls_crypto::hash::tx_hash(proved.get()) == *grant_hash;
    let grant = match proved.into_inner() {
        Transaction::Grant(g) if asked_for && g.patient == *patient && g.carer == carer.carer => g,
        _ => return Err(wrong("the grant is not the one asked under")),
    };

    let mut reporter_keys: BTreeMap<u64, PublicKeyBytes> = BTreeMap::new();
    let mut epoch_length_ms = 0;
    let mut last_position = None;
    for (i, proved) in keys.iter().enumerate() {
        let committed = prove(proved, "key inclusion")?;
        let position = (committed.height(), committed.position());
        if last_position.is_some_and(|p| p >= position) {
            return Err(wrong("key transactions out of chain order"));
        }
        last_position = Some(position);
        match (i, committed.into_inner()) {
            (0, Transaction::EnrolPatient(e)) if e.patient == *patient => {
                reporter_keys.insert(0, e.reporter_key);
                epoch_length_ms = e.epoch_length_ms;
            }
            (i, Transaction::RotateReporterKey(r)) if i > 0 && r.patient == *patient => {
                reporter_keys.insert(r.from_seq.0, r.new_reporter_key);
            }
            _ => return Err(wrong("the patient's key history is malformed")),
        }
    }
    if reporter_keys.is_empty() {
        return Err(wrong("the patient's enrolment is missing"));
    }
    Ok(ProvedGrant {
        grant,
        epoch_length_ms,
        reporter_keys,
    })
}

/// Verifies a node's proof of a grant against the genesis `validators` (the grant, held by
/// `carer`, and the patient's key history, each proved into a certified block) and opens the
/// grant's keys: what a carer needs before it asks under the grant, gained without a query
/// (so without an audit entry the carer did not mean).
pub fn verify_grant(
    evidence: &bmpls_net::query::GrantEvidence,
    asked: &bmpls_net::query::GrantRequest,
    validators: &ValidatorSet,
    carer: &CarerKeystore,
) -> Result<(ProvedGrant, GrantKeys), AnswerError> {
    let headers = verify_headers(&evidence.blocks, validators)?;
    let proved = prove_grant(
        &headers,
        &evidence.grant,
        &evidence.keys,
        (&asked.patient, &asked.grant),
        carer,
    )?;
    let keys = open_grant(&proved.grant, carer)?;
    Ok((proved, keys))
}

/// Verifies `answer` to `query` against the genesis `validators`, then decrypts it with the
/// grant's keys opened by `carer` (see the module documentation for what is checked).
pub fn verify_answer(
    answer: Answer,
    query: &Query,
    validators: &ValidatorSet,
    levels: &LevelSet,
    carer: &CarerKeystore,
) -> Result<VerifiedAnswer, AnswerError> {
    let headers = verify_headers(&answer.blocks, validators)?;
    let ProvedGrant {
        grant,
        epoch_length_ms,
        reporter_keys: keys,
    } = prove_grant(
        &headers,
        &answer.grant,
        &answer.keys,
        (&query.patient, &query.grant),
        carer,
    )?;
    let header_of = |block: u32, what: &'static str| {
        headers
            .get(block as usize)
            .ok_or_else(|| wrong(format!("{what} names a block the answer lacks")))
    };

    let grant_keys = open_grant(&grant, carer)?;
    let level = query.level.0;
    if levels.get(bmpls_grid::LevelIndex(level)).is_none() {
        return Err(AnswerError::Keys(format!(
            "no level {level} in the level file"
        )));
    }
    let mut ciphers = LevelCiphers::new(levels.clone());
    // An ORE area's tokens, parsed once, to check each record against as the node did.
    let ore_area: BTreeMap<u32, TokenRanges> = match &query.ask {
        Ask::WithinOre(area) => area
            .tokens
            .iter()
            .map(|e| {
                TokenRanges::parse(e.ranges.iter())
                    .map(|t| (e.epoch.0, t))
                    .map_err(|e| AnswerError::Keys(e.to_string()))
            })
            .collect::<Result<_, _>>()?,
        _ => BTreeMap::new(),
    };

    if !matches!(query.ask, Ask::Track) && !answer.excluded.is_empty() {
        return Err(wrong("exclusion evidence in an answer that is not a track"));
    }
    if answer.records.len() + answer.excluded.len() > query.limit as usize {
        return Err(wrong("more records than the limit"));
    }
    // Every record and piece of exclusion evidence proved into its block, then all their
    // signatures checked as one batch.
    let count = answer.records.len() + answer.excluded.len();
    let mut proved_views = Vec::with_capacity(count);
    let mut heights = Vec::with_capacity(count);
    for (i, proved) in answer
        .records
        .iter()
        .chain(answer.excluded.iter())
        .enumerate()
    {
        let what = "record inclusion";
        let committed = verify_view_inclusion(
            header_of(proved.block, what)?,
            proved.view.clone(),
            &proved.proof,
        )
        .map_err(|source| AnswerError::Proof { what, source })?;
        let evidence = i >= answer.records.len();
        if evidence && !proved.view.cells.is_empty() {
            return Err(wrong("exclusion evidence that carries ciphertexts"));
        }
        heights.push(committed.height());
        let view = committed.into_inner();
        if view.patient != query.patient {
            return Err(wrong("a record of another patient"));
        }
        if !evidence && view.level != query.level {
            return Err(wrong("a record cut to another level than asked"));
        }
        let key = keys
            .range(..=view.seq.0)
            .next_back()
            .map(|(_, k)| *k)
            .ok_or_else(|| wrong("no reporter key for a record"))?;
        proved_views.push((view, key));
    }
    let mut verified =
        verify_views(proved_views, validators.chain_id()).map_err(|(_, source)| {
            AnswerError::Proof {
                what: "record signature",
                source,
            }
        })?;
    let excluded: Vec<_> = verified
        .split_off(answer.records.len())
        .into_iter()
        .map(|r| (r.get().fix_time_ms, r.get().seq, r.get().epoch))
        .collect();
    heights.truncate(answer.records.len());

    let mut seen: Vec<Seen> = Vec::with_capacity(verified.len());
    for (record, height) in verified.iter().zip(heights) {
        let record = record.get();
        if !(query.from_ms..=query.to_ms).contains(&record.fix_time_ms) {
            return Err(wrong(format!(
                "record {} is outside the window",
                record.seq.0
            )));
        }
        let ciphertext = record
            .cell(query.level)
            .ok_or_else(|| wrong("a record without the level asked"))?;
        let inside = match (&query.ask, ciphertext) {
            (Ask::Within(epochs), Cell::Ope(c)) => epochs
                .iter()
                .filter(|e| e.epoch == record.epoch)
                .flat_map(|e| e.ranges.iter())
                .any(|(lo, hi)| (lo.0..=hi.0).contains(&c.0)),
            (Ask::WithinOre(_), Cell::Ore(right)) => ore_area
                .get(&record.epoch.0)
                .zip(RightCiphertext::from_bytes(&right.0).ok())
                .is_some_and(|(tokens, right)| tokens.contains(&right).unwrap_or(false)),
            (Ask::Within(_) | Ask::WithinOre(_), _) => false,
            (Ask::Last | Ask::Track, _) => true,
        };
        if !inside {
            return Err(wrong(format!(
                "record {} is not in the area asked",
                record.seq.0
            )));
        }
        let cell = ciphers
            .decrypt(&grant_keys, record, level)
            .map_err(|e| wrong(format!("record {}: {e}", record.seq.0)))?;
        let exact = if level == 0 {
            let key = grant_keys
                .epoch_key(0, KeyEpoch(record.epoch.0))
                .map_err(|e| AnswerError::Keys(e.to_string()))?;
            let seal = SealKey::from_bytes(*key.seal_key().expose_secret());
            let sealed = record
                .sealed()
                .ok_or_else(|| wrong("an exact record without its sealed fix"))?;
            Some(
                bmpls_crypto::seal::open_fix(
                    &seal,
                    sealed,
                    &record.patient,
                    record.seq,
                    record.epoch,
                )
                .map_err(|source| AnswerError::Proof {
                    what: "sealed fix",
                    source,
                })?,
            )
        } else {
            None
        };
        seen.push(Seen {
            seq: record.seq,
            fix_time_ms: record.fix_time_ms,
            height,
            cell,
            exact,
        });
    }

    let ordered = seen
        .windows(2)
        .all(|w| (w[0].fix_time_ms, w[0].seq) < (w[1].fix_time_ms, w[1].seq));
    if !ordered {
        return Err(wrong("records out of order or repeated"));
    }
    match query.ask {
        Ask::Last if seen.len() > 1 => return Err(wrong("more than one last record")),
        Ask::Track => check_track(&seen, &excluded, query, &grant, answer.more)?,
        _ => {}
    }
    if epoch_length_ms == 0 {
        return Err(wrong("the answer lacks the patient's enrolment"));
    }
    Ok(VerifiedAnswer {
        at_height: answer.at_height,
        grant,
        epoch_length_ms,
        records: seen,
        more: answer.more,
    })
}

/// A track's continuity: every piece of exclusion evidence is excluded for a reason the carer
/// can check (fix time outside the window, epoch outside the grant's data window, or after the
/// last answered record when the limit cut the answer) and lies between answered records, and
/// the answered records and the evidence together hold consecutive sequence numbers, so a
/// record withheld from between them shows as a gap.
fn check_track(
    seen: &[Seen],
    excluded: &[(u64, Seq, bmpls_types::Epoch)],
    query: &Query,
    grant: &Grant,
    more: bool,
) -> Result<(), AnswerError> {
    let last = seen.last().map(|s| (s.fix_time_ms, s.seq));
    let (Some(low), Some(high)) = (
        seen.iter().map(|s| s.seq).min(),
        seen.iter().map(|s| s.seq).max(),
    ) else {
        if excluded.is_empty() {
            return Ok(());
        }
        return Err(wrong("exclusion evidence without a record"));
    };
    for &(fix_time_ms, seq, epoch) in excluded {
        let outside = !(query.from_ms..=query.to_ms).contains(&fix_time_ms)
            || !(grant.data_from..=grant.data_to).contains(&epoch)
            || (more && Some((fix_time_ms, seq)) > last);
        if !outside {
            return Err(wrong(format!(
                "record {} is in the window but given as excluded",
                seq.0
            )));
        }
        if seq <= low || seq >= high {
            return Err(wrong(format!(
                "record {} is given as excluded but is not between answered records",
                seq.0
            )));
        }
    }
    let mut seqs: Vec<u64> = seen
        .iter()
        .map(|s| s.seq.0)
        .chain(excluded.iter().map(|e| e.1.0))
        .collect();
    seqs.sort_unstable();
    if let Some(w) = seqs.windows(2).find(|w| w[0] == w[1]) {
        return Err(wrong(format!("record {} is given twice", w[0])));
    }
    if let Some(gap) = seqs.windows(2).find(|w| w[1] != w[0] + 1) {
        let (first, last) = (gap[0] + 1, gap[1] - 1);
        return Err(wrong(if first == last {
            format!("record {first} is missing from the track")
        } else {
            format!("records {first} to {last} are missing from the track")
        }));
    }
    Ok(())
}

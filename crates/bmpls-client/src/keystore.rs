//! A patient's keystore on disk, as a phone or a custodian's tool keeps it:
//!
//! ```text
//! patient.toml     the pseudonym, epoch length (public)
//! levels.toml      the precision levels the records carry (public)
//! reporter.key     signs the records (secret)
//! custodian.key    grants, revokes, sets fences (secret; a custodian keeps it off the phone)
//! master.key       the root of the patient's location keys (secret)
//! next_seq         the sequence number of the next record
//! reported_times   the fix times already reported (8 bytes each, big-endian), so that a file
//!                  imported twice is not reported twice
//! ```
//!
//! Secret files are created owner-only and refused when others can read them.

use std::path::{Path, PathBuf};

use rand_core::CryptoRngCore;

use bmpls_crypto::SigningKey;
use bmpls_crypto::keyfile::{KeyFileError, read_secret, write_secret};
use bmpls_crypto::wrap::wrap_grant_keys;
use bmpls_grid::LevelSet;
use bmpls_ope::keys::MasterSecret;
use bmpls_ope::keys::{Epoch as KeyEpoch, PatientKeys};
use bmpls_types::limits::{MAX_FENCE_EPOCHS, MAX_FENCE_RANGES, MAX_ORE_FENCE_RANGES, MAX_TX_BYTES};
use bmpls_types::{
    AgreementKey, BoundedString, BoundedVec, Canonical, CarerId, ChainId, EnrolPatient, Epoch,
    FenceEpoch, FenceRanges, Grant, LevelIndex, PatientId, PublicKeyBytes, RemoveFence, Revoke,
    SetFence, SignatureBytes, Transaction, TxHash,
};

use crate::ciphers::{EncryptedRanges, LevelCiphers};
use crate::{ReportError, Reporter};

/// Default key epoch: one day.
pub const DEFAULT_EPOCH_MS: u64 = 86_400_000;

/// A keystore that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeystoreError {
    /// A file is missing or unreadable.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A secret file is wrong.
    #[error(transparent)]
    Key(#[from] KeyFileError),
    /// The keystore already exists.
    #[error("{0} already holds a keystore; refusing to overwrite its keys")]
    Exists(PathBuf),
    /// The reporter cannot be built.
    #[error(transparent)]
    Report(#[from] ReportError),
}

fn file_error(path: &Path, reason: impl std::fmt::Display) -> KeystoreError {
    KeystoreError::File {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

/// A patient's keys and counters.
pub struct PatientKeystore {
    dir: PathBuf,
    /// The patient's pseudonym.
    pub patient: PatientId,
    /// Length of a key epoch.
    pub epoch_length_ms: u64,
    /// The precision levels.
    pub levels: LevelSet,
    reporter: SigningKey,
    custodian: SigningKey,
    master: MasterSecret,
}

impl std::fmt::Debug for PatientKeystore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PatientKeystore")
            .field("dir", &self.dir)
            .field("patient", &self.patient)
            .finish_non_exhaustive()
    }
}

impl PatientKeystore {
    /// Creates a new patient in `dir` with fresh keys. `levels_toml` is the level file's text.
    pub fn create(
        dir: &Path,
        levels_toml: &str,
        epoch_length_ms: u64,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Self, KeystoreError> {
        let levels = LevelSet::from_toml(levels_toml).map_err(|e| file_error(dir, e))?;
        if dir.join("patient.toml").exists() {
            return Err(KeystoreError::Exists(dir.to_path_buf()));
        }
        std::fs::create_dir_all(dir).map_err(|e| file_error(dir, e))?;
        let mut id = [0u8; 16];
        rng.fill_bytes(&mut id);
        let patient = PatientId(id);
        let reporter = SigningKey::generate(rng);
        let custodian = SigningKey::generate(rng);
        let master = MasterSecret::generate(rng);
        write_secret(&dir.join("reporter.key"), &reporter.to_seed())?;
        write_secret(&dir.join("custodian.key"), &custodian.to_seed())?;
        write_secret(&dir.join("master.key"), master.expose_secret())?;
        let write = |name: &str, text: &str| {
            let path = dir.join(name);
            std::fs::write(&path, text).map_err(|e| file_error(&path, e))
        };
        write("levels.toml", levels_toml)?;
        write("next_seq", "1\n")?;
        // Written last: its presence marks a complete keystore.
        write(
            "patient.toml",
            &format!(
                "# A bmpls patient (pseudonymous). Public; the secrets are the .key files.\n\
                 patient = \"{}\"\nepoch_length_ms = {epoch_length_ms}\n",
                hex::encode(patient.0)
            ),
        )?;
        Ok(Self {
            dir: dir.to_path_buf(),
            patient,
            epoch_length_ms,
            levels,
            reporter,
            custodian,
            master,
        })
    }

    /// Opens the keystore in `dir`.
    pub fn open(dir: &Path) -> Result<Self, KeystoreError> {
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read_to_string(&path).map_err(|e| file_error(&path, e))
        };
        let meta = read("patient.toml")?;
        let meta_path = dir.join("patient.toml");
        let mut patient = None;
        let mut epoch_length_ms = None;
        for line in meta
            .lines()
            .map(str::trim)
            .filter(|l| !l.starts_with('#') && !l.is_empty())
        {
            let (key, value) = line
                .split_once('=')
                .ok_or_else(|| file_error(&meta_path, format!("bad line {line:?}")))?;
            match key.trim() {
                "patient" => {
                    let mut id = [0u8; 16];
                    hex::decode_to_slice(value.trim().trim_matches('"'), &mut id)
                        .map_err(|_| file_error(&meta_path, "patient must be 32 hex digits"))?;
                    patient = Some(PatientId(id));
                }
                "epoch_length_ms" => {
                    epoch_length_ms =
                        Some(value.trim().parse::<u64>().map_err(|_| {
                            file_error(&meta_path, "epoch_length_ms must be a number")
                        })?);
                }
                other => return Err(file_error(&meta_path, format!("unknown field {other:?}"))),
            }
        }
        let levels_path = dir.join("levels.toml");
        let levels =
            LevelSet::from_toml(&read("levels.toml")?).map_err(|e| file_error(&levels_path, e))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            patient: patient.ok_or_else(|| file_error(&meta_path, "missing patient"))?,
            epoch_length_ms: epoch_length_ms
                .ok_or_else(|| file_error(&meta_path, "missing epoch_length_ms"))?,
            levels,
            reporter: SigningKey::from_seed(&*read_secret(&dir.join("reporter.key"))?),
            custodian: SigningKey::from_seed(&*read_secret(&dir.join("custodian.key"))?),
            master: MasterSecret::from_bytes(*read_secret(&dir.join("master.key"))?),
        })
    }

    /// The key that signs records (and the patient's requests).
    pub fn reporter_key(&self) -> &SigningKey {
        &self.reporter
    }

    /// The custodian's key (grants, revocations, and the patient's requests for the audit
    /// trail).
    pub fn custodian_key(&self) -> &SigningKey {
        &self.custodian
    }

    /// The enrolment of this patient on `chain`, signed by `operator` (a validator operator's
    /// key).
    pub fn enrolment(&self, operator: &SigningKey, chain: &ChainId) -> Transaction {
        let mut enrol = EnrolPatient {
            patient: self.patient,
            reporter_key: self.reporter.public(),
            custodian_key: self.custodian.public(),
            level_count: self.levels.len() as u8,
            ore_levels: self.levels.ore_levels() as u8,
            epoch_length_ms: self.epoch_length_ms,
            operator: PublicKeyBytes(operator.public().0),
            sig: SignatureBytes::UNSIGNED,
        };
        operator.sign(&mut enrol, chain);
        Transaction::EnrolPatient(enrol)
    }

    /// A grant to `carer` (whose agreement key is `to`) of `level` over the data window
    /// `[from_ms, to_ms]` (widened to whole key epochs), valid over `valid`, signed by the
    /// custodian. The keys of the window's epoch-tree cover at `level` and every coarser level
    /// are wrapped to the carer with HPKE; nothing finer leaves the keystore. Signed for `chain`.
    #[allow(clippy::too_many_arguments)]
    pub fn grant(
        &self,
        chain: &ChainId,
        carer: CarerId,
        to: &AgreementKey,
        level: LevelIndex,
        (from_ms, to_ms): (u64, u64),
        (valid_from_ms, valid_until_ms): (u64, u64),
        purpose: &str,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Transaction, KeystoreError> {
        let invalid = |why: &str| file_error(&self.dir, why);
        if from_ms > to_ms {
            return Err(invalid("the data window ends before it starts"));
        }
        if valid_from_ms >= valid_until_ms {
            return Err(invalid("the validity period ends before it starts"));
        }
        let epoch = |ms: u64| {
            u32::try_from(ms / self.epoch_length_ms).map_err(|_| invalid("time out of range"))
        };
        let (first, last) = (epoch(from_ms)?, epoch(to_ms)?);
        let keys = PatientKeys::new(&self.master, self.levels.len() as u8)
            .and_then(|k| k.grant(level.0, KeyEpoch(first), KeyEpoch(last)))
            .map_err(|e| invalid(&e.to_string()))?;
        let mut grant = Grant {
            patient: self.patient,
            carer,
            level,
            data_from: Epoch(first),
            data_to: Epoch(last),
            valid_from_ms,
            valid_until_ms,
            purpose: BoundedString::new(purpose.to_string())
                .map_err(|_| invalid("the purpose is too long"))?,
            wrapped_keys: BoundedVec::new(Vec::new()).map_err(|_| invalid("grant keys"))?,
            sig: SignatureBytes::UNSIGNED,
        };
        wrap_grant_keys(&mut grant, to, &keys.to_bytes(), rng)
            .map_err(|e| invalid(&e.to_string()))?;
        self.custodian.sign(&mut grant, chain);
        Ok(Transaction::Grant(grant))
    }

    /// A safe zone for `carer`'s alerts: `cells` (index ranges at the depth of `level`, at most
    /// [`MAX_FENCE_RANGES`]) encrypted under each key epoch of `[from_ms, to_ms]` (at most
    /// [`MAX_FENCE_EPOCHS`]); `debounce` consecutive records decide an entry or exit, and
    /// `Missing` fires after silence of a few `expected_interval_ms` (0: never). Signed by the
    /// custodian for `chain`.
    #[allow(clippy::too_many_arguments)]
    pub fn fence(
        &self,
        chain: &ChainId,
        carer: CarerId,
        level: LevelIndex,
        cells: &[bmpls_grid::IndexRange],
        (from_ms, to_ms): (u64, u64),
        debounce: u8,
        expected_interval_ms: u64,
    ) -> Result<Transaction, KeystoreError> {
        let invalid = |why: String| file_error(&self.dir, why);
        let scheme = self
            .levels
            .levels()
            .get(usize::from(level.0))
            .ok_or_else(|| invalid(format!("no level {}", level.0)))?
            .scheme;
        let most = match scheme {
            bmpls_grid::Scheme::Ope => MAX_FENCE_RANGES,
            bmpls_grid::Scheme::Ore => MAX_ORE_FENCE_RANGES,
        };
        if cells.len() > most {
            return Err(invalid(format!(
                "the zone is {} runs of cells at this level; at most {most}: cover it with \
                 fewer, or set the fence at a coarser level",
                cells.len()
            )));
        }
        let epoch = |ms: u64| {
            u32::try_from(ms / self.epoch_length_ms)
                .map_err(|_| invalid("time out of range".into()))
        };
        let (first, last) = (epoch(from_ms)?, epoch(to_ms)?);
        if last < first || (last - first) as usize >= MAX_FENCE_EPOCHS {
            return Err(invalid(format!(
                "a fence spans 1 to {MAX_FENCE_EPOCHS} key epochs"
            )));
        }
        let keys = PatientKeys::new(&self.master, self.levels.len() as u8)
            .map_err(|e| invalid(e.to_string()))?;
        let mut ciphers = LevelCiphers::new(self.levels.clone());
        let mut epochs = Vec::new();
        for e in first..=last {
            let too_many = |_| invalid("too many ranges".into());
            let ranges = match ciphers
                .ranges(&keys, level.0, e, cells)
                .map_err(|e| invalid(e.to_string()))?
            {
                EncryptedRanges::Ope(r) => FenceRanges::Ope(BoundedVec::new(r).map_err(too_many)?),
                EncryptedRanges::Ore(r) => FenceRanges::Ore(BoundedVec::new(r).map_err(too_many)?),
            };
            epochs.push(FenceEpoch {
                epoch: Epoch(e),
                ranges,
            });
        }
        let mut fence = SetFence {
            patient: self.patient,
            carer,
            level,
            epochs: BoundedVec::new(epochs).map_err(|_| invalid("too many epochs".into()))?,
            debounce: debounce.max(1),
            expected_interval_ms,
            sig: SignatureBytes::UNSIGNED,
        };
        self.custodian.sign(&mut fence, chain);
        let fence = Transaction::SetFence(fence);
        // ORE tokens are ~130 bytes each: a long fence of a finely cut zone may not fit.
        let size = fence.encoded_len();
        if size > MAX_TX_BYTES {
            return Err(invalid(format!(
                "the fence takes {size} bytes, more than a transaction's {MAX_TX_BYTES}: set it \
                 for fewer days at a time, or at a coarser level"
            )));
        }
        Ok(fence)
    }

    /// The revocation of the grant whose transaction hash is `grant`, signed by the custodian
    /// for `chain`.
    pub fn revoke(&self, chain: &ChainId, grant: TxHash) -> Transaction {
        let mut revoke = Revoke {
            patient: self.patient,
            grant,
            sig: SignatureBytes::UNSIGNED,
        };
        self.custodian.sign(&mut revoke, chain);
        Transaction::Revoke(revoke)
    }

    /// The removal of the fence whose `SetFence` transaction hash is `fence`, signed by the
    /// custodian for `chain`: its alerts stop from the block that commits it.
    pub fn remove_fence(&self, chain: &ChainId, fence: TxHash) -> Transaction {
        let mut remove = RemoveFence {
            patient: self.patient,
            fence,
            sig: SignatureBytes::UNSIGNED,
        };
        self.custodian.sign(&mut remove, chain);
        Transaction::RemoveFence(remove)
    }

    /// A reporter for this patient, signing records for `chain`.
    pub fn reporter(&self, chain: &ChainId) -> Result<Reporter, KeystoreError> {
        Ok(Reporter::new(
            chain.clone(),
            self.patient,
            &self.master,
            SigningKey::from_seed(&self.reporter.to_seed()),
            self.levels.clone(),
            self.epoch_length_ms,
        )?)
    }

    /// The sequence number of the next record.
    pub fn next_seq(&self) -> Result<u64, KeystoreError> {
        let path = self.dir.join("next_seq");
        let text = std::fs::read_to_string(&path).map_err(|e| file_error(&path, e))?;
        text.trim()
            .parse()
            .map_err(|_| file_error(&path, "not a number"))
    }

    /// The fix times already reported from this keystore (none if it never reported). Two
    /// fixes of one patient at the same millisecond are one fix reported twice.
    pub fn reported_times(&self) -> Result<std::collections::BTreeSet<u64>, KeystoreError> {
        let path = self.dir.join("reported_times");
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Default::default()),
            Err(e) => return Err(file_error(&path, e)),
        };
        // A crash mid-append leaves a partial last entry: that fix was not committed.
        Ok(bytes
            .chunks_exact(8)
            .map(|c| u64::from_be_bytes(c.try_into().unwrap_or_default()))
            .collect())
    }

    /// Adds `times` to the fix times already reported (after their records committed).
    pub fn add_reported_times(&self, times: &[u64]) -> Result<(), KeystoreError> {
        use std::io::Write;
        let path = self.dir.join("reported_times");
        let bytes: Vec<u8> = times.iter().flat_map(|t| t.to_be_bytes()).collect();
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(&bytes).and_then(|()| f.sync_data()))
            .map_err(|e| file_error(&path, e))
    }

    /// Records that `next` is the sequence number of the next record (written atomically and
    /// synced: the outbox forgets delivered records once this counter is past them).
    pub fn set_next_seq(&self, next: u64) -> Result<(), KeystoreError> {
        use std::io::Write;
        let path = self.dir.join("next_seq");
        let tmp = self.dir.join("next_seq.tmp");
        std::fs::File::create(&tmp)
            .and_then(|mut f| {
                f.write_all(format!("{next}\n").as_bytes())
                    .and_then(|()| f.sync_all())
            })
            .map_err(|e| file_error(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| file_error(&path, e))?;
        std::fs::File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| file_error(&self.dir, e))
    }

    /// The keystore's folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn reported_fix_times_are_remembered() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("alice");
        let mut rng = rand::rngs::StdRng::seed_from_u64(2);
        let levels = include_str!("../../../config/levels.toml");
        let store =
            PatientKeystore::create(&path, levels, DEFAULT_EPOCH_MS, &mut rng).expect("create");
        assert!(store.reported_times().expect("none yet").is_empty());
        store.add_reported_times(&[5, 3]).expect("add");
        store.add_reported_times(&[7]).expect("add");
        let times = PatientKeystore::open(&path)
            .expect("open")
            .reported_times()
            .expect("read");
        assert_eq!(times.into_iter().collect::<Vec<_>>(), [3, 5, 7]);
    }

    #[test]
    fn a_created_keystore_opens_with_the_same_keys() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("alice");
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let levels = include_str!("../../../config/levels.toml");
        let created =
            PatientKeystore::create(&path, levels, DEFAULT_EPOCH_MS, &mut rng).expect("create");
        let opened = PatientKeystore::open(&path).expect("open");
        assert_eq!(opened.patient, created.patient);
        assert_eq!(
            opened.reporter_key().public(),
            created.reporter_key().public()
        );
        assert_eq!(opened.next_seq().expect("seq"), 1);
        opened.set_next_seq(42).expect("set");
        assert_eq!(opened.next_seq().expect("seq"), 42);
        assert!(matches!(
            PatientKeystore::create(&path, levels, DEFAULT_EPOCH_MS, &mut rng),
            Err(KeystoreError::Exists(_))
        ));
    }
}

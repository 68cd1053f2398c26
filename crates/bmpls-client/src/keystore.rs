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

/// The `key = value` lines of a small public file (`patient.toml`, an enrolment request):
/// comments and blank lines skipped, values trimmed of spaces and quotes.
fn fields(text: &str) -> Result<Vec<(&str, &str)>, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|line| {
            let (key, value) = line
                .split_once('=')
                .ok_or_else(|| format!("bad line {line:?}"))?;
            Ok((key.trim(), value.trim().trim_matches('"')))
        })
        .collect()
}

/// `N` bytes given as `2N` hex digits.
fn hex_field<const N: usize>(value: &str) -> Result<[u8; N], String> {
    let mut bytes = [0u8; N];
    hex::decode_to_slice(value, &mut bytes).map_err(|_| format!("must be {} hex digits", 2 * N))?;
    Ok(bytes)
}

/// A request to enrol a patient, as the custodian hands it to a validator operator (a file, a
/// QR code, a message): public, and the same whether a phone app (`bmpls-mobile`) or
/// `bmpls patient request` wrote it. Its text is `key = value` lines:
///
/// ```text
/// patient = "…"          32 hex digits, the pseudonym
/// reporter_key = "…"     64 hex digits, Ed25519
/// custodian_key = "…"    64 hex digits, Ed25519
/// level_count = 6
/// ore_levels = 3
/// epoch_length_ms = 86400000
/// ```
///
/// Nothing in it proves who sent it: the operator checks the pseudonym with the custodian by
/// another channel before signing, as for any enrolment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnrolmentRequest {
    /// The pseudonym.
    pub patient: PatientId,
    /// The key that will sign the records.
    pub reporter_key: PublicKeyBytes,
    /// The custodian's key (grants, revocations, fences).
    pub custodian_key: PublicKeyBytes,
    /// How many precision levels each record carries.
    pub level_count: u8,
    /// How many of them, the finest, are ORE.
    pub ore_levels: u8,
    /// Length of a key epoch.
    pub epoch_length_ms: u64,
}

/// An enrolment request that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("enrolment request: {0}")]
pub struct RequestError(String);

impl EnrolmentRequest {
    /// The request as text (see the type's documentation).
    pub fn to_text(&self) -> String {
        format!(
            "# A bmpls patient's enrolment request (public): an operator signs it with\n\
             # bmpls patient enrol --request FILE --operator-key KEY\n\
             patient = \"{}\"\nreporter_key = \"{}\"\ncustodian_key = \"{}\"\n\
             level_count = {}\nore_levels = {}\nepoch_length_ms = {}\n",
            hex::encode(self.patient.0),
            hex::encode(self.reporter_key.0),
            hex::encode(self.custodian_key.0),
            self.level_count,
            self.ore_levels,
            self.epoch_length_ms,
        )
    }

    /// Parses and checks a request's text: every field once, keys that are valid Ed25519 keys
    /// of large order, at least one level and no more ORE levels than levels, an epoch longer
    /// than zero.
    pub fn from_text(text: &str) -> Result<Self, RequestError> {
        let bad = |why: String| RequestError(why);
        let mut seen = std::collections::BTreeMap::new();
        for (key, value) in fields(text).map_err(bad)? {
            if seen.insert(key, value).is_some() {
                return Err(bad(format!("{key} given twice")));
            }
        }
        let mut take = |name: &str| {
            seen.remove(name)
                .ok_or_else(|| bad(format!("missing {name}")))
        };
        let key = |name: &str, value: &str| {
            let key = PublicKeyBytes(hex_field(value).map_err(|why| bad(format!("{name} {why}")))?);
            bmpls_crypto::sign::check_public_key(&key).map_err(|e| bad(format!("{name}: {e}")))?;
            Ok::<_, RequestError>(key)
        };
        let number = |name: &str, value: &str| {
            value
                .parse::<u64>()
                .map_err(|_| bad(format!("{name} must be a number")))
        };
        let patient =
            PatientId(hex_field(take("patient")?).map_err(|why| bad(format!("patient {why}")))?);
        let reporter_key = key("reporter_key", take("reporter_key")?)?;
        let custodian_key = key("custodian_key", take("custodian_key")?)?;
        let level_count = u8::try_from(number("level_count", take("level_count")?)?)
            .map_err(|_| bad("level_count is too large".into()))?;
        let ore_levels = u8::try_from(number("ore_levels", take("ore_levels")?)?)
            .map_err(|_| bad("ore_levels is too large".into()))?;
        let epoch_length_ms = number("epoch_length_ms", take("epoch_length_ms")?)?;
        if let Some(other) = seen.keys().next() {
            return Err(bad(format!("unknown field {other:?}")));
        }
        if level_count == 0 || ore_levels > level_count {
            return Err(bad(format!(
                "{level_count} levels of which {ore_levels} ORE: need at least one level, and \
                 no more ORE levels than levels"
            )));
        }
        if epoch_length_ms == 0 {
            return Err(bad("epoch_length_ms must be positive".into()));
        }
        Ok(Self {
            patient,
            reporter_key,
            custodian_key,
            level_count,
            ore_levels,
            epoch_length_ms,
        })
    }

    /// The enrolment transaction, signed by `operator` for `chain`.
    pub fn sign(&self, operator: &SigningKey, chain: &ChainId) -> Transaction {
        let mut enrol = EnrolPatient {
            patient: self.patient,
            reporter_key: self.reporter_key,
            custodian_key: self.custodian_key,
            level_count: self.level_count,
            ore_levels: self.ore_levels,
            epoch_length_ms: self.epoch_length_ms,
            operator: PublicKeyBytes(operator.public().0),
            sig: SignatureBytes::UNSIGNED,
        };
        operator.sign(&mut enrol, chain);
        Transaction::EnrolPatient(enrol)
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
        for (key, value) in fields(&meta).map_err(|why| file_error(&meta_path, why))? {
            match key {
                "patient" => {
                    patient = Some(PatientId(
                        hex_field(value).map_err(|why| file_error(&meta_path, why))?,
                    ));
                }
                "epoch_length_ms" => {
                    epoch_length_ms =
                        Some(value.parse::<u64>().map_err(|_| {
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

    /// What an operator needs to enrol this patient: the pseudonym, the public keys and the
    /// shape of the records (no secret). The custodian hands it to an operator, who signs it
    /// ([`EnrolmentRequest::sign`]).
    pub fn enrolment_request(&self) -> EnrolmentRequest {
        EnrolmentRequest {
            patient: self.patient,
            reporter_key: self.reporter.public(),
            custodian_key: self.custodian.public(),
            level_count: self.levels.len() as u8,
            ore_levels: self.levels.ore_levels() as u8,
            epoch_length_ms: self.epoch_length_ms,
        }
    }

    /// The enrolment of this patient on `chain`, signed by `operator` (a validator operator's
    /// key).
    pub fn enrolment(&self, operator: &SigningKey, chain: &ChainId) -> Transaction {
        self.enrolment_request().sign(operator, chain)
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
    fn an_enrolment_request_reads_back_and_bad_ones_are_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let levels = include_str!("../../../config/levels.toml");
        let store =
            PatientKeystore::create(&dir.path().join("a"), levels, DEFAULT_EPOCH_MS, &mut rng)
                .expect("create");
        let request = store.enrolment_request();
        let text = request.to_text();
        assert_eq!(EnrolmentRequest::from_text(&text).expect("parses"), request);
        let operator = SigningKey::generate(&mut rng);
        let chain = ChainId::new("test").expect("chain");
        assert_eq!(
            request.sign(&operator, &chain),
            store.enrolment(&operator, &chain)
        );
        let check = |edit: &dyn Fn(&str) -> String, why: &str| {
            let error = EnrolmentRequest::from_text(&edit(&text))
                .expect_err(why)
                .to_string();
            assert!(error.contains(why), "{error} (expected {why})");
        };
        check(
            &|t| t.replace("ore_levels = 3", "ore_levels = 7"),
            "no more ORE levels",
        );
        check(
            &|t| t.replace("epoch_length_ms = 86400000", "epoch_length_ms = 0"),
            "positive",
        );
        check(&|t| format!("{t}level_count = 6\n"), "given twice");
        check(
            &|t| t.replace("level_count = 6\n", ""),
            "missing level_count",
        );
        check(&|t| format!("{t}colour = 1\n"), "unknown field");
        // The identity point has order 1: under it ZIP 215 accepts anyone's signature.
        let identity = format!("01{}", "00".repeat(31));
        let reporter = hex::encode(request.reporter_key.0);
        check(&|t| t.replace(&reporter, &identity), "reporter_key");
        check(&|t| t.replace(&reporter, "abc"), "64 hex digits");
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

//! What an attacker sees of a record, built by really encrypting: the reporter's records (the
//! current format: an order-preserving ciphertext per level) and, for the levels a [`Layout`]
//! makes order-revealing, right ciphertexts from `bmpls_ore::OreKey` under the same per-day
//! epochs. [`observe`] is the one adapter from what is stored to what is seen.

use std::collections::HashMap;

use bmpls_client::{Fix, Reporter};
use bmpls_crypto::SigningKey;
use bmpls_grid::{CellIndex, LevelIndex, LevelSet};
use bmpls_ope::keys::{Epoch as KeyEpoch, GrantKeys, MasterSecret, PatientKeys};
use bmpls_ope::{OpeCipher, OpeParams};
use bmpls_ore::{Domain, OreKey, RightCiphertext};
use bmpls_types::{ChainId, LocationRecord, PatientId, Seq, Trigger};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::LeakageError;
use crate::patient::{DAY_MS, TrueFix};

/// How one level's cell number is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// A randomised order-preserving ciphertext (BCLO): anyone can order it against every
    /// other ciphertext of its key.
    Ope,
    /// An order-revealing right ciphertext (Lewi–Wu): nothing can be compared with it without
    /// a left token made with the key.
    Ore,
}

/// Which scheme each level uses, finest first: the parameter every attack runs under.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    name: &'static str,
    schemes: Vec<Scheme>,
}

impl Layout {
    /// A layout named `name` with one scheme per level, finest first.
    pub fn new(name: &'static str, schemes: Vec<Scheme>) -> Self {
        Self { name, schemes }
    }

    /// Today's records: every level order-preserving.
    pub fn all_ope(levels: &LevelSet) -> Self {
        Self::new("OPE", vec![Scheme::Ope; levels.len()])
    }

    /// The secure default of issue 14: order-revealing right ciphertexts at every level finer
    /// than `district` (depth 13), order-preserving at district and coarser.
    pub fn ore_fine(levels: &LevelSet) -> Self {
        Self::new("ORE", Self::finer_than(levels, 13))
    }

    /// The half-measure the issue warns about: only the exact level hidden, street (depth 19)
    /// the finest order-preserving level.
    pub fn ope_to_street(levels: &LevelSet) -> Self {
        Self::new("OPE≥street", Self::finer_than(levels, 19))
    }

    fn finer_than(levels: &LevelSet, depth: u8) -> Vec<Scheme> {
        levels
            .levels()
            .iter()
            .map(|l| {
                if l.depth > depth {
                    Scheme::Ore
                } else {
                    Scheme::Ope
                }
            })
            .collect()
    }

    /// The layout's name in tables.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The scheme of level `index` (order-preserving beyond the list: it cannot be hidden).
    pub fn scheme(&self, index: usize) -> Scheme {
        self.schemes.get(index).copied().unwrap_or(Scheme::Ope)
    }

    /// The schemes, finest first.
    pub fn schemes(&self) -> &[Scheme] {
        &self.schemes
    }
}

/// What one level of one record shows its viewer.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// An order-preserving ciphertext: orderable against the same key's others, and its
    /// differences scale with the plaintexts'.
    Ope(u128),
    /// A right ciphertext, or a level the viewer was not sent: nothing comparable.
    Opaque,
    /// A cell the viewer decrypts (a carer's granted level and the coarser ones).
    Cell(CellIndex),
}

/// One record as a viewer sees it: the fields in the clear and each level, finest first.
#[derive(Clone, PartialEq, Eq)]
pub struct Observation {
    /// When the fix was taken (in the clear in every record).
    pub fix_time_ms: u64,
    /// The key epoch (in the clear: one day).
    pub epoch: u32,
    /// Each level, finest first.
    pub levels: Vec<Seen>,
}

/// A record as stored, with the right ciphertexts of the levels that are order-revealing.
///
/// Until the record format holds them itself, the right ciphertexts travel beside the
/// reporter's record, under keys derived the same way (per patient, level and day).
pub struct Sealed {
    /// The reporter's signed record.
    pub record: LocationRecord,
    /// A right ciphertext per level that some layout makes order-revealing, finest first.
    pub rights: Vec<Option<RightCiphertext>>,
}

/// The adapter from a stored record to what someone holding it sees, under `layout`.
/// Re-point this one function when the record format carries its own per-level schemes.
pub fn observe(sealed: &Sealed, layout: &Layout) -> Observation {
    let levels = sealed
        .record
        .cells
        .iter()
        .enumerate()
        .map(|(i, c)| match layout.scheme(i) {
            Scheme::Ope => Seen::Ope(c.0),
            // A right ciphertext is stored at this level (`sealed.rights`): on its own it
            // shows nothing.
            Scheme::Ore => Seen::Opaque,
        })
        .collect();
    Observation {
        fix_time_ms: sealed.record.fix_time_ms,
        epoch: sealed.record.epoch.0,
        levels,
    }
}

/// A patient's phone: the reporter of `bmpls-client` with seeded keys, and the ORE keys of the
/// same hierarchy.
pub struct Encryptor {
    reporter: Reporter,
    keys: PatientKeys,
    levels: LevelSet,
    /// Which levels get a right ciphertext too.
    ore_levels: Vec<bool>,
    ore_keys: HashMap<(usize, u32), OreKey>,
    rng: StdRng,
    seq: u64,
}

impl Encryptor {
    /// The phone of the patient of `seed`, over `levels`, adding right ciphertexts at the
    /// levels where `ore_levels` is true. Per-day epochs, as the reporter derives them.
    pub fn new(seed: u64, levels: LevelSet, ore_levels: Vec<bool>) -> Result<Self, LeakageError> {
        let mut rng = StdRng::seed_from_u64(seed);
        let master = MasterSecret::generate(&mut rng);
        let chain = ChainId::new("bmpls-leakage").map_err(|_| LeakageError::Setup("chain id"))?;
        let reporter = Reporter::new(
            chain,
            PatientId(rng.r#gen()),
            &master,
            SigningKey::generate(&mut rng),
            levels.clone(),
            DAY_MS,
        )?;
        let keys = PatientKeys::new(&master, levels.len() as u8)?;
        Ok(Self {
            reporter,
            keys,
            levels,
            ore_levels,
            ore_keys: HashMap::new(),
            rng,
            seq: 0,
        })
    }

    /// The stored form of `fix`: the signed record and its right ciphertexts.
    pub fn encrypt(&mut self, fix: &TrueFix) -> Result<Sealed, LeakageError> {
        self.seq += 1;
        let reported = Fix {
            lat: fix.at.lat,
            lon: fix.at.lon,
            accuracy_m: 5.0,
            altitude_m: 1.0,
            speed_m_s: 0.0,
            battery_percent: 80,
            trigger: Trigger::Periodic,
            fix_time_ms: fix.fix_time_ms,
        };
        let record = self
            .reporter
            .build(&reported, Seq(self.seq), &mut self.rng)?;
        let epoch = record.epoch.0;
        if self.ore_keys.keys().any(|&(_, e)| e != epoch) {
            self.ore_keys.clear();
        }
        let mut rights = Vec::with_capacity(self.levels.len());
        for (i, level) in self.levels.levels().iter().enumerate() {
            if !self.ore_levels.get(i).copied().unwrap_or(false) {
                rights.push(None);
                continue;
            }
            let key = match self.ore_keys.entry((i, epoch)) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => {
                    let secret = self.keys.epoch_key(i as u8, KeyEpoch(epoch))?;
                    let domain = Domain::for_level_bits(2 * level.depth)?;
                    e.insert(OreKey::new(secret.expose_secret(), domain))
                }
            };
            let cell = fix.at.cell(level.depth)?;
            rights.push(Some(key.encrypt_right(cell.index(), &mut self.rng)?));
        }
        Ok(Sealed { record, rights })
    }

    /// A carer granted `level` for the epochs `from..=to`, holding the keys the patient's
    /// custodian would wrap to it.
    pub fn carer(&self, level: LevelIndex, from: u32, to: u32) -> Result<Carer, LeakageError> {
        let grant = self.keys.grant(level.0, KeyEpoch(from), KeyEpoch(to))?;
        let depth = self
            .levels
            .get(level)
            .ok_or(LeakageError::Setup("no such level"))?
            .depth;
        Ok(Carer {
            level,
            depth,
            levels: self.levels.clone(),
            grant,
            ciphers: HashMap::new(),
        })
    }
}

/// What a level-`L` carer's answer carries of each record's levels finer than `L`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// The whole record, as answers carried it before wire version 2: the finer levels'
    /// ciphertexts too.
    WholeRecord,
    /// The record cut to the level (wire version 2): one hash in place of the finer levels.
    View,
}

/// A carer with a grant: decrypts its level of each record and sees the rest as its answers
/// carry it.
pub struct Carer {
    level: LevelIndex,
    depth: u8,
    levels: LevelSet,
    grant: GrantKeys,
    ciphers: HashMap<u32, OpeCipher>,
}

impl Carer {
    /// The granted level.
    pub fn level(&self) -> LevelIndex {
        self.level
    }

    /// The granted level's cell of `record`, decrypted with the grant's key.
    pub fn decrypt(&mut self, record: &LocationRecord) -> Result<CellIndex, LeakageError> {
        let index = usize::from(self.level.0);
        let ciphertext = record
            .cells
            .get(index)
            .ok_or(LeakageError::Setup("record without the granted level"))?;
        let epoch = record.epoch.0;
        if self.ciphers.keys().any(|&e| e != epoch) {
            self.ciphers.clear();
        }
        let cipher = match self.ciphers.entry(epoch) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                let key = self.grant.epoch_key(self.level.0, KeyEpoch(epoch))?;
                let params = OpeParams::with_default_expansion(2 * self.depth)?;
                e.insert(OpeCipher::new(key.expose_secret(), params))
            }
        };
        Ok(CellIndex::new(self.depth, cipher.decrypt(ciphertext.0)?)?)
    }

    /// A record as this carer sees it, from its decrypted `cell` (of the granted level) and
    /// what an outsider sees of the record under the same layout (`outsider`, from
    /// [`observe`]): the granted level and the coarser ones as cells, the finer ones as the
    /// outsider sees them (whole records) or not at all (views).
    pub fn observe(
        &self,
        cell: CellIndex,
        outsider: &Observation,
        answer: Answer,
    ) -> Result<Observation, LeakageError> {
        let mut seen = outsider.clone();
        let first = usize::from(self.level.0);
        for (i, (level, s)) in self
            .levels
            .levels()
            .iter()
            .zip(&mut seen.levels)
            .enumerate()
        {
            *s = if i >= first {
                Seen::Cell(cell.at_depth(level.depth)?)
            } else {
                match answer {
                    Answer::WholeRecord => *s,
                    Answer::View => Seen::Opaque,
                }
            };
        }
        Ok(seen)
    }
}

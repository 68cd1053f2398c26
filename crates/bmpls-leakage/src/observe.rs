//! What an attacker sees of a record, built by really encrypting: `bmpls_client::Reporter`
//! builds each fix twice from one key hierarchy, once with every level order-preserving (the
//! records before issue 14) and once with the levels a layout makes order-revealing under ORE
//! (the records bmpls stores now: right ciphertexts in `Cell::Ore`). [`observe`] is the one
//! adapter from what is stored to what is seen.

use bmpls_client::{Fix, LevelCiphers, Reporter};
use bmpls_crypto::SigningKey;
use bmpls_grid::{CellIndex, Level, LevelIndex, LevelSet};
use bmpls_ope::keys::{Epoch as KeyEpoch, GrantKeys, MasterSecret, PatientKeys};
use bmpls_types::{Cell, ChainId, LocationRecord, PatientId, Seq, Trigger};
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

/// One fix as stored, both ways: the reporter's signed records under every level OPE and under
/// the ORE levels the [`Encryptor`] was made with.
pub struct Sealed {
    /// The record with every level order-preserving (the format before issue 14).
    pub record: LocationRecord,
    /// The same fix with the chosen levels under ORE (`Cell::Ore` right ciphertexts), if any.
    pub ore: Option<LocationRecord>,
}

/// The adapter from a stored record to what someone holding it sees, under `layout`: a level
/// the layout puts under ORE is read from the ORE record, where it is a right ciphertext and
/// shows nothing; were it stored comparable there, the attacker would see it.
pub fn observe(sealed: &Sealed, layout: &Layout) -> Observation {
    let levels = sealed
        .record
        .cells
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let stored = match layout.scheme(i) {
                Scheme::Ope => c,
                Scheme::Ore => sealed
                    .ore
                    .as_ref()
                    .and_then(|r| r.cells.get(i))
                    .unwrap_or(c),
            };
            match stored {
                Cell::Ope(c) => Seen::Ope(c.0),
                Cell::Ore(_) => Seen::Opaque,
            }
        })
        .collect();
    Observation {
        fix_time_ms: sealed.record.fix_time_ms,
        epoch: sealed.record.epoch.0,
        levels,
    }
}

/// `levels` with each level's scheme set: ORE where `ore` is true.
pub fn with_schemes(levels: &LevelSet, ore: &[bool]) -> Result<LevelSet, LeakageError> {
    let set: Vec<Level> = levels
        .levels()
        .iter()
        .enumerate()
        .map(|(i, l)| Level {
            scheme: if ore.get(i).copied().unwrap_or(false) {
                bmpls_grid::Scheme::Ore
            } else {
                bmpls_grid::Scheme::Ope
            },
            ..l.clone()
        })
        .collect();
    LevelSet::new(levels.grid_depth(), set).map_err(|_| LeakageError::Setup("ORE above OPE"))
}

/// The fix a phone reports for a simulated one.
fn reported(fix: &TrueFix) -> Fix {
    Fix {
        lat: fix.at.lat,
        lon: fix.at.lon,
        accuracy_m: 5.0,
        altitude_m: 1.0,
        speed_m_s: 0.0,
        battery_percent: 80,
        trigger: Trigger::Periodic,
        fix_time_ms: fix.fix_time_ms,
    }
}

/// A patient's phone: the reporter of `bmpls-client` with seeded keys, once with every level
/// OPE and once with the chosen levels ORE, over one key hierarchy.
pub struct Encryptor {
    reporter: Reporter,
    ore_reporter: Option<Reporter>,
    keys: PatientKeys,
    levels: LevelSet,
    ore_levels: LevelSet,
    rng: StdRng,
    seq: u64,
}

impl Encryptor {
    /// The phone of the patient of `seed`, over `levels` (their schemes ignored), storing
    /// each fix as an all-OPE record and, if `ore_levels` names any, as a record with those
    /// levels under ORE (they must be the finest). Per-day epochs, as the reporter derives them.
    pub fn new(seed: u64, levels: LevelSet, ore_levels: Vec<bool>) -> Result<Self, LeakageError> {
        let mut rng = StdRng::seed_from_u64(seed);
        let master = MasterSecret::generate(&mut rng);
        let chain = ChainId::new("bmpls-leakage").map_err(|_| LeakageError::Setup("chain id"))?;
        let patient = PatientId(rng.r#gen());
        let signing = SigningKey::generate(&mut rng);
        let ope_levels = with_schemes(&levels, &[])?;
        let ore_set = with_schemes(&levels, &ore_levels)?;
        let reporter = |set: &LevelSet| {
            Reporter::new(
                chain.clone(),
                patient,
                &master,
                SigningKey::from_seed(&signing.to_seed()),
                set.clone(),
                DAY_MS,
            )
        };
        let ore_reporter = match ore_levels.iter().any(|&o| o) {
            true => Some(reporter(&ore_set)?),
            false => None,
        };
        let keys = PatientKeys::new(&master, levels.len() as u8)?;
        Ok(Self {
            reporter: reporter(&ope_levels)?,
            ore_reporter,
            keys,
            levels: ope_levels,
            ore_levels: ore_set,
            rng,
            seq: 0,
        })
    }

    /// The stored forms of `fix`: the signed all-OPE record and the record with ORE levels.
    pub fn encrypt(&mut self, fix: &TrueFix) -> Result<Sealed, LeakageError> {
        self.seq += 1;
        let reported = reported(fix);
        let record = self
            .reporter
            .build(&reported, Seq(self.seq), &mut self.rng)?;
        let ore = match &mut self.ore_reporter {
            Some(r) => Some(r.build(&reported, Seq(self.seq), &mut self.rng)?),
            None => None,
        };
        Ok(Sealed { record, ore })
    }

    /// Builds `fix` once with the reporter of the chosen ORE levels only (for timing it); the
    /// all-OPE reporter's record if there are none.
    pub fn encrypt_stored(&mut self, fix: &TrueFix) -> Result<LocationRecord, LeakageError> {
        self.seq += 1;
        let reporter = self.ore_reporter.as_mut().unwrap_or(&mut self.reporter);
        Ok(reporter.build(&reported(fix), Seq(self.seq), &mut self.rng)?)
    }

    /// Builds `fix` once with the all-OPE reporter only (for timing it).
    pub fn encrypt_ope(&mut self, fix: &TrueFix) -> Result<LocationRecord, LeakageError> {
        self.seq += 1;
        Ok(self
            .reporter
            .build(&reported(fix), Seq(self.seq), &mut self.rng)?)
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
            ope: LevelCiphers::new(self.levels.clone()),
            ore: LevelCiphers::new(self.ore_levels.clone()),
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
    /// The client's ciphers for all-OPE records and for records with ORE levels.
    ope: LevelCiphers,
    ore: LevelCiphers,
}

impl Carer {
    /// The granted level.
    pub fn level(&self) -> LevelIndex {
        self.level
    }

    /// The granted level's cell of `record`, decrypted with the grant's key as
    /// `bmpls_client` does it (an ORE level by bisection with left tokens).
    pub fn decrypt(&mut self, record: &LocationRecord) -> Result<CellIndex, LeakageError> {
        let view = record.view(bmpls_types::LevelIndex(self.level.0));
        let ciphers = match record.cells.first() {
            Some(Cell::Ore(_)) => &mut self.ore,
            _ => &mut self.ope,
        };
        let cell = ciphers
            .decrypt(&self.grant, &view, self.level.0)
            .map_err(|_| LeakageError::Setup("a record the grant does not decrypt"))?;
        debug_assert_eq!(cell.depth(), self.depth);
        Ok(cell)
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

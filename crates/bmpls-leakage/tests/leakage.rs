//! The privacy properties of issue 14, as attacks that fail the suite if they succeed: on a
//! simulated day (and a month, for averaging), records encrypted as the reporter does, with
//! the levels finer than district order-revealing, give an outsider no better than the
//! district scale and a carer no better than its granted cell; and the same attacks on
//! today's all-OPE records do succeed, so the attacks are real.

use std::sync::OnceLock;

use bmpls_grid::{LevelIndex, LevelSet};
use bmpls_leakage::observe::{Encryptor, observe};
use bmpls_leakage::patient::{DAY_MS, HOME, simulate_day};
use bmpls_leakage::{Answer, Figures, Layout, Seen, Setup, metres, run};
use bmpls_ore::{Domain, OreKey};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const SEED: u64 = 7;
const STREET: LevelIndex = LevelIndex(1);
const NEIGHBOURHOOD: LevelIndex = LevelIndex(2);
const DISTRICT: LevelIndex = LevelIndex(3);

/// Figures of one day under both layouts, carers at street, neighbourhood and district
/// receiving whole records (the worst case: even the finer levels' ciphertexts).
fn day() -> &'static [Figures] {
    static DAY: OnceLock<Vec<Figures>> = OnceLock::new();
    DAY.get_or_init(|| measure(1, vec![STREET, NEIGHBOURHOOD, DISTRICT]))
}

/// Figures of a month (for averaging across per-day keys), no carers.
fn month() -> &'static [Figures] {
    static MONTH: OnceLock<Vec<Figures>> = OnceLock::new();
    MONTH.get_or_init(|| measure(30, Vec::new()))
}

fn measure(days: u32, carer_levels: Vec<LevelIndex>) -> Vec<Figures> {
    let levels = LevelSet::default_levels();
    let setup = Setup {
        seed: SEED,
        days,
        carer_days: days,
        carer_levels,
        answer: Answer::WholeRecord,
        layouts: vec![Layout::all_ope(&levels), Layout::ore_fine(&levels)],
        levels,
    };
    run(&setup).expect("the simulation encrypts")
}

fn ope(figures: &[Figures]) -> &Figures {
    &figures[0]
}

fn ore(figures: &[Figures]) -> &Figures {
    &figures[1]
}

#[test]
fn anchored_attack_places_fixes_to_tens_of_metres_on_all_ope_records() {
    let f = ope(day());
    assert!(
        f.anchored.count > 100,
        "{} fixes away from home",
        f.anchored.count
    );
    assert!(
        f.anchored.median_m < 100.0,
        "median {:.0} m: the attack should work on today's records",
        f.anchored.median_m
    );
}

#[test]
fn anchored_attack_does_no_better_than_the_district_scale_with_ore() {
    let f = ore(day());
    assert!(
        f.anchored.median_m >= 0.9 * f.district_scale.median_m,
        "median {:.0} m against the district cells' {:.0} m",
        f.anchored.median_m,
        f.district_scale.median_m
    );
    for (level, score) in f.anchored_by_level.iter().enumerate() {
        assert!(
            score.median_m >= 0.9 * f.district_scale.median_m,
            "from level {level}: median {:.0} m",
            score.median_m
        );
    }
}

#[test]
fn a_neighbourhood_carer_refines_its_cells_from_finer_ope_ciphertexts() {
    let c = &ope(day()).carers[1];
    assert_eq!(c.level, NEIGHBOURHOOD);
    assert!(
        c.attack.median_m < 0.5 * c.granted.median_m,
        "attack {:.0} m, granted centres {:.0} m",
        c.attack.median_m,
        c.granted.median_m
    );
}

#[test]
fn a_carer_learns_no_more_than_its_granted_cell_with_ore() {
    for c in &ore(day()).carers {
        assert!(c.granted.count > 100);
        assert!(
            c.attack.median_m >= 0.9 * c.granted.median_m,
            "level {}: attack {:.1} m, granted centres {:.1} m",
            c.level.0,
            c.attack.median_m,
            c.granted.median_m
        );
    }
}

#[test]
fn averaging_a_month_of_days_locates_the_home_on_all_ope_records() {
    let f = ope(month());
    assert_eq!(f.days_averaged, 30);
    let averaged = f.averaged_m.expect("every day has night-time fixes");
    // A city cell's centre is a median of about 8 km from the truth: with no key and no
    // auxiliary knowledge, a month of per-day estimates does far better.
    assert!(averaged < 5_000.0, "home placed {averaged:.0} m away");
}

#[test]
fn averaging_a_month_of_days_does_no_better_than_the_district_scale_with_ore() {
    let (f, day) = (ore(month()), ore(day()));
    let averaged = f.averaged_m.expect("every day has night-time fixes");
    assert!(
        averaged >= day.district_scale.median_m,
        "home placed {averaged:.0} m away, the district scale is {:.0} m",
        day.district_scale.median_m
    );
}

/// An outsider sees order-preserving ciphertexts only where the layout puts them, and a
/// carer's view hides the finer levels however they are stored.
#[test]
fn observations_show_what_the_layout_and_the_answer_allow() {
    let levels = LevelSet::default_levels();
    let layout = Layout::ore_fine(&levels);
    let mut phone = Encryptor::new(
        SEED,
        levels.clone(),
        vec![true, true, true, false, false, false],
    )
    .expect("keys");
    let fix = simulate_day(SEED, 0)[600];
    let sealed = phone.encrypt(&fix).expect("encrypts");
    let stored = sealed.ore.as_ref().expect("an ORE record");
    assert!(stored.cells[..3].iter().all(|c| c.ore().is_some()));
    assert!(stored.cells[3..].iter().all(|c| c.ope().is_some()));
    let seen = observe(&sealed, &layout);
    assert!(seen.levels[..3].iter().all(|s| *s == Seen::Opaque));
    assert!(seen.levels[3..].iter().all(|s| matches!(s, Seen::Ope(_))));
    let all_ope = observe(&sealed, &Layout::all_ope(&levels));
    assert!(all_ope.levels.iter().all(|s| matches!(s, Seen::Ope(_))));

    let epoch = sealed.record.epoch.0;
    let mut carer = phone.carer(NEIGHBOURHOOD, epoch, epoch).expect("grant");
    let cell = carer.decrypt(&sealed.record).expect("decrypts");
    assert!(cell == fix.at.cell(16).expect("on the grid"));
    // The ORE record's neighbourhood right ciphertext decrypts (by bisection) to the same cell.
    assert!(carer.decrypt(stored).expect("decrypts") == cell);
    let whole = carer
        .observe(cell, &all_ope, Answer::WholeRecord)
        .expect("view");
    assert!(matches!(whole.levels[0], Seen::Ope(_)));
    assert!(whole.levels[2] == Seen::Cell(cell));
    let view = carer.observe(cell, &all_ope, Answer::View).expect("view");
    assert!(view.levels[..2].iter().all(|s| *s == Seen::Opaque));
    assert!(view.levels[3] == Seen::Cell(cell.at_depth(13).expect("coarser")));
}

/// Right ciphertexts of one value are as unrelated as those of two neighbouring cells: no
/// statistic of a pair (equal bytes, equal leading bytes, bit distance, per-byte means)
/// tells the two kinds of pair apart.
#[test]
fn right_ciphertexts_of_one_value_are_unrelated_bytes() {
    const HEADER: usize = 4;
    let key = OreKey::new(&[9; 32], Domain::for_level_bits(50).expect("domain"));
    let mut rng = StdRng::seed_from_u64(11);
    let x: u64 = rng.gen_range(0..1 << 50);
    let verdict = distinguisher(x, |v| {
        key.encrypt_right(v, &mut rng)
            .expect("in the domain")
            .as_bytes()[HEADER..]
            .to_vec()
    });
    assert!(verdict.is_none(), "{}", verdict.unwrap_or_default());
}

/// The distinguisher has the power to see a leak: a ciphertext that carried its plaintext's
/// bytes in front of random ones is told apart.
#[test]
fn the_distinguisher_sees_a_deterministic_part() {
    let mut rng = StdRng::seed_from_u64(12);
    let verdict = distinguisher(1 << 40, |v| {
        let mut bytes = v.to_be_bytes().to_vec();
        bytes.extend((0..64).map(|_| rng.r#gen::<u8>()));
        bytes
    });
    assert!(verdict.is_some());
}

/// Which statistic, if any, tells pairs of encryptions of `x` from pairs of encryptions of
/// `x` and its neighbouring cell `x ^ 1`, at five standard errors (six per byte position).
fn distinguisher(x: u64, mut encrypt: impl FnMut(u64) -> Vec<u8>) -> Option<String> {
    const PAIRS: usize = 400;
    let y = x ^ 1;
    let same: Vec<(Vec<u8>, Vec<u8>)> = (0..PAIRS).map(|_| (encrypt(x), encrypt(x))).collect();
    let other: Vec<(Vec<u8>, Vec<u8>)> = (0..PAIRS).map(|_| (encrypt(x), encrypt(y))).collect();
    if same.iter().any(|(a, b)| a == b) {
        return Some("two encryptions of one value are equal".into());
    }
    let stats = |pairs: &[(Vec<u8>, Vec<u8>)]| {
        let mut equal = Vec::new();
        let mut prefix = Vec::new();
        let mut hamming = Vec::new();
        for (a, b) in pairs {
            equal.push(a.iter().zip(b).filter(|(p, q)| p == q).count() as f64);
            prefix.push(a.iter().zip(b).take_while(|(p, q)| p == q).count() as f64);
            hamming.push(
                a.iter()
                    .zip(b)
                    .map(|(p, q)| (p ^ q).count_ones())
                    .sum::<u32>() as f64,
            );
        }
        [equal, prefix, hamming]
    };
    let differ = |s: &[f64], o: &[f64], sigmas: f64| {
        let ((ms, vs), (mo, vo)) = (mean_var(s), mean_var(o));
        let se = ((vs + vo) / PAIRS as f64).sqrt();
        ((ms - mo).abs() > sigmas * se + 1e-9)
            .then(|| format!("{ms:.2} against {mo:.2} (standard error {se:.2})"))
    };
    let names = ["equal bytes", "shared leading bytes", "bit distance"];
    for ((s, o), name) in stats(&same).iter().zip(&stats(&other)).zip(names) {
        if let Some(why) = differ(s, o, 5.0) {
            return Some(format!("{name}: {why}"));
        }
    }
    for position in 0..same[0].1.len() {
        let of = |v: &[(Vec<u8>, Vec<u8>)]| {
            v.iter()
                .map(|p| f64::from(p.1[position]))
                .collect::<Vec<_>>()
        };
        if let Some(why) = differ(&of(&same), &of(&other), 6.0) {
            return Some(format!("byte {position}: {why}"));
        }
    }
    None
}

fn mean_var(v: &[f64]) -> (f64, f64) {
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (v.len() - 1) as f64;
    (mean, var)
}

/// The simulated patient is reproducible, sleeps at home and walks at walking speed.
#[test]
fn the_simulated_patient_is_seeded_and_walks() {
    let a = simulate_day(SEED, 3);
    let b = simulate_day(SEED, 3);
    assert!(a == b, "one seed, one day");
    assert!(a != simulate_day(SEED + 1, 3));
    assert_eq!(a.len() as u64, DAY_MS / 30_000);
    let night = a.iter().filter(|f| f.fix_time_ms % DAY_MS < 5 * 3_600_000);
    assert!(night.clone().all(|f| metres(f.at, HOME) < 40.0));
    let furthest = a.iter().map(|f| metres(f.at, HOME)).fold(0.0, f64::max);
    assert!(furthest > 500.0, "the patient went out: {furthest:.0} m");
    // 30 s apart, at most ~1.4 m/s plus the noise of two fixes.
    for w in a.windows(2) {
        assert!(metres(w[0].at, w[1].at) < 30.0 * 1.4 + 60.0);
    }
}

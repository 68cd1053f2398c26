//! Named precision levels: the committed configuration, lookups, and every validation error.

use bmpls_grid::{Level, LevelError, LevelIndex, LevelSet, Scheme};

/// One `[[level]]` entry of a levels file.
fn entry(name: &str, depth: u8) -> String {
    format!("[[level]]\nname = \"{name}\"\ndepth = {depth}\n")
}

fn check(text: &str, expected: LevelError) {
    assert_eq!(LevelSet::from_toml(text), Err(expected), "{text}");
}

#[test]
fn the_levels_file_is_the_default() {
    let text = include_str!("../../../../config/levels.toml");
    let parsed = LevelSet::from_toml(text).expect("config/levels.toml is valid");
    assert_eq!(parsed, LevelSet::default_levels());
    let expected = [
        ("exact", 25),
        ("street", 19),
        ("neighbourhood", 16),
        ("district", 13),
        ("city", 10),
        ("region", 7),
    ];
    let got: Vec<_> = parsed
        .levels()
        .iter()
        .map(|l| (l.name.as_str(), l.depth))
        .collect();
    assert_eq!(got, expected);
    assert_eq!(parsed.grid_depth(), 25);
}

#[test]
fn levels_are_found_by_name_and_index_finest_first() {
    let levels = LevelSet::default_levels();
    let check = |name: &str, expected: Option<(u8, u8)>| {
        let got = levels
            .by_name(name)
            .map(|(LevelIndex(i), level)| (i, level.depth));
        assert_eq!(got, expected, "{name}");
        assert_eq!(levels.index_of(name).map(|i| i.0), expected.map(|e| e.0));
    };
    check("exact", Some((0, 25)));
    check("neighbourhood", Some((2, 16)));
    check("region", Some((5, 7)));
    check("Region", None);
    check("", None);
    assert_eq!(
        levels.get(LevelIndex(1)).map(|l| l.name.as_str()),
        Some("street")
    );
    assert_eq!(levels.get(LevelIndex(6)), None);
    assert_eq!(levels.len(), 6);
}

#[test]
fn bad_level_sets_name_the_problem() {
    let two = |a: (&str, u8), b: (&str, u8)| {
        format!("grid_depth = 25\n{}{}", entry(a.0, a.1), entry(b.0, b.1))
    };
    let order = |index, name: &str, depth, previous| LevelError::Order {
        index,
        name: name.into(),
        depth,
        previous,
    };
    check(
        &two(("fine", 20), ("coarse", 20)),
        order(1, "coarse", 20, 20),
    );
    check(
        &two(("fine", 10), ("coarse", 12)),
        order(1, "coarse", 12, 10),
    );
    let depth = |index, name: &str, depth| LevelError::Depth {
        index,
        name: name.into(),
        depth,
        grid_depth: 25,
    };
    check(
        &format!("grid_depth = 25\n{}", entry("fine", 26)),
        depth(0, "fine", 26),
    );
    check(&two(("fine", 3), ("zero", 0)), depth(1, "zero", 0));
    check(
        &two(("a", 20), ("a", 10)),
        LevelError::DuplicateName {
            index: 1,
            name: "a".into(),
        },
    );
    for bad in ["Bad Name", "", "ünï", &"x".repeat(33)] {
        check(
            &format!("grid_depth = 25\n{}", entry(bad, 20)),
            LevelError::Name {
                index: 0,
                name: bad.into(),
            },
        );
    }
    check("grid_depth = 27\nlevel = []", LevelError::GridDepth(27));
    check("grid_depth = 0\nlevel = []", LevelError::GridDepth(0));
    check("grid_depth = 25\nlevel = []", LevelError::Count(0));
    let many: String = (0..17u8).map(|i| entry(&format!("l{i}"), 25 - i)).collect();
    check(&format!("grid_depth = 25\n{many}"), LevelError::Count(17));
    let levels = vec![Level {
        name: "x".into(),
        depth: 5,
        scheme: Scheme::Ope,
    }];
    assert_eq!(
        LevelSet::new(4, levels.clone()),
        Err(LevelError::Depth {
            index: 0,
            name: "x".into(),
            depth: 5,
            grid_depth: 4,
        })
    );
    assert!(LevelSet::new(5, levels).is_ok());
}

#[test]
fn unreadable_files_name_the_field_and_line() {
    let check_parse = |text: &str, line: usize, field: &str| match LevelSet::from_toml(text) {
        Err(LevelError::Parse { line: l, message }) => {
            assert_eq!(l, line, "{text}: {message}");
            assert!(
                message.contains(field),
                "{text}: {message} does not name {field}"
            );
        }
        other => panic!("{text}: {other:?}"),
    };
    check_parse("grid_depth = \"x\"\nlevel = []", 1, "u8");
    check_parse(
        &format!("grid_depth = 25\nextra = 1\n{}", entry("a", 3)),
        2,
        "extra",
    );
    check_parse("grid_depth = 25\n[[level]]\nname = \"a\"\n", 2, "depth");
    check_parse(&entry("a", 3), 1, "grid_depth");
    check_parse(
        "grid_depth = 25\n[[level]]\nname = \"a\"\ndepth = 300\n",
        4,
        "u8",
    );
}

#[test]
fn fine_levels_default_to_ore_and_ore_never_sits_above_ope() {
    let levels = LevelSet::default_levels();
    let schemes: Vec<Scheme> = levels.levels().iter().map(|l| l.scheme).collect();
    use Scheme::{Ope, Ore};
    assert_eq!(schemes, [Ore, Ore, Ore, Ope, Ope, Ope]);
    assert_eq!(levels.ore_levels(), 3);
    let shipped =
        LevelSet::from_toml(include_str!("../../../../config/levels.toml")).expect("test value");
    assert_eq!(shipped, levels, "config/levels.toml is the default");
    // Left out, the scheme follows the depth; said, it is what is said.
    let text = "grid_depth = 25\n[[level]]\nname = \"a\"\ndepth = 20\n[[level]]\nname = \"b\"\ndepth = 14\nscheme = \"ope\"\n[[level]]\nname = \"c\"\ndepth = 8\n";
    let parsed = LevelSet::from_toml(text).expect("test value");
    let schemes: Vec<Scheme> = parsed.levels().iter().map(|l| l.scheme).collect();
    assert_eq!(schemes, [Ore, Ope, Ope]);
    let text = "grid_depth = 25\n[[level]]\nname = \"a\"\ndepth = 20\nscheme = \"ope\"\n[[level]]\nname = \"b\"\ndepth = 14\n";
    assert_eq!(
        LevelSet::from_toml(text),
        Err(LevelError::OpeBelowOre {
            index: 1,
            name: "b".into(),
            finer: "a".into(),
        })
    );
    let text = "grid_depth = 25\n[[level]]\nname = \"a\"\ndepth = 20\nscheme = \"rot13\"\n";
    assert!(matches!(
        LevelSet::from_toml(text),
        Err(LevelError::Parse { line: 5, .. })
    ));
}

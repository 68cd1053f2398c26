//! Ids as people type them: in full (32 hex digits for a patient or carer, 64 for a grant), or
//! abbreviated — a prefix (`a63d1d26`) or a prefix and suffix around an ellipsis
//! (`a63d1d26…828`, as the docs print them) — resolved against the grants the chain holds for
//! the asking carer or patient. An abbreviation that matches none or several is refused,
//! naming the candidates.

/// Fewest hex digits an abbreviation must have, so that it names something on purpose.
pub(crate) const MIN_DIGITS: usize = 4;

/// An id as typed: complete, or a pattern to resolve.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Typed<const N: usize> {
    /// All `N` bytes.
    Full([u8; N]),
    /// The leading (and perhaps trailing) hex digits, lower case.
    Abbreviated {
        /// The digits before the ellipsis.
        prefix: String,
        /// The digits after it (empty when none).
        suffix: String,
    },
}

impl<const N: usize> Typed<N> {
    /// Parses `text` as an id of `N` bytes called `what` (`a patient id`, `a grant hash`).
    pub(crate) fn parse(text: &str, what: &str) -> anyhow::Result<Self> {
        let text = text.trim().to_ascii_lowercase();
        let mut bytes = [0u8; N];
        if hex::decode_to_slice(&text, &mut bytes).is_ok() {
            return Ok(Self::Full(bytes));
        }
        let (prefix, suffix) = match text.split_once('…').or_else(|| text.split_once("...")) {
            Some((p, s)) => (p.to_string(), s.to_string()),
            None => (text.clone(), String::new()),
        };
        let hex_digits = |s: &str| s.chars().all(|c| c.is_ascii_hexdigit());
        anyhow::ensure!(
            hex_digits(&prefix)
                && hex_digits(&suffix)
                && prefix.len() >= MIN_DIGITS
                && prefix.len() + suffix.len() < 2 * N,
            "{what} is {} hex digits, or at least its first {MIN_DIGITS} (as in a63d1d26 or \
             a63d1d26…828), not {text:?}",
            2 * N
        );
        Ok(Self::Abbreviated { prefix, suffix })
    }

    /// Whether this names `id`.
    pub(crate) fn matches(&self, id: &[u8; N]) -> bool {
        match self {
            Self::Full(bytes) => bytes == id,
            Self::Abbreviated { prefix, suffix } => {
                let text = hex::encode(id);
                text.starts_with(prefix.as_str()) && text.ends_with(suffix.as_str())
            }
        }
    }

    /// The one id of `candidates` this names (each candidate once), or why there is none.
    /// `among` says where the candidates come from, for the error.
    pub(crate) fn resolve(
        &self,
        candidates: &[[u8; N]],
        what: &str,
        among: &str,
    ) -> anyhow::Result<[u8; N]> {
        if let Self::Full(bytes) = self {
            return Ok(*bytes);
        }
        let mut found: Vec<&[u8; N]> = candidates.iter().filter(|c| self.matches(c)).collect();
        found.sort_unstable();
        found.dedup();
        match found.as_slice() {
            [one] => Ok(**one),
            [] => anyhow::bail!("no {what} {} among {among}", self.shown()),
            many => anyhow::bail!(
                "{} names {} {what}s among {among}: {}; give more digits",
                self.shown(),
                many.len(),
                many.iter().map(hex::encode).collect::<Vec<_>>().join(", ")
            ),
        }
    }

    fn shown(&self) -> String {
        match self {
            Self::Full(bytes) => hex::encode(bytes),
            Self::Abbreviated { prefix, suffix } if suffix.is_empty() => format!("{prefix}…"),
            Self::Abbreviated { prefix, suffix } => format!("{prefix}…{suffix}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Typed;

    fn check(typed: &str, candidates: &[[u8; 4]], expected: Result<[u8; 4], &str>) {
        let got = Typed::<4>::parse(typed, "an id")
            .and_then(|t| t.resolve(candidates, "id", "the test's"));
        match (got, expected) {
            (Ok(id), Ok(want)) => assert_eq!(id, want, "{typed}"),
            (Err(e), Err(part)) => assert!(e.to_string().contains(part), "{typed}: {e}"),
            (got, want) => panic!("{typed}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn abbreviated_ids_resolve_when_they_name_one() {
        let ids = [
            [0xa6, 0x3d, 0x1d, 0x26],
            [0xa6, 0x3d, 0x99, 0x28],
            [0x11, 0x22, 0x33, 0x44],
        ];
        check("a63d1d26", &ids, Ok(ids[0]));
        check("A63D1D26", &ids, Ok(ids[0]));
        check("ffffffff", &ids, Ok([0xff; 4]));
        check("1122", &ids, Ok(ids[2]));
        check("a63d…28", &ids, Ok(ids[1]));
        check("a63d...26", &ids, Ok(ids[0]));
        check("a63d", &ids, Err("names 2 ids"));
        check("a63d", &ids, Err("a63d1d26, a63d9928"));
        check("beef", &ids, Err("no id beef… among the test's"));
        check("a6", &ids, Err("at least its first 4"));
        check("a63g", &ids, Err("not \"a63g\""));
        check("", &ids, Err("8 hex digits"));
    }
}

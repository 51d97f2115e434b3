//! Nicknames read as the full given names they stand for: a schema option
//! ([`crate::schema::FieldSpec::nicknames`]), off in the default schema because it costs
//! privacy over the bar (docs/privacy.md, "Nicknames").
//!
//! Agencies write the same girl as `JENNIFER` in one export and `JEN` in another; a referral log
//! typed by hand writes what she was called. Bigram Dice puts `JEN SMITH` and `JENNIFER SMITH`
//! at about 0.7, where a names agreement weighs little, and their encodings share no value
//! for the frequency adjustment. A standardisation table is the classic answer (Christen, *Data
//! Matching*, 2012, ch. 3): the encoder, which sees the plain name, rewrites a nickname to its
//! full name before hashing, so both rows hash the same tokens.
//!
//! The table ([`NICKNAMES_CSV`], `fixtures/config/nicknames.csv`) lists English and Spanish
//! short forms common in the region's records, each with the full name it stands for and the
//! sex of the people who carry it. A nickname is rewritten only when exactly one full name
//! fits the row's sex (every full name when the sex is unknown): `SAM` is `SAMANTHA` on a row
//! recorded female and `SAMUEL` on one recorded male, and stays `SAM` on a row without a sex;
//! `MADDIE` (Madison or Madeline) is never rewritten. Names that are given names in their own
//! right as often as short forms (`KAYLA`, `LOLA`) are not in the table. Each word of the given
//! name is read on its own, so `JEN MARIE` becomes `JENNIFER MARIE`.
//!
//! The table is part of the schema's meaning: a schema with the option fingerprints the table
//! too ([`crate::schema::LinkageSchema::fingerprint`]), so encodings made under two versions of
//! it are refused together like any two schemas.

use rustc_hash::FxHashMap as HashMap;
use std::sync::OnceLock;

use super::Identifiers;
use crate::schema::Field;

/// The built-in table, `nickname,name,sex` per line (upper-case ASCII, as [`super::name`]
/// leaves names; sex `F`, `M` or empty for either).
pub const NICKNAMES_CSV: &str = include_str!("../../fixtures/config/nicknames.csv");

/// A full name and the sex its carriers are recorded with (`None`: either).
type FullName = (&'static str, Option<&'static str>);

fn table() -> &'static HashMap<&'static str, Vec<FullName>> {
    static TABLE: OnceLock<HashMap<&'static str, Vec<FullName>>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut table: HashMap<&'static str, Vec<FullName>> = HashMap::default();
        // The embedded file is checked by the tests (`the_table_is_canonical_and_acyclic`).
        for line in NICKNAMES_CSV.lines().skip(1) {
            let mut cells = line.split(',');
            let (Some(nick), Some(name)) = (cells.next(), cells.next()) else {
                continue;
            };
            let sex = cells.next().filter(|s| !s.is_empty());
            table.entry(nick).or_default().push((name, sex));
        }
        table
    })
}

/// The full name nickname `word` stands for on a row recorded with sex `sex` (the normalised
/// token, `F` or `M`; anything else counts as unknown): `Some` only when exactly one full name
/// fits.
///
/// ```
/// use crosswalk::normalize::nicknames::full_name;
///
/// assert_eq!(full_name("JEN", None), Some("JENNIFER"));
/// assert_eq!(full_name("SAM", Some("F")), Some("SAMANTHA"));
/// assert_eq!(full_name("SAM", Some("M")), Some("SAMUEL"));
/// assert_eq!(full_name("SAM", None), None); // Samantha or Samuel
/// assert_eq!(full_name("JENNIFER", None), None); // not a nickname
/// ```
pub fn full_name(word: &str, sex: Option<&str>) -> Option<&'static str> {
    let sex = sex.filter(|s| matches!(*s, "F" | "M"));
    let mut found: Option<&'static str> = None;
    for &(name, of) in table().get(word)? {
        if sex.is_some() && of.is_some() && of != sex {
            continue;
        }
        match found {
            None => found = Some(name),
            Some(f) if f == name => {}
            Some(_) => return None,
        }
    }
    found
}

/// Rewrites the given name of `ids`: each word that is a nickname with one full name for the
/// row's sex ([`full_name`]) becomes that name. Returns whether anything changed.
///
/// ```
/// use crosswalk::normalize::{nicknames::read_nicknames, Identifiers};
/// use crosswalk::schema::Field;
///
/// let mut ids = Identifiers::default();
/// ids.set(Field::GivenName, Some("JEN MARIE".into()));
/// assert!(read_nicknames(&mut ids));
/// assert_eq!(ids.get(Field::GivenName), Some("JENNIFER MARIE"));
/// ```
pub fn read_nicknames(ids: &mut Identifiers) -> bool {
    if !has_nickname(ids) {
        return false;
    }
    let Some(given) = ids.get(Field::GivenName) else {
        return false;
    };
    let sex = ids.get(Field::Sex);
    let read: Vec<&str> = given
        .split(' ')
        .map(|w| full_name(w, sex).unwrap_or(w))
        .collect();
    let read = read.join(" ");
    ids.set(Field::GivenName, Some(read));
    true
}

/// Whether [`read_nicknames`] would rewrite the given name of `ids`: a word of it is a
/// nickname with one full name for the row's sex.
pub fn has_nickname(ids: &Identifiers) -> bool {
    let Some(given) = ids.get(Field::GivenName) else {
        return false;
    };
    let sex = ids.get(Field::Sex);
    given.split(' ').any(|w| full_name(w, sex).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every cell is already what [`super::super::name`] makes of it (upper-case ASCII, one
    /// word), sexes are `F`, `M` or empty, no line repeats, and no full name is itself a
    /// nickname of the table (a rewrite never needs a second one).
    #[test]
    fn the_table_is_canonical_and_acyclic() {
        let mut lines = NICKNAMES_CSV.lines();
        assert_eq!(lines.next(), Some("nickname,name,sex"));
        let mut seen = std::collections::HashSet::new();
        for line in lines {
            let cells: Vec<&str> = line.split(',').collect();
            assert_eq!(cells.len(), 3, "{line}");
            for w in &cells[..2] {
                assert_eq!(
                    super::super::name(w).unwrap().as_deref(),
                    Some(*w),
                    "{line}"
                );
                assert!(!w.contains(' '), "{line}");
            }
            assert!(matches!(cells[2], "F" | "M" | ""), "{line}");
            assert_ne!(cells[0], cells[1], "{line}");
            assert!(
                !table().contains_key(cells[1]),
                "{line}: its name is a nickname"
            );
            assert!(seen.insert(line), "{line} repeats");
        }
        assert!(seen.len() > 150);
    }

    /// Ambiguity is never resolved by guessing: a nickname with two full names for the row's
    /// sex stays as it is, and an unknown or other sex counts every full name.
    #[test]
    fn only_one_full_name_is_a_reading() {
        assert_eq!(full_name("MADDIE", Some("F")), None);
        assert_eq!(full_name("ALE", Some("F")), Some("ALEJANDRA"));
        assert_eq!(full_name("ALE", Some("X")), None);
        assert_eq!(full_name("LUPE", Some("M")), None); // listed for women only
        let mut ids = Identifiers::default();
        ids.set(Field::GivenName, Some("MADDIE".into()));
        assert!(!read_nicknames(&mut ids));
        assert_eq!(ids.get(Field::GivenName), Some("MADDIE"));
        ids.set(Field::GivenName, Some("SAM".into()));
        ids.set(Field::Sex, Some("F".into()));
        assert!(read_nicknames(&mut ids));
        assert_eq!(ids.get(Field::GivenName), Some("SAMANTHA"));
        assert!(!read_nicknames(&mut Identifiers::default()));
    }
}

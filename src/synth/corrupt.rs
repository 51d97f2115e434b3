//! Recording errors, after the generators of the record-linkage literature (Febrl's dsgen,
//! Christen 2005; GeCo, Tran, Vatsalan and Christen 2013): keyboard typos (substitution by a
//! neighbouring key, insertion, deletion, transposition), nicknames, first/last swaps, dropped
//! accents, shortened compound surnames, middle initials, date-of-birth errors, missing values,
//! and aliases. Rates are per agency ([`Rates`]) and listed in docs/synth.md.

use chrono::{Datelike, NaiveDate};

use super::names::NICKNAMES;
use super::world::Person;
use super::Rand;

/// Error rates of one agency's recording.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rates {
    /// A keyboard typo in the given name, and separately in the surname.
    pub typo: f64,
    /// A nickname instead of the given name (when one exists).
    pub nickname: f64,
    /// Given and family name swapped.
    pub swap: f64,
    /// Accents stripped (ASCII-only systems always strip: 1.0).
    pub ascii: f64,
    /// Date of birth missing.
    pub dob_missing: f64,
    /// Date of birth wrong (day/month swap, a digit, or the year ±1).
    pub dob_error: f64,
    /// Phone missing although known.
    pub phone_missing: f64,
    /// The person's alias recorded as the name (when they have one).
    pub alias_as_name: f64,
}

/// What an agency wrote down about a person on one occasion.
#[derive(Debug, Clone, Default)]
pub(crate) struct Observed {
    pub given: String,
    pub middle: String,
    pub family: String,
    pub dob: Option<NaiveDate>,
    pub female: bool,
    pub phone: String,
    pub street: String,
    pub town: String,
    pub zip: String,
    pub ssn4: String,
    /// Known alias, for agencies with an AKA column.
    pub aka: String,
    /// Whether the name fields hold the person's alias instead of their name.
    pub alias_as_name: bool,
    /// An age recorded instead of the birth date (the hard world's referral log).
    pub age: Option<u32>,
}

const KEYBOARD: [&str; 3] = ["qwertyuiop", "asdfghjkl", "zxcvbnm"];

fn neighbour(c: char, rng: &mut Rand) -> char {
    let lower = c.to_ascii_lowercase();
    for row in KEYBOARD {
        if let Some(i) = row.find(lower) {
            let bytes = row.as_bytes();
            let j = if i == 0 {
                1
            } else if i + 1 == bytes.len() || rng.chance(0.5) {
                i - 1
            } else {
                i + 1
            };
            let n = bytes[j] as char;
            return if c.is_uppercase() {
                n.to_ascii_uppercase()
            } else {
                n
            };
        }
    }
    c
}

/// One keyboard typo: substitution by a neighbouring key, insertion, deletion or transposition.
pub(crate) fn typo(s: &str, rng: &mut Rand) -> String {
    let mut v: Vec<char> = s.chars().collect();
    if v.len() < 3 {
        return s.to_string();
    }
    let i = 1 + rng.below(v.len() - 2); // first letters are rarely mistyped
    match rng.below(4) {
        0 => v[i] = neighbour(v[i], rng),
        1 => {
            let c = neighbour(v[i], rng);
            v.insert(i, c.to_ascii_lowercase());
        }
        2 => {
            v.remove(i);
        }
        _ => v.swap(i, i + 1), // i + 1 < len: i is at most len - 2
    }
    v.into_iter().collect()
}

/// Strips accents the way ASCII-only systems do (é → e, ñ → n).
pub(crate) fn ascii(s: &str) -> String {
    use unicode_normalization::char::is_combining_mark;
    use unicode_normalization::UnicodeNormalization;
    s.nfd().filter(|c| !is_combining_mark(*c)).collect()
}

fn dob_error(d: NaiveDate, rng: &mut Rand) -> NaiveDate {
    let alt = match rng.below(3) {
        0 => NaiveDate::from_ymd_opt(d.year(), d.day(), d.month()),
        1 => NaiveDate::from_ymd_opt(d.year(), d.month(), (d.day() + 10) % 28 + 1),
        _ => NaiveDate::from_ymd_opt(
            d.year() + if rng.chance(0.5) { 1 } else { -1 },
            d.month(),
            d.day().min(28),
        ),
    };
    alt.unwrap_or(NaiveDate::from_ymd_opt(d.year(), d.month(), (d.day() % 28) + 1).unwrap_or(d))
}

/// What one agency records about `p` on `date`, with its error rates. `alias_only`: the agency
/// knows the person only by the alias (a hard world's police and taskforce), which then goes
/// through the same recording errors as a name.
pub(crate) fn observe(
    p: &Person,
    date: NaiveDate,
    r: &Rates,
    rng: &mut Rand,
    alias_only: bool,
) -> Observed {
    let home = p.home_at(date);
    let mut given = p.given.clone();
    let mut family = p.surname_at(date).to_string();
    let mut middle = p.middle.clone().unwrap_or_default();
    let mut aka = String::new();
    let mut alias_as_name = false;
    if let Some((ag, af)) = &p.alias {
        // `||` keeps the classic stream: no draw when the alias is forced.
        if alias_only || rng.chance(r.alias_as_name) {
            given = ag.clone();
            family = af.clone();
            middle.clear();
            alias_as_name = true;
        } else if rng.chance(0.6) {
            aka = format!("{ag} {af}");
        }
    }
    if rng.chance(r.nickname) {
        let options: Vec<&str> = NICKNAMES
            .iter()
            .filter(|(full, _)| *full == given)
            .map(|(_, nick)| *nick)
            .collect();
        if !options.is_empty() {
            given = rng.pick(&options).to_string();
        }
    }
    // Compound surnames: often only the first part is recorded, or hyphenated.
    if family.contains(' ') {
        match rng.below(4) {
            0 => family = family.split(' ').next().unwrap_or_default().to_string(),
            1 => family = family.replace(' ', "-"),
            _ => {}
        }
    }
    if rng.chance(r.typo) {
        given = typo(&given, rng);
    }
    if rng.chance(r.typo) {
        family = typo(&family, rng);
    }
    match rng.below(3) {
        0 => middle.clear(),
        1 => middle = middle.chars().take(1).collect(),
        _ => {}
    }
    if rng.chance(r.swap) {
        std::mem::swap(&mut given, &mut family);
    }
    if rng.chance(r.ascii) {
        given = ascii(&given);
        family = ascii(&family);
        middle = ascii(&middle);
    }
    let dob = if rng.chance(r.dob_missing) {
        None
    } else if rng.chance(r.dob_error) {
        Some(dob_error(p.dob, rng))
    } else {
        Some(p.dob)
    };
    let phone = match &home.phone {
        Some(ph) if !rng.chance(r.phone_missing) => ph.clone(),
        _ => String::new(),
    };
    Observed {
        given,
        middle,
        family,
        dob,
        female: p.female,
        phone,
        street: home.street.clone(),
        town: home.town.to_string(),
        zip: home.zip.to_string(),
        ssn4: p.ssn4.clone().unwrap_or_default(),
        aka,
        alias_as_name,
        age: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_change_one_thing() {
        let mut rng = Rand::new(1);
        for _ in 0..100 {
            let t = typo("JENNIFER", &mut rng);
            assert!((7..=9).contains(&t.len()), "{t}");
            assert!(t.starts_with('J'));
        }
    }

    #[test]
    fn ascii_strips_accents() {
        assert_eq!(ascii("Rodríguez Pérez"), "Rodriguez Perez");
        assert_eq!(ascii("Ángel"), "Angel");
    }
}

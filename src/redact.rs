//! What of a cell may appear in a message: its *shape*, and a code's text only when it cannot be
//! an identifier.
//!
//! Any column can hold a name or a birth date by mistake (a mapping that points the event code
//! at the DOB column, a header row that is really a data row), so crosswalk never quotes a cell
//! because of the column it came from. A value is quoted only when its own form rules an
//! identifier out ([`code_is_quotable`]); otherwise messages give its shape ([`shape`]:
//! `03/07/2009` is `99/99/9999`, `Lopez` is `Aaaaa`) and the rows where it occurs, which the
//! agency can look up in its own file.
//!
//! # Example
//!
//! ```
//! use crosswalk::redact::{code_is_quotable, shape};
//!
//! assert_eq!(shape("03/07/2009"), "99/99/9999");
//! assert!(code_is_quotable("SVC-01", 12));
//! assert!(code_is_quotable("Referral", 1)); // a vocabulary word
//! assert!(!code_is_quotable("03/07/2009", 254)); // date-shaped
//! assert!(!code_is_quotable("Lopez", 40)); // name-shaped
//! assert!(!code_is_quotable("SVC-01", 2)); // too rare to rule out a typed identifier
//! ```

/// A code that is not a vocabulary word is quoted only when at least this many rows hold it: a
/// value typed once or twice may be anything.
pub const MIN_ROWS_TO_QUOTE: u64 = 5;

/// Longest code quoted (characters).
const MAX_QUOTED: usize = 24;

/// Words of agency code vocabularies (stages, services, event kinds, crosswalk's own labels):
/// a value made only of these is not an identifier, however rarely it occurs. Words that are
/// also surnames (`Hart`, `Long`, `Case`, `Child`, `Close`, `Call`, `New`, ...) are left out:
/// a surname column mapped as a code must not be quoted.
const CODE_WORDS: &[&str] = &[
    "administrative",
    "admin",
    "adult",
    "advocacy",
    "assessment",
    "basic",
    "both",
    "closed",
    "closure",
    "clothing",
    "consult",
    "counseling",
    "counselling",
    "crisis",
    "discharge",
    "emergency",
    "enroll",
    "enrollment",
    "female",
    "followup",
    "forensic",
    "health",
    "housing",
    "identification",
    "immediate",
    "immigration",
    "intake",
    "interview",
    "investigation",
    "labor",
    "labour",
    "legal",
    "management",
    "medical",
    "meeting",
    "mental",
    "needs",
    "none",
    "null",
    "other",
    "placement",
    "referral",
    "referred",
    "screen",
    "screening",
    "service",
    "services",
    "shelter",
    "term",
    "therapy",
    "trafficking",
    "transitional",
    "transport",
    "unknown",
    "update",
    "victim",
    "visit",
];

/// The shape of a value: each ASCII upper-case letter becomes `A`, lower-case `a`, digit `9`;
/// other letters `A`/`a` by case; spaces and ASCII punctuation stay; anything else is `?`. Over
/// 24 characters it is cut with `…`. A shape tells a date from a phone number from a word
/// without telling which.
pub fn shape(value: &str) -> String {
    let mut out = String::new();
    for (i, c) in value.trim().chars().enumerate() {
        if i == MAX_QUOTED {
            out.push('…');
            break;
        }
        out.push(if c.is_ascii_digit() {
            '9'
        } else if c.is_uppercase() {
            'A'
        } else if c.is_lowercase() {
            'a'
        } else if c == ' ' || c.is_ascii_punctuation() {
            c
        } else {
            '?'
        });
    }
    out
}

/// Whether a code-column value seen in `rows` rows may be quoted in a message: it is empty, or
/// made only of code-vocabulary words (`CODE_WORDS`), or, held by at least
/// [`MIN_ROWS_TO_QUOTE`] rows, it is code-shaped: at most 24 ASCII characters, at most three
/// digits (no date, phone, SSN, ZIP or id), and no run of letters (wherever digits or
/// punctuation cut it) that may be a name: none of four letters or more that is not a code word
/// (`12 Main St`, `LOPEZ2`), none of two or three with a vowel (`LEE`, `WU1`, `KIM_J`) or `NG`;
/// and then digits in a value without spaces (`SVC-01`, `SVC2`), or one of `_ / # : +`
/// (`HSG_TX`, `T/V`), or a single letter (`A`). Hyphen-joined words (`HSG-EM`, `Jo-Ann`) and
/// plain words may be names and are never quoted.
pub fn code_is_quotable(value: &str, rows: u64) -> bool {
    let v = value.trim();
    if v.is_empty() {
        return true;
    }
    if v.chars().count() > MAX_QUOTED
        || !v
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || " _-./&#:+".contains(c))
    {
        return false;
    }
    let digits = v.bytes().filter(u8::is_ascii_digit).count();
    if digits > 3 {
        return false;
    }
    let words: Vec<String> = v
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| w.to_ascii_lowercase())
        .collect();
    if words.iter().all(|w| CODE_WORDS.contains(&w.as_str())) {
        return true;
    }
    if rows < MIN_ROWS_TO_QUOTE {
        return false;
    }
    // The runs of letters, wherever digits or punctuation cut them (`LOPEZ2` holds `lopez`).
    let runs: Vec<String> = v
        .split(|c: char| !c.is_ascii_alphabetic())
        .filter(|w| !w.is_empty())
        .map(|w| w.to_ascii_lowercase())
        .collect();
    // A run of four letters or more that is not a code word may be a name or a street.
    if runs
        .iter()
        .any(|w| w.len() > 3 && !CODE_WORDS.contains(&w.as_str()))
    {
        return false;
    }
    // A run no code is made of: two letters or more with a vowel (or `NG`, a surname without
    // one), not a code word (`LEE`, `WU`, `KIM`; `HSG`, `SVC` and `T` are code-like).
    let name_like = |w: &String| {
        w.len() > 1
            && !CODE_WORDS.contains(&w.as_str())
            && (w == "ng" || w.bytes().any(|b| b"aeiouy".contains(&b)))
    };
    if runs.iter().any(name_like) {
        return false;
    }
    // A number beside words (`12 Oak St`) is an address, not a code: digits only without
    // spaces (`SVC-01`, `SVC2`). `-`, `.` and `&` join names too (`Jo-Ann`, `A.J.`, `Bo & Li`):
    // only `_ / # : +` mark a code (`T/V`, `HSG_TX`), or a single letter (`A`).
    if digits > 0 {
        return !v.contains(' ');
    }
    v.contains(|c| "_/#:+".contains(c)) || (words.len() == 1 && words[0].len() == 1)
}

/// How a code-column value appears in a message: the code itself when
/// [`code_is_quotable`], `(empty)` for an empty cell, else `a value shaped <shape>`.
pub fn code_label(value: &str, rows: u64) -> String {
    let v = value.trim();
    if v.is_empty() {
        "(empty)".to_string()
    } else if code_is_quotable(v, rows) {
        v.to_string()
    } else {
        format!("a value shaped {}", shape(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_never_quoted_whatever_their_count() {
        for v in [
            "03/07/2009",
            "2009-03-07",
            "(555) 867-5309",
            "555-867-5309",
            "0042",
            "02139",
            "Lopez",
            "LOPEZ",
            "LEE",
            "Maria Lopez",
            "GARCIA-LOPEZ",
            "José",
            "12 Main St",
            "maria@example.org",
            "WU",
            "LI",
            "HART",
            "Long",
            "Case",
            "12 Oak St",
            "Min-Ho",
            "Jo-Ann Wu",
            "A.J. Li",
            "St. Cyr",
            "Bo & Li",
            "HSG-EM",
            "LEE/KIM",
            "LI_WU",
            "WU#1",
            "Kim/Lee",
            "LOPEZ2",
            "NGUYEN1",
            "JSMITH1",
            "KIM2",
            "WU1",
            "LEE01",
            "KIM_J",
            "LEE/M",
            "NG#1",
            "NG/LY",
            "NG_T",
        ] {
            assert!(!code_is_quotable(v, 1_000), "{v}");
            assert!(!code_label(v, 1_000).contains(v.trim()), "{v}");
        }
    }

    #[test]
    fn codes_are_quoted_when_common_enough() {
        for v in ["SVC-01", "HSG_TX", "A", "T/V", "SVC2", "SVC_HOUSING"] {
            assert!(code_is_quotable(v, 5), "{v}");
            assert!(!code_is_quotable(v, 4), "{v}");
        }
        for v in [
            "Referral",
            "Shelter",
            "Mental Health",
            "intake",
            "Referral - Housing",
        ] {
            assert!(code_is_quotable(v, 1), "{v}");
        }
        assert_eq!(code_label(" ", 1), "(empty)");
        assert_eq!(code_label("INTAKE", 1), "INTAKE");
        assert_eq!(code_label("NEW", 9), "a value shaped AAA");
    }

    #[test]
    fn shapes_keep_structure_not_content() {
        assert_eq!(shape("03/07/2009"), "99/99/9999");
        assert_eq!(shape(" Lopez "), "Aaaaa");
        assert_eq!(shape("José Núñez"), "Aaaa Aaaaa");
        assert_eq!(shape("李"), "?");
        assert_eq!(shape(&"x".repeat(30)), format!("{}…", "a".repeat(24)));
    }
}

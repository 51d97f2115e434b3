//! Normalisation: messy cells to canonical identifier values.
//!
//! Every function takes one raw cell and returns `Ok(Some(canonical))`, `Ok(None)` when the cell
//! is missing (empty, `NULL`, `UNKNOWN`, a placeholder such as `Jane Doe`), or
//! `Err(`[`Problem`]`)` when a value is present but unusable. A [`Problem`] says what kind of
//! problem it is, never the value, so it can go into the rejects report.
//!
//! Canonical forms (docs/formats.md):
//! - names: upper-case ASCII words separated by one space; accents stripped (NFKD), `ß` → `SS`,
//!   apostrophes dropped (`O'Brien` → `OBRIEN`), hyphens and other punctuation split words
//!   (`Rodríguez-Pérez` → `RODRIGUEZ PEREZ`), suffixes (`JR`, `III`) dropped;
//! - dates: `YYYYMMDD`;
//! - phone: 10 characters, unknown (masked) digits as `?`: `8605551234`, `???5551234`, `??????1234`;
//! - ZIP: 5 digits; SSN: its last 4 digits; sex: `F`, `M` or `X`;
//! - street, town: folded words, common street-type words abbreviated (`STREET` → `ST`),
//!   leading compass words expanded in towns (`W HARTFORD` → `WEST HARTFORD`).
//!
//! # Example
//!
//! ```
//! use crosswalk::normalize::{name, phone, zip};
//!
//! assert_eq!(name("  José  ").unwrap().as_deref(), Some("JOSE"));
//! assert_eq!(name("Rodríguez-Pérez").unwrap().as_deref(), Some("RODRIGUEZ PEREZ"));
//! assert_eq!(phone("+1 (860) 555-1234").unwrap().as_deref(), Some("8605551234"));
//! assert_eq!(zip("6106").unwrap().as_deref(), Some("06106"));
//! ```

use chrono::{Datelike, NaiveDate};
use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

use crate::schema::Field;

pub mod nicknames;

/// Why a present value could not be used. Carries no part of the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Problem {
    /// The text matches none of the configured date formats.
    UnparseableDate,
    /// The date does not exist (e.g. February 30).
    ImpossibleDate,
    /// The year is before 1900.
    DateTooEarly,
    /// The date lies after the reference date (today, unless set).
    DateInFuture,
    /// A phone number with too few or too many digits.
    BadPhone,
    /// A ZIP code that is not 5 or 9 digits (4 or 8 with a lost leading zero).
    BadZip,
    /// An SSN with fewer than 4 digits.
    BadSsn,
    /// A sex code the source mapping does not list.
    UnknownSexCode,
    /// A name with no letters left after normalisation.
    NoLetters,
    /// A name in a script other than Latin, Greek or Cyrillic (those two are transliterated).
    UnsupportedScript,
    /// A cell longer than [`MAX_CELL_BYTES`].
    TooLong,
    /// Bytes that are not valid in the configured text encoding.
    Undecodable,
    /// A number (e.g. an age) that does not parse or is out of range.
    BadNumber,
    /// A code (e.g. a trafficking type) the source mapping does not list.
    UnlistedCode,
    /// A yes/no flag (e.g. minor) that reads as neither.
    BadFlag,
}

impl Problem {
    /// A short description for reports and messages.
    pub fn describe(self) -> &'static str {
        match self {
            Problem::UnparseableDate => "unparseable date (matches none of the configured formats)",
            Problem::ImpossibleDate => "impossible date (no such day)",
            Problem::DateTooEarly => "date before 1900",
            Problem::DateInFuture => "date in the future",
            Problem::BadPhone => "unusable phone number (wrong number of digits)",
            Problem::BadZip => "unusable ZIP code",
            Problem::BadSsn => "unusable SSN (fewer than 4 digits)",
            Problem::UnknownSexCode => "sex code not listed in the source mapping",
            Problem::NoLetters => "name has no letters",
            Problem::UnsupportedScript => {
                "name in a script crosswalk does not transliterate (it reads Latin, Greek and Cyrillic)"
            }
            Problem::TooLong => "value too long",
            Problem::Undecodable => "bytes not valid in the configured text encoding",
            Problem::BadNumber => "not a valid number",
            Problem::UnlistedCode => "code not listed in the source mapping",
            Problem::BadFlag => "not a yes/no flag (Y/N, Yes/No, True/False, 1/0)",
        }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.describe())
    }
}

/// Result of normalising one cell.
pub type Norm<T = String> = std::result::Result<Option<T>, Problem>;

/// Cells longer than this many bytes are rejected (no identifier is this long; a 10 MB cell is
/// a broken export, not a name).
pub const MAX_CELL_BYTES: usize = 1024;

/// Markers that mean "no value" in agency exports (compared after folding).
const MISSING_MARKERS: &[&str] = &[
    "",
    "NULL",
    "NONE",
    "N A",
    "UNKNOWN",
    "UNK",
    "REFUSED",
    "DECLINED",
    "NOT PROVIDED",
    "NOT AVAILABLE",
];

/// Name suffixes and titles dropped from names with more than one word.
const NAME_NOISE: &[&str] = &[
    "JR", "SR", "II", "III", "IV", "MR", "MRS", "MS", "MISS", "DR",
];

/// Folds text to upper-case ASCII words: NFKD, combining marks removed, letters without a
/// decomposition mapped by hand (`ß`, `Æ`, `Ø`, `Ł`, ...), apostrophes deleted, every other
/// non-alphanumeric character a word break, white space collapsed.
///
/// ```
/// assert_eq!(crosswalk::normalize::fold("Ñúñez  d'Ávila-Strauß"), "NUNEZ DAVILA STRAUSS");
/// ```
pub fn fold(raw: &str) -> String {
    if raw.is_ascii() {
        return fold_ascii(raw);
    }
    let mut out = String::with_capacity(raw.len());
    let mut pending_space = false;
    let push = |out: &mut String, c: char, pending: &mut bool| {
        if *pending && !out.is_empty() {
            out.push(' ');
        }
        *pending = false;
        out.push(c);
    };
    for c in raw.nfkd() {
        if is_combining_mark(c) {
            continue;
        }
        match c {
            '\'' | '\u{2019}' | '\u{2018}' | '`' | '\u{00B4}' | '\u{02BC}' => continue,
            _ => {}
        }
        if c.is_ascii_alphanumeric() {
            push(&mut out, c.to_ascii_uppercase(), &mut pending_space);
            continue;
        }
        let mapped: &str = match c {
            'ß' => "SS",
            'æ' | 'Æ' => "AE",
            'œ' | 'Œ' => "OE",
            'ø' | 'Ø' => "O",
            'ł' | 'Ł' => "L",
            'đ' | 'Đ' | 'ð' | 'Ð' => "D",
            'þ' | 'Þ' => "TH",
            'ı' => "I",
            _ => {
                pending_space = true;
                continue;
            }
        };
        for m in mapped.chars() {
            push(&mut out, m, &mut pending_space);
        }
    }
    out
}

/// [`fold`] for ASCII input (most cells): no Unicode decomposition needed.
fn fold_ascii(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut pending_space = false;
    for b in raw.bytes() {
        if b.is_ascii_alphanumeric() {
            if pending_space && !out.is_empty() {
                out.push(' ');
            }
            pending_space = false;
            out.push(b.to_ascii_uppercase() as char);
        } else if b != b'\'' && b != b'`' {
            pending_space = true;
        }
    }
    out
}

fn check_len(raw: &str) -> Result<(), Problem> {
    if raw.len() > MAX_CELL_BYTES {
        Err(Problem::TooLong)
    } else {
        Ok(())
    }
}

/// Whether a folded value is a "missing" marker.
pub fn is_missing_marker(folded: &str) -> bool {
    MISSING_MARKERS.contains(&folded)
}

/// Normalises one name part (given, middle or family name cell). Greek and Cyrillic letters are
/// transliterated to Latin first (with the `deunicode` crate's tables: `Иван` is `IVAN`,
/// `Νίκος` is `NIKOS`); a name with letters of any other script is a problem, not a partial
/// name, and so is a name of punctuation only.
///
/// ```
/// use crosswalk::normalize::{name, Problem};
/// assert_eq!(name("O'Brien Jr.").unwrap().as_deref(), Some("OBRIEN"));
/// assert_eq!(name("J.").unwrap().as_deref(), Some("J"));
/// assert_eq!(name("Ana María").unwrap().as_deref(), Some("ANA MARIA"));
/// assert_eq!(name("Сергей").unwrap().as_deref(), Some("SERGEI"));
/// assert_eq!(name("unknown").unwrap(), None);
/// assert_eq!(name("--"), Err(Problem::NoLetters));
/// assert_eq!(name("王"), Err(Problem::UnsupportedScript));
/// assert!(name("Kaʻahumanu").unwrap().is_some());
/// ```
pub fn name(raw: &str) -> Norm {
    check_len(raw)?;
    let transliterated;
    let raw = if raw.is_ascii() {
        raw
    } else {
        transliterated = transliterate(raw)?;
        &transliterated
    };
    let folded = fold(raw);
    if folded.is_empty() && !raw.trim().is_empty() {
        return Err(Problem::NoLetters);
    }
    if is_missing_marker(&folded) {
        return Ok(None);
    }
    let words: Vec<&str> = folded.split(' ').collect();
    let kept: Vec<&str> = if words.len() > 1 {
        words
            .iter()
            .copied()
            .filter(|w| !NAME_NOISE.contains(w))
            .collect()
    } else {
        words
    };
    let joined = kept.join(" ");
    if !joined.bytes().any(|b| b.is_ascii_alphabetic()) {
        return Err(Problem::NoLetters);
    }
    Ok(Some(joined))
}

/// Greek and Cyrillic letters of `raw` replaced by their Latin transliteration; an error if
/// `raw` holds letters of another non-Latin script (their transliterations lose too much:
/// Arabic without its vowels, Chinese readings for Japanese names).
fn transliterate(raw: &str) -> std::result::Result<String, Problem> {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        let greek_or_cyrillic = matches!(c, '\u{0370}'..='\u{03FF}' | '\u{1F00}'..='\u{1FFF}' | '\u{0400}'..='\u{052F}');
        if greek_or_cyrillic && c.is_alphabetic() {
            out.push_str(deunicode::deunicode_char(c).unwrap_or(""));
        } else if c.is_alphabetic() && !is_latin(c) && !is_combining_mark(c) {
            return Err(Problem::UnsupportedScript);
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

/// Whether `c` is a letter of the Latin script (ASCII, Latin-1, Latin Extended A/B and
/// Additional, IPA-free), or a letter-like symbol that folds to Latin (`ß`, `ø`, ...).
fn is_latin(c: char) -> bool {
    c.is_ascii_alphabetic()
        || matches!(c, '\u{00C0}'..='\u{024F}' | '\u{1E00}'..='\u{1EFF}' | '\u{2C60}'..='\u{2C7F}' | '\u{A720}'..='\u{A7FF}')
        || matches!(c, '\u{00AA}' | '\u{00BA}')
        || ('\u{02B0}'..='\u{02FF}').contains(&c) // modifier letters: ʼ, ʻ (okina), ...
        || ('\u{FF21}'..='\u{FF5A}').contains(&c) // full-width Latin (NFKD folds it)
        || ('\u{FB00}'..='\u{FB06}').contains(&c) // Latin ligatures (ﬁ, ﬂ, ...)
}

/// Given, middle and family name of one person, normalised.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NameParts {
    /// Given name(s).
    pub given: Option<String>,
    /// Middle name(s) or initial.
    pub middle: Option<String>,
    /// Family name(s).
    pub family: Option<String>,
}

impl NameParts {
    /// Whether no part is present.
    pub fn is_empty(&self) -> bool {
        self.given.is_none() && self.middle.is_none() && self.family.is_none()
    }

    /// Blanks placeholder names for unidentified people (`Jane Doe`, `John Doe`, `Baby Girl`):
    /// they say nothing about who the person is and would link strangers.
    pub fn drop_placeholders(&mut self) {
        let g = self.given.as_deref().unwrap_or("");
        let f = self.family.as_deref().unwrap_or("");
        let placeholder = (f == "DOE" && matches!(g, "JANE" | "JOHN" | "J" | ""))
            || (g == "BABY" && matches!(f, "GIRL" | "BOY" | ""))
            || (f == "BABY" && matches!(g, "GIRL" | "BOY"));
        if placeholder {
            *self = NameParts::default();
        }
    }
}

/// How a one-cell name is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NameLayout {
    /// `LAST, FIRST MIDDLE` (falls back to `first_last` when the cell has no comma).
    LastCommaFirst,
    /// `FIRST [MIDDLE...] LAST`: first word given, last word family, the rest middle.
    FirstLast,
}

/// Splits and normalises a one-cell full name.
///
/// ```
/// use crosswalk::normalize::{split_name, NameLayout};
/// let p = split_name("Rodríguez Pérez, María José", NameLayout::LastCommaFirst).unwrap();
/// assert_eq!(p.family.as_deref(), Some("RODRIGUEZ PEREZ"));
/// assert_eq!(p.given.as_deref(), Some("MARIA"));
/// assert_eq!(p.middle.as_deref(), Some("JOSE"));
/// let q = split_name("Ana M. Lopez", NameLayout::FirstLast).unwrap();
/// assert_eq!((q.given.as_deref(), q.middle.as_deref(), q.family.as_deref()),
///            (Some("ANA"), Some("M"), Some("LOPEZ")));
/// ```
pub fn split_name(raw: &str, layout: NameLayout) -> std::result::Result<NameParts, Problem> {
    split_name_with(raw, layout, 1)
}

/// Words that begin a family name when they follow the given name: `Ana de la Cruz` has the
/// family name `DE LA CRUZ` (folded forms).
const SURNAME_PARTICLES: &[&str] = &[
    "DE", "DEL", "DELA", "DELLA", "DELLE", "DEGLI", "DI", "DA", "DAS", "DO", "DOS", "DU", "LA",
    "LAS", "LOS", "LE", "VAN", "VON", "DER", "DEN", "TER", "Y",
];

/// [`split_name`] with `family_words`: under `first_last`, how many trailing words (at most;
/// initials never count) form the family name when the cell has more words than that; 2 for
/// exports that write two surnames (`María José Rodríguez Pérez`: given `MARIA`, middle `JOSE`,
/// family `RODRIGUEZ PEREZ`). Values below 1 count as 1. `last_comma_first` ignores it.
///
/// Under `first_last`, a hyphenated word is one word (`Ana Sezadez-Mavado`: family
/// `SEZADEZ MAVADO`), and surname particles after the given name start the family name (`Ana
/// de la Cruz`: family `DE LA CRUZ`).
///
/// ```
/// use crosswalk::normalize::{split_name_with, NameLayout};
/// let p = split_name_with("María José Rodríguez Pérez", NameLayout::FirstLast, 2).unwrap();
/// assert_eq!(p.middle.as_deref(), Some("JOSE"));
/// assert_eq!(p.family.as_deref(), Some("RODRIGUEZ PEREZ"));
/// let p = split_name_with("Ana M Lopez", NameLayout::FirstLast, 2).unwrap();
/// assert_eq!((p.middle.as_deref(), p.family.as_deref()), (Some("M"), Some("LOPEZ")));
/// ```
pub fn split_name_with(
    raw: &str,
    layout: NameLayout,
    family_words: u8,
) -> std::result::Result<NameParts, Problem> {
    check_len(raw)?;
    let comma = raw.find(',');
    let mut parts = match (layout, comma) {
        (NameLayout::LastCommaFirst, Some(i)) => {
            let family = name(&raw[..i])?;
            // The first word after the comma is the given name, a hyphenated one whole
            // (`Lopez, Jo-Ann`), as under `first_last`.
            let (given, middle) = match name(&raw[i + 1..])? {
                Some(all) => {
                    let units: Vec<String> = raw[i + 1..]
                        .split(|c: char| c.is_whitespace() || c == ',')
                        .filter_map(|w| name(w).ok().flatten())
                        .filter(|u| !NAME_NOISE.contains(&u.as_str()))
                        .collect();
                    match units.split_first() {
                        Some((g, rest)) if !rest.is_empty() => {
                            (Some(g.clone()), Some(rest.join(" ")))
                        }
                        Some((g, _)) => (Some(g.clone()), None),
                        None => (Some(all), None),
                    }
                }
                None => (None, None),
            };
            NameParts {
                given,
                middle,
                family,
            }
        }
        _ => first_last(raw, family_words)?,
    };
    parts.drop_placeholders();
    Ok(parts)
}

/// `first_last`: the first word given, the family name from the end (see [`split_name_with`]),
/// the rest middle.
fn first_last(raw: &str, family_words: u8) -> std::result::Result<NameParts, Problem> {
    // The whole cell first: its problems (no letters, another script) and missing markers.
    let Some(all) = name(&raw.replace(',', " "))? else {
        return Ok(NameParts::default());
    };
    // Then word by word, a hyphenated word staying one unit.
    let mut units: Vec<String> = raw
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter_map(|w| name(w).ok().flatten())
        .collect();
    if units.len() > 1 {
        units.retain(|u| !NAME_NOISE.contains(&u.as_str()));
    }
    if units.is_empty() {
        units = vec![all];
    }
    let n = units.len();
    if n == 1 {
        return Ok(NameParts {
            given: units.pop(),
            ..NameParts::default()
        });
    }
    // The family name starts at `start`: the last unit, widened to `family_words` units that
    // are not initials, then over any particles before it; the given name always stays.
    let mut start = n - 1;
    let mut taken = 1;
    while taken < family_words.max(1) && start > 1 && units[start - 1].len() > 1 {
        start -= 1;
        taken += 1;
    }
    while start > 1 && SURNAME_PARTICLES.contains(&units[start - 1].as_str()) {
        start -= 1;
    }
    // `y` joins two surnames (`Lopez y Garcia`): the one before it belongs too.
    if start > 1 && units[start] == "Y" {
        start -= 1;
    }
    let join = |r: std::ops::Range<usize>| Some(units[r].join(" ")).filter(|s| !s.is_empty());
    Ok(NameParts {
        given: Some(units[0].clone()),
        middle: join(1..start),
        family: join(start..n),
    })
}

/// Normalises a phone number to 10 characters, `?` for unknown digits.
///
/// Accepts any punctuation, a leading `+1`/`1`, 7-digit local numbers (area code unknown) and
/// masked numbers (`XXX-XXX-1234`, `***-***-1234`) of which at least the last 4 digits show.
/// Sentinels such as `000-000-0000` count as missing.
///
/// ```
/// use crosswalk::normalize::phone;
/// assert_eq!(phone("860.555.1234").unwrap().as_deref(), Some("8605551234"));
/// assert_eq!(phone("555-1234").unwrap().as_deref(), Some("???5551234"));
/// assert_eq!(phone("(XXX) XXX-1234").unwrap().as_deref(), Some("??????1234"));
/// assert_eq!(phone("000-000-0000").unwrap(), None);
/// assert!(phone("12345").is_err());
/// ```
pub fn phone(raw: &str) -> Norm {
    check_len(raw)?;
    let folded = fold(raw);
    if is_missing_marker(&folded) {
        return Ok(None);
    }
    // Cut an extension ("x123", "ext 12").
    let lower = raw.to_ascii_lowercase();
    let body = match lower.find("ext") {
        Some(i) => raw[..i].to_string(),
        // "860-555-1234 x22": an x after a full number starts an extension, not a mask
        None => match lower.rfind('x') {
            Some(i)
                if raw[..i].bytes().filter(u8::is_ascii_digit).count() >= 10
                    && raw[i + 1..].trim().bytes().all(|b| b.is_ascii_digit()) =>
            {
                raw[..i].to_string()
            }
            _ => raw.to_string(),
        },
    };
    let masked = body.chars().any(|c| matches!(c, 'X' | 'x' | '*' | '#'));
    let digits: String = body.chars().filter(|c| c.is_ascii_digit()).collect();
    if masked {
        // Only the digits after the last mask character are known.
        let last_mask = body
            .char_indices()
            .filter(|(_, c)| matches!(c, 'X' | 'x' | '*' | '#'))
            .map(|(i, _)| i)
            .next_back()
            .unwrap_or(0);
        let tail: String = body[last_mask..]
            .chars()
            .filter(|c| c.is_ascii_digit())
            .collect();
        if tail.len() < 4 || tail.len() > 10 {
            return Err(Problem::BadPhone);
        }
        let known = &tail[tail.len().saturating_sub(7)..];
        return Ok(Some(format!("{}{}", "?".repeat(10 - known.len()), known)));
    }
    let d = match digits.len() {
        11 if digits.starts_with('1') => &digits[1..],
        10 => &digits[..],
        7 => {
            return Ok(sentinel_free(&digits).then(|| format!("???{digits}")));
        }
        0 => return Ok(None),
        _ => return Err(Problem::BadPhone),
    };
    Ok(sentinel_free(d).then(|| d.to_string()))
}

/// False for numbers made of one repeated digit (`0000000`, `9999999999`).
fn sentinel_free(digits: &str) -> bool {
    let first = digits.as_bytes()[0];
    !digits.bytes().all(|b| b == first)
}

/// Normalises a ZIP code to 5 digits (ZIP+4 cut, a lost leading zero restored).
///
/// ```
/// use crosswalk::normalize::zip;
/// assert_eq!(zip("06106-2231").unwrap().as_deref(), Some("06106"));
/// assert_eq!(zip("61062231").unwrap().as_deref(), Some("06106"));
/// assert_eq!(zip("6106.0").unwrap().as_deref(), Some("06106")); // spreadsheet float
/// assert!(zip("123").is_err());
/// ```
pub fn zip(raw: &str) -> Norm {
    check_len(raw)?;
    let trimmed = raw.trim();
    let trimmed = trimmed.strip_suffix(".0").unwrap_or(trimmed);
    if is_missing_marker(&fold(trimmed)) {
        return Ok(None);
    }
    let digits: String = trimmed.chars().filter(|c| c.is_ascii_digit()).collect();
    let five = match digits.len() {
        5 => digits,
        9 => digits[..5].to_string(),
        4 => format!("0{digits}"),
        8 => format!("0{}", &digits[..4]),
        _ => return Err(Problem::BadZip),
    };
    if five == "00000" {
        return Ok(None);
    }
    Ok(Some(five))
}

/// The last four digits of an SSN, full or masked (`XXX-XX-1234`). A bare three-digit number is
/// a last four whose leading zero a spreadsheet dropped (`123` was `0123`), restored as ZIP codes
/// are (not `999`, a placeholder); a spreadsheet's float form (`6789.0`) loses its `.0`. Any
/// other value with fewer than four digits stays an error.
///
/// ```
/// use crosswalk::normalize::ssn4;
/// assert_eq!(ssn4("XXX-XX-1234").unwrap().as_deref(), Some("1234"));
/// assert_eq!(ssn4("123-45-6789").unwrap().as_deref(), Some("6789"));
/// assert_eq!(ssn4("0000").unwrap(), None);
/// assert_eq!(ssn4("123").unwrap().as_deref(), Some("0123"));
/// assert_eq!(ssn4("6789.0").unwrap().as_deref(), Some("6789"));
/// assert!(ssn4("XXX-XX-12").is_err());
/// ```
pub fn ssn4(raw: &str) -> Norm {
    check_len(raw)?;
    if is_missing_marker(&fold(raw)) {
        return Ok(None);
    }
    let trimmed = raw.trim();
    let trimmed = trimmed.strip_suffix(".0").unwrap_or(trimmed);
    if trimmed.len() == 3 && trimmed.bytes().all(|b| b.is_ascii_digit()) {
        return Ok((trimmed != "999").then(|| format!("0{trimmed}")));
    }
    let digits: Vec<u8> = trimmed.bytes().filter(|b| b.is_ascii_digit()).collect();
    if digits.len() < 4 {
        return Err(Problem::BadSsn);
    }
    let last = &digits[digits.len() - 4..];
    if last == b"0000" {
        return Ok(None);
    }
    Ok(Some(String::from_utf8_lossy(last).into_owned()))
}

/// Street-type words and their standard (USPS) abbreviations.
const STREET_WORDS: &[(&str, &str)] = &[
    ("STREET", "ST"),
    ("AVENUE", "AVE"),
    ("AV", "AVE"),
    ("ROAD", "RD"),
    ("DRIVE", "DR"),
    ("LANE", "LN"),
    ("BOULEVARD", "BLVD"),
    ("COURT", "CT"),
    ("PLACE", "PL"),
    ("TERRACE", "TER"),
    ("CIRCLE", "CIR"),
    ("PARKWAY", "PKWY"),
    ("HIGHWAY", "HWY"),
    ("TURNPIKE", "TPKE"),
    ("NORTH", "N"),
    ("SOUTH", "S"),
    ("EAST", "E"),
    ("WEST", "W"),
];

/// Normalises a street address: folded, street types abbreviated, unit markers dropped.
///
/// ```
/// use crosswalk::normalize::street;
/// assert_eq!(street("12 Main Street, Apt. 4").unwrap().as_deref(), Some("12 MAIN ST 4"));
/// ```
pub fn street(raw: &str) -> Norm {
    check_len(raw)?;
    let folded = fold(raw);
    if is_missing_marker(&folded) {
        return Ok(None);
    }
    let words: Vec<&str> = folded
        .split(' ')
        .filter(|w| !matches!(*w, "APT" | "APARTMENT" | "UNIT" | "STE" | "SUITE" | "FL"))
        .map(|w| {
            STREET_WORDS
                .iter()
                .find(|(long, _)| *long == w)
                .map_or(w, |(_, short)| short)
        })
        .collect();
    Ok(Some(words.join(" ")))
}

/// Normalises a town: folded, a leading compass abbreviation expanded.
///
/// ```
/// use crosswalk::normalize::town;
/// assert_eq!(town("W. Hartford").unwrap().as_deref(), Some("WEST HARTFORD"));
/// ```
pub fn town(raw: &str) -> Norm {
    check_len(raw)?;
    let folded = fold(raw);
    if is_missing_marker(&folded) {
        return Ok(None);
    }
    let expanded = match folded.split_once(' ') {
        Some(("W", rest)) => format!("WEST {rest}"),
        Some(("E", rest)) => format!("EAST {rest}"),
        Some(("N", rest)) => format!("NORTH {rest}"),
        Some(("S", rest)) => format!("SOUTH {rest}"),
        _ => folded,
    };
    Ok(Some(expanded))
}

/// Canonical sex values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sex {
    /// Female.
    Female,
    /// Male.
    Male,
    /// Another sex or gender identity.
    Other,
    /// Explicitly recorded as unknown (adds no bits).
    Unknown,
}

impl Sex {
    /// The canonical output label: `female`, `male`, `other`, `unknown`.
    pub fn label(self) -> &'static str {
        match self {
            Sex::Female => "female",
            Sex::Male => "male",
            Sex::Other => "other",
            Sex::Unknown => "unknown",
        }
    }

    /// The one-letter token that goes into the CLK (`None` for unknown).
    pub fn token(self) -> Option<&'static str> {
        match self {
            Sex::Female => Some("F"),
            Sex::Male => Some("M"),
            Sex::Other => Some("X"),
            Sex::Unknown => None,
        }
    }

    /// The built-in reading of common codes (`F`, `FEMALE`, `W`, `GIRL`, `M`, `MALE`, ...), used
    /// when a source mapping lists no `[sex_codes]` entry for a value.
    pub fn from_common_code(folded: &str) -> Option<Sex> {
        Some(match folded {
            "F" | "FEMALE" | "W" | "WOMAN" | "GIRL" | "FEM" => Sex::Female,
            "M" | "MALE" | "MAN" | "BOY" => Sex::Male,
            "X" | "O" | "OTHER" | "NB" | "NONBINARY" | "NON BINARY" | "TRANSGENDER" => Sex::Other,
            "U" | "UNK" | "UNKNOWN" | "" | "NULL" | "NOT PROVIDED" | "DECLINED" | "REFUSED" => {
                Sex::Unknown
            }
            _ => return None,
        })
    }
}

/// A date pattern from a source mapping, e.g. `MM/DD/YYYY` or `YYYY-MM-DD HH:MM`.
///
/// Tokens: `YYYY` (4-digit year), `YY` (2-digit year: 00 up to the reference year's last two
/// digits is 20xx, the rest 19xx), `MM`/`DD` (2 digits), `M`/`D` (1 or 2 digits), `Mon` (`Jan`,
/// any case), `Month` (`January`), `HH`, `SS` and, after `HH`, `MM` (minutes); `T` (as in ISO
/// `YYYY-MM-DDTHH:MM`) and any non-alphanumeric character must appear literally. Time parts are checked for shape and then ignored.
///
/// ```
/// use crosswalk::normalize::DatePattern;
/// let p: DatePattern = "DD-Mon-YYYY".parse().unwrap();
/// assert_eq!(p.parse("07-mar-2009", 2026).unwrap().to_string(), "2009-03-07");
/// let q: DatePattern = "M/D/YYYY".parse().unwrap();
/// assert_eq!(q.parse("3/7/2009", 2026).unwrap().to_string(), "2009-03-07");
/// assert!(q.parse("2/30/2009", 2026).is_err());
/// // strptime's notation, with its one-or-two-digit numbers:
/// let s: DatePattern = "%m/%d/%Y".parse().unwrap();
/// assert_eq!(s.parse("3/7/2009", 2026).unwrap().to_string(), "2009-03-07");
/// assert_eq!(s.parse("03/07/2009", 2026).unwrap().to_string(), "2009-03-07");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatePattern {
    items: Vec<DateItem>,
    text: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DateItem {
    Year4,
    Year2,
    Month {
        min: usize,
    },
    MonthAbbr,
    MonthName,
    Day {
        min: usize,
    },
    Time,
    /// `AM` or `PM`, any case (strptime's `%p`; times are ignored).
    AmPm,
    Literal(char),
}

const MONTHS: [&str; 12] = [
    "JANUARY",
    "FEBRUARY",
    "MARCH",
    "APRIL",
    "MAY",
    "JUNE",
    "JULY",
    "AUGUST",
    "SEPTEMBER",
    "OCTOBER",
    "NOVEMBER",
    "DECEMBER",
];

impl std::str::FromStr for DatePattern {
    type Err = String;

    fn from_str(s: &str) -> Result<DatePattern, String> {
        if s.contains('%') {
            return strptime_pattern(s);
        }
        let mut items = Vec::new();
        let mut rest = s;
        let mut seen_hour = false;
        let (mut has_year, mut has_month, mut has_day) = (false, false, false);
        while !rest.is_empty() {
            let (item, len) = if rest.starts_with("YYYY") {
                has_year = true;
                (DateItem::Year4, 4)
            } else if rest.starts_with("YY") {
                has_year = true;
                (DateItem::Year2, 2)
            } else if rest.starts_with("Month") {
                has_month = true;
                (DateItem::MonthName, 5)
            } else if rest.starts_with("Mon") {
                has_month = true;
                (DateItem::MonthAbbr, 3)
            } else if rest.starts_with("HH") {
                seen_hour = true;
                (DateItem::Time, 2)
            } else if (rest.starts_with("MM") && seen_hour) || rest.starts_with("SS") {
                (DateItem::Time, 2)
            } else if rest.starts_with("MM") {
                has_month = true;
                (DateItem::Month { min: 2 }, 2)
            } else if rest.starts_with('M') {
                has_month = true;
                (DateItem::Month { min: 1 }, 1)
            } else if rest.starts_with("DD") {
                has_day = true;
                (DateItem::Day { min: 2 }, 2)
            } else if rest.starts_with('D') {
                has_day = true;
                (DateItem::Day { min: 1 }, 1)
            } else {
                let c = rest.chars().next().unwrap_or(' ');
                if c.is_ascii_alphanumeric() && c != 'T' {
                    return Err(format!(
                        "date format {s:?}: unexpected {c:?} (use YYYY, YY, MM, M, DD, D, Mon, Month, HH, MM, SS)"
                    ));
                }
                (DateItem::Literal(c), c.len_utf8())
            };
            items.push(item);
            rest = &rest[len..];
        }
        if !(has_year && has_month && has_day) {
            return Err(format!("date format {s:?} needs a year, a month and a day"));
        }
        Ok(DatePattern {
            items,
            text: s.to_string(),
        })
    }
}

/// A date pattern written in strptime's notation (`%m/%d/%Y`), as data teams write it. Its
/// numeric fields read one or two digits, as Python's `strptime` does (`%m/%d/%Y` reads both
/// `3/7/2009` and `03/07/2009`); `%-m`, `%-d` and `%#m` (unpadded forms) mean the same.
fn strptime_pattern(s: &str) -> Result<DatePattern, String> {
    use DateItem::*;
    let mut items = Vec::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            // Letters outside directives would be literals that real cells never hold (a mixed
            // `%m/DD/%Y`); as in the native notation, only `T` (ISO timestamps) is allowed.
            if c.is_ascii_alphabetic() && c != 'T' {
                return Err(format!(
                    "date format {s:?}: unexpected {c:?} outside a % directive (write the whole pattern in one notation)"
                ));
            }
            items.push(Literal(c));
            continue;
        }
        let mut d = chars.next();
        if matches!(d, Some('-') | Some('#')) {
            d = chars.next();
        }
        match d {
            Some('Y') => items.push(Year4),
            Some('y') => items.push(Year2),
            Some('m') => items.push(Month { min: 1 }),
            Some('d') | Some('e') => items.push(Day { min: 1 }),
            Some('b') | Some('h') => items.push(MonthAbbr),
            Some('B') => items.push(MonthName),
            Some('H') | Some('I') | Some('M') | Some('S') => items.push(Time),
            Some('p') => items.push(AmPm),
            Some('F') => items.extend([Year4, Literal('-'), Month { min: 1 }, Literal('-'), Day { min: 1 }]),
            Some('D') => items.extend([Month { min: 1 }, Literal('/'), Day { min: 1 }, Literal('/'), Year2]),
            Some('T') => items.extend([Time, Literal(':'), Time, Literal(':'), Time]),
            Some('%') => items.push(Literal('%')),
            other => {
                return Err(format!(
                    "date format {s:?}: strptime directive %{} is not supported (use %Y, %y, %m, %d, %b, %B, %H, %I, %M, %S, %p, %F, %D, %T; %-m and %-d for unpadded forms)",
                    other.map(String::from).unwrap_or_default()
                ))
            }
        }
    }
    let has = |f: fn(&DateItem) -> bool| items.iter().any(f);
    if !(has(|i| matches!(i, Year4 | Year2))
        && has(|i| matches!(i, Month { .. } | MonthAbbr | MonthName))
        && has(|i| matches!(i, Day { .. })))
    {
        return Err(format!("date format {s:?} needs a year, a month and a day"));
    }
    Ok(DatePattern {
        items,
        text: s.to_string(),
    })
}

impl DatePattern {
    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Parses `raw` (trimmed) with this pattern. `ref_year` resolves two-digit years.
    pub fn parse(&self, raw: &str, ref_year: i32) -> Result<NaiveDate, Problem> {
        let s = raw.trim().as_bytes();
        let mut pos = 0usize;
        let (mut year, mut month, mut day) = (None, None, None);
        let digits = |pos: &mut usize, min: usize, max: usize| -> Result<u32, Problem> {
            let start = *pos;
            while *pos < s.len() && *pos - start < max && s[*pos].is_ascii_digit() {
                *pos += 1;
            }
            if *pos - start < min {
                return Err(Problem::UnparseableDate);
            }
            let mut v = 0u32;
            for &b in &s[start..*pos] {
                v = v * 10 + u32::from(b - b'0');
            }
            Ok(v)
        };
        for item in &self.items {
            match *item {
                DateItem::Year4 => year = Some(digits(&mut pos, 4, 4)? as i32),
                DateItem::Year2 => {
                    let yy = digits(&mut pos, 2, 2)? as i32;
                    let pivot = ref_year % 100;
                    year = Some(if yy <= pivot { 2000 + yy } else { 1900 + yy });
                }
                DateItem::Month { min } => month = Some(digits(&mut pos, min, 2)?),
                DateItem::Day { min } => day = Some(digits(&mut pos, min, 2)?),
                DateItem::Time => {
                    digits(&mut pos, 1, 2)?;
                }
                DateItem::AmPm => {
                    let word = s.get(pos..pos + 2).ok_or(Problem::UnparseableDate)?;
                    if !(word.eq_ignore_ascii_case(b"AM") || word.eq_ignore_ascii_case(b"PM")) {
                        return Err(Problem::UnparseableDate);
                    }
                    pos += 2;
                }
                DateItem::MonthAbbr | DateItem::MonthName => {
                    let start = pos;
                    while pos < s.len() && s[pos].is_ascii_alphabetic() {
                        pos += 1;
                    }
                    let word = std::str::from_utf8(&s[start..pos])
                        .map_err(|_| Problem::UnparseableDate)?
                        .to_ascii_uppercase();
                    let found = MONTHS.iter().position(|m| {
                        if *item == DateItem::MonthAbbr {
                            word.len() == 3 && m.starts_with(&word)
                        } else {
                            *m == word
                        }
                    });
                    month = Some(found.ok_or(Problem::UnparseableDate)? as u32 + 1);
                }
                DateItem::Literal(c) => {
                    let mut buf = [0u8; 4];
                    let lit = c.encode_utf8(&mut buf).as_bytes();
                    if s[pos..].starts_with(lit) {
                        pos += lit.len();
                    } else {
                        return Err(Problem::UnparseableDate);
                    }
                }
            }
        }
        if pos != s.len() {
            return Err(Problem::UnparseableDate);
        }
        match (year, month, day) {
            (Some(y), Some(m), Some(d)) => {
                NaiveDate::from_ymd_opt(y, m, d).ok_or(Problem::ImpossibleDate)
            }
            _ => Err(Problem::UnparseableDate),
        }
    }
}

/// Parses a date with the first matching pattern and checks it lies in `[1900-01-01, today]`.
///
/// ```
/// use chrono::NaiveDate;
/// use crosswalk::normalize::{date, DatePattern, Problem};
/// let pats: Vec<DatePattern> = vec!["MM/DD/YYYY".parse().unwrap(), "YYYYMMDD".parse().unwrap()];
/// let today = NaiveDate::from_ymd_opt(2026, 11, 22).unwrap();
/// assert_eq!(date("20090307", &pats, today).unwrap(), NaiveDate::from_ymd_opt(2009, 3, 7));
/// assert_eq!(date("02/30/2009", &pats, today), Err(Problem::ImpossibleDate));
/// assert_eq!(date("01/01/1890", &pats, today), Err(Problem::DateTooEarly));
/// assert_eq!(date("01/01/2030", &pats, today), Err(Problem::DateInFuture));
/// assert_eq!(date(" ", &pats, today), Ok(None));
/// ```
pub fn date(raw: &str, patterns: &[DatePattern], today: NaiveDate) -> Norm<NaiveDate> {
    check_len(raw)?;
    let trimmed = raw.trim();
    if is_missing_marker(&fold(trimmed)) {
        return Ok(None);
    }
    let mut first_problem = Problem::UnparseableDate;
    for p in patterns {
        match p.parse(trimmed, today.year()) {
            Ok(d) => {
                if d.year() < 1900 {
                    return Err(Problem::DateTooEarly);
                }
                if d > today {
                    return Err(Problem::DateInFuture);
                }
                return Ok(Some(d));
            }
            Err(Problem::ImpossibleDate) => first_problem = Problem::ImpossibleDate,
            Err(_) => {}
        }
    }
    Err(first_problem)
}

/// The canonical `YYYYMMDD` form of a date.
pub fn date_key(d: NaiveDate) -> String {
    format!("{:04}{:02}{:02}", d.year(), d.month(), d.day())
}

/// The canonical birth-year form of an age: a person `age` years old on `event` was born in
/// one of two years, `YYYY|YYYY` (the earlier first). It stands in the `dob` field of a record
/// without a birth date: the date tokeniser gives it the year tokens a birth date in either
/// year has, and nothing else (docs/encoding.md §3). `None` for an age that puts the birth
/// before year 1.
///
/// ```
/// use chrono::NaiveDate;
/// use crosswalk::normalize::{birth_years, split_birth_years};
///
/// let referral = NaiveDate::from_ymd_opt(2023, 5, 2).unwrap();
/// let years = birth_years(referral, 16).unwrap();
/// assert_eq!(years, "2006|2007");
/// assert_eq!(split_birth_years(years.as_bytes()), Some((&b"2006"[..], &b"2007"[..])));
/// ```
pub fn birth_years(event: NaiveDate, age: u32) -> Option<String> {
    let last = event.year().checked_sub(i32::try_from(age).ok()?)?;
    (last > 1).then(|| format!("{:04}|{:04}", last - 1, last))
}

/// Whether a birth-date field value is the two birth years of an age ([`birth_years`]), not a
/// date.
///
/// ```
/// use crosswalk::normalize::is_birth_years;
/// assert!(is_birth_years("2006|2007"));
/// assert!(!is_birth_years("20060412"));
/// ```
pub fn is_birth_years(v: &str) -> bool {
    split_birth_years(v.as_bytes()).is_some()
}

/// The two years of a [`birth_years`] value, `None` for any other value.
pub fn split_birth_years(v: &[u8]) -> Option<(&[u8], &[u8])> {
    (v.len() == 9 && v[4] == b'|' && v[..4].iter().chain(&v[5..]).all(u8::is_ascii_digit))
        .then(|| (&v[..4], &v[5..]))
}

/// A record's normalised identifiers: one canonical string, or nothing, per [`Field`].
///
/// ```
/// use crosswalk::normalize::Identifiers;
/// use crosswalk::schema::Field;
/// let mut ids = Identifiers::default();
/// ids.set(Field::FamilyName, Some("LOPEZ".into()));
/// assert_eq!(ids.get(Field::FamilyName), Some("LOPEZ"));
/// assert_eq!(ids.present(), 1);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identifiers {
    values: [Option<String>; Field::COUNT],
}

impl Identifiers {
    /// The canonical value of `field`, if present.
    pub fn get(&self, field: Field) -> Option<&str> {
        self.values[field.index()].as_deref()
    }

    /// Sets (or clears) the value of `field`. Values must already be canonical.
    pub fn set(&mut self, field: Field, value: Option<String>) {
        self.values[field.index()] = value;
    }

    /// Replaces the three name fields with `parts`.
    pub fn set_names(&mut self, parts: &NameParts) {
        self.set(Field::GivenName, parts.given.clone());
        self.set(Field::MiddleName, parts.middle.clone());
        self.set(Field::FamilyName, parts.family.clone());
    }

    /// Number of fields present.
    pub fn present(&self) -> usize {
        self.values.iter().filter(|v| v.is_some()).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// strptime notation reads what the same format reads in Python (issue #21: `%m/%d/%Y` for
    /// `3/7/2009` used to be translated to `MM/DD/YYYY`, which drops it).
    #[test]
    fn strptime_patterns_read_like_strptime() {
        let ymd = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
        let cases = [
            ("%m/%d/%Y", "3/7/2009", ymd(2009, 3, 7)),
            ("%m/%d/%Y", "03/07/2009", ymd(2009, 3, 7)),
            ("%-m/%-d/%Y", "12/25/2008", ymd(2008, 12, 25)),
            ("%#m/%#d/%Y", "1/2/2003", ymd(2003, 1, 2)),
            ("%Y%m%d", "20090307", ymd(2009, 3, 7)),
            ("%d-%b-%Y", "07-Mar-2009", ymd(2009, 3, 7)),
            ("%B %d, %Y", "March 7, 2009", ymd(2009, 3, 7)),
            ("%F", "2009-03-07", ymd(2009, 3, 7)),
            ("%D", "03/07/09", ymd(2009, 3, 7)),
            ("%Y-%m-%dT%H:%M:%S", "2009-03-07T13:45:00", ymd(2009, 3, 7)),
            ("%m/%d/%Y %T", "3/7/2009 08:05:09", ymd(2009, 3, 7)),
            (
                "%m/%d/%Y %I:%M:%S %p",
                "3/7/2009 12:00:00 AM",
                ymd(2009, 3, 7),
            ),
            ("%m/%d/%Y %I:%M %p", "3/7/2009 1:05 pm", ymd(2009, 3, 7)),
        ];
        for (pat, raw, want) in cases {
            let p: DatePattern = pat.parse().unwrap();
            assert_eq!(p.parse(raw, 2026), Ok(want), "{pat} on {raw}");
        }
        let p: DatePattern = "%m/%d/%Y".parse().unwrap();
        assert_eq!(p.parse("2/30/2009", 2026), Err(Problem::ImpossibleDate));
        assert_eq!(p.parse("3/7/09", 2026), Err(Problem::UnparseableDate));
        for bad in ["%m/%d", "%Q/%d/%Y", "%m/%d/%", "%m/DD/%Y"] {
            assert!(bad.parse::<DatePattern>().is_err(), "{bad}");
        }
    }

    #[test]
    fn accents_case_and_punctuation_fold() {
        for v in ["José", "JOSE", "jose", " josé ", "JOSÉ", "Jose\u{301}"] {
            assert_eq!(name(v).unwrap().as_deref(), Some("JOSE"), "{v}");
        }
        assert_eq!(name("Strauß").unwrap().as_deref(), Some("STRAUSS"));
        assert_eq!(name("Nuñez").unwrap().as_deref(), Some("NUNEZ"));
    }

    #[test]
    fn compound_surnames_become_words() {
        let a = name("Rodríguez Pérez").unwrap();
        let b = name("Rodriguez-Perez").unwrap();
        assert_eq!(a, b);
        assert_eq!(name("Rodriguez").unwrap().as_deref(), Some("RODRIGUEZ"));
    }

    #[test]
    fn placeholders_and_missing() {
        let p = split_name("DOE, JANE", NameLayout::LastCommaFirst).unwrap();
        assert!(p.is_empty());
        assert_eq!(name("N/A").unwrap(), None);
        assert_eq!(name("NULL").unwrap(), None);
        assert_eq!(name("1234"), Err(Problem::NoLetters));
    }

    #[test]
    fn layouts() {
        let p = split_name("Lopez, Ana", NameLayout::LastCommaFirst).unwrap();
        assert_eq!(p.family.as_deref(), Some("LOPEZ"));
        assert_eq!(p.given.as_deref(), Some("ANA"));
        assert_eq!(p.middle, None);
        // no comma: read as first-last
        let q = split_name("Ana Lopez", NameLayout::LastCommaFirst).unwrap();
        assert_eq!(q.family.as_deref(), Some("LOPEZ"));
        let r = split_name("Madonna", NameLayout::FirstLast).unwrap();
        assert_eq!(r.given.as_deref(), Some("MADONNA"));
        assert_eq!(r.family, None);
    }

    /// Issue #21: `first_last` keeps a hyphenated surname and one after particles together, and
    /// `family_words = 2` keeps two surnames together.
    #[test]
    fn first_last_keeps_compound_surnames() {
        let fl = |raw: &str, words: u8| {
            let p = split_name_with(raw, NameLayout::FirstLast, words).unwrap();
            (p.given, p.middle, p.family)
        };
        let s = |x: &str| Some(x.to_string());
        assert_eq!(
            fl("Wanda Sezadez-Mavado", 1),
            (s("WANDA"), None, s("SEZADEZ MAVADO"))
        );
        assert_eq!(fl("Ana de la Cruz", 1), (s("ANA"), None, s("DE LA CRUZ")));
        assert_eq!(
            fl("Ana Maria van der Berg", 1),
            (s("ANA"), s("MARIA"), s("VAN DER BERG"))
        );
        assert_eq!(
            fl("María Rodríguez Pérez", 1),
            (s("MARIA"), s("RODRIGUEZ"), s("PEREZ"))
        );
        assert_eq!(
            fl("María Rodríguez Pérez", 2),
            (s("MARIA"), None, s("RODRIGUEZ PEREZ"))
        );
        assert_eq!(
            fl("María José Rodríguez Pérez Jr.", 2),
            (s("MARIA"), s("JOSE"), s("RODRIGUEZ PEREZ"))
        );
        // Initials never count as a surname, and the given name always stays.
        assert_eq!(fl("Ana M. Lopez", 2), (s("ANA"), s("M"), s("LOPEZ")));
        assert_eq!(fl("Ana Lopez", 2), (s("ANA"), None, s("LOPEZ")));
        assert_eq!(fl("De Leon", 1), (s("DE"), None, s("LEON")));
        assert_eq!(
            fl("Maria Lopez y Garcia", 1),
            (s("MARIA"), None, s("LOPEZ Y GARCIA"))
        );
        assert_eq!(fl("Jo-Ann Lopez", 1), (s("JO ANN"), None, s("LOPEZ")));
        let lcf = split_name("Lopez, Jo-Ann Marie Jr.", NameLayout::LastCommaFirst).unwrap();
        assert_eq!(
            (lcf.given, lcf.middle, lcf.family),
            (s("JO ANN"), s("MARIE"), s("LOPEZ"))
        );
        // A cell's problems are the whole cell's, as before.
        assert_eq!(
            split_name_with("123 456", NameLayout::FirstLast, 2),
            Err(Problem::NoLetters)
        );
    }

    #[test]
    fn phones() {
        assert_eq!(
            phone("1-860-555-1234").unwrap().as_deref(),
            Some("8605551234")
        );
        assert_eq!(
            phone("860 555 1234 ext. 12").unwrap().as_deref(),
            Some("8605551234")
        );
        assert_eq!(
            phone("***-***-1234").unwrap().as_deref(),
            Some("??????1234")
        );
        assert_eq!(
            phone("XXX-555-1234").unwrap().as_deref(),
            Some("???5551234")
        );
        assert_eq!(phone("").unwrap(), None);
        assert_eq!(phone("9999999999").unwrap(), None);
        assert_eq!(phone("860555123456"), Err(Problem::BadPhone));
    }

    #[test]
    fn zips_and_ssns() {
        assert_eq!(zip("06106").unwrap().as_deref(), Some("06106"));
        assert_eq!(zip("00000").unwrap(), None);
        assert_eq!(zip("ABCDE"), Err(Problem::BadZip));
        assert_eq!(ssn4("***-**-0042").unwrap().as_deref(), Some("0042"));
        assert_eq!(ssn4("12"), Err(Problem::BadSsn));
        assert_eq!(ssn4("999").unwrap(), None);
        assert_eq!(ssn4("123.0").unwrap().as_deref(), Some("0123"));
        assert_eq!(ssn4("1-2"), Err(Problem::BadSsn));
    }

    #[test]
    fn date_patterns() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 22).unwrap();
        let cases = [
            ("MM/DD/YYYY", "03/07/2009"),
            ("M/D/YYYY", "3/7/2009"),
            ("YYYY-MM-DD", "2009-03-07"),
            ("YYYY-MM-DD HH:MM", "2009-03-07 14:05"),
            ("DD-Mon-YYYY", "07-Mar-2009"),
            ("YYYYMMDD", "20090307"),
            ("Month D, YYYY", "March 7, 2009"),
            ("MM/DD/YY", "03/07/09"),
        ];
        for (pat, raw) in cases {
            let p: DatePattern = pat.parse().unwrap();
            assert_eq!(
                date(raw, &[p], today).unwrap(),
                NaiveDate::from_ymd_opt(2009, 3, 7),
                "{pat}"
            );
        }
        assert!("YYYY-MM".parse::<DatePattern>().is_err());
        assert!("YYYY-MM-DDQ".parse::<DatePattern>().is_err());
        let p: DatePattern = "YYYY-MM-DD".parse().unwrap();
        assert_eq!(
            date("2009-03-07 junk", &[p], today),
            Err(Problem::UnparseableDate)
        );
    }

    #[test]
    fn long_cells_are_rejected_not_processed() {
        let big = "A".repeat(10 * 1024 * 1024);
        assert_eq!(name(&big), Err(Problem::TooLong));
        assert_eq!(phone(&big), Err(Problem::TooLong));
    }
}

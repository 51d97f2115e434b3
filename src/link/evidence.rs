//! Field-level evidence: what two records' parts ([`crate::schema::Part`]) and coarse event
//! facts say about them, as comparison levels of the Fellegi-Sunter model ([`super::model`]),
//! and how the model is fitted on a run's own records without truth ([`fit_patterns`]).
//!
//! Comparisons and their levels (level 0 is *missing* on either side: no evidence, neither for
//! nor against; the other levels are Dice bands on the plain filter's scale):
//!
//! | comparison | levels 1.. | cuts |
//! |---|---|---|
//! | names (best over legal and alias names parts) | 5 | 0.6, 0.75, 0.85, 0.95 |
//! | birth date | 4 | 0.5, 0.8, 0.99 |
//! | phone | 3 | 0.7, 0.99 |
//! | address | 3 | 0.5, 0.8 |
//! | SSN-4 | 2 | 0.99 |
//! | sex (event facts) | 2 | disagree, agree |
//! | age (birth years of an age without a birth date; else the age bands' birth-year intervals), when not both have a birth date | 2 | apart, same years |
//! | given name at an equal birth date ([`crate::schema::Part::GivenDob`]; against the other's family name too, for swapped fields), when both records have it for one date and their names are at 0.6–0.95 | 3 | 0.5, 0.8 |
//! | event gap: days between the records' event spans (event facts, [`event_gap_level`]) | 5 | 365, 90 days apart; overlapping; 30 days apart |
//!
//! For diffused parts the similarity is estimated from the outputs: each output bit is the XOR
//! of `t` input bits, so a share `x` of input bits set (or differing) becomes `(1 − (1 − 2x)^t)
//! / 2` of output bits; [`part_similarity`] maps the two densities and the Hamming distance
//! back and takes Dice on the plain scale, so one set of cuts serves plain and diffused parts.
//! docs/linkage.md §7 and docs/measurements/2026-12-06-fs-parts.md give the measurements
//! behind the cuts and the training sessions.

use chrono::Datelike;

use super::model::{Model, ModelError};

/// Comparison names and level counts (level 0 = missing included), in level-vector order.
pub const COMPARISONS: [(&str, usize); 9] = [
    ("names", 6),
    ("dob", 5),
    ("phone", 4),
    ("address", 4),
    ("ssn4", 3),
    ("sex", 3),
    ("age", 3),
    ("given_dob", 4),
    ("event_gap", 6),
];

/// Number of comparisons (the length of one pair's level vector).
pub const C: usize = COMPARISONS.len();

/// Index of the names comparison in a level vector.
pub const NAMES: usize = 0;
/// Index of the birth-date comparison.
pub const DOB: usize = 1;
/// Index of the phone comparison.
pub const PHONE: usize = 2;
/// Index of the address comparison.
pub const ADDRESS: usize = 3;
/// Index of the SSN-4 comparison.
pub const SSN4: usize = 4;
/// Index of the sex comparison.
pub const SEX: usize = 5;
/// Index of the age comparison.
pub const AGE: usize = 6;
/// Index of the comparison of the given names at an equal birth date.
pub const GIVEN_DOB: usize = 7;
/// Index of the comparison of the records' event dates ([`event_gap_level`]).
pub const EVENT_GAP: usize = 8;
/// The birth-date level of equal (Dice ≥ 0.99) birth-date parts.
pub const DOB_EQUAL: u8 = 4;

/// Most rounds of EM per training session. EM creeps: at 100 rounds the birth-date session of
/// the classic 2,000-person world stopped with `m(names < 0.6)` at 0.025, five times its
/// converged 0.004 (the truth: 0.007); 1,000 and 10,000 rounds give the same parameters. A
/// round costs one pass over the distinct level vectors (a few thousand), not the pairs.
pub const EM_ITERATIONS: usize = 1_000;

/// Fewest candidate pairs a training session of [`fit_patterns`] needs.
pub const MIN_SESSION_PAIRS: usize = 20;

pub(crate) const NAMES_CUTS: [f64; 4] = [0.6, 0.75, 0.85, 0.95];
const DOB_CUTS: [f64; 3] = [0.5, 0.8, 0.99];
const PHONE_CUTS: [f64; 2] = [0.7, 0.99];
const ADDRESS_CUTS: [f64; 2] = [0.5, 0.8];
const SSN_CUTS: [f64; 1] = [0.99];
const GIVEN_CUTS: [f64; 2] = [0.5, 0.8];
/// Days between two records' event spans at which [`event_gap_level`] steps: 365 days or more
/// apart is level 1, 90 to 364 level 2, 30 to 89 level 4 and 1 to 29 level 5; overlapping
/// spans (0 days apart) are level 3.
pub const EVENT_GAP_DAYS: [i32; 3] = [365, 90, 30];

/// What level `level` (1..) of comparison `c` means, for people reading the weights: a Dice
/// band on the plain scale for the parts (`< 0.6`, `0.6–0.75`, ..., `≥ 0.95`), `disagree` /
/// `agree` for sex, `apart` / `same years` for the age; empty for level 0 or a level out of
/// range.
///
/// ```
/// use crosswalk::link::evidence::{level_label, NAMES};
///
/// assert_eq!(level_label(NAMES, 1), "< 0.6");
/// assert_eq!(level_label(NAMES, 5), "≥ 0.95");
/// ```
pub fn level_label(c: usize, level: u8) -> String {
    let cuts: &[f64] = match c {
        0 => &NAMES_CUTS,
        1 => &DOB_CUTS,
        2 => &PHONE_CUTS,
        3 => &ADDRESS_CUTS,
        4 => &SSN_CUTS,
        7 => &GIVEN_CUTS,
        5 => {
            return ["", "disagree", "agree"]
                .get(level as usize)
                .unwrap_or(&"")
                .to_string()
        }
        6 => {
            return ["", "apart", "same years"]
                .get(level as usize)
                .unwrap_or(&"")
                .to_string()
        }
        8 => {
            return [
                "",
                "≥ 365 days apart",
                "90–364 days apart",
                "overlapping",
                "30–89 days apart",
                "1–29 days apart",
            ]
            .get(level as usize)
            .unwrap_or(&"")
            .to_string()
        }
        _ => return String::new(),
    };
    let l = level as usize;
    match l {
        0 => String::new(),
        1 => format!("< {}", cuts[0]),
        _ if l == cuts.len() + 1 => format!("≥ {}", cuts[cuts.len() - 1]),
        _ if l <= cuts.len() => format!("{}–{}", cuts[l - 2], cuts[l - 1]),
        _ => String::new(),
    }
}

/// One record's evidence, gathered over all its rows: the distinct values of each part (bytes
/// of equal length per part across records) and of its facts. Two records compare by their
/// best pair of values per comparison, as names and aliases always did, so the evidence does
/// not depend on the order of rows or files.
#[derive(Debug, Clone, Default)]
pub struct RecordEvidence {
    /// Names parts: legal and alias.
    pub names: Vec<Vec<u8>>,
    /// Birth-date parts.
    pub dob: Vec<Vec<u8>>,
    /// Phone parts.
    pub phone: Vec<Vec<u8>>,
    /// Address parts.
    pub address: Vec<Vec<u8>>,
    /// SSN-4 parts.
    pub ssn4: Vec<Vec<u8>>,
    /// Known sexes: 1 female, 2 male, 3 other ([`sex_code`]; unknown is left out).
    pub sex: Vec<u8>,
    /// Birth-year intervals implied by the age band at each event date.
    pub born: Vec<(i32, i32)>,
    /// Birth-date parts that hold the two birth years of an age, not a date
    /// ([`crate::normalize::birth_years`]; the encodings' `dob_from_age`).
    pub born_years: Vec<Vec<u8>>,
    /// Given-name-at-birth-date parts ([`crate::schema::Part::GivenDob`]), each with the
    /// birth-date part of its row ([`dob_tag`]): two compare only under one date.
    pub given_dob: Vec<(u64, Vec<u8>)>,
    /// Family-name-at-birth-date parts ([`crate::schema::Part::FamilyDob`]), tagged alike.
    pub family_dob: Vec<(u64, Vec<u8>)>,
    /// The span of the record's events, in days (chrono's days from the common era): its
    /// first event date and its last end date (or event date). `None` when no row has an
    /// event date.
    pub span: Option<(i32, i32)>,
}

/// A tag of a birth-date part's bytes: equal parts (equal dates) give equal tags, which is
/// all [`RecordEvidence::given_dob`] asks of it.
pub fn dob_tag(dob_part: &[u8]) -> u64 {
    let digest = blake3::hash(dob_part);
    let mut tag = [0u8; 8];
    tag.copy_from_slice(&digest.as_bytes()[..8]);
    u64::from_le_bytes(tag)
}

impl RecordEvidence {
    /// Adds `value` to `list` unless it is there already.
    pub fn add<T: PartialEq>(list: &mut Vec<T>, value: T) {
        if !list.contains(&value) {
            list.push(value);
        }
    }

    /// Widens the record's event span ([`RecordEvidence::span`]) to a row's event date and
    /// end date (an end before the start counts as the start).
    pub fn add_event(&mut self, start: chrono::NaiveDate, end: Option<chrono::NaiveDate>) {
        let s = start.num_days_from_ce();
        let e = end.map_or(s, |e| e.num_days_from_ce()).max(s);
        self.span = Some(match self.span {
            None => (s, e),
            Some((a, b)) => (a.min(s), b.max(e)),
        });
    }
}

/// The event-gap comparison of two records: the days between their event spans
/// ([`RecordEvidence::span`]; 0 when they overlap), as a level: 1 at [`EVENT_GAP_DAYS`]`[0]`
/// days or more, 2 at [`EVENT_GAP_DAYS`]`[1]` or more, 3 when the spans overlap, 4 at
/// [`EVENT_GAP_DAYS`]`[2]` days or more, 5 closer (1 to 29 days apart); 0 (missing) when
/// either has no event date. One person's records follow one journey (identification,
/// referral, services within weeks), two strangers' are years apart as often as not; the
/// model learns how much that weighs from the run's own pairs, as for every comparison
/// (docs/linkage.md, "The event gap", says what it costs analyses of time).
///
/// Overlapping spans are a level of their own, below 30–89 days apart: a long span (an open
/// case, a year of services) overlaps many strangers' records. By the truth of the hard
/// 28,000-person world, overlapping spans weigh +1.0 bits, 30–89 days apart +1.85 and 1–29
/// days apart +3.0 (docs/measurements/2026-12-08-event-gap-levels.md).
///
/// ```
/// use crosswalk::link::evidence::{event_gap_level, RecordEvidence};
///
/// let day = |y, m, d| chrono::NaiveDate::from_ymd_opt(y, m, d).unwrap();
/// let (mut a, mut b) = (RecordEvidence::default(), RecordEvidence::default());
/// assert_eq!(event_gap_level(&a, &b), 0);
/// a.add_event(day(2023, 1, 10), Some(day(2023, 3, 1)));
/// b.add_event(day(2023, 5, 1), None);
/// assert_eq!(event_gap_level(&a, &b), 4); // 61 days after the first record's end
/// b.add_event(day(2023, 3, 20), None);
/// assert_eq!(event_gap_level(&a, &b), 5); // spans are compared: 19 days apart now
/// b.add_event(day(2023, 2, 1), None);
/// assert_eq!(event_gap_level(&a, &b), 3); // overlapping
/// let mut c = RecordEvidence::default();
/// c.add_event(day(2024, 6, 1), None);
/// assert_eq!(event_gap_level(&a, &c), 1);
/// ```
pub fn event_gap_level(a: &RecordEvidence, b: &RecordEvidence) -> u8 {
    let (Some((a0, a1)), Some((b0, b1))) = (a.span, b.span) else {
        return 0;
    };
    let gap = (a0.max(b0) - a1.min(b1)).max(0);
    if gap >= EVENT_GAP_DAYS[0] {
        1
    } else if gap >= EVENT_GAP_DAYS[1] {
        2
    } else if gap == 0 {
        3
    } else if gap >= EVENT_GAP_DAYS[2] {
        4
    } else {
        5
    }
}

/// Sex code of an encodings file's `sex` label (0: unknown).
pub fn sex_code(label: &str) -> u8 {
    match label {
        "female" => 1,
        "male" => 2,
        "other" => 3,
        _ => 0,
    }
}

/// The birth years a person of age band `label` (docs/formats.md) can have been born in, given
/// the event date: `None` when either is unknown.
pub fn born_interval(label: &str, event: Option<chrono::NaiveDate>) -> Option<(i32, i32)> {
    let y = event?.year();
    let (lo, hi) = match label {
        "<13" => (0, 12),
        "13-17" => (13, 17),
        "18-23" => (18, 23),
        "24-29" => (24, 29),
        "30+" => (30, 100),
        "<18" => (0, 17),
        "18+" => (18, 100),
        _ => return None,
    };
    Some((y - hi - 1, y - lo))
}

/// The taps of a parts hardening label (`diffusion T`), `None` for `none`.
pub fn taps_of(label: &str) -> Option<usize> {
    label.strip_prefix("diffusion ")?.parse().ok()
}

/// `undiffuse_table(bits, t)` for a part of `bits` bits (a multiple of 64 up to 8,192, as the
/// schema allows) and `t` taps (up to 16), built on first use and shared by every thread: a
/// lookup is one atomic load (a per-thread table found by a search cost 4% of a million-record
/// link job). `None` outside those ranges.
fn undiffused(bits: usize, t: usize) -> Option<&'static [f64]> {
    type Table = std::sync::OnceLock<Vec<f64>>;
    static TABLES: [[Table; 17]; 129] = [const { [const { Table::new() }; 17] }; 129];
    if !bits.is_multiple_of(64) {
        return None;
    }
    let cell = TABLES.get(bits / 64)?.get(t)?;
    Some(cell.get_or_init(|| undiffuse_table(bits, t)))
}

/// Undoes diffusion's effect on a share of bits `y` (a density, or a share of differing
/// bits): after `t` taps a share `x` became `(1 − (1 − 2x)^t) / 2`.
fn undiffuse(y: f64, t: usize) -> f64 {
    (1.0 - (1.0 - 2.0 * y).max(0.0).powf(1.0 / t as f64)) / 2.0
}

/// `undiffuse(k / bits, t)` for every count `k` in `0..=bits`: the plain-scale share of a
/// count of bits of a diffused filter.
pub(crate) fn undiffuse_table(bits: usize, t: usize) -> Vec<f64> {
    let b = bits.max(1) as f64;
    (0..=bits).map(|k| undiffuse(k as f64 / b, t)).collect()
}

/// Dice of two parts of equal length (0 for parts of different lengths) on the plain filter's
/// scale: plain Dice when `taps` is
/// `None`; for diffused parts estimated from the densities and the Hamming distance, each
/// mapped back through the diffusion, as `1 − h / (d_a + d_b)` (the plain filters' differing
/// bits over their bits set), clamped to 0..1.
///
/// ```
/// use crosswalk::link::evidence::part_similarity;
///
/// let a = [0b1111_0000u8; 8];
/// let b = [0b1110_0000u8; 8];
/// assert!((part_similarity(&a, &b, None) - 2.0 * 24.0 / 56.0).abs() < 1e-12);
/// assert_eq!(part_similarity(&a, &a, Some(4)), 1.0);
/// ```
pub fn part_similarity(a: &[u8], b: &[u8], taps: Option<usize>) -> f64 {
    // One schema gives every record's part one length; parts of two lengths do not compare.
    if a.len() != b.len() {
        return 0.0;
    }
    let (pa, pb, inter) = counts(a, b);
    let (pa, pb) = (pa as f64, pb as f64);
    match taps {
        None => 2.0 * inter as f64 / (pa + pb).max(1.0),
        Some(t) => {
            // Differing bits: |a| + |b| − 2|a∩b|.
            let h = pa as usize + pb as usize - 2 * inter as usize;
            // `undiffuse(k / bits)` for the three counts, from a table per length and taps
            // (the same values the function gives), or computed where no table is kept.
            let bits = a.len() * 8;
            let (da, db, h) = match undiffused(bits, t) {
                Some(u) => (u[pa as usize], u[pb as usize], u[h]),
                None => {
                    let u = |k: f64| undiffuse(k / bits as f64, t);
                    (u(pa), u(pb), u(h as f64))
                }
            };
            (1.0 - h / (da + db).max(1e-9)).clamp(0.0, 1.0)
        }
    }
}

/// `(|a|, |b|, |a∩b|)` of two parts, in one pass with the CPU's POPCNT where it has it
/// ([`crate::compare::counts`], 8 bytes at a time); parts of unequal lengths (never compared:
/// [`part_similarity`] gives them 0 first) byte by byte. Both give the same counts
/// (`kernel_counts_equal_byte_counts`).
fn counts(a: &[u8], b: &[u8]) -> (u32, u32, u32) {
    static PLATFORM: std::sync::OnceLock<crate::compare::Platform> = std::sync::OnceLock::new();
    if a.len() == b.len() {
        crate::compare::counts(
            *PLATFORM.get_or_init(crate::compare::Platform::detect),
            a,
            b,
        )
    } else {
        byte_counts(a, b)
    }
}

/// [`counts`] byte by byte.
fn byte_counts(a: &[u8], b: &[u8]) -> (u32, u32, u32) {
    let ones = |x: &[u8]| x.iter().map(|v| v.count_ones()).sum::<u32>();
    let inter = a.iter().zip(b).map(|(x, y)| (x & y).count_ones()).sum();
    (ones(a), ones(b), inter)
}

fn band(d: Option<f64>, cuts: &[f64]) -> u8 {
    match d {
        None => 0,
        Some(d) => 1 + cuts.iter().filter(|&&c| d >= c).count() as u8,
    }
}

/// The best similarity over pairs of two records' values of one part (`None`: either has none).
fn best_similarity(a: &[Vec<u8>], b: &[Vec<u8>], taps: Option<usize>) -> Option<f64> {
    let mut best: Option<f64> = None;
    for x in a {
        for y in b {
            let d = part_similarity(x, y, taps);
            best = Some(best.map_or(d, |v: f64| v.max(d)));
        }
    }
    best
}

/// The best names similarity of two records over their legal and alias names parts.
pub fn names_similarity(
    a: &RecordEvidence,
    b: &RecordEvidence,
    taps: Option<usize>,
) -> Option<f64> {
    best_similarity(&a.names, &b.names, taps)
}

/// Appends the comparison levels of records `a` and `b` ([`C`] bytes) to `out`.
pub fn levels(a: &RecordEvidence, b: &RecordEvidence, taps: Option<usize>, out: &mut Vec<u8>) {
    let sim = |x: &[Vec<u8>], y: &[Vec<u8>]| best_similarity(x, y, taps);
    let names = band(names_similarity(a, b, taps), &NAMES_CUTS);
    out.push(names);
    out.push(band(sim(&a.dob, &b.dob), &DOB_CUTS));
    out.push(band(sim(&a.phone, &b.phone), &PHONE_CUTS));
    out.push(band(sim(&a.address, &b.address), &ADDRESS_CUTS));
    out.push(band(sim(&a.ssn4, &b.ssn4), &SSN_CUTS));
    // Facts: agreement when any pair of known values agrees.
    let agree = |x: bool, known: bool| match (known, x) {
        (false, _) => 0,
        (true, true) => 2,
        (true, false) => 1,
    };
    let known = !a.sex.is_empty() && !b.sex.is_empty();
    out.push(agree(a.sex.iter().any(|x| b.sex.contains(x)), known));
    out.push(age_level(a, b, taps));
    // Only for names that agree roughly (0.6–0.95): equal names hold equal given names, and
    // names apart (an alias) already say the given names differ.
    let top_names = (NAMES_CUTS.len() + 1) as u8;
    out.push(match names {
        n if n >= 2 && n < top_names => band(given_at_dob_similarity(a, b, taps), &GIVEN_CUTS),
        _ => 0,
    });
    out.push(event_gap_level(a, b));
}

/// The best similarity of two records' given names at a birth date they share
/// ([`RecordEvidence::given_dob`]), a given name also against the other record's family name
/// (fields swapped); `None` when either has no given name at a date, or they share no date
/// (parts salted by two dates have nothing to compare).
fn given_at_dob_similarity(
    a: &RecordEvidence,
    b: &RecordEvidence,
    taps: Option<usize>,
) -> Option<f64> {
    if a.given_dob.is_empty() || b.given_dob.is_empty() {
        return None;
    }
    let mut best: Option<f64> = None;
    // The given names, and each given name against the other's family name (swapped fields).
    for (xs, ys) in [
        (&a.given_dob, &b.given_dob),
        (&a.given_dob, &b.family_dob),
        (&a.family_dob, &b.given_dob),
    ] {
        for (da, x) in xs {
            for (db, y) in ys {
                if da == db {
                    let d = part_similarity(x, y, taps);
                    best = Some(best.map_or(d, |v: f64| v.max(d)));
                }
            }
        }
    }
    best
}

/// Plain-scale Dice of a birth-years part ([`RecordEvidence::born_years`]) and a birth-date or
/// birth-years part above which they share a year. The years' two tokens set 40 plain bits of
/// the part, a date's six tokens about 120, so a shared year scores `2·20 / 160 = 0.25` (a date
/// whose month and day are equal: 0.29), another year's tokens only chance collisions (about
/// 0.06 on 1,024 bits), and two birth-years parts 0.5 or 1.
pub const YEARS_SIMILARITY: f64 = 0.15;

/// The age comparison of two records: missing (0) when both have a birth date (the birth-date
/// comparison weighs the years already) or nothing says when either was born; `same years` (2)
/// when a birth-years part of one shares a year with a birth date or birth-years part of the
/// other, `apart` (1) when it shares none; without birth-years parts, `apart` (1) when the age
/// bands' birth-year intervals are apart, and missing (0) when they overlap: a shared band is
/// next to no evidence (it gave 0.35 bits when it was a level of its own), and as a level beside
/// `same years` its weight came from how often each kind of pair is seen, not from the ages
/// (docs/linkage.md).
fn age_level(a: &RecordEvidence, b: &RecordEvidence, taps: Option<usize>) -> u8 {
    if !a.dob.is_empty() && !b.dob.is_empty() {
        return 0;
    }
    let years = |x: &RecordEvidence, y: &RecordEvidence| {
        let with = |list: &[Vec<u8>]| best_similarity(&x.born_years, list, taps);
        [with(&y.dob), with(&y.born_years)]
    };
    let best = years(a, b)
        .into_iter()
        .chain(years(b, a))
        .flatten()
        .reduce(f64::max);
    if let Some(sim) = best {
        return if sim >= YEARS_SIMILARITY { 2 } else { 1 };
    }
    if a.born.is_empty() || b.born.is_empty() {
        return 0;
    }
    let overlap = a
        .born
        .iter()
        .any(|&(a0, a1)| b.born.iter().any(|&(b0, b1)| a0 <= b1 + 1 && b0 <= a1 + 1));
    if overlap {
        0
    } else {
        1
    }
}

/// Distinct level vectors: the product of the comparisons' level counts.
pub const PATTERNS: usize = {
    let mut n = 1;
    let mut i = 0;
    while i < C {
        n *= COMPARISONS[i].1;
        i += 1;
    }
    n
};

/// A level vector's index in `0..PATTERNS` ([`pattern_code`]).
pub type Code = u32;

// Codes fit their type, with its two largest values to spare as markers.
const _: () = assert!(PATTERNS < Code::MAX as usize - 1);

/// A level vector's index in `0..PATTERNS` (mixed radix, the first comparison slowest).
pub fn pattern_code(levels: &[u8]) -> Code {
    debug_assert!(levels.len() == C);
    debug_assert!(levels
        .iter()
        .zip(COMPARISONS)
        .all(|(&l, (_, k))| (l as usize) < k));
    let mut code = 0usize;
    for (c, &(_, k)) in COMPARISONS.iter().enumerate() {
        code = code * k + (levels.get(c).copied().unwrap_or(0) as usize).min(k - 1);
    }
    code as Code
}

/// The level vector of pattern `code` ([`pattern_code`]'s inverse).
pub fn pattern_levels(code: Code) -> [u8; C] {
    let mut out = [0u8; C];
    let mut rest = code as usize;
    for c in (0..C).rev() {
        let k = COMPARISONS[c].1;
        out[c] = (rest % k) as u8;
        rest /= k;
    }
    out
}

/// λ fitted again on a run's candidate `counts` (as [`fit_patterns`] takes them) for a model
/// whose `m` and `u` are fixed, e.g. taken from an earlier run ([`model_from_diagnostics`]):
/// the share of matches among all `total_pairs` pairs changes with the run's size, the
/// evidence a level gives does not.
pub fn refit_lambda(mut model: Model, counts: &[u64], total_pairs: f64) -> Model {
    let (all, all_w) = counted(counts, |_| true);
    model.estimate_lambda_weighted(&all, &all_w, total_pairs, 200);
    model
}

/// The level vectors of `counts` (pairs per pattern code) that `keep` takes, concatenated, and
/// their pair counts: what the weighted fits take.
fn counted(counts: &[u64], keep: impl Fn(&[u8; C]) -> bool) -> (Vec<u8>, Vec<f64>) {
    let (mut levels, mut weights) = (Vec::new(), Vec::new());
    for (code, &k) in counts
        .iter()
        .take(PATTERNS)
        .enumerate()
        .filter(|(_, &k)| k > 0)
    {
        let l = pattern_levels(code as Code);
        if keep(&l) {
            levels.extend_from_slice(&l);
            weights.push(k as f64);
        }
    }
    (levels, weights)
}

/// Whether every level label a `diagnostics.json` `model` section gives is the one this version
/// gives the level ([`level_label`]); sections without labels pass. A model fitted before a
/// level changed its meaning (the age comparison's level 2 was `overlap` of the age bands until
/// 2026-12-07, now `same years`) fails: its `m` and `u` weigh other evidence.
pub fn labels_are_this_versions(section: &serde_json::Value) -> bool {
    let Some(comparisons) = section.get("comparisons").and_then(|v| v.as_array()) else {
        return true;
    };
    let old_gap = has_three_level_event_gap(section);
    comparisons.iter().enumerate().all(|(c, cmp)| {
        if c == EVENT_GAP && old_gap {
            return true;
        }
        let levels = cmp.get("levels").and_then(|v| v.as_array());
        levels.into_iter().flatten().enumerate().all(|(i, level)| {
            match level.get("label").and_then(|v| v.as_str()) {
                Some(label) => label == level_label(c, i as u8 + 1),
                None => true,
            }
        })
    })
}

/// Whether a `diagnostics.json` `model` section holds fewer comparisons than this version
/// weighs (a model from before the given name at the birth date or the event gap), or the
/// event gap of three levels it had until 2026-12-08 (`≥ 365`, `90–364`, `< 90` days apart):
/// read by [`model_from_diagnostics`], the missing ones (and the old event gap) weigh nothing,
/// so a registry fits such a model again rather than keep it.
pub fn lacks_comparisons(section: &serde_json::Value) -> bool {
    section
        .get("comparisons")
        .and_then(|v| v.as_array())
        .is_some_and(|c| c.len() < C)
        || has_three_level_event_gap(section)
}

/// Whether the section's event gap is the three-level one of 2026-12-07 (`≥ 365 days apart`,
/// `90–364 days apart`, `< 90 days apart`): a comparison named `event_gap` with three levels,
/// whatever their labels say.
fn has_three_level_event_gap(section: &serde_json::Value) -> bool {
    section
        .get("comparisons")
        .and_then(|v| v.get(EVENT_GAP))
        .filter(|c| c.get("name").and_then(|v| v.as_str()) == Some("event_gap"))
        .and_then(|c| c.get("levels"))
        .and_then(|v| v.as_array())
        .is_some_and(|l| l.len() == 3)
}

/// The model of an earlier run from its `diagnostics.json`'s `model` section: λ and, per
/// comparison and level, `m` and `u`. The comparisons and their levels must be this version's
/// ([`COMPARISONS`], labels included where the section gives them:
/// [`labels_are_this_versions`]), each probability in 0..=1 with `u` above 0; the message says
/// what does not fit.
pub fn model_from_diagnostics(section: &serde_json::Value) -> Result<Model, String> {
    if section.get("method").and_then(|v| v.as_str()) != Some("fellegi-sunter") {
        return Err("it holds no fellegi-sunter model section (a run linked by the rules?)".into());
    }
    let mut model = Model::new(&COMPARISONS.map(|c| c.1));
    let comparisons = section
        .get("comparisons")
        .and_then(|v| v.as_array())
        .ok_or("its model has no comparisons")?;
    // A model from before the given name at the birth date (2026-12-07) or the event gap
    // (2026-12-07) lacks those last comparisons, and one of 2026-12-07 has an event gap of
    // three levels: it weighs them as no evidence (`m = u`).
    if !(GIVEN_DOB..=C).contains(&comparisons.len()) {
        return Err(format!(
            "its model has {} comparisons, this version {C}",
            comparisons.len()
        ));
    }
    if !labels_are_this_versions(section) {
        return Err(
            "its comparison levels mean what an older version meant by them (the age comparison weighs birth years since 2026-12-07, the event gap's levels are days apart)"
                .into(),
        );
    }
    let old_gap = has_three_level_event_gap(section);
    for (c, (name, levels)) in COMPARISONS.iter().enumerate() {
        let Some(cmp) = comparisons.get(c).filter(|_| !(c == EVENT_GAP && old_gap)) else {
            model.neutralise(c);
            continue;
        };
        if cmp.get("name").and_then(|v| v.as_str()) != Some(name) {
            return Err(format!("its comparison {} is not {name}", c + 1));
        }
        let lv = cmp
            .get("levels")
            .and_then(|v| v.as_array())
            .ok_or_else(|| format!("comparison {name} has no levels"))?;
        if lv.len() != levels - 1 {
            return Err(format!(
                "comparison {name} has {} levels, this version {}",
                lv.len(),
                levels - 1
            ));
        }
        for (i, level) in lv.iter().enumerate() {
            let get = |k: &str| level.get(k).and_then(|v| v.as_f64());
            match (get("m"), get("u")) {
                (Some(m), Some(u)) if (0.0..=1.0).contains(&m) && u > 0.0 && u <= 1.0 => {
                    model.m[c][i + 1] = m;
                    model.u[c][i + 1] = u;
                }
                _ => {
                    return Err(format!(
                        "comparison {name}, level {}: m or u missing or out of range",
                        i + 1
                    ))
                }
            }
        }
    }
    match section.get("lambda").and_then(|v| v.as_f64()) {
        Some(l) if l > 0.0 && l < 1.0 => model.lambda = l,
        _ => return Err("its λ is missing or out of range".into()),
    }
    Ok(model)
}

/// The built-in model's file: the `m` and `u` of a fit on a synthetic world of the default
/// schema (the file's `about` says how it was made). See [`builtin_model`].
pub const BUILTIN_MODEL_JSON: &str = include_str!("../../fixtures/config/model.json");

/// The built-in model: what a run of the default schema too small to fit its own (a training
/// session with fewer than [`MIN_SESSION_PAIRS`] pairs) weighs its evidence with; λ is still
/// fitted on the run. Its `u` are the chance agreements of a synthetic population of realistic
/// name and birth-date frequencies, its `m` the error rates of the synthetic agencies: a
/// stand-in for a handful of records, not a substitute for a fit on the run
/// (docs/linkage.md).
///
/// ```
/// use crosswalk::link::evidence::{builtin_model, NAMES};
///
/// let model = builtin_model();
/// // Equal names are far likelier among one person's records than among strangers.
/// assert!(model.level_weight(NAMES, 5) > 10.0);
/// ```
pub fn builtin_model() -> Model {
    let parsed = serde_json::from_str::<serde_json::Value>(BUILTIN_MODEL_JSON)
        .map_err(|e| e.to_string())
        .and_then(|v| model_from_diagnostics(&v));
    match parsed {
        Ok(m) => m,
        // The embedded file is tested; this cannot fail in a released build.
        Err(e) => panic!("built-in model is invalid: {e}"),
    }
}

/// Fits the model on a run's own records, without truth:
///
/// 1. `u` from the levels of random record pairs (`random`);
/// 2. `m` by EM in two blocked sessions, `u` fixed: among candidates with equal names (the top
///    names level, ≥ 0.95) every comparison but the names; among candidates with equal birth
///    dates the names, SSN-4 and sex (not the age band, which follows from the birth date, nor
///    phone and address, which twins share with their birth date). Both sessions hold every
///    pair of byte-equal names or birth-date parts at any scale, whatever the record-CLK pass
///    found: the link job streams them (groups of up to 2,000 records) into the counts. Pairs
///    at the top level that are not byte-equal (names at 0.95–1, dates at 0.99–1) come in
///    only when some pass offered them;
/// 3. λ over all `total_pairs` record pairs, non-candidates counted as non-matches, so that a
///    probability is a random pair's; then `u` cleared of the matches among the random pairs
///    and λ fitted again.
///
/// `counts[pattern_code]` is the number of candidate pairs of each level vector (EM and λ
/// then cost the few thousand distinct vectors, not the pairs); `random` holds level vectors
/// of [`C`] bytes each. Fails when a session has
/// fewer than [`MIN_SESSION_PAIRS`] pairs to learn from (a run too small, or encodings without
/// names or birth-date parts): the comparisons it trains would keep their starting values.
///
/// Why equal names and not every candidate with names at 0.6 or more: those are complete only
/// where an all-pairs names pass runs, and are otherwise chosen partly by record-CLK Dice,
/// which mixes in the birth date, so `m` of the other comparisons came out far from the truth
/// (docs/measurements/2026-12-07-em-sessions.md).
pub fn fit_patterns(counts: &[u64], random: &[u8], total_pairs: f64) -> Result<Model, ModelError> {
    let mut model = Model::new(&COMPARISONS.map(|c| c.1));
    model.estimate_u(random);
    // The given name at the birth date weighs nothing until it is fitted, last: random pairs
    // give its `u` wrong, and the start's `m` would move λ.
    model.m[GIVEN_DOB] = model.u[GIVEN_DOB].clone();
    let (all, all_w) = counted(counts, |_| true);
    let top_names = COMPARISONS[NAMES].1 as u8 - 1;
    let (by_names, names_w) = counted(counts, |l| l[NAMES] == top_names);
    let (by_dob, dob_w) = counted(counts, |l| l[DOB] == DOB_EQUAL);
    let train_a: Vec<bool> = (0..C).map(|c| c != NAMES && c != GIVEN_DOB).collect();
    let train_b: Vec<bool> = COMPARISONS
        .iter()
        .map(|(name, _)| matches!(*name, "names" | "ssn4" | "sex"))
        .collect();
    for (session, w) in [("equal names", &names_w), ("equal birth dates", &dob_w)] {
        let n = w.iter().sum::<f64>() as usize;
        if n < MIN_SESSION_PAIRS {
            return Err(ModelError::EmptySession {
                session,
                pairs: n,
                needed: MIN_SESSION_PAIRS,
            });
        }
    }
    model.expectation_maximisation_weighted(&by_names, &names_w, &train_a, EM_ITERATIONS)?;
    model.expectation_maximisation_weighted(&by_dob, &dob_w, &train_b, EM_ITERATIONS)?;
    model.estimate_lambda_weighted(&all, &all_w, total_pairs, 200);
    model.debias_u();
    model.estimate_lambda_weighted(&all, &all_w, total_pairs, 200);
    // The given name at an equal birth date: by the posteriors of everything else, over the
    // pairs of equal birth dates (random pairs give its `u` wrong, [`Model::fit_one_by_the_rest`]).
    model.fit_one_by_the_rest(GIVEN_DOB, &by_dob, &dob_w);
    model.estimate_lambda_weighted(&all, &all_w, total_pairs, 200);
    // A comparison no candidate pair holds (no such part, or event dates left out) weighs
    // nothing: its levels are never met here, and a later run taking this model
    // (`--model-from`) must not weigh them by starting values.
    for c in 0..C {
        if !all.chunks_exact(C).any(|row| row[c] > 0) {
            model.neutralise(c);
        }
    }
    Ok(model)
}

/// The model of the pairs that share a household and a birth date: equal birth dates and an
/// equal phone or address (the top level of either). Twins are such pairs, and the main model
/// takes its comparisons as independent given the match status, so it adds the birth date,
/// phone and address weights as if each were separate evidence, and a twin's 25 bits of them
/// outweigh names apart. Within the stratum those agreements say nothing (every pair has
/// them); what tells a person's records from twins is the names. So the stratum gets a model
/// of its own, fitted on its own pairs: `m` of the names, SSN-4, sex, age and event gap as fitted for the
/// run, `u` of the names the household's own (among siblings, names are far more alike than
/// among strangers: [`Household::siblings_u`], or, where too few pairs give that, the
/// stratum's pairs whose sexes disagree) and its own λ by EM. The same holds for household
/// pairs of which one record or both have no birth date ([`Household::dob_level`] 0): sisters, one of
/// them never asked her birth date, look to the main model like one person.
#[derive(Debug, Clone, PartialEq)]
pub struct Household {
    /// The birth-date level of the stratum's pairs: [`DOB_EQUAL`] (twins) or 0 (missing).
    pub dob_level: u8,
    /// Pairs in the stratum.
    pub pairs: f64,
    /// Share of matches among them.
    pub lambda: f64,
    /// `u` of each names level among the stratum's non-matches (level 0 unused).
    pub u_names: Vec<f64>,
    /// `m` of each level of the given name at the birth date among the stratum's matches
    /// (level 0 unused), fitted by EM with λ: within a household born the same day, the given
    /// name is what tells one person from twins.
    pub m_given: Vec<f64>,
    /// `u` of the same among the stratum's non-matches.
    pub u_given: Vec<f64>,
}

/// Where the stratum's EM starts the given name at the birth date: a person's records mostly
/// agree on it, twins mostly do not (levels `< 0.5`, `0.5–0.8`, `≥ 0.8`).
const GIVEN_START: ([f64; 4], [f64; 4]) = ([0.0, 0.1, 0.2, 0.7], [0.0, 0.7, 0.2, 0.1]);

/// Whether a level vector shares a household: the top level of the phone (≥ 0.99) or the
/// address (≥ 0.8).
pub fn shares_household(levels: &[u8]) -> bool {
    levels[PHONE] as usize == COMPARISONS[PHONE].1 - 1
        || levels[ADDRESS] as usize == COMPARISONS[ADDRESS].1 - 1
}

impl Household {
    /// Whether a level vector is in the twins' stratum: equal birth dates (Dice ≥ 0.99), and a
    /// shared household ([`shares_household`]).
    pub fn holds(levels: &[u8; C]) -> bool {
        levels[DOB] == DOB_EQUAL && shares_household(levels)
    }

    /// Whether a level vector is in this stratum: its birth-date level, in a shared household.
    pub fn contains(&self, levels: &[u8]) -> bool {
        levels[DOB] == self.dob_level && shares_household(levels)
    }

    /// `u` of the names among a household's non-matches, from the pairs that share a
    /// household and whose birth dates disagree (below 0.5): siblings and parents, nearly never
    /// one person (`m` of that level is about 2%); each counts by its chance of not being one
    /// under `model`. `None` with fewer than [`MIN_SESSION_PAIRS`] such pairs.
    pub fn siblings_u(model: &Model, counts: &[u64]) -> Option<Vec<f64>> {
        let (levels, weights) = counted(counts, |l| {
            shares_household(l) && l[DOB] == 1 && l[NAMES] > 0
        });
        if weights.iter().sum::<f64>() < MIN_SESSION_PAIRS as f64 {
            return None;
        }
        let mut u = vec![PSEUDO_COUNT; COMPARISONS[NAMES].1];
        for (row, &k) in levels.chunks_exact(C).zip(&weights) {
            u[row[NAMES] as usize] += (1.0 - model.probability(model.weight(row))) * k;
        }
        u[0] = 0.0;
        let total: f64 = u.iter().sum();
        Some(u.iter().map(|x| x / total).collect())
    }

    /// Fits the twins' stratum on the run's pair counts per level vector (`counts[pattern_code]`,
    /// as [`fit_patterns`] takes them) with `model`'s `m` and the names' `u` of `siblings`
    /// ([`Household::siblings_u`]). Without those, the stratum's `u` of the names comes from
    /// its pairs whose sexes disagree: those are almost never one person (a brother and sister;
    /// `m` of a sex disagreement is small), and nothing else in the stratum is known to be a
    /// non-match. Each such pair counts by its chance of not being one person, alternating with
    /// the fit of λ until `u` settles. With `m` and `u` fixed, EM then fits the stratum's λ
    /// alone (with `u` free as well, one comparison fits any λ equally well: EM drifted to λ
    /// near 0 or near 1 by where it started). `None` when neither gives a `u`.
    pub fn fit(model: &Model, counts: &[u64], siblings: Option<&[f64]>) -> Option<Household> {
        if let Some(u) = siblings {
            return Household::fit_with(model, counts, DOB_EQUAL, u);
        }
        let (levels, weights) = counted(counts, Household::holds);
        let pairs: f64 = weights.iter().sum();
        let rows = || levels.chunks_exact(C).zip(&weights);
        let apart: f64 = rows()
            .filter(|(row, _)| row[SEX] == 1 && row[NAMES] > 0)
            .map(|(_, &k)| k)
            .sum();
        if apart < MIN_SESSION_PAIRS as f64 {
            return None;
        }
        let mut h = Household {
            dob_level: DOB_EQUAL,
            pairs,
            lambda: 0.5,
            u_names: model.u[NAMES].clone(),
            m_given: GIVEN_START.0.to_vec(),
            u_given: GIVEN_START.1.to_vec(),
        };
        // `u` from the pairs whose sexes disagree, each weighed by the chance it is not one
        // person (a sex recorded wrongly: `m` of a disagreement is small, not nil), then λ
        // for that `u`; again until `u` settles.
        for _ in 0..100 {
            let mut u = vec![PSEUDO_COUNT; h.u_names.len()];
            for (row, &k) in rows().filter(|(row, _)| row[SEX] == 1 && row[NAMES] > 0) {
                u[row[NAMES] as usize] += (1.0 - h.probability(model, row)) * k;
            }
            u[0] = 0.0;
            let total: f64 = u.iter().sum();
            let mut moved = 0.0f64;
            for (x, c) in h.u_names.iter_mut().zip(&u) {
                moved = moved.max((c / total - *x).abs());
                *x = c / total;
            }
            h.fit_lambda(model, &levels, &weights);
            if moved < 1e-9 {
                break;
            }
        }
        Some(h)
    }

    /// The stratum of household pairs at birth-date level `dob_level`, with the names' `u`
    /// given (`u_names`, level 0 unused) and λ fitted by EM on its pairs. `None` when it holds
    /// no pair.
    pub fn fit_with(
        model: &Model,
        counts: &[u64],
        dob_level: u8,
        u_names: &[f64],
    ) -> Option<Household> {
        let (levels, weights) = counted(counts, |l| l[DOB] == dob_level && shares_household(l));
        let pairs: f64 = weights.iter().sum();
        if pairs <= 0.0 {
            return None;
        }
        let mut h = Household {
            dob_level,
            pairs,
            lambda: 0.5,
            u_names: u_names.to_vec(),
            m_given: GIVEN_START.0.to_vec(),
            u_given: GIVEN_START.1.to_vec(),
        };
        h.fit_lambda(model, &levels, &weights);
        Some(h)
    }

    /// EM for λ and the given name at the birth date (`m_given`, `u_given`) over the stratum's
    /// level vectors `levels` (each `weights[i]` pairs); the names' `m` and `u` stay fixed, and
    /// tell the two classes apart. A stratum without the given name (no such part, or no
    /// birth dates) keeps it at no evidence (`m = u`).
    fn fit_lambda(&mut self, model: &Model, levels: &[u8], weights: &[f64]) {
        let has_given = levels.chunks_exact(C).any(|row| row[GIVEN_DOB] > 0);
        if !has_given {
            let even = 1.0 / (self.m_given.len() - 1) as f64;
            for l in 1..self.m_given.len() {
                self.m_given[l] = even;
                self.u_given[l] = even;
            }
        }
        for _ in 0..EM_ITERATIONS {
            let mut matched = 0.0;
            let (mut cm, mut cu) = (
                vec![PSEUDO_COUNT; self.m_given.len()],
                vec![PSEUDO_COUNT; self.u_given.len()],
            );
            for (row, &k) in levels.chunks_exact(C).zip(weights) {
                let p = self.probability(model, row);
                matched += p * k;
                let g = row[GIVEN_DOB] as usize;
                if g > 0 && g < cm.len() {
                    cm[g] += p * k;
                    cu[g] += (1.0 - p) * k;
                }
            }
            let lambda = (matched / self.pairs).clamp(1e-9, 1.0 - 1e-9);
            let mut step = (lambda - self.lambda).abs();
            self.lambda = lambda;
            if has_given {
                for (counts, out) in [(&mut cm, &mut self.m_given), (&mut cu, &mut self.u_given)] {
                    counts[0] = 0.0;
                    let total: f64 = counts.iter().sum();
                    for (o, c) in out.iter_mut().zip(counts.iter()) {
                        step = step.max((c / total - *o).abs());
                        *o = c / total;
                    }
                }
            }
            if step < 1e-9 {
                break;
            }
        }
    }

    /// The stratum's weight of a level vector in it, without its prior: the names against
    /// the stratum's `u`, SSN-4, sex, age and event gap as in `model`, the given name at the
    /// birth date by the stratum's own `m` and `u`.
    fn weight(&self, model: &Model, levels: &[u8]) -> f64 {
        let l = levels[NAMES] as usize;
        let names = if l == 0 {
            0.0
        } else {
            (model.m[NAMES][l] / self.u_names[l]).log2()
        };
        names
            + model.level_weight(SSN4, levels[SSN4])
            + model.level_weight(SEX, levels[SEX])
            + model.level_weight(AGE, levels[AGE])
            + model.level_weight(EVENT_GAP, levels[EVENT_GAP])
            + match levels[GIVEN_DOB] as usize {
                0 => 0.0,
                g => (self.m_given[g] / self.u_given[g]).log2(),
            }
    }

    /// The stratum's match probability of a level vector in it.
    pub fn probability(&self, model: &Model, levels: &[u8]) -> f64 {
        let w = self.weight(model, levels) + (self.lambda / (1.0 - self.lambda)).log2();
        1.0 / (1.0 + (-w).exp2())
    }

    /// The match weight that gives a level vector in the stratum its stratum probability under
    /// `model`'s prior: what replaces the main model's weight for it.
    pub fn main_weight(&self, model: &Model, levels: &[u8]) -> f64 {
        let p = self.probability(model, levels).clamp(1e-12, 1.0 - 1e-12);
        (p / (1.0 - p)).log2() - model.prior_weight()
    }
}

/// Pseudo-count per names level in the household stratum's `u`, so that a level no
/// non-match holds keeps a `u` above 0.
const PSEUDO_COUNT: f64 = 0.5;

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(names: &[&[u8]], dob: Option<&[u8]>, sex: u8) -> RecordEvidence {
        RecordEvidence {
            names: names.iter().map(|n| n.to_vec()).collect(),
            dob: dob.map(<[u8]>::to_vec).into_iter().collect(),
            sex: (sex > 0).then_some(sex).into_iter().collect(),
            ..RecordEvidence::default()
        }
    }

    /// A filter of 128 bytes with 20 bits per token, tokens `t` at bits `20t..20t + 20`.
    fn filter(tokens: &[usize]) -> Vec<u8> {
        let mut v = vec![0u8; 128];
        for &t in tokens {
            for bit in 20 * t..20 * t + 20 {
                v[bit / 8] |= 0x80 >> (bit % 8);
            }
        }
        v
    }

    /// Birth years of an age weigh against a birth date (a shared year: same years, else apart)
    /// and against other birth years; two birth dates leave the age comparison to the birth-date
    /// comparison; age bands only ever say apart.
    #[test]
    fn birth_years_are_compared_as_years() {
        // Tokens 0..5: years 2005..2009 (the years' tokens); 10..14: month, day and full date.
        let date_2007 = filter(&[2, 10, 11, 12, 13, 14]);
        let years = |y: &[usize]| RecordEvidence {
            born_years: vec![filter(y)],
            ..RecordEvidence::default()
        };
        let dated = RecordEvidence {
            dob: vec![date_2007.clone()],
            ..RecordEvidence::default()
        };
        assert!((part_similarity(&filter(&[1, 2]), &date_2007, None) - 0.25).abs() < 1e-12);
        assert_eq!(age_level(&years(&[1, 2]), &dated, None), 2);
        assert_eq!(age_level(&dated, &years(&[1, 2]), None), 2);
        assert_eq!(age_level(&years(&[3, 4]), &dated, None), 1);
        assert_eq!(age_level(&years(&[3, 4]), &years(&[4, 5]), None), 2);
        assert_eq!(age_level(&years(&[0, 1]), &years(&[3, 4]), None), 1);
        assert_eq!(age_level(&dated, &dated, None), 0);
        // No birth date nor years on one side: the bands.
        let band = |lo, hi| RecordEvidence {
            born: vec![(lo, hi)],
            ..RecordEvidence::default()
        };
        assert_eq!(age_level(&band(2000, 2005), &band(2003, 2009), None), 0);
        assert_eq!(age_level(&band(2000, 2005), &band(2010, 2012), None), 1);
        assert_eq!(
            age_level(&band(2000, 2005), &RecordEvidence::default(), None),
            0
        );
        // Diffused parts compare on the plain scale all the same.
        let t = 4;
        let taps: Vec<usize> = (0..1024 * t)
            .map(|i| (i * 7919 + i / t * 31) % 1024)
            .collect();
        let diffuse = |v: &[u8]| -> Vec<u8> {
            let mut out = vec![0u8; 128];
            for o in 0..1024 {
                let x = taps[o * t..(o + 1) * t]
                    .iter()
                    .filter(|&&p| v[p / 8] & (0x80 >> (p % 8)) != 0)
                    .count();
                if x % 2 == 1 {
                    out[o / 8] |= 0x80 >> (o % 8);
                }
            }
            out
        };
        let dyears = |y: &[usize]| RecordEvidence {
            born_years: vec![diffuse(&filter(y))],
            ..RecordEvidence::default()
        };
        let ddated = RecordEvidence {
            dob: vec![diffuse(&date_2007)],
            ..RecordEvidence::default()
        };
        assert_eq!(age_level(&dyears(&[1, 2]), &ddated, Some(t)), 2);
        assert_eq!(age_level(&dyears(&[3, 4]), &ddated, Some(t)), 1);
    }

    /// A fitted model as the household tests take it: names, birth date, phone, address and
    /// sex weighed, λ 1e-3.
    fn household_model() -> Model {
        let mut model = Model::new(&COMPARISONS.map(|c| c.1));
        model.m[NAMES] = vec![0.0, 0.01, 0.02, 0.07, 0.2, 0.7];
        model.u[NAMES] = vec![0.0, 0.97, 0.025, 0.004, 0.0005, 0.0005];
        model.m[DOB] = vec![0.0, 0.01, 0.04, 0.0, 0.95];
        model.u[DOB] = vec![0.0, 0.987, 0.0127, 0.0, 0.0003];
        model.m[PHONE] = vec![0.0, 0.1, 0.1, 0.8];
        model.u[PHONE] = vec![0.0, 0.99985, 0.0001, 0.00005];
        model.m[ADDRESS] = vec![0.0, 0.07, 0.003, 0.927];
        model.u[ADDRESS] = vec![0.0, 0.96, 0.0385, 0.0015];
        model.m[SEX] = vec![0.0, 0.001, 0.999];
        model.u[SEX] = vec![0.0, 0.13, 0.87];
        model.lambda = 1e-3;
        model
    }

    /// A household stratum of 900 pairs of one person's records (names equal) and 100 pairs of
    /// twins (names below 0.6; half of them a brother and sister), all with equal birth dates
    /// and addresses: the main model makes the twins a match on the shared evidence, the
    /// stratum's model does not, and its λ and `u` of the names are the stratum's shares. A
    /// stratum with too few pairs whose sexes disagree is not fitted.
    #[test]
    fn the_household_stratum_keeps_twins_apart() {
        let model = household_model();
        let row = |names: u8, sex: u8| -> [u8; C] { [names, DOB_EQUAL, 0, 3, 0, sex, 0, 0, 0] };
        // Twins of one sex, and a brother and sister (the sexes disagree).
        let (same, twins, apart) = (row(5, 2), row(1, 2), row(1, 1));
        assert!(Household::holds(&same) && Household::holds(&twins));
        assert!(!Household::holds(&[5, DOB_EQUAL, 1, 1, 0, 0, 0, 0, 0]));
        assert!(!Household::holds(&[5, 3, 3, 3, 0, 0, 0, 0, 0]));
        let mut counts = vec![0u64; PATTERNS];
        counts[pattern_code(&same) as usize] = 900;
        counts[pattern_code(&twins) as usize] = 50;
        counts[pattern_code(&apart) as usize] = 50;
        // Outside the stratum: not looked at.
        counts[pattern_code(&[5, 1, 0, 0, 0, 0, 0, 0, 0]) as usize] = 5000;
        assert!(model.probability(model.weight(&twins)) > 0.9);
        let h = Household::fit(&model, &counts, None).unwrap();
        assert_eq!(h.pairs, 1000.0);
        assert!(h.probability(&model, &apart) < 0.01);
        assert!((h.lambda - 0.9).abs() < 0.01, "λ {}", h.lambda);
        assert!(h.u_names[1] > 0.95, "{:?}", h.u_names);
        assert!(h.probability(&model, &twins) < 0.15);
        assert!(h.probability(&model, &same) > 0.99);
        // The main weight reproduces the stratum's probability under the main prior.
        for r in [same, twins] {
            let p = model.probability(h.main_weight(&model, &r));
            assert!((p - h.probability(&model, &r)).abs() < 1e-9);
        }
        let mut few = counts.clone();
        few[pattern_code(&apart) as usize] = MIN_SESSION_PAIRS as u64 - 1;
        assert_eq!(Household::fit(&model, &few, None), None);
    }

    /// Household pairs whose birth dates disagree (siblings) give the names' `u` among a
    /// household's non-matches; with it, household pairs of which one record has no birth
    /// date are weighed by the names: a sister's names (apart, the family name shared) make
    /// her another person, equal names one person.
    #[test]
    fn siblings_teach_the_household_without_a_birth_date() {
        let model = household_model();
        let row = |names: u8, dob: u8| -> [u8; C] { [names, dob, 3, 0, 0, 0, 0, 0, 0] };
        let mut counts = vec![0u64; PATTERNS];
        // Siblings: one phone, birth dates apart, names mostly at 0.6–0.75.
        counts[pattern_code(&row(2, 1)) as usize] = 80;
        counts[pattern_code(&row(1, 1)) as usize] = 20;
        let u = Household::siblings_u(&model, &counts).unwrap();
        assert!(u[2] > 0.7 && u[1] > 0.15 && u[1] < 0.3, "{u:?}");
        // One record without a birth date: 900 pairs of one person, 100 of sisters.
        let (same, sister) = (row(5, 0), row(2, 0));
        counts[pattern_code(&same) as usize] = 900;
        counts[pattern_code(&sister) as usize] = 100;
        assert!(
            model.probability(model.weight(&sister)) > 0.9,
            "the main model merges them"
        );
        let h = Household::fit_with(&model, &counts, 0, &u).unwrap();
        assert_eq!(h.pairs, 1000.0);
        assert!(h.contains(&sister) && !h.contains(&row(2, 1)) && !h.contains(&row(2, 4)));
        assert!((h.lambda - 0.9).abs() < 0.03, "λ {}", h.lambda);
        assert!(h.probability(&model, &sister) < 0.3);
        assert!(h.probability(&model, &same) > 0.99);
        // Too few siblings: nothing learnt.
        let mut few = vec![0u64; PATTERNS];
        few[pattern_code(&row(2, 1)) as usize] = MIN_SESSION_PAIRS as u64 - 1;
        assert_eq!(Household::siblings_u(&model, &few), None);
    }

    /// Within a household born the same day, names that agree only roughly (the family name
    /// shared) are one person's records when the given names agree and twins when they do not:
    /// the stratum's EM learns that from the given name at the birth date, the names' `m` and
    /// `u` fixed. A stratum without that comparison weighs it as nothing.
    #[test]
    fn the_given_name_at_the_birth_date_tells_twins_apart() {
        let model = household_model();
        let row = |names: u8, given: u8| -> [u8; C] { [names, DOB_EQUAL, 0, 3, 0, 2, 0, given, 0] };
        // One person's records: equal names, or a typo apart with the given names agreeing;
        // twins: the family name shared, the given names apart.
        let (same, typo, twins) = (row(5, 0), row(4, 3), row(2, 1));
        let mut counts = vec![0u64; PATTERNS];
        counts[pattern_code(&same) as usize] = 600;
        counts[pattern_code(&typo) as usize] = 200;
        counts[pattern_code(&twins) as usize] = 200;
        let u = [0.0, 0.5, 0.45, 0.04, 0.005, 0.005];
        let h = Household::fit_with(&model, &counts, DOB_EQUAL, &u).unwrap();
        assert!(h.m_given[3] > 0.9 && h.u_given[1] > 0.9, "{h:?}");
        assert!((h.lambda - 0.8).abs() < 0.02, "λ {}", h.lambda);
        // Names between the two (0.75–0.85): the given name decides.
        assert!(h.probability(&model, &row(3, 3)) > 0.9, "{h:?}");
        assert!(h.probability(&model, &row(3, 1)) < 0.1, "{h:?}");
        // Without the comparison the two rows weigh alike.
        let (a, b) = (row(2, 0), row(3, 0));
        let mut plain = vec![0u64; PATTERNS];
        plain[pattern_code(&a) as usize] = 100;
        plain[pattern_code(&b) as usize] = 100;
        let h = Household::fit_with(&model, &plain, DOB_EQUAL, &u).unwrap();
        assert_eq!(h.m_given, h.u_given);
    }

    /// The given name at the birth date is compared only under one date, only for names that
    /// agree roughly (0.6–0.95), and a given name meets itself written as the family name.
    #[test]
    fn given_names_compare_at_one_birth_date() {
        let names = |t: &[usize]| vec![filter(t)];
        let with = |n: Vec<Vec<u8>>, given: &[(u64, &[usize])], family: &[(u64, &[usize])]| {
            RecordEvidence {
                names: n,
                given_dob: given.iter().map(|&(d, t)| (d, filter(t))).collect(),
                family_dob: family.iter().map(|&(d, t)| (d, filter(t))).collect(),
                ..RecordEvidence::default()
            }
        };
        let level = |a: &RecordEvidence, b: &RecordEvidence| {
            let mut out = Vec::new();
            levels(a, b, None, &mut out);
            out[GIVEN_DOB]
        };
        // Names at 0.6 (three tokens of five shared).
        let a = with(names(&[0, 1, 2, 3, 4]), &[(1, &[0, 1])], &[(1, &[2])]);
        let rough = |given: &[(u64, &[usize])], family: &[(u64, &[usize])]| {
            with(names(&[0, 1, 2, 5, 6]), given, family)
        };
        assert_eq!(level(&a, &rough(&[(1, &[0, 1])], &[])), 3);
        assert_eq!(level(&a, &rough(&[(1, &[3, 4])], &[])), 1, "a twin");
        assert_eq!(level(&a, &rough(&[(2, &[0, 1])], &[])), 0, "another date");
        assert_eq!(level(&a, &rough(&[], &[(1, &[0, 1])])), 0, "no given name");
        assert_eq!(
            level(&a, &rough(&[(1, &[2])], &[(1, &[0, 1])])),
            3,
            "swapped"
        );
        // Equal names, or names apart: not compared.
        assert_eq!(
            level(&a, &with(names(&[0, 1, 2, 3, 4]), &[(1, &[7])], &[])),
            0
        );
        assert_eq!(level(&a, &with(names(&[8, 9]), &[(1, &[7])], &[])), 0);
        assert_eq!(level_label(GIVEN_DOB, 1), "< 0.5");
    }

    /// A model saved before the given name at the birth date (seven comparisons) or before
    /// the event gap (eight) is read, and weighs what it lacks as nothing; fewer comparisons
    /// are refused, and a model with the given name's weights is read with them.
    #[test]
    fn models_without_the_last_comparisons_are_read() {
        let section = serde_json::from_str::<serde_json::Value>(BUILTIN_MODEL_JSON).unwrap();
        assert_eq!(section["comparisons"].as_array().unwrap().len(), C);
        let truncated = |n: usize| {
            let mut old = section.clone();
            old["comparisons"].as_array_mut().unwrap().truncate(n);
            old
        };
        let full = model_from_diagnostics(&section).unwrap();
        assert!(full.level_weight(EVENT_GAP, 1) < -1.0);
        for n in [GIVEN_DOB, EVENT_GAP] {
            let model = model_from_diagnostics(&truncated(n)).unwrap();
            for (c, &(_, levels)) in COMPARISONS.iter().enumerate().skip(n) {
                for l in 1..levels as u8 {
                    assert_eq!(model.level_weight(c, l), 0.0, "{n} comparisons: {c}, {l}");
                }
            }
            assert_eq!(model.level_weight(NAMES, 5), full.level_weight(NAMES, 5));
        }
        assert!(model_from_diagnostics(&truncated(GIVEN_DOB - 1)).is_err());
        // A model with the given name's weights is read with them.
        let mut new = truncated(GIVEN_DOB);
        let levels: Vec<serde_json::Value> = [(0.05, 0.8), (0.15, 0.15), (0.8, 0.05)]
            .iter()
            .enumerate()
            .map(|(i, &(m, u))| {
                let label = level_label(GIVEN_DOB, i as u8 + 1);
                serde_json::json!({"level": i + 1, "label": label, "m": m, "u": u})
            })
            .collect();
        new["comparisons"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"name": "given_dob", "levels": levels}));
        let model = model_from_diagnostics(&new).unwrap();
        assert!((model.level_weight(GIVEN_DOB, 1) - (0.05f64 / 0.8).log2()).abs() < 1e-12);
        assert_eq!(model.level_weight(GIVEN_DOB, 2), 0.0);
        assert!(model.level_weight(GIVEN_DOB, 3) > 3.9);
        // The event gap of three levels (2026-12-07) is read as no evidence, and such a model
        // lacks a comparison (a registry fits it again).
        assert!(!lacks_comparisons(&section));
        let mut three = section.clone();
        three["comparisons"][EVENT_GAP]["levels"] = serde_json::json!([
            {"level": 1, "label": "≥ 365 days apart", "m": 0.01, "u": 0.4},
            {"level": 2, "label": "90–364 days apart", "m": 0.14, "u": 0.4},
            {"level": 3, "label": "< 90 days apart", "m": 0.85, "u": 0.2},
        ]);
        assert!(lacks_comparisons(&three));
        let mut unlabelled = three.clone();
        for level in unlabelled["comparisons"][EVENT_GAP]["levels"]
            .as_array_mut()
            .unwrap()
        {
            level.as_object_mut().unwrap().remove("label");
        }
        assert!(lacks_comparisons(&unlabelled));
        assert!(model_from_diagnostics(&unlabelled).is_ok());
        let model = model_from_diagnostics(&three).unwrap();
        for l in 1..COMPARISONS[EVENT_GAP].1 as u8 {
            assert_eq!(model.level_weight(EVENT_GAP, l), 0.0, "level {l}");
        }
        assert_eq!(model.level_weight(NAMES, 5), full.level_weight(NAMES, 5));
        // Labels that are not this version's are refused.
        let mut relabelled = section.clone();
        relabelled["comparisons"][EVENT_GAP]["levels"][0]["label"] = "≥ 2 years apart".into();
        assert!(model_from_diagnostics(&relabelled).is_err());
    }

    #[test]
    fn missing_is_level_zero_and_equal_is_the_top() {
        let a = rec(&[&[0xff, 0, 0xf0, 0]], Some(&[1, 2, 3, 4]), 1);
        let b = rec(&[&[0, 0, 0, 0x0f], &[0xff, 0, 0xf0, 0]], None, 0);
        let mut out = Vec::new();
        levels(&a, &b, None, &mut out);
        // The alias names part equals a's legal one: top names level; no dob on b, no
        // phone, address, SSN-4 on either side, sex unknown on b, no age anywhere, no
        // event dates.
        assert_eq!(out, vec![5, 0, 0, 0, 0, 0, 0, 0, 0]);
        out.clear();
        let mut a = a;
        a.add_event(chrono::NaiveDate::from_ymd_opt(2023, 4, 1).unwrap(), None);
        levels(&a, &a, Some(4), &mut out);
        assert_eq!(&out[..2], &[5, DOB_EQUAL]);
        assert_eq!(out[5], 2);
        assert_eq!(out[EVENT_GAP], 3);
    }

    /// The event gap steps at 30, 90 and 365 days between the spans, an end date before its
    /// start counts as the start, and overlapping spans are level 3.
    #[test]
    fn event_gap_levels_step_at_30_90_and_365_days() {
        let day = |n: i64| {
            chrono::NaiveDate::from_ymd_opt(2023, 1, 1).unwrap() + chrono::TimeDelta::days(n)
        };
        let at = |start: i64, end: Option<i64>| {
            let mut r = RecordEvidence::default();
            r.add_event(day(start), end.map(day));
            r
        };
        let a = at(0, Some(30));
        for (start, level) in [
            (0, 3),
            (30, 3),
            (31, 5),
            (59, 5),
            (60, 4),
            (119, 4),
            (120, 2),
            (394, 2),
            (395, 1),
            (-365, 1),
            (-364, 2),
            (-1, 5),
            (-30, 4),
        ] {
            let b = at(start, None);
            assert_eq!(event_gap_level(&a, &b), level, "event at day {start}");
            assert_eq!(event_gap_level(&b, &a), level, "symmetric at day {start}");
        }
        // An end before the start: the span is the start alone.
        let c = at(200, Some(10));
        assert_eq!(
            c.span,
            Some((day(200).num_days_from_ce(), day(200).num_days_from_ce()))
        );
        assert_eq!(event_gap_level(&a, &c), 2);
        // A later row widens the span.
        let mut d = at(500, None);
        assert_eq!(event_gap_level(&a, &d), 1);
        d.add_event(day(40), None);
        assert_eq!(event_gap_level(&a, &d), 5);
        d.add_event(day(20), None);
        assert_eq!(event_gap_level(&a, &d), 3);
    }

    /// The popcount kernel's counts equal the byte-wise ones at every part length.
    #[test]
    fn kernel_counts_equal_byte_counts() {
        let mut state = 11u64;
        for len in [8, 16, 24, 32, 64, 72, 128, 7, 130, 256] {
            for _ in 0..50 {
                let mut bytes = |n: usize| -> Vec<u8> {
                    (0..n)
                        .map(|_| crate::block::splitmix(&mut state) as u8)
                        .collect()
                };
                let (a, b) = (bytes(len), bytes(len));
                assert_eq!(counts(&a, &b), byte_counts(&a, &b), "{len} bytes");
            }
        }
    }

    /// The diffused estimate tracks plain Dice: random sparse filters diffused with a random
    /// wiring give back (within sampling noise) the Dice of the plain filters.
    #[test]
    fn diffused_similarity_estimates_plain_dice() {
        let mut state = 11u64;
        let mut next = move || crate::block::splitmix(&mut state);
        let bits = 1024;
        for t in [3usize, 4, 6] {
            let taps: Vec<usize> = (0..bits * t)
                .map(|_| (next() % bits as u64) as usize)
                .collect();
            let diffuse = |x: &[bool]| -> Vec<u8> {
                let mut out = vec![0u8; bits / 8];
                for o in 0..bits {
                    let v = taps[o * t..(o + 1) * t]
                        .iter()
                        .fold(false, |acc, &i| acc ^ x[i]);
                    if v {
                        out[o / 8] |= 1 << (o % 8);
                    }
                }
                out
            };
            let a: Vec<bool> = (0..bits).map(|_| next() % 5 == 0).collect();
            // b: a with a fifth of its set bits moved elsewhere.
            let mut b = a.clone();
            for i in 0..bits {
                if a[i] && next() % 5 == 0 {
                    b[i] = false;
                    b[(next() % bits as u64) as usize] = true;
                }
            }
            let pack = |x: &[bool]| -> Vec<u8> {
                let mut out = vec![0u8; bits / 8];
                for (i, &v) in x.iter().enumerate() {
                    if v {
                        out[i / 8] |= 1 << (i % 8);
                    }
                }
                out
            };
            let plain = part_similarity(&pack(&a), &pack(&b), None);
            let est = part_similarity(&diffuse(&a), &diffuse(&b), Some(t));
            assert!(
                (plain - est).abs() < 0.08,
                "t {t}: plain {plain:.3}, estimated {est:.3}"
            );
        }
    }

    #[test]
    fn pattern_codes_round_trip() {
        assert_eq!(PATTERNS, 6 * 5 * 4 * 4 * 3 * 3 * 3 * 4 * 6);
        let mut seen = std::collections::HashSet::new();
        for code in 0..PATTERNS as Code {
            let l = pattern_levels(code);
            assert_eq!(pattern_code(&l), code);
            seen.insert(l);
        }
        assert_eq!(seen.len(), PATTERNS);
    }

    #[test]
    fn facts_give_intervals_and_codes() {
        let d = chrono::NaiveDate::from_ymd_opt(2024, 6, 1);
        assert_eq!(born_interval("13-17", d), Some((2006, 2011)));
        assert_eq!(born_interval("unknown", d), None);
        assert_eq!(born_interval("30+", None), None);
        assert_eq!(sex_code("female"), 1);
        assert_eq!(sex_code("unknown"), 0);
        assert_eq!(taps_of("diffusion 4"), Some(4));
        assert_eq!(taps_of("none"), None);
    }
}

//! What each column of an export holds, told without its values: fill rate, value shapes,
//! distinct counts, the date patterns that parse it, and, for a column of few values, its codes
//! (quoted only where [`crate::redact`] allows).
//!
//! The values themselves stay in memory (a sample per column, for the role guesses of
//! [`super::guess`]); nothing here prints or returns one, and [`ColumnProfile`]'s `Debug` shows
//! counts only.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::Path;

use chrono::{Datelike, NaiveDate};
use rustc_hash::{FxHashSet, FxHasher};

use crate::error::Result;
use crate::io::csv_in::RawRow;
use crate::io::ExportSource;
use crate::normalize::{self, DatePattern};
use crate::source::{TextEncoding, UnknownCode, UnknownCodeLine, UnknownCodeTally};

/// Date patterns tried on every column, strict forms before the looser ones they overlap (a
/// stable sort by parse rate then prefers `MM/DD/YYYY` to `M/D/YYYY` when both parse all, and
/// the US order to the European one when no day is above 12).
pub const DATE_CANDIDATES: &[&str] = &[
    "YYYY-MM-DD",
    "MM/DD/YYYY",
    "M/D/YYYY",
    "YYYYMMDD",
    "DD-Mon-YYYY",
    "D-Mon-YYYY",
    "MM-DD-YYYY",
    "M-D-YYYY",
    "YYYY/MM/DD",
    "DD/MM/YYYY",
    "D/M/YYYY",
    "DD.MM.YYYY",
    "D.M.YYYY",
    "DD Mon YYYY",
    "Mon D, YYYY",
    "Month D, YYYY",
    "MM/DD/YY",
    "M/D/YY",
    "YYYY-MM-DD HH:MM",
    "YYYY-MM-DD HH:MM:SS",
    "YYYY-MM-DDTHH:MM:SS",
    "YYYY-MM-DDTHH:MM",
    "MM/DD/YYYY HH:MM",
    "M/D/YYYY HH:MM",
    "M/D/YYYY HH:MM:SS",
];

/// Non-empty values kept per column for guessing and date patterns.
const SAMPLE_VALUES: usize = 4000;
/// Longest value kept in a column's sample (characters); longer cells are not sampled.
const SAMPLE_CHARS: usize = 256;
/// Distinct values tracked as codes per column; a column with more is not a code column.
pub const MAX_CODES: usize = 200;
/// Rows whose per-column value hashes are kept (for the record-id checks).
pub const HASHED_ROWS: usize = 200_000;
/// Shapes listed per column.
const SHAPES_LISTED: usize = 4;

/// How well one date pattern reads a column.
#[derive(Debug, Clone, PartialEq)]
pub struct DateFit {
    /// The pattern, as a source mapping writes it.
    pub pattern: &'static str,
    /// Share of the sampled non-empty cells it parses into a date between 1900 and the
    /// reference date.
    pub rate: f64,
}

/// One column of an export, described by counts and shapes.
pub struct ColumnProfile {
    /// 0-based column index.
    pub index: usize,
    /// The header cell (shown only when the header row is plainly column names).
    pub header: String,
    /// Rows read.
    pub rows: u64,
    /// Cells that are not empty and not a missing-value marker (`NULL`, `N/A`, `unknown`).
    pub filled: u64,
    /// Cells holding a missing-value marker.
    pub markers: u64,
    /// Cells whose bytes are not valid in the detected encoding.
    pub undecodable: u64,
    /// Cells that look like mojibake: UTF-8 read as Windows-1252 and saved again upstream
    /// (`JosÃ©`), which [`crate::source::repair_mojibake`] turns back.
    pub mojibake: u64,
    /// The commonest value shapes ([`shape`]) with their cell counts, most frequent first.
    pub shapes: Vec<(String, u64)>,
    /// Distinct filled values among the first [`HASHED_ROWS`] rows.
    pub distinct: u64,
    /// Filled cells among the first [`HASHED_ROWS`] rows (what `distinct` is counted over).
    pub filled_hashed: u64,
    /// Date patterns that parse some of the column, best first.
    pub dates: Vec<DateFit>,
    /// Median year of the dates the best pattern reads.
    pub median_year: Option<i32>,
    pub(crate) codes: Option<UnknownCodeTally>,
    pub(crate) sample: Vec<String>,
    pub(crate) row_hashes: Vec<u64>,
    distinct_set: FxHashSet<u64>,
    shape_counts: HashMap<String, u64>,
}

impl std::fmt::Debug for ColumnProfile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ColumnProfile")
            .field("index", &self.index)
            .field("filled", &self.filled)
            .field("distinct", &self.distinct)
            .field("shapes", &self.shapes)
            .field("dates", &self.dates)
            .finish()
    }
}

impl ColumnProfile {
    fn new(index: usize, header: &str) -> ColumnProfile {
        ColumnProfile {
            index,
            header: header.trim().to_string(),
            rows: 0,
            filled: 0,
            markers: 0,
            undecodable: 0,
            mojibake: 0,
            shapes: Vec::new(),
            distinct: 0,
            filled_hashed: 0,
            dates: Vec::new(),
            median_year: None,
            codes: Some(UnknownCodeTally::default()),
            sample: Vec::new(),
            row_hashes: Vec::new(),
            distinct_set: FxHashSet::default(),
            shape_counts: HashMap::new(),
        }
    }

    /// Share of rows that are filled.
    pub fn fill_rate(&self) -> f64 {
        self.filled as f64 / self.rows.max(1) as f64
    }

    /// Distinct values per filled cell (over the first [`HASHED_ROWS`] rows).
    pub fn distinct_ratio(&self) -> f64 {
        self.distinct as f64 / self.filled_hashed.max(1) as f64
    }

    /// The column's codes with their counts when it has at most [`MAX_CODES`] distinct values:
    /// a code only where it cannot be an identifier, else its shape and first rows.
    /// Codes for which `also` holds are quoted too (a built-in table's entries).
    pub fn code_lines(
        &self,
        kind: &'static str,
        also: &dyn Fn(&str) -> bool,
    ) -> Option<Vec<UnknownCodeLine>> {
        let tally = self.codes.as_ref()?;
        let mut lines = tally.lines_quoting(also);
        for l in &mut lines {
            l.column_kind = kind;
        }
        lines.sort_by(|a, b| b.rows.cmp(&a.rows).then_with(|| a.label.cmp(&b.label)));
        Some(lines)
    }

    /// The best date pattern's parse rate (0 when none parses).
    pub fn date_rate(&self) -> f64 {
        self.dates.first().map_or(0.0, |d| d.rate)
    }

    /// Share of sampled values for which `f` holds.
    pub(crate) fn share(&self, f: impl Fn(&str) -> bool) -> f64 {
        if self.sample.is_empty() {
            return 0.0;
        }
        self.sample.iter().filter(|v| f(v)).count() as f64 / self.sample.len() as f64
    }

    fn add(&mut self, text: Option<&str>, row: u64) {
        self.rows += 1;
        let Some(text) = text else {
            self.undecodable += 1;
            self.push_hash(0);
            return;
        };
        let t = text.trim();
        let folded = normalize::fold(t);
        if normalize::is_missing_marker(&folded) {
            if !t.is_empty() {
                self.markers += 1;
            }
            self.push_hash(0);
            return;
        }
        self.filled += 1;
        if !t.is_ascii() && crate::source::repair_mojibake(t).is_some() {
            self.mojibake += 1;
        }
        let mut h = FxHasher::default();
        folded.hash(&mut h);
        let hash = h.finish() | 1;
        if self.row_hashes.len() < HASHED_ROWS {
            self.filled_hashed += 1;
            self.distinct_set.insert(hash);
        }
        self.push_hash(hash);
        *self.shape_counts.entry(shape(t)).or_default() += 1;
        if self.sample.len() < SAMPLE_VALUES && t.chars().count() <= SAMPLE_CHARS {
            self.sample.push(t.to_string());
        }
        if let Some(codes) = &mut self.codes {
            codes.add(&UnknownCode::new("code", t), row);
            if codes.len() > MAX_CODES {
                self.codes = None;
            }
        }
    }

    fn push_hash(&mut self, h: u64) {
        if self.row_hashes.len() < HASHED_ROWS {
            self.row_hashes.push(h);
        }
    }

    fn finish(&mut self, today: NaiveDate) {
        self.distinct = self.distinct_set.len() as u64;
        self.distinct_set = FxHashSet::default();
        let mut shapes: Vec<(String, u64)> = self.shape_counts.drain().collect();
        shapes.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        shapes.truncate(SHAPES_LISTED);
        self.shapes = shapes;
        if self.sample.is_empty() {
            return;
        }
        let n = self.sample.len() as f64;
        let mut fits: Vec<(DateFit, Vec<i32>)> = Vec::new();
        for &pattern in DATE_CANDIDATES {
            let Ok(p) = pattern.parse::<DatePattern>() else {
                continue;
            };
            let years: Vec<i32> = self
                .sample
                .iter()
                .filter_map(|v| normalize::date(v, std::slice::from_ref(&p), today).ok()?)
                .map(|d| d.year())
                .collect();
            if !years.is_empty() {
                fits.push((
                    DateFit {
                        pattern,
                        rate: years.len() as f64 / n,
                    },
                    years,
                ));
            }
        }
        fits.sort_by(|a, b| b.0.rate.total_cmp(&a.0.rate));
        if let Some((_, years)) = fits.first_mut() {
            years.sort_unstable();
            self.median_year = Some(years[years.len() / 2]);
        }
        self.dates = fits.into_iter().map(|f| f.0).collect();
    }
}

/// A value's shape, coarser than [`crate::redact::shape`]: each run of letters becomes `A`
/// (capitals), `a` (small letters) or `Aa` (mixed), digits stay `9` one for one, and spaces and
/// punctuation stay. `Lopez, Ana M` is `Aa, Aa A`; `3/7/2009` is `9/9/9999`.
///
/// ```
/// use crosswalk::inspect::shape;
/// assert_eq!(shape("Lopez, Ana M"), "Aa, Aa A");
/// assert_eq!(shape("3/7/2009"), "9/9/9999");
/// assert_eq!(shape("HT-INC"), "A-A");
/// ```
pub fn shape(value: &str) -> String {
    let mut out = String::new();
    let mut run: Option<(bool, bool)> = None; // (has upper, has lower) of the current letters
    let flush = |out: &mut String, run: &mut Option<(bool, bool)>| {
        if let Some((up, low)) = run.take() {
            out.push_str(match (up, low) {
                (true, true) => "Aa",
                (true, false) => "A",
                _ => "a",
            });
        }
    };
    for c in value.trim().chars() {
        if c.is_alphabetic() {
            let r = run.get_or_insert((false, false));
            r.0 |= c.is_uppercase();
            r.1 |= !c.is_uppercase();
            continue;
        }
        flush(&mut out, &mut run);
        if out.chars().count() >= 40 {
            out.push('…');
            return out;
        }
        out.push(if c.is_ascii_digit() {
            '9'
        } else if c == ' ' || c.is_ascii_punctuation() {
            c
        } else {
            '?'
        });
    }
    flush(&mut out, &mut run);
    out
}

/// An export read through: its header and each column's profile. Its `Debug` shows counts
/// only (a first row that is not a header may hold a person's name).
pub struct Profile {
    /// Data rows read.
    pub rows: u64,
    /// Rows whose width differs from the header's.
    pub ragged_rows: u64,
    /// The header cells.
    pub headers: Vec<String>,
    /// One profile per header column.
    pub columns: Vec<ColumnProfile>,
}

impl std::fmt::Debug for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Profile")
            .field("rows", &self.rows)
            .field("ragged_rows", &self.ragged_rows)
            .field("columns", &self.columns.len())
            .finish()
    }
}

/// Reads every row of `path` (CSV with `delimiter` and `encoding`, or Parquet) and profiles
/// its columns. `today` bounds the date patterns.
pub fn profile(
    path: &Path,
    delimiter: u8,
    encoding: TextEncoding,
    today: NaiveDate,
) -> Result<Profile> {
    let mut source = ExportSource::open(path, delimiter, encoding)?;
    let headers: Vec<String> = source.headers().to_vec();
    let mut columns: Vec<ColumnProfile> = headers
        .iter()
        .enumerate()
        .map(|(i, h)| ColumnProfile::new(i, h))
        .collect();
    let mut chunk: Vec<RawRow> = Vec::new();
    let (mut rows, mut ragged) = (0u64, 0u64);
    loop {
        let n = source.read_chunk(&mut chunk, 8192)?;
        if n == 0 {
            break;
        }
        for raw in &chunk[..n] {
            rows += 1;
            ragged += u64::from(raw.record.len() != headers.len());
            for (i, col) in columns.iter_mut().enumerate() {
                let cell = raw.record.get(i).unwrap_or(b"");
                let text = match encoding {
                    TextEncoding::Utf8 => std::str::from_utf8(cell)
                        .ok()
                        .map(std::borrow::Cow::Borrowed),
                    TextEncoding::Windows1252 => Some(
                        encoding_rs::WINDOWS_1252
                            .decode_without_bom_handling(cell)
                            .0,
                    ),
                };
                col.add(text.as_deref(), raw.row);
            }
        }
    }
    for c in &mut columns {
        c.finish(today);
    }
    Ok(Profile {
        rows,
        ragged_rows: ragged,
        headers,
        columns,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_hide_letters_and_keep_digit_counts() {
        assert_eq!(shape("María José"), "Aa Aa");
        assert_eq!(shape("XXX-XX-5187"), "A-A-9999");
        assert_eq!(shape("(860) 841-8691"), "(999) 999-9999");
        assert_eq!(shape("10-Dec-2004"), "99-Aa-9999");
        assert_eq!(shape("o'neil"), "a'a");
    }

    #[test]
    fn a_date_column_gets_its_pattern_and_a_code_column_its_codes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.csv");
        let mut text = String::from("Code,Born\n");
        for i in 0..40 {
            text.push_str(&format!(
                "SVC-{},{}/{}/{}\n",
                i % 3,
                i % 12 + 1,
                i % 28 + 1,
                1950 + i
            ));
        }
        std::fs::write(&p, text).unwrap();
        let today = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
        let prof = profile(&p, b',', TextEncoding::Utf8, today).unwrap();
        let born = &prof.columns[1];
        assert_eq!(born.dates[0].pattern, "M/D/YYYY");
        assert_eq!(born.dates[0].rate, 1.0);
        assert_eq!(born.median_year, Some(1970));
        let codes = prof.columns[0]
            .code_lines("service_code", &|_| false)
            .unwrap();
        assert_eq!(codes.len(), 3);
        assert_eq!(codes[0].label, "SVC-0");
        assert_eq!(prof.columns[0].distinct, 3);
        assert_eq!(prof.columns[1].distinct, 40);
        // Dates are never quoted, only shaped.
        let dates = prof.columns[1].code_lines("x", &|_| false).unwrap();
        assert!(dates
            .iter()
            .all(|l| l.label.starts_with("a value shaped 9")));
    }
}

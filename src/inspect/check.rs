//! A source mapping checked against an export without encoding anything: per field, the cells
//! filled, parsed and dropped (and why), and for a date field the pattern that would read the
//! dropped cells. `crosswalk inspect --mapping` and `crosswalk encode --check` print it.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;

use chrono::NaiveDate;

use crate::error::Result;
use crate::io::csv_in::RawRow;
use crate::io::ExportSource;
use crate::normalize::{self, DatePattern, Problem};
use crate::source::{Extractor, SourceMapping, TextEncoding, UnknownCodeLine, UnknownCodeTally};

use super::profile::DATE_CANDIDATES;

/// Dropped date cells kept per field to find a pattern that reads them (in memory only).
const FAILED_KEPT: usize = 5000;

/// Share of a field's filled cells whose loss earns a warning.
pub const LOSS_WARNING: f64 = 0.02;

/// One mapped field's fate in the export.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldCheck {
    /// The mapping field (`dob`, `record_id`, ...).
    pub field: &'static str,
    /// The column it reads (as the mapping names it).
    pub column: String,
    /// Cells with a value (not empty, not a missing-value marker such as `NULL`).
    pub filled: u64,
    /// Filled cells dropped, by reason (in rows that would be encoded).
    pub dropped: BTreeMap<String, u64>,
    /// Cells dropped in rows rejected as a whole (where the field's loss may be why).
    pub dropped_in_rejected_rows: u64,
    /// A date pattern that would read dropped cells, of kept and rejected rows alike:
    /// `(pattern, cells it reads)`.
    pub would_parse: Option<(&'static str, u64)>,
}

impl FieldCheck {
    /// Filled cells dropped, all reasons together.
    pub fn dropped_total(&self) -> u64 {
        self.dropped.values().sum()
    }

    /// Filled cells read.
    pub fn parsed(&self) -> u64 {
        self.filled.saturating_sub(self.dropped_total())
    }

    /// Share of the filled cells dropped.
    pub fn loss(&self) -> f64 {
        self.dropped_total() as f64 / self.filled.max(1) as f64
    }
}

/// A mapping checked against an export.
#[derive(Debug, Clone)]
pub struct MappingCheck {
    /// Data rows read.
    pub rows: u64,
    /// Rows the encoder would reject as a whole.
    pub rows_rejected: u64,
    /// Why, by reason (a row may have several).
    pub row_rejections: BTreeMap<String, u64>,
    /// One entry per mapped field (and record-id part), in mapping order, counted over the
    /// rows that would be encoded (a rejected row's cells are not counted).
    pub fields: Vec<FieldCheck>,
    /// Codes the mapping does not list.
    pub unknown_codes: Vec<UnknownCodeLine>,
    /// Whether they stop the encoder (`unknown_codes = "error"`) or only reject their rows.
    pub unknown_codes_stop: bool,
    /// Codes read by crosswalk's built-in tables only.
    pub builtin_readings: Vec<UnknownCodeLine>,
}

impl MappingCheck {
    /// Warnings: each field that loses more than [`LOSS_WARNING`] of its filled cells, with
    /// what would read them where known; unknown codes.
    pub fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        if self.rows > 0 && self.rows_rejected as f64 > LOSS_WARNING * self.rows as f64 {
            let why: Vec<String> = self
                .row_rejections
                .iter()
                .map(|(r, n)| format!("{r} ({n})"))
                .collect();
            w.push(format!(
                "{} of {} rows would be rejected as a whole: {}",
                self.rows_rejected,
                self.rows,
                why.join("; ")
            ));
        }
        for f in &self.fields {
            if f.dropped_in_rejected_rows > 0 {
                let mut line = format!(
                    "field {} (column {:?}) is dropped in {} rows that are rejected as a whole",
                    f.field, f.column, f.dropped_in_rejected_rows
                );
                if let Some((p, n)) = f.would_parse {
                    let _ = write!(line, "; adding \"{p}\" to its formats would read {n} cells");
                }
                w.push(line);
            }
            if f.filled > 0 && f.loss() > LOSS_WARNING {
                let why = f
                    .dropped
                    .iter()
                    .max_by_key(|x| x.1)
                    .map(|x| x.0.clone())
                    .unwrap_or_default();
                let mut line = format!(
                    "field {} (column {:?}) loses {:.1}% of its filled cells ({} of {}), most \
                     often: {why}",
                    f.field,
                    f.column,
                    100.0 * f.loss(),
                    f.dropped_total(),
                    f.filled
                );
                if let Some((p, n)) = f.would_parse {
                    let _ = write!(
                        line,
                        "; adding \"{p}\" to its formats would read {n} of them"
                    );
                }
                w.push(line);
            }
        }
        if !self.unknown_codes.is_empty() {
            w.push(format!(
                "{} code(s) the mapping does not list ({}): {}",
                self.unknown_codes.len(),
                if self.unknown_codes_stop {
                    "the encoder stops on them"
                } else {
                    "the encoder rejects their rows"
                },
                self.unknown_codes
                    .iter()
                    .take(8)
                    .map(|l| l.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        w
    }

    /// The per-field report as text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{} rows; {} would be rejected as a whole",
            self.rows, self.rows_rejected
        );
        for (r, n) in &self.row_rejections {
            let _ = writeln!(out, "  {n:>8}  rows rejected: {r}");
        }
        let kept = self.rows - self.rows_rejected;
        let _ = writeln!(
            out,
            "  per field, over the {kept} rows that would be encoded (filled and parsed: share of \
             those rows; dropped: cells)"
        );
        let _ = writeln!(
            out,
            "  {:<17} {:<24} {:>8} {:>8} {:>8}  why dropped",
            "field", "column", "filled", "parsed", "dropped"
        );
        for f in &self.fields {
            let pct = |n: u64| format!("{:.1}%", 100.0 * n as f64 / kept.max(1) as f64);
            let why: Vec<String> = f
                .dropped
                .iter()
                .map(|(r, n)| format!("{r} ({n})"))
                .collect();
            let _ = writeln!(
                out,
                "  {:<17} {:<24} {:>8} {:>8} {:>8}  {}",
                f.field,
                truncate(&f.column, 24),
                pct(f.filled),
                pct(f.parsed()),
                f.dropped_total(),
                why.join("; ")
            );
            if let Some((p, n)) = f.would_parse {
                let _ = writeln!(
                    out,
                    "  {:<17} {:<24} the pattern \"{p}\" would read {n} of the dropped cells",
                    "", ""
                );
            }
        }
        for l in &self.builtin_readings {
            let _ = writeln!(out, "  built-in reading: {l}");
        }
        for l in &self.unknown_codes {
            let _ = writeln!(out, "  unknown {l}");
        }
        out
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n - 1).collect();
        t.push('…');
        t
    }
}

/// Reads every row of `input` under `mapping` as the encoder would, and counts what each
/// field keeps and loses. Needs no key and writes nothing.
pub fn check(input: &Path, mapping: &SourceMapping, today: NaiveDate) -> Result<MappingCheck> {
    let mut source = ExportSource::open(input, mapping.delimiter_byte(), mapping.encoding)?;
    let headers = source.headers().to_vec();
    let extractor = Extractor::new(mapping, &headers, today, input)?;
    if let Some(&c) = source
        .unsupported()
        .iter()
        .find(|c| extractor.used_columns().contains(c))
    {
        return Err(crate::error::Error::input(
            input,
            format!(
                "mapped column {:?} has a Parquet type crosswalk cannot read as text (a list or \
                 struct); export it as text or a plain number or date",
                headers[c]
            ),
        ));
    }
    let fields = extractor.field_columns();
    let mut filled = vec![0u64; fields.len()];
    let mut dropped: Vec<BTreeMap<String, u64>> = vec![BTreeMap::new(); fields.len()];
    let mut failed: Vec<Vec<String>> = vec![Vec::new(); fields.len()];
    let mut dropped_in_rejected = vec![0u64; fields.len()];
    let mut unknown = UnknownCodeTally::default();
    let mut builtin = UnknownCodeTally::default();
    let (mut rows, mut rejected) = (0u64, 0u64);
    let mut row_rejections: BTreeMap<String, u64> = BTreeMap::new();
    let mut chunk: Vec<RawRow> = Vec::new();
    let decode = |cell: &[u8]| -> Option<String> {
        match mapping.encoding {
            TextEncoding::Utf8 => std::str::from_utf8(cell).ok().map(str::to_string),
            TextEncoding::Windows1252 => Some(
                encoding_rs::WINDOWS_1252
                    .decode_without_bom_handling(cell)
                    .0
                    .into_owned(),
            ),
        }
    };
    loop {
        let n = source.read_chunk(&mut chunk, 8192)?;
        if n == 0 {
            break;
        }
        for raw in &chunk[..n] {
            rows += 1;
            let cells: Vec<&[u8]> = raw.record.iter().collect();
            let ex = extractor.extract(&cells);
            for code in &ex.unknown_codes {
                unknown.add(code, raw.row);
            }
            // Counted on every row, as the encoder's summary does.
            for code in &ex.builtin_readings {
                builtin.add(code, raw.row);
            }
            let row_dropped = ex.rejected || !ex.unknown_codes.is_empty();
            if row_dropped {
                // The encoder drops the row (an unknown code stops the run, or rejects the row
                // under unknown_codes = "reject"): its cells are not counted per field.
                rejected += 1;
                for issue in ex.issues.iter().filter(|i| i.row_rejected) {
                    *row_rejections
                        .entry(format!("{}: {}", issue.field, issue.reason))
                        .or_default() += 1;
                }
                if !ex.unknown_codes.is_empty() {
                    *row_rejections.entry("unknown code".into()).or_default() += 1;
                }
            }
            for (k, &(field, col)) in fields.iter().enumerate() {
                let cell = cells.get(col).copied().unwrap_or(b"");
                let text = decode(cell);
                // A record id is any text (the encoder takes `NULL` as an id too); other fields
                // count a missing-value marker as empty.
                let present = match &text {
                    Some(t) if field == "record_id" => !t.trim().is_empty(),
                    Some(t) => !normalize::is_missing_marker(&normalize::fold(t.trim())),
                    None => true,
                };
                if !present {
                    continue;
                }
                if !row_dropped {
                    filled[k] += 1;
                }
                // A composite id's parts share the field name: the issue names its column.
                for issue in ex
                    .issues
                    .iter()
                    .filter(|i| i.field == field && i.column == headers[col].trim())
                {
                    if row_dropped {
                        // A field that fails in a rejected row may be why it was rejected (no
                        // usable identifier left): counted apart, and its cells still tried
                        // against other date patterns below.
                        dropped_in_rejected[k] += 1;
                    } else {
                        *dropped[k].entry(issue.reason.clone()).or_default() += 1;
                    }
                    let date = matches!(field, "dob" | "event_date" | "end_date");
                    if date
                        && issue.reason == Problem::UnparseableDate.describe()
                        && failed[k].len() < FAILED_KEPT
                    {
                        if let Some(t) = &text {
                            failed[k].push(t.trim().to_string());
                        }
                    }
                }
            }
        }
    }
    let fields = fields
        .iter()
        .enumerate()
        .map(|(k, &(field, col))| FieldCheck {
            field,
            column: headers[col].trim().to_string(),
            filled: filled[k],
            dropped: std::mem::take(&mut dropped[k]),
            dropped_in_rejected_rows: dropped_in_rejected[k],
            would_parse: best_pattern(&failed[k], today),
        })
        .collect();
    Ok(MappingCheck {
        rows,
        rows_rejected: rejected,
        row_rejections,
        fields,
        unknown_codes_stop: mapping.unknown_codes == crate::source::UnknownCodes::Error,
        unknown_codes: unknown.lines(),
        builtin_readings: builtin.lines_quoting(&crate::source::is_builtin_code),
    })
}

/// The candidate pattern that reads the most of `cells`, with the count.
fn best_pattern(cells: &[String], today: NaiveDate) -> Option<(&'static str, u64)> {
    if cells.is_empty() {
        return None;
    }
    DATE_CANDIDATES
        .iter()
        .filter_map(|&p| {
            let pat: DatePattern = p.parse().ok()?;
            let n = cells
                .iter()
                .filter(|c| {
                    normalize::date(c, std::slice::from_ref(&pat), today).is_ok_and(|d| d.is_some())
                })
                .count() as u64;
            (n > 0).then_some((p, n))
        })
        .fold(None, |best: Option<(&'static str, u64)>, x| match best {
            Some(b) if b.1 >= x.1 => Some(b),
            _ => Some(x),
        })
}

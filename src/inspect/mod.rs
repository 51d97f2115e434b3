//! `crosswalk inspect`: from an unknown export to a draft source mapping, without printing a
//! value.
//!
//! An agency's first hour with crosswalk is writing the source mapping of its export. This
//! module reads the export and says what it holds:
//!
//! 1. [`sniff`]: the text encoding (a byte-order mark; invalid UTF-8 means Windows-1252), the
//!    delimiter and the line ends;
//! 2. [`profile`]: per column, the fill rate, the value *shapes* (`99/99/9999` 71%, `9/9/9999`
//!    29%), the distinct count, the date patterns that parse it, and a code column's codes with
//!    their counts (a code quoted only when its form rules out an identifier, [`crate::redact`]);
//! 3. [`guess`]: each column's role (names and their one-cell layout, birth date, phone, SSN,
//!    ZIP, codes, dates, ids; a composite id when rows sharing the id column hold different
//!    persons and another column tells them apart), each with its evidence;
//! 4. a draft mapping ([`Inspection::draft`]) with every guess commented and every code listed
//!    for the integrator to give a meaning;
//! 5. [`check`](mod@check): an existing mapping run over the file, field by field (what `--mapping` and
//!    `crosswalk encode --check` print).
//!
//! The values themselves stay in memory. Nothing here prints one: headers are shown only when
//! the first row is plainly column names ([`crate::source::header_is_plain`]), and the
//! privacy scan of `tests/inspect.rs` checks every fixture's report and draft.
//!
//! ```no_run
//! use crosswalk::inspect::{inspect, InspectOptions};
//! let ins = inspect(std::path::Path::new("police.csv"), &InspectOptions::default())?;
//! print!("{}", ins.report());
//! std::fs::write("police.toml", ins.draft())?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod check;
mod draft;
pub mod guess;
pub mod profile;
pub mod sniff;

use std::fmt::Write;
use std::path::Path;

use chrono::NaiveDate;

use crate::error::{Error, Result};
use crate::vocab::AgencyType;

pub use check::{check, FieldCheck, MappingCheck};
pub use guess::{Guess, Guesses, Role};
pub use profile::{shape, ColumnProfile, Profile};
pub use sniff::Sniff;

/// What the integrator tells `inspect` beyond the file.
#[derive(Debug, Clone)]
pub struct InspectOptions {
    /// The agency's name for the draft (default: from the file name).
    pub agency: Option<String>,
    /// The kind of agency; it decides whether a lone code column names events or services.
    pub agency_type: Option<AgencyType>,
    /// Dates after this day do not count as parsed.
    pub today: NaiveDate,
}

impl Default for InspectOptions {
    fn default() -> Self {
        InspectOptions {
            agency: None,
            agency_type: None,
            today: NaiveDate::from_ymd_opt(2100, 1, 1).unwrap_or_default(),
        }
    }
}

/// An export inspected.
#[derive(Debug)]
pub struct Inspection {
    /// The file's name (without its folder).
    pub file_name: String,
    /// Encoding, delimiter, line ends.
    pub sniff: Sniff,
    /// The columns.
    pub profile: Profile,
    /// The role guesses.
    pub guesses: Guesses,
    /// The agency name written into the draft.
    pub agency: String,
    /// Whether the name was given (not derived from the file name).
    pub agency_given: bool,
    /// The agency type written into the draft.
    pub agency_type: AgencyType,
    /// Whether the type was given.
    pub agency_type_given: bool,
}

/// An agency name from a file name: lower case, runs of other characters as one `-`.
fn agency_from_file(path: &Path) -> String {
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("agency");
    let mut out = String::new();
    for c in stem.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let out = out.trim_matches('-').to_string();
    if out.is_empty() {
        "agency".into()
    } else {
        out
    }
}

/// Inspects `path` (CSV or Parquet).
pub fn inspect(path: &Path, options: &InspectOptions) -> Result<Inspection> {
    let sniff = sniff::sniff(path)?;
    let profile = profile::profile(path, sniff.delimiter, sniff.encoding, options.today)?;
    // A header must look like one (no data-shaped cell) and read like one: at least three in
    // ten of its cells name a field crosswalk knows. A first row of names and codes (`Maria
    // Lopez,F,LAB`) passes the first test and fails the second, and is never quoted.
    let hinted = profile
        .headers
        .iter()
        .filter(|h| guess::is_hinted(h))
        .count();
    let reads_like_a_header = hinted > 0 && hinted * 10 >= profile.headers.len() * 3;
    if !crate::source::header_is_plain(&profile.headers) || !reads_like_a_header {
        return Err(Error::input(
            path,
            "the first row does not look like a header (a cell holds a date, a number or an \
             address, or few of its cells name a field such as a name, birth date, id or \
             code): crosswalk maps columns by their names. Export the file again with its \
             column names in the first row",
        ));
    }
    if profile.rows == 0 {
        return Err(Error::input(
            path,
            "the file has a header but no data rows: there is nothing to inspect",
        ));
    }
    let guesses = guess::guess(&profile, options.agency_type);
    let agency_type = options.agency_type.unwrap_or(AgencyType::ServiceProvider);
    Ok(Inspection {
        file_name: path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        sniff,
        profile,
        guesses,
        agency: options
            .agency
            .clone()
            .unwrap_or_else(|| agency_from_file(path)),
        agency_given: options.agency.is_some(),
        agency_type,
        agency_type_given: options.agency_type.is_some(),
    })
}

impl Inspection {
    /// The draft source mapping (TOML with comments).
    pub fn draft(&self) -> String {
        draft::draft(self)
    }

    /// The human-readable report: format, then one line per column (fill rate, distinct
    /// values, commonest shapes, guess), date patterns and codes. Counts and shapes only.
    pub fn report(&self) -> String {
        let mut out = String::new();
        let s = &self.sniff;
        let p = &self.profile;
        let _ = writeln!(out, "crosswalk inspect: {}", self.file_name);
        if s.parquet {
            let _ = writeln!(
                out,
                "  format: Parquet, {} rows, {} columns",
                p.rows,
                p.columns.len()
            );
        } else {
            let _ = writeln!(
                out,
                "  format: CSV, {}{}, delimiter {:?} ({:.1}% of sampled rows fit), line ends {}, \
                 {} rows, {} columns{}",
                match s.encoding {
                    crate::source::TextEncoding::Utf8 => "UTF-8",
                    crate::source::TextEncoding::Windows1252 => "Windows-1252 (not valid UTF-8)",
                },
                if s.bom { " with a byte-order mark" } else { "" },
                s.delimiter_name(),
                100.0 * s.delimiter_fit,
                s.line_ends,
                p.rows,
                p.columns.len(),
                if p.ragged_rows > 0 {
                    format!(", {} rows of another width", p.ragged_rows)
                } else {
                    String::new()
                }
            );
        }
        let role_of = |i: usize| -> String {
            self.guesses
                .mapped
                .iter()
                .find(|g| g.column == i)
                .map(|g| match g.role {
                    Role::FullName(l) | Role::Alias(l, _) => format!(
                        "{} ({})",
                        g.role.key(),
                        match l {
                            crate::normalize::NameLayout::FirstLast => "first_last",
                            crate::normalize::NameLayout::LastCommaFirst => "last_comma_first",
                        }
                    ),
                    r => r.key().to_string(),
                })
                .unwrap_or_else(|| "-".into())
        };
        let _ = writeln!(
            out,
            "  {:>3} {:<22} {:>7} {:>9}  {:<40} guess",
            "#", "column", "filled", "distinct", "shapes"
        );
        for c in &p.columns {
            let shapes: Vec<String> = c
                .shapes
                .iter()
                .take(3)
                .map(|(sh, n)| format!("{sh} {:.0}%", 100.0 * *n as f64 / c.filled.max(1) as f64))
                .collect();
            let mut shapes = shapes.join(", ");
            if shapes.chars().count() > 40 {
                shapes = shapes.chars().take(39).collect::<String>() + "…";
            }
            let mut header = c.header.clone();
            if header.chars().count() > 22 {
                header = header.chars().take(21).collect::<String>() + "…";
            }
            let _ = writeln!(
                out,
                "  {:>3} {:<22} {:>6.1}% {:>9}  {:<40} {}",
                c.index + 1,
                header,
                100.0 * c.fill_rate(),
                c.distinct,
                shapes,
                role_of(c.index)
            );
        }
        let dated: Vec<&ColumnProfile> =
            p.columns.iter().filter(|c| c.date_rate() >= 0.5).collect();
        if !dated.is_empty() {
            let _ = writeln!(out, "  date patterns (share of filled cells parsed):");
            for c in dated {
                let fits: Vec<String> = c
                    .dates
                    .iter()
                    .take(4)
                    .map(|d| format!("{} {:.1}%", d.pattern, 100.0 * d.rate))
                    .collect();
                let _ = writeln!(out, "    {}: {}", c.header, fits.join(", "));
            }
        }
        for g in &self.guesses.mapped {
            if matches!(
                g.role,
                Role::EventCode | Role::ServiceCode | Role::Sex | Role::TraffickingType
            ) {
                let c = &p.columns[g.column];
                let builtin = matches!(g.role, Role::Sex | Role::TraffickingType);
                let also = |v: &str| builtin && crate::source::is_builtin_code(v);
                if let Some(lines) = c.code_lines("code", &also) {
                    let _ = writeln!(out, "  codes of {} ({}):", c.header, g.role.key());
                    for l in lines {
                        let rows = if l.first_rows.is_empty() {
                            String::new()
                        } else {
                            format!(
                                " (first: row {})",
                                l.first_rows
                                    .iter()
                                    .map(u64::to_string)
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            )
                        };
                        let _ = writeln!(out, "    {:>8}  {}{rows}", l.rows, l.label);
                    }
                }
            }
        }
        for c in p.columns.iter().filter(|c| c.mojibake > 0) {
            let _ = writeln!(
                out,
                "  {}: {} cells look like mojibake (UTF-8 read as Windows-1252 upstream: JosÃ© for \
                 José); the draft sets repair_mojibake if a name column has them",
                c.header, c.mojibake
            );
        }
        for note in &self.guesses.notes {
            let _ = writeln!(out, "  note: {note}");
        }
        out
    }
}

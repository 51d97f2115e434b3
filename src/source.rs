//! Source mappings: one agency export's house style, and the extraction of typed fields from
//! its rows.
//!
//! A mapping (TOML, docs/formats.md) names the agency, the text encoding and delimiter, which
//! column holds which identifier, how one-cell names are laid out, the date formats of each date
//! column, and how the agency's own event, service, sex and trafficking codes map onto the
//! standard vocabulary ([`crate::vocab`]). [`Extractor`] applies a mapping to rows: it never fails
//! on a row; it reports per-field problems and row rejections as [`Issue`]s that name row, column
//! and field, never a value.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::Path;

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::normalize::{self, DatePattern, Identifiers, NameLayout, NameParts, Problem, Sex};
use crate::schema::Field;
use crate::vocab::{AgeBand, AgencyType, ServiceType, Stage, TraffickingType};

/// Text encodings an export may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum TextEncoding {
    /// UTF-8, with or without a byte-order mark.
    #[default]
    #[serde(rename = "utf-8")]
    Utf8,
    /// Windows-1252 (what older Windows software calls "ANSI").
    #[serde(rename = "windows-1252")]
    Windows1252,
}

/// What to do with a row whose event or service code the mapping does not list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnknownCodes {
    /// Stop with an error listing every unknown code and its count; nothing is written.
    #[default]
    Error,
    /// Reject those rows (rejects report) and list the codes with counts in the summary.
    Reject,
}

/// A column holding a one-cell full name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NameColumn {
    /// Column header.
    pub column: String,
    /// Layout of the cell.
    pub layout: NameLayout,
    /// Under `first_last`: how many trailing words (initials never count) form the family
    /// name, 1 (default) or 2 for exports that write two surnames
    /// ([`normalize::split_name_with`]).
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub family_words: u8,
}

fn one() -> u8 {
    1
}

fn is_one(n: &u8) -> bool {
    *n == 1
}

/// A column of aliases (AKA): each alias gives the record a second CLK.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AliasColumn {
    /// Column header.
    pub column: String,
    /// Layout of each alias (default `first_last`).
    #[serde(default = "default_alias_layout")]
    pub layout: NameLayout,
    /// Separator between several aliases in one cell (default `;`).
    #[serde(default = "default_alias_sep")]
    pub separator: String,
    /// As [`NameColumn::family_words`].
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub family_words: u8,
}

fn default_alias_layout() -> NameLayout {
    NameLayout::FirstLast
}
fn default_alias_sep() -> String {
    ";".into()
}
fn default_delimiter() -> String {
    ",".into()
}

/// A date column and the formats its cells may take (tried in order).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DateColumn {
    /// Column header.
    pub column: String,
    /// Date patterns such as `MM/DD/YYYY` ([`DatePattern`]).
    pub formats: Vec<String>,
}

/// The column(s) of the agency's record id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RecordId {
    /// One column.
    One(String),
    /// Several columns, in order; the local id is their values joined by U+001F (the unit
    /// separator, which no cell of an export holds).
    Composite(Vec<String>),
}

impl Default for RecordId {
    fn default() -> Self {
        RecordId::One(String::new())
    }
}

impl RecordId {
    /// The column names, in order.
    pub fn columns(&self) -> Vec<&str> {
        match self {
            RecordId::One(c) => vec![c.as_str()],
            RecordId::Composite(cs) => cs.iter().map(String::as_str).collect(),
        }
    }
}

/// Undoes mojibake: text whose UTF-8 bytes were read as Windows-1252 and written out again
/// (`JosÃ©` for `José`, `RodrÃ­guez`), at most twice over. `None` when `s` is not such text: a
/// string is repaired only if all of it maps back to Windows-1252 bytes that are valid UTF-8
/// and say something else, so a real `JOÃO` (whose bytes are not UTF-8) stays.
///
/// ```
/// use crosswalk::source::repair_mojibake;
/// assert_eq!(repair_mojibake("JosÃ©").as_deref(), Some("José"));
/// assert_eq!(repair_mojibake("JosÃƒÂ©").as_deref(), Some("José"));
/// assert_eq!(repair_mojibake("JOÃO"), None);
/// assert_eq!(repair_mojibake("José"), None);
/// ```
pub fn repair_mojibake(s: &str) -> Option<String> {
    let once = |t: &str| -> Option<String> {
        // Mojibake of UTF-8 starts with what its lead bytes look like in Windows-1252.
        if t.is_ascii() || !t.chars().any(|c| matches!(c, 'Â' | 'Ã' | 'Ä' | 'Å' | 'â')) {
            return None;
        }
        let (bytes, _, unmappable) = encoding_rs::WINDOWS_1252.encode(t);
        if unmappable {
            return None;
        }
        std::str::from_utf8(&bytes)
            .ok()
            .filter(|u| *u != t)
            .map(str::to_string)
    };
    let first = once(s)?;
    Some(once(&first).unwrap_or(first))
}

/// Separator of a composite record id's parts in the local id.
pub const RECORD_ID_SEPARATOR: char = '\u{1f}';

/// Which column holds what. Headers are matched exactly after trimming, ignoring case.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Columns {
    /// The agency's own record (or client) id: one column, or several whose values together
    /// identify a record (`["Dept", "Incident No"]`: incident numbers repeat across
    /// departments). Required.
    pub record_id: RecordId,
    /// Given name(s).
    pub given_name: Option<String>,
    /// Middle name(s) or initial.
    pub middle_name: Option<String>,
    /// Family name(s).
    pub family_name: Option<String>,
    /// A one-cell full name (instead of, or to fill gaps in, the separate name columns).
    pub full_name: Option<NameColumn>,
    /// Aliases / AKA.
    pub alias: Option<AliasColumn>,
    /// Date of birth.
    pub dob: Option<DateColumn>,
    /// Sex code.
    pub sex: Option<String>,
    /// Telephone.
    pub phone: Option<String>,
    /// Street address.
    pub street: Option<String>,
    /// Town or city.
    pub town: Option<String>,
    /// ZIP code.
    pub zip: Option<String>,
    /// SSN or its last four digits.
    pub ssn4: Option<String>,
    /// The agency's event code (mapped by `[event_codes]`).
    pub event_code: Option<String>,
    /// The agency's service code (mapped by `[service_codes]`).
    pub service_code: Option<String>,
    /// Event (or service start) date.
    pub event_date: Option<DateColumn>,
    /// Service end date.
    pub end_date: Option<DateColumn>,
    /// Unit, department or office.
    pub unit: Option<String>,
    /// Trafficking type code (mapped by `[trafficking_codes]` or the built-in reading).
    pub trafficking_type: Option<String>,
    /// Age at the event in years (used when the date of birth cannot give it).
    pub age: Option<String>,
    /// A minor flag (`Y`/`N`, `Yes`/`No`, `True`/`False`, `1`/`0`): the age band `<18` or `18+`
    /// when neither the date of birth nor an age column gives the age.
    pub minor: Option<String>,
}

/// What an event code means: a stage, optionally with a service type.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum CodeMeaning {
    /// Only a stage: `"CARELINE" = "identification"`.
    Stage(Stage),
    /// A stage and a service: `"HSG-EM" = { stage = "service_immediate", service = "housing" }`.
    Full {
        /// The journey stage.
        stage: Stage,
        /// The service type, for service events.
        #[serde(default)]
        service: Option<ServiceType>,
    },
}

impl CodeMeaning {
    fn parts(self) -> (Stage, Option<ServiceType>) {
        match self {
            CodeMeaning::Stage(s) => (s, None),
            CodeMeaning::Full { stage, service } => (stage, service),
        }
    }
}

/// What a service code means: a service type, optionally with a stage.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ServiceMeaning {
    /// Only a service type: `"MH" = "mental_health"` (stage from the event code, or
    /// `service_immediate` when there is no event code column).
    Service(ServiceType),
    /// A service type and its stage.
    Full {
        /// The service type.
        service: ServiceType,
        /// The stage, when the service code implies one.
        #[serde(default)]
        stage: Option<Stage>,
    },
}

/// One agency export's house style.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceMapping {
    /// Agency name as it appears in outputs, e.g. `dcf` or `hartford-police`.
    pub agency: String,
    /// Kind of agency.
    pub agency_type: AgencyType,
    /// Text encoding of the file.
    #[serde(default)]
    pub encoding: TextEncoding,
    /// Field delimiter: one ASCII character (`,`, `;`, `|`, or `\t`).
    #[serde(default = "default_delimiter")]
    pub delimiter: String,
    /// Policy for codes missing from the tables below.
    #[serde(default)]
    pub unknown_codes: UnknownCodes,
    /// Repair mojibake: text that was UTF-8, read as Windows-1252 and saved again upstream
    /// (`JosÃ©` for `José`) is turned back ([`repair_mojibake`]). Off by default.
    #[serde(default)]
    pub repair_mojibake: bool,
    /// Stage of every row when the export has no code column (e.g. a referral log).
    #[serde(default)]
    pub default_stage: Option<Stage>,
    /// Column assignments.
    pub columns: Columns,
    /// Sex codes beyond the built-in reading (`F`, `M`, `FEMALE`, ...).
    #[serde(default)]
    pub sex_codes: BTreeMap<String, Sex>,
    /// Event codes.
    #[serde(default)]
    pub event_codes: BTreeMap<String, CodeMeaning>,
    /// Service codes.
    #[serde(default)]
    pub service_codes: BTreeMap<String, ServiceMeaning>,
    /// Event codes on whose rows the service code applies. Empty: every row's. For a column
    /// that holds a matter or program type on every row (also on intake and referral rows),
    /// list the event codes of the service rows; on the other rows the service code is ignored.
    #[serde(default)]
    pub service_code_applies_to: Vec<String>,
    /// Trafficking-type codes beyond the built-in reading.
    #[serde(default)]
    pub trafficking_codes: BTreeMap<String, TraffickingType>,
}

impl SourceMapping {
    /// Reads and validates a mapping file.
    pub fn from_file(path: &Path) -> Result<SourceMapping> {
        let text = crate::schema::read_config(path)?;
        SourceMapping::from_toml(&text, path)
    }

    /// Parses and validates mapping TOML; `origin` names the file in errors.
    pub fn from_toml(text: &str, origin: &Path) -> Result<SourceMapping> {
        let m: SourceMapping = toml::from_str(text)
            .map_err(|e| Error::config(origin, crate::schema::toml_message(&e)))?;
        m.validate().map_err(|msg| Error::config(origin, msg))?;
        Ok(m)
    }

    /// The delimiter as a byte.
    pub fn delimiter_byte(&self) -> u8 {
        match self.delimiter.as_str() {
            "\\t" | "tab" => b'\t',
            d => d.as_bytes().first().copied().unwrap_or(b','),
        }
    }

    fn validate(&self) -> std::result::Result<(), String> {
        if self.agency.trim().is_empty() {
            return Err("agency must not be empty".into());
        }
        let ids = self.columns.record_id.columns();
        if ids.is_empty() || ids.len() > 8 || ids.iter().any(|c| c.trim().is_empty()) {
            return Err(
                "columns.record_id must name one column, or a list of one to eight columns".into(),
            );
        }
        for (i, a) in ids.iter().enumerate() {
            if ids[..i]
                .iter()
                .any(|b| b.trim().to_lowercase() == a.trim().to_lowercase())
            {
                return Err(format!("columns.record_id names {a:?} twice"));
            }
        }
        let d = self.delimiter.as_str();
        if !(d.len() == 1 && d.is_ascii() || d == "\\t" || d == "tab") {
            return Err(format!(
                "delimiter {d:?}: must be one ASCII character (or \"tab\")"
            ));
        }
        let c = &self.columns;
        let has_name = c.given_name.is_some() || c.family_name.is_some() || c.full_name.is_some();
        if !has_name && c.dob.is_none() {
            return Err(
                "columns: map at least a name (given_name, family_name or full_name) or dob".into(),
            );
        }
        for dc in [&c.dob, &c.event_date, &c.end_date].into_iter().flatten() {
            if dc.formats.is_empty() {
                return Err(format!(
                    "column {:?}: list at least one date format",
                    dc.column
                ));
            }
            for f in &dc.formats {
                f.parse::<DatePattern>()?;
            }
        }
        let words = [
            c.full_name.as_ref().map(|n| n.family_words),
            c.alias.as_ref().map(|a| a.family_words),
        ];
        if words.into_iter().flatten().any(|w| !(1..=2).contains(&w)) {
            return Err("family_words must be 1 or 2".into());
        }
        if c.alias.as_ref().is_some_and(|a| a.separator.is_empty()) {
            return Err("columns.alias.separator must not be empty".into());
        }
        if self.agency.trim() != self.agency {
            return Err("agency must not start or end with spaces".into());
        }
        if c.event_code.is_none() && c.service_code.is_none() && self.default_stage.is_none() {
            return Err("map an event_code or service_code column, or set default_stage".into());
        }
        if c.event_code.is_some() && self.event_codes.is_empty() {
            return Err("columns.event_code is mapped but [event_codes] is empty".into());
        }
        if c.service_code.is_some() && self.service_codes.is_empty() {
            return Err("columns.service_code is mapped but [service_codes] is empty".into());
        }
        if !self.service_code_applies_to.is_empty() {
            if c.service_code.is_none() || c.event_code.is_none() {
                return Err("service_code_applies_to needs both columns.event_code and \
                            columns.service_code"
                    .into());
            }
            let known: Vec<String> = self.event_codes.keys().map(|k| fold_code(k)).collect();
            for code in &self.service_code_applies_to {
                if !known.contains(&fold_code(code)) {
                    return Err(format!(
                        "service_code_applies_to lists {code:?}, which is not in [event_codes]"
                    ));
                }
            }
        }
        Ok(())
    }
}

/// The non-identifying facts of one event, as written to the encoding file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventFacts {
    /// Unit or department.
    pub unit: Option<String>,
    /// Journey stage (administrative events have `Stage::Administrative`).
    pub stage: Option<Stage>,
    /// Service type of service events.
    pub service_type: Option<ServiceType>,
    /// Event or service start date.
    pub event_date: Option<NaiveDate>,
    /// Service end date.
    pub end_date: Option<NaiveDate>,
    /// Age band at the event.
    pub age_band: AgeBand,
    /// Sex.
    pub sex: Sex,
    /// Trafficking type.
    pub trafficking_type: TraffickingType,
}

/// A problem found in one row: where it is and what it is, never the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// Logical field (`dob`, `event_code`, `row`, ...).
    pub field: &'static str,
    /// The column involved (header text), empty for row-level issues.
    pub column: String,
    /// What is wrong.
    pub reason: String,
    /// Whether the whole row was rejected (otherwise only the field was dropped).
    pub row_rejected: bool,
}

/// An unknown code met in a row: its column and its value, trimmed and upper-cased as codes
/// are matched. The value stays in memory: messages show it only through
/// [`crate::redact::code_label`] ([`UnknownCodeTally`]), and `Debug` never prints it.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UnknownCode {
    /// `event_code`, `service_code`, `sex` or `trafficking_type`.
    pub column_kind: &'static str,
    /// The value, folded.
    value: String,
    /// For a code the mapping does not list but crosswalk's built-in table reads: what it was
    /// read as (`other`, `labor`); empty for an unknown code.
    pub reading: &'static str,
}

impl UnknownCode {
    /// An unknown `column_kind` code with cell text `raw`.
    pub fn new(column_kind: &'static str, raw: &str) -> UnknownCode {
        UnknownCode {
            column_kind,
            value: fold_code(raw),
            reading: "",
        }
    }

    /// A `column_kind` code with cell text `raw` that the mapping does not list and the
    /// built-in table read as `reading`.
    pub fn read_as(column_kind: &'static str, raw: &str, reading: &'static str) -> UnknownCode {
        UnknownCode {
            column_kind,
            value: fold_code(raw),
            reading,
        }
    }
}

impl std::fmt::Debug for UnknownCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnknownCode")
            .field("column_kind", &self.column_kind)
            .field("shape", &crate::redact::shape(&self.value))
            .field("reading", &self.reading)
            .finish()
    }
}

/// Unknown codes met while reading an export, counted by value with the rows that hold them.
/// [`UnknownCodeTally::lines`] turns them into what may be shown.
#[derive(Debug, Default)]
pub struct UnknownCodeTally {
    by_value: BTreeMap<UnknownCode, (u64, Vec<u64>)>,
}

/// Rows listed per unknown value that cannot be quoted.
const ROWS_LISTED: usize = 5;

/// One line of the unknown-codes summary: a code (or a shape) and the rows that hold it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownCodeLine {
    /// `event_code`, `service_code`, `sex` or `trafficking_type`.
    pub column_kind: &'static str,
    /// What the built-in table read the code as; empty for an unknown code.
    pub reading: &'static str,
    /// The code, or `a value shaped 99/99/9999` ([`crate::redact::code_label`]).
    pub label: String,
    /// Rows holding it.
    pub rows: u64,
    /// The first rows holding it (data row numbers), listed when the value is not quoted so
    /// that the agency can look it up in its own file.
    pub first_rows: Vec<u64>,
}

impl std::fmt::Display for UnknownCodeLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.column_kind, self.label)?;
        if !self.reading.is_empty() {
            write!(f, " read as {}", self.reading)?;
        }
        write!(f, " ({} rows", self.rows)?;
        if !self.first_rows.is_empty() {
            let list: Vec<String> = self.first_rows.iter().map(u64::to_string).collect();
            let more = self.rows - self.first_rows.len() as u64;
            write!(f, ": row {}", list.join(", "))?;
            if more > 0 {
                write!(f, " and {more} more")?;
            }
        }
        write!(f, ")")
    }
}

impl UnknownCodeTally {
    /// Counts `code`, met in data row `row`.
    pub fn add(&mut self, code: &UnknownCode, row: u64) {
        // A code met before (the common case: a built-in reading on every row) is counted
        // without a copy of its value.
        let e = match self.by_value.get_mut(code) {
            Some(e) => e,
            None => self.by_value.entry(code.clone()).or_default(),
        };
        e.0 += 1;
        if e.1.len() < ROWS_LISTED {
            e.1.push(row);
        }
    }

    /// Distinct codes counted.
    pub fn len(&self) -> usize {
        self.by_value.len()
    }

    /// Whether no unknown code was met.
    pub fn is_empty(&self) -> bool {
        self.by_value.is_empty()
    }

    /// The summary: quotable codes one line each; the rest grouped by column and shape, with
    /// their first rows. Ordered by column, then label.
    pub fn lines(&self) -> Vec<UnknownCodeLine> {
        self.lines_quoting(&|_| false)
    }

    /// As [`UnknownCodeTally::lines`], quoting also the codes for which `also` holds: the
    /// entries of a fixed public table (what crosswalk's built-in readings read), which tell
    /// nothing about a person.
    pub fn lines_quoting(&self, also: &dyn Fn(&str) -> bool) -> Vec<UnknownCodeLine> {
        type Key = (&'static str, String, &'static str);
        let mut out: BTreeMap<Key, (u64, Vec<u64>, bool)> = BTreeMap::new();
        for (code, (n, rows)) in &self.by_value {
            let listed = also(&code.value);
            let quoted = listed || crate::redact::code_is_quotable(&code.value, *n);
            let label = if listed {
                code.value.clone()
            } else {
                crate::redact::code_label(&code.value, *n)
            };
            let e = out
                .entry((code.column_kind, label, code.reading))
                .or_default();
            e.0 += n;
            e.2 = quoted;
            e.1.extend(rows);
        }
        out.into_iter()
            .map(
                |((column_kind, label, reading), (rows, mut first, quoted))| {
                    first.sort_unstable();
                    first.truncate(if quoted { 0 } else { ROWS_LISTED });
                    UnknownCodeLine {
                        column_kind,
                        reading,
                        label,
                        rows,
                        first_rows: first,
                    }
                },
            )
            .collect()
    }
}

/// Whether a code is read by a built-in table (sex or trafficking type): a value of a fixed
/// public list, quoted in summaries whatever its count.
pub fn is_builtin_code(value: &str) -> bool {
    let folded = normalize::fold(value);
    !folded.is_empty()
        && (Sex::from_common_code(&folded).is_some()
            || TraffickingType::from_common_code(&folded).is_some())
}

/// One extracted row.
#[derive(Debug, Clone)]
pub struct Extracted {
    /// The agency's own id (absent only in rejected rows).
    pub local_id: String,
    /// Normalised identifiers.
    pub ids: Identifiers,
    /// Normalised alias names.
    pub aliases: Vec<NameParts>,
    /// Event facts.
    pub facts: EventFacts,
    /// Problems found (field-level, or one row-level rejection).
    pub issues: Vec<Issue>,
    /// Unknown codes found in this row.
    pub unknown_codes: Vec<UnknownCode>,
    /// Codes the mapping does not list that crosswalk's built-in tables read (sex `X` as
    /// `other`, trafficking type `LAB` as `labor`), counted so the operator sees them.
    pub builtin_readings: Vec<UnknownCode>,
    /// Whether the row is rejected (not encoded).
    pub rejected: bool,
}

fn fold_code(raw: &str) -> String {
    raw.trim().to_uppercase()
}

/// A mapping resolved against a file's header: column indices, parsed date patterns, code tables.
#[derive(Debug)]
pub struct Extractor {
    encoding: TextEncoding,
    repair_mojibake: bool,
    idx: ColumnIdx,
    headers: Vec<String>,
    dob_formats: Vec<DatePattern>,
    event_formats: Vec<DatePattern>,
    end_formats: Vec<DatePattern>,
    alias_layout: NameLayout,
    alias_sep: String,
    alias_family_words: u8,
    full_layout: NameLayout,
    full_family_words: u8,
    sex_codes: BTreeMap<String, Sex>,
    event_codes: BTreeMap<String, (Stage, Option<ServiceType>)>,
    service_codes: BTreeMap<String, (ServiceType, Option<Stage>)>,
    trafficking_codes: BTreeMap<String, TraffickingType>,
    default_stage: Option<Stage>,
    /// Folded event codes on whose rows the service code applies (`None`: every row's).
    service_applies: Option<Vec<String>>,
    today: NaiveDate,
    width: usize,
}

#[derive(Debug, Default)]
struct ColumnIdx {
    record_id: usize,
    /// The further columns of a composite record id.
    record_id_more: Vec<usize>,
    given: Option<usize>,
    middle: Option<usize>,
    family: Option<usize>,
    full: Option<usize>,
    alias: Option<usize>,
    dob: Option<usize>,
    sex: Option<usize>,
    phone: Option<usize>,
    street: Option<usize>,
    town: Option<usize>,
    zip: Option<usize>,
    ssn4: Option<usize>,
    event_code: Option<usize>,
    service_code: Option<usize>,
    event_date: Option<usize>,
    end_date: Option<usize>,
    unit: Option<usize>,
    trafficking: Option<usize>,
    age: Option<usize>,
    minor: Option<usize>,
}

impl Extractor {
    /// Resolves `mapping` against `headers`. A mapped column missing from the header is an
    /// error that names the closest header (headers are not identifiers).
    pub fn new(
        mapping: &SourceMapping,
        headers: &[String],
        today: NaiveDate,
        file: &Path,
    ) -> Result<Extractor> {
        let folded: Vec<String> = headers.iter().map(|h| h.trim().to_lowercase()).collect();
        // Suggestions quote header cells, so only from a row that is plainly a header: in an
        // export without one, the first row holds a person's name and birth date.
        let plain = header_is_plain(headers);
        let mut missing: Vec<String> = Vec::new();
        let mut found_any = false;
        let mut twice = Vec::new();
        let mut find = |name: &str| -> Option<usize> {
            let want = name.trim().to_lowercase();
            let all: Vec<usize> = (0..folded.len()).filter(|&i| folded[i] == want).collect();
            if all.len() > 1 {
                let cols: Vec<String> = all.iter().map(|i| (i + 1).to_string()).collect();
                twice.push(format!("{name:?} (columns {})", cols.join(", ")));
            }
            found_any |= !all.is_empty();
            if all.is_empty() {
                missing.push(name.to_string());
            }
            all.first().copied()
        };
        let c = &mapping.columns;
        let mut opt = |col: &Option<String>| col.as_deref().and_then(&mut find);
        let idx = ColumnIdx {
            record_id: 0,
            record_id_more: Vec::new(),
            given: opt(&c.given_name),
            middle: opt(&c.middle_name),
            family: opt(&c.family_name),
            full: opt(&c.full_name.as_ref().map(|n| n.column.clone())),
            alias: opt(&c.alias.as_ref().map(|n| n.column.clone())),
            dob: opt(&c.dob.as_ref().map(|d| d.column.clone())),
            sex: opt(&c.sex),
            phone: opt(&c.phone),
            street: opt(&c.street),
            town: opt(&c.town),
            zip: opt(&c.zip),
            ssn4: opt(&c.ssn4),
            event_code: opt(&c.event_code),
            service_code: opt(&c.service_code),
            event_date: opt(&c.event_date.as_ref().map(|d| d.column.clone())),
            end_date: opt(&c.end_date.as_ref().map(|d| d.column.clone())),
            unit: opt(&c.unit),
            trafficking: opt(&c.trafficking_type),
            age: opt(&c.age),
            minor: opt(&c.minor),
        };
        let id_columns = c.record_id.columns();
        let Some(first_id) = id_columns.first() else {
            return Err(Error::config(file, "columns.record_id names no column"));
        };
        let record_id = find(first_id);
        let record_id_more: Vec<Option<usize>> =
            id_columns[1..].iter().map(|name| find(name)).collect();
        if !twice.is_empty() {
            return Err(Error::input(
                file,
                format!(
                    "the header has mapped column(s) more than once: {}; crosswalk cannot tell \
                     which one the mapping means. Rename the columns apart in the export",
                    twice.join(", ")
                ),
            ));
        }
        // Suggestions quote header cells, so only from a row that is plainly a header (no
        // cell shaped like data) and proves to be one (some mapped column is in it): in an
        // export without a header, the first row holds a person's name and birth date.
        let suggest = plain && found_any;
        let missing: Vec<String> = missing
            .iter()
            .map(|name| {
                let want = name.trim().to_lowercase();
                let best = folded
                    .iter()
                    .zip(headers)
                    .map(|(h, orig)| (strsim::normalized_damerau_levenshtein(h, &want), orig))
                    .filter(|(score, _)| suggest && *score >= 0.6)
                    .max_by(|a, b| a.0.total_cmp(&b.0));
                match best {
                    Some((_, orig)) => format!("{name:?} (did you mean {:?}?)", orig.trim()),
                    None => format!("{name:?}"),
                }
            })
            .collect();
        if !missing.is_empty() {
            return Err(Error::input(
                file,
                format!(
                    "the header lacks mapped column(s) {}; the file has {} columns. {}",
                    missing.join(", "),
                    headers.len(),
                    if suggest {
                        "Fix the [columns] table of the source mapping or the export."
                    } else {
                        "Its first row does not look like a header (it holds numbers, dates or \
                         addresses, or none of the mapped columns): the export may lack a \
                         header row; add one, or export it again with column names."
                    }
                ),
            ));
        }
        let parse = |dc: &Option<DateColumn>| -> Vec<DatePattern> {
            dc.as_ref()
                .map(|d| d.formats.iter().filter_map(|f| f.parse().ok()).collect())
                .unwrap_or_default()
        };
        Ok(Extractor {
            encoding: mapping.encoding,
            repair_mojibake: mapping.repair_mojibake,
            idx: ColumnIdx {
                record_id: record_id.unwrap_or(0),
                record_id_more: record_id_more.into_iter().flatten().collect(),
                ..idx
            },
            headers: headers.iter().map(|h| h.trim().to_string()).collect(),
            dob_formats: parse(&c.dob),
            event_formats: parse(&c.event_date),
            end_formats: parse(&c.end_date),
            alias_layout: c.alias.as_ref().map_or(NameLayout::FirstLast, |a| a.layout),
            alias_sep: c.alias.as_ref().map_or(";".into(), |a| a.separator.clone()),
            alias_family_words: c.alias.as_ref().map_or(1, |a| a.family_words),
            full_family_words: c.full_name.as_ref().map_or(1, |a| a.family_words),
            full_layout: c
                .full_name
                .as_ref()
                .map_or(NameLayout::FirstLast, |a| a.layout),
            sex_codes: mapping
                .sex_codes
                .iter()
                .map(|(k, v)| (fold_code(k), *v))
                .collect(),
            event_codes: mapping
                .event_codes
                .iter()
                .map(|(k, v)| (fold_code(k), v.parts()))
                .collect(),
            service_codes: mapping
                .service_codes
                .iter()
                .map(|(k, v)| {
                    let parts = match *v {
                        ServiceMeaning::Service(s) => (s, None),
                        ServiceMeaning::Full { service, stage } => (service, stage),
                    };
                    (fold_code(k), parts)
                })
                .collect(),
            trafficking_codes: mapping
                .trafficking_codes
                .iter()
                .map(|(k, v)| (fold_code(k), *v))
                .collect(),
            default_stage: mapping.default_stage,
            service_applies: (!mapping.service_code_applies_to.is_empty()).then(|| {
                mapping
                    .service_code_applies_to
                    .iter()
                    .map(|c| fold_code(c))
                    .collect()
            }),
            today,
            width: headers.len(),
        })
    }

    /// Indices of the columns the mapping uses.
    pub fn used_columns(&self) -> Vec<usize> {
        let i = &self.idx;
        let mut v: Vec<usize> = [
            i.given,
            i.middle,
            i.family,
            i.full,
            i.alias,
            i.dob,
            i.sex,
            i.phone,
            i.street,
            i.town,
            i.zip,
            i.ssn4,
            i.event_code,
            i.service_code,
            i.event_date,
            i.end_date,
            i.unit,
            i.trafficking,
            i.age,
            i.minor,
        ]
        .into_iter()
        .flatten()
        .collect();
        v.push(i.record_id);
        v.extend(&i.record_id_more);
        v
    }

    /// Each mapped field with its column index, in mapping order (`record_id` once per part;
    /// `ssn4` and `event_code` under those names): what [`Issue::field`] names.
    pub fn field_columns(&self) -> Vec<(&'static str, usize)> {
        let i = &self.idx;
        let mut v = vec![("record_id", i.record_id)];
        v.extend(i.record_id_more.iter().map(|&c| ("record_id", c)));
        let rest = [
            ("given_name", i.given),
            ("middle_name", i.middle),
            ("family_name", i.family),
            ("full_name", i.full),
            ("alias", i.alias),
            ("dob", i.dob),
            ("sex", i.sex),
            ("phone", i.phone),
            ("street", i.street),
            ("town", i.town),
            ("zip", i.zip),
            ("ssn4", i.ssn4),
            ("event_code", i.event_code),
            ("service_code", i.service_code),
            ("event_date", i.event_date),
            ("end_date", i.end_date),
            ("unit", i.unit),
            ("trafficking_type", i.trafficking),
            ("age", i.age),
            ("minor", i.minor),
        ];
        v.extend(rest.into_iter().filter_map(|(f, c)| c.map(|c| (f, c))));
        v
    }

    /// Number of columns the header declares.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Extracts one row (`cells` as raw bytes). Never fails: problems become [`Issue`]s.
    pub fn extract(&self, cells: &[&[u8]]) -> Extracted {
        let mut out = Extracted {
            local_id: String::new(),
            ids: Identifiers::default(),
            aliases: Vec::new(),
            facts: EventFacts {
                unit: None,
                stage: None,
                service_type: None,
                event_date: None,
                end_date: None,
                age_band: AgeBand::Unknown,
                sex: Sex::Unknown,
                trafficking_type: TraffickingType::Unknown,
            },
            issues: Vec::new(),
            unknown_codes: Vec::new(),
            builtin_readings: Vec::new(),
            rejected: false,
        };
        if cells.len() != self.width {
            out.reject(
                "row",
                String::new(),
                format!(
                    "ragged row: {} fields where the header has {}",
                    cells.len(),
                    self.width
                ),
            );
            return out;
        }
        // Record id: one column, or the parts of a composite id joined.
        for (n, &i) in std::iter::once(&self.idx.record_id)
            .chain(&self.idx.record_id_more)
            .enumerate()
        {
            match self.text(cells, Some(i)) {
                // A part holding the separator would let two different ids join alike.
                Ok(Some(id)) if id.contains(RECORD_ID_SEPARATOR) => {
                    out.local_id.clear();
                    out.reject(
                        "record_id",
                        self.col(i),
                        "record id holds a control character (U+001F)".into(),
                    );
                    return out;
                }
                Ok(Some(id)) if !id.trim().is_empty() && id.len() <= normalize::MAX_CELL_BYTES => {
                    if n > 0 {
                        out.local_id.push(RECORD_ID_SEPARATOR);
                    }
                    out.local_id.push_str(id.trim());
                }
                Ok(_) => {
                    out.local_id.clear();
                    out.reject("record_id", self.col(i), "missing record id".into());
                    return out;
                }
                Err(p) => {
                    out.local_id.clear();
                    out.reject("record_id", self.col(i), p.describe().into());
                    return out;
                }
            }
        }
        self.names(cells, &mut out);
        let dob = self.identifiers(cells, &mut out);
        self.facts(cells, &mut out, dob);
        let identifying = [
            Field::GivenName,
            Field::FamilyName,
            Field::Dob,
            Field::Phone,
            Field::Ssn4,
        ];
        // Birth years of an age are no identifier on their own: two year tokens match strangers.
        let usable = |f: &Field| match out.ids.get(*f) {
            Some(v) => !normalize::is_birth_years(v),
            None => false,
        };
        if !out.rejected && !identifying.iter().any(usable) {
            out.reject(
                "row",
                String::new(),
                "no usable identifier: no name, date of birth, phone or SSN (sex, town, ZIP and \
                 street alone would match strangers)"
                    .into(),
            );
        }
        if !out.unknown_codes.is_empty() {
            out.rejected = true;
        }
        out
    }

    fn col(&self, i: usize) -> String {
        self.headers.get(i).cloned().unwrap_or_default()
    }

    /// Decodes cell `i` (None when the column is not mapped).
    fn text<'a>(
        &self,
        cells: &[&'a [u8]],
        i: Option<usize>,
    ) -> std::result::Result<Option<Cow<'a, str>>, Problem> {
        let Some(i) = i else { return Ok(None) };
        let raw = cells.get(i).copied().unwrap_or(b"");
        if raw.len() > normalize::MAX_CELL_BYTES {
            return Err(Problem::TooLong);
        }
        let s = match self.encoding {
            TextEncoding::Utf8 => {
                Cow::Borrowed(std::str::from_utf8(raw).map_err(|_| Problem::Undecodable)?)
            }
            TextEncoding::Windows1252 => {
                encoding_rs::WINDOWS_1252.decode_without_bom_handling(raw).0
            }
        };
        if self.repair_mojibake {
            if let Some(fixed) = repair_mojibake(&s) {
                return Ok(Some(Cow::Owned(fixed)));
            }
        }
        Ok(Some(s))
    }

    /// Runs `f` on cell `i`; records a field issue on failure.
    fn field<T>(
        &self,
        cells: &[&[u8]],
        i: Option<usize>,
        field: &'static str,
        out: &mut Extracted,
        f: impl FnOnce(&str) -> normalize::Norm<T>,
    ) -> Option<T> {
        let idx = i?;
        let result = self.text(cells, i).and_then(|t| match t {
            Some(t) => f(&t),
            None => Ok(None),
        });
        match result {
            Ok(v) => v,
            Err(p) => {
                out.issues.push(Issue {
                    field,
                    column: self.col(idx),
                    reason: p.describe().into(),
                    row_rejected: false,
                });
                None
            }
        }
    }

    fn names(&self, cells: &[&[u8]], out: &mut Extracted) {
        let mut parts = NameParts {
            given: self.field(cells, self.idx.given, "given_name", out, normalize::name),
            middle: self.field(cells, self.idx.middle, "middle_name", out, normalize::name),
            family: self.field(cells, self.idx.family, "family_name", out, normalize::name),
        };
        if self.idx.full.is_some() {
            let (layout, words) = (self.full_layout, self.full_family_words);
            let full = self.field(cells, self.idx.full, "full_name", out, |t| {
                normalize::split_name_with(t, layout, words).map(Some)
            });
            if let Some(full) = full {
                // Separate columns win; the one-cell name fills the gaps.
                parts.given = parts.given.or(full.given);
                parts.middle = parts.middle.or(full.middle);
                parts.family = parts.family.or(full.family);
            }
        }
        parts.drop_placeholders();
        out.ids.set_names(&parts);
        if self.idx.alias.is_some() {
            let (layout, sep) = (self.alias_layout, self.alias_sep.as_str());
            let aliases = self.field(cells, self.idx.alias, "alias", out, |t| {
                let mut v = Vec::new();
                for one in t.split(sep) {
                    let p = normalize::split_name_with(one, layout, self.alias_family_words)?;
                    if !p.is_empty() {
                        v.push(p);
                    }
                }
                Ok(Some(v))
            });
            out.aliases = aliases.unwrap_or_default();
        }
    }

    /// Fills the non-name identifiers; returns the parsed date of birth for the age band.
    fn identifiers(&self, cells: &[&[u8]], out: &mut Extracted) -> Option<NaiveDate> {
        let today = self.today;
        let dob = self.field(cells, self.idx.dob, "dob", out, |t| {
            normalize::date(t, &self.dob_formats, today)
        });
        out.ids.set(Field::Dob, dob.map(normalize::date_key));
        let builtin = std::cell::RefCell::new(None);
        let sex = self.field(cells, self.idx.sex, "sex", out, |t| {
            let folded = normalize::fold(t);
            if let Some(&s) = self.sex_codes.get(&fold_code(t)) {
                return Ok(Some(s));
            }
            if normalize::is_missing_marker(&folded) {
                return Ok(Some(Sex::Unknown));
            }
            let s = Sex::from_common_code(&folded).ok_or(Problem::UnknownSexCode)?;
            *builtin.borrow_mut() = Some(UnknownCode::read_as("sex", t, s.label()));
            Ok(Some(s))
        });
        out.builtin_readings.extend(builtin.take());
        let sex = sex.unwrap_or(Sex::Unknown);
        out.facts.sex = sex;
        out.ids.set(Field::Sex, sex.token().map(String::from));
        let phone = self.field(cells, self.idx.phone, "phone", out, normalize::phone);
        out.ids.set(Field::Phone, phone);
        let street = self.field(cells, self.idx.street, "street", out, normalize::street);
        out.ids.set(Field::Street, street);
        let town = self.field(cells, self.idx.town, "town", out, normalize::town);
        out.ids.set(Field::Town, town);
        let zip = self.field(cells, self.idx.zip, "zip", out, normalize::zip);
        out.ids.set(Field::Zip, zip);
        let ssn = self.field(cells, self.idx.ssn4, "ssn4", out, normalize::ssn4);
        out.ids.set(Field::Ssn4, ssn);
        dob
    }

    fn facts(&self, cells: &[&[u8]], out: &mut Extracted, dob: Option<NaiveDate>) {
        let today = self.today;
        out.facts.event_date = self.field(cells, self.idx.event_date, "event_date", out, |t| {
            normalize::date(t, &self.event_formats, today)
        });
        // A planned end date may lie after today: only the 1900 floor applies.
        out.facts.end_date = self.field(cells, self.idx.end_date, "end_date", out, |t| {
            normalize::date(t, &self.end_formats, NaiveDate::MAX)
        });
        if let (Some(s), Some(e)) = (out.facts.event_date, out.facts.end_date) {
            if e < s {
                out.issues.push(Issue {
                    field: "end_date",
                    column: self.idx.end_date.map(|i| self.col(i)).unwrap_or_default(),
                    reason: "end date before event date".into(),
                    row_rejected: false,
                });
                out.facts.end_date = None;
            }
        }
        out.facts.unit = self.field(cells, self.idx.unit, "unit", out, |t| {
            let t = t.trim();
            Ok((!t.is_empty()).then(|| t.to_string()))
        });
        // Age band: from DOB and event date, else the age column.
        let age_col = self.field(cells, self.idx.age, "age", out, |t| {
            let t = t.trim();
            if t.is_empty() {
                return Ok(None);
            }
            match t.parse::<f64>() {
                Ok(a) if (0.0..=120.0).contains(&a) => Ok(Some(a.floor() as u32)),
                _ => Err(Problem::BadNumber),
            }
        });
        let minor = self.field(
            cells,
            self.idx.minor,
            "minor",
            out,
            |t| match normalize::fold(t).as_str() {
                "" => Ok(None),
                "Y" | "YES" | "TRUE" | "T" | "1" | "MINOR" => Ok(Some(true)),
                "N" | "NO" | "FALSE" | "F" | "0" | "ADULT" => Ok(Some(false)),
                m if normalize::is_missing_marker(m) => Ok(None),
                _ => Err(Problem::BadFlag),
            },
        );
        out.facts.age_band = match (dob, out.facts.event_date, age_col, minor) {
            (Some(b), Some(e), _, _) if e >= b => AgeBand::from_age(years_between(b, e)),
            (_, _, Some(a), _) => AgeBand::from_age(a),
            (_, _, _, Some(true)) => AgeBand::Minor,
            (_, _, _, Some(false)) => AgeBand::Adult,
            _ => AgeBand::Unknown,
        };
        // Without a birth date, an age at a known event date still says which two years the
        // person was born in: the birth-date field carries those years
        // ([`normalize::birth_years`]), so the match model can weigh them (docs/linkage.md).
        if let (None, Some(e), Some(a)) = (dob, out.facts.event_date, age_col) {
            out.ids.set(Field::Dob, normalize::birth_years(e, a));
        }
        let builtin = std::cell::RefCell::new(None);
        out.facts.trafficking_type = self
            .field(cells, self.idx.trafficking, "trafficking_type", out, |t| {
                if let Some(&tt) = self.trafficking_codes.get(&fold_code(t)) {
                    return Ok(Some(tt));
                }
                let folded = normalize::fold(t);
                if normalize::is_missing_marker(&folded) {
                    return Ok(Some(TraffickingType::Unknown));
                }
                let tt = TraffickingType::from_common_code(&folded).ok_or(Problem::UnlistedCode)?;
                *builtin.borrow_mut() =
                    Some(UnknownCode::read_as("trafficking_type", t, tt.label()));
                Ok(Some(tt))
            })
            .unwrap_or(TraffickingType::Unknown);
        out.builtin_readings.extend(builtin.take());
        // Stage and service.
        let mut stage = self.default_stage;
        let mut service = None;
        let mut service_applies = self.service_applies.is_none();
        if let Some(i) = self.idx.event_code {
            match self.text(cells, Some(i)) {
                Ok(Some(t)) => match self.event_codes.get(&fold_code(&t)) {
                    Some(&(st, sv)) => {
                        stage = Some(st);
                        service = sv;
                        service_applies |= self
                            .service_applies
                            .as_ref()
                            .is_some_and(|list| list.contains(&fold_code(&t)));
                    }
                    None => out.unknown_codes.push(UnknownCode::new("event_code", &t)),
                },
                Ok(None) => {}
                Err(p) => out.reject("event_code", self.col(i), p.describe().into()),
            }
        }
        if let Some(i) = self.idx.service_code.filter(|_| service_applies) {
            match self.text(cells, Some(i)) {
                Ok(Some(t)) if t.trim().is_empty() => {}
                Ok(Some(t)) => match self.service_codes.get(&fold_code(&t)) {
                    Some(&(sv, st)) => {
                        service = Some(sv);
                        if let Some(st) = st {
                            stage = Some(st);
                        } else if stage.is_none() {
                            stage = Some(Stage::ServiceImmediate);
                        }
                    }
                    None => out.unknown_codes.push(UnknownCode::new("service_code", &t)),
                },
                Ok(None) => {}
                Err(p) => out.reject("service_code", self.col(i), p.describe().into()),
            }
        }
        out.facts.stage = stage;
        out.facts.service_type = service;
    }
}

impl Extracted {
    fn reject(&mut self, field: &'static str, column: String, reason: String) {
        self.rejected = true;
        self.issues.push(Issue {
            field,
            column,
            reason,
            row_rejected: true,
        });
    }
}

/// Whether a header row is plainly column names, so that its cells may be quoted (with at
/// least one mapped column found in it, [`Extractor::new`]): no cell is
/// made of digits, holds more than two digits (a date, phone, id or ZIP), or an `@`, and none
/// is longer than 64 characters. "Address Line 2" passes; "2009-03-07" and "1047" do not.
pub fn header_is_plain(headers: &[String]) -> bool {
    headers.iter().all(|h| {
        let h = h.trim();
        let digits = h.chars().filter(char::is_ascii_digit).count();
        h.chars().count() <= 64
            && digits <= 2
            && !(digits > 0 && digits == h.chars().filter(|c| !c.is_whitespace()).count())
            && !h.contains('@')
    })
}

/// Completed years from `birth` to `at`.
pub fn years_between(birth: NaiveDate, at: NaiveDate) -> u32 {
    let mut years = at.year() - birth.year();
    if (at.month(), at.day()) < (birth.month(), birth.day()) {
        years -= 1;
    }
    years.max(0) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAPPING: &str = r#"
agency = "dcf"
agency_type = "child_welfare"
[columns]
record_id = "Case ID"
full_name = { column = "Child Name", layout = "last_comma_first" }
alias = { column = "AKA" }
dob = { column = "DOB", formats = ["MM/DD/YYYY"] }
sex = "Gender"
event_code = "Event"
event_date = { column = "Date", formats = ["YYYY-MM-DD"] }
[event_codes]
CARELINE = "identification"
"HSG" = { stage = "service_immediate", service = "housing" }
"#;

    fn ex() -> Extractor {
        extractor(
            MAPPING,
            &[
                "Case ID",
                "Child Name",
                "AKA",
                "DOB",
                "Gender",
                "Event",
                "Date",
            ],
        )
    }

    fn row(cells: &[&str]) -> Extracted {
        extract(&ex(), cells)
    }

    fn extractor(mapping: &str, headers: &[&str]) -> Extractor {
        let m = SourceMapping::from_toml(mapping, Path::new("m.toml")).unwrap();
        let headers: Vec<String> = headers.iter().map(|s| s.to_string()).collect();
        Extractor::new(
            &m,
            &headers,
            NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
            Path::new("x.csv"),
        )
        .unwrap()
    }

    fn extract(ex: &Extractor, cells: &[&str]) -> Extracted {
        let bytes: Vec<&[u8]> = cells.iter().map(|c| c.as_bytes()).collect();
        ex.extract(&bytes)
    }

    /// Issue #21: a matter-type column filled on every row makes services only of the rows
    /// whose event code says so.
    #[test]
    fn service_codes_apply_only_with_their_event_codes() {
        let mapping = r#"
agency = "legal"
agency_type = "service_provider"
service_code_applies_to = ["svc"]
[columns]
record_id = "Id"
given_name = "First"
event_code = "Event"
service_code = "Matter"
[event_codes]
INTAKE = "screening"
SVC = "service_immediate"
[service_codes]
TVISA = { service = "legal", stage = "service_transitional" }
"#;
        let ex = extractor(mapping, &["Id", "First", "Event", "Matter"]);
        let intake = extract(&ex, &["1", "Ana", "INTAKE", "TVISA"]);
        assert_eq!(intake.facts.stage, Some(Stage::Screening));
        assert_eq!(intake.facts.service_type, None);
        // An unknown matter type on a non-service row is not even looked at.
        let other = extract(&ex, &["1", "Ana", "INTAKE", "NOPE"]);
        assert!(other.unknown_codes.is_empty());
        let service = extract(&ex, &["1", "Ana", "SVC", "TVISA"]);
        assert_eq!(service.facts.service_type, Some(ServiceType::Legal));
        assert_eq!(service.facts.stage, Some(Stage::ServiceTransitional));
        // Without the list, every row's matter type counts (the trap).
        let plain = mapping.replace("service_code_applies_to = [\"svc\"]\n", "");
        let ex = extractor(&plain, &["Id", "First", "Event", "Matter"]);
        let intake = extract(&ex, &["1", "Ana", "INTAKE", "TVISA"]);
        assert_eq!(intake.facts.service_type, Some(ServiceType::Legal));
        // A listed code the event table lacks is refused.
        let bad = mapping.replace("[\"svc\"]", "[\"SERVICE\"]");
        let e = SourceMapping::from_toml(&bad, Path::new("m.toml")).unwrap_err();
        assert!(e.to_string().contains("not in [event_codes]"), "{e}");
    }

    /// Issue #21: codes read by a built-in table are counted as such, and a mapping's own table
    /// overrides the built-in reading (`X` = not recorded).
    #[test]
    fn built_in_readings_are_counted_and_can_be_overridden() {
        let mapping = r#"
agency = "p"
agency_type = "law_enforcement"
default_stage = "identification"
[columns]
record_id = "Id"
given_name = "First"
sex = "Sex"
trafficking_type = "Type"
"#;
        let ex = extractor(mapping, &["Id", "First", "Sex", "Type"]);
        let r = extract(&ex, &["1", "Ana", "X", "LAB"]);
        assert_eq!(r.facts.sex, Sex::Other);
        assert_eq!(r.facts.trafficking_type, TraffickingType::Labor);
        let kinds: Vec<(&str, &str)> = r
            .builtin_readings
            .iter()
            .map(|c| (c.column_kind, c.reading))
            .collect();
        assert_eq!(kinds, [("sex", "other"), ("trafficking_type", "labor")]);
        let mut tally = UnknownCodeTally::default();
        for row in 1..=6 {
            tally.add(&r.builtin_readings[0], row);
        }
        assert_eq!(tally.lines()[0].to_string(), "sex X read as other (6 rows)");
        let own = format!("{mapping}[sex_codes]\nX = \"unknown\"\n");
        let ex = extractor(&own, &["Id", "First", "Sex", "Type"]);
        let r = extract(&ex, &["1", "Ana", "X", ""]);
        assert_eq!(r.facts.sex, Sex::Unknown);
        assert!(r.builtin_readings.is_empty());
    }

    /// Issue #21: a mapped minor flag gives `<18` or `18+` when no age is known, and a date of
    /// birth wins over it.
    /// A referral log's mapping (id, given name, birth date, event date) with one more column
    /// line.
    fn referral_log(column: &str) -> String {
        format!(
            r#"
agency = "p"
agency_type = "taskforce"
default_stage = "referral"
[columns]
record_id = "Id"
given_name = "First"
dob = {{ column = "DOB", formats = ["YYYY-MM-DD"] }}
event_date = {{ column = "Date", formats = ["YYYY-MM-DD"] }}
{column}
"#
        )
    }

    #[test]
    fn minor_flag_feeds_the_age_band_only_without_an_age() {
        let mapping = referral_log(r#"minor = "Minor (Y/N)""#);
        let ex = extractor(&mapping, &["Id", "First", "DOB", "Date", "Minor (Y/N)"]);
        let band = |dob: &str, flag: &str| {
            let r = extract(&ex, &["1", "Ana", dob, "2025-01-01", flag]);
            (r.facts.age_band.label(), r.issues.len())
        };
        assert_eq!(band("", "Y"), ("<18", 0));
        assert_eq!(band("", "no"), ("18+", 0));
        assert_eq!(band("", ""), ("unknown", 0));
        assert_eq!(band("1990-01-01", "Y"), ("30+", 0));
        assert_eq!(band("", "maybe"), ("unknown", 1));
    }

    /// An age without a birth date gives the birth-date field the two possible birth years;
    /// a birth date wins over an age, and an age without an event date gives nothing.
    #[test]
    fn an_age_without_a_birth_date_gives_the_birth_years() {
        let mapping = referral_log(r#"age = "Age""#);
        let ex = extractor(&mapping, &["Id", "First", "DOB", "Date", "Age"]);
        let dob = |dob: &str, date: &str, age: &str| {
            let r = extract(&ex, &["1", "Ana", dob, date, age]);
            r.ids.get(Field::Dob).map(str::to_string)
        };
        assert_eq!(dob("", "2023-05-02", "16").as_deref(), Some("2006|2007"));
        assert_eq!(
            dob("2007-01-09", "2023-05-02", "16").as_deref(),
            Some("20070109")
        );
        assert_eq!(dob("", "", "16"), None);
        assert_eq!(dob("", "2023-05-02", ""), None);
        // An age alone identifies nobody: the row is still rejected.
        let r = extract(&ex, &["1", "", "", "2023-05-02", "16"]);
        assert!(r.rejected);
    }

    /// Mojibake in an export (issue #21) is repaired only when the mapping asks for it.
    #[test]
    fn mojibake_is_repaired_on_request() {
        let given = |text: &str| {
            let m = SourceMapping::from_toml(text, Path::new("m.toml")).unwrap();
            let headers: Vec<String> = ["Case ID", "Child Name", "AKA", "DOB"]
                .iter()
                .chain(&["Gender", "Event", "Date"])
                .map(|s| s.to_string())
                .collect();
            let ex = Extractor::new(&m, &headers, NaiveDate::MIN, Path::new("x.csv")).unwrap();
            let cells = ["1", "PÃ©rez, JosÃ©", "", "", "F", "CARELINE", ""];
            let bytes: Vec<&[u8]> = cells.iter().map(|c| c.as_bytes()).collect();
            let e = ex.extract(&bytes);
            (
                e.ids.get(Field::GivenName).map(str::to_string),
                e.ids.get(Field::FamilyName).map(str::to_string),
            )
        };
        // Without the repair the mojibake becomes other letters and a split surname.
        assert_eq!(given(MAPPING), (Some("JOSA".into()), Some("PA REZ".into())));
        let on = MAPPING.replacen("[columns]", "repair_mojibake = true\n[columns]", 1);
        assert_eq!(given(&on), (Some("JOSE".into()), Some("PEREZ".into())));
    }

    /// Incident numbers repeat across departments and are shared by co-victims: a composite
    /// id keeps records apart that one column would merge (issue #21).
    #[test]
    fn composite_record_ids_join_their_parts() {
        let text = MAPPING.replace(
            "record_id = \"Case ID\"",
            "record_id = [\"Dept\", \"Case ID\", \"Victim\"]",
        );
        let m = SourceMapping::from_toml(&text, Path::new("m.toml")).unwrap();
        assert_eq!(m.columns.record_id.columns(), ["Dept", "Case ID", "Victim"]);
        let headers: Vec<String> = ["Dept", "Case ID", "Victim", "Child Name", "AKA", "DOB"]
            .iter()
            .chain(&["Gender", "Event", "Date"])
            .map(|s| s.to_string())
            .collect();
        let ex = Extractor::new(
            &m,
            &headers,
            NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
            Path::new("x.csv"),
        )
        .unwrap();
        assert!(ex.used_columns().contains(&2));
        let id = |cells: [&str; 3]| {
            let mut all: Vec<&[u8]> = cells.iter().map(|c| c.as_bytes()).collect();
            for c in [
                "LOPEZ, ANA",
                "",
                "03/07/2009",
                "F",
                "CARELINE",
                "2024-01-02",
            ] {
                all.push(c.as_bytes());
            }
            ex.extract(&all)
        };
        let a = id(["HPD", "2024-17", "1"]);
        let b = id(["WHPD", "2024-17", "1"]);
        let c = id(["HPD", "2024-17", "2"]);
        assert_eq!(a.local_id, "HPD\u{1f}2024-17\u{1f}1");
        assert_ne!(a.local_id, b.local_id);
        assert_ne!(a.local_id, c.local_id);
        assert_eq!(a.local_id, id([" HPD ", "2024-17", "1"]).local_id);
        let missing = id(["HPD", "", "1"]);
        assert!(missing.rejected);
        assert_eq!(missing.issues[0].column, "Case ID");
        // Parts holding the separator could join into another record's id: refused.
        let sneaky = id(["HPD\u{1f}2024-17", "1", ""]);
        assert!(sneaky.rejected);
        assert_eq!(sneaky.issues[0].column, "Dept");
        // A header without one of the parts is refused when the export is opened.
        let short: Vec<String> = headers.iter().filter(|h| *h != "Victim").cloned().collect();
        let err = Extractor::new(&m, &short, NaiveDate::MIN, Path::new("x.csv")).unwrap_err();
        assert!(err.to_string().contains("Victim"), "{err}");
        // Lists that cannot be an id are configuration errors.
        for bad in ["[]", "[\"Dept\", \"dept\"]", "[\"\"]"] {
            let text = MAPPING.replace("record_id = \"Case ID\"", &format!("record_id = {bad}"));
            assert!(
                SourceMapping::from_toml(&text, Path::new("m.toml")).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_good_row() {
        let r = row(&[
            "17",
            "Lopez, Ana Maria",
            "Candy",
            "04/12/2008",
            "F",
            "careline",
            "2024-03-01",
        ]);
        assert!(!r.rejected, "{:?}", r.issues);
        assert_eq!(r.ids.get(Field::FamilyName), Some("LOPEZ"));
        assert_eq!(r.ids.get(Field::Dob), Some("20080412"));
        assert_eq!(r.facts.stage, Some(Stage::Identification));
        assert_eq!(r.facts.age_band, AgeBand::Age13To17);
        assert_eq!(r.aliases.len(), 1);
        assert_eq!(r.aliases[0].given.as_deref(), Some("CANDY"));
    }

    #[test]
    fn bad_field_drops_the_field_not_the_row() {
        let r = row(&[
            "17",
            "Lopez, Ana",
            "",
            "02/30/2008",
            "F",
            "HSG",
            "2024-03-01",
        ]);
        assert!(!r.rejected);
        assert_eq!(r.ids.get(Field::Dob), None);
        assert_eq!(r.issues.len(), 1);
        assert_eq!(r.issues[0].field, "dob");
        assert_eq!(r.issues[0].column, "DOB");
        assert!(!r.issues[0].reason.contains("02/30"));
        assert_eq!(r.facts.service_type, Some(ServiceType::Housing));
    }

    #[test]
    fn unknown_codes_and_ragged_rows() {
        let r = row(&["17", "Lopez, Ana", "", "", "F", "NEWCODE", ""]);
        assert!(r.rejected);
        assert_eq!(
            r.unknown_codes[0],
            UnknownCode::new("event_code", " newcode")
        );
        let r = row(&["17", "Lopez, Ana"]);
        assert!(r.rejected);
        assert!(r.issues[0].reason.contains("ragged"));
    }

    #[test]
    fn missing_column_suggests_the_closest_header() {
        let m = SourceMapping::from_toml(MAPPING, Path::new("m.toml")).unwrap();
        let headers: Vec<String> = [
            "Case ID",
            "Child Nme",
            "AKA",
            "DOB",
            "Gender",
            "Event",
            "Date",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let err = Extractor::new(&m, &headers, NaiveDate::MAX, Path::new("x.csv")).unwrap_err();
        assert!(
            err.to_string().contains("did you mean \"Child Nme\""),
            "{err}"
        );
    }

    #[test]
    fn no_suggestion_from_a_first_row_that_is_data() {
        let m = SourceMapping::from_toml(MAPPING, Path::new("m.toml")).unwrap();
        // A headerless export: the first row is a person.
        let headers: Vec<String> = [
            "17",
            "LOPEZ, BOB",
            "",
            "03/07/2009",
            "F",
            "INTAKE",
            "2024-01-02",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let err = Extractor::new(&m, &headers, NaiveDate::MAX, Path::new("x.csv"))
            .unwrap_err()
            .to_string();
        assert!(!err.contains("did you mean"), "{err}");
        assert!(!err.contains("LOPEZ") && !err.contains("2009"), "{err}");
        assert!(err.contains("does not look like a header"), "{err}");
        assert!(header_is_plain(&[
            "Address Line 2".to_string(),
            "DOB".to_string()
        ]));
        assert!(!header_is_plain(&["1047".to_string()]));
    }

    #[test]
    fn unknown_codes_show_codes_or_shapes_never_identifiers() {
        let mut t = UnknownCodeTally::default();
        for row in 1..=6 {
            t.add(&UnknownCode::new("event_code", "svc-01"), row);
        }
        for row in 10..=260 {
            t.add(
                &UnknownCode::new("event_code", &format!("03/{:02}/2009", row % 28 + 1)),
                row,
            );
        }
        t.add(&UnknownCode::new("service_code", "Lopez"), 7);
        let text: Vec<String> = t.lines().iter().map(|l| l.to_string()).collect();
        assert_eq!(
            text,
            [
                "event_code SVC-01 (6 rows)",
                "event_code a value shaped 99/99/9999 (251 rows: row 10, 11, 12, 13, 14 and 246 more)",
                "service_code a value shaped AAAAA (1 rows: row 7)",
            ]
        );
        assert!(!format!("{t:?}").contains("LOPEZ"));
    }
}

//! The encodings file: what an agency sends to the taskforce (docs/formats.md).
//!
//! One Parquet file per export, one row per accepted input record:
//!
//! | column | type | meaning |
//! |---|---|---|
//! | `record_key` | utf8 | keyed pseudonym of agency + local id (32 hex digits) |
//! | `agency` | utf8 | agency name from the source mapping |
//! | `agency_type` | utf8 | `law_enforcement`, `child_welfare`, ... |
//! | `unit` | utf8, null | unit or department |
//! | `stage` | utf8, null | journey stage; null for administrative events |
//! | `service_type` | utf8, null | service type of service events |
//! | `event_date` | date32, null | event or service start date |
//! | `end_date` | date32, null | service end date |
//! | `age_band` | utf8 | age band at the event |
//! | `sex` | utf8 | `female`, `male`, `other`, `unknown` |
//! | `trafficking_type` | utf8 | `sex`, `labor`, `both`, `unknown` |
//! | `dob_from_age` | bool | the birth-date tokens (record CLK and birth-date part) hold the two birth years of an age, not a date (absent in files written before it existed: read as false) |
//! | `clk` | fixed_size_binary(l/8) | the record's CLK, uncompressed |
//! | `alias_clks` | list<fixed_size_binary(l/8)> | one CLK per alias (empty list: none) |
//! | `part_names`, `part_dob`, `part_phone`, `part_address`, `part_ssn4` | fixed_size_binary, null | the record's parts, when the schema has `[parts]`; null: the record lacks the part's fields |
//! | `part_alias_names` | list<fixed_size_binary> | the names part of each alias (with a names part) |
//!
//! File key-value metadata: `crosswalk.format`, `crosswalk.version`,
//! `crosswalk.schema_fingerprint`, `crosswalk.kcv`, `crosswalk.clk_bits`, `crosswalk.agency`,
//! `crosswalk.agency_type`, `crosswalk.rows`, `crosswalk.rejected_rows`, `crosswalk.hardening`
//! (absent in files written before it existed: read as `unrecorded`); with parts,
//! `crosswalk.parts` (`names:1024,dob:512,...`) and `crosswalk.parts_hardening`.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, Date32Builder, FixedSizeBinaryBuilder, ListBuilder, StringBuilder,
};
use arrow_array::{
    Array, ArrayRef, BooleanArray, Date32Array, FixedSizeBinaryArray, ListArray, RecordBatch,
    StringArray,
};
use arrow_schema::{DataType, Field as ArrowField, Schema, SchemaRef};
use chrono::NaiveDate;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

use super::AtomicFile;
use crate::clk::Clk;
use crate::error::{Error, Result};
use crate::schema::Part;
use crate::source::EventFacts;
use crate::vocab;

/// Format tag in the file metadata: version 2 since the `dob_from_age` column (2026-12-07). A
/// reader of version 1 would take birth years of ages for birth dates, so it refuses these
/// files; this version reads both ([`READ_FORMATS`]).
pub const FORMAT: &str = "crosswalk-encodings/2";

/// The format tags this version reads: version 1 files hold no birth years of ages.
pub const READ_FORMATS: [&str; 2] = [FORMAT, "crosswalk-encodings/1"];

/// One encoded record, ready to write.
#[derive(Debug, Clone)]
pub struct EncodedRow {
    /// Keyed pseudonym of agency + local id.
    pub record_key: String,
    /// The record's CLK.
    pub clk: Clk,
    /// One CLK per alias.
    pub alias_clks: Vec<Clk>,
    /// The record's parts, indexed by [`Part::index`] (`None`: not written, or the record lacks
    /// the part's fields); empty when the schema has no parts.
    pub parts: Vec<Option<Clk>>,
    /// The names part of each alias (empty without a names part).
    pub alias_names: Vec<Clk>,
    /// Whether the birth-date field held the two birth years of an age
    /// ([`crate::normalize::birth_years`]) rather than a date.
    pub dob_from_age: bool,
    /// Non-identifying event facts.
    pub facts: EventFacts,
}

/// A builder of lists of fixed-size binaries of `width` bytes (alias CLKs, alias names parts).
fn fixed_list(width: i32) -> ListBuilder<FixedSizeBinaryBuilder> {
    ListBuilder::new(FixedSizeBinaryBuilder::new(width)).with_field(Arc::new(ArrowField::new(
        "item",
        DataType::FixedSizeBinary(width),
        true,
    )))
}

/// File-level metadata of an encodings file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FileMeta {
    /// crosswalk version that wrote the file.
    pub version: String,
    /// Linkage-schema fingerprint.
    pub schema_fingerprint: String,
    /// Key check value of the secret used.
    pub kcv: String,
    /// CLK length in bits.
    pub clk_bits: usize,
    /// Agency name.
    pub agency: String,
    /// Agency type label.
    pub agency_type: String,
    /// Rows written.
    pub rows: u64,
    /// Input rows rejected.
    pub rejected_rows: u64,
    /// The schema's hardening as [`crate::schema::LinkageSchema::hardening_label`] writes it
    /// (`none`, `xor-fold`, `blip 0.05`, `diffusion 4`); `unrecorded` for files written before the key
    /// existed, `unknown` for clkhash CLKs.
    pub hardening: String,
    /// The parts the file carries and their lengths in bits, in [`Part::ALL`] order (empty:
    /// none).
    pub parts: Vec<(Part, usize)>,
    /// The parts' hardening ([`crate::schema::PartsOptions::hardening_label`]); empty without
    /// parts.
    pub parts_hardening: String,
}

/// Renders a parts layout as the `crosswalk.parts` metadata value: `names:1024,dob:512`.
pub fn parts_layout_text(parts: &[(Part, usize)]) -> String {
    parts
        .iter()
        .map(|(p, b)| format!("{}:{b}", p.name()))
        .collect::<Vec<_>>()
        .join(",")
}

/// Parses a `crosswalk.parts` value: known parts in [`Part::ALL`] order, each once, lengths a
/// positive multiple of 64 up to [`crate::schema::MAX_DIFFUSION_BITS`].
fn parse_parts_layout(text: &str) -> Option<Vec<(Part, usize)>> {
    let mut out: Vec<(Part, usize)> = Vec::new();
    for item in text.split(',') {
        let (name, bits) = item.split_once(':')?;
        let part = Part::ALL.into_iter().find(|p| p.name() == name)?;
        let bits: usize = bits.parse().ok()?;
        if bits == 0 || !bits.is_multiple_of(64) || bits > crate::schema::MAX_DIFFUSION_BITS {
            return None;
        }
        if out.last().is_some_and(|(q, _)| *q >= part) {
            return None;
        }
        out.push((part, bits));
    }
    Some(out)
}

const META_KEYS: [&str; 9] = [
    "crosswalk.format",
    "crosswalk.version",
    "crosswalk.schema_fingerprint",
    "crosswalk.kcv",
    "crosswalk.clk_bits",
    "crosswalk.agency",
    "crosswalk.agency_type",
    "crosswalk.rows",
    "crosswalk.rejected_rows",
];

fn arrow_schema(clk_bytes: i32, parts: &[(Part, usize)]) -> SchemaRef {
    let clk = DataType::FixedSizeBinary(clk_bytes);
    let mut fields = vec![
        ArrowField::new("record_key", DataType::Utf8, false),
        ArrowField::new("agency", DataType::Utf8, false),
        ArrowField::new("agency_type", DataType::Utf8, false),
        ArrowField::new("unit", DataType::Utf8, true),
        ArrowField::new("stage", DataType::Utf8, true),
        ArrowField::new("service_type", DataType::Utf8, true),
        ArrowField::new("event_date", DataType::Date32, true),
        ArrowField::new("end_date", DataType::Date32, true),
        ArrowField::new("age_band", DataType::Utf8, false),
        ArrowField::new("sex", DataType::Utf8, false),
        ArrowField::new("trafficking_type", DataType::Utf8, false),
        ArrowField::new(DOB_FROM_AGE_COLUMN, DataType::Boolean, false),
        ArrowField::new("clk", clk.clone(), false),
        ArrowField::new(
            "alias_clks",
            DataType::List(Arc::new(ArrowField::new("item", clk, true))),
            false,
        ),
    ];
    for (part, bits) in parts {
        let part_type = DataType::FixedSizeBinary((bits / 8) as i32);
        fields.push(ArrowField::new(part_column(*part), part_type.clone(), true));
        if *part == Part::Names {
            fields.push(ArrowField::new(
                ALIAS_NAMES_COLUMN,
                DataType::List(Arc::new(ArrowField::new("item", part_type, true))),
                false,
            ));
        }
    }
    Arc::new(Schema::new(fields))
}

/// The column of a part: `part_names`, `part_dob`, ...
pub fn part_column(part: Part) -> &'static str {
    match part {
        Part::Names => "part_names",
        Part::Dob => "part_dob",
        Part::Phone => "part_phone",
        Part::Address => "part_address",
        Part::Ssn4 => "part_ssn4",
        Part::GivenDob => "part_given_dob",
        Part::FamilyDob => "part_family_dob",
    }
}

/// The column of the aliases' names parts.
pub const ALIAS_NAMES_COLUMN: &str = "part_alias_names";

/// The column that says a row's birth-date tokens are the birth years of an age.
pub const DOB_FROM_AGE_COLUMN: &str = "dob_from_age";

fn days(d: NaiveDate) -> i32 {
    (d - NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default()).num_days() as i32
}

fn from_days(d: i32) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(1970, 1, 1)?.checked_add_signed(chrono::TimeDelta::days(d as i64))
}

/// Writer properties shared by crosswalk's Parquet outputs: random columns (CLKs, keyed
/// pseudonyms) uncompressed, without dictionary or statistics (random bits neither compress,
/// repeat nor sort, and trying costs a third of the writer's time); the rest Snappy.
fn properties(clk_columns: &[&str]) -> WriterProperties {
    let mut b = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(32 * 1024))
        .set_created_by(format!("crosswalk {}", env!("CARGO_PKG_VERSION")));
    for c in clk_columns {
        let path = ColumnPath::from(c.split('.').map(String::from).collect::<Vec<_>>());
        b = b
            .set_column_compression(path.clone(), Compression::UNCOMPRESSED)
            .set_column_dictionary_enabled(path.clone(), false)
            .set_column_statistics_enabled(path, EnabledStatistics::None);
    }
    b.build()
}

/// Streams [`EncodedRow`]s into an encodings file, atomically.
pub struct EncodingWriter {
    writer: ArrowWriter<AtomicFile>,
    schema: SchemaRef,
    clk_bytes: i32,
    parts: Vec<(Part, usize)>,
    agency: String,
    agency_type: String,
    rows: u64,
}

impl std::fmt::Debug for EncodingWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncodingWriter")
            .field("rows", &self.rows)
            .finish()
    }
}

impl EncodingWriter {
    /// Starts an encodings file at `path` (written under a temporary name until
    /// [`EncodingWriter::finish`]) with the record CLKs of `clk_bits` and the parts `parts`
    /// (as [`crate::encode::PartEncoders::layout`] gives them; empty: none).
    pub fn create(
        path: &Path,
        clk_bits: usize,
        parts: &[(Part, usize)],
        agency: &str,
        agency_type: &str,
    ) -> Result<Self> {
        let clk_bytes = (clk_bits / 8) as i32;
        let schema = arrow_schema(clk_bytes, parts);
        let file = AtomicFile::create(path)?;
        let mut random = vec![
            "record_key".to_string(),
            "clk".into(),
            "alias_clks.list.item".into(),
        ];
        for (p, _) in parts {
            random.push(part_column(*p).into());
            if *p == Part::Names {
                random.push(format!("{ALIAS_NAMES_COLUMN}.list.item"));
            }
        }
        let random: Vec<&str> = random.iter().map(String::as_str).collect();
        let props = properties(&random);
        let writer = ArrowWriter::try_new(file, schema.clone(), Some(props))
            .map_err(|e| Error::parquet(path, e))?;
        Ok(EncodingWriter {
            writer,
            schema,
            clk_bytes,
            parts: parts.to_vec(),
            agency: agency.to_string(),
            agency_type: agency_type.to_string(),
            rows: 0,
        })
    }

    /// Appends rows (one record batch).
    pub fn write(&mut self, rows: &[&EncodedRow]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let n = rows.len();
        let mut key = StringBuilder::with_capacity(n, n * 32);
        let mut unit = StringBuilder::new();
        let mut stage = StringBuilder::new();
        let mut service = StringBuilder::new();
        let mut ev = Date32Builder::with_capacity(n);
        let mut end = Date32Builder::with_capacity(n);
        let mut age = StringBuilder::new();
        let mut sex = StringBuilder::new();
        let mut tt = StringBuilder::new();
        let mut from_age = BooleanBuilder::with_capacity(n);
        let mut clk = FixedSizeBinaryBuilder::with_capacity(n, self.clk_bytes);
        let mut alias = fixed_list(self.clk_bytes);
        // Every column is filled in one pass over the rows, not one pass per column: a chunk's
        // rows do not fit in the cache, and each pass fetched every row again.
        let mut cols: Vec<FixedSizeBinaryBuilder> = self
            .parts
            .iter()
            .map(|&(_, bits)| FixedSizeBinaryBuilder::with_capacity(n, (bits / 8) as i32))
            .collect();
        let names_width = self
            .parts
            .iter()
            .find(|p| p.0 == Part::Names)
            .map(|&(_, bits)| (bits / 8) as i32);
        let mut alias_names = names_width.map(fixed_list);
        let dest = self.writer.inner().dest().to_path_buf();
        let bad = |e: arrow_schema::ArrowError| Error::parquet(&dest, e);
        for r in rows {
            key.append_value(&r.record_key);
            unit.append_option(r.facts.unit.as_deref());
            stage.append_option(r.facts.stage.and_then(|s| s.label()));
            service.append_option(r.facts.service_type.map(|s| s.label()));
            ev.append_option(r.facts.event_date.map(days));
            end.append_option(r.facts.end_date.map(days));
            age.append_value(r.facts.age_band.label());
            sex.append_value(r.facts.sex.label());
            tt.append_value(r.facts.trafficking_type.label());
            from_age.append_value(r.dob_from_age);
            clk.append_value(r.clk.as_bytes()).map_err(bad)?;
            for a in &r.alias_clks {
                alias.values().append_value(a.as_bytes()).map_err(bad)?;
            }
            alias.append(true);
            for (col, &(part, bits)) in cols.iter_mut().zip(&self.parts) {
                match r.parts.get(part.index()).and_then(Option::as_ref) {
                    // No bit set: missing, as the reader requires.
                    Some(c) if c.len_bits() == bits && c.count_ones() == 0 => col.append_null(),
                    Some(c) if c.len_bits() == bits => {
                        col.append_value(c.as_bytes()).map_err(bad)?
                    }
                    Some(_) => {
                        return Err(Error::encoding(
                            &dest,
                            format!("part {part}: an encoding of the wrong length"),
                        ))
                    }
                    None => col.append_null(),
                }
            }
            if let Some(list) = alias_names.as_mut() {
                for a in r.alias_names.iter().filter(|a| a.count_ones() > 0) {
                    list.values().append_value(a.as_bytes()).map_err(bad)?;
                }
                list.append(true);
            }
        }
        let agency: ArrayRef = Arc::new(StringArray::from(vec![self.agency.as_str(); n]));
        let agency_type: ArrayRef = Arc::new(StringArray::from(vec![self.agency_type.as_str(); n]));
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(key.finish()),
            agency,
            agency_type,
            Arc::new(unit.finish()),
            Arc::new(stage.finish()),
            Arc::new(service.finish()),
            Arc::new(ev.finish()),
            Arc::new(end.finish()),
            Arc::new(age.finish()),
            Arc::new(sex.finish()),
            Arc::new(tt.finish()),
            Arc::new(from_age.finish()),
            Arc::new(clk.finish()),
            Arc::new(alias.finish()),
        ];
        // Columns in the file's order: each part, the names part followed by its aliases'.
        for (mut col, &(part, _)) in cols.into_iter().zip(&self.parts) {
            columns.push(Arc::new(col.finish()));
            if part == Part::Names {
                if let Some(mut list) = alias_names.take() {
                    columns.push(Arc::new(list.finish()));
                }
            }
        }
        let batch = RecordBatch::try_new(self.schema.clone(), columns).map_err(bad)?;
        self.writer
            .write(&batch)
            .map_err(|e| Error::parquet(&dest, e))?;
        self.rows += n as u64;
        Ok(())
    }

    /// Writes the metadata and footer, then renames the file into place.
    pub fn finish(mut self, meta: &FileMeta) -> Result<()> {
        let dest = self.writer.inner().dest().to_path_buf();
        let values = [
            FORMAT.to_string(),
            meta.version.clone(),
            meta.schema_fingerprint.clone(),
            meta.kcv.clone(),
            meta.clk_bits.to_string(),
            meta.agency.clone(),
            meta.agency_type.clone(),
            self.rows.to_string(),
            meta.rejected_rows.to_string(),
        ];
        for (k, v) in META_KEYS.iter().zip(values) {
            self.writer
                .append_key_value_metadata(KeyValue::new(k.to_string(), v));
        }
        self.writer.append_key_value_metadata(KeyValue::new(
            "crosswalk.hardening".to_string(),
            meta.hardening.clone(),
        ));
        if !self.parts.is_empty() {
            self.writer.append_key_value_metadata(KeyValue::new(
                "crosswalk.parts".to_string(),
                parts_layout_text(&self.parts),
            ));
            self.writer.append_key_value_metadata(KeyValue::new(
                "crosswalk.parts_hardening".to_string(),
                meta.parts_hardening.clone(),
            ));
        }
        let file = self
            .writer
            .into_inner()
            .map_err(|e| Error::parquet(&dest, e))?;
        file.commit()
    }
}

/// An encodings file read back into columns (the linkage job's input).
#[derive(Debug, Clone, Default)]
pub struct Encodings {
    /// File metadata.
    pub meta: FileMeta,
    /// `record_key` per row.
    pub record_key: Vec<String>,
    /// CLK bytes of all rows, concatenated (`meta.clk_bits / 8` bytes each).
    pub clks: Vec<u8>,
    /// Alias CLKs per row.
    pub alias_clks: Vec<Vec<Clk>>,
    /// Stage label per row.
    pub stage: Vec<Option<String>>,
    /// Service type label per row.
    pub service_type: Vec<Option<String>>,
    /// Event date per row.
    pub event_date: Vec<Option<NaiveDate>>,
    /// End date per row.
    pub end_date: Vec<Option<NaiveDate>>,
    /// Unit per row.
    pub unit: Vec<Option<String>>,
    /// Age band label per row.
    pub age_band: Vec<String>,
    /// Sex label per row.
    pub sex: Vec<String>,
    /// Trafficking type label per row.
    pub trafficking_type: Vec<String>,
    /// Per row, whether its birth-date tokens are the two birth years of an age
    /// ([`EncodedRow::dob_from_age`]).
    pub dob_from_age: Vec<bool>,
    /// The rows' parts (empty when the file carries none).
    pub parts: PartColumns,
}

/// The parts of an encodings file's rows ([`FileMeta::parts`] gives their lengths).
#[derive(Debug, Clone, Default)]
pub struct PartColumns {
    /// Per part (by [`Part::index`]), the bytes of all rows concatenated (`bits / 8` each):
    /// all zero for a row that lacks the part (no part ever has no bit set: a present part
    /// holds at least one token); empty for a part the file does not carry.
    pub bytes: [Vec<u8>; Part::COUNT],
    /// The names part of each row's aliases: one list per row when the file carries a names
    /// part, no lists at all otherwise.
    pub alias_names: Vec<Vec<Clk>>,
}

impl PartColumns {
    /// The value of `part` in row `i`, the part being `bits` long in its file
    /// ([`Encodings::part_bits`]): `None` when the row lacks it or the file does not carry it.
    pub fn value(&self, part: Part, bits: usize, i: usize) -> Option<&[u8]> {
        let w = bits / 8;
        // A carried part without its bytes: the columns were taken out (the link job does).
        debug_assert!(w == 0 || !self.bytes[part.index()].is_empty());
        let b = self.bytes[part.index()].get(i * w..(i + 1) * w)?;
        (w > 0 && b.iter().any(|&x| x != 0)).then_some(b)
    }
}

impl Encodings {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.record_key.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.record_key.is_empty()
    }

    /// Bits of `part` in this file (0: not carried).
    pub fn part_bits(&self, part: Part) -> usize {
        self.meta
            .parts
            .iter()
            .find(|(p, _)| *p == part)
            .map_or(0, |x| x.1)
    }

    /// Part `part` of row `i`: `None` when the file does not carry it or the row lacks it.
    pub fn part(&self, part: Part, i: usize) -> Option<&[u8]> {
        self.parts.value(part, self.part_bits(part), i)
    }

    /// The CLK of row `i`.
    pub fn clk(&self, i: usize) -> Clk {
        let w = self.meta.clk_bits / 8;
        Clk::from_bytes(self.clks[i * w..(i + 1) * w].to_vec()).unwrap_or_else(|| Clk::zeros(64))
    }
}

fn column<'a, T: 'static>(batch: &'a RecordBatch, name: &str, path: &Path) -> Result<&'a T> {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<T>())
        .ok_or_else(|| {
            Error::encoding(
                path,
                format!("column {name:?} is missing or has the wrong type: not a crosswalk encodings file"),
            )
        })
}

fn strings(a: &StringArray) -> impl Iterator<Item = Option<String>> + '_ {
    (0..a.len()).map(move |i| (!a.is_null(i)).then(|| a.value(i).to_string()))
}

/// Checks that the encodings file at `path` was made with the same linkage schema, key and CLK
/// length as the one at `first_path`; the error names `path` and what differs.
pub fn check_same(
    first: &FileMeta,
    first_path: &Path,
    other: &FileMeta,
    path: &Path,
) -> Result<()> {
    let differs = |what: &str, a: &str, b: &str| {
        Error::encoding(
            path,
            format!(
                "{what} {b} differs from {a} in {}; every agency must encode with the same \
                 linkage schema and key",
                first_path.display()
            ),
        )
    };
    if other.schema_fingerprint != first.schema_fingerprint {
        return Err(differs(
            "schema fingerprint",
            &first.schema_fingerprint,
            &other.schema_fingerprint,
        ));
    }
    if other.kcv != first.kcv {
        return Err(differs("key check value", &first.kcv, &other.kcv));
    }
    if other.clk_bits != first.clk_bits {
        return Err(differs(
            "CLK length",
            &first.clk_bits.to_string(),
            &other.clk_bits.to_string(),
        ));
    }
    // Equal fingerprints mean equal parts, unless a file was altered after encoding.
    if other.parts != first.parts || other.parts_hardening != first.parts_hardening {
        return Err(differs(
            "parts layout",
            &format!(
                "{} ({})",
                parts_layout_text(&first.parts),
                first.parts_hardening
            ),
            &format!(
                "{} ({})",
                parts_layout_text(&other.parts),
                other.parts_hardening
            ),
        ));
    }
    Ok(())
}

/// Refuses a set of inputs in which one file's content is given twice (the same path twice, or
/// a copy): its events would count twice and its records would look linked to themselves.
pub fn check_each_file_once(inputs: &[std::path::PathBuf], pool: &rayon::ThreadPool) -> Result<()> {
    use rayon::prelude::*;
    let digests: Vec<blake3::Hash> = pool.install(|| {
        inputs
            .par_iter()
            .map(|p| crate::io::file_digest(p))
            .collect::<Result<_>>()
    })?;
    for (j, dj) in digests.iter().enumerate() {
        if let Some(i) = digests[..j].iter().position(|di| di == dj) {
            return Err(Error::encoding(
                &inputs[j],
                format!(
                    "holds the same encodings as {} (given twice, or a copy); give each file \
                     once: its events would count twice",
                    inputs[i].display()
                ),
            ));
        }
    }
    Ok(())
}

/// Schema fingerprint given to CLKs read in clkhash's formats (they carry none).
pub const CLKHASH_FINGERPRINT: &str = "clkhash";

/// The parts an encodings file says it carries (its `crosswalk.parts` layout), read from the
/// Parquet footer alone: what `crosswalk link --model auto` decides by before the job reads
/// the files. Empty for clkhash's formats, a file without parts, or one that cannot be read
/// (the job's [`read`] then says what is wrong with it).
pub fn parts_carried(path: &Path) -> Vec<Part> {
    let Ok(file) = File::open(path) else {
        return Vec::new();
    };
    let Ok(reader) = parquet::file::reader::SerializedFileReader::new(file) else {
        return Vec::new();
    };
    use parquet::file::reader::FileReader;
    reader
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .and_then(|kv| kv.iter().find(|k| k.key == "crosswalk.parts"))
        .and_then(|k| k.value.as_deref())
        .and_then(parse_parts_layout)
        .map(|layout| layout.into_iter().map(|(part, _)| part).collect())
        .unwrap_or_default()
}

/// Reads an encodings file written by [`EncodingWriter`], checking its format tag; or, for a
/// name ending in `.json` or `.csv`, CLKs in clkhash's formats ([`read_clkhash`]).
pub fn read(path: &Path) -> Result<Encodings> {
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    if std::fs::metadata(path).is_ok_and(|m| m.is_dir()) {
        return Err(Error::io(
            path,
            std::io::Error::other("is a directory; give the encodings files inside it"),
        ));
    }
    if ext == "json" || ext == "csv" {
        return read_clkhash(path);
    }
    super::guard_reader(path, || read_parquet(path))
}

/// [`read`] of a Parquet encodings file.
fn read_parquet(path: &Path) -> Result<Encodings> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| Error::encoding(path, format!("not a readable Parquet file ({e})")))?;
    let kv: Vec<(String, String)> = builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .map(|v| {
            v.iter()
                .map(|k| (k.key.clone(), k.value.clone().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default();
    let get = |k: &str| kv.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
    if !get("crosswalk.format").is_some_and(|f| READ_FORMATS.contains(&f.as_str())) {
        return Err(Error::encoding(
            path,
            format!(
                "not a crosswalk encodings file this version reads (expected crosswalk.format = {}); a file of a newer crosswalk needs that version",
                READ_FORMATS.join(" or ")
            ),
        ));
    }
    let num = |k: &str| -> Result<u64> {
        get(k).and_then(|v| v.parse().ok()).ok_or_else(|| {
            Error::encoding(path, format!("metadata {k} is missing or not a number"))
        })
    };
    let mut out = Encodings {
        meta: FileMeta {
            version: get("crosswalk.version").unwrap_or_default(),
            schema_fingerprint: get("crosswalk.schema_fingerprint").unwrap_or_default(),
            kcv: get("crosswalk.kcv").unwrap_or_default(),
            clk_bits: num("crosswalk.clk_bits")? as usize,
            agency: get("crosswalk.agency").unwrap_or_default(),
            agency_type: get("crosswalk.agency_type").unwrap_or_default(),
            rows: num("crosswalk.rows")?,
            rejected_rows: num("crosswalk.rejected_rows")?,
            hardening: {
                let h = get("crosswalk.hardening").unwrap_or_else(|| "unrecorded".into());
                if !crate::schema::is_hardening_label(&h) {
                    return Err(Error::encoding(
                        path,
                        "metadata crosswalk.hardening is not a hardening crosswalk writes",
                    ));
                }
                h
            },
            parts: match get("crosswalk.parts") {
                None => Vec::new(),
                Some(text) => parse_parts_layout(&text).ok_or_else(|| {
                    Error::encoding(
                        path,
                        "metadata crosswalk.parts is not a parts layout crosswalk writes",
                    )
                })?,
            },
            parts_hardening: get("crosswalk.parts_hardening").unwrap_or_default(),
        },
        ..Encodings::default()
    };
    // With parts, their hardening decides how similarities are read: only what crosswalk
    // writes is accepted.
    if !out.meta.parts.is_empty() {
        let h = out.meta.parts_hardening.as_str();
        let ok =
            h == "none" || crate::link::evidence::taps_of(h).is_some_and(|t| (2..=16).contains(&t));
        if !ok {
            return Err(Error::encoding(
                path,
                "metadata crosswalk.parts_hardening is missing or not `none` or `diffusion T` \
                 (T from 2 to 16)",
            ));
        }
    }
    let bits = out.meta.clk_bits;
    if bits == 0 || !bits.is_multiple_of(64) || bits > MAX_CLK_BITS {
        return Err(Error::encoding(
            path,
            format!(
                "metadata crosswalk.clk_bits: {bits} is not a CLK length crosswalk writes (a \
                 multiple of 64 up to {MAX_CLK_BITS})"
            ),
        ));
    }
    if out.meta.agency.trim().is_empty() {
        return Err(Error::encoding(
            path,
            "metadata crosswalk.agency is missing or empty",
        ));
    }
    if !vocab::AGENCY_TYPES.contains(&out.meta.agency_type.as_str()) {
        return Err(Error::encoding(
            path,
            "metadata crosswalk.agency_type is not an agency type of docs/formats.md",
        ));
    }
    let reader = builder
        .with_batch_size(64 * 1024)
        .build()
        .map_err(|e| Error::parquet(path, e))?;
    let width = bits / 8;
    for batch in reader {
        let batch = batch.map_err(|e| Error::parquet(path, e))?;
        let first_row = out.record_key.len();
        // Row numbers in messages are 1-based over the whole file.
        let bad_row = |i: usize, column: &str, what: &str| {
            Error::encoding(
                path,
                format!("row {}: column {column}: {what}", first_row + i + 1),
            )
        };
        let keys: &StringArray = column(&batch, "record_key", path)?;
        for i in 0..keys.len() {
            if keys.is_null(i) || !is_record_key(keys.value(i)) {
                return Err(bad_row(i, "record_key", "not a record key (32 hex digits)"));
            }
        }
        out.record_key
            .extend((0..keys.len()).map(|i| keys.value(i).to_string()));
        for (name, want) in [
            ("agency", &out.meta.agency),
            ("agency_type", &out.meta.agency_type),
        ] {
            let a: &StringArray = column(&batch, name, path)?;
            if let Some(i) = (0..a.len()).find(|&i| a.is_null(i) || a.value(i) != want.as_str()) {
                return Err(bad_row(i, name, "differs from the file's metadata"));
            }
        }
        let clk: &FixedSizeBinaryArray = column(&batch, "clk", path)?;
        if clk.value_length() as usize != width {
            return Err(Error::encoding(
                path,
                format!(
                    "column clk: {} bits per CLK, but crosswalk.clk_bits says {bits}",
                    i64::from(clk.value_length()) * 8
                ),
            ));
        }
        if let Some(i) = (0..clk.len()).find(|&i| clk.is_null(i)) {
            return Err(bad_row(i, "clk", "null"));
        }
        for i in 0..clk.len() {
            out.clks.extend_from_slice(clk.value(i));
        }
        let alias: &ListArray = column(&batch, "alias_clks", path)?;
        for i in 0..alias.len() {
            if alias.is_null(i) {
                return Err(bad_row(
                    i,
                    "alias_clks",
                    "null (an empty list means no alias)",
                ));
            }
            let vals = alias.value(i);
            let vals = vals
                .as_any()
                .downcast_ref::<FixedSizeBinaryArray>()
                .ok_or_else(|| Error::encoding(path, "column alias_clks has the wrong type"))?;
            if vals.value_length() as usize != width {
                return Err(Error::encoding(
                    path,
                    format!(
                        "column alias_clks: {} bits per CLK, but clk and crosswalk.clk_bits \
                         have {bits}",
                        i64::from(vals.value_length()) * 8
                    ),
                ));
            }
            if vals.null_count() > 0 {
                return Err(bad_row(i, "alias_clks", "holds a null CLK"));
            }
            out.alias_clks.push(
                (0..vals.len())
                    .filter_map(|j| Clk::from_bytes(vals.value(j).to_vec()))
                    .collect(),
            );
        }
        read_parts(&batch, &out.meta.parts, &mut out.parts, path, &bad_row)?;
        for (name, labels, nullable) in [
            ("stage", &vocab::STAGES[..], true),
            ("service_type", &vocab::SERVICE_TYPES[..], true),
            ("age_band", &vocab::AGE_BANDS[..], false),
            ("sex", &vocab::SEXES[..], false),
            ("trafficking_type", &vocab::TRAFFICKING_TYPES[..], false),
        ] {
            let a: &StringArray = column(&batch, name, path)?;
            for i in 0..a.len() {
                let ok = if a.is_null(i) {
                    nullable
                } else {
                    labels.contains(&a.value(i))
                };
                if !ok {
                    return Err(bad_row(i, name, "not a value of the standard vocabulary"));
                }
            }
        }
        out.stage.extend(strings(column(&batch, "stage", path)?));
        out.service_type
            .extend(strings(column(&batch, "service_type", path)?));
        out.unit.extend(strings(column(&batch, "unit", path)?));
        for (name, target) in [
            ("event_date", &mut out.event_date),
            ("end_date", &mut out.end_date),
        ] {
            let a: &Date32Array = column(&batch, name, path)?;
            target.extend((0..a.len()).map(|i| {
                if a.is_null(i) {
                    None
                } else {
                    from_days(a.value(i))
                }
            }));
        }
        for (name, target) in [
            ("age_band", &mut out.age_band),
            ("sex", &mut out.sex),
            ("trafficking_type", &mut out.trafficking_type),
        ] {
            target.extend(strings(column(&batch, name, path)?).map(Option::unwrap_or_default));
        }
        // Files written before the column existed hold no birth years from an age.
        match batch.column_by_name(DOB_FROM_AGE_COLUMN) {
            None => out
                .dob_from_age
                .resize(out.dob_from_age.len() + batch.num_rows(), false),
            Some(_) => {
                let a: &BooleanArray = column(&batch, DOB_FROM_AGE_COLUMN, path)?;
                if a.null_count() > 0 {
                    return Err(Error::encoding(
                        path,
                        format!("column {DOB_FROM_AGE_COLUMN} holds a null"),
                    ));
                }
                out.dob_from_age.extend((0..a.len()).map(|i| a.value(i)));
            }
        }
    }
    if out.len() as u64 != out.meta.rows {
        return Err(Error::encoding(
            path,
            format!(
                "metadata crosswalk.rows says {} rows, the file holds {}: the file is damaged or \
                 was changed after encoding",
                out.meta.rows,
                out.len()
            ),
        ));
    }
    Ok(out)
}

/// Reads the part columns of one batch into `out`.
fn read_parts(
    batch: &RecordBatch,
    layout: &[(Part, usize)],
    out: &mut PartColumns,
    path: &Path,
    bad_row: &dyn Fn(usize, &str, &str) -> Error,
) -> Result<()> {
    for &(part, bits) in layout {
        let width = bits / 8;
        let name = part_column(part);
        let col: &FixedSizeBinaryArray = column(batch, name, path)?;
        if col.value_length() as usize != width {
            return Err(Error::encoding(
                path,
                format!("column {name}: not {bits} bits, as crosswalk.parts says"),
            ));
        }
        let bytes = &mut out.bytes[part.index()];
        for i in 0..col.len() {
            if col.is_null(i) {
                bytes.resize(bytes.len() + width, 0);
            } else if col.value(i).iter().all(|&b| b == 0) {
                return Err(bad_row(
                    i,
                    name,
                    "an encoding with no bit set (a missing part is null)",
                ));
            } else {
                bytes.extend_from_slice(col.value(i));
            }
        }
        if part == Part::Names {
            let list: &ListArray = column(batch, ALIAS_NAMES_COLUMN, path)?;
            for i in 0..list.len() {
                if list.is_null(i) {
                    return Err(bad_row(
                        i,
                        ALIAS_NAMES_COLUMN,
                        "null (an empty list means no alias)",
                    ));
                }
                let vals = list.value(i);
                let vals = vals
                    .as_any()
                    .downcast_ref::<FixedSizeBinaryArray>()
                    .filter(|v| v.value_length() as usize == width && v.null_count() == 0)
                    .ok_or_else(|| {
                        bad_row(
                            i,
                            ALIAS_NAMES_COLUMN,
                            "not names parts of the file's length",
                        )
                    })?;
                out.alias_names.push(
                    (0..vals.len())
                        .filter_map(|j| Clk::from_bytes(vals.value(j).to_vec()))
                        .collect(),
                );
            }
        }
    }
    Ok(())
}

/// Longest CLK crosswalk reads (bits).
pub const MAX_CLK_BITS: usize = 1 << 16;

/// A record key as [`crate::encode::Encoder::record_key`] writes it: 32 lower-case hex digits.
fn is_record_key(k: &str) -> bool {
    super::is_hex32(k)
}

/// Reads CLKs in clkhash's formats (JSON `{"clks": [base64, ...]}`, or CSV with a base64
/// `clk` column) as encodings: the agency is the file's stem, record keys are the row numbers
/// from 0 (clkhash's entity ids), event facts are unknown. Such files carry no schema
/// fingerprint or key check value: they link with each other (fingerprint
/// [`CLKHASH_FINGERPRINT`]), never with crosswalk's own encodings.
pub fn read_clkhash(path: &Path) -> Result<Encodings> {
    let clks = super::clk_files::read_clks(path)?;
    let bytes = clks.first().map_or(0, |c| c.len());
    if clks.iter().any(|c| c.len() != bytes) {
        return Err(Error::encoding(
            path,
            "CLKs of different lengths in one file",
        ));
    }
    if bytes == 0 || !bytes.is_multiple_of(8) {
        return Err(Error::encoding(
            path,
            format!(
                "CLKs of {} bits: crosswalk links CLKs whose length is a multiple of 64 bits",
                bytes * 8
            ),
        ));
    }
    let n = clks.len();
    let agency = path
        .file_stem()
        .map(|s| s.to_string_lossy().trim_end_matches(".clks").to_string())
        .unwrap_or_default();
    Ok(Encodings {
        meta: FileMeta {
            version: "clkhash".to_string(),
            schema_fingerprint: CLKHASH_FINGERPRINT.to_string(),
            kcv: "unknown".to_string(),
            clk_bits: bytes * 8,
            agency,
            agency_type: "other".to_string(),
            rows: n as u64,
            rejected_rows: 0,
            hardening: "unknown".to_string(),
            ..FileMeta::default()
        },
        record_key: (0..n).map(|i| i.to_string()).collect(),
        clks: clks.concat(),
        alias_clks: vec![Vec::new(); n],
        stage: vec![None; n],
        service_type: vec![None; n],
        event_date: vec![None; n],
        end_date: vec![None; n],
        unit: vec![None; n],
        age_band: vec!["unknown".to_string(); n],
        sex: vec!["unknown".to_string(); n],
        trafficking_type: vec!["unknown".to_string(); n],
        dob_from_age: vec![false; n],
        parts: PartColumns::default(),
    })
}

/// Reads a local map: `(agency, [(local_id, record_key)])`.
pub fn read_local_map(path: &Path) -> Result<(String, Vec<(String, String)>)> {
    super::guard_reader(path, || read_local_map_unguarded(path))
}

fn read_local_map_unguarded(path: &Path) -> Result<(String, Vec<(String, String)>)> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| Error::encoding(path, format!("not a readable Parquet file ({e})")))?;
    let agency = builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .and_then(|kv| kv.iter().find(|k| k.key == "crosswalk.agency"))
        .and_then(|k| k.value.clone())
        .ok_or_else(|| Error::encoding(path, "not a crosswalk local map (no crosswalk.agency)"))?;
    let reader = builder.build().map_err(|e| Error::parquet(path, e))?;
    let mut rows = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| Error::parquet(path, e))?;
        let ids: &StringArray = column(&batch, "local_id", path)?;
        let keys: &StringArray = column(&batch, "record_key", path)?;
        for i in 0..ids.len() {
            rows.push((ids.value(i).to_string(), keys.value(i).to_string()));
        }
    }
    Ok((agency, rows))
}

/// Streams the agency's local map (`local_id`, `record_key`, `row`): the file that turns
/// results back into the agency's own ids. It stays at the agency; never send it.
pub struct LocalMapWriter {
    writer: ArrowWriter<AtomicFile>,
    schema: SchemaRef,
    agency: String,
}

impl std::fmt::Debug for LocalMapWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LocalMapWriter")
    }
}

impl LocalMapWriter {
    /// Starts a local map at `path` (temporary name until [`LocalMapWriter::finish`]).
    pub fn create(path: &Path, agency: &str) -> Result<LocalMapWriter> {
        let schema = Arc::new(Schema::new(vec![
            ArrowField::new("local_id", DataType::Utf8, false),
            ArrowField::new("record_key", DataType::Utf8, false),
            ArrowField::new("row", DataType::UInt64, false),
        ]));
        let file = AtomicFile::create(path)?;
        let writer = ArrowWriter::try_new(file, schema.clone(), Some(properties(&["record_key"])))
            .map_err(|e| Error::parquet(path, e))?;
        Ok(LocalMapWriter {
            writer,
            schema,
            agency: agency.to_string(),
        })
    }

    /// Appends `(local_id, record_key, row)` entries.
    pub fn write(&mut self, rows: &[(&str, &str, u64)]) -> Result<()> {
        let dest = self.writer.inner().dest().to_path_buf();
        let batch = RecordBatch::try_new(
            self.schema.clone(),
            vec![
                Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0))),
                Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.1))),
                Arc::new(arrow_array::UInt64Array::from_iter_values(
                    rows.iter().map(|r| r.2),
                )),
            ],
        )
        .map_err(|e| Error::parquet(&dest, e))?;
        self.writer
            .write(&batch)
            .map_err(|e| Error::parquet(&dest, e))
    }

    /// Writes the footer and renames the file into place.
    pub fn finish(mut self) -> Result<()> {
        let dest = self.writer.inner().dest().to_path_buf();
        self.writer.append_key_value_metadata(KeyValue::new(
            "crosswalk.format".into(),
            "crosswalk-local-map/1 (stays at the agency: never send this file)".to_string(),
        ));
        self.writer.append_key_value_metadata(KeyValue::new(
            "crosswalk.agency".into(),
            self.agency.clone(),
        ));
        let file = self
            .writer
            .into_inner()
            .map_err(|e| Error::parquet(&dest, e))?;
        file.commit()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Files that agree on schema, key and CLK length but not on their parts (one altered after
    /// encoding) are refused, naming what differs; the layout text round-trips.
    #[test]
    fn check_same_compares_the_parts_layout() {
        let layout = vec![(Part::Names, 1024), (Part::Dob, 1024)];
        let text = parts_layout_text(&layout);
        assert_eq!(text, "names:1024,dob:1024");
        assert_eq!(parse_parts_layout(&text), Some(layout.clone()));
        for bad in [
            "dob:1024,names:1024",
            "names:1000",
            "names:0",
            "nick:64",
            "names",
        ] {
            assert_eq!(parse_parts_layout(bad), None, "{bad}");
        }
        let a = FileMeta {
            schema_fingerprint: "f".into(),
            kcv: "k".into(),
            clk_bits: 1024,
            parts: layout,
            parts_hardening: "diffusion 4".into(),
            ..FileMeta::default()
        };
        let mut b = a.clone();
        assert!(check_same(&a, Path::new("a"), &b, Path::new("b")).is_ok());
        b.parts.pop();
        let err = check_same(&a, Path::new("a"), &b, Path::new("b")).unwrap_err();
        assert!(err.to_string().contains("parts layout"), "{err}");
        let mut c = a.clone();
        c.parts_hardening = "none".into();
        assert!(check_same(&a, Path::new("a"), &c, Path::new("c")).is_err());
    }
}

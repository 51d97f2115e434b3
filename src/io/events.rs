//! `RUN_DIR/events.parquet`: every encoded event of a linkage run with its person, the input of
//! the analytics ([`crate::analytics`]).
//!
//! The link job writes it from the encodings files (their event facts, without CLKs), so that a
//! run directory is self-contained: `crosswalk report RUN_DIR` needs nothing else. It holds no
//! identifier, only pseudonyms and coarse facts; it is the taskforce's person-level view and is
//! not for publication (docs/privacy.md).

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow_array::{Array, ArrayRef, Date32Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field as ArrowField, Schema, SchemaRef};
use chrono::NaiveDate;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::analytics::{self, Event, EventLog};
use crate::error::{Error, Result};

/// Format tag in the file metadata.
pub const FORMAT: &str = "crosswalk-events/1";

/// One event row as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRow<'a> {
    /// Person id (`P-000001`).
    pub person_id: &'a str,
    /// Agency name.
    pub agency: &'a str,
    /// Agency type label.
    pub agency_type: &'a str,
    /// Record pseudonym.
    pub record_key: &'a str,
    /// Stage label.
    pub stage: Option<&'a str>,
    /// Service type label.
    pub service_type: Option<&'a str>,
    /// Start date.
    pub event_date: Option<NaiveDate>,
    /// End date.
    pub end_date: Option<NaiveDate>,
    /// Age band label.
    pub age_band: &'a str,
    /// Sex label.
    pub sex: &'a str,
    /// Trafficking type label.
    pub trafficking_type: &'a str,
}

fn schema() -> SchemaRef {
    let s = |n: &str, null: bool| ArrowField::new(n, DataType::Utf8, null);
    Arc::new(Schema::new(vec![
        s("person_id", false),
        s("agency", false),
        s("agency_type", false),
        s("record_key", false),
        s("stage", true),
        s("service_type", true),
        ArrowField::new("event_date", DataType::Date32, true),
        ArrowField::new("end_date", DataType::Date32, true),
        s("age_band", false),
        s("sex", false),
        s("trafficking_type", false),
    ]))
}

fn epoch() -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default()
}

/// Writes `rows` to `path` atomically.
pub fn write(path: &Path, rows: &[EventRow<'_>]) -> Result<()> {
    let bad = |e: arrow_schema::ArrowError| Error::parquet(path, e);
    fn strs<'r>(rows: &'r [EventRow<'r>], f: fn(&'r EventRow<'r>) -> Option<&'r str>) -> ArrayRef {
        Arc::new(rows.iter().map(f).collect::<StringArray>())
    }
    let dates = |f: &dyn Fn(&EventRow<'_>) -> Option<NaiveDate>| -> ArrayRef {
        Arc::new(
            rows.iter()
                .map(|r| f(r).map(|d| (d - epoch()).num_days() as i32))
                .collect::<Date32Array>(),
        )
    };
    let columns = vec![
        strs(rows, |r| Some(r.person_id)),
        strs(rows, |r| Some(r.agency)),
        strs(rows, |r| Some(r.agency_type)),
        strs(rows, |r| Some(r.record_key)),
        strs(rows, |r| r.stage),
        strs(rows, |r| r.service_type),
        dates(&|r| r.event_date),
        dates(&|r| r.end_date),
        strs(rows, |r| Some(r.age_band)),
        strs(rows, |r| Some(r.sex)),
        strs(rows, |r| Some(r.trafficking_type)),
    ];
    let batch = RecordBatch::try_new(schema(), columns).map_err(bad)?;
    super::write_parquet(path, &batch, &[("crosswalk.format", FORMAT.to_string())])
}

/// The events of a run, as read: the analytics' [`EventLog`] plus each event's record.
#[derive(Debug, Clone, Default)]
pub struct RunEvents {
    /// Events with persons numbered from their `P-` ids.
    pub log: EventLog,
    /// `(agency, record_key)` of each event, parallel to `log.events`.
    pub records: Vec<(String, String)>,
}

/// Reads `RUN_DIR/events.parquet`.
pub fn read(run: &Path) -> Result<RunEvents> {
    let path = run.join("events.parquet");
    super::guard_reader(&path, || read_unguarded(&path))
}

fn read_unguarded(path: &Path) -> Result<RunEvents> {
    let path = path.to_path_buf();
    let file = File::open(&path).map_err(|e| Error::io(&path, e))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| Error::encoding(&path, format!("not a readable Parquet file ({e})")))?;
    let tagged = builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .is_some_and(|kv| {
            kv.iter()
                .any(|k| k.key == "crosswalk.format" && k.value.as_deref() == Some(FORMAT))
        });
    if !tagged {
        return Err(Error::encoding(
            &path,
            format!("not a crosswalk events file (expected crosswalk.format = {FORMAT}); re-run `crosswalk link`"),
        ));
    }
    let reader = builder.build().map_err(|e| Error::parquet(&path, e))?;
    let mut out = RunEvents::default();
    let wrong = || Error::encoding(&path, "a column is missing or has the wrong type");
    for batch in reader {
        let batch = batch.map_err(|e| Error::parquet(&path, e))?;
        let s = |name: &str| {
            batch
                .column_by_name(name)
                .and_then(|c| c.as_any().downcast_ref::<StringArray>())
                .ok_or_else(wrong)
        };
        let d = |name: &str| {
            batch
                .column_by_name(name)
                .and_then(|c| c.as_any().downcast_ref::<Date32Array>())
                .ok_or_else(wrong)
        };
        let (person, agency, atype, key) = (
            s("person_id")?,
            s("agency")?,
            s("agency_type")?,
            s("record_key")?,
        );
        let (stage, service, age, sex, tt) = (
            s("stage")?,
            s("service_type")?,
            s("age_band")?,
            s("sex")?,
            s("trafficking_type")?,
        );
        let (start, end) = (d("event_date")?, d("end_date")?);
        fn opt(a: &StringArray, i: usize) -> Option<&str> {
            (!a.is_null(i)).then(|| a.value(i))
        }
        let date = |a: &Date32Array, i: usize| {
            (!a.is_null(i))
                .then(|| epoch().checked_add_signed(chrono::TimeDelta::days(a.value(i) as i64)))
                .flatten()
        };
        for i in 0..batch.num_rows() {
            let p: u32 = person
                .value(i)
                .trim_start_matches("P-")
                .parse()
                .map_err(|_| {
                    Error::encoding(&path, format!("row {}: person_id is not P-<number>", i + 1))
                })?;
            let a = out.log.agency(agency.value(i), atype.value(i));
            out.log.events.push(Event {
                person: p,
                agency: a,
                stage: opt(stage, i).and_then(|v| analytics::index_of(&analytics::STAGES, v)),
                service: opt(service, i)
                    .and_then(|v| analytics::index_of(&analytics::SERVICE_TYPES, v)),
                start: date(start, i),
                end: date(end, i),
                age_band: analytics::index_of(&analytics::AGE_BANDS, age.value(i))
                    .unwrap_or(analytics::AGE_BAND_UNKNOWN),
                sex: analytics::index_of(&analytics::SEXES, sex.value(i)).unwrap_or(3),
                trafficking: analytics::index_of(&analytics::TRAFFICKING_TYPES, tt.value(i))
                    .unwrap_or(3),
            });
            out.records
                .push((agency.value(i).to_string(), key.value(i).to_string()));
        }
    }
    Ok(out)
}
/// Writes `events.parquet` (every row of `files` with its person, no CLKs) atomically, rows
/// sorted by every column so that input order does not matter. `person_of(agency,
/// record_key)` gives each row's person id; a row without one is an error.
pub fn write_from_encodings<'p>(
    path: &Path,
    files: &[super::encodings::Encodings],
    person_of: &dyn Fn(&str, &str) -> Option<&'p str>,
) -> Result<()> {
    let mut event_rows = Vec::with_capacity(files.iter().map(|f| f.len()).sum());
    for f in files {
        for i in 0..f.len() {
            let person_id = person_of(&f.meta.agency, &f.record_key[i]).ok_or_else(|| {
                Error::encoding(
                    path,
                    format!("row {} of an encodings file has no person", i + 1),
                )
            })?;
            event_rows.push(EventRow {
                person_id,
                agency: &f.meta.agency,
                agency_type: &f.meta.agency_type,
                record_key: &f.record_key[i],
                stage: f.stage[i].as_deref(),
                service_type: f.service_type[i].as_deref(),
                event_date: f.event_date[i],
                end_date: f.end_date[i],
                age_band: &f.age_band[i],
                sex: &f.sex[i],
                trafficking_type: &f.trafficking_type[i],
            });
        }
    }
    event_rows.sort_by(|a, b| {
        (
            a.agency,
            a.record_key,
            a.event_date,
            a.stage,
            a.service_type,
            a.end_date,
        )
            .cmp(&(
                b.agency,
                b.record_key,
                b.event_date,
                b.stage,
                b.service_type,
                b.end_date,
            ))
            .then_with(|| {
                (a.age_band, a.sex, a.trafficking_type).cmp(&(
                    b.age_band,
                    b.sex,
                    b.trafficking_type,
                ))
            })
    });
    write(path, &event_rows)
}

//! Parquet exports as input: every top-level column becomes a text cell, so a Parquet export
//! goes through exactly the same mapping and extraction as a CSV one.
//!
//! Conversions: strings as they are; integers and floats in decimal (`6106.0` prints `6106`);
//! booleans `true`/`false`; `date32`/`date64` as `YYYY-MM-DD` and timestamps as
//! `YYYY-MM-DD HH:MM:SS` (UTC, whatever the unit), so a mapping lists those date patterns;
//! binary columns as raw bytes (decoded with the mapping's text encoding). Columns of other types
//! (lists, structs, ...) are readable only if the mapping does not use them. Nulls are empty
//! cells. The `line` of a row is its row number.

use std::fs::File;
use std::path::{Path, PathBuf};

use arrow_array::cast::AsArray;
use arrow_array::types::*;
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{DataType, TimeUnit};
use chrono::{DateTime, NaiveDate};
use csv::ByteRecord;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};

use super::csv_in::RawRow;
use crate::error::{Error, Result};

/// An open Parquet export.
pub struct ParquetSource {
    reader: ParquetRecordBatchReader,
    path: PathBuf,
    headers: Vec<String>,
    unsupported: Vec<usize>,
    pending: Option<(RecordBatch, usize)>,
    rows: u64,
}

impl std::fmt::Debug for ParquetSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParquetSource")
            .field("path", &self.path)
            .field("columns", &self.headers.len())
            .finish()
    }
}

fn supported(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Utf8
            | DataType::LargeUtf8
            | DataType::Utf8View
            | DataType::Binary
            | DataType::LargeBinary
            | DataType::Boolean
            | DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
            | DataType::UInt64
            | DataType::Float32
            | DataType::Float64
            | DataType::Date32
            | DataType::Date64
            | DataType::Timestamp(_, _)
    )
}

impl ParquetSource {
    /// Opens `path` and reads its schema.
    pub fn open(path: &Path) -> Result<ParquetSource> {
        super::guard_reader(path, || ParquetSource::open_unguarded(path))
    }

    fn open_unguarded(path: &Path) -> Result<ParquetSource> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(file)
            .map_err(|e| Error::input(path, format!("not a readable Parquet file ({e})")))?;
        let schema = builder.schema().clone();
        let headers: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
        if headers.is_empty() {
            return Err(Error::input(path, "the Parquet file has no columns"));
        }
        let unsupported = schema
            .fields()
            .iter()
            .enumerate()
            .filter(|(_, f)| !supported(f.data_type()))
            .map(|(i, _)| i)
            .collect();
        let reader = builder
            .with_batch_size(8192)
            .build()
            .map_err(|e| Error::parquet(path, e))?;
        Ok(ParquetSource {
            reader,
            path: path.to_path_buf(),
            headers,
            unsupported,
            pending: None,
            rows: 0,
        })
    }

    /// The column names.
    pub fn headers(&self) -> &[String] {
        &self.headers
    }

    /// Indices of columns whose type cannot be read as text.
    pub fn unsupported(&self) -> &[usize] {
        &self.unsupported
    }

    /// Fills `chunk` with up to `max` rows; returns how many (0 at the end).
    pub fn read_chunk(&mut self, chunk: &mut Vec<RawRow>, max: usize) -> Result<usize> {
        let path = self.path.clone();
        super::guard_reader(&path, || self.read_chunk_unguarded(chunk, max))
    }

    fn read_chunk_unguarded(&mut self, chunk: &mut Vec<RawRow>, max: usize) -> Result<usize> {
        chunk.clear();
        while chunk.len() < max {
            let (batch, start) = match self.pending.take() {
                Some(p) => p,
                None => match self.reader.next() {
                    Some(b) => (b.map_err(|e| Error::parquet(&self.path, e))?, 0),
                    None => break,
                },
            };
            let end = batch.num_rows().min(start + max - chunk.len());
            for r in start..end {
                let mut record = ByteRecord::new();
                for (c, col) in batch.columns().iter().enumerate() {
                    if self.unsupported.contains(&c) {
                        record.push_field(b"");
                    } else {
                        record.push_field(&cell(col, r));
                    }
                }
                self.rows += 1;
                chunk.push(RawRow {
                    row: self.rows,
                    line: self.rows,
                    record,
                });
            }
            if end < batch.num_rows() {
                self.pending = Some((batch, end));
            }
        }
        Ok(chunk.len())
    }
}

fn date(days: i64) -> String {
    NaiveDate::from_ymd_opt(1970, 1, 1)
        .and_then(|d| d.checked_add_signed(chrono::TimeDelta::days(days)))
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

fn timestamp(secs: i64, nanos: u32) -> String {
    DateTime::from_timestamp(secs, nanos)
        .map(|t| t.naive_utc().format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_default()
}

/// Cell `r` of a supported column as bytes (empty for null).
fn cell(col: &ArrayRef, r: usize) -> Vec<u8> {
    if col.is_null(r) {
        return Vec::new();
    }
    let s = match col.data_type() {
        DataType::Utf8 => col.as_string::<i32>().value(r).to_string(),
        DataType::LargeUtf8 => col.as_string::<i64>().value(r).to_string(),
        DataType::Utf8View => col.as_string_view().value(r).to_string(),
        DataType::Binary => return col.as_binary::<i32>().value(r).to_vec(),
        DataType::LargeBinary => return col.as_binary::<i64>().value(r).to_vec(),
        DataType::Boolean => col.as_boolean().value(r).to_string(),
        DataType::Int8 => col.as_primitive::<Int8Type>().value(r).to_string(),
        DataType::Int16 => col.as_primitive::<Int16Type>().value(r).to_string(),
        DataType::Int32 => col.as_primitive::<Int32Type>().value(r).to_string(),
        DataType::Int64 => col.as_primitive::<Int64Type>().value(r).to_string(),
        DataType::UInt8 => col.as_primitive::<UInt8Type>().value(r).to_string(),
        DataType::UInt16 => col.as_primitive::<UInt16Type>().value(r).to_string(),
        DataType::UInt32 => col.as_primitive::<UInt32Type>().value(r).to_string(),
        DataType::UInt64 => col.as_primitive::<UInt64Type>().value(r).to_string(),
        DataType::Float32 => col.as_primitive::<Float32Type>().value(r).to_string(),
        DataType::Float64 => col.as_primitive::<Float64Type>().value(r).to_string(),
        DataType::Date32 => date(col.as_primitive::<Date32Type>().value(r) as i64),
        DataType::Date64 => date(
            col.as_primitive::<Date64Type>()
                .value(r)
                .div_euclid(86_400_000),
        ),
        DataType::Timestamp(unit, _) => {
            let (v, per_sec) = match unit {
                TimeUnit::Second => (col.as_primitive::<TimestampSecondType>().value(r), 1),
                TimeUnit::Millisecond => (
                    col.as_primitive::<TimestampMillisecondType>().value(r),
                    1_000,
                ),
                TimeUnit::Microsecond => (
                    col.as_primitive::<TimestampMicrosecondType>().value(r),
                    1_000_000,
                ),
                TimeUnit::Nanosecond => (
                    col.as_primitive::<TimestampNanosecondType>().value(r),
                    1_000_000_000,
                ),
            };
            let secs = v.div_euclid(per_sec);
            let nanos = (v.rem_euclid(per_sec) * (1_000_000_000 / per_sec)) as u32;
            timestamp(secs, nanos)
        }
        _ => String::new(),
    };
    s.into_bytes()
}

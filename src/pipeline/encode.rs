//! The agency's job: one export in, one encodings file (plus rejects report and, on request, a
//! local map) out.
//!
//! Rows are read in chunks of [`EncodeJob::chunk_rows`]; each chunk is extracted, normalised and
//! encoded in parallel (rayon, one [`Scratch`] per worker) and written in input order, so memory
//! stays bounded whatever the file size and the output is byte-identical at any thread count.
//! All outputs are written under temporary names and renamed into place only when the whole
//! export has been processed; on error nothing is replaced.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use bloomfilter::Bloom;
use chrono::NaiveDate;
use rayon::prelude::*;

use crate::encode::{Encoder, Scratch};
use crate::error::{Error, Result};
use crate::io::csv_in::{CsvSource, RawRow};
use crate::io::encodings::{EncodedRow, EncodingWriter, FileMeta, LocalMapWriter};
use crate::io::AtomicFile;
use crate::keys::SecretKey;
use crate::schema::LinkageSchema;
use crate::source::{Extracted, Extractor, SourceMapping, UnknownCode, UnknownCodes};

/// Everything one encode run needs, validated.
#[derive(Debug)]
pub struct EncodeJob {
    /// The linkage schema (shared by all agencies).
    pub schema: LinkageSchema,
    /// This export's source mapping.
    pub mapping: SourceMapping,
    /// The shared secret.
    pub key: SecretKey,
    /// The export (CSV).
    pub input: PathBuf,
    /// The encodings file to write.
    pub out: PathBuf,
    /// Where to write the local map (local id ↔ record_key), if anywhere.
    pub map_out: Option<PathBuf>,
    /// Where to write the rejects report.
    pub rejects: PathBuf,
    /// Worker threads (0: one per core).
    pub threads: usize,
    /// Dates after this day are rejected as "in the future".
    pub today: NaiveDate,
    /// Rows per chunk (memory bound); 16,384 is a good default.
    pub chunk_rows: usize,
}

impl EncodeJob {
    /// The rejects path used when none is given: `OUT` with `.rejects.csv` for its extension.
    pub fn default_rejects_path(out: &std::path::Path) -> PathBuf {
        out.with_extension("rejects.csv")
    }
}

/// What an encode run did: counts only, never values.
#[derive(Debug, Clone, Default)]
pub struct EncodeSummary {
    /// Data rows read.
    pub rows_read: u64,
    /// Rows encoded and written.
    pub rows_written: u64,
    /// Rows rejected as a whole.
    pub rows_rejected: u64,
    /// Field values dropped (row kept), by (field, reason).
    pub field_issues: BTreeMap<(String, String), u64>,
    /// Row rejections by (field, reason).
    pub row_rejections: BTreeMap<(String, String), u64>,
    /// Unknown codes with their counts.
    pub unknown_codes: BTreeMap<UnknownCode, u64>,
    /// Alias CLKs written.
    pub alias_clks: u64,
    /// Rows whose CLK (probably) equals an earlier row's: repeat contacts of the same person
    /// with identical identifiers. Approximate (a Bloom filter; false-positive rate 0.1%).
    pub repeat_rows: u64,
    /// Key check value of the key used.
    pub kcv: String,
    /// Schema fingerprint.
    pub schema_fingerprint: String,
    /// Wall time.
    pub elapsed: Duration,
}

impl EncodeSummary {
    /// Rows per second over the whole run.
    pub fn rows_per_second(&self) -> f64 {
        self.rows_read as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

enum Outcome {
    Row(Box<EncodedRow>),
    Rejected,
}

/// Runs an encode job. `progress` is called with the number of rows done after each chunk.
pub fn run(job: &EncodeJob, progress: &mut dyn FnMut(u64)) -> Result<EncodeSummary> {
    let start = Instant::now();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(job.threads)
        .build()
        .map_err(|e| Error::io("<thread pool>", std::io::Error::other(e.to_string())))?;
    let mapping = &job.mapping;
    let mut source = CsvSource::open(&job.input, mapping.delimiter_byte(), mapping.encoding)?;
    let extractor = Extractor::new(mapping, source.headers(), job.today, &job.input)?;
    let encoder = Encoder::new(&job.schema, &job.key);
    let mut summary = EncodeSummary {
        kcv: job.key.check_value(),
        schema_fingerprint: job.schema.fingerprint(),
        ..EncodeSummary::default()
    };
    let agency_type = mapping.agency_type.label();
    let mut writer = EncodingWriter::create(
        &job.out,
        encoder.output_bits(),
        &mapping.agency,
        agency_type,
    )?;
    let mut map = job
        .map_out
        .as_deref()
        .map(LocalMapWriter::create)
        .transpose()?;
    let mut rejects = csv::Writer::from_writer(AtomicFile::create(&job.rejects)?);
    let rej_err = |e: csv::Error| Error::io(&job.rejects, std::io::Error::other(e.to_string()));
    rejects
        .write_record(["row", "line", "field", "column", "action", "reason"])
        .map_err(rej_err)?;
    let mut seen: Bloom<[u8]> = Bloom::new_for_fp_rate_with_seed(2_000_000, 0.001, &[7u8; 32])
        .map_err(|e| Error::io("<bloom filter>", std::io::Error::other(e)))?;

    let mut chunk: Vec<RawRow> = Vec::new();
    let mut outcomes: Vec<(Extracted, Outcome)> = Vec::new();
    let mut written: Vec<EncodedRow> = Vec::new();
    loop {
        let n = source.read_chunk(&mut chunk, job.chunk_rows.max(1))?;
        if n == 0 {
            break;
        }
        pool.install(|| {
            chunk
                .par_iter()
                .map_init(Scratch::default, |scratch, raw| {
                    let cells: Vec<&[u8]> = raw.record.iter().collect();
                    let ex = extractor.extract(&cells);
                    if ex.rejected {
                        return (ex, Outcome::Rejected);
                    }
                    let clk = encoder.encode(&ex.ids, scratch);
                    let alias_clks = ex
                        .aliases
                        .iter()
                        .map(|a| {
                            let mut ids = ex.ids.clone();
                            ids.set_names(a);
                            encoder.encode(&ids, scratch)
                        })
                        .collect();
                    let row = EncodedRow {
                        record_key: encoder.record_key(&mapping.agency, &ex.local_id),
                        clk,
                        alias_clks,
                        facts: ex.facts.clone(),
                    };
                    (ex, Outcome::Row(Box::new(row)))
                })
                .collect_into_vec(&mut outcomes)
        });
        written.clear();
        let mut map_rows: Vec<(&str, &str, u64)> = Vec::new();
        for ((ex, outcome), raw) in outcomes.iter().zip(&chunk) {
            summary.rows_read += 1;
            for issue in &ex.issues {
                let action = if issue.row_rejected {
                    "row rejected"
                } else {
                    "field dropped"
                };
                let counter = if issue.row_rejected {
                    &mut summary.row_rejections
                } else {
                    &mut summary.field_issues
                };
                *counter
                    .entry((issue.field.to_string(), issue.reason.clone()))
                    .or_default() += 1;
                rejects
                    .write_record([
                        raw.row.to_string().as_str(),
                        raw.line.to_string().as_str(),
                        issue.field,
                        issue.column.as_str(),
                        action,
                        issue.reason.as_str(),
                    ])
                    .map_err(rej_err)?;
            }
            for code in &ex.unknown_codes {
                *summary.unknown_codes.entry(code.clone()).or_default() += 1;
                rejects
                    .write_record([
                        raw.row.to_string().as_str(),
                        raw.line.to_string().as_str(),
                        code.column_kind,
                        "",
                        "row rejected",
                        "code not listed in the source mapping",
                    ])
                    .map_err(rej_err)?;
            }
            match outcome {
                Outcome::Rejected => summary.rows_rejected += 1,
                Outcome::Row(row) => {
                    if seen.check_and_set(row.clk.as_bytes()) {
                        summary.repeat_rows += 1;
                    }
                    summary.alias_clks += row.alias_clks.len() as u64;
                    if map.is_some() {
                        map_rows.push((ex.local_id.as_str(), row.record_key.as_str(), raw.row));
                    }
                }
            }
        }
        if let Some(m) = map.as_mut() {
            m.write(&map_rows)?;
        }
        drop(map_rows);
        written.extend(outcomes.drain(..).filter_map(|(_, o)| match o {
            Outcome::Row(r) => Some(*r),
            Outcome::Rejected => None,
        }));
        writer.write(&written)?;
        summary.rows_written += written.len() as u64;
        progress(summary.rows_read);
    }

    // The rejects report is the diagnosis: it is kept even when the run fails below.
    let rejects = rejects
        .into_inner()
        .map_err(|e| Error::io(&job.rejects, e.into_error()))?;
    rejects.commit()?;
    if !summary.unknown_codes.is_empty() && mapping.unknown_codes == UnknownCodes::Error {
        let list: Vec<String> = summary
            .unknown_codes
            .iter()
            .map(|(c, n)| format!("{} {} ({n} rows)", c.column_kind, c.code))
            .collect();
        return Err(Error::input(
            &job.input,
            format!(
                "{} unknown code(s): {}. Add them to [event_codes] / [service_codes] of the \
                 source mapping (or set unknown_codes = \"reject\"); no encodings were written.",
                summary.unknown_codes.len(),
                list.join(", ")
            ),
        ));
    }
    if summary.rows_read > 0 && summary.rows_written == 0 {
        return Err(Error::input(
            &job.input,
            format!(
                "all {} rows were rejected; no encodings were written. The rejects report {} \
                 says why, row by row; check the source mapping against the export.",
                summary.rows_read,
                job.rejects.display()
            ),
        ));
    }
    let meta = FileMeta {
        version: env!("CARGO_PKG_VERSION").to_string(),
        schema_fingerprint: summary.schema_fingerprint.clone(),
        kcv: summary.kcv.clone(),
        clk_bits: encoder.output_bits(),
        agency: mapping.agency.clone(),
        agency_type: agency_type.to_string(),
        rows: summary.rows_written,
        rejected_rows: summary.rows_rejected,
    };
    writer.finish(&meta)?;
    if let Some(m) = map {
        m.finish()?;
    }
    summary.elapsed = start.elapsed();
    Ok(summary)
}

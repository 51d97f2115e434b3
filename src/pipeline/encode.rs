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

use chrono::NaiveDate;
use rayon::prelude::*;

use crate::encode::{PartScratch, RowEncoder, RowScratch, Scratch};
use crate::error::{Error, Result};
use crate::io::csv_in::RawRow;
use crate::io::encodings::{EncodedRow, EncodingWriter, FileMeta, LocalMapWriter};
use crate::io::{AtomicFile, ExportSource};
use crate::keys::SecretKey;
use crate::schema::LinkageSchema;
use crate::source::{
    Extracted, Extractor, SourceMapping, UnknownCodeLine, UnknownCodeTally, UnknownCodes,
};

/// Rows per chunk of the encode pipeline: 8,192 used 4% less CPU than 16,384 (fewer rows in
/// flight, so their memory is reused sooner instead of fresh pages being zeroed) and the same
/// as 4,096 (interleaved runs on a 203k-row export, docs/encoding.md).
pub const DEFAULT_CHUNK_ROWS: usize = 8 * 1024;

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
    /// Rows per chunk (memory bound); [`DEFAULT_CHUNK_ROWS`] unless there is a reason.
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
    /// Unknown codes with their counts: a code only where it cannot be an identifier, else its
    /// shape and first rows ([`UnknownCodeTally::lines`]).
    pub unknown_codes: Vec<UnknownCodeLine>,
    /// Codes of the sex and trafficking-type columns that the mapping does not list and the
    /// built-in tables read (`X` as sex `other`), shown like unknown codes: list them in
    /// `[sex_codes]` / `[trafficking_codes]` to read them otherwise.
    pub builtin_readings: Vec<UnknownCodeLine>,
    /// Alias CLKs written.
    pub alias_clks: u64,
    /// Rows whose CLK equals an earlier row's: repeat contacts of the same person with
    /// identical identifiers. Counted from a 64-bit digest of each CLK, so two different CLKs
    /// whose digests collide would count as a repeat (for a uniform 64-bit hash, odds below 1
    /// in 10^7 at a million rows).
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

/// Refuses output paths that would overwrite the input or each other (a local map written over
/// the encodings file would send local ids to the taskforce).
fn check_paths(job: &EncodeJob) -> Result<()> {
    let abs = |p: &std::path::Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let mut seen = vec![("--input", abs(&job.input))];
    let outputs = [
        Some(("--out", &job.out)),
        job.map_out.as_ref().map(|m| ("--map-out", m)),
        Some(("--rejects", &job.rejects)),
    ];
    for (flag, path) in outputs.into_iter().flatten() {
        let p = abs(path);
        if let Some((other, _)) = seen.iter().find(|(_, q)| *q == p) {
            return Err(Error::config(
                path,
                format!("{flag} names the same file as {other}; give each output its own path"),
            ));
        }
        seen.push((flag, p));
    }
    Ok(())
}

/// How many of `digests` repeat an earlier one (sorts them).
///
/// Replaces a Bloom filter probed row by row on the writer thread: its seven probes per row
/// were 4% of a profile's samples, and removing them saved 7% of the job's CPU (an
/// interleaved A/B, docs/measurements/2026-12-07-encode-cpu.md); its count was approximate.
/// This one is exact up to a collision of two CLKs' 64-bit digests.
fn repeats(digests: &mut [u64]) -> u64 {
    digests.sort_unstable();
    digests.windows(2).filter(|w| w[0] == w[1]).count() as u64
}

/// Extracts, normalises and encodes one row.
fn process(
    raw: &RawRow,
    extractor: &Extractor,
    row: &RowEncoder,
    agency: &str,
    (scratch, part_scratch, row_scratch): &mut (Scratch, PartScratch, RowScratch),
) -> (Extracted, Outcome) {
    let (encoder, parts) = (row.record(), row.parts());
    let cells: Vec<&[u8]> = raw.record.iter().collect();
    let mut ex = extractor.extract(&cells);
    if ex.rejected {
        return (ex, Outcome::Rejected);
    }
    // Birth years of an age only where the schema tokenises them as a date's years.
    let dob = crate::schema::Field::Dob;
    let mut dob_from_age = ex
        .ids
        .get(dob)
        .is_some_and(crate::normalize::is_birth_years);
    if dob_from_age && !row.takes_birth_years() {
        ex.ids.set(dob, None);
        dob_from_age = false;
    }
    // Nicknames read as full names, where the schema says so (legal names here, aliases below).
    let nicknames = row.reads_nicknames();
    if nicknames {
        crate::normalize::nicknames::read_nicknames(&mut ex.ids);
    }
    // With parts, the record CLK and the parts in one pass over the tokens.
    let (clk, part_clks) = if parts.is_empty() {
        (encoder.encode(&ex.ids, scratch), Vec::new())
    } else {
        row.encode(&ex.ids, row_scratch)
    };
    let mut alias_names = Vec::new();
    let alias_clks = ex
        .aliases
        .iter()
        .map(|a| {
            let mut ids = ex.ids.clone();
            ids.set_names(a);
            if nicknames {
                crate::normalize::nicknames::read_nicknames(&mut ids);
            }
            if let Some(p) = parts.encode_names(&ids, part_scratch) {
                alias_names.push(p);
            }
            encoder.encode(&ids, scratch)
        })
        .collect();
    let row = EncodedRow {
        record_key: encoder.record_key(agency, &ex.local_id),
        clk,
        alias_clks,
        parts: part_clks,
        alias_names,
        dob_from_age,
        facts: ex.facts.clone(), // small: a unit name and a few enums
    };
    // The normalised identifiers are done with: freed here, so they are not held while the
    // row waits for the writer (measured: no change in speed either way).
    ex.ids = Default::default();
    ex.aliases = Vec::new();
    (ex, Outcome::Row(Box::new(row)))
}

/// The sequential end of the pipeline: counts, rejects report, local map, encodings file.
struct Sink<'a> {
    summary: EncodeSummary,
    writer: EncodingWriter,
    map: Option<LocalMapWriter>,
    rejects: csv::Writer<AtomicFile>,
    rejects_path: &'a std::path::Path,
    /// A 64-bit digest of every written row's CLK, sorted and counted at the end.
    digests: Vec<u64>,
    unknown: UnknownCodeTally,
    builtin: UnknownCodeTally,
}

impl Sink<'_> {
    fn reject_row(&mut self, record: [&str; 6]) -> Result<()> {
        self.rejects
            .write_record(record)
            .map_err(|e| Error::io(self.rejects_path, std::io::Error::other(e.to_string())))
    }

    fn consume(&mut self, chunk: &[RawRow], parts: Vec<Vec<(Extracted, Outcome)>>) -> Result<()> {
        let mut map_rows: Vec<(&str, &str, u64)> = Vec::new();
        for ((ex, outcome), raw) in parts.iter().flatten().zip(chunk) {
            self.summary.rows_read += 1;
            // (formatted only for a row the rejects report names: most rows have no issue)
            let (row, line) = if ex.issues.is_empty() && ex.unknown_codes.is_empty() {
                (String::new(), String::new())
            } else {
                (raw.row.to_string(), raw.line.to_string())
            };
            for issue in &ex.issues {
                let (action, counter) = if issue.row_rejected {
                    ("row rejected", &mut self.summary.row_rejections)
                } else {
                    ("field dropped", &mut self.summary.field_issues)
                };
                *counter
                    .entry((issue.field.to_string(), issue.reason.clone()))
                    .or_default() += 1;
                self.reject_row([
                    &row,
                    &line,
                    issue.field,
                    &issue.column,
                    action,
                    &issue.reason,
                ])?;
            }
            for code in &ex.builtin_readings {
                self.builtin.add(code, raw.row);
            }
            for code in &ex.unknown_codes {
                self.unknown.add(code, raw.row);
                self.reject_row([
                    &row,
                    &line,
                    code.column_kind,
                    "",
                    "row rejected",
                    "code not listed in the source mapping",
                ])?;
            }
            match outcome {
                Outcome::Rejected => self.summary.rows_rejected += 1,
                Outcome::Row(r) => {
                    let digest = {
                        use std::hash::{Hash, Hasher};
                        let mut h = rustc_hash::FxHasher::default();
                        r.clk.as_bytes().hash(&mut h);
                        h.finish()
                    };
                    self.digests.push(digest);
                    self.summary.alias_clks += r.alias_clks.len() as u64;
                    if self.map.is_some() {
                        map_rows.push((ex.local_id.as_str(), r.record_key.as_str(), raw.row));
                    }
                }
            }
        }
        if let Some(m) = self.map.as_mut() {
            m.write(&map_rows)?;
        }
        drop(map_rows);
        let written: Vec<&EncodedRow> = parts
            .iter()
            .flatten()
            .filter_map(|(_, o)| match o {
                Outcome::Row(r) => Some(r.as_ref()),
                Outcome::Rejected => None,
            })
            .collect();
        self.writer.write(&written)?;
        self.summary.rows_written += written.len() as u64;
        Ok(())
    }
}

/// Runs an encode job. `progress` is called with the number of rows done after each chunk.
///
/// Three stages overlap: a reader thread parses CSV chunks, the rayon pool normalises and
/// encodes them, and a writer thread writes the previous chunk's results.
pub fn run(job: &EncodeJob, progress: &mut dyn FnMut(u64)) -> Result<EncodeSummary> {
    let start = Instant::now();
    check_paths(job)?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(job.threads)
        .build()
        .map_err(|e| Error::io("<thread pool>", std::io::Error::other(e.to_string())))?;
    let mapping = &job.mapping;
    let mut source = ExportSource::open(&job.input, mapping.delimiter_byte(), mapping.encoding)?;
    let extractor = Extractor::new(mapping, source.headers(), job.today, &job.input)?;
    if let Some(&c) = source
        .unsupported()
        .iter()
        .find(|c| extractor.used_columns().contains(c))
    {
        return Err(Error::input(
            &job.input,
            format!(
                "mapped column {:?} has a Parquet type crosswalk cannot read as text (a list or \
                 struct); export it as text or a plain number or date",
                source.headers()[c]
            ),
        ));
    }
    let row = RowEncoder::new(&job.schema, &job.key);
    let (encoder, parts) = (row.record(), row.parts());
    let agency_type = mapping.agency_type.label();
    let mut sink = Sink {
        summary: EncodeSummary {
            kcv: job.key.check_value(),
            schema_fingerprint: job.schema.fingerprint(),
            ..EncodeSummary::default()
        },
        writer: EncodingWriter::create(
            &job.out,
            encoder.output_bits(),
            &parts.layout(),
            &mapping.agency,
            agency_type,
        )?,
        map: job
            .map_out
            .as_deref()
            .map(|p| LocalMapWriter::create(p, &mapping.agency))
            .transpose()?,
        rejects: csv::Writer::from_writer(AtomicFile::create(&job.rejects)?),
        rejects_path: &job.rejects,
        digests: Vec::new(),
        unknown: UnknownCodeTally::default(),
        builtin: UnknownCodeTally::default(),
    };
    sink.reject_row(["row", "line", "field", "column", "action", "reason"])?;
    // One long-lived scratch (token cache) per worker, found by the worker's index: the cache
    // stays warm across chunks. Each worker only ever locks its own, so the locks are free.
    let scratches: Vec<std::sync::Mutex<(Scratch, PartScratch, RowScratch)>> = (0..pool
        .current_num_threads())
        .map(|_| std::sync::Mutex::new(Default::default()))
        .collect();
    let chunk_rows = job.chunk_rows.max(1);

    let mut sink = std::thread::scope(|s| -> Result<Sink> {
        let (chunk_tx, chunk_rx) = std::sync::mpsc::sync_channel::<Result<Vec<RawRow>>>(4);
        let (done_tx, done_rx) = std::sync::mpsc::sync_channel(4);
        // Written chunks go back to the reader, which parses the next rows into the same
        // records: after the first few chunks the reader allocates nothing, and no row's memory
        // is freed on another thread than the one that allocated it.
        let (recycle_tx, recycle_rx) = std::sync::mpsc::sync_channel::<Vec<RawRow>>(8);
        s.spawn(move || loop {
            let mut chunk = recycle_rx.try_recv().unwrap_or_default();
            match source.read_chunk(&mut chunk, chunk_rows) {
                Ok(0) => break,
                Ok(_) => {
                    if chunk_tx.send(Ok(chunk)).is_err() {
                        break;
                    }
                }
                Err(e) => {
                    let _ = chunk_tx.send(Err(e));
                    break;
                }
            }
        });
        let writer = s.spawn(move || -> Result<Sink> {
            for (chunk, parts) in done_rx {
                let chunk: Vec<RawRow> = chunk;
                sink.consume(&chunk, parts)?;
                // The reader may have finished; then the chunk is simply dropped.
                let _ = recycle_tx.try_send(chunk);
            }
            Ok(sink)
        });
        let mut done = 0u64;
        for chunk in chunk_rx {
            let chunk = chunk?;
            // Small slices, balanced by rayon's work stealing (the reader and writer threads
            // share the cores); an indexed collect keeps input order.
            let parts: Vec<Vec<(Extracted, Outcome)>> = pool.install(|| {
                chunk
                    .par_chunks(512)
                    .map(|rows| {
                        let worker = rayon::current_thread_index().unwrap_or(0);
                        let mut scratch = scratches[worker % scratches.len()]
                            .lock()
                            .unwrap_or_else(|poisoned| poisoned.into_inner());
                        rows.iter()
                            .map(|raw| {
                                process(raw, &extractor, &row, &mapping.agency, &mut scratch)
                            })
                            .collect()
                    })
                    .collect()
            });
            done += chunk.len() as u64;
            if done_tx.send((chunk, parts)).is_err() {
                break; // the writer failed; its error is reported below
            }
            progress(done);
        }
        drop(done_tx);
        writer.join().unwrap_or_else(|_| {
            Err(Error::io(
                "<writer thread>",
                std::io::Error::other("panicked"),
            ))
        })
    })?;
    let summary = &mut sink.summary;
    summary.repeat_rows = repeats(&mut sink.digests);
    summary.unknown_codes = sink.unknown.lines();
    summary.builtin_readings = sink.builtin.lines_quoting(&crate::source::is_builtin_code);

    // The rejects report is the diagnosis: it is kept even when the run fails below.
    let rejects = sink
        .rejects
        .into_inner()
        .map_err(|e| Error::io(&job.rejects, e.into_error()))?;
    rejects.commit()?;
    if !summary.unknown_codes.is_empty() && mapping.unknown_codes == UnknownCodes::Error {
        const LISTED: usize = 20;
        let lines = &summary.unknown_codes;
        let mut list: Vec<String> = lines.iter().take(LISTED).map(|l| l.to_string()).collect();
        if lines.len() > LISTED {
            list.push(format!("and {} more", lines.len() - LISTED));
        }
        return Err(Error::input(
            &job.input,
            format!(
                "unknown codes: {}. Add them to [event_codes] / [service_codes] of the source \
                 mapping (or set unknown_codes = \"reject\"); no encodings were written. A value \
                 that could be an identifier is shown by its shape (9 digit, A letter) with the \
                 rows that hold it: look there in the export, and check that the code column is \
                 the right one.",
                list.join(", ")
            ),
        ));
    }
    if summary.rows_read > 0 && summary.rows_written == 0 {
        let mut why: Vec<(u64, String)> = summary
            .row_rejections
            .iter()
            .map(|((field, reason), n)| (*n, format!("{field}: {reason} ({n} rows)")))
            .chain(
                summary
                    .unknown_codes
                    .iter()
                    .map(|l| (l.rows, format!("unknown {l}"))),
            )
            .collect();
        why.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        let why: Vec<String> = why.into_iter().take(5).map(|w| w.1).collect();
        return Err(Error::input(
            &job.input,
            format!(
                "all {} rows were rejected; no encodings were written. Most often: {}. The \
                 rejects report {} says why, row by row; check the source mapping against the \
                 export.",
                summary.rows_read,
                why.join("; "),
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
        hardening: job.schema.hardening_label(),
        parts: parts.layout(),
        parts_hardening: job
            .schema
            .parts
            .as_ref()
            .filter(|_| !parts.is_empty())
            .map(|p| p.hardening_label())
            .unwrap_or_default(),
    };
    sink.writer.finish(&meta)?;
    if let Some(m) = sink.map {
        m.finish()?;
    }
    let mut summary = sink.summary;
    summary.elapsed = start.elapsed();
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::repeats;

    #[test]
    fn repeats_counts_every_copy_after_the_first() {
        assert_eq!(repeats(&mut []), 0);
        assert_eq!(repeats(&mut [5, 1, 9]), 0);
        // 7 three times, 1 twice: three rows repeat an earlier one.
        assert_eq!(repeats(&mut [7, 1, 7, 3, 1, 7]), 3);
    }
}

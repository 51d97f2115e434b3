//! `crosswalk encode`.

use std::path::PathBuf;

use clap::Args;
use crosswalk::keys::SecretKey;
use crosswalk::pipeline::encode::{self, EncodeJob, EncodeSummary};
use crosswalk::schema::LinkageSchema;
use crosswalk::source::SourceMapping;

/// Flags of `encode`.
#[derive(Debug, Args)]
pub struct EncodeArgs {
    /// The linkage schema (TOML), identical for every agency. Omit for the built-in default. A
    /// clkhash linkage schema (.json, versions 1-3) switches to clkhash-compatible encoding:
    /// the input's header names the schema's fields, and OUT is clkhash JSON (or CSV).
    #[arg(long, value_name = "FILE")]
    schema: Option<PathBuf>,
    /// This export's source mapping (TOML); not used with a clkhash schema.
    #[arg(long, value_name = "FILE", required_unless_present = "schema")]
    source: Option<PathBuf>,
    /// The secret key file (from `crosswalk keygen`; mode 0600).
    #[arg(long, value_name = "FILE", required_unless_present = "check")]
    key_file: Option<PathBuf>,
    /// The agency export: CSV, or Parquet when the name ends in .parquet or .pq.
    #[arg(long, value_name = "FILE")]
    input: PathBuf,
    /// The encodings file to write (Parquet).
    #[arg(long, value_name = "FILE", required_unless_present = "check")]
    out: Option<PathBuf>,
    /// Dry run: read the export under the source mapping as the encoder would and print, per
    /// field, the cells filled, parsed and dropped (and why), warning for any field that loses
    /// more than 2% of its filled cells. Needs no key; writes nothing.
    #[arg(long, conflicts_with_all = ["map_out", "rejects"])]
    check: bool,
    /// Also write the local map (local id ↔ record_key). It must stay at the agency.
    #[arg(long, value_name = "FILE")]
    map_out: Option<PathBuf>,
    /// The rejects report (CSV: row, line, field, column, action, reason; never values)
    /// [default: OUT with extension .rejects.csv].
    #[arg(long, value_name = "FILE")]
    rejects: Option<PathBuf>,
    /// Worker threads (0: one per core; at most 4 per core, more is capped with a warning).
    #[arg(short = 'j', long, value_name = "NUM", default_value_t = 0)]
    threads: usize,
    /// Dates after this day (YYYY-MM-DD) are rejected as in the future [default: today].
    #[arg(long, value_name = "DATE")]
    reference_date: Option<chrono::NaiveDate>,
}

impl TryFrom<&EncodeArgs> for EncodeJob {
    type Error = crosswalk::Error;

    fn try_from(a: &EncodeArgs) -> crosswalk::Result<EncodeJob> {
        let (Some(key_file), Some(out)) = (&a.key_file, &a.out) else {
            return Err(crosswalk::Error::config(
                &a.input,
                "--key-file and --out are required (unless --check)",
            ));
        };
        let schema = match &a.schema {
            Some(p) => LinkageSchema::from_file(p)?,
            None => LinkageSchema::default_schema(),
        };
        Ok(EncodeJob {
            schema,
            mapping: match &a.source {
                Some(p) => SourceMapping::from_file(p)?,
                None => {
                    return Err(crosswalk::Error::config(
                        out,
                        "--source is required (a source mapping) unless --schema is a clkhash schema (.json)",
                    ))
                }
            },
            key: SecretKey::read(key_file)?,
            input: a.input.clone(),
            out: out.clone(),
            map_out: a.map_out.clone(),
            rejects: a
                .rejects
                .clone()
                .unwrap_or_else(|| EncodeJob::default_rejects_path(out)),
            threads: super::threads(a.threads),
            today: a.reference_date.unwrap_or_else(super::today),
            chunk_rows: crosswalk::pipeline::encode::DEFAULT_CHUNK_ROWS,
        })
    }
}

pub fn encode(args: &EncodeArgs) -> crosswalk::Result<()> {
    if args.check {
        return check(args);
    }
    if let Some(schema) = args.schema.as_ref().filter(|p| {
        p.extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("json"))
    }) {
        let parsed = crosswalk::clkhash::ClkhashSchema::from_file(schema)?;
        for note in &parsed.notes {
            eprintln!("crosswalk: {}: {note}", schema.display());
        }
        let (Some(key_file), Some(out)) = (&args.key_file, &args.out) else {
            return Err(crosswalk::Error::config(
                &args.input,
                "--key-file and --out are required (unless --check)",
            ));
        };
        let key = SecretKey::read(key_file)?;
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(super::threads(args.threads))
            .build()
            .map_err(|e| {
                crosswalk::Error::io("<thread pool>", std::io::Error::other(e.to_string()))
            })?;
        let s = pool.install(|| {
            crosswalk::clkhash::encode_file(parsed, key.expose_bytes(), &args.input, out)
        })?;
        eprintln!(
            "crosswalk: encoded {} records with clkhash schema {} in {:.2}s ({:.0} records/s); wrote {} (key check value {})",
            s.records,
            schema.display(),
            s.encode_seconds,
            s.records as f64 / s.encode_seconds.max(1e-9),
            out.display(),
            key.check_value()
        );
        return Ok(());
    }
    let job = EncodeJob::try_from(args)?;
    let bar = super::progress_bar("encoding");
    let result = encode::run(&job, &mut |n| bar.set_position(n));
    bar.finish_and_clear();
    let summary = result?;
    print_summary(&job, &summary);
    Ok(())
}

fn print_summary(job: &EncodeJob, s: &EncodeSummary) {
    eprintln!(
        "crosswalk: encoded {} of {} rows from {} ({} rejected, {} field values dropped) in {:.2}s ({:.0} rows/s)",
        s.rows_written,
        s.rows_read,
        job.input.display(),
        s.rows_rejected,
        s.field_issues.values().sum::<u64>(),
        s.elapsed.as_secs_f64(),
        s.rows_per_second()
    );
    for ((field, reason), n) in s.row_rejections.iter().chain(&s.field_issues).take(12) {
        eprintln!("  {n:>8}  {field}: {reason}");
    }
    for line in s.unknown_codes.iter().take(12) {
        eprintln!("  {:>8}  unknown {line}", line.rows);
    }
    if s.unknown_codes.len() > 12 {
        eprintln!(
            "  ... and {} more unknown codes",
            s.unknown_codes.len() - 12
        );
    }
    for line in s.builtin_readings.iter().take(12) {
        eprintln!("  {:>8}  built-in reading: {line}", line.rows);
    }
    if !s.builtin_readings.is_empty() {
        eprintln!(
            "            (codes the mapping does not list, read by crosswalk's built-in tables; \
             list them in [sex_codes] / [trafficking_codes] to read them otherwise)"
        );
    }
    if s.alias_clks > 0 {
        eprintln!("  {} alias CLKs written", s.alias_clks);
    }
    if s.repeat_rows > 0 {
        eprintln!(
            "  {} rows repeat an earlier row's identifiers exactly (repeat contacts)",
            s.repeat_rows
        );
    }
    eprintln!(
        "  wrote {} (schema {}, key check value {})",
        job.out.display(),
        s.schema_fingerprint,
        s.kcv
    );
    eprintln!("  rejects report: {}", job.rejects.display());
    if let Some(m) = &job.map_out {
        eprintln!(
            "  local map (keep at the agency, never send): {}",
            m.display()
        );
    }
}

/// `encode --check`: the per-field report of [`crosswalk::inspect::check`], with warnings.
fn check(args: &EncodeArgs) -> crosswalk::Result<()> {
    let Some(source) = &args.source else {
        return Err(crosswalk::Error::config(
            &args.input,
            "--check needs --source (a source mapping); a clkhash schema has no mapping to check",
        ));
    };
    let mapping = SourceMapping::from_file(source)?;
    let today = args.reference_date.unwrap_or_else(super::today);
    let report = crosswalk::inspect::check(&args.input, &mapping, today)?;
    eprintln!(
        "crosswalk: checked {} against {} (dry run: nothing encoded, nothing written)",
        args.input.display(),
        source.display()
    );
    print!("{}", report.render());
    for w in report.warnings() {
        eprintln!("crosswalk: warning: {w}");
    }
    Ok(())
}

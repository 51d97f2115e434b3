//! `crosswalk audit`.

use std::path::PathBuf;

use clap::Args;
use crosswalk::audit::{self, AuditJob, AuditReport, Rates};

/// Flags of `audit`.
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// The attacker's reference population: a CSV with a header and the columns given_name,
    /// family_name, birth_date (YYYY-MM-DD), optionally count (other columns are ignored). A
    /// synthetic world's truth/identities.csv is one.
    #[arg(long, value_name = "FILE")]
    reference: PathBuf,
    /// The linkage schema the encodings were made with [default: the built-in schema].
    #[arg(long, value_name = "FILE")]
    schema: Option<PathBuf>,
    /// Score the attacks against the truth: a directory with mappings/NAME.toml beside
    /// exports/NAME.csv (a `crosswalk synth` world, or an agency's own export laid out so), and
    /// optionally truth/records.csv for persons. Needs --key-file.
    #[arg(long, value_name = "DIR", requires = "key_file")]
    truth: Option<PathBuf>,
    /// The secret key the encodings were made with (only with --truth: the exports are encoded
    /// again to find each record's truth; the attacks never use it).
    #[arg(long, value_name = "FILE", requires = "truth")]
    key_file: Option<PathBuf>,
    /// Write the full result as JSON here (replaced atomically).
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Most records the mining step samples (mining cost is bounded by this, not by the number
    /// of records).
    #[arg(long, default_value_t = 65_536, value_name = "N")]
    sample: usize,
    /// Worker threads (0: one per core).
    #[arg(short = 'j', long, default_value_t = 0, value_name = "NUM")]
    threads: usize,
    /// Dates after this day (YYYY-MM-DD) were rejected as in the future when the truth exports
    /// were encoded [default: today].
    #[arg(long, value_name = "DATE")]
    reference_date: Option<chrono::NaiveDate>,
    /// Attack the records' names or birth-date parts instead of their CLKs; the encodings must
    /// carry them (a schema with [parts]). On birth-date parts the attacks guess birth dates and
    /// years, and one more attack pools the birth years of ages (docs/audit.md). `given_dob`,
    /// `family_dob`: the given and family names at the birth date, when the schema writes them.
    #[arg(long, value_name = "PART", value_parser = ["names", "dob", "given_dob", "family_dob"])]
    part: Option<String>,
    /// Encodings files of one linkage (from `crosswalk encode`).
    #[arg(value_name = "ENC.parquet", required = true)]
    encodings: Vec<PathBuf>,
}

pub fn audit(a: &AuditArgs) -> crosswalk::Result<()> {
    let schema = match &a.schema {
        Some(p) => crosswalk::schema::LinkageSchema::from_file(p)?,
        None => crosswalk::schema::LinkageSchema::default_schema(),
    };
    let truth = match (&a.truth, &a.key_file) {
        (Some(dir), Some(key)) => Some(audit::truth::TruthSource {
            dir: dir.clone(),
            key: crosswalk::keys::SecretKey::read(key)?,
        }),
        _ => None,
    };
    let job = AuditJob {
        encodings: a.encodings.clone(),
        reference: a.reference.clone(),
        schema,
        truth,
        sample: a.sample.max(1),
        threads: super::threads(a.threads),
        today: a.reference_date.unwrap_or_else(super::today),
        part: a.part.as_deref().and_then(|name| {
            crosswalk::schema::Part::ALL
                .into_iter()
                .find(|p| p.name() == name)
        }),
    };
    if let Some(out) = &a.out {
        // A JSON result written over an input (the key included) would destroy it. Only an
        // existing file can be an input; links and `..` are resolved.
        if let Ok(o) = std::fs::canonicalize(out) {
            let same = a
                .encodings
                .iter()
                .chain([&a.reference])
                .chain(a.key_file.iter())
                .chain(a.schema.iter())
                .filter_map(|i| std::fs::canonicalize(i).ok())
                .any(|i| i == o);
            let in_truth = a
                .truth
                .as_ref()
                .and_then(|t| std::fs::canonicalize(t).ok())
                .is_some_and(|t| o.starts_with(t));
            if same || in_truth {
                return Err(crosswalk::Error::config(
                    out,
                    "--out names one of the audit's inputs (or a file in --truth); give the \
                     result its own path",
                ));
            }
        }
    }
    let report = audit::run(&job)?;
    if let Some(out) = &a.out {
        let json = serde_json::to_vec_pretty(&report)
            .map_err(|e| crosswalk::Error::io(out, std::io::Error::other(e.to_string())))?;
        crosswalk::io::write_atomic(out, &json)?;
    }
    super::stdout_line(&render(&report))
}

fn pct(r: &Rates, n: usize) -> String {
    format!("{:>6.2}%", 100.0 * r.share(n))
}

fn line(label: &str, r: &Rates) -> String {
    format!(
        "  {label:<22} {} {} {} {} {}   of {}",
        pct(r, r.given),
        pct(r, r.family),
        pct(r, r.both),
        pct(r, r.birth_year),
        pct(r, r.birth_date),
        r.of
    )
}

/// The result as text: counts and shares only.
fn render(r: &AuditReport) -> String {
    let mut out = vec![format!(
        "crosswalk audit: {} records in {} files, {}-bit {}, hardening {}, schema {}; reference population {} persons",
        r.records,
        r.files,
        r.clk_bits,
        r.part.map_or("CLKs".to_string(), |p| format!("{p} parts")),
        r.hardening,
        r.schema_fingerprint,
        r.reference_persons
    )];
    if let Some(t) = r.truth_records {
        out.push(format!("truth found for {t} of {} records", r.records));
    }
    for a in &r.attacks {
        out.push(String::new());
        let found: Vec<String> = a.found.iter().map(|(k, v)| format!("{k} {v}")).collect();
        out.push(format!(
            "attack {} ({:.1} s): {}",
            a.attack,
            a.seconds,
            found.join(", ")
        ));
        out.push(format!(
            "  {:<22} {:>7} {:>7} {:>7} {:>7} {:>7}",
            "", "given", "family", "both", "year", "dob"
        ));
        out.push(line("records guessed", &a.guessed));
        if a.per_record.is_none() {
            out.push(
                "  (guessed is an upper bound on what the attack re-identifies: without --truth \
                 the audit cannot tell right guesses from wrong ones)"
                    .to_string(),
            );
        }
        if let (Some(rec), Some(per)) = (&a.per_record, &a.per_person) {
            out.push(line("records recovered", rec));
            out.push(line("persons recovered", per));
        }
        if let Some(l) = a.labels_right {
            out.push(format!(
                "  labelled groups whose label is right: {:.1}%",
                100.0 * l
            ));
        }
        if let Some(bands) = &a.given_by_band {
            let b: Vec<String> = bands
                .iter()
                .map(|b| {
                    let s = if b.records == 0 {
                        0.0
                    } else {
                        100.0 * b.given as f64 / b.records as f64
                    };
                    format!("{} persons: {s:.1}% of {}", b.persons_with_name, b.records)
                })
                .collect();
            out.push(format!(
                "  given name recovered, by persons sharing it: {}",
                b.join("; ")
            ));
        }
    }
    out.join("\n")
}

//! `crosswalk inspect`.

use std::path::PathBuf;

use clap::Args;
use crosswalk::inspect::{self, InspectOptions};
use crosswalk::source::SourceMapping;
use crosswalk::vocab::AgencyType;

/// Flags of `inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The agency export (CSV of any delimiter and encoding, or Parquet).
    #[arg(value_name = "EXPORT")]
    input: PathBuf,
    /// Check this source mapping against the export instead of drafting one: per field, the
    /// share parsed and dropped, why, and what would read the rest.
    #[arg(long, value_name = "FILE")]
    mapping: Option<PathBuf>,
    /// Write the draft mapping here (replaced atomically) [default: standard output].
    #[arg(long, value_name = "FILE", conflicts_with = "mapping")]
    draft: Option<PathBuf>,
    /// The agency's name in the draft [default: from the file name].
    #[arg(long, value_name = "NAME")]
    agency: Option<String>,
    /// The kind of agency (law_enforcement, child_welfare, child_advocacy, taskforce,
    /// service_provider, other): it decides whether a lone code column names events or
    /// services.
    #[arg(long, value_name = "TYPE", value_parser = parse_agency_type)]
    agency_type: Option<AgencyType>,
    /// Dates after this day (YYYY-MM-DD) do not count as parsed [default: today].
    #[arg(long, value_name = "DATE")]
    reference_date: Option<chrono::NaiveDate>,
}

fn parse_agency_type(s: &str) -> Result<AgencyType, String> {
    serde_json::from_value(serde_json::Value::String(s.to_string())).map_err(|_| {
        format!(
            "unknown agency type; use one of {}",
            crosswalk::vocab::AGENCY_TYPES.join(", ")
        )
    })
}

pub fn inspect(a: &InspectArgs) -> crosswalk::Result<()> {
    let today = a.reference_date.unwrap_or_else(super::today);
    if let Some(m) = &a.mapping {
        let mapping = SourceMapping::from_file(m)?;
        let report = inspect::check(&a.input, &mapping, today)?;
        print!("{}", report.render());
        for w in report.warnings() {
            eprintln!("crosswalk: warning: {w}");
        }
        return Ok(());
    }
    let ins = inspect::inspect(
        &a.input,
        &InspectOptions {
            agency: a.agency.clone(),
            agency_type: a.agency_type,
            today,
        },
    )?;
    eprint!("{}", ins.report());
    let draft = ins.draft();
    match &a.draft {
        Some(p) => {
            crosswalk::io::write_atomic(p, draft.as_bytes())?;
            eprintln!("crosswalk: wrote the draft mapping {}", p.display());
        }
        None => print!("{draft}"),
    }
    Ok(())
}

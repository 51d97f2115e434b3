//! `crosswalk report`.

use std::path::PathBuf;

use chrono::NaiveDate;
use clap::Args;
use crosswalk::analytics::Settings;
use crosswalk::pipeline::report::{self, ReportJob, DEFAULT_MIN_CELL};

/// Flags of `report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A linkage run directory (from `crosswalk link`).
    #[arg(value_name = "RUN_DIR")]
    run: PathBuf,
    /// Cutoff date (YYYY-MM-DD); events after it are ignored. Default: the latest event date.
    #[arg(long, value_name = "DATE")]
    as_of: Option<NaiveDate>,
    /// Smallest count published; counts from 1 to K-1 are suppressed.
    #[arg(long, value_name = "K", default_value_t = DEFAULT_MIN_CELL)]
    min_cell: u64,
    /// Drop-off: a person counts as dropped off after this many days without any event.
    #[arg(long, value_name = "N", default_value_t = 90)]
    window_days: u32,
    /// Duplicate services: days a service without an end date is taken to last.
    #[arg(long, value_name = "N", default_value_t = 30)]
    open_service_days: u32,
    /// Also write unsuppressed tables to RUN_DIR/aggregates-internal/ (labelled
    /// INTERNAL_UNSUPPRESSED_NOT_FOR_PUBLICATION in every row). Never publish them.
    #[arg(long)]
    internal_unsuppressed: bool,
}

pub fn report(args: &ReportArgs) -> crosswalk::Result<()> {
    if args.min_cell < 2 {
        return Err(crosswalk::Error::config(
            &args.run,
            "--min-cell must be at least 2 (published tables are always suppressed); for unsuppressed figures add --internal-unsuppressed",
        ));
    }
    let run = crosswalk::registry::as_run(&args.run)?;
    let s = report::run(&ReportJob {
        run: run.clone(),
        settings: Settings {
            as_of: args.as_of,
            window_days: args.window_days,
            open_service_days: args.open_service_days,
        },
        min_cell: args.min_cell,
        internal_unsuppressed: args.internal_unsuppressed,
    })?;
    eprintln!(
        "crosswalk report: {} events as of {}; {} tables in {}, {} cells suppressed (min cell {}){}",
        s.events,
        s.as_of.map(|d| d.to_string()).unwrap_or_else(|| "-".into()),
        s.published.len(),
        run.join("aggregates").display(),
        s.suppressed_cells,
        args.min_cell,
        if args.internal_unsuppressed {
            "; unsuppressed internal view in aggregates-internal/ (not for publication)"
        } else {
            ""
        }
    );
    super::stdout_line(&s.report.display().to_string())
}

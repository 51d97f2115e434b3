//! `crosswalk report RUN_DIR`: the aggregates researchers read and the report the taskforce
//! looks at.
//!
//! 1. Read `RUN_DIR/events.parquet` (written by the link job).
//! 2. Compute every table ([`crate::analytics::compute`]) and suppress small cells
//!    ([`crate::analytics::suppress`]).
//! 3. Write `RUN_DIR/aggregates/<table>.parquet` (published view), optionally
//!    `RUN_DIR/aggregates-internal/<table>.parquet` (unsuppressed, labelled so in every row and
//!    in the file metadata), and `RUN_DIR/report.html` from the published view only. Every file
//!    is written atomically.

use std::path::{Path, PathBuf};

use chrono::NaiveDate;

use crate::analytics::{self, suppress::suppress, Settings, Table};
use crate::error::Result;
use crate::io::{aggregates, events};
use crate::report;

/// Default minimum published cell: counts from 1 to 10 are suppressed.
pub const DEFAULT_MIN_CELL: u64 = 11;

/// A validated report job.
#[derive(Debug, Clone)]
pub struct ReportJob {
    /// The linkage run directory.
    pub run: PathBuf,
    /// Analysis settings (cutoff, drop-off window, open service length).
    pub settings: Settings,
    /// Minimum published cell (K).
    pub min_cell: u64,
    /// Also write the unsuppressed internal view.
    pub internal_unsuppressed: bool,
}

/// What the report job wrote.
#[derive(Debug, Clone)]
pub struct ReportSummary {
    /// The published (suppressed) tables.
    pub published: Vec<Table>,
    /// The cutoff used.
    pub as_of: Option<NaiveDate>,
    /// Events read.
    pub events: usize,
    /// Cells suppressed across all tables.
    pub suppressed_cells: usize,
    /// Path of report.html.
    pub report: PathBuf,
}

/// Runs the report job.
pub fn run(job: &ReportJob) -> Result<ReportSummary> {
    // A run directory must be one run: its files as its manifest records them.
    let manifest = crate::io::run::verify(&job.run)?;
    let ev = events::read(&job.run)?;
    let as_of = job.settings.as_of.or_else(|| ev.log.latest_date());
    let settings = Settings {
        as_of,
        ..job.settings
    };
    let mut internal = analytics::compute(&ev.log, &settings);
    if job.run.join("registry.json").exists() {
        internal.push(registry_months(&crate::registry::read_manifest(&job.run)?));
    }
    let mut published = internal.clone();
    suppress(&mut published, job.min_cell);
    let mut meta = vec![
        (
            "crosswalk.as_of",
            as_of.map(|d| d.to_string()).unwrap_or_default(),
        ),
        ("crosswalk.min_cell", job.min_cell.to_string()),
        ("crosswalk.window_days", settings.window_days.to_string()),
        (
            "crosswalk.open_service_days",
            settings.open_service_days.to_string(),
        ),
    ];
    if let Some(m) = &manifest {
        meta.push(("crosswalk.run", m.run_id()));
    }
    write_tables(
        &job.run.join("aggregates"),
        &published,
        aggregates::View::Published,
        &meta,
    )?;
    if job.internal_unsuppressed {
        write_tables(
            &job.run.join("aggregates-internal"),
            &internal,
            aggregates::View::InternalUnsuppressed,
            &meta,
        )?;
    }
    let diagnostics = match std::fs::read_to_string(job.run.join("diagnostics.json")) {
        Ok(text) => serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
        Err(_) => serde_json::Value::Null,
    };
    let html = report::render(&report::ReportInput {
        tables: &published,
        as_of: as_of.map(|d| d.to_string()).unwrap_or_else(|| "–".into()),
        min_cell: job.min_cell,
        window_days: settings.window_days,
        diagnostics: &diagnostics,
    });
    let path = job.run.join("report.html");
    crate::io::write_atomic(&path, html.as_bytes())?;
    let suppressed_cells = published
        .iter()
        .flat_map(|t| &t.cells)
        .filter(|c| c.suppressed)
        .count();
    Ok(ReportSummary {
        published,
        as_of,
        events: ev.log.events.len(),
        suppressed_cells,
        report: path,
    })
}

fn write_tables(
    dir: &Path,
    tables: &[Table],
    view: aggregates::View,
    meta: &[(&str, String)],
) -> Result<()> {
    // Swapped in whole: a killed report leaves the previous tables, never a mix.
    let known = |name: &str| {
        name.strip_suffix(".parquet")
            .is_some_and(|stem| stem == "registry_months" || tables.iter().any(|t| t.name == stem))
            || crate::io::is_crosswalk_leftover(name)
    };
    let out = crate::io::AtomicDir::create(dir, &known)?;
    for t in tables {
        aggregates::write(
            &out.path().join(format!("{}.parquet", t.name)),
            t,
            view,
            meta,
        )?;
    }
    out.commit()
}

/// The registry's per-month view: person ids first issued by each registry run (`new_persons`
/// per `registry_run` group, in run order) and in all runs (the `all` row). The running sum of
/// the published rows is the cumulative count; the `all` row is the ids issued so far, which
/// exceeds the current persons by the ids retired in merges and withdrawals.
pub fn registry_months(m: &crate::registry::Manifest) -> Table {
    use crate::analytics::{Additivity, Breakdown, Cell};
    let cell = |breakdown, group: &str, n: u64| Cell {
        breakdown,
        group: group.to_string(),
        dims: Vec::new(),
        count: Some(n),
        values: Vec::new(),
        suppressed: false,
    };
    let total = m.history.iter().map(|h| h.new_persons).sum();
    let mut cells = vec![cell(Breakdown::All, "all", total)];
    for h in &m.history {
        cells.push(cell(Breakdown::RegistryRun, &h.label, h.new_persons));
    }
    Table {
        name: "registry_months",
        dims: Vec::new(),
        count_name: "new_persons",
        values: Vec::new(),
        additivity: Additivity::Groups,
        cells,
    }
}

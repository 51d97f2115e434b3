//! Aggregate tables as Parquet: `RUN_DIR/aggregates/<table>.parquet`, one file per table, tidy
//! long format (docs/aggregates.md is the data dictionary).
//!
//! Columns, in order: `view`, `breakdown`, `group`, the table's dimensions (utf8), the count
//! (int64, null when suppressed), the table's statistics (float64, null when suppressed or
//! undefined), `suppressed` (bool). The file metadata repeats the view and the settings.

use std::path::Path;
use std::sync::Arc;

use arrow_array::{ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field as ArrowField, Schema};

use crate::analytics::Table;
use crate::error::{Error, Result};

/// Format tag in the file metadata.
pub const FORMAT: &str = "crosswalk-aggregates/1";

/// Which view a file holds. Written into every row (`view`) and the metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// Suppressed: safe to publish.
    Published,
    /// Unsuppressed: for the taskforce's internal checks only.
    InternalUnsuppressed,
}

impl View {
    /// The label written to the `view` column and `crosswalk.view`.
    pub fn label(self) -> &'static str {
        match self {
            View::Published => "published",
            View::InternalUnsuppressed => "INTERNAL_UNSUPPRESSED_NOT_FOR_PUBLICATION",
        }
    }
}

/// Writes one table to `path` atomically, with `settings` (key, value) pairs in the metadata.
pub fn write(path: &Path, table: &Table, view: View, settings: &[(&str, String)]) -> Result<()> {
    let n = table.cells.len();
    let mut fields = vec![
        ArrowField::new("view", DataType::Utf8, false),
        ArrowField::new("breakdown", DataType::Utf8, false),
        ArrowField::new("group", DataType::Utf8, false),
    ];
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(vec![view.label(); n])),
        Arc::new(StringArray::from_iter_values(
            table.cells.iter().map(|c| c.breakdown.label()),
        )),
        Arc::new(StringArray::from_iter_values(
            table.cells.iter().map(|c| c.group.as_str()),
        )),
    ];
    for (i, d) in table.dims.iter().enumerate() {
        fields.push(ArrowField::new(*d, DataType::Utf8, false));
        columns.push(Arc::new(StringArray::from_iter_values(
            table
                .cells
                .iter()
                .map(|c| c.dims.get(i).map(String::as_str).unwrap_or("")),
        )));
    }
    fields.push(ArrowField::new(table.count_name, DataType::Int64, true));
    columns.push(Arc::new(
        table
            .cells
            .iter()
            .map(|c| c.count.map(|v| v as i64))
            .collect::<Int64Array>(),
    ));
    for (i, v) in table.values.iter().enumerate() {
        fields.push(ArrowField::new(*v, DataType::Float64, true));
        columns.push(Arc::new(
            table
                .cells
                .iter()
                .map(|c| c.values.get(i).copied().flatten())
                .collect::<Float64Array>(),
        ));
    }
    fields.push(ArrowField::new("suppressed", DataType::Boolean, false));
    columns.push(Arc::new(
        table
            .cells
            .iter()
            .map(|c| Some(c.suppressed))
            .collect::<BooleanArray>(),
    ));
    let schema = Arc::new(Schema::new(fields));
    let batch =
        RecordBatch::try_new(schema.clone(), columns).map_err(|e| Error::parquet(path, e))?;
    let mut meta = vec![
        ("crosswalk.format", FORMAT.to_string()),
        ("crosswalk.table", table.name.to_string()),
        ("crosswalk.view", view.label().to_string()),
        ("crosswalk.version", env!("CARGO_PKG_VERSION").to_string()),
    ];
    meta.extend(settings.iter().cloned());
    super::write_parquet(path, &batch, &meta)
}

//! The run's `entities.parquet`: one row per record, `agency`, `record_key`, `person_id` (all
//! text), written by the linkage job and the registry, read by `evaluate`, the registry and
//! the report's consumers.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use arrow_array::{RecordBatch, StringArray};
use arrow_schema::{DataType, Field as ArrowField, Schema};

use crate::error::{Error, Result};

/// Writes `entities.parquet` (`agency`, `record_key`, `person_id`) atomically, rows in the
/// order given.
pub fn write_entities<'a>(
    path: &Path,
    rows: impl Iterator<Item = (&'a str, &'a str, &'a str)>,
) -> Result<()> {
    let (mut agency, mut key, mut person) = (Vec::new(), Vec::new(), Vec::new());
    for (a, k, p) in rows {
        agency.push(a);
        key.push(k);
        person.push(p);
    }
    let schema = Arc::new(Schema::new(vec![
        ArrowField::new("agency", DataType::Utf8, false),
        ArrowField::new("record_key", DataType::Utf8, false),
        ArrowField::new("person_id", DataType::Utf8, false),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(StringArray::from(agency)),
            Arc::new(StringArray::from(key)),
            Arc::new(StringArray::from(person)),
        ],
    )
    .map_err(|e| Error::parquet(path, e))?;
    crate::io::write_parquet(path, &batch, &[])
}

/// Reads `entities.parquet` of a run: `(agency, record_key) -> person_id`.
pub fn read_entities(run: &Path) -> Result<HashMap<(String, String), String>> {
    Ok(entity_rows(run)?
        .into_iter()
        .map(|(a, k, p)| ((a, k), p))
        .collect())
}

/// Column `i` of a batch of `entities.parquet` (`agency`, `record_key`, `person_id`: all text).
pub fn entities_column<'a>(
    batch: &'a arrow_array::RecordBatch,
    i: usize,
    path: &Path,
) -> Result<&'a StringArray> {
    use arrow_array::Array;
    batch
        .column(i)
        .as_any()
        .downcast_ref::<StringArray>()
        .ok_or_else(|| Error::encoding(path, "not a crosswalk entities file"))
}

/// Reads `entities.parquet` of a run (or registry generation) as `(agency, record_key,
/// person_id)` rows in file order.
pub fn entity_rows(run: &Path) -> Result<Vec<(String, String, String)>> {
    let path = run.join("entities.parquet");
    crate::io::guard_reader(&path, || entity_rows_unguarded(&path))
}

fn entity_rows_unguarded(path: &Path) -> Result<Vec<(String, String, String)>> {
    use arrow_array::Array;
    let path = path.to_path_buf();
    let file = std::fs::File::open(&path).map_err(|e| Error::io(&path, e))?;
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(|b| b.build())
        .map_err(|e| Error::parquet(&path, e))?;
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| Error::parquet(&path, e))?;
        let col = |i| entities_column(&batch, i, &path);
        let (a, k, p) = (col(0)?, col(1)?, col(2)?);
        for i in 0..a.len() {
            out.push((
                a.value(i).to_string(),
                k.value(i).to_string(),
                p.value(i).to_string(),
            ));
        }
    }
    Ok(out)
}

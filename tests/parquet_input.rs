//! Parquet exports go through the same mapping and extraction as CSV ones.

use std::sync::Arc;

use arrow_array::builder::{Int32Builder, ListBuilder};
use arrow_array::{Array, ArrayRef, Date32Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};

use crate::util::*;

/// Writes the DCF fixture as Parquet: text columns as strings, the ZIP as an integer (its
/// leading zero lost, as spreadsheets do), the event date as a date, plus an unused list column.
fn dcf_as_parquet(path: &std::path::Path) {
    let mut rdr = csv::Reader::from_path(fixture("encoder/dcf.csv")).unwrap();
    let headers: Vec<String> = rdr
        .headers()
        .unwrap()
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}').to_string())
        .collect();
    let rows: Vec<csv::StringRecord> = rdr.records().map(|r| r.unwrap()).collect();
    let mut fields = Vec::new();
    let mut cols: Vec<ArrayRef> = Vec::new();
    for (c, h) in headers.iter().enumerate() {
        match h.as_str() {
            "Zip" => {
                fields.push(Field::new(h, DataType::Int64, true));
                cols.push(Arc::new(Int64Array::from_iter(
                    rows.iter().map(|r| r[c].parse::<i64>().ok()),
                )));
            }
            "Event Date" => {
                fields.push(Field::new(h, DataType::Date32, true));
                let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
                cols.push(Arc::new(Date32Array::from_iter(rows.iter().map(|r| {
                    chrono::NaiveDate::parse_from_str(&r[c], "%Y-%m-%d")
                        .ok()
                        .map(|d| (d - epoch).num_days() as i32)
                }))));
            }
            _ => {
                fields.push(Field::new(h, DataType::Utf8, true));
                cols.push(Arc::new(StringArray::from_iter(
                    rows.iter().map(|r| Some(r[c].to_string())),
                )));
            }
        }
    }
    let mut tags = ListBuilder::new(Int32Builder::new());
    for _ in &rows {
        tags.values().append_value(1);
        tags.append(true);
    }
    let tags = tags.finish();
    fields.push(Field::new("Tags", tags.data_type().clone(), true));
    cols.push(Arc::new(tags));
    let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), cols).unwrap();
    let file = std::fs::File::create(path).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

#[test]
fn a_parquet_export_encodes_like_its_csv() {
    let dir = tempfile::tempdir().unwrap();
    let pq = dir.path().join("dcf.parquet");
    dcf_as_parquet(&pq);
    let key = key_file(dir.path());
    let src = fixture("encoder/dcf.toml");
    let from_csv = dir.path().join("csv.enc.parquet");
    let from_pq = dir.path().join("pq.enc.parquet");
    let o = encode(&src, &key, &fixture("encoder/dcf.csv"), &from_csv, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = encode(&src, &key, &pq, &from_pq, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (a, b) = (
        crosswalk::io::encodings::read(&from_csv).unwrap(),
        crosswalk::io::encodings::read(&from_pq).unwrap(),
    );
    assert_eq!(a.len(), 10);
    assert_eq!(a.record_key, b.record_key);
    assert_eq!(a.clks, b.clks, "the same people must give the same CLKs");
    assert_eq!(a.event_date, b.event_date);
    assert_eq!(b.meta.rejected_rows, 0);
    // a mapped column of an unreadable type is a clear error
    let mapping = std::fs::read_to_string(&src)
        .unwrap()
        .replace("unit = \"Region\"", "unit = \"Tags\"");
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, mapping).unwrap();
    let o = encode(&bad, &key, &pq, &dir.path().join("x.parquet"), &[]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert!(stderr(&o).contains("\"Tags\""), "{}", stderr(&o));
}

/// `inspect` reads a Parquet export too: the same roles as its CSV, with no encoding or
/// delimiter to guess, a list column left out, and an integer ZIP taken as a ZIP.
#[test]
fn inspect_drafts_a_parquet_export() {
    let dir = tempfile::tempdir().unwrap();
    let pq = dir.path().join("dcf.parquet");
    dcf_as_parquet(&pq);
    let draft_path = dir.path().join("dcf.toml");
    let o = crosswalk(&[
        "inspect",
        pq.to_str().unwrap(),
        "--agency-type",
        "child_welfare",
        "--draft",
        draft_path.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let draft: toml::Table =
        toml::from_str(&std::fs::read_to_string(&draft_path).unwrap()).unwrap();
    assert!(draft.get("encoding").is_none() && draft.get("delimiter").is_none());
    let hand: toml::Table =
        toml::from_str(&std::fs::read_to_string(fixture("encoder/dcf.toml")).unwrap()).unwrap();
    let (d, h) = (
        draft["columns"].as_table().unwrap(),
        hand["columns"].as_table().unwrap(),
    );
    for key in [
        "record_id",
        "given_name",
        "family_name",
        "dob",
        "zip",
        "event_code",
    ] {
        assert_eq!(d.get(key), h.get(key), "{key}");
    }
    assert!(stderr(&o).contains("format: Parquet"), "{}", stderr(&o));
}

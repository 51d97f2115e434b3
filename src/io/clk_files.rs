//! clkhash's CLK files: JSON `{"clks": [base64, ...]}`, or CSV with a `clk` column of base64
//! CLKs. Read by the encodings reader (clkhash CLKs linked beside each other) and written by
//! the clkhash-compatible encoder and `crosswalk clks`.

use std::path::Path;

use base64::Engine;
use serde_json::Value;

use crate::error::{Error, Result};

/// clkhash's JSON output: `{"clks": [base64, ...]}`.
pub fn clks_to_json(clks: &[Vec<u8>]) -> String {
    let list: Vec<Value> = clks
        .iter()
        .map(|c| Value::String(base64::engine::general_purpose::STANDARD.encode(c)))
        .collect();
    serde_json::json!({ "clks": list }).to_string()
}

/// Reads CLKs in clkhash's JSON format, or (for a `.csv` name) a CSV whose `clk` column (or
/// only column) holds base64 CLKs.
pub fn read_clks(path: &Path) -> Result<Vec<Vec<u8>>> {
    if !path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"))
    {
        return clks_from_json(path);
    }
    let mut reader = csv::Reader::from_path(path)
        .map_err(|e| Error::encoding(path, format!("cannot read CSV ({})", csv_position(&e))))?;
    let headers = reader
        .headers()
        .map_err(|e| Error::encoding(path, csv_position(&e)))?
        .clone();
    let col = headers
        .iter()
        .position(|h| h.trim() == "clk")
        .or((headers.len() == 1).then_some(0))
        .ok_or_else(|| Error::encoding(path, "expected a clk column of base64 CLKs"))?;
    reader
        .records()
        .enumerate()
        .map(|(i, r)| {
            let r = r.map_err(|e| {
                Error::encoding(path, format!("row {}: {}", i + 1, csv_position(&e)))
            })?;
            r.get(col)
                .and_then(|s| {
                    base64::engine::general_purpose::STANDARD
                        .decode(s.trim())
                        .ok()
                })
                .ok_or_else(|| {
                    Error::encoding(path, format!("row {}: the CLK is not base64", i + 1))
                })
        })
        .collect()
}

/// Reads clkhash's JSON output (`{"clks": [base64, ...]}`).
pub fn clks_from_json(path: &Path) -> Result<Vec<Vec<u8>>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let v: Value = serde_json::from_str(&text)
        .map_err(|e| Error::encoding(path, format!("not valid JSON ({e})")))?;
    let list = v
        .get("clks")
        .and_then(Value::as_array)
        .ok_or_else(|| Error::encoding(path, "expected {\"clks\": [...]}"))?;
    list.iter()
        .enumerate()
        .map(|(i, c)| {
            c.as_str()
                .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
                .ok_or_else(|| Error::encoding(path, format!("CLK {} is not base64", i + 1)))
        })
        .collect()
}

/// CLKs as clkhash JSON, or as CSV with a `clk` column when `out` ends in `.csv`.
pub(crate) fn clks_text(clks: &[Vec<u8>], out: &Path) -> String {
    if out
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"))
    {
        let mut s = String::from("clk\n");
        for c in clks {
            s.push_str(&base64::engine::general_purpose::STANDARD.encode(c));
            s.push('\n');
        }
        s
    } else {
        clks_to_json(clks) + "\n"
    }
}

/// A CSV error's position, without any field content.
pub(crate) fn csv_position(e: &csv::Error) -> String {
    match e.position() {
        Some(p) => format!("malformed CSV at line {}", p.line()),
        None => "malformed CSV or not UTF-8".to_string(),
    }
}

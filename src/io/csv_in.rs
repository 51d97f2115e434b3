//! Streaming CSV input: the header, then rows in bounded chunks, as raw bytes.
//!
//! Cells stay bytes until the [`crate::source::Extractor`] decodes them with the mapping's text
//! encoding, so an undecodable cell costs one field, not the file. A UTF-8 byte-order mark is
//! stripped from the header. Rows of the wrong width are passed on (the extractor rejects them).

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use csv::ByteRecord;

use crate::error::{Error, Result};
use crate::source::TextEncoding;

/// One data row and where it was.
#[derive(Debug, Clone, Default)]
pub struct RawRow {
    /// 1-based data row number (the header is row 0).
    pub row: u64,
    /// 1-based line number where the row starts.
    pub line: u64,
    /// The cells.
    pub record: ByteRecord,
}

/// An open CSV export.
pub struct CsvSource {
    reader: csv::Reader<BufReader<File>>,
    path: PathBuf,
    headers: Vec<String>,
    rows: u64,
}

impl std::fmt::Debug for CsvSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CsvSource")
            .field("path", &self.path)
            .field("columns", &self.headers.len())
            .finish()
    }
}

impl CsvSource {
    /// Opens `path` and reads its header row.
    pub fn open(path: &Path, delimiter: u8, encoding: TextEncoding) -> Result<CsvSource> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        if file.metadata().map(|m| m.len()).unwrap_or(0) == 0 {
            return Err(Error::input(
                path,
                "the file is empty: expected a header row and data rows",
            ));
        }
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .flexible(true)
            .has_headers(false)
            .from_reader(BufReader::with_capacity(1 << 20, file));
        let mut header = ByteRecord::new();
        let got = reader
            .read_byte_record(&mut header)
            .map_err(|e| csv_error(path, e))?;
        if !got || header.iter().all(|h| h.is_empty()) {
            return Err(Error::input(path, "no header row: the first line is empty"));
        }
        let mut headers = Vec::with_capacity(header.len());
        for (i, h) in header.iter().enumerate() {
            let h = if i == 0 {
                h.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(h)
            } else {
                h
            };
            let text = match encoding {
                TextEncoding::Utf8 => std::str::from_utf8(h).map(str::to_string).map_err(|_| {
                    Error::input(
                        path,
                        format!(
                            "header column {}: not valid UTF-8; if the export comes from older \
                             Windows software set encoding = \"windows-1252\" in the source mapping",
                            i + 1
                        ),
                    )
                })?,
                TextEncoding::Windows1252 => encoding_rs::WINDOWS_1252
                    .decode_without_bom_handling(h)
                    .0
                    .into_owned(),
            };
            headers.push(text);
        }
        Ok(CsvSource {
            reader,
            path: path.to_path_buf(),
            headers,
            rows: 0,
        })
    }

    /// The header cells, decoded.
    pub fn headers(&self) -> &[String] {
        &self.headers
    }

    /// Fills `chunk` with up to `max` rows, reusing its allocations; returns how many were read
    /// (0 at the end of the file). Blank lines are skipped.
    pub fn read_chunk(&mut self, chunk: &mut Vec<RawRow>, max: usize) -> Result<usize> {
        chunk.resize_with(max, RawRow::default);
        let mut n = 0;
        while n < max {
            let slot = &mut chunk[n];
            let more = self
                .reader
                .read_byte_record(&mut slot.record)
                .map_err(|e| csv_error(&self.path, e))?;
            if !more {
                break;
            }
            if slot.record.len() == 1 && slot.record[0].is_empty() {
                continue;
            }
            self.rows += 1;
            slot.row = self.rows;
            slot.line = slot.record.position().map_or(0, |p| p.line());
            n += 1;
        }
        chunk.truncate(n);
        Ok(n)
    }
}

fn csv_error(path: &Path, e: csv::Error) -> Error {
    // csv errors carry positions; their Display never includes cell contents for byte records,
    // but build the message from the position alone to be sure.
    let pos = e
        .position()
        .map(|p| format!("line {}, byte {}", p.line(), p.byte()))
        .unwrap_or_else(|| "unknown position".into());
    match e.into_kind() {
        csv::ErrorKind::Io(io) => Error::io(path, io),
        _ => Error::input(path, format!("malformed CSV at {pos}")),
    }
}

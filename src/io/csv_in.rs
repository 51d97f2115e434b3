//! Streaming CSV input: the header, then rows in bounded chunks, as raw bytes.
//!
//! Cells stay bytes until the [`crate::source::Extractor`] decodes them with the mapping's text
//! encoding, so an undecodable cell costs one field, not the file. A UTF-8 byte-order mark is
//! stripped from the header. Rows of the wrong width are passed on (the extractor rejects them).
//!
//! Line numbers are counted here, not by the CSV parser, so that they are right whatever the
//! line ends (`\n`, `\r\n` or `\r`; the parser counts only `\n`, and after a `\r\n` one too
//! few). A quoted field that swallows what look like rows (an unbalanced quote) stops the read
//! with an error naming the row and line where it opened: a CSV parser reads every following
//! line into that one field, and the rows would silently be lost. A line of a multi-line field
//! looks like a row when it has a whole row's delimiters (one fewer than the header has
//! columns, at least two); the field's first line, when it has exactly the delimiters the rest
//! of its row would have (at least two) and the field's last line holds one (the start of the
//! next row). A note typed over many lines, with a comma or two on each, does not.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufReader, Read};
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

/// The file under the CSV parser, noting where each line ends as the bytes pass through, so that
/// a record's line can be told from its byte offset.
struct LineCounter<R> {
    inner: R,
    /// Bytes passed through so far.
    pos: u64,
    /// Offsets of line ends passed through but not yet consumed by [`LineCounter::line_at`]:
    /// each `\r` (one line end, or the first byte of `\r\n`) and each `\n` not after a `\r`.
    ends: VecDeque<u64>,
    /// Line ends before the oldest offset in `ends`.
    counted: u64,
    /// Whether the last byte passed through was `\r`.
    after_cr: bool,
    /// Whether the file has been read to its end.
    eof: bool,
}

impl<R: Read> Read for LineCounter<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.eof |= n == 0 && !buf.is_empty();
        let pos = self.pos;
        self.ends
            .extend(line_ends(&buf[..n], self.after_cr).map(|(i, _)| pos + i as u64));
        if n > 0 {
            self.after_cr = buf[n - 1] == b'\r';
        }
        self.pos += n as u64;
        Ok(n)
    }
}

impl<R> LineCounter<R> {
    /// The 1-based line of byte `offset`: one plus the line ends before it. Offsets must be
    /// asked for in non-decreasing order.
    fn line_at(&mut self, offset: u64) -> u64 {
        while self.ends.front().is_some_and(|&e| e < offset) {
            self.ends.pop_front();
            self.counted += 1;
        }
        self.counted + 1
    }
}

/// An open CSV export.
pub struct CsvSource {
    reader: csv::Reader<LineCounter<BufReader<File>>>,
    path: PathBuf,
    headers: Vec<String>,
    rows: u64,
    delimiter: u8,
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
        let meta = file.metadata().map_err(|e| Error::io(path, e))?;
        if meta.is_dir() {
            return Err(Error::io(
                path,
                std::io::Error::other("is a directory, not an export file"),
            ));
        }
        // A pipe or device (`--input /dev/stdin`) has no length to check: it is read.
        let empty = || {
            Error::input(
                path,
                "the file is empty: expected a header row and data rows",
            )
        };
        if meta.is_file() && meta.len() == 0 {
            return Err(empty());
        }
        if meta.is_file() {
            let mut start = [0u8; 2];
            let utf16 = (&file).read_exact(&mut start).is_ok()
                && (start == [0xFF, 0xFE] || start == [0xFE, 0xFF]);
            if utf16 {
                return Err(Error::input(
                    path,
                    "the file is UTF-16 text (it starts with a UTF-16 byte-order mark); export \
                     it again as UTF-8 (\"CSV UTF-8\") or Windows-1252 CSV",
                ));
            }
            use std::io::Seek;
            (&file)
                .seek(std::io::SeekFrom::Start(0))
                .map_err(|e| Error::io(path, e))?;
        }
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .flexible(true)
            .has_headers(false)
            .from_reader(LineCounter {
                inner: BufReader::with_capacity(1 << 20, file),
                pos: 0,
                ends: VecDeque::new(),
                counted: 0,
                after_cr: false,
                eof: false,
            });
        let mut header = ByteRecord::new();
        let got = reader
            .read_byte_record(&mut header)
            .map_err(|e| csv_error(path, e))?;
        if !got {
            return Err(empty());
        }
        if header.iter().all(|h| h.is_empty()) {
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
        let mut source = CsvSource {
            reader,
            path: path.to_path_buf(),
            headers,
            rows: 0,
            delimiter,
        };
        let line = source.start_line(&header);
        source.check_runaway(&header, 0, line)?;
        Ok(source)
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
            slot.line = self.start_line(&slot.record);
            self.check_runaway(&slot.record, slot.row, slot.line)?;
            n += 1;
        }
        chunk.truncate(n);
        Ok(n)
    }
}

impl CsvSource {
    /// The line on which the record just read starts: the line of its last byte (the parser
    /// stands just after the record's line end, or at the end of the file), less the line
    /// breaks inside its fields. (The parser's own record position may point before blank lines
    /// it skipped, or at the `\n` of the previous `\r\n`.)
    fn start_line(&mut self, record: &ByteRecord) -> u64 {
        let end = self.reader.position().byte();
        let last = self.reader.get_mut().line_at(end.saturating_sub(1));
        last.saturating_sub(line_breaks(record.as_slice()) as u64)
    }

    /// Stops the read at a field that swallowed what look like rows (see the module docs).
    fn check_runaway(&mut self, record: &ByteRecord, row: u64, line: u64) -> Result<()> {
        if memchr2(record.as_slice()).is_none() {
            return Ok(());
        }
        let width = self.headers.len().max(record.len());
        let Some(r) = runaway(record, self.delimiter, width) else {
            return Ok(());
        };
        // A quote still open at the end of the file took the last line end into its field, so
        // the record has no terminator of its own (start_line assumed one).
        let end = self.reader.position().byte();
        let counter = self.reader.get_ref();
        let to_eof = counter.eof
            && end == counter.pos
            && record
                .iter()
                .next_back()
                .is_some_and(|f| f.ends_with(b"\n") || f.ends_with(b"\r"));
        let line = line + to_eof as u64;
        let last = line + r.lines as u64 - to_eof as u64;
        let what = if row == 0 {
            "the header".to_string()
        } else {
            format!("row {row}")
        };
        Err(Error::input(
            &self.path,
            format!(
                "{what} (line {line}): a quoted field opened on this line runs on to {} and holds \
                 {} line(s) that look like rows: a quote that was never closed? Nothing was \
                 encoded. Fix the quoting in the export (a field that starts with a quote must \
                 end with one) or export the file again",
                if to_eof {
                    format!("the end of the file (line {last})")
                } else {
                    format!("line {last}")
                },
                r.row_like
            ),
        ))
    }
}

/// The line ends in `bytes`, as `(offset, length)`: each `\r\n`, lone `\r` and lone `\n`.
/// `after_cr`: whether the byte before `bytes` was a `\r` (then a `\n` first is the end of
/// that `\r\n`, not a line end of its own).
fn line_ends(bytes: &[u8], after_cr: bool) -> impl Iterator<Item = (usize, usize)> + '_ {
    memchr::memchr2_iter(b'\r', b'\n', bytes).filter_map(move |i| {
        let prev_cr = if i == 0 {
            after_cr
        } else {
            bytes[i - 1] == b'\r'
        };
        match bytes[i] {
            b'\r' => Some((i, 1 + (bytes.get(i + 1) == Some(&b'\n')) as usize)),
            _ if !prev_cr => Some((i, 1)),
            _ => None,
        }
    })
}

/// Line breaks in `bytes`, `\r\n` counted once.
fn line_breaks(bytes: &[u8]) -> usize {
    if memchr2(bytes).is_none() {
        return 0;
    }
    line_ends(bytes, false).count()
}

/// The first line break in `bytes`.
fn memchr2(bytes: &[u8]) -> Option<usize> {
    memchr::memchr2(b'\n', b'\r', bytes)
}

/// What [`runaway`] found.
#[derive(Debug, PartialEq, Eq)]
struct Runaway {
    /// Line breaks inside the field.
    lines: usize,
    /// Its lines that look like rows (see the module docs).
    row_like: usize,
}

/// A field of `record` (from a file of `width` columns) that looks like an unbalanced quote's:
/// a continuation line with a whole row's delimiters (`width - 1`, at least two), or a first
/// line with exactly the delimiters the rest of its row would have (`width - k` for the `k`-th
/// field, when that is at least two) in a field whose last line holds a delimiter (the start of
/// the next row, cut short where a quote closed the runaway early).
fn runaway(record: &ByteRecord, delimiter: u8, width: usize) -> Option<Runaway> {
    let whole_row = width.saturating_sub(1).max(2);
    record.iter().enumerate().find_map(|(k, field)| {
        memchr2(field)?;
        let rest_of_row = width.saturating_sub(k + 1);
        let delims = |line: &[u8]| line.iter().filter(|&&b| b == delimiter).count();
        let mut lines: Vec<&[u8]> = Vec::new();
        let mut start = 0;
        for (i, len) in line_ends(field, false) {
            lines.push(&field[start..i]);
            start = i + len;
        }
        lines.push(&field[start..]);
        let mut row_like = lines[1..].iter().filter(|l| delims(l) >= whole_row).count();
        // The opening line holding exactly the rest of its row, and the field ending in the
        // start of the next row (`6,` before a quote that closed the runaway early).
        let (first, last) = (lines[0], lines[lines.len() - 1]);
        if rest_of_row >= 2 && delims(first) == rest_of_row && delims(last) >= 1 {
            row_like += 1;
        }
        (row_like > 0).then_some(Runaway {
            lines: lines.len() - 1,
            row_like,
        })
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn open(dir: &Path, bytes: &[u8]) -> Result<CsvSource> {
        let path = dir.join("in.csv");
        std::fs::write(&path, bytes).unwrap();
        CsvSource::open(&path, b',', TextEncoding::Utf8)
    }

    fn lines(bytes: &[u8]) -> Vec<(u64, u64)> {
        let dir = tempfile::tempdir().unwrap();
        let mut src = open(dir.path(), bytes).unwrap();
        let mut chunk = Vec::new();
        src.read_chunk(&mut chunk, 100).unwrap();
        chunk.iter().map(|r| (r.row, r.line)).collect()
    }

    #[test]
    fn lines_are_right_whatever_the_line_ends() {
        let want = vec![(1, 2), (2, 3), (3, 6)];
        for eol in ["\n", "\r\n", "\r"] {
            let text = ["h1,h2", "a,b", "c,\"d", "e", "f\"", "g,h", ""].join(eol);
            assert_eq!(lines(text.as_bytes()), want, "{eol:?}");
        }
        // Blank lines are skipped but counted.
        assert_eq!(lines(b"h1,h2\n\na,b\r\n\r\nc,d"), vec![(1, 3), (2, 5)]);
    }

    #[test]
    fn an_unbalanced_quote_stops_the_read_at_its_row() {
        let dir = tempfile::tempdir().unwrap();
        let mut text = String::from("id,first,last,dob,code\n");
        for i in 1..40 {
            if i == 5 {
                text.push_str("5,\"Ana,Lopez,2001-01-01,A\n");
            } else {
                text.push_str(&format!("{i},Ana,Lopez,2001-01-01,A\n"));
            }
        }
        let mut src = open(dir.path(), text.as_bytes()).unwrap();
        let mut chunk = Vec::new();
        let err = src.read_chunk(&mut chunk, 100).unwrap_err().to_string();
        assert!(
            err.contains("row 5 (line 6)") && err.contains("never closed"),
            "{err}"
        );
        assert!(err.contains("the end of the file (line 40)"), "{err}");
        // Closed further down: the rows in between are still reported.
        let closed = text.replace("30,Ana", "30,\"Ana");
        let mut src = open(dir.path(), closed.as_bytes()).unwrap();
        let err = src.read_chunk(&mut chunk, 100).unwrap_err().to_string();
        assert!(
            err.contains("row 5 (line 6)") && err.contains("to line 31"),
            "{err}"
        );
        assert!(!err.contains("Ana") && !err.contains("Lopez"), "{err}");
        // Notes over many lines with a comma or two on each are not a runaway, in any column.
        let ok = "id,note,x,y,z\n1,\"called, no answer\nwill retry, 9am\",a,b,c\n2,n,a,b,c\n";
        assert_eq!(lines(ok.as_bytes()), vec![(1, 2), (2, 4)]);
        let notes = "Met at shelter.\nContacts: sister, aunt, caseworker\n".repeat(40);
        let long =
            format!("id,first,last,dob,notes\n1,Ana,Lopez,2001-01-01,\"{notes}\"\n2,Bo,Li,,x\n");
        assert_eq!(lines(long.as_bytes()), vec![(1, 2), (2, 83)]);
        // The opening line holds the rest of its row; the next row starts with a quoted field
        // that closes the runaway early: still caught, by the first line.
        let early =
            "id,first,last,dob,code\n5,\"Ana,Lopez,2001-01-01,A\n6,\"Bob\",Smith,2002-02-02,B\n";
        let err = open(dir.path(), early.as_bytes())
            .and_then(|mut s| s.read_chunk(&mut chunk, 10))
            .unwrap_err()
            .to_string();
        assert!(err.contains("row 1 (line 2)"), "{err}");
        // A note in a middle column whose first line has as many commas as the rest of the row
        // is not one (its last line is no row's start).
        let note =
            "id,notes,first,last,dob\n1,\"Met sister, aunt, caseworker\nfollow up\",Ana,Li,\n";
        assert_eq!(lines(note.as_bytes()), vec![(1, 2)]);
    }

    #[test]
    fn a_pipe_is_read_and_a_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let err = CsvSource::open(dir.path(), b',', TextEncoding::Utf8).unwrap_err();
        assert_eq!(err.exit_code(), 1, "{err}");
        assert!(open(dir.path(), b"").is_err());
        // One byte is a (one-cell) header, not an empty file.
        let err = open(dir.path(), b"x").map(|s| s.headers().to_vec());
        assert_eq!(err.unwrap(), ["x"]);
    }
}

//! How a CSV export is written: text encoding, delimiter and line ends, found from its bytes.

use std::io::Read;
use std::path::Path;

use crate::error::{Error, Result};
use crate::source::TextEncoding;

/// Delimiters tried, in order of preference when two fit equally well.
pub const DELIMITERS: [u8; 4] = [b',', b';', b'\t', b'|'];

/// Bytes of the file's start used to find the delimiter and line ends.
const SAMPLE_BYTES: usize = 256 * 1024;

/// Rows of the sample parsed per candidate delimiter.
const SAMPLE_ROWS: usize = 500;

/// What the bytes of an export say about how it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Sniff {
    /// Parquet (by file name): the fields below do not apply.
    pub parquet: bool,
    /// The text encoding: UTF-8 when every byte sequence is valid UTF-8, else Windows-1252.
    pub encoding: TextEncoding,
    /// Whether the file starts with a UTF-8 byte-order mark.
    pub bom: bool,
    /// Byte offset of the first invalid UTF-8 sequence, when there is one.
    pub first_invalid_utf8: Option<u64>,
    /// The field delimiter.
    pub delimiter: u8,
    /// Share of the sampled rows that have the header's width under [`Sniff::delimiter`].
    pub delimiter_fit: f64,
    /// Line ends seen in the sample: `\n`, `\r\n`, `\r`, or `mixed`.
    pub line_ends: &'static str,
}

impl Sniff {
    /// The delimiter as a source mapping writes it (`","`, `"tab"`).
    pub fn delimiter_name(&self) -> String {
        match self.delimiter {
            b'\t' => "tab".to_string(),
            d => (d as char).to_string(),
        }
    }
}

/// Whether `path` names a Parquet file (by its extension), as [`crate::io::ExportSource`] does.
pub fn is_parquet(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("parquet") || e.eq_ignore_ascii_case("pq"))
}

/// Reads the file (all of it for the encoding, its start for the rest) and describes it.
pub fn sniff(path: &Path) -> Result<Sniff> {
    if is_parquet(path) {
        return Ok(Sniff {
            parquet: true,
            encoding: TextEncoding::Utf8,
            bom: false,
            first_invalid_utf8: None,
            delimiter: b',',
            delimiter_fit: 1.0,
            line_ends: "\n",
        });
    }
    let mut file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut sample = Vec::with_capacity(SAMPLE_BYTES);
    let mut buf = vec![0u8; 1 << 20];
    let mut carry: Vec<u8> = Vec::new();
    let mut offset = 0u64;
    let mut first_invalid = None;
    loop {
        let n = file.read(&mut buf).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        if sample.len() < SAMPLE_BYTES {
            let take = n.min(SAMPLE_BYTES - sample.len());
            sample.extend_from_slice(&buf[..take]);
        }
        if first_invalid.is_none() {
            carry.extend_from_slice(&buf[..n]);
            match std::str::from_utf8(&carry) {
                Ok(_) => {
                    offset += carry.len() as u64;
                    carry.clear();
                }
                Err(e) => match e.error_len() {
                    // Cut in the middle of a character: keep its start for the next block.
                    None => {
                        let valid = e.valid_up_to();
                        offset += valid as u64;
                        carry.drain(..valid);
                    }
                    Some(_) => first_invalid = Some(offset + e.valid_up_to() as u64),
                },
            }
        }
    }
    if first_invalid.is_none() && !carry.is_empty() {
        first_invalid = Some(offset);
    }
    let bom = sample.starts_with(b"\xEF\xBB\xBF");
    let body = if bom { &sample[3..] } else { &sample[..] };
    // The sample ends at its last line end, so that no row is cut.
    let body = match body.iter().rposition(|&b| b == b'\n' || b == b'\r') {
        // A `\r` at the very end may be the first half of a `\r\n` the sample cut.
        Some(end) if sample.len() >= SAMPLE_BYTES && body[end] == b'\r' && end > 0 => &body[..end],
        Some(end) if sample.len() >= SAMPLE_BYTES => &body[..=end],
        _ => body,
    };
    let (delimiter, delimiter_fit) = best_delimiter(body);
    Ok(Sniff {
        parquet: false,
        encoding: if first_invalid.is_some() {
            TextEncoding::Windows1252
        } else {
            TextEncoding::Utf8
        },
        bom,
        first_invalid_utf8: first_invalid,
        delimiter,
        delimiter_fit,
        line_ends: line_ends(body),
    })
}

/// The delimiter under which the most sampled rows have the header's width (ties: the wider
/// header, then [`DELIMITERS`] order), with that share. A file of one column gets `,`.
fn best_delimiter(sample: &[u8]) -> (u8, f64) {
    let mut best = (b',', 1.0, 1usize);
    for &d in &DELIMITERS {
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(d)
            .flexible(true)
            .has_headers(false)
            .from_reader(sample);
        let mut record = csv::ByteRecord::new();
        let mut width = 0usize;
        let (mut rows, mut fit) = (0usize, 0usize);
        while rows <= SAMPLE_ROWS {
            match reader.read_byte_record(&mut record) {
                Ok(true) => {}
                _ => break,
            }
            if width == 0 {
                width = record.len();
                continue;
            }
            rows += 1;
            fit += usize::from(record.len() == width);
        }
        if width < 2 {
            continue;
        }
        let share = if rows == 0 {
            1.0
        } else {
            fit as f64 / rows as f64
        };
        let better = best.2 < 2
            || share > best.1 + 1e-9
            || ((share - best.1).abs() <= 1e-9 && width > best.2);
        if better {
            best = (d, share, width);
        }
    }
    (best.0, best.1)
}

/// Which line ends the sample uses.
fn line_ends(sample: &[u8]) -> &'static str {
    let (mut crlf, mut lf, mut cr) = (0usize, 0usize, 0usize);
    let mut i = 0;
    while i < sample.len() {
        match sample[i] {
            b'\r' if sample.get(i + 1) == Some(&b'\n') => {
                crlf += 1;
                i += 1;
            }
            b'\r' => cr += 1,
            b'\n' => lf += 1,
            _ => {}
        }
        i += 1;
    }
    match (crlf > 0, lf > 0, cr > 0) {
        (true, false, false) => "\\r\\n",
        (false, _, true) if lf == 0 => "\\r",
        (false, true, false) | (false, false, false) => "\\n",
        _ => "mixed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sniff_bytes(bytes: &[u8]) -> Sniff {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.csv");
        std::fs::write(&p, bytes).unwrap();
        sniff(&p).unwrap()
    }

    #[test]
    fn finds_the_delimiter_that_keeps_rows_even() {
        let s = sniff_bytes(b"a;b;c\n1;2,5;3\n4;5;6\n");
        assert_eq!(s.delimiter, b';');
        assert_eq!(s.delimiter_name(), ";");
        let s = sniff_bytes(b"a\tb\n1\t2\n");
        assert_eq!(s.delimiter_name(), "tab");
        let s = sniff_bytes(b"a|b|c\r\n1|x, y|3\r\n");
        assert_eq!(s.delimiter, b'|');
        assert_eq!(s.line_ends, "\\r\\n");
        // A quoted comma does not split a field.
        let s = sniff_bytes(b"id,name\n1,\"Lopez, Ana\"\n2,\"Ng, Bo\"\n");
        assert_eq!((s.delimiter, s.delimiter_fit), (b',', 1.0));
    }

    #[test]
    fn tells_windows_1252_from_utf8() {
        let s = sniff_bytes(b"\xEF\xBB\xBFa,b\nJos\xC3\xA9,1\n");
        assert!(s.bom);
        assert_eq!(s.encoding, TextEncoding::Utf8);
        let s = sniff_bytes(b"a,b\nJos\xE9,1\n");
        assert_eq!(s.encoding, TextEncoding::Windows1252);
        assert_eq!(s.first_invalid_utf8, Some(7));
        // A cut multi-byte character at the end is invalid too.
        let s = sniff_bytes(b"a,b\nx,\xC3");
        assert_eq!(s.encoding, TextEncoding::Windows1252);
    }

    #[test]
    fn line_ends_are_named() {
        assert_eq!(line_ends(b"a\rb\r"), "\\r");
        assert_eq!(line_ends(b"a\nb\n"), "\\n");
        assert_eq!(line_ends(b"a\r\nb\n"), "mixed");
    }
}

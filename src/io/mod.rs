//! Reading exports and writing outputs: CSV in, Parquet and CSV out, always atomically.
//!
//! Every output goes to a temporary file in the destination's directory and is renamed over the
//! destination only when complete ([`AtomicFile`]), so a killed job leaves the previous output
//! intact and never a half-written file.

pub mod aggregates;
pub mod csv_in;
pub mod encodings;
pub mod events;
pub mod parquet_in;

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// A file written under a temporary name and renamed into place by [`AtomicFile::commit`].
/// Dropped without `commit`, it disappears and the destination is untouched.
#[derive(Debug)]
pub struct AtomicFile {
    tmp: tempfile::NamedTempFile,
    dest: PathBuf,
}

impl AtomicFile {
    /// Opens a temporary file beside `dest` (same directory, so the final rename is atomic).
    pub fn create(dest: &Path) -> Result<AtomicFile> {
        let dir = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let tmp = tempfile::Builder::new()
            .prefix(".crosswalk-")
            .suffix(".tmp")
            .tempfile_in(&dir)
            .map_err(|e| Error::io(&dir, e))?;
        Ok(AtomicFile {
            tmp,
            dest: dest.to_path_buf(),
        })
    }

    /// The destination path.
    pub fn dest(&self) -> &Path {
        &self.dest
    }

    /// The open temporary file.
    pub fn file(&mut self) -> &mut std::fs::File {
        self.tmp.as_file_mut()
    }

    /// Flushes to disk and renames over the destination.
    pub fn commit(self) -> Result<()> {
        let dest = self.dest;
        self.tmp
            .as_file()
            .sync_all()
            .map_err(|e| Error::io(&dest, e))?;
        self.tmp
            .persist(&dest)
            .map_err(|e| Error::io(&dest, e.error))?;
        Ok(())
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.tmp.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.tmp.flush()
    }
}

/// An agency export: CSV, or Parquet when the file name ends in `.parquet` or `.pq`.
#[derive(Debug)]
pub enum ExportSource {
    /// A CSV export.
    Csv(csv_in::CsvSource),
    /// A Parquet export.
    Parquet(parquet_in::ParquetSource),
}

impl ExportSource {
    /// Opens `path`; `delimiter` and `encoding` apply to CSV only.
    pub fn open(
        path: &Path,
        delimiter: u8,
        encoding: crate::source::TextEncoding,
    ) -> Result<ExportSource> {
        let parquet = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e.eq_ignore_ascii_case("parquet") || e.eq_ignore_ascii_case("pq"));
        Ok(if parquet {
            ExportSource::Parquet(parquet_in::ParquetSource::open(path)?)
        } else {
            ExportSource::Csv(csv_in::CsvSource::open(path, delimiter, encoding)?)
        })
    }

    /// Column names.
    pub fn headers(&self) -> &[String] {
        match self {
            ExportSource::Csv(s) => s.headers(),
            ExportSource::Parquet(s) => s.headers(),
        }
    }

    /// Columns that cannot be read as text (Parquet lists, structs, ...).
    pub fn unsupported(&self) -> &[usize] {
        match self {
            ExportSource::Csv(_) => &[],
            ExportSource::Parquet(s) => s.unsupported(),
        }
    }

    /// Fills `chunk` with up to `max` rows; 0 at the end.
    pub fn read_chunk(&mut self, chunk: &mut Vec<csv_in::RawRow>, max: usize) -> Result<usize> {
        match self {
            ExportSource::Csv(s) => s.read_chunk(chunk, max),
            ExportSource::Parquet(s) => s.read_chunk(chunk, max),
        }
    }
}

/// Writes one record batch as a Parquet file, atomically, with `metadata` as the file's
/// key-value metadata.
pub fn write_parquet(
    path: &Path,
    batch: &arrow_array::RecordBatch,
    metadata: &[(&str, String)],
) -> Result<()> {
    let mut w =
        parquet::arrow::ArrowWriter::try_new(AtomicFile::create(path)?, batch.schema(), None)
            .map_err(|e| Error::parquet(path, e))?;
    for (k, v) in metadata {
        w.append_key_value_metadata(parquet::file::metadata::KeyValue::new(
            k.to_string(),
            v.clone(),
        ));
    }
    w.write(batch).map_err(|e| Error::parquet(path, e))?;
    w.into_inner()
        .map_err(|e| Error::parquet(path, e))?
        .commit()
}

/// Writes `bytes` to `dest` atomically.
pub fn write_atomic(dest: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = AtomicFile::create(dest)?;
    f.write_all(bytes).map_err(|e| Error::io(dest, e))?;
    f.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uncommitted_file_leaves_old_content() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out.txt");
        write_atomic(&dest, b"old").unwrap();
        {
            let mut f = AtomicFile::create(&dest).unwrap();
            f.write_all(b"new but abandoned").unwrap();
        }
        assert_eq!(std::fs::read(&dest).unwrap(), b"old");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        write_atomic(&dest, b"new").unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"new");
    }
}

//! `batches/<id>.index`: what linkage needs of one batch, computed once when it is added, so
//! that later runs read neither its Parquet nor recompute its band keys.
//!
//! Little-endian binary: `CWIDX001`, then `u32` CLK width in bytes, `u32` bands, `u32`
//! records, `u32` rows; each record key (`u32` length + UTF-8); each row's record (`u32`); the
//! rows' CLKs (width bytes each); their band keys (`bands` × `u32` each); and a BLAKE3 digest of
//! everything before it, checked on reading.

use std::path::Path;

use rustc_hash::FxHashSet;

use crate::block::MinHasher;
use crate::compare::ClkMatrix;
use crate::error::{Error, Result};
use crate::io::{encodings::Encodings, write_atomic};

const MAGIC: &[u8; 8] = b"CWIDX001";

/// One batch's records, distinct CLKs (main and alias, per record) and band keys.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchIndex {
    /// CLK width in bytes.
    pub width: usize,
    /// Bands per row.
    pub bands: usize,
    /// Distinct record keys, sorted.
    pub records: Vec<String>,
    /// Each row's record (index into `records`).
    pub row_record: Vec<u32>,
    /// Rows' CLK bytes, concatenated.
    pub clks: Vec<u8>,
    /// Rows' band keys, `bands` per row.
    pub keys: Vec<u32>,
}

impl BatchIndex {
    /// Indexes an encodings file with the registry's band-key function. All-zero CLKs (no
    /// identifier at all) are left out, as the link job leaves them out.
    pub fn build(enc: &Encodings, hasher: &MinHasher) -> BatchIndex {
        let width = enc.meta.clk_bits / 8;
        let mut records: Vec<&str> = enc.record_key.iter().map(|k| k.as_str()).collect();
        records.sort_unstable();
        records.dedup();
        let mut seen: FxHashSet<(u32, &[u8])> = FxHashSet::default();
        let mut row_record = Vec::new();
        let mut clks = Vec::new();
        for i in 0..enc.len() {
            let r = records
                .binary_search(&enc.record_key[i].as_str())
                .unwrap_or_default() as u32;
            let main = &enc.clks[i * width..(i + 1) * width];
            for c in std::iter::once(main).chain(enc.alias_clks[i].iter().map(|c| c.as_bytes())) {
                if c.len() == width && c.iter().any(|&b| b != 0) && seen.insert((r, c)) {
                    row_record.push(r);
                    clks.extend_from_slice(c);
                }
            }
        }
        let keys = match ClkMatrix::from_bytes(width * 8, &clks) {
            Some(m) => hasher.keys(&m),
            None => Vec::new(),
        };
        BatchIndex {
            width,
            bands: hasher.params().bands,
            records: records.into_iter().map(str::to_string).collect(),
            row_record,
            clks,
            keys,
        }
    }

    /// Number of CLK rows.
    pub fn rows(&self) -> usize {
        self.row_record.len()
    }

    /// CLK bytes of row `i`.
    pub fn clk(&self, i: usize) -> &[u8] {
        &self.clks[i * self.width..(i + 1) * self.width]
    }

    /// Band keys of row `i`.
    pub fn band_keys(&self, i: usize) -> &[u32] {
        &self.keys[i * self.bands..(i + 1) * self.bands]
    }

    /// Writes the index atomically.
    pub fn write(&self, path: &Path) -> Result<()> {
        let mut out = Vec::with_capacity(
            24 + self.clks.len() + 4 * (self.keys.len() + self.row_record.len()),
        );
        out.extend_from_slice(MAGIC);
        for n in [
            self.width,
            self.bands,
            self.records.len(),
            self.row_record.len(),
        ] {
            out.extend_from_slice(&(n as u32).to_le_bytes());
        }
        for r in &self.records {
            out.extend_from_slice(&(r.len() as u32).to_le_bytes());
            out.extend_from_slice(r.as_bytes());
        }
        for &r in &self.row_record {
            out.extend_from_slice(&r.to_le_bytes());
        }
        out.extend_from_slice(&self.clks);
        for &k in &self.keys {
            out.extend_from_slice(&k.to_le_bytes());
        }
        let digest = blake3::hash(&out);
        out.extend_from_slice(digest.as_bytes());
        write_atomic(path, &out)
    }

    /// Reads an index written by [`BatchIndex::write`], checking its digest.
    pub fn read(path: &Path) -> Result<BatchIndex> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let damaged = || {
            Error::encoding(path, "damaged registry batch index (remove the registry generation or restore it from backup)")
        };
        if bytes.len() < 24 + 32 || &bytes[..8] != MAGIC {
            return Err(damaged());
        }
        let (body, digest) = bytes.split_at(bytes.len() - 32);
        if blake3::hash(body).as_bytes() != digest {
            return Err(damaged());
        }
        let mut pos = 8;
        let u32_at = |pos: &mut usize| -> Result<u32> {
            let b = body.get(*pos..*pos + 4).ok_or_else(damaged)?;
            *pos += 4;
            Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        };
        let width = u32_at(&mut pos)? as usize;
        let bands = u32_at(&mut pos)? as usize;
        let n_records = u32_at(&mut pos)? as usize;
        let n_rows = u32_at(&mut pos)? as usize;
        let mut records = Vec::with_capacity(n_records);
        for _ in 0..n_records {
            let len = u32_at(&mut pos)? as usize;
            let s = body.get(pos..pos + len).ok_or_else(damaged)?;
            records.push(String::from_utf8(s.to_vec()).map_err(|_| damaged())?);
            pos += len;
        }
        let mut row_record = Vec::with_capacity(n_rows);
        for _ in 0..n_rows {
            let r = u32_at(&mut pos)?;
            if r as usize >= n_records {
                return Err(damaged());
            }
            row_record.push(r);
        }
        let clks = body
            .get(pos..pos + n_rows * width)
            .ok_or_else(damaged)?
            .to_vec();
        pos += n_rows * width;
        let key_bytes = body.get(pos..).ok_or_else(damaged)?;
        if key_bytes.len() != n_rows * bands * 4 {
            return Err(damaged());
        }
        let keys = key_bytes
            .chunks_exact(4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        Ok(BatchIndex {
            width,
            bands,
            records,
            row_record,
            clks,
            keys,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_damage_detected() {
        let idx = BatchIndex {
            width: 8,
            bands: 2,
            records: vec!["a".into(), "bé".into()],
            row_record: vec![0, 1, 1],
            clks: (0..24).collect(),
            keys: vec![1, 2, 3, 4, 5, 6],
        };
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.index");
        idx.write(&p).unwrap();
        assert_eq!(BatchIndex::read(&p).unwrap(), idx);
        let mut bytes = std::fs::read(&p).unwrap();
        bytes[30] ^= 1;
        std::fs::write(&p, &bytes).unwrap();
        assert!(BatchIndex::read(&p).is_err());
        std::fs::write(&p, b"CWIDX001").unwrap();
        assert!(BatchIndex::read(&p).is_err());
    }
}

//! `batches/<id>.index`: what linkage needs of one batch, computed once when it is added, so
//! that later runs read neither its Parquet nor recompute its band keys.
//!
//! Read through a memory map (CLKs and keys are never copied). Little-endian binary: `CWIDX001`, then `u32` CLK width in bytes, `u32` bands, `u32`
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

/// The bytes of an index: built in memory, or a read-only map of the file.
#[derive(Debug)]
enum Bytes {
    Owned(Vec<u8>),
    Mapped(memmap2::Mmap),
}

impl std::ops::Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Owned(v) => v,
            Bytes::Mapped(m) => m,
        }
    }
}

/// One batch's records, distinct CLKs (main and alias, per record) and band keys. CLKs and
/// band keys stay in the file's bytes (memory-mapped when read), so reading a registry's
/// indexes costs no copy of them.
#[derive(Debug)]
pub struct BatchIndex {
    /// CLK width in bytes.
    pub width: usize,
    /// Bands per row.
    pub bands: usize,
    /// Distinct record keys, sorted.
    pub records: Vec<String>,
    /// Each row's record (index into `records`).
    pub row_record: Vec<u32>,
    bytes: Bytes,
    clk_off: usize,
    keys_off: usize,
}

impl PartialEq for BatchIndex {
    fn eq(&self, other: &Self) -> bool {
        self.bytes[..] == other.bytes[..]
    }
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
        let records: Vec<String> = records.into_iter().map(str::to_string).collect();
        BatchIndex::from_parts(
            width,
            hasher.params().bands,
            &records,
            &row_record,
            &clks,
            &keys,
        )
    }

    /// An index of the given contents (for tests and [`BatchIndex::build`]).
    pub fn from_parts(
        width: usize,
        bands: usize,
        records: &[String],
        row_record: &[u32],
        clks: &[u8],
        keys: &[u32],
    ) -> BatchIndex {
        let mut out = Vec::with_capacity(56 + clks.len() + 4 * (keys.len() + row_record.len()));
        out.extend_from_slice(MAGIC);
        for n in [width, bands, records.len(), row_record.len()] {
            out.extend_from_slice(&(n as u32).to_le_bytes());
        }
        for r in records {
            out.extend_from_slice(&(r.len() as u32).to_le_bytes());
            out.extend_from_slice(r.as_bytes());
        }
        for &r in row_record {
            out.extend_from_slice(&r.to_le_bytes());
        }
        out.extend_from_slice(clks);
        for &k in keys {
            out.extend_from_slice(&k.to_le_bytes());
        }
        let digest = blake3::hash(&out);
        out.extend_from_slice(digest.as_bytes());
        BatchIndex::parse(Bytes::Owned(out))
            .unwrap_or_else(|| unreachable!("an index just serialised parses"))
    }

    /// Number of CLK rows.
    pub fn rows(&self) -> usize {
        self.row_record.len()
    }

    /// CLK bytes of row `i`.
    pub fn clk(&self, i: usize) -> &[u8] {
        &self.bytes[self.clk_off + i * self.width..][..self.width]
    }

    /// Appends the band keys of row `i` to `out`.
    pub fn band_keys_into(&self, i: usize, out: &mut Vec<u32>) {
        let b = &self.bytes[self.keys_off + i * self.bands * 4..][..self.bands * 4];
        out.extend(
            b.chunks_exact(4)
                .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])),
        );
    }

    /// Writes the index atomically.
    pub fn write(&self, path: &Path) -> Result<()> {
        write_atomic(path, &self.bytes)
    }

    /// Reads (maps) an index written by [`BatchIndex::write`], checking its digest.
    pub fn read(path: &Path) -> Result<BatchIndex> {
        let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        // SAFETY: registry batch files are written once (temporary file + rename) and never
        // modified afterwards, only removed under the registry lock by a later run; the map is
        // read-only.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
        BatchIndex::parse(Bytes::Mapped(map)).ok_or_else(|| {
            Error::encoding(
                path,
                "damaged registry batch index (restore the registry from backup)",
            )
        })
    }

    fn parse(bytes: Bytes) -> Option<BatchIndex> {
        if bytes.len() < 24 + 32 || &bytes[..8] != MAGIC {
            return None;
        }
        let (body, digest) = bytes.split_at(bytes.len() - 32);
        if blake3::hash(body).as_bytes() != digest {
            return None;
        }
        let mut pos = 8;
        let u32_at = |pos: &mut usize| -> Option<u32> {
            let b = body.get(*pos..*pos + 4)?;
            *pos += 4;
            Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        };
        let width = u32_at(&mut pos)? as usize;
        let bands = u32_at(&mut pos)? as usize;
        let n_records = u32_at(&mut pos)? as usize;
        let n_rows = u32_at(&mut pos)? as usize;
        let mut records = Vec::with_capacity(n_records);
        for _ in 0..n_records {
            let len = u32_at(&mut pos)? as usize;
            let s = body.get(pos..pos + len)?;
            records.push(String::from_utf8(s.to_vec()).ok()?);
            pos += len;
        }
        let mut row_record = Vec::with_capacity(n_rows);
        for _ in 0..n_rows {
            let r = u32_at(&mut pos)?;
            if r as usize >= n_records {
                return None;
            }
            row_record.push(r);
        }
        let clk_off = pos;
        let keys_off = clk_off + n_rows * width;
        if body.len() != keys_off + n_rows * bands * 4 {
            return None;
        }
        Some(BatchIndex {
            width,
            bands,
            records,
            row_record,
            clk_off,
            keys_off,
            bytes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_damage_detected() {
        let clks: Vec<u8> = (0..24).collect();
        let idx = BatchIndex::from_parts(
            8,
            2,
            &["a".into(), "bé".into()],
            &[0, 1, 1],
            &clks,
            &[1, 2, 3, 4, 5, 6],
        );
        assert_eq!(idx.clk(2), &clks[16..24]);
        let mut k = Vec::new();
        idx.band_keys_into(1, &mut k);
        assert_eq!(k, vec![3, 4]);
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

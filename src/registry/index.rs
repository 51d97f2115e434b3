//! `batches/<id>.index`: what linkage needs of one batch, computed once when it is added, so
//! that later runs read neither its Parquet nor recompute its band keys.
//!
//! Read through a memory map (CLKs and keys are never copied). Little-endian binary:
//! `CWIDX002`, then `u32` CLK width in bytes, `u32` bands, `u32` records, `u32` rows; each
//! record key (`u32` length + UTF-8); each row's record (`u32`); the rows' CLKs (width bytes
//! each); then per band, its **band table**: the rows' keys of that band sorted (`rows` ×
//! `u32`) followed by the matching rows (`rows` × `u32`, ties by row); and a BLAKE3 digest of
//! everything before it, checked on reading.
//!
//! Band tables sorted once, when the batch is added, let a later run find the old rows that
//! share a band key with this month's CLKs by a merge join per band that reads each old key
//! once, in order, instead of looking up every old row's keys one by one.

use std::path::Path;

use rustc_hash::FxHashSet;

use crate::block::MinHasher;
use crate::compare::ClkMatrix;
use crate::error::{Error, Result};
use crate::io::{encodings::Encodings, write_atomic};

const MAGIC: &[u8; 8] = b"CWIDX002";

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

/// One batch's records, distinct CLKs (main and alias, per record) and band tables. CLKs and
/// band tables stay in the file's bytes (memory-mapped when read), so reading a registry's
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
    /// Row-major band keys (`keys[row * bands + band]`) of an index built in this process (not
    /// stored: a read index has its band tables only).
    row_keys: Option<Vec<u32>>,
    bytes: Bytes,
    clk_off: usize,
    tables_off: usize,
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
        let mut idx = BatchIndex::from_parts(
            width,
            hasher.params().bands,
            &records,
            &row_record,
            &clks,
            &keys,
        );
        idx.row_keys = Some(keys);
        idx
    }

    /// An index of the given contents (for tests and [`BatchIndex::build`]); `keys` are the
    /// rows' band keys, row-major.
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
        let rows = row_record.len();
        let mut table: Vec<(u32, u32)> = Vec::with_capacity(rows);
        for band in 0..bands {
            table.clear();
            table.extend((0..rows).map(|r| (keys[r * bands + band], r as u32)));
            table.sort_unstable();
            for &(k, _) in &table {
                out.extend_from_slice(&k.to_le_bytes());
            }
            for &(_, r) in &table {
                out.extend_from_slice(&r.to_le_bytes());
            }
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

    /// Row-major band keys of every row, when this index was built in this process.
    pub fn row_keys(&self) -> Option<&[u32]> {
        self.row_keys.as_deref()
    }

    /// The band table of `band`: its keys sorted, and the row of each key.
    pub fn band_table(&self, band: usize) -> BandTable<'_> {
        let n = self.rows();
        let at = self.tables_off + band * n * 8;
        BandTable {
            keys: &self.bytes[at..at + n * 4],
            rows: &self.bytes[at + n * 4..at + n * 8],
        }
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

    /// Whether `path` holds a batch index crosswalk wrote (its magic and digest check out).
    pub fn is_batch_index(path: &Path) -> bool {
        BatchIndex::read(path).is_ok()
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
        let tables_off = clk_off + n_rows * width;
        if body.len() != tables_off + n_rows * bands * 8 {
            return None;
        }
        let idx = BatchIndex {
            width,
            bands,
            records,
            row_record,
            row_keys: None,
            clk_off,
            tables_off,
            bytes,
        };
        // (Rows in band tables are not checked here, which would read every table: their
        // users look them up with `get`.)
        Some(idx)
    }
}

/// One band's table of a [`BatchIndex`]: keys in ascending order, each with its row.
#[derive(Debug, Clone, Copy)]
pub struct BandTable<'a> {
    keys: &'a [u8],
    rows: &'a [u8],
}

impl BandTable<'_> {
    /// Number of entries (the batch's rows).
    pub fn len(&self) -> usize {
        self.keys.len() / 4
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Key of entry `i`.
    #[inline]
    pub fn key(&self, i: usize) -> u32 {
        let c = &self.keys[i * 4..i * 4 + 4];
        u32::from_le_bytes([c[0], c[1], c[2], c[3]])
    }

    /// Row of entry `i`.
    #[inline]
    pub fn row(&self, i: usize) -> usize {
        let c = &self.rows[i * 4..i * 4 + 4];
        u32::from_le_bytes([c[0], c[1], c[2], c[3]]) as usize
    }

    /// The first entry at or after `from` whose key is at least `key` (galloping: cheap when
    /// it is near `from`, logarithmic when far), or `len()`.
    pub fn seek(&self, from: usize, key: u32) -> usize {
        gallop_by(self.len(), from, key, |i| self.key(i))
    }
}

/// Galloping search over `n` keys in ascending order, read through `key_at`: the first index
/// at or after `from` whose key is at least `key`, or `n`. Cheap when it is near `from`,
/// logarithmic when far (the merge joins of the registry skip ahead with it).
pub(crate) fn gallop_by(n: usize, from: usize, key: u32, key_at: impl Fn(usize) -> u32) -> usize {
    if from >= n || key_at(from) >= key {
        return from.min(n);
    }
    // key_at(lo) < key; hi == n or key_at(hi) >= key once the loop ends.
    let (mut lo, mut hi, mut step) = (from, from + 1, 1);
    while hi < n && key_at(hi) < key {
        lo = hi;
        step *= 2;
        hi = from + step;
    }
    let mut hi = hi.min(n);
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if key_at(mid) < key {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    hi
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seek_finds_what_a_binary_search_finds() {
        let mut state = 7u64;
        for n in [0usize, 1, 2, 5, 64, 1000] {
            let mut keys: Vec<u32> = (0..n)
                .map(|_| {
                    state = state
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    (state >> 58) as u32 // many repeats
                })
                .collect();
            keys.sort_unstable();
            let bytes: Vec<u8> = keys.iter().flat_map(|k| k.to_le_bytes()).collect();
            let rows = vec![0u8; bytes.len()];
            let t = BandTable {
                keys: &bytes,
                rows: &rows,
            };
            for from in (0..=n).step_by(7) {
                for key in 0..66 {
                    let want = from + keys[from..].partition_point(|&k| k < key);
                    assert_eq!(t.seek(from, key), want, "n {n} from {from} key {key}");
                }
            }
        }
    }

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
        // band 0 keys of rows 0, 1, 2: 1, 3, 5 → sorted with their rows; band 1: 2, 4, 6
        let t = idx.band_table(1);
        assert_eq!(
            (t.len(), t.key(0), t.row(0), t.key(2), t.row(2)),
            (3, 2, 0, 6, 2)
        );
        assert_eq!(
            (t.seek(0, 4), t.seek(0, 5), t.seek(1, 7), t.seek(0, 0)),
            (1, 2, 3, 0)
        );
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

//! Candidate generation for large inputs: MinHash locality-sensitive hashing over the set bits
//! of each CLK, in bands.
//!
//! Comparing every pair of a million CLKs is 5·10¹¹ comparisons; blocking must cut that while
//! keeping the pairs the threshold would accept. A CLK is a set of bit positions, and two CLKs'
//! Dice `D` fixes their Jaccard similarity `J = D / (2 − D)` (Dice 0.8 is Jaccard 0.667). A
//! MinHash of a set under a random permutation of the positions equals the other set's with
//! probability `J`; a *band* of `r` MinHashes collides with probability `J^r`, and with `b`
//! bands a pair becomes a candidate with probability `1 − (1 − J^r)^b`: near 1 for similar
//! pairs, near 0 for dissimilar ones (docs/linkage.md has the curve and the measured pair
//! completeness).
//!
//! **Nothing leaks**: the permutations are public and fixed (from [`LshParams::seed`]), and they
//! act on CLK bits, which are keyed already: without the agencies' key nobody can say which
//! name or date a bit, a MinHash or a bucket stands for. Unlike blocking on (even hashed)
//! identifiers, nothing here is computed from an identifier.
//!
//! **Cheap**: a CLK sets about a third of its bits, so the first position of a random
//! permutation that is set is found after about three probes; a MinHash costs a few bit tests,
//! not a pass over the CLK.
//!
//! Each candidate pair is emitted by the first band it collides in only (its band keys are
//! compared for the earlier bands), so no pair is compared twice and no set of seen pairs is
//! kept.
//!
//! ```
//! use crosswalk::block::{Lsh, LshParams};
//! use crosswalk::compare::ClkMatrix;
//!
//! // Three 128-bit CLKs: 0 and 1 identical, 2 different.
//! let mut bytes = vec![0xA5u8; 16];
//! bytes.extend([0xA5u8; 16]);
//! bytes.extend([0x5Au8; 16]);
//! let m = ClkMatrix::from_bytes(128, &bytes).unwrap();
//! let lsh = Lsh::new(&m, LshParams { bands: 8, rows: 4, seed: 1 });
//! let mut pairs = Vec::new();
//! lsh.for_each_candidate(&mut |i, j| pairs.push((i, j)));
//! assert_eq!(pairs, vec![(0, 1)]);
//! ```

use rayon::prelude::*;

use crate::compare::ClkMatrix;

/// LSH parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LshParams {
    /// Number of bands `b`.
    pub bands: usize,
    /// MinHashes per band `r`.
    pub rows: usize,
    /// Seed of the public permutations.
    pub seed: u64,
}

impl Default for LshParams {
    /// 40 bands of 6 (docs/linkage.md explains the choice): a pair at Dice 0.8 becomes a
    /// candidate with probability 0.974 per pair of CLKs, at Dice 0.85 with 0.996.
    fn default() -> Self {
        LshParams {
            bands: 40,
            rows: 6,
            seed: 0x63726f7373776b31, // "crosswk1"
        }
    }
}

impl LshParams {
    /// Probability that a pair with Dice `dice` becomes a candidate.
    pub fn candidate_probability(&self, dice: f64) -> f64 {
        let j = dice / (2.0 - dice);
        1.0 - (1.0 - j.powi(self.rows as i32)).powi(self.bands as i32)
    }
}

/// SplitMix64: the permutations' random source (public, deterministic).
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Band keys of every row, and the rows of each band sorted by key.
#[derive(Debug, Clone)]
pub struct Lsh {
    params: LshParams,
    /// `keys[row * bands + band]`.
    keys: Vec<u32>,
    /// Per band: `(key, row)` sorted.
    tables: Vec<Vec<(u32, u32)>>,
}

impl Lsh {
    /// Computes every row's band keys and sorts each band's table (in parallel).
    pub fn new(matrix: &ClkMatrix, params: LshParams) -> Lsh {
        let bits = matrix.row(0).len() * 64;
        let n_hash = params.bands * params.rows;
        // One random permutation of the bit positions per MinHash (Fisher-Yates).
        let mut state = params.seed;
        let perms: Vec<Vec<u16>> = (0..n_hash)
            .map(|_| {
                let mut p: Vec<u16> = (0..bits as u16).collect();
                for i in (1..bits).rev() {
                    let j = (splitmix(&mut state) % (i as u64 + 1)) as usize;
                    p.swap(i, j);
                }
                p
            })
            .collect();
        let perms = &perms;
        let keys: Vec<u32> = (0..matrix.len())
            .into_par_iter()
            .flat_map_iter(|r| {
                let row = matrix.row(r);
                let set = |pos: u16| row[pos as usize >> 6] >> (pos & 63) & 1 == 1;
                (0..params.bands).map(move |b| {
                    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ b as u64;
                    for k in 0..params.rows {
                        let perm = &perms[b * params.rows + k];
                        let first = perm.iter().position(|&p| set(p)).unwrap_or(bits) as u64;
                        h = (h ^ first).wrapping_mul(0x0000_0100_0000_01B3);
                    }
                    (h ^ (h >> 32)) as u32
                })
            })
            .collect();
        let tables: Vec<Vec<(u32, u32)>> = (0..params.bands)
            .into_par_iter()
            .map(|b| {
                let mut t: Vec<(u32, u32)> = (0..matrix.len())
                    .map(|r| (keys[r * params.bands + b], r as u32))
                    .collect();
                t.sort_unstable();
                t
            })
            .collect();
        Lsh {
            params,
            keys,
            tables,
        }
    }

    /// The parameters.
    pub fn params(&self) -> LshParams {
        self.params
    }

    fn key(&self, row: u32, band: usize) -> u32 {
        self.keys[row as usize * self.params.bands + band]
    }

    /// Whether rows `i` and `j` collide in a band before `band`.
    fn collided_before(&self, i: u32, j: u32, band: usize) -> bool {
        (0..band).any(|b| self.key(i, b) == self.key(j, b))
    }

    /// The buckets (runs of equal keys) of `band` with at least two rows.
    fn buckets(&self, band: usize) -> impl Iterator<Item = &[(u32, u32)]> {
        self.tables[band]
            .chunk_by(|a, b| a.0 == b.0)
            .filter(|c| c.len() > 1)
    }

    /// Calls `f(i, j)` (`i < j`) once for every candidate pair, band by band.
    pub fn for_each_candidate(&self, f: &mut dyn FnMut(u32, u32)) {
        for band in 0..self.params.bands {
            for bucket in self.buckets(band) {
                for (x, &(_, i)) in bucket.iter().enumerate() {
                    for &(_, j) in &bucket[x + 1..] {
                        let (i, j) = (i.min(j), i.max(j));
                        if !self.collided_before(i, j, band) {
                            f(i, j);
                        }
                    }
                }
            }
        }
    }

    /// For every row, in parallel, the candidates `j > i` it shares a bucket with (each once),
    /// handed to `f(i, candidates)`, whose results are returned in row order.
    pub fn map_rows<T: Send>(&self, f: &(dyn Fn(u32, &[u32]) -> T + Sync)) -> Vec<T> {
        (0..self.keys.len() / self.params.bands)
            .into_par_iter()
            .map_init(Vec::new, |cands: &mut Vec<u32>, i| {
                cands.clear();
                self.partners(i as u32, cands);
                cands.retain(|&j| j > i as u32);
                f(i as u32, cands)
            })
            .collect()
    }

    /// Every row sharing a bucket with `row` in any band (sorted, each once, `row` excluded).
    pub fn partners(&self, row: u32, out: &mut Vec<u32>) {
        for band in 0..self.params.bands {
            let t = &self.tables[band];
            let k = self.key(row, band);
            let start = t.partition_point(|e| e.0 < k);
            out.extend(
                t[start..]
                    .iter()
                    .take_while(|e| e.0 == k)
                    .map(|e| e.1)
                    .filter(|&r| r != row),
            );
        }
        out.sort_unstable();
        out.dedup();
    }

    /// Candidate pairs in total (each counted once) and the size of the largest bucket.
    pub fn stats(&self) -> (u64, usize) {
        let mut pairs = 0u64;
        let mut largest = 0;
        for band in 0..self.params.bands {
            for bucket in self.buckets(band) {
                largest = largest.max(bucket.len());
                for (x, &(_, i)) in bucket.iter().enumerate() {
                    for &(_, j) in &bucket[x + 1..] {
                        if !self.collided_before(i.min(j), i.max(j), band) {
                            pairs += 1;
                        }
                    }
                }
            }
        }
        (pairs, largest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn random_clks(n: usize, seed: u64) -> Vec<u8> {
        let mut s = seed;
        (0..n * 128)
            .map(|_| {
                // about a third of the bits set
                let a = splitmix(&mut s);
                ((a & (a >> 8)) | (a >> 16 & a >> 24 & 0x55)) as u8
            })
            .collect()
    }

    #[test]
    fn each_candidate_once_and_similar_pairs_found() {
        let mut bytes = random_clks(300, 7);
        // Row 300 is row 0 with 10 bits flipped: Dice about 0.95.
        let mut near = bytes[..128].to_vec();
        for k in 0..10 {
            near[k * 7] ^= 1 << (k % 8);
        }
        bytes.extend(near);
        let m = ClkMatrix::from_bytes(1024, &bytes).unwrap();
        let lsh = Lsh::new(&m, LshParams::default());
        let mut pairs = Vec::new();
        lsh.for_each_candidate(&mut |i, j| pairs.push((i, j)));
        let n = pairs.len();
        pairs.sort_unstable();
        pairs.dedup();
        assert_eq!(n, pairs.len(), "a pair was emitted twice");
        assert!(pairs.contains(&(0, 300)));
        // Random CLKs rarely collide: far fewer candidates than all pairs.
        assert!(
            pairs.len() < 301 * 300 / 2 / 20,
            "{} candidates",
            pairs.len()
        );
        // map_rows sees the same pairs.
        let per_row = lsh.map_rows(&|i, c| c.iter().map(|&j| (i, j)).collect::<Vec<_>>());
        let mut again: Vec<(u32, u32)> = per_row.into_iter().flatten().collect();
        again.sort_unstable();
        assert_eq!(again, pairs);
        assert_eq!(lsh.stats().0 as usize, pairs.len());
    }

    #[test]
    fn candidate_probability_curve() {
        let p = LshParams::default();
        assert!(p.candidate_probability(0.8) > 0.97);
        assert!(p.candidate_probability(0.9) > 0.999);
        assert!(p.candidate_probability(0.3) < 0.01);
    }
}

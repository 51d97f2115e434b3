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
//! let params = LshParams { bands: 8, rows: 4, seed: 1, max_bit_share_permille: 1000, pool: 0 };
//! let lsh = Lsh::new(&m, params);
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
    /// Distinct MinHashes computed per CLK; each band combines `rows` of them chosen at random
    /// (0: `bands × rows`, every band its own). Sharing MinHashes between bands makes the bands
    /// slightly correlated but cuts the cost of hashing, the larger part of building the
    /// tables.
    pub pool: usize,
    /// Bit positions set in more than this share of all CLKs are ignored (per mille): common
    /// tokens (a frequent bigram, the sex, the main town) put their bits in so many CLKs that
    /// MinHashes landing on them make unrelated records collide.
    pub max_bit_share_permille: u32,
}

impl Default for LshParams {
    /// 120 bands of 8 MinHashes drawn from a pool of 256, bit positions set in more than half
    /// of all CLKs ignored: on a 100,000-record synthetic world this keeps 99.7% of the record
    /// pairs that comparing all pairs accepts, with 0.36% of the comparisons (docs/linkage.md
    /// has the measurements and the alternatives).
    fn default() -> Self {
        LshParams {
            bands: 120,
            rows: 8,
            seed: 0x63726f7373776b31, // "crosswk1"
            max_bit_share_permille: 500,
            pool: 256,
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
pub(crate) fn splitmix(state: &mut u64) -> u64 {
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
    /// Per band, an open-addressing index of its buckets for [`Lsh::probe_many`] (empty until
    /// [`Lsh::with_probe_index`]).
    index: Vec<BandIndex>,
}

/// Buffers of [`Lsh::probe_many_with`], kept between calls of one thread.
#[derive(Debug, Clone, Default)]
pub struct ProbeScratch {
    hits: Vec<(u32, u32)>,
    grouped: Vec<u32>,
    start: Vec<usize>,
    seen: Vec<u32>,
}

/// One band's buckets by key: linear probing over `slots` (a power of two, at most half
/// full); a slot is `(key, start, end)` of the bucket's range in the band's table, `end == 0`
/// marking an empty slot.
#[derive(Debug, Clone, Default)]
struct BandIndex {
    slots: Vec<(u32, u32, u32)>,
}

impl BandIndex {
    fn build(table: &[(u32, u32)]) -> BandIndex {
        let runs = table.chunk_by(|a, b| a.0 == b.0).count();
        let size = (runs * 2).next_power_of_two().max(16);
        let mut slots = vec![(0u32, 0u32, 0u32); size];
        let mut start = 0;
        for run in table.chunk_by(|a, b| a.0 == b.0) {
            let end = start + run.len();
            let mut i = slot_of(run[0].0, size);
            while slots[i].2 != 0 {
                i = (i + 1) & (size - 1);
            }
            slots[i] = (run[0].0, start as u32, end as u32);
            start = end;
        }
        BandIndex { slots }
    }

    fn get(&self, key: u32) -> Option<(u32, u32)> {
        let size = self.slots.len();
        let mut i = slot_of(key, size);
        loop {
            let (k, a, b) = self.slots[i];
            if b == 0 {
                return None;
            }
            if k == key {
                return Some((a, b));
            }
            i = (i + 1) & (size - 1);
        }
    }
}

fn slot_of(key: u32, size: usize) -> usize {
    ((key as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as usize & (size - 1)
}

/// Bit positions set in at most `max_bit_share_permille` ‰ of the CLKs of `matrix` (every
/// position when the matrix is empty): the positions MinHashes look at ([`LshParams`]).
pub fn informative_positions(matrix: &ClkMatrix, max_bit_share_permille: u32) -> Vec<u16> {
    if matrix.is_empty() {
        return Vec::new();
    }
    let bits = matrix.row(0).len() * 64;
    // How many CLKs set each bit position.
    let freq: Vec<u64> = (0..matrix.len())
        .into_par_iter()
        .fold(
            || vec![0u64; bits],
            |mut acc, r| {
                for (w, &word) in matrix.row(r).iter().enumerate() {
                    let mut x = word;
                    while x != 0 {
                        acc[w * 64 + x.trailing_zeros() as usize] += 1;
                        x &= x - 1;
                    }
                }
                acc
            },
        )
        .reduce(
            || vec![0u64; bits],
            |mut a, b| {
                for (x, y) in a.iter_mut().zip(b) {
                    *x += y;
                }
                a
            },
        );
    let cap = matrix.len() as u64 * max_bit_share_permille as u64 / 1000;
    (0..bits)
        .filter(|&p| freq[p] <= cap)
        .map(|p| p as u16)
        .collect()
}

/// The band-key function: public permutations of the informative bit positions and the
/// MinHashes each band combines, fixed by [`LshParams`] and the informative positions. Two
/// CLK sets hashed by the same `MinHasher` can be matched against each other (the monthly
/// registry freezes one at its first run, [`crate::registry`]).
#[derive(Debug, Clone)]
pub struct MinHasher {
    params: LshParams,
    /// Informative positions.
    width: usize,
    /// One permutation of the informative positions per MinHash, back to back.
    perms: Vec<u16>,
    /// `rows` MinHash indices per band.
    members: Vec<usize>,
    n_hash: usize,
}

impl MinHasher {
    /// The permutations and band members for `params` over `informative` positions.
    pub fn new(params: LshParams, informative: &[u16]) -> MinHasher {
        let n_hash = if params.pool == 0 {
            params.bands * params.rows
        } else {
            params.pool.max(params.rows)
        };
        // One random permutation of the informative positions per MinHash (Fisher-Yates).
        let mut state = params.seed;
        let width = informative.len();
        let mut perms: Vec<u16> = Vec::with_capacity(n_hash * width);
        for _ in 0..n_hash {
            let mut p = informative.to_vec();
            for i in (1..p.len()).rev() {
                let j = (splitmix(&mut state) % (i as u64 + 1)) as usize;
                p.swap(i, j);
            }
            perms.extend(p);
        }
        // Which MinHashes each band combines: its own with no pool, else `rows` distinct ones
        // drawn from the pool.
        let members: Vec<usize> = (0..params.bands)
            .flat_map(|b| {
                if params.pool == 0 {
                    return (b * params.rows..(b + 1) * params.rows).collect::<Vec<_>>();
                }
                let mut chosen: Vec<usize> = Vec::with_capacity(params.rows);
                while chosen.len() < params.rows {
                    let k = (splitmix(&mut state) % n_hash as u64) as usize;
                    if !chosen.contains(&k) {
                        chosen.push(k);
                    }
                }
                chosen
            })
            .collect();
        MinHasher {
            params,
            width,
            perms,
            members,
            n_hash,
        }
    }

    /// The parameters.
    pub fn params(&self) -> LshParams {
        self.params
    }

    /// Band keys of every row of `matrix`, row-major: `keys[row * bands + band]` (in
    /// parallel). A row with no informative bit gets keys of its own, derived from its index.
    pub fn keys(&self, matrix: &ClkMatrix) -> Vec<u32> {
        let params = self.params;
        let (width, n_hash) = (self.width, self.n_hash);
        let mut keys = vec![0u32; matrix.len() * params.bands];
        keys.par_chunks_mut(params.bands).enumerate().for_each_init(
            || vec![0u16; n_hash],
            |mins, (r, out)| {
                let row = matrix.row(r);
                for (k, min) in mins.iter_mut().enumerate() {
                    let perm = &self.perms[k * width..][..width];
                    // The first position of the permutation that this CLK sets.
                    *min = width as u16;
                    for (idx, &p) in perm.iter().enumerate() {
                        if row[(p >> 6) as usize] & (1u64 << (p & 63)) != 0 {
                            *min = idx as u16;
                            break;
                        }
                    }
                }
                for (b, key) in out.iter_mut().enumerate() {
                    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ b as u64;
                    let mut empty = true;
                    for &k in &self.members[b * params.rows..(b + 1) * params.rows] {
                        empty &= mins[k] as usize == width;
                        h = (h ^ mins[k] as u64).wrapping_mul(0x0000_0100_0000_01B3);
                    }
                    if empty {
                        // No informative bit: a key of its own, so that such CLKs do not all
                        // fall into one bucket.
                        h = splitmix(&mut (r as u64 ^ (b as u64) << 40));
                    }
                    *key = (h ^ (h >> 32)) as u32;
                }
            },
        );
        keys
    }
}

/// What [`Lsh::map_buckets`] calls per bucket: `(band, bucket, out) -> pairs looked at`.
pub type BucketFn<'a, T> = dyn Fn(usize, &[(u32, u32)], &mut Vec<T>) -> u64 + Sync + 'a;

impl Lsh {
    /// Computes every row's band keys and sorts each band's table (in parallel); bit positions
    /// set in more than [`LshParams::max_bit_share_permille`] of `matrix` are ignored.
    pub fn new(matrix: &ClkMatrix, params: LshParams) -> Lsh {
        if matrix.is_empty() {
            return Lsh::from_keys(params, Vec::new());
        }
        let informative = informative_positions(matrix, params.max_bit_share_permille);
        Lsh::from_keys(params, MinHasher::new(params, &informative).keys(matrix))
    }

    /// The band keys of [`Lsh::new`] without its tables: [`Lsh::map_buckets`] sorts each
    /// band's table when it visits the band and drops it after, so one band's table is alive
    /// at a time instead of all of them (at a million rows and 120 bands, 0.9 GB). For callers
    /// that map the buckets once (the link job's `--model fs`); [`Lsh::table`],
    /// [`Lsh::partners`], [`Lsh::for_each_candidate`], [`Lsh::with_probe_index`] and the
    /// probes need [`Lsh::new`]'s tables and panic on this one.
    pub fn new_streaming(matrix: &ClkMatrix, params: LshParams) -> Lsh {
        if matrix.is_empty() {
            return Lsh::from_keys(params, Vec::new());
        }
        let informative = informative_positions(matrix, params.max_bit_share_permille);
        Lsh {
            params,
            keys: MinHasher::new(params, &informative).keys(matrix),
            tables: Vec::new(),
            index: Vec::new(),
        }
    }

    /// The stored table of `band`. A streaming LSH ([`Lsh::new_streaming`]) stores none, and
    /// asking it for one is a bug in the caller, not bad input: it stops with this message.
    fn stored(&self, band: usize) -> &[(u32, u32)] {
        self.tables
            .get(band)
            .map(Vec::as_slice)
            .expect("an LSH built by Lsh::new_streaming keeps no tables: build it with Lsh::new")
    }

    /// Band `band`'s table sorted from the keys: `(key, row)` for every row.
    fn sorted_band(&self, band: usize) -> Vec<(u32, u32)> {
        let bands = self.params.bands;
        let n = self.keys.len() / bands.max(1);
        let mut t: Vec<(u32, u32)> = (0..n)
            .into_par_iter()
            .map(|r| (self.keys[r * bands + band], r as u32))
            .collect();
        t.par_sort_unstable();
        t
    }

    /// The tables for band keys computed already (`keys[row * bands + band]`, as
    /// [`MinHasher::keys`] returns them).
    pub fn from_keys(params: LshParams, keys: Vec<u32>) -> Lsh {
        let n = keys.len() / params.bands.max(1);
        let tables: Vec<Vec<(u32, u32)>> = (0..params.bands)
            .into_par_iter()
            .map(|b| {
                let mut t: Vec<(u32, u32)> = (0..n)
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
            index: Vec::new(),
        }
    }

    /// Prepares [`Lsh::probe_many`]: a small hash index of every band's buckets (about 24
    /// bytes per bucket), so that a lookup touches one band's index, not the whole table.
    pub fn with_probe_index(mut self) -> Lsh {
        self.index = (0..self.params.bands)
            .into_par_iter()
            .map(|b| BandIndex::build(self.stored(b)))
            .collect();
        self
    }

    /// Every row of these tables that shares a bucket, in any band, with a CLK whose band keys
    /// (hashed by the same [`MinHasher`]) are `keys`: appended to `out`, sorted, each once. For
    /// matching new CLKs against old ones without rebuilding tables.
    pub fn probe(&self, keys: &[u32], out: &mut Vec<u32>) {
        let mut pairs = Vec::new();
        self.probe_many(keys, &mut pairs);
        out.extend(pairs.into_iter().map(|(_, r)| r));
    }

    /// [`Lsh::probe`] for a chunk of CLKs at once: `keys` holds their band keys back to back
    /// (`bands` each); every `(i, row)` where CLK `i` of the chunk shares a bucket with `row` is
    /// appended to `out`, sorted, each pair once. Band by band over the chunk, so that the
    /// lookups of one band stay in that band's index (cache-resident) instead of jumping across
    /// all of them. Fastest after [`Lsh::with_probe_index`].
    pub fn probe_many(&self, keys: &[u32], out: &mut Vec<(u32, u32)>) {
        self.probe_many_with(keys, &mut ProbeScratch::default(), out);
    }

    /// [`Lsh::probe_many`] with buffers kept between calls (one [`ProbeScratch`] per thread):
    /// a chunk's hits can run to millions, and fresh allocations that large cost more in page
    /// faults than the probing.
    pub fn probe_many_with(
        &self,
        keys: &[u32],
        scratch: &mut ProbeScratch,
        out: &mut Vec<(u32, u32)>,
    ) {
        let bands = self.params.bands;
        let n = keys.len() / bands.max(1);
        let ProbeScratch {
            hits,
            grouped,
            start,
            seen,
        } = scratch;
        hits.clear();
        for band in 0..bands {
            let t = self.stored(band);
            for i in 0..n {
                let k = keys[i * bands + band];
                let range = match self.index.get(band) {
                    Some(ix) => match ix.get(k) {
                        Some((a, b)) => a as usize..b as usize,
                        None => continue,
                    },
                    None => {
                        let start = t.partition_point(|e| e.0 < k);
                        start..start + t[start..].iter().take_while(|e| e.0 == k).count()
                    }
                };
                hits.extend(t[range].iter().map(|e| (i as u32, e.1)));
            }
        }
        // Group by CLK (a counting sort), then keep each row once per CLK (stamps), sorted.
        start.clear();
        start.resize(n + 1, 0);
        for &(i, _) in hits.iter() {
            start[i as usize + 1] += 1;
        }
        for i in 0..n {
            start[i + 1] += start[i];
        }
        grouped.clear();
        grouped.resize(hits.len(), 0);
        let mut fill = start.clone();
        for &(i, r) in hits.iter() {
            grouped[fill[i as usize]] = r;
            fill[i as usize] += 1;
        }
        seen.clear();
        seen.resize(self.len(), u32::MAX);
        for i in 0..n {
            let from = out.len();
            for &r in &grouped[start[i]..start[i + 1]] {
                if seen[r as usize] != i as u32 {
                    seen[r as usize] = i as u32;
                    out.push((i as u32, r));
                }
            }
            out[from..].sort_unstable();
        }
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.keys.len() / self.params.bands.max(1)
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The parameters.
    pub fn params(&self) -> LshParams {
        self.params
    }

    fn key(&self, row: u32, band: usize) -> u32 {
        self.keys[row as usize * self.params.bands + band]
    }

    /// Whether rows `i` and `j` collide in a band before `band` (so a pair found in `band` was
    /// found already).
    pub fn collided_before(&self, i: u32, j: u32, band: usize) -> bool {
        (0..band).any(|b| self.key(i, b) == self.key(j, b))
    }

    /// The buckets (runs of equal keys) of `band` with at least two rows.
    fn buckets(&self, band: usize) -> impl Iterator<Item = &[(u32, u32)]> {
        self.stored(band)
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

    /// Every candidate pair `(i, j)`, `i < j`, handed to `f` in parallel (over the buckets of
    /// all bands); returns what `f` returned, once per pair, in no particular order, and the
    /// number of calls to `f`. `f` must be pure: a pair colliding in several bands is offered
    /// to it once per band (checking the earlier bands for every candidate costs more than
    /// comparing two CLKs), and only its first success is kept.
    pub fn map_candidates<T: Send>(
        &self,
        f: &(dyn Fn(u32, u32) -> Option<T> + Sync),
    ) -> (Vec<T>, u64) {
        self.map_candidates_in(self.params.bands, f)
    }

    /// [`Lsh::map_candidates`] over the first `bands` bands only (a cheaper, coarser search).
    pub fn map_candidates_in<T: Send>(
        &self,
        bands: usize,
        f: &(dyn Fn(u32, u32) -> Option<T> + Sync),
    ) -> (Vec<T>, u64) {
        self.map_buckets(bands, &|band, bucket, out| {
            let mut count = 0u64;
            for (x, &(_, i)) in bucket.iter().enumerate() {
                for &(_, j) in &bucket[x + 1..] {
                    let (i, j) = (i.min(j), i.max(j));
                    count += 1;
                    // Most candidates fail `f`; only a success is checked against the
                    // earlier bands, so that each pair is reported once.
                    if let Some(v) = f(i, j) {
                        if !self.collided_before(i, j, band) {
                            out.push(v);
                        }
                    }
                }
            }
            count
        })
    }

    /// Every bucket of the first `bands` bands (a run of at least two `(key, row)` entries with
    /// one key, rows ascending) handed to `f(band, bucket, out)` in parallel; `f` pushes its
    /// results to `out` and returns how many candidate pairs it looked at. Returns all results,
    /// in no particular order, and the sum of the counts. For callers that compare a whole
    /// bucket at once (a large bucket through a block kernel); a pair found in several bands is
    /// theirs to report once ([`Lsh::collided_before`]).
    pub fn map_buckets<T: Send>(&self, bands: usize, f: &BucketFn<'_, T>) -> (Vec<T>, u64) {
        // Band by band: one band's bucket list and results are alive at a time, so memory is
        // the results plus one band's worth (at a million rows, all bands' bucket lists alone
        // would take most of a gigabyte).
        let mut all = Vec::new();
        let mut count = 0u64;
        for band in 0..bands.min(self.params.bands) {
            // A streaming LSH sorts the band's table now.
            let sorted;
            let t: &[(u32, u32)] = match self.tables.get(band) {
                Some(t) => t,
                None => {
                    sorted = self.sorted_band(band);
                    &sorted
                }
            };
            let mut buckets = Vec::new();
            let mut start = 0;
            while start < t.len() {
                let mut end = start + 1;
                while end < t.len() && t[end].0 == t[start].0 {
                    end += 1;
                }
                if end - start > 1 {
                    buckets.push((start, end));
                }
                start = end;
            }
            let results: Vec<(Vec<T>, u64)> = buckets
                .par_chunks(4096)
                .map(|chunk| {
                    let mut out = Vec::new();
                    let mut count = 0u64;
                    for &(start, end) in chunk {
                        count += f(band, &t[start..end], &mut out);
                    }
                    (out, count)
                })
                .collect();
            for (out, c) in results {
                count += c;
                all.extend(out);
            }
        }
        (all, count)
    }

    /// The table of `band`: `(key, row)` for every row, sorted.
    pub fn table(&self, band: usize) -> &[(u32, u32)] {
        self.stored(band)
    }

    /// Every row sharing a bucket with `row` in any band (sorted, each once, `row` excluded).
    pub fn partners(&self, row: u32, out: &mut Vec<u32>) {
        for band in 0..self.params.bands {
            let t = self.stored(band);
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

    /// Distinct candidate pairs and the size of the largest bucket (for measurements: this
    /// walks every bucket pair once more).
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
        // map_candidates sees the same pairs.
        let (mut again, calls) = lsh.map_candidates(&|i, j| Some((i, j)));
        again.sort_unstable();
        assert_eq!(again, pairs);
        assert!(calls as usize >= pairs.len());
        assert_eq!(lsh.stats().0 as usize, pairs.len());
    }

    #[test]
    fn probing_old_tables_finds_the_cross_pairs_of_one_big_table() {
        let mut bytes = random_clks(300, 11);
        for r in 0..40 {
            // Rows 300..340 are near copies of rows 0..40.
            let mut near = bytes[r * 128..(r + 1) * 128].to_vec();
            near[r] ^= 0x11;
            bytes.extend(near);
        }
        let all = ClkMatrix::from_bytes(1024, &bytes).unwrap();
        let params = LshParams::default();
        let hasher = MinHasher::new(params, &informative_positions(&all, 500));
        let keys = hasher.keys(&all);
        let whole = Lsh::from_keys(params, keys.clone());
        let mut expected = Vec::new();
        whole.for_each_candidate(&mut |i, j| {
            if i < 250 && j >= 250 {
                expected.push((i, j));
            }
        });
        expected.sort_unstable();
        let old = Lsh::from_keys(params, keys[..250 * params.bands].to_vec());
        let indexed = old.clone().with_probe_index();
        let mut found = Vec::new();
        for j in 250..340u32 {
            let k = &keys[j as usize * params.bands..][..params.bands];
            let (mut plain, mut fast) = (Vec::new(), vec![7]);
            old.probe(k, &mut plain);
            indexed.probe(k, &mut fast);
            assert_eq!(&fast[1..], &plain[..]);
            found.extend(plain.into_iter().map(|i| (i, j)));
        }
        found.sort_unstable();
        assert_eq!(found, expected);
        // All at once.
        let mut many = Vec::new();
        indexed.probe_many(&keys[250 * params.bands..], &mut many);
        let mut many: Vec<(u32, u32)> = many.into_iter().map(|(i, r)| (r, i + 250)).collect();
        many.sort_unstable();
        assert_eq!(many, expected);
        // Scratch reused across chunks gives what fresh scratch gives.
        let mut scratch = ProbeScratch::default();
        for chunk in keys[250 * params.bands..].chunks(17 * params.bands) {
            let (mut reused, mut fresh) = (Vec::new(), Vec::new());
            indexed.probe_many_with(chunk, &mut scratch, &mut reused);
            indexed.probe_many(chunk, &mut fresh);
            assert_eq!(reused, fresh);
        }
        assert!((0..40).all(|r| found.contains(&(r, 300 + r))));
    }

    #[test]
    fn candidate_probability_curve() {
        let p = LshParams::default();
        assert!(p.candidate_probability(0.8) > 0.98);
        assert!(p.candidate_probability(0.9) > 0.999);
        assert!(p.candidate_probability(0.3) < 0.001);
    }
}

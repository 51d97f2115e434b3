//! Pattern mining: groups of CLK bit positions that are set together, one group per token.
//!
//! Keyed hashing hides *which* positions a token sets, but not *that* its positions are set
//! together: every record holding the token has all of them. Christen, Ranbaduge, Vatsalan and
//! Schnell (2018) mine such groups with frequent-itemset mining; this is a greedy version of the
//! same idea that needs no key and no knowledge of `k`:
//!
//! 1. **Grow** from a seed position: among the records with the seed set, repeatedly add the
//!    position set in most of them and keep only the records that have it. While the positions
//!    added belong to one token, (almost) every remaining record has the next one too, so the
//!    support stops shrinking: a *plateau*. The group ends where the support falls again.
//! 2. **Clean**: drop a position that fewer than 97% of the records holding the rest of the
//!    group have (the seed may belong to another token), add any position that 97% of the
//!    records holding the group have.
//! 3. **Explain away**: a position is shared by many tokens. Once a group is found, the next
//!    round grows from the same seed among the records that do *not* hold the groups found at
//!    it, which finds the next most frequent token there.
//!
//! Mining runs on a deterministic sample of the records (every `n/s`-th record), so its cost is
//! bounded whatever the number of records; the groups are then tested on every record.

/// Records as rows of 64-bit words, bit `p` of a record at word `p / 64`, bit `63 - p % 64`
/// (the CLK's byte order read big-endian).
#[derive(Debug, Clone, Default)]
pub struct BitRows {
    /// Words per record.
    pub words: usize,
    /// All records' words, concatenated.
    pub data: Vec<u64>,
}

impl BitRows {
    /// Rows for CLKs of `bytes` bytes each (a multiple of 8), from their concatenated bytes.
    pub fn from_clk_bytes(bytes: usize, all: &[u8]) -> BitRows {
        let words = bytes / 8;
        let data = all
            .chunks_exact(8)
            .map(|c| u64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
            .collect();
        BitRows { words, data }
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.data.len().checked_div(self.words).unwrap_or(0)
    }

    /// Whether there are no records.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Record `i`'s words.
    #[inline]
    pub fn row(&self, i: usize) -> &[u64] {
        &self.data[i * self.words..(i + 1) * self.words]
    }

    /// Number of bit positions.
    pub fn bits(&self) -> usize {
        self.words * 64
    }

    /// The records at `idx`, copied into new rows.
    pub fn select(&self, idx: &[usize]) -> BitRows {
        let mut data = Vec::with_capacity(idx.len() * self.words);
        for &i in idx {
            data.extend_from_slice(self.row(i));
        }
        BitRows {
            words: self.words,
            data,
        }
    }
}

#[inline]
fn contains(row: &[u64], mask: &[u64]) -> bool {
    row.iter().zip(mask).all(|(r, m)| r & m == *m)
}

/// A mined group of positions: what the attack believes is one token's positions.
#[derive(Debug, Clone, PartialEq)]
pub struct Signature {
    /// The positions, ascending.
    pub positions: Vec<u16>,
    /// The same as a mask of [`BitRows::words`] words.
    pub mask: Vec<u64>,
    /// Sample records holding the group.
    pub support: usize,
    /// `None`: a record holds the group when it has every position set. `Some(m)`: when it has
    /// at least `m` of them (groups mined by [`mine_soft`], for hardened encodings where a
    /// token's bits are not always set).
    pub threshold: Option<u32>,
    /// Soft groups: the probability that a record with `c` of the positions set holds the
    /// group, by `c` (from the fitted mixture). Empty for exact groups.
    pub posterior: Vec<f32>,
    /// How clearly holders stand out: the gap between the mixture's two components for soft
    /// groups (a held token's bits set ~67% of the time against ~44% when folded), 1 for
    /// exact groups.
    pub separation: f64,
}

impl Signature {
    fn new(mut positions: Vec<u16>, words: usize, support: usize) -> Signature {
        positions.sort_unstable();
        positions.dedup();
        let mut mask = vec![0u64; words];
        for &p in &positions {
            mask[p as usize / 64] |= 1 << (63 - p as usize % 64);
        }
        Signature {
            positions,
            mask,
            support,
            threshold: None,
            posterior: Vec::new(),
            separation: 1.0,
        }
    }

    /// Whether a record (its words) holds every position of the group.
    #[inline]
    pub fn held_by(&self, row: &[u64]) -> bool {
        match self.threshold {
            None => contains(row, &self.mask),
            Some(m) => {
                row.iter()
                    .zip(&self.mask)
                    .map(|(r, k)| (r & k).count_ones())
                    .sum::<u32>()
                    >= m
            }
        }
    }
}

/// Mining parameters.
#[derive(Debug, Clone)]
pub struct MineParams {
    /// Fewest sample records a group must be held by.
    pub min_support: usize,
    /// Fewest positions a group must have (smaller ones are low-`k` fields: sex, phone, ZIP).
    pub min_size: usize,
    /// A plateau step keeps at least this share of the records.
    pub keep: f64,
    /// Largest group grown.
    pub max_size: usize,
    /// Rounds of explaining away.
    pub max_rounds: usize,
    /// Soft mining: most positions of a group (the schema's largest `k` of a targeted field).
    pub token_size: usize,
}

impl Default for MineParams {
    fn default() -> Self {
        MineParams {
            min_support: 40,
            min_size: 8,
            keep: 0.95,
            max_size: 64,
            max_rounds: 16,
            token_size: 20,
        }
    }
}

/// The sample's bits by position: column `q` is a bitset over records (bit `i % 64` of word
/// `i / 64`), so the records of a group are an AND of columns.
struct Columns {
    /// Words per column.
    cw: usize,
    data: Vec<u64>,
}

impl Columns {
    fn new(rows: &BitRows) -> Columns {
        let cw = rows.len().div_ceil(64);
        let mut data = vec![0u64; rows.bits() * cw];
        for i in 0..rows.len() {
            for (w, &word) in rows.row(i).iter().enumerate() {
                let mut x = word;
                while x != 0 {
                    let lz = x.leading_zeros() as usize;
                    data[(w * 64 + lz) * cw + i / 64] |= 1 << (i % 64);
                    x &= !(1u64 << (63 - lz));
                }
            }
        }
        Columns { cw, data }
    }

    #[inline]
    fn col(&self, q: usize) -> &[u64] {
        &self.data[q * self.cw..(q + 1) * self.cw]
    }

    /// Records holding every position of `group`.
    fn holders(&self, group: &[u16]) -> Vec<u64> {
        let mut set = vec![u64::MAX; self.cw];
        for &q in group {
            for (a, b) in set.iter_mut().zip(self.col(q as usize)) {
                *a &= b;
            }
        }
        set
    }
}

fn popcount(set: &[u64]) -> usize {
    set.iter().map(|w| w.count_ones() as usize).sum()
}

fn and_count(a: &[u64], b: &[u64]) -> u32 {
    a.iter().zip(b).map(|(x, y)| (x & y).count_ones()).sum()
}

fn members(set: &[u64]) -> Vec<u32> {
    let mut v = Vec::new();
    for (w, &word) in set.iter().enumerate() {
        let mut x = word;
        while x != 0 {
            v.push((w * 64 + x.trailing_zeros() as usize) as u32);
            x &= x - 1;
        }
    }
    v
}

/// Counts, over the records `set` (a bitset), how many have each position set: by columns
/// while the set is large, by its rows once it is small.
fn counts(rows: &BitRows, cols: &Columns, set: &[u64], size: usize, out: &mut [u32]) {
    // A row costs ~a third of its bits to walk; a column costs its words.
    if size * rows.bits() / 3 > rows.bits() * cols.cw {
        use rayon::prelude::*;
        out.par_iter_mut()
            .enumerate()
            .with_min_len(64)
            .for_each(|(q, c)| *c = and_count(set, cols.col(q)));
        return;
    }
    out.iter_mut().for_each(|c| *c = 0);
    for r in members(set) {
        for (w, &word) in rows.row(r as usize).iter().enumerate() {
            let mut x = word;
            while x != 0 {
                let lz = x.leading_zeros() as usize;
                out[w * 64 + lz] += 1;
                x &= !(1u64 << (63 - lz));
            }
        }
    }
}

/// Grows a group from `seed` among the records `base` (step 1 of the module docs): the
/// positions up to the end of the first plateau, without the seed.
fn grow(
    rows: &BitRows,
    cols: &Columns,
    marginal: &[f64],
    seed: usize,
    base: Vec<u64>,
    p: &MineParams,
) -> Vec<u16> {
    let bits = rows.bits();
    let mut set = base;
    let mut size = popcount(&set);
    let mut chosen: Vec<usize> = Vec::new();
    let mut taken = vec![false; bits];
    taken[seed] = true;
    let mut cnt = vec![0u32; bits];
    let mut in_plateau = false;
    let mut end = 0;
    while chosen.len() < p.max_size && size >= p.min_support {
        counts(rows, cols, &set, size, &mut cnt);
        // The position set in the most records *beyond what its own frequency explains*: a
        // frequent token that merely co-occurs with the seed's does not pull the group away.
        let m = size as f64;
        let excess = |q: usize| cnt[q] as f64 - m * marginal[q];
        let Some(q) = (0..bits)
            .filter(|&q| !taken[q])
            .max_by(|&a, &b| excess(a).total_cmp(&excess(b)).then_with(|| b.cmp(&a)))
        else {
            break;
        };
        let c = cnt[q] as usize;
        if c == 0 {
            break;
        }
        if c as f64 >= p.keep * m {
            in_plateau = true;
        } else if in_plateau {
            break;
        }
        taken[q] = true;
        chosen.push(q);
        end = chosen.len();
        for (a, b) in set.iter_mut().zip(cols.col(q)) {
            *a &= b;
        }
        size = c;
    }
    if !in_plateau {
        return Vec::new();
    }
    chosen[..end].iter().map(|&q| q as u16).collect()
}

/// Step 2 of the module docs: the group's members re-checked against the records that hold it.
/// Returns the group and its holders.
fn clean(rows: &BitRows, cols: &Columns, group: Vec<u16>) -> (Vec<u16>, Vec<u64>) {
    const STRICT: f64 = 0.97;
    // A position set in (nearly) every record of the sample is no evidence of any one token: in
    // a population that shares a birth year the year's positions are such, and they must not
    // join every group.
    const NEAR_CONSTANT: f64 = 0.9;
    let bits = rows.bits();
    let n = rows.len().max(1) as f64;
    let constant: Vec<bool> = (0..bits)
        .map(|q| popcount(cols.col(q)) as f64 >= NEAR_CONSTANT * n)
        .collect();
    let mut group = group;
    group.sort_unstable();
    let mut cnt = vec![0u32; bits];
    // Each pass drops one member or adds what every holder has; a group settles in a few.
    for _ in 0..32 {
        if group.is_empty() {
            break;
        }
        let all = cols.holders(&group);
        let held = popcount(&all);
        // The member without which the group gains most holders, if it gains too many.
        let mut worst: Option<(usize, u16)> = None;
        for &g in &group {
            let rest: Vec<u16> = group.iter().copied().filter(|&x| x != g).collect();
            let more = popcount(&cols.holders(&rest)) - held;
            if worst.is_none_or(|w| more > w.0) {
                worst = Some((more, g));
            }
        }
        if let Some((more, g)) = worst {
            if (held as f64) < STRICT * (held + more) as f64 && group.len() > 1 {
                group.retain(|&x| x != g);
                continue;
            }
        }
        // Positions (almost) every holder has.
        counts(rows, cols, &all, held, &mut cnt);
        let before = group.len();
        for (q, &c) in cnt.iter().enumerate() {
            if held > 0
                && c as f64 >= STRICT * held as f64
                && !constant[q]
                && !group.contains(&(q as u16))
            {
                group.push(q as u16);
            }
        }
        group.sort_unstable();
        if group.len() == before {
            break;
        }
    }
    let all = cols.holders(&group);
    (group, all)
}

/// Jaccard similarity of two sorted position lists.
fn jaccard(a: &[u16], b: &[u16]) -> f64 {
    let inter = a.iter().filter(|x| b.binary_search(x).is_ok()).count();
    let union = a.len() + b.len() - inter;
    if union == 0 {
        0.0
    } else {
        inter as f64 / union as f64
    }
}

/// Mines token groups from `rows` (a sample of records). Deterministic: the same rows give the
/// same groups in the same order, at any thread count.
pub fn mine(rows: &BitRows, p: &MineParams) -> Vec<Signature> {
    let bits = rows.bits();
    let n = rows.len();
    if n == 0 {
        return Vec::new();
    }
    let cols = Columns::new(rows);
    let mut found: Vec<Signature> = Vec::new();
    // Holders of each found group, as bitsets over the sample.
    let mut held: Vec<Vec<u64>> = Vec::new();
    // Seeds by how often they are set, most first.
    let marginal: Vec<usize> = (0..bits).map(|q| popcount(cols.col(q))).collect();
    let share: Vec<f64> = marginal.iter().map(|&m| m as f64 / n as f64).collect();
    let mut seeds: Vec<usize> = (0..bits).collect();
    seeds.sort_by(|a, b| marginal[*b].cmp(&marginal[*a]).then_with(|| a.cmp(b)));
    // Groups containing a seed when it last failed: no point growing it again until one more.
    let mut failed_at: Vec<Option<usize>> = vec![None; bits];
    for _round in 0..p.max_rounds {
        let mut covered = vec![false; bits];
        let before = found.len();
        for &seed in &seeds {
            if covered[seed] {
                continue;
            }
            let at_seed: Vec<usize> = (0..found.len())
                .filter(|&s| found[s].positions.binary_search(&(seed as u16)).is_ok())
                .collect();
            if failed_at[seed] == Some(at_seed.len()) {
                continue;
            }
            // Records with the seed set that no group found at it explains.
            let mut base = cols.col(seed).to_vec();
            for &s in &at_seed {
                for (a, b) in base.iter_mut().zip(&held[s]) {
                    *a &= !b;
                }
            }
            if popcount(&base) < p.min_support {
                failed_at[seed] = Some(at_seed.len());
                continue;
            }
            let group = grow(rows, &cols, &share, seed, base, p);
            let (group, holders) = clean(rows, &cols, group);
            let support = popcount(&holders);
            if group.len() < p.min_size
                || group.len() > p.max_size
                || support < p.min_support
                || found.iter().any(|s| jaccard(&s.positions, &group) >= 0.5)
            {
                failed_at[seed] = Some(at_seed.len());
                continue;
            }
            let sig = Signature::new(group, rows.words, support);
            for &q in &sig.positions {
                covered[q as usize] = true;
            }
            held.push(holders);
            found.push(sig);
        }
        // A round that adds (almost) nothing ends the search.
        if found.len() - before <= before / 100 {
            break;
        }
    }
    found
}

/// Mines groups whose bits a token sets only *more often*, not always: what remains of a token
/// after XOR-folding (a token's bit is cleared wherever the other half of the filter is set
/// too) or random bit flips. This is the attack that knows the hardening: where a token's
/// positions are no longer always set together, they are still set together *more often than
/// chance*, and over thousands of records that correlation stands out.
///
/// 1. The correlation of every pair of positions over the records, corrected for record
///    density (a record with more bits set has every bit set more often, which correlates all
///    positions a little): the residual of each bit after its expected share at the record's
///    density.
/// 2. Groups grown greedily from the most correlated pair not yet used: add the position with
///    the highest mean correlation to the group, up to `token_size` (the schema's largest `k`)
///    or until the best candidate's correlation falls below half the group's own. A found
///    group's pairs are not used again, so the next group is another token.
/// 3. A record holds a group when it has enough of the group's positions set that the upper
///    component of a two-binomial mixture fitted to the counts is the likelier one.
pub fn mine_soft(rows: &BitRows, p: &MineParams) -> Vec<Signature> {
    let bits = rows.bits();
    let n = rows.len();
    if n < 2 {
        return Vec::new();
    }
    let cols = Columns::new(rows);
    let nf = n as f64;
    let dens: Vec<f64> = (0..n)
        .map(|i| rows.row(i).iter().map(|x| x.count_ones()).sum::<u32>() as f64 / bits as f64)
        .collect();
    let mean_d = dens.iter().sum::<f64>() / nf;
    let sum_d2: f64 = dens.iter().map(|d| d * d).sum();
    let m: Vec<f64> = (0..bits)
        .map(|q| popcount(cols.col(q)) as f64 / nf)
        .collect();
    // Σ_i b_iq d_i per position.
    let bd: Vec<f64> = (0..bits)
        .map(|q| members(cols.col(q)).iter().map(|&i| dens[i as usize]).sum())
        .collect();
    // Residual covariance of positions q and r (see step 1).
    let cov = |q: usize, r: usize, both: f64| -> f64 {
        let (aq, ar) = (m[q] / mean_d, m[r] / mean_d);
        (both - ar * bd[q] - aq * bd[r] + aq * ar * sum_d2) / nf
    };
    let var: Vec<f64> = (0..bits)
        .map(|q| cov(q, q, popcount(cols.col(q)) as f64).max(1e-12))
        .collect();
    let corr: Vec<Vec<f32>> = {
        use rayon::prelude::*;
        (0..bits)
            .into_par_iter()
            .map(|q| {
                (0..bits)
                    .map(|r| {
                        if q == r {
                            return f32::NEG_INFINITY;
                        }
                        let both = and_count(cols.col(q), cols.col(r)) as f64;
                        (cov(q, r, both) / (var[q] * var[r]).sqrt()) as f32
                    })
                    .collect()
            })
            .collect()
    };
    let mut corr = corr;
    // Correlations that chance alone reaches among this many pairs: ~4.5 standard errors.
    let noise = (4.5 / nf.sqrt()) as f32;
    let mut found: Vec<Signature> = Vec::new();
    let mut held: Vec<Vec<u64>> = Vec::new();
    let mut cnt_scores = vec![0u32; n];
    while found.len() < 2000 {
        // The most correlated unused pair.
        let mut best = (f32::NEG_INFINITY, 0usize, 0usize);
        for (q, row) in corr.iter().enumerate() {
            for (r, &c) in row.iter().enumerate().skip(q + 1) {
                if c > best.0 {
                    best = (c, q, r);
                }
            }
        }
        if best.0 < noise {
            break;
        }
        let mut group = vec![best.1, best.2];
        let mut inside = best.0 as f64;
        while group.len() < p.token_size {
            let cand = (0..bits)
                .filter(|s| !group.contains(s))
                .map(|s| {
                    let c = group.iter().map(|&g| corr[g][s] as f64).sum::<f64>();
                    (c / group.len() as f64, s)
                })
                .fold(
                    (f64::NEG_INFINITY, 0usize),
                    |a, b| if b.0 > a.0 { b } else { a },
                );
            if cand.0 < 0.5 * inside || cand.0 < noise as f64 / 2.0 {
                break;
            }
            let k = group.len() as f64;
            // Mean pairwise correlation inside the group after adding the candidate.
            inside = (inside * k * (k - 1.0) / 2.0 + cand.0 * k) / ((k + 1.0) * k / 2.0);
            group.push(cand.1);
        }
        for &a in &group {
            for &b in &group {
                corr[a][b] = f32::NEG_INFINITY;
            }
        }
        if group.len() < p.min_size {
            continue;
        }
        let mut sig = Signature::new(group.iter().map(|&g| g as u16).collect(), rows.words, 0);
        for (i, c) in cnt_scores.iter_mut().enumerate() {
            *c = rows
                .row(i)
                .iter()
                .zip(&sig.mask)
                .map(|(r, k)| (r & k).count_ones())
                .sum();
        }
        let Some((t, post, sep)) = mixture_threshold(&cnt_scores, sig.positions.len() as u32)
        else {
            continue;
        };
        sig.threshold = Some(t);
        sig.posterior = post;
        sig.separation = sep;
        let mut holders = vec![0u64; cols.cw];
        for (i, &c) in cnt_scores.iter().enumerate() {
            if c >= t {
                holders[i / 64] |= 1 << (i % 64);
            }
        }
        sig.support = popcount(&holders);
        if sig.support < p.min_support || sig.support >= n {
            continue;
        }
        // The rest of a token already found (its positions split over two groups) has the same
        // holders: it adds its positions to that group instead of becoming a second label.
        if let Some(j) = held.iter().position(|h| {
            let both = and_count(h, &holders) as usize;
            let either = popcount(h) + sig.support - both;
            both * 10 >= either * 7
        }) {
            let mut merged = found[j].positions.clone();
            merged.extend_from_slice(&sig.positions);
            merged.sort_unstable();
            merged.dedup();
            if merged.len() > p.max_size {
                continue;
            }
            let mut m = Signature::new(merged, rows.words, 0);
            for (i, c) in cnt_scores.iter_mut().enumerate() {
                *c = rows
                    .row(i)
                    .iter()
                    .zip(&m.mask)
                    .map(|(r, k)| (r & k).count_ones())
                    .sum();
            }
            // The merged group replaces the first only if it still stands out as one.
            if let Some((t, post, sep)) = mixture_threshold(&cnt_scores, m.positions.len() as u32) {
                let mut h = vec![0u64; cols.cw];
                for (i, &c) in cnt_scores.iter().enumerate() {
                    if c >= t {
                        h[i / 64] |= 1 << (i % 64);
                    }
                }
                m.support = popcount(&h);
                if m.support >= p.min_support && m.support < n {
                    m.threshold = Some(t);
                    m.posterior = post;
                    m.separation = sep;
                    found[j] = m;
                    held[j] = h;
                }
            }
            continue;
        }
        held.push(holders);
        found.push(sig);
    }
    found
}

/// Soft groups mined on some records, fitted again on `rows`: each group's holder threshold,
/// posterior and support come from the mixture of its counts over `rows`. Groups with no well
/// separated mixture there, or fewer than `min_support` holders, are dropped. A group mined on
/// the sparsest records would otherwise be judged by counts of sparse records, and every
/// denser record would seem to hold it.
pub fn refit(sigs: Vec<Signature>, rows: &BitRows, min_support: usize) -> Vec<Signature> {
    use rayon::prelude::*;
    sigs.into_par_iter()
        .filter_map(|mut sig| {
            let counts: Vec<u32> = (0..rows.len())
                .map(|i| {
                    rows.row(i)
                        .iter()
                        .zip(&sig.mask)
                        .map(|(r, k)| (r & k).count_ones())
                        .sum()
                })
                .collect();
            let (t, post, sep) = mixture_threshold(&counts, sig.positions.len() as u32)?;
            let support = counts.iter().filter(|&&c| c >= t).count();
            if support < min_support || support >= rows.len() {
                return None;
            }
            sig.threshold = Some(t);
            sig.posterior = post;
            sig.separation = sep;
            sig.support = support;
            Some(sig)
        })
        .collect()
}

/// The least count at which the upper component of a two-binomial mixture fitted to `counts`
/// (of `k` trials each) is the likelier, and the upper component's posterior by count; `None`
/// if the fit finds no well separated second component.
fn mixture_threshold(counts: &[u32], k: u32) -> Option<(u32, Vec<f32>, f64)> {
    let kf = k as f64;
    let mean = counts.iter().map(|&c| c as f64).sum::<f64>() / counts.len().max(1) as f64 / kf;
    let (mut w, mut p0, mut p1) = (0.3f64, (mean * 0.8).max(0.01), (mean * 1.3).min(0.99));
    let mut hist = vec![0f64; k as usize + 1];
    for &c in counts {
        hist[c.min(k) as usize] += 1.0;
    }
    let ln_binom = |c: usize, p: f64| c as f64 * p.ln() + (kf - c as f64) * (1.0 - p).ln();
    for _ in 0..50 {
        let (mut sw, mut s0, mut n0, mut s1, mut n1) = (0.0, 0.0, 0.0, 0.0, 0.0);
        for (c, &h) in hist.iter().enumerate() {
            if h == 0.0 {
                continue;
            }
            let a = (w.ln() + ln_binom(c, p1)).exp();
            let b = ((1.0 - w).ln() + ln_binom(c, p0)).exp();
            let post = if a + b > 0.0 { a / (a + b) } else { 0.0 };
            sw += h * post;
            s1 += h * post * c as f64;
            n1 += h * post * kf;
            s0 += h * (1.0 - post) * c as f64;
            n0 += h * (1.0 - post) * kf;
        }
        let total: f64 = hist.iter().sum();
        w = (sw / total).clamp(1e-4, 1.0 - 1e-4);
        p1 = (s1 / n1.max(1e-9)).clamp(1e-4, 1.0 - 1e-4);
        p0 = (s0 / n0.max(1e-9)).clamp(1e-4, 1.0 - 1e-4);
    }
    // Measured on folded encodings of a 2,000-person world: groups whose components are
    // closer than 0.25 were mostly mixtures of several tokens.
    if p1 - p0 < 0.25 {
        return None;
    }
    let post: Vec<f32> = (0..=k as usize)
        .map(|c| {
            let a = w.ln() + ln_binom(c, p1);
            let b = (1.0 - w).ln() + ln_binom(c, p0);
            (1.0 / (1.0 + (b - a).exp())) as f32
        })
        .collect();
    let t = post.iter().position(|&x| x >= 0.5)? as u32;
    Some((t, post, p1 - p0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::tests_support::Lcg;

    /// Random records with no token structure: nothing to find.
    #[test]
    fn random_bits_give_no_groups() {
        let mut rng = Lcg(11);
        let n = 4000;
        // Full 64-bit words, each bit set with probability 3/8 (the density of real CLKs).
        let mut word = || (rng.next() << 33) ^ (rng.next() << 2) ^ rng.next();
        let data: Vec<u64> = (0..n * 16).map(|_| word() & (word() | word())).collect();
        let rows = BitRows { words: 16, data };
        assert!(mine(&rows, &MineParams::default()).is_empty());
        assert!(mine_soft(&rows, &MineParams::default()).is_empty());
    }

    /// Records of tokens XOR-folded to half length: a token's positions are no longer always
    /// set, but the soft miner still finds the frequent ones.
    #[test]
    fn soft_mining_finds_folded_tokens() {
        let mut rng = Lcg(5);
        let tokens: Vec<Vec<u16>> = (0..60)
            .map(|_| (0..20).map(|_| (rng.next() % 1024) as u16).collect())
            .collect();
        let n = 20000;
        let mut data = vec![0u64; n * 8];
        for i in 0..n {
            let mut full = [0u64; 16];
            for (t, pos) in tokens.iter().enumerate() {
                if rng.next() % 1000 < (400 / (t as u64 + 2)) + 5 {
                    for &q in pos {
                        full[q as usize / 64] |= 1 << (63 - q as usize % 64);
                    }
                }
            }
            for w in 0..8 {
                data[i * 8 + w] = full[w] ^ full[w + 8];
            }
        }
        let rows = BitRows { words: 8, data };
        let folded: Vec<Vec<u16>> = tokens
            .iter()
            .map(|t| {
                let mut v: Vec<u16> = t.iter().map(|q| q % 512).collect();
                v.sort_unstable();
                v.dedup();
                v
            })
            .collect();
        let soft = mine_soft(&rows, &MineParams::default());
        let found = folded
            .iter()
            .take(10)
            .filter(|pos| {
                soft.iter().any(|s| {
                    let inter = s.positions.iter().filter(|q| pos.contains(q)).count();
                    inter * 10 >= s.positions.len() * 8 && inter * 2 >= pos.len()
                })
            })
            .count();
        assert!(
            found >= 6,
            "soft mining found {found} of the 10 most frequent tokens"
        );
    }

    /// Records made of tokens with known positions: mining must find the frequent tokens'
    /// positions exactly.
    #[test]
    fn finds_the_positions_of_frequent_tokens() {
        finds_tokens_with_a_constant_token(false);
    }

    /// A token every record holds (the birth year of a population born in one year) is no
    /// part of the other tokens' groups: without this, every group took its positions and the
    /// attack failed on one-year populations (docs/measurements/2026-12-06-salting.md).
    #[test]
    fn a_token_every_record_holds_joins_no_group() {
        finds_tokens_with_a_constant_token(true);
    }

    fn finds_tokens_with_a_constant_token(constant: bool) {
        let mut rng = Lcg(7);
        let bits = 1024;
        let k = 20;
        let tokens: Vec<Vec<u16>> = (0..60)
            .map(|_| {
                let mut v: Vec<u16> = (0..k).map(|_| (rng.next() % bits as u64) as u16).collect();
                v.sort_unstable();
                v.dedup();
                v
            })
            .collect();
        // Token t is in a record with probability falling with t (Zipf-like).
        let n = 6000;
        let mut data = vec![0u64; n * 16];
        for i in 0..n {
            for (t, pos) in tokens.iter().enumerate() {
                if rng.next() % 1000 < (400 / (t as u64 + 2)) + 5 {
                    for &q in pos {
                        data[i * 16 + q as usize / 64] |= 1 << (63 - q as usize % 64);
                    }
                }
            }
        }
        if constant {
            // Twelve positions set in every record, outside every token.
            let mut fixed = Vec::new();
            while fixed.len() < 12 {
                let q = (rng.next() % bits as u64) as u16;
                if !tokens.iter().any(|t| t.contains(&q)) && !fixed.contains(&q) {
                    fixed.push(q);
                }
            }
            for i in 0..n {
                for &q in &fixed {
                    data[i * 16 + q as usize / 64] |= 1 << (63 - q as usize % 64);
                }
            }
        }
        let rows = BitRows { words: 16, data };
        let sigs = mine(&rows, &MineParams::default());
        // The 20 most frequent tokens are each found exactly.
        for (t, pos) in tokens.iter().take(20).enumerate() {
            assert!(
                sigs.iter().any(|s| &s.positions == pos),
                "token {t} not found exactly"
            );
        }
        // And nothing is found that is not a token.
        for s in &sigs {
            assert!(
                tokens.iter().any(|pos| jaccard(pos, &s.positions) > 0.8),
                "a group that is no token"
            );
        }
    }
}

//! Candidate pairs of CLK rows: popcount windows for the all-pairs path, LSH buckets for large
//! inputs.

use crate::block::Lsh;
use crate::compare::{ClkMatrix, Platform, Threshold};

/// LSH buckets of at least this many rows are compared through the block kernel.
pub(crate) const GATHER_BUCKET: usize = 16;

/// The ranges of block `b` (rows `8b..8b+8`) of a popcount-sorted matrix with popcounts `pops`:
/// each row against the later rows whose popcount can reach threshold `tv`
/// (`p_j ≤ p_i·(2−t)/t`), as `ClkMatrix::matches_block` takes them.
pub(crate) fn later_partners(pops: &[u32], b: usize, tv: f64) -> Vec<std::ops::Range<usize>> {
    (b * 8..(b * 8 + 8).min(pops.len()))
        .map(|i| {
            let max_pop = (pops[i] as f64 * (2.0 - tv) / tv).floor() as u32;
            i + 1..pops.partition_point(|&p| p <= max_pop).max(i + 1)
        })
        .collect()
}

/// The pairs of CLK rows that LSH offers (rows sharing a bucket in some band) and that reach
/// `t`, each once, as `score(i, j, |i∩j|)` with `i < j`; pairs of one record (`owner`) are
/// skipped. Returns them with the number of pairs offered. Buckets of fewer than `gather` rows
/// are compared pair by pair; a larger one is gathered into a matrix of its own (its rows
/// ascend, so their popcounts do) and compared through the block kernel, with popcount windows
/// as in the all-pairs path: its rows then stay in cache instead of being fetched again for
/// every pair. Both give the same pairs, with the tables built up front or band by band
/// ([`Lsh::new_streaming`]; `lsh_pairs_gathered_or_not_streamed_or_not_are_the_same`).
pub(crate) fn lsh_pairs<T: Send>(
    lsh: &Lsh,
    matrix: &ClkMatrix,
    platform: Platform,
    owner: &[u32],
    t: Threshold,
    gather: usize,
    score: &(dyn Fn(usize, u32, u32) -> T + Sync),
) -> (Vec<T>, u64) {
    let tv = t.value().max(1e-9);
    lsh.map_buckets(lsh.params().bands, &|band, bucket, out| {
        let k = bucket.len();
        // A pair of two records; one found in an earlier band was reported there.
        let mut keep = |i: u32, j: u32, inter: u32| {
            let (i, j) = (i.min(j), i.max(j));
            if !lsh.collided_before(i, j, band) {
                out.push(score(i as usize, j, inter));
            }
        };
        if k < gather {
            for (x, &(_, i)) in bucket.iter().enumerate() {
                for &(_, j) in &bucket[x + 1..] {
                    if owner[i as usize] != owner[j as usize] {
                        if let Some(inter) = matrix.passes(platform, i as usize, j as usize, t) {
                            keep(i, j, inter);
                        }
                    }
                }
            }
        } else {
            // Popcount order for the windows (in the link job's matrix, row order already is).
            let mut rows: Vec<u32> = bucket.iter().map(|e| e.1).collect();
            rows.sort_by_key(|&r| (matrix.popcount(r as usize), r));
            let local = matrix.select(&rows);
            let pops: Vec<u32> = (0..k).map(|i| local.popcount(i)).collect();
            let mut hits = Vec::new();
            for b in 0..k.div_ceil(8) {
                hits.clear();
                local.matches_block(platform, b * 8, &later_partners(&pops, b, tv), t, &mut hits);
                for &(li, lj, inter) in &hits {
                    let (i, j) = (rows[li as usize], rows[lj as usize]);
                    if owner[i as usize] != owner[j as usize] {
                        keep(i, j, inter);
                    }
                }
            }
        }
        (k * (k - 1) / 2) as u64
    })
}

/// For diffused parts of `bits` bits and every popcount `pa`: the lowest output Dice a pair of
/// outputs with popcounts `pa ≤ pb` can have while its plain-scale estimate
/// ([`super::evidence::part_similarity`]) reaches `min`. The estimate reaches `min` exactly
/// when `U(h) ≤ (1 − min)(U(y_a) + U(y_b))`, `U` being the inverse of the diffusion
/// `D: x ↦ (1 − (1 − 2x)^t) / 2`, so the largest Hamming share is `D((1 − min)(U(y_a) +
/// U(y_b)))` and the lowest Dice `1 − h·bits / (p_a + p_b)`; the result is that minimum over
/// every `pb ≥ pa`, less 1e-9 for rounding. A kernel pass at `floors[pa]` for a row of popcount
/// `pa` against the later (denser) rows keeps every pair the estimate keeps.
pub fn diffused_dice_floors(bits: usize, taps: usize, min: f64) -> Vec<f64> {
    let t = taps.max(1) as f64;
    let diffuse = |x: f64| (1.0 - (1.0 - 2.0 * x.min(0.5)).powf(t)) / 2.0;
    let u = super::evidence::undiffuse_table(bits, taps.max(1));
    let mut floors = vec![1.0f64; bits + 1];
    for (pa, floor) in floors.iter_mut().enumerate() {
        let mut lowest = f64::INFINITY;
        for pb in pa..=bits {
            let total = (pa + pb).max(1) as f64;
            let h = diffuse((1.0 - min) * (u[pa] + u[pb])) * bits as f64;
            lowest = lowest.min(1.0 - h / total);
        }
        *floor = (lowest - 1e-9).clamp(0.0, 1.0);
    }
    floors
}

/// Record pairs (`a < b`, each once) whose names parts (legal or alias) reach `min_similarity`
/// on the plain scale ([`super::evidence::part_similarity`]), compared all against all through
/// the Dice kernel: for plain parts at `min_similarity` with popcount windows, for diffused
/// parts at [`diffused_dice_floors`] per block of rows, then filtered exactly. Quadratic: for runs where all
/// pairs of names parts can be compared (the link job's `auto` blocking below
/// [`FS_NAMES_ALL_PAIRS`] records).
pub fn names_pairs(
    records: &[super::evidence::RecordEvidence],
    taps: Option<usize>,
    min_similarity: f64,
    platform: Platform,
) -> Vec<(u32, u32)> {
    use rayon::prelude::*;
    let Some(width) = records.iter().find_map(|r| r.names.first().map(Vec::len)) else {
        return Vec::new();
    };
    let mut rows: Vec<(u32, &[u8])> = records
        .iter()
        .enumerate()
        .flat_map(|(i, r)| r.names.iter().map(move |n| (i as u32, n.as_slice())))
        .filter(|(_, n)| n.len() == width)
        .collect();
    let ones = |b: &[u8]| b.iter().map(|x| x.count_ones()).sum::<u32>();
    rows.sort_by_key(|&(owner, b)| (ones(b), owner));
    let bytes: Vec<u8> = rows.iter().flat_map(|r| r.1.iter().copied()).collect();
    let Some(matrix) = ClkMatrix::from_bytes(width * 8, &bytes) else {
        return Vec::new();
    };
    let floors = taps.map(|t| diffused_dice_floors(width * 8, t, min_similarity));
    let pops: Vec<u32> = (0..matrix.len()).map(|i| matrix.popcount(i)).collect();
    let mut pairs: Vec<(u32, u32)> = (0..matrix.len().div_ceil(8))
        .into_par_iter()
        .flat_map_iter(|b| {
            // The block's threshold: the lowest its rows need (each row's partners are later,
            // so at least as dense).
            let tv = match &floors {
                None => min_similarity,
                Some(f) => pops[b * 8..(b * 8 + 8).min(pops.len())]
                    .iter()
                    .map(|&p| f[p as usize])
                    .fold(1.0, f64::min),
            };
            let mut found = Vec::new();
            let ranges = later_partners(&pops, b, tv.max(1e-9));
            matrix.matches_block(platform, b * 8, &ranges, Threshold::new(tv), &mut found);
            found
                .into_iter()
                .filter(|&(i, j, _)| rows[i as usize].0 != rows[j as usize].0)
                .filter(|&(i, j, _)| {
                    taps.is_none()
                        || super::evidence::part_similarity(
                            rows[i as usize].1,
                            rows[j as usize].1,
                            taps,
                        ) >= min_similarity
                })
                .map(|(i, j, _)| {
                    let (a, b) = (rows[i as usize].0, rows[j as usize].0);
                    (a.min(b), a.max(b))
                })
                .collect::<Vec<_>>()
        })
        .collect();
    pairs.par_sort_unstable();
    pairs.dedup();
    pairs
}

/// Groups of equal birth-date, names, phone, address or SSN-4 parts larger than this are not paired
/// as candidates by the value alone: a placeholder date (`1900-01-01`) or a shelter's address
/// would pair every record that carries it.
pub const MAX_GROUP: usize = 2_000;

/// The plain-scale names similarity at which `--model fs`'s all-pairs names pass makes a pair a
/// candidate. At 0.6 (the lowest names level) the pass offered so many pairs of common names in
/// the hard world (100,000 records) that the run took 519 s; at 0.75 it took 27 s for 0.4 points
/// of F1 less (docs/measurements/2026-12-06-fs-link.md). Pairs of names at 0.6–0.75 still come
/// from record-CLK Dice and equal birth-date, phone, address and SSN-4 parts.
pub const NAMES_PASS_MIN: f64 = 0.75;

/// Up to this many records, `--model fs` with `auto` blocking also compares every pair of
/// names parts ([`names_pairs`]); above it, candidates come from record-CLK LSH and equal
/// birth-date, names, phone, address and SSN-4 parts only.
pub const FS_NAMES_ALL_PAIRS: usize = 250_000;

/// Records grouped by equal part values (birth-date, names, phone, address or SSN-4 parts for the
/// model's candidates of equal parts): every record pair sharing a value
/// of a group of at most `max_group` records belongs to the first such group they share
/// ([`ValueGroups::first_shared`]), so a pass over the groups meets each pair once, and the
/// pairs need not be stored. Larger groups (a placeholder date) are left out and their records
/// counted.
#[derive(Debug, Clone, Default)]
pub struct ValueGroups {
    /// Each group's records, ascending; groups in order of their first record.
    pub groups: Vec<Vec<u32>>,
    /// Per record, the groups it is in, ascending.
    of_record: super::IdLists,
    /// Records in groups larger than the limit (once per such group).
    pub left_out: usize,
    /// Whether the groups' values are shared by chance often (an SSN-4 has 10,000 values):
    /// the model then stores their pairs only when something else agrees (names, phone or
    /// address), counts the others, and gathers those that become edges after the fit.
    pub by_chance: bool,
}

impl ValueGroups {
    /// Groups `records` by the values `values` gives of each (distinct per record), leaving out
    /// groups above `max_group`.
    pub fn new(
        records: &[super::evidence::RecordEvidence],
        values: impl Fn(&super::evidence::RecordEvidence) -> &[Vec<u8>],
        max_group: usize,
    ) -> ValueGroups {
        let mut id_of: rustc_hash::FxHashMap<&[u8], u32> = Default::default();
        let mut all: Vec<Vec<u32>> = Vec::new();
        for (i, r) in records.iter().enumerate() {
            for d in values(r) {
                let next = id_of.len() as u32;
                let g = *id_of.entry(d.as_slice()).or_insert(next);
                if g as usize == all.len() {
                    all.push(Vec::new());
                }
                // Each group holds a record once, even if `values` repeated a value.
                if all[g as usize].last() != Some(&(i as u32)) {
                    all[g as usize].push(i as u32);
                }
            }
        }
        let mut out = ValueGroups::default();
        let mut of_record: Vec<Vec<u32>> = vec![Vec::new(); records.len()];
        for members in all {
            if members.len() > max_group {
                out.left_out += members.len();
                continue;
            }
            if members.len() < 2 {
                continue;
            }
            let g = out.groups.len() as u32;
            for &r in &members {
                of_record[r as usize].push(g);
            }
            out.groups.push(members);
        }
        for ids in of_record {
            out.of_record.push(ids);
        }
        out
    }

    /// The first group records `a` and `b` share, `None` when they share none.
    pub fn first_shared(&self, a: usize, b: usize) -> Option<u32> {
        self.of_record.shared(a, b).next()
    }

    /// Pairs over all groups (a pair in two groups counted twice).
    pub fn pairs(&self) -> u64 {
        self.groups
            .iter()
            .map(|g| (g.len() as u64) * (g.len() as u64 - 1) / 2)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::link::evidence::{part_similarity, RecordEvidence};

    /// The kernel pass finds exactly the pairs a plain loop over all pairs finds, plain and
    /// diffused.
    #[test]
    fn names_pairs_are_all_pairs_that_reach_the_similarity() {
        let mut state = 5u64;
        let mut next = move || crate::block::splitmix(&mut state);
        let base: Vec<Vec<u8>> = (0..30)
            .map(|_| (0..128).map(|_| (next() & next() & next()) as u8).collect())
            .collect();
        let wiring: Vec<usize> = (0..1024 * 4).map(|_| (next() % 1024) as usize).collect();
        for taps in [None, Some(4)] {
            let records: Vec<RecordEvidence> = (0..200)
                .map(|i| {
                    let mut n = base[i % 30].clone();
                    for _ in 0..(i % 7) * 3 {
                        let k = (next() % 128) as usize;
                        n[k] ^= 1 << (next() % 8);
                    }
                    if let Some(t) = taps {
                        n = diffuse(&n, &wiring, t);
                    }
                    RecordEvidence {
                        names: vec![n],
                        ..Default::default()
                    }
                })
                .collect();
            let got = names_pairs(&records, taps, 0.6, Platform::detect());
            let mut want = Vec::new();
            for a in 0..records.len() {
                for b in a + 1..records.len() {
                    if part_similarity(&records[a].names[0], &records[b].names[0], taps) >= 0.6 {
                        want.push((a as u32, b as u32));
                    }
                }
            }
            assert!(want.len() > 300, "{}", want.len());
            assert_eq!(got, want, "taps {taps:?}");
        }
    }

    /// Each output bit the XOR of `t` input bits, as `clk.hardening = "diffusion"` does.
    fn diffuse(x: &[u8], wiring: &[usize], t: usize) -> Vec<u8> {
        let bit = |i: usize| (x[i / 8] >> (i % 8)) & 1;
        let mut out = vec![0u8; x.len()];
        for o in 0..x.len() * 8 {
            let v = wiring[o * t..(o + 1) * t]
                .iter()
                .fold(0, |acc, &i| acc ^ bit(i));
            out[o / 8] |= v << (o % 8);
        }
        out
    }

    /// The floors are lower bounds: outputs of any two popcounts at any Hamming distance whose
    /// estimate reaches the similarity have at least the floor's Dice (dense and unequal ones
    /// too).
    #[test]
    fn the_diffused_floors_bound_every_pair_that_reaches_the_similarity() {
        let bits = 1024;
        let mut checked = 0;
        for taps in [3, 4, 6] {
            let floors = diffused_dice_floors(bits, taps, 0.75);
            for pa in (8..=600).step_by(37) {
                for pb in (pa..=620).step_by(23) {
                    for common in (0..=pa).step_by(3) {
                        // Outputs of popcounts pa and pb sharing `common` bits.
                        if pa + pb - common > bits {
                            continue;
                        }
                        let mut a = vec![0u8; bits / 8];
                        let mut b = vec![0u8; bits / 8];
                        for i in 0..pa {
                            a[i / 8] |= 1 << (i % 8);
                        }
                        for i in (pa - common)..(pa - common + pb) {
                            b[i / 8] |= 1 << (i % 8);
                        }
                        if part_similarity(&a, &b, Some(taps)) >= 0.75 {
                            checked += 1;
                            let dice = 2.0 * common as f64 / (pa + pb) as f64;
                            assert!(
                                dice >= floors[pa],
                                "taps {taps} pa {pa} pb {pb}: dice {dice} < {}",
                                floors[pa]
                            );
                        }
                    }
                }
            }
        }
        assert!(checked > 1000, "{checked}");
    }
}

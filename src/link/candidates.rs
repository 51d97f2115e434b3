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
/// every pair. Both give the same pairs (`lsh_pairs_gathered_or_not_are_the_same`).
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

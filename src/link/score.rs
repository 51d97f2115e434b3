//! The evidence two records give each other.

use crate::compare::{ClkMatrix, Platform};

use super::MIN_DICE;

/// [`record_score`] between records `x` and `y` as a function, for
/// [`crate::cluster::cluster_scored`]: `owner[r]` is the record (of `records`) of CLK row `r` of
/// `matrix`.
pub fn record_scorer<'a>(
    matrix: &'a ClkMatrix,
    platform: Platform,
    owner: &[u32],
    records: usize,
    threshold: f64,
    containment: f64,
) -> impl Fn(u32, u32) -> f64 + Sync + 'a {
    let mut rows_of: Vec<Vec<u32>> = vec![Vec::new(); records];
    for (r, &o) in owner.iter().enumerate() {
        rows_of[o as usize].push(r as u32);
    }
    move |x, y| {
        record_score(
            matrix,
            platform,
            &rows_of[x as usize],
            &rows_of[y as usize],
            threshold,
            containment,
        )
    }
}

/// The evidence two records give each other: the best Dice over pairs of their CLKs (rows of
/// `matrix`) that reaches `threshold`, or that reaches [`MIN_DICE`] with the smaller CLK having
/// at least `containment` of its bits in the other; 0 when no pair does. Cluster averages count
/// record pairs at this score ([`crate::cluster::cluster_scored`]).
pub fn record_score(
    matrix: &ClkMatrix,
    platform: Platform,
    rows_x: &[u32],
    rows_y: &[u32],
    threshold: f64,
    containment: f64,
) -> f64 {
    let mut best = 0.0f64;
    for &p in rows_x {
        for &q in rows_y {
            let (p, q) = (p as usize, q as usize);
            let inter = matrix.intersection(platform, p, q) as f64;
            let (a, b) = (matrix.popcount(p) as f64, matrix.popcount(q) as f64);
            let dice = 2.0 * inter / (a + b).max(1.0);
            let overlap = inter / a.min(b).max(1.0);
            if dice >= threshold || (overlap >= containment && dice >= MIN_DICE) {
                best = best.max(dice);
            }
        }
    }
    best
}

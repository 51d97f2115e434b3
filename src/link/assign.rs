//! Persons beyond clustering: lone records attached to the cluster they clearly belong to, and
//! one-to-one matching for deduplicated sources.

use std::collections::{BTreeMap, HashMap};

use rayon::prelude::*;
use rustc_hash::FxHashSet;

use crate::block::Lsh;
use crate::cluster::{find_root, Edge};
use crate::compare::{ClkMatrix, Platform, Threshold};

use super::MIN_DICE;

/// Greedy one-to-one matching, as anonlink's solver does for deduplicated sources: pairs in
/// order of score (best first, ties by node ids) are accepted when neither record is already
/// linked to a record of the other's agency and the two are of different agencies. Persons are
/// the connected components of the accepted pairs. Returns a label per node: the smallest
/// node id of its person.
pub fn one_to_one(n: usize, edges: &[Edge], agency_of: &[&str]) -> Vec<u32> {
    let mut order: Vec<&Edge> = edges.iter().collect();
    order.sort_by(|x, y| {
        y.score
            .total_cmp(&x.score)
            .then((x.a, x.b).cmp(&(y.a, y.b)))
    });
    let mut taken: FxHashSet<(u32, &str)> = FxHashSet::default();
    let mut parent: Vec<u32> = (0..n as u32).collect();
    for e in order {
        let (aa, ab) = (agency_of[e.a as usize], agency_of[e.b as usize]);
        if aa == ab || taken.contains(&(e.a, ab)) || taken.contains(&(e.b, aa)) {
            continue;
        }
        taken.insert((e.a, ab));
        taken.insert((e.b, aa));
        let (x, y) = (find_root(&mut parent, e.a), find_root(&mut parent, e.b));
        parent[x.max(y) as usize] = x.min(y);
    }
    (0..n as u32).map(|i| find_root(&mut parent, i)).collect()
}

/// The one target a lone record clearly belongs to, given its best overlap with each target:
/// the target of the highest overlap (ties to the smaller target), when that overlap reaches
/// `min_overlap` and beats every other target's by at least `margin`. The one rule of the
/// one-off job ([`attach_orphans`]) and the registry.
///
/// ```
/// use crosswalk::link::assign::clear_best;
/// assert_eq!(clear_best([(7u32, 0.9), (3, 0.7)], 0.75, 0.1), Some(7));
/// assert_eq!(clear_best([(7u32, 0.9), (3, 0.85)], 0.75, 0.1), None); // ambiguous
/// assert_eq!(clear_best([(7u32, 0.7)], 0.75, 0.1), None); // not enough overlap
/// ```
pub fn clear_best<T: Ord + Copy>(
    best: impl IntoIterator<Item = (T, f64)>,
    min_overlap: f64,
    margin: f64,
) -> Option<T> {
    let mut ranked: Vec<(T, f64)> = best.into_iter().collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    match ranked.as_slice() {
        [(t, o), rest @ ..]
            if *o >= min_overlap && rest.first().is_none_or(|r| r.1 <= o - margin) =>
        {
            Some(*t)
        }
        _ => None,
    }
}

/// The compared CLK rows: the popcount-sorted matrix, each row's record (`owner`) and
/// popcount, the kernel platform, and the LSH tables when blocking was used.
#[derive(Debug, Clone, Copy)]
pub struct Rows<'a> {
    /// CLK rows sorted by popcount.
    pub matrix: &'a ClkMatrix,
    /// The record (node) of each row.
    pub owner: &'a [u32],
    /// Popcount of each row.
    pub pops: &'a [u32],
    /// Kernel platform.
    pub platform: Platform,
    /// LSH tables, when candidates come from LSH.
    pub lsh: Option<&'a Lsh>,
}

/// Attaches records left alone by clustering to the one cluster they clearly belong to.
///
/// A sparse record (a name and sex only, say) scores low Dice against a full record of the
/// same person, because the full record's extra fields add bits the sparse one cannot share.
/// The overlap coefficient `|A∩B| / min(|A|, |B|)` measures how much of the smaller CLK the
/// other contains. A singleton record is attached to a cluster when its best overlap with one of
/// the cluster's CLKs (among pairs with Dice ≥ [`MIN_DICE`]) reaches `min_overlap` and every other
/// cluster's best is lower by at least `margin` (an ambiguous record stays alone). Attachments
/// are decided on the clustering as it was, so they never chain. Candidates are every row in
/// the popcount range that can reach [`MIN_DICE`], or with LSH the rows sharing a bucket.
/// Returns the new labels (the smallest node id of each cluster) and the number of records
/// attached.
pub fn attach_orphans(
    labels: &[u32],
    rows: &Rows<'_>,
    min_overlap: f64,
    margin: f64,
) -> (Vec<u32>, usize) {
    let Rows {
        matrix,
        owner,
        pops,
        platform,
        lsh,
    } = *rows;
    let mut size: HashMap<u32, usize> = HashMap::new();
    for &l in labels {
        *size.entry(l).or_default() += 1;
    }
    let t = Threshold::new(MIN_DICE);
    let lo_pop = |p: u32| (p as f64 * MIN_DICE / (2.0 - MIN_DICE)).ceil() as u32;
    let hi_pop = |p: u32| (p as f64 * (2.0 - MIN_DICE) / MIN_DICE).floor() as u32;
    let lone: Vec<usize> = (0..matrix.len())
        .filter(|&r| size[&labels[owner[r] as usize]] == 1)
        .collect();
    // Matches (Dice ≥ MIN_DICE) of every lone row: with LSH, one pass over the buckets keeping
    // pairs with a lone side (cheaper than looking each lone row up in every band).
    let lsh_found: Option<HashMap<u32, Vec<(u32, u32)>>> = lsh.map(|lsh| {
        let mut is_lone = vec![false; matrix.len()];
        for &i in &lone {
            is_lone[i] = true;
        }
        // A third of the bands: a lone record's candidates need not be exhaustive, and this
        // pass would otherwise cost as much as the main one.
        // Per bucket, only the pairs with a lone side: a bucket without a lone row costs one
        // pass over its rows, not one look per pair.
        let (pairs, _) = lsh.map_buckets(lsh.params().bands / 3, &|band, bucket, out| {
            for (x, &(_, a)) in bucket.iter().enumerate() {
                if !is_lone[a as usize] {
                    continue;
                }
                for (y, &(_, b)) in bucket.iter().enumerate() {
                    // A pair of two lone rows once, from its first row.
                    if y == x || (y < x && is_lone[b as usize]) {
                        continue;
                    }
                    let (i, j) = (a.min(b), a.max(b));
                    if let Some(inter) = matrix.passes(platform, i as usize, j as usize, t) {
                        if !lsh.collided_before(i, j, band) {
                            out.push((i, j, inter));
                        }
                    }
                }
            }
            (bucket.len() * (bucket.len() - 1) / 2) as u64
        });
        let mut by_row: HashMap<u32, Vec<(u32, u32)>> = HashMap::new();
        for (i, j, inter) in pairs {
            for (a, b) in [(i, j), (j, i)] {
                if is_lone[a as usize] {
                    by_row.entry(a).or_default().push((b, inter));
                }
            }
        }
        by_row
    });
    let choices: Vec<(u32, u32)> = lone
        .par_iter()
        .map(|&i| {
            let mut found = Vec::new();
            match &lsh_found {
                Some(by_row) => found.extend(by_row.get(&(i as u32)).into_iter().flatten()),
                None => {
                    let start = pops.partition_point(|&p| p < lo_pop(pops[i]));
                    let end = pops.partition_point(|&p| p <= hi_pop(pops[i]));
                    matrix.matches_in(platform, i, start..end, t, &mut found);
                }
            }
            let me = owner[i];
            let mut best: HashMap<u32, f64> = HashMap::new();
            for (j, inter) in found {
                let other = owner[j as usize];
                if other == me {
                    continue;
                }
                let o = inter as f64 / pops[i].min(pops[j as usize]).max(1) as f64;
                let e = best.entry(labels[other as usize]).or_insert(0.0);
                *e = e.max(o);
            }
            (
                me,
                clear_best(best, min_overlap, margin).unwrap_or(u32::MAX),
            )
        })
        .collect();
    // A record with several CLKs (aliases) attaches only if all its choices agree.
    let mut pick: BTreeMap<u32, Option<u32>> = BTreeMap::new();
    for (me, l) in choices {
        let target = (l != u32::MAX).then_some(l);
        pick.entry(me)
            .and_modify(|p| {
                if *p != target {
                    *p = None;
                }
            })
            .or_insert(target);
    }
    // Union of each orphan with its chosen cluster; labels become the smallest node id.
    let n = labels.len();
    let mut parent: Vec<u32> = (0..n as u32).collect();
    for (i, &l) in labels.iter().enumerate() {
        let (a, b) = (find_root(&mut parent, i as u32), find_root(&mut parent, l));
        parent[a.max(b) as usize] = a.min(b);
    }
    let mut attached = 0;
    for (me, target) in pick {
        if let Some(l) = target {
            let (a, b) = (find_root(&mut parent, me), find_root(&mut parent, l));
            parent[a.max(b) as usize] = a.min(b);
            attached += 1;
        }
    }
    (
        (0..n as u32).map(|i| find_root(&mut parent, i)).collect(),
        attached,
    )
}

//! Persons from scored pairs: average-linkage merging that one bridging pair cannot fool.
//!
//! [`cluster_scored`] is what the link job uses: merges follow candidate edges, and the average
//! between two clusters counts every record pair at its actual similarity as given by a score
//! function (the link job counts a pair below the threshold as 0 unless one record's CLK is
//! contained in the other's). [`cluster`] is the special case where only the edges score.
//!
//! Plain connected components over a threshold graph merge two large clusters as soon as a
//! single false pair joins them (a twin, a shared alias, a common name). Here clusters are merged
//! bottom-up by **average linkage**: the score of two clusters `A` and `B` is the sum of the
//! scores of their record pairs divided by `|A|·|B|`, where a pair below the candidate threshold
//! counts 0. The best-scoring pair of clusters merges first, and merging stops below
//! `cohesion · threshold` (with the defaults 0.5 · 0.8 = 0.4: on average, a record must match
//! about half the records of the other cluster). Because whole clusters are compared, records of
//! one person gather before any cross-cluster pair is considered, and a lone pair between two
//! grown clusters scores `s / (|A|·|B|)`, far below the bar.
//!
//! The result is deterministic: ties are broken by cluster ids, and labels are the smallest
//! node id of each cluster.
//!
//! # Example
//!
//! ```
//! use crosswalk::cluster::{cluster, Edge};
//!
//! // Two triangles (0,1,2) and (3,4,5) joined by one bridging pair (2,3).
//! let mut edges = vec![];
//! for (a, b) in [(0, 1), (0, 2), (1, 2), (3, 4), (3, 5), (4, 5)] {
//!     edges.push(Edge { a, b, score: 0.95 });
//! }
//! edges.push(Edge { a: 2, b: 3, score: 0.99 });
//! let labels = cluster(6, &edges, 0.4);
//! assert_eq!(labels[0], labels[1]);
//! assert_eq!(labels[4], labels[5]);
//! assert_ne!(labels[0], labels[5]); // the triangles stay apart
//! ```

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use rustc_hash::FxHashMap as HashMap;

/// A scored pair of nodes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Edge {
    /// One node.
    pub a: u32,
    /// The other node.
    pub b: u32,
    /// Similarity (Dice).
    pub score: f64,
}

/// A candidate merge in the queue: best average first, then smallest ids.
#[derive(Debug, PartialEq)]
struct Merge {
    avg: f64,
    a: u32,
    b: u32,
    va: u32,
    vb: u32,
}

impl Eq for Merge {}

impl Ord for Merge {
    fn cmp(&self, other: &Self) -> Ordering {
        self.avg
            .total_cmp(&other.avg)
            .then(Reverse((self.a, self.b)).cmp(&Reverse((other.a, other.b))))
    }
}

impl PartialOrd for Merge {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Clusters `n` nodes by average linkage; merging stops below `min_average`. Pairs that are not
/// edges count 0. Returns a label per node: the smallest node id of its cluster.
pub fn cluster(n: usize, edges: &[Edge], min_average: f64) -> Vec<u32> {
    let mut scores: HashMap<(u32, u32), f64> = HashMap::default();
    for e in edges {
        let k = (e.a.min(e.b), e.a.max(e.b));
        let v = scores.entry(k).or_insert(e.score);
        *v = v.max(e.score);
    }
    let score = |x: u32, y: u32| scores.get(&(x.min(y), x.max(y))).copied().unwrap_or(0.0);
    cluster_scored(n, edges, min_average, &score)
}

/// Average linkage over **every** record pair's similarity: like [`cluster`], clusters are
/// only ever merged along candidate edges (pairs at or above the threshold), but the average
/// between two clusters is taken over all their record pairs with `score(x, y)`, the pairs'
/// actual similarity (which may be below the threshold), instead of counting those pairs as 0.
/// Merging stops when the best average falls below `min_average`.
///
/// `score` must be symmetric; it is called for cross pairs of clusters that share an edge.
pub fn cluster_scored(
    n: usize,
    edges: &[Edge],
    min_average: f64,
    score: &dyn Fn(u32, u32) -> f64,
) -> Vec<u32> {
    let mut parent: Vec<u32> = (0..n as u32).collect();
    let mut members: Vec<Vec<u32>> = (0..n as u32).map(|i| vec![i]).collect();
    let mut version = vec![0u32; n];
    // Sum of pair scores between adjacent clusters (all cross pairs), keyed by cluster root.
    let mut adj: Vec<HashMap<u32, f64>> = vec![HashMap::default(); n];
    for e in edges {
        if e.a != e.b {
            let s = score(e.a, e.b).max(e.score);
            adj[e.a as usize].insert(e.b, s);
            adj[e.b as usize].insert(e.a, s);
        }
    }
    let mut heap = BinaryHeap::new();
    for (a, m) in adj.iter().enumerate() {
        for (&b, &s) in m {
            if (a as u32) < b && s >= min_average {
                heap.push(Merge {
                    avg: s,
                    a: a as u32,
                    b,
                    va: 0,
                    vb: 0,
                });
            }
        }
    }
    let cross = |members: &[Vec<u32>], x: u32, y: u32| -> f64 {
        let mut sum = 0.0;
        for &p in &members[x as usize] {
            for &q in &members[y as usize] {
                sum += score(p, q);
            }
        }
        sum
    };
    while let Some(m) = heap.pop() {
        let (a, b) = (m.a as usize, m.b as usize);
        if parent[a] != m.a || parent[b] != m.b || version[a] != m.va || version[b] != m.vb {
            continue;
        }
        let (keep, gone) = if members[a].len() >= members[b].len() {
            (m.a, m.b)
        } else {
            (m.b, m.a)
        };
        let gone_adj = std::mem::take(&mut adj[gone as usize]);
        let mut keep_adj = std::mem::take(&mut adj[keep as usize]);
        keep_adj.remove(&gone);
        // New sums: S(keep ∪ gone, c) = S(keep, c) + S(gone, c), computing a side that was not
        // adjacent from the members.
        let mut neighbours: Vec<u32> = keep_adj
            .keys()
            .chain(gone_adj.keys())
            .copied()
            .filter(|&c| c != keep && c != gone)
            .collect();
        neighbours.sort_unstable();
        neighbours.dedup();
        let mut merged: HashMap<u32, f64> = HashMap::default();
        for &c in &neighbours {
            let sk = match keep_adj.get(&c) {
                Some(&v) => v,
                None => cross(&members, keep, c),
            };
            let sg = match gone_adj.get(&c) {
                Some(&v) => v,
                None => cross(&members, gone, c),
            };
            merged.insert(c, sk + sg);
        }
        for &c in &neighbours {
            let other = &mut adj[c as usize];
            other.remove(&gone);
            other.insert(keep, merged[&c]);
        }
        let gone_members = std::mem::take(&mut members[gone as usize]);
        members[keep as usize].extend(gone_members);
        parent[gone as usize] = keep;
        version[keep as usize] += 1;
        let size_keep = members[keep as usize].len();
        for (&c, &s) in &merged {
            let avg = s / (size_keep * members[c as usize].len()) as f64;
            if avg >= min_average {
                let (x, y) = if keep < c { (keep, c) } else { (c, keep) };
                heap.push(Merge {
                    avg,
                    a: x,
                    b: y,
                    va: version[x as usize],
                    vb: version[y as usize],
                });
            }
        }
        adj[keep as usize] = merged;
    }
    fn find(parent: &[u32], mut x: u32) -> u32 {
        while parent[x as usize] != x {
            x = parent[x as usize];
        }
        x
    }
    let roots: Vec<u32> = (0..n as u32).map(|x| find(&parent, x)).collect();
    let mut smallest = vec![u32::MAX; n];
    for (x, &r) in roots.iter().enumerate() {
        smallest[r as usize] = smallest[r as usize].min(x as u32);
    }
    roots.iter().map(|&r| smallest[r as usize]).collect()
}

/// Union-find: the root of `x` in the forest `parent`, halving paths on the way.
pub fn find_root(parent: &mut [u32], mut x: u32) -> u32 {
    while parent[x as usize] != x {
        parent[x as usize] = parent[parent[x as usize] as usize];
        x = parent[x as usize];
    }
    x
}

/// [`cluster_scored`] on each connected component of the edge graph separately, the
/// components in parallel (rayon). The labels are the same: a merge only ever joins two
/// clusters linked by an edge, so no merge, and no average, involves two components, and the
/// order in which components are processed cannot matter.
pub fn cluster_scored_par(
    n: usize,
    edges: &[Edge],
    min_average: f64,
    score: &(dyn Fn(u32, u32) -> f64 + Sync),
) -> Vec<u32> {
    use rayon::prelude::*;
    let mut parent: Vec<u32> = (0..n as u32).collect();
    for e in edges {
        if e.a != e.b {
            let (x, y) = (find_root(&mut parent, e.a), find_root(&mut parent, e.b));
            parent[x.max(y) as usize] = x.min(y);
        }
    }
    let root: Vec<u32> = (0..n as u32).map(|x| find_root(&mut parent, x)).collect();
    // Components with an edge: their nodes in ascending order, and their edges.
    let mut slot: HashMap<u32, usize> = HashMap::default();
    let mut nodes: Vec<Vec<u32>> = Vec::new();
    let mut comp_edges: Vec<Vec<Edge>> = Vec::new();
    for e in edges {
        if e.a == e.b {
            continue;
        }
        let r = root[e.a as usize];
        let next = slot.len();
        let c = *slot.entry(r).or_insert(next);
        if c == comp_edges.len() {
            comp_edges.push(Vec::new());
            nodes.push(Vec::new());
        }
        comp_edges[c].push(*e);
    }
    for x in 0..n as u32 {
        if let Some(&c) = slot.get(&root[x as usize]) {
            nodes[c].push(x);
        }
    }
    let results: Vec<Vec<(u32, u32)>> = nodes
        .par_iter()
        .zip(comp_edges.par_iter())
        .map(|(members, es)| {
            let local = |x: u32| members.binary_search(&x).unwrap_or_default() as u32;
            let local_edges: Vec<Edge> = es
                .iter()
                .map(|e| Edge {
                    a: local(e.a),
                    b: local(e.b),
                    score: e.score,
                })
                .collect();
            let labels = cluster_scored(members.len(), &local_edges, min_average, &|p, q| {
                score(members[p as usize], members[q as usize])
            });
            members
                .iter()
                .zip(labels)
                .map(|(&x, l)| (x, members[l as usize]))
                .collect()
        })
        .collect();
    let mut labels: Vec<u32> = (0..n as u32).collect();
    for (x, l) in results.into_iter().flatten() {
        labels[x as usize] = l;
    }
    labels
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(a: u32, b: u32, score: f64) -> Edge {
        Edge { a, b, score }
    }

    #[test]
    fn pairs_and_chains() {
        let labels = cluster(4, &[e(0, 1, 0.9), e(2, 3, 0.85)], 0.4);
        assert_eq!(labels, vec![0, 0, 2, 2]);
        // a chain a-b-c: c joins {a,b} at average 0.85 / 2 >= 0.4
        let labels = cluster(3, &[e(0, 1, 0.9), e(1, 2, 0.85)], 0.4);
        assert_eq!(labels, vec![0, 0, 0]);
        // but not at a stricter bar
        let labels = cluster(3, &[e(0, 1, 0.9), e(1, 2, 0.85)], 0.5);
        assert_eq!(labels, vec![0, 0, 2]);
    }

    #[test]
    fn one_bridge_does_not_merge_large_clusters() {
        let mut edges = Vec::new();
        for a in 0..5u32 {
            for b in a + 1..5 {
                edges.push(e(a, b, 0.9));
                edges.push(e(a + 5, b + 5, 0.9));
            }
        }
        // the bridge scores highest, so its two records pair up first; the cliques still
        // stay apart, whatever becomes of the two bridged records
        edges.push(e(4, 5, 0.99));
        let labels = cluster(10, &edges, 0.4);
        assert!(labels[..4].iter().all(|&l| l == 0), "{labels:?}");
        assert!(labels[6..].iter().all(|&l| l == 6), "{labels:?}");
    }

    #[test]
    fn components_in_parallel_give_the_same_labels() {
        // Seeded random sparse graphs with scores; a score function that also scores
        // non-edges (like the link job's containment pairs).
        let mut state = 0x1234_5678u64;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) as u32
        };
        for round in 0..20 {
            let n = 50 + round * 7;
            let mut edges = Vec::new();
            for _ in 0..n {
                let (a, b) = (next() % n, next() % n);
                edges.push(e(a, b, 0.8 + (next() % 200) as f64 / 1000.0));
            }
            let score = |x: u32, y: u32| ((x * 31 + y * 31) % 7) as f64 / 10.0;
            let serial = cluster_scored(n as usize, &edges, 0.4, &score);
            let parallel = cluster_scored_par(n as usize, &edges, 0.4, &score);
            assert_eq!(serial, parallel, "round {round}");
        }
    }

    #[test]
    fn order_independent() {
        let edges = vec![e(0, 1, 0.9), e(1, 2, 0.9), e(3, 2, 0.8), e(4, 0, 0.7)];
        let mut rev = edges.clone();
        rev.reverse();
        assert_eq!(cluster(5, &edges, 0.4), cluster(5, &rev, 0.4));
    }
}

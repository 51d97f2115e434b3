//! Alignment: which token is each mined group?
//!
//! A group's support (the share of records holding it) estimates its token's frequency, and the
//! attacker knows the token frequencies of a population like the target's. Frequencies alone
//! confuse tokens of similar frequency, so the alignment is refined by co-occurrence, as in
//! Christen et al. (2018): `_J` is held with `JO` far more often than with `JE`, in the
//! encodings as in the reference. Each round scores every (group, token) pair of similar
//! frequency by the frequency gap plus the mean gap of their conditional co-occurrence with
//! every other group and its current token, and reassigns greedily, lowest cost first, one
//! token per group. Deterministic: ties break by index.

use super::reference::Reference;

/// Alignment parameters.
#[derive(Debug, Clone)]
pub struct AlignParams {
    /// Candidate tokens of a group: frequency within this factor of the group's support.
    pub window: f64,
    /// Weight of the log-frequency gap against the co-occurrence gap.
    pub freq_weight: f64,
    /// Weight of the anchor-free co-occurrence profile gap.
    pub profile_weight: f64,
    /// Refinement rounds.
    pub rounds: usize,
    /// Groups with a higher best cost stay unlabelled.
    pub max_cost: f64,
    /// Co-occurrence is compared with this many of the most frequent groups: their labels are
    /// the surest (measured on a 2,000-person world with one key: 30 recovered more given names
    /// than 12, 20, 40, 60 or 100; 32 was kept beside it; docs/measurements/2026-12-06-audit.md).
    pub anchors: usize,
}

impl Default for AlignParams {
    fn default() -> Self {
        AlignParams {
            window: 2.5,
            // Chosen on a 2,000-person world over five keys (docs/measurements): frequency
            // weights 0.25, 0.1, 0.05 and 0 (profile weight 1) recovered both names of 7.4%,
            // 13.4%, 13.2% and 12.3% of records; profile weights 2, 1, 0.5, 0.25 and 0
            // (frequency weight 0.1): 6.0%, 13.4%, 13.9%, 14.9% and 13.6%.
            freq_weight: 0.1,
            profile_weight: 0.25,
            rounds: 8,
            max_cost: 0.6,
            anchors: 32,
        }
    }
}

/// Joint shares of tokens `cand` in the reference: `out[i][j]` = weighted share of persons
/// holding both `cand[i]` and `cand[j]`.
fn reference_joint(r: &Reference, cand: &[u32]) -> Vec<Vec<f64>> {
    let mut pos = vec![u32::MAX; r.tokens.len()];
    for (i, &t) in cand.iter().enumerate() {
        pos[t as usize] = i as u32;
    }
    let m = cand.len();
    let mut joint = vec![vec![0.0f64; m]; m];
    let mut local: Vec<usize> = Vec::new();
    for (p, toks) in r.persons.iter().zip(&r.person_tokens) {
        local.clear();
        local.extend(
            toks.iter()
                .filter(|&&t| pos[t as usize] != u32::MAX)
                .map(|&t| pos[t as usize] as usize),
        );
        let w = p.count as f64 / r.total as f64;
        for &a in &local {
            for &b in &local {
                joint[a][b] += w;
            }
        }
    }
    joint
}

/// Labels groups with reference tokens. `freq[s]` is group `s`'s support share, `joint[s][u]`
/// the share of records holding both `s` and `u`, `quality[s]` how clearly its holders stand
/// out (anchors are chosen among the clearer half). Returns a reference token index per group,
/// or `None` where no token fits.
pub fn align(
    freq: &[f64],
    joint: &[Vec<f64>],
    quality: &[f64],
    r: &Reference,
    allowed: &dyn Fn(usize, u32) -> bool,
    p: &AlignParams,
) -> Vec<Option<u32>> {
    let n = freq.len();
    if n == 0 || r.tokens.is_empty() {
        return vec![None; n];
    }
    let min_f = freq.iter().cloned().fold(f64::INFINITY, f64::min) / p.window;
    let cand: Vec<u32> = (0..r.tokens.len() as u32)
        .filter(|&t| r.freq[t as usize] >= min_f)
        .take(3000)
        .collect();
    let rj = reference_joint(r, &cand);
    let rf: Vec<f64> = cand.iter().map(|&t| r.freq[t as usize]).collect();
    // Candidate tokens of each group (indices into `cand`).
    let window: Vec<Vec<usize>> = (0..n)
        .map(|s| {
            (0..cand.len())
                .filter(|&c| (freq[s] / rf[c]).ln().abs() <= p.window.ln() && allowed(s, cand[c]))
                .collect()
        })
        .collect();
    // Anchor-free profiles: the largest conditional co-occurrences of each group with the
    // other groups, and of each token with the other tokens frequent enough to be mined, in
    // descending order. `_J` has a few strong partners (`JO`, `JE`), `A_` many weak ones.
    const TOP: usize = 8;
    let min_group = freq.iter().cloned().fold(f64::INFINITY, f64::min);
    let profile = |row: &mut dyn Iterator<Item = f64>| -> Vec<f64> {
        let mut v: Vec<f64> = row.collect();
        v.sort_by(|a, b| b.total_cmp(a));
        v.resize(TOP, 0.0);
        v.truncate(TOP);
        v
    };
    let gprof: Vec<Vec<f64>> = (0..n)
        .map(|s| profile(&mut (0..n).filter(|&u| u != s).map(|u| joint[s][u] / freq[s])))
        .collect();
    let tprof: Vec<Vec<f64>> = (0..cand.len())
        .map(|c| {
            profile(
                &mut (0..cand.len())
                    .filter(|&v| v != c && rf[v] >= min_group)
                    .map(|v| rj[c][v] / rf[c]),
            )
        })
        .collect();
    let (pw, fw, rounds) = (p.profile_weight, p.freq_weight, p.rounds);
    let pdist = |s: usize, c: usize| -> f64 {
        pw * gprof[s]
            .iter()
            .zip(&tprof[c])
            .map(|(a, b)| (a - b).abs())
            .sum::<f64>()
            / TOP as f64
    };
    // Start: greedy by frequency gap.
    let pairs = |cost: &dyn Fn(usize, usize) -> f64| {
        let mut v: Vec<(f64, usize, usize)> = Vec::new();
        for (s, w) in window.iter().enumerate() {
            for &c in w {
                v.push((cost(s, c), s, c));
            }
        }
        v.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
        v
    };
    let greedy = |v: Vec<(f64, usize, usize)>, max: f64| {
        let mut a: Vec<Option<usize>> = vec![None; n];
        let mut used = vec![false; cand.len()];
        for (cost, s, c) in v {
            if cost > max {
                break;
            }
            if a[s].is_none() && !used[c] {
                a[s] = Some(c);
                used[c] = true;
            }
        }
        a
    };
    let mut assign = greedy(
        pairs(&|s, c| fw * (freq[s] / rf[c]).ln().abs() + pdist(s, c)),
        f64::INFINITY,
    );
    // Anchors: the most frequent groups (their labels are the surest).
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|a, b| freq[*b].total_cmp(&freq[*a]).then(a.cmp(b)));
    // Among the groups that stand out at least as clearly as the median one: a group that
    // mixes several tokens has a high support and would mislead every comparison.
    let median_quality = {
        let mut q = quality.to_vec();
        q.sort_by(|a, b| a.total_cmp(b));
        q.get(q.len() / 2).copied().unwrap_or(0.0)
    };
    let anchors: Vec<usize> = order
        .into_iter()
        .filter(|&s| quality.get(s).copied().unwrap_or(0.0) >= median_quality)
        .take(p.anchors)
        .collect();
    for round in 0..rounds {
        let current = assign.clone();
        let cost = |s: usize, c: usize| -> f64 {
            let mut gap = 0.0;
            let mut m = 0usize;
            for &u in &anchors {
                if u == s {
                    continue;
                }
                let Some(v) = current[u] else { continue };
                if v == c {
                    continue;
                }
                gap += (joint[s][u] / freq[s] - rj[c][v] / rf[c]).abs()
                    + (joint[s][u] / freq[u] - rj[c][v] / rf[v]).abs();
                m += 1;
            }
            let co = if m == 0 { 0.0 } else { gap / m as f64 };
            fw * (freq[s] / rf[c]).ln().abs() + co + pdist(s, c)
        };
        let last = round + 1 == rounds;
        let next = greedy(pairs(&cost), if last { p.max_cost } else { f64::INFINITY });
        let stable = next == current;
        assign = next;
        if stable && !last {
            // One last pass applies the cost bound.
            assign = greedy(pairs(&cost), p.max_cost);
            break;
        }
    }
    assign.into_iter().map(|a| a.map(|c| cand[c])).collect()
}

//! A Fellegi-Sunter match model over comparison levels (issue #18, first step).
//!
//! Each candidate pair is described by one level per comparison (names, birth date, ...). Level
//! 0 means *no evidence*: a value missing on either side weighs nothing, neither for nor
//! against. Every other level `l` of comparison `c` has `m[c][l]`, the probability of that
//! level among matches, and `u[c][l]`, among non-matches; a pair's match weight is
//! `log2(λ / (1 − λ)) + Σ_c log2(m[c][l_c] / u[c][l_c])`, and its match probability follows
//! from it. The comparisons are taken as independent given match status (the model's one
//! strong assumption: correlated fields, such as the parts of one household address, belong in
//! one comparison).
//!
//! `u` is estimated from random pairs, which are almost all non-matches
//! ([`Model::estimate_u`]); `m` and `λ` by expectation maximisation on the candidate pairs
//! with `u` held fixed ([`Model::expectation_maximisation`]), so no truth is needed. Every sum
//! runs in a fixed order: the same pairs give bit-identical parameters at any thread count.
//!
//! # Example
//!
//! ```
//! use crosswalk::link::model::Model;
//!
//! // Two comparisons with levels 0 (missing), 1 (disagree), 2 (agree); random pairs mostly
//! // disagree.
//! // (one comparison alone cannot be trained: see `expectation_maximisation`)
//! let mut model = Model::new(&[3, 3]);
//! let random: Vec<u8> = (0..1000).flat_map(|i| if i % 100 == 0 { [2, 2] } else { [1, 1] }).collect();
//! model.estimate_u(&random);
//! // Candidates: 300 that agree on both, 700 that disagree on both.
//! let cands: Vec<u8> = (0..1000).flat_map(|i| if i < 300 { [2, 2] } else { [1, 1] }).collect();
//! model.expectation_maximisation(&cands, &[true, true], 50).unwrap();
//! model.estimate_lambda(&cands, 1000.0, 50);
//! assert!(model.weight(&[2, 2]) > model.weight(&[1, 1]));
//! assert_eq!(model.level_weight(0, 0), 0.0); // missing: no evidence
//! ```

/// Pseudo-count added to every level when estimating `m` and `u`, so that a level never seen
/// gets a small probability instead of zero (an infinite weight).
const PSEUDO: f64 = 0.5;

/// Match-probability parameters of a Fellegi-Sunter model.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    /// Prior share of matches among the pairs the model was fitted on (λ).
    pub lambda: f64,
    /// `m[c][l]`: probability of level `l` of comparison `c` among matches (`m[c][0]` unused).
    pub m: Vec<Vec<f64>>,
    /// `u[c][l]`: the same among non-matches.
    pub u: Vec<Vec<f64>>,
}

impl Model {
    /// A starting model for comparisons with `levels[c]` levels each (level 0 included): `m`
    /// rising and `u` falling with the level, λ = 0.1.
    pub fn new(levels: &[usize]) -> Model {
        let ramp = |n: usize, up: bool| -> Vec<f64> {
            let mut v = vec![0.0; n];
            let k = n.saturating_sub(1).max(1) as f64;
            let mut total = 0.0;
            for (l, x) in v.iter_mut().enumerate().skip(1) {
                let r = l as f64 / k;
                *x = if up {
                    0.05 + r * r
                } else {
                    0.05 + (1.0 - r) * (1.0 - r)
                };
                total += *x;
            }
            for x in v.iter_mut().skip(1) {
                *x /= total;
            }
            v
        };
        Model {
            lambda: 0.1,
            m: levels.iter().map(|&n| ramp(n, true)).collect(),
            u: levels.iter().map(|&n| ramp(n, false)).collect(),
        }
    }

    /// Number of comparisons.
    pub fn comparisons(&self) -> usize {
        self.m.len()
    }

    /// Estimates `u` from the levels of random pairs (`random.len()` a multiple of the number
    /// of comparisons, one row per pair), taken as non-matches.
    pub fn estimate_u(&mut self, random: &[u8]) {
        let c = self.comparisons();
        for (ci, u) in self.u.iter_mut().enumerate() {
            let mut counts = vec![PSEUDO; u.len()];
            for row in random.chunks_exact(c) {
                let l = row[ci] as usize;
                if l > 0 && l < counts.len() {
                    counts[l] += 1.0;
                }
            }
            normalise(&mut counts, u);
        }
    }

    /// Weight of level `level` of comparison `c`: `log2(m / u)`, 0 for level 0.
    pub fn level_weight(&self, c: usize, level: u8) -> f64 {
        let l = level as usize;
        if l == 0 || l >= self.m[c].len() {
            return 0.0;
        }
        (self.m[c][l] / self.u[c][l]).log2()
    }

    /// The match weight of one pair's levels (without the prior).
    pub fn weight(&self, levels: &[u8]) -> f64 {
        levels
            .iter()
            .enumerate()
            .map(|(c, &l)| self.level_weight(c, l))
            .sum()
    }

    /// The prior's weight, `log2(λ / (1 − λ))`.
    pub fn prior_weight(&self) -> f64 {
        (self.lambda / (1.0 - self.lambda)).log2()
    }

    /// Match probability of a pair with match weight `weight` (prior added here).
    pub fn probability(&self, weight: f64) -> f64 {
        probability(weight, self.lambda)
    }

    /// Estimates `m` by expectation maximisation over candidate pairs' levels (`pairs.len()`
    /// a multiple of the number of comparisons), `u` held at its random-pair estimate: at most
    /// `iterations` rounds, fewer when every parameter moves less than 1e-6.
    ///
    /// Candidates are chosen for agreeing on something (equal names, an equal birth date).
    /// Among them the comparisons they were chosen by say little about matching and much about
    /// the choice: only the comparisons with `train[c]` set take part (in the posterior and in
    /// the update), as in Splink's blocked training sessions. Train each comparison in a session
    /// whose candidates were *not* chosen by it, then fit λ on all candidates with
    /// [`Model::estimate_lambda`]. The session's own λ (the share of matches among `pairs`) is
    /// left in [`Model::lambda`].
    ///
    /// At least two comparisons must be trained: with `u` fixed, one comparison alone fits its
    /// levels' shares exactly for a whole range of λ, and `m` would be wherever EM happened to
    /// stop ([`ModelError::TooFewTrained`]).
    pub fn expectation_maximisation(
        &mut self,
        pairs: &[u8],
        train: &[bool],
        iterations: usize,
    ) -> Result<(), ModelError> {
        self.expectation_maximisation_weighted(pairs, &[], train, iterations)
    }

    /// [`Model::expectation_maximisation`] over level vectors that each stand for `counts[i]`
    /// pairs, so that a run's millions of candidate pairs train as their few thousand distinct
    /// level vectors. `counts` holds one count per level vector, or is empty for one each.
    pub fn expectation_maximisation_weighted(
        &mut self,
        pairs: &[u8],
        counts: &[f64],
        train: &[bool],
        iterations: usize,
    ) -> Result<(), ModelError> {
        let trained = train.iter().filter(|&&t| t).count();
        if trained < 2 {
            return Err(ModelError::TooFewTrained { trained });
        }
        let c = self.comparisons();
        let n = self.pairs_counted(pairs, counts);
        if n <= 0.0 {
            return Ok(());
        }
        let count = |i: usize| count_at(counts, i);
        let mut lambda = self.lambda;
        for _ in 0..iterations {
            let mut cm: Vec<Vec<f64>> = self.m.iter().map(|m| vec![PSEUDO; m.len()]).collect();
            let mut total = 0.0;
            for (i, row) in pairs.chunks_exact(c).enumerate() {
                let w: f64 = (0..c)
                    .filter(|&ci| train[ci])
                    .map(|ci| self.level_weight(ci, row[ci]))
                    .sum();
                let p = probability(w, lambda) * count(i);
                total += p;
                for (ci, &l) in row.iter().enumerate() {
                    let l = l as usize;
                    if train[ci] && l > 0 && l < cm[ci].len() {
                        cm[ci][l] += p;
                    }
                }
            }
            let new_lambda = (total / n).clamp(1e-9, 1.0 - 1e-9);
            let mut moved = (new_lambda - lambda).abs();
            lambda = new_lambda;
            for (ci, counts) in cm.iter_mut().enumerate() {
                if train[ci] {
                    moved = moved.max(update(counts, &mut self.m[ci]));
                }
            }
            if moved < 1e-6 {
                break;
            }
        }
        self.lambda = lambda;
        Ok(())
    }

    /// Makes comparison `c` weigh nothing: `m = u`, evenly over its levels above 0 (what a
    /// comparison no pair holds is given, so that it reads as no evidence).
    pub fn neutralise(&mut self, c: usize) {
        let levels = self.m[c].len();
        let even = 1.0 / (levels.max(2) - 1) as f64;
        for l in 1..levels {
            self.m[c][l] = even;
            self.u[c][l] = even;
        }
    }

    /// Fits `m` and `u` of comparison `c` alone over `pairs` (level vectors, each standing for
    /// `counts[i]` pairs, or one each when `counts` is empty), every pair counting towards `m`
    /// by its match probability under the other comparisons and λ, towards `u` by the rest:
    /// one M step with the posteriors of a model that does not hold `c`. For a comparison
    /// present only where another agrees (the given name at an equal birth date), whose `u`
    /// random pairs cannot give (few random pairs share a birth date, and in a small run most
    /// of those that do are one person). Levels no pair holds keep a pseudo-count.
    pub fn fit_one_by_the_rest(&mut self, c: usize, pairs: &[u8], counts: &[f64]) {
        let n = self.comparisons();
        let levels = self.m[c].len();
        let (mut cm, mut cu) = (vec![PSEUDO; levels], vec![PSEUDO; levels]);
        for (i, row) in pairs.chunks_exact(n).enumerate() {
            let l = row[c] as usize;
            if l == 0 || l >= levels {
                continue;
            }
            let w = self.weight(row) - self.level_weight(c, row[c]);
            let p = self.probability(w);
            let k = count_at(counts, i);
            cm[l] += p * k;
            cu[l] += (1.0 - p) * k;
        }
        normalise(&mut cm, &mut self.m[c]);
        normalise(&mut cu, &mut self.u[c]);
    }

    /// Takes the matches out of `u`. Random pairs are almost all non-matches, but the few
    /// matches among them (a share λ) are most of the random pairs that agree on a rare level
    /// (an equal birth date, phone or SSN-4), so `u` of those levels comes out too high and
    /// their weights too low. With λ (of a random pair, [`Model::estimate_lambda`]) and `m`
    /// known: `u' = (u − λ·m) / (1 − λ)`, at least a tenth of the original, renormalised.
    pub fn debias_u(&mut self) {
        let lambda = self.lambda;
        for (u, m) in self.u.iter_mut().zip(&self.m) {
            let mut counts: Vec<f64> = u
                .iter()
                .zip(m)
                .map(|(&u, &m)| ((u - lambda * m) / (1.0 - lambda)).max(u / 10.0))
                .collect();
            normalise(&mut counts, u);
        }
    }

    /// Fits λ with `m` and `u` fixed: the share of matches among `total_pairs` pairs, of
    /// which `pairs` are the candidates and every other pair is taken as a non-match (the
    /// pairs no candidate pass proposes agree on nothing it looks at). With `u` from random
    /// pairs, λ is then the prior of a random pair, and [`Model::probability`] is a random
    /// pair's posterior: the weights of the comparisons that chose the candidates count too.
    pub fn estimate_lambda(&mut self, pairs: &[u8], total_pairs: f64, iterations: usize) {
        self.estimate_lambda_weighted(pairs, &[], total_pairs, iterations)
    }

    /// [`Model::estimate_lambda`] over level vectors that each stand for `counts[i]` pairs;
    /// `counts` holds one count per level vector, or is empty for one each.
    pub fn estimate_lambda_weighted(
        &mut self,
        pairs: &[u8],
        counts: &[f64],
        total_pairs: f64,
        iterations: usize,
    ) {
        let c = self.comparisons();
        let n = self.pairs_counted(pairs, counts);
        if n <= 0.0 {
            return;
        }
        let count = |i: usize| count_at(counts, i);
        let all = total_pairs.max(n);
        let weights: Vec<(f64, f64)> = pairs
            .chunks_exact(c)
            .enumerate()
            .map(|(i, r)| (self.weight(r), count(i)))
            .collect();
        for _ in 0..iterations {
            let total: f64 = weights
                .iter()
                .map(|&(w, k)| k * probability(w, self.lambda))
                .sum();
            let lambda = (total / all).clamp(1e-12, 1.0 - 1e-9);
            let moved = (lambda - self.lambda).abs();
            self.lambda = lambda;
            if moved < 1e-9 {
                break;
            }
        }
    }
}

impl Model {
    /// The pairs the level vectors `pairs` stand for: the sum of `counts`, one per vector, or
    /// one each when `counts` is empty.
    fn pairs_counted(&self, pairs: &[u8], counts: &[f64]) -> f64 {
        let rows = pairs.len() / self.comparisons().max(1);
        debug_assert!(counts.is_empty() || counts.len() == rows);
        (0..rows).map(|i| count_at(counts, i)).sum()
    }
}

/// The count of level vector `i`: `counts[i]`, or 1 when `counts` is empty.
fn count_at(counts: &[f64], i: usize) -> f64 {
    counts.get(i).copied().unwrap_or(1.0)
}

/// Why a model cannot be fitted as asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    /// A training session with fewer than two comparisons leaves `m` undetermined.
    #[error(
        "an EM session must train at least two comparisons ({trained} given): with u fixed, one \
         alone fits its levels for a whole range of λ"
    )]
    TooFewTrained {
        /// Comparisons the session would have trained.
        trained: usize,
    },
    /// A training session had too few candidate pairs to learn from: its comparisons would
    /// keep their starting values and be reported as fitted.
    #[error(
        "the {session} training session has {pairs} candidate pairs, fewer than {needed}: the \
         run is too small, or its encodings lack the parts that session learns from"
    )]
    EmptySession {
        /// Which session (`equal names`, `equal birth dates`).
        session: &'static str,
        /// Pairs it had.
        pairs: usize,
        /// Pairs it needs.
        needed: usize,
    },
}

/// Match probability of a pair of weight `w` under prior λ.
fn probability(w: f64, lambda: f64) -> f64 {
    let w = w + (lambda / (1.0 - lambda)).log2();
    1.0 / (1.0 + (-w).exp2())
}

/// Normalises `counts` into `params` and returns the largest change.
fn update(counts: &mut [f64], params: &mut [f64]) -> f64 {
    let before = params.to_vec();
    normalise(counts, params);
    before
        .iter()
        .zip(params.iter())
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max)
}

/// `out[l] = counts[l] / Σ counts[1..]` for `l ≥ 1`; `out[0] = 0`.
fn normalise(counts: &mut [f64], out: &mut [f64]) {
    counts[0] = 0.0;
    let total: f64 = counts.iter().sum();
    for (o, &c) in out.iter_mut().zip(counts.iter()) {
        *o = if total > 0.0 { c / total } else { 0.0 };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic stream of uniform numbers in [0, 1) (xorshift64).
    fn uniform(seed: u64) -> impl FnMut() -> f64 {
        let mut state = seed;
        move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    /// A generated world of pairs whose true m, u and λ are known: EM, with u from random
    /// pairs, recovers them.
    #[test]
    fn em_recovers_known_parameters() {
        // Two comparisons: names (levels 1..=3) and dob (1..=2, 0 = missing 30% of the time).
        let m_true = [vec![0.0, 0.05, 0.15, 0.8], vec![0.0, 0.1, 0.9]];
        let u_true = [vec![0.0, 0.9, 0.08, 0.02], vec![0.0, 0.97, 0.03]];
        let mut next = uniform(12345);
        let draw = |p: &[f64], x: f64| -> u8 {
            let mut acc = 0.0;
            for (l, &q) in p.iter().enumerate().skip(1) {
                acc += q;
                if x < acc {
                    return l as u8;
                }
            }
            (p.len() - 1) as u8
        };
        let mut pairs = Vec::new();
        let mut random = Vec::new();
        for i in 0..40_000 {
            let is_match = i % 5 == 0; // λ = 0.2
            let (m0, m1) = if is_match {
                (&m_true[0], &m_true[1])
            } else {
                (&u_true[0], &u_true[1])
            };
            pairs.push(draw(m0, next()));
            let missing = next() < 0.3;
            let d = draw(m1, next());
            pairs.push(if missing { 0 } else { d });
            random.push(draw(&u_true[0], next()));
            random.push(draw(&u_true[1], next()));
        }
        let mut model = Model::new(&[4, 3]);
        model.estimate_u(&random);
        model
            .expectation_maximisation(&pairs, &[true, true], 200)
            .unwrap();
        model.estimate_lambda(&pairs, 40_000.0, 200);
        assert!((model.lambda - 0.2).abs() < 0.02, "λ {}", model.lambda);
        for (c, m) in m_true.iter().enumerate() {
            for (l, (got, want)) in model.m[c].iter().zip(m).enumerate().skip(1) {
                assert!(
                    (got - want).abs() < 0.03,
                    "m[{c}][{l}] {got} against {want}"
                );
            }
        }
        // Agreement weighs for, disagreement against, missing nothing.
        assert!(model.level_weight(0, 3) > 4.0);
        assert!(model.level_weight(1, 1) < -2.0);
        assert_eq!(model.level_weight(1, 0), 0.0);
        let p = model.probability(model.weight(&[3, 2]));
        assert!(p > 0.99, "{p}");
        assert!(model.probability(model.weight(&[1, 1])) < 0.01);

        // The same pairs as distinct level vectors with counts fit the same model.
        let mut counted: std::collections::BTreeMap<Vec<u8>, f64> = Default::default();
        for row in pairs.chunks_exact(2) {
            *counted.entry(row.to_vec()).or_default() += 1.0;
        }
        let patterns: Vec<u8> = counted.keys().flatten().copied().collect();
        let counts: Vec<f64> = counted.values().copied().collect();
        assert!(counts.len() <= 12);
        let mut weighted = Model::new(&[4, 3]);
        weighted.estimate_u(&random);
        weighted
            .expectation_maximisation_weighted(&patterns, &counts, &[true, true], 200)
            .unwrap();
        weighted.estimate_lambda_weighted(&patterns, &counts, 40_000.0, 200);
        // (Equal up to summation order, and to where EM's stopping rule falls.)
        assert!((weighted.lambda - model.lambda).abs() < 1e-5);
        for (a, b) in weighted.m.iter().flatten().zip(model.m.iter().flatten()) {
            assert!((a - b).abs() < 1e-5, "{a} {b}");
        }
    }

    /// Candidates of a blocked session: all chosen because comparison 0 agrees; comparisons 1
    /// and 2 agree, independently, for 90% and 80% of matches and 5% and 10% of non-matches
    /// (the `u` the tests hold fixed); a quarter are matches.
    fn blocked_pairs() -> Vec<u8> {
        let mut next = uniform(987654321);
        let mut pairs = Vec::new();
        for i in 0..40_000u32 {
            let (pa, pb) = if i % 4 == 0 { (0.9, 0.8) } else { (0.05, 0.1) };
            let a = next() < pa;
            let b = next() < pb;
            pairs.extend_from_slice(&[2, if a { 2 } else { 1 }, if b { 2 } else { 1 }]);
        }
        pairs
    }

    /// Trained on comparisons 1 and 2 (not the one that chose the pairs), EM recovers their
    /// `m` and the session's λ whatever λ it starts from, and leaves comparison 0 alone.
    #[test]
    fn a_blocked_session_trains_only_what_it_may() {
        let pairs = blocked_pairs();
        let mut fits = Vec::new();
        for start in [0.05, 0.25, 0.6] {
            let mut model = Model::new(&[3, 3, 3]);
            model.u = vec![
                vec![0.0, 0.99, 0.01],
                vec![0.0, 0.95, 0.05],
                vec![0.0, 0.9, 0.1],
            ];
            model.lambda = start;
            let before = model.m[0].clone();
            model
                .expectation_maximisation(&pairs, &[false, true, true], 500)
                .unwrap();
            assert_eq!(model.m[0], before, "the blocking comparison is not trained");
            assert!(
                (model.m[1][2] - 0.9).abs() < 0.03,
                "start {start}: {:?}",
                model.m
            );
            assert!(
                (model.m[2][2] - 0.8).abs() < 0.03,
                "start {start}: {:?}",
                model.m
            );
            assert!(
                (model.lambda - 0.25).abs() < 0.03,
                "start {start}: λ {}",
                model.lambda
            );
            fits.push(model.m[1][2]);
        }
        assert!(fits.iter().all(|f| (f - fits[0]).abs() < 0.005), "{fits:?}");
        // One comparison alone is refused.
        let mut model = Model::new(&[3, 3, 3]);
        assert_eq!(
            model.expectation_maximisation(&pairs, &[false, true, false], 10),
            Err(ModelError::TooFewTrained { trained: 1 })
        );
    }

    /// λ over all pairs is the fixed point `λ = Σ p(λ) / N`, candidates' posteriors summed and
    /// every other pair a non-match.
    #[test]
    fn lambda_is_the_fixed_point_over_all_pairs() {
        let pairs = blocked_pairs();
        let mut model = Model::new(&[3, 3, 3]);
        model.m = vec![
            vec![0.0, 0.02, 0.98],
            vec![0.0, 0.1, 0.9],
            vec![0.0, 0.2, 0.8],
        ];
        model.u = vec![
            vec![0.0, 0.99, 0.01],
            vec![0.0, 0.95, 0.05],
            vec![0.0, 0.9, 0.1],
        ];
        let all = 1_000_000.0;
        model.estimate_lambda(&pairs, all, 2000);
        let sum: f64 = pairs
            .chunks_exact(3)
            .map(|r| model.probability(model.weight(r)))
            .sum();
        assert!(
            (model.lambda - sum / all).abs() < 1e-7,
            "λ {} against Σp/N {}",
            model.lambda,
            sum / all
        );
        assert!(
            model.lambda > 1e-4 && model.lambda < 0.02,
            "λ {}",
            model.lambda
        );
    }

    /// A comparison fitted by the others' posteriors: pairs the first comparison calls
    /// matches agree on the second, the others do not; its `m` and `u` follow.
    #[test]
    fn one_comparison_is_fitted_by_the_rest() {
        let mut model = Model::new(&[3, 3]);
        model.m[0] = vec![0.0, 0.01, 0.99];
        model.u[0] = vec![0.0, 0.99, 0.01];
        model.lambda = 0.5;
        let mut pairs = Vec::new();
        for _ in 0..90 {
            pairs.extend([2, 2]);
        }
        for _ in 0..10 {
            pairs.extend([2, 1]);
        }
        for _ in 0..100 {
            pairs.extend([1, 1]);
        }
        // Missing on the second: not counted.
        pairs.extend([2, 0]);
        model.fit_one_by_the_rest(1, &pairs, &[]);
        assert!((model.m[1][2] - 0.9).abs() < 0.02, "{:?}", model.m[1]);
        assert!(model.u[1][1] > 0.97, "{:?}", model.u[1]);
        assert!(model.level_weight(1, 2) > 5.0);
    }

    /// Matches among random pairs inflate `u` of the agreeing level; `debias_u` takes them out.
    #[test]
    fn debiasing_u_takes_the_matches_out() {
        let mut model = Model::new(&[3]);
        model.m = vec![vec![0.0, 0.1, 0.9]];
        // True u of agreement 1e-4; random pairs hold 1e-3 matches, so they show ~1e-3.
        let lambda = 1e-3;
        let observed = lambda * 0.9 + (1.0 - lambda) * 1e-4;
        model.u = vec![vec![0.0, 1.0 - observed, observed]];
        model.lambda = lambda;
        model.debias_u();
        assert!((model.u[0][2] - 1e-4).abs() < 2e-5, "{:?}", model.u);
        assert!((model.u[0][1] + model.u[0][2] - 1.0).abs() < 1e-12);
    }

    #[test]
    fn nothing_to_fit_changes_nothing() {
        let mut model = Model::new(&[3, 3]);
        let before = model.clone();
        model
            .expectation_maximisation(&[], &[true, true], 10)
            .unwrap();
        model.estimate_lambda(&[], 10.0, 10);
        assert_eq!(model, before);
    }
}

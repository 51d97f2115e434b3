//! Term-frequency adjustment of exact names agreement (issue #18, "frequency adjustment where
//! equal values give equal encodings").
//!
//! Two records whose names parts are byte-equal agree on one name. The model's top names level
//! weighs every such agreement alike, `log2(m / u)` with `u` the share of random non-matching
//! pairs that agree; but agreeing on a name held by one person in the region is far stronger
//! evidence than agreeing on the commonest name. Keyed encodings of equal names are equal, so
//! the taskforce can count how often each names value occurs without learning any name.
//!
//! **Counting persons, not records.** A value's share of *records* overstates a rare name held
//! by one person with many records. The estimate here is the number of distinct birth-date
//! parts among the records holding the value (at least 1): persons sharing a name mostly differ
//! in birth date, while one person's records mostly repeat theirs. A birth-date typo counts as a
//! second holder, which only lowers the boost (the safe direction).
//!
//! **The adjustment.** With `n_v` estimated holders of value `v` and `N = Σ n_v`, a random
//! non-matching pair agrees on `v` with `u_v ∝ n_v − 1`, and the model's `u` of the top level
//! is their mean over such pairs, `κ = Σ n_v (n_v − 1) / N` in the same units. A pair agreeing
//! on `v` gets `log2(κ / max(n_v − 1, α))` added to its weight: common names lose weight, names
//! held by one person gain a little (`α` = [`ALPHA`] stands in for the unknown chance that a
//! second, unseen person holds it). The adjustment is clamped to ±[`MAX_ADJUSTMENT`] bits and is
//! 0 when no value has two holders (nothing to calibrate on).
//!
//! **Near names.** A pair whose names are a typo apart (the names level below the top) shares
//! no value byte for byte; it gets the adjustment of the commoner of the two records' rarest
//! values ([`NameFrequencies::near_adjustment`]): a typo of a common name weighs as the common
//! name, a typo of a rare one as rare.

use rustc_hash::FxHashMap;

use super::evidence::{part_similarity, RecordEvidence};

/// Holders assumed for a value only one person is seen with (`max(n_v − 1, α)`).
pub const ALPHA: f64 = 0.1;

/// The largest adjustment, in bits, either way.
pub const MAX_ADJUSTMENT: f64 = 10.0;

/// Names-value frequencies of a run's records.
#[derive(Debug, Clone)]
pub struct NameFrequencies {
    /// Per record, the ids of its names values, ascending (CSR: `start[r]..start[r + 1]`).
    start: Vec<u32>,
    ids: Vec<u32>,
    /// Per value id, its estimated holders (distinct birth-date parts, at least 1).
    holders: Vec<u32>,
    /// `Σ n (n − 1) / Σ n` over values; 0 when no value has two holders.
    kappa: f64,
}

impl NameFrequencies {
    /// Counts the names values of `records` and their holders.
    pub fn new(records: &[RecordEvidence], taps: Option<usize>) -> NameFrequencies {
        let mut id_of: FxHashMap<&[u8], u32> = FxHashMap::default();
        let mut dob_of: FxHashMap<&[u8], u32> = FxHashMap::default();
        let mut start = Vec::with_capacity(records.len() + 1);
        let mut ids = Vec::new();
        // (value, birth date) pairs; records without one add a value with no birth date.
        let mut seen: Vec<(u32, u32)> = Vec::new();
        start.push(0u32);
        for r in records {
            let first = ids.len();
            for n in &r.names {
                let next = id_of.len() as u32;
                ids.push(*id_of.entry(n.as_slice()).or_insert(next));
            }
            ids[first..].sort_unstable();
            start.push(ids.len() as u32);
            for &v in &ids[first..] {
                for d in &r.dob {
                    let next = dob_of.len() as u32;
                    seen.push((v, *dob_of.entry(d.as_slice()).or_insert(next)));
                }
            }
        }
        seen.sort_unstable();
        seen.dedup();
        // Holders per value: its birth dates grouped where they are near (one typo apart), so
        // that one person's dates recorded with a typo count once.
        let dobs: Vec<&[u8]> = {
            let mut v: Vec<(&[u8], u32)> = dob_of.into_iter().collect();
            v.sort_unstable_by_key(|x| x.1);
            v.into_iter().map(|x| x.0).collect()
        };
        let mut holders = vec![1u32; id_of.len()];
        for group in seen.chunk_by(|x, y| x.0 == y.0) {
            let dates: Vec<&[u8]> = group.iter().map(|&(_, d)| dobs[d as usize]).collect();
            holders[group[0].0 as usize] = distinct_dates(&dates, taps).max(1);
        }
        let total: f64 = holders.iter().map(|&n| n as f64).sum();
        let pairs: f64 = holders.iter().map(|&n| n as f64 * (n as f64 - 1.0)).sum();
        NameFrequencies {
            start,
            ids,
            holders,
            kappa: if total > 0.0 { pairs / total } else { 0.0 },
        }
    }

    /// `κ`: the mean holders beyond the first over non-matching agreeing pairs.
    pub fn kappa(&self) -> f64 {
        self.kappa
    }

    /// Distinct names values counted.
    pub fn values(&self) -> usize {
        self.holders.len()
    }

    /// The estimated holders of the rarest names value records `a` and `b` share byte for
    /// byte, `None` when they share none.
    pub fn shared_holders(&self, a: usize, b: usize) -> Option<u32> {
        let ids = |r: usize| &self.ids[self.start[r] as usize..self.start[r + 1] as usize];
        let (x, y) = (ids(a), ids(b));
        let (mut i, mut j) = (0, 0);
        let mut best: Option<u32> = None;
        while i < x.len() && j < y.len() {
            match x[i].cmp(&y[j]) {
                std::cmp::Ordering::Less => i += 1,
                std::cmp::Ordering::Greater => j += 1,
                std::cmp::Ordering::Equal => {
                    let n = self.holders[x[i] as usize];
                    best = Some(best.map_or(n, |b| b.min(n)));
                    i += 1;
                    j += 1;
                }
            }
        }
        best
    }

    /// Bits added to the weight of a pair holding a names value of `holders` estimated holders.
    pub fn adjustment_for(&self, holders: u32) -> f64 {
        if self.kappa <= 0.0 {
            return 0.0;
        }
        let others = (holders as f64 - 1.0).max(ALPHA);
        (self.kappa / others)
            .log2()
            .clamp(-MAX_ADJUSTMENT, MAX_ADJUSTMENT)
    }

    /// The estimated holders of record `r`'s rarest names value (`None`: it has none).
    pub fn rarest(&self, r: usize) -> Option<u32> {
        self.ids[self.start[r] as usize..self.start[r + 1] as usize]
            .iter()
            .map(|&v| self.holders[v as usize])
            .min()
    }

    /// Bits added to the weight of records `a` and `b` whose names are near but not equal:
    /// the adjustment of the commoner of the two records' rarest values.
    pub fn near_adjustment(&self, a: usize, b: usize) -> f64 {
        match (self.rarest(a), self.rarest(b)) {
            (Some(x), Some(y)) => self.adjustment_for(x.max(y)),
            _ => 0.0,
        }
    }

    /// Bits added to the weight of records `a` and `b` when their names agree at the top level:
    /// 0 when they share no names value byte for byte.
    pub fn adjustment(&self, a: usize, b: usize) -> f64 {
        self.shared_holders(a, b)
            .map_or(0.0, |n| self.adjustment_for(n))
    }
}

/// Birth-date parts at least this similar ([`part_similarity`]) are one person's date, one
/// typo apart (the birth-date comparison's third level).
pub const NEAR_DATES: f64 = 0.5;

/// The number of groups of `dates` (distinct birth-date parts), dates joined where they are at
/// least [`NEAR_DATES`] similar, transitively.
fn distinct_dates(dates: &[&[u8]], taps: Option<usize>) -> u32 {
    let mut parent: Vec<usize> = (0..dates.len()).collect();
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    let mut groups = dates.len() as u32;
    for i in 0..dates.len() {
        for j in i + 1..dates.len() {
            if part_similarity(dates[i], dates[j], taps) >= NEAR_DATES {
                let (a, b) = (root(&mut parent, i), root(&mut parent, j));
                if a != b {
                    parent[a] = b;
                    groups -= 1;
                }
            }
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A birth-date part with bits `3d..3d + 3` set: parts of different `d` share no bit.
    fn date(d: u8) -> Vec<u8> {
        let mut v = vec![0u8; 16];
        for bit in 3 * d as usize..3 * d as usize + 3 {
            v[bit / 8] |= 1 << (bit % 8);
        }
        v
    }

    fn record(names: &[u8], dob: Option<u8>) -> RecordEvidence {
        RecordEvidence {
            names: names.iter().map(|&n| vec![n; 4]).collect(),
            dob: dob.into_iter().map(date).collect(),
            ..Default::default()
        }
    }

    /// Name 1 is held by four persons (four birth dates), name 2 by one person with three
    /// records, name 3 by one person without a birth date: the common name loses weight, the
    /// rare ones gain, and records sharing no value get nothing.
    #[test]
    fn common_names_lose_weight_and_rare_names_gain() {
        let records = vec![
            record(&[1], Some(10)),
            record(&[1], Some(11)),
            record(&[1], Some(12)),
            record(&[1, 9], Some(13)),
            record(&[2], Some(20)),
            record(&[2], Some(20)),
            record(&[2], None),
            record(&[3], None),
            record(&[3], None),
        ];
        let f = NameFrequencies::new(&records, None);
        assert_eq!(f.values(), 4);
        // κ = (4·3) / (4 + 1 + 1 + 1).
        assert!((f.kappa() - 12.0 / 7.0).abs() < 1e-12);
        assert_eq!(f.shared_holders(0, 1), Some(4));
        assert_eq!(f.shared_holders(4, 6), Some(1));
        assert_eq!(f.shared_holders(0, 4), None);
        // Record 3 holds name 9 too (one holder), but shares only name 1 with record 0.
        assert_eq!(f.shared_holders(0, 3), Some(4));
        let common = f.adjustment(0, 1);
        let rare = f.adjustment(4, 5);
        assert!((common - (12.0f64 / 7.0 / 3.0).log2()).abs() < 1e-12);
        assert!((rare - (12.0f64 / 7.0 / ALPHA).log2()).abs() < 1e-12);
        assert!(common < 0.0 && rare > 0.0);
        assert_eq!(f.adjustment(7, 8), rare);
        assert_eq!(f.adjustment(0, 4), 0.0);
    }

    /// One person's birth date recorded with a typo (a part sharing most bits with the other)
    /// counts one holder; a different date counts another.
    #[test]
    fn a_date_with_a_typo_is_one_holder() {
        let mut typo = date(5);
        typo[0] ^= 0b1000_0000; // bit 7 (of date 2) added to date 5's bits 15..18
        typo[2] ^= 0b0000_0100; // bit 18 added
        let near = part_similarity(&date(5), &typo, None);
        assert!((NEAR_DATES..1.0).contains(&near), "{near}");
        let mut records = vec![record(&[1], Some(5)), record(&[1], Some(6))];
        records[1].dob = vec![typo];
        assert_eq!(
            NameFrequencies::new(&records, None).shared_holders(0, 1),
            Some(1)
        );
        let records = vec![record(&[1], Some(5)), record(&[1], Some(6))];
        assert_eq!(
            NameFrequencies::new(&records, None).shared_holders(0, 1),
            Some(2)
        );
    }

    /// A near pair is weighed by the commoner of the two records' rarest values: a typo of a
    /// common name counts as common, a typo of a rare name as rare.
    #[test]
    fn near_names_take_the_commoner_rarest_value() {
        let records = vec![
            record(&[1], Some(10)),
            record(&[1], Some(11)),
            record(&[1], Some(12)),
            record(&[2], Some(13)), // a typo of name 1, one holder
            record(&[3], Some(14)), // a rare name
            record(&[4], Some(14)), // its typo
            record(&[], None),
        ];
        let f = NameFrequencies::new(&records, None);
        assert_eq!(f.rarest(0), Some(3));
        assert_eq!(f.rarest(3), Some(1));
        assert_eq!(f.rarest(6), None);
        assert_eq!(f.near_adjustment(0, 3), f.adjustment_for(3));
        assert_eq!(f.near_adjustment(4, 5), f.adjustment_for(1));
        assert!(f.near_adjustment(0, 3) < f.near_adjustment(4, 5));
        assert_eq!(f.near_adjustment(0, 6), 0.0);
    }

    /// With every name held by one person there is nothing to calibrate on: no adjustment.
    #[test]
    fn no_adjustment_without_a_shared_name() {
        let records = vec![record(&[1], Some(1)), record(&[2], Some(2))];
        let f = NameFrequencies::new(&records, None);
        assert_eq!(f.kappa(), 0.0);
        assert_eq!(f.adjustment_for(1), 0.0);
    }
}

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
//! second holder, which only lowers the boost (the safe direction). Dates are not grouped by
//! similarity: a typo and another person born on the same day of another year look alike
//! (both keep four of six date tokens), and merging them would undercount a common name's
//! holders, the unsafe direction.
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
//! name, a typo of a rare one as rare. Runs that compare all pairs of names parts weigh these
//! and the two rougher levels by how crowded the records' names neighbourhoods are instead
//! ([`NameNeighbourhoods`]).

use rayon::prelude::*;
use rustc_hash::FxHashMap;

use super::evidence::RecordEvidence;

/// Holders assumed for a value only one person is seen with (`max(n_v − 1, α)`).
pub const ALPHA: f64 = 0.1;

/// The largest adjustment, in bits, either way.
pub const MAX_ADJUSTMENT: f64 = 10.0;

/// Names-value frequencies of a run's records.
#[derive(Debug, Clone)]
pub struct NameFrequencies {
    /// Per record, the ids of its names values, ascending.
    values_of: super::IdLists,
    /// Per value id, its estimated holders (distinct birth-date parts, at least 1).
    holders: Vec<u32>,
    /// `Σ n (n − 1) / Σ n` over values; 0 when no value has two holders.
    kappa: f64,
}

/// The adjustment in bits for a names value held by `holders` persons, given the run's κ, the
/// floor `alpha` on the other holders and the clamp `max` (the values `diagnostics.json`
/// records): `log2(κ / max(holders − 1, alpha))`, within ±`max`; 0 when κ ≤ 0.
pub fn adjustment(kappa: f64, holders: u32, alpha: f64, max: f64) -> f64 {
    if kappa <= 0.0 {
        return 0.0;
    }
    let others = (holders as f64 - 1.0).max(alpha);
    (kappa / others).log2().clamp(-max, max)
}

impl NameFrequencies {
    /// Counts the names values of `records` and their holders.
    pub fn new(records: &[RecordEvidence]) -> NameFrequencies {
        let (values_of, values) = value_ids(records, |r| &r.names);
        let (dobs, _) = value_ids(records, |r| &r.dob);
        // (value, birth date) pairs; records without one add a value with no birth date.
        let mut seen: Vec<(u32, u32)> = Vec::new();
        for i in 0..records.len() {
            for &v in values_of.of(i) {
                seen.extend(dobs.of(i).iter().map(|&d| (v, d)));
            }
        }
        seen.sort_unstable();
        seen.dedup();
        let mut holders = vec![0u32; values];
        for &(v, _) in &seen {
            holders[v as usize] += 1;
        }
        for h in &mut holders {
            *h = (*h).max(1);
        }
        let total: f64 = holders.iter().map(|&n| n as f64).sum();
        let pairs: f64 = holders.iter().map(|&n| n as f64 * (n as f64 - 1.0)).sum();
        NameFrequencies {
            values_of,
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
        self.values_of
            .shared(a, b)
            .map(|v| self.holders[v as usize])
            .min()
    }

    /// Bits added to the weight of a pair holding a names value of `holders` estimated holders.
    pub fn adjustment_for(&self, holders: u32) -> f64 {
        adjustment(self.kappa, holders, ALPHA, MAX_ADJUSTMENT)
    }

    /// The estimated holders of record `r`'s rarest names value (`None`: it has none).
    pub fn rarest(&self, r: usize) -> Option<u32> {
        self.values_of
            .of(r)
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
    /// by the rarest value they share byte for byte, or, sharing none (an estimate of 0.95 or
    /// more between different values), as [`NameFrequencies::near_adjustment`].
    pub fn adjustment(&self, a: usize, b: usize) -> f64 {
        match self.shared_holders(a, b) {
            Some(n) => self.adjustment_for(n),
            None => self.near_adjustment(a, b),
        }
    }
}

/// How crowded each record's names neighbourhood is: the estimated persons whose names come
/// near the record's, for weighing names that agree only roughly.
///
/// The frequency adjustment above weighs byte-equal names; names a typo, a nickname or a
/// hand-typed variant apart share no value, and until 2026-12-07 only the 0.85–0.95 level had an
/// adjustment (the commoner of the two records' rarest values). Here every record counts the
/// estimated persons among its *neighbours*, the records whose names parts reach
/// [`super::candidates::NAMES_PASS_MIN`] (0.75) against its own: distinct birth-date parts
/// among the record and its neighbours, at least 1, exactly as [`NameFrequencies`] counts a
/// value's holders. A rough agreement with a record whose neighbourhood holds one person is
/// strong evidence; with a record among thirty lookalikes, weak. A pair whose names fall in
/// [`CROWDED_LEVELS`] (0.6–0.95) gets `log2(κ / max(h − 1, α))`, `h` the more crowded of the
/// two neighbourhoods and `κ` the mean of `h − 1` over records with a names part, clamped to
/// ±[`MAX_ADJUSTMENT`] bits; at 0.6–0.75, below the neighbourhoods' reach, only what it takes
/// ([`NameNeighbourhoods::adjustment_at`]).
///
/// The neighbours are the all-pairs names pass's pairs, complete for runs that make one
/// (`--model fs` with `auto` blocking, up to 250,000 records). Counted from the candidates of
/// a larger run, which are not complete, the neighbourhoods measured how well a record's
/// record CLK was blocked rather than how common its name is: at a million records F1 fell
/// from 0.890 to 0.845 (docs/measurements/2026-12-07-neighbourhoods.md). Such runs keep the
/// 0.85–0.95 level's adjustment by value.
#[derive(Debug, Clone)]
pub struct NameNeighbourhoods {
    /// Per record, its neighbourhood's estimated persons (itself included, at least 1).
    holders: Vec<u32>,
    /// The mean of `h − 1` over records with a names part.
    kappa: f64,
}

/// Per record, the ids of its values of one part (equal values, equal ids), and how many
/// distinct values there are.
fn value_ids(
    records: &[RecordEvidence],
    part: impl Fn(&RecordEvidence) -> &[Vec<u8>],
) -> (super::IdLists, usize) {
    let mut id_of: FxHashMap<&[u8], u32> = FxHashMap::default();
    let mut ids = super::IdLists::default();
    for r in records {
        ids.push(part(r).iter().map(|v| {
            let next = id_of.len() as u32;
            *id_of.entry(v.as_slice()).or_insert(next)
        }));
    }
    (ids, id_of.len())
}

/// Names levels (`evidence::level_label`: 0.6–0.75, 0.75–0.85, 0.85–0.95) weighed by the
/// crowding of the two records' names neighbourhoods ([`NameNeighbourhoods`]).
pub const CROWDED_LEVELS: std::ops::RangeInclusive<u8> = 2..=4;

/// The lowest names level inside a neighbourhood's reach (0.75–0.85; the names pass keeps
/// pairs at 0.75 or more): below it a neighbourhood's adjustment only takes weight
/// ([`NameNeighbourhoods::adjustment_at`]).
pub const LOWEST_IN_REACH: u8 = 3;

// The level's lower cut is the names pass's similarity, which the neighbourhoods hold.
const _: () = assert!(
    super::evidence::NAMES_CUTS[LOWEST_IN_REACH as usize - 2] == super::candidates::NAMES_PASS_MIN
);

impl NameNeighbourhoods {
    /// Counts the neighbourhoods of `records` from `near`, every pair of records (`a < b` or
    /// not, each at most once per order) whose names reach the neighbourhood's similarity.
    ///
    /// ```
    /// use crosswalk::link::evidence::RecordEvidence;
    /// use crosswalk::link::frequency::NameNeighbourhoods;
    ///
    /// // Records 0 and 1: one person (one birth date); record 2, another person near them.
    /// let record = |dob: u8| RecordEvidence {
    ///     names: vec![vec![1; 4]],
    ///     dob: vec![vec![dob; 4]],
    ///     ..Default::default()
    /// };
    /// let records = [record(1), record(1), record(2), record(3)];
    /// let n = NameNeighbourhoods::new(&records, &[(0, 1), (1, 2)]);
    /// // Records 1 and 2 have one other person near them, records 0 and 3 nobody:
    /// // κ = (0 + 1 + 1 + 0) / 4.
    /// assert_eq!(n.kappa(), 0.5);
    /// assert!(n.adjustment(1, 2) < n.adjustment(0, 3));
    /// ```
    pub fn new(records: &[RecordEvidence], near: &[(u32, u32)]) -> NameNeighbourhoods {
        let (dobs, _) = value_ids(records, |r| &r.dob);
        // Each record's neighbours, both ways (compressed rows).
        let n = records.len();
        let mut start = vec![0usize; n + 1];
        for &(a, b) in near {
            start[a as usize + 1] += 1;
            start[b as usize + 1] += 1;
        }
        for i in 0..n {
            start[i + 1] += start[i];
        }
        let mut next = start.clone();
        let mut adjacent = vec![0u32; start[n]];
        for &(a, b) in near {
            adjacent[next[a as usize]] = b;
            next[a as usize] += 1;
            adjacent[next[b as usize]] = a;
            next[b as usize] += 1;
        }
        // Distinct birth dates of the record and its neighbours.
        let mut holders: Vec<u32> = (0..n)
            .into_par_iter()
            .map_init(Vec::new, |dates: &mut Vec<u32>, r| {
                dates.clear();
                dates.extend_from_slice(dobs.of(r));
                for &b in &adjacent[start[r]..start[r + 1]] {
                    dates.extend_from_slice(dobs.of(b as usize));
                }
                dates.sort_unstable();
                dates.dedup();
                dates.len() as u32
            })
            .collect();
        let (mut others, mut named) = (0.0, 0.0);
        for (h, r) in holders.iter_mut().zip(records) {
            *h = (*h).max(1);
            if !r.names.is_empty() {
                others += *h as f64 - 1.0;
                named += 1.0;
            }
        }
        NameNeighbourhoods {
            holders,
            kappa: if named > 0.0 { others / named } else { 0.0 },
        }
    }

    /// `κ`: the mean estimated persons beyond the record's own in a names neighbourhood.
    pub fn kappa(&self) -> f64 {
        self.kappa
    }

    /// Record `r`'s neighbourhood: its estimated persons, itself included.
    pub fn holders(&self, r: usize) -> u32 {
        self.holders[r]
    }

    /// Bits added to the weight of records `a` and `b` whose names agree roughly (a level of
    /// [`CROWDED_LEVELS`]): by the more crowded of their two neighbourhoods.
    pub fn adjustment(&self, a: usize, b: usize) -> f64 {
        let h = self.holders[a].max(self.holders[b]);
        adjustment(self.kappa, h, ALPHA, MAX_ADJUSTMENT)
    }

    /// [`NameNeighbourhoods::adjustment`] for a pair at names level `level`
    /// (`evidence::level_label`), never above 0 below [`LOWEST_IN_REACH`] (at 0.6–0.75). A
    /// neighbourhood holds the records at 0.75 or more: a crowded one says the names are
    /// common, which holds for a rougher agreement too, but an empty one says nothing of how
    /// many strangers come within 0.6–0.75, and its full boost (`log2(κ/α)`, 8.4 bits at the
    /// hard 28,000-person world's κ of 34) linked strangers of one birth date whose diffused
    /// names parts estimated at 0.6 or more (docs/measurements/2026-12-08-event-gap-levels.md).
    ///
    /// ```
    /// use crosswalk::link::evidence::RecordEvidence;
    /// use crosswalk::link::frequency::NameNeighbourhoods;
    ///
    /// let date = |d: u8| vec![d; 4];
    /// let rec = |names: u8, dob: u8| RecordEvidence {
    ///     names: vec![vec![names; 4]],
    ///     dob: vec![date(dob)],
    ///     ..Default::default()
    /// };
    /// // Records 0-2 are three persons with lookalike names; 3 and 4 nobody resembles.
    /// let records = vec![rec(1, 1), rec(2, 2), rec(3, 3), rec(9, 4), rec(8, 5)];
    /// let n = NameNeighbourhoods::new(&records, &[(0, 1), (0, 2), (1, 2)]);
    /// assert!(n.adjustment(3, 4) > 0.0);
    /// assert_eq!(n.adjustment_at(3, 4, 2), 0.0); // 0.6–0.75: no boost
    /// assert_eq!(n.adjustment_at(3, 4, 3), n.adjustment(3, 4));
    /// assert!(n.adjustment_at(0, 3, 2) < 0.0); // a crowded neighbourhood still takes
    /// ```
    pub fn adjustment_at(&self, a: usize, b: usize, level: u8) -> f64 {
        let bits = self.adjustment(a, b);
        if level < LOWEST_IN_REACH {
            bits.min(0.0)
        } else {
            bits
        }
    }
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
    /// rare ones gain.
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
        let f = NameFrequencies::new(&records);
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
        // Sharing no value, the commoner of the two rarest values counts (name 1's four).
        assert_eq!(f.adjustment(0, 4), f.adjustment_for(4));
    }

    /// Holders are distinct birth-date parts, never grouped by similarity: a date one bit apart
    /// (a typo, or another person's birthday in another year) counts as another holder, and a
    /// record without a birth date adds none.
    #[test]
    fn every_distinct_date_is_a_holder() {
        let mut near = date(5);
        near[0] ^= 0b1000_0000;
        let mut records = vec![
            record(&[1], Some(5)),
            record(&[1], Some(6)),
            record(&[1], None),
        ];
        records[1].dob = vec![near];
        assert_eq!(NameFrequencies::new(&records).shared_holders(0, 1), Some(2));
        let records = vec![
            record(&[1], Some(5)),
            record(&[1], Some(5)),
            record(&[1], None),
        ];
        assert_eq!(NameFrequencies::new(&records).shared_holders(0, 2), Some(1));
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
        let f = NameFrequencies::new(&records);
        assert_eq!(f.rarest(0), Some(3));
        assert_eq!(f.rarest(3), Some(1));
        assert_eq!(f.rarest(6), None);
        assert_eq!(f.near_adjustment(0, 3), f.adjustment_for(3));
        assert_eq!(f.near_adjustment(4, 5), f.adjustment_for(1));
        assert!(f.near_adjustment(0, 3) < f.near_adjustment(4, 5));
        assert_eq!(f.near_adjustment(0, 6), 0.0);
        // Top-level agreement without a shared value (different values estimated ≥ 0.95)
        // falls back to the near adjustment, so it never outweighs the exact name.
        assert_eq!(f.adjustment(0, 3), f.near_adjustment(0, 3));
        assert!(f.adjustment(0, 3) <= f.adjustment(4, 5));
    }

    /// A neighbourhood counts persons, not records: a person's own records (one birth date)
    /// do not crowd it, a birth-date typo counts as a second person (the safe direction, as for
    /// values), records without a birth date add nobody; and a rough agreement in a crowded
    /// neighbourhood weighs less than one in an empty neighbourhood.
    #[test]
    fn neighbourhoods_count_persons_near_a_record() {
        let records = vec![
            record(&[1], Some(10)), // 0: a person with three records near each other
            record(&[2], Some(10)), // 1
            record(&[3], Some(10)), // 2
            record(&[4], None),     // 3: near 0, no birth date
            record(&[5], Some(20)), // 4: a crowd: near 5, 6, 7, four persons
            record(&[6], Some(21)), // 5
            record(&[7], Some(22)), // 6
            record(&[8], Some(23)), // 7
            record(&[9], Some(24)), // 8: near 4 only
            record(&[], Some(30)),  // 9: no names part
        ];
        // Pairs in either order.
        let near = [
            (0, 1),
            (0, 2),
            (2, 1),
            (0, 3),
            (4, 5),
            (6, 4),
            (4, 7),
            (8, 4),
        ];
        let n = NameNeighbourhoods::new(&records, &near);
        let holders: Vec<u32> = (0..records.len()).map(|r| n.holders(r)).collect();
        assert_eq!(holders, [1, 1, 1, 1, 5, 2, 2, 2, 2, 1]);
        // κ: the mean of h − 1 over the nine records with a names part.
        assert!((n.kappa() - 8.0 / 9.0).abs() < 1e-12);
        assert!(n.adjustment(0, 3) > 0.0);
        assert!(n.adjustment(4, 5) < 0.0);
        // The more crowded of the two neighbourhoods counts.
        assert_eq!(n.adjustment(5, 4), n.adjustment(4, 8));
        assert_eq!(
            n.adjustment(0, 1),
            adjustment(8.0 / 9.0, 1, ALPHA, MAX_ADJUSTMENT)
        );
        // A birth-date typo within the person's records counts as a second holder.
        let mut typo = records.clone();
        typo[2].dob = vec![date(11)];
        assert_eq!(NameNeighbourhoods::new(&typo, &near).holders(0), 2);
    }

    /// With every name held by one person there is nothing to calibrate on: no adjustment.
    #[test]
    fn no_adjustment_without_a_shared_name() {
        let records = vec![record(&[1], Some(1)), record(&[2], Some(2))];
        let f = NameFrequencies::new(&records);
        assert_eq!(f.kappa(), 0.0);
        assert_eq!(f.adjustment_for(1), 0.0);
    }
}

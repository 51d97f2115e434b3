//! The linkage core: what the one-off linkage job ([`crate::pipeline::link`]) and the monthly
//! registry ([`crate::registry`]) share. Candidate pairs ([`candidates`]), the evidence two
//! records give each other ([`score`]), and the rules that turn scored pairs into persons
//! beyond clustering ([`assign`]: lone records, one-to-one matching). Issue #18 grows the
//! evidence model here: [`evidence`] turns two records' parts and facts into comparison levels,
//! [`model`] is the Fellegi-Sunter core fitted on them, and [`probabilistic`] makes persons from
//! its match probabilities (`crosswalk link --model fs`).

pub mod assign;
pub mod candidates;
pub mod evidence;
pub mod frequency;
pub mod model;
pub mod probabilistic;
pub mod score;

pub use assign::{attach_orphans, one_to_one, Rows};
pub use score::{record_score, record_scorer};

/// Per record, an ascending list of ids (the groups it is in, [`candidates::ValueGroups`]; the
/// names values it holds, [`frequency::NameFrequencies`]), all in one allocation: record `r`'s
/// list is `ids[start[r]..start[r + 1]]`.
#[derive(Debug, Clone)]
pub(crate) struct IdLists {
    start: Vec<u32>,
    ids: Vec<u32>,
}

impl Default for IdLists {
    fn default() -> Self {
        IdLists {
            start: vec![0],
            ids: Vec::new(),
        }
    }
}

impl IdLists {
    /// Appends the next record's list (sorted here).
    pub(crate) fn push(&mut self, ids: impl IntoIterator<Item = u32>) {
        let first = self.ids.len();
        self.ids.extend(ids);
        self.ids[first..].sort_unstable();
        self.start.push(self.ids.len() as u32);
    }

    /// Record `r`'s list.
    pub(crate) fn of(&self, r: usize) -> &[u32] {
        &self.ids[self.start[r] as usize..self.start[r + 1] as usize]
    }

    /// The ids records `a` and `b` share, ascending (a merge of the two lists).
    pub(crate) fn shared(&self, a: usize, b: usize) -> impl Iterator<Item = u32> + '_ {
        let (x, y) = (self.of(a), self.of(b));
        let (mut i, mut j) = (0, 0);
        std::iter::from_fn(move || {
            while i < x.len() && j < y.len() {
                match x[i].cmp(&y[j]) {
                    std::cmp::Ordering::Less => i += 1,
                    std::cmp::Ordering::Greater => j += 1,
                    std::cmp::Ordering::Equal => {
                        let v = x[i];
                        i += 1;
                        j += 1;
                        return Some(v);
                    }
                }
            }
            None
        })
    }
}

/// Default Dice threshold (docs/linkage.md explains the choice).
pub const DEFAULT_THRESHOLD: f64 = 0.8;
/// Default cohesion for merging clusters ([`crate::cluster`]).
pub const DEFAULT_COHESION: f64 = 0.5;
/// Default containment: a pair below the threshold whose smaller CLK has at least this share of
/// its bits in the other (overlap coefficient) still counts in cluster averages.
pub const DEFAULT_CONTAINMENT: f64 = 0.85;
/// Default overlap a lone record needs to join a cluster ([`attach_orphans`]).
pub const DEFAULT_ORPHAN_OVERLAP: f64 = 0.75;
/// Default margin by which a lone record's best cluster must beat the second best.
pub const DEFAULT_ORPHAN_MARGIN: f64 = 0.1;
/// `--model fs`'s default record-CLK Dice at which a pair becomes a candidate. The model's
/// other candidates (equal birth-date, names, phone, address and SSN-4 parts, and up to
/// 250,000 records every pair of similar names) find the rest: at a million records 0.7 gives
/// the F1 of 0.6 (0.9585 against 0.9584) in half the time (51 s against 104 s), and from 2,000
/// to 28,000 persons F1 moves by at most 0.02 points (docs/measurements/2026-12-07-em-sessions.md).
pub const FS_THRESHOLD: f64 = 0.7;

/// Whether encodings carrying `parts` give the match model what it learns from: names and
/// birth-date parts (its two training sessions). `--model auto` (and the demo) take the model
/// for such encodings, the record-level rules otherwise.
///
/// ```
/// use crosswalk::schema::Part;
///
/// assert!(crosswalk::link::model_learns_from(&[Part::Names, Part::Dob, Part::Phone]));
/// assert!(!crosswalk::link::model_learns_from(&[Part::Names]));
/// ```
pub fn model_learns_from(parts: &[crate::schema::Part]) -> bool {
    use crate::schema::Part;
    parts.contains(&Part::Names) && parts.contains(&Part::Dob)
}

/// Pairs below this Dice never count as evidence (containment, lone records).
pub const MIN_DICE: f64 = 0.6;

/// Above this many CLKs, `Blocking::Auto` switches from comparing all pairs to LSH.
pub const AUTO_LSH_ROWS: usize = 50_000;

//! Stable person ids: which re-clustered person inherits which old id.
//!
//! The rule (docs/registry.md):
//! 1. Each old person's *heir* is the new cluster holding most of its records (ties: the cluster
//!    with the smallest record).
//! 2. A cluster that is the heir of one or more old persons keeps the **oldest** of their ids
//!    (the smallest number); the others are retired as *merged* into it.
//! 3. Records of an old person that end up in a cluster other than its heir have been *split*
//!    off: that cluster keeps its own inherited id, or gets a new one.
//! 4. A cluster that inherits nothing gets the next unused number; numbers are never reused.
//! 5. An old person with no record left (its batches were withdrawn) is *retired*.

use std::collections::{BTreeMap, BTreeSet};

/// What happened to an id, for the changelog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Change {
    /// `person` was merged into `other`, which survives.
    Merge,
    /// `records` records of `person` moved to `other` (an existing or a new id).
    Split,
    /// `person` has no records left.
    Retire,
}

impl Change {
    /// Lower-case name, as written in `changelog.parquet`.
    pub fn name(self) -> &'static str {
        match self {
            Change::Merge => "merge",
            Change::Split => "split",
            Change::Retire => "retire",
        }
    }
}

/// One changelog entry (person numbers, not yet formatted as ids).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Entry {
    /// What happened.
    pub change: Change,
    /// The old person it happened to.
    pub person: u32,
    /// The surviving or receiving person (none for a retirement).
    pub other: Option<u32>,
    /// Records involved (of `person`).
    pub records: u64,
}

/// The outcome of [`assign`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Assignment {
    /// Person number of each cluster.
    pub ids: Vec<u32>,
    /// Changelog entries, sorted.
    pub entries: Vec<Entry>,
    /// Numbers first issued here.
    pub new_persons: u64,
    /// Of which issued to a part split off an old person.
    pub split_new: u64,
}

/// Gives each cluster a person number. `old[c]` lists the old person number of each old
/// record of cluster `c` (clusters in order of their smallest record); `affected` are the old
/// persons whose records were re-clustered (including any with no record left); `next` is the
/// next unused number and is advanced.
pub fn assign(old: &[Vec<u32>], affected: &BTreeSet<u32>, next: &mut u32) -> Assignment {
    // counts[p] = [(cluster, records)]
    let mut counts: BTreeMap<u32, BTreeMap<usize, u64>> = BTreeMap::new();
    for (c, persons) in old.iter().enumerate() {
        for &p in persons {
            *counts.entry(p).or_default().entry(c).or_default() += 1;
        }
    }
    let mut heir: BTreeMap<u32, usize> = BTreeMap::new();
    for (&p, per) in &counts {
        let best = per
            .iter()
            .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
            .map(|(&c, _)| c);
        if let Some(c) = best {
            heir.insert(p, c);
        }
    }
    let mut ids: Vec<Option<u32>> = vec![None; old.len()];
    for (&p, &c) in &heir {
        // BTreeMap order: the smallest (oldest) number comes first and wins.
        ids[c].get_or_insert(p);
    }
    let mut out = Assignment::default();
    let ids: Vec<u32> = ids
        .into_iter()
        .enumerate()
        .map(|(c, id)| {
            id.unwrap_or_else(|| {
                let n = *next;
                *next += 1;
                out.new_persons += 1;
                if !old[c].is_empty() {
                    out.split_new += 1;
                }
                n
            })
        })
        .collect();
    for (&p, per) in &counts {
        for (&c, &records) in per {
            if ids[c] == p {
                continue;
            }
            let change = if heir[&p] == c {
                Change::Merge
            } else {
                Change::Split
            };
            out.entries.push(Entry {
                change,
                person: p,
                other: Some(ids[c]),
                records,
            });
        }
    }
    for &p in affected {
        if !counts.contains_key(&p) {
            out.entries.push(Entry {
                change: Change::Retire,
                person: p,
                other: None,
                records: 0,
            });
        }
    }
    out.entries.sort();
    out.ids = ids;
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oldest_id_survives_a_merge_and_a_split_gets_a_new_id() {
        // Cluster 0 holds 2 records of person 5 and 3 of person 9: a merge, 5 survives.
        // Cluster 1 holds 1 record of person 9 (split off) and a new record.
        // Cluster 2 is all new. Person 12 lost all its records.
        let old = vec![vec![5, 5, 9, 9, 9], vec![9], vec![]];
        let affected: BTreeSet<u32> = [5, 9, 12].into();
        let mut next = 20;
        let a = assign(&old, &affected, &mut next);
        assert_eq!(a.ids, vec![5, 20, 21]);
        assert_eq!(next, 22);
        assert_eq!(a.new_persons, 2);
        assert_eq!(a.split_new, 1);
        assert_eq!(
            a.entries,
            vec![
                Entry {
                    change: Change::Merge,
                    person: 9,
                    other: Some(5),
                    records: 3
                },
                Entry {
                    change: Change::Split,
                    person: 9,
                    other: Some(20),
                    records: 1
                },
                Entry {
                    change: Change::Retire,
                    person: 12,
                    other: None,
                    records: 0
                },
            ]
        );
    }

    #[test]
    fn untouched_persons_keep_their_ids() {
        let old = vec![vec![3, 3], vec![4]];
        let mut next = 10;
        let a = assign(&old, &[3, 4].into(), &mut next);
        assert_eq!(a.ids, vec![3, 4]);
        assert!(a.entries.is_empty());
        assert_eq!(next, 10);
    }

    #[test]
    fn the_larger_part_of_a_split_keeps_the_id() {
        let old = vec![vec![7], vec![7, 7]];
        let mut next = 8;
        let a = assign(&old, &[7].into(), &mut next);
        assert_eq!(a.ids, vec![8, 7]);
        assert_eq!(a.entries.len(), 1);
        assert_eq!(a.entries[0].change, Change::Split);
    }
}

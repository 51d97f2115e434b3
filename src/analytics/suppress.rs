//! Small-cell suppression with complementary suppression.
//!
//! **Primary**: every count from 1 to `min_cell - 1` is suppressed (zeros are published: a
//! zero discloses nothing about a person).
//!
//! **Complementary**: the tables are full of sums. A breakdown's groups add up to the `all`
//! row (minors + adults + unknown = all; the months add up to all), and in partition tables
//! (entry points, demographics, agency combinations) the categories of a group add up to the
//! group's `unique_persons`. Each such sum is an *equation* `parts = total`. An equation with a
//! single suppressed element gives it away by subtraction; one whose suppressed parts add up to
//! less than `min_cell` pins each of them to a small range. So, until no equation has either
//! problem, the smallest non-zero published element of each offending equation is suppressed
//! too (a part before the total; ties by position, so the result is deterministic). Besides the
//! sums within a table, two identities across tables are equations too: an agency's persons
//! (`persons_per_agency`) are the sum of the `agency_combinations` that include it, and the
//! minors, adults and unknown of `unique_persons` are sums of `demographics` age bands. Every
//! suppressed count's statistics (shares, days) are suppressed with it, and a share is also
//! withheld when its group's total is (count ÷ share would give the total away).
//!
//! What this does not defend against: linear-programming attacks that combine many equations
//! at once can narrow a suppressed cell to an interval (never below 1 or above the smallest
//! total it is part of); inequalities between tables (drop-off ≤ funnel) and identities other
//! than the ones above are not modelled.
//! docs/aggregates.md says so.
//!
//! ```
//! use crosswalk::analytics::{compute, suppress::suppress, Breakdown, Event, EventLog, Settings};
//!
//! let mut log = EventLog::default();
//! let police = log.agency("police", "law_enforcement");
//! for person in 0..30 {
//!     log.events.push(Event { person, agency: police, stage: Some(0), age_band: (person % 3) as u8, ..Event::default() });
//! }
//! let mut tables = compute(&log, &Settings::default());
//! suppress(&mut tables, 11);
//! let unique = &tables[0];
//! // 30 persons: 20 minors (bands 0 and 1), 10 adults.
//! let adults = unique.cells.iter().find(|c| c.group == "adult").unwrap();
//! assert!(adults.suppressed && adults.count.is_none());
//! // Minors (20) would give the adults away as 30 - 20: suppressed as well.
//! let minors = unique.cells.iter().find(|c| c.group == "minor").unwrap();
//! assert!(minors.suppressed);
//! assert_eq!(unique.all(&[]), Some(30));
//! ```

use std::collections::HashMap;

use super::{Additivity, Breakdown, Table};

/// An element: (table, cell).
type Elem = (usize, usize);

struct Equation {
    parts: Vec<Elem>,
    total: Elem,
}

fn equations(tables: &[Table]) -> Vec<Equation> {
    let mut eqs = Vec::new();
    let unique = tables.iter().position(|t| t.name == "unique_persons");
    for (ti, t) in tables.iter().enumerate() {
        // Across groups: the all row = the sum of each breakdown's groups.
        let mut all: HashMap<&[String], usize> = HashMap::new();
        let mut parts: HashMap<(Breakdown, &[String]), Vec<Elem>> = HashMap::new();
        for (ci, c) in t.cells.iter().enumerate() {
            if c.breakdown == Breakdown::All {
                all.insert(&c.dims, ci);
            } else {
                parts
                    .entry((c.breakdown, &c.dims))
                    .or_default()
                    .push((ti, ci));
            }
        }
        let mut keys: Vec<_> = parts.keys().copied().collect();
        keys.sort();
        for k in keys {
            if let Some(&total) = all.get(k.1) {
                eqs.push(Equation {
                    parts: parts[&k].clone(),
                    total: (ti, total),
                });
            }
        }
        // Within a group: a partition's categories = the group's unique persons.
        if let (Additivity::Partition(n), Some(u)) = (t.additivity, unique) {
            let mut group_total: HashMap<(Breakdown, &str), usize> = HashMap::new();
            for (ci, c) in tables[u].cells.iter().enumerate() {
                group_total.insert((c.breakdown, &c.group), ci);
            }
            let mut cells: HashMap<(Breakdown, &str, &[String]), Vec<Elem>> = HashMap::new();
            for (ci, c) in t.cells.iter().enumerate() {
                cells
                    .entry((c.breakdown, &c.group, &c.dims[..n.min(c.dims.len())]))
                    .or_default()
                    .push((ti, ci));
            }
            let mut keys: Vec<_> = cells.keys().copied().collect();
            keys.sort();
            for k in keys {
                if let Some(&total) = group_total.get(&(k.0, k.1)) {
                    eqs.push(Equation {
                        parts: cells[&k].clone(),
                        total: (u, total),
                    });
                }
            }
        }
    }
    // Across tables: an agency's persons are the persons of every combination that includes
    // it, and the minors (adults, unknown) are the persons whose age band at first contact is
    // under 18 (18 or over, unknown).
    let find = |name: &str| tables.iter().position(|t| t.name == name);
    if let (Some(pa), Some(ac)) = (find("persons_per_agency"), find("agency_combinations")) {
        for (ci, c) in tables[pa].cells.iter().enumerate() {
            let parts: Vec<Elem> = tables[ac]
                .cells
                .iter()
                .enumerate()
                .filter(|(_, x)| {
                    x.breakdown == c.breakdown
                        && x.group == c.group
                        && x.dims[0].split('+').any(|a| a == c.dims[0])
                })
                .map(|(xi, _)| (ac, xi))
                .collect();
            eqs.push(Equation {
                parts,
                total: (pa, ci),
            });
        }
    }
    if let (Some(up), Some(dem)) = (unique, find("demographics")) {
        for (group, bands) in [
            ("minor", &["<13", "13-17", "<18"][..]),
            ("adult", &["18-23", "24-29", "30+", "18+"][..]),
            ("unknown", &["unknown"][..]),
        ] {
            let total = tables[up]
                .cells
                .iter()
                .position(|c| c.breakdown == Breakdown::MinorAdult && c.group == group);
            let parts: Vec<Elem> = tables[dem]
                .cells
                .iter()
                .enumerate()
                .filter(|(_, x)| {
                    x.breakdown == Breakdown::All
                        && x.dims[0] == "age_band"
                        && bands.contains(&x.dims[1].as_str())
                })
                .map(|(xi, _)| (dem, xi))
                .collect();
            if let Some(total) = total {
                eqs.push(Equation {
                    parts,
                    total: (up, total),
                });
            }
        }
    }
    eqs
}

/// Suppresses every table in place with minimum cell size `min_cell` (counts from 1 to
/// `min_cell - 1` are withheld), then complementary cells until no suppressed count can be
/// recovered from one equation. `min_cell` of 0 or 1 suppresses nothing.
pub fn suppress(tables: &mut [Table], min_cell: u64) {
    let value = |tables: &[Table], (t, c): Elem| tables[t].cells[c].count.unwrap_or(0);
    let mut hidden: Vec<Vec<bool>> = tables
        .iter()
        .map(|t| {
            t.cells
                .iter()
                .map(|c| c.count.is_some_and(|n| n >= 1 && n < min_cell))
                .collect()
        })
        .collect();
    let eqs = equations(tables);
    loop {
        let mut changed = false;
        for eq in &eqs {
            let is_hidden = |h: &Vec<Vec<bool>>, (t, c): Elem| h[t][c];
            let all: Vec<Elem> = eq.parts.iter().copied().chain([eq.total]).collect();
            let n_hidden = all.iter().filter(|&&e| is_hidden(&hidden, e)).count();
            if n_hidden == 0 {
                continue;
            }
            let hidden_parts: u64 = eq
                .parts
                .iter()
                .filter(|&&e| is_hidden(&hidden, e))
                .map(|&e| value(tables, e))
                .sum();
            let weak = n_hidden == 1 || (!is_hidden(&hidden, eq.total) && hidden_parts < min_cell);
            if !weak {
                continue;
            }
            let pick = eq
                .parts
                .iter()
                .copied()
                .filter(|&e| !is_hidden(&hidden, e) && value(tables, e) > 0)
                .min_by_key(|&e| (value(tables, e), e))
                .or_else(|| {
                    (!is_hidden(&hidden, eq.total) && value(tables, eq.total) > 0)
                        .then_some(eq.total)
                });
            if let Some((t, c)) = pick {
                hidden[t][c] = true;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    // A share is count / the group's unique persons: published only when both are, or it
    // would give a suppressed total away (count ÷ share).
    let hidden_total: HashMap<(Breakdown, String), bool> = tables
        .iter()
        .position(|t| t.name == "unique_persons")
        .map(|u| {
            tables[u]
                .cells
                .iter()
                .zip(&hidden[u])
                .map(|(c, &h)| ((c.breakdown, c.group.clone()), h))
                .collect()
        })
        .unwrap_or_default();
    for (t, h) in tables.iter_mut().zip(hidden) {
        let share = t.values.iter().position(|v| *v == "share");
        for (c, hide) in t.cells.iter_mut().zip(h) {
            if hide {
                // Statistics (a median over 3 persons, a share) go with their count.
                c.count = None;
                c.suppressed = true;
                for v in &mut c.values {
                    *v = None;
                }
            } else if let Some(i) = share {
                if hidden_total
                    .get(&(c.breakdown, c.group.clone()))
                    .copied()
                    .unwrap_or(true)
                {
                    c.values[i] = None;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{compute, Event, EventLog, Settings};
    use super::*;

    fn world(n: u32) -> EventLog {
        let mut log = EventLog::default();
        let a = log.agency("police", "law_enforcement");
        let b = log.agency("dcf", "child_welfare");
        for p in 0..n {
            let month = 1 + p % 7;
            let start = chrono::NaiveDate::from_ymd_opt(2024, month, 1 + p % 27);
            log.events.push(Event {
                person: p,
                agency: if p % 5 == 0 { b } else { a },
                stage: Some((p % 6) as u8),
                service: (p % 4 == 0).then_some((p % 7) as u8),
                start,
                end: None,
                age_band: (p % 6) as u8,
                sex: (p % 13 == 0) as u8,
                trafficking: (p % 4) as u8,
            });
        }
        log
    }

    /// No equation may have exactly one suppressed element, and published parts never leave
    /// a hidden remainder below `k`.
    fn check(tables: &[Table], k: u64) {
        let eqs = equations(tables);
        for eq in &eqs {
            let all: Vec<Elem> = eq.parts.iter().copied().chain([eq.total]).collect();
            let hidden: Vec<Elem> = all
                .iter()
                .copied()
                .filter(|&(t, c)| tables[t].cells[c].suppressed)
                .collect();
            assert_ne!(
                hidden.len(),
                1,
                "a lone suppressed cell in {}",
                tables[hidden[0].0].name
            );
            let total = &tables[eq.total.0].cells[eq.total.1];
            if let Some(total) = total.count {
                let published: u64 = eq
                    .parts
                    .iter()
                    .filter_map(|&(t, c)| tables[t].cells[c].count)
                    .sum();
                let rest = total - published;
                assert!(rest == 0 || rest >= k, "a recoverable remainder {rest}");
            }
        }
        let unique = tables.iter().find(|t| t.name == "unique_persons").unwrap();
        for t in tables {
            let share = t.values.iter().position(|v| *v == "share");
            for c in &t.cells {
                if let Some(i) = share {
                    if c.values[i].is_some() {
                        let total = unique
                            .cells
                            .iter()
                            .find(|u| u.breakdown == c.breakdown && u.group == c.group)
                            .unwrap();
                        assert!(total.count.is_some(), "a share reveals a suppressed total");
                    }
                }
                assert_eq!(c.suppressed, c.count.is_none());
                if let Some(n) = c.count {
                    assert!(n == 0 || n >= k, "{} published {n}", t.name);
                }
                if c.suppressed {
                    assert!(c.values.iter().all(Option::is_none));
                }
            }
        }
    }

    #[test]
    fn suppression_leaves_nothing_recoverable() {
        for n in [5, 40, 200, 1000] {
            let mut t = compute(&world(n), &Settings::default());
            suppress(&mut t, 11);
            check(&t, 11);
        }
    }

    /// 30 persons at alpha only, 5 at both, 30 at beta only: publishing beta (35) and beta
    /// alone (30) would give "both" (5) away.
    #[test]
    fn combinations_are_protected_against_agency_totals() {
        let mut log = EventLog::default();
        let a = log.agency("alpha", "other");
        let b = log.agency("beta", "other");
        let ev = |person, agency| Event {
            person,
            agency,
            stage: Some(0),
            age_band: 2,
            ..Event::default()
        };
        for p in 0..30 {
            log.events.push(ev(p, a));
            log.events.push(ev(100 + p, b));
        }
        for p in 200..205 {
            log.events.push(ev(p, a));
            log.events.push(ev(p, b));
        }
        let mut t = compute(&log, &Settings::default());
        suppress(&mut t, 11);
        check(&t, 11);
        let per_agency = t.iter().find(|t| t.name == "persons_per_agency").unwrap();
        let combos = t.iter().find(|t| t.name == "agency_combinations").unwrap();
        let beta = per_agency.all(&["beta", "other"]);
        let beta_only = combos.all(&["beta"]);
        let both = combos.all(&["alpha+beta"]);
        assert_eq!(both, None);
        if let (Some(x), Some(y)) = (beta, beta_only) {
            panic!("beta {x} and beta alone {y} are both published");
        }
    }

    #[test]
    fn min_cell_one_suppresses_nothing() {
        let mut t = compute(&world(50), &Settings::default());
        let before = t.clone();
        suppress(&mut t, 1);
        assert_eq!(t, before);
    }
}

//! What the taskforce and researchers see: aggregate tables computed over a linkage run's
//! events, with small-cell suppression ([`suppress`]).
//!
//! The input is an [`EventLog`]: every encoded event (one row of an agency's encodings file)
//! with the pseudonymous person the linkage job gave its record. [`compute`] turns it into the
//! tables of docs/aggregates.md, each a list of [`Cell`]s in tidy long format: one row per
//! breakdown group (all persons; minors / adults; month of first contact) and category.
//!
//! Definitions (docs/aggregates.md has them with every column):
//! - the cutoff is `as_of` (default: the latest event date); events dated after it are ignored;
//!   undated events count wherever no date is needed;
//! - a person's events are ordered by date (undated last), then agency name, then input order;
//!   their *first contact* is the first dated event, and the demographics at first contact are
//!   taken from the first event that records each attribute;
//! - *minor* means an age band below 18 at first contact.
//!
//! # Example
//!
//! ```
//! use chrono::NaiveDate;
//! use crosswalk::analytics::{compute, Event, EventLog, Settings};
//!
//! let d = |m, day| NaiveDate::from_ymd_opt(2024, m, day);
//! let mut log = EventLog::default();
//! let police = log.agency("police", "law_enforcement");
//! let housing = log.agency("housing", "service_provider");
//! log.events.push(Event { person: 1, agency: police, stage: Some(0), start: d(1, 5), ..Event::default() });
//! log.events.push(Event { person: 1, agency: housing, stage: Some(3), service: Some(0), start: d(1, 20), ..Event::default() });
//! log.events.push(Event { person: 2, agency: police, stage: Some(0), start: d(2, 1), ..Event::default() });
//! let tables = compute(&log, &Settings::default());
//! let t = tables.iter().find(|t| t.name == "time_to_first_service").unwrap();
//! assert_eq!(t.cells[0].count, Some(1));
//! assert_eq!(t.cells[0].values[2], Some(15.0)); // median days
//! ```

pub mod suppress;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{Datelike, NaiveDate, TimeDelta};

pub use crate::vocab::{
    AGENCY_TYPES, AGE_BANDS, AGE_BAND_UNKNOWN, SERVICE_TYPES, SEXES, STAGES, TRAFFICKING_TYPES,
};

/// The index of `label` in `list`, if any.
pub fn index_of(list: &[&str], label: &str) -> Option<u8> {
    list.iter().position(|l| *l == label).map(|i| i as u8)
}

/// One agency of the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agency {
    /// Agency name.
    pub name: String,
    /// Agency type label (one of [`AGENCY_TYPES`], else treated as `other`).
    pub agency_type: String,
}

/// One event: a row of an agency's encodings file, with its person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Event {
    /// Person (any number; equal numbers are one person).
    pub person: u32,
    /// Index into [`EventLog::agencies`].
    pub agency: u32,
    /// Index into [`STAGES`]; `None` for administrative events.
    pub stage: Option<u8>,
    /// Index into [`SERVICE_TYPES`].
    pub service: Option<u8>,
    /// Event or service start date.
    pub start: Option<NaiveDate>,
    /// Service end date.
    pub end: Option<NaiveDate>,
    /// Index into [`AGE_BANDS`] (0 is `<13`; use [`AGE_BAND_UNKNOWN`] for unknown).
    pub age_band: u8,
    /// Index into [`SEXES`].
    pub sex: u8,
    /// Index into [`TRAFFICKING_TYPES`].
    pub trafficking: u8,
}

/// Every event of a run and the agencies they come from.
#[derive(Debug, Clone, Default)]
pub struct EventLog {
    /// Agencies, referenced by [`Event::agency`].
    pub agencies: Vec<Agency>,
    /// Events, in input order.
    pub events: Vec<Event>,
}

impl EventLog {
    /// The index of agency `name`, added with `agency_type` when new.
    pub fn agency(&mut self, name: &str, agency_type: &str) -> u32 {
        if let Some(i) = self.agencies.iter().position(|a| a.name == name) {
            return i as u32;
        }
        self.agencies.push(Agency {
            name: name.to_string(),
            agency_type: agency_type.to_string(),
        });
        (self.agencies.len() - 1) as u32
    }

    /// The latest event date, if any event is dated.
    pub fn latest_date(&self) -> Option<NaiveDate> {
        self.events.iter().filter_map(|e| e.start).max()
    }
}

/// Analysis settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Cutoff date; `None` means the latest event date.
    pub as_of: Option<NaiveDate>,
    /// Drop-off: days without any event before the cutoff.
    pub window_days: u32,
    /// Duplicate services: days a service without end date is taken to last.
    pub open_service_days: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            as_of: None,
            window_days: 90,
            open_service_days: 30,
        }
    }
}

/// The three breakdowns every table is given in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Breakdown {
    /// Every person (`group` = `all`).
    All,
    /// By age at first contact (`group` = `minor`, `adult`, `unknown`).
    MinorAdult,
    /// By month of first contact (`group` = `YYYY-MM` or `unknown`).
    FirstContactMonth,
    /// By registry run (`group` = the run's label; only the `registry_months` table).
    RegistryRun,
}

impl Breakdown {
    /// The label written to the `breakdown` column.
    pub fn label(self) -> &'static str {
        match self {
            Breakdown::All => "all",
            Breakdown::MinorAdult => "minor_adult",
            Breakdown::FirstContactMonth => "first_contact_month",
            Breakdown::RegistryRun => "registry_run",
        }
    }
}

/// One row of an aggregate table.
#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    /// Breakdown.
    pub breakdown: Breakdown,
    /// Group within the breakdown.
    pub group: String,
    /// The table's dimension values, in the order of [`Table::dims`].
    pub dims: Vec<String>,
    /// The count; `None` once suppressed.
    pub count: Option<u64>,
    /// The table's statistics, in the order of [`Table::values`]; `None` when suppressed or
    /// undefined.
    pub values: Vec<Option<f64>>,
    /// Whether the count (and its statistics) was suppressed.
    pub suppressed: bool,
}

/// How a table's counts add up, for complementary suppression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Additivity {
    /// Counts add up across breakdown groups only (persons may be in several categories).
    Groups,
    /// Also, within each group, the categories sharing the first `n` dimension values partition
    /// the group's persons: they sum to the group's `unique_persons`.
    Partition(usize),
}

/// One aggregate table.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// File name stem, e.g. `funnel`.
    pub name: &'static str,
    /// Dimension column names.
    pub dims: Vec<&'static str>,
    /// Name of the count column (`persons` in most tables).
    pub count_name: &'static str,
    /// Names of the statistic columns.
    pub values: Vec<&'static str>,
    /// How counts add up.
    pub additivity: Additivity,
    /// Rows: breakdowns in order, groups sorted, categories in their natural order.
    pub cells: Vec<Cell>,
}

impl Table {
    /// The unsuppressed-or-published count of the `all` row with these dimension values.
    pub fn all(&self, dims: &[&str]) -> Option<u64> {
        self.cells
            .iter()
            .find(|c| c.breakdown == Breakdown::All && c.dims.iter().eq(dims.iter()))
            .and_then(|c| c.count)
    }
}

type Group = (Breakdown, String);

/// Builds one table: counts per (group, dims), later laid out as a full grid so that every
/// category has a row in every group (zeros included), which suppression needs.
struct Builder {
    groups: Vec<Group>,
    counts: HashMap<(usize, Vec<String>), u64>,
    seeded: Vec<Vec<String>>,
    seen: BTreeSet<Vec<String>>,
}

impl Builder {
    fn new(groups: &[Group], seeded: Vec<Vec<String>>) -> Builder {
        Builder {
            groups: groups.to_vec(),
            counts: HashMap::new(),
            seeded,
            seen: BTreeSet::new(),
        }
    }

    fn add(&mut self, person_groups: &[usize], dims: Vec<String>, n: u64) {
        for &g in person_groups {
            *self.counts.entry((g, dims.clone())).or_default() += n;
        }
        self.seen.insert(dims);
    }

    fn finish(
        self,
        name: &'static str,
        dims: Vec<&'static str>,
        count_name: &'static str,
        additivity: Additivity,
    ) -> Table {
        let mut keys = self.seeded.clone();
        keys.extend(self.seen.into_iter().filter(|k| !self.seeded.contains(k)));
        let mut cells = Vec::new();
        for (gi, (b, g)) in self.groups.iter().enumerate() {
            for k in &keys {
                cells.push(Cell {
                    breakdown: *b,
                    group: g.clone(),
                    dims: k.clone(),
                    count: Some(self.counts.get(&(gi, k.clone())).copied().unwrap_or(0)),
                    values: Vec::new(),
                    suppressed: false,
                });
            }
        }
        Table {
            name,
            dims,
            count_name,
            values: Vec::new(),
            additivity,
            cells,
        }
    }
}

fn strs(list: &[&str]) -> Vec<Vec<String>> {
    list.iter().map(|s| vec![s.to_string()]).collect()
}

/// Quantile by linear interpolation between order statistics (R type 7, numpy's default).
pub fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let h = (sorted.len() - 1) as f64 * q;
    let lo = h.floor() as usize;
    let hi = h.ceil() as usize;
    Some(sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo]))
}

/// What one person looks like to the tables.
struct Person {
    groups: Vec<usize>,
    events: Vec<usize>,
}

/// A person's age band at first contact from their events in journey order: the first known
/// band; when that comes from a minor flag (`<18`, `18+`), a later band from an age that
/// agrees with the flag (`13-17` for `<18`) names it more precisely. A later age that does not
/// agree is of a later time (the minor has grown up) and is not used.
fn first_age_band<'a>(events: impl Iterator<Item = &'a Event> + Clone) -> u8 {
    let Some(first) = events
        .clone()
        .map(|e| e.age_band)
        .find(|&b| b < AGE_BAND_UNKNOWN)
    else {
        return AGE_BAND_UNKNOWN;
    };
    if first < 5 {
        return first;
    }
    let agrees = |b: u8| {
        if first == 5 {
            b <= 1
        } else {
            (2..5).contains(&b)
        }
    };
    events
        .map(|e| e.age_band)
        .find(|&b| b < 5 && agrees(b))
        .unwrap_or(first)
}

/// Computes every aggregate table, unsuppressed. Apply [`suppress::suppress`] before
/// publishing.
pub fn compute(log: &EventLog, settings: &Settings) -> Vec<Table> {
    let cutoff = settings.as_of.or_else(|| log.latest_date());
    let events: Vec<&Event> = log
        .events
        .iter()
        .filter(|e| match (e.start, cutoff) {
            (Some(d), Some(c)) => d <= c,
            _ => true,
        })
        .collect();
    let name = |e: &Event| log.agencies[e.agency as usize].name.as_str();
    let atype = |e: &Event| {
        let t = log.agencies[e.agency as usize].agency_type.as_str();
        if AGENCY_TYPES.contains(&t) {
            t
        } else {
            "other"
        }
    };
    // Persons and their events in journey order.
    let mut by_person: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
    for (i, e) in events.iter().enumerate() {
        by_person.entry(e.person).or_default().push(i);
    }
    for list in by_person.values_mut() {
        list.sort_by(|&a, &b| {
            let (x, y) = (events[a], events[b]);
            (x.start.is_none(), x.start, name(x), a).cmp(&(y.start.is_none(), y.start, name(y), b))
        });
    }
    // Groups.
    let mut group_set: BTreeSet<Group> = BTreeSet::new();
    let mut person_group_keys: Vec<[Group; 3]> = Vec::new();
    for list in by_person.values() {
        let band = first_age_band(list.iter().map(|&i| events[i]));
        let minor = match band {
            0 | 1 | 5 => "minor",
            AGE_BAND_UNKNOWN => "unknown",
            _ => "adult",
        };
        let month = events[list[0]]
            .start
            .map(|d| format!("{:04}-{:02}", d.year(), d.month()))
            .unwrap_or_else(|| "unknown".into());
        let keys = [
            (Breakdown::All, "all".to_string()),
            (Breakdown::MinorAdult, minor.to_string()),
            (Breakdown::FirstContactMonth, month),
        ];
        for k in &keys {
            group_set.insert(k.clone());
        }
        person_group_keys.push(keys);
    }
    for g in ["minor", "adult", "unknown"] {
        group_set.insert((Breakdown::MinorAdult, g.to_string()));
    }
    group_set.insert((Breakdown::All, "all".to_string()));
    let mut groups: Vec<Group> = group_set.into_iter().collect();
    // minor, adult, unknown in that order.
    groups.sort_by_key(|(b, g)| {
        let rank = match g.as_str() {
            "minor" => 0,
            "adult" => 1,
            "unknown" => 2,
            _ => 0,
        };
        (*b, rank, g.clone())
    });
    let gindex: HashMap<Group, usize> = groups
        .iter()
        .enumerate()
        .map(|(i, g)| (g.clone(), i))
        .collect();
    let persons: Vec<Person> = by_person
        .values()
        .zip(&person_group_keys)
        .map(|(list, keys)| Person {
            groups: keys.iter().map(|k| gindex[k]).collect(),
            events: list.clone(),
        })
        .collect();

    let mut agency_order: Vec<(String, String)> = log
        .agencies
        .iter()
        .map(|a| {
            let t = if AGENCY_TYPES.contains(&a.agency_type.as_str()) {
                a.agency_type.clone()
            } else {
                "other".to_string()
            };
            (a.name.clone(), t)
        })
        .collect();
    agency_order.sort();
    agency_order.dedup();
    let seeded_agencies: Vec<Vec<String>> = agency_order
        .iter()
        .map(|(n, t)| vec![n.clone(), t.clone()])
        .collect();

    let mut unique = Builder::new(&groups, vec![vec![]]);
    let mut per_agency = Builder::new(&groups, seeded_agencies);
    let mut combos = Builder::new(&groups, vec![]);
    let mut funnel = Builder::new(&groups, strs(&STAGES));
    let mut drop = Builder::new(&groups, strs(&STAGES));
    let mut dup_keys = Vec::new();
    for s in SERVICE_TYPES.iter().chain(&["any"]) {
        for m in ["episodes", "events", "persons"] {
            if *s == "any" && m != "persons" {
                continue;
            }
            dup_keys.push(vec![s.to_string(), m.to_string()]);
        }
    }
    let mut dup = Builder::new(&groups, dup_keys);
    let mut ttfs = Builder::new(&groups, vec![vec![]]);
    let mut ttfs_days: Vec<Vec<f64>> = vec![Vec::new(); groups.len()];
    let mut transitions = Builder::new(&groups, vec![]);
    let mut pre_referral = Builder::new(&groups, vec![vec![]]);
    let mut entry = Builder::new(&groups, strs(&AGENCY_TYPES));
    let mut demo_keys = Vec::new();
    for (attr, list) in [
        ("age_band", &AGE_BANDS[..]),
        ("sex", &SEXES[..]),
        ("trafficking_type", &TRAFFICKING_TYPES[..]),
    ] {
        for v in list {
            demo_keys.push(vec![attr.to_string(), v.to_string()]);
        }
    }
    let mut demographics = Builder::new(&groups, demo_keys);

    let open_days = TimeDelta::days(settings.open_service_days as i64);
    for p in &persons {
        let evs: Vec<&Event> = p.events.iter().map(|&i| events[i]).collect();
        let g = &p.groups;
        unique.add(g, vec![], 1);
        // Agencies and their combination.
        let mut agencies: BTreeSet<(&str, &str)> = BTreeSet::new();
        for e in &evs {
            agencies.insert((name(e), atype(e)));
        }
        for (n, t) in &agencies {
            per_agency.add(g, vec![n.to_string(), t.to_string()], 1);
        }
        let combo: Vec<&str> = agencies.iter().map(|(n, _)| *n).collect();
        combos.add(g, vec![combo.join("+")], 1);
        // Funnel and drop-off.
        let stages: BTreeSet<u8> = evs.iter().filter_map(|e| e.stage).collect();
        for &s in &stages {
            funnel.add(g, vec![STAGES[s as usize].to_string()], 1);
        }
        let last = evs.iter().filter_map(|e| e.start).max();
        if let (Some(&furthest), Some(last), Some(cut)) = (stages.last(), last, cutoff) {
            if (cut - last).num_days() >= settings.window_days as i64 {
                drop.add(g, vec![STAGES[furthest as usize].to_string()], 1);
            }
        }
        // Duplicate services.
        let mut any_dup = false;
        for (st, label) in SERVICE_TYPES.iter().enumerate() {
            let svc: Vec<(u32, NaiveDate, NaiveDate)> = evs
                .iter()
                .filter(|e| e.service == Some(st as u8))
                .filter_map(|e| {
                    let s = e.start?;
                    let end = e.end.unwrap_or(s + open_days).max(s);
                    Some((e.agency, s, end))
                })
                .collect();
            let (episodes, in_episodes) = episodes(&svc);
            if episodes > 0 {
                any_dup = true;
                dup.add(g, vec![label.to_string(), "episodes".into()], episodes);
                dup.add(g, vec![label.to_string(), "events".into()], in_episodes);
                dup.add(g, vec![label.to_string(), "persons".into()], 1);
            }
        }
        if any_dup {
            dup.add(g, vec!["any".into(), "persons".into()], 1);
        }
        // Time to first service.
        let first_date = evs.iter().find_map(|e| e.start);
        let first_service = evs
            .iter()
            .filter(|e| e.service.is_some() || e.stage.is_some_and(|s| s >= 3))
            .find_map(|e| e.start);
        if let (Some(a), Some(b)) = (first_date, first_service) {
            ttfs.add(g, vec![], 1);
            for &gi in g {
                ttfs_days[gi].push((b - a).num_days() as f64);
            }
        }
        // Agency transitions: agencies by their first dated event, ties by name.
        let mut firsts: BTreeMap<&str, NaiveDate> = BTreeMap::new();
        for e in &evs {
            if let Some(d) = e.start {
                let f = firsts.entry(name(e)).or_insert(d);
                if d < *f {
                    *f = d;
                }
            }
        }
        let mut seq: Vec<(NaiveDate, &str)> = firsts.into_iter().map(|(n, d)| (d, n)).collect();
        seq.sort();
        for w in seq.windows(2) {
            transitions.add(g, vec![w[0].1.to_string(), w[1].1.to_string()], 1);
        }
        let reached_referral = stages.iter().any(|&s| s >= 2);
        let at_provider = evs.iter().any(|e| atype(e) == "service_provider");
        if !reached_referral && !at_provider {
            pre_referral.add(g, vec![], 1);
        }
        // Entry point and demographics at first contact.
        entry.add(g, vec![atype(evs[0]).to_string()], 1);
        let first = |f: &dyn Fn(&Event) -> u8, unknown: u8| {
            evs.iter()
                .map(|e| f(e))
                .find(|&v| v != unknown)
                .unwrap_or(unknown)
        };
        let band = first_age_band(evs.iter().copied());
        let sex = first(&|e| e.sex.min(3), 3);
        let tt = first(&|e| e.trafficking.min(3), 3);
        demographics.add(
            g,
            vec!["age_band".into(), AGE_BANDS[band as usize].into()],
            1,
        );
        demographics.add(g, vec!["sex".into(), SEXES[sex as usize].into()], 1);
        demographics.add(
            g,
            vec![
                "trafficking_type".into(),
                TRAFFICKING_TYPES[tt as usize].into(),
            ],
            1,
        );
    }

    let unique = unique.finish("unique_persons", vec![], "persons", Additivity::Groups);
    let totals: HashMap<(Breakdown, String), u64> = unique
        .cells
        .iter()
        .map(|c| ((c.breakdown, c.group.clone()), c.count.unwrap_or(0)))
        .collect();
    let with_share = |mut t: Table| {
        t.values = vec!["share"];
        for c in &mut t.cells {
            let total = totals
                .get(&(c.breakdown, c.group.clone()))
                .copied()
                .unwrap_or(0);
            let n = c.count.unwrap_or(0);
            c.values = vec![(total > 0).then(|| n as f64 / total as f64)];
        }
        t
    };
    let mut ttfs = ttfs.finish(
        "time_to_first_service",
        vec![],
        "persons",
        Additivity::Groups,
    );
    ttfs.values = vec!["mean_days", "p25_days", "median_days", "p75_days"];
    for c in &mut ttfs.cells {
        let gi = gindex[&(c.breakdown, c.group.clone())];
        let days = &mut ttfs_days[gi];
        days.sort_by(f64::total_cmp);
        let mean = (!days.is_empty()).then(|| days.iter().sum::<f64>() / days.len() as f64);
        c.values = vec![
            mean,
            quantile(days, 0.25),
            quantile(days, 0.5),
            quantile(days, 0.75),
        ];
    }
    vec![
        unique,
        per_agency.finish(
            "persons_per_agency",
            vec!["agency", "agency_type"],
            "persons",
            Additivity::Groups,
        ),
        combos.finish(
            "agency_combinations",
            vec!["agencies"],
            "persons",
            Additivity::Partition(0),
        ),
        funnel.finish("funnel", vec!["stage"], "persons", Additivity::Groups),
        drop.finish("drop_off", vec!["stage"], "persons", Additivity::Groups),
        dup.finish(
            "duplicate_services",
            vec!["service_type", "measure"],
            "count",
            Additivity::Groups,
        ),
        ttfs,
        transitions.finish(
            "agency_transitions",
            vec!["from_agency", "to_agency"],
            "persons",
            Additivity::Groups,
        ),
        pre_referral.finish("pre_referral_only", vec![], "persons", Additivity::Groups),
        with_share(entry.finish(
            "entry_points",
            vec!["agency_type"],
            "persons",
            Additivity::Partition(0),
        )),
        with_share(demographics.finish(
            "demographics",
            vec!["attribute", "category"],
            "persons",
            Additivity::Partition(1),
        )),
    ]
}

/// Duplicate-service episodes among one person's services of one type: `(agency, start, end)`
/// intervals, inclusive. Two events at different agencies whose intervals overlap are linked;
/// linked events form episodes. Returns (episodes, events in episodes).
pub fn episodes(services: &[(u32, NaiveDate, NaiveDate)]) -> (u64, u64) {
    let n = services.len();
    let mut parent: Vec<usize> = (0..n).collect();
    fn root(p: &mut [usize], mut i: usize) -> usize {
        while p[i] != i {
            p[i] = p[p[i]];
            i = p[i];
        }
        i
    }
    let mut linked = vec![false; n];
    for i in 0..n {
        for j in i + 1..n {
            let (a, b) = (services[i], services[j]);
            if a.0 != b.0 && a.1 <= b.2 && b.1 <= a.2 {
                linked[i] = true;
                linked[j] = true;
                let (ri, rj) = (root(&mut parent, i), root(&mut parent, j));
                parent[ri.max(rj)] = ri.min(rj);
            }
        }
    }
    let mut roots = BTreeSet::new();
    let mut events = 0;
    for (i, &l) in linked.iter().enumerate() {
        if l {
            events += 1;
            roots.insert(root(&mut parent, i));
        }
    }
    (roots.len() as u64, events)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(m: u32, day: u32) -> Option<NaiveDate> {
        NaiveDate::from_ymd_opt(2024, m, day)
    }

    fn cell<'a>(tables: &'a [Table], name: &str, b: Breakdown, g: &str, dims: &[&str]) -> &'a Cell {
        tables
            .iter()
            .find(|t| t.name == name)
            .and_then(|t| {
                t.cells
                    .iter()
                    .find(|c| c.breakdown == b && c.group == g && c.dims.iter().eq(dims.iter()))
            })
            .unwrap_or_else(|| panic!("no cell {name} {g} {dims:?}"))
    }

    /// A band from an age refines a minor flag it agrees with; one that disagrees (the minor
    /// grew up) does not turn a minor at first contact into an adult.
    #[test]
    fn first_age_band_prefers_an_age_to_a_flag() {
        let e = |age_band| Event {
            age_band,
            ..Event::default()
        };
        let band = |bands: &[u8]| {
            let evs: Vec<Event> = bands.iter().map(|&b| e(b)).collect();
            AGE_BANDS[first_age_band(evs.iter()) as usize]
        };
        assert_eq!(band(&[5, 1, 3]), "13-17");
        assert_eq!(band(&[5, 2]), "<18");
        assert_eq!(band(&[6, 1, 3]), "24-29");
        assert_eq!(band(&[2, 5]), "18-23");
        assert_eq!(band(&[AGE_BAND_UNKNOWN, 6]), "18+");
        assert_eq!(band(&[AGE_BAND_UNKNOWN, 5, 6]), "<18");
        assert_eq!(band(&[AGE_BAND_UNKNOWN]), "unknown");
        assert_eq!(band(&[]), "unknown");
    }

    /// A small hand-built journey set whose every figure is worked out by hand below.
    fn log() -> EventLog {
        let mut log = EventLog::default();
        let police = log.agency("police", "law_enforcement");
        let dcf = log.agency("dcf", "child_welfare");
        let h1 = log.agency("housing-a", "service_provider");
        let h2 = log.agency("housing-b", "service_provider");
        let ev = |person, agency, stage, service, start, end, age| Event {
            person,
            agency,
            stage,
            service,
            start,
            end,
            age_band: age,
            sex: 0,
            trafficking: 0,
        };
        // Person 1, minor: police id (Jan 1) -> dcf screening (Jan 10) -> referral -> two
        // overlapping housing services at two providers (one without end date).
        log.events.extend([
            ev(1, police, Some(0), None, d(1, 1), None, 1),
            ev(1, dcf, Some(1), None, d(1, 10), None, 1),
            ev(1, dcf, Some(2), None, d(1, 11), None, 1),
            ev(1, h1, Some(3), Some(0), d(1, 21), d(2, 20), 1),
            ev(1, h2, Some(3), Some(0), d(2, 15), None, 1),
            // Same agency overlapping: not a duplicate.
            ev(1, h1, Some(4), Some(0), d(2, 1), d(3, 1), 1),
        ]);
        // Person 2, adult: police only, long ago -> dropped off at identification.
        log.events
            .push(ev(2, police, Some(0), None, d(1, 5), None, 2));
        // Person 3, adult: dcf screening in June, nothing since (cutoff = Jun 30, within 90 days).
        log.events
            .push(ev(3, dcf, Some(1), None, d(6, 1), None, AGE_BAND_UNKNOWN));
        log.events.push(ev(3, dcf, None, None, d(6, 30), None, 2));
        log
    }

    #[test]
    fn hand_worked_figures() {
        let t = compute(&log(), &Settings::default());
        let all = Breakdown::All;
        assert_eq!(cell(&t, "unique_persons", all, "all", &[]).count, Some(3));
        assert_eq!(
            cell(&t, "unique_persons", Breakdown::MinorAdult, "minor", &[]).count,
            Some(1)
        );
        assert_eq!(
            cell(&t, "unique_persons", Breakdown::MinorAdult, "adult", &[]).count,
            Some(2)
        );
        assert_eq!(
            cell(
                &t,
                "unique_persons",
                Breakdown::FirstContactMonth,
                "2024-01",
                &[]
            )
            .count,
            Some(2)
        );
        assert_eq!(
            cell(
                &t,
                "persons_per_agency",
                all,
                "all",
                &["dcf", "child_welfare"]
            )
            .count,
            Some(2)
        );
        assert_eq!(
            cell(
                &t,
                "agency_combinations",
                all,
                "all",
                &["dcf+housing-a+housing-b+police"]
            )
            .count,
            Some(1)
        );
        assert_eq!(
            cell(&t, "funnel", all, "all", &["identification"]).count,
            Some(2)
        );
        assert_eq!(
            cell(&t, "funnel", all, "all", &["service_transitional"]).count,
            Some(1)
        );
        // Person 1's last event is Mar 1 (start Feb 15 / Feb 1 / ...: starts only) -> Feb 15,
        // 136 days before Jun 30: dropped at service_transitional. Person 2 at identification.
        assert_eq!(
            cell(&t, "drop_off", all, "all", &["identification"]).count,
            Some(1)
        );
        assert_eq!(
            cell(&t, "drop_off", all, "all", &["service_transitional"]).count,
            Some(1)
        );
        assert_eq!(
            cell(&t, "drop_off", all, "all", &["screening"]).count,
            Some(0)
        );
        // h1 [Jan 21, Feb 20] overlaps h2 [Feb 15, Mar 16]; h1's second service overlaps h2 as
        // well: one episode of three events.
        assert_eq!(
            cell(
                &t,
                "duplicate_services",
                all,
                "all",
                &["housing", "episodes"]
            )
            .count,
            Some(1)
        );
        assert_eq!(
            cell(&t, "duplicate_services", all, "all", &["housing", "events"]).count,
            Some(3)
        );
        assert_eq!(
            cell(&t, "duplicate_services", all, "all", &["any", "persons"]).count,
            Some(1)
        );
        let tt = cell(&t, "time_to_first_service", all, "all", &[]);
        assert_eq!(tt.count, Some(1));
        assert_eq!(tt.values[2], Some(20.0));
        assert_eq!(
            cell(&t, "agency_transitions", all, "all", &["police", "dcf"]).count,
            Some(1)
        );
        assert_eq!(
            cell(&t, "agency_transitions", all, "all", &["dcf", "housing-a"]).count,
            Some(1)
        );
        assert_eq!(
            cell(&t, "pre_referral_only", all, "all", &[]).count,
            Some(2)
        );
        let e = cell(&t, "entry_points", all, "all", &["law_enforcement"]);
        assert_eq!(e.count, Some(2));
        assert!((e.values[0].unwrap() - 2.0 / 3.0).abs() < 1e-12);
        // Person 3's first event has no age band; the first known one, 18-23,
        // comes from the later event.
        assert_eq!(
            cell(&t, "demographics", all, "all", &["age_band", "18-23"]).count,
            Some(2)
        );
    }

    #[test]
    fn cutoff_drops_later_events() {
        let s = Settings {
            as_of: d(1, 31),
            ..Settings::default()
        };
        let t = compute(&log(), &s);
        assert_eq!(
            cell(&t, "unique_persons", Breakdown::All, "all", &[]).count,
            Some(2)
        );
        assert_eq!(
            cell(&t, "time_to_first_service", Breakdown::All, "all", &[]).values[2],
            Some(20.0)
        );
    }

    #[test]
    fn episodes_join_chains_across_agencies() {
        let day = |n: u32| NaiveDate::from_ymd_opt(2024, 1, n).unwrap_or_default();
        // a-b overlap, b-c overlap (a-c do not): one episode of three.
        assert_eq!(
            episodes(&[
                (0, day(1), day(5)),
                (1, day(5), day(10)),
                (2, day(10), day(12))
            ]),
            (1, 3)
        );
        // Same agency: nothing.
        assert_eq!(
            episodes(&[(0, day(1), day(5)), (0, day(2), day(3))]),
            (0, 0)
        );
        // Disjoint: nothing.
        assert_eq!(
            episodes(&[(0, day(1), day(5)), (1, day(6), day(9))]),
            (0, 0)
        );
    }

    #[test]
    fn quantiles_interpolate() {
        assert_eq!(quantile(&[1.0, 2.0, 3.0, 4.0], 0.5), Some(2.5));
        assert_eq!(quantile(&[1.0, 2.0, 3.0, 4.0], 0.25), Some(1.75));
        assert_eq!(quantile(&[], 0.5), None);
    }
}

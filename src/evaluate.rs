//! Linkage quality against ground truth: pairwise precision, recall and F1 (all pairs, pairs
//! within one agency, pairs across agencies), B-cubed precision/recall/F1 and entity counts.
//!
//! A *record* is one `(agency, local id)`: rows sharing a local id (a provider's client id) are
//! one record. A grouping assigns every record an entity label; two records form a *predicted
//! pair* when they share a label, a *true pair* when they belong to the same person. Counting is
//! done per label cell (no pair enumeration), so a million records score in well under a second.
//!
//! [`baseline`] scores the naive method a taskforce could run on raw data: records match when
//! their normalised given name, family name and date of birth are all present and equal.
//!
//! # Example
//!
//! ```
//! use crosswalk::evaluate::{score, Labelled};
//!
//! // Two persons; the prediction merges record 3 into person 1 wrongly.
//! let recs = vec![
//!     Labelled { agency: "dcf".into(), predicted: 1, truth: 10 },
//!     Labelled { agency: "cac".into(), predicted: 1, truth: 10 },
//!     Labelled { agency: "cac".into(), predicted: 1, truth: 20 },
//! ];
//! let s = score(&recs);
//! assert_eq!(s.all.true_positives, 1);
//! assert_eq!(s.all.false_positives, 2);
//! assert!((s.all.precision() - 1.0 / 3.0).abs() < 1e-12);
//! assert_eq!(s.all.recall(), 1.0);
//! ```

use std::collections::HashMap;
use std::path::Path;

use crate::error::{Error, Result};
use crate::io::csv_in::CsvSource;
use crate::schema::Field;
use crate::source::{Extractor, SourceMapping};

/// One record with its predicted and true entity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Labelled {
    /// The agency (pairs are split into within- and across-agency by it).
    pub agency: String,
    /// Predicted entity label.
    pub predicted: u64,
    /// True person.
    pub truth: u64,
}

/// Pair counts of one kind of pair.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PairCounts {
    /// Predicted pairs that are true pairs.
    pub true_positives: u64,
    /// Predicted pairs that are not.
    pub false_positives: u64,
    /// True pairs not predicted.
    pub false_negatives: u64,
}

impl PairCounts {
    /// TP / (TP + FP); 1 when nothing is predicted.
    pub fn precision(&self) -> f64 {
        ratio(
            self.true_positives,
            self.true_positives + self.false_positives,
        )
    }
    /// TP / (TP + FN); 1 when there is nothing to find.
    pub fn recall(&self) -> f64 {
        ratio(
            self.true_positives,
            self.true_positives + self.false_negatives,
        )
    }
    /// Harmonic mean of precision and recall.
    pub fn f1(&self) -> f64 {
        let (p, r) = (self.precision(), self.recall());
        if p + r == 0.0 {
            0.0
        } else {
            2.0 * p * r / (p + r)
        }
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        1.0
    } else {
        a as f64 / b as f64
    }
}

/// All quality figures of one grouping.
#[derive(Debug, Clone, Default)]
pub struct Scores {
    /// Records scored.
    pub records: usize,
    /// All pairs.
    pub all: PairCounts,
    /// Pairs of records from the same agency (repeat contacts, duplicate registrations).
    pub within: PairCounts,
    /// Pairs of records from different agencies.
    pub across: PairCounts,
    /// B-cubed precision (mean over records of the share of its predicted entity that is truly its person).
    pub bcubed_precision: f64,
    /// B-cubed recall.
    pub bcubed_recall: f64,
    /// Predicted entities.
    pub predicted_entities: usize,
    /// True persons.
    pub true_entities: usize,
}

impl Scores {
    /// B-cubed F1.
    pub fn bcubed_f1(&self) -> f64 {
        let (p, r) = (self.bcubed_precision, self.bcubed_recall);
        if p + r == 0.0 {
            0.0
        } else {
            2.0 * p * r / (p + r)
        }
    }
}

fn pairs(n: u64) -> u64 {
    n * n.saturating_sub(1) / 2
}

/// (all pairs, within-agency pairs) of a group given its per-agency sizes.
fn group_pairs(by_agency: &HashMap<&str, u64>) -> (u64, u64) {
    let n: u64 = by_agency.values().sum();
    let within: u64 = by_agency.values().map(|&k| pairs(k)).sum();
    (pairs(n), within)
}

/// (all pairs, within-agency pairs) summed over groups.
fn sum_pairs<'a>(groups: impl Iterator<Item = &'a HashMap<&'a str, u64>>) -> (u64, u64) {
    groups
        .map(group_pairs)
        .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
}

/// Scores a grouping against the truth.
pub fn score(records: &[Labelled]) -> Scores {
    let mut pred: HashMap<u64, HashMap<&str, u64>> = HashMap::new();
    let mut truth: HashMap<u64, HashMap<&str, u64>> = HashMap::new();
    let mut both: HashMap<(u64, u64), HashMap<&str, u64>> = HashMap::new();
    for r in records {
        *pred
            .entry(r.predicted)
            .or_default()
            .entry(&r.agency)
            .or_default() += 1;
        *truth
            .entry(r.truth)
            .or_default()
            .entry(&r.agency)
            .or_default() += 1;
        *both
            .entry((r.predicted, r.truth))
            .or_default()
            .entry(&r.agency)
            .or_default() += 1;
    }
    let (p_all, p_within) = sum_pairs(pred.values());
    let (t_all, t_within) = sum_pairs(truth.values());
    let (tp_all, tp_within) = sum_pairs(both.values());
    let counts = |tp: u64, p: u64, t: u64| PairCounts {
        true_positives: tp,
        false_positives: p - tp,
        false_negatives: t - tp,
    };
    // B-cubed: for record r, precision = |pred(r) ∩ truth(r)| / |pred(r)|.
    let size = |m: &HashMap<u64, HashMap<&str, u64>>, k: u64| -> f64 {
        m.get(&k).map_or(0, |g| g.values().sum::<u64>()) as f64
    };
    let (mut bp, mut br) = (0.0, 0.0);
    for r in records {
        let inter: u64 = both[&(r.predicted, r.truth)].values().sum();
        bp += inter as f64 / size(&pred, r.predicted);
        br += inter as f64 / size(&truth, r.truth);
    }
    let n = records.len().max(1) as f64;
    Scores {
        records: records.len(),
        all: counts(tp_all, p_all, t_all),
        within: counts(tp_within, p_within, t_within),
        across: counts(tp_all - tp_within, p_all - p_within, t_all - t_within),
        bcubed_precision: bp / n,
        bcubed_recall: br / n,
        predicted_entities: pred.len(),
        true_entities: truth.len(),
    }
}

/// Scores a linkage run (`RUN_DIR/entities.parquet`) against a synthetic world's truth, joining
/// record keys to local ids through the agencies' local maps (every `*.parquet` in `maps`).
pub fn score_run(truth_dir: &Path, run: &Path, maps: &Path) -> Result<Scores> {
    let truth = read_truth(truth_dir)?;
    let entities = crate::io::entities::read_entities(run)?;
    let local = read_local_maps(maps)?;
    let mut labelled = Vec::with_capacity(entities.len());
    for ((agency, key), person) in &entities {
        let t = &true_person(&truth, &local, truth_dir, maps, agency, key)?;
        let predicted = person.trim_start_matches("P-").parse().unwrap_or(u64::MAX);
        labelled.push(Labelled {
            agency: agency.clone(),
            predicted,
            truth: *t,
        });
    }
    labelled
        .sort_by(|a, b| (a.truth, a.predicted, &a.agency).cmp(&(b.truth, b.predicted, &b.agency)));
    Ok(score(&labelled))
}

/// The true person of each of `records` (`(agency, record_key)`), through the agencies' local
/// maps (every `*.parquet` in `maps`) and the truth; truth and maps are read once.
pub fn true_persons<'a>(
    truth_dir: &Path,
    maps: &Path,
    records: impl IntoIterator<Item = &'a (String, String)>,
) -> Result<HashMap<(String, String), u64>> {
    let truth = read_truth(truth_dir)?;
    let local = read_local_maps(maps)?;
    records
        .into_iter()
        .map(|(agency, key)| {
            let t = true_person(&truth, &local, truth_dir, maps, agency, key)?;
            Ok(((agency.clone(), key.clone()), t))
        })
        .collect()
}

/// How stable person ids were from one registry generation to the next.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IdStability {
    /// Ids of the earlier generation.
    pub ids: u64,
    /// Ids whose records all carry the same id in the later generation.
    pub kept: u64,
    /// Ids merged wholesale into another id, where the truth says both were one person.
    pub true_merges: u64,
}

impl IdStability {
    /// `kept / (ids − true_merges)`: the share of ids kept, true merges excused.
    pub fn share(&self) -> f64 {
        ratio(self.kept, self.ids - self.true_merges)
    }
}

/// Compares two generations' `(agency, record_key) -> person_id` maps: an id is *kept* when
/// every record it had still carries it; a *true merge* is an id whose records all moved to one
/// other id whose earlier records are, by `truth`, the same person as its own.
pub fn id_stability(
    before: &HashMap<(String, String), String>,
    after: &HashMap<(String, String), String>,
    truth: &HashMap<(String, String), u64>,
) -> IdStability {
    let mut records_of: HashMap<&str, Vec<&(String, String)>> = HashMap::new();
    for (k, p) in before {
        records_of.entry(p.as_str()).or_default().push(k);
    }
    // True persons of each later id's records that existed before.
    let mut truth_of_after: HashMap<&str, std::collections::BTreeSet<u64>> = HashMap::new();
    for (k, p) in after {
        if before.contains_key(k) {
            if let Some(&t) = truth.get(k) {
                truth_of_after.entry(p.as_str()).or_default().insert(t);
            }
        }
    }
    let mut out = IdStability {
        ids: records_of.len() as u64,
        ..Default::default()
    };
    for (id, records) in &records_of {
        let now: std::collections::BTreeSet<Option<&String>> =
            records.iter().map(|k| after.get(*k)).collect();
        if now.len() == 1 && now.contains(&Some(&id.to_string())) {
            out.kept += 1;
        } else if let [Some(other)] = now.iter().copied().collect::<Vec<_>>().as_slice() {
            if truth_of_after
                .get(other.as_str())
                .is_some_and(|t| t.len() == 1)
            {
                out.true_merges += 1;
            }
        }
    }
    out
}

/// The true person of a record: its key through the local maps to the agency's id, the id
/// through the truth.
fn true_person(
    truth: &HashMap<(String, String), u64>,
    local: &HashMap<(String, String), String>,
    truth_dir: &Path,
    maps: &Path,
    agency: &str,
    key: &str,
) -> Result<u64> {
    let id = (
        agency.to_string(),
        local_id(local, maps, agency, key)?.to_string(),
    );
    person_of(truth, truth_dir, &id)
}

/// The true person of `(agency, local id)`.
fn person_of(
    truth: &HashMap<(String, String), u64>,
    truth_dir: &Path,
    id: &(String, String),
) -> Result<u64> {
    truth.get(id).copied().ok_or_else(|| {
        Error::input(
            truth_dir,
            format!("a record of agency {} is missing from the truth", id.0),
        )
    })
}

/// The agency's local id of a record key, through the local maps.
fn local_id<'l>(
    local: &'l HashMap<(String, String), String>,
    maps: &Path,
    agency: &str,
    key: &str,
) -> Result<&'l str> {
    local
        .get(&(agency.to_string(), key.to_string()))
        .map(String::as_str)
        .ok_or_else(|| {
            Error::input(
                maps,
                format!("no local map holds a record key of agency {agency}"),
            )
        })
}

/// Reads every local map in `maps` (`*.parquet`): `(agency, record_key) -> local id`.
fn read_local_maps(maps: &Path) -> Result<HashMap<(String, String), String>> {
    let mut local: HashMap<(String, String), String> = HashMap::new();
    let mut files: Vec<_> = std::fs::read_dir(maps)
        .map_err(|e| Error::io(maps, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "parquet"))
        .collect();
    files.sort();
    for f in files {
        let (agency, rows) = crate::io::encodings::read_local_map(&f)?;
        for (id, key) in rows {
            local.insert((agency.clone(), key), id);
        }
    }
    Ok(local)
}

/// One aggregate figure of a run next to the same figure under the true grouping.
#[derive(Debug, Clone, PartialEq)]
pub struct AggregateCheck {
    /// Table name.
    pub table: &'static str,
    /// The row: breakdown group and dimension values, joined with `/`.
    pub row: String,
    /// The column compared (the count column or a statistic).
    pub column: &'static str,
    /// The run's figure (unsuppressed).
    pub run: f64,
    /// The figure computed from the true grouping of the same events.
    pub truth: f64,
}

impl AggregateCheck {
    /// Absolute error.
    pub fn error(&self) -> f64 {
        (self.run - self.truth).abs()
    }

    /// Whether the figure meets the accuracy goal of docs/aggregates.md: within 2% of the
    /// truth or 2 units (persons, events or days) of it; shares within 1 percentage point.
    pub fn within_goal(&self) -> bool {
        let tolerance = if self.column == "share" {
            1.0
        } else {
            (0.02 * self.truth.abs()).max(2.0)
        };
        self.error() <= tolerance + 1e-9
    }
}

/// Compares every aggregate figure of a run (unsuppressed, the `all` breakdown and the
/// minor/adult breakdown) with the same figure computed over the same events grouped by the
/// truth: the analytics' error that linkage errors cause. Record keys are joined to local ids
/// through the agencies' local maps, as in [`score_run`].
pub fn score_aggregates(
    truth_dir: &Path,
    run: &Path,
    maps: &Path,
    settings: &crate::analytics::Settings,
) -> Result<Vec<AggregateCheck>> {
    let t = TruthOfRun::read(truth_dir, run, maps)?;
    Ok(compare_aggregates(&t.events.log, &t.true_log()?, settings))
}

/// The aggregate error of a linkage whose only mistakes are the ones names cannot avoid, on a
/// synthetic world: every figure computed over the run's events grouped by the truth *as far as
/// names reach*, next to the truth. A person's records written only under their alias share no
/// name with the person's other records; unless some record carries the alias beside the name
/// (the police AKA column, which the encoder turns into an alias CLK, or a client record
/// written under both), such records become a person of their own ([`name_reachable`]).
///
/// It is not a floor in the strict sense: a linkage that also makes errors the other way (a
/// false merge in the same cell) can land closer to the truth by chance.
///
/// `None` when `truth/events.csv` is absent or has no `alias` column (a world made before the
/// column existed, or a truth directory of another source).
pub fn score_aggregates_name_bound(
    truth_dir: &Path,
    run: &Path,
    maps: &Path,
    settings: &crate::analytics::Settings,
) -> Result<Option<NameBound>> {
    let t = TruthOfRun::read(truth_dir, run, maps)?;
    t.name_bound(&t.true_log()?, settings)
}

/// [`score_aggregates`] and [`score_aggregates_name_bound`] together, reading the truth, the
/// local maps and the run's events once.
pub fn score_aggregates_and_bound(
    truth_dir: &Path,
    run: &Path,
    maps: &Path,
    settings: &crate::analytics::Settings,
) -> Result<(Vec<AggregateCheck>, Option<NameBound>)> {
    let t = TruthOfRun::read(truth_dir, run, maps)?;
    let true_log = t.true_log()?;
    let checks = compare_aggregates(&t.events.log, &true_log, settings);
    Ok((checks, t.name_bound(&true_log, settings)?))
}

/// A run's events with the true person and the local id of each, read once for the aggregate
/// comparisons.
struct TruthOfRun<'a> {
    truth_dir: &'a Path,
    events: crate::io::events::RunEvents,
    /// True person of each event.
    persons: Vec<u64>,
    /// `(agency, local id)` of each event.
    local_ids: Vec<(String, String)>,
}

impl<'a> TruthOfRun<'a> {
    fn read(truth_dir: &'a Path, run: &Path, maps: &Path) -> Result<Self> {
        let truth = read_truth(truth_dir)?;
        let local = read_local_maps(maps)?;
        let events = crate::io::events::read(run)?;
        let mut persons = Vec::with_capacity(events.records.len());
        let mut local_ids = Vec::with_capacity(events.records.len());
        for (agency, key) in &events.records {
            let id = (
                agency.clone(),
                local_id(&local, maps, agency, key)?.to_string(),
            );
            persons.push(person_of(&truth, truth_dir, &id)?);
            local_ids.push(id);
        }
        Ok(TruthOfRun {
            truth_dir,
            events,
            persons,
            local_ids,
        })
    }

    /// The events grouped by their true persons.
    fn true_log(&self) -> Result<crate::analytics::EventLog> {
        regrouped(&self.events.log, &self.persons, self.truth_dir)
    }

    /// The names-only bound against `true_log` (from [`TruthOfRun::true_log`]).
    fn name_bound(
        &self,
        true_log: &crate::analytics::EventLog,
        settings: &crate::analytics::Settings,
    ) -> Result<Option<NameBound>> {
        let Some(alias) = read_alias_use(self.truth_dir)? else {
            return Ok(None);
        };
        let records = self
            .local_ids
            .iter()
            .zip(&self.persons)
            .map(|(id, &t)| {
                let use_ = alias.get(id).copied().ok_or_else(|| {
                    Error::input(
                        self.truth_dir,
                        format!(
                            "a record of agency {} is missing from truth/events.csv",
                            id.0
                        ),
                    )
                })?;
                Ok((t, use_))
            })
            .collect::<Result<Vec<(u64, AliasUse)>>>()?;
        let (reach, split_persons) = name_reachable(&records);
        let reach_log = regrouped(&self.events.log, &reach, self.truth_dir)?;
        Ok(Some(NameBound {
            split_persons,
            checks: compare_aggregates(&reach_log, true_log, settings),
        }))
    }
}

/// `log` with event `i` given person `persons[i]`, renumbered densely (the analytics number
/// persons with `u32`).
fn regrouped(
    log: &crate::analytics::EventLog,
    persons: &[u64],
    truth_dir: &Path,
) -> Result<crate::analytics::EventLog> {
    let mut dense: HashMap<u64, u32> = HashMap::new();
    let mut out = log.clone();
    for (e, p) in out.events.iter_mut().zip(persons) {
        let next = u32::try_from(dense.len())
            .map_err(|_| Error::input(truth_dir, "more than 2^32 true persons"))?;
        e.person = *dense.entry(*p).or_insert(next);
    }
    Ok(out)
}

/// What [`score_aggregates_name_bound`] found.
#[derive(Debug, Clone, PartialEq)]
pub struct NameBound {
    /// Persons split because some of their records carry only their alias.
    pub split_persons: u64,
    /// Every figure under that grouping next to the truth, as [`score_aggregates`] gives them.
    pub checks: Vec<AggregateCheck>,
}

/// How one record of a synthetic world carries its person's alias, from the `alias` column of
/// `truth/events.csv` over the record's rows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AliasUse {
    /// Some row's name fields hold the alias (`alias = name`).
    pub as_name: bool,
    /// Some row holds the alias in an AKA column, beside the name (`alias = aka`).
    pub as_aka: bool,
    /// Some row's name fields hold the person's own name (`aka` or empty).
    pub own_name: bool,
}

impl AliasUse {
    /// Written only under the alias: no name of the person's other records is in it.
    pub fn alias_only(self) -> bool {
        self.as_name && !self.own_name
    }

    /// Carries both the alias and the name, so a linkage by name can join the person's
    /// alias-only records to the rest through it.
    pub fn bridges(self) -> bool {
        self.as_aka || (self.as_name && self.own_name)
    }
}

/// The grouping of records that names can reach: `records` holds each record's true person and
/// [`AliasUse`] (a record may appear once per event: repeats change nothing); the result gives
/// each entry a group id, and the number of persons split.
///
/// A person is split when they have alias-only records and other records, and no record
/// bridges the two: the alias-only records then form a group of their own, with an id above
/// every true person's. Everything else keeps its true person as its group.
///
/// ```
/// use crosswalk::evaluate::{name_reachable, AliasUse};
/// let own = AliasUse { own_name: true, ..AliasUse::default() };
/// let alias = AliasUse { as_name: true, ..AliasUse::default() };
/// let (groups, split) = name_reachable(&[(1, own), (1, alias), (2, own)]);
/// assert_eq!(split, 1);
/// assert_eq!(groups[0], 1);
/// assert_eq!(groups[2], 2);
/// assert!(groups[1] > 2); // the alias record is a person of its own
/// ```
pub fn name_reachable(records: &[(u64, AliasUse)]) -> (Vec<u64>, u64) {
    #[derive(Default)]
    struct Seen {
        alias_only: bool,
        other: bool,
        bridged: bool,
    }
    let mut persons: HashMap<u64, Seen> = HashMap::new();
    for &(t, a) in records {
        let p = persons.entry(t).or_default();
        p.alias_only |= a.alias_only();
        p.other |= !a.alias_only();
        p.bridged |= a.bridges();
    }
    let mut next = records.iter().map(|r| r.0).max().unwrap_or(0);
    let mut split_id: HashMap<u64, u64> = HashMap::new();
    let groups = records
        .iter()
        .map(|&(t, a)| {
            let p = &persons[&t];
            if a.alias_only() && p.other && !p.bridged {
                *split_id.entry(t).or_insert_with(|| {
                    next += 1;
                    next
                })
            } else {
                t
            }
        })
        .collect();
    (groups, split_id.len() as u64)
}

/// Reads the `alias` column of `truth/events.csv` (columns found by name): each
/// `(agency, local_id)`'s [`AliasUse`] over its rows. `None` when the file or the column is
/// absent.
fn read_alias_use(truth_dir: &Path) -> Result<Option<HashMap<(String, String), AliasUse>>> {
    let path = truth_dir.join("events.csv");
    if !path.exists() {
        return Ok(None);
    }
    let mut rdr = csv::Reader::from_path(&path)
        .map_err(|e| Error::io(&path, std::io::Error::other(e.to_string())))?;
    let headers = rdr
        .headers()
        .map_err(|_| Error::input(&path, "row 0: malformed CSV header"))?
        .clone();
    let col = |name: &str| headers.iter().position(|h| h == name);
    let Some(alias) = col("alias") else {
        return Ok(None);
    };
    let (Some(agency), Some(id)) = (col("agency"), col("local_id")) else {
        return Err(Error::input(&path, "no agency or local_id column"));
    };
    let mut out: HashMap<(String, String), AliasUse> = HashMap::new();
    for (i, rec) in rdr.records().enumerate() {
        let row = i + 1;
        let rec = rec.map_err(|_| Error::input(&path, format!("row {row}: malformed CSV")))?;
        let (Some(a), Some(l), Some(u)) = (rec.get(agency), rec.get(id), rec.get(alias)) else {
            return Err(Error::input(&path, format!("row {row}: missing columns")));
        };
        let e = out.entry((a.to_string(), l.to_string())).or_default();
        match u {
            "name" => e.as_name = true,
            "aka" => (e.as_aka, e.own_name) = (true, true),
            "" => e.own_name = true,
            _ => {
                return Err(Error::input(
                    &path,
                    format!("row {row}: field alias: not name, aka or empty"),
                ))
            }
        }
    }
    Ok(Some(out))
}

/// Every aggregate figure of `predicted` next to the same figure of `expected`: the two logs
/// hold the same events grouped into persons two ways. The cutoff defaults to the latest
/// event date of `predicted`.
fn compare_aggregates(
    predicted: &crate::analytics::EventLog,
    expected: &crate::analytics::EventLog,
    settings: &crate::analytics::Settings,
) -> Vec<AggregateCheck> {
    use crate::analytics::{compute, Breakdown};
    let settings = crate::analytics::Settings {
        as_of: settings.as_of.or_else(|| predicted.latest_date()),
        ..*settings
    };
    let predicted = compute(predicted, &settings);
    let expected = compute(expected, &settings);
    let mut out = Vec::new();
    for (p, t) in predicted.iter().zip(&expected) {
        let key = |c: &crate::analytics::Cell| {
            let mut parts = vec![c.group.clone()];
            parts.extend(c.dims.iter().cloned());
            parts.join("/")
        };
        let truth_cells: HashMap<String, &crate::analytics::Cell> = t
            .cells
            .iter()
            .filter(|c| c.breakdown != Breakdown::FirstContactMonth)
            .map(|c| (key(c), c))
            .collect();
        let run_cells: HashMap<String, &crate::analytics::Cell> = p
            .cells
            .iter()
            .filter(|c| c.breakdown != Breakdown::FirstContactMonth)
            .map(|c| (key(c), c))
            .collect();
        let mut rows: Vec<&String> = truth_cells.keys().chain(run_cells.keys()).collect();
        rows.sort();
        rows.dedup();
        for row in rows {
            let (rc, tc) = (run_cells.get(row), truth_cells.get(row));
            let count =
                |c: Option<&&crate::analytics::Cell>| c.and_then(|c| c.count).unwrap_or(0) as f64;
            out.push(AggregateCheck {
                table: p.name,
                row: row.clone(),
                column: p.count_name,
                run: count(rc),
                truth: count(tc),
            });
            for (i, name) in p.values.iter().enumerate() {
                let v = |c: Option<&&crate::analytics::Cell>| {
                    c.and_then(|c| c.values.get(i).copied().flatten())
                };
                if let (Some(a), Some(b)) = (v(rc), v(tc)) {
                    // Shares are compared in percentage points.
                    let scale = if *name == "share" { 100.0 } else { 1.0 };
                    out.push(AggregateCheck {
                        table: p.name,
                        row: row.clone(),
                        column: name,
                        run: a * scale,
                        truth: b * scale,
                    });
                }
            }
        }
    }
    out
}

/// Reads `truth/records.csv` of a synthetic world: `(agency, local_id) -> person`.
pub fn read_truth(truth_dir: &Path) -> Result<HashMap<(String, String), u64>> {
    let path = truth_dir.join("records.csv");
    let mut rdr = csv::Reader::from_path(&path)
        .map_err(|e| Error::io(&path, std::io::Error::other(e.to_string())))?;
    let mut out = HashMap::new();
    for (i, rec) in rdr.records().enumerate() {
        let rec = rec.map_err(|_| Error::input(&path, format!("row {}: malformed CSV", i + 1)))?;
        let person = rec
            .get(2)
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| Error::input(&path, format!("row {}: person is not a number", i + 1)))?;
        out.insert((rec[0].to_string(), rec[1].to_string()), person);
    }
    Ok(out)
}

/// The exact-match baseline on a synthetic world directory (`exports/`, `mappings/`,
/// `truth/`): records whose normalised given name, family name and date of birth are all present
/// and identical are one entity; every other record stands alone.
///
/// This reads raw identifiers and exists only to give linkage scores a reference point on
/// synthetic data.
pub fn baseline(world: &Path) -> Result<Scores> {
    let truth = read_truth(&world.join("truth"))?;
    let mut keys: HashMap<String, u64> = HashMap::new();
    let mut seen: HashMap<(String, String), ()> = HashMap::new();
    let mut labelled = Vec::new();
    let mut stems: Vec<_> = std::fs::read_dir(world.join("mappings"))
        .map_err(|e| Error::io(world.join("mappings"), e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    stems.sort();
    let today = crate::synth::world_end();
    for mapping_path in stems {
        let mapping = SourceMapping::from_file(&mapping_path)?;
        let stem = mapping_path
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        let input = world.join("exports").join(format!("{stem}.csv"));
        let mut src = CsvSource::open(&input, mapping.delimiter_byte(), mapping.encoding)?;
        let ex = Extractor::new(&mapping, src.headers(), today, &input)?;
        let mut chunk = Vec::new();
        while src.read_chunk(&mut chunk, 8192)? > 0 {
            for raw in &chunk {
                let cells: Vec<&[u8]> = raw.record.iter().collect();
                let r = ex.extract(&cells);
                let id = (mapping.agency.clone(), r.local_id.clone());
                if r.local_id.is_empty() || seen.insert(id.clone(), ()).is_some() {
                    continue;
                }
                let Some(&person) = truth.get(&id) else {
                    return Err(Error::input(
                        &input,
                        format!("row {}: record id missing from truth/records.csv", raw.row),
                    ));
                };
                // (Birth years of an age are no date of birth.)
                let parts = [Field::GivenName, Field::FamilyName, Field::Dob].map(|f| {
                    r.ids
                        .get(f)
                        .filter(|v| !crate::normalize::is_birth_years(v))
                });
                let next = keys.len() as u64 + labelled.len() as u64 + 1;
                let predicted = match parts {
                    [Some(g), Some(f), Some(d)] => {
                        *keys.entry(format!("{g}|{f}|{d}")).or_insert(next)
                    }
                    _ => u64::MAX - labelled.len() as u64, // a singleton
                };
                labelled.push(Labelled {
                    agency: mapping.agency.clone(),
                    predicted,
                    truth: person,
                });
            }
        }
    }
    Ok(score(&labelled))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(agency: &str, predicted: u64, truth: u64) -> Labelled {
        Labelled {
            agency: agency.into(),
            predicted,
            truth,
        }
    }

    #[test]
    fn alias_use_is_read_per_record_and_absent_in_old_worlds() {
        let dir = tempfile::tempdir().unwrap();
        // No events.csv at all (a truth directory of another source): no bound.
        assert_eq!(read_alias_use(dir.path()).unwrap(), None);
        let csv = "agency,local_id,row,person,code,event_date,end_date,alias\n\
                   police,I-1,1,7,HT,2024-01-01,,name\n\
                   police,I-2,2,7,HT,2024-02-01,,aka\n\
                   housing,H-1,1,8,EMG,2024-01-01,,name\n\
                   housing,H-1,2,8,TH,2024-03-01,,\n";
        std::fs::write(dir.path().join("events.csv"), csv).unwrap();
        let a = read_alias_use(dir.path()).unwrap().unwrap();
        let get = |ag: &str, id: &str| a[&(ag.to_string(), id.to_string())];
        assert!(get("police", "I-1").alias_only());
        assert!(!get("police", "I-1").bridges());
        // An AKA row names the person and carries the alias: it bridges the two.
        assert!(get("police", "I-2").bridges() && !get("police", "I-2").alias_only());
        // A client record written under both the alias and the name bridges them too.
        assert!(get("housing", "H-1").bridges() && !get("housing", "H-1").alias_only());
        let bad = csv.replace(",,aka", ",,Aka");
        std::fs::write(dir.path().join("events.csv"), bad).unwrap();
        let e = read_alias_use(dir.path()).unwrap_err().to_string();
        assert!(e.contains("row 2: field alias"), "{e}");
        std::fs::write(
            dir.path().join("events.csv"),
            "agency,local_id,row,person,code,event_date,end_date\npolice,I-1,1,7,HT,2024-01-01,\n",
        )
        .unwrap();
        assert_eq!(read_alias_use(dir.path()).unwrap(), None);
    }

    #[test]
    fn names_reach_alias_records_only_through_a_bridge() {
        let own = AliasUse {
            own_name: true,
            ..AliasUse::default()
        };
        let alias = AliasUse {
            as_name: true,
            ..AliasUse::default()
        };
        let aka = AliasUse {
            as_aka: true,
            own_name: true,
            ..AliasUse::default()
        };
        let records = [
            // Person 1: two alias-only records, no bridge: split into one extra group.
            (1, own),
            (1, alias),
            (1, alias),
            // Person 2: an AKA record bridges: not split.
            (2, own),
            (2, alias),
            (2, aka),
            // Person 3: only alias records: nothing to split from.
            (3, alias),
            (3, alias),
            // Person 9: split too, into a group of its own (not person 1's).
            (9, alias),
            (9, own),
        ];
        let (g, split) = name_reachable(&records);
        assert_eq!(split, 2);
        assert_eq!(g[0], 1);
        assert!(g[1] > 9 && g[1] == g[2]);
        assert_eq!(&g[3..6], &[2, 2, 2]);
        assert_eq!(&g[6..8], &[3, 3]);
        assert!(g[8] > 9 && g[8] != g[1]);
        assert_eq!(g[9], 9);
        assert_eq!(name_reachable(&[]), (vec![], 0));
    }

    #[test]
    fn perfect_and_split_groupings() {
        let truth_like = vec![l("a", 1, 1), l("b", 1, 1), l("a", 2, 2)];
        let s = score(&truth_like);
        assert_eq!(s.all.f1(), 1.0);
        assert_eq!(s.bcubed_f1(), 1.0);
        assert_eq!((s.predicted_entities, s.true_entities), (2, 2));
        // everything split: recall 0 on the one true pair, which is across agencies
        let split = vec![l("a", 1, 1), l("b", 2, 1), l("a", 3, 2)];
        let s = score(&split);
        assert_eq!(s.all.false_negatives, 1);
        assert_eq!(s.across.false_negatives, 1);
        assert_eq!(s.within.false_negatives, 0);
        assert_eq!(s.all.recall(), 0.0);
    }

    #[test]
    fn within_and_across_add_up() {
        let recs = vec![
            l("a", 1, 1),
            l("a", 1, 1),
            l("b", 1, 1),
            l("b", 1, 2),
            l("c", 2, 2),
        ];
        let s = score(&recs);
        for (w, x, a) in [
            (
                s.within.true_positives,
                s.across.true_positives,
                s.all.true_positives,
            ),
            (
                s.within.false_positives,
                s.across.false_positives,
                s.all.false_positives,
            ),
            (
                s.within.false_negatives,
                s.across.false_negatives,
                s.all.false_negatives,
            ),
        ] {
            assert_eq!(w + x, a);
        }
        // predicted cluster 1 has 4 records: 6 pairs, 3 true (the three of person 1)
        assert_eq!(s.all.true_positives, 3);
        assert_eq!(s.all.false_positives, 3);
        assert_eq!(s.all.false_negatives, 1);
    }
}

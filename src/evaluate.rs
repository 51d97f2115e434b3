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
    let entities = crate::pipeline::link::read_entities(run)?;
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
    let id = local
        .get(&(agency.to_string(), key.to_string()))
        .ok_or_else(|| {
            Error::input(
                maps,
                format!("no local map holds a record key of agency {agency}"),
            )
        })?;
    truth
        .get(&(agency.to_string(), id.clone()))
        .copied()
        .ok_or_else(|| {
            Error::input(
                truth_dir,
                format!("a record of agency {agency} is missing from the truth"),
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
    let truth = read_truth(truth_dir)?;
    let local = read_local_maps(maps)?;
    let ev = crate::io::events::read(run)?;
    let mut true_log = ev.log.clone();
    for (e, (agency, key)) in true_log.events.iter_mut().zip(&ev.records) {
        let t = &true_person(&truth, &local, truth_dir, maps, agency, key)?;
        e.person = *t as u32;
    }
    Ok(compare_aggregates(&ev.log, &true_log, settings))
}

/// The aggregate error that no linkage by name can avoid on a synthetic world: every figure
/// computed over the run's events grouped by the truth *as far as names reach*, next to the
/// truth. A person's records written only under their alias (`alias = name` in
/// `truth/events.csv`) share no name with the person's other records; unless one of them
/// carries the alias beside the name (`alias = aka`, the police AKA column, which the encoder
/// turns into an alias CLK), such records become a person of their own. `None` when
/// `truth/events.csv` has no `alias` column (a world made before it existed).
pub fn score_aggregates_name_bound(
    truth_dir: &Path,
    run: &Path,
    maps: &Path,
    settings: &crate::analytics::Settings,
) -> Result<Option<NameBound>> {
    let Some(alias) = read_alias_use(truth_dir)? else {
        return Ok(None);
    };
    let truth = read_truth(truth_dir)?;
    let local = read_local_maps(maps)?;
    let ev = crate::io::events::read(run)?;
    // Persons whose alias-named records a name can reach: an AKA row, or a record written
    // under both the alias and the name.
    let mut bridged = std::collections::HashSet::new();
    for (record, &(as_name, as_aka, own)) in &alias {
        if as_aka || (as_name && own) {
            if let Some(&t) = truth.get(record) {
                bridged.insert(t);
            }
        }
    }
    let (mut true_log, mut reach_log) = (ev.log.clone(), ev.log.clone());
    let mut split = std::collections::BTreeSet::new();
    for ((t_ev, r_ev), (agency, key)) in true_log
        .events
        .iter_mut()
        .zip(reach_log.events.iter_mut())
        .zip(&ev.records)
    {
        let t = true_person(&truth, &local, truth_dir, maps, agency, key)?;
        let id = &local[&(agency.clone(), key.clone())];
        let alias_only = alias
            .get(&(agency.clone(), id.clone()))
            .is_some_and(|&(as_name, _, own)| as_name && !own);
        t_ev.person = t as u32;
        r_ev.person = if alias_only && !bridged.contains(&t) {
            split.insert(t);
            t as u32 | 1 << 31
        } else {
            t as u32
        };
    }
    // A person all of whose records are alias-named is not split: move them back.
    let mut own = std::collections::HashSet::new();
    for e in &reach_log.events {
        if e.person & 1 << 31 == 0 {
            own.insert(e.person);
        }
    }
    for e in &mut reach_log.events {
        if !own.contains(&(e.person & !(1 << 31))) {
            e.person &= !(1 << 31);
        }
    }
    split.retain(|&t| own.contains(&(t as u32)));
    Ok(Some(NameBound {
        split_persons: split.len() as u64,
        checks: compare_aggregates(&reach_log, &true_log, settings),
    }))
}

/// What [`score_aggregates_name_bound`] found.
#[derive(Debug, Clone, PartialEq)]
pub struct NameBound {
    /// Persons split because some of their records carry only their alias.
    pub split_persons: u64,
    /// Every figure under that grouping next to the truth, as [`score_aggregates`] gives them.
    pub checks: Vec<AggregateCheck>,
}

/// Reads the `alias` column of `truth/events.csv`: per `(agency, local_id)`, whether any row
/// holds the alias as the name, any holds it in the AKA column, and any holds the own name.
/// `None` when the column is absent.
#[allow(clippy::type_complexity)]
fn read_alias_use(
    truth_dir: &Path,
) -> Result<Option<HashMap<(String, String), (bool, bool, bool)>>> {
    let path = truth_dir.join("events.csv");
    let mut rdr = csv::Reader::from_path(&path)
        .map_err(|e| Error::io(&path, std::io::Error::other(e.to_string())))?;
    let headers = rdr
        .headers()
        .map_err(|_| Error::input(&path, "row 0: malformed CSV header"))?;
    let Some(col) = headers.iter().position(|h| h == "alias") else {
        return Ok(None);
    };
    let mut out: HashMap<(String, String), (bool, bool, bool)> = HashMap::new();
    for (i, rec) in rdr.records().enumerate() {
        let rec = rec.map_err(|_| Error::input(&path, format!("row {}: malformed CSV", i + 1)))?;
        let (Some(agency), Some(id), Some(use_)) = (rec.get(0), rec.get(1), rec.get(col)) else {
            return Err(Error::input(
                &path,
                format!("row {}: missing columns", i + 1),
            ));
        };
        let e = out.entry((agency.to_string(), id.to_string())).or_default();
        match use_ {
            "name" => e.0 = true,
            "aka" => (e.1, e.2) = (true, true),
            _ => e.2 = true,
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
                let parts = [Field::GivenName, Field::FamilyName, Field::Dob].map(|f| r.ids.get(f));
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
        let csv = "agency,local_id,row,person,code,event_date,end_date,alias\n\
                   police,I-1,1,7,HT,2024-01-01,,name\n\
                   police,I-2,2,7,HT,2024-02-01,,aka\n\
                   housing,H-1,1,8,EMG,2024-01-01,,name\n\
                   housing,H-1,2,8,TH,2024-03-01,,\n";
        std::fs::write(dir.path().join("events.csv"), csv).unwrap();
        let a = read_alias_use(dir.path()).unwrap().unwrap();
        let get = |ag: &str, id: &str| a[&(ag.to_string(), id.to_string())];
        assert_eq!(get("police", "I-1"), (true, false, false));
        // An AKA row names the person and carries the alias: it bridges the two.
        assert_eq!(get("police", "I-2"), (false, true, true));
        // A client record written under both the alias and the name bridges them too.
        assert_eq!(get("housing", "H-1"), (true, false, true));
        std::fs::write(
            dir.path().join("events.csv"),
            "agency,local_id,row,person,code,event_date,end_date\npolice,I-1,1,7,HT,2024-01-01,\n",
        )
        .unwrap();
        assert_eq!(read_alias_use(dir.path()).unwrap(), None);
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

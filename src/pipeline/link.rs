//! The taskforce's job: every agency's encodings in, persons out (first version, issue #4).
//!
//! 1. Read every encodings file and refuse the set unless all carry the same schema
//!    fingerprint, key check value and CLK length (the error names the odd file).
//! 2. A *record* is one `(agency, record_key)`; rows sharing it (a provider's client id) are one
//!    record, and alias CLKs count as evidence for their record.
//! 3. Candidates: all pairs of CLKs whose popcounts are compatible with the threshold (rows
//!    sorted by popcount, each compared with the range that can reach it), compared with the
//!    Dice kernel ([`crate::compare`]) in parallel. Sub-quadratic blocking for millions of
//!    records is still to come (docs/linkage.md).
//! 4. Records are clustered ([`crate::cluster`]) and numbered `P-000001`, ... in the order of
//!    their smallest `(agency, record_key)`, so ids do not depend on file order or threads.
//!
//! Outputs, written atomically: `RUN_DIR/entities.parquet` (`agency`, `record_key`,
//! `person_id`), `RUN_DIR/events.parquet` (every input row's event facts with its person, the
//! input of `crosswalk report`) and `RUN_DIR/diagnostics.json` (counts, score histogram,
//! cluster sizes, timings). Per-pair scores are not written: published similarity tables enable
//! re-identification (Culnane, Rubinstein and Teague 2017; docs/privacy.md).

pub use crate::io::encodings::{check_each_file_once, check_same};
use std::collections::{BTreeMap, HashMap};

use rustc_hash::{FxHashMap, FxHashSet};
use std::path::PathBuf;
use std::time::Instant;

use rayon::prelude::*;

use crate::block::{Lsh, LshParams};
use crate::cluster::{cluster_scored_par, Edge};
use crate::compare::{ClkMatrix, Platform, Threshold};
use crate::error::{Error, Result};
use crate::io::entities::write_entities;
use crate::io::{encodings, events};
use crate::link::probabilistic::{Parameters, Params};

/// Two records (by node id) and their Dice score.
type ScoredPair = (u32, u32, f64);

use crate::link::candidates::{later_partners, lsh_pairs, FS_NAMES_ALL_PAIRS, GATHER_BUCKET};
pub use crate::link::{
    attach_orphans, one_to_one, record_score, record_scorer, Rows, AUTO_LSH_ROWS, DEFAULT_COHESION,
    DEFAULT_CONTAINMENT, DEFAULT_ORPHAN_MARGIN, DEFAULT_ORPHAN_OVERLAP, DEFAULT_THRESHOLD,
    MIN_DICE,
};

/// How candidate pairs are generated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blocking {
    /// Every pair whose popcounts allow the threshold (exact; quadratic).
    AllPairs,
    /// MinHash LSH bands ([`crate::block`]).
    Lsh(LshParams),
    /// All pairs up to [`AUTO_LSH_ROWS`] CLKs, LSH with default parameters above.
    Auto,
}

/// How records become persons.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LinkModel {
    /// Record-level rules: a Dice threshold on record CLKs, containment, cluster cohesion and
    /// lone-record attachment (docs/linkage.md).
    Rules,
    /// A Fellegi-Sunter model over the records' field-level parts, fitted on the run's own
    /// records ([`crate::link::probabilistic`]; a run of the default schema too small to fit
    /// its own takes the built-in model's `m` and `u`); the encodings must carry parts (a
    /// schema with `[parts]`). The threshold then only chooses candidates by record-CLK Dice; records with
    /// equal birth-date, names, phone, address or SSN-4 parts are candidates too. Clusters
    /// merge while their average match probability is at least `min_average`.
    Probabilistic {
        /// Average match probability at which clusters stop merging.
        min_average: f64,
        /// Whether the days between two records' events weigh as evidence (the event-gap
        /// comparison, [`crate::link::evidence::event_gap_level`]; on by default). Off, the gaps
        /// between events play no part in who is who, at some cost in accuracy: for analyses
        /// of time that must not lean on them (docs/linkage.md).
        event_gap: bool,
    },
}

pub use crate::link::candidates::{MAX_GROUP, NAMES_PASS_MIN};

/// A validated link job.
#[derive(Debug, Clone)]
pub struct LinkJob {
    /// Encodings files.
    pub inputs: Vec<PathBuf>,
    /// Run directory (created if missing).
    pub out: PathBuf,
    /// Dice threshold for a candidate pair to count as evidence.
    pub threshold: f64,
    /// Cluster cohesion: clusters merge while their average pair score is at least
    /// `cohesion × threshold`.
    pub cohesion: f64,
    /// A pair below the threshold (but at least [`MIN_DICE`]) still counts at its score in
    /// cluster averages when the smaller CLK has this share of its bits in the other; above 1
    /// turns this off.
    pub containment: f64,
    /// Lone records join the cluster whose CLKs contain this share of theirs (overlap
    /// coefficient); `None` leaves them alone.
    pub orphan_overlap: Option<f64>,
    /// How much better than the second-best cluster the best must be for a lone record to join.
    pub orphan_margin: f64,
    /// Candidate generation.
    pub blocking: Blocking,
    /// Deduplicated sources: each record links to at most one record of every other agency
    /// and to none of its own, pairs accepted greedily best first ([`one_to_one`]); no
    /// clustering, no lone-record attachment.
    pub one_to_one: bool,
    /// Worker threads (0: one per core).
    pub threads: usize,
    /// How records become persons.
    pub model: LinkModel,
    /// `--model fs`: take `m` and `u` from an earlier run (its directory or its
    /// `diagnostics.json`) instead of fitting them; λ is still fitted on this run.
    pub model_from: Option<PathBuf>,
}

/// What a link run did.
#[derive(Debug, Clone, Default)]
pub struct LinkSummary {
    /// Input rows.
    pub rows: usize,
    /// Records (unique `(agency, record_key)`).
    pub records: usize,
    /// CLKs compared (distinct per record, aliases included).
    pub clks: usize,
    /// Pairs offered to the kernel (popcount ranges; with LSH, bucket pairs, a pair colliding
    /// in several bands counted in each).
    pub candidates: u64,
    /// Record pairs at or above the threshold.
    pub pairs: usize,
    /// Persons found.
    pub persons: usize,
    /// Lone records attached: to a cluster by overlap under the rules ([`attach_orphans`]),
    /// to their likeliest partner's person under the model.
    pub orphans_attached: usize,
    /// Kernel platform used.
    pub platform: &'static str,
    /// Seconds spent reading, comparing, clustering, writing.
    pub seconds: [f64; 4],
    /// What the operator should know about the inputs (files of one agency sharing record
    /// keys); also in `diagnostics.json`.
    pub warnings: Vec<String>,
}

/// Warnings for pairs of files of one agency that share record keys: their rows are read as
/// the same records (right for two exports of one agency, wrong for two agencies that gave
/// themselves the same name).
pub fn shared_record_keys(files: &[encodings::Encodings], paths: &[PathBuf]) -> Vec<String> {
    let mut out = Vec::new();
    for i in 0..files.len() {
        let mine: FxHashSet<&str> = files[i].record_key.iter().map(String::as_str).collect();
        for j in i + 1..files.len() {
            if files[j].meta.agency != files[i].meta.agency {
                continue;
            }
            let shared: FxHashSet<&str> = files[j]
                .record_key
                .iter()
                .map(String::as_str)
                .filter(|k| mine.contains(k))
                .collect();
            if !shared.is_empty() {
                out.push(format!(
                    "{} and {} are both agency {:?} and share {} record key(s): their rows are \
                     read as the same records. Right for two exports of one agency (say, two \
                     quarters); if they are two agencies, give each its own agency name in its \
                     source mapping and encode again; if one export repeats the other's rows, \
                     link only the newer, or its events count twice (docs/formats.md §5)",
                    paths[i].display(),
                    paths[j].display(),
                    files[i].meta.agency,
                    shared.len()
                ));
            }
        }
    }
    out
}

/// A warning when hardened encodings are linked by the rules at the plain CLKs' default
/// threshold: every hardening lowers every pair's Dice, and diffusion far below 0.8
/// (docs/encoding.md gives the thresholds measured for each).
fn hardening_threshold_warning(hardening: &str, threshold: f64, default: f64) -> Option<String> {
    let hardened = !matches!(hardening, "none" | "unrecorded" | "unknown");
    (hardened && threshold == default).then(|| {
        format!(
            "the encodings are hardened ({hardening}), which lowers every pair's similarity, but \
             the threshold is the default for plain CLKs ({default}): give --threshold \
             (docs/encoding.md lists the thresholds measured for each hardening)"
        )
    })
}

/// Every record's field-level evidence, gathered over its rows: the distinct values of each
/// part (legal and alias names parts together) and of its known sexes and birth-year
/// intervals.
///
/// `parts` are the files' part columns, taken out of them by the link job.
fn record_evidence(
    files: &[encodings::Encodings],
    parts: &[encodings::PartColumns],
    node_of: &FxHashMap<(&str, &str), u32>,
    records: usize,
    event_gap: bool,
) -> Vec<crate::link::evidence::RecordEvidence> {
    use crate::link::evidence::{born_interval, sex_code, RecordEvidence};
    use crate::schema::Part;
    let mut out = vec![RecordEvidence::default(); records];
    // No event is known after the latest event date of the run: a later end date (an open
    // case's placeholder, `9999-12-31`) ends the span there, or it would meet every stranger.
    let horizon = files
        .iter()
        .flat_map(|f| f.event_date.iter().flatten())
        .max()
        .copied();
    for (f, cols) in files.iter().zip(parts) {
        let value = |p: Part, i: usize| cols.value(p, f.part_bits(p), i);
        for i in 0..f.len() {
            let r = &mut out[node_of[&(f.meta.agency.as_str(), f.record_key[i].as_str())] as usize];
            let names = value(Part::Names, i).map(<[u8]>::to_vec);
            let aliases = cols.alias_names.get(i).into_iter().flatten();
            for n in names
                .into_iter()
                .chain(aliases.map(|c| c.as_bytes().to_vec()))
            {
                RecordEvidence::add(&mut r.names, n);
            }
            // Birth years from an age are compared as years, never as a date.
            let dob_list = if f.dob_from_age.get(i).copied().unwrap_or(false) {
                &mut r.born_years
            } else {
                &mut r.dob
            };
            if let Some(d) = value(Part::Dob, i) {
                let tag = crate::link::evidence::dob_tag(d);
                if let Some(g) = value(Part::GivenDob, i) {
                    RecordEvidence::add(&mut r.given_dob, (tag, g.to_vec()));
                }
                if let Some(f) = value(Part::FamilyDob, i) {
                    RecordEvidence::add(&mut r.family_dob, (tag, f.to_vec()));
                }
            }
            for (part, list) in [
                (Part::Dob, dob_list),
                (Part::Phone, &mut r.phone),
                (Part::Address, &mut r.address),
                (Part::Ssn4, &mut r.ssn4),
            ] {
                if let Some(v) = value(part, i) {
                    RecordEvidence::add(list, v.to_vec());
                }
            }
            let sex = sex_code(&f.sex[i]);
            if sex > 0 {
                RecordEvidence::add(&mut r.sex, sex);
            }
            if let Some(b) = born_interval(&f.age_band[i], f.event_date[i]) {
                RecordEvidence::add(&mut r.born, b);
            }
            if let Some(start) = f.event_date[i].filter(|_| event_gap) {
                let end = f.end_date[i].map(|e| horizon.map_or(e, |h| e.min(h)));
                r.add_event(start, end);
            }
        }
    }
    out
}

/// The model of an earlier run, from its directory or its `diagnostics.json`
/// ([`crate::link::evidence::model_from_diagnostics`]), and whether an older version saved it
/// without comparisons this version weighs ([`crate::link::evidence::lacks_comparisons`]: they
/// weigh nothing in this run).
fn read_model(path: &std::path::Path) -> Result<(crate::link::model::Model, bool)> {
    let file = if path.is_dir() {
        path.join("diagnostics.json")
    } else {
        path.to_path_buf()
    };
    let text = std::fs::read_to_string(&file).map_err(|e| Error::io(&file, e))?;
    let json: serde_json::Value = serde_json::from_str(&text).map_err(|_| {
        Error::config(
            &file,
            "--model-from: not a diagnostics.json (it is not JSON)",
        )
    })?;
    let model = crate::link::evidence::model_from_diagnostics(&json["model"]).map_err(|e| {
        Error::config(
            &file,
            format!("--model-from: {e}; give the run directory of an earlier `crosswalk link --model fs` of this version"),
        )
    })?;
    Ok((
        model,
        crate::link::evidence::lacks_comparisons(&json["model"]),
    ))
}

/// Runs the link job.
pub fn run(job: &LinkJob) -> Result<LinkSummary> {
    let t0 = Instant::now();
    if job.inputs.is_empty() {
        return Err(Error::config(&job.out, "no encodings files given"));
    }
    // The run is written into a staging directory and swapped in whole at the end; an output
    // directory holding anything else is refused now, before the work.
    let out = crate::io::AtomicDir::create(&job.out, &|name| {
        crate::io::run::is_run_entry(name) || crate::io::is_crosswalk_leftover(name)
    })?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(job.threads)
        .build()
        .map_err(|e| Error::io("<thread pool>", std::io::Error::other(e.to_string())))?;
    // 1. Read and check.
    let files: Vec<encodings::Encodings> = pool.install(|| {
        job.inputs
            .par_iter()
            .map(|p| encodings::read(p))
            .collect::<Result<_>>()
    })?;
    for (f, p) in files.iter().zip(&job.inputs).skip(1) {
        check_same(&files[0].meta, &job.inputs[0], &f.meta, p)?;
    }
    check_each_file_once(&job.inputs, &pool)?;
    let mut warnings = shared_record_keys(&files, &job.inputs);
    // Equal fingerprints mean equal schemas, so any file that recorded its hardening names it
    // for all (files written before the label existed say `unrecorded`).
    let hardening = files
        .iter()
        .map(|f| f.meta.hardening.as_str())
        .find(|h| *h != "unrecorded")
        .unwrap_or("unrecorded")
        .to_string();
    // Under the model the record-CLK threshold only offers candidates (the parts weigh them),
    // and 0.7 is the measured setting for diffused record CLKs too (docs/linkage.md).
    if job.model == LinkModel::Rules {
        let default = crate::link::DEFAULT_THRESHOLD;
        if let Some(w) = hardening_threshold_warning(&hardening, job.threshold, default) {
            warnings.push(w);
        }
    }
    let parts_taps = match job.model {
        LinkModel::Rules => None,
        LinkModel::Probabilistic { .. } => Some(parts_taps(&files, &job.inputs[0])?),
    };
    // An earlier run's model is read now, so that a bad `--model-from` fails before the work.
    let fixed = match job.model_from.as_deref().map(read_model).transpose()? {
        Some((model, true)) => {
            warnings.push(
                "--model-from: the model was saved by an older version of crosswalk: the \
                 comparisons it lacks (the given name at the birth date, the event gap or its \
                 five levels) weigh nothing in this run; link once without --model-from to fit \
                 a model that weighs them"
                    .to_string(),
            );
            Some(model)
        }
        other => other.map(|(model, _)| model),
    };
    // The part columns leave the files: the model copies what it needs into the records'
    // evidence and they are freed then (at a million records, half a GB); the rules never
    // read them.
    let mut files = files;
    let mut part_columns: Vec<encodings::PartColumns> = files
        .iter_mut()
        .map(|f| std::mem::take(&mut f.parts))
        .collect();
    if parts_taps.is_none() {
        part_columns = Vec::new();
    }
    let linked = link_files(job, &files, part_columns, parts_taps, fixed, &pool, t0)?;
    let Linked {
        keys,
        node_of,
        labels,
        rows,
        clks: n,
        candidates,
        scored_pairs,
        borderline,
        histogram: hist,
        orphans_attached,
        platform,
        blocking,
        model: model_diag,
        model_warning,
        seconds: [t_read, t_lsh, t_compare, t_cluster, t_orphans],
    } = linked;
    warnings.extend(model_warning);
    // 5. Write.
    let t3 = Instant::now();
    // Person numbers in order of first appearance.
    let mut number: HashMap<u32, usize> = HashMap::new();
    for &l in &labels {
        let next = number.len() + 1;
        number.entry(l).or_insert(next);
    }
    let ids: Vec<String> = labels
        .iter()
        .map(|l| format!("P-{:06}", number[l]))
        .collect();
    write_entities(
        &out.path().join("entities.parquet"),
        keys.iter().zip(&ids).map(|(k, id)| (k.0, k.1, id.as_str())),
    )?;
    // The run's events with their persons: the analytics' input (no CLKs).
    events::write_from_encodings(
        &out.path().join("events.parquet"),
        &files,
        &|agency, key| {
            node_of
                .get(&(agency, key))
                .map(|&n| ids[n as usize].as_str())
        },
    )?;

    let mut sizes: BTreeMap<usize, usize> = BTreeMap::new();
    let mut members: HashMap<u32, usize> = HashMap::new();
    for &l in &labels {
        *members.entry(l).or_default() += 1;
    }
    for &m in members.values() {
        *sizes.entry(m).or_default() += 1;
    }
    let summary = LinkSummary {
        rows,
        records: keys.len(),
        clks: n,
        candidates,
        pairs: scored_pairs,
        persons: number.len(),
        orphans_attached,
        platform,
        seconds: [t_read, t_compare, t_cluster, t3.elapsed().as_secs_f64()],
        warnings,
    };
    let ranges: serde_json::Map<String, serde_json::Value> = hist
        .iter()
        .enumerate()
        .filter(|(_, &c)| c > 0)
        .map(|(i, &c)| {
            (
                format!("{:.2}-{:.2}", i as f64 / 20.0, (i + 1) as f64 / 20.0),
                c.into(),
            )
        })
        .collect();
    let cluster_sizes: serde_json::Map<String, serde_json::Value> = sizes
        .iter()
        .map(|(s, &c)| (s.to_string(), c.into()))
        .collect();
    let round3 = |x: f64| (x * 1000.0).round() / 1000.0;
    let rules = job.model == LinkModel::Rules;
    let diag = serde_json::json!({
        "threshold": job.threshold,
        // The record-level rules' settings; null where the model replaces them.
        "cohesion": rules.then_some(job.cohesion),
        "containment": rules.then_some(job.containment),
        "orphan_overlap": if rules { job.orphan_overlap } else { None },
        "orphan_margin": rules.then_some(job.orphan_margin),
        "one_to_one": job.one_to_one,
        "rows": summary.rows,
        "records": summary.records,
        "clks": summary.clks,
        "candidate_pairs": summary.candidates,
        "pairs_at_or_above_threshold": summary.pairs,
        "borderline_pairs": borderline,
        "orphans_attached": summary.orphans_attached,
        "persons": summary.persons,
        "kernel": summary.platform,
        "hardening": hardening,
        "model": model_diag,
        "blocking": blocking,
        "warnings": summary.warnings,
        "score_histogram": ranges,
        "cluster_sizes": cluster_sizes,
        "seconds": {
            "read": round3(summary.seconds[0]),
            "lsh_build": round3(t_lsh),
            "compare": round3(summary.seconds[1]),
            "cluster": round3(summary.seconds[2]),
            "of_which_lone_records": round3(t_orphans),
        },
    });
    let diag = serde_json::to_string_pretty(&diag)
        .map_err(|e| Error::io(&job.out, std::io::Error::other(e.to_string())))?
        + "\n";
    crate::io::write_atomic(&out.path().join("diagnostics.json"), diag.as_bytes())?;
    crate::io::run::write_manifest(out.path())?;
    crate::io::pause("run");
    out.commit()?;
    Ok(summary)
}

/// What linking gives before it is written: the records in order, a person label per record,
/// and what the summary and the diagnostics say of the work.
pub(crate) struct Linked<'a> {
    /// Records (agency, record key), sorted: record `i` is node `i` (borrowing the files).
    pub keys: Vec<(&'a str, &'a str)>,
    /// The node of each record, borrowing the files' keys.
    pub node_of: FxHashMap<(&'a str, &'a str), u32>,
    /// A label per record; records of one person share it.
    pub labels: Vec<u32>,
    /// Input rows.
    pub rows: usize,
    /// CLKs compared.
    pub clks: usize,
    /// Pairs offered to the kernel.
    pub candidates: u64,
    /// Record pairs at or above the threshold.
    pub scored_pairs: usize,
    /// Pairs within 0.05 above the threshold.
    pub borderline: usize,
    /// Scored pairs per band of 0.05.
    pub histogram: [usize; 20],
    /// Lone records attached by overlap.
    pub orphans_attached: usize,
    /// Kernel platform used.
    pub platform: &'static str,
    /// The blocking used, for the diagnostics.
    pub blocking: serde_json::Value,
    /// The model's section of the diagnostics (null for the rules).
    pub model: serde_json::Value,
    /// A warning about the model for the run's summary (its parameters are the built-in ones).
    pub model_warning: Option<String>,
    /// Seconds: reading and records, LSH tables, comparing, clustering, of which lone records.
    pub seconds: [f64; 5],
}

/// The parts' diffusion of files the match model links ([`crate::link::evidence::taps_of`]),
/// or the refusal of files without the names and birth-date parts it learns from (`first`:
/// the path the message names).
pub(crate) fn parts_taps(
    files: &[encodings::Encodings],
    first: &std::path::Path,
) -> Result<Option<usize>> {
    let parts = &files[0].meta.parts;
    let has = |part| parts.iter().any(|p| p.0 == part);
    if !has(crate::schema::Part::Names) || !has(crate::schema::Part::Dob) {
        return Err(Error::config(
            first,
            "--model fs weighs each identifier group apart and learns from names and birth \
             dates, but these encodings carry no names or no birth-date parts: encode with a \
             schema that has a [parts] table and the name and dob fields (docs/formats.md), \
             or link with --model rules",
        ));
    }
    Ok(crate::link::evidence::taps_of(
        &files[0].meta.parts_hardening,
    ))
}

/// Steps 2 to 4 of a link job on files already read and checked: records, their CLKs compared,
/// and persons by the rules or the model. `part_columns` are the files' parts taken out of
/// them (empty for the rules), `parts_taps` the parts' diffusion (`Some` for the model),
/// `fixed` an earlier run's model; `t0` is when the job started (for the read time).
pub(crate) fn link_files<'a>(
    job: &LinkJob,
    files: &'a [encodings::Encodings],
    mut part_columns: Vec<encodings::PartColumns>,
    parts_taps: Option<Option<usize>>,
    fixed: Option<crate::link::model::Model>,
    pool: &rayon::ThreadPool,
    t0: Instant,
) -> Result<Linked<'a>> {
    let bits = files[0].meta.clk_bits;
    // 2. Records, sorted so that numbering does not depend on file order.
    let mut keys: Vec<(&str, &str)> = Vec::new();
    for f in files {
        for k in &f.record_key {
            keys.push((f.meta.agency.as_str(), k.as_str()));
        }
    }
    let rows = keys.len();
    keys.par_sort_unstable();
    keys.dedup();
    let node_of: FxHashMap<(&str, &str), u32> = keys
        .iter()
        .enumerate()
        .map(|(i, &k)| (k, i as u32))
        .collect();
    // Distinct CLKs per record, main and alias (borrowed from the files: nothing copied).
    let width = bits / 8;
    let mut seen: FxHashSet<(u32, &[u8])> = FxHashSet::default();
    let mut owner: Vec<u32> = Vec::new();
    let mut bytes: Vec<u8> = Vec::new();
    for f in files {
        for i in 0..f.len() {
            let node = node_of[&(f.meta.agency.as_str(), f.record_key[i].as_str())];
            let main = &f.clks[i * width..(i + 1) * width];
            for c in std::iter::once(main).chain(f.alias_clks[i].iter().map(|c| c.as_bytes())) {
                if c.iter().all(|&b| b == 0) {
                    continue;
                }
                if seen.insert((node, c)) {
                    owner.push(node);
                    bytes.extend_from_slice(c);
                }
            }
        }
    }
    drop(seen);
    // Sort CLK rows by popcount (ties by owner) for the popcount ranges; the matrix is built
    // once, from the sorted rows.
    // Popcounts once per row (not once per comparison of the sort), and the keys are
    // distinct (the row is one), so an unstable parallel sort gives the one order.
    let popcounts: Vec<u32> = pool.install(|| {
        bytes
            .par_chunks(width.max(1))
            .map(|c| c.iter().map(|b| b.count_ones()).sum())
            .collect()
    });
    let mut order: Vec<u32> = (0..owner.len() as u32).collect();
    pool.install(|| {
        order.par_sort_unstable_by_key(|&r| (popcounts[r as usize], owner[r as usize], r))
    });
    drop(popcounts);
    let sorted_bytes: Vec<u8> = order
        .iter()
        .flat_map(|&r| {
            bytes[r as usize * width..(r as usize + 1) * width]
                .iter()
                .copied()
        })
        .collect();
    let owner: Vec<u32> = order.iter().map(|&r| owner[r as usize]).collect();
    let matrix = ClkMatrix::from_bytes(bits, &sorted_bytes).ok_or_else(|| {
        Error::encoding(&job.inputs[0], "CLK length is not a multiple of 64 bits")
    })?;
    // The matrix holds its own copy.
    drop((sorted_bytes, bytes, order));
    let t_read = t0.elapsed().as_secs_f64();

    // 3. Compare.
    let t1 = Instant::now();
    let platform = Platform::detect();
    let t = Threshold::new(job.threshold);
    let n = matrix.len();
    let pops: Vec<u32> = (0..n).map(|i| matrix.popcount(i)).collect();
    let tv = t.value().max(1e-9);
    let lsh = match job.blocking {
        Blocking::AllPairs => None,
        Blocking::Lsh(p) => Some(p),
        Blocking::Auto if n > AUTO_LSH_ROWS => Some(LshParams::default()),
        Blocking::Auto => None,
    }
    .map(|p| {
        pool.install(|| match job.model {
            // The model maps the buckets once and needs no tables after.
            LinkModel::Probabilistic { .. } => Lsh::new_streaming(&matrix, p),
            LinkModel::Rules => Lsh::new(&matrix, p),
        })
    });
    let t_lsh = t1.elapsed().as_secs_f64();
    let score_of = |i: usize, j: u32, inter: u32| -> ScoredPair {
        let total = pops[i] + pops[j as usize];
        (
            owner[i],
            owner[j as usize],
            2.0 * inter as f64 / total as f64,
        )
    };
    let per_row: Vec<(u64, Vec<ScoredPair>)> = pool.install(|| match &lsh {
        Some(lsh) => {
            let (found, count) =
                lsh_pairs(lsh, &matrix, platform, &owner, t, GATHER_BUCKET, &score_of);
            vec![(count, found)]
        }
        // Blocks of eight rows, each row against its partners j > i whose popcount can reach
        // t (p_j ≤ p_i·(2−t)/t), through the block kernel.
        None => (0..n.div_ceil(8))
            .into_par_iter()
            .map(|b| {
                let ranges = later_partners(&pops, b, tv);
                let mut found = Vec::new();
                matrix.matches_block(platform, b * 8, &ranges, t, &mut found);
                let out = found
                    .into_iter()
                    .filter(|&(i, j, _)| owner[i as usize] != owner[j as usize])
                    .map(|(i, j, inter)| score_of(i as usize, j, inter))
                    .collect();
                (ranges.iter().map(|r| r.len() as u64).sum(), out)
            })
            .collect(),
    });
    let candidates: u64 = per_row.iter().map(|r| r.0).sum();
    // Best score per record pair. One list (LSH) is ordered in place, not copied: at a million
    // records it holds tens of millions of pairs.
    let mut scored: Vec<(u32, u32, f64)> = if per_row.len() == 1 {
        per_row.into_iter().next().map(|r| r.1).unwrap_or_default()
    } else {
        per_row.into_iter().flat_map(|r| r.1).collect()
    };
    scored
        .par_iter_mut()
        .for_each(|x| *x = (x.0.min(x.1), x.0.max(x.1), x.2));
    scored.par_sort_unstable_by(|x, y| (x.0, x.1).cmp(&(y.0, y.1)).then(y.2.total_cmp(&x.2)));
    scored.dedup_by_key(|x| (x.0, x.1));
    let t_compare = t1.elapsed().as_secs_f64();
    // The blocking used, for the diagnostics; then the LSH tables, which the model does not
    // look at again (lone records are the rules'), are freed.
    let blocking = match &lsh {
        Some(l) => serde_json::json!({
            "method": "minhash-lsh",
            "bands": l.params().bands,
            "rows": l.params().rows,
            "max_bit_share": l.params().max_bit_share_permille as f64 / 1000.0,
        }),
        None => serde_json::json!({"method": "all-pairs"}),
    };
    let lsh = if job.model == LinkModel::Rules {
        lsh
    } else {
        None
    };
    // What the diagnostics say of the scored pairs, taken now: the model takes the pairs over.
    let mut hist = [0usize; 20];
    for &(_, _, s) in &scored {
        hist[((s * 20.0) as usize).min(19)] += 1;
    }
    let borderline = scored.iter().filter(|x| x.2 < job.threshold + 0.05).count();
    let scored_pairs = scored.len();

    // 4. Cluster.
    let t2 = Instant::now();
    // The rules' edges: every scored pair (built only where the rules run).
    let edges = || -> Vec<Edge> {
        scored
            .iter()
            .map(|&(a, b, score)| Edge { a, b, score })
            .collect()
    };
    // Cluster averages count a record pair at its score (the best over the two records' CLKs)
    // when it reaches the threshold, or when the smaller CLK is contained in the other (a
    // sparse record against a full one); other pairs count 0.
    let score = record_scorer(
        &matrix,
        platform,
        &owner,
        keys.len(),
        job.threshold,
        job.containment,
    );
    let agency_of: Vec<&str> = keys.iter().map(|k| k.0).collect();
    let mut model_diag = serde_json::Value::Null;
    let mut model_warning = None;
    let mut lone_attached = 0;
    let labels = if let (
        LinkModel::Probabilistic {
            min_average,
            event_gap,
        },
        Some(taps),
    ) = (job.model, parts_taps)
    {
        let records = record_evidence(files, &part_columns, &node_of, keys.len(), event_gap);
        drop(std::mem::take(&mut part_columns));
        let clk_pairs: Vec<(u32, u32)> = {
            let scored = std::mem::take(&mut scored);
            scored.iter().map(|&(a, b, _)| (a, b)).collect()
        };
        let names_all_pairs = match job.blocking {
            Blocking::AllPairs => true,
            Blocking::Lsh(_) => false,
            Blocking::Auto => records.len() <= FS_NAMES_ALL_PAIRS,
        };
        // A run of the built-in schema too small to fit its own model takes the built-in
        // one's `m` and `u`; a run of another schema has no such stand-in.
        let default_fingerprint = crate::schema::LinkageSchema::default_schema().fingerprint();
        let builtin = files
            .iter()
            .all(|f| f.meta.schema_fingerprint == default_fingerprint)
            .then(crate::link::evidence::builtin_model);
        let params = match (&fixed, &builtin) {
            (Some(m), _) => Params::Fixed(m),
            (None, Some(b)) => Params::FitOr(b),
            (None, None) => Params::Fit,
        };
        let settings = crate::link::probabilistic::Settings {
            taps,
            min_average,
            params,
            names_all_pairs,
        };
        let (mut outcome, left_out) = pool
            .install(|| crate::link::probabilistic::link(&records, clk_pairs, &settings, platform))
            .map_err(|e| {
                Error::config(
                    &job.out,
                    format!("the match model cannot be fitted on these records: {e}"),
                )
            })?;
        if !event_gap {
            // Every pair's event gap was missing; a built-in or fixed model's weights for it
            // were never used and are not shown as if they were.
            outcome.model.neutralise(crate::link::evidence::EVENT_GAP);
        }
        if let Parameters::BuiltIn { session, pairs } = outcome.parameters {
            model_warning = Some(format!(
                "the run is too small to fit the match model (its {session} training session \
                 has {pairs} candidate pairs, fewer than {}): its m and u are crosswalk's \
                 built-in ones, fitted on a synthetic world (docs/linkage.md)",
                crate::link::evidence::MIN_SESSION_PAIRS
            ));
        }
        lone_attached = outcome.lone_attached;
        model_diag =
            model_diagnostics(&outcome, min_average, event_gap, &left_out, names_all_pairs);
        outcome.labels
    } else if job.one_to_one {
        one_to_one(keys.len(), &edges(), &agency_of)
    } else {
        let edges = edges();
        pool.install(|| {
            cluster_scored_par(keys.len(), &edges, job.cohesion * job.threshold, &score)
        })
    };
    let t_orphans = Instant::now();
    let orphan_overlap = if job.one_to_one || job.model != LinkModel::Rules {
        None
    } else {
        job.orphan_overlap
    };
    let (labels, orphans_attached) = match orphan_overlap {
        Some(min_overlap) => pool.install(|| {
            let rows = Rows {
                matrix: &matrix,
                owner: &owner,
                pops: &pops,
                platform,
                lsh: lsh.as_ref(),
            };
            attach_orphans(&labels, &rows, min_overlap, job.orphan_margin)
        }),
        None => (labels, lone_attached),
    };
    let t_cluster = t2.elapsed().as_secs_f64();
    let t_orphans = t_orphans.elapsed().as_secs_f64();

    Ok(Linked {
        keys,
        node_of,
        labels,
        rows,
        clks: n,
        candidates,
        scored_pairs,
        borderline,
        histogram: hist,
        orphans_attached,
        platform: platform.name(),
        blocking,
        model: model_diag,
        model_warning,
        seconds: [t_read, t_lsh, t_compare, t_cluster, t_orphans],
    })
}

/// The model's section of `diagnostics.json`: its parameters and weights per comparison level,
/// λ, and its own estimates of false and missed matches among the candidates.
fn model_diagnostics(
    o: &crate::link::probabilistic::Outcome,
    min_average: f64,
    event_gap: bool,
    left_out: &[(&str, usize)],
    names_all_pairs: bool,
) -> serde_json::Value {
    let round = |x: f64, d: i32| {
        let f = 10f64.powi(d);
        (x * f).round() / f
    };
    let comparisons: Vec<serde_json::Value> = crate::link::evidence::COMPARISONS
        .iter()
        .enumerate()
        .map(|(c, (name, levels))| {
            let lv: Vec<serde_json::Value> = (1..*levels)
                .map(|l| {
                    serde_json::json!({
                        "level": l,
                        "label": crate::link::evidence::level_label(c, l as u8),
                        // Full precision: a later run may fix its model to these.
                        "m": o.model.m[c][l],
                        "u": o.model.u[c][l],
                        "weight": round(o.model.level_weight(c, l as u8), 2),
                    })
                })
                .collect();
            serde_json::json!({"name": name, "levels": lv})
        })
        .collect();
    let hist: serde_json::Map<String, serde_json::Value> = o
        .weight_histogram
        .iter()
        .map(|(w, c)| (format!("{w}..{}", w + 5), (*c).into()))
        .collect();
    serde_json::json!({
        "method": "fellegi-sunter",
        "parameters": o.parameters.label(),
        "parameters_source": o.parameters.source(),
        "min_average": min_average,
        "event_gap": event_gap,
        "lambda": o.model.lambda,
        "random_pairs": o.random_pairs,
        "names_parts_all_pairs": names_all_pairs,
        "offered_pairs": o.offered,
        "candidate_pairs": o.candidates,
        "dob_group_records_left_out": left_out[0].1,
        "group_records_left_out": left_out
            .iter()
            .map(|&(part, n)| (part.to_string(), serde_json::Value::from(n)))
            .collect::<serde_json::Map<_, _>>(),
        "lone_records_attached": o.lone_attached,
        "likely_matches": o.likely_matches,
        "expected_false_matches": round(o.expected_false, 1),
        "expected_missed_matches": round(o.expected_missed, 1),
        "comparisons": comparisons,
        "names_frequency": {
            "values": o.name_values,
            "kappa": round(o.name_kappa, 3),
            "alpha": crate::link::frequency::ALPHA,
            "max_adjustment": crate::link::frequency::MAX_ADJUSTMENT,
            "neighbourhood_kappa": o.neighbourhood_kappa.map(|k| round(k, 3)),
        },
        "match_weight_histogram": hist,
        "household": o.household.as_ref().map(|h| household_json(h, &o.model)),
        "household_no_dob": o.household_no_dob.as_ref().map(|h| household_json(h, &o.model)),
    })
}

/// A household stratum in `diagnostics.json`: its pairs, λ, and the names' `u` and weights.
fn household_json(
    h: &crate::link::evidence::Household,
    model: &crate::link::model::Model,
) -> serde_json::Value {
    let names = crate::link::evidence::NAMES;
    let round = |x: f64, d: i32| (x * 10f64.powi(d)).round() / 10f64.powi(d);
    serde_json::json!({
        "pairs": h.pairs,
        "lambda": h.lambda,
        "names": (1..h.u_names.len()).map(|l| serde_json::json!({
            "level": l,
            "label": crate::link::evidence::level_label(names, l as u8),
            "u": h.u_names[l],
            "weight": round((model.m[names][l] / h.u_names[l]).log2(), 2),
        })).collect::<Vec<_>>(),
        "given_dob": (1..h.m_given.len()).map(|l| serde_json::json!({
            "level": l,
            "label": crate::link::evidence::level_label(crate::link::evidence::GIVEN_DOB, l as u8),
            "m": h.m_given[l],
            "u": h.u_given[l],
            "weight": round((h.m_given[l] / h.u_given[l]).log2(), 2),
        })).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record's event span runs from its first event date to its last end date; an end date
    /// past the run's latest event date (an open case's placeholder) ends it there, and
    /// without the event gap no span is kept.
    #[test]
    fn spans_end_at_the_runs_latest_event() {
        use chrono::Datelike;
        let d = |y, m, dd| chrono::NaiveDate::from_ymd_opt(y, m, dd);
        let f = encodings::Encodings {
            record_key: vec!["a".into(), "b".into(), "a".into()],
            event_date: vec![d(2023, 1, 1), d(2023, 6, 1), d(2023, 2, 1)],
            end_date: vec![d(9999, 12, 31), None, d(2023, 3, 1)],
            age_band: vec![String::new(); 3],
            sex: vec![String::new(); 3],
            dob_from_age: vec![false; 3],
            ..Default::default()
        };
        let node_of: FxHashMap<(&str, &str), u32> =
            [(("", "a"), 0u32), (("", "b"), 1)].into_iter().collect();
        let parts = [encodings::PartColumns::default()];
        let files = std::slice::from_ref(&f);
        let day = |x: Option<chrono::NaiveDate>| x.map(|x| x.num_days_from_ce()).unwrap();
        let r = record_evidence(files, &parts, &node_of, 2, true);
        assert_eq!(r[0].span, Some((day(d(2023, 1, 1)), day(d(2023, 6, 1)))));
        assert_eq!(r[1].span, Some((day(d(2023, 6, 1)), day(d(2023, 6, 1)))));
        let r = record_evidence(files, &parts, &node_of, 2, false);
        assert!(r.iter().all(|x| x.span.is_none()));
    }

    #[test]
    fn one_to_one_takes_the_best_partner_per_agency() {
        // 0 (agency a) matches 1 (b) at 0.9 and 2 (b) at 0.8; 2 also matches 3 (a) at 0.7;
        // 4 and 5 share agency a and are never linked.
        let e = |a, b, score| Edge { a, b, score };
        let edges = [e(0, 2, 0.8), e(0, 1, 0.9), e(2, 3, 0.7), e(4, 5, 0.99)];
        let agency = ["a", "b", "b", "a", "a", "a"];
        let labels = one_to_one(6, &edges, &agency);
        assert_eq!(labels, vec![0, 0, 2, 2, 4, 5]);
    }

    /// Twelve groups of similar 1024-bit CLKs: a few bits flipped per row, and a quarter,
    /// half or 70% of the group's bits dropped in three rows of four, three quarters of all bits
    /// set in every seventh (so a bucket holds popcounts far enough apart for the popcount
    /// windows to matter); two rows per record, in no popcount order.
    fn grouped_clks(n: usize) -> ClkMatrix {
        let mut state = 7u64;
        let mut next = move || crate::block::splitmix(&mut state);
        let bases: Vec<Vec<u64>> = (0..12)
            .map(|_| (0..16).map(|_| next() & next()).collect())
            .collect();
        let mut bytes = Vec::new();
        for r in 0..n {
            for w in &bases[r % 12] {
                let flip = next() & next() & next() & next() & next();
                let keep = match r % 4 {
                    0 => u64::MAX,
                    1 => next() | next(),
                    2 => next(),
                    _ => next() & (next() | next()),
                };
                // Every seventh row dense: its popcount is outside most rows' windows.
                let extra = if r % 7 == 6 { next() | next() } else { 0 };
                bytes.extend_from_slice(&(((w & keep) | extra) ^ flip).to_le_bytes());
            }
        }
        ClkMatrix::from_bytes(1024, &bytes).unwrap()
    }

    /// Large buckets through the block kernel give exactly the pairs that comparing every
    /// bucket pair by pair gives, and both are every distinct LSH candidate that passes.
    #[test]
    fn lsh_pairs_gathered_or_not_streamed_or_not_are_the_same() {
        let m = grouped_clks(300);
        let owner: Vec<u32> = (0..m.len() as u32).map(|r| r / 2).collect();
        let params = LshParams {
            bands: 12,
            rows: 3,
            seed: 5,
            pool: 0,
            max_bit_share_permille: 1000,
        };
        let lsh = Lsh::new(&m, params);
        for t in [0.4, 0.6, 0.8] {
            let t = Threshold::new(t);
            for p in Platform::available() {
                let mut want = Vec::new();
                lsh.for_each_candidate(&mut |i, j| {
                    if owner[i as usize] != owner[j as usize] {
                        if let Some(x) = m.passes(p, i as usize, j as usize, t) {
                            want.push((i, j, x));
                        }
                    }
                });
                want.sort_unstable();
                assert!(want.len() > 100, "{} pairs: too few to test", want.len());
                let score = |i: usize, j: u32, x: u32| (i as u32, j, x);
                let mut counts = Vec::new();
                // With the tables built up front, and sorted band by band (the model's LSH).
                let streaming = Lsh::new_streaming(&m, params);
                for (gather, lsh) in [
                    (usize::MAX, &lsh),
                    (16, &lsh),
                    (2, &lsh),
                    (16, &streaming),
                    (2, &streaming),
                ] {
                    let (mut got, count) = lsh_pairs(lsh, &m, p, &owner, t, gather, &score);
                    got.sort_unstable();
                    assert!(
                        got == want,
                        "{} gather {gather} t {}: {} pairs, {} wanted",
                        p.name(),
                        t.value(),
                        got.len(),
                        want.len()
                    );
                    counts.push(count);
                }
                assert!(counts.iter().all(|&c| c == counts[0]));
            }
        }
    }
}

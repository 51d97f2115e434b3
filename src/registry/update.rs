//! One registry run: add this month's batches (and withdraw retracted ones), link what is new
//! against what is there, and commit the next generation.
//!
//! The cost is meant to follow the new records, not the registry (docs/registry.md):
//! - new batches are indexed once (records, distinct CLKs, band keys with the registry's
//!   frozen [`MinHasher`]); old batches' indexes are read, never recomputed;
//! - candidate pairs are new × new (LSH tables of the new CLKs) and old × new (per band, a
//!   merge join of each old batch's sorted band table with the new CLKs' table); old × old
//!   pairs are never formed again: their evidence is carried over from the previous
//!   generation;
//! - only the persons that new evidence (or a withdrawal) touches are re-clustered, with the
//!   new records, and two old persons only together when new evidence joins them; every other
//!   person keeps its records and id untouched.
//!
//! A record that a new batch brings again (the same client id in April's export) or that loses
//! rows to a withdrawal is treated as new: its old evidence is dropped and it is compared
//! afresh with all its remaining CLKs.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use arrow_array::{Array, RecordBatch, StringArray, UInt32Array, UInt64Array};
use arrow_schema::{DataType, Field as ArrowField, Schema};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use rayon::prelude::*;
use rustc_hash::{FxHashMap, FxHashSet};

use super::ids::{self, Change};
use super::index::{gallop_by, BandTable, BatchIndex};
use super::{
    person_id, read_manifest, Batch, FrozenLsh, HistoryEntry, Manifest, Registry, Settings, FORMAT,
};
use crate::block::{informative_positions, Lsh, LshParams, MinHasher};
use crate::cluster::{cluster_scored_par, find_root, Edge};
use crate::compare::{intersection, prefetch, ClkMatrix, Platform, Threshold};
use crate::error::{Error, Result};
use crate::io::encodings::check_same;
use crate::io::entities::{entities_column, write_entities};
use crate::io::{encodings, write_atomic};
use crate::link::assign::clear_best;
use crate::link::{record_scorer, MIN_DICE};

/// A registry run.
#[derive(Debug, Clone)]
pub struct UpdateJob {
    /// Registry directory (created if missing).
    pub registry: PathBuf,
    /// Encodings files to add (files already in the registry are skipped).
    pub inputs: Vec<PathBuf>,
    /// Batches to withdraw: a batch id (or a unique prefix of at least 8 digits) or the path
    /// of the file that was added.
    pub withdraw: Vec<String>,
    /// Label of this run, e.g. the month (`2026-03`).
    pub label: String,
    /// Linkage settings; must equal the registry's once it exists.
    pub settings: Settings,
    /// LSH parameters for a new registry.
    pub lsh: LshParams,
    /// Worker threads (0: one per core).
    pub threads: usize,
}

/// What a registry run did.
#[derive(Debug, Clone, Default)]
pub struct UpdateSummary {
    /// The current generation after the run.
    pub generation: u32,
    /// Its directory.
    pub dir: PathBuf,
    /// Whether a new generation was made (false: nothing to add or withdraw).
    pub changed: bool,
    /// Inputs skipped because the registry has them already.
    pub skipped: Vec<PathBuf>,
    /// This run's history entry (the previous one when nothing changed).
    pub history: HistoryEntry,
    /// CLKs compared afresh (new and touched records).
    pub new_clks: usize,
    /// Old CLKs probed against them.
    pub old_clks: usize,
    /// Candidate pairs offered to the kernel.
    pub candidates: u64,
    /// Seconds: reading and indexing, comparing, clustering and ids, writing.
    pub seconds: [f64; 4],
    /// Whether the run linked every kept batch again (a registry on the match model) rather
    /// than the new records against the old.
    pub relinked: bool,
    /// Warnings for the run's summary (the model's `m` and `u` are the built-in ones).
    pub warnings: Vec<String>,
}

/// A record pair that counts as evidence: nodes `a < b`, best Dice and best overlap
/// coefficient over their CLK pairs with Dice ≥ [`MIN_DICE`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Evidence {
    /// One record.
    pub a: u32,
    /// The other.
    pub b: u32,
    /// Best Dice.
    pub dice: f32,
    /// Best overlap coefficient.
    pub overlap: f32,
}

const EVIDENCE_MAGIC: &[u8; 8] = b"CWEVD001";

fn write_evidence(path: &Path, ev: &[Evidence]) -> Result<()> {
    let mut out = Vec::with_capacity(16 + ev.len() * 16 + 32);
    out.extend_from_slice(EVIDENCE_MAGIC);
    out.extend_from_slice(&(ev.len() as u64).to_le_bytes());
    for e in ev {
        out.extend_from_slice(&e.a.to_le_bytes());
        out.extend_from_slice(&e.b.to_le_bytes());
        out.extend_from_slice(&e.dice.to_le_bytes());
        out.extend_from_slice(&e.overlap.to_le_bytes());
    }
    let digest = blake3::hash(&out);
    out.extend_from_slice(digest.as_bytes());
    write_atomic(path, &out)
}

/// Reads `evidence.bin` (magic, count, 16 bytes per pair, BLAKE3 digest), refusing a damaged
/// file.
pub fn read_evidence(path: &Path) -> Result<Vec<Evidence>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let damaged = || Error::encoding(path, "damaged registry evidence file");
    if bytes.len() < 48 || &bytes[..8] != EVIDENCE_MAGIC {
        return Err(damaged());
    }
    let (body, digest) = bytes.split_at(bytes.len() - 32);
    if blake3::hash(body).as_bytes() != digest {
        return Err(damaged());
    }
    let n = u64::from_le_bytes(body[8..16].try_into().map_err(|_| damaged())?) as usize;
    if n.checked_mul(16).and_then(|b| b.checked_add(16)) != Some(body.len()) {
        return Err(damaged());
    }
    let w = |c: &[u8]| [c[0], c[1], c[2], c[3]];
    Ok(body[16..]
        .chunks_exact(16)
        .map(|c| Evidence {
            a: u32::from_le_bytes(w(&c[0..4])),
            b: u32::from_le_bytes(w(&c[4..8])),
            dice: f32::from_le_bytes(w(&c[8..12])),
            overlap: f32::from_le_bytes(w(&c[12..16])),
        })
        .collect())
}

/// A row of `changelog.parquet`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangelogRow {
    /// Generation that made the change.
    pub generation: u32,
    /// Its label.
    pub label: String,
    /// `merge`, `split` or `retire` ([`Change`]).
    pub change: String,
    /// The id the change happened to.
    pub person_id: String,
    /// The surviving id (merge) or the id that received records (split).
    pub other_id: Option<String>,
    /// Records of `person_id` involved (0 for a retirement).
    pub records: u64,
    /// Why.
    pub reason: String,
}

fn changelog_schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        ArrowField::new("generation", DataType::UInt32, false),
        ArrowField::new("label", DataType::Utf8, false),
        ArrowField::new("change", DataType::Utf8, false),
        ArrowField::new("person_id", DataType::Utf8, false),
        ArrowField::new("other_id", DataType::Utf8, true),
        ArrowField::new("records", DataType::UInt64, false),
        ArrowField::new("reason", DataType::Utf8, false),
    ]))
}

fn write_changelog(path: &Path, rows: &[ChangelogRow]) -> Result<()> {
    let schema = changelog_schema();
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(UInt32Array::from_iter_values(
                rows.iter().map(|r| r.generation),
            )),
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| &r.label))),
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|r| &r.change),
            )),
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|r| &r.person_id),
            )),
            Arc::new(StringArray::from_iter(
                rows.iter().map(|r| r.other_id.as_deref()),
            )),
            Arc::new(UInt64Array::from_iter_values(
                rows.iter().map(|r| r.records),
            )),
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|r| &r.reason),
            )),
        ],
    )
    .map_err(|e| Error::parquet(path, e))?;
    crate::io::write_parquet(path, &batch, &[])
}

/// Reads `changelog.parquet` (every change up to that generation).
pub fn read_changelog(path: &Path) -> Result<Vec<ChangelogRow>> {
    crate::io::guard_reader(path, || read_changelog_unguarded(path))
}

fn read_changelog_unguarded(path: &Path) -> Result<Vec<ChangelogRow>> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(|b| b.build())
        .map_err(|e| Error::parquet(path, e))?;
    let wrong = || Error::encoding(path, "not a crosswalk registry changelog");
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| Error::parquet(path, e))?;
        let s = |i: usize| {
            batch
                .column(i)
                .as_any()
                .downcast_ref::<StringArray>()
                .ok_or_else(wrong)
        };
        let g = batch
            .column(0)
            .as_any()
            .downcast_ref::<UInt32Array>()
            .ok_or_else(wrong)?;
        let r = batch
            .column(5)
            .as_any()
            .downcast_ref::<UInt64Array>()
            .ok_or_else(wrong)?;
        let (label, change, person, other, reason) = (s(1)?, s(2)?, s(3)?, s(4)?, s(6)?);
        for i in 0..batch.num_rows() {
            out.push(ChangelogRow {
                generation: g.value(i),
                label: label.value(i).to_string(),
                change: change.value(i).to_string(),
                person_id: person.value(i).to_string(),
                other_id: (!other.is_null(i)).then(|| other.value(i).to_string()),
                records: r.value(i),
                reason: reason.value(i).to_string(),
            });
        }
    }
    Ok(out)
}

/// The previous generation, as needed by the next.
pub(super) struct Previous {
    pub manifest: Manifest,
    /// The agencies of `records`.
    pub agencies: Vec<String>,
    /// `(agency, record_key)` sorted, with each record's person number; the agency as an
    /// index into `agencies` (a million records name a handful of agencies).
    pub records: Vec<(u16, String, u32)>,
    pub evidence: Vec<Evidence>,
    pub changelog: Vec<ChangelogRow>,
}

fn load_previous(gen_dir: &Path) -> Result<Previous> {
    let manifest = read_manifest(gen_dir)?;
    let path = gen_dir.join("entities.parquet");
    let (agencies, records) = crate::io::guard_reader(&path, || read_previous_entities(&path))?;
    Ok(Previous {
        manifest,
        agencies,
        records,
        evidence: read_evidence(&gen_dir.join("evidence.bin"))?,
        changelog: read_changelog(&gen_dir.join("changelog.parquet"))?,
    })
}

/// The previous generation's `entities.parquet`: its agencies, and its records with their
/// person numbers.
type PreviousEntities = (Vec<String>, Vec<(u16, String, u32)>);

fn read_previous_entities(path: &Path) -> Result<PreviousEntities> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(|b| b.build())
        .map_err(|e| Error::parquet(path, e))?;
    let mut agencies: Vec<String> = Vec::new();
    let mut records = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| Error::parquet(path, e))?;
        let col = |i| entities_column(&batch, i, path);
        let (a, k, p) = (col(0)?, col(1)?, col(2)?);
        records.reserve(batch.num_rows());
        for i in 0..batch.num_rows() {
            let agency = a.value(i);
            // (rows are sorted by agency: the last one is almost always the one)
            let ai = match agencies.iter().rposition(|x| x == agency) {
                Some(ai) => ai,
                None => {
                    agencies.push(agency.to_string());
                    agencies.len() - 1
                }
            };
            let n = p
                .value(i)
                .strip_prefix("P-")
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| Error::encoding(path, "a person id is not of the form P-000123"))?;
            let ai = u16::try_from(ai)
                .map_err(|_| Error::encoding(path, "more than 65,535 agencies"))?;
            records.push((ai, k.value(i).to_string(), n));
        }
    }
    Ok((agencies, records))
}

fn file_id(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex()[..32].to_string()
}

/// The first entry of `table` (sorted by key) at or after `from` whose key is at least `key`
/// (galloping, as [`super::index::BandTable::seek`]), or `table.len()`.
fn gallop(table: &[(u32, u32)], from: usize, key: u32) -> usize {
    gallop_by(table.len(), from, key, |i| table[i].0)
}

/// Merge join of an old batch's band table with the fresh CLKs' table of the same band (both
/// sorted by key): `emit(old row, fresh entries with its key)` for every old entry whose key
/// some fresh entry has. Each side skips ahead by galloping, so a small side costs little
/// however big the other.
fn join_band(t: BandTable<'_>, ft: &[(u32, u32)], mut emit: impl FnMut(usize, &[(u32, u32)])) {
    let (mut p, mut q) = (0, 0);
    while p < t.len() && q < ft.len() {
        let (ko, kf) = (t.key(p), ft[q].0);
        if ko < kf {
            p = t.seek(p, kf);
        } else if kf < ko {
            q = gallop(ft, q, ko);
        } else {
            let mut p_end = p + 1;
            while p_end < t.len() && t.key(p_end) == ko {
                p_end += 1;
            }
            let q_end = q + ft[q..].iter().take_while(|e| e.0 == ko).count();
            for i in p..p_end {
                emit(t.row(i), &ft[q..q_end]);
            }
            (p, q) = (p_end, q_end);
        }
    }
}

/// Runs one registry update (see the module docs).
pub fn run(job: &UpdateJob) -> Result<UpdateSummary> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(job.threads)
        .build()
        .map_err(|e| Error::io("<thread pool>", std::io::Error::other(e.to_string())))?;
    pool.install(|| run_locked(job, &pool))
}

/// A new batch: its id, source path, file bytes and contents.
pub(super) struct NewBatch {
    pub id: String,
    pub path: PathBuf,
    pub bytes: Vec<u8>,
    /// The file read; its columns are dropped once it is indexed or linked (only `meta`
    /// stays).
    pub enc: encodings::Encodings,
    /// Its rows.
    pub rows: usize,
}

fn run_locked(job: &UpdateJob, pool: &rayon::ThreadPool) -> Result<UpdateSummary> {
    let t0 = Instant::now();
    let reg = Registry::open(&job.registry)?;
    let g = reg.current()?;
    let prev = if g > 0 {
        Some(load_previous(&reg.generation_dir(g))?)
    } else {
        None
    };
    let reg_path = job.registry.as_path();
    if let Some(p) = &prev {
        let by = |s: &Settings| match s.min_average {
            Some(_) => "the match model (fs)",
            None => "the record-level rules",
        };
        if p.manifest.settings.min_average.is_some() != job.settings.min_average.is_some() {
            return Err(Error::config(
                reg_path,
                format!(
                    "this registry links by {}, fixed when it was created, and this run asks for \
                     {} (leave --model and --min-average out, or start a new registry)",
                    by(&p.manifest.settings),
                    by(&job.settings)
                ),
            ));
        }
        if p.manifest.settings != job.settings {
            return Err(Error::config(
                reg_path,
                format!(
                    "this registry links with {:?}; its settings are fixed when it is created \
                     (drop the link flags, or start a new registry to change them)",
                    p.manifest.settings
                ),
            ));
        }
    }
    // 1. New batches: read, identify by content, check against the registry (or each other).
    let mut known: BTreeSet<String> = prev
        .iter()
        .flat_map(|p| p.manifest.batches.iter().map(|b| b.id.clone()))
        .collect();
    let mut skipped = Vec::new();
    let mut fresh: Vec<(String, PathBuf, Vec<u8>)> = Vec::new();
    let mut input_ids: Vec<(String, &Path)> = Vec::new();
    for path in &job.inputs {
        if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("json") || e.eq_ignore_ascii_case("csv"))
        {
            return Err(Error::config(
                path,
                "a registry takes crosswalk encodings (Parquet from `crosswalk encode`); CLKs in \
                 clkhash's formats carry no schema fingerprint or key check value to hold a \
                 registry to",
            ));
        }
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let id = file_id(&bytes);
        input_ids.push((id.clone(), path));
        if known.insert(id.clone()) {
            fresh.push((id, path.clone(), bytes));
        } else {
            skipped.push(path.clone());
        }
    }
    let new: Vec<NewBatch> = fresh
        .into_par_iter()
        .map(|(id, path, bytes)| {
            let enc = encodings::read(&path)?;
            let rows = enc.len();
            Ok(NewBatch {
                id,
                path,
                bytes,
                enc,
                rows,
            })
        })
        .collect::<Result<_>>()?;
    if let Some(p) = &prev {
        let m = &p.manifest;
        // The manifest does not keep the parts layout: the new batches must agree among
        // themselves, the fingerprint with the registry (equal fingerprints mean equal
        // schemas, parts included; a registry on the model also checks every batch it reads
        // against the first).
        let reference = encodings::FileMeta {
            schema_fingerprint: m.schema_fingerprint.clone(),
            kcv: m.kcv.clone(),
            clk_bits: m.clk_bits,
            parts: new
                .first()
                .map(|b| b.enc.meta.parts.clone())
                .unwrap_or_default(),
            parts_hardening: new
                .first()
                .map(|b| b.enc.meta.parts_hardening.clone())
                .unwrap_or_default(),
            ..Default::default()
        };
        for b in &new {
            check_same(&reference, reg_path, &b.enc.meta, &b.path)?;
        }
    } else if let Some(first) = new.first() {
        for b in &new[1..] {
            check_same(&first.enc.meta, &first.path, &b.enc.meta, &b.path)?;
        }
    }
    // 2. Withdrawals.
    let mut withdrawn: BTreeSet<String> = BTreeSet::new();
    for w in &job.withdraw {
        let batches = prev
            .as_ref()
            .map(|p| &p.manifest.batches[..])
            .unwrap_or(&[]);
        let wanted = match std::fs::read(w) {
            Ok(bytes) => file_id(&bytes),
            Err(_) => w.to_ascii_lowercase(),
        };
        let hits: Vec<&Batch> = batches
            .iter()
            .filter(|b| wanted.len() >= 8 && b.id.starts_with(&wanted))
            .collect();
        match hits.as_slice() {
            [b] => {
                if let Some((_, input)) = input_ids.iter().find(|(id, _)| *id == b.id) {
                    return Err(Error::config(
                        reg_path,
                        format!(
                            "--withdraw {w} names the batch that the input {} adds; a run either \
                             withdraws a batch or adds it: withdraw it in one run and add it \
                             again in the next if that is what you mean",
                            input.display()
                        ),
                    ));
                }
                withdrawn.insert(b.id.clone());
            }
            [] => {
                return Err(Error::config(
                    reg_path,
                    format!("--withdraw {w}: no such batch in the registry (give a batch id from registry.json, at least 8 digits, or the file that was added)"),
                ))
            }
            _ => {
                return Err(Error::config(
                    reg_path,
                    format!("--withdraw {w}: matches several batches; give more digits"),
                ))
            }
        }
    }
    if new.is_empty() && withdrawn.is_empty() {
        let history = prev
            .as_ref()
            .and_then(|p| p.manifest.history.last().cloned())
            .unwrap_or_default();
        return Ok(UpdateSummary {
            generation: g,
            dir: if g > 0 {
                reg.generation_dir(g)
            } else {
                job.registry.clone()
            },
            changed: false,
            skipped,
            history,
            ..Default::default()
        });
    }
    let generation = g + 1;
    let bits = match (&prev, new.first()) {
        (Some(p), _) => p.manifest.clk_bits,
        (None, Some(b)) => b.enc.meta.clk_bits,
        (None, None) => unreachable!("nothing to add to an empty registry was handled above"),
    };
    let width = bits / 8;
    // 3. The frozen band-key function.
    let frozen = match &prev {
        Some(p) => p.manifest.lsh.clone(),
        None => {
            let mut bytes: Vec<u8> = Vec::new();
            for b in &new {
                for c in b.enc.clks.chunks_exact(width) {
                    if c.iter().any(|&x| x != 0) {
                        bytes.extend_from_slice(c);
                    }
                }
            }
            let m = ClkMatrix::from_bytes(bits, &bytes).ok_or_else(|| {
                Error::encoding(&new[0].path, "CLK length is not a multiple of 64 bits")
            })?;
            FrozenLsh::new(
                job.lsh,
                &informative_positions(&m, job.lsh.max_bit_share_permille),
                bits,
            )
        }
    };
    let params = frozen.params();
    let positions = frozen.positions().ok_or_else(|| {
        Error::encoding(
            reg.generation_dir(g).join("registry.json"),
            "damaged LSH bitmap",
        )
    })?;
    if let Some(min_average) = job.settings.min_average {
        let start = super::relink::Start {
            prev,
            new,
            withdrawn,
            skipped,
            frozen,
            generation,
            min_average,
        };
        return super::relink::run(job, &reg, start, pool, t0);
    }
    let hasher = MinHasher::new(params, &positions);
    // 4. Indexes: new batches computed, kept ones read.
    let kept: Vec<Batch> = prev
        .iter()
        .flat_map(|p| p.manifest.batches.iter())
        .filter(|b| !withdrawn.contains(&b.id))
        .cloned()
        .collect();
    let new_idx: Vec<BatchIndex> = new
        .par_iter()
        .map(|b| BatchIndex::build(&b.enc, &hasher))
        .collect();
    // The rows' columns are not needed any more (events are read from the batch copies when a
    // report asks for them): free them before the comparisons.
    let mut new = new;
    for b in &mut new {
        b.enc = encodings::Encodings {
            meta: std::mem::take(&mut b.enc.meta),
            ..Default::default()
        };
    }
    let new = new;
    let kept_idx: Vec<BatchIndex> = kept
        .par_iter()
        .map(|b| BatchIndex::read(&reg.batch_path(&b.id, "index")))
        .collect::<Result<_>>()?;
    let withdrawn_idx: Vec<(String, BatchIndex)> = prev
        .iter()
        .flat_map(|p| p.manifest.batches.iter())
        .filter(|b| withdrawn.contains(&b.id))
        .map(|b| {
            Ok((
                b.agency.clone(),
                BatchIndex::read(&reg.batch_path(&b.id, "index"))?,
            ))
        })
        .collect::<Result<_>>()?;
    for idx in kept_idx.iter().chain(&new_idx) {
        if idx.width != width || idx.bands != params.bands {
            return Err(Error::encoding(
                reg_path,
                "a batch index does not match the registry's CLK length or bands",
            ));
        }
    }
    // Batches as (agency, index), kept first then new.
    let all: Vec<(&str, &BatchIndex)> = kept
        .iter()
        .map(|b| b.agency.as_str())
        .zip(&kept_idx)
        .chain(new.iter().map(|b| b.enc.meta.agency.as_str()).zip(&new_idx))
        .collect();
    let n_kept = kept.len();
    // 5. Records: every (agency, record_key), sorted; which are new or touched (compared
    //    afresh: `fresh`), which old records map where.
    let mut keys: Vec<(&str, &str)> = all
        .iter()
        .flat_map(|(a, idx)| idx.records.iter().map(move |k| (*a, k.as_str())))
        .collect();
    keys.par_sort_unstable();
    keys.dedup();
    let node_of =
        |a: &str, k: &str| -> Option<u32> { keys.binary_search(&(a, k)).ok().map(|n| n as u32) };
    let n = keys.len();
    let mut fresh = vec![false; n];
    for (a, idx) in &all[n_kept..] {
        for k in &idx.records {
            if let Some(x) = node_of(a, k) {
                fresh[x as usize] = true;
            }
        }
    }
    for (a, idx) in &withdrawn_idx {
        for k in &idx.records {
            if let Some(x) = node_of(a, k) {
                fresh[x as usize] = true;
            }
        }
    }
    // Previous person of each node (None: new record), and previous node -> node.
    let (empty, no_agencies) = (Vec::new(), Vec::new());
    let prev_records = prev.as_ref().map(|p| &p.records).unwrap_or(&empty);
    let prev_agencies = prev.as_ref().map(|p| &p.agencies).unwrap_or(&no_agencies);
    let prev_node: Vec<Option<u32>> = prev_records
        .par_iter()
        .map(|(a, k, _)| node_of(&prev_agencies[*a as usize], k))
        .collect();
    let mut old_person: Vec<Option<u32>> = vec![None; n];
    let mut affected: BTreeSet<u32> = BTreeSet::new();
    for ((_, _, p), x) in prev_records.iter().zip(&prev_node) {
        match x {
            Some(x) => {
                old_person[*x as usize] = Some(*p);
                if fresh[*x as usize] {
                    affected.insert(*p);
                }
            }
            None => {
                affected.insert(*p);
            }
        }
    }
    let new_records = (0..n)
        .filter(|&x| fresh[x] && old_person[x].is_none())
        .count() as u64;
    // 6. CLK rows: fresh records' (all their CLKs, deduplicated) and old ones'. Each batch's
    //    index holds a record's CLKs once already; only a record found in several batches
    //    needs its CLKs deduplicated across them.
    let rec_node: Vec<Vec<u32>> = all
        .par_iter()
        .map(|(a, idx)| {
            idx.records
                .iter()
                .map(|k| node_of(a, k).unwrap_or_default())
                .collect()
        })
        .collect();
    let mut batches_of = vec![0u8; n];
    for nodes in &rec_node {
        for &x in nodes {
            batches_of[x as usize] = batches_of[x as usize].saturating_add(1);
        }
    }
    let mut seen: FxHashSet<(u32, &[u8])> = FxHashSet::default();
    let mut y_owner: Vec<u32> = Vec::new();
    let mut y_bytes: Vec<u8> = Vec::new();
    // Where each fresh row comes from: (batch, row).
    let mut y_src: Vec<(u32, u32)> = Vec::new();
    // Old rows: (node, batch, row); and per batch, which rows are old rows (probed below).
    let mut old_rows: Vec<(u32, u32, u32)> =
        Vec::with_capacity(all[..n_kept].iter().map(|(_, idx)| idx.rows()).sum());
    let mut old_pos: Vec<Vec<u32>> = all
        .iter()
        .map(|(_, idx)| vec![u32::MAX; idx.rows()])
        .collect();
    for (bi, (_, idx)) in all.iter().enumerate() {
        for r in 0..idx.rows() {
            let x = rec_node[bi][idx.row_record[r] as usize];
            if batches_of[x as usize] > 1 && !seen.insert((x, idx.clk(r))) {
                continue;
            }
            if fresh[x as usize] {
                y_owner.push(x);
                y_bytes.extend_from_slice(idx.clk(r));
                y_src.push((bi as u32, r as u32));
            } else {
                old_pos[bi][r] = old_rows.len() as u32;
                old_rows.push((x, bi as u32, r as u32));
            }
        }
    }
    drop(seen);
    let y = ClkMatrix::from_bytes(bits, &y_bytes)
        .ok_or_else(|| Error::encoding(reg_path, "CLK length is not a multiple of 64 bits"))?;
    // The fresh rows' band keys: kept from this run's new indexes, recomputed for the (few)
    // fresh records of old batches, whose indexes hold band tables only.
    let bands = params.bands;
    let mut y_keys: Vec<u32> = vec![0; y_src.len() * bands];
    let mut recompute: Vec<usize> = Vec::new();
    for (i, &(bi, r)) in y_src.iter().enumerate() {
        match all[bi as usize].1.row_keys() {
            Some(k) => y_keys[i * bands..(i + 1) * bands]
                .copy_from_slice(&k[r as usize * bands..(r as usize + 1) * bands]),
            None => recompute.push(i),
        }
    }
    if !recompute.is_empty() {
        let mut bytes = Vec::with_capacity(recompute.len() * width);
        for &i in &recompute {
            bytes.extend_from_slice(&y_bytes[i * width..(i + 1) * width]);
        }
        if let Some(m) = ClkMatrix::from_bytes(bits, &bytes) {
            let keys = hasher.keys(&m);
            for (k, &i) in recompute.iter().enumerate() {
                y_keys[i * bands..(i + 1) * bands]
                    .copy_from_slice(&keys[k * bands..(k + 1) * bands]);
            }
        }
    }
    let t_read = t0.elapsed().as_secs_f64();

    // 7. Evidence: fresh × fresh and old × fresh.
    let t1 = Instant::now();
    let platform = Platform::detect();
    let s = job.settings;
    let judge = |inter: u32, pa: u32, pb: u32| -> Option<(f32, f32)> {
        let dice = 2.0 * inter as f64 / (pa + pb).max(1) as f64;
        let overlap = inter as f64 / pa.min(pb).max(1) as f64;
        (dice >= MIN_DICE).then_some((dice as f32, overlap as f32))
    };
    let t_min = Threshold::new(MIN_DICE);
    let ylsh = Lsh::from_keys(params, y_keys).with_probe_index();
    let mut laps = vec![("index", t1.elapsed().as_secs_f64())];
    let (mut found, mut candidates) = ylsh.map_candidates(&|i, j| {
        let (a, b) = (y_owner[i as usize], y_owner[j as usize]);
        if a == b {
            return None;
        }
        let inter = y.passes(platform, i as usize, j as usize, t_min)?;
        let (d, o) = judge(inter, y.popcount(i as usize), y.popcount(j as usize))?;
        Some(Evidence {
            a: a.min(b),
            b: a.max(b),
            dice: d,
            overlap: o,
        })
    });
    laps.push(("fresh_pairs", t1.elapsed().as_secs_f64()));
    // Old × fresh, band by band: a merge join of each old batch's band table (sorted when the
    // batch was added) with the fresh CLKs' table of that band, so every old key is read once,
    // in order. A pair that collides in several bands is scored in each (identical scores);
    // the deduplication below keeps one entry per record pair.
    // The old CLKs copied out of the mapped indexes once (in anonymous memory the scoring's
    // random reads cost fewer page-table walks than across hundreds of MB of mapped files).
    let mut old_bytes = vec![0u8; old_rows.len() * width];
    old_bytes
        .par_chunks_mut(width)
        .zip(old_rows.par_iter())
        .for_each(|(dst, &(_, bi, r))| dst.copy_from_slice(all[bi as usize].1.clk(r as usize)));
    let old_m = ClkMatrix::from_bytes(bits, &old_bytes)
        .ok_or_else(|| Error::encoding(reg_path, "CLK length is not a multiple of 64 bits"))?;
    drop(old_bytes);
    let with_old: Vec<usize> = (0..all.len())
        .filter(|&bi| old_pos[bi].iter().any(|&p| p != u32::MAX))
        .collect();
    let cross: Vec<(Vec<Evidence>, u64)> = (0..bands)
        .into_par_iter()
        .map_init(Vec::new, |pairs: &mut Vec<(u32, u32)>, band| {
            let ft = ylsh.table(band);
            pairs.clear();
            for &bi in &with_old {
                let t = all[bi].1.band_table(band);
                let pos = &old_pos[bi];
                join_band(t, ft, |row, fresh| {
                    if let Some(&o) = pos.get(row).filter(|&&o| o != u32::MAX) {
                        pairs.extend(fresh.iter().map(|e| (o, e.1)));
                    }
                });
            }
            // Old and fresh CLKs are both visited in no order the hardware can guess: each
            // is asked for a few pairs ahead.
            const AHEAD: usize = 8;
            let ask = |&(o, j): &(u32, u32)| {
                old_m.prefetch_row(o as usize);
                y.prefetch_row(j as usize);
                prefetch(old_rows.as_ptr().wrapping_add(o as usize));
            };
            pairs.iter().take(AHEAD).for_each(ask);
            let mut out = Vec::new();
            for (k, &(o, j)) in pairs.iter().enumerate() {
                if let Some(ahead) = pairs.get(k + AHEAD) {
                    ask(ahead);
                }
                // (the old popcount from the row just fetched: the popcount array is one more
                // random read)
                let row = old_m.row(o as usize);
                let pop: u32 = row.iter().map(|w| w.count_ones()).sum();
                let pj = y.popcount(j as usize);
                if 2 * pop.min(pj) < (MIN_DICE * (pop + pj) as f64) as u32 {
                    continue;
                }
                let inter = intersection(platform, row, y.row(j as usize));
                if let Some((d, o2)) = judge(inter, pop, pj) {
                    let (x, b) = (old_rows[o as usize].0, y_owner[j as usize]);
                    out.push(Evidence {
                        a: x.min(b),
                        b: x.max(b),
                        dice: d,
                        overlap: o2,
                    });
                }
            }
            (out, pairs.len() as u64)
        })
        .collect();
    drop((old_m, old_pos));
    found.reserve(cross.iter().map(|c| c.0.len()).sum());
    for (ev, c) in cross {
        found.extend(ev);
        candidates += c;
    }
    laps.push(("old_pairs", t1.elapsed().as_secs_f64()));
    // One entry per fresh record pair: best Dice, best overlap.
    found.par_sort_unstable_by(|p, q| (p.a, p.b).cmp(&(q.a, q.b)));
    // (in place: at a first run of a million records this list holds tens of millions)
    let mut w = 0;
    for r in 0..found.len() {
        let e = found[r];
        if w > 0 && (found[w - 1].a, found[w - 1].b) == (e.a, e.b) {
            let l = &mut found[w - 1];
            l.dice = l.dice.max(e.dice);
            l.overlap = l.overlap.max(e.overlap);
        } else {
            found[w] = e;
            w += 1;
        }
    }
    found.truncate(w);
    found.shrink_to_fit();
    let fresh_ev = found;
    // A pair is kept for later runs when it is an edge (Dice at least the threshold) or a
    // containment pair; weaker pairs of fresh records serve this run's lone records only.
    let strong = |e: &Evidence| e.dice as f64 >= s.threshold || e.overlap as f64 >= s.containment;
    // Persons the new evidence touches: an edge or containment pair with a fresh record.
    for e in fresh_ev.iter().filter(|e| strong(e)) {
        for (x, other) in [(e.a, e.b), (e.b, e.a)] {
            if fresh[other as usize] {
                if let Some(p) = old_person[x as usize] {
                    affected.insert(p);
                }
            }
        }
    }
    laps.push(("sort", t1.elapsed().as_secs_f64()));
    // Old evidence between records that are neither fresh nor gone, renumbered: node numbers
    // keep their order, so the list stays sorted and merges with the fresh pairs (disjoint:
    // every fresh pair has a fresh record).
    let old_ev = prev.iter().flat_map(|p| &p.evidence).filter_map(|e| {
        let a = (*prev_node.get(e.a as usize)?)?;
        let b = (*prev_node.get(e.b as usize)?)?;
        (!fresh[a as usize] && !fresh[b as usize]).then_some(Evidence { a, b, ..*e })
    });
    let evidence: Vec<Evidence> = if prev.as_ref().is_none_or(|p| p.evidence.is_empty()) {
        fresh_ev
    } else {
        let mut evidence =
            Vec::with_capacity(fresh_ev.len() + prev.as_ref().map_or(0, |p| p.evidence.len()));
        let mut fresh_iter = fresh_ev.into_iter().peekable();
        for e in old_ev {
            while let Some(f) = fresh_iter.next_if(|f| (f.a, f.b) < (e.a, e.b)) {
                evidence.push(f);
            }
            evidence.push(e);
        }
        evidence.extend(fresh_iter);
        evidence
    };
    debug_assert!(evidence.is_sorted_by_key(|e| (e.a, e.b)));
    let t_compare = t1.elapsed().as_secs_f64();

    // 8. Re-cluster the fresh records with the affected persons' records.
    let t2 = Instant::now();
    let sub: Vec<u32> = (0..n as u32)
        .filter(|&x| {
            fresh[x as usize] || old_person[x as usize].is_some_and(|p| affected.contains(&p))
        })
        .collect();
    // Node -> its index in the sub-graph (u32::MAX: outside).
    let mut local = vec![u32::MAX; n];
    for (i, &x) in sub.iter().enumerate() {
        local[x as usize] = i as u32;
    }
    let local_of = |x: u32| Some(local[x as usize]).filter(|&l| l != u32::MAX);
    // CLKs of the sub-graph: fresh rows, then old rows of affected persons.
    let mut s_bytes = y_bytes;
    let mut s_owner: Vec<u32> = y_owner.iter().map(|&x| local[x as usize]).collect();
    for &(x, bi, r) in &old_rows {
        if let Some(l) = local_of(x) {
            s_bytes.extend_from_slice(all[bi as usize].1.clk(r as usize));
            s_owner.push(l);
        }
    }
    let sm = ClkMatrix::from_bytes(bits, &s_bytes)
        .ok_or_else(|| Error::encoding(reg_path, "CLK length is not a multiple of 64 bits"))?;
    drop(s_bytes);
    // Groups re-clustered together: each old person's records as one unit, units joined only
    // by new evidence (an edge with a fresh record). Two old persons that no new record links
    // were kept apart by the previous run and are not re-examined together, so an edge
    // between them is left out: without this, chains of such edges join a third of the
    // sub-graph into one component that average linkage has to work through serially.
    let mut group: Vec<u32> = (0..sub.len() as u32).collect();
    let mut first_of: FxHashMap<u32, u32> = FxHashMap::default();
    for (l, &x) in sub.iter().enumerate() {
        if let Some(p) = old_person[x as usize] {
            let f = *first_of.entry(p).or_insert(l as u32);
            let (a, b) = (find_root(&mut group, f), find_root(&mut group, l as u32));
            group[a.max(b) as usize] = a.min(b);
        }
    }
    for e in &evidence {
        if e.dice as f64 >= s.threshold && (fresh[e.a as usize] || fresh[e.b as usize]) {
            if let (Some(a), Some(b)) = (local_of(e.a), local_of(e.b)) {
                let (a, b) = (find_root(&mut group, a), find_root(&mut group, b));
                group[a.max(b) as usize] = a.min(b);
            }
        }
    }
    let edges: Vec<Edge> = evidence
        .iter()
        .filter(|e| e.dice as f64 >= s.threshold)
        .filter_map(|e| {
            let (a, b) = (local_of(e.a)?, local_of(e.b)?);
            (find_root(&mut group, a) == find_root(&mut group, b)).then_some(Edge {
                a,
                b,
                score: e.dice as f64,
            })
        })
        .collect();
    let score = record_scorer(
        &sm,
        platform,
        &s_owner,
        sub.len(),
        s.threshold,
        s.containment,
    );
    let labels = cluster_scored_par(sub.len(), &edges, s.cohesion * s.threshold, &score);
    // Lone records join the one cluster (in the sub-graph or outside it) whose records contain
    // most of their bits, decided on the clustering as it was (no chaining).
    // (labels are local node numbers, so sizes fit a vector)
    let mut size = vec![0u32; sub.len()];
    for &l in &labels {
        size[l as usize] += 1;
    }
    // Lone records by node, so that the scan of all evidence below costs one lookup per end.
    let mut lone = vec![false; n];
    for (l, &x) in sub.iter().enumerate() {
        lone[x as usize] = size[labels[l] as usize] == 1;
    }
    let mut partners: BTreeMap<u32, Vec<(u32, f32)>> = BTreeMap::new();
    if s.orphan_overlap.is_some() {
        let found: Vec<(u32, u32, f32)> = evidence
            .par_chunks(1 << 16)
            .flat_map_iter(|chunk| {
                chunk
                    .iter()
                    .filter(|e| e.dice as f64 >= MIN_DICE)
                    .flat_map(|e| [(e.a, e.b, e.overlap), (e.b, e.a, e.overlap)])
                    .filter(|&(x, _, _)| lone[x as usize])
            })
            .collect();
        for (x, other, o) in found {
            partners
                .entry(local[x as usize])
                .or_default()
                .push((other, o));
        }
    }
    // Target of a lone record: a local cluster label, or an outside person (high bit set).
    const OUTSIDE: u64 = 1 << 32;
    let mut attach: BTreeMap<u32, u64> = BTreeMap::new();
    if let Some(min_overlap) = s.orphan_overlap {
        for (&l, list) in &partners {
            let mut best: BTreeMap<u64, f32> = BTreeMap::new();
            for &(other, o) in list {
                let target = match local_of(other) {
                    Some(q) => labels[q as usize] as u64,
                    None => match old_person[other as usize] {
                        Some(p) => OUTSIDE | p as u64,
                        None => continue,
                    },
                };
                let e = best.entry(target).or_insert(0.0);
                *e = e.max(o);
            }
            let best = best.into_iter().map(|(t, o)| (t, o as f64));
            if let Some(t) = clear_best(best, min_overlap, s.orphan_margin) {
                attach.insert(l, t);
            }
        }
    }
    // Clusters of the sub-graph after attachments, in order of their smallest record.
    let mut cluster_of_label: BTreeMap<u32, usize> = BTreeMap::new();
    let mut members: Vec<Vec<u32>> = Vec::new();
    let mut outside: Vec<(u32, u32)> = Vec::new();
    for (l, &lab) in labels.iter().enumerate() {
        let l = l as u32;
        let target = match attach.get(&l) {
            Some(&t) if t & OUTSIDE != 0 => {
                outside.push((l, (t & 0xFFFF_FFFF) as u32));
                continue;
            }
            Some(&t) => t as u32,
            None => lab,
        };
        let next = cluster_of_label.len();
        let c = *cluster_of_label.entry(target).or_insert(next);
        if c == members.len() {
            members.push(Vec::new());
        }
        members[c].push(l);
    }
    // Order clusters by their smallest local node (= smallest record).
    let mut order: Vec<usize> = (0..members.len()).collect();
    order.sort_by_key(|&c| members[c].iter().min().copied());
    let members: Vec<Vec<u32>> = order
        .into_iter()
        .map(|c| std::mem::take(&mut members[c]))
        .collect();
    let old_of: Vec<Vec<u32>> = members
        .iter()
        .map(|m| {
            m.iter()
                .filter_map(|&l| old_person[sub[l as usize] as usize])
                .collect()
        })
        .collect();
    let mut next = prev.as_ref().map_or(1, |p| p.manifest.next_person);
    let assigned = ids::assign(&old_of, &affected, &mut next);
    let mut person: Vec<u32> = old_person.iter().map(|p| p.unwrap_or(0)).collect();
    for (m, &id) in members.iter().zip(&assigned.ids) {
        for &l in m {
            person[sub[l as usize] as usize] = id;
        }
    }
    let mut entries = assigned.entries.clone();
    // Old records attached to a person outside the sub-graph: their old person was split (or,
    // with no record left in the sub-graph, merged into that person rather than retired).
    let in_clusters: BTreeSet<u32> = old_of.iter().flatten().copied().collect();
    for &(l, p) in &outside {
        let x = sub[l as usize];
        if let Some(o) = old_person[x as usize].filter(|&o| o != p) {
            let change = if in_clusters.contains(&o) {
                Change::Split
            } else {
                entries.retain(|e| !(e.change == Change::Retire && e.person == o));
                Change::Merge
            };
            entries.push(ids::Entry {
                change,
                person: o,
                other: Some(p),
                records: 1,
            });
        }
        person[x as usize] = p;
    }
    entries.sort();
    let t_cluster = t2.elapsed().as_secs_f64();

    // 9. Write the next generation in a staging directory, then commit.
    let t3 = Instant::now();
    let ids_text: Vec<String> = person.iter().map(|&p| person_id(p)).collect();
    let stored: Vec<Evidence> = evidence.iter().copied().filter(|e| strong(e)).collect();
    let round3 = |x: f64| (x * 1000.0).round() / 1000.0;
    let diagnostics = serde_json::json!({
        "generation": generation,
        "new_clks": y.len(),
        "old_clks": old_rows.len(),
        "candidate_pairs": candidates,
        "evidence_pairs_this_run": evidence.len(),
        "evidence_pairs_kept": stored.len(),
        "records_reclustered": sub.len(),
        "kernel": platform.name(),
        "hardening": hardening_of(&new),
        "seconds": {
            "read_and_index": round3(t_read),
            "compare": round3(t_compare),
            "compare_laps": laps.iter().map(|(k, v)| (k.to_string(), round3(*v).into())).collect::<serde_json::Map<String, serde_json::Value>>(),
            "cluster_and_ids": round3(t_cluster),
        },
    });
    let history = write_generation(
        job,
        &reg,
        prev.as_ref(),
        Generation {
            number: generation,
            records: keys
                .iter()
                .zip(&ids_text)
                .map(|(k, p)| (k.0, k.1, p.as_str())),
            record_count: n as u64,
            persons: person.iter().copied().collect::<BTreeSet<u32>>().len() as u64,
            evidence: &stored,
            entries: &entries,
            new: &new,
            new_records_per_batch: new_idx.iter().map(|i| i.records.len() as u64).collect(),
            new_indexes: &new_idx,
            kept: kept.clone(),
            withdrawn: &withdrawn,
            new_records,
            new_persons: assigned.new_persons,
            persons_reclustered: affected.len() as u64,
            next_person: next,
            lsh: frozen,
            model: None,
            diagnostics,
        },
        t3,
    )?;
    Ok(UpdateSummary {
        generation,
        dir: reg.generation_dir(generation),
        changed: true,
        skipped,
        history,
        new_clks: y.len(),
        old_clks: old_rows.len(),
        candidates,
        seconds: [t_read, t_compare, t_cluster, t3.elapsed().as_secs_f64()],
        relinked: false,
        warnings: Vec::new(),
    })
}

/// The new batches' hardening (their fingerprint equals the registry's); null for a run that
/// only withdraws.
pub(super) fn hardening_of(new: &[NewBatch]) -> Option<&str> {
    new.iter()
        .map(|b| b.enc.meta.hardening.as_str())
        .find(|h| *h != "unrecorded")
        .or(new.first().map(|_| "unrecorded"))
}

/// What a run commits as the next generation.
pub(super) struct Generation<'a, R> {
    /// Its number.
    pub number: u32,
    /// `(agency, record_key, person_id)` of every record, sorted.
    pub records: R,
    /// How many records.
    pub record_count: u64,
    /// Distinct persons among them.
    pub persons: u64,
    /// Record pairs kept as evidence for later runs (none for the match model).
    pub evidence: &'a [Evidence],
    /// This run's changelog entries, sorted.
    pub entries: &'a [ids::Entry],
    /// The batches this run adds ...
    pub new: &'a [NewBatch],
    /// ... their records ...
    pub new_records_per_batch: Vec<u64>,
    /// ... and their indexes (none for the match model, which reads the batches).
    pub new_indexes: &'a [BatchIndex],
    /// The previous generation's batches that stay.
    pub kept: Vec<Batch>,
    /// Batch ids withdrawn by this run.
    pub withdrawn: &'a BTreeSet<String>,
    /// Records first seen in this run.
    pub new_records: u64,
    /// Ids first issued by this run.
    pub new_persons: u64,
    /// Old persons whose records were re-clustered.
    pub persons_reclustered: u64,
    /// The next unused person number.
    pub next_person: u32,
    /// The frozen band-key function.
    pub lsh: FrozenLsh,
    /// The match model's parameters ([`Manifest::model`]).
    pub model: Option<serde_json::Value>,
    /// The run's `diagnostics.json`; the seconds spent writing are added to its `seconds`.
    pub diagnostics: serde_json::Value,
}

/// Step 9 of a run, by the rules or the model: the new batches (copies and indexes) into
/// `batches/`, the next generation into a staging directory, then the commit. Returns the
/// run's history entry.
pub(super) fn write_generation<'r, R: Iterator<Item = (&'r str, &'r str, &'r str)>>(
    job: &UpdateJob,
    reg: &Registry,
    prev: Option<&Previous>,
    g: Generation<'_, R>,
    t: Instant,
) -> Result<HistoryEntry> {
    for (i, b) in g.new.iter().enumerate() {
        write_atomic(&reg.batch_path(&b.id, "parquet"), &b.bytes)?;
        if let Some(idx) = g.new_indexes.get(i) {
            idx.write(&reg.batch_path(&b.id, "index"))?;
        }
    }
    super::sync_dir(&job.registry.join("batches"))?;
    super::pause("batches");
    let staging = job.registry.join("generations").join(format!(
        ".staging-{}-{}",
        super::generation_name(g.number),
        std::process::id()
    ));
    std::fs::create_dir_all(&staging).map_err(|e| Error::io(&staging, e))?;
    write_entities(&staging.join("entities.parquet"), g.records)?;
    write_evidence(&staging.join("evidence.bin"), g.evidence)?;
    let reason = match (g.new.is_empty(), g.withdrawn.is_empty()) {
        (false, true) => "re-clustered with new records",
        (true, false) => "re-clustered after a withdrawal",
        _ => "re-clustered with new records and after a withdrawal",
    };
    let mut log = prev.map(|p| p.changelog.clone()).unwrap_or_default();
    for e in g.entries {
        log.push(ChangelogRow {
            generation: g.number,
            label: job.label.clone(),
            change: e.change.name().to_string(),
            person_id: person_id(e.person),
            other_id: e.other.map(person_id),
            records: e.records,
            reason: match e.change {
                Change::Retire => "no records left: batch withdrawn".to_string(),
                _ => reason.to_string(),
            },
        });
    }
    write_changelog(&staging.join("changelog.parquet"), &log)?;
    let count = |c: Change| g.entries.iter().filter(|e| e.change == c).count() as u64;
    let history = HistoryEntry {
        generation: g.number,
        label: job.label.clone(),
        batches_added: g.new.iter().map(|b| b.id.clone()).collect(),
        batches_withdrawn: g.withdrawn.iter().cloned().collect(),
        records: g.record_count,
        persons: g.persons,
        new_records: g.new_records,
        new_persons: g.new_persons,
        merged: count(Change::Merge),
        split: count(Change::Split),
        retired: count(Change::Retire),
        persons_reclustered: g.persons_reclustered,
    };
    let mut batches = g.kept;
    for (b, &records) in g.new.iter().zip(&g.new_records_per_batch) {
        batches.push(Batch {
            id: b.id.clone(),
            source_name: b
                .path
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default(),
            agency: b.enc.meta.agency.clone(),
            rows: b.rows as u64,
            records,
            added_generation: g.number,
            added_label: job.label.clone(),
        });
    }
    let meta = g.new.first().map(|b| &b.enc.meta);
    let manifest = Manifest {
        format: FORMAT.to_string(),
        generation: g.number,
        label: job.label.clone(),
        schema_fingerprint: prev.map_or_else(
            || {
                meta.map(|m| m.schema_fingerprint.clone())
                    .unwrap_or_default()
            },
            |p| p.manifest.schema_fingerprint.clone(),
        ),
        kcv: prev.map_or_else(
            || meta.map(|m| m.kcv.clone()).unwrap_or_default(),
            |p| p.manifest.kcv.clone(),
        ),
        clk_bits: prev.map_or_else(
            || meta.map(|m| m.clk_bits).unwrap_or_default(),
            |p| p.manifest.clk_bits,
        ),
        settings: job.settings,
        lsh: g.lsh,
        next_person: g.next_person,
        batches,
        history: prev
            .map(|p| p.manifest.history.clone())
            .unwrap_or_default()
            .into_iter()
            .chain([history.clone()])
            .collect(),
        model: g.model,
    };
    let text = serde_json::to_string_pretty(&manifest)
        .map_err(|e| Error::io(&staging, std::io::Error::other(e.to_string())))?
        + "\n";
    write_atomic(&staging.join("registry.json"), text.as_bytes())?;
    let mut diagnostics = g.diagnostics;
    if let Some(seconds) = diagnostics
        .get_mut("seconds")
        .and_then(|s| s.as_object_mut())
    {
        let write = (t.elapsed().as_secs_f64() * 1000.0).round() / 1000.0;
        seconds.insert("write".into(), write.into());
    }
    let text = serde_json::to_string_pretty(&diagnostics)
        .map_err(|e| Error::io(&staging, std::io::Error::other(e.to_string())))?
        + "\n";
    write_atomic(&staging.join("diagnostics.json"), text.as_bytes())?;
    super::sync_dir(&staging)?;
    reg.commit(&staging, g.number)?;
    Ok(history)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_damaged_evidence_file_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("evidence.bin");
        write_evidence(
            &path,
            &[Evidence {
                a: 1,
                b: 2,
                dice: 0.9,
                overlap: 0.95,
            }],
        )
        .unwrap();
        assert_eq!(read_evidence(&path).unwrap().len(), 1);
        // A count of 2^60 pairs (16 + n * 16 overflowed), with a digest that checks out.
        let mut body = EVIDENCE_MAGIC.to_vec();
        body.extend_from_slice(&(1u64 << 60).to_le_bytes());
        body.extend_from_slice(&[0; 16]);
        let digest = blake3::hash(&body);
        body.extend_from_slice(digest.as_bytes());
        std::fs::write(&path, &body).unwrap();
        assert!(read_evidence(&path).is_err());
    }
    use super::super::index::BatchIndex;

    #[test]
    fn the_band_join_finds_every_pair_of_equal_keys_once() {
        let mut state = 11u64;
        let mut next = |m: u64| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 33) % m) as u32
        };
        for (n_old, n_fresh, key_space) in [
            (0, 5, 4),
            (5, 0, 4),
            (200, 30, 50),
            (30, 200, 50),
            (300, 300, 8),
            (1000, 3, 5000),
        ] {
            let old_keys: Vec<u32> = (0..n_old).map(|_| next(key_space)).collect();
            let idx = BatchIndex::from_parts(
                8,
                1,
                &["r".to_string()],
                &vec![0; n_old],
                &vec![0u8; n_old * 8],
                &old_keys,
            );
            let mut fresh: Vec<(u32, u32)> =
                (0..n_fresh as u32).map(|r| (next(key_space), r)).collect();
            fresh.sort_unstable();
            let mut got = Vec::new();
            super::join_band(idx.band_table(0), &fresh, |row, f| {
                got.extend(f.iter().map(|e| (row, e.1)));
            });
            got.sort_unstable();
            let mut want = Vec::new();
            for (row, &k) in old_keys.iter().enumerate() {
                for &(kf, r) in &fresh {
                    if kf == k {
                        want.push((row, r));
                    }
                }
            }
            want.sort_unstable();
            assert_eq!(got, want, "{n_old} old, {n_fresh} fresh, {key_space} keys");
        }
    }

    #[test]
    fn gallop_finds_what_a_binary_search_finds() {
        let mut state = 3u64;
        for n in [0usize, 1, 3, 17, 500] {
            let mut t: Vec<(u32, u32)> = (0..n as u32)
                .map(|i| {
                    state = state
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    ((state >> 58) as u32, i)
                })
                .collect();
            t.sort_unstable();
            for from in 0..=n {
                for key in 0..66 {
                    let want = from + t[from..].partition_point(|e| e.0 < key);
                    assert_eq!(
                        super::gallop(&t, from, key),
                        want,
                        "n {n} from {from} key {key}"
                    );
                }
            }
        }
    }
}

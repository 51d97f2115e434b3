//! A registry on the match model: each run links every batch the registry keeps again, with
//! the model's `m` and `u` fixed at the registry's first run (or, while they are the built-in
//! model's because that run was too small, at the first run that can fit its own), and hands
//! the old ids on.
//!
//! The record-level rules' registry ([`super::update`]) re-clusters only what new evidence
//! touches, which works because a rule's decision on a pair never changes. The model's does:
//! λ (the share of matches among all pairs) moves with every month's records, a frequency
//! adjustment moves with the names seen, and a cluster's merge depends on all its pairs'
//! probabilities. So a run on the model is one `crosswalk link --model fs` over all kept
//! batches (the same core, [`crate::pipeline::link`]), with `m` and `u` read from the
//! registry instead of fitted, and then the id rule of [`super::ids`] over every person:
//! each old person's heir keeps its id, and what moved is in the changelog.
//!
//! What stays fixed between runs: the batches (content-addressed copies), `m` and `u`, the
//! settings. What moves: λ, the name frequencies and the names neighbourhoods (more records are
//! more evidence about how rare a name is; the neighbourhoods are counted only while the run
//! makes the all-pairs names pass, up to 250,000 records, so a registry growing past that
//! changes how it weighs rough names agreements in one generation), and the candidates, chosen on each run's records as `--blocking auto` does
//! (all pairs up to 50,000 CLKs, LSH above, its informative positions taken from the run's
//! CLKs). Persons no fresh record reaches keep their records whatever moved ([`changing`]).
//! The cost is a full link job per run (about a minute at a million records on 2 cores,
//! docs/registry.md), which a monthly job can pay.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Instant;

use rayon::prelude::*;
use rustc_hash::{FxHashMap, FxHashSet};

use super::ids;
use super::update::{hardening_of, write_generation, Generation, NewBatch, Previous};
use super::update::{UpdateJob, UpdateSummary};
use super::{person_id, Batch, FrozenLsh, Registry};
use crate::block::LshParams;
use crate::cluster::find_root;
use crate::error::{Error, Result};
use crate::io::encodings::{self, check_same};
use crate::pipeline::link::{link_files, parts_taps, Blocking, LinkJob, LinkModel, Linked};

/// What a run on the model starts from: the previous generation, the new batches read and
/// checked, the batches withdrawn, and the run's frozen band keys.
pub(super) struct Start {
    /// The previous generation (none for the first run).
    pub prev: Option<Previous>,
    /// The batches this run adds, read.
    pub new: Vec<NewBatch>,
    /// Batch ids this run withdraws.
    pub withdrawn: BTreeSet<String>,
    /// Inputs the registry has already.
    pub skipped: Vec<PathBuf>,
    /// The registry's band-key function (kept in the manifest; the model's candidates come
    /// from the link job's own blocking).
    pub frozen: FrozenLsh,
    /// The generation this run makes.
    pub generation: u32,
    /// The registry's `--min-average` ([`super::Settings::min_average`]).
    pub min_average: f64,
}

/// One registry run on the match model (see the module documentation).
pub(super) fn run(
    job: &UpdateJob,
    reg: &Registry,
    start: Start,
    pool: &rayon::ThreadPool,
    t0: Instant,
) -> Result<UpdateSummary> {
    let Start {
        prev,
        mut new,
        withdrawn,
        skipped,
        frozen,
        generation,
        min_average,
    } = start;
    let s = job.settings;
    // Every batch the registry keeps, read again, then the new ones.
    let kept: Vec<Batch> = prev
        .iter()
        .flat_map(|p| p.manifest.batches.iter())
        .filter(|b| !withdrawn.contains(&b.id))
        .cloned()
        .collect();
    let mut inputs: Vec<PathBuf> = kept
        .iter()
        .map(|b| reg.batch_path(&b.id, "parquet"))
        .collect();
    let mut files: Vec<encodings::Encodings> = pool.install(|| {
        inputs
            .par_iter()
            .map(|p| encodings::read(p))
            .collect::<Result<_>>()
    })?;
    let mut new_records_per_batch = Vec::with_capacity(new.len());
    for b in &mut new {
        let distinct: FxHashSet<&str> = b.enc.record_key.iter().map(|k| k.as_str()).collect();
        new_records_per_batch.push(distinct.len() as u64);
        let meta = b.enc.meta.clone();
        files.push(std::mem::replace(
            &mut b.enc,
            encodings::Encodings {
                meta,
                ..Default::default()
            },
        ));
        inputs.push(b.path.clone());
    }
    for (f, path) in files.iter().zip(&inputs).skip(1) {
        check_same(&files[0].meta, &inputs[0], &f.meta, path)?;
    }
    // The model's m and u: fitted at the first run, read from the registry after it. A
    // registry whose first run was too small to fit its own (the built-in model's m and u)
    // fits them again at every run until one can; those are then kept.
    let stored = prev.as_ref().and_then(|p| p.manifest.model.as_ref());
    // A model an older version fitted, whose levels meant other evidence or which lacks a
    // comparison this version weighs (the event gap, since 2026-12-07, or its five levels,
    // since 2026-12-08), is fitted again like the built-in one: at this run, kept from then
    // on.
    let outdated = stored.is_some_and(|section| {
        !crate::link::evidence::labels_are_this_versions(section)
            || crate::link::evidence::lacks_comparisons(section)
    });
    let built_in = outdated
        || stored.is_some_and(|section| {
            section["parameters_source"].as_str()
                == Some(crate::link::probabilistic::BUILT_IN_SOURCE)
        });
    let fixed = match stored.filter(|_| !built_in) {
        Some(section) => Some(
            crate::link::evidence::model_from_diagnostics(section).map_err(|e| {
                Error::encoding(
                    reg.generation_dir(generation - 1).join("registry.json"),
                    format!("damaged: its match model cannot be read ({e})"),
                )
            })?,
        ),
        None if prev.is_some() && !built_in => {
            return Err(Error::encoding(
                reg.generation_dir(generation - 1).join("registry.json"),
                "damaged: a registry on the match model without its model",
            ))
        }
        None => None,
    };
    let params = frozen.params();
    let link_job = LinkJob {
        inputs: inputs.clone(),
        out: job.registry.clone(),
        threshold: s.threshold,
        cohesion: s.cohesion,
        containment: s.containment,
        orphan_overlap: s.orphan_overlap,
        orphan_margin: s.orphan_margin,
        blocking: if params == LshParams::default() {
            Blocking::Auto
        } else {
            Blocking::Lsh(params)
        },
        one_to_one: false,
        threads: job.threads,
        model: LinkModel::Probabilistic {
            min_average,
            event_gap: true,
        },
        model_from: None,
    };
    let Linked {
        keys,
        node_of,
        labels,
        clks,
        candidates,
        platform,
        blocking,
        model,
        model_warning,
        seconds,
        ..
    } = if files.is_empty() {
        // Every batch withdrawn: no records, no persons; every old id is retired below.
        Linked {
            keys: Vec::new(),
            node_of: FxHashMap::default(),
            labels: Vec::new(),
            rows: 0,
            clks: 0,
            candidates: 0,
            scored_pairs: 0,
            borderline: 0,
            histogram: [0; 20],
            orphans_attached: 0,
            platform: "none",
            blocking: serde_json::Value::Null,
            model: serde_json::Value::Null,
            model_warning: None,
            seconds: [0.0; 5],
        }
    } else {
        let taps = parts_taps(&files, &inputs[0])?;
        let part_columns: Vec<encodings::PartColumns> = files
            .iter_mut()
            .map(|f| std::mem::take(&mut f.parts))
            .collect();
        link_files(&link_job, &files, part_columns, Some(taps), fixed, pool, t0)?
    };
    let model_warning = match (outdated, model_warning) {
        (true, w) => Some(format!(
            "the registry's match model was fitted by an older version of crosswalk, whose comparisons weighed other evidence or fewer of it: not used; the model is fitted again, and the first run that can fit its own keeps it{}",
            w.map(|w| format!("; {w}")).unwrap_or_default()
        )),
        (false, w) => w,
    };
    let t_cluster = Instant::now();
    let n = keys.len();
    // Fresh records: those the new batches bring (new, or brought again) and those that lost
    // rows to a withdrawal.
    let mut fresh = vec![false; n];
    let mark = |fresh: &mut Vec<bool>, agency: &str, record_keys: &[String]| {
        for k in record_keys {
            if let Some(&x) = node_of.get(&(agency, k.as_str())) {
                fresh[x as usize] = true;
            }
        }
    };
    for f in &files[files.len() - new.len()..] {
        mark(&mut fresh, &f.meta.agency, &f.record_key);
    }
    for b in prev
        .iter()
        .flat_map(|p| p.manifest.batches.iter())
        .filter(|b| withdrawn.contains(&b.id))
    {
        let gone = encodings::read(&reg.batch_path(&b.id, "parquet"))?;
        mark(&mut fresh, &b.agency, &gone.record_key);
    }
    // Each record's old person; old persons that lost a record to a withdrawal.
    let mut old_person: Vec<Option<u32>> = vec![None; n];
    let mut lost: BTreeSet<u32> = BTreeSet::new();
    if let Some(p) = &prev {
        for (a, k, person) in &p.records {
            match node_of.get(&(p.agencies[*a as usize].as_str(), k.as_str())) {
                Some(&x) => old_person[x as usize] = Some(*person),
                None => {
                    lost.insert(*person);
                }
            }
        }
    }
    let new_records = old_person.iter().filter(|p| p.is_none()).count() as u64;
    let changing = changing(&labels, &old_person, &fresh, &lost);
    // The changing records' clusters, in order of their smallest record (records ascend),
    // and the old persons they had (with those that lost every record).
    let mut cluster_of: FxHashMap<u32, usize> = FxHashMap::default();
    let mut members: Vec<Vec<u32>> = Vec::new();
    let mut affected: BTreeSet<u32> = lost;
    for x in (0..n as u32).filter(|&x| changing[x as usize]) {
        let c = *cluster_of.entry(labels[x as usize]).or_insert_with(|| {
            members.push(Vec::new());
            members.len() - 1
        });
        members[c].push(x);
        affected.extend(old_person[x as usize]);
    }
    let old_of: Vec<Vec<u32>> = members
        .iter()
        .map(|m| m.iter().filter_map(|&x| old_person[x as usize]).collect())
        .collect();
    let mut next = prev.as_ref().map_or(1, |p| p.manifest.next_person);
    let assigned = ids::assign(&old_of, &affected, &mut next);
    // Unchanged records keep their person; changing ones take their cluster's.
    let mut person: Vec<u32> = old_person.iter().map(|p| p.unwrap_or(0)).collect();
    for (m, &id) in members.iter().zip(&assigned.ids) {
        for &x in m {
            person[x as usize] = id;
        }
    }
    let persons = person.iter().copied().collect::<BTreeSet<u32>>().len();
    let changing_count = changing.iter().filter(|&&c| c).count();
    let t_cluster = seconds[3] + t_cluster.elapsed().as_secs_f64();
    let t3 = Instant::now();
    // The parameters of the first run, kept as they are by every later one (or of this run,
    // while the registry's are still the built-in ones).
    let parameters = match prev.as_ref().and_then(|p| p.manifest.model.clone()) {
        // (A run that withdrew every batch linked nothing and has no model of its own.)
        Some(m) if !built_in || model.is_null() => m,
        _ => model.clone(),
    };
    let ids_text: Vec<String> = person.iter().map(|&p| person_id(p)).collect();
    let round3 = |x: f64| (x * 1000.0).round() / 1000.0;
    let diagnostics = serde_json::json!({
        "generation": generation,
        "linked_by": "the match model (fs), every kept batch linked again",
        "threshold": s.threshold,
        "records": n,
        "clks": clks,
        "candidate_pairs": candidates,
        "persons": persons,
        "records_reclustered": changing_count,
        "kernel": platform,
        "hardening": hardening_of(&new),
        "blocking": blocking,
        "warnings": model_warning.iter().collect::<Vec<_>>(),
        "model": model,
        "seconds": {
            "read": round3(seconds[0]),
            "lsh_build": round3(seconds[1]),
            "compare": round3(seconds[2]),
            "cluster_and_ids": round3(t_cluster),
        },
    });
    let history = write_generation(
        job,
        reg,
        prev.as_ref(),
        Generation {
            number: generation,
            records: keys
                .iter()
                .zip(&ids_text)
                .map(|(k, p)| (k.0, k.1, p.as_str())),
            record_count: n as u64,
            persons: persons as u64,
            evidence: &[],
            entries: &assigned.entries,
            new: &new,
            new_records_per_batch,
            new_indexes: &[],
            kept,
            withdrawn: &withdrawn,
            new_records,
            new_persons: assigned.new_persons,
            persons_reclustered: affected.len() as u64,
            next_person: next,
            lsh: frozen,
            model: Some(parameters),
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
        new_clks: clks,
        old_clks: 0,
        candidates,
        seconds: [
            seconds[0],
            seconds[1] + seconds[2],
            t_cluster,
            t3.elapsed().as_secs_f64(),
        ],
        relinked: true,
        warnings: model_warning.into_iter().collect(),
    })
}

/// Which records this run re-assigns: `labels` are the records' new clusters, `old_person`
/// their persons in the previous generation (`None`: a new record), `fresh` the records a new
/// batch brings or a withdrawal touched, `lost` the old persons that lost a record.
///
/// Records are joined with the other records of their new cluster and of their old person; a
/// group so joined that holds no fresh record and no record of a person in `lost` changed
/// only because λ (refitted on more records) or the name frequencies moved a pair across the
/// line, not because of new evidence: its records keep their old persons (`false`), as the
/// rules' registry never re-examines what no new record touches. Every record of every other
/// group is re-assigned (`true`), and with it every old person and new cluster it holds, so
/// that the id rule sees each of them whole.
fn changing(
    labels: &[u32],
    old_person: &[Option<u32>],
    fresh: &[bool],
    lost: &BTreeSet<u32>,
) -> Vec<bool> {
    let n = labels.len();
    let mut parent: Vec<u32> = (0..n as u32).collect();
    let mut first: FxHashMap<(bool, u32), u32> = FxHashMap::default();
    for x in 0..n as u32 {
        let mut join = |key: (bool, u32)| {
            let f = *first.entry(key).or_insert(x);
            let (a, b) = (find_root(&mut parent, f), find_root(&mut parent, x));
            parent[a.max(b) as usize] = a.min(b);
        };
        join((false, labels[x as usize]));
        if let Some(p) = old_person[x as usize] {
            join((true, p));
        }
    }
    let mut reached = vec![false; n];
    for x in 0..n as u32 {
        let lost_one = old_person[x as usize].is_some_and(|p| lost.contains(&p));
        if fresh[x as usize] || lost_one {
            let r = find_root(&mut parent, x);
            reached[r as usize] = true;
        }
    }
    (0..n as u32)
        .map(|x| reached[find_root(&mut parent, x) as usize])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Six records: persons 1 = {0, 1}, 2 = {2, 3}, 3 = {4}, and record 5 new.
    fn old() -> Vec<Option<u32>> {
        vec![Some(1), Some(1), Some(2), Some(2), Some(3), None]
    }

    #[test]
    fn a_new_record_reaches_the_persons_its_cluster_joins() {
        // Record 5 (fresh) joins record 1's cluster, which holds all of person 1.
        let labels = [0, 0, 2, 2, 4, 0];
        let fresh = [false, false, false, false, false, true];
        let got = changing(&labels, &old(), &fresh, &BTreeSet::new());
        assert_eq!(got, [true, true, false, false, false, true]);
        // ... and a cluster merging persons 1 and 2 reaches both.
        let labels = [0, 0, 0, 0, 4, 0];
        let got = changing(&labels, &old(), &fresh, &BTreeSet::new());
        assert_eq!(got, [true, true, true, true, false, true]);
    }

    #[test]
    fn what_no_fresh_record_reaches_keeps_its_persons() {
        // Persons 2 and 3 merged, and person 1 split, with no fresh record among them: both
        // changes are held back, the new record alone changes.
        let labels = [0, 1, 2, 2, 2, 5];
        let fresh = [false, false, false, false, false, true];
        let got = changing(&labels, &old(), &fresh, &BTreeSet::new());
        assert_eq!(got, [false, false, false, false, false, true]);
    }

    #[test]
    fn a_person_that_lost_a_record_is_reassigned_whole() {
        // Person 2 lost a record to a withdrawal (not among these); its other records and
        // everything their clusters join are re-assigned, and person 1 is not.
        let labels = [0, 0, 2, 4, 4, 5];
        let fresh = [false; 6];
        let lost = BTreeSet::from([2]);
        let got = changing(&labels, &old(), &fresh, &lost);
        assert_eq!(got, [false, false, true, true, true, false]);
    }
}

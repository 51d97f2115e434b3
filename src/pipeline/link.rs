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
use crate::cluster::{cluster_scored_par, find_root, Edge};
use crate::compare::{ClkMatrix, Platform, Threshold};
use crate::error::{Error, Result};
use crate::io::entities::write_entities;
use crate::io::{encodings, events};

/// Two records (by node id) and their Dice score.
type ScoredPair = (u32, u32, f64);

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
/// Pairs below this Dice never count as evidence (containment, lone records).
pub const MIN_DICE: f64 = 0.6;

/// LSH buckets of at least this many rows are compared through the block kernel.
const GATHER_BUCKET: usize = 16;

/// Above this many CLKs, `Blocking::Auto` switches from comparing all pairs to LSH.
pub const AUTO_LSH_ROWS: usize = 50_000;

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
    /// Lone records attached to a cluster by overlap ([`attach_orphans`]).
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
    let warnings = shared_record_keys(&files, &job.inputs);
    let bits = files[0].meta.clk_bits;
    // Equal fingerprints mean equal schemas, so any file that recorded its hardening names it
    // for all (files written before the label existed say `unrecorded`).
    let hardening = files
        .iter()
        .map(|f| f.meta.hardening.as_str())
        .find(|h| *h != "unrecorded")
        .unwrap_or("unrecorded")
        .to_string();
    // 2. Records, sorted so that numbering does not depend on file order.
    let mut keys: Vec<(&str, &str)> = Vec::new();
    for f in &files {
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
    for f in &files {
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
    let keys: Vec<(String, String)> = keys
        .into_iter()
        .map(|(a, k)| (a.to_string(), k.to_string()))
        .collect();
    // Sort CLK rows by popcount (ties by owner) for the popcount ranges; the matrix is built
    // once, from the sorted rows.
    let popcount = |r: u32| -> u32 {
        bytes[r as usize * width..(r as usize + 1) * width]
            .iter()
            .map(|b| b.count_ones())
            .sum()
    };
    let mut order: Vec<u32> = (0..owner.len() as u32).collect();
    order.sort_by_key(|&r| (popcount(r), owner[r as usize], r));
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
    .map(|p| pool.install(|| Lsh::new(&matrix, p)));
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
    // Best score per record pair.
    let mut scored: Vec<(u32, u32, f64)> = per_row
        .into_iter()
        .flat_map(|r| r.1)
        .map(|(a, b, s)| (a.min(b), a.max(b), s))
        .collect();
    scored.par_sort_unstable_by(|x, y| (x.0, x.1).cmp(&(y.0, y.1)).then(y.2.total_cmp(&x.2)));
    scored.dedup_by_key(|x| (x.0, x.1));
    let t_compare = t1.elapsed().as_secs_f64();

    // 4. Cluster.
    let t2 = Instant::now();
    let edges: Vec<Edge> = scored
        .iter()
        .map(|&(a, b, score)| Edge { a, b, score })
        .collect();
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
    let agency_of: Vec<&str> = keys.iter().map(|k| k.0.as_str()).collect();
    let labels = if job.one_to_one {
        one_to_one(keys.len(), &edges, &agency_of)
    } else {
        pool.install(|| {
            cluster_scored_par(keys.len(), &edges, job.cohesion * job.threshold, &score)
        })
    };
    let t_orphans = Instant::now();
    let orphan_overlap = if job.one_to_one {
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
        None => (labels, 0),
    };
    let mut number: HashMap<u32, usize> = HashMap::new();
    for &l in &labels {
        let next = number.len() + 1;
        number.entry(l).or_insert(next);
    }
    let t_cluster = t2.elapsed().as_secs_f64();
    let t_orphans = t_orphans.elapsed().as_secs_f64();

    // 5. Write.
    let t3 = Instant::now();
    let ids: Vec<String> = labels
        .iter()
        .map(|l| format!("P-{:06}", number[l]))
        .collect();
    write_entities(
        &out.path().join("entities.parquet"),
        keys.iter()
            .zip(&ids)
            .map(|(k, id)| (k.0.as_str(), k.1.as_str(), id.as_str())),
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
    let mut hist = [0usize; 20];
    for &(_, _, s) in &scored {
        hist[((s * 20.0) as usize).min(19)] += 1;
    }
    let borderline = scored.iter().filter(|x| x.2 < job.threshold + 0.05).count();
    let summary = LinkSummary {
        rows,
        records: keys.len(),
        clks: n,
        candidates,
        pairs: scored.len(),
        persons: number.len(),
        orphans_attached,
        platform: platform.name(),
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
    let diag = serde_json::json!({
        "threshold": job.threshold,
        "cohesion": job.cohesion,
        "containment": job.containment,
        "orphan_overlap": job.orphan_overlap,
        "orphan_margin": job.orphan_margin,
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
        "blocking": match &lsh {
            Some(l) => serde_json::json!({
                "method": "minhash-lsh",
                "bands": l.params().bands,
                "rows": l.params().rows,
                "max_bit_share": l.params().max_bit_share_permille as f64 / 1000.0,
            }),
            None => serde_json::json!({"method": "all-pairs"}),
        },
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

/// The ranges of block `b` (rows `8b..8b+8`) of a popcount-sorted matrix with popcounts `pops`:
/// each row against the later rows whose popcount can reach threshold `tv`
/// (`p_j ≤ p_i·(2−t)/t`), as `ClkMatrix::matches_block` takes them.
fn later_partners(pops: &[u32], b: usize, tv: f64) -> Vec<std::ops::Range<usize>> {
    (b * 8..(b * 8 + 8).min(pops.len()))
        .map(|i| {
            let max_pop = (pops[i] as f64 * (2.0 - tv) / tv).floor() as u32;
            i + 1..pops.partition_point(|&p| p <= max_pop).max(i + 1)
        })
        .collect()
}

/// The pairs of CLK rows that LSH offers (rows sharing a bucket in some band) and that reach
/// `t`, each once, as `score(i, j, |i∩j|)` with `i < j`; pairs of one record (`owner`) are
/// skipped. Returns them with the number of pairs offered. Buckets of fewer than `gather` rows
/// are compared pair by pair; a larger one is gathered into a matrix of its own (its rows
/// ascend, so their popcounts do) and compared through the block kernel, with popcount windows
/// as in the all-pairs path: its rows then stay in cache instead of being fetched again for
/// every pair. Both give the same pairs (`lsh_pairs_gathered_or_not_are_the_same`).
pub(crate) fn lsh_pairs<T: Send>(
    lsh: &Lsh,
    matrix: &ClkMatrix,
    platform: Platform,
    owner: &[u32],
    t: Threshold,
    gather: usize,
    score: &(dyn Fn(usize, u32, u32) -> T + Sync),
) -> (Vec<T>, u64) {
    let tv = t.value().max(1e-9);
    lsh.map_buckets(lsh.params().bands, &|band, bucket, out| {
        let k = bucket.len();
        // A pair of two records; one found in an earlier band was reported there.
        let mut keep = |i: u32, j: u32, inter: u32| {
            let (i, j) = (i.min(j), i.max(j));
            if !lsh.collided_before(i, j, band) {
                out.push(score(i as usize, j, inter));
            }
        };
        if k < gather {
            for (x, &(_, i)) in bucket.iter().enumerate() {
                for &(_, j) in &bucket[x + 1..] {
                    if owner[i as usize] != owner[j as usize] {
                        if let Some(inter) = matrix.passes(platform, i as usize, j as usize, t) {
                            keep(i, j, inter);
                        }
                    }
                }
            }
        } else {
            // Popcount order for the windows (in the link job's matrix, row order already is).
            let mut rows: Vec<u32> = bucket.iter().map(|e| e.1).collect();
            rows.sort_by_key(|&r| (matrix.popcount(r as usize), r));
            let local = matrix.select(&rows);
            let pops: Vec<u32> = (0..k).map(|i| local.popcount(i)).collect();
            let mut hits = Vec::new();
            for b in 0..k.div_ceil(8) {
                hits.clear();
                local.matches_block(platform, b * 8, &later_partners(&pops, b, tv), t, &mut hits);
                for &(li, lj, inter) in &hits {
                    let (i, j) = (rows[li as usize], rows[lj as usize]);
                    if owner[i as usize] != owner[j as usize] {
                        keep(i, j, inter);
                    }
                }
            }
        }
        (k * (k - 1) / 2) as u64
    })
}

/// [`record_score`] between records `x` and `y` as a function, for
/// [`crate::cluster::cluster_scored`]: `owner[r]` is the record (of `records`) of CLK row `r` of
/// `matrix`.
pub fn record_scorer<'a>(
    matrix: &'a ClkMatrix,
    platform: Platform,
    owner: &[u32],
    records: usize,
    threshold: f64,
    containment: f64,
) -> impl Fn(u32, u32) -> f64 + Sync + 'a {
    let mut rows_of: Vec<Vec<u32>> = vec![Vec::new(); records];
    for (r, &o) in owner.iter().enumerate() {
        rows_of[o as usize].push(r as u32);
    }
    move |x, y| {
        record_score(
            matrix,
            platform,
            &rows_of[x as usize],
            &rows_of[y as usize],
            threshold,
            containment,
        )
    }
}

/// The evidence two records give each other: the best Dice over pairs of their CLKs (rows of
/// `matrix`) that reaches `threshold`, or that reaches [`MIN_DICE`] with the smaller CLK having
/// at least `containment` of its bits in the other; 0 when no pair does. Cluster averages count
/// record pairs at this score ([`crate::cluster::cluster_scored`]).
pub fn record_score(
    matrix: &ClkMatrix,
    platform: Platform,
    rows_x: &[u32],
    rows_y: &[u32],
    threshold: f64,
    containment: f64,
) -> f64 {
    let mut best = 0.0f64;
    for &p in rows_x {
        for &q in rows_y {
            let (p, q) = (p as usize, q as usize);
            let inter = matrix.intersection(platform, p, q) as f64;
            let (a, b) = (matrix.popcount(p) as f64, matrix.popcount(q) as f64);
            let dice = 2.0 * inter / (a + b).max(1.0);
            let overlap = inter / a.min(b).max(1.0);
            if dice >= threshold || (overlap >= containment && dice >= MIN_DICE) {
                best = best.max(dice);
            }
        }
    }
    best
}

/// Greedy one-to-one matching, as anonlink's solver does for deduplicated sources: pairs in
/// order of score (best first, ties by node ids) are accepted when neither record is already
/// linked to a record of the other's agency and the two are of different agencies. Persons are
/// the connected components of the accepted pairs. Returns a label per node: the smallest
/// node id of its person.
pub fn one_to_one(n: usize, edges: &[Edge], agency_of: &[&str]) -> Vec<u32> {
    let mut order: Vec<&Edge> = edges.iter().collect();
    order.sort_by(|x, y| {
        y.score
            .total_cmp(&x.score)
            .then((x.a, x.b).cmp(&(y.a, y.b)))
    });
    let mut taken: FxHashSet<(u32, &str)> = FxHashSet::default();
    let mut parent: Vec<u32> = (0..n as u32).collect();
    for e in order {
        let (aa, ab) = (agency_of[e.a as usize], agency_of[e.b as usize]);
        if aa == ab || taken.contains(&(e.a, ab)) || taken.contains(&(e.b, aa)) {
            continue;
        }
        taken.insert((e.a, ab));
        taken.insert((e.b, aa));
        let (x, y) = (find_root(&mut parent, e.a), find_root(&mut parent, e.b));
        parent[x.max(y) as usize] = x.min(y);
    }
    (0..n as u32).map(|i| find_root(&mut parent, i)).collect()
}

/// The compared CLK rows: the popcount-sorted matrix, each row's record (`owner`) and
/// popcount, the kernel platform, and the LSH tables when blocking was used.
#[derive(Debug, Clone, Copy)]
pub struct Rows<'a> {
    /// CLK rows sorted by popcount.
    pub matrix: &'a ClkMatrix,
    /// The record (node) of each row.
    pub owner: &'a [u32],
    /// Popcount of each row.
    pub pops: &'a [u32],
    /// Kernel platform.
    pub platform: Platform,
    /// LSH tables, when candidates come from LSH.
    pub lsh: Option<&'a Lsh>,
}

/// Attaches records left alone by clustering to the one cluster they clearly belong to.
///
/// A sparse record (a name and sex only, say) scores low Dice against a full record of the
/// same person, because the full record's extra fields add bits the sparse one cannot share.
/// The overlap coefficient `|A∩B| / min(|A|, |B|)` measures how much of the smaller CLK the
/// other contains. A singleton record is attached to a cluster when its best overlap with one of
/// the cluster's CLKs (among pairs with Dice ≥ [`MIN_DICE`]) reaches `min_overlap` and every other
/// cluster's best is lower by at least `margin` (an ambiguous record stays alone). Attachments
/// are decided on the clustering as it was, so they never chain. Candidates are every row in
/// the popcount range that can reach [`MIN_DICE`], or with LSH the rows sharing a bucket.
/// Returns the new labels (the smallest node id of each cluster) and the number of records
/// attached.
pub fn attach_orphans(
    labels: &[u32],
    rows: &Rows<'_>,
    min_overlap: f64,
    margin: f64,
) -> (Vec<u32>, usize) {
    let Rows {
        matrix,
        owner,
        pops,
        platform,
        lsh,
    } = *rows;
    let mut size: HashMap<u32, usize> = HashMap::new();
    for &l in labels {
        *size.entry(l).or_default() += 1;
    }
    let t = Threshold::new(MIN_DICE);
    let lo_pop = |p: u32| (p as f64 * MIN_DICE / (2.0 - MIN_DICE)).ceil() as u32;
    let hi_pop = |p: u32| (p as f64 * (2.0 - MIN_DICE) / MIN_DICE).floor() as u32;
    let lone: Vec<usize> = (0..matrix.len())
        .filter(|&r| size[&labels[owner[r] as usize]] == 1)
        .collect();
    // Matches (Dice ≥ MIN_DICE) of every lone row: with LSH, one pass over the buckets keeping
    // pairs with a lone side (cheaper than looking each lone row up in every band).
    let lsh_found: Option<HashMap<u32, Vec<(u32, u32)>>> = lsh.map(|lsh| {
        let mut is_lone = vec![false; matrix.len()];
        for &i in &lone {
            is_lone[i] = true;
        }
        // A third of the bands: a lone record's candidates need not be exhaustive, and this
        // pass would otherwise cost as much as the main one.
        // Per bucket, only the pairs with a lone side: a bucket without a lone row costs one
        // pass over its rows, not one look per pair.
        let (pairs, _) = lsh.map_buckets(lsh.params().bands / 3, &|band, bucket, out| {
            for (x, &(_, a)) in bucket.iter().enumerate() {
                if !is_lone[a as usize] {
                    continue;
                }
                for (y, &(_, b)) in bucket.iter().enumerate() {
                    // A pair of two lone rows once, from its first row.
                    if y == x || (y < x && is_lone[b as usize]) {
                        continue;
                    }
                    let (i, j) = (a.min(b), a.max(b));
                    if let Some(inter) = matrix.passes(platform, i as usize, j as usize, t) {
                        if !lsh.collided_before(i, j, band) {
                            out.push((i, j, inter));
                        }
                    }
                }
            }
            (bucket.len() * (bucket.len() - 1) / 2) as u64
        });
        let mut by_row: HashMap<u32, Vec<(u32, u32)>> = HashMap::new();
        for (i, j, inter) in pairs {
            for (a, b) in [(i, j), (j, i)] {
                if is_lone[a as usize] {
                    by_row.entry(a).or_default().push((b, inter));
                }
            }
        }
        by_row
    });
    let choices: Vec<(u32, u32)> = lone
        .par_iter()
        .map(|&i| {
            let mut found = Vec::new();
            match &lsh_found {
                Some(by_row) => found.extend(by_row.get(&(i as u32)).into_iter().flatten()),
                None => {
                    let start = pops.partition_point(|&p| p < lo_pop(pops[i]));
                    let end = pops.partition_point(|&p| p <= hi_pop(pops[i]));
                    matrix.matches_in(platform, i, start..end, t, &mut found);
                }
            }
            let me = owner[i];
            let mut best: HashMap<u32, f64> = HashMap::new();
            for (j, inter) in found {
                let other = owner[j as usize];
                if other == me {
                    continue;
                }
                let o = inter as f64 / pops[i].min(pops[j as usize]).max(1) as f64;
                let e = best.entry(labels[other as usize]).or_insert(0.0);
                *e = e.max(o);
            }
            let mut ranked: Vec<(u32, f64)> = best.into_iter().collect();
            ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            match ranked.as_slice() {
                [(l, o), rest @ ..]
                    if *o >= min_overlap && rest.first().is_none_or(|r| r.1 <= o - margin) =>
                {
                    (me, *l)
                }
                _ => (me, u32::MAX),
            }
        })
        .collect();
    // A record with several CLKs (aliases) attaches only if all its choices agree.
    let mut pick: BTreeMap<u32, Option<u32>> = BTreeMap::new();
    for (me, l) in choices {
        let target = (l != u32::MAX).then_some(l);
        pick.entry(me)
            .and_modify(|p| {
                if *p != target {
                    *p = None;
                }
            })
            .or_insert(target);
    }
    // Union of each orphan with its chosen cluster; labels become the smallest node id.
    let n = labels.len();
    let mut parent: Vec<u32> = (0..n as u32).collect();
    for (i, &l) in labels.iter().enumerate() {
        let (a, b) = (find_root(&mut parent, i as u32), find_root(&mut parent, l));
        parent[a.max(b) as usize] = a.min(b);
    }
    let mut attached = 0;
    for (me, target) in pick {
        if let Some(l) = target {
            let (a, b) = (find_root(&mut parent, me), find_root(&mut parent, l));
            parent[a.max(b) as usize] = a.min(b);
            attached += 1;
        }
    }
    (
        (0..n as u32).map(|i| find_root(&mut parent, i)).collect(),
        attached,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn lsh_pairs_gathered_or_not_are_the_same() {
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
                for gather in [usize::MAX, 16, 2] {
                    let (mut got, count) = lsh_pairs(&lsh, &m, p, &owner, t, gather, &score);
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

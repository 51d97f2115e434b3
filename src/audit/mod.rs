//! `crosswalk audit`: attack encodings without the key, and measure what the attack re-identifies.
//!
//! Privacy is measured like linkage quality: by running the attack. The audit plays the
//! taskforce gone bad (or anyone who obtains encodings files): it holds the encodings, knows the
//! public schema, and reads a **reference population** of names and birth dates like the
//! target's ([`reference`](mod@reference)). It runs two kinds of attack:
//!
//! - **pattern mining** (Christen, Ranbaduge, Vatsalan and Schnell 2018): mine the groups of
//!   bit positions that are set together ([`mine`]), label each group with the reference token
//!   of matching frequency and co-occurrence ([`align`]), then guess each record's given name,
//!   family name and birth date: the reference name all of whose labelled tokens the record holds
//!   (the longest such name, then the most frequent). Three variants: exact groups, groups
//!   mined from correlations (which survive folding, bit flips and diffusion better), and the
//!   latter mined on the sparsest quarter of the records, where a hardening that mixes a
//!   token's bits with the rest of the record hides it least; and, when the schema salts names
//!   by the birth year, plain mining of each birth year's records apart (`by_year`);
//! - **frequency alignment of repeated encodings** (after Kuzu et al. 2011): identical CLKs are
//!   grouped, and the largest groups are given the most frequent reference names.
//!
//! With the truth ([`truth`]: the key and the raw exports, held only by an agency or by whoever
//! built a synthetic world) it scores given name, family name, both, birth year and full birth
//! date recovered, per record and per person, and the given name by how many persons share it.
//! Without truth it reports what the attacks found and guessed. It never prints or writes a
//! name, a birth date or anything else of a record: only counts and shares.
//!
//! docs/privacy.md has the figures; docs/audit.md how to run it.

pub mod align;
pub mod mine;
pub mod reference;
pub mod truth;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Instant;

use rayon::prelude::*;
use rustc_hash::FxHashMap;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::schema::{Field, LinkageSchema};
use mine::{BitRows, MineParams, Signature};
use reference::Reference;
use truth::{TruthMap, TruthSource};

/// Format tag of the audit's JSON result.
pub const FORMAT: &str = "crosswalk-audit/1";

/// Longest CLK the audit attacks: the hardening-aware attack holds a correlation for every pair
/// of positions (8,192 bits: 256 MiB).
pub const MAX_BITS: usize = 8192;

/// Everything one audit needs.
#[derive(Debug)]
pub struct AuditJob {
    /// The encodings files attacked (one linkage's worth).
    pub encodings: Vec<PathBuf>,
    /// The attacker's reference population (CSV, [`reference`](mod@reference)).
    pub reference: PathBuf,
    /// The public linkage schema the encodings were made with.
    pub schema: LinkageSchema,
    /// The truth, if the audit is run by a key holder on its own exports or a synthetic world.
    pub truth: Option<TruthSource>,
    /// Most records the mining step samples.
    pub sample: usize,
    /// Worker threads (0: one per core).
    pub threads: usize,
    /// Reference date for reading the truth exports again (as given to `encode`).
    pub today: chrono::NaiveDate,
    /// Attack this field-level part of the records instead of their CLKs (records without the
    /// part are left out); the attacks are told the part's schema
    /// ([`LinkageSchema::part_schema`]).
    pub part: Option<crate::schema::Part>,
}

/// Counts and shares of one kind of recovery.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Rates {
    /// Records (or persons) scored.
    pub of: usize,
    /// Given name recovered.
    pub given: usize,
    /// Family name recovered.
    pub family: usize,
    /// Both names recovered.
    pub both: usize,
    /// Birth year recovered.
    pub birth_year: usize,
    /// Full birth date recovered.
    pub birth_date: usize,
}

impl Rates {
    /// `n` as a share of [`Rates::of`].
    pub fn share(&self, n: usize) -> f64 {
        if self.of == 0 {
            0.0
        } else {
            n as f64 / self.of as f64
        }
    }
}

/// Given names recovered among records whose true given name is shared by a number of persons
/// in the target.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Band {
    /// Persons sharing the name: `1`, `2-4`, `5-19` or `20+`.
    pub persons_with_name: String,
    /// Records in the band.
    pub records: usize,
    /// Of which the given name was recovered.
    pub given: usize,
}

/// What one attack did.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AttackResult {
    /// `pattern-mining` or `repeated-encodings`.
    pub attack: String,
    /// What the attack found, by name (e.g. `groups_mined`, `groups_labelled`).
    pub found: BTreeMap<String, usize>,
    /// Records for which the attack made a guess (given, family, both, year, date).
    pub guessed: Rates,
    /// With truth: records whose guess was right.
    pub per_record: Option<Rates>,
    /// With truth: persons with at least one record whose guess was right.
    pub per_person: Option<Rates>,
    /// With truth: given names recovered by name-frequency band.
    pub given_by_band: Option<Vec<Band>>,
    /// With truth: share of labelled groups whose label is the token most of their holders hold
    /// (`None` when no group was labelled).
    pub labels_right: Option<f64>,
    /// Seconds the attack took.
    pub seconds: f64,
}

/// The audit's result (written as JSON by the CLI).
#[derive(Debug, Clone, Serialize)]
pub struct AuditReport {
    /// [`FORMAT`].
    pub format: &'static str,
    /// crosswalk version.
    pub version: &'static str,
    /// Encodings files attacked.
    pub files: usize,
    /// Records attacked (main CLKs; alias CLKs are not attacked).
    pub records: usize,
    /// CLK length in bits.
    pub clk_bits: usize,
    /// The schema's hardening (`none`, `xor-fold`, `blip P`, `diffusion T`).
    pub hardening: String,
    /// The schema's fingerprint.
    pub schema_fingerprint: String,
    /// The part attacked (`names`, `dob`, ...), or `None` for the record CLKs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub part: Option<&'static str>,
    /// Persons in the reference population.
    pub reference_persons: u64,
    /// Records whose truth was found (with truth only).
    pub truth_records: Option<usize>,
    /// One entry per attack.
    pub attacks: Vec<AttackResult>,
}

/// A record's guesses, as indices into the reference's value lists.
#[derive(Debug, Clone, Copy, Default)]
struct Guess {
    given: Option<u32>,
    family: Option<u32>,
    year: Option<u32>,
    date: Option<u32>,
}

/// The reference's candidate values: names and dates as the attack guesses them.
struct Candidates {
    given: Vec<(String, u64)>,
    family: Vec<(String, u64)>,
    years: Vec<String>,
    dates: Vec<String>,
}

/// Runs the audit.
pub fn run(job: &AuditJob) -> Result<AuditReport> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(job.threads)
        .build()
        .map_err(|e| Error::io("<thread pool>", std::io::Error::other(e.to_string())))?;
    // The same file twice would double its records and fake repeated encodings.
    crate::io::encodings::check_each_file_once(&job.encodings, &pool)?;
    pool.install(|| run_in_pool(job))
}

fn run_in_pool(job: &AuditJob) -> Result<AuditReport> {
    if job.encodings.is_empty() {
        return Err(Error::input("<encodings>", "no encodings files to audit"));
    }
    // Every file's CLKs, one schema.
    let mut clk_bits = 0;
    let mut all = Vec::new();
    let mut keys: Vec<String> = Vec::new();
    let mut agencies: Vec<String> = Vec::new();
    // Per attacked part row: `Some(interval)` for a birth-years part (`--part dob`).
    let mut years_facts: Vec<Option<Option<(i32, i32)>>> = Vec::new();
    let mut first: Option<crate::io::encodings::FileMeta> = None;
    let fingerprint = job.schema.fingerprint();
    // The schema the attacks are told about: the record CLKs', or the attacked part's.
    let schema = match job.part {
        None => job.schema.clone(),
        Some(part) => job.schema.part_schema(part).ok_or_else(|| {
            Error::config(
                "<schema>",
                format!("the schema writes no {part} part: nothing to attack with --part {part}"),
            )
        })?,
    };
    for path in &job.encodings {
        let e = crate::io::encodings::read(path)?;
        // One linkage's files, made with the schema the attack is told about: an audit of
        // encodings under another schema than the one it reports would mislead.
        if e.meta.schema_fingerprint == crate::io::encodings::CLKHASH_FINGERPRINT {
            return Err(Error::encoding(
                path,
                "clkhash CLKs carry no linkage schema: the audit attacks crosswalk encodings files",
            ));
        }
        if e.meta.schema_fingerprint != fingerprint {
            return Err(Error::encoding(
                path,
                format!(
                    "made with the linkage schema {}, but the audit was given schema {fingerprint}: give the schema the encodings were made with (--schema)",
                    e.meta.schema_fingerprint
                ),
            ));
        }
        match &first {
            Some(f) => crate::io::encodings::check_same(f, &job.encodings[0], &e.meta, path)?,
            None => first = Some(e.meta.clone()),
        }
        if e.meta.clk_bits % 64 != 0 || e.meta.clk_bits > MAX_BITS {
            return Err(Error::encoding(
                path,
                format!(
                    "CLKs of {} bits: the audit reads CLKs whose length is a multiple of 64 up to {MAX_BITS} bits",
                    e.meta.clk_bits
                ),
            ));
        }
        match job.part {
            None => {
                clk_bits = e.meta.clk_bits;
                all.extend_from_slice(&e.clks);
                keys.extend(e.record_key);
            }
            Some(part) => {
                clk_bits = e.part_bits(part);
                if clk_bits == 0 {
                    return Err(Error::encoding(
                        path,
                        format!("carries no {part} part: nothing to attack with --part {part}"),
                    ));
                }
                for i in 0..e.len() {
                    if let Some(b) = e.part(part, i) {
                        all.extend_from_slice(b);
                        keys.push(e.record_key[i].clone());
                        // What the file says in the clear about a birth-years part: that it
                        // is one, and the age band at the event date.
                        let years = part == crate::schema::Part::Dob
                            && e.dob_from_age.get(i).copied().unwrap_or(false);
                        years_facts.push(years.then(|| {
                            crate::link::evidence::born_interval(&e.age_band[i], e.event_date[i])
                        }));
                    }
                }
            }
        }
        if !agencies.contains(&e.meta.agency) {
            agencies.push(e.meta.agency.clone());
        }
    }
    let rows = BitRows::from_clk_bytes(clk_bits / 8, &all);
    let reference = Reference::read(&job.reference, &schema)?;
    let cands = Candidates {
        given: reference.values(|p| p.given.as_deref()),
        family: reference.values(|p| p.family.as_deref()),
        years: reference
            .values(|p| p.dob.as_deref().and_then(|d| d.get(..4)))
            .into_iter()
            .map(|v| v.0)
            .collect(),
        dates: reference
            .values(|p| p.dob.as_deref())
            .into_iter()
            .map(|v| v.0)
            .collect(),
    };
    let truth: Option<Vec<Option<truth::TruthRow>>> = match &job.truth {
        None => None,
        Some(src) => {
            let map: TruthMap = truth::read(src, &job.schema, job.part, &agencies, job.today)?;
            let bytes = clk_bits / 8;
            Some(
                keys.iter()
                    .enumerate()
                    .map(|(i, k)| {
                        map.get(&(k.clone(), all[i * bytes..(i + 1) * bytes].to_vec()))
                            .cloned()
                    })
                    .collect(),
            )
        }
    };
    drop(all);
    let truth_records = truth.as_ref().map(|t| t.iter().flatten().count());
    if let (Some(t), Some(found)) = (&truth, truth_records) {
        if found * 100 < t.len() * 99 {
            return Err(Error::input(
                job.truth.as_ref().map(|s| s.dir.clone()).unwrap_or_default(),
                format!(
                    "the truth explains {found} of {} records: the exports, mappings, key or schema are not the ones the encodings were made with",
                    t.len()
                ),
            ));
        }
    }

    // Every attack scored against the same candidates and truth.
    let scored = |name: &str, found: Found, guesses: &[Guess], labels_right, start| {
        score(
            name,
            found,
            guesses,
            &cands,
            truth.as_deref(),
            labels_right,
            start,
        )
    };
    let mut attacks = Vec::new();
    let mut plain: Vec<Guess> = Vec::new();
    for (name, soft, sparse) in [
        ("pattern-mining", false, false),
        ("pattern-mining-soft", true, false),
        ("pattern-mining-soft-sparse", true, true),
    ] {
        let start = Instant::now();
        let (guesses, found, labels_right) = pattern_mining(
            &rows,
            &reference,
            &cands,
            &schema,
            MiningSample {
                cap: job.sample,
                sparse,
            },
            soft,
            truth.as_deref(),
        );
        attacks.push(scored(name, found, &guesses, labels_right, start));
        if name == "pattern-mining" {
            plain = guesses;
        }
    }
    // Salting by the birth year hides the names from a population mixing all years, not from
    // one year's records: the attack that knows it sorts the records by the year plain mining
    // found, and mines each year apart.
    if schema.fields.iter().any(|f| f.salt.is_some()) {
        let start = Instant::now();
        let (guesses, found, labels_right) = by_year(
            &rows,
            &reference,
            &cands,
            &schema,
            job.sample,
            &plain,
            truth.as_deref(),
        );
        attacks.push(scored(
            "pattern-mining-by-year",
            found,
            &guesses,
            labels_right,
            start,
        ));
    }
    let start = Instant::now();
    let (guesses, found) = repeated_encodings(&rows, &reference);
    attacks.push(scored("repeated-encodings", found, &guesses, None, start));
    if years_facts.iter().any(Option::is_some) {
        let start = Instant::now();
        let (guesses, found) = years_from_bands(&rows, &years_facts, &reference, &cands);
        attacks.push(scored("years-from-age-bands", found, &guesses, None, start));
    }
    Ok(AuditReport {
        format: FORMAT,
        version: env!("CARGO_PKG_VERSION"),
        files: job.encodings.len(),
        records: rows.len(),
        clk_bits,
        hardening: schema.hardening_label(),
        schema_fingerprint: job.schema.fingerprint(),
        part: job.part.map(|p| p.name()),
        reference_persons: reference.total,
        truth_records,
        attacks,
    })
}

/// Fewest records of one birth year that [`by_year`] mines apart.
const MIN_YEAR_RECORDS: usize = 1000;

/// The attack on names salted by the birth year: records are put together by the birth year
/// plain pattern mining guessed for them (`plain`: the year tokens are not salted, so they are
/// mined like any other), and each year's records of at least [`MIN_YEAR_RECORDS`] are attacked
/// apart with plain pattern mining and the whole reference population: within one year every
/// name token hashes under one key again. Each record keeps the plain attack's birth year and
/// date, and takes its year's given and family name guesses.
fn by_year(
    rows: &BitRows,
    r: &Reference,
    c: &Candidates,
    schema: &LinkageSchema,
    sample_cap: usize,
    plain: &[Guess],
    truth: Option<&[Option<truth::TruthRow>]>,
) -> (Vec<Guess>, Found, Option<f64>) {
    let mut years: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
    for (i, g) in plain.iter().enumerate() {
        if let Some(y) = g.year {
            years.entry(y).or_default().push(i);
        }
    }
    let mut guesses: Vec<Guess> = plain
        .iter()
        .map(|g| Guess {
            year: g.year,
            date: g.date,
            ..Guess::default()
        })
        .collect();
    let mut found = Found::new();
    let (mut parts, mut part_records, mut mined, mut labelled, mut tokens) = (0, 0, 0, 0, 0);
    let (mut right, mut weight) = (0.0, 0.0);
    for idx in years.values().filter(|v| v.len() >= MIN_YEAR_RECORDS) {
        let sub = rows.select(idx);
        let sub_truth: Option<Vec<Option<truth::TruthRow>>> =
            truth.map(|t| idx.iter().map(|&i| t[i].clone()).collect());
        let (g, f, lr) = pattern_mining(
            &sub,
            r,
            c,
            schema,
            MiningSample {
                cap: sample_cap,
                sparse: false,
            },
            false,
            sub_truth.as_deref(),
        );
        for (k, &i) in idx.iter().enumerate() {
            guesses[i].given = g[k].given;
            guesses[i].family = g[k].family;
        }
        parts += 1;
        part_records += idx.len();
        mined += f.get("groups_mined").copied().unwrap_or(0);
        tokens += f.get("groups_that_are_tokens").copied().unwrap_or(0);
        let l = f.get("groups_labelled").copied().unwrap_or(0);
        labelled += l;
        if let Some(lr) = lr {
            right += lr * l as f64;
            weight += l as f64;
        }
    }
    found.insert("years_attacked".into(), parts);
    found.insert("records_in_years_attacked".into(), part_records);
    found.insert("groups_mined".into(), mined);
    found.insert("groups_labelled".into(), labelled);
    if truth.is_some() {
        found.insert("groups_that_are_tokens".into(), tokens);
    }
    (guesses, found, (weight > 0.0).then(|| right / weight))
}

/// The sample the mining step sees: every `n / cap`-th record.
fn sample_indices(n: usize, cap: usize) -> Vec<usize> {
    if n <= cap {
        return (0..n).collect();
    }
    (0..cap).map(|i| i * n / cap).collect()
}

/// Which records the mining step sees.
#[derive(Debug, Clone, Copy)]
struct MiningSample {
    /// At most this many.
    cap: usize,
    /// Mine only the quarter of the records with the fewest bits set (at most `cap` of them,
    /// ties in record order). Where a hardening mixes a token's bits with the record's other
    /// bits (folding, diffusion), the records with few other bits hide their tokens least: a
    /// token's correlation left after diffusion over `t` taps shrinks as `(1 - 2d)^(t-1)` with
    /// the record's density `d`, and a sparse record has fewer bits set after it too. The
    /// attack that knows this mines there, then fits its groups again on the usual sample
    /// ([`mine::refit`]), labels them there and guesses every record.
    sparse: bool,
}

impl MiningSample {
    fn indices(self, rows: &BitRows) -> Vec<usize> {
        let n = rows.len();
        if !self.sparse {
            return sample_indices(n, self.cap.max(1));
        }
        let mut by_weight: Vec<(u32, usize)> = (0..n)
            .map(|i| (rows.row(i).iter().map(|w| w.count_ones()).sum(), i))
            .collect();
        by_weight.sort_unstable();
        let mut idx: Vec<usize> = by_weight
            .into_iter()
            .take((n / 4).max(n.min(2000)).min(self.cap.max(1)))
            .map(|(_, i)| i)
            .collect();
        idx.sort_unstable();
        idx
    }
}

type Found = BTreeMap<String, usize>;

/// The pattern-mining attack: groups, labels, guesses.
fn pattern_mining(
    rows: &BitRows,
    r: &Reference,
    c: &Candidates,
    schema: &LinkageSchema,
    sampling: MiningSample,
    soft: bool,
    truth: Option<&[Option<truth::TruthRow>]>,
) -> (Vec<Guess>, Found, Option<f64>) {
    let idx = sampling.indices(rows);
    let sample = rows.select(&idx);
    let mined_on = sample.len();
    let params = MineParams {
        min_support: (sample.len() / 1000).max(25),
        token_size: [Field::GivenName, Field::FamilyName, Field::Dob]
            .iter()
            .filter_map(|f| schema.field(*f).map(|s| s.bits_per_token))
            .max()
            .unwrap_or(20),
        ..MineParams::default()
    };
    let sigs: Vec<Signature> = if soft {
        mine::mine_soft(&sample, &params)
    } else {
        mine::mine(&sample, &params)
    };
    // Groups mined on the sparsest records are labelled on the usual sample, whose token
    // frequencies are the whole target's (the sparse quarter's are not the reference's).
    let (idx, sample, sigs) = if sampling.sparse {
        let idx = sample_indices(rows.len(), sampling.cap.max(1));
        let sample = rows.select(&idx);
        let min_support = (sample.len() / 1000).max(25);
        let sigs = mine::refit(sigs, &sample, min_support);
        (idx, sample, sigs)
    } else {
        (idx, sample, sigs)
    };
    // Holders of each group in the sample, as bitsets, for supports and co-occurrence.
    let words = sample.len().div_ceil(64);
    let held: Vec<Vec<u64>> = sigs
        .par_iter()
        .map(|s| {
            let mut b = vec![0u64; words];
            for i in 0..sample.len() {
                if s.held_by(sample.row(i)) {
                    b[i / 64] |= 1 << (i % 64);
                }
            }
            b
        })
        .collect();
    let n = sample.len().max(1) as f64;
    let (freq, joint): (Vec<f64>, Vec<Vec<f64>>) = if soft {
        // Soft groups: expected shares from each record's posterior of holding each group, so
        // that a noisy threshold does not bias supports and co-occurrences.
        let post: Vec<Vec<f32>> = sigs
            .par_iter()
            .map(|s| {
                (0..sample.len())
                    .map(|i| {
                        let c: u32 = sample
                            .row(i)
                            .iter()
                            .zip(&s.mask)
                            .map(|(r, k)| (r & k).count_ones())
                            .sum();
                        s.posterior.get(c as usize).copied().unwrap_or(0.0)
                    })
                    .collect()
            })
            .collect();
        let freq = post
            .iter()
            .map(|p| p.iter().map(|&x| x as f64).sum::<f64>() / n)
            .collect();
        let joint = post
            .par_iter()
            .map(|a| {
                post.iter()
                    .map(|b| a.iter().zip(b).map(|(x, y)| (x * y) as f64).sum::<f64>() / n)
                    .collect()
            })
            .collect();
        (freq, joint)
    } else {
        let freq = held
            .iter()
            .map(|b| b.iter().map(|w| w.count_ones()).sum::<u32>() as f64 / n)
            .collect();
        let joint = held
            .par_iter()
            .map(|a| {
                held.iter()
                    .map(|b| {
                        a.iter()
                            .zip(b)
                            .map(|(x, y)| (x & y).count_ones())
                            .sum::<u32>() as f64
                            / n
                    })
                    .collect()
            })
            .collect();
        (freq, joint)
    };
    // The public schema says how many bits a token of each namespace sets: a group of 15
    // positions is a name token, never a date token. Merged groups (two tokens always held
    // together) are allowed up to two tokens' worth.
    let ks: FxHashMap<&str, Vec<usize>> = {
        let mut m: FxHashMap<&str, Vec<usize>> = FxHashMap::default();
        for spec in &schema.fields {
            m.entry(spec.namespace())
                .or_default()
                .push(spec.bits_per_token);
        }
        m
    };
    let allowed = |s: usize, t: u32| -> bool {
        let size = sigs[s].positions.len();
        let ns = r.tokens[t as usize].0.as_str();
        ks.get(ns).is_some_and(|k| {
            // Soft groups are looser: folding merges positions, enrichment cut-offs vary.
            let slack = if soft { 6 } else { 3 };
            k.iter()
                .any(|&k| (1..=2).any(|m| size + slack >= m * k && size <= m * k + slack))
        })
    };
    let labels = align::align(
        &freq,
        &joint,
        &sigs.iter().map(|s| s.separation).collect::<Vec<_>>(),
        r,
        &allowed,
        &align::AlignParams::default(),
    );

    // With truth, what each group really is: the token most of its sample holders hold, and
    // their share. A group is a token when 95% of its holders hold one.
    let group_truth: Option<Vec<(Option<reference::TokenName>, f64, f64)>> = truth.map(|t| {
        (0..sigs.len())
            .into_par_iter()
            .map(|s| {
                let mut cnt: BTreeMap<reference::TokenName, usize> = BTreeMap::new();
                let mut of = 0usize;
                for (j, &i) in idx.iter().enumerate() {
                    if held[s][j / 64] >> (j % 64) & 1 == 0 {
                        continue;
                    }
                    let Some(tr) = &t[i] else { continue };
                    of += 1;
                    for tk in reference::identity_tokens(
                        schema,
                        tr.given.as_deref(),
                        tr.family.as_deref(),
                        tr.dob.as_deref(),
                    ) {
                        *cnt.entry(tk).or_default() += 1;
                    }
                }
                let of = of.max(1) as f64;
                let best = cnt
                    .iter()
                    .max_by(|a, b| a.1.cmp(b.1).then_with(|| b.0.cmp(a.0)))
                    .map(|(k, v)| (k.clone(), *v as f64 / of));
                let label_share = labels[s]
                    .and_then(|l| cnt.get(&r.tokens[l as usize]))
                    .map_or(0.0, |&v| v as f64 / of);
                match best {
                    Some((k, share)) => (Some(k), share, label_share),
                    None => (None, 0.0, label_share),
                }
            })
            .collect()
    });
    // A label is right when it is the token most of the group's holders hold (or ties with it:
    // a group's holders may all hold two tokens that always come together).
    let labels_right = group_truth.as_ref().and_then(|g| {
        let labelled = labels.iter().filter(|l| l.is_some()).count();
        let right = labels
            .iter()
            .zip(g)
            .filter(|(l, gt)| l.is_some() && gt.2 > 0.5 && gt.2 >= gt.1)
            .count();
        (labelled > 0).then(|| right as f64 / labelled as f64)
    });
    // Reference token -> group labelled with it.
    let mut group_of: FxHashMap<u32, usize> = FxHashMap::default();
    for (s, l) in labels.iter().enumerate() {
        if let Some(l) = l {
            group_of.insert(*l, s);
        }
    }
    let labelled: Vec<usize> = (0..sigs.len()).filter(|&s| labels[s].is_some()).collect();
    // Candidate names with the groups of their labelled tokens.
    let name_index = |field: Field, values: &[(String, u64)]| -> Vec<Vec<usize>> {
        values
            .iter()
            .map(|(v, _)| {
                let toks = reference::name_tokens(schema, field, v);
                let gs: Vec<usize> = toks
                    .iter()
                    .filter_map(|t| r.index.get(t))
                    .filter_map(|t| group_of.get(t).copied())
                    .collect();
                if gs.len() >= 3 && gs.len() * 2 >= toks.len() {
                    gs
                } else {
                    Vec::new()
                }
            })
            .collect()
    };
    let given_groups = name_index(Field::GivenName, &c.given);
    let family_groups = name_index(Field::FamilyName, &c.family);
    // Date tokens: which groups are which year, month, day, full date.
    let mut dob_groups: Vec<(usize, u8, String)> = Vec::new();
    for (s, l) in labels.iter().enumerate() {
        if let Some(l) = l {
            let (ns, tok) = &r.tokens[*l as usize];
            let is_dob = schema
                .field(Field::Dob)
                .is_some_and(|spec| spec.namespace() == ns);
            if is_dob && !tok.is_empty() {
                dob_groups.push((s, tok[0], String::from_utf8_lossy(&tok[1..]).into_owned()));
            }
        }
    }
    let (year_ix, date_ix) = (index_of(&c.years), index_of(&c.dates));

    let guesses: Vec<Guess> = (0..rows.len())
        .into_par_iter()
        .map(|i| {
            let row = rows.row(i);
            let mut present = vec![false; sigs.len()];
            for &s in &labelled {
                present[s] = sigs[s].held_by(row);
            }
            let best = |groups: &[Vec<usize>], values: &[(String, u64)]| -> Option<u32> {
                let mut best: Option<(usize, u64, usize)> = None;
                for (j, gs) in groups.iter().enumerate() {
                    if gs.is_empty() || !gs.iter().all(|&s| present[s]) {
                        continue;
                    }
                    let cand = (gs.len(), values[j].1, j);
                    if best.is_none_or(|b| (cand.0, cand.1) > (b.0, b.1)) {
                        best = Some(cand);
                    }
                }
                best.map(|b| b.2 as u32)
            };
            let one = |tag: u8| -> Option<&str> {
                let mut it = dob_groups
                    .iter()
                    .filter(|(s, t, _)| *t == tag && present[*s])
                    .map(|(_, _, v)| v.as_str());
                let first = it.next()?;
                it.next().is_none().then_some(first)
            };
            let year = one(b'Y');
            let date = one(b'F')
                .map(str::to_string)
                .or_else(|| Some(format!("{}{}{}", year?, one(b'M')?, one(b'D')?)));
            Guess {
                given: best(&given_groups, &c.given),
                family: best(&family_groups, &c.family),
                year: year.and_then(|y| year_ix.get(y).copied()),
                date: date.and_then(|d| date_ix.get(d.as_str()).copied()),
            }
        })
        .collect();
    let mut found = Found::new();
    found.insert("groups_mined".into(), sigs.len());
    found.insert("groups_labelled".into(), labelled.len());
    found.insert("groups_labelled_as_dates".into(), dob_groups.len());
    found.insert("sample_records".into(), sample.len());
    found.insert("mined_records".into(), mined_on);
    if let Some(g) = &group_truth {
        found.insert(
            "groups_that_are_tokens".into(),
            g.iter().filter(|x| x.1 >= 0.95).count(),
        );
    }
    (guesses, found, labels_right)
}

/// Frequency alignment of exactly repeated encodings: the `i`-th largest group of identical
/// CLKs is given the `i`-th most frequent reference name pair (groups of two or more only).
fn repeated_encodings(rows: &BitRows, r: &Reference) -> (Vec<Guess>, Found) {
    let mut groups: FxHashMap<&[u64], Vec<usize>> = FxHashMap::default();
    for i in 0..rows.len() {
        groups.entry(rows.row(i)).or_default().push(i);
    }
    let mut by_size: Vec<&Vec<usize>> = groups.values().filter(|g| g.len() >= 2).collect();
    by_size.sort_by(|a, b| b.len().cmp(&a.len()).then(a[0].cmp(&b[0])));
    // Reference (given, family) pairs by frequency, as indices into the value lists.
    let gv = r.values(|p| p.given.as_deref());
    let fv = r.values(|p| p.family.as_deref());
    let gi: FxHashMap<&str, u32> = gv
        .iter()
        .enumerate()
        .map(|(i, v)| (v.0.as_str(), i as u32))
        .collect();
    let fi: FxHashMap<&str, u32> = fv
        .iter()
        .enumerate()
        .map(|(i, v)| (v.0.as_str(), i as u32))
        .collect();
    let mut pairs: BTreeMap<(u32, u32), u64> = BTreeMap::new();
    for p in &r.persons {
        if let (Some(g), Some(f)) = (&p.given, &p.family) {
            let w = pairs.entry((gi[g.as_str()], fi[f.as_str()])).or_default();
            *w = w.saturating_add(p.count);
        }
    }
    let mut pairs: Vec<((u32, u32), u64)> = pairs.into_iter().filter(|p| p.1 >= 2).collect();
    pairs.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut guesses = vec![Guess::default(); rows.len()];
    for (g, ((gn, fm), _)) in by_size.iter().zip(&pairs) {
        for &i in g.iter() {
            guesses[i].given = Some(*gn);
            guesses[i].family = Some(*fm);
        }
    }
    let mut found = Found::new();
    found.insert("distinct_encodings".into(), groups.len());
    found.insert("repeat_groups".into(), by_size.len());
    found.insert(
        "records_in_repeat_groups".into(),
        by_size.iter().map(|g| g.len()).sum(),
    );
    found.insert(
        "largest_repeat_group".into(),
        by_size.first().map_or(0, |g| g.len()),
    );
    (guesses, found)
}

/// Each value's position in `values` (the guesses' indices into the reference's lists).
fn index_of(values: &[String]) -> FxHashMap<&str, u32> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| (v.as_str(), i as u32))
        .collect()
}

/// The attack on birth-years parts (the two birth years of an age, `dob_from_age`): the file
/// says in the clear which rows hold one, and each row's age band at its event date bounds its
/// birth year to an interval of about six years. Equal years give equal parts, so the attacker
/// pools each group of identical birth-years parts and intersects its rows' intervals: rows
/// with events in several years and bands narrow it to the two years themselves. Each row
/// gets the reference's commonest birth year within its group's interval (within its own
/// interval when its part is unique). A guess counts as right when it is either of the row's
/// two years: that is all the part holds.
fn years_from_bands(
    rows: &BitRows,
    facts: &[Option<Option<(i32, i32)>>],
    r: &Reference,
    c: &Candidates,
) -> (Vec<Guess>, Found) {
    let mut groups: BTreeMap<&[u64], Vec<usize>> = BTreeMap::new();
    for (i, f) in facts.iter().enumerate() {
        if f.is_some() {
            groups.entry(rows.row(i)).or_default().push(i);
        }
    }
    // Reference birth years by frequency.
    let freq: FxHashMap<String, u64> = r
        .values(|p| p.dob.as_deref().and_then(|d| d.get(..4)))
        .into_iter()
        .collect();
    let index = index_of(&c.years);
    let mut guesses = vec![Guess::default(); rows.len()];
    let (mut pinned, mut pooled) = (0usize, 0usize);
    for members in groups.values() {
        let interval = members
            .iter()
            .filter_map(|&i| facts[i].flatten())
            .reduce(|a, b| (a.0.max(b.0), a.1.min(b.1)));
        let Some((lo, hi)) = interval.filter(|(lo, hi)| lo <= hi) else {
            continue;
        };
        if members.len() > 1 {
            pooled += members.len();
            if hi - lo <= 1 {
                pinned += members.len();
            }
        }
        let best = (lo..=hi)
            .filter_map(|y| {
                let y = format!("{y:04}");
                let n = freq.get(&y).copied().unwrap_or(0);
                index.get(y.as_str()).map(|&i| (n, std::cmp::Reverse(i), i))
            })
            .max()
            .map(|x| x.2);
        for &i in members {
            guesses[i].year = best;
        }
    }
    let mut found = Found::new();
    found.insert(
        "birth_years_parts".into(),
        facts.iter().filter(|f| f.is_some()).count(),
    );
    found.insert("birth_years_groups".into(), groups.len());
    found.insert("records_in_pooled_groups".into(), pooled);
    found.insert("records_pinned_to_two_years".into(), pinned);
    (guesses, found)
}

fn band(persons: usize) -> &'static str {
    match persons {
        0 | 1 => "1",
        2..=4 => "2-4",
        5..=19 => "5-19",
        _ => "20+",
    }
}

/// Scores one attack's guesses.
fn score(
    name: &str,
    found: Found,
    guesses: &[Guess],
    c: &Candidates,
    truth: Option<&[Option<truth::TruthRow>]>,
    labels_right: Option<f64>,
    start: Instant,
) -> AttackResult {
    let mut guessed = Rates {
        of: guesses.len(),
        ..Rates::default()
    };
    for g in guesses {
        guessed.given += g.given.is_some() as usize;
        guessed.family += g.family.is_some() as usize;
        guessed.both += (g.given.is_some() && g.family.is_some()) as usize;
        guessed.birth_year += g.year.is_some() as usize;
        guessed.birth_date += g.date.is_some() as usize;
    }
    let mut result = AttackResult {
        attack: name.to_string(),
        found,
        guessed,
        per_record: None,
        per_person: None,
        given_by_band: None,
        labels_right,
        seconds: 0.0,
    };
    if let Some(t) = truth {
        let mut rec = Rates::default();
        // Per person: which recoveries any of their records achieved.
        let mut person: BTreeMap<&str, [bool; 5]> = BTreeMap::new();
        // Persons per true given name, for the bands.
        let mut name_persons: FxHashMap<&str, BTreeSet<&str>> = FxHashMap::default();
        for tr in t.iter().flatten() {
            if let Some(gn) = &tr.given {
                name_persons.entry(gn).or_default().insert(&tr.person);
            }
        }
        let mut bands: BTreeMap<&'static str, (usize, usize)> = BTreeMap::new();
        for (g, tr) in guesses.iter().zip(t) {
            let Some(tr) = tr else { continue };
            rec.of += 1;
            fn same(guess: Option<&str>, truth: Option<&str>) -> bool {
                matches!((guess, truth), (Some(x), Some(y)) if x == y)
            }
            let given = same(
                g.given.map(|i| c.given[i as usize].0.as_str()),
                tr.given.as_deref(),
            );
            let family = same(
                g.family.map(|i| c.family[i as usize].0.as_str()),
                tr.family.as_deref(),
            );
            // A birth-years value (an age) holds two years: either is its birth year.
            let year = match (g.year, tr.dob.as_deref()) {
                (Some(i), Some(d)) => {
                    let y = c.years[i as usize].as_bytes();
                    match crate::normalize::split_birth_years(d.as_bytes()) {
                        Some((a, b)) => y == a || y == b,
                        None => d.as_bytes().get(..4) == Some(y),
                    }
                }
                _ => false,
            };
            let date = same(
                g.date.map(|i| c.dates[i as usize].as_str()),
                tr.dob.as_deref(),
            );
            let hits = [given, family, given && family, year, date];
            rec.given += given as usize;
            rec.family += family as usize;
            rec.both += (given && family) as usize;
            rec.birth_year += year as usize;
            rec.birth_date += date as usize;
            let p = person.entry(&tr.person).or_default();
            for (a, b) in p.iter_mut().zip(hits) {
                *a |= b;
            }
            if let Some(gn) = &tr.given {
                let b = bands
                    .entry(band(name_persons.get(gn.as_str()).map_or(1, |s| s.len())))
                    .or_default();
                b.0 += 1;
                b.1 += given as usize;
            }
        }
        let mut per = Rates {
            of: person.len(),
            ..Rates::default()
        };
        for h in person.values() {
            per.given += h[0] as usize;
            per.family += h[1] as usize;
            per.both += h[2] as usize;
            per.birth_year += h[3] as usize;
            per.birth_date += h[4] as usize;
        }
        result.per_record = Some(rec);
        result.per_person = Some(per);
        result.given_by_band = Some(
            ["1", "2-4", "5-19", "20+"]
                .iter()
                .map(|b| {
                    let (records, given) = bands.get(b).copied().unwrap_or_default();
                    Band {
                        persons_with_name: b.to_string(),
                        records,
                        given,
                    }
                })
                .collect(),
        );
    }
    result.seconds = start.elapsed().as_secs_f64();
    result
}

#[cfg(test)]
pub(crate) mod tests_support {
    /// A tiny deterministic generator for tests.
    pub struct Lcg(pub u64);

    impl Lcg {
        /// The next pseudo-random number.
        pub fn next(&mut self) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            self.0 >> 33
        }
    }
}

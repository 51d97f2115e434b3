//! Not a timing bench: an experiment for issue #18. How well does a Fellegi-Sunter model link a
//! synthetic world when every identifier group is encoded in its own part (names, birth date,
//! phone, address, SSN-4; aliases as further names parts), with or without diffusion?
//! docs/measurements/2026-12-06-fs-parts.md has the figures.
//!
//! Steps: extract every record of the world as `crosswalk encode` does; encode each part with
//! the default schema cut down to that part's fields (one key, the chosen hardening); candidate
//! pairs are those whose names parts (legal or alias) reach a Dice floor, or whose birth-date
//! parts are equal; comparison levels per part from Dice bands (0: missing on either side);
//! `u` from 2M random pairs, `m` and λ by EM (`crosswalk::link::model`), optionally a
//! term-frequency weight for equal names parts; persons by average linkage over match
//! probabilities (`crosswalk::cluster`); pairwise precision, recall and F1 against the truth.
//! The event facts the taskforce sees (sex, age band at an event date) give two weak
//! comparisons.
//!
//! `cargo bench --bench fs_parts -- WORLD_DIR [--taps T] [--no-tf] [--min-average A]...`
//! Env: `FS_HOUSEHOLD=1` makes phone and address one comparison; `FS_SESSION_B=names,ssn,sex`
//! names the comparisons trained among pairs with equal birth dates; `FS_DEBUG=1` prints the
//! commonest level vectors of false and missed pairs.
//!
//! Synthetic worlds only: it reads raw exports and the truth.

use std::collections::HashMap;
use std::path::Path;

use crosswalk::clk::Clk;
use crosswalk::encode::{Encoder, Scratch};
use crosswalk::keys::SecretKey;
use crosswalk::link::evidence::{born_interval, part_similarity};
use crosswalk::link::model::Model;
use crosswalk::normalize::{Identifiers, Sex};
use crosswalk::schema::{Field, LinkageSchema};
use crosswalk::vocab::AgeBand;

#[path = "common/world.rs"]
mod world;

/// One record as the experiment sees it: its parts' encodings and the facts.
struct Rec {
    person: String,
    names: Option<Clk>,
    aliases: Vec<Clk>,
    dob: Option<Clk>,
    phone: Option<Clk>,
    address: Option<Clk>,
    ssn: Option<Clk>,
    sex: Sex,
    /// Birth-year interval implied by the age band at the event date.
    born: Option<(i32, i32)>,
}

const PARTS: [(&str, &[Field]); 5] = [
    (
        "names",
        &[Field::GivenName, Field::MiddleName, Field::FamilyName],
    ),
    ("dob", &[Field::Dob]),
    ("phone", &[Field::Phone]),
    ("address", &[Field::Street, Field::Town, Field::Zip]),
    ("ssn", &[Field::Ssn4]),
];

/// Comparison names and level counts (level 0 = missing).
const COMPARISONS: [(&str, usize); 7] = [
    ("names", 6),
    ("dob", 5),
    ("phone", 4),
    ("address", 4),
    ("ssn", 3),
    ("sex", 3),
    ("age", 3),
];

/// With `FS_HOUSEHOLD=1`: phone and address as one comparison, `household` (0 neither
/// comparable, 1 disagree, 2 partly agree, 3 one agrees, 4 both agree), so that the two fields
/// a household shares count once.
const COMPARISONS_HOUSEHOLD: [(&str, usize); 6] = [
    ("names", 6),
    ("dob", 5),
    ("household", 5),
    ("ssn", 3),
    ("sex", 3),
    ("age", 3),
];

fn part_schema(fields: &[Field], hardening: &str) -> LinkageSchema {
    let mut s = LinkageSchema::default_schema();
    s.fields.retain(|f| fields.contains(&f.field));
    s.name = format!("part-{}", fields[0].name());
    let text = toml::to_string(&s).expect("schema renders");
    let text = text.replace("hardening = \"none\"", hardening);
    LinkageSchema::from_toml(&text, Path::new("part.toml")).expect("part schema")
}

/// Dice of two parts on the plain filter's scale (the link job's estimate for diffused parts,
/// `crosswalk::link::evidence::part_similarity`).
fn sim(a: &Clk, b: &Clk, taps: Option<usize>) -> f64 {
    part_similarity(a.as_bytes(), b.as_bytes(), taps)
}

fn dice(a: &Option<Clk>, b: &Option<Clk>, taps: Option<usize>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(sim(a, b, taps)),
        _ => None,
    }
}

fn band(d: Option<f64>, cuts: &[f64]) -> u8 {
    match d {
        None => 0,
        Some(d) => 1 + cuts.iter().filter(|&&c| d >= c).count() as u8,
    }
}

/// The best names similarity of two records over their legal and alias names parts.
fn names_sim(a: &Rec, b: &Rec, taps: Option<usize>) -> Option<f64> {
    let mut best: Option<f64> = None;
    for x in a.names.iter().chain(&a.aliases) {
        for y in b.names.iter().chain(&b.aliases) {
            let d = sim(x, y, taps);
            best = Some(best.map_or(d, |v| v.max(d)));
        }
    }
    best
}

/// How the levels are built: the diffusion's taps (if any) and whether phone and address
/// form one comparison.
#[derive(Clone, Copy)]
struct Scheme {
    taps: Option<usize>,
    household: bool,
}

fn levels(a: &Rec, b: &Rec, names: Option<f64>, scheme: Scheme, out: &mut Vec<u8>) {
    let taps = scheme.taps;
    out.push(band(names, &[0.6, 0.75, 0.85, 0.95]));
    out.push(band(dice(&a.dob, &b.dob, taps), &[0.5, 0.8, 0.99]));
    let phone = band(dice(&a.phone, &b.phone, taps), &[0.7, 0.99]);
    let address = band(dice(&a.address, &b.address, taps), &[0.5, 0.8]);
    if scheme.household {
        out.push(match (phone, address) {
            (0, 0) => 0,
            (3, 3) => 4,
            (3, _) | (_, 3) => 3,
            (2, _) | (_, 2) => 2,
            _ => 1,
        });
    } else {
        out.push(phone);
        out.push(address);
    }
    out.push(band(dice(&a.ssn, &b.ssn, taps), &[0.99]));
    out.push(match (a.sex, b.sex) {
        (Sex::Unknown, _) | (_, Sex::Unknown) => 0,
        (x, y) if x == y => 2,
        _ => 1,
    });
    out.push(match (a.born, b.born) {
        (Some((a0, a1)), Some((b0, b1))) => {
            if a0 <= b1 + 1 && b0 <= a1 + 1 {
                2
            } else {
                1
            }
        }
        _ => 0,
    });
}

fn born(band: AgeBand, event: Option<chrono::NaiveDate>) -> Option<(i32, i32)> {
    born_interval(band.label(), event)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(world) = args
        .iter()
        .find(|a| !a.starts_with("--") && a.parse::<f64>().is_err())
    else {
        eprintln!("usage: cargo bench --bench fs_parts -- WORLD_DIR [--taps T] [--no-tf] [--min-average A]...");
        std::process::exit(2);
    };
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1).cloned())
    };
    let taps: Option<usize> = flag("--taps").map(|t| t.parse().expect("taps"));
    let tf = !args.iter().any(|a| a == "--no-tf");
    let averages: Vec<f64> = args
        .windows(2)
        .filter(|w| w[0] == "--min-average")
        .map(|w| w[1].parse().expect("average"))
        .collect();
    let averages = if averages.is_empty() {
        vec![0.5]
    } else {
        averages
    };
    let hardening = match taps {
        Some(t) => format!("hardening = \"diffusion\"\ndiffusion_taps = {t}"),
        None => "hardening = \"none\"".to_string(),
    };
    let world = Path::new(world);
    let key = SecretKey::from_bytes([7; 32]);
    let encoders: Vec<Encoder> = PARTS
        .iter()
        .map(|(_, f)| Encoder::new(&part_schema(f, &hardening), &key))
        .collect();
    let mut truth = HashMap::new();
    let mut rd = csv::Reader::from_path(world.join("truth/records.csv")).expect("truth");
    for r in rd.records() {
        let r = r.expect("truth row");
        truth.insert(format!("{}|{}", &r[0], &r[1]), r[2].to_string());
    }
    let mut recs: Vec<Rec> = Vec::new();
    let mut scratch = Scratch::default();
    world::for_each_record(world, |agency, e| {
        let Some(person) = truth.get(&format!("{}|{}", agency, e.local_id)) else {
            return;
        };
        // An absent part encodes to no bits, with or without diffusion.
        let mut part = |i: usize, ids: &Identifiers| {
            let c = encoders[i].encode(ids, &mut scratch);
            (c.count_ones() > 0).then_some(c)
        };
        let names = part(0, &e.ids);
        let aliases = e
            .aliases
            .iter()
            .filter_map(|a| {
                let mut ids = Identifiers::default();
                ids.set_names(a);
                part(0, &ids)
            })
            .collect();
        recs.push(Rec {
            person: person.clone(),
            names,
            aliases,
            // (The birth years of an age are no birth date: this bench predates them.)
            dob: e
                .ids
                .get(crosswalk::schema::Field::Dob)
                .filter(|v| crosswalk::normalize::is_birth_years(v))
                .map_or_else(|| part(1, &e.ids), |_| None),
            phone: part(2, &e.ids),
            address: part(3, &e.ids),
            ssn: part(4, &e.ids),
            sex: e.facts.sex,
            born: born(e.facts.age_band, e.facts.event_date),
        });
    });
    let n = recs.len();
    eprintln!("{n} records");

    // Candidates: names (legal or alias) at plain-scale Dice >= 0.6, or equal birth-date parts.
    let household = std::env::var_os("FS_HOUSEHOLD").is_some();
    let scheme = Scheme { taps, household };
    let comparisons: &[(&str, usize)] = if household {
        &COMPARISONS_HOUSEHOLD
    } else {
        &COMPARISONS
    };
    let c = comparisons.len();
    let mut pairs: Vec<(u32, u32)> = Vec::new();
    let mut lv: Vec<u8> = Vec::new();
    {
        use rayon::prelude::*;
        type Found = (Vec<(u32, u32)>, Vec<u8>);
        let per_i: Vec<Found> = (0..n)
            .into_par_iter()
            .map(|i| {
                let (mut ps, mut ls) = (Vec::new(), Vec::new());
                for j in i + 1..n {
                    let names = names_sim(&recs[i], &recs[j], taps);
                    let same_dob = match (&recs[i].dob, &recs[j].dob) {
                        (Some(x), Some(y)) => x == y,
                        _ => false,
                    };
                    if names.unwrap_or(0.0) >= 0.6 || same_dob {
                        ps.push((i as u32, j as u32));
                        levels(&recs[i], &recs[j], names, scheme, &mut ls);
                    }
                }
                (ps, ls)
            })
            .collect();
        for (ps, ls) in per_i {
            pairs.extend(ps);
            lv.extend(ls);
        }
    }
    // u from random pairs.
    let mut state = 0x9e3779b97f4a7c15u64;
    let mut rand = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut random = Vec::new();
    for _ in 0..2_000_000 {
        let (i, j) = ((rand() % n as u64) as usize, (rand() % n as u64) as usize);
        if i == j {
            continue;
        }
        let names = names_sim(&recs[i], &recs[j], taps);
        levels(&recs[i], &recs[j], names, scheme, &mut random);
    }
    let mut model = Model::new(&comparisons.iter().map(|x| x.1).collect::<Vec<_>>());
    model.estimate_u(&random);
    // Two blocked sessions: among pairs chosen by their names, train everything else; among
    // pairs chosen by an equal birth date, the names with the comparisons `FS_SESSION_B` names
    // (default: sex and SSN-4; the age band follows from the birth date, and the household's
    // phone and address agree for twins, who share the birth date too).
    let (by_names, by_dob): (Vec<u8>, Vec<u8>) = {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for l in lv.chunks_exact(c) {
            if l[0] >= 2 {
                a.extend_from_slice(l);
            }
            if l[1] == 4 {
                b.extend_from_slice(l);
            }
        }
        (a, b)
    };
    let train_a: Vec<bool> = (0..c).map(|i| i != 0).collect();
    let session_b = std::env::var("FS_SESSION_B").unwrap_or_else(|_| "names,ssn,sex".into());
    let train_b: Vec<bool> = comparisons
        .iter()
        .map(|(name, _)| session_b.split(',').any(|x| x == *name))
        .collect();
    let all_pairs = n as f64 * (n as f64 - 1.0) / 2.0;
    model
        .expectation_maximisation(&by_names, &train_a, 100)
        .expect("session A trains six comparisons");
    model
        .expectation_maximisation(&by_dob, &train_b, 100)
        .expect("session B trains at least two comparisons");
    model.estimate_lambda(&lv, all_pairs, 200);
    // Matches among the random pairs inflated u of rare agreement levels: take them out.
    model.debias_u();
    model.estimate_lambda(&lv, all_pairs, 200);
    eprintln!("{} candidate pairs, λ {:.4}", pairs.len(), model.lambda);
    for (ci, (name, k)) in comparisons.iter().enumerate() {
        let w: Vec<String> = (1..*k)
            .map(|l| format!("{:+.1}", model.level_weight(ci, l as u8)))
            .collect();
        eprintln!("  {name}: {}", w.join(" "));
    }
    // Term frequency of equal names parts: the share of records holding that exact encoding
    // stands in for u of the top names level.
    let mut freq: HashMap<&[u8], usize> = HashMap::new();
    if tf {
        for r in &recs {
            if let Some(c) = &r.names {
                *freq.entry(c.as_bytes()).or_default() += 1;
            }
        }
    }
    let u_top = model.u[0][5];
    let edges: Vec<crosswalk::cluster::Edge> = pairs
        .iter()
        .zip(lv.chunks_exact(c))
        .filter_map(|(&(a, b), l)| {
            let mut w = model.weight(l);
            if tf && l[0] == 5 {
                if let (Some(x), Some(y)) = (&recs[a as usize].names, &recs[b as usize].names) {
                    if x == y {
                        let f = freq.get(x.as_bytes()).copied().unwrap_or(1) as f64 / n as f64;
                        w += (u_top / f.max(1.0 / n as f64)).log2();
                    }
                }
            }
            let p = model.probability(w);
            (p >= 0.01).then_some(crosswalk::cluster::Edge { a, b, score: p })
        })
        .collect();
    let people: Vec<&str> = recs.iter().map(|r| r.person.as_str()).collect();
    if std::env::var_os("FS_DEBUG").is_some() {
        // The commonest level vectors of false pairs at p >= 0.5 and of true pairs below 0.5
        // (pairs before clustering, without the term-frequency adjustment).
        let mut fp: HashMap<Vec<u8>, usize> = HashMap::new();
        let mut fn_: HashMap<Vec<u8>, usize> = HashMap::new();
        for (&(a, b), l) in pairs.iter().zip(lv.chunks_exact(c)) {
            let p = model.probability(model.weight(l));
            let same = people[a as usize] == people[b as usize];
            if !same && p >= 0.5 {
                *fp.entry(l.to_vec()).or_default() += 1;
            } else if same && p < 0.5 {
                *fn_.entry(l.to_vec()).or_default() += 1;
            }
        }
        for (name, m) in [("false p>=0.5", fp), ("true p<0.5", fn_)] {
            let mut v: Vec<_> = m.into_iter().collect();
            v.sort_by(|x, y| y.1.cmp(&x.1).then(x.0.cmp(&y.0)));
            let total: usize = v.iter().map(|x| x.1).sum();
            let names: Vec<&str> = comparisons.iter().map(|x| x.0).collect();
            eprintln!("{name}: {total} pairs; levels ({}):", names.join(" "));
            for (l, k) in v.iter().take(12) {
                eprintln!("  {l:?} {k}");
            }
        }
    }
    let mut true_pairs = 0u64;
    let mut per: HashMap<&str, u64> = HashMap::new();
    for p in &people {
        *per.entry(p).or_default() += 1;
    }
    for v in per.values() {
        true_pairs += v * (v - 1) / 2;
    }
    for avg in averages {
        let labels = crosswalk::cluster::cluster(n, &edges, avg);
        let mut both: HashMap<(u32, &str), u64> = HashMap::new();
        let mut pred: HashMap<u32, u64> = HashMap::new();
        for (i, &l) in labels.iter().enumerate() {
            *both.entry((l, people[i])).or_default() += 1;
            *pred.entry(l).or_default() += 1;
        }
        let tp: u64 = both.values().map(|v| v * (v - 1) / 2).sum();
        let pp: u64 = pred.values().map(|v| v * (v - 1) / 2).sum();
        let p = tp as f64 / pp.max(1) as f64;
        let r = tp as f64 / true_pairs.max(1) as f64;
        println!(
            "min average {avg}: {} persons (true {}), P {p:.4} R {r:.4} F1 {:.4}",
            pred.len(),
            per.len(),
            2.0 * p * r / (p + r).max(1e-12)
        );
    }
}

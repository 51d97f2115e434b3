//! `crosswalk synth` and `crosswalk evaluate --baseline`.

use std::path::Path;

use crate::util::*;

fn synth(dir: &Path, persons: &str, seed: &str) {
    synth_world(dir, persons, seed, "classic");
}

fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for sub in ["exports", "mappings", "truth"] {
        let mut names: Vec<_> = std::fs::read_dir(dir.join(sub))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        names.sort();
        for p in names {
            out.push((
                format!("{sub}/{}", p.file_name().unwrap().to_string_lossy()),
                std::fs::read(&p).unwrap(),
            ));
        }
    }
    out.push((
        "schema.toml".into(),
        std::fs::read(dir.join("schema.toml")).unwrap(),
    ));
    out
}

/// The committed world (fixtures/world: 300 persons, seed 1) is exactly what the generator
/// makes today: same seed, same bytes.
#[test]
fn same_seed_same_bytes_as_the_committed_world() {
    let dir = tempfile::tempdir().unwrap();
    synth(dir.path(), "300", "1");
    let now = files(dir.path());
    let committed = files(&fixture("world"));
    assert_eq!(now.len(), committed.len());
    for ((name, a), (cname, b)) in now.iter().zip(&committed) {
        assert_eq!(name, cname);
        assert!(
            a == b,
            "{name} differs from fixtures/world (regenerate it if the change is intended)"
        );
    }
    let other = tempfile::tempdir().unwrap();
    synth(other.path(), "300", "2");
    assert_ne!(
        files(other.path())[1].1,
        now[1].1,
        "another seed, another world"
    );
}

/// Every synthetic export encodes unchanged with its mapping, without a rejected row.
#[test]
fn the_world_encodes_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let key = key_file(dir.path());
    let world = fixture("world");
    for (stem, agency) in crosswalk::synth::AGENCIES {
        let out = dir.path().join(format!("{stem}.parquet"));
        let o = encode(
            &world.join(format!("mappings/{stem}.toml")),
            &key,
            &world.join(format!("exports/{stem}.csv")),
            &out,
            &["--schema", world.join("schema.toml").to_str().unwrap()],
        );
        assert!(o.status.success(), "{stem}: {}", stderr(&o));
        let enc = crosswalk::io::encodings::read(&out).unwrap();
        assert_eq!(enc.meta.agency, agency);
        assert!(enc.len() > 20, "{stem}: {} rows", enc.len());
        assert_eq!(enc.meta.rejected_rows, 0, "{stem}: {}", stderr(&o));
    }
}

/// The population has the report's shape (../shared/domain.md).
#[test]
fn population_shape() {
    let dir = tempfile::tempdir().unwrap();
    synth(dir.path(), "4000", "5");
    let text = std::fs::read_to_string(dir.path().join("truth/persons.csv")).unwrap();
    let rows: Vec<Vec<&str>> = text
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    let n = rows.len() as f64;
    let share = |f: &dyn Fn(&Vec<&str>) -> bool| rows.iter().filter(|r| f(r)).count() as f64 / n;
    let female = share(&|r| r[2] == "female");
    let minor = share(&|r| r[3] == "true");
    let sex_tr = share(&|r| r[4] == "sex");
    assert!((female - 0.94).abs() < 0.02, "female {female}");
    assert!((minor - 0.55).abs() < 0.04, "minor {minor}");
    assert!((sex_tr - 0.73).abs() < 0.04, "sex trafficking {sex_tr}");
    // families: some persons share a family id (siblings and twins)
    let mut families: Vec<&str> = rows.iter().map(|r| r[1]).collect();
    families.sort();
    families.dedup();
    assert!((families.len() as f64) < n * 0.95);
}

/// The baseline is what docs/synth.md says: precise but blind to the world's recording errors.
#[test]
fn exact_match_baseline_misses_much() {
    let o = crosswalk(&[
        "evaluate",
        "--truth",
        fixture("world/truth").to_str().unwrap(),
        "--baseline",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8(o.stdout).unwrap();
    let f = all_pairs_prf(&out);
    assert!(f[0] > 0.98, "precision {}", f[0]);
    assert!(
        f[1] < 0.75,
        "recall {} (the world should defeat exact matching)",
        f[1]
    );
}

/// A hard world (`--realism hard`, issue #18) has what ../shared/domain.md describes: a
/// referral log that records an age instead of the birth date on most rows, persons who never
/// give a birth date, records filed under an alias only, and more concentrated names; it is
/// reproducible, encodes without a rejected row, and is harder for exact matching.
#[test]
fn a_hard_world_has_the_hard_cases() {
    let dir = tempfile::tempdir().unwrap();
    let hard = |d: &Path, seed: &str| synth_world(d, "1500", seed, "hard");
    let a = dir.path().join("a");
    let b = dir.path().join("b");
    hard(&a, "4");
    hard(&b, "4");
    assert_eq!(files(&a), files(&b), "same seed, same bytes");
    let classic = dir.path().join("classic");
    synth(&classic, "1500", "4");

    // The referral log: an Age column, filled instead of the birth date on most rows.
    let log = std::fs::read_to_string(a.join("exports/rhtrt.csv")).unwrap();
    let mut lines = log.lines();
    let header: Vec<&str> = lines.next().unwrap().split('\t').collect();
    assert_eq!(header[3..5], ["DOB", "Age"]);
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split('\t').collect()).collect();
    let age_only = rows
        .iter()
        .filter(|r| r[3].is_empty() && !r[4].is_empty())
        .count();
    let share = age_only as f64 / rows.len() as f64;
    assert!(
        (0.55..0.85).contains(&share),
        "age instead of DOB on {share}"
    );
    assert!(std::fs::read_to_string(a.join("mappings/rhtrt.toml"))
        .unwrap()
        .contains("age = \"Age\""));

    // Police write ASCII only, also when they write an alias (alias-only records go through
    // the recording errors like names).
    let police = std::fs::read_to_string(a.join("exports/police.csv")).unwrap();
    let mut r = csv::Reader::from_reader(police.as_bytes());
    for rec in r.records() {
        let name = rec.unwrap()[1].to_string();
        assert!(name.is_ascii(), "a police name holds an accent");
    }

    // Alias-only records and the share of rows written under an alias.
    let alias_rows = |w: &Path| {
        let t = std::fs::read_to_string(w.join("truth/events.csv")).unwrap();
        let n = t.lines().count() - 1;
        t.lines().filter(|l| l.ends_with(",name")).count() as f64 / n as f64
    };
    assert!(
        alias_rows(&a) > 2.0 * alias_rows(&classic),
        "{} vs {}",
        alias_rows(&a),
        alias_rows(&classic)
    );

    // Everything encodes, no row rejected.
    let key = key_file(dir.path());
    for (stem, _) in crosswalk::synth::AGENCIES {
        let out = dir.path().join(format!("{stem}.parquet"));
        let o = encode(
            &a.join(format!("mappings/{stem}.toml")),
            &key,
            &a.join(format!("exports/{stem}.csv")),
            &out,
            &[],
        );
        assert!(o.status.success(), "{stem}: {}", stderr(&o));
        let enc = crosswalk::io::encodings::read(&out).unwrap();
        assert_eq!(enc.meta.rejected_rows, 0, "{stem}");
    }

    // Exact matching on name and birth date finds fewer of the true pairs than in the classic
    // world of the same seed (docs/synth.md has the figures).
    let recall = |w: &Path| {
        let o = crosswalk(&[
            "evaluate",
            "--truth",
            w.join("truth").to_str().unwrap(),
            "--baseline",
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        all_pairs_prf(&String::from_utf8_lossy(&o.stdout))[1]
    };
    let (hard_recall, classic_recall) = (recall(&a), recall(&classic));
    assert!(
        hard_recall < classic_recall - 0.1,
        "{hard_recall} vs {classic_recall}"
    );
}

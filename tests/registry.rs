//! The monthly registry (issue #6): a three-month scenario on the committed world, stable ids,
//! changelog, idempotence, withdrawal, refusals, determinism, a lock, and runs killed with
//! SIGKILL at every commit step.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crosswalk::evaluate;
use crosswalk::io::entities::entity_rows;
use crosswalk::registry::{self, update::read_changelog};

use crate::util::{all_pairs_prf, crosswalk, evaluate_run, fixture, key_file, stderr};

const AGENCIES: [&str; 9] = [
    "cac",
    "case_mgmt",
    "dcf",
    "housing",
    "housing_b",
    "legal",
    "mental_health",
    "police",
    "rhtrt",
];

/// The committed world's exports split into three "months" (each agency's rows in three
/// consecutive parts, header repeated) and encoded: `enc/m{1,2,3}_{agency}.parquet`, local
/// maps in `maps/`.
/// Encoded with the default fields without hardening or parts (plain record CLKs, what the
/// record-level rules link).
fn monthly_world(dir: &Path) -> Vec<Vec<PathBuf>> {
    let schema = dir.join("plain.toml");
    std::fs::write(&schema, crosswalk::schema::unhardened_default_toml()).unwrap();
    monthly_world_with(dir, &schema)
}

/// [`monthly_world`] encoded with the world's schema, the default (a diffused record CLK and
/// field-level parts): what the match model links.
fn monthly_world_with_parts(dir: &Path) -> Vec<Vec<PathBuf>> {
    monthly_world_with(dir, &fixture("world/schema.toml"))
}

fn monthly_world_with(dir: &Path, schema: &Path) -> Vec<Vec<PathBuf>> {
    let key = key_file(dir);
    for sub in ["csv", "enc", "maps"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    let mut months = vec![Vec::new(); 3];
    for a in AGENCIES {
        let bytes = std::fs::read(fixture(&format!("world/exports/{a}.csv"))).unwrap();
        let lines: Vec<&[u8]> = bytes.split_inclusive(|&b| b == b'\n').collect();
        let (header, rows) = lines.split_first().unwrap();
        for (m, month) in months.iter_mut().enumerate() {
            let part = &rows[m * rows.len() / 3..(m + 1) * rows.len() / 3];
            let csv = dir.join(format!("csv/m{}_{a}.csv", m + 1));
            let mut out = header.to_vec();
            for r in part {
                out.extend_from_slice(r);
            }
            std::fs::write(&csv, out).unwrap();
            let enc = dir.join(format!("enc/m{}_{a}.parquet", m + 1));
            let o = crosswalk(&[
                "encode",
                "--schema",
                schema.to_str().unwrap(),
                "--source",
                fixture(&format!("world/mappings/{a}.toml"))
                    .to_str()
                    .unwrap(),
                "--key-file",
                key.to_str().unwrap(),
                "--input",
                csv.to_str().unwrap(),
                "--out",
                enc.to_str().unwrap(),
                "--map-out",
                dir.join(format!("maps/m{}_{a}.parquet", m + 1))
                    .to_str()
                    .unwrap(),
                "--reference-date",
                "2026-11-22",
            ]);
            assert!(o.status.success(), "{}", stderr(&o));
            month.push(enc);
        }
    }
    months
}

fn link_registry(
    reg: &Path,
    label: &str,
    files: &[PathBuf],
    extra: &[&str],
) -> std::process::Output {
    let mut args = vec![
        "link",
        "--registry",
        reg.to_str().unwrap(),
        "--label",
        label,
    ];
    args.extend_from_slice(extra);
    args.extend(files.iter().map(|p| p.to_str().unwrap()));
    crosswalk(&args)
}

/// `(agency, record_key) -> person_id` of generation `g`.
fn persons(reg: &Path, g: u32) -> BTreeMap<(String, String), String> {
    let dir = reg.join("generations").join(registry::generation_name(g));
    entity_rows(&dir)
        .unwrap()
        .into_iter()
        .map(|(a, k, p)| ((a, k), p))
        .collect()
}

/// Every file of the registry's state (what `CURRENT` names), path -> bytes.
fn state(reg: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let current = std::fs::read_to_string(reg.join("CURRENT")).unwrap();
    out.insert("CURRENT".to_string(), current.clone().into_bytes());
    let gen_dir = reg.join("generations").join(current.trim());
    for e in std::fs::read_dir(&gen_dir).unwrap() {
        let e = e.unwrap();
        if e.path().is_dir() {
            continue; // aggregates/, written by `crosswalk report`
        }
        out.insert(
            format!("gen/{}", e.file_name().to_string_lossy()),
            std::fs::read(e.path()).unwrap(),
        );
    }
    let m = registry::read_manifest(&gen_dir).unwrap();
    // (a registry on the match model reads its batches again and keeps no indexes)
    let exts: &[&str] = match m.settings.min_average {
        None => &["parquet", "index"],
        Some(_) => &["parquet"],
    };
    for b in m.batches {
        for &ext in exts {
            let p = reg.join("batches").join(format!("{}.{ext}", b.id));
            out.insert(format!("batches/{}.{ext}", b.id), std::fs::read(p).unwrap());
        }
    }
    out
}

/// Every file name under the registry but the lock.
fn all_files(reg: &Path) -> BTreeSet<String> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeSet<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(base, &p, out);
            } else if !p.ends_with("LOCK") {
                out.insert(p.strip_prefix(base).unwrap().display().to_string());
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(reg, reg, &mut out);
    out
}

#[test]
fn three_months_keep_ids_log_changes_and_link_well() {
    let dir = tempfile::tempdir().unwrap();
    let months = monthly_world(dir.path());
    three_months(dir.path(), &months, "new CLKs against");
}

/// The same months encoded with field-level parts: the registry links by the match model
/// (`--model auto` chooses it for inputs with parts), its `m` and `u` fitted at the first run
/// and kept, and meets the same bars.
#[test]
fn three_months_on_the_match_model_keep_ids_log_changes_and_link_well() {
    let dir = tempfile::tempdir().unwrap();
    let months = monthly_world_with_parts(dir.path());
    let reg = three_months(dir.path(), &months, "linked again by the match model (fs)");
    let manifest = |g| {
        registry::read_manifest(&reg.join("generations").join(registry::generation_name(g)))
            .unwrap()
    };
    let (first, last) = (manifest(1), manifest(3));
    assert_eq!(last.settings.min_average, Some(0.4));
    assert!(first.model.is_some());
    assert_eq!(
        first.model, last.model,
        "m and u are fixed at the first run"
    );
    let diagnostics = |g| -> serde_json::Value {
        let path = reg
            .join("generations")
            .join(registry::generation_name(g))
            .join("diagnostics.json");
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    };
    assert_eq!(diagnostics(1)["model"]["parameters"], "fitted on this run");
    assert_eq!(
        diagnostics(3)["model"]["parameters"],
        "fixed (m and u from an earlier run; λ fitted)"
    );
    // ... and month 3 weighed its pairs with month 1's m and u, level by level.
    let m_u = |section: &serde_json::Value| -> Vec<(f64, f64)> {
        section["comparisons"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|c| c["levels"].as_array().unwrap().iter())
            .map(|l| (l["m"].as_f64().unwrap(), l["u"].as_f64().unwrap()))
            .collect()
    };
    let fitted = m_u(first.model.as_ref().unwrap());
    assert!(fitted.len() >= 10);
    assert_eq!(m_u(&diagnostics(3)["model"]), fitted);
    assert_ne!(
        diagnostics(3)["model"]["lambda"],
        diagnostics(1)["model"]["lambda"],
        "λ is fitted on each run's records"
    );
    // Its model is fixed: a run asking for the rules is refused, saying why.
    let snapshot = state(&reg);
    let o = link_registry(&reg, "rules", &months[0], &["--model", "rules"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("links by the match model (fs)"),
        "{}",
        stderr(&o)
    );
    assert_eq!(state(&reg), snapshot);
    // The report shows the model's weights.
    let html = std::fs::read_to_string(
        reg.join("generations")
            .join(registry::generation_name(3))
            .join("report.html"),
    )
    .unwrap();
    assert!(
        html.contains("atch weights"),
        "the report has no match-weights chart"
    );
}

/// Links the three months into a registry in `dir` and checks ids, changelog, history,
/// quality, idempotence and the report; `says`: what the runs' summaries say of the linking.
fn three_months(dir: &Path, months: &[Vec<PathBuf>], says: &str) -> PathBuf {
    let reg = dir.join("reg");
    for (m, files) in months.iter().enumerate() {
        let o = link_registry(&reg, &format!("2026-0{}", m + 1), files, &[]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(stderr(&o).contains(&format!("generation {}", m + 1)));
        assert!(stderr(&o).contains(says), "{}", stderr(&o));
    }
    // Every id of month m that no changelog entry of month m + 1 names still holds all its
    // records; and at least 99% of month m's ids keep all their records, true merges excused.
    let log = read_changelog(
        &reg.join("generations")
            .join(registry::generation_name(3))
            .join("changelog.parquet"),
    )
    .unwrap();
    for g in 1..3u32 {
        let (before, after) = (persons(&reg, g), persons(&reg, g + 1));
        let named: BTreeSet<&str> = log
            .iter()
            .filter(|r| r.generation == g + 1)
            .map(|r| r.person_id.as_str())
            .collect();
        let ids: BTreeSet<&String> = before.values().collect();
        for id in &ids {
            let same = before
                .iter()
                .filter(|(_, p)| p == id)
                .all(|(k, _)| after.get(k) == Some(*id));
            assert!(
                same || named.contains(id.as_str()),
                "{id} changed without a changelog entry"
            );
        }
        let truth =
            evaluate::true_persons(&fixture("world/truth"), &dir.join("maps"), after.keys())
                .unwrap();
        let hash = |m: &BTreeMap<(String, String), String>| m.clone().into_iter().collect();
        let st = evaluate::id_stability(&hash(&before), &hash(&after), &truth);
        assert_eq!(st.ids as usize, ids.len());
        // (printed for docs/registry.md: `cargo test --release registry -- --nocapture`)
        eprintln!("id stability, month {g} -> {}: {st:?}", g + 1);
        assert!(st.share() >= 0.99, "month {g} -> {}: {st:?}", g + 1);
    }
    // Per-month history adds up.
    let m = registry::read_manifest(&reg.join("generations").join(registry::generation_name(3)))
        .unwrap();
    assert_eq!(m.history.len(), 3);
    let issued: u64 = m.history.iter().map(|h| h.new_persons).sum();
    assert_eq!(issued + 1, m.next_person as u64);
    let last = m.history.last().unwrap();
    assert_eq!(
        last.persons,
        persons(&reg, 3).values().collect::<BTreeSet<_>>().len() as u64
    );
    assert_eq!(m.batches.len(), 27);
    // Quality of the incremental result against the truth.
    let out = evaluate_run(&fixture("world/truth"), &reg, &dir.join("maps"));
    let [p, r, f1] = all_pairs_prf(&out);
    eprintln!("after three months: F1 {f1} (precision {p}, recall {r})");
    assert!(f1 >= 0.97, "F1 {f1} (precision {p}, recall {r})");
    // Re-adding a month changes nothing at all.
    let before = all_files(&reg);
    let snapshot = state(&reg);
    let o = link_registry(&reg, "again", &months[0], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("nothing to add"));
    assert_eq!(state(&reg), snapshot);
    // (evaluate wrote events.parquet into the generation; nothing else appeared)
    assert_eq!(all_files(&reg), before);
    // The report reads the registry.
    let o = crosswalk(&["report", reg.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    reg
}

#[test]
fn withdrawal_recomputes_persons_without_the_batch() {
    let dir = tempfile::tempdir().unwrap();
    let months = monthly_world(dir.path());
    withdrawal(dir.path(), &months, "new CLKs against");
}

#[test]
fn withdrawal_on_the_match_model_recomputes_persons_without_the_batch() {
    let dir = tempfile::tempdir().unwrap();
    let months = monthly_world_with_parts(dir.path());
    withdrawal(dir.path(), &months, "linked again by the match model (fs)");
}

/// Adds all months at once, withdraws month 2's police batch, and checks what is left; `says`:
/// what the runs' summaries say of the linking.
fn withdrawal(dir: &Path, months: &[Vec<PathBuf>], says: &str) {
    let reg = dir.join("reg");
    let all: Vec<PathBuf> = months.concat();
    let o = link_registry(&reg, "all", &all, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains(says), "{}", stderr(&o));
    let before = persons(&reg, 1);
    let gone = &months[1][7]; // police, month 2
    let o = link_registry(
        &reg,
        "retract",
        &[],
        &["--withdraw", gone.to_str().unwrap()],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains(says), "{}", stderr(&o));
    let after = persons(&reg, 2);
    // The batch's records that no other batch has are gone; everyone else is still there.
    let batch_keys: BTreeSet<String> = crate::util::read_map(&dir.join("maps/m2_police.parquet"))
        .into_iter()
        .map(|(_, k)| k)
        .collect();
    let other_keys: BTreeSet<String> = ["m1_police", "m3_police"]
        .iter()
        .flat_map(|m| crate::util::read_map(&dir.join(format!("maps/{m}.parquet"))))
        .map(|(_, k)| k)
        .collect();
    let removed: Vec<_> = before
        .keys()
        .filter(|(a, k)| a == "police" && batch_keys.contains(k) && !other_keys.contains(k))
        .collect();
    assert!(!removed.is_empty());
    for k in before.keys() {
        assert_eq!(after.contains_key(k), !removed.contains(&k), "{k:?}");
    }
    let m = registry::read_manifest(&reg.join("generations").join(registry::generation_name(2)))
        .unwrap();
    assert_eq!(m.batches.len(), 26);
    assert_eq!(m.history[1].batches_withdrawn.len(), 1);
    // Persons that had none of the withdrawn records keep their ids.
    let touched: BTreeSet<&String> = removed.iter().map(|k| &before[*k]).collect();
    let untouched = before
        .iter()
        .filter(|(_, p)| !touched.contains(p))
        .filter(|(k, p)| after.get(*k) == Some(*p))
        .count();
    let total = before.iter().filter(|(_, p)| !touched.contains(p)).count();
    // Persons whose every record was withdrawn are retired, in the changelog and the history.
    let gone_whole: BTreeSet<&String> = touched
        .iter()
        .copied()
        .filter(|p| before.iter().all(|(k, q)| q != *p || removed.contains(&k)))
        .collect();
    let log = read_changelog(
        &reg.join("generations")
            .join(registry::generation_name(2))
            .join("changelog.parquet"),
    )
    .unwrap();
    let retired: BTreeSet<&String> = log
        .iter()
        .filter(|r| r.change == "retire")
        .map(|r| &r.person_id)
        .collect();
    assert!(!gone_whole.is_empty());
    assert_eq!(retired, gone_whole);
    assert_eq!(m.history[1].retired as usize, gone_whole.len());
    assert!(
        untouched as f64 >= 0.99 * total as f64,
        "{untouched} of {total}"
    );
    // Withdrawing what is not there is refused, naming the problem.
    let o = link_registry(&reg, "x", &[], &["--withdraw", "0123456789abcdef"]);
    assert_eq!(o.status.code(), Some(3));
    assert!(stderr(&o).contains("no such batch"), "{}", stderr(&o));
}

#[test]
fn foreign_encodings_are_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let months = monthly_world(dir.path());
    let reg = dir.path().join("reg");
    assert!(link_registry(&reg, "m1", &months[0], &[]).status.success());
    // Another key: a different KCV.
    let other_key = dir.path().join("other.key");
    let o = crosswalk(&["keygen", "--out", other_key.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let odd = dir.path().join("odd.parquet");
    let o = crosswalk(&[
        "encode",
        "--schema",
        dir.path().join("plain.toml").to_str().unwrap(),
        "--source",
        fixture("world/mappings/police.toml").to_str().unwrap(),
        "--key-file",
        other_key.to_str().unwrap(),
        "--input",
        dir.path().join("csv/m2_police.csv").to_str().unwrap(),
        "--out",
        odd.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let before = all_files(&reg);
    let snapshot = state(&reg);
    let mut files = months[1].clone();
    files.push(odd.clone());
    let o = link_registry(&reg, "m2", &files, &[]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert!(stderr(&o).contains("odd.parquet") && stderr(&o).contains("key check value"));
    assert_eq!(state(&reg), snapshot);
    assert_eq!(all_files(&reg), before);
    // Settings are fixed at creation.
    let o = link_registry(&reg, "m2", &months[1], &["--threshold", "0.7"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert_eq!(state(&reg), snapshot);
    // A registry of another format (format 1 held row-major band keys) is refused, and the
    // message says what to do.
    let manifest = reg
        .join("generations")
        .join(registry::generation_name(1))
        .join("registry.json");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let old = text.replace(registry::FORMAT, "crosswalk-registry/1");
    assert_ne!(old, text);
    std::fs::write(&manifest, &old).unwrap();
    let o = link_registry(&reg, "m2", &months[1], &[]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert!(stderr(&o).contains("crosswalk-registry/1") && stderr(&o).contains("new registry"));
    assert_eq!(std::fs::read_to_string(&manifest).unwrap(), old);
    assert_eq!(all_files(&reg), before);
}

#[test]
fn same_history_same_bytes_at_any_thread_count() {
    let dir = tempfile::tempdir().unwrap();
    same_bytes_at_any_thread_count(dir.path(), &monthly_world(dir.path()), "new CLKs against");
}

#[test]
fn same_history_same_bytes_at_any_thread_count_on_the_match_model() {
    let dir = tempfile::tempdir().unwrap();
    same_bytes_at_any_thread_count(
        dir.path(),
        &monthly_world_with_parts(dir.path()),
        "linked again by the match model (fs)",
    );
}

fn same_bytes_at_any_thread_count(dir: &Path, months: &[Vec<PathBuf>], says: &str) {
    let mut states = Vec::new();
    for j in ["1", "2"] {
        let reg = dir.join(format!("reg{j}"));
        for (m, files) in months.iter().enumerate() {
            let o = link_registry(&reg, &format!("m{m}"), files, &["-j", j]);
            assert!(o.status.success(), "{}", stderr(&o));
            assert!(stderr(&o).contains(says), "{}", stderr(&o));
        }
        let mut s = state(&reg);
        s.remove("gen/diagnostics.json"); // timings
        states.push(s);
    }
    assert!(
        states[0] == states[1],
        "registries differ between -j 1 and -j 2"
    );
}

/// Starts a registry run that pauses at `point`; returns the child once it has paused.
fn paused_run(reg: &Path, files: &[PathBuf], point: &str) -> std::process::Child {
    let mut args = vec![
        "link".to_string(),
        "--registry".into(),
        reg.display().to_string(),
        "--label".into(),
        "m2".into(),
    ];
    args.extend(files.iter().map(|p| p.display().to_string()));
    crate::util::spawn_paused(&args, point)
}

#[test]
fn a_killed_run_leaves_the_registry_as_it_was_and_the_next_run_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let months = monthly_world(dir.path());
    // Reference: month 1 then month 2, uninterrupted.
    let clean = dir.path().join("clean");
    assert!(link_registry(&clean, "m1", &months[0], &[])
        .status
        .success());
    assert!(link_registry(&clean, "m2", &months[1], &[])
        .status
        .success());
    let mut expected = state(&clean);
    expected.remove("gen/diagnostics.json");
    for point in ["batches", "generation"] {
        let reg = dir.path().join(format!("reg-{point}"));
        assert!(link_registry(&reg, "m1", &months[0], &[]).status.success());
        let before = state(&reg);
        let files_before = all_files(&reg);
        let mut child = paused_run(&reg, &months[1], point);
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        assert_eq!(state(&reg), before, "killed at {point}: the state changed");
        // The next run cleans up what the dead one left and does the work.
        let o = link_registry(&reg, "m2", &months[1], &[]);
        assert!(o.status.success(), "{}", stderr(&o));
        let mut after = state(&reg);
        after.remove("gen/diagnostics.json");
        assert!(
            after == expected,
            "killed at {point}: the rerun differs from a clean run"
        );
        assert!(all_files(&reg).is_superset(&files_before));
        assert_eq!(
            all_files(&reg).len(),
            all_files(&clean).len(),
            "stray files after {point}"
        );
    }
    // Killed after CURRENT was replaced: the run is complete.
    let reg = dir.path().join("reg-current");
    assert!(link_registry(&reg, "m1", &months[0], &[]).status.success());
    let mut child = paused_run(&reg, &months[1], "current");
    child.kill().unwrap();
    child.wait().unwrap();
    let mut after = state(&reg);
    after.remove("gen/diagnostics.json");
    assert!(after == expected);
}

#[test]
fn a_second_run_is_refused_while_one_holds_the_registry_and_a_dead_one_frees_it() {
    let dir = tempfile::tempdir().unwrap();
    let months = monthly_world(dir.path());
    let reg = dir.path().join("reg");
    assert!(link_registry(&reg, "m1", &months[0], &[]).status.success());
    let mut holder = paused_run(&reg, &months[1], "batches");
    let o = link_registry(&reg, "m2", &months[1], &[]);
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("in use by another crosswalk run"),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains(&holder.id().to_string()));
    holder.kill().unwrap();
    holder.wait().unwrap();
    let o = link_registry(&reg, "m2", &months[1], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
}

use crate::util::{assert_same_tree, tree};

/// Two small fixture exports encoded into `dir`: (first, second).
/// Writes `DIR/plain.toml`: the default fields unhardened and without parts (what the
/// record-level rules link).
fn plain_schema(dir: &Path) -> PathBuf {
    let schema = dir.join("plain.toml");
    std::fs::write(&schema, crosswalk::schema::unhardened_default_toml()).unwrap();
    schema
}

/// [`crate::util::encode_fixture`] under [`plain_schema`].
fn encode_plain_fixture(dir: &Path, stem: &str) -> (std::process::Output, PathBuf) {
    let schema = plain_schema(dir);
    crate::util::encode_fixture(dir, stem, &["--schema", schema.to_str().unwrap()])
}

/// Two encoder fixtures encoded with the default fields unhardened and without parts: a
/// registry on the record-level rules.
fn two_batches(dir: &Path) -> (PathBuf, PathBuf) {
    let (o, a) = encode_plain_fixture(dir, "dcf");
    assert!(o.status.success(), "{}", stderr(&o));
    let (o, b) = encode_plain_fixture(dir, "police");

    assert!(o.status.success(), "{}", stderr(&o));
    (a, b)
}

#[test]
fn a_registry_without_current_is_refused_and_nothing_is_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = two_batches(dir.path());
    let reg = dir.path().join("reg");
    assert!(link_registry(&reg, "m1", &[a], &[]).status.success());
    std::fs::remove_file(reg.join("CURRENT")).unwrap();
    let before = tree(&reg);
    let o = link_registry(&reg, "m2", std::slice::from_ref(&b), &[]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(4), "{err}");
    assert!(
        err.contains("CURRENT file is missing") && err.contains("echo gen-000001 >"),
        "{err}"
    );
    assert_same_tree(&tree(&reg), &before, "a refused run changed the registry");
    // Following the message's advice recovers the registry.
    std::fs::write(reg.join("CURRENT"), "gen-000001\n").unwrap();
    let o = link_registry(&reg, "m2", &[b], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(registry::current_generation(&reg).unwrap(), 2);
}

#[test]
fn a_directory_that_is_not_a_registry_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let (a, _) = two_batches(dir.path());
    // A directory of someone else's files, one of them where a registry keeps its batches.
    let other = dir.path().join("other");
    std::fs::create_dir_all(other.join("batches")).unwrap();
    std::fs::write(other.join("notes.txt"), "keep me").unwrap();
    std::fs::write(other.join("batches/keep.parquet"), "keep me too").unwrap();
    let before = tree(&other);
    let o = link_registry(&other, "m1", std::slice::from_ref(&a), &[]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(err.contains("nothing was changed"), "{err}");
    assert_same_tree(&tree(&other), &before, "refused");
    assert!(!other.join("LOCK").exists() && !other.join("CURRENT").exists());
    // Not a registry, no subdirectories: refused the same way.
    let plain = dir.path().join("plain");
    std::fs::create_dir_all(&plain).unwrap();
    std::fs::write(plain.join("report.docx"), "x").unwrap();
    let o = link_registry(&plain, "m1", std::slice::from_ref(&a), &[]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("not a crosswalk registry"));
    assert_eq!(std::fs::read_dir(&plain).unwrap().count(), 1);
    // A file where the registry's directory should be.
    let o = link_registry(&plain.join("report.docx"), "m1", &[a], &[]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    // An empty directory becomes a registry.
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let (o, c) = encode_plain_fixture(dir.path(), "cac");
    assert!(o.status.success());
    assert!(link_registry(&empty, "m1", &[c], &[]).status.success());
    assert_eq!(registry::current_generation(&empty).unwrap(), 1);
}

#[test]
fn only_files_crosswalk_wrote_are_cleaned_up() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = two_batches(dir.path());
    let reg = dir.path().join("reg");
    assert!(link_registry(&reg, "m1", &[a], &[]).status.success());
    // Foreign files where the registry keeps its own: a backup of a generation, notes, a
    // file named like a batch whose content is not what its name says.
    let g1 = reg.join("generations/gen-000001");
    let bak = reg.join("generations/gen-000001.bak");
    std::fs::create_dir_all(&bak).unwrap();
    for e in std::fs::read_dir(&g1).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), bak.join(e.file_name())).unwrap();
    }
    let fake_id = "0123456789abcdef0123456789abcdef";
    let foreign = [
        "generations/notes.txt".to_string(),
        "batches/README.txt".to_string(),
        format!("batches/{fake_id}.parquet"),
        format!("batches/{fake_id}.index"),
        ".crosswalk-notes.txt".to_string(),
    ];
    for f in &foreign {
        std::fs::write(reg.join(f), "not crosswalk's").unwrap();
    }
    // What a killed run leaves and crosswalk can prove it wrote: a temporary file, a staging
    // directory, and an unreferenced batch copy whose name is its content's digest.
    std::fs::write(reg.join(".crosswalk-AbC123.tmp"), "partial").unwrap();
    let staging = reg.join("generations/.staging-gen-000002-4242");
    std::fs::create_dir_all(&staging).unwrap();
    std::fs::write(staging.join("entities.parquet"), "partial").unwrap();
    let orphan = std::fs::read(&b).unwrap();
    let orphan_id = blake3::hash(&orphan).to_hex()[..32].to_string();
    std::fs::write(reg.join(format!("batches/{orphan_id}.parquet")), &orphan).unwrap();
    let o = link_registry(&reg, "m2", &[b], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    for f in &foreign {
        assert!(reg.join(f).exists(), "{f} was removed");
    }
    assert_eq!(tree(&bak).len(), tree(&g1).len(), "the backup was touched");
    assert!(!reg.join(".crosswalk-AbC123.tmp").exists());
    assert!(!staging.exists());
    // The orphan is the batch m2 added, so it is in use now, rewritten by the run.
    assert!(reg.join(format!("batches/{orphan_id}.index")).exists());
}

#[test]
fn withdrawing_and_adding_one_batch_in_one_run_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = two_batches(dir.path());
    let reg = dir.path().join("reg");
    assert!(link_registry(&reg, "m1", &[a.clone(), b], &[])
        .status
        .success());
    let before = tree(&reg);
    let o = link_registry(
        &reg,
        "m2",
        std::slice::from_ref(&a),
        &["--withdraw", a.to_str().unwrap()],
    );
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(err.contains("either withdraws a batch or adds it"), "{err}");
    assert!(!err.contains("skipped"), "{err}");
    assert_same_tree(&tree(&reg), &before, "refused");
}

#[test]
fn later_generations_are_never_removed_and_a_dead_first_run_is_a_new_registry() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = two_batches(dir.path());
    let (o, c) = encode_plain_fixture(dir.path(), "cac");
    assert!(o.status.success());
    let reg = dir.path().join("reg");
    for (label, f) in [("m1", &a), ("m2", &b), ("m3", &c)] {
        let o = link_registry(&reg, label, std::slice::from_ref(f), &[]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    // CURRENT moved back two generations by hand: a run would have to delete gen 2 and 3.
    std::fs::write(reg.join("CURRENT"), "gen-000001\n").unwrap();
    let before = tree(&reg);
    let (o, d) = encode_plain_fixture(dir.path(), "rhtrt");
    assert!(o.status.success());
    let o = link_registry(&reg, "m4", std::slice::from_ref(&d), &[]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(
        err.contains("later generations (gen-000002, gen-000003)"),
        "{err}"
    );
    assert_same_tree(&tree(&reg), &before, "refused");
    // What a run that died before its first commit leaves (the lock, a temporary, empty
    // subdirectories) is still a new registry.
    let fresh = dir.path().join("fresh");
    std::fs::create_dir_all(fresh.join("batches")).unwrap();
    std::fs::create_dir_all(fresh.join("generations")).unwrap();
    std::fs::write(fresh.join("LOCK"), "4242\n").unwrap();
    std::fs::write(fresh.join(".crosswalk-Ab12Cd.tmp"), "gen-0").unwrap();
    let o = link_registry(&fresh, "m1", &[d], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!fresh.join(".crosswalk-Ab12Cd.tmp").exists());
}

/// A registry keeps the model it was created with: one made by the rules from encodings with
/// parts stays on the rules under `--model auto` (and keeps the parts out of its checks against
/// stored batches), and a run asking for the model is refused before anything is written.
#[test]
fn a_registry_keeps_the_model_it_was_created_with() {
    let dir = tempfile::tempdir().unwrap();
    let schema = crate::util::parts_schema_file(dir.path());
    let s = schema.to_str().unwrap();
    let (o, a) = crate::util::encode_fixture(dir.path(), "dcf", &["--schema", s]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (o, b) = crate::util::encode_fixture(dir.path(), "police", &["--schema", s]);
    assert!(o.status.success(), "{}", stderr(&o));
    let reg = dir.path().join("reg");
    let o = link_registry(
        &reg,
        "2026-01",
        std::slice::from_ref(&a),
        &["--model", "rules"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = link_registry(&reg, "2026-02", std::slice::from_ref(&b), &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("new CLKs against"), "{}", stderr(&o));
    let snapshot = state(&reg);
    for flags in [&["--model", "fs"][..], &["--min-average", "0.5"]] {
        let o = link_registry(&reg, "2026-03", std::slice::from_ref(&a), flags);
        assert_eq!(o.status.code(), Some(3), "{flags:?}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("record-level rules"),
            "{flags:?}: {}",
            stderr(&o)
        );
        assert_eq!(state(&reg), snapshot);
    }
}

/// A registry on the model can lose every batch (all its ids retired) and take batches again
/// in the next run (weighed with the model of its first run), as the rules' registry can.
#[test]
fn a_registry_on_the_model_can_withdraw_every_batch() {
    let dir = tempfile::tempdir().unwrap();
    let months = monthly_world_with_parts(dir.path());
    let reg = dir.path().join("reg");
    let o = link_registry(&reg, "1", &months[0], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("match model"), "{}", stderr(&o));
    let ids: BTreeSet<String> = persons(&reg, 1).into_values().collect();
    let mut flags = Vec::new();
    for f in &months[0] {
        flags.extend(["--withdraw", f.to_str().unwrap()]);
    }
    let o = link_registry(&reg, "2", &[], &flags);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(persons(&reg, 2).is_empty());
    let m = registry::read_manifest(&reg.join("generations").join(registry::generation_name(2)))
        .unwrap();
    assert_eq!(m.history[1].retired as usize, ids.len());
    assert_eq!(m.history[1].persons, 0);
    let o = link_registry(&reg, "3", &months[1], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let again: BTreeSet<String> = persons(&reg, 3).into_values().collect();
    assert!(
        !again.is_empty() && again.is_disjoint(&ids),
        "numbers are never reused"
    );
}

/// The model section generation `g` of the registry `reg` keeps (`registry.json`'s `model`).
fn model_of(reg: &Path, g: u32) -> serde_json::Value {
    registry::read_manifest(&reg.join("generations").join(registry::generation_name(g)))
        .unwrap()
        .model
        .expect("a registry on the match model keeps its model")
}

/// A registry whose first run is too small to fit the match model (one encoder fixture, the
/// default schema) links by the built-in model's `m` and `u`, warns, and records them as
/// built-in; it fits its own at the first run that can (here when the committed world's
/// batches come) and keeps those from then on.
#[test]
fn a_registry_begun_too_small_fits_its_own_model_when_it_can() {
    let dir = tempfile::tempdir().unwrap();
    let (o, small) = crate::util::encode_fixture(dir.path(), "dcf", &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let reg = dir.path().join("reg");
    let parameters = |g: u32| {
        model_of(&reg, g)["parameters"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let o = link_registry(&reg, "m1", &[small], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("too small to fit the match model"),
        "{}",
        stderr(&o)
    );
    assert!(parameters(1).starts_with("built-in"), "{}", parameters(1));
    // The committed world's batches (the same key): enough to fit.
    let world = crate::link::encode_world(&dir.path().join("world"), &key_file(dir.path()));
    let (first, rest) = world.split_at(4);
    let o = link_registry(&reg, "m2", first, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stderr(&o).contains("too small"), "{}", stderr(&o));
    assert_eq!(parameters(2), "fitted on this run");
    let o = link_registry(&reg, "m3", rest, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    // Kept as generation 2 fitted them.
    assert_eq!(parameters(3), "fitted on this run");
    assert_eq!(
        model_of(&reg, 2)["comparisons"],
        model_of(&reg, 3)["comparisons"]
    );
}

/// A registry still on the built-in model whose batches are all withdrawn keeps its model
/// section (the empty run links nothing and fits nothing), so the next run that adds batches
/// is not refused as damaged, and fits its own.
#[test]
fn a_registry_on_the_built_in_model_survives_withdrawing_everything() {
    let dir = tempfile::tempdir().unwrap();
    let (o, small) = crate::util::encode_fixture(dir.path(), "dcf", &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let reg = dir.path().join("reg");
    let o = link_registry(&reg, "m1", std::slice::from_ref(&small), &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = link_registry(&reg, "m2", &[], &["--withdraw", small.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(model_of(&reg, 2)["parameters_source"], "built-in");
    let world = crate::link::encode_world(&dir.path().join("world"), &key_file(dir.path()));
    let o = link_registry(&reg, "m3", &world, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(model_of(&reg, 3)["parameters_source"], "fitted");
}

/// The committed world encoded under `dir`, and a registry of its first four files (one run):
/// the files, the registry, and its first generation's manifest.
fn registry_of_the_first_four(dir: &Path) -> (Vec<PathBuf>, PathBuf, PathBuf) {
    let world = crate::link::encode_world(&dir.join("world"), &key_file(dir));
    let reg = dir.join("reg");
    let o = link_registry(&reg, "m1", &world[..4], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let manifest = reg
        .join("generations")
        .join(registry::generation_name(1))
        .join("registry.json");
    (world, reg, manifest)
}

/// A registry whose match model an older version fitted (its age comparison's level 2 was the
/// age bands' `overlap`, now `same years`) is not refused as damaged: the next run fits the
/// model again, says so, and keeps the new one; `--model-from` refuses such a model, saying why.
#[test]
fn a_registry_on_an_older_versions_model_fits_it_again() {
    let dir = tempfile::tempdir().unwrap();
    let (world, reg, manifest) = registry_of_the_first_four(dir.path());
    let (first, rest) = world.split_at(4);
    let text = std::fs::read_to_string(&manifest).unwrap();
    let old = text.replace("\"same years\"", "\"overlap\"");
    assert_ne!(old, text, "the model section labels its levels");
    std::fs::write(&manifest, &old).unwrap();
    let o = link_registry(&reg, "m2", rest, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("older version"), "{}", stderr(&o));
    let model = model_of(&reg, 2);
    assert_eq!(model["parameters_source"], "fitted");
    assert!(crosswalk::link::evidence::labels_are_this_versions(&model));
    let o = link_registry(&reg, "m3", &[], &["--withdraw", first[0].to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stderr(&o).contains("older version"), "{}", stderr(&o));
    assert_eq!(
        model_of(&reg, 2)["comparisons"],
        model_of(&reg, 3)["comparisons"]
    );
    // The one-off job's --model-from: refused, with the reason.
    let old_model: serde_json::Value = serde_json::from_str(&old).unwrap();
    let err = crosswalk::link::evidence::model_from_diagnostics(&old_model["model"]).unwrap_err();
    assert!(err.contains("older version"), "{err}");
}

/// The model a registry of the first four batches stores, as `edit` leaves it (an older
/// version's), at the registry's next run: that run warns, fits the model again, and keeps
/// the new one, which lacks nothing. Returns the new model section.
fn registry_refits_an_edited_model(edit: impl FnOnce(&mut serde_json::Value)) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let (world, reg, manifest) = registry_of_the_first_four(dir.path());
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&manifest).unwrap()).unwrap();
    edit(&mut json["model"]);
    std::fs::write(&manifest, serde_json::to_string_pretty(&json).unwrap()).unwrap();
    let o = link_registry(&reg, "m2", &world[4..], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("older version"), "{}", stderr(&o));
    let model = model_of(&reg, 2);
    assert_eq!(model["parameters_source"], "fitted");
    assert!(!crosswalk::link::evidence::lacks_comparisons(&model));
    model
}

/// A registry whose model was fitted before the event gap (eight comparisons) would read it
/// with the event gap weighing nothing, for good: the next run fits the model again instead,
/// and keeps the new one with every comparison.
#[test]
fn a_registry_on_a_model_without_the_event_gap_fits_it_again() {
    let mut full = 0;
    let model = registry_refits_an_edited_model(|model| {
        let comparisons = model["comparisons"].as_array_mut().unwrap();
        full = comparisons.len();
        assert_eq!(comparisons.pop().unwrap()["name"], "event_gap");
    });
    assert_eq!(model["comparisons"].as_array().unwrap().len(), full);
}

/// A registry whose stored model has the event gap of three levels (2026-12-07: `< 90 days
/// apart` its top) fits its model again at its next run, as one without the event gap does.
#[test]
fn a_registry_on_the_three_level_event_gap_fits_it_again() {
    let mut five = 0;
    let model = registry_refits_an_edited_model(|model| {
        let gap = &mut model["comparisons"][8];
        assert_eq!(gap["name"], "event_gap");
        five = gap["levels"].as_array().unwrap().len();
        gap["levels"] = serde_json::json!([
            {"level": 1, "label": "≥ 365 days apart", "m": 0.01, "u": 0.4},
            {"level": 2, "label": "90–364 days apart", "m": 0.14, "u": 0.4},
            {"level": 3, "label": "< 90 days apart", "m": 0.85, "u": 0.2},
        ]);
    });
    assert_eq!(
        model["comparisons"][8]["levels"].as_array().unwrap().len(),
        five
    );
}

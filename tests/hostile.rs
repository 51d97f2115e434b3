//! The committed corpus of hostile inputs (`fixtures/hostile/`, written by its
//! `make_hostile.py`): every case of `cases.toml` run through the binary, checking the exit code,
//! the message, that nothing panics, and that no identifier of the file appears in any output
//! (stdout, stderr, the rejects report, the encodings file).

use std::path::Path;

use serde::Deserialize;

use crate::util::*;

#[derive(Deserialize)]
struct Cases {
    case: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    #[serde(default = "encode")]
    command: String,
    file: String,
    #[serde(default = "mapping")]
    mapping: String,
    exit: i32,
    message: String,
}

fn encode() -> String {
    "encode".into()
}

fn mapping() -> String {
    "mapping.toml".into()
}

/// The identifier cells of an export in the hostile layout (given and family name, birth date,
/// phone: columns 2-5), split on delimiters and line breaks so that a field that swallowed rows
/// gives up its pieces; numbers, codes and header names are not identifiers here.
fn needles(export: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(export);
    for record in reader.byte_records().flatten() {
        for cell in record.iter().skip(1).take(4) {
            let text = String::from_utf8_lossy(cell);
            for piece in text.split([',', '\n', '\r', '"']) {
                let p = piece.trim();
                let plain = p.chars().all(|c| c.is_ascii_digit())
                    || [
                        "INTAKE",
                        "client_id",
                        "first_name",
                        "last_name",
                        "birth_date",
                        "phone",
                        "event",
                    ]
                    .contains(&p);
                if p.chars().count() >= 4 && !plain {
                    out.push(p.to_lowercase());
                }
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

fn leaks(needles: &[String], what: &str, bytes: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(bytes).to_lowercase();
    needles
        .iter()
        .filter(|n| text.contains(n.as_str()))
        .map(|n| format!("{n:?} in {what}"))
        .collect()
}

#[test]
fn every_hostile_input_gets_its_exit_code_and_message_and_leaks_nothing() {
    let dir_in = fixture("hostile");
    let cases: Cases =
        toml::from_str(&std::fs::read_to_string(dir_in.join("cases.toml")).unwrap()).unwrap();
    assert!(cases.case.len() >= 25);
    let tmp = tempfile::tempdir().unwrap();
    let key = key_file(tmp.path());
    let mut failures = Vec::new();
    let mut scanned_needles = 0;
    for (i, c) in cases.case.iter().enumerate() {
        let input = dir_in.join(&c.file);
        let out = tmp.path().join(format!("case{i}.parquet"));
        let o = match c.command.as_str() {
            "encode" => crate::util::encode(
                &dir_in.join(&c.mapping),
                &key,
                &input,
                &out,
                &["--reference-date", "2026-11-22"],
            ),
            "link" => crosswalk(&[
                "link",
                "--out",
                tmp.path().join(format!("run{i}")).to_str().unwrap(),
                input.to_str().unwrap(),
            ]),
            other => panic!("unknown command {other}"),
        };
        let err = stderr(&o);
        let name = format!("{} ({}, {})", c.file, c.command, c.mapping);
        if o.status.code() != Some(c.exit) {
            failures.push(format!(
                "{name}: exit {:?}, expected {}: {err}",
                o.status.code(),
                c.exit
            ));
        }
        if !err.contains(&c.message) {
            failures.push(format!("{name}: stderr lacks {:?}: {err}", c.message));
        }
        if err.contains("panicked") || (c.exit != 0 && !err.starts_with("crosswalk: error: ")) {
            failures.push(format!("{name}: not one clean error line: {err}"));
        }
        let export = std::fs::read(&input).unwrap();
        let needles = if c.command == "encode" {
            needles(&export)
        } else {
            Vec::new()
        };
        scanned_needles += needles.len();
        let mut outputs = vec![
            ("stdout".to_string(), o.stdout.clone()),
            ("stderr".into(), o.stderr.clone()),
        ];
        for p in [out.clone(), out.with_extension("rejects.csv")] {
            if let Ok(bytes) = std::fs::read(&p) {
                outputs.push((p.file_name().unwrap().to_string_lossy().into_owned(), bytes));
            }
        }
        for (what, bytes) in &outputs {
            for l in leaks(&needles, what, bytes) {
                failures.push(format!("{name}: {l}"));
            }
        }
        if c.exit != 0 && c.command == "encode" {
            assert!(
                !Path::new(&out).exists(),
                "{name}: a failed run wrote encodings"
            );
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(
        scanned_needles > 500,
        "only {scanned_needles} identifiers looked for"
    );
}

/// The scan can fail: the identifiers it looks for are in the export itself.
#[test]
fn the_hostile_scan_finds_identifiers_where_they_are() {
    let export = std::fs::read(fixture("hostile/good.csv")).unwrap();
    let needles = needles(&export);
    assert!(needles.len() >= 80, "{}", needles.len());
    assert_eq!(leaks(&needles, "export", &export).len(), needles.len());
}

//! The fuzz targets' bodies: crosswalk's front door, every reader of a file that may come from
//! outside. Each takes arbitrary bytes and must return without panicking, whatever they are;
//! errors are fine (they are the point), a panic, a hang or an abort is a bug.
//!
//! Shared by the cargo-fuzz crate (`tests/fuzz/fuzz_targets/*.rs`, one `fuzz_target!` each) and
//! by `tests/fuzz_corpus.rs`, which replays the committed corpus (`tests/fuzz/corpus/<target>/`)
//! through the same functions on every `cargo test`. How to run the fuzzers: docs/fuzzing.md.

#![allow(dead_code)] // each fuzz binary uses one target

use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use crosswalk::encode::{Encoder, Scratch};
use crosswalk::keys::SecretKey;
use crosswalk::normalize::{self, DatePattern, NameLayout};
use crosswalk::schema::LinkageSchema;
use crosswalk::source::{Extractor, SourceMapping};

/// A fuzz target's body.
pub type Target = fn(&[u8]);

/// Every target, by name: what `tests/fuzz_corpus.rs` replays and `fuzz_targets/` wraps.
pub const TARGETS: &[(&str, Target)] = &[
    ("csv_export", csv_export),
    ("dates", dates),
    ("names", names),
    ("config_toml", config_toml),
    ("clkhash_schema", clkhash_schema),
    ("key_file", key_file),
    ("encodings_file", encodings_file),
    ("clkhash_clks", clkhash_clks),
    ("registry_files", registry_files),
];

/// The source mappings the CSV target chooses from (first byte of the input): between them
/// every mapping option (one-cell names in both layouts, aliases, date patterns, code tables,
/// Windows-1252, other delimiters, ages, units, end dates, trafficking codes).
const MAPPINGS: &[&str] = &[
    include_str!("../../fixtures/encoder/dcf.toml"),
    include_str!("../../fixtures/encoder/police.toml"),
    include_str!("../../fixtures/encoder/cac.toml"),
    include_str!("../../fixtures/encoder/rhtrt.toml"),
    include_str!("../../fixtures/encoder/housing.toml"),
    include_str!("../../fixtures/encoder/mental_health.toml"),
    include_str!("../../fixtures/synth/case_mgmt.toml"),
    include_str!("../../fixtures/synth/housing_b.toml"),
    include_str!("../../fixtures/synth/legal.toml"),
];

/// A panic of the Parquet library inside `crosswalk::io::guard_reader` is a damaged file that
/// crosswalk reports as an error: it must not count as a crash. The fuzzer's own panic hook
/// aborts at once, before any unwinding; this hook passes it every other panic (crosswalk's
/// own, inside a guard or not). Called at the start of every target.
fn guarded_panics_are_errors() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let outer = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !crosswalk::io::is_damaged_file_panic(info) {
                outer(info)
            }
        }));
    });
}

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 22).unwrap_or_default()
}

/// A scratch file for one input (the readers take paths). In the fuzzer's process it is reused
/// per thread; its name keeps the extension readers look at.
fn scratch_file(name: &str, data: &[u8]) -> PathBuf {
    thread_local! {
        static DIR: tempfile::TempDir = tempfile::tempdir().expect("a temporary directory");
    }
    let path = DIR.with(|d| d.path().join(name));
    let mut f = std::fs::File::create(&path).expect("a scratch file");
    f.write_all(data).expect("written");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600));
    }
    path
}

/// Splits `data` at its first NUL byte.
fn split0(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[]),
    }
}

/// An export under one of [`MAPPINGS`]: byte 0 picks the mapping, byte 1 its delimiter and
/// text encoding; the rest is the CSV file. Every row is extracted, normalised and encoded.
pub fn csv_export(data: &[u8]) {
    guarded_panics_are_errors();
    let [pick, dialect, csv @ ..] = data else {
        return;
    };
    let Ok(mut mapping) = SourceMapping::from_toml(
        MAPPINGS[*pick as usize % MAPPINGS.len()],
        Path::new("m.toml"),
    ) else {
        return;
    };
    // Low bits: the delimiter (0 keeps the mapping's); bit 2: Windows-1252 instead of UTF-8.
    let toml = match dialect & 3 {
        1 => Some(";"),
        2 => Some("\t"),
        3 => Some("|"),
        _ => None,
    };
    let mut text = MAPPINGS[*pick as usize % MAPPINGS.len()].to_string();
    if let Some(d) = toml {
        text = format!(
            "delimiter = {d:?}\n{}",
            text.replace("delimiter =", "# delimiter =")
        );
    }
    if dialect & 4 != 0 {
        text = format!(
            "encoding = \"windows-1252\"\n{}",
            text.replace("encoding =", "# encoding =")
        );
    }
    if let Ok(m) = SourceMapping::from_toml(&text, Path::new("m.toml")) {
        mapping = m;
    }
    let path = scratch_file("export.csv", csv);
    let Ok(mut source) =
        crosswalk::io::ExportSource::open(&path, mapping.delimiter_byte(), mapping.encoding)
    else {
        return;
    };
    let Ok(extractor) = Extractor::new(&mapping, source.headers(), today(), &path) else {
        return;
    };
    let schema = LinkageSchema::default_schema();
    let encoder = Encoder::new(&schema, &SecretKey::from_bytes([7; 32]));
    let mut scratch = Scratch::default();
    let mut chunk = Vec::new();
    while let Ok(n) = source.read_chunk(&mut chunk, 256) {
        if n == 0 {
            break;
        }
        for raw in &chunk {
            let cells: Vec<&[u8]> = raw.record.iter().collect();
            let ex = extractor.extract(&cells);
            if !ex.rejected {
                let _ = encoder.encode(&ex.ids, &mut scratch);
                let _ = encoder.record_key(&mapping.agency, &ex.local_id);
            }
        }
    }
}

/// Date patterns and values: the first line holds patterns separated by `|`, every further
/// line is a date cell parsed with them.
pub fn dates(data: &[u8]) {
    guarded_panics_are_errors();
    let text = String::from_utf8_lossy(data);
    let mut lines = text.lines();
    let patterns: Vec<DatePattern> = lines
        .next()
        .unwrap_or("")
        .split('|')
        .filter_map(|p| p.parse().ok())
        .collect();
    for line in lines {
        let _ = normalize::date(line, &patterns, today());
        let _ = normalize::date(line, &patterns, NaiveDate::MAX);
    }
}

/// Names and the other identifier normalisers: every line through the name splitter in both
/// layouts and through each field's normaliser.
pub fn names(data: &[u8]) {
    guarded_panics_are_errors();
    let text = String::from_utf8_lossy(data);
    for line in text.lines() {
        for layout in [NameLayout::FirstLast, NameLayout::LastCommaFirst] {
            if let Ok(mut p) = normalize::split_name(line, layout) {
                p.drop_placeholders();
            }
        }
        let _ = normalize::name(line);
        let _ = normalize::phone(line);
        let _ = normalize::zip(line);
        let _ = normalize::ssn4(line);
        let _ = normalize::street(line);
        let _ = normalize::town(line);
        let _ = normalize::fold(line);
    }
}

/// Both TOML files: the bytes as a linkage schema (and, when valid, an encoder built from it
/// encoding one record) and as a source mapping (and, when valid, resolved against its own
/// column names).
pub fn config_toml(data: &[u8]) {
    guarded_panics_are_errors();
    let Ok(text) = std::str::from_utf8(data) else {
        let _ = crosswalk::schema::LinkageSchema::from_file(&scratch_file("bad.toml", data));
        return;
    };
    if let Ok(schema) = LinkageSchema::from_toml(text, Path::new("schema.toml")) {
        let _ = schema.fingerprint();
        let encoder = Encoder::new(&schema, &SecretKey::from_bytes([7; 32]));
        let mut ids = normalize::Identifiers::default();
        ids.set(crosswalk::schema::Field::GivenName, Some("ANA".into()));
        ids.set(crosswalk::schema::Field::Dob, Some("20090307".into()));
        let _ = encoder.encode(&ids, &mut Scratch::default());
    }
    if let Ok(mapping) = SourceMapping::from_toml(text, Path::new("mapping.toml")) {
        let c = &mapping.columns;
        let mut headers: Vec<String> = c
            .record_id
            .columns()
            .iter()
            .map(|h| h.to_string())
            .collect();
        headers.extend(c.given_name.iter().cloned());
        headers.extend(c.family_name.iter().cloned());
        headers.extend(c.event_code.iter().cloned());
        if let Ok(ex) = Extractor::new(&mapping, &headers, today(), Path::new("x.csv")) {
            let cells: Vec<&[u8]> = headers.iter().map(|h| h.as_bytes()).collect();
            let _ = ex.extract(&cells);
        }
    }
}

/// A clkhash linkage schema (JSON), and when it parses, an encoder over it encoding the rest of
/// the input (after a NUL byte) as comma-separated records.
pub fn clkhash_schema(data: &[u8]) {
    guarded_panics_are_errors();
    let (schema, rows) = split0(data);
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(schema) else {
        return;
    };
    let Ok(schema) = crosswalk::clkhash::ClkhashSchema::from_json(v, Path::new("s.json")) else {
        return;
    };
    let enc = crosswalk::clkhash::ClkhashEncoder::new(schema, b"secret");
    for line in String::from_utf8_lossy(rows).lines().take(64) {
        let record: Vec<&str> = line.split(',').collect();
        let _ = enc.encode(&record);
    }
}

/// A key file.
pub fn key_file(data: &[u8]) {
    guarded_panics_are_errors();
    let _ = SecretKey::read(&scratch_file("agency.key", data));
}

/// An encodings file (Parquet), read and validated as `link` reads it.
pub fn encodings_file(data: &[u8]) {
    guarded_panics_are_errors();
    let _ = crosswalk::io::encodings::read(&scratch_file("enc.parquet", data));
}

/// CLKs in clkhash's formats: byte 0 picks JSON or CSV.
pub fn clkhash_clks(data: &[u8]) {
    guarded_panics_are_errors();
    let [kind, rest @ ..] = data else { return };
    let name = if kind & 1 == 0 {
        "clks.json"
    } else {
        "clks.csv"
    };
    let _ = crosswalk::io::encodings::read(&scratch_file(name, rest));
}

/// The registry's own files and the run manifest: byte 0 picks which the rest is (`CURRENT`,
/// `registry.json`, `evidence.bin`, a batch index, `changelog.parquet`, `run.json`,
/// `entities.parquet`, `events.parquet`).
pub fn registry_files(data: &[u8]) {
    guarded_panics_are_errors();
    let [kind, rest @ ..] = data else { return };
    thread_local! {
        static DIR: tempfile::TempDir = tempfile::tempdir().expect("a temporary directory");
    }
    DIR.with(|d| {
        let dir = d.path();
        let write = |name: &str| {
            let p = dir.join(name);
            std::fs::write(&p, rest).expect("written");
            p
        };
        match kind % 8 {
            0 => {
                write("CURRENT");
                let _ = crosswalk::registry::current_generation(dir);
                let _ = crosswalk::registry::check_is_registry(dir);
                let _ = std::fs::remove_file(dir.join("CURRENT"));
            }
            1 => {
                write("registry.json");
                if let Ok(m) = crosswalk::registry::read_manifest(dir) {
                    let _ = m.lsh.positions();
                }
            }
            2 => {
                let _ = crosswalk::registry::update::read_evidence(&write("evidence.bin"));
            }
            3 => {
                let _ = crosswalk::registry::index::BatchIndex::read(&write("b.index"));
            }
            4 => {
                let _ = crosswalk::registry::update::read_changelog(&write("changelog.parquet"));
            }
            5 => {
                write("run.json");
                let _ = crosswalk::io::run::verify(dir);
                let _ = std::fs::remove_file(dir.join("run.json"));
            }
            6 => {
                write("entities.parquet");
                let _ = crosswalk::io::entities::entity_rows(dir);
            }
            _ => {
                write("events.parquet");
                let _ = crosswalk::io::events::read(dir);
            }
        }
    });
}

//! `crosswalk demo`: the whole agency side on embedded data, in one command.
//!
//! Writes six small agency exports in their house styles (the committed encoder fixtures,
//! embedded in the binary) with their source mappings into `DIR/exports/`, creates a key
//! (`DIR/demo.key`, mode 0600; reused when present), and encodes every export into
//! `DIR/encodings/`. The linkage and report stages join the demo as they are built.

use std::path::{Path, PathBuf};

use chrono::NaiveDate;

use super::encode::{self, EncodeJob, EncodeSummary};
use crate::error::{Error, Result};
use crate::keys::SecretKey;
use crate::schema::LinkageSchema;
use crate::source::SourceMapping;

/// One embedded export: file stem, CSV bytes, mapping TOML.
struct Embedded {
    stem: &'static str,
    csv: &'static [u8],
    mapping: &'static str,
}

macro_rules! embedded {
    ($stem:literal) => {
        Embedded {
            stem: $stem,
            csv: include_bytes!(concat!("../../fixtures/encoder/", $stem, ".csv")),
            mapping: include_str!(concat!("../../fixtures/encoder/", $stem, ".toml")),
        }
    };
}

const EXPORTS: [Embedded; 6] = [
    embedded!("dcf"),
    embedded!("police"),
    embedded!("cac"),
    embedded!("rhtrt"),
    embedded!("housing"),
    embedded!("mental_health"),
];

/// What the demo did.
#[derive(Debug)]
pub struct DemoSummary {
    /// The output directory.
    pub dir: PathBuf,
    /// Key check value of the demo key.
    pub kcv: String,
    /// Per export: the encodings path and the encode summary.
    pub encoded: Vec<(PathBuf, EncodeSummary)>,
}

/// Runs the demo into `dir`. `progress` receives a short line per step.
pub fn run(dir: &Path, today: NaiveDate, progress: &mut dyn FnMut(&str)) -> Result<DemoSummary> {
    let exports = dir.join("exports");
    let encodings = dir.join("encodings");
    for d in [dir, &exports, &encodings] {
        std::fs::create_dir_all(d).map_err(|e| Error::io(d, e))?;
    }
    let key_path = dir.join("demo.key");
    let key = if key_path.exists() {
        SecretKey::read(&key_path)?
    } else {
        let k = SecretKey::generate()?;
        k.write_new(&key_path)?;
        k
    };
    let schema_path = dir.join("schema.toml");
    crate::io::write_atomic(&schema_path, crate::schema::DEFAULT_SCHEMA_TOML.as_bytes())?;
    let schema = LinkageSchema::default_schema();
    let mut encoded = Vec::new();
    for e in &EXPORTS {
        let csv = exports.join(format!("{}.csv", e.stem));
        let toml = exports.join(format!("{}.toml", e.stem));
        crate::io::write_atomic(&csv, e.csv)?;
        crate::io::write_atomic(&toml, e.mapping.as_bytes())?;
        progress(&format!("encoding {}", e.stem));
        let out = encodings.join(format!("{}.parquet", e.stem));
        let job = EncodeJob {
            schema: schema.clone(),
            mapping: SourceMapping::from_toml(e.mapping, &toml)?,
            key: key.clone(),
            input: csv,
            out: out.clone(),
            map_out: Some(exports.join(format!("{}.local-map.parquet", e.stem))),
            rejects: exports.join(format!("{}.rejects.csv", e.stem)),
            threads: 0,
            today,
            chunk_rows: 16 * 1024,
        };
        let summary = encode::run(&job, &mut |_| {})?;
        encoded.push((out, summary));
    }
    Ok(DemoSummary {
        dir: dir.to_path_buf(),
        kcv: key.check_value(),
        encoded,
    })
}

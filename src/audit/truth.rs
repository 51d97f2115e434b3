//! The truth of an audit: what each encoded record really holds.
//!
//! Only the holder of the key and the raw exports can know it: an agency auditing its own
//! export, or anyone auditing a synthetic world. The exports are read again under their source
//! mappings exactly as `crosswalk encode` reads them, each accepted row is encoded again, and
//! the encodings' rows are matched by record key and CLK, so the truth of a row is the
//! normalised identifiers that produced its bits. Nothing here leaves the machine it runs on:
//! the audit prints rates and counts only.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rustc_hash::FxHashMap;

use crate::encode::{Encoder, Scratch};
use crate::error::{Error, Result};
use crate::io::ExportSource;
use crate::keys::SecretKey;
use crate::schema::{Field, LinkageSchema};
use crate::source::{Extractor, SourceMapping};

/// What one encoded record truly holds. Its `Debug` shows no value.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct TruthRow {
    /// Normalised given name as encoded.
    pub given: Option<String>,
    /// Normalised family name as encoded.
    pub family: Option<String>,
    /// Birth date as encoded (`YYYYMMDD`).
    pub dob: Option<String>,
    /// The true person: from `truth/records.csv` when the world has one, else agency and local
    /// id (a provider's client id is one person).
    pub person: String,
}

impl std::fmt::Debug for TruthRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TruthRow(<redacted>)")
    }
}

/// Truth rows by record key and CLK bytes.
pub type TruthMap = FxHashMap<(String, Vec<u8>), TruthRow>;

/// Where the truth comes from: a directory laid out like a `crosswalk synth` world
/// (`mappings/NAME.toml` beside `exports/NAME.csv`, optionally `truth/records.csv`), and the key
/// the encodings were made with.
#[derive(Debug)]
pub struct TruthSource {
    /// The world directory.
    pub dir: PathBuf,
    /// The shared secret key.
    pub key: SecretKey,
}

/// `truth/records.csv`, when the directory has one: `(agency, local_id) -> person`.
fn true_persons(dir: &Path) -> Result<Option<BTreeMap<(String, String), String>>> {
    let truth = dir.join("truth");
    if !truth.join("records.csv").exists() {
        return Ok(None);
    }
    Ok(Some(
        crate::evaluate::read_truth(&truth)?
            .into_iter()
            .map(|(k, p)| (k, p.to_string()))
            .collect(),
    ))
}

/// Reads the truth of every export of `src.dir` whose agency is in `agencies`.
pub fn read(
    src: &TruthSource,
    schema: &LinkageSchema,
    part: Option<crate::schema::Part>,
    agencies: &[String],
    today: chrono::NaiveDate,
) -> Result<TruthMap> {
    let persons = true_persons(&src.dir)?;
    let maps_dir = src.dir.join("mappings");
    let mut entries: Vec<PathBuf> = std::fs::read_dir(&maps_dir)
        .map_err(|e| Error::io(&maps_dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    entries.sort();
    // With a part, records are found by their part (the audit attacks those); the pseudonym
    // comes from the record encoder either way.
    let encoder = Encoder::new(schema, &src.key);
    let part_encoder =
        match part {
            None => None,
            Some(p) => Some(Encoder::for_part(schema, &src.key, p).ok_or_else(|| {
                Error::config("<schema>", format!("the schema writes no {p} part"))
            })?),
        };
    let mut part_scratch = Scratch::default();
    let nicknames = schema.reads_nicknames();
    let mut out = TruthMap::default();
    let mut seen = Vec::new();
    // Accepted rows, and those whose record truth/records.csv does not name.
    let (mut rows, mut unexplained) = (0usize, 0usize);
    for mpath in entries {
        let mapping = SourceMapping::from_file(&mpath)?;
        if !agencies.contains(&mapping.agency) {
            continue;
        }
        let stem = mpath.file_stem().unwrap_or_default();
        let export = ["csv", "parquet"]
            .iter()
            .map(|x| src.dir.join("exports").join(stem).with_extension(x))
            .find(|p| p.exists())
            .ok_or_else(|| {
                Error::input(
                    &mpath,
                    "no export of the same name (exports/NAME.csv or .parquet) beside this mapping",
                )
            })?;
        let mut source = ExportSource::open(&export, mapping.delimiter_byte(), mapping.encoding)?;
        let extractor = Extractor::new(&mapping, source.headers(), today, &export)?;
        let mut chunk = Vec::new();
        let mut scratch = Scratch::default();
        loop {
            let n = source.read_chunk(&mut chunk, 8192)?;
            if n == 0 {
                break;
            }
            for raw in &chunk[..n] {
                let cells: Vec<&[u8]> = raw.record.iter().collect();
                let mut ex = extractor.extract(&cells);
                if ex.rejected {
                    continue;
                }
                // As the encode job reads them.
                if nicknames {
                    crate::normalize::nicknames::read_nicknames(&mut ex.ids);
                }
                let clk = match &part_encoder {
                    Some(pe) => match pe.encode_present(&ex.ids, &mut part_scratch) {
                        Some(c) => c,
                        None => continue, // no such part: not attacked
                    },
                    None => encoder.encode(&ex.ids, &mut scratch),
                };
                rows += 1;
                let key = encoder.record_key(&mapping.agency, &ex.local_id);
                let person = match persons
                    .as_ref()
                    .map(|m| m.get(&(mapping.agency.clone(), ex.local_id.clone())))
                {
                    Some(Some(p)) => p.clone(),
                    Some(None) => {
                        unexplained += 1;
                        format!("{}/{}", mapping.agency, ex.local_id)
                    }
                    None => format!("{}/{}", mapping.agency, ex.local_id),
                };
                out.insert(
                    (key, clk.into_bytes()),
                    TruthRow {
                        given: ex.ids.get(Field::GivenName).map(str::to_string),
                        family: ex.ids.get(Field::FamilyName).map(str::to_string),
                        dob: ex.ids.get(Field::Dob).map(str::to_string),
                        person,
                    },
                );
            }
        }
        seen.push(mapping.agency.clone());
    }
    if let Some(missing) = agencies.iter().find(|a| !seen.contains(a)) {
        return Err(Error::input(
            &maps_dir,
            format!("no mapping for agency {missing:?} of the encodings: the truth needs every agency's export and mapping"),
        ));
    }
    if unexplained * 100 > rows {
        return Err(Error::input(
            src.dir.join("truth").join("records.csv"),
            format!(
                "names the person of only {} of {} records of the exports: it is not these \
                 exports' truth",
                rows - unexplained,
                rows
            ),
        ));
    }
    Ok(out)
}

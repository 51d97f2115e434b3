//! A linkage run directory as one unit: what it may hold, and `run.json`, the manifest that ties
//! its files together.
//!
//! `crosswalk link --out RUN_DIR` writes the whole run (entities, events, diagnostics, then the
//! manifest) into a staging directory beside `RUN_DIR` and swaps it in whole
//! ([`super::AtomicDir`]), so a killed run leaves the previous run as it was. The manifest names
//! each file of the run with its size and BLAKE3 digest; `crosswalk report` and `crosswalk
//! evaluate` check it ([`verify`]) before they read anything, so files of two runs mixed by
//! hand (or a partial copy) are refused instead of reported as one run.
//!
//! ```text
//! RUN_DIR/
//!   run.json              {"format": "crosswalk-run/1", "files": {name: {bytes, blake3}}}
//!   entities.parquet      agency, record_key, person_id
//!   events.parquet        every input row's event facts with its person
//!   diagnostics.json      counts, score histogram, cluster sizes, timings
//!   aggregates/           written later by `crosswalk report` (not in the manifest)
//!   aggregates-internal/  idem, on request
//!   report.html           idem
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The manifest's file name.
pub const MANIFEST: &str = "run.json";

/// Format tag of the manifest.
pub const FORMAT: &str = "crosswalk-run/1";

/// The files `crosswalk link` writes into a run directory, all listed in the manifest.
pub const RUN_FILES: [&str; 3] = ["entities.parquet", "events.parquet", "diagnostics.json"];

/// What `crosswalk report` adds to a run directory.
pub const REPORT_ENTRIES: [&str; 3] = ["aggregates", "aggregates-internal", "report.html"];

/// One file of the run as the manifest records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Size in bytes.
    pub bytes: u64,
    /// BLAKE3 digest, 64 hex digits.
    pub blake3: String,
}

/// `run.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`FORMAT`].
    pub format: String,
    /// Every file of the run by name.
    pub files: BTreeMap<String, FileEntry>,
}

impl Manifest {
    /// A short id of the run's result: the first 16 hex digits of the BLAKE3 hash of
    /// `"<entities digest>\n<events digest>"` (the two digests as `run.json` writes them).
    /// The same inputs give the same id at any thread count (`diagnostics.json`, which holds
    /// timings, is left out). Tables computed from the run carry it, so a reader can tell
    /// which run they came from.
    pub fn run_id(&self) -> String {
        let digest = |f: &str| self.files.get(f).map_or("", |e| e.blake3.as_str());
        let text = format!(
            "{}\n{}",
            digest("entities.parquet"),
            digest("events.parquet")
        );
        blake3::hash(text.as_bytes()).to_hex()[..16].to_string()
    }
}

/// Whether an entry of a directory is something a run directory holds (so that replacing the
/// directory loses nothing crosswalk did not write).
pub fn is_run_entry(name: &str) -> bool {
    name == MANIFEST || RUN_FILES.contains(&name) || REPORT_ENTRIES.contains(&name)
}

fn entry_of(path: &Path) -> Result<FileEntry> {
    let bytes = std::fs::metadata(path)
        .map_err(|e| Error::io(path, e))?
        .len();
    Ok(FileEntry {
        bytes,
        blake3: super::file_digest(path)?.to_hex().to_string(),
    })
}

/// Writes `dir/run.json` for the [`RUN_FILES`] in `dir` (all must exist), atomically.
pub fn write_manifest(dir: &Path) -> Result<Manifest> {
    let files = RUN_FILES
        .iter()
        .map(|name| Ok((name.to_string(), entry_of(&dir.join(name))?)))
        .collect::<Result<BTreeMap<_, _>>>()?;
    let m = Manifest {
        format: FORMAT.to_string(),
        files,
    };
    let text = serde_json::to_string_pretty(&m)
        .map_err(|e| Error::io(dir, std::io::Error::other(e.to_string())))?
        + "\n";
    super::write_atomic(&dir.join(MANIFEST), text.as_bytes())?;
    Ok(m)
}

/// Checks the run directory `dir` against its manifest: every file listed is there with the
/// size and digest recorded. Returns the manifest, or `None` for a directory without one (a
/// registry generation, or a run written by a crosswalk from before manifests).
///
/// # Errors
/// [`crate::ErrorKind::Encoding`] naming the first file that does not belong to the run, and
/// what to do.
pub fn verify(dir: &Path) -> Result<Option<Manifest>> {
    let path = dir.join(MANIFEST);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(&path, e)),
    };
    let m: Manifest = serde_json::from_str(&text)
        .map_err(|_| Error::encoding(&path, "damaged run manifest; run `crosswalk link` again"))?;
    if m.format != FORMAT {
        return Err(Error::encoding(
            &path,
            format!(
                "run format {:?} is not {FORMAT}, the only one this crosswalk reads; run \
                 `crosswalk link` again",
                m.format
            ),
        ));
    }
    for (name, want) in &m.files {
        if name.contains('/') || name.contains('\\') || name.starts_with('.') {
            return Err(Error::encoding(
                &path,
                "damaged run manifest (a file name is not plain)",
            ));
        }
        let file = dir.join(name);
        let got = match std::fs::metadata(&file) {
            Ok(md) if md.len() != want.bytes => None,
            Ok(_) => Some(entry_of(&file)?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::encoding(
                    &file,
                    "missing from the run directory (the manifest run.json lists it); the \
                     directory is not a complete run: run `crosswalk link` again",
                ))
            }
            Err(e) => return Err(Error::io(&file, e)),
        };
        if got.as_ref() != Some(want) {
            return Err(Error::encoding(
                &file,
                "does not belong to this run (its size or digest differs from what run.json \
                 records): files of different runs were mixed, or one was changed; run \
                 `crosswalk link` again",
            ));
        }
    }
    Ok(Some(m))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (i, f) in RUN_FILES.iter().enumerate() {
            std::fs::write(dir.path().join(f), format!("content {i}")).unwrap();
        }
        dir
    }

    #[test]
    fn a_complete_run_verifies_and_a_mixed_one_does_not() {
        let dir = run_dir();
        assert!(verify(dir.path()).unwrap().is_none());
        let m = write_manifest(dir.path()).unwrap();
        assert_eq!(verify(dir.path()).unwrap(), Some(m.clone()));
        assert_eq!(m.run_id().len(), 16);
        // Same size, other content: another run's file.
        std::fs::write(dir.path().join("events.parquet"), "content 7").unwrap();
        let err = verify(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("events.parquet") && err.contains("does not belong"),
            "{err}"
        );
        std::fs::write(dir.path().join("events.parquet"), "content 1").unwrap();
        verify(dir.path()).unwrap();
        std::fs::remove_file(dir.path().join("diagnostics.json")).unwrap();
        let err = verify(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("diagnostics.json") && err.contains("missing"),
            "{err}"
        );
    }

    #[test]
    fn a_damaged_manifest_is_an_error_not_a_panic() {
        let dir = run_dir();
        for text in [
            "",
            "{",
            "[]",
            r#"{"format":"crosswalk-run/1","files":{"../x":{"bytes":1,"blake3":"00"}}}"#,
        ] {
            std::fs::write(dir.path().join(MANIFEST), text).unwrap();
            assert!(verify(dir.path()).is_err(), "{text}");
        }
    }
}

//! The monthly registry: every encodings batch linked so far, the current persons with stable
//! ids, and a changelog, updated crash-safely one generation at a time (issue #6).
//!
//! ```text
//! REG/
//!   LOCK                        held (flock) for the whole run; a dead process frees it
//!   CURRENT                     "gen-000003": the current generation, replaced atomically
//!   batches/<id>.parquet        verbatim copy of an added encodings file (id: BLAKE3 of its bytes)
//!   batches/<id>.index          its records, distinct CLKs and frozen LSH band keys
//!   generations/gen-000003/     one immutable directory per successful run:
//!     registry.json             batches, frozen settings and LSH, next id, per-run history
//!     entities.parquet          agency, record_key, person_id (sorted by agency, record_key)
//!     evidence.bin              record pairs that count as evidence, with Dice and overlap
//!     changelog.parquet         every merge, split and retirement so far
//!     diagnostics.json          counts and timings of the run that made it
//! ```
//!
//! **Crash safety.** A run writes new batch files (content-addressed, so never over anything
//! in use), builds the next generation in a staging directory, renames it into
//! `generations/`, and only then replaces `CURRENT` (temporary file, fsync, rename, directory
//! fsync). Until that last rename the registry's state, which is what `CURRENT` names, is
//! untouched; a killed run leaves at most unreferenced files, which the next run removes
//! under the lock before it starts ([`Registry::open`]).
//!
//! **Stable ids** ([`update`]): new records are compared with the old ones and with each other
//! only, and only persons the new evidence touches are re-clustered. Ids pass to the
//! re-clustered persons by record overlap, the oldest id surviving a merge (docs/registry.md).

pub mod ids;
pub mod index;
mod relink;
pub mod update;

use std::collections::BTreeSet;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::block::LshParams;
use crate::error::{Error, Result};
use crate::io::{is_temp_name, write_atomic};

/// Format tag of `registry.json`.
pub const FORMAT: &str = "crosswalk-registry/2";

/// Linkage settings, frozen when the registry is created (changing them would change persons
/// that no new evidence touched).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// Dice threshold.
    pub threshold: f64,
    /// Cluster cohesion.
    pub cohesion: f64,
    /// Containment (above 1: off).
    pub containment: f64,
    /// Lone-record overlap (`None`: off).
    pub orphan_overlap: Option<f64>,
    /// Lone-record margin.
    pub orphan_margin: f64,
    /// `Some`: the registry links by the match model (fs), whose clusters merge while their
    /// average match probability is at least this; the record-level settings above are then
    /// unused, except `threshold` (the record-CLK Dice of a candidate). `None` (and absent
    /// from registries made before the model): the record-level rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_average: Option<f64>,
}

impl Default for Settings {
    fn default() -> Self {
        use crate::link::*;
        Settings {
            threshold: DEFAULT_THRESHOLD,
            cohesion: DEFAULT_COHESION,
            containment: DEFAULT_CONTAINMENT,
            orphan_overlap: Some(DEFAULT_ORPHAN_OVERLAP),
            orphan_margin: DEFAULT_ORPHAN_MARGIN,
            min_average: None,
        }
    }
}

/// The frozen band-key function: [`LshParams`] and the informative bit positions found at the
/// registry's first run (hex bitmap, bit `p` of byte `p / 8` set for an informative position).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrozenLsh {
    /// Bands.
    pub bands: usize,
    /// MinHashes per band.
    pub rows: usize,
    /// Permutation seed.
    pub seed: u64,
    /// MinHash pool.
    pub pool: usize,
    /// Frequent-bit cap used at the first run (per mille).
    pub max_bit_share_permille: u32,
    /// Informative positions, as a hex bitmap.
    pub informative: String,
}

impl FrozenLsh {
    /// Freezes `params` with the `informative` positions of a `bits`-bit CLK.
    pub fn new(params: LshParams, informative: &[u16], bits: usize) -> FrozenLsh {
        let mut map = vec![0u8; bits.div_ceil(8)];
        for &p in informative {
            map[p as usize / 8] |= 1 << (p % 8);
        }
        FrozenLsh {
            bands: params.bands,
            rows: params.rows,
            seed: params.seed,
            pool: params.pool,
            max_bit_share_permille: params.max_bit_share_permille,
            informative: map.iter().map(|b| format!("{b:02x}")).collect(),
        }
    }

    /// The parameters.
    pub fn params(&self) -> LshParams {
        LshParams {
            bands: self.bands,
            rows: self.rows,
            seed: self.seed,
            pool: self.pool,
            max_bit_share_permille: self.max_bit_share_permille,
        }
    }

    /// The informative positions (`None` if the bitmap is damaged).
    pub fn positions(&self) -> Option<Vec<u16>> {
        let bytes: Option<Vec<u8>> = (0..self.informative.len() / 2)
            .map(|i| u8::from_str_radix(self.informative.get(2 * i..2 * i + 2)?, 16).ok())
            .collect();
        let bytes = bytes?;
        Some(
            (0..bytes.len() * 8)
                .filter(|&p| bytes[p / 8] & (1 << (p % 8)) != 0)
                .map(|p| p as u16)
                .collect(),
        )
    }
}

/// One encodings file in the registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Batch {
    /// BLAKE3 of the file's bytes (32 hex digits).
    pub id: String,
    /// The file name it was added from (no directory).
    pub source_name: String,
    /// Agency.
    pub agency: String,
    /// Rows.
    pub rows: u64,
    /// Distinct records.
    pub records: u64,
    /// Generation that added it.
    pub added_generation: u32,
    /// Label of that generation.
    pub added_label: String,
}

/// What one generation did: the per-month view of the registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct HistoryEntry {
    /// Generation number.
    pub generation: u32,
    /// Its label (e.g. the month, `2026-03`).
    pub label: String,
    /// Batches added.
    pub batches_added: Vec<String>,
    /// Batches withdrawn.
    pub batches_withdrawn: Vec<String>,
    /// Records in the registry after the run.
    pub records: u64,
    /// Persons after the run (cumulative).
    pub persons: u64,
    /// Records new to the registry in this run.
    pub new_records: u64,
    /// Persons whose id was first issued in this run.
    pub new_persons: u64,
    /// Ids retired by merges.
    pub merged: u64,
    /// Ids issued to parts split off an existing person.
    pub split: u64,
    /// Ids retired because all their records were withdrawn.
    pub retired: u64,
    /// Existing persons re-clustered (touched by new evidence or a withdrawal).
    pub persons_reclustered: u64,
}

/// `registry.json`: the state of one generation (everything but its tables).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`FORMAT`].
    pub format: String,
    /// Generation number (1, 2, ...).
    pub generation: u32,
    /// Label of the run that made it.
    pub label: String,
    /// Linkage-schema fingerprint every batch carries.
    pub schema_fingerprint: String,
    /// Key check value every batch carries.
    pub kcv: String,
    /// CLK length.
    pub clk_bits: usize,
    /// Frozen linkage settings.
    pub settings: Settings,
    /// Frozen band-key function.
    pub lsh: FrozenLsh,
    /// Number of the next person id to issue.
    pub next_person: u32,
    /// Batches, in the order they were added.
    pub batches: Vec<Batch>,
    /// One entry per generation so far.
    pub history: Vec<HistoryEntry>,
    /// A registry on the match model: the model section of its first generation's
    /// `diagnostics.json`, whose `m` and `u` every later run uses as they are (λ is fitted
    /// again on each run's records); while they are the built-in model's (`parameters_source`
    /// `built-in`: the first run was too small to fit), each run fits again and the first that
    /// can stores its own. Absent for the rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<serde_json::Value>,
}

/// Name of generation `g`'s directory.
pub fn generation_name(g: u32) -> String {
    format!("gen-{g:06}")
}

/// A person id's text form.
pub fn person_id(n: u32) -> String {
    format!("P-{n:06}")
}

/// An open registry: its directory, held locked for the life of this value.
#[derive(Debug)]
pub struct Registry {
    dir: PathBuf,
    /// The lock file; the lock is released when it is closed (or the process dies).
    _lock: File,
}

impl Registry {
    /// Opens the registry at `dir` and takes its lock, or fails with
    /// [`crate::ErrorKind::Busy`] if another run holds it. A directory that does not exist or
    /// is empty becomes a new registry (`CURRENT` naming generation 0); any other directory
    /// must be a registry, with a readable `CURRENT` naming a generation that exists, or it is
    /// refused before anything in it is touched ([`check_is_registry`]).
    ///
    /// Then removes what a killed run may have left, and only what crosswalk can prove it
    /// wrote (`Registry::clean`): staging directories of its own file names, generations
    /// newer than `CURRENT` whose manifest says so, its temporary files, and batch files no
    /// generation up to `CURRENT` refers to whose content matches their name. Anything else
    /// (a backup, a file put there by hand) is left alone.
    pub fn open(dir: &Path) -> Result<Registry> {
        let fresh = check_is_registry(dir)?;
        if fresh {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        let path = dir.join("LOCK");
        let mut lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let holder = std::fs::read_to_string(&path).unwrap_or_default();
                let holder = holder.trim();
                return Err(Error::busy(
                    dir,
                    format!(
                        "the registry is in use by another crosswalk run{}; wait for it to finish \
                         and run again (a run that died has released it already)",
                        if holder.is_empty() {
                            String::new()
                        } else {
                            format!(" (process {holder})")
                        }
                    ),
                ));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(Error::io(&path, e)),
        }
        lock.set_len(0).map_err(|e| Error::io(&path, e))?;
        writeln!(lock, "{}", std::process::id()).map_err(|e| Error::io(&path, e))?;
        // Under the lock, look again: another run may have created the registry meanwhile.
        if check_is_registry(dir)? {
            write_atomic(
                &dir.join("CURRENT"),
                format!("{}\n", generation_name(0)).as_bytes(),
            )?;
            sync_dir(dir)?;
        }
        for sub in ["batches", "generations"] {
            std::fs::create_dir_all(dir.join(sub)).map_err(|e| Error::io(dir.join(sub), e))?;
        }
        let reg = Registry {
            dir: dir.to_path_buf(),
            _lock: lock,
        };
        reg.clean()?;
        Ok(reg)
    }

    /// The registry directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The current generation number (0: empty registry).
    pub fn current(&self) -> Result<u32> {
        current_generation(&self.dir)
    }

    /// The directory of generation `g`.
    pub fn generation_dir(&self, g: u32) -> PathBuf {
        self.dir.join("generations").join(generation_name(g))
    }

    /// Path of a batch file (`ext`: `parquet` or `index`).
    pub fn batch_path(&self, id: &str, ext: &str) -> PathBuf {
        self.dir.join("batches").join(format!("{id}.{ext}"))
    }

    /// Removes what a killed run may have left (see [`Registry::open`]); never a file that
    /// crosswalk cannot prove it wrote.
    fn clean(&self) -> Result<()> {
        let current = self.current()?;
        // Generations above CURRENT: one (the next) is what a run killed between its two
        // renames leaves; more mean CURRENT was moved back by hand, and those are not ours to
        // remove.
        let above: Vec<u32> = committed_generations(&self.dir)
            .into_iter()
            .filter(|&g| g > current)
            .collect();
        if above.len() > 1 || above.first().is_some_and(|&g| g != current + 1) {
            let names: Vec<String> = above.iter().map(|&g| generation_name(g)).collect();
            return Err(Error::config(
                &self.dir,
                format!(
                    "CURRENT names {}, but the registry holds later generations ({}); a run \
                     would have to remove them, so nothing was changed. To go back to {}, move \
                     the later generations out of generations/ first (they stay a backup); to \
                     keep them, point CURRENT at the newest",
                    generation_name(current),
                    names.join(", "),
                    generation_name(current)
                ),
            ));
        }
        let mut keep: BTreeSet<String> = BTreeSet::new();
        let gens = self.dir.join("generations");
        for entry in std::fs::read_dir(&gens).map_err(|e| Error::io(&gens, e))? {
            let entry = entry.map_err(|e| Error::io(&gens, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            match parse_generation_name(&name) {
                Some(g) if g <= current => {
                    let m = read_manifest(&entry.path())?;
                    keep.extend(m.batches.into_iter().map(|b| b.id));
                }
                // A generation a killed run renamed into place but did not commit.
                Some(g) if read_manifest(&entry.path()).is_ok_and(|m| m.generation == g) => {
                    remove_any(&entry.path())?
                }
                Some(_) => {}
                None if is_staging_dir(&entry.path(), &name) => remove_any(&entry.path())?,
                None if is_temp_name(&name) => remove_any(&entry.path())?,
                None => {}
            }
        }
        let batches = self.dir.join("batches");
        for entry in std::fs::read_dir(&batches).map_err(|e| Error::io(&batches, e))? {
            let entry = entry.map_err(|e| Error::io(&batches, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let ours = match name.split_once('.') {
                Some((id, ext)) if is_batch_id(id) && !keep.contains(id) => match ext {
                    "parquet" => std::fs::read(entry.path())
                        .is_ok_and(|bytes| blake3::hash(&bytes).to_hex()[..32] == *id),
                    "index" => index::BatchIndex::is_batch_index(&entry.path()),
                    _ => false,
                },
                _ => is_temp_name(&name),
            };
            if ours {
                remove_any(&entry.path())?;
            }
        }
        for entry in std::fs::read_dir(&self.dir).map_err(|e| Error::io(&self.dir, e))? {
            let entry = entry.map_err(|e| Error::io(&self.dir, e))?;
            if is_temp_name(&entry.file_name().to_string_lossy()) {
                remove_any(&entry.path())?;
            }
        }
        Ok(())
    }

    /// Makes generation `g`, fully written in `staging`, the current one: renames it into
    /// `generations/`, then replaces `CURRENT`. Directories are fsynced so that the new state
    /// survives a power cut as well as a killed process.
    pub fn commit(&self, staging: &Path, g: u32) -> Result<()> {
        let dest = self.generation_dir(g);
        std::fs::rename(staging, &dest).map_err(|e| Error::io(&dest, e))?;
        sync_dir(&self.dir.join("generations"))?;
        pause("generation");
        write_atomic(
            &self.dir.join("CURRENT"),
            format!("{}\n", generation_name(g)).as_bytes(),
        )?;
        sync_dir(&self.dir)?;
        pause("current");
        Ok(())
    }
}

/// Whether `dir` may be opened as a registry: `Ok(true)` when it must be created (it does not
/// exist, is empty, or holds only what a run that died before its first commit leaves: `LOCK`,
/// temporary files, empty `batches/` and `generations/`), `Ok(false)` when it is a registry whose
/// `CURRENT` names a generation that exists, and an error naming what is wrong otherwise. Reads
/// only; nothing is written or removed.
///
/// A directory with files but no `CURRENT` is refused, whatever it holds: a registry that lost
/// its `CURRENT` (deleted, or a partial copy) would otherwise start again from nothing, and a
/// directory that is not a registry holds someone else's files.
pub fn check_is_registry(dir: &Path) -> Result<bool> {
    let entries: Vec<String> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect::<std::io::Result<_>>()
            .map_err(|e| Error::io(dir, e))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => {
            return Err(Error::config(
                dir,
                "--registry names a file, not a directory; give the registry's directory \
                 (a new or empty one for a new registry)",
            ))
        }
        Err(e) => return Err(Error::io(dir, e)),
    };
    // What a run that died before its first commit may leave is still a new registry: the
    // lock, temporaries, empty subdirectories.
    let empty_dir =
        |name: &str| std::fs::read_dir(dir.join(name)).is_ok_and(|mut rd| rd.next().is_none());
    if entries.iter().all(|e| {
        e == "LOCK" || is_temp_name(e) || ((e == "batches" || e == "generations") && empty_dir(e))
    }) {
        return Ok(true);
    }
    if !entries.iter().any(|e| e == "CURRENT") {
        let gens = committed_generations(dir);
        if let Some(&newest) = gens.last() {
            return Err(Error::encoding(
                dir,
                format!(
                    "the registry's CURRENT file is missing, but it holds {} generation(s), the \
                     newest {}; nothing was changed. A run would start the registry again from \
                     nothing, so crosswalk stops. Restore CURRENT from a backup, or write the \
                     name of the generation to continue from into it (for the newest: \
                     `echo {} > {}`) and run again",
                    gens.len(),
                    generation_name(newest),
                    generation_name(newest),
                    dir.join("CURRENT").display()
                ),
            ));
        }
        let looks_like_one = entries
            .iter()
            .any(|e| e == "batches" || e == "generations" || e == "LOCK");
        return Err(Error::config(
            dir,
            if looks_like_one {
                "this looks like a crosswalk registry without its CURRENT file and without a \
                 complete generation (or one whose first run never finished); nothing was \
                 changed. Restore it from a backup, or move its batches/ and generations/ \
                 aside and start a new registry in an empty directory"
                    .to_string()
            } else {
                format!(
                    "not a crosswalk registry (no CURRENT file) and not empty ({} entries); \
                     nothing was changed. Give a registry's directory, or a new or empty \
                     directory for a new registry",
                    entries.len()
                )
            },
        ));
    }
    let g = current_generation(dir)?;
    if g > 0 {
        let gen_dir = dir.join("generations").join(generation_name(g));
        if !gen_dir.join("registry.json").is_file() {
            return Err(Error::encoding(
                dir,
                format!(
                    "CURRENT names {}, but generations/{}/registry.json is missing; nothing was \
                     changed. Restore the registry from a backup",
                    generation_name(g),
                    generation_name(g)
                ),
            ));
        }
    }
    Ok(false)
}

/// Generation numbers under `dir/generations` that have a `registry.json`, ascending.
fn committed_generations(dir: &Path) -> Vec<u32> {
    let mut gens: Vec<u32> = std::fs::read_dir(dir.join("generations"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let g = parse_generation_name(&e.file_name().to_string_lossy())?;
            e.path().join("registry.json").is_file().then_some(g)
        })
        .collect();
    gens.sort_unstable();
    gens
}

/// `gen-000003` -> 3; `None` for any other name (`gen-000003.bak`, `gen-3`).
fn parse_generation_name(name: &str) -> Option<u32> {
    let digits = name.strip_prefix("gen-")?;
    (digits.len() == 6 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

/// A batch id: 32 lowercase hex digits.
fn is_batch_id(s: &str) -> bool {
    crate::io::is_hex32(s)
}

/// The files a generation directory holds (and its writers' temporaries).
const GENERATION_FILES: [&str; 6] = [
    "registry.json",
    "entities.parquet",
    "evidence.bin",
    "changelog.parquet",
    "diagnostics.json",
    "events.parquet",
];

/// A staging directory of a registry run (`.staging-gen-000004-PID`) holding nothing but a
/// generation's files.
fn is_staging_dir(path: &Path, name: &str) -> bool {
    let Some(rest) = name.strip_prefix(".staging-") else {
        return false;
    };
    let well_named = rest.split_once('-').is_some_and(|(_, r)| {
        r.split_once('-').is_some_and(|(g, pid)| {
            parse_generation_name(&format!("gen-{g}")).is_some()
                && !pid.is_empty()
                && pid.bytes().all(|b| b.is_ascii_digit())
        })
    });
    well_named
        && std::fs::read_dir(path).is_ok_and(|rd| {
            rd.flatten().all(|e| {
                let n = e.file_name().to_string_lossy().into_owned();
                e.file_type().is_ok_and(|t| t.is_file())
                    && (GENERATION_FILES.contains(&n.as_str()) || is_temp_name(&n))
            })
        })
}

/// The current generation of the registry at `dir` (0 when it has none).
pub fn current_generation(dir: &Path) -> Result<u32> {
    let path = dir.join("CURRENT");
    match std::fs::read_to_string(&path) {
        Ok(s) => parse_generation_name(s.trim()).ok_or_else(|| {
            Error::encoding(
                &path,
                "damaged: expected a generation name such as gen-000001",
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(Error::io(&path, e)),
    }
}

/// The current generation's directory of the registry at `dir`, if it has one.
pub fn current_dir(dir: &Path) -> Result<Option<PathBuf>> {
    let g = current_generation(dir)?;
    Ok((g > 0).then(|| dir.join("generations").join(generation_name(g))))
}

/// Whether the registry at `dir` links by the match model (`Some(true)`) or by the record-level
/// rules (`Some(false)`); `None` when it has no generation yet or cannot be read (a run then
/// says why). Read without the lock: the run checks its settings again under it.
pub fn links_by_model(dir: &Path) -> Option<bool> {
    let gen_dir = current_dir(dir).ok()??;
    Some(read_manifest(&gen_dir).ok()?.settings.min_average.is_some())
}

/// Reads `registry.json` of a generation directory.
pub fn read_manifest(gen_dir: &Path) -> Result<Manifest> {
    let path = gen_dir.join("registry.json");
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    let m: Manifest = serde_json::from_str(&text)
        .map_err(|e| Error::encoding(&path, format!("not a crosswalk registry manifest ({e})")))?;
    if m.format != FORMAT {
        return Err(Error::encoding(
            &path,
            format!(
                "registry format {} is not {FORMAT}, the only one this crosswalk reads (link the \
                 files under the registry's batches/ into a new registry)",
                m.format
            ),
        ));
    }
    Ok(m)
}

fn remove_any(path: &Path) -> Result<()> {
    let r = if path.is_dir() {
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_file(path)
    };
    r.map_err(|e| Error::io(path, e))
}

pub use crate::io::{pause, sync_dir, PAUSE_ENV};

/// The directory `crosswalk report` and `crosswalk evaluate` should read for `dir`: `dir`
/// itself for a run directory; for a registry, its current generation, where the events of
/// every batch with their persons are first written to `events.parquet` (once; atomically)
/// if they are not there yet.
pub fn as_run(dir: &Path) -> Result<PathBuf> {
    if !dir.join("CURRENT").exists() {
        return Ok(dir.to_path_buf());
    }
    let gen_dir = current_dir(dir)?
        .ok_or_else(|| Error::config(dir, "the registry has no generation yet"))?;
    let events = gen_dir.join("events.parquet");
    if events.exists() {
        return Ok(gen_dir);
    }
    let manifest = read_manifest(&gen_dir)?;
    let files: Vec<crate::io::encodings::Encodings> = manifest
        .batches
        .iter()
        .map(|b| crate::io::encodings::read(&dir.join("batches").join(format!("{}.parquet", b.id))))
        .collect::<Result<_>>()?;
    let persons: std::collections::HashMap<(String, String), String> =
        crate::io::entities::read_entities(&gen_dir)?;
    crate::io::events::write_from_encodings(&events, &files, &|a, k| {
        persons
            .get(&(a.to_string(), k.to_string()))
            .map(|p| p.as_str())
    })?;
    Ok(gen_dir)
}

//! `crosswalk synth`: a synthetic multi-agency world with ground truth.
//!
//! Nobody can hand the project real victim records, so this module builds a population shaped by
//! the taskforce's report (../shared/domain.md), walks each person through the journey
//! (identification → screening → referral → immediate → transitional → long-term services) with
//! drop-off at every stage, and writes what each agency would have recorded, in that agency's
//! house style, with recording errors at plausible rates (docs/synth.md). Beside the exports it
//! writes the linkage schema, each agency's source mapping, and `truth/`.
//!
//! Everything is a pure function of `(persons, seed)`: the same arguments give byte-identical
//! files (ChaCha8 stream, documented as reproducible across platforms and versions).
//!
//! # Example
//!
//! ```
//! use crosswalk::synth::{self, SynthConfig};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let summary = synth::run(&SynthConfig {
//!     persons: 50,
//!     seed: 7,
//!     out: dir.path().into(),
//!     realism: synth::Realism::Classic,
//! })
//! .unwrap();
//! assert_eq!(summary.persons, 50);
//! assert!(summary.records > 50);
//! assert!(dir.path().join("truth/records.csv").exists());
//! ```

mod corrupt;
mod exports;
pub mod names;
mod world;

use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};

use crate::error::{Error, Result};

pub use exports::AGENCIES;

/// What to generate.
#[derive(Debug, Clone)]
pub struct SynthConfig {
    /// Number of persons (victims) in the population.
    pub persons: usize,
    /// Random seed: the same seed gives the same bytes.
    pub seed: u64,
    /// Output directory (created if missing).
    pub out: PathBuf,
    /// How hard the world is to link.
    pub realism: Realism,
}

/// How hard a synthetic world is to link (docs/synth.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Realism {
    /// The world of the first releases: the demo's and the tests' (byte-identical across
    /// versions for a seed).
    #[default]
    Classic,
    /// Closer to real exports (../shared/domain.md): more skewed name frequencies, more
    /// aliases and persons filed under an alias only by police and the taskforce, persons who
    /// never give a birth date, a referral log that records an age instead of the birth date on
    /// most rows and is typed by hand, more surname changes and nicknames.
    Hard,
}

impl std::str::FromStr for Realism {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Realism, String> {
        match s {
            "classic" => Ok(Realism::Classic),
            "hard" => Ok(Realism::Hard),
            _ => Err("use classic or hard".into()),
        }
    }
}

/// What was generated.
#[derive(Debug, Clone, Default)]
pub struct SynthSummary {
    /// Persons in the population.
    pub persons: usize,
    /// Records (rows) written over all exports.
    pub records: usize,
    /// Rows per agency, in [`AGENCIES`] order.
    pub per_agency: Vec<(String, usize)>,
}

/// The last day any synthetic event may fall on.
pub fn world_end() -> NaiveDate {
    NaiveDate::from_ymd_opt(2025, 6, 30).unwrap_or_default()
}

/// A seeded random source with the few draws the generator needs.
pub(crate) struct Rand(ChaCha8Rng);

impl Rand {
    pub(crate) fn new(seed: u64) -> Rand {
        Rand(ChaCha8Rng::seed_from_u64(seed))
    }

    /// Uniform in `0..n` (`n > 0`), by Lemire's multiply-shift (bias below 2⁻³²).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (((self.0.next_u64() >> 32) * n as u64) >> 32) as usize
    }

    /// Uniform in `lo..=hi`.
    pub(crate) fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo + 1) as usize) as i64
    }

    /// True with probability `p`.
    pub(crate) fn chance(&mut self, p: f64) -> bool {
        ((self.0.next_u64() >> 11) as f64 / (1u64 << 53) as f64) < p
    }

    /// One element, uniformly.
    pub(crate) fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// One element of a list ordered from most to least common, drawn with Zipf weights
    /// `rank^-s` (rank 1 first).
    pub(crate) fn zipf<'a, T>(&mut self, items: &'a [T], s: f64) -> &'a T {
        let total: f64 = (1..=items.len()).map(|r| (r as f64).powf(-s)).sum();
        let mut x = (self.0.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * total;
        for (i, item) in items.iter().enumerate() {
            let w = ((i + 1) as f64).powf(-s);
            if x < w {
                return item;
            }
            x -= w;
        }
        &items[items.len() - 1]
    }

    /// An index drawn with the given weights.
    pub(crate) fn weighted(&mut self, weights: &[u32]) -> usize {
        let total: u32 = weights.iter().sum();
        let mut x = self.below(total as usize) as u32;
        for (i, &w) in weights.iter().enumerate() {
            if x < w {
                return i;
            }
            x -= w;
        }
        weights.len() - 1
    }
}

/// Generates the world into `cfg.out`.
pub fn run(cfg: &SynthConfig) -> Result<SynthSummary> {
    let out = &cfg.out;
    for d in [
        out.clone(),
        out.join("exports"),
        out.join("mappings"),
        out.join("truth"),
    ] {
        std::fs::create_dir_all(&d).map_err(|e| Error::io(&d, e))?;
    }
    let mut rng = Rand::new(cfg.seed);
    let world = world::World::generate(cfg.persons, &mut rng, cfg.realism);
    let summary = exports::write_all(&world, out, &mut rng, cfg.realism)?;
    crate::io::write_atomic(
        &out.join("schema.toml"),
        crate::schema::DEFAULT_SCHEMA_TOML.as_bytes(),
    )?;
    Ok(summary)
}

/// Writes CSV rows atomically to `path` (header first).
pub(crate) fn write_csv(
    path: &Path,
    delimiter: u8,
    rows: &[Vec<String>],
    windows_1252: bool,
    bom: bool,
) -> Result<()> {
    let mut w = csv::WriterBuilder::new()
        .delimiter(delimiter)
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    for r in rows {
        w.write_record(r)
            .map_err(|e| Error::io(path, std::io::Error::other(e.to_string())))?;
    }
    let text = w
        .into_inner()
        .map_err(|e| Error::io(path, std::io::Error::other(e.to_string())))?;
    let mut bytes = Vec::with_capacity(text.len() + 3);
    if bom {
        bytes.extend_from_slice(b"\xEF\xBB\xBF");
    }
    if windows_1252 {
        let s = String::from_utf8_lossy(&text);
        let (enc, _, _) = encoding_rs::WINDOWS_1252.encode(&s);
        bytes.extend_from_slice(&enc);
    } else {
        bytes.extend_from_slice(&text);
    }
    crate::io::write_atomic(path, &bytes)
}

//! `crosswalk demo`: the whole pipeline on a synthetic world, in one command.
//!
//! 1. `synth`: a synthetic world of `persons` victims recorded by nine agencies
//!    (`DIR/world/`: exports, mappings, schema, truth);
//! 2. a key (`DIR/demo.key`, mode 0600; reused when present);
//! 3. every agency encodes its export (`DIR/encodings/*.parquet`; each agency's local map and
//!    rejects report in `DIR/agency-local/`, which in real life never leaves the agency);
//! 4. the taskforce links all encodings (`DIR/run/entities.parquet`, `diagnostics.json`);
//! 5. the report job writes the suppressed aggregates (`DIR/run/aggregates/`) and
//!    `DIR/run/report.html`;
//! 6. the result is scored against the world's truth, next to the exact-match baseline, and
//!    every aggregate is compared with the same figure under the true grouping.

use std::path::{Path, PathBuf};

use chrono::NaiveDate;

use super::encode::{self, EncodeJob};
use super::link::{
    self, LinkJob, LinkSummary, DEFAULT_COHESION, DEFAULT_CONTAINMENT, DEFAULT_ORPHAN_MARGIN,
    DEFAULT_ORPHAN_OVERLAP, DEFAULT_THRESHOLD,
};
use super::report::{self, ReportJob, ReportSummary, DEFAULT_MIN_CELL};
use crate::analytics::Settings;
use crate::error::{Error, Result};
use crate::evaluate::{self, AggregateCheck, Scores};
use crate::keys::SecretKey;
use crate::schema::LinkageSchema;
use crate::source::SourceMapping;
use crate::synth::{self, SynthConfig};

/// What the demo did.
#[derive(Debug)]
pub struct DemoSummary {
    /// The output directory.
    pub dir: PathBuf,
    /// Key check value of the demo key.
    pub kcv: String,
    /// Rows encoded per agency.
    pub encoded: Vec<(String, u64)>,
    /// The linkage run.
    pub link: LinkSummary,
    /// The run scored against the truth.
    pub scores: Scores,
    /// Exact matching on name and birth date, scored the same way.
    pub baseline: Scores,
    /// The report job.
    pub report: ReportSummary,
    /// Every aggregate next to its value under the true grouping.
    pub aggregates: Vec<AggregateCheck>,
}

/// Runs the demo into `dir` with a world of `persons`. `progress` receives a line per step.
pub fn run(
    dir: &Path,
    persons: usize,
    today: NaiveDate,
    progress: &mut dyn FnMut(&str),
) -> Result<DemoSummary> {
    let world = dir.join("world");
    let encodings = dir.join("encodings");
    let local = dir.join("agency-local");
    for d in [dir, &encodings, &local] {
        std::fs::create_dir_all(d).map_err(|e| Error::io(d, e))?;
    }
    progress("generating the synthetic world");
    synth::run(&SynthConfig {
        realism: synth::Realism::Classic,
        persons,
        seed: 1,
        out: world.clone(),
    })?;
    let key_path = dir.join("demo.key");
    let key = if key_path.exists() {
        SecretKey::read(&key_path)?
    } else {
        let k = SecretKey::generate()?;
        k.write_new(&key_path)?;
        k
    };
    let schema = LinkageSchema::from_file(&world.join("schema.toml"))?;
    let mut encoded = Vec::new();
    let mut inputs = Vec::new();
    for (stem, agency) in synth::AGENCIES {
        progress(&format!("encoding at {agency}"));
        let mapping_path = world.join("mappings").join(format!("{stem}.toml"));
        let out = encodings.join(format!("{stem}.parquet"));
        let job = EncodeJob {
            schema: schema.clone(),
            mapping: SourceMapping::from_file(&mapping_path)?,
            key: key.clone(),
            input: world.join("exports").join(format!("{stem}.csv")),
            out: out.clone(),
            map_out: Some(local.join(format!("{stem}.parquet"))),
            rejects: local.join(format!("{stem}.rejects.csv")),
            threads: 0,
            today,
            chunk_rows: crate::pipeline::encode::DEFAULT_CHUNK_ROWS,
        };
        let s = encode::run(&job, &mut |_| {})?;
        encoded.push((agency.to_string(), s.rows_written));
        inputs.push(out);
    }
    progress("linking at the taskforce");
    let run_dir = dir.join("run");
    // As `crosswalk link` does by default (`--model auto`): the match model for encodings with
    // names and birth-date parts (the default schema's), the record-level rules otherwise.
    let (model, threshold) = if crate::link::model_learns_from(&schema.parts()) {
        (
            link::LinkModel::Probabilistic {
                min_average: crate::link::probabilistic::DEFAULT_MIN_AVERAGE,
                event_gap: true,
            },
            crate::link::FS_THRESHOLD,
        )
    } else {
        (link::LinkModel::Rules, DEFAULT_THRESHOLD)
    };
    let link = link::run(&LinkJob {
        inputs,
        out: run_dir.clone(),
        threshold,
        cohesion: DEFAULT_COHESION,
        containment: DEFAULT_CONTAINMENT,
        orphan_overlap: Some(DEFAULT_ORPHAN_OVERLAP),
        orphan_margin: DEFAULT_ORPHAN_MARGIN,
        blocking: link::Blocking::Auto,
        one_to_one: false,
        threads: 0,
        model,
        model_from: None,
    })?;
    progress("computing the aggregates and the report");
    let report = report::run(&ReportJob {
        run: run_dir.clone(),
        settings: Settings::default(),
        min_cell: DEFAULT_MIN_CELL,
        internal_unsuppressed: false,
    })?;
    progress("scoring against the truth");
    let scores = evaluate::score_run(&world.join("truth"), &run_dir, &local)?;
    let baseline = evaluate::baseline(&world)?;
    let aggregates =
        evaluate::score_aggregates(&world.join("truth"), &run_dir, &local, &Settings::default())?;
    Ok(DemoSummary {
        dir: dir.to_path_buf(),
        kcv: key.check_value(),
        encoded,
        link,
        scores,
        baseline,
        report,
        aggregates,
    })
}

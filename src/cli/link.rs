//! `crosswalk link`.

use std::path::PathBuf;

use clap::Args;
use crosswalk::pipeline::link::{self, LinkJob, DEFAULT_COHESION, DEFAULT_THRESHOLD};

/// Flags of `link`.
#[derive(Debug, Args)]
pub struct LinkArgs {
    /// Run directory for entities.parquet and diagnostics.json.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Dice threshold for a pair of records to count as the same person.
    #[arg(long, value_name = "NUM", default_value_t = DEFAULT_THRESHOLD)]
    threshold: f64,
    /// Clusters merge while their average pair score (pairs below the threshold count 0) is at
    /// least cohesion × threshold.
    #[arg(long, value_name = "NUM", default_value_t = DEFAULT_COHESION)]
    cohesion: f64,
    /// Worker threads (0: one per core).
    #[arg(short = 'j', long, value_name = "NUM", default_value_t = 0)]
    threads: usize,
    /// Encodings files from `crosswalk encode`.
    #[arg(value_name = "ENC.parquet", required = true)]
    inputs: Vec<PathBuf>,
}

pub fn link(args: &LinkArgs) -> crosswalk::Result<()> {
    if !(0.0..=1.0).contains(&args.threshold) || !(0.0..=1.0).contains(&args.cohesion) {
        return Err(crosswalk::Error::config(
            &args.out,
            "--threshold and --cohesion must lie between 0 and 1",
        ));
    }
    let s = link::run(&LinkJob {
        inputs: args.inputs.clone(),
        out: args.out.clone(),
        threshold: args.threshold,
        cohesion: args.cohesion,
        threads: args.threads,
    })?;
    eprintln!(
        "crosswalk link: {} records ({} rows, {} CLKs) -> {} persons; {} candidate pairs, {} at or above {} ({} kernel); {:.2}s read, {:.2}s compare, {:.2}s cluster",
        s.records, s.rows, s.clks, s.persons, s.candidates, s.pairs, args.threshold, s.platform,
        s.seconds[0], s.seconds[1], s.seconds[2]
    );
    super::stdout_line(&args.out.join("entities.parquet").display().to_string())
}

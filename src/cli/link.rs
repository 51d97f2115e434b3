//! `crosswalk link`.

use std::path::PathBuf;

use clap::Args;
use crosswalk::pipeline::link::{
    self, LinkJob, DEFAULT_COHESION, DEFAULT_EVIDENCE_FLOOR, DEFAULT_ORPHAN_MARGIN,
    DEFAULT_ORPHAN_OVERLAP, DEFAULT_THRESHOLD,
};

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
    /// Record pairs scoring at least this much count at their score in cluster averages (pairs
    /// below count 0); at most --threshold.
    #[arg(long, value_name = "NUM", default_value_t = DEFAULT_EVIDENCE_FLOOR)]
    evidence_floor: f64,
    /// A record left alone joins the cluster whose CLKs contain at least this share of its
    /// bits (overlap coefficient); 0 turns this off.
    #[arg(long, value_name = "NUM", default_value_t = DEFAULT_ORPHAN_OVERLAP)]
    orphan_overlap: f64,
    /// ... only if that cluster beats every other by this margin.
    #[arg(long, value_name = "NUM", default_value_t = DEFAULT_ORPHAN_MARGIN)]
    orphan_margin: f64,
    /// Worker threads (0: one per core).
    #[arg(short = 'j', long, value_name = "NUM", default_value_t = 0)]
    threads: usize,
    /// Encodings files from `crosswalk encode`.
    #[arg(value_name = "ENC.parquet", required = true)]
    inputs: Vec<PathBuf>,
}

pub fn link(args: &LinkArgs) -> crosswalk::Result<()> {
    let unit = [
        args.threshold,
        args.cohesion,
        args.evidence_floor,
        args.orphan_overlap,
        args.orphan_margin,
    ];
    if unit.iter().any(|x| !(0.0..=1.0).contains(x)) {
        return Err(crosswalk::Error::config(
            &args.out,
            "--threshold, --cohesion, --evidence-floor, --orphan-overlap and --orphan-margin must lie between 0 and 1",
        ));
    }
    if args.evidence_floor > args.threshold {
        return Err(crosswalk::Error::config(
            &args.out,
            "--evidence-floor must not exceed --threshold",
        ));
    }
    let s = link::run(&LinkJob {
        inputs: args.inputs.clone(),
        out: args.out.clone(),
        threshold: args.threshold,
        cohesion: args.cohesion,
        evidence_floor: args.evidence_floor,
        orphan_overlap: (args.orphan_overlap > 0.0).then_some(args.orphan_overlap),
        orphan_margin: args.orphan_margin,
        threads: args.threads,
    })?;
    eprintln!(
        "crosswalk link: {} records ({} rows, {} CLKs) -> {} persons ({} lone records attached by overlap); {} candidate pairs, {} at or above {} ({} kernel); {:.2}s read, {:.2}s compare, {:.2}s cluster",
        s.records, s.rows, s.clks, s.persons, s.orphans_attached, s.candidates, s.pairs, args.threshold, s.platform,
        s.seconds[0], s.seconds[1], s.seconds[2]
    );
    super::stdout_line(&args.out.join("entities.parquet").display().to_string())
}

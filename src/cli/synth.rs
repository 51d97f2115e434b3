//! `crosswalk synth`.

use std::path::PathBuf;

use clap::Args;
use crosswalk::synth::{self, SynthConfig};

/// Flags of `synth`.
#[derive(Debug, Args)]
pub struct SynthArgs {
    /// Number of persons (victims) in the synthetic population.
    #[arg(long, value_name = "NUM", default_value_t = 500)]
    persons: usize,
    /// Random seed: the same seed gives byte-identical files.
    #[arg(long, value_name = "NUM", default_value_t = 1)]
    seed: u64,
    /// Output directory (exports/, mappings/, truth/, schema.toml).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// How hard the world is to link: classic (the demo's world) or hard (closer to real
    /// exports: skewed name frequencies, alias-only records, persons without a birth date, a
    /// referral log with ages instead of birth dates; docs/synth.md).
    #[arg(long, value_name = "LEVEL", default_value = "classic")]
    realism: synth::Realism,
}

pub fn synth(args: &SynthArgs) -> crosswalk::Result<()> {
    let s = synth::run(&SynthConfig {
        persons: args.persons,
        seed: args.seed,
        out: args.out.clone(),
        realism: args.realism,
    })?;
    eprintln!(
        "crosswalk synth: {} persons, {} records in {} exports -> {}",
        s.persons,
        s.records,
        s.per_agency.len(),
        args.out.display()
    );
    for (agency, n) in &s.per_agency {
        eprintln!("  {n:>8}  {agency}");
    }
    Ok(())
}

//! `crosswalk clks`.

use std::path::PathBuf;

use clap::Args;

/// Flags of `clks`.
#[derive(Debug, Args)]
pub struct ClksArgs {
    /// Output: clkhash JSON (`{"clks": [...]}`), or CSV with a base64 `clk` column when the name
    /// ends in .csv. Rows in the input's order; main CLKs only (aliases are not exported).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// An encodings file (from `crosswalk encode`).
    #[arg(value_name = "ENC.parquet")]
    input: PathBuf,
}

pub fn clks(args: &ClksArgs) -> crosswalk::Result<()> {
    let n = crosswalk::clkhash::export_clks(&args.input, &args.out)?;
    eprintln!(
        "crosswalk clks: wrote {n} CLKs of {} to {}",
        args.input.display(),
        args.out.display()
    );
    super::stdout_line(&args.out.display().to_string())
}

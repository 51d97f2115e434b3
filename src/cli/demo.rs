//! `crosswalk demo`.

use std::path::PathBuf;

use clap::Args;
use crosswalk::pipeline::demo;

/// Flags of `demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Output directory.
    #[arg(long, value_name = "DIR", default_value = "crosswalk-demo")]
    out: PathBuf,
}

pub fn demo(args: &DemoArgs) -> crosswalk::Result<()> {
    let bar = super::progress_bar("demo");
    let result = demo::run(&args.out, super::today(), &mut |step| {
        bar.set_message(step.to_string())
    });
    bar.finish_and_clear();
    let s = result?;
    let rows: u64 = s.encoded.iter().map(|(_, e)| e.rows_written).sum();
    eprintln!(
        "crosswalk demo: encoded {} exports ({rows} records) with key {} (check value)",
        s.encoded.len(),
        s.kcv
    );
    for (path, e) in &s.encoded {
        eprintln!(
            "  {:>4} of {:>4} rows -> {}",
            e.rows_written,
            e.rows_read,
            path.display()
        );
    }
    eprintln!(
        "  exports, mappings, local maps and rejects reports: {}",
        s.dir.join("exports").display()
    );
    super::stdout_line(&s.dir.join("encodings").display().to_string())
}

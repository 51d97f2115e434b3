//! Command-line definitions (clap derive) and dispatch. Each subcommand lives in its own file
//! and only turns flags into a library configuration, runs it and prints the summary.

mod audit;
mod clks;
mod demo;
mod encode;
mod evaluate;
mod inspect;
mod keygen;
mod link;
mod report;
mod synth;

use clap::{Parser, Subcommand};

/// crosswalk: privacy-preserving record linkage for multi-agency taskforces.
///
/// Agencies encode their exports locally with a shared secret key (`keygen`, `encode`); no raw
/// identifier leaves them. Exit codes: 0 success, 1 I/O failure, 2 usage error, 3 configuration
/// or key problem, 4 bad input data, 5 registry in use by another run.
#[derive(Debug, Parser)]
#[command(name = "crosswalk", version, about, long_about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a new 256-bit secret key file (mode 0600) and print its key check value.
    Keygen(keygen::KeygenArgs),
    /// Print the key check value (KCV) of an existing key file.
    Kcv(keygen::KcvArgs),
    /// Describe an export (columns, shapes, dates, codes; never a value) and draft its source
    /// mapping, or check a mapping against it.
    Inspect(inspect::InspectArgs),
    /// Encode an agency export into keyed CLKs (Parquet) with non-identifying event facts.
    Encode(encode::EncodeArgs),
    /// Run the agency side end to end on embedded example exports.
    Demo(demo::DemoArgs),
    /// Generate a synthetic multi-agency world (exports, mappings, ground truth).
    Synth(synth::SynthArgs),
    /// Link every agency's encodings into pseudonymous persons (the taskforce's job).
    Link(link::LinkArgs),
    /// Compute suppressed aggregate tables and the HTML report of a linkage run.
    Report(report::ReportArgs),
    /// Score linkage quality against a synthetic world's ground truth.
    Evaluate(evaluate::EvaluateArgs),
    /// Write the CLKs of encodings files in clkhash's JSON or CSV format (for anonlink).
    Clks(clks::ClksArgs),
    /// Attack encodings without the key and measure what the attack re-identifies.
    Audit(audit::AuditArgs),
}

/// Runs the parsed command.
pub fn run(cli: Cli) -> crosswalk::Result<()> {
    match cli.command {
        Command::Keygen(a) => keygen::keygen(&a),
        Command::Kcv(a) => keygen::kcv(&a),
        Command::Inspect(a) => inspect::inspect(&a),
        Command::Encode(a) => encode::encode(&a),
        Command::Demo(a) => demo::demo(&a),
        Command::Synth(a) => synth::synth(&a),
        Command::Link(a) => link::link(&a),
        Command::Report(a) => report::report(&a),
        Command::Evaluate(a) => evaluate::evaluate(&a),
        Command::Clks(a) => clks::clks(&a),
        Command::Audit(a) => audit::audit(&a),
    }
}

/// Writes one line to stdout; a closed pipe becomes an I/O error that `main` treats as success.
pub(crate) fn stdout_line(line: &str) -> crosswalk::Result<()> {
    use std::io::Write;
    writeln!(std::io::stdout().lock(), "{line}").map_err(|e| crosswalk::Error::io("<stdout>", e))
}

/// Most worker threads per core `-j` may ask for: more only adds switching (and thousands of
/// threads stall a machine for minutes).
pub(crate) const MAX_THREADS_PER_CORE: usize = 4;

/// `-j NUM` checked: 0 stays 0 (one per core); above [`MAX_THREADS_PER_CORE`] per core it is
/// capped, with a warning.
pub(crate) fn threads(requested: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let max = cores * MAX_THREADS_PER_CORE;
    if requested > max {
        eprintln!(
            "crosswalk: warning: -j {requested} capped at {max} ({MAX_THREADS_PER_CORE} per core, {cores} cores)"
        );
        max
    } else {
        requested
    }
}

/// Today's date (UTC), the default reference date for "date in the future" checks.
pub(crate) fn today() -> chrono::NaiveDate {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    chrono::DateTime::from_timestamp(secs as i64, 0)
        .map(|t| t.date_naive())
        .unwrap_or_default()
}

/// A progress bar on stderr, hidden when stderr is not a terminal or `NO_COLOR` is set.
pub(crate) fn progress_bar(what: &str) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() || std::env::var_os("NO_COLOR").is_some() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new_spinner();
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{spinner} {msg}: {human_pos} rows ({per_sec})")
    {
        bar.set_style(style);
    }
    bar.set_message(what.to_string());
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}

//! `crosswalk demo`.

use std::path::PathBuf;

use clap::Args;
use crosswalk::pipeline::demo;
use crosswalk::report;

/// Flags of `demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Output directory.
    #[arg(long, value_name = "DIR", default_value = "crosswalk-demo")]
    out: PathBuf,
    /// Persons in the synthetic world.
    #[arg(long, value_name = "NUM", default_value_t = 1000)]
    persons: usize,
}

pub fn demo(args: &DemoArgs) -> crosswalk::Result<()> {
    let bar = super::progress_bar("demo");
    let result = demo::run(&args.out, args.persons, super::today(), &mut |step| {
        bar.set_message(step.to_string())
    });
    bar.finish_and_clear();
    let s = result?;
    let rows: u64 = s.encoded.iter().map(|(_, n)| n).sum();
    eprintln!(
        "crosswalk demo: {} synthetic victims, recorded {rows} times by {} agencies, each in its own house style",
        s.scores.true_entities,
        s.encoded.len()
    );
    eprintln!(
        "  each agency encoded its export with a shared key (check value {}); no name or birth date left it",
        s.kcv
    );
    eprintln!(
        "  the taskforce linked {} records into {} persons ({} candidate pairs, {:.2}s)",
        s.link.records,
        s.link.persons,
        s.link.candidates,
        s.link.seconds.iter().sum::<f64>()
    );
    eprintln!(
        "  against the truth: {} persons really; pairwise precision {:.3}, recall {:.3}, F1 {:.3}",
        s.scores.true_entities,
        s.scores.all.precision(),
        s.scores.all.recall(),
        s.scores.all.f1()
    );
    eprintln!(
        "  exact matching on name + birth date would have counted {} persons (F1 {:.3})",
        s.baseline.predicted_entities,
        s.baseline.all.f1()
    );
    let within = s.aggregates.iter().filter(|c| c.within_goal()).count();
    eprintln!(
        "  of the {} aggregate figures, {within} are within 2% (or 2 persons) of the truth",
        s.aggregates.len()
    );
    let (unique, dup, drop) = report::headline(&s.report.published);
    let show = |v: Option<u64>| v.map_or_else(|| "suppressed".to_string(), |n| n.to_string());
    eprintln!(
        "\nwhat the report says (as of {}):",
        s.report.as_of.map(|d| d.to_string()).unwrap_or_default()
    );
    eprintln!("  unique persons: {}", show(unique));
    eprintln!(
        "  persons who got the same type of service from two agencies at once: {}",
        show(dup)
    );
    match drop {
        Some((stage, n)) => eprintln!(
            "  biggest drop-off: {n} persons stopped at {} (no further stage, no event in 90 days)",
            stage.replace('_', " ")
        ),
        None => eprintln!("  biggest drop-off: none published"),
    }
    eprintln!(
        "\nworld, encodings, agency-local maps and the run are under {}; open the report:",
        s.dir.display()
    );
    super::stdout_line(&s.report.report.display().to_string())
}

//! `crosswalk evaluate`.

use std::path::PathBuf;

use clap::Args;
use crosswalk::analytics::Settings;
use crosswalk::evaluate::{self, AggregateCheck, Scores};

/// Flags of `evaluate`.
#[derive(Debug, Args)]
pub struct EvaluateArgs {
    /// The truth directory of a synthetic world (`DIR/truth` from `crosswalk synth`).
    #[arg(long, value_name = "DIR")]
    truth: PathBuf,
    /// Score the exact-match baseline (normalised given name + family name + date of birth) on
    /// the world's raw exports.
    #[arg(long, conflicts_with = "run")]
    baseline: bool,
    /// A linkage run directory (from `crosswalk link`) to score.
    #[arg(long, value_name = "DIR", requires = "maps")]
    run: Option<PathBuf>,
    /// Directory of the agencies' local maps (`encode --map-out`), to join record keys to ids.
    #[arg(long, value_name = "DIR")]
    maps: Option<PathBuf>,
}

pub fn evaluate(args: &EvaluateArgs) -> crosswalk::Result<()> {
    if let (Some(run), Some(maps)) = (&args.run, &args.maps) {
        let registry = run;
        let run = &crosswalk::registry::as_run(registry)?;
        crosswalk::io::run::verify(run)?;
        let s = evaluate::score_run(&args.truth, run, maps)?;
        super::stdout_line(&render(&format!("linkage run {}", run.display()), &s))?;
        let generations = crosswalk::registry::current_generation(registry)?;
        // Every generation's entities read once; the truth of all their records joined once.
        let entities = (1..=generations)
            .map(|g| {
                crosswalk::io::entities::read_entities(
                    &registry
                        .join("generations")
                        .join(crosswalk::registry::generation_name(g)),
                )
            })
            .collect::<crosswalk::Result<Vec<_>>>()?;
        let records: std::collections::BTreeSet<&(String, String)> =
            entities.iter().flat_map(|e| e.keys()).collect();
        let truth = evaluate::true_persons(&args.truth, maps, records)?;
        for g in 1..generations {
            let (before, after) = (&entities[g as usize - 1], &entities[g as usize]);
            let st = evaluate::id_stability(before, after, &truth);
            super::stdout_line(&format!(
                "id stability, generation {g} -> {}: {} of {} ids kept all their records, {} true merges excused: {:.4}",
                g + 1,
                st.kept,
                st.ids,
                st.true_merges,
                st.share()
            ))?;
        }
        if run.join("events.parquet").exists() {
            let (checks, bound) =
                evaluate::score_aggregates_and_bound(&args.truth, run, maps, &Settings::default())?;
            super::stdout_line(&render_aggregates(&checks))?;
            if let Some(bound) = bound {
                super::stdout_line(&render_bound(&checks, &bound))?;
            }
        }
        return Ok(());
    }
    if !args.baseline {
        return Err(crosswalk::Error::config(
            &args.truth,
            "nothing to score: pass --run RUN_DIR --maps DIR, or --baseline",
        ));
    }
    let world = args
        .truth
        .parent()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    let s = evaluate::baseline(&world)?;
    super::stdout_line(&render(
        "exact match on given name + family name + date of birth",
        &s,
    ))
}

/// A plain-text table of the scores.
pub fn render(what: &str, s: &Scores) -> String {
    let mut out = format!(
        "{what}\n{} records, {} predicted entities, {} true persons\n\
         pairs     precision  recall  F1      (TP / FP / FN)\n",
        s.records, s.predicted_entities, s.true_entities
    );
    for (name, c) in [("all", s.all), ("within", s.within), ("across", s.across)] {
        out.push_str(&format!(
            "{name:<9} {:.4}     {:.4}  {:.4}  ({} / {} / {})\n",
            c.precision(),
            c.recall(),
            c.f1(),
            c.true_positives,
            c.false_positives,
            c.false_negatives
        ));
    }
    out.push_str(&format!(
        "B-cubed   {:.4}     {:.4}  {:.4}",
        s.bcubed_precision,
        s.bcubed_recall,
        s.bcubed_f1()
    ));
    out
}

/// A per-table summary of the aggregate checks, then every figure of the `all` and minor/adult
/// breakdowns that misses the goal.
pub fn render_aggregates(checks: &[AggregateCheck]) -> String {
    let mut out = String::from(
        "\naggregates vs the same events grouped by the truth (goal: within 2% or 2 units; shares within 1 point)\n\
         table                    figures  within goal  worst error (row, column: run vs truth)\n",
    );
    let mut tables: Vec<&str> = checks.iter().map(|c| c.table).collect();
    tables.dedup();
    for t in tables {
        let of: Vec<&AggregateCheck> = checks.iter().filter(|c| c.table == t).collect();
        let ok = of.iter().filter(|c| c.within_goal()).count();
        let worst = of
            .iter()
            .max_by(|a, b| a.error().total_cmp(&b.error()))
            .map(|c| {
                format!(
                    "{:.2} ({}, {}: {:.1} vs {:.1})",
                    c.error(),
                    c.row,
                    c.column,
                    c.run,
                    c.truth
                )
            })
            .unwrap_or_default();
        out.push_str(&format!("{t:<24} {:>7}  {ok:>11}  {worst}\n", of.len()));
    }
    let misses: Vec<&AggregateCheck> = checks.iter().filter(|c| !c.within_goal()).collect();
    out.push_str(&format!(
        "{} of {} figures within goal",
        checks.len() - misses.len(),
        checks.len()
    ));
    for c in misses {
        out.push_str(&format!(
            "\n  miss: {} {} {}: run {:.1}, truth {:.1}",
            c.table, c.row, c.column, c.run, c.truth
        ));
    }
    out
}

/// The names-only bound ([`evaluate::score_aggregates_name_bound`]) beside the run's checks:
/// how many figures a linkage whose only mistakes are those splits misses, and which of the
/// run's misses they are.
pub fn render_bound(run: &[AggregateCheck], bound: &evaluate::NameBound) -> String {
    let misses: Vec<&AggregateCheck> = bound.checks.iter().filter(|c| !c.within_goal()).collect();
    let key = |c: &AggregateCheck| (c.table, c.row.clone(), c.column);
    let missed: std::collections::HashSet<_> = misses.iter().map(|c| key(c)).collect();
    let run_misses = run.iter().filter(|c| !c.within_goal()).count();
    let shared = run
        .iter()
        .filter(|c| !c.within_goal() && missed.contains(&key(c)))
        .count();
    let mut out = format!(
        "\nnames-only bound: the truth with every record written only under an alias split off (unless \
         another record carries the alias beside the name), a linkage whose only errors are these \
         splits ({} persons split)\n\
         {} of {} figures within goal; {shared} of the run's {run_misses} misses are among its misses",
        bound.split_persons,
        bound.checks.len() - misses.len(),
        bound.checks.len(),
    );
    for c in misses {
        out.push_str(&format!(
            "\n  miss: {} {} {}: bound {:.1}, truth {:.1}",
            c.table, c.row, c.column, c.run, c.truth
        ));
    }
    out
}

//! `crosswalk evaluate`.

use std::path::PathBuf;

use clap::Args;
use crosswalk::evaluate::{self, Scores};

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
        let s = evaluate::score_run(&args.truth, run, maps)?;
        return super::stdout_line(&render(&format!("linkage run {}", run.display()), &s));
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

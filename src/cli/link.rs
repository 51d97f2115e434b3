//! `crosswalk link`.

use std::path::PathBuf;

use clap::Args;
use crosswalk::block::LshParams;
use crosswalk::pipeline::link::{
    self, Blocking, LinkJob, DEFAULT_COHESION, DEFAULT_CONTAINMENT, DEFAULT_ORPHAN_MARGIN,
    DEFAULT_ORPHAN_OVERLAP, DEFAULT_THRESHOLD,
};
use crosswalk::registry::update::{self, UpdateJob};
use crosswalk::registry::Settings;

/// Flags of `link`.
#[derive(Debug, Args)]
pub struct LinkArgs {
    /// Run directory for entities.parquet, events.parquet and diagnostics.json.
    #[arg(
        long,
        value_name = "DIR",
        required_unless_present = "registry",
        conflicts_with = "registry"
    )]
    out: Option<PathBuf>,
    /// Monthly registry: add the inputs to it (files it has already are skipped), keep person
    /// ids stable and record merges and splits (docs/registry.md).
    #[arg(long, value_name = "DIR")]
    registry: Option<PathBuf>,
    /// Registry: label of this run, e.g. the month (default: today's date).
    #[arg(long, value_name = "TEXT", requires = "registry")]
    label: Option<String>,
    /// Registry: withdraw a batch (its id from registry.json, at least 8 digits, or the file
    /// that was added); persons are recomputed without it. Repeatable.
    #[arg(long, value_name = "ID|FILE", requires = "registry")]
    withdraw: Vec<String>,
    /// How records become persons: `rules` (record-CLK Dice threshold, containment, cohesion,
    /// lone records), `fs` (a Fellegi-Sunter model over the encodings' field-level parts,
    /// fitted on this run's records; needs encodings made with a schema that has [parts]) or
    /// `auto`: `fs` when every input carries names and birth-date parts and no rules-only flag
    /// (--one-to-one, --cohesion, --containment, --orphan-overlap, --orphan-margin) is given,
    /// or when --model-from or --min-average is given; `rules` otherwise. A registry keeps the
    /// model it was created with (auto follows it).
    #[arg(long, value_name = "HOW", default_value = "auto", value_parser = ["auto", "rules", "fs"])]
    model: String,
    /// `--model fs`: take the model's m and u from an earlier run (its directory or its
    /// diagnostics.json) instead of fitting them on this one; λ is still fitted here. For
    /// monthly runs that should weigh evidence alike (docs/linkage.md).
    #[arg(long, value_name = "RUN", conflicts_with = "registry")]
    model_from: Option<PathBuf>,
    /// `--model fs`: clusters merge while the average match probability over all their record
    /// pairs is at least this [default: 0.4]. With `--model auto` it asks for the model;
    /// refused with `--model rules` and for a registry on the rules.
    #[arg(long, value_name = "NUM")]
    min_average: Option<f64>,
    /// `--model fs`: do not weigh the days between two records' events as evidence (the
    /// event-gap comparison): for analyses of time that must not lean on the gaps between
    /// events, at some cost in accuracy (docs/linkage.md).
    /// With `--model auto` it asks for the model; refused with `--model rules`. A registry
    /// always weighs it.
    #[arg(long, conflicts_with = "registry")]
    no_event_gap: bool,
    /// Dice threshold for a pair of records to count as the same person [default: 0.8]; with
    /// `--model fs`, the record-CLK Dice at which a pair becomes a candidate [default: 0.7].
    #[arg(long, value_name = "NUM")]
    threshold: Option<f64>,
    /// Clusters merge while their average pair score (pairs below the threshold count 0) is at
    /// least cohesion × threshold [default: 0.5].
    #[arg(long, value_name = "NUM")]
    cohesion: Option<f64>,
    /// A pair below the threshold (Dice at least 0.6) still counts as evidence when the smaller
    /// CLK has this share of its bits in the other (a sparse record against a full one); 0
    /// turns this off [default: 0.85].
    #[arg(long, value_name = "NUM")]
    containment: Option<f64>,
    /// A record left alone joins the cluster whose CLKs contain at least this share of its
    /// bits (overlap coefficient); 0 turns this off [default: 0.75].
    #[arg(long, value_name = "NUM")]
    orphan_overlap: Option<f64>,
    /// ... only if that cluster beats every other by this margin [default: 0.1].
    #[arg(long, value_name = "NUM")]
    orphan_margin: Option<f64>,
    /// Candidate pairs: `auto` (all pairs up to 50,000 CLKs, LSH above), `all-pairs` (exact,
    /// quadratic) or `lsh` (MinHash bands over the CLK bits; docs/linkage.md).
    #[arg(long, value_name = "HOW", default_value = "auto", value_parser = ["auto", "all-pairs", "lsh"])]
    blocking: String,
    /// LSH: number of bands.
    #[arg(long, value_name = "NUM", default_value_t = LshParams::default().bands)]
    lsh_bands: usize,
    /// LSH: MinHashes per band.
    #[arg(long, value_name = "NUM", default_value_t = LshParams::default().rows)]
    lsh_rows: usize,
    /// LSH: ignore bit positions set in more than this share of all CLKs (0 to 1).
    #[arg(long, value_name = "NUM", default_value_t = LshParams::default().max_bit_share_permille as f64 / 1000.0)]
    lsh_max_bit_share: f64,
    /// LSH: distinct MinHashes per CLK shared by the bands (0: bands × rows, none shared).
    #[arg(long, value_name = "NUM", default_value_t = LshParams::default().pool)]
    lsh_pool: usize,
    /// Deduplicated sources (e.g. two registries): each record links to at most one record of
    /// every other agency and none of its own, best pairs first; no clustering.
    #[arg(long)]
    one_to_one: bool,
    /// Worker threads (0: one per core; at most 4 per core, more is capped with a warning).
    #[arg(short = 'j', long, value_name = "NUM", default_value_t = 0)]
    threads: usize,
    /// Encodings files from `crosswalk encode`.
    #[arg(value_name = "ENC.parquet", required_unless_present = "withdraw")]
    inputs: Vec<PathBuf>,
}

pub fn link(args: &LinkArgs) -> crosswalk::Result<()> {
    let out = args
        .out
        .clone()
        .or_else(|| args.registry.clone())
        .unwrap_or_default();
    // The rules' own settings: given, they ask for the rules.
    let rules_flags = args.one_to_one
        || args.cohesion.is_some()
        || args.containment.is_some()
        || args.orphan_overlap.is_some()
        || args.orphan_margin.is_some();
    let fs = match args.model.as_str() {
        "fs" => true,
        "rules" => false,
        // auto: an existing registry's own model; otherwise the model where the encodings
        // carry what it learns from.
        _ => match args
            .registry
            .as_deref()
            .and_then(crosswalk::registry::links_by_model)
        {
            Some(model) => model,
            None => {
                args.model_from.is_some()
                    || args.min_average.is_some()
                    || args.no_event_gap
                    || (!rules_flags
                        && !args.inputs.is_empty()
                        && args.inputs.iter().all(|p| {
                            crosswalk::link::model_learns_from(
                                &crosswalk::io::encodings::parts_carried(p),
                            )
                        }))
            }
        },
    };
    if !fs && args.min_average.is_some() {
        return Err(crosswalk::Error::config(
            &out,
            if args.registry.is_some() {
                "--min-average is a setting of the match model (fs), and this registry links by \
                 the record-level rules (fixed when it was created); leave it out"
            } else {
                "--min-average is a setting of the match model (fs), and --model rules asks for \
                 the record-level rules; give --model fs, or leave it out"
            },
        ));
    }
    if !fs && args.no_event_gap {
        return Err(crosswalk::Error::config(
            &out,
            "--no-event-gap is a setting of the match model (fs), and --model rules asks for \
             the record-level rules; give --model fs, or leave it out",
        ));
    }
    let min_average = args
        .min_average
        .unwrap_or(crosswalk::link::probabilistic::DEFAULT_MIN_AVERAGE);
    let cohesion = args.cohesion.unwrap_or(DEFAULT_COHESION);
    let containment = args.containment.unwrap_or(DEFAULT_CONTAINMENT);
    let orphan_overlap = args.orphan_overlap.unwrap_or(DEFAULT_ORPHAN_OVERLAP);
    let orphan_margin = args.orphan_margin.unwrap_or(DEFAULT_ORPHAN_MARGIN);
    let threshold = args.threshold.unwrap_or(if fs {
        crosswalk::link::FS_THRESHOLD
    } else {
        DEFAULT_THRESHOLD
    });
    let unit = [
        threshold,
        min_average,
        cohesion,
        containment,
        orphan_overlap,
        orphan_margin,
    ];
    if unit.iter().any(|x| !(0.0..=1.0).contains(x)) {
        return Err(crosswalk::Error::config(
            &out,
            "--threshold, --min-average, --cohesion, --containment, --orphan-overlap and --orphan-margin must lie between 0 and 1",
        ));
    }
    if !fs && args.model_from.is_some() {
        return Err(crosswalk::Error::config(
            &out,
            "--model-from fixes the parameters of the match model; give it with --model fs",
        ));
    }
    if fs && rules_flags {
        return Err(crosswalk::Error::config(
            &out,
            "--one-to-one, --cohesion, --containment, --orphan-overlap and --orphan-margin are \
             record-level rules; they do not combine with --model fs (give --model rules, or \
             leave them out)",
        ));
    }
    if args.lsh_bands == 0 || args.lsh_rows == 0 || args.lsh_bands * args.lsh_rows > 4096 {
        return Err(crosswalk::Error::config(
            &out,
            "--lsh-bands and --lsh-rows must be positive, with at most 4096 MinHashes in all",
        ));
    }
    let lsh = LshParams {
        bands: args.lsh_bands,
        rows: args.lsh_rows,
        pool: args.lsh_pool,
        max_bit_share_permille: (args.lsh_max_bit_share.clamp(0.0, 1.0) * 1000.0).round() as u32,
        ..LshParams::default()
    };
    let containment = if containment > 0.0 {
        containment
    } else {
        f64::INFINITY
    };
    let orphan_overlap = (orphan_overlap > 0.0).then_some(orphan_overlap);
    if let Some(registry) = &args.registry {
        if args.one_to_one || args.blocking == "all-pairs" {
            return Err(crosswalk::Error::config(
                registry,
                "--one-to-one and --blocking all-pairs do not apply to a registry (it chooses its candidates as `--blocking auto` does)",
            ));
        }
        let label = args
            .label
            .clone()
            .unwrap_or_else(|| chrono::Utc::now().date_naive().to_string());
        let s = update::run(&UpdateJob {
            registry: registry.clone(),
            inputs: args.inputs.clone(),
            withdraw: args.withdraw.clone(),
            label,
            settings: Settings {
                threshold,
                cohesion,
                containment,
                orphan_overlap,
                orphan_margin,
                min_average: fs.then_some(min_average),
            },
            lsh,
            threads: super::threads(args.threads),
        })?;
        for w in &s.warnings {
            eprintln!("crosswalk: warning: {w}");
        }
        for p in &s.skipped {
            eprintln!(
                "crosswalk link: {} is in the registry already; skipped",
                p.display()
            );
        }
        if !s.changed {
            eprintln!(
                "crosswalk link: nothing to add or withdraw; the registry stays at generation {}",
                s.generation
            );
        } else if s.relinked {
            let h = &s.history;
            eprintln!(
                "crosswalk link: generation {} ({}): {} records ({} new), {} persons ({} new ids, {} merged, {} split, {} retired); every batch linked again by the match model (fs): {} CLKs, {} candidate pairs; {:.2}s read, {:.2}s compare, {:.2}s cluster, {:.2}s write",
                s.generation, h.label, h.records, h.new_records, h.persons, h.new_persons, h.merged, h.split, h.retired,
                s.new_clks, s.candidates, s.seconds[0], s.seconds[1], s.seconds[2], s.seconds[3]
            );
        } else {
            let h = &s.history;
            eprintln!(
                "crosswalk link: generation {} ({}): {} records ({} new), {} persons ({} new ids, {} merged, {} split, {} retired, {} re-clustered); {} new CLKs against {} old, {} candidate pairs; {:.2}s read, {:.2}s compare, {:.2}s cluster, {:.2}s write",
                s.generation, h.label, h.records, h.new_records, h.persons, h.new_persons, h.merged, h.split, h.retired,
                h.persons_reclustered, s.new_clks, s.old_clks, s.candidates, s.seconds[0], s.seconds[1], s.seconds[2], s.seconds[3]
            );
        }
        return super::stdout_line(&s.dir.display().to_string());
    }
    let s = link::run(&LinkJob {
        inputs: args.inputs.clone(),
        out: out.clone(),
        threshold,
        cohesion,
        containment,
        orphan_overlap,
        orphan_margin,
        blocking: match args.blocking.as_str() {
            "all-pairs" => Blocking::AllPairs,
            "lsh" => Blocking::Lsh(lsh),
            _ if lsh != LshParams::default() => Blocking::Lsh(lsh),
            _ => Blocking::Auto,
        },
        one_to_one: args.one_to_one,
        threads: super::threads(args.threads),
        model_from: args.model_from.clone(),
        model: if fs {
            link::LinkModel::Probabilistic {
                min_average,
                event_gap: !args.no_event_gap,
            }
        } else {
            link::LinkModel::Rules
        },
    })?;
    for w in &s.warnings {
        eprintln!("crosswalk: warning: {w}");
    }
    eprintln!(
        "crosswalk link: {} records ({} rows, {} CLKs) -> {} persons by {} ({} lone records attached {}); {} candidate pairs, {} at or above {} ({} kernel); {:.2}s read, {:.2}s compare, {:.2}s cluster",
        s.records, s.rows, s.clks, s.persons, if fs { "the match model (fs)" } else { "the record-level rules" }, s.orphans_attached,
        if fs { "to their likeliest partner's person" } else { "by overlap" }, s.candidates, s.pairs, threshold, s.platform,
        s.seconds[0], s.seconds[1], s.seconds[2]
    );
    super::stdout_line(&out.join("entities.parquet").display().to_string())
}

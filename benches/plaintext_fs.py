#!/usr/bin/env python3
"""A plaintext probabilistic linker on a synthetic world, as a bar for crosswalk (issue #18).

Fellegi-Sunter with Splink (EM-estimated m, u from random pairs, term-frequency adjustments on
names and town), over the plaintext identifiers `benches/plaintext_dump.rs` writes, scored
pairwise against the world's truth at several match-probability thresholds (the best one is
chosen with the truth, as the issue's comparison did). Synthetic data only.

    cargo bench --bench plaintext_dump -- WORLD WORLD/plain.csv
    python3 benches/plaintext_fs.py WORLD/plain.csv WORLD/truth/records.csv

Needs `pip install splink` (5.x; its duckdb backend and pyarrow).
"""
import collections
import csv
import sys

import splink.comparison_library as cl
from splink import Linker, SettingsCreator, block_on
from splink.backends.duckdb import DuckDBAPI


def main(plain_path, truth_path):
    with open(plain_path, newline="") as f:
        rows = [{k: (v if v != "" else None) for k, v in r.items()} for r in csv.DictReader(f)]
    import pyarrow as pa

    df = pa.Table.from_pylist(rows)
    truth = {}
    with open(truth_path) as f:
        for r in csv.DictReader(f):
            truth[f"{r['agency']}|{r['local_id']}"] = r["person"]
    settings = SettingsCreator(
        link_type="dedupe_only",
        comparisons=[
            cl.NameComparison("given").configure(term_frequency_adjustments=True),
            cl.NameComparison("family").configure(term_frequency_adjustments=True),
            cl.DamerauLevenshteinAtThresholds("dob", [1, 2]),
            cl.ExactMatch("sex"),
            cl.ExactMatch("phone"),
            cl.LevenshteinAtThresholds("street", [2]),
            cl.ExactMatch("town").configure(term_frequency_adjustments=True),
            cl.ExactMatch("zip"),
            cl.ExactMatch("ssn4"),
        ],
        blocking_rules_to_generate_predictions=[
            block_on("given", "family"),
            block_on("dob"),
            block_on("phone"),
            block_on("family", "zip"),
            block_on("ssn4", "family"),
            block_on("alias_given", "alias_family"),
        ],
        retain_intermediate_calculation_columns=False,
    )
    db = DuckDBAPI()
    linker = Linker(db.register(df), settings)
    linker.training.estimate_probability_two_random_records_match(
        [block_on("given", "family", "dob")], recall=0.6
    )
    linker.training.estimate_u_using_random_sampling(max_pairs=2e6)
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("dob"))
    linker.training.estimate_parameters_using_expectation_maximisation(
        block_on("given", "family")
    )
    pairs = linker.inference.predict(threshold_match_probability=0.01)
    ids = [r["unique_id"] for r in rows]
    true_pairs = sum(c * (c - 1) // 2 for c in collections.Counter(truth[i] for i in ids).values())
    for t in [0.5, 0.8, 0.9, 0.95, 0.99]:
        clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(pairs, t)
        cid = {r["unique_id"]: r["cluster_id"] for r in clusters.as_record_list()}
        both = collections.Counter((cid[i], truth[i]) for i in ids)
        pred = collections.Counter(cid[i] for i in ids)
        tp = sum(c * (c - 1) // 2 for c in both.values())
        pp = sum(c * (c - 1) // 2 for c in pred.values())
        p = tp / pp if pp else 1.0
        r = tp / true_pairs if true_pairs else 1.0
        f1 = 2 * p * r / (p + r) if p + r else 0.0
        print(f"threshold {t}: {len(pred)} persons, P {p:.4f} R {r:.4f} F1 {f1:.4f}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])

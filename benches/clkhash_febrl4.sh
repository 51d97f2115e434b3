#!/usr/bin/env bash
# Febrl4 through clkhash schemas: the same records encoded by clkhash 0.18.3 and by crosswalk
# (speed, and whether the CLKs are identical), then linked by crosswalk (--one-to-one) and by
# anonlink (its greedy solver) at several thresholds, F1 against the record ids.
# Usage: benches/clkhash_febrl4.sh FEBRL4_DIR [PYTHON]
#   FEBRL4_DIR holds dataset4a.csv and dataset4b.csv (fixtures/febrl/get_febrl4.sh fetches them);
#   PYTHON has clkhash==0.18.3, anonlink and pyarrow installed (default /tmp/clkvenv/bin/python).
#   THRESHOLDS (default "0.7 0.75 0.8 0.85 0.9 0.95"); below ~0.7 these dense CLKs make most
#   pairs candidates and linking slow. REPEAT (default 5): clkhash encodes each file this many
#   times, each in a fresh process, and crosswalk four times as many (its runs take ~30 ms, so
#   one is mostly noise); the medians are compared.
set -euo pipefail
data=${1:?usage: benches/clkhash_febrl4.sh FEBRL4_DIR [PYTHON]}
py=${2:-/tmp/clkvenv/bin/python}
bin=target/release/crosswalk
[ -x "$bin" ] || cargo build --release --quiet
dir=$(mktemp -d)
install -m 600 fixtures/encoder/test.key "$dir/key"
schema=fixtures/clkhash/schemas/febrl4.json
# Febrl's CSVs put a space after every comma: strip it (clkhash would hash it).
for p in a b; do sed 's/, /,/g' "$data/dataset4$p.csv" > "$dir/$p.csv"; done
# Each clkhash run in a fresh process, as each crosswalk run is: clkhash caches tokens and
# values inside a process, and later runs in the same process would start warm.
for p in a b; do
  for _ in $(seq "${REPEAT:-5}"); do
    "$py" - "$dir" "$schema" "$p" <<'PY'
import json, sys, time
from clkhash import clk
from clkhash.schema import from_json_dict
from clkhash.serialization import serialize_bitarray
d, schema_path, p = sys.argv[1], sys.argv[2], sys.argv[3]
schema = from_json_dict(json.load(open(schema_path)))
secret = bytes.fromhex(open("fixtures/encoder/test.key").read().strip())
t = time.time()
with open(f"{d}/{p}.csv", newline="") as f:
    clks = clk.generate_clk_from_csv(f, secret, schema, validate=True, header=True, progress_bar=False, max_workers=1)
print(len(clks) / (time.time() - t))
json.dump({"clks": [serialize_bitarray(c) for c in clks]}, open(f"{d}/{p}.clkhash.json", "w"))
PY
  done | sort -n > "$dir/$p.clkhash.rates"
done
for p in a b; do
  for _ in $(seq $((4 * ${REPEAT:-5}))); do
    $bin encode --schema "$schema" --key-file "$dir/key" --input "$dir/$p.csv" --out "$dir/$p.json" -j 1 2>&1 \
      | grep -o '([0-9]* records/s)' | tr -d '(a-z/ )'
  done | sort -n > "$dir/$p.rates"
  python3 - "$dir" "$p" <<'PY'
import sys
d, p = sys.argv[1], sys.argv[2]
r = [float(x) for x in open(f"{d}/{p}.rates")]
q = [float(x) for x in open(f"{d}/{p}.clkhash.rates")]
m, c = r[len(r) // 2], q[len(q) // 2]
print(f"dataset4{p} (5,000 records), one core: clkhash 0.18.3 median {c:.0f} records/s ({q[0]:.0f}-{q[-1]:.0f}, {len(q)} runs); "
      f"crosswalk median {m:.0f} records/s ({r[0]:.0f}-{r[-1]:.0f}, {len(r)} runs): {m / c:.1f}x")
PY
  cmp <(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['clks'])" "$dir/$p.json") \
      <(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['clks'])" "$dir/$p.clkhash.json") \
    && echo "dataset4$p: crosswalk's CLKs are identical to clkhash's"
done
echo "| threshold | crosswalk --one-to-one: precision / recall / F1 | anonlink greedy solver: precision / recall / F1 |"
echo "|---|---|---|"
for t in ${THRESHOLDS:-0.7 0.75 0.8 0.85 0.9 0.95}; do
  $bin link --out "$dir/run" --one-to-one --threshold "$t" "$dir/a.json" "$dir/b.json" 2>/dev/null >/dev/null
  "$py" - "$dir" "$t" <<'PY'
import sys, json, csv, base64
import pyarrow.parquet as pq
import anonlink
from bitarray import bitarray
d, t = sys.argv[1], float(sys.argv[2])
ids = {p: [r[0] for r in list(csv.reader(open(f"{d}/{p}.csv")))[1:]] for p in "ab"}
person = lambda rid: rid.split("-")[1]
pos_b = {person(r): j for j, r in enumerate(ids["b"])}
true_pairs = {(i, pos_b[person(r)]) for i, r in enumerate(ids["a"]) if person(r) in pos_b}
def prf(found):
    tp = len(found & true_pairs)
    p = tp / len(found) if found else 1.0
    r = tp / len(true_pairs)
    return p, r, 2 * p * r / (p + r) if p + r else 0.0
# crosswalk: persons holding one record of each file
ent = pq.read_table(f"{d}/run/entities.parquet").to_pylist()
by = {}
for e in ent:
    by.setdefault(e["person_id"], {})[e["agency"]] = int(e["record_key"])
cw = {(v["a"], v["b"]) for v in by.values() if "a" in v and "b" in v}
# anonlink: candidate pairs at the threshold, greedy solver
def load(p):
    out = []
    for c in json.load(open(f"{d}/{p}.json"))["clks"]:
        ba = bitarray(); ba.frombytes(base64.b64decode(c)); out.append(ba)
    return out
A, B = load("a"), load("b")
cands = anonlink.candidate_generation.find_candidate_pairs([A, B], anonlink.similarities.dice_coefficient_accelerated, t)
groups = anonlink.solving.greedy_solve(cands)
al = set()
for g in groups:
    g = sorted(g)
    if len(g) == 2 and g[0][0] == 0 and g[1][0] == 1:
        al.add((g[0][1], g[1][1]))
a, b = prf(cw), prf(al)
print(f"| {t} | {a[0]:.4f} / {a[1]:.4f} / **{a[2]:.4f}** | {b[0]:.4f} / {b[1]:.4f} / **{b[2]:.4f}** |")
PY
done
rm -rf "$dir"

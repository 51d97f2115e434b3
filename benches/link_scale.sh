#!/usr/bin/env bash
# How the link job grows with the input: synth -> keygen -> encode every agency -> link (timed,
# peak memory) -> evaluate, for each world size given (persons; ~3.6 records per person).
# Usage: benches/link_scale.sh 28000 83000 280000   (run from the repository root; needs
# ~1 GB of disk per 100k persons in a temporary directory, removed afterwards unless KEEP=1)
# Env: LINK_ARGS='...' adds flags to `crosswalk link`; THREADS=N (default 0: all cores).
set -euo pipefail
bin=target/release/crosswalk
[ -x "$bin" ] || cargo build --release --quiet
printf "| persons | records | CLKs | candidate pairs | pairs >= t | read s | compare s | cluster s | link wall s | peak RSS MB | predicted persons | F1 |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n"
for persons in "$@"; do
  dir=$(mktemp -d)
  $bin synth --persons "$persons" --seed 1 --out "$dir/world" 2>/dev/null
  install -m 600 fixtures/encoder/test.key "$dir/key"
  mkdir -p "$dir/enc" "$dir/maps"
  for m in "$dir"/world/mappings/*.toml; do
    s=$(basename "$m" .toml)
    $bin encode --schema "$dir/world/schema.toml" --source "$m" --key-file "$dir/key" \
      --input "$dir/world/exports/$s.csv" --out "$dir/enc/$s.parquet" \
      --map-out "$dir/maps/$s.parquet" --rejects "$dir/maps/$s.rejects.csv" 2>/dev/null
  done
  rm -rf "$dir/world/exports"
  /usr/bin/time -f "%e %M" -o "$dir/time" $bin link --out "$dir/run" -j "${THREADS:-0}" ${LINK_ARGS:-} "$dir"/enc/*.parquet >/dev/null 2>&1
  read -r wall rss < "$dir/time"
  eval_out=$($bin evaluate --truth "$dir/world/truth" --run "$dir/run" --maps "$dir/maps" 2>/dev/null | head -4)
  python3 - "$dir" "$persons" "$wall" "$rss" "$eval_out" <<'PY'
import json, sys
d, persons, wall, rss, ev = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
j = json.load(open(d + "/run/diagnostics.json"))
lines = ev.splitlines()
pred = lines[1].split(", ")[1].split(" ")[0]
f1 = lines[3].split()[3]
s = j["seconds"]
print(f"| {int(persons):,} | {j['records']:,} | {j['clks']:,} | {j['candidate_pairs']:,} | {j['pairs_at_or_above_threshold']:,} | {s['read']:.1f} | {s['compare']:.1f} | {s['cluster']:.1f} | {wall:.1f} | {rss // 1024:,} | {int(pred):,} | {f1} |")
PY
  [ -n "${KEEP:-}" ] && echo "kept $dir" >&2 || rm -rf "$dir"
done

#!/usr/bin/env bash
# Drafts from `crosswalk inspect` against the hand-written mappings, on a synthetic world:
# synth -> inspect every export (timed) -> fill in only the code tables, agency name and type
# and default stage from the hand-written mapping -> diff [columns] -> encode and link both
# sets -> evaluate both. Needs python3 (3.11+, for tomllib) to fill the drafts in.
# Usage: benches/inspect_drafts.sh PERSONS [SEED]   (run from the repository root)
# Env: KEEP=1 keeps the temporary directory.
set -euo pipefail
persons=${1:-2000}; seed=${2:-1}
bin=target/release/crosswalk
[ -x "$bin" ] || cargo build --release --quiet
dir=$(mktemp -d)
[ -n "${KEEP:-}" ] && echo "kept $dir" >&2 || trap 'rm -rf "$dir"' EXIT
$bin synth --persons "$persons" --seed "$seed" --out "$dir/world" 2>/dev/null
$bin keygen --out "$dir/key" >/dev/null 2>&1
mkdir -p "$dir/drafts"
for m in "$dir"/world/mappings/*.toml; do
  s=$(basename "$m" .toml)
  type=$(sed -n 's/^agency_type = "\(.*\)"/\1/p' "$m")
  rows=$(($(wc -l < "$dir/world/exports/$s.csv") - 1))
  /usr/bin/time -f "inspect $s ($rows rows): %e s wall, %M KB peak" \
    $bin inspect "$dir/world/exports/$s.csv" --agency-type "$type" --draft "$dir/drafts/$s.draft.toml" 2>&1 >/dev/null \
    | grep '^inspect'
  python3 - "$m" "$dir/drafts/$s.draft.toml" "$dir/drafts/$s.toml" <<'PY'
import json, sys, tomllib
hand = tomllib.load(open(sys.argv[1], "rb"))
draft = tomllib.load(open(sys.argv[2], "rb"))
for k in ["agency", "agency_type", "default_stage", "sex_codes", "event_codes",
          "service_codes", "trafficking_codes", "service_code_applies_to"]:
    if k in hand:
        draft[k] = hand[k]
    elif k in draft and not draft[k]:
        del draft[k]
def val(v):
    if isinstance(v, str): return json.dumps(v)
    if isinstance(v, list): return "[" + ", ".join(val(x) for x in v) + "]"
    if isinstance(v, dict): return "{ " + ", ".join(f"{json.dumps(k)} = {val(x)}" for k, x in v.items()) + " }"
    return str(v).lower() if isinstance(v, bool) else str(v)
lines, tables = [], []
for k, v in draft.items():
    (tables.append((k, v)) if isinstance(v, dict) else lines.append(f"{k} = {val(v)}"))
for k, v in tables:
    lines.append(f"[{k}]")
    lines += [f"{json.dumps(kk)} = {val(vv)}" for kk, vv in v.items()]
open(sys.argv[3], "w").write("\n".join(lines) + "\n")
name = sys.argv[1].split("/")[-1]
diff = [k for k in sorted(set(hand["columns"]) | set(draft["columns"]))
        if hand["columns"].get(k) != draft["columns"].get(k)]
enc = [k for k in ["encoding", "delimiter"] if hand.get(k, {"encoding": "utf-8", "delimiter": ","}[k]) != draft.get(k)]
print(f"  {name}: [columns] differ in {diff or 'nothing'}; encoding/delimiter differ in {enc or 'nothing'}")
PY
done
for set in hand drafts; do
  mkdir -p "$dir/$set.enc" "$dir/$set.maps"
  for m in "$dir"/world/mappings/*.toml; do
    s=$(basename "$m" .toml)
    src=$m; [ "$set" = drafts ] && src="$dir/drafts/$s.toml"
    $bin encode --source "$src" --key-file "$dir/key" --input "$dir/world/exports/$s.csv" \
      --out "$dir/$set.enc/$s.parquet" --map-out "$dir/$set.maps/$s.parquet" \
      --rejects "$dir/$set.maps/$s.rejects.csv" 2>/dev/null
  done
  $bin link --out "$dir/$set.run" "$dir/$set.enc"/*.parquet >/dev/null 2>&1
  echo "== $set: $($bin evaluate --truth "$dir/world/truth" --run "$dir/$set.run" --maps "$dir/$set.maps" | grep "^all ")"
done
cmp -s <(cd "$dir/hand.enc" && cat *.parquet) <(cd "$dir/drafts.enc" && cat *.parquet) \
  && echo "encodings: byte-identical" || echo "encodings: differ"

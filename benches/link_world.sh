#!/usr/bin/env bash
# End to end on a synthetic world: synth -> keygen -> encode every agency -> link -> evaluate.
# Usage: benches/link_world.sh PERSONS [THRESHOLD] [SEED]   (run from the repository root)
# Env: REALISM=hard makes a hard world (default classic), SCHEMA=FILE encodes with that schema
# (default: the world's), KEY=FILE uses that key (default: a fresh one per run), COHESION=NUM,
# KEEP=1 keeps the temporary directory, LINK_ARGS='...' adds flags to `crosswalk link`.
set -euo pipefail
persons=${1:-2000}; threshold=${2:-0.8}; seed=${3:-1}
bin=target/release/crosswalk
[ -x "$bin" ] || cargo build --release --quiet
dir=$(mktemp -d)
[ -n "${KEEP:-}" ] && echo "kept $dir" >&2 || trap 'rm -rf "$dir"' EXIT
$bin synth --persons "$persons" --seed "$seed" --realism "${REALISM:-classic}" --out "$dir/world" 2>/dev/null
if [ -n "${KEY:-}" ]; then install -m 600 "$KEY" "$dir/key"; else $bin keygen --out "$dir/key" >/dev/null 2>&1; fi
mkdir -p "$dir/enc" "$dir/maps"
for m in "$dir"/world/mappings/*.toml; do
  s=$(basename "$m" .toml)
  $bin encode --schema "${SCHEMA:-$dir/world/schema.toml}" --source "$m" --key-file "$dir/key" \
    --input "$dir/world/exports/$s.csv" --out "$dir/enc/$s.parquet" \
    --map-out "$dir/maps/$s.parquet" --rejects "$dir/maps/$s.rejects.csv" 2>/dev/null
done
/usr/bin/time -f "link: %e s wall, %M KB peak" $bin link --out "$dir/run" --threshold "$threshold" --cohesion "${COHESION:-0.5}" ${LINK_ARGS:-} "$dir"/enc/*.parquet >/dev/null
$bin evaluate --truth "$dir/world/truth" --run "$dir/run" --maps "$dir/maps"

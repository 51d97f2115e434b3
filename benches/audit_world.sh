#!/usr/bin/env bash
# Attack a synthetic world's encodings and score the attack against its truth:
# synth (target) -> keygen -> encode every agency -> synth (reference, another seed) -> audit.
# Usage: benches/audit_world.sh PERSONS [REFERENCE_PERSONS] [SEED]   (run from the repository root)
# Env: SCHEMA=FILE encodes with that schema (default: the built-in one), REALISM=hard makes both
# worlds hard (default classic), AGENCIES='dcf police'
# encodes only those exports, KEEP=1 keeps the temporary directory, AUDIT_ARGS='...' adds flags
# to `crosswalk audit`.
set -euo pipefail
persons=${1:-2000}; ref=${2:-20000}; seed=${3:-1}
bin=target/release/crosswalk
[ -x "$bin" ] || cargo build --release --quiet
dir=$(mktemp -d)
[ -n "${KEEP:-}" ] && echo "kept $dir" >&2 || trap 'rm -rf "$dir"' EXIT
realism=${REALISM:-classic}
$bin synth --persons "$persons" --seed "$seed" --realism "$realism" --out "$dir/world" >/dev/null 2>&1
$bin synth --persons "$ref" --seed "$((seed + 1000))" --realism "$realism" --out "$dir/ref" >/dev/null 2>&1
schema=${SCHEMA:-$dir/world/schema.toml}
if [ -n "${SCHEMA:-}" ]; then cp "$SCHEMA" "$dir/world/schema.toml"; fi
$bin keygen --out "$dir/key" >/dev/null 2>&1
mkdir -p "$dir/enc"
for m in "$dir"/world/mappings/*.toml; do
  s=$(basename "$m" .toml)
  if [ -n "${AGENCIES:-}" ] && ! [[ " $AGENCIES " == *" $s "* ]]; then rm "$m"; continue; fi
  $bin encode --schema "$schema" --source "$m" --key-file "$dir/key" \
    --input "$dir/world/exports/$s.csv" --out "$dir/enc/$s.parquet" \
    --rejects "$dir/enc/$s.rejects.csv" 2>/dev/null
done
/usr/bin/time -f "audit: %e s wall, %U s user, %M KB peak" \
  $bin audit --schema "$schema" --reference "$dir/ref/truth/identities.csv" \
  --truth "$dir/world" --key-file "$dir/key" --out "$dir/audit.json" ${AUDIT_ARGS:-} "$dir"/enc/*.parquet

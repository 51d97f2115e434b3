#!/usr/bin/env bash
# `crosswalk encode -j 2` on one large synthetic export under three schemas: the default (a
# diffused record CLK beside diffused field-level parts), plain (the default fields unhardened,
# record CLK only) and parts (plain record CLK beside diffused parts). Prints each schema's
# median wall time and rows per second.
#
# Usage: benches/encode_speed.sh [PERSONS]
#   PERSONS (default 280000): the world `crosswalk synth --seed 1` makes; its police export is
#   encoded (243,328 rows at 280,000 persons).
#   REPEAT (default 9): runs per schema, interleaved (schema A, B, C, A, B, C, ...) so that a
#   host whose speed drifts slows every schema alike.
#   BASELINE: a second crosswalk binary, run in turn with this one on each schema, for an A/B
#   of two builds on the same host (its medians are printed beside).
# Figures and the host they came from: docs/encoding.md and docs/measurements/.
set -euo pipefail
persons=${1:-280000}
repeat=${REPEAT:-9}
bin=target/release/crosswalk
cargo build --release --quiet   # a no-op when up to date; never times a stale binary
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
"$bin" synth --persons "$persons" --seed 1 --out "$dir/world" >/dev/null 2>&1
"$bin" keygen --out "$dir/key" >/dev/null 2>&1
export_csv="$dir/world/exports/police.csv"
mapping="$dir/world/mappings/police.toml"
rows=$(($(wc -l < "$export_csv") - 1))
# default: the built-in schema (a diffused record CLK beside diffused parts); plain: the same
# fields unhardened and without parts (the default before 2026-12-07); parts: plain record CLK
# beside diffused parts.
cp fixtures/config/schema.toml "$dir/default.toml"
sed -e 's/^hardening = "diffusion" .*/hardening = "none"/' -e '/^\[parts\]/,$d' fixtures/config/schema.toml > "$dir/plain.toml"
printf '%s\n[parts]\n' "$(cat "$dir/plain.toml")" > "$dir/parts.toml"
grep -q '^hardening = "none"' "$dir/plain.toml" && ! grep -q '^\[parts\]' "$dir/plain.toml"
grep -q '^hardening = "diffusion"' "$dir/default.toml" && grep -q '^\[parts\]' "$dir/default.toml"
echo "host: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), family $(grep -m1 'cpu family' /proc/cpuinfo | cut -d: -f2 | tr -d ' ') model $(grep -m1 '^model[[:space:]]' /proc/cpuinfo | cut -d: -f2 | tr -d ' '); AVX-512: $(grep -q avx512f /proc/cpuinfo && echo yes || echo no); $rows rows"
binaries=("$bin")
[ -n "${BASELINE:-}" ] && binaries+=("$BASELINE")
for _ in $(seq "$repeat"); do
  for schema in default plain parts; do
    for b in "${binaries[@]}"; do
      start=$(date +%s.%N)
      "$b" encode --schema "$dir/$schema.toml" --source "$mapping" --key-file "$dir/key" \
        --input "$export_csv" --out "$dir/out.parquet" -j 2 >/dev/null 2>"$dir/err" \
        || { echo "encode failed ($schema, $b):" >&2; cat "$dir/err" >&2; exit 1; }
      end=$(date +%s.%N)
      echo "$schema $b $(echo "$end - $start" | bc)" >> "$dir/times"
    done
  done
done
python3 - "$dir/times" "$rows" <<'PY'
import sys, collections
times = collections.defaultdict(list)
for line in open(sys.argv[1]):
    schema, binary, t = line.split()
    times[(schema, binary)].append(float(t))
rows = int(sys.argv[2])
for (schema, binary), ts in times.items():
    ts.sort()
    m = ts[len(ts) // 2]
    print(f"{schema:15} {binary}: median {m:.3f} s ({ts[0]:.3f}-{ts[-1]:.3f}, {len(ts)} runs), {rows / m:,.0f} rows/s")
PY

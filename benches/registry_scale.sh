#!/usr/bin/env bash
# What a month costs in a big registry: synth -> encode every agency in two parts (the first
# (1 - NEW_SHARE) of each export's rows as the registry's past, the rest as this month) ->
# `link --registry` of the past (timed) -> `link --registry` of the month (timed, peak memory)
# -> evaluate (quality and id stability).
# Usage: benches/registry_scale.sh PERSONS   (e.g. 290000 for ~1.05M records; run from the
# repository root; needs ~1 GB of disk per 100k persons in a temporary directory, removed
# afterwards unless KEEP=1). Env: NEW_SHARE (default 0.048: ~50k of ~1.05M rows), THREADS,
# MONTH_REPEAT (default 0: how many more times to time the month, for the spread),
# REALISM=hard (a hard world; default classic), SCHEMA=FILE (encode with it instead of the
# world's; a schema with [parts] makes a registry on the match model), KEY=FILE (default: the
# test key).
set -euo pipefail
bin=target/release/crosswalk
[ -x "$bin" ] || cargo build --release --quiet
persons=${1:?usage: benches/registry_scale.sh PERSONS}
share=${NEW_SHARE:-0.048}
dir=$(mktemp -d)
$bin synth --persons "$persons" --seed 1 --realism "${REALISM:-classic}" --out "$dir/world" 2>/dev/null
install -m 600 "${KEY:-fixtures/encoder/test.key}" "$dir/key"
mkdir -p "$dir/enc" "$dir/maps" "$dir/csv"
for m in "$dir"/world/mappings/*.toml; do
  s=$(basename "$m" .toml)
  f="$dir/world/exports/$s.csv"
  rows=$(($(wc -l < "$f") - 1))
  past=$(python3 -c "print(round($rows * (1 - $share)))")
  sed -n "1p;2,$((past + 1))p" "$f" > "$dir/csv/past_$s.csv"
  sed -n "1p;$((past + 2)),\$p" "$f" > "$dir/csv/month_$s.csv"
  for part in past month; do
    $bin encode --schema "${SCHEMA:-$dir/world/schema.toml}" --source "$m" --key-file "$dir/key" \
      --input "$dir/csv/${part}_$s.csv" --out "$dir/enc/${part}_$s.parquet" \
      --map-out "$dir/maps/${part}_$s.parquet" --rejects "$dir/maps/${part}_$s.rejects.csv" 2>/dev/null
  done
done
rm -rf "$dir/world/exports" "$dir/csv"
/usr/bin/time -f "%e %M" -o "$dir/time1" $bin link --registry "$dir/reg" --label past -j "${THREADS:-0}" "$dir"/enc/past_*.parquet 2> "$dir/log1" >/dev/null
/usr/bin/time -f "%e %M" -o "$dir/time2" $bin link --registry "$dir/reg" --label month -j "${THREADS:-0}" "$dir"/enc/month_*.parquet 2> "$dir/log2" >/dev/null
read -r wall1 rss1 < "$dir/time1"
read -r wall2 rss2 < "$dir/time2"
echo "past:  ${wall1}s wall, peak RSS $((rss1 / 1024)) MB"; grep -v "^Command" "$dir/log1" || true
echo "month: ${wall2}s wall, peak RSS $((rss2 / 1024)) MB"; grep -v "^Command" "$dir/log2" || true
cat "$dir/reg/generations/gen-000002/diagnostics.json"
# MONTH_REPEAT=N: the month again N times, each on a fresh copy of the registry as it was
# before it (generation 1 current; the next run cleans up what the copy has of generation 2).
for i in $(seq 1 "${MONTH_REPEAT:-0}"); do
  rm -rf "$dir/again" && cp -r "$dir/reg" "$dir/again" && rm -rf "$dir/again/generations/gen-000002"
  printf 'gen-000001\n' > "$dir/again/CURRENT"
  /usr/bin/time -f "%e %M" -o "$dir/time3" $bin link --registry "$dir/again" --label month -j "${THREADS:-0}" "$dir"/enc/month_*.parquet 2>/dev/null >/dev/null
  read -r wall3 rss3 < "$dir/time3"
  echo "month again ($i): ${wall3}s wall, peak RSS $((rss3 / 1024)) MB; $(tr -d ' \n' < "$dir/again/generations/gen-000002/diagnostics.json" | grep -o '"seconds":{.*}')"
done
rm -rf "$dir/again"
$bin evaluate --truth "$dir/world/truth" --run "$dir/reg" --maps "$dir/maps" 2>/dev/null | grep -E "records|^all|stability" || true
[ -n "${KEEP:-}" ] && echo "kept $dir" >&2 || rm -rf "$dir"

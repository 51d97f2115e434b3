#!/usr/bin/env bash
# The comparison kernel against its peer: anonlink 0.15.3's Dice kernel and crosswalk's, on the
# same host in the same run, one pinned core each, pairs per second with every pair fully
# computed (1024-bit CLKs of random bits at 30% density, the density of crosswalk's default
# schema; at a threshold of 0.9 no pair passes and no popcount bound prunes one, the form in
# which both kernels do all their work).
#
# Usage: benches/anonlink_peer.sh [PYTHON]
#   PYTHON has anonlink==0.15.3 (default: a venv made in target/anonlink-venv with pip).
#   CPU (default 1): the core both kernels are pinned to. REPEAT (default 7): anonlink calls,
#   the median is kept. crosswalk's figure is criterion's (`cargo bench --bench compare`,
#   groups compare/full and compare/full_block), its middle estimate per platform.
# Figures and the host they came from: docs/linkage.md ("Against anonlink").
set -euo pipefail
cpu=${CPU:-1}
py=${1:-}
if [ -z "$py" ]; then
  venv=target/anonlink-venv
  if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet anonlink==0.15.3
  fi
  py=$venv/bin/python
fi
echo "host: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), family $(grep -m1 'cpu family' /proc/cpuinfo | cut -d: -f2 | tr -d ' ') model $(grep -m1 '^model[[:space:]]' /proc/cpuinfo | cut -d: -f2 | tr -d ' '); AVX-512: $(grep -q avx512f /proc/cpuinfo && echo yes || echo no)"
taskset -c "$cpu" "$py" - "${REPEAT:-7}" <<'PY'
import random, sys, time
import anonlink
from anonlink import similarities
from bitarray import bitarray

repeat = int(sys.argv[1])
rng = random.Random(1)
bits, density = 1024, 0.30

def clk():
    b = bitarray(bits)
    b.setall(0)
    for i in rng.sample(range(bits), int(bits * density)):
        b[i] = 1
    return b

a = [clk() for _ in range(2000)]
b = [clk() for _ in range(20000)]
pairs = len(a) * len(b)
rates = []
for _ in range(repeat):
    t = time.perf_counter()
    scores, _ = similarities.dice_coefficient_accelerated((a, b), 0.9)
    rates.append(pairs / (time.perf_counter() - t))
    assert len(scores) == 0, "random filters should not reach 0.9"
rates.sort()
print(f"anonlink {anonlink.__version__} dice_coefficient_accelerated, one core: "
      f"median {rates[len(rates) // 2] / 1e6:.1f} M pairs/s "
      f"({rates[0] / 1e6:.1f}-{rates[-1] / 1e6:.1f}, {repeat} calls of {pairs:,} pairs)")
PY
# crosswalk: the criterion groups whose pairs are all fully computed (compare/full counts
# intersections pair by pair; compare/full_block is the link job's kernel and does the whole
# threshold test, the like-for-like figure), and the core's clock
# (one dependent add per cycle) to turn pairs per second into cycles per pair.
taskset -c "$cpu" cargo bench --quiet --bench compare -- 'compare/full(_block)?/|clock' 2>/dev/null \
  | awk '/^(compare\/full|clock)/ { name = $1 } /thrpt:/ && name { gsub(/\[|\]/, ""); print "crosswalk " name ", one core: " $4 " " $5 " (" $2 "-" $6 " " $7 ")"; name = "" }'

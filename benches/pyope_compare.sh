#!/usr/bin/env bash
# Times pyope (PyPI: the same Boldyreva et al. 2009 scheme in Python) and bmpls on the same
# plaintexts in one run, and prints the ratio.
#
#   bash benches/pyope_compare.sh            # 2,000 plaintexts of 32 bits
#   COUNT=500 bash benches/pyope_compare.sh
#
# pyope has no tree cache, so bmpls runs with --cache-depth 0 for the like-for-like figure and
# with its default cache for the figure a reporter sees. pyope's usual range is 48 bits for a
# 32-bit domain; bmpls needs at least 32 bits of expansion (64) and defaults to 96, so both
# pyope ranges are timed too.
set -euo pipefail
count=${COUNT:-2000}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "installing pyope into a scratch virtualenv…" >&2
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install --quiet --disable-pip-version-check pyope

python3 - "$count" > "$work/plaintexts.txt" <<'PY'
import random, sys
rng = random.Random(20261124)
for _ in range(int(sys.argv[1])):
    print(rng.randrange(0, 2**32))
PY

cat > "$work/time_pyope.py" <<'PY'
import sys, time
from pyope.ope import OPE, ValueRange
plaintexts = [int(line) for line in open(sys.argv[1])]
for out_bits in (48, 64):
    cipher = OPE(OPE.generate_key(), in_range=ValueRange(0, 2**32 - 1),
                 out_range=ValueRange(0, 2**out_bits - 1))
    start = time.perf_counter()
    for m in plaintexts:
        cipher.encrypt(m)
    ns = (time.perf_counter() - start) / len(plaintexts) * 1e9
    print(f"pyope {out_bits} {ns:.0f}")
PY
"$work/venv/bin/python" "$work/time_pyope.py" "$work/plaintexts.txt" > "$work/pyope.txt"

echo "building bmpls (release)…" >&2
(cd "$root" && cargo build --release --quiet)
bmpls="$root/target/release/bmpls"
run_bmpls() { # range_bits cache_depth
    "$bmpls" bench ope --bits 32 --range-bits "$1" --cache-depth "$2" --plaintexts "$work/plaintexts.txt" |
        awk '$3 == "deterministic" { print $4 }'
}
b64_cold=$(run_bmpls 64 0)
b96_cold=$(run_bmpls 96 0)
b96_warm=$(run_bmpls 96 14)
p48=$(awk '$2 == 48 { print $3 }' "$work/pyope.txt")
p64=$(awk '$2 == 64 { print $3 }' "$work/pyope.txt")

echo
echo "32-bit plaintexts, $count of them, deterministic encryption, one key (ns per encryption)"
printf '%-40s %12s %10s\n' "implementation" "ns/op" "vs pyope-48"
row() { printf '%-40s %12.0f %9.0fx\n' "$1" "$2" "$(echo "$p48 / $2" | bc -l)"; }
row "pyope, 32 -> 48 bits" "$p48"
row "pyope, 32 -> 64 bits" "$p64"
row "bmpls, 32 -> 64 bits, no cache" "$b64_cold"
row "bmpls, 32 -> 96 bits, no cache" "$b96_cold"
row "bmpls, 32 -> 96 bits, cache depth 14" "$b96_warm"
echo
printf 'like for like (64-bit range, no cache): bmpls is %.0fx faster than pyope\n' \
    "$(echo "$p64 / $b64_cold" | bc -l)"

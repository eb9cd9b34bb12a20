#!/usr/bin/env bash
# Read attnpotts' EC files back with EVcouplings' own reader (evcouplings.couplings.read_raw_ec_file).
# EVcouplings is not a dependency: it is installed into a throwaway virtual environment under a
# temporary folder, which is removed at the end (or set EVCOUPLINGS_PYTHON to a python that has it).
# Needs scripts/setup.sh first (uses .venv); checks this checkout's sources.
# Usage: bash scripts/check_evcouplings.sh          (about a minute plus the installation)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
export PYTHONPATH="$ROOT/src${PYTHONPATH:+:$PYTHONPATH}"
EVC=${EVCOUPLINGS_PYTHON:-}
if [ -z "$EVC" ]; then
  python3 -m venv "$TMP/evc"
  "$TMP/evc/bin/python" -m pip install --quiet evcouplings
  EVC="$TMP/evc/bin/python"
fi
DATA=src/attnpotts/data/PF00014
for mode in focus columns; do
  flag=$([ "$mode" = focus ] && echo --focus || true)
  .venv/bin/attnpotts contacts "$DATA/PF00014_mgap6.fasta.gz" $flag --max-iter 5 --no-progress \
    --out "$TMP/$mode" > /dev/null
done
cd "$TMP"
PYTHONPATH= "$EVC" - <<'PY'
import csv

from evcouplings.couplings import read_raw_ec_file

for mode, first_number in (("focus", 990), ("columns", 1)):
    ecs = read_raw_ec_file(f"{mode}/ec.txt")
    with open(f"{mode}/ec.tsv", newline="") as fh:
        ours = list(csv.DictReader(fh, delimiter="\t"))
    assert list(ecs.columns) == ["i", "A_i", "j", "A_j", "fn", "cn"]
    assert len(ecs) == len(ours) and (ecs["fn"] == 0).all() and (ecs["i"] < ecs["j"]).all()
    assert ecs["cn"].is_monotonic_decreasing
    assert ecs["i"].min() >= first_number
    top = ecs.iloc[0]
    assert (int(top["i"]), top["A_i"], int(top["j"]), top["A_j"]) == (
        int(ours[0]["i"]), ours[0]["A_i"], int(ours[0]["j"]), ours[0]["A_j"])
    assert abs(float(top["cn"]) - float(ours[0]["score"])) < 5e-7
    print(f"{mode}: EVcouplings read {len(ecs)} ECs; top {int(top['i'])} {top['A_i']} "
          f"{int(top['j'])} {top['A_j']} cn={top['cn']:.6f}; numbers from {ecs['i'].min()}")
print("ok: EVcouplings' read_raw_ec_file reads both EC files")
PY

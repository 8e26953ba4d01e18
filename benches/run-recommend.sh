#!/usr/bin/env bash
# Recommendation benchmarks (`make bench-recommend`), both written into
# BENCHMARKS.md:
#  1. `kmt-bench recommend`: RMSE, MAE and fit time of our CF models and of
#     the Python library Surprise (BaselineOnly, KNNBaseline, SVD, default
#     settings) on ml-100k's u1..u5 splits, in one run, split by split;
#  2. `kmt-bench recommend-rank`: leave-last-out hit-rate@10 / nDCG@10 of
#     CF, content (titles embedded with MiniLM), the blend and most-popular.
# Surprise runs in a private virtualenv under ~/.cache/kmt/surprise-venv
# (`pip install 'numpy<2' scikit-surprise`, built once).
set -euo pipefail
cd "$(dirname "$0")/.."
CORPORA="${KMT_CORPORA:-../shared/corpora}"
DATA="$CORPORA/ml-100k"
if [ ! -f "$DATA/u1.base" ]; then
    echo "skipping: no ml-100k at $DATA (set KMT_CORPORA)" >&2
    exit 0
fi
VENV="${XDG_CACHE_HOME:-$HOME/.cache}/kmt/surprise-venv"
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import surprise' 2>/dev/null; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check 'numpy<2' scikit-surprise
fi
cargo build --release -q -p kmt-benches
BENCH="${CARGO_TARGET_DIR:-target}/release/kmt-bench"
"$BENCH" recommend --data "$DATA" --surprise "$VENV/bin/python" --out BENCHMARKS.md
bash scripts/fetch-model.sh
"$BENCH" recommend-rank --data "$DATA" --out BENCHMARKS.md

#!/usr/bin/env bash
# Relevance benchmark (`make bench-relevance`): the reference BM25 (Python
# bm25s with a Snowball stemmer, in a private virtualenv) and KMT's lexical,
# semantic and hybrid rankers on ../shared/corpora/msmarco-5k, in one run;
# writes the "Relevance" section of BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
CORPORA="${KMT_CORPORA:-../shared/corpora}"
SET="${KMT_RELEVANCE_SET:-$CORPORA/msmarco-5k}"
if [ ! -f "$SET/corpus.jsonl" ]; then
    echo "skipping: no BEIR set at $SET (set KMT_CORPORA)" >&2
    exit 0
fi
bash scripts/fetch-model.sh
VENV="${XDG_CACHE_HOME:-$HOME/.cache}/kmt/bench-venv"
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
"$VENV/bin/pip" install --quiet --disable-pip-version-check "bm25s==0.2.*" PyStemmer numpy scipy
REF="$(mktemp)"
trap 'rm -f "$REF"' EXIT
echo "reference: bm25s on $SET" >&2
"$VENV/bin/python" benches/bm25_reference.py "$SET" > "$REF"
cat "$REF" >&2
cargo run --release -q -p kmt-benches -- relevance --set "$SET" --reference "$REF" --out BENCHMARKS.md

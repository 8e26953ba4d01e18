#!/usr/bin/env bash
# Relevance benchmark (`make bench-relevance`): two reference rankers (BM25 by
# Python bm25s with a Snowball stemmer, plain dense MiniLM in numpy; in a
# private virtualenv) and KMT's lexical, semantic and hybrid rankers on
# ../shared/corpora/msmarco-5k, in one run, then KMT's rankers on our judged
# questions about the PostgreSQL manual; writes the "Relevance" sections of
# BENCHMARKS.md.
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
"$VENV/bin/pip" install --quiet --disable-pip-version-check "bm25s==0.2.*" PyStemmer numpy scipy tokenizers safetensors
MODEL_DIR="${KMT_MODEL_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/kmt/models/all-MiniLM-L6-v2}"
BM25="$(mktemp)"
DENSE="$(mktemp)"
trap 'rm -f "$BM25" "$DENSE"' EXIT
echo "reference: bm25s on $SET" >&2
"$VENV/bin/python" benches/relevance_reference.py bm25 "$SET" > "$BM25"
cat "$BM25" >&2
echo "reference: plain dense MiniLM in numpy on $SET (a few minutes)" >&2
"$VENV/bin/python" benches/relevance_reference.py dense "$SET" "$MODEL_DIR" > "$DENSE"
cat "$DENSE" >&2
cargo run --release -q -p kmt-benches -- relevance --set "$SET" \
    --reference "bm25s (Snowball English)=$BM25" \
    --reference "plain dense MiniLM (numpy, no KMT code)=$DENSE" --out BENCHMARKS.md
# The second set: our questions about the PostgreSQL manual (judged by hand,
# written before any ranker saw them) over ../shared/corpora/pgdocs.
if [ -f "$CORPORA/pgdocs/corpus.jsonl" ]; then
    cargo run --release -q -p kmt-benches -- relevance --set benches/relevance/pgdocs-questions \
        --corpus "$CORPORA/pgdocs/corpus.jsonl" --out BENCHMARKS.md
else
    echo "skipping the pgdocs questions: no $CORPORA/pgdocs/corpus.jsonl" >&2
fi

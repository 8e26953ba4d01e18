#!/usr/bin/env bash
# End-to-end search latency benchmark: KMT (embedded store, over HTTP) against
# PostgreSQL full-text search, over the same N generated articles and queries.
#
#   benches/run-latency.sh [N]          N articles (default 100000; 0 = the pgdocs pages as-is)
#
# It builds the release binaries, generates the articles from ../shared/corpora
# into a temp dir, starts `kmt serve` on 127.0.0.1:$KMT_BENCH_PORT, imports them,
# waits until the index holds all N, runs `kmt-bench compare` against it and
# PostgreSQL, and writes BENCHMARKS.md (repo root) and the plot under
# benches/results/. The server and the temp dir are removed on exit.
#
# Environment (all optional):
#   DATABASE_URL           postgres server for the baseline (default postgres://postgres@127.0.0.1:5432/postgres);
#                          only kmt-bench uses it: kmt itself always runs on its embedded store here
#   KMT_CORPORA            reference corpora folder (default ../shared/corpora next to the repo)
#   KMT_BENCH_CONCURRENCY  concurrent workers per system (default 4)
#   KMT_BENCH_DURATION     measured seconds per system (default 10)
#   KMT_BENCH_WARMUP       warm-up seconds per system (default 2)
#   KMT_BENCH_PORT         port for kmt serve (default 18080)
#   KMT_BENCH_PG_WORK      ranked | full (default ranked; see `kmt-bench compare --help`)
#   KMT_BENCH_LABEL        section label in BENCHMARKS.md (default n<N>-c<concurrency>)
#   KMT_BENCH_AUTH         1 = query KMT with the admin token instead of anonymously
#   KMT_BENCH_INDEX_TIMEOUT seconds to wait for the index to hold all articles (default 1800)
#   CARGO_TARGET_DIR       where cargo puts the binaries (default ./target)
set -euo pipefail

N="${1:-100000}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PORT="${KMT_BENCH_PORT:-18080}"
PG_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
CORPORA="${KMT_CORPORA:-$ROOT/../shared/corpora}"
INDEX_TIMEOUT="${KMT_BENCH_INDEX_TIMEOUT:-1800}"
BASE="http://127.0.0.1:$PORT"

log() { echo "run-latency: $*" >&2; }

if [ ! -f "$CORPORA/pgdocs/corpus.jsonl" ]; then
    log "this benchmark needs the reference corpora (pgdocs/, msmarco-5k/) at $CORPORA; set KMT_CORPORA"
    exit 2
fi

log "building release binaries"
cargo build --release -p kmt-api -p kmt-benches
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
KMT="$TARGET/release/kmt"
BENCH="$TARGET/release/kmt-bench"

WORK="$(mktemp -d -t kmt-bench.XXXXXX)"
DATA="$WORK/data"
SERVER_PID=""

cleanup() {
    local rc=$?
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        log "stopping kmt serve (pid $SERVER_PID)"
        kill "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 1 50); do
            kill -0 "$SERVER_PID" 2>/dev/null || break
            sleep 0.2
        done
        kill -9 "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    if [ "$rc" -ne 0 ] && [ -f "$WORK/server.log" ]; then
        log "kmt serve log (last 30 lines):"
        tail -n 30 "$WORK/server.log" >&2 || true
    fi
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# kmt must use its embedded store: never hand it the baseline's DATABASE_URL.
kmt() { env -u DATABASE_URL "$KMT" "$@"; }

log "generating $N articles into $WORK"
"$BENCH" scale --corpora "$CORPORA" --articles "$N" --out "$WORK/articles.jsonl"
EXPECTED="$(grep -c . "$WORK/articles.jsonl")"

log "starting kmt serve on $BASE"
mkdir -p "$DATA"
# The load comes from one address far faster than a person types: lift the
# per-client rate limit for the measurement.
# This benchmark compares lexical search with PostgreSQL FTS: no embedding
# model (hybrid would be the default with one; see run-semantic-latency.sh).
env -u DATABASE_URL KMT_RATE_LIMIT_PER_SEC=0 KMT_EMBEDDER=off "$KMT" serve --data "$DATA" --port "$PORT" >"$WORK/server.log" 2>&1 &
SERVER_PID=$!

for i in $(seq 1 300); do
    if curl -fsS -o /dev/null "$BASE/readyz" 2>/dev/null; then
        break
    fi
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        log "kmt serve exited before becoming ready"
        exit 1
    fi
    if [ "$i" -eq 300 ]; then
        log "kmt serve not ready after 60 s"
        exit 1
    fi
    sleep 0.2
done

log "importing $EXPECTED articles"
kmt import "$WORK/articles.jsonl" --format jsonl --data "$DATA"

log "creating the bench admin user and token"
kmt user add bench --role admin --data "$DATA" >/dev/null
TOKEN="$(kmt token create bench --data "$DATA" | awk 'NF { last = $NF } END { print last }')"
if [ -z "$TOKEN" ]; then
    log "kmt token create printed no token"
    exit 1
fi

log "waiting for the index to hold $EXPECTED articles"
KMT_TOKEN="$TOKEN" "$BENCH" wait-index --url "$BASE" --articles "$EXPECTED" --timeout "$INDEX_TIMEOUT"

if [ "${KMT_BENCH_AUTH:-0}" = "1" ]; then
    export KMT_TOKEN="$TOKEN"
else
    unset KMT_TOKEN
fi
mkdir -p benches/results
KMT_BENCH_DRIVER="benches/run-latency.sh $N" "$BENCH" compare \
    --kmt-url "$BASE" \
    --database-url "$PG_URL" \
    --articles "$WORK/articles.jsonl" \
    --concurrency "${KMT_BENCH_CONCURRENCY:-4}" \
    --duration "${KMT_BENCH_DURATION:-10}" \
    --warmup "${KMT_BENCH_WARMUP:-2}" \
    --pg-work "${KMT_BENCH_PG_WORK:-ranked}" \
    ${KMT_BENCH_LABEL:+--label "$KMT_BENCH_LABEL"} \
    --out BENCHMARKS.md \
    --plot-dir benches/results
log "done: see BENCHMARKS.md"

#!/usr/bin/env bash
# Usage-event recording on vs off (`make bench-events`): two `kmt serve`
# processes over the same pgdocs articles, one recording usage events (the
# default) and one with KMT_EVENT_QUEUE=0; `kmt-bench events` sends every
# query to both, interleaved, and writes p50/p90/p99 of each into the
# "Usage events" section of BENCHMARKS.md. Servers and temp dirs are removed
# on exit.
#
# Environment (optional): KMT_CORPORA, KMT_BENCH_DURATION (default 20 s),
# KMT_BENCH_CONCURRENCY (default 2), KMT_BENCH_PORT (default 18090; the
# "off" server uses the next port).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
CORPORA="${KMT_CORPORA:-$ROOT/../shared/corpora}"
PORT="${KMT_BENCH_PORT:-18090}"
PORT_OFF=$((PORT + 1))
log() { echo "run-events: $*" >&2; }
if [ ! -f "$CORPORA/pgdocs/corpus.jsonl" ]; then
    log "no pgdocs corpus at $CORPORA; set KMT_CORPORA"
    exit 2
fi
cargo build --release -q -p kmt-api -p kmt-benches
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
KMT="$TARGET/release/kmt"
BENCH="$TARGET/release/kmt-bench"
WORK="$(mktemp -d -t kmt-events.XXXXXX)"
PIDS=()
cleanup() {
    local rc=$?
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
kmt() { env -u DATABASE_URL "$KMT" "$@"; }

"$BENCH" scale --corpora "$CORPORA" --articles 0 --out "$WORK/articles.jsonl"
EXPECTED="$(grep -c . "$WORK/articles.jsonl")"
start() { # name port queue
    mkdir -p "$WORK/$1"
    env -u DATABASE_URL KMT_RATE_LIMIT_PER_SEC=0 KMT_EMBEDDER=off KMT_EVENT_QUEUE="$3" \
        "$KMT" serve --data "$WORK/$1" --port "$2" >"$WORK/$1.log" 2>&1 &
    PIDS+=("$!")
    for _ in $(seq 1 300); do
        curl -fsS -o /dev/null "http://127.0.0.1:$2/readyz" 2>/dev/null && break
        sleep 0.2
    done
    kmt import "$WORK/articles.jsonl" --format jsonl --data "$WORK/$1" >/dev/null
    kmt user add bench --role admin --data "$WORK/$1" >/dev/null
    local token
    token="$(kmt token create bench --data "$WORK/$1" | awk 'NF { last = $NF } END { print last }')"
    KMT_TOKEN="$token" "$BENCH" wait-index --url "http://127.0.0.1:$2" --articles "$EXPECTED" --timeout 600
}
log "starting the server with recording on (port $PORT) and off (port $PORT_OFF)"
start on "$PORT" 10000
start off "$PORT_OFF" 0
KMT_BENCH_DRIVER="benches/run-events.sh" "$BENCH" events \
    --on "http://127.0.0.1:$PORT" --off "http://127.0.0.1:$PORT_OFF" \
    --duration "${KMT_BENCH_DURATION:-20}" --concurrency "${KMT_BENCH_CONCURRENCY:-2}" \
    --out BENCHMARKS.md

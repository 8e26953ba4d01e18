#!/usr/bin/env bash
# Semantic and hybrid search latency over HTTP at N articles, with a cold and
# a warm query-embedding cache, plus the indexer's real embedding throughput.
#
#   benches/run-semantic-latency.sh [N]     N generated articles (default 100000)
#
# Embedding N generated articles with the real model would take hours on a
# small machine, so the article vectors are derived: `kmt-bench
# seed-embeddings` embeds a pool of real msmarco-5k passages once and gives
# each article passage a pool vector (picked by a hash of its text) plus
# small noise, stored with the article's real content hash. `kmt serve`'s
# embedding worker reuses those rows and builds the real vector index, as a
# replica booting on stored embeddings does. The query side is real: the
# server embeds every query with all-MiniLM-L6-v2 (unless its LRU cache holds
# it).
#
# Steps: release build; `kmt-bench scale` N articles; `kmt import` into a
# fresh data dir (no server running); `kmt-bench seed-embeddings`; then, for
# KMT_QUERY_CACHE=0 ("cold": every query embedded) and the default cache
# ("warm": the 69 benchmark queries are cached after the warm-up), start
# `kmt serve`, wait until the index holds N articles and the vector index is
# in step, and run `kmt-bench latency` with mode=lexical, semantic and
# hybrid. Last, the real embedding throughput: a second server embeds the
# first KMT_BENCH_EMBED_ARTICLES pgdocs pages with the model. The section
# `## Semantic and hybrid latency` of BENCHMARKS.md is rewritten.
#
# Environment (all optional):
#   KMT_CORPORA             reference corpora folder (default ../shared/corpora next to the repo)
#   KMT_MODEL_DIR           model directory (default ~/.cache/kmt/models/all-MiniLM-L6-v2)
#   KMT_BENCH_CONCURRENCY   concurrent workers (default 4)
#   KMT_BENCH_DURATION      measured seconds per run (default 10)
#   KMT_BENCH_WARMUP        warm-up seconds per run (default 2)
#   KMT_BENCH_PORT          first port (default 18180; the throughput server uses the next one)
#   KMT_BENCH_AUTH          1 = query with the admin token instead of anonymously
#   KMT_BENCH_POOL          real passages in the pool of base vectors (default 2000)
#   KMT_BENCH_EMBED_ARTICLES pgdocs pages for the throughput run (default 100; 0 skips it)
#   KMT_BENCH_INDEX_TIMEOUT seconds to wait for the indexes (default 1800)
#   KMT_BENCH_OUT           markdown file to update (default BENCHMARKS.md; "-" = none)
#   KMT_BENCH_KEEP          1 = keep the temp dir (data, server logs, results)
#   KMT_BENCH_BIN_DIR       use kmt and kmt-bench from this folder instead of building them
#   CARGO_TARGET_DIR        where cargo puts the binaries (default ./target)
set -euo pipefail

N="${1:-100000}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PORT="${KMT_BENCH_PORT:-18180}"
PORT2=$((PORT + 1))
CORPORA="${KMT_CORPORA:-$ROOT/../shared/corpora}"
INDEX_TIMEOUT="${KMT_BENCH_INDEX_TIMEOUT:-1800}"
CONC="${KMT_BENCH_CONCURRENCY:-4}"
DURATION="${KMT_BENCH_DURATION:-10}"
WARMUP="${KMT_BENCH_WARMUP:-2}"
POOL="${KMT_BENCH_POOL:-2000}"
EMBED_N="${KMT_BENCH_EMBED_ARTICLES:-100}"
OUT="${KMT_BENCH_OUT:-BENCHMARKS.md}"

log() { echo "run-semantic-latency: $(date -u +%H:%M:%S) $*" >&2; }

if [ "$N" -lt 1 ]; then
    log "N must be at least 1"
    exit 2
fi
if [ ! -f "$CORPORA/pgdocs/corpus.jsonl" ] || [ ! -f "$CORPORA/msmarco-5k/corpus.jsonl" ]; then
    log "this benchmark needs the reference corpora (pgdocs/, msmarco-5k/) at $CORPORA; set KMT_CORPORA"
    exit 2
fi
for tool in curl jq python3; do
    command -v "$tool" >/dev/null || { log "needs $tool"; exit 2; }
done

if [ -n "${KMT_BENCH_BIN_DIR:-}" ]; then
    log "using kmt and kmt-bench from $KMT_BENCH_BIN_DIR"
    KMT="$KMT_BENCH_BIN_DIR/kmt"
    BENCH="$KMT_BENCH_BIN_DIR/kmt-bench"
else
    log "building release binaries"
    cargo build --release -p kmt-api -p kmt-benches
    TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
    KMT="$TARGET/release/kmt"
    BENCH="$TARGET/release/kmt-bench"
fi

WORK="$(mktemp -d -t kmt-sem-bench.XXXXXX)"
DATA="$WORK/data"
RESULTS="$WORK/results"
mkdir -p "$RESULTS"
SERVER_PID=""
SERVER_LOG=""

stop_server() {
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        log "stopping kmt serve (pid $SERVER_PID)"
        kill "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 1 150); do
            kill -0 "$SERVER_PID" 2>/dev/null || break
            sleep 0.2
        done
        kill -9 "$SERVER_PID" 2>/dev/null || true
    fi
    if [ -n "$SERVER_PID" ]; then
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    SERVER_PID=""
}

cleanup() {
    local rc=$?
    stop_server
    if [ "$rc" -ne 0 ] && [ -n "$SERVER_LOG" ] && [ -f "$SERVER_LOG" ]; then
        log "kmt serve log (last 30 lines):"
        tail -n 30 "$SERVER_LOG" >&2 || true
    fi
    if [ "${KMT_BENCH_KEEP:-0}" = "1" ]; then
        log "kept $WORK"
    else
        rm -rf "$WORK"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# kmt must use its embedded store: never hand it a DATABASE_URL.
kmt() { env -u DATABASE_URL "$KMT" "$@"; }
now() { date +%s.%N; }
since() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$1" "$(now)"; }
rss_mib() { awk '/^VmRSS/ { printf "%.0f", $2 / 1024 }' "/proc/$1/status" 2>/dev/null || echo "n/a"; }

# start_server DATA PORT LOG [ENV=VALUE...]: starts kmt serve in the background.
start_server() {
    local data="$1" port="$2" logf="$3"
    shift 3
    SERVER_LOG="$logf"
    env -u DATABASE_URL KMT_RATE_LIMIT_PER_SEC=0 KMT_LOG_FORMAT=json "$@" \
        "$KMT" serve --data "$data" --port "$port" >"$logf" 2>&1 &
    SERVER_PID=$!
}

# wait_semantic URL ARTICLES: waits until /readyz answers ready with the
# vector index synced, holding ARTICLES articles and nothing queued. Prints
# the seconds until ready (lexical) and until the vector index was in step.
wait_semantic() {
    local base="$1" want="$2" t0 t_ready="" body="" status="" synced="" arts="" queue="" docs="" last_note
    t0="$(now)"
    last_note="$(date +%s)"
    while :; do
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            log "kmt serve exited while starting"
            return 1
        fi
        body="$(curl -sS "$base/readyz" 2>/dev/null || true)"
        if [ -n "$body" ]; then
            status="$(jq -r '.status' <<<"$body")"
            synced="$(jq -r '.semantic.synced' <<<"$body")"
            arts="$(jq -r '.semantic.articles' <<<"$body")"
            queue="$(jq -r '.semantic.queue' <<<"$body")"
            docs="$(jq -r '.index_documents' <<<"$body")"
            if [ "$status" = "ready" ] && [ -z "$t_ready" ]; then
                t_ready="$(since "$t0")"
            fi
            if [ "$status" = "ready" ] && [ "$synced" = "true" ] && [ "$arts" = "$want" ] && [ "$queue" = "0" ]; then
                echo "$t_ready $(since "$t0")"
                return 0
            fi
            if [ "$(jq -r '.semantic.status' <<<"$body")" = "off" ]; then
                log "semantic search is off: $(jq -r '.semantic.reason' <<<"$body")"
                return 1
            fi
        fi
        if [ $(($(date +%s) - last_note)) -ge 15 ]; then
            log "waiting: status=${status:-?} docs=${docs:-?} semantic.articles=${arts:-?} synced=${synced:-?} queue=${queue:-?} ($(since "$t0") s)"
            last_note="$(date +%s)"
        fi
        if python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) > float(sys.argv[2]) else 1)" "$(since "$t0")" "$INDEX_TIMEOUT"; then
            log "indexes not ready after $INDEX_TIMEOUT s: $body"
            return 1
        fi
        sleep 0.5
    done
}

# settle PID: waits (at most 120 s) until the server uses under 20% of one
# core over a second. After its first sync the worker saves the vector index
# and, when the follower rebuilt the full-text index meanwhile, compares
# every article once more: work that must not overlap a measurement.
settle() {
    local pid="$1" a b
    for _ in $(seq 1 120); do
        a="$(awk '{ print $14 + $15 }' "/proc/$pid/stat")"
        sleep 1
        b="$(awk '{ print $14 + $15 }' "/proc/$pid/stat")"
        [ $((b - a)) -lt 20 ] && return 0
    done
    log "kmt serve still busy after 120 s; measuring anyway"
}

# ms_of LOG MESSAGE: the `ms` field of the last JSON log line with MESSAGE.
ms_of() {
    grep -F "\"$2\"" "$1" | tail -n 1 | jq -r '.fields.ms // empty' 2>/dev/null || true
}

# ---------------------------------------------------------------------------
log "generating $N articles into $WORK"
T="$(now)"
"$BENCH" scale --corpora "$CORPORA" --articles "$N" --out "$WORK/articles.jsonl"
GEN_S="$(since "$T")"
EXPECTED="$(grep -c . "$WORK/articles.jsonl")"

log "importing $EXPECTED articles (no server running)"
mkdir -p "$DATA"
T="$(now)"
kmt import "$WORK/articles.jsonl" --format jsonl --data "$DATA"
IMPORT_S="$(since "$T")"

kmt user add bench --role admin --data "$DATA" >/dev/null
TOKEN="$(kmt token create bench --data "$DATA" | awk 'NF { last = $NF } END { print last }')"
if [ -z "$TOKEN" ]; then
    log "kmt token create printed no token"
    exit 1
fi
if [ "${KMT_BENCH_AUTH:-0}" = "1" ]; then
    export KMT_TOKEN="$TOKEN"
    WHO="with the admin's bearer token"
else
    unset KMT_TOKEN
    WHO="anonymous"
fi

log "seeding derived embeddings"
T="$(now)"
SEED_OUT="$("$BENCH" seed-embeddings --data "$DATA" --corpora "$CORPORA" --pool "$POOL")"
SEED_S="$(since "$T")"
echo "$SEED_OUT"
PASSAGES="$(awk '/^seeded/ { print $(NF-6) }' <<<"$SEED_OUT")"

# One JSON object per line: what the report needs.
FACTS="$WORK/facts.jsonl"
jq -nc --arg n "$EXPECTED" --arg gen "$GEN_S" --arg imp "$IMPORT_S" --arg seed "$SEED_S" \
    --arg passages "$PASSAGES" --arg pool "$POOL" --arg who "$WHO" \
    '{kind:"setup", articles:($n|tonumber), gen_s:($gen|tonumber), import_s:($imp|tonumber),
      seed_s:($seed|tonumber), passages:($passages|tonumber? // null), pool:($pool|tonumber), who:$who}' >>"$FACTS"

BASE="http://127.0.0.1:$PORT"
for CACHE in cold warm; do
    if [ "$CACHE" = cold ]; then CACHE_ENV=(KMT_QUERY_CACHE=0); else CACHE_ENV=(); fi
    LOGF="$WORK/server-$CACHE.log"
    log "starting kmt serve ($CACHE query cache) on $BASE"
    start_server "$DATA" "$PORT" "$LOGF" "${CACHE_ENV[@]}"
    TIMES="$(wait_semantic "$BASE" "$EXPECTED")"
    read -r READY_S SEM_S <<<"$TIMES"
    SYNC_MS="$(ms_of "$LOGF" "vector index in step with the store")"
    settle "$SERVER_PID"
    ORPHANS="$(curl -sS "$BASE/metrics" | awk '$1 == "kmt_vector_orphans" { print $2 }')"
    PLAN="$(curl -sS "$BASE/v1/search?q=vacuum&mode=semantic&limit=10" ${KMT_TOKEN:+-H "Authorization: Bearer $KMT_TOKEN"} | jq -r '.semantic.plan')"
    LOADED="$(grep -c '"vector index loaded"' "$LOGF" || true)"
    RSS_IDLE="$(rss_mib "$SERVER_PID")"
    VECTORS="$(curl -sS "$BASE/readyz" | jq -r '.semantic.vectors')"
    log "ready after $READY_S s, vector index in step after $SEM_S s (sync ${SYNC_MS:-?} ms, loaded from disk: $LOADED), $VECTORS vectors, RSS $RSS_IDLE MiB"
    jq -nc --arg c "$CACHE" --arg r "$READY_S" --arg s "$SEM_S" --arg sync "${SYNC_MS:-}" \
        --arg loaded "$LOADED" --arg rss "$RSS_IDLE" --arg v "$VECTORS" --arg o "${ORPHANS:-}" --arg plan "$PLAN" \
        '{kind:"start", cache:$c, ready_s:($r|tonumber), semantic_s:($s|tonumber),
          sync_ms:($sync|tonumber? // null), loaded:(($loaded|tonumber) > 0), rss_mib:($rss|tonumber? // null),
          vectors:($v|tonumber), orphans:($o|tonumber? // null), plan:$plan}' >>"$FACTS"
    for MODE in lexical semantic hybrid; do
        LABEL="sem-n$EXPECTED-$CACHE-$MODE"
        LOAD_BEFORE="$(cut -d' ' -f1 /proc/loadavg)"
        log "latency: $MODE, $CACHE cache (load average $LOAD_BEFORE)"
        "$BENCH" latency --url "$BASE" --param "mode=$MODE" --label "$LABEL" \
            --concurrency "$CONC" --duration "$DURATION" --warmup "$WARMUP" \
            --out-dir "$RESULTS"
        # Where the time goes: mean Server-Timing of one more pass over the
        # queries (sequential, after the run: the cache is as warm as in it).
        python3 - "$BASE" "$MODE" "${KMT_TOKEN:-}" <<'EOF' >"$RESULTS/$LABEL.timing.json"
import json, sys, urllib.parse, urllib.request
base, mode, token = sys.argv[1], sys.argv[2], sys.argv[3]
qs = [l.strip() for l in open("benches/queries/pgdocs.txt") if l.strip() and not l.startswith("#")]
sums, n = {}, 0
for q in qs:
    url = f"{base}/v1/search?" + urllib.parse.urlencode(
        {"q": q, "limit": 10, "facets": "category,tags", "mode": mode})
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    with urllib.request.urlopen(req) as r:
        r.read()
        for part in r.headers.get("server-timing", "").split(","):
            name, _, dur = part.strip().partition(";dur=")
            if dur:
                sums[name] = sums.get(name, 0.0) + float(dur)
        n += 1
print(json.dumps({k: v / n for k, v in sums.items()}))
EOF
        jq -c --arg c "$CACHE" --arg m "$MODE" --arg l "$LABEL" --arg load "$LOAD_BEFORE" \
            --slurpfile t "$RESULTS/$LABEL.timing.json" \
            '{kind:"run", cache:$c, mode:$m, label:$l, load:($load|tonumber), summary:.series[0].summary, timing:$t[0]}' \
            "$RESULTS/$LABEL.json" >>"$FACTS"
    done
    RSS_AFTER="$(rss_mib "$SERVER_PID")"
    jq -nc --arg c "$CACHE" --arg rss "$RSS_AFTER" '{kind:"rss_after", cache:$c, rss_mib:($rss|tonumber? // null)}' >>"$FACTS"
    ERRS="$(grep -c '"level":"ERROR"' "$LOGF" || true)"
    WARNS="$(grep -c '"level":"WARN"' "$LOGF" || true)"
    log "server log: $ERRS errors, $WARNS warnings"
    jq -nc --arg c "$CACHE" --arg e "$ERRS" --arg w "$WARNS" '{kind:"log", cache:$c, errors:($e|tonumber), warnings:($w|tonumber)}' >>"$FACTS"
    stop_server
done

# ---------------------------------------------------------------------------
if [ "$EMBED_N" -gt 0 ]; then
    log "embedding throughput: $EMBED_N pgdocs pages embedded by the server's worker"
    DATA2="$WORK/data-embed"
    mkdir -p "$DATA2"
    "$BENCH" scale --corpora "$CORPORA" --articles 0 --out "$WORK/pgdocs.jsonl" >/dev/null
    head -n "$EMBED_N" "$WORK/pgdocs.jsonl" >"$WORK/pgdocs-head.jsonl"
    kmt import "$WORK/pgdocs-head.jsonl" --format jsonl --data "$DATA2" >/dev/null
    COUNT="$("$BENCH" seed-embeddings --data "$DATA2" --count-only)"
    E_ARTS="$(awk '{ print $1 }' <<<"$COUNT")"
    E_PASS="$(awk '{ print $3 }' <<<"$COUNT")"
    E_TOK="$(awk '{ print $5 }' <<<"$COUNT")"
    LOGF="$WORK/server-embed.log"
    start_server "$DATA2" "$PORT2" "$LOGF"
    TIMES="$(wait_semantic "http://127.0.0.1:$PORT2" "$E_ARTS")"
    read -r _ E_SEM_S <<<"$TIMES"
    E_SYNC_MS="$(ms_of "$LOGF" "vector index in step with the store")"
    E_METRIC="$(curl -sS "http://127.0.0.1:$PORT2/metrics" | awk '$1 == "kmt_embedded_passages_total" { print $2 }')"
    E_CPUS="$(nproc)"
    log "embedded $E_METRIC passages ($E_TOK tokens) of $E_ARTS articles; sync ${E_SYNC_MS:-?} ms, in step after $E_SEM_S s"
    jq -nc --arg a "$E_ARTS" --arg p "$E_PASS" --arg t "$E_TOK" --arg m "$E_METRIC" \
        --arg sync "${E_SYNC_MS:-}" --arg s "$E_SEM_S" --arg cpus "$E_CPUS" \
        '{kind:"embed", articles:($a|tonumber), passages:($p|tonumber), tokens:($t|tonumber),
          metric_passages:($m|tonumber? // null), sync_ms:($sync|tonumber? // null), semantic_s:($s|tonumber), cpus:($cpus|tonumber)}' >>"$FACTS"
    stop_server
fi

# ---------------------------------------------------------------------------
cat "$FACTS" >&2
if [ "$OUT" = "-" ]; then
    log "done (KMT_BENCH_OUT=-: BENCHMARKS.md left alone)"
    exit 0
fi
python3 - "$FACTS" "$OUT" "$N" "$CONC" "$DURATION" "$WARMUP" "$EMBED_N" <<'EOF'
import datetime, json, re, sys
facts_path, out, n_arg, conc, duration, warmup, embed_n = sys.argv[1:]
facts = [json.loads(l) for l in open(facts_path) if l.strip()]
setup = next(f for f in facts if f["kind"] == "setup")
starts = {f["cache"]: f for f in facts if f["kind"] == "start"}
rss_after = {f["cache"]: f["rss_mib"] for f in facts if f["kind"] == "rss_after"}
logs = {f["cache"]: f for f in facts if f["kind"] == "log"}
runs = [f for f in facts if f["kind"] == "run"]
emb = next((f for f in facts if f["kind"] == "embed"), None)
N = setup["articles"]
date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")

def fmt(x, d=2):
    return "n/a" if x is None else f"{x:.{d}f}"

cache_name = {"cold": "cold (`KMT_QUERY_CACHE=0`: every query embedded)",
              "warm": "warm (default LRU of 4096: queries cached after warm-up)"}
L = []
L.append("## Semantic and hybrid latency")
L.append("")
L.append(f"`GET /v1/search?q=…&limit=10&facets=category,tags&mode=<mode>` over HTTP at "
         f"{N:,} articles ({setup.get('passages') or '?'} passage vectors), "
         f"{setup['who']}, closed loop with {conc} concurrent workers, {warmup} s warm-up then "
         f"{duration} s measured per row; 69 queries from `benches/queries/pgdocs.txt`, cycled. "
         "Client and server share the 2-core machine.")
L.append("")
L.append("| mode | query cache | requests | errors | p50 (ms) | p90 (ms) | p99 (ms) | req/s | server: embed / vector / search / snippets / total (mean ms) |")
L.append("|---|---|---:|---:|---:|---:|---:|---:|---|")
for r in runs:
    s, t = r["summary"], r.get("timing") or {}
    parts = " / ".join(fmt(t.get(k)) for k in ["embed", "vector", "search", "snippets", "total"])
    L.append(f"| {r['mode']} | {r['cache']} | {s['requests']} | {s['errors']} | {s['p50_ms']:.2f} | "
             f"{s['p90_ms']:.2f} | {s['p99_ms']:.2f} | {s['qps']:.0f} | {parts} |")
L.append("")
L.append("- **The article vectors are derived, not embedded by the model** (embedding "
         f"{N:,} generated articles with all-MiniLM-L6-v2 would take hours on this machine). "
         f"`kmt-bench seed-embeddings` embedded {setup['pool']} real msmarco-5k passages once with the "
         "real model and gave every article passage (`engine::embed::passages`) the pool vector picked "
         "by a hash of its text plus Gaussian noise (σ = 0.02 per dimension, cosine ≈ 0.93 to its pool "
         "vector), renormalised, stored in the `embeddings` table with the article's real content hash. "
         "The server's embedding worker reused every row and built the real HNSW index from them "
         "(the path of a replica booting on stored embeddings). The query side is real: the server "
         "embeds each query with the model (cold) or takes it from its LRU cache (warm). Latency "
         "depends on the work per query (query embedding, the permission-allowed set, the vector "
         "search, fusion, facets, snippets), not on which vectors the index holds; the ranking "
         "quality of these runs means nothing.")
L.append("- Cold: `KMT_QUERY_CACHE=0`, every request runs the model on its query. Warm: the default "
         "cache; with 69 distinct queries every request after the warm-up is a cache hit, so warm is "
         "the best case and cold the worst. Lexical rows do not embed, so the cache does not apply to them.")
L.append("- The server column is the mean of the `Server-Timing` header over one sequential pass of the "
         "69 queries after each run (no concurrency): where the time goes, not the latency under load. "
         "`search` is the lexical side (matching, total, facet counts and the permission filter); "
         "`vector` the HNSW search among allowed articles.")
c = starts.get("cold")
w = starts.get("warm")
if c:
    how = "loaded from its saved files" if c["loaded"] else "built from the stored rows"
    L.append(f"- Start-up on the imported store (first start: full-text index built by the follower, vector "
             f"index {how}): ready (lexical) after {c['ready_s']:.0f} s; vector index in step with the store "
             f"({c['vectors']:,} vectors) after {c['semantic_s']:.0f} s from start"
             + (f", of which the worker's full sync (read and check {N:,} articles' stored rows, build "
                f"the graph) took {c['sync_ms']/1000:.1f} s" if c.get("sync_ms") is not None else "")
             + ".")
if w:
    how = "loaded the saved vector index" if w["loaded"] else "rebuilt the vector index"
    L.append(f"- Second start (warm runs) {how}: ready after {w['ready_s']:.0f} s, vector index in step after "
             f"{w['semantic_s']:.0f} s"
             + (f" (sync {w['sync_ms']/1000:.1f} s)" if w.get("sync_ms") is not None else "") + ".")
if c and c.get("orphans") is not None:
    L.append(f"- Vector plan for these anonymous queries (all {N:,} articles allowed): `{c.get('plan')}` "
             f"(filtered HNSW walk, then an exact scan of the {c['orphans']:,} orphan vectors the graph "
             "cannot reach, `kmt_vector_orphans`).")
rss = []
for k in ["cold", "warm"]:
    if k in starts:
        rss.append(f"{k}: {fmt(starts[k]['rss_mib'], 0)} MiB when ready, {fmt(rss_after.get(k), 0)} MiB after the runs")
if rss:
    L.append(f"- Server RSS (`VmRSS`): " + "; ".join(rss) + ".")
loads = [r["load"] for r in runs if r.get("load") is not None]
if loads:
    L.append(f"- 1-minute load average just before each row: {min(loads):.1f}–{max(loads):.1f} "
             "(other work on the shared machine, e.g. builds, competes with these runs).")
errs = [f"{k}: {v['errors']} errors, {v['warnings']} warnings" for k, v in logs.items()]
if errs:
    L.append("- Server log: " + "; ".join(errs) + ".")
L.append(f"- Setup: `kmt-bench scale` {setup['gen_s']:.0f} s, `kmt import` (no server running) "
         f"{setup['import_s']:.0f} s, `kmt-bench seed-embeddings` {setup['seed_s']:.0f} s "
         "(pool vectors cached under ~/.cache/kmt/seed after the first run).")
if emb:
    secs = (emb["sync_ms"] or emb["semantic_s"] * 1000) / 1000
    L.append("")
    L.append(f"**Indexer embedding throughput (real model).** A fresh server embedded the first "
             f"{emb['articles']} PostgreSQL manual pages (`kmt-bench scale --articles 0`, no stored rows): "
             f"{emb['passages']:,} passages, {emb['tokens']:,} model tokens (after truncation to 256), "
             f"`kmt_embedded_passages_total` {emb['metric_passages']}, in {secs:.1f} s "
             f"(the worker's full sync, model and graph insert included) on {emb['cpus']} cores, with "
             f"the full-text follower indexing the same articles meanwhile: "
             f"**{emb['passages']/secs:.1f} passages/s, {emb['tokens']/secs:,.0f} tokens/s**. At that "
             f"rate the {setup.get('passages') or 0:,} passages of the {N:,}-article set would take "
             f"about {(setup.get('passages') or 0) * emb['tokens'] / max(emb['passages'], 1) / (emb['tokens']/secs) / 3600:.1f} h "
             "(scaled by tokens per passage of the pgdocs pages).")
L.append("")
L.append(f"- Date: {date}.")
L.append(f"- Command: `benches/run-semantic-latency.sh {n_arg}` (KMT_BENCH_CONCURRENCY={conc}, "
         f"KMT_BENCH_DURATION={duration}, KMT_BENCH_WARMUP={warmup}, KMT_BENCH_EMBED_ARTICLES={embed_n}); per row "
         "`kmt-bench latency --url http://127.0.0.1:18180 --param mode=<mode> --concurrency "
         f"{conc} --duration {duration} --warmup {warmup}` against `KMT_RATE_LIMIT_PER_SEC=0 "
         "[KMT_QUERY_CACHE=0] kmt serve --data <dir>`, after `kmt-bench seed-embeddings --data <dir> --pool "
         f"{setup['pool']}`.")
L.append("")
section = "\n".join(L)

try:
    text = open(out).read()
except FileNotFoundError:
    text = "# KMT benchmarks\n"
pat = re.compile(r"^## Semantic and hybrid latency\n.*?(?=^## |\Z)", re.S | re.M)
if pat.search(text):
    text = pat.sub(lambda _: section + "\n", text, count=1)
else:
    text = text.rstrip("\n") + "\n\n" + section + "\n"
text = text.rstrip("\n") + "\n"
open(out, "w").write(text)
print(section)
EOF
log "done: see $OUT"

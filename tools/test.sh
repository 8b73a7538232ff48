#!/usr/bin/env bash
# Runs every test of facegate: the engine, the CLI, the web API against a
# real server on loopback, and the real-browser end-to-end test.
# It sets up what the tests need first (ONNX Runtime through pip, the web
# assets through npm, Chromium and ffmpeg through apt when missing).
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release -p facegate
target/release/facegate setup
cargo test --release --workspace
tools/e2e.sh

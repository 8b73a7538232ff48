#!/usr/bin/env bash
# Runs every test of facegate: the engine, the CLI, the web API against a
# real server on loopback, the store on SQLite and on a real PostgreSQL,
# and the real-browser end-to-end test.
# It sets up what the tests need first (ONNX Runtime through pip, the web
# assets through npm, Chromium and ffmpeg through apt when missing).
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release -p facegate
target/release/facegate setup

# A throwaway PostgreSQL server (Debian's postgresql-15 binaries, run as an
# unprivileged user in a temporary directory on a free port), stopped at
# the end whatever happens; each test makes its own database on it. A
# machine without the binaries stops here with the package to install.
# FACEGATE_TEST_DATABASE_URL set by the caller: that server is used.
if [ -z "${FACEGATE_TEST_DATABASE_URL:-}" ]; then
  pg_dir="$(mktemp -d)"
  trap 'tools/pg.sh stop "$pg_dir"' EXIT
  FACEGATE_TEST_DATABASE_URL="$(tools/pg.sh start "$pg_dir")"
  export FACEGATE_TEST_DATABASE_URL
fi

# ffmpeg cuts the shared video into frames for a CLI test (and makes the
# browser tests' camera clips): from the distribution's packages when missing.
# shellcheck source=tools/debian_packages.sh
. tools/debian_packages.sh
command -v ffmpeg >/dev/null || install_missing test "" ffmpeg

# Real webcam recordings for a CLI liveness test, fetched once with npm's
# own client (tools/webcam_clips.sh; docs/LIVENESS.md, "A real webcam user").
tools/webcam_clips.sh >/dev/null

cargo test --release --workspace
tools/e2e.sh

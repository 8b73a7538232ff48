#!/usr/bin/env bash
# Real-browser end-to-end test of the web pages (tests/e2e): the system's
# Chromium, driven by playwright-core, with a fake webcam fed from clips that
# ffmpeg makes from the test photos. No browser is downloaded.
#
#   tools/e2e.sh            install the npm deps, build if needed, run the test
#
# Environment:
#   CHROMIUM               Chromium binary (default /usr/bin/chromium)
#   FACEGATE_E2E_NO_BUILD  1: use the server binary as it is, do not build
#   FACEGATE_E2E_BIN       server binary (default target/release/facegate)
#   FACEGATE_E2E_DEMO_RP_BIN  the demo relying party of the OpenID Connect
#                          test (default target/release/facegate-demo-rp)
#   FACEGATE_E2E_FACES     test photos (default ../shared/testdata/faces)
#   FACEGATE_E2E_ARTIFACTS where screenshots and server logs go (default
#                          target/; CI sets .ci/artifacts/ and keeps it)
# Screenshots (every page on a desktop and a 390x844 phone viewport, plus
# each scenario's steps) and the server logs go to one directory per test
# file under it: e2e-pages/, e2e-artifacts/, e2e-artifacts-liveness/,
# e2e-step-up/, e2e-oidc/.
set -euo pipefail

cd "$(dirname "$0")/.."

CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
export CHROMIUM

die() { echo "e2e: $*" >&2; exit 1; }

command -v node >/dev/null || die "node is missing (Node.js 20 or newer is needed)"
command -v npm >/dev/null || die "npm is missing"
node_major="$(node -p 'process.versions.node.split(".")[0]')"
[ "$node_major" -ge 20 ] || die "Node.js $(node --version) is too old: 20 or newer is needed"

# System packages: Chromium and ffmpeg, from the distribution's packages.
missing=()
[ -x "$CHROMIUM" ] || missing+=(chromium)
command -v ffmpeg >/dev/null || missing+=(ffmpeg)
# shellcheck source=tools/debian_packages.sh
. tools/debian_packages.sh
install_missing e2e "or set CHROMIUM to a Chromium binary" "${missing[@]}"
[ -x "$CHROMIUM" ] || die "Chromium not found at $CHROMIUM (set CHROMIUM)"

# npm dependencies of the test (playwright-core only, exact version, lockfile).
npm ci --prefix tests/e2e --no-audit --no-fund --loglevel=error

# The server and the demo relying party (tests/e2e/oidc.test.mjs): build
# (a no-op when up to date), then fetch the runtime and web assets once so
# that the first start does not have to.
if [ "${FACEGATE_E2E_NO_BUILD:-0}" != 1 ]; then
    cargo build --release -p facegate -p facegate-demo-rp
fi
BIN="${FACEGATE_E2E_BIN:-target/release/facegate}"
[ -x "$BIN" ] || die "$BIN is missing (cargo build --release -p facegate)"
DEMO_RP_BIN="${FACEGATE_E2E_DEMO_RP_BIN:-target/release/facegate-demo-rp}"
[ -x "$DEMO_RP_BIN" ] || die "$DEMO_RP_BIN is missing (cargo build --release -p facegate-demo-rp)"
if [ ! -d .facegate/runtime ] || [ ! -d web/node_modules/@fontsource/nunito ]; then
    "$BIN" setup
fi

start=$(date +%s)
status=0
node --test tests/e2e/ || status=$?
echo "e2e: finished in $(( $(date +%s) - start )) s with status $status; screenshots in ${FACEGATE_E2E_ARTIFACTS:-target}/e2e-*/"
exit "$status"

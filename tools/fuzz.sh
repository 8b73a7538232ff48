#!/usr/bin/env bash
# Runs every cargo-fuzz target of fuzz/ for a bounded time:
#   tools/fuzz.sh [SECONDS_PER_TARGET]      (default 60)
# and exits non-zero when any target crashes, times out on an input or
# runs out of memory. A crash leaves its input in fuzz/artifacts/TARGET/;
# replay it with `cargo fuzz run TARGET fuzz/artifacts/TARGET/crash-…`, fix
# the bug, and keep the input under fuzz/regressions/TARGET/ (the
# fuzz_regressions tests replay that folder in `cargo test`).
#
# Toolchain: the machine's stable Rust. cargo-fuzz passes nightly-only
# flags (-Zsanitizer, sanitizer-coverage passes); RUSTC_BOOTSTRAP=1 lets
# stable rustc take them. AddressSanitizer works that way (its runtime
# ships with the stable standard library), so the targets are built with
# `--sanitizer address`. Its leak checker is off (-detect_leaks=0): the
# targets keep one engine and one app for the whole run, whose caches
# libFuzzer would take for leaks, and its heap scans cost 10x throughput.
#
# The committed corpus fuzz/corpus/TARGET is read, not written: new inputs
# go to fuzz/target/corpus/TARGET (kept between local runs). With
# FUZZ_MERGE=1 the inputs that add coverage are merged into fuzz/corpus.
# FUZZ_ARGS adds libFuzzer flags (e.g. FUZZ_ARGS=-seed=1).
#
# Needs: ONNX Runtime (`facegate setup`, run here when missing) and the
# models in models/.
set -euo pipefail
cd "$(dirname "$0")/.."

secs="${1:-60}"
case "$secs" in
  '' | *[!0-9]*) echo "usage: tools/fuzz.sh [SECONDS_PER_TARGET]" >&2; exit 2 ;;
esac
targets=(decode_and_detect multipart_upload challenge_frames)
export RUSTC_BOOTSTRAP=1
sanitizer=address
start=$(date +%s)

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz"
  install_start=$(date +%s)
  cargo install cargo-fuzz --locked --version '^0.13'
  echo "install: $(($(date +%s) - install_start)) s"
fi
cargo fuzz --version
rustc --version

if [ -z "${ORT_DYLIB_PATH:-}" ] && ! ls .facegate/runtime/libonnxruntime.so* >/dev/null 2>&1; then
  echo "== ONNX Runtime missing: running facegate setup"
  [ -x target/release/facegate ] || cargo build --release -p facegate
  target/release/facegate setup
fi

# The fuzz workspace builds the app at the versions of the main workspace.
if [ ! -f fuzz/Cargo.lock ] || [ Cargo.lock -nt fuzz/Cargo.lock ]; then
  cp Cargo.lock fuzz/Cargo.lock
fi

echo "== building the fuzz targets (sanitizer: $sanitizer)"
build_start=$(date +%s)
cargo fuzz build --sanitizer "$sanitizer"
echo "build: $(($(date +%s) - build_start)) s"

# Per target: the longest input and the dictionary.
max_len() {
  case "$1" in
    decode_and_detect) echo 16384 ;;
    multipart_upload) echo 16384 ;;
    challenge_frames) echo 32768 ;;
  esac
}
dict() {
  case "$1" in
    decode_and_detect) echo fuzz/dict/image.dict ;;
    *) echo fuzz/dict/multipart.dict ;;
  esac
}

mkdir -p fuzz/target/logs
failed=()
summary=()
for t in "${targets[@]}"; do
  echo "== fuzzing $t for ${secs} s"
  work="fuzz/target/corpus/$t"
  mkdir -p "$work" "fuzz/artifacts/$t"
  log="fuzz/target/logs/$t.log"
  set +e
  cargo fuzz run --sanitizer "$sanitizer" "$t" "$work" "fuzz/corpus/$t" -- \
    -max_total_time="$secs" \
    -timeout=30 \
    -rss_limit_mb=4096 \
    -detect_leaks=0 \
    -max_len="$(max_len "$t")" \
    -dict="$(dict "$t")" \
    -print_final_stats=1 ${FUZZ_ARGS:-} 2>&1 | tee "$log" | grep -v -E '^#[0-9]+\s+(NEW|REDUCE|pulse)|# Uses: [0-9]+$'
  rc=${PIPESTATUS[0]}
  set -e
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  summary+=("$t: exit $rc, ${runs:-?} runs, ${eps:-?} exec/s")
  if [ "$rc" -ne 0 ]; then
    failed+=("$t")
  elif [ "${FUZZ_MERGE:-0}" = 1 ]; then
    cargo fuzz run --sanitizer "$sanitizer" "$t" "fuzz/corpus/$t" "$work" -- \
      -merge=1 -timeout=30 -rss_limit_mb=4096 -detect_leaks=0 -max_len="$(max_len "$t")"
  fi
done

echo "== fuzzing summary (${secs} s per target, $(($(date +%s) - start)) s in all)"
printf '  %s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "FAILED: ${failed[*]}; the failing inputs:" >&2
  for t in "${failed[@]}"; do ls -1d "fuzz/artifacts/$t"/* >&2 || true; done
  exit 1
fi

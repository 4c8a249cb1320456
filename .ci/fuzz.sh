#!/usr/bin/env bash
# Builds the libFuzzer targets of fuzz/ on the stable toolchain and runs each for
# a bounded time. The build uses the instrumentation flags cargo-fuzz passes
# (sanitizer coverage, `--cfg fuzzing`, debug assertions), so no cargo-fuzz
# install and no nightly toolchain are needed. AddressSanitizer is off by
# default (cohortd has no `unsafe`; it doubles build and run time):
# FUZZ_ASAN=1 turns it on, which needs RUSTC_BOOTSTRAP=1 for `-Zsanitizer`.
#
#   FUZZ_SECONDS   run time per target (default 40)
#   FUZZ_TARGETS   space-separated targets (default: every fuzz/fuzz_targets/*.rs)
#
# The seeds in fuzz/corpus/<target>/ are only read: new inputs go to a scratch
# corpus, so the repository's corpus stays small. A crash leaves its input in
# fuzz/artifacts/<target>/ and fails the script; fix it, then copy the input to
# fuzz/regressions/<target>/ so `cargo test --test fuzz_regressions` replays it.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

seconds="${FUZZ_SECONDS:-40}"
targets="${FUZZ_TARGETS:-$(basename -s .rs fuzz_targets/*.rs | tr '\n' ' ')}"
triple="$(rustc -vV | sed -n 's/^host: //p')"

flags="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4"
flags+=" -Cllvm-args=-sanitizer-coverage-inline-8bit-counters"
flags+=" -Cllvm-args=-sanitizer-coverage-pc-table"
flags+=" -Cllvm-args=-sanitizer-coverage-trace-compares"
flags+=" --cfg fuzzing -Cdebug-assertions -Coverflow-checks"
if [ "${FUZZ_ASAN:-0}" = 1 ]; then
  export RUSTC_BOOTSTRAP=1
  flags+=" -Zsanitizer=address"
fi

start=$(date +%s)
# `--target` keeps the flags off build scripts and proc macros (as cargo-fuzz does).
RUSTFLAGS="$flags" cargo build --locked --release --target "$triple" \
  $(for t in $targets; do printf -- '--bin %s ' "$t"; done)
built=$(date +%s)
echo "fuzz: built ${targets}in $((built - start)) s"

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
for t in $targets; do
  mkdir -p "corpus/$t" "artifacts/$t" "$scratch/$t"
  echo "fuzz: $t for ${seconds} s"
  "target/$triple/release/$t" \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
    -print_final_stats=1 -artifact_prefix="artifacts/$t/" \
    "$scratch/$t" "corpus/$t"
done
echo "fuzz: done in $(($(date +%s) - start)) s (build $((built - start)) s)"

#!/usr/bin/env bash
# Builds every fuzz target (crates/gob/fuzz, crates/goplugin/fuzz, crates/bridge/fuzz,
# crates/lane/fuzz) and runs each for a fixed
# time on a scratch copy of its committed seeds; exits non-zero if any target finds an input
# that panics, hangs, overflows the stack or allocates without bound, and prints that input.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]     default: 20 s each, every target
#
# Needs only the stable toolchain and a C++ compiler (libfuzzer-sys builds libFuzzer): the
# coverage instrumentation is the set of stable rustc flags cargo-fuzz passes for
# `--sanitizer none`, so cargo-fuzz itself is not needed. FUZZ_SANITIZER=address adds
# AddressSanitizer on the nightly toolchain (`-Zsanitizer=address`), if one is installed.
#
# Under target/fuzz (target/fuzz-address with ASan): the binaries, corpus/TARGET (the
# scratch corpus, grown by the run), artifacts/TARGET (failing inputs), logs/TARGET.log.
# Documented in docs/operations.md ("Fuzzing"); results of long runs: bench/fuzz-results.md.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SECONDS_EACH=${1:-20}
shift || true

# target  fuzz crate            seed directory
TARGETS=(
  "decode       crates/gob/fuzz       crates/gob/fuzz/seeds"
  "roundtrip    crates/gob/fuzz       crates/gob/fuzz/seeds"
  "netrpc       crates/goplugin/fuzz  crates/goplugin/fuzz/seeds/netrpc"
  "host_session crates/goplugin/fuzz  crates/goplugin/fuzz/seeds/host_session"
  "handshake    crates/goplugin/fuzz  crates/goplugin/fuzz/seeds/handshake"
  "translate    crates/bridge/fuzz    crates/bridge/fuzz/seeds/translate"
  "frames       crates/lane/fuzz      crates/lane/fuzz/seeds/frames"
)

if ! [[ $SECONDS_EACH =~ ^[1-9][0-9]*$ ]]; then
  echo "fuzz.sh: SECONDS must be a positive integer, not '$SECONDS_EACH'" >&2
  exit 2
fi

selected=()
if (($# == 0)); then
  selected=("${TARGETS[@]}")
else
  for want in "$@"; do
    found=""
    for t in "${TARGETS[@]}"; do
      read -r name _ <<<"$t"
      [[ $name == "$want" ]] && found=$t
    done
    if [[ -z $found ]]; then
      echo "fuzz.sh: unknown target '$want' (targets: decode roundtrip netrpc host_session handshake translate frames)" >&2
      exit 2
    fi
    selected+=("$found")
  done
fi

TRIPLE=$(rustc -vV | sed -n 's/^host: //p')
# cargo-fuzz's flags for `--sanitizer none`, all stable; debug assertions also turn on
# overflow checks, so arithmetic on hostile lengths panics instead of wrapping.
FLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4"
FLAGS+=" -Cllvm-args=-sanitizer-coverage-inline-8bit-counters"
FLAGS+=" -Cllvm-args=-sanitizer-coverage-pc-table -Cllvm-args=-sanitizer-coverage-trace-compares"
FLAGS+=" -Cllvm-args=-sanitizer-coverage-stack-depth -Cllvm-args=-simplifycfg-branch-fold-threshold=0"
FLAGS+=" --cfg fuzzing -Cdebug-assertions"
TOOLCHAIN=()
OUT=$ROOT/target/fuzz
case ${FUZZ_SANITIZER:-none} in
  none) ;;
  address)
    if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
      echo "fuzz.sh: FUZZ_SANITIZER=address needs the nightly toolchain (rustup toolchain install nightly)" >&2
      exit 2
    fi
    TOOLCHAIN=(+nightly)
    FLAGS+=" -Zsanitizer=address"
    OUT=$ROOT/target/fuzz-address
    export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_odr_violation=0}
    ;;
  *)
    echo "fuzz.sh: FUZZ_SANITIZER is 'address' or unset, not '$FUZZ_SANITIZER'" >&2
    exit 2
    ;;
esac
BIN=$OUT/$TRIPLE/release

# --target keeps the instrumentation flags away from build scripts, which are not linked
# against libFuzzer; a separate target dir keeps them away from the main build.
build_start=$(date +%s)
for crate in crates/gob/fuzz crates/goplugin/fuzz crates/bridge/fuzz crates/lane/fuzz; do
  for t in "${selected[@]}"; do
    read -r _ tcrate _ <<<"$t"
    if [[ $tcrate == "$crate" ]]; then
      echo "fuzz.sh: building $crate"
      CARGO_TARGET_DIR=$OUT RUSTFLAGS=$FLAGS cargo "${TOOLCHAIN[@]}" build --release --locked --bins \
        --target "$TRIPLE" --config 'profile.release.debug="line-tables-only"' \
        --manifest-path "$ROOT/$crate/Cargo.toml"
      break
    fi
  done
done
echo "fuzz.sh: built in $(($(date +%s) - build_start)) s; running each target for $SECONDS_EACH s"

# A statistic libFuzzer printed at exit (-print_final_stats).
stat() { sed -n "s/^stat::$2: *//p" "$1"; }

failed=()
for t in "${selected[@]}"; do
  read -r name _ seeds <<<"$t"
  corpus=$OUT/corpus/$name
  artifacts=$OUT/artifacts/$name
  log=$OUT/logs/$name.log
  rm -rf "$corpus" "$artifacts"
  mkdir -p "$corpus" "$artifacts" "$OUT/logs"
  cp "$ROOT/$seeds"/* "$corpus/"
  # -timeout: one input running 10 s is a hang (inputs take milliseconds).
  if "$BIN/$name" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$artifacts/" "$corpus" >"$log" 2>&1; then
    cov=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | sed -E 's/.*(cov: [0-9]+ ft: [0-9]+ corp: [^ ]+).*/\1/')
    echo "fuzz.sh: $name ok: $(stat "$log" number_of_executed_units) runs" \
      "($(stat "$log" average_exec_per_sec)/s), $cov, peak RSS $(stat "$log" peak_rss_mb) MB"
  else
    failed+=("$name")
    echo "fuzz.sh: $name FAILED; last lines of $log:" >&2
    tail -n 30 "$log" >&2
    for input in "$artifacts"/*; do
      [[ -e $input ]] || continue
      echo "fuzz.sh: failing input: $input (reproduce: $BIN/$name $input)" >&2
    done
  fi
done

if ((${#failed[@]})); then
  echo "fuzz.sh: failed: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz.sh: all targets ran ${SECONDS_EACH} s without a failure"

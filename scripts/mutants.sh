#!/usr/bin/env bash
# Mutation check: applies each committed mutation (mutants/NAME.patch) one at a time to a
# scratch copy of HEAD, runs the test named in its header, and requires that test to fail
# with the message the header names. Exits non-zero if any mutation survives its test, fails
# it for another reason, runs past its time limit, or no longer applies (is stale).
#
#   scripts/mutants.sh [NAME...]     default: every mutants/*.patch
#
# The code under test is the commit at HEAD, never the working tree: uncommitted changes are
# not tested, and nothing here touches the checkout. The mutation files are read from the
# checkout's mutants/ directory, so a stale one can be refreshed and rerun before committing.
#
# Under target/mutants: tree/ (the scratch copy: a git worktree at HEAD, detached), cargo/
# (CARGO_TARGET_DIR of the scratch builds), venv/ (a Python environment that imports the
# scratch copy's SDK), logs/ (one log per test run). The header format, and how to add or
# refresh a mutation: docs/operations.md, "Mutation testing". Recorded runs:
# bench/mutants-results.md.
#
# MUTANTS_TIMEOUT (default 900) limits each mutant's test in seconds, its rebuild included;
# MUTANTS_BASELINE_TIMEOUT (default 3600) limits each test's first, unmutated run, which
# also builds everything once.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
MUTANTS=$ROOT/mutants
OUT=$ROOT/target/mutants
TREE=$OUT/tree
LOGS=$OUT/logs
MAIN_VENV=$ROOT/.venv
LIMIT=${MUTANTS_TIMEOUT:-900}
BASELINE_LIMIT=${MUTANTS_BASELINE_TIMEOUT:-3600}

say() { echo "mutants.sh: $*"; }
die() {
  echo "mutants.sh: $*" >&2
  exit 2
}

for limit in "$LIMIT" "$BASELINE_LIMIT"; do
  [[ $limit =~ ^[1-9][0-9]*$ ]] || die "MUTANTS_TIMEOUT and MUTANTS_BASELINE_TIMEOUT are seconds, not '$limit'"
done
for tool in git cargo go timeout flock; do
  command -v "$tool" >/dev/null || die "$tool is not on PATH"
done
[[ -x $MAIN_VENV/bin/python ]] || die "no Python environment at $MAIN_VENV: run make setup"

# One header field of a mutation file: the text after "# FIELD: " on the lines before the
# diff starts (git apply skips those lines).
field() {
  sed -n -e '/^diff --git /q' -e '/^--- /q' -e "s/^# $2: //p" "$1"
}

names=()
if (($# == 0)); then
  for patch in "$MUTANTS"/*.patch; do
    [[ -e $patch ]] || die "no mutations in $MUTANTS"
    names+=("$(basename "$patch" .patch)")
  done
else
  for name in "$@"; do
    [[ -f $MUTANTS/$name.patch ]] || die "no mutation '$name' (no file $MUTANTS/$name.patch)"
    names+=("$name")
  done
fi

# Every mutation names exactly one test and one expected message, or the run stops before
# anything is built.
declare -A test_of expect_of
for name in "${names[@]}"; do
  patch=$MUTANTS/$name.patch
  test_of[$name]=$(field "$patch" test)
  expect_of[$name]=$(field "$patch" expect)
  for f in test expect; do
    n=$(field "$patch" "$f" | grep -c . || true)
    ((n == 1)) || die "$patch: the header needs exactly one '# $f: ' line before the diff, it has $n"
  done
done

mkdir -p "$OUT" "$LOGS"
# Two runs at once would apply their mutations to the same scratch tree.
exec 9>"$OUT/lock"
flock -n 9 || die "another mutants.sh run holds $OUT/lock"

SHA=$(git -C "$ROOT" rev-parse --verify HEAD)
started=$(date +%s)
say "HEAD $(git -C "$ROOT" rev-parse --short HEAD), ${#names[@]} mutations, $(nproc) cores, $(date -u '+%Y-%m-%d %H:%M UTC')"

# The scratch copy is a git worktree kept between runs at a fixed path: checking out a new
# HEAD rewrites only the files that changed, so cargo (which compares file times) rebuilds
# only what changed and each mutant builds incrementally. tree/ lies inside this checkout,
# so git must be shown to resolve it as a worktree of its own before anything runs there:
# otherwise `git -C tree checkout --force` would act on the checkout itself.
is_scratch_tree() {
  [[ -f $TREE/.git ]] && [[ $(git -C "$TREE" rev-parse --show-toplevel 2>/dev/null) == "$TREE" ]]
}
if ! is_scratch_tree; then
  rm -rf "$TREE"
  git -C "$ROOT" worktree prune
  git -C "$ROOT" worktree add --quiet --detach --force "$TREE" "$SHA"
fi
is_scratch_tree || die "$TREE is not a worktree of its own; remove it and rerun"
# Back to HEAD exactly: also undoes a mutation left behind by an interrupted run.
restore_tree() {
  git -C "$TREE" checkout --quiet --force --detach "$SHA"
  git -C "$TREE" clean -fdq
}
restore_tree

# The Python side must import the scratch copy's SDK, not the checkout's (the checkout's
# .venv has it installed editable from python/src). A venv of our own lists the scratch
# python/src first and then .venv's site-packages for the dependencies; .venv's own .pth
# files, among them the editable install's, are not processed from there. It serves both
# pytest and the bridge, which runs venv/bin/python3 of the -venv given to the harness.
rm -rf "$OUT/venv"
"$MAIN_VENV/bin/python" -m venv --without-pip "$OUT/venv"
site=$("$OUT/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')
main_site=$("$MAIN_VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')
printf '%s\n' "$TREE/python/src" "$main_site" >"$site/mmplug-mutants.pth"
# The SDK's tests generate protobuf stubs with these plugins, looked up next to the
# interpreter; they import mypy-protobuf only, never the SDK.
for tool in protoc-gen-mypy protoc-gen-mypy_grpc; do
  ln -s "$MAIN_VENV/bin/$tool" "$OUT/venv/bin/$tool"
done
sdk=$("$OUT/venv/bin/python" -c 'import mattermost_plugin; print(mattermost_plugin.__file__)')
[[ $sdk == "$TREE/python/src/"* ]] || die "the scratch venv imports the SDK from $sdk, not from $TREE/python/src"

export CARGO_TARGET_DIR=$OUT/cargo MUTANTS_VENV=$OUT/venv
# Shorter logs: the expected message is in the panic text, not in a backtrace.
export RUST_BACKTRACE=0 CARGO_TERM_COLOR=never

# Runs test command $1 in the scratch tree with time limit $2, its output to log $3; its
# exit status, 124 if it ran out of time. On the limit, timeout signals its whole process
# group, so cargo's test binaries and the harness's bridge and Python go too.
run_test() {
  local rc=0
  (cd "$TREE" && timeout --kill-after=30 "$2" bash -c "$1") >"$3" 2>&1 </dev/null || rc=$?
  if ((rc == 137)); then
    rc=124
  fi
  return "$rc"
}

# Each distinct test must pass on the unmutated tree first: a test that fails anyway would
# make every mutation assigned to it look killed. This run also builds everything once, so
# the times below are a mutant's incremental rebuild and its test.
declare -A baseline_done
baseline_failed=()
i=0
for name in "${names[@]}"; do
  cmd=${test_of[$name]}
  [[ -n ${baseline_done[$cmd]:-} ]] && continue
  i=$((i + 1))
  log=$LOGS/baseline-$i.log
  t0=$(date +%s)
  rc=0
  run_test "$cmd" "$BASELINE_LIMIT" "$log" || rc=$?
  baseline_done[$cmd]=1
  if ((rc == 0)); then
    say "baseline $i passes ($(($(date +%s) - t0)) s): $cmd"
  else
    baseline_failed+=("$cmd")
    say "baseline $i FAILS without any mutation (exit $rc, $(($(date +%s) - t0)) s): $cmd" >&2
    say "  its log: $log; last lines:" >&2
    tail -n 20 "$log" | sed 's/^/    /' >&2
  fi
done
if ((${#baseline_failed[@]})); then
  die "${#baseline_failed[@]} test(s) fail on HEAD as it is; fix that first, a mutation cannot be judged by them"
fi
baseline_seconds=$(($(date +%s) - started))

declare -A status_of seconds_of
failed=0
i=0
for name in "${names[@]}"; do
  i=$((i + 1))
  patch=$MUTANTS/$name.patch
  log=$LOGS/$name.log
  t0=$(date +%s)
  if ! (cd "$TREE" && git apply --check "$patch") >"$log" 2>&1; then
    status_of[$name]=stale
    seconds_of[$name]=0
    failed=$((failed + 1))
    say "[$i/${#names[@]}] $name: STALE, it no longer applies to HEAD:" >&2
    sed 's/^/    /' "$log" >&2
    say "  refresh it: make the same change by hand at HEAD and put \`git diff\` under its header" >&2
    continue
  fi
  (cd "$TREE" && git apply "$patch")
  rc=0
  run_test "${test_of[$name]}" "$LIMIT" "$log" || rc=$?
  restore_tree
  seconds_of[$name]=$(($(date +%s) - t0))
  if ((rc == 0)); then
    status_of[$name]=SURVIVED
  elif ((rc == 124)); then
    status_of[$name]=TIMEOUT
  elif grep -qF -- "${expect_of[$name]}" "$log"; then
    status_of[$name]=killed
  else
    # A compile error or an unrelated failure says nothing about the mutation.
    status_of[$name]=WRONG-FAILURE
  fi
  if [[ ${status_of[$name]} == killed ]]; then
    say "[$i/${#names[@]}] $name: killed (${seconds_of[$name]} s)"
    continue
  fi
  failed=$((failed + 1))
  case ${status_of[$name]} in
    SURVIVED) why="its test passed with the mutation in place: the test no longer checks this" ;;
    TIMEOUT) why="its test ran past ${LIMIT} s (MUTANTS_TIMEOUT)" ;;
    *) why="its test failed (exit $rc) without the message '${expect_of[$name]}': a compile error, another failure, or a reworded message" ;;
  esac
  say "[$i/${#names[@]}] $name: ${status_of[$name]}: $why" >&2
  say "  test: ${test_of[$name]}" >&2
  say "  its log: $log; last lines:" >&2
  tail -n 15 "$log" | sed 's/^/    /' >&2
done

total=$(($(date +%s) - started))
echo
echo "| mutation | result | seconds |"
echo "|---|---|---:|"
for name in "${names[@]}"; do
  echo "| $name | ${status_of[$name]} | ${seconds_of[$name]} |"
done
echo
say "HEAD $(git -C "$ROOT" rev-parse --short "$SHA"): $((${#names[@]} - failed)) of ${#names[@]} killed;" \
  "${total} s in all (${baseline_seconds} s of it the unmutated baseline)"
if ((failed)); then
  say "$failed mutation(s) not killed; see the messages above and $LOGS" >&2
  exit 1
fi

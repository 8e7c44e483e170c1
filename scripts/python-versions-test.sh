#!/usr/bin/env bash
# The hello cases against an offline bundle on each given CPython version, the way a server with
# only that Python runs it: for each X.Y the harness installs the bundle's tar.gz as the server
# would and activates it inside a network namespace with no network (unshare -n), with a PATH
# that holds only that interpreter (as python3.X and python3), so the bridge can pick no other;
# the harness's -python X.Y then checks that the bridge really set up the bundle's wheels for
# it (bundle_python_from_its_wheels). `make test-bundle` runs the oldest supported version,
# `make test-pythons` every supported one (docs/operations.md "Supported Python versions").
#
# Interpreters are found by scripts/find-python.sh; a version it does not find fails the run (a
# missing Python is not a pass).
#
# HARNESS_FLAGS adds harness flags, e.g. HARNESS_FLAGS=-smoke for a plugin other than
# examples/hello (the checks that hold for any plugin).
#
# Usage: [HARNESS_FLAGS=...] scripts/python-versions-test.sh HARNESS BUNDLE.tar.gz X.Y [X.Y ...]
set -euo pipefail
[[ $# -ge 3 ]] || { echo "usage: $0 HARNESS BUNDLE.tar.gz X.Y [X.Y ...]" >&2; exit 2; }
harness=$(realpath "$1")
bundle=$(realpath "$2")
shift 2
log() { echo "python-versions: $*" >&2; }

work=$(mktemp -d /tmp/mmplug-pythons-XXXXXX)
trap 'rm -rf "$work"' EXIT
passed=() failed=()
for version in "$@"; do
	if ! python=$("$(dirname "$0")/find-python.sh" "$version"); then
		log "FAIL $version: no CPython $version to run the cases on"
		failed+=("$version")
		continue
	fi
	bin="$work/$version"
	mkdir -p "$bin"
	ln -s "$python" "$bin/python$version"
	ln -s "$python" "$bin/python3"
	log "hello cases on Python $version ($python), offline"
	# shellcheck disable=SC2086 # HARNESS_FLAGS is a list of flags
	if unshare -n env PATH="$bin" "$harness" ${HARNESS_FLAGS:-} -python "$version" -bundle "$bundle"; then
		passed+=("$version")
	else
		log "FAIL $version: the hello cases failed on Python $version"
		failed+=("$version")
	fi
done
log "${#passed[@]} passed (${passed[*]:-none}), ${#failed[@]} failed (${failed[*]:-none})"
[[ ${#failed[@]} == 0 ]]

#!/usr/bin/env bash
# Prints the path of a CPython X.Y interpreter, or fails saying where it looked: this machine's
# pyenv builds first ($PYENV_ROOT/versions/X.Y.*/bin/pythonX.Y), then pythonX.Y on PATH (not a
# pyenv shim, which runs only the version pyenv has selected). Used by make test-python-oldest
# and scripts/python-versions-test.sh.
#
# Usage: scripts/find-python.sh X.Y
set -euo pipefail
[[ $# == 1 && $1 =~ ^3\.[0-9]+$ ]] || { echo "usage: $0 X.Y (e.g. 3.10)" >&2; exit 2; }
version=$1
pyenv_root=${PYENV_ROOT:-$HOME/.pyenv}
candidates=("$pyenv_root"/versions/"$version".*/bin/python"$version")
mapfile -t -O "${#candidates[@]}" candidates < <(type -ap "python$version" 2>/dev/null || true)
for candidate in "${candidates[@]}"; do
	[[ -x $candidate && $candidate != */shims/* ]] || continue
	if [[ $("$candidate" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null) == "$version" ]]; then
		echo "$candidate"
		exit 0
	fi
done
echo "find-python: no CPython $version (looked for $pyenv_root/versions/$version.*/bin/python$version and python$version on PATH); install it, e.g. pyenv install $version" >&2
exit 1

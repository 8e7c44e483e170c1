#!/usr/bin/env bash
# A plugin author's journey with nothing but mmplug's wheel (make test-wheel, issue 13): a fresh
# venv holding only the built wheel (and pinned pytest, for the scaffold's tests), a PATH with no
# cargo and no go, no checkout in sight (MMPLUG_SOURCE unset, run outside the repository). Then:
#   mmplug new; the scaffold's pytest; mmplug dev (python/scripts/check_dev.py: its route
#   answers, its slash command, a reload after an edit is served, Ctrl-C); mmplug bundle with
#   its defaults, which must give linux-amd64 and linux-arm64 from the wheel's bridges, mode
#   0644; the judges from the checkout: which of the bundle's wheels an aarch64 and an x86_64
#   server would install (python/scripts/check_wheel_choice.py) and the conformance harness
#   activating the bundle offline (unshare -n) with its generic checks (-smoke).
# Usage: scripts/wheel-journey.sh WHEEL HARNESS JUDGE_PYTHON WORKDIR PYVER PORT (PYVER: python3's
# X.Y, the Python the venv is made with and the bundle is for)
set -euo pipefail
wheel=$1 harness=$2 judge=$3 work=$4 pyver=$5 port=$6
root=$(cd "$(dirname "$0")/.." && pwd)
log() { echo "wheel-journey: $*" >&2; }

rm -rf "$work"
mkdir -p "$work"
log "a fresh venv with only $(basename "$wheel") and pytest"
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install --quiet --disable-pip-version-check "$wheel" pytest==9.2.0

# PATH without the directories that hold cargo, rustc or go (the venv's bin first, as an
# activated venv has it). If one of them also held something the journey needs, it fails
# below with "command not found", which is the point.
stripped=$work/venv/bin
IFS=: read -ra dirs <<<"$PATH"
for dir in "${dirs[@]}"; do
	[[ -z $dir ]] && continue
	if [[ -e $dir/cargo || -e $dir/rustc || -e $dir/go ]]; then
		log "PATH without $dir"
		continue
	fi
	stripped+=:$dir
done
as_author() { env -u MMPLUG_SOURCE -u CARGO_TARGET_DIR -u GOROOT PATH="$stripped" "$@"; }
for tool in cargo go rustc; do
	if as_author bash -c "command -v $tool" >/dev/null; then
		log "$tool is still on the stripped PATH"
		exit 1
	fi
done

cd "$work"
as_author mmplug new journey-demo
cd journey-demo
as_author pytest -q -p no:cacheprovider
as_author python "$root/python/scripts/check_dev.py" mmplug "$work/journey-demo" \
	com.example.journey-demo journey-demo "$port"

as_author mmplug bundle --python "$pyver" 2>"$work/bundle.log" || {
	cat "$work/bundle.log" >&2
	exit 1
}
cat "$work/bundle.log" >&2
bundle=$work/journey-demo/dist/com.example.journey-demo-0.1.0.tar.gz
grep -q "linux-amd64, linux-arm64) in" "$work/bundle.log" || {
	log "mmplug bundle did not bundle both platforms by default"
	exit 1
}
mode=$(stat -c %a "$bundle")
[[ $mode == 644 ]] || {
	log "$bundle has mode $mode, not 644"
	exit 1
}
for machine in aarch64 x86_64; do
	"$judge" "$root/python/scripts/check_wheel_choice.py" "$bundle" "$machine"
done
unshare -n "$harness" -bundle "$bundle" -smoke
log "passed"

#!/usr/bin/env bash
# The real-server test (make e2e): builds what the test needs, then runs conformance/e2e, which
# starts a private PostgreSQL cluster and a real Mattermost server, installs the plugins, runs
# the cases over REST and stops everything it started.
#
#   scripts/e2e/run.sh [-run REGEX] [other conformance/e2e flags]
#
# Every flag is passed on to conformance/e2e; the hostile-input campaign's are
# -campaign N (inputs, default 300), -campaign-seed S (default 1), -campaign-batch B (inputs per
# switch between the Go twin and the Python plugin, default 100) and -campaign-input I (replay
# input I alone). make e2e passes E2E_CAMPAIGN and E2E_SEED as the first two.
#
# Split of work: this script does the build steps (packages, the server binary, the bundles),
# which need the network once (apt, the Go module proxy, pip) and are cached; the Go program
# does everything with a lifetime (cluster, server, plugins' processes), so one place starts
# and stops them on every exit, and the run itself needs no network but loopback.
#
# Environment: MMPLUG_E2E_BRIDGE (the static bridge to bundle; default the one
# `make static-bridge` builds), MMPLUG_E2E_VENV (the venv holding mmplug; default .venv),
# MMPLUG_E2E_WORK (the work dir; default /tmp/mmplug-e2e), MMPLUG_CACHE (build-server.sh's cache).
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
log() { echo "e2e: $*" >&2; }

bridge=${MMPLUG_E2E_BRIDGE:-$root/target/x86_64-unknown-linux-gnu/release/mmplug-bridge}
venv=${MMPLUG_E2E_VENV:-$root/.venv}
work=${MMPLUG_E2E_WORK:-/tmp/mmplug-e2e}
out=$root/target/e2e
for f in "$bridge" "$venv/bin/mmplug"; do
	[[ -x $f ]] || { log "missing $f (make static-bridge venv)"; exit 1; }
done

# Debian packages, when missing: PostgreSQL (only its binaries are used: the test runs its own
# cluster) and a python3 on PATH=/usr/bin:/bin, the Python the server will start plugins with.
packages=()
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || packages+=(postgresql)
env -i PATH=/usr/bin:/bin sh -c 'command -v python3' >/dev/null || packages+=(python3)
if ((${#packages[@]})); then
	log "installing ${packages[*]} (apt-get)"
	if [[ $(id -u) != 0 ]]; then
		log "${packages[*]} not installed, and installing needs root"
		exit 1
	fi
	DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${packages[@]}" >&2
	# The postgresql package may start a default cluster; the test never uses it, so the one
	# this install started is stopped again.
	if [[ " ${packages[*]} " == *" postgresql "* ]]; then
		for conf in /etc/postgresql/*/main; do
			[[ -d $conf ]] && pg_ctlcluster "$(basename "$(dirname "$conf")")" main stop 2>/dev/null || true
		done
	fi
fi

tree=$(scripts/e2e/build-server.sh)

# The Python the server will find: it runs with PATH=/usr/bin:/bin, as a service would.
pyver=$(env -i PATH=/usr/bin:/bin python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])') || {
	log "no python3 on PATH=/usr/bin:/bin: the server could not start a Python plugin"
	exit 1
}

rm -rf "$out/bundles" "$out/src"
mkdir -p "$out/bundles" "$out/src"

# bundle DIR NAME: `mmplug bundle` as a user runs it, copied to bundles/NAME.tar.gz.
bundle() {
	local path
	path=$("$venv/bin/mmplug" bundle "$1" --python "$pyver" --bridge "linux-amd64=$bridge" \
		--output "$out/src/dist-$2" 2> >(sed 's/^/  mmplug bundle: /' >&2))
	cp "$path" "$out/bundles/$2.tar.gz"
}

# with_deps EXAMPLE ID REQUIREMENT: a scratch copy of an example (scratch_copy.py) with its
# dependency declared and a route the header-forge cases read, so the cases about the app do
# not depend on issue 12 item 2's fix; the examples as shipped are bundled too.
with_deps() {
	python3 scripts/e2e/scratch_copy.py "examples/$1" "$out/src/$2" "$2" "$3" "scripts/e2e/routes/$1.py"
	bundle "$out/src/$2" "$2"
}

log "bundling the plugins for Python $pyver"
bundle examples/hello com.mmplug.hello
bundle examples/flask com.mmplug.flask
bundle examples/fastapi com.mmplug.fastapi
bundle examples/moderation com.mmplug.moderation
bundle examples/oauth-connect com.mmplug.oauth-connect
bundle examples/remind com.mmplug.remind
# A new user's plugin, as `mmplug new` scaffolds it.
"$venv/bin/mmplug" new e2e-scaffold --dir "$out/src/e2e-scaffold" >/dev/null
bundle "$out/src/e2e-scaffold" com.example.e2e-scaffold
with_deps flask com.mmplug.flask-e2e flask
with_deps fastapi com.mmplug.fastapi-e2e fastapi

# The native Go twin, packed as the server expects a bundle: <id>/plugin.json and the executable.
go_twin=$out/src/hellogo/com.mmplug.hellogo
mkdir -p "$go_twin/server/dist"
cp conformance/hellogo/plugin.json "$go_twin/"
CGO_ENABLED=0 go build -o "$go_twin/server/dist/plugin-linux-amd64" ./conformance/hellogo
tar -C "$out/src/hellogo" -czf "$out/bundles/com.mmplug.hellogo.tar.gz" com.mmplug.hellogo

go build -o "$out/e2e" ./conformance/e2e
exec "$out/e2e" -server "$tree" -bundles "$out/bundles" -mmplug "$venv/bin/mmplug" -work "$work" "$@"

#!/usr/bin/env bash
# The linux-arm64 bridge at work, emulated by qemu-user on this x86_64 machine (make test-arm64):
#  1. launched as Mattermost launches a plugin (the magic cookie and PLUGIN_PROTOCOL_VERSIONS in
#     its environment, no arguments, from inside the plugin directory), it prints go-plugin's
#     handshake line `1|1|unix|<socket>|netrpc|` and listens on that socket; without the cookie
#     it refuses with go-plugin's own text and status 1;
#  2. the conformance harness runs examples/hello's cases against it, Mattermost's real plugin
#     supervisor starting it through a wrapper that execs qemu-aarch64-static;
#  3. a two-platform bundle of examples/hello (from `mmplug bundle --platform all`), its
#     linux-amd64 executable swapped for a wrapper that runs the bundle's own linux-arm64 bridge
#     under qemu, installed by the harness as a server would and activated with no network
#     (unshare -n): the arm64 bridge sets up Python from the bundle's wheels and passes the
#     bundle cases;
#  4. the dev server of the aarch64 wheel (make dev-server-arm64: the harness built by Go for
#     arm64 with CGO_ENABLED=0) under qemu, run as `mmplug dev` runs the wheel's, on a plugin
#     from `mmplug new`, with the arm64 bridge of step 2: python/scripts/check_dev.py (its route,
#     its slash command, a reload after an edit, Ctrl-C).
# What this proves and what it does not: the arm64 build of every Rust layer (handshake, yamux,
# gob, net/rpc, schema translation, Python supervision, the lane and gRPC) works as on amd64.
# Python stays this machine's x86_64 interpreter: qemu-user emulates only the bridge, and the
# Python it spawns is a native x86_64 program the kernel runs directly (no binfmt needed). So an
# aarch64 Python with aarch64 wheels is not exercised here; which wheels an arm64 server would
# install is checked by python/scripts/check_wheel_choice.py (make test-bundle); in step 3 the
# arm64 bridge installs the x86_64 wheels, the ones this machine's Python asks for.
#
# Usage: scripts/arm64-qemu-test.sh ARM64_BRIDGE HARNESS VENV BUNDLE ARM64_DEV_SERVER
set -euo pipefail
[[ $# == 5 ]] || { echo "usage: $0 ARM64_BRIDGE HARNESS VENV BUNDLE ARM64_DEV_SERVER" >&2; exit 2; }
bridge=$(realpath "$1")
harness=$(realpath "$2")
venv=$(realpath "$3")
bundle=$(realpath "$4")
dev_server=$(realpath "$5")
root=$(cd "$(dirname "$0")/.." && pwd)
qemu=$(command -v qemu-aarch64-static) || {
	echo "arm64-qemu-test: qemu-aarch64-static missing (make static-bridge-arm64 installs it)" >&2
	exit 1
}
log() { echo "arm64-qemu-test: $*" >&2; }
fail() { log "FAIL: $*"; exit 1; }

work=$(mktemp -d /tmp/mmplug-arm64-XXXXXX)
bridge_pid=
cleanup() {
	[[ -n $bridge_pid ]] && kill "$bridge_pid" 2>/dev/null && wait "$bridge_pid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

# The bridge finds plugin.json by walking up from its own executable (/proc/self/exe, which
# qemu-user answers with the emulated binary's path), so it is copied into a plugin directory.
plugin=$work/plugin
mkdir -p "$plugin/server/dist"
cp "$bridge" "$plugin/server/dist/plugin-linux-arm64"
echo '{"id": "com.mmplug.arm64handshake", "version": "0.1.0"}' >"$plugin/plugin.json"
exe=$plugin/server/dist/plugin-linux-arm64
cookie="Securely message teams, anywhere."

# 1a. Without the cookie: go-plugin's refusal, exit status 1.
status=0
refusal=$(cd "$plugin" && env -u MATTERMOST_PLUGIN "$qemu" "$exe" 2>&1 >/dev/null) || status=$?
[[ $status == 1 && $refusal == "This binary is a plugin. These are not meant to be executed directly."* ]] ||
	fail "without the cookie: status $status, stderr: $refusal"
log "ok: without the magic cookie it refuses as go-plugin does (status 1)"

# 1b. With it: the handshake line on stdout, and a unix socket listening at its address.
# The bridge then starts Python, which fails here (no SDK in the bare plugin directory); the
# bridge logs that and keeps serving until the server says otherwise, so the socket stays up.
exec {out}< <(cd "$plugin" && MATTERMOST_PLUGIN=$cookie PLUGIN_PROTOCOL_VERSIONS=1 \
	exec "$qemu" "$exe" 2>"$work/handshake.stderr")
bridge_pid=$!
line=
read -r -t 60 -u "$out" line || fail "no handshake line within 60 s; stderr: $(cat "$work/handshake.stderr")"
[[ $line =~ ^1\|1\|unix\|(/[^|]+)\|netrpc\|$ ]] || fail "handshake line is $line"
socket=${BASH_REMATCH[1]}
[[ -S $socket ]] || fail "the handshake names $socket, which is not a unix socket"
python3 -c 'import socket, sys; s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])' "$socket" ||
	fail "nothing accepts connections on $socket"
log "ok: handshake $line (socket accepts connections)"
kill "$bridge_pid"
wait "$bridge_pid" 2>/dev/null || true
bridge_pid=
exec {out}<&-

# 2. The hello cases, the supervisor launching the arm64 bridge through qemu. The harness copies
# -bridge into the plugin's server/dist, so the wrapper puts the arm64 binary beside itself (for
# the manifest walk above) and counts its launches, proving the cases ran the emulated bridge.
# Left out: http_handler_longer_than_60s and restart_100_times_leaves_nothing, which wait a
# minute each on timers and supervisor cycles (make conformance runs them natively) and would
# add two minutes of emulation without exercising more of the arm64 code.
launches=$work/launches
wrapper=$work/qemu-bridge
cat >"$wrapper" <<EOF
#!/bin/sh
# The arm64 bridge under qemu-user, launched where the harness installed this wrapper.
here=\$(dirname "\$0")
cp -f '$bridge' "\$here/plugin-linux-arm64.emulated"
echo launch >>'$launches'
exec '$qemu' "\$here/plugin-linux-arm64.emulated" "\$@"
EOF
chmod 0755 "$wrapper"
cd "$root"
"$harness" -plugin examples/hello -bridge "$wrapper" -venv "$venv" \
	-skip '^(http_handler_longer_than_60s|restart_100_times_leaves_nothing)$'
count=$(wc -l <"$launches" 2>/dev/null || echo 0)
((count > 0)) || fail "the harness never launched the emulated bridge"
log "ok: examples/hello's cases passed with the arm64 bridge under qemu ($count launches)"

# 3. The two-platform bundle, its arm64 bridge emulated, offline.
[[ $(tar -tzf "$bundle") == *"/server/dist/plugin-linux-arm64"* ]] || fail "$bundle has no linux-arm64 bridge"
unpacked=$work/bundle
mkdir "$unpacked"
tar -xzf "$bundle" -C "$unpacked"
dist=$(echo "$unpacked"/*/server/dist)
cmp -s "$dist/plugin-linux-arm64" "$bridge" || fail "the bundle's linux-arm64 bridge is not $bridge"
bundle_launches=$work/bundle-launches
cat >"$dist/plugin-linux-amd64" <<EOF
#!/bin/sh
# This bundle's own linux-arm64 bridge, under qemu-user.
echo launch >>'$bundle_launches'
exec '$qemu' "\$(dirname "\$0")/plugin-linux-arm64" "\$@"
EOF
(cd "$unpacked" && tar -czf "$work/arm64-emulated.tar.gz" -- *)
unshare -n "$harness" -bundle "$work/arm64-emulated.tar.gz"
count=$(wc -l <"$bundle_launches" 2>/dev/null || echo 0)
((count > 0)) || fail "the harness never launched the bundle's emulated bridge"
log "ok: the two-platform bundle passed its cases offline with its arm64 bridge under qemu ($count launches)"

# 4. The aarch64 wheel's dev server. check_dev.py runs `MMPLUG dev DIR --port PORT`; this stand-in
# for mmplug runs the command line mmplug dev puts together for the wheel's programs
# (python/src/mattermost_plugin/cli/dev.py), the dev server under qemu and the bridge through the
# wrapper of step 2. qemu-user passes check_dev's Ctrl-C (SIGINT) on to the emulated program.
"$venv/bin/mmplug" new arm64-dev --dir "$work/arm64-dev" >/dev/null
dev_mmplug=$work/mmplug-arm64-dev
cat >"$dev_mmplug" <<EOF
#!/bin/sh
# Called as: mmplug dev DIR --port PORT
exec '$qemu' '$dev_server' -dev -plugin "\$2" -bridge '$wrapper' -venv '$venv' -port "\$4"
EOF
chmod 0755 "$dev_mmplug"
: >"$launches"
"$venv/bin/python" "$root/python/scripts/check_dev.py" "$dev_mmplug" "$work/arm64-dev" \
	com.example.arm64-dev arm64-dev 18066
count=$(wc -l <"$launches")
((count > 0)) || fail "the dev server never launched the emulated bridge"
log "ok: the aarch64 dev server ran a new plugin under qemu: route, command, reload, Ctrl-C ($count launches)"

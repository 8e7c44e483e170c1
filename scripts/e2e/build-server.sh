#!/usr/bin/env bash
# Builds a real Mattermost server from the Go module proxy, once per version, into a cache
# outside the repository, and prints the path of the runtime tree (bin/mattermost, i18n/,
# templates/, fonts/, client/plugins/).
#
#   scripts/e2e/build-server.sh            (make e2e calls it; MMPLUG_CACHE overrides the cache root)
#
# Facts this relies on (checked on this kind of machine, see issue 12): the proxy serves
# server/v8 at the pseudo-version below (Mattermost 11.4.0) and refuses newer ones; that
# module's go.mod asks for server/public v0.1.20, which does not build with it
# (`undefined: model.ReportPostQueryParams`), while the public pseudo-version below does; the
# build needs server/v8's own replace directives; the runtime needs i18n/, templates/ and
# fonts/ from the module and an existing client/plugins/ directory or no plugin starts.
set -euo pipefail

MM_VERSION=11.4.0
SERVER_V8=github.com/mattermost/mattermost/server/v8
SERVER_V8_VERSION=v8.0.0-20260113162330-9e1d4c2072c0
SERVER_PUBLIC=github.com/mattermost/mattermost/server/public
SERVER_PUBLIC_VERSION=v0.1.22-0.20260113165922-8e4cadbc88ee

cache=${MMPLUG_CACHE:-$HOME/.cache/mmplug}
tree=$cache/mattermost-$MM_VERSION
if [[ -x $tree/bin/mattermost && -f $tree/.complete ]]; then
	echo "$tree"
	exit 0
fi

log() { echo "build-server: $*" >&2; }
build=$cache/build-mattermost-$MM_VERSION
rm -rf "$build" "$tree"
mkdir -p "$build" "$tree/bin"

# No `direct` fallback: only the module proxy is reachable, and a silent fallback turns a
# refusal into a hang.
export GOPROXY=https://proxy.golang.org GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod
export GONOSUMDB= GOFLAGS=-mod=mod

log "downloading $SERVER_V8@$SERVER_V8_VERSION"
v8dir=$(cd "$build" && go mod download -json "$SERVER_V8@$SERVER_V8_VERSION" |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')

cd "$build"
cat >go.mod <<EOF
module mmplug.invalid/e2e-server

go 1.26

require (
	$SERVER_V8 $SERVER_V8_VERSION
	$SERVER_PUBLIC $SERVER_PUBLIC_VERSION
)
EOF
# server/v8's replace directives (single-line and block form) carry over verbatim.
python3 - "$v8dir/go.mod" >>go.mod <<'EOF'
import re, sys
text = open(sys.argv[1]).read()
out = []
for block in re.findall(r"^replace \((.*?)^\)", text, re.S | re.M):
    out += [l.strip() for l in block.splitlines() if l.strip() and not l.strip().startswith("//")]
out += [m.strip() for m in re.findall(r"^replace ([^(\n].*)$", text, re.M)]
for line in out:
    print("replace " + line)
EOF
cp "$v8dir/go.sum" go.sum
chmod u+w go.sum

log "building $SERVER_V8/cmd/mattermost (several minutes cold)"
go build -trimpath -o "$tree/bin/mattermost" "$SERVER_V8/cmd/mattermost"

for d in i18n templates fonts; do
	cp -r "$v8dir/$d" "$tree/$d"
	chmod -R u+w "$tree/$d"
done
mkdir -p "$tree/client/plugins"
touch "$tree/.complete"
rm -rf "$build"
log "server ready at $tree"
echo "$tree"

#!/usr/bin/env bash
# The version matrix: the conformance harness (the examples/hello cases and the -fidelity sweep)
# built against older released server/public modules, so the plugin supervisor, hooks client
# and API server are that release's own code, while the bridge (with its pinned v0.4.4
# contract) stays the same. See conformance/matrix/README.md for the versions and why.
#
#   conformance/matrix/run.sh BRIDGE VENV [VERSION...]     (from the repository root; make matrix)
#
# Per version: build gencatchall against the version's modfile and generate the catch-all and
# fidelity plugin.API implementations from that version's interface into a temporary directory;
# go vet and go build the harness with those files overlaid on the committed (pinned) ones; run
# it. One block per version, each ending with its summary line; exit status 1 if any case of any
# version failed, 2 on a usage or build error.
set -uo pipefail

# version → build tags. mmplug_legacy_hooks: the module has no HooksForPluginWithRPCErr
# (conformance/harness/hooks_legacy.go).
declare -A TAGS=(
	[v0.3.1]=mmplug_legacy_hooks
	[v0.4.3]=
)
DEFAULT_VERSIONS=(v0.3.1 v0.4.3)
PUBLIC=github.com/mattermost/mattermost/server/public

if [[ $# -lt 2 ]]; then
	echo "usage: $0 BRIDGE VENV [VERSION...]   (versions: ${DEFAULT_VERSIONS[*]})" >&2
	exit 2
fi
bridge=$1 venv=$2
shift 2
versions=("$@")
[[ ${#versions[@]} -eq 0 ]] && versions=("${DEFAULT_VERSIONS[@]}")
if [[ ! -f go.mod || ! -d conformance/matrix ]]; then
	echo "$0: run it from the repository root" >&2
	exit 2
fi
if [[ ! -x $bridge ]]; then
	echo "$0: bridge binary $bridge is missing (cargo build -p mmplug-bridge)" >&2
	exit 2
fi
if [[ ! -x $venv/bin/python ]]; then
	echo "$0: no Python environment at $venv (make venv)" >&2
	exit 2
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/mmplug-matrix.XXXXXX") || exit 2
trap 'rm -rf "$work"' EXIT
root=$PWD
status=0
summary=()

for v in "${versions[@]}"; do
	modfile=conformance/matrix/server-public-$v.mod
	if [[ ! -f $modfile || ! -v TAGS[$v] ]]; then
		echo "$0: unknown version $v (no $modfile or no entry in TAGS)" >&2
		exit 2
	fi
	tags=${TAGS[$v]}
	out=$work/$v
	mkdir -p "$out"

	dir=$(go list -modfile="$modfile" -m -f '{{.Dir}}' "$PUBLIC@$v" 2>/dev/null || true)
	[[ -n $dir ]] || dir=$(go mod download -modfile="$modfile" -json "$PUBLIC@$v" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
	# The newest release in the module's own version list (model/version.go) is the server it
	# belongs to.
	release=$(grep -m1 -oE '"[0-9]+\.[0-9]+\.[0-9]+"' "$dir/model/version.go" 2>/dev/null | tr -d '"')
	echo "=== server/public $v (Mattermost ${release:-?}) ==="

	if ! go build -modfile="$modfile" -o "$out/gencatchall" ./conformance/harness/gencatchall ||
		! (cd "$out" && ./gencatchall); then
		echo "$0: $v: generating the plugin.API implementations failed" >&2
		exit 2
	fi
	printf '{"Replace":{"%s":"%s","%s":"%s"}}\n' \
		"$root/conformance/harness/catchall_generated.go" "$out/catchall_generated.go" \
		"$root/conformance/harness/fidelity_generated.go" "$out/fidelity_generated.go" >"$out/overlay.json"
	flags=(-modfile="$modfile" -overlay="$out/overlay.json" -tags="$tags")
	if ! go vet "${flags[@]}" ./conformance/harness || ! go build "${flags[@]}" -o "$out/harness" ./conformance/harness; then
		echo "$0: $v: the harness does not build against this module" >&2
		exit 2
	fi

	passed=0 failed=0 coverage=""
	for mode in cases fidelity; do
		if [[ $mode == cases ]]; then
			# The two long cases test the bridge's own lifetime handling (a 61 s handler, 100
			# restarts), not the protocol of a server version; make conformance runs them.
			args=(-plugin examples/hello -bridge "$bridge" -venv "$venv"
				-skip 'http_handler_longer_than_60s|restart_100_times_leaves_nothing')
		else
			args=(-fidelity -plugin conformance/harness/testdata/fidelity -bridge "$bridge" -venv "$venv")
		fi
		"$out/harness" "${args[@]}" >"$out/$mode.log" 2>&1
		rc=$?
		cat "$out/$mode.log"
		counts=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$out/$mode.log" | tail -1)
		if [[ -z $counts ]]; then
			echo "FAIL $v $mode: the harness ended without a summary (exit $rc)"
			failed=$((failed + 1))
		else
			read -r p _ f _ <<<"$counts"
			passed=$((passed + p)) failed=$((failed + f))
			[[ $rc -ne 0 && $f -eq 0 ]] && failed=$((failed + 1)) && echo "FAIL $v $mode: exit status $rc"
		fi
		[[ $mode == fidelity ]] && coverage=$(grep -E '^API methods: ' "$out/$mode.log" | head -1)
	done
	echo "--- server/public $v (Mattermost ${release:-?}), ${tags:-no tags}"
	echo "coverage: ${coverage:-none (the fidelity sweep did not report)}"
	echo "$passed passed, $failed failed"
	echo
	summary+=("server/public $v (Mattermost ${release:-?}): $passed passed, $failed failed")
	[[ $failed -ne 0 ]] && status=1
done

echo "=== version matrix ==="
printf '%s\n' "${summary[@]}"
exit $status

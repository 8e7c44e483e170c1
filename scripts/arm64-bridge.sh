#!/usr/bin/env bash
# Cross-builds the statically linked linux-arm64 bridge that bundles ship beside the amd64 one,
# installing what it needs when missing: the rustup target, Debian's aarch64 cross gcc and
# glibc (the linker and the static libc), and qemu-user-static (the tests run the result).
# glibc rather than musl: the bridge calls libc::malloc_trim, which musl lacks.
# Usage: scripts/arm64-bridge.sh CARGO  (prints nothing; the binary is at
# target/aarch64-unknown-linux-gnu/release/mmplug-bridge)
set -euo pipefail
cargo=${1:-cargo}
root=$(cd "$(dirname "$0")/.." && pwd)
log() { echo "arm64-bridge: $*" >&2; }

target=aarch64-unknown-linux-gnu
rustup target list --installed | grep -qx "$target" || rustup target add "$target" >&2

packages=()
command -v aarch64-linux-gnu-gcc >/dev/null || packages+=(gcc-aarch64-linux-gnu)
[[ -e /usr/aarch64-linux-gnu/lib/libc.a ]] || packages+=(libc6-dev-arm64-cross)
command -v qemu-aarch64-static >/dev/null || packages+=(qemu-user-static)
if ((${#packages[@]})); then
	log "installing ${packages[*]} (apt-get)"
	if [[ $(id -u) != 0 ]]; then
		log "${packages[*]} not installed, and installing needs root"
		exit 1
	fi
	DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${packages[@]}" >&2
fi

cd "$root"
CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc \
	RUSTFLAGS="-C target-feature=+crt-static" \
	"$cargo" build --release -p mmplug-bridge --target "$target"

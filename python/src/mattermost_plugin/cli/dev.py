"""``mmplug dev``: the plugin under Mattermost's own plugin supervisor, on this machine.

A thin wrapper around the conformance harness of an mmplug source checkout (a Go program that
imports the server's ``plugin`` package with an in-memory server): it reloads the plugin when
a file changes, prints hooks and API calls as they happen, and serves the plugin's HTTP routes
on a local port. What this module does is find the pieces, build the harness and run it::

    go build -o <tmp>/harness ./conformance/harness        (in the checkout)
    <tmp>/harness -dev -plugin DIR -bridge <checkout>/target/debug/mmplug-bridge \
        -venv <this interpreter's environment> -port N
"""

from __future__ import annotations

import contextlib
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .console import progress
from .errors import CLIError
from .manifest import load_manifest
from .source import SOURCE_ENV, cargo_target_dir, find_checkout


def require_checkout() -> Path:
    checkout = find_checkout()
    if checkout is None:
        raise CLIError(
            "mmplug dev runs your plugin under Mattermost's plugin supervisor, which needs an "
            f"mmplug source checkout and Go: set {SOURCE_ENV}=/path/to/mmplug (or install the "
            "SDK from it with `pip install -e /path/to/mmplug/python`)"
        )
    return checkout


def go_version_needed(checkout: Path) -> str:
    """The ``go`` directive of the checkout's go.mod, for the error when Go is missing."""
    try:
        text = (checkout / "go.mod").read_text(encoding="utf-8")
    except OSError:
        return ""
    match = re.search(r"^go\s+(\S+)", text, re.MULTILINE)
    return match.group(1) if match else ""


def debug_bridge(checkout: Path) -> Path:
    """The checkout's debug bridge, built with cargo when it is not there yet."""
    bridge = cargo_target_dir(checkout) / "debug" / "mmplug-bridge"
    if bridge.is_file():
        return bridge
    cargo = shutil.which("cargo")
    if cargo is None:
        raise CLIError(
            f"{bridge} does not exist and cargo (Rust) is not on PATH to build it; install "
            "Rust from https://rustup.rs or build the bridge with `cargo build -p mmplug-bridge`"
        )
    progress("building the bridge: cargo build -p mmplug-bridge")
    result = subprocess.run(
        [cargo, "build", "-p", "mmplug-bridge"],
        cwd=checkout,
        stdout=subprocess.DEVNULL,
        check=False,
    )
    if result.returncode != 0 or not bridge.is_file():
        raise CLIError("cargo could not build the bridge (see above)")
    return bridge


@dataclass(frozen=True)
class DevCommand:
    """How ``mmplug dev`` runs the harness: build it, then run the built program."""

    checkout: Path
    go: str
    harness_args: list[str]  # after the program name

    def build_command(self, output: Path) -> list[str]:
        return [self.go, "build", "-o", str(output), "./conformance/harness"]


def dev_command(plugin_dir: Path, port: int) -> DevCommand:
    """Checks the pieces and puts the harness command line together."""
    plugin_dir = plugin_dir.resolve()
    load_manifest(plugin_dir)
    checkout = require_checkout()
    go = shutil.which("go")
    if go is None:
        needed = go_version_needed(checkout)
        raise CLIError(
            f"mmplug dev needs Go{f' {needed} or newer' if needed else ''} (the harness is a "
            "Go program): install it from https://go.dev/dl and put `go` on PATH"
        )
    bridge = debug_bridge(checkout)
    args = [
        "-dev",
        "-plugin",
        str(plugin_dir),
        "-bridge",
        str(bridge),
        "-venv",
        sys.prefix,
        "-port",
        str(port),
    ]
    return DevCommand(checkout, go, args)


def run_dev(plugin_dir: Path, port: int) -> int:
    """Builds and runs the harness until it exits; returns its exit code.

    The harness is built with ``go build`` (Go's cache makes that quick) rather than run with
    ``go run``, so that it is our direct child: it runs in its own session, and a SIGINT or
    SIGTERM that reaches ``mmplug`` (Ctrl-C in a terminal, a process manager's stop) is passed
    to it alone, once. It then deactivates the plugin through the supervisor and shuts the
    bridge down; a terminal's Ctrl-C sent to the whole group would kill the bridge first.
    """
    dev = dev_command(plugin_dir, port)
    with tempfile.TemporaryDirectory(prefix="mmplug-dev-") as scratch:
        harness = Path(scratch) / "harness"
        progress("building the harness: go build ./conformance/harness")
        built = subprocess.run(dev.build_command(harness), cwd=dev.checkout, check=False)
        if built.returncode != 0:
            raise CLIError("go could not build the harness (see above)")
        progress(f"starting the dev harness on port {port} (Ctrl-C stops)")
        process = subprocess.Popen(
            [str(harness), *dev.harness_args], cwd=dev.checkout, start_new_session=True
        )

        def forward(signum: int, frame: object) -> None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signum)

        previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            return process.wait()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

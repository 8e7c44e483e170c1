"""``mmplug dev``: the plugin under Mattermost's own plugin supervisor, on this machine.

A thin wrapper around the dev server: the conformance harness in ``-dev`` mode (a Go program
that imports the server's ``plugin`` package with an in-memory server), which reloads the plugin
when a file changes, prints hooks and API calls as they happen, and serves the plugin's HTTP
routes on a local port. What this module does is find the pieces and run them.

Installed from mmplug's platform wheel, the dev server and this machine's static bridge come in
the wheel (``binaries.py``); nothing is built::

    <package>/_bin/mmplug-dev -dev -plugin DIR -bridge <package>/_bin/mmplug-bridge-linux-amd64 \
        -venv <this interpreter's environment> -port N

Otherwise (an editable install of a checkout, for contributors), from the checkout, with Go
and cargo::

    go build -o <tmp>/harness ./conformance/harness        (in the checkout)
    <tmp>/harness -dev -plugin DIR -bridge <checkout>/target/debug/mmplug-bridge \
        -venv <this interpreter's environment> -port N
"""

from __future__ import annotations

import contextlib
import platform as host
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .binaries import host_platform, packaged_bridge, packaged_dev_server
from .console import progress
from .errors import CLIError
from .manifest import load_manifest
from .source import SOURCE_ENV, cargo_target_dir, find_checkout


def require_checkout() -> Path:
    checkout = find_checkout()
    if checkout is None:
        raise CLIError(
            "mmplug dev runs your plugin under Mattermost's plugin supervisor, a program that "
            "comes in mmplug's platform wheel (`pip install mmplug` on Linux x86_64 or "
            "aarch64), and this install does not carry it (installed from the sdist?). "
            "Install the wheel, or build it from an mmplug source checkout with Go: set "
            f"{SOURCE_ENV}=/path/to/mmplug (or install the SDK from it with "
            "`pip install -e /path/to/mmplug/python`)"
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
    """How ``mmplug dev`` runs the dev server: the wheel's program as it is, or the checkout's
    harness, built first."""

    harness_args: list[str]  # after the program name
    cwd: Path
    program: Path | None = None  # the wheel's dev server, ready to run
    checkout: Path | None = None  # else: build the harness in this checkout ...
    go: str | None = None  # ... with this go

    def build_command(self, output: Path) -> list[str]:
        assert self.go is not None, "a packaged dev server is not built"
        return [self.go, "build", "-o", str(output), "./conformance/harness"]


def _harness_args(plugin_dir: Path, bridge: Path, port: int) -> list[str]:
    return [
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


def packaged_dev_command(plugin_dir: Path, port: int) -> DevCommand | None:
    """The wheel's dev server with the wheel's bridge for this machine, or None when this
    install carries no dev server."""
    program = packaged_dev_server()
    if program is None:
        return None
    platform = host_platform()
    bridge = packaged_bridge(platform) if platform is not None else None
    if bridge is None:
        raise CLIError(
            f"this mmplug install has a dev server ({program}) but no bridge for this machine "
            f"({host.machine()}) beside it; reinstall mmplug from the wheel for this machine"
        )
    return DevCommand(_harness_args(plugin_dir, bridge, port), cwd=plugin_dir, program=program)


def dev_command(plugin_dir: Path, port: int) -> DevCommand:
    """Checks the pieces and puts the dev server's command line together."""
    plugin_dir = plugin_dir.resolve()
    load_manifest(plugin_dir)
    packaged = packaged_dev_command(plugin_dir, port)
    if packaged is not None:
        return packaged
    checkout = require_checkout()
    go = shutil.which("go")
    if go is None:
        needed = go_version_needed(checkout)
        raise CLIError(
            f"mmplug dev needs Go{f' {needed} or newer' if needed else ''} (the harness is a "
            "Go program): install it from https://go.dev/dl and put `go` on PATH"
        )
    bridge = debug_bridge(checkout)
    return DevCommand(
        _harness_args(plugin_dir, bridge, port), cwd=checkout, checkout=checkout, go=go
    )


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
        if dev.program is not None:
            harness = dev.program
            progress(f"starting the dev server on port {port} (Ctrl-C stops)")
        else:
            harness = Path(scratch) / "harness"
            progress("building the harness: go build ./conformance/harness")
            built = subprocess.run(dev.build_command(harness), cwd=dev.checkout, check=False)
            if built.returncode != 0:
                raise CLIError("go could not build the harness (see above)")
            progress(f"starting the dev harness on port {port} (Ctrl-C stops)")
        process = subprocess.Popen(
            [str(harness), *dev.harness_args], cwd=dev.cwd, start_new_session=True
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

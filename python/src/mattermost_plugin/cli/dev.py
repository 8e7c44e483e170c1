"""``mmplug dev``: the plugin under Mattermost's own plugin supervisor, on this machine.

A thin wrapper around the conformance harness of an mmplug source checkout (a Go program that
imports the server's ``plugin`` package with an in-memory server): it reloads the plugin when
a file changes, prints hooks and API calls as they happen, and serves the plugin's HTTP routes
on a local port. What this module does is find the pieces and build the command line::

    go run ./conformance/harness -dev -plugin DIR -bridge <checkout>/target/debug/mmplug-bridge \
        -venv <this interpreter's environment> -port N
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
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


def dev_command(plugin_dir: Path, port: int) -> tuple[list[str], Path]:
    """The harness command line and the directory to run it in."""
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
    command = [
        go,
        "run",
        "./conformance/harness",
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
    return command, checkout


def run_dev(plugin_dir: Path, port: int) -> int:
    command, checkout = dev_command(plugin_dir, port)
    progress(f"starting the dev harness on port {port} (Ctrl-C stops)")
    process = subprocess.Popen(command, cwd=checkout)
    try:
        return process.wait()
    except KeyboardInterrupt:
        # The terminal sent SIGINT to the harness too; let it shut the plugin down.
        return process.wait()

"""End-to-end check of ``mmplug dev`` on a scaffolded plugin (run by ``make test-wheel``,
scripts/wheel-journey.sh, with mmplug installed from its wheel).

Starts ``mmplug dev DIR --port PORT`` (which runs the dev server, the conformance harness's -dev
mode: Mattermost's own plugin supervisor, the in-memory server, the real bridge), then, over
HTTP as a developer would: calls the plugin's route, runs its slash command, edits plugin.py and
waits for the reload to serve the edit, and stops it with Ctrl-C (SIGINT), expecting a clean exit.

    python check_dev.py MMPLUG PLUGIN_DIR PLUGIN_ID TRIGGER PORT
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

STARTUP_SECONDS = 180.0  # from a checkout, the first run builds the harness
RELOAD_SECONDS = 60.0


def request(url: str, body: dict[str, str] | None = None) -> tuple[int, str]:
    data = None if body is None else json.dumps(body).encode()
    try:
        with urllib.request.urlopen(url, data=data, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def wait_for(what: str, seconds: float, probe: Callable[[], tuple[bool, str]]) -> str:
    deadline = time.monotonic() + seconds
    last = ""
    while time.monotonic() < deadline:
        try:
            ok, last = probe()
            if ok:
                return last
        except OSError as e:  # not listening yet
            last = str(e)
        time.sleep(0.25)
    raise SystemExit(f"check_dev: {what} did not happen within {seconds:.0f} s (last: {last})")


def main(mmplug: str, plugin_dir: str, plugin_id: str, trigger: str, port: str) -> None:
    base = f"http://127.0.0.1:{port}"
    route = f"{base}/plugins/{plugin_id}/greeting"
    proc = subprocess.Popen([mmplug, "dev", plugin_dir, "--port", port])
    try:

        def route_answers(key: str) -> Callable[[], tuple[bool, str]]:
            def probe() -> tuple[bool, str]:
                status, text = request(route)
                return status == 200 and key in json.loads(text), text

            return probe

        print(
            "check_dev:",
            wait_for("serving the plugin's route", STARTUP_SECONDS, route_answers("greeting")),
        )
        status, text = request(f"{base}/dev/command", {"command": f"/{trigger}"})
        if status != 200 or "Hello, world!" not in text:
            raise SystemExit(f"check_dev: /{trigger} answered {status}: {text}")
        print("check_dev: /" + trigger, "answered", json.loads(text)["text"])

        source = Path(plugin_dir, "plugin.py")
        edited = source.read_text().replace(
            '"user_id": r.user_id', '"user_id": r.user_id, "edited": True'
        )
        source.write_text(edited)
        print(
            "check_dev:",
            wait_for("reloading after plugin.py changed", RELOAD_SECONDS, route_answers("edited")),
        )
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise SystemExit("check_dev: mmplug dev did not stop within 30 s of Ctrl-C") from None
    if code != 0:
        raise SystemExit(f"check_dev: mmplug dev exited with {code} after Ctrl-C")
    print("check_dev: stopped cleanly")


if __name__ == "__main__":
    if len(sys.argv) != 6:
        raise SystemExit(__doc__)
    main(*sys.argv[1:])

"""`python -m mattermost_plugin plugin.py` as the bridge runs it, against the real contract."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import sys
import tempfile
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import pytest
from google.protobuf.message_factory import GetMessageClass
from grpc_health.v1 import health_pb2, health_pb2_grpc

from mattermost_plugin._contract import api_service, hooks_service
from mattermost_plugin.client import TOKEN_METADATA_KEY

from fakebridge import FakeAPI

TOKEN = "entry-token"

PLUGIN = textwrap.dedent(
    """
    import os
    from mattermost_plugin import Command, HookName, Plugin, hook, run_plugin

    class Hello(Plugin):
        @hook(HookName.OnActivate)
        def on_activate(self):
            self.api.register_command(Command(trigger="hello", auto_complete=True))
            print("stray print")
            self.logger.info(
                "activated", extra={"token_in_env": "MMPLUG_TOKEN" in os.environ}
            )

    if __name__ == "__main__":
        raise SystemExit("imported as __main__: the entry must not run this block")
    """
)


def message(service: Any, name: str, response: bool = False) -> Any:
    m = service.methods_by_name[name]
    return GetMessageClass(m.output_type if response else m.input_type)


@pytest.fixture
def workdir() -> AsyncIterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="mme-", dir="/tmp"))
    yield d  # type: ignore[misc]
    shutil.rmtree(d, ignore_errors=True)


def child_env(d: Path, entry: Path) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", ""),
        "MMPLUG_API_SOCKET": str(d / "api.sock"),
        "MMPLUG_HOOKS_SOCKET": str(d / "hooks.sock"),
        "MMPLUG_TOKEN": TOKEN,
        "MMPLUG_PLUGIN_ID": "com.example.hello",
        "MMPLUG_PLUGIN_DIR": str(d),
        "MMPLUG_ENTRY": str(entry),
    }


async def wait_serving(channel: grpc.aio.Channel, proc: asyncio.subprocess.Process) -> None:
    stub = health_pb2_grpc.HealthStub(channel)

    async def watch() -> None:
        call = stub.Watch(
            health_pb2.HealthCheckRequest(service=""),
            metadata=((TOKEN_METADATA_KEY, TOKEN),),
            wait_for_ready=True,
        )
        async for resp in call:
            if resp.status == health_pb2.HealthCheckResponse.SERVING:
                call.cancel()
                return

    watcher = asyncio.ensure_future(watch())
    exited = asyncio.ensure_future(proc.wait())
    done, _ = await asyncio.wait({watcher, exited}, return_when=asyncio.FIRST_COMPLETED)
    if exited in done:
        watcher.cancel()
        err = await proc.stderr.read() if proc.stderr else b""
        raise AssertionError(f"plugin exited early ({proc.returncode}): {err.decode()}")
    exited.cancel()
    watcher.result()


async def test_module_entry_serves_hooks_and_stops_on_sigterm(workdir: Path) -> None:
    entry = workdir / "plugin.py"
    entry.write_text(PLUGIN)
    api = api_service()
    fake = FakeAPI(
        api, TOKEN, {"RegisterCommand": lambda req: message(api, "RegisterCommand", True)()}
    )
    await fake.start(str(workdir / "api.sock"))
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "mattermost_plugin",
        env=child_env(workdir, entry),  # no path argument: MMPLUG_ENTRY names the module
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    channel = grpc.aio.insecure_channel(f"unix:{workdir / 'hooks.sock'}")
    try:
        await wait_serving(channel, proc)
        hooks = hooks_service()
        md = ((TOKEN_METADATA_KEY, TOKEN),)

        async def call(name: str) -> Any:
            req_cls = message(hooks, name)
            resp_cls = message(hooks, name, True)
            fn = channel.unary_unary(
                f"/{hooks.full_name}/{name}",
                request_serializer=req_cls.SerializeToString,
                response_deserializer=resp_cls.FromString,
            )
            return await fn(req_cls(), metadata=md)

        assert list((await call("Implemented")).hooks) == ["OnActivate"]
        resp = await call("OnActivate")
        assert not resp.HasField("error"), resp.error
        (reg,) = [x for x in fake.calls if x.method == "RegisterCommand"]
        assert reg.request.command.trigger == "hello"
        assert reg.request.context.plugin_id == "com.example.hello"
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = await proc.communicate()
    finally:
        await channel.close()
        await fake.stop()
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, stderr.decode()
    assert stdout == b""  # docs/internals.md §8: nothing on stdout, ever
    lines = stderr.decode().splitlines()
    assert "stray print" in lines  # print() was redirected to stderr
    entries = [json.loads(x) for x in lines if x.startswith("{")]
    (activated,) = [e for e in entries if e["@message"] == "activated"]
    assert activated["@level"] == "info" and activated["@module"] == "python"
    assert activated["token_in_env"] is False


@pytest.mark.parametrize(
    ("source", "env_extra", "match"),
    [
        ("from mattermost_plugin import Plugin\n", {}, "exactly one Plugin subclass, found none"),
        (
            "from mattermost_plugin import Plugin\nclass A(Plugin): pass\nclass B(Plugin): pass\n",
            {},
            "found A, B",
        ),
        ("raise ImportError('no such dependency')\n", {}, "no such dependency"),
        (
            "from mattermost_plugin import Plugin\nclass A(Plugin): pass\n",
            None,
            "missing environment",
        ),
    ],
)
async def test_entry_errors_are_clear(
    workdir: Path, source: str, env_extra: dict[str, str] | None, match: str
) -> None:
    entry = workdir / "plugin.py"
    entry.write_text(source)
    env = child_env(workdir, entry) if env_extra is not None else {"PATH": os.environ["PATH"]}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "mattermost_plugin",
        str(entry),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await proc.communicate()
    assert proc.returncode in (1, 2)
    assert stdout == b""
    assert match in stderr.decode()


# A parent that sets no PR_SET_PDEATHSIG: it starts the command in its arguments, prints the
# child's pid and waits.
PLAIN_PARENT = (
    "import subprocess, sys\n"
    "child = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)\n"
    "print(child.pid, flush=True)\n"
    "child.wait()\n"
)


def has_exited(pid: int) -> bool:
    """Whether process ``pid`` has exited (a zombie waiting for its new parent to reap it has)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    # The state follows the command name in parentheses: "pid (comm) S ...".
    return stat.rpartition(")")[2].split()[0] in ("Z", "X")


async def test_the_plugin_exits_when_its_parent_dies(workdir: Path) -> None:
    """The SDK's parent watcher alone ends a plugin whose parent died: the parent here sets no
    PR_SET_PDEATHSIG, the bridge's own guard (checked alone by crates/bridge/src/python.rs,
    python_dies_with_its_bridge)."""
    entry = workdir / "plugin.py"
    entry.write_text(PLUGIN)
    fake = FakeAPI(api_service(), TOKEN, {})  # where the plugin's log lines go
    await fake.start(str(workdir / "api.sock"))
    parent = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        PLAIN_PARENT,
        sys.executable,
        "-m",
        "mattermost_plugin",
        str(entry),
        env=child_env(workdir, entry),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert parent.stdout is not None
    plugin_pid = int(await parent.stdout.readline())
    channel = grpc.aio.insecure_channel(f"unix:{workdir / 'hooks.sock'}")
    try:
        # SERVING is reported once the parent watcher is in place.
        await wait_serving(channel, parent)
        # Not waited for here: asyncio's wait() also waits for the plugin, which holds the
        # parent's stderr pipe.
        parent.kill()
        for _ in range(500):
            if has_exited(plugin_pid):
                break
            await asyncio.sleep(0.02)
        else:
            pytest.fail(
                f"the plugin (pid {plugin_pid}) was still running 10 s after its parent was "
                "SIGKILLed: the SDK's parent watcher did not stop it"
            )
    finally:
        if not has_exited(plugin_pid):
            os.kill(plugin_pid, signal.SIGKILL)
        if parent.returncode is None:
            parent.kill()
        await parent.wait()
        await channel.close()
        await fake.stop()

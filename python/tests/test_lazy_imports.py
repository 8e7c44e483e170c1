"""The SDK's helper modules (bots, commands, interactive messages, jobs) load only when a
plugin uses them, which keeps a plugin's start-up and idle memory down (issue 11)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import mattermost_plugin

HELPERS = ("bots", "commands", "interactive", "jobs")


def loaded_after(code: str) -> list[str]:
    """The helper modules a fresh interpreter has loaded after running ``code``."""
    probe = textwrap.dedent(code) + textwrap.dedent(f"""
        import sys
        print(",".join(m for m in {HELPERS!r} if "mattermost_plugin." + m in sys.modules))
    """)
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    return [m for m in out.stdout.strip().split(",") if m]


def test_a_plugin_of_hooks_alone_loads_no_helper() -> None:
    assert (
        loaded_after("""
            from mattermost_plugin import HookName, Plugin, hook

            class P(Plugin):
                @hook(HookName.MessageWillBePosted)
                def check(self, context, post):
                    return post, ""
        """)
        == []
    )


def test_a_helper_loads_when_a_plugin_uses_it() -> None:
    assert loaded_after("from mattermost_plugin import command") == ["commands"]
    assert loaded_after("import mattermost_plugin.jobs") == ["jobs"]
    # A base class defined elsewhere with a declared command: the subclass is routed too.
    assert loaded_after("""
        from mattermost_plugin import Plugin
        from mattermost_plugin.commands import command

        class Base(Plugin):
            @command("hello")
            def hello(self, args):
                return "hi"

        class P(Base):
            pass

        assert P._command_router is not None and P._job_table is None
    """) == ["commands"]


def test_every_exported_name_resolves_to_its_module_s_object() -> None:
    import importlib

    for name in mattermost_plugin.__all__:
        value = getattr(mattermost_plugin, name)
        module = mattermost_plugin._LAZY.get(name)
        if module is not None:
            helper = importlib.import_module(f"mattermost_plugin.{module}")
            assert value is getattr(helper, name), name
    assert set(mattermost_plugin._LAZY) <= set(mattermost_plugin.__all__)


def test_the_contract_loads_without_building_every_message_class() -> None:
    # The services and the message classes (the SDK's own Post as much as any) come from the
    # serialized descriptors; no _pb2 module is imported (they would build ~a thousand
    # classes), and a class made on first use is the very class its module has once imported.
    probe = textwrap.dedent("""
        import sys
        import mattermost_plugin
        from mattermost_plugin import _contract
        from google.protobuf.message_factory import GetMessageClass

        api, hooks = _contract.api_service(), _contract.hooks_service()
        made = GetMessageClass(api.methods_by_name["GetUser"].input_type)
        request = mattermost_plugin.MessageWillBePostedHookRequest
        post = mattermost_plugin.Post
        options = mattermost_plugin.kv._kv_set_options()
        print(sorted(m.rpartition(".")[2] for m in sys.modules if m.endswith("_pb2")
                     and m.startswith("mattermost_plugin.")))
        from mattermost_plugin._proto.mattermost.plugin.v1 import api_pb2, hooks_pb2, models_pb2
        assert api_pb2.GetUserRequest is made
        assert models_pb2.Post is post and models_pb2.PluginKVSetOptions is options
        assert hooks_pb2.MessageWillBePostedHookRequest is request
        assert request.DESCRIPTOR is hooks.methods_by_name["MessageWillBePosted"].input_type
    """)
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_protobuf_json_format_loads_with_the_first_dict_given_for_a_message() -> None:
    # ~1 ms of every start-up; only a dict given where the contract has a message needs it.
    probe = textwrap.dedent("""
        import sys
        import mattermost_plugin
        from mattermost_plugin._contract import message_class
        from mattermost_plugin._convert import set_field

        assert "google.protobuf.json_format" not in sys.modules
        request = message_class("UpdateUserRequest")()
        set_field(request, request.DESCRIPTOR.fields_by_name["user"], {"username": "ann"})
        assert request.user.username == "ann"
        assert "google.protobuf.json_format" in sys.modules
    """)
    subprocess.run([sys.executable, "-c", probe], check=True, timeout=60)

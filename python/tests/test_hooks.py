"""HookName against the pinned Go module, the @hook decorator and the Plugin registry."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from mattermost_plugin import HookName, HookRegistrationError, Plugin, hook
from mattermost_plugin._contract import hooks_service
from mattermost_plugin._names import snake_case


def _go_hooks_file() -> Path:
    go = shutil.which("go")
    if go is None:
        pytest.skip("Go toolchain not installed: cannot read the pinned plugin/hooks.go")
    modcache = subprocess.run(
        [go, "env", "GOMODCACHE"], capture_output=True, text=True, check=True
    ).stdout.strip()
    path = Path(modcache) / "github.com/mattermost/mattermost/server/public@v0.4.4/plugin/hooks.go"
    if not path.exists():
        pytest.skip(f"{path} missing: run `go mod download` in the repo root")
    return path


def test_hook_names_match_go_interface_in_order() -> None:
    text = _go_hooks_file().read_text()
    body = text[text.index("type Hooks interface {") :]
    body = body[: body.index("\n}\n")]
    go_names = [
        m.group(1)
        for m in re.finditer(r"^\t([A-Z]\w*)\(", body, re.MULTILINE)
        if m.group(1) != "Implemented"
    ]
    assert [h.value for h in HookName] == go_names
    assert all(h.name == h.value for h in HookName)


def test_hook_names_match_the_generated_contract() -> None:
    rpcs = {m.name for m in hooks_service().methods} - {"Implemented"}
    assert rpcs == {h.value for h in HookName}


@pytest.mark.parametrize(
    ("go", "py"),
    [
        ("KVSet", "kv_set"),
        ("GetServerVersion", "get_server_version"),
        ("HTTPRequest", "http_request"),
        ("UserId", "user_id"),
        ("GetUsersInChannelByStatus", "get_users_in_channel_by_status"),
        ("OAuthApp", "o_auth_app"),
        ("CreateAt", "create_at"),
        ("URL", "url"),
        ("GetLDAPUserAttributes", "get_ldap_user_attributes"),
        ("Base64Data", "base64_data"),
    ],
)
def test_snake_case_rule(go: str, py: str) -> None:
    assert snake_case(go) == py


def test_three_decorator_forms_and_original_function_returned() -> None:
    def on_activate(self: Plugin) -> None:
        pass

    assert hook(HookName.OnActivate)(on_activate) is on_activate

    class P(Plugin):
        @hook(HookName.OnActivate)
        def a(self) -> None: ...

        @hook("OnDeactivate")
        def b(self) -> None: ...

        @hook
        def ExecuteCommand(self) -> None: ...

        @hook()
        def MessageHasBeenPosted(self) -> None: ...

    assert P.implemented_hooks() == [
        "OnActivate",
        "OnDeactivate",
        "ExecuteCommand",
        "MessageHasBeenPosted",
    ]
    assert P.has_hook("OnActivate")
    assert P.has_hook(HookName.ExecuteCommand)
    assert not P.has_hook("ServeHTTP")
    assert not P.has_hook("NoSuchHook")
    # Still plain methods.
    assert P().a() is None


def test_unknown_hook_names_raise_at_decoration() -> None:
    with pytest.raises(HookRegistrationError, match="unknown hook 'OnActivated'"):
        hook("OnActivated")
    with pytest.raises(HookRegistrationError, match="unknown hook 'on_activate'"):

        @hook
        def on_activate(self: Plugin) -> None: ...

    with pytest.raises(HookRegistrationError, match="HookName or a hook name string"):
        hook(42)  # type: ignore[call-overload]
    with pytest.raises(HookRegistrationError, match="must decorate a function"):
        hook("OnActivate")("not a function")  # type: ignore[type-var]


def test_hook_registered_twice_raises() -> None:
    with pytest.raises(HookRegistrationError, match="OnActivate is registered twice"):

        class P(Plugin):
            @hook(HookName.OnActivate)
            def a(self) -> None: ...

            @hook("OnActivate")
            def b(self) -> None: ...

    with pytest.raises(HookRegistrationError, match="already registered for hook OnActivate"):

        @hook("OnDeactivate")
        @hook("OnActivate")
        def both(self: Plugin) -> None: ...


def test_subclass_inherits_and_overrides_handlers() -> None:
    class Base(Plugin):
        @hook(HookName.OnActivate)
        def activate(self) -> str:
            return "base"

        @hook(HookName.OnDeactivate)
        def deactivate(self) -> str:
            return "base"

    class Child(Base):
        @hook(HookName.OnActivate)
        def activate_child(self) -> str:
            return "child"

        def deactivate(self) -> str:  # plain override of an inherited handler
            return "child"

    child = Child()
    assert Child.implemented_hooks() == ["OnActivate", "OnDeactivate"]
    activate = child.hook_handler("OnActivate")
    deactivate = child.hook_handler(HookName.OnDeactivate)
    assert activate is not None and activate() == "child"
    assert deactivate is not None and deactivate() == "child"
    assert Base().hook_handler("OnActivate")() == "base"  # type: ignore[misc]
    assert child.hook_handler("ServeHTTP") is None
    assert child.hook_handler("Bogus") is None


def test_unbound_plugin_explains_missing_clients() -> None:
    class P(Plugin):
        pass

    plugin = P()
    with pytest.raises(RuntimeError, match="not running"):
        _ = plugin.api
    with pytest.raises(RuntimeError, match="not running"):
        _ = plugin.aapi
    assert plugin.logger.name == "mattermost_plugin.plugin.P"


def test_a_handler_named_like_an_sdk_member_is_refused_at_class_creation() -> None:
    from mattermost_plugin.commands import command
    from mattermost_plugin.interactive import dialog
    from mattermost_plugin.jobs import every

    with pytest.raises(HookRegistrationError, match=r"P\.create: .*Plugin\.create"):

        class P(Plugin):
            @dialog("create")
            def create(self, submission: object) -> None: ...  # type: ignore[override]

    with pytest.raises(HookRegistrationError, match=r"Q\.jobs: .*Plugin\.jobs"):

        class Q(Plugin):
            @every(60)
            def jobs(self) -> None: ...  # type: ignore[override]

    with pytest.raises(HookRegistrationError, match=r"R\.api: .*Plugin\.api"):

        class R(Plugin):
            @hook(HookName.OnActivate)
            def api(self) -> None: ...  # type: ignore[override]

    with pytest.raises(HookRegistrationError, match=r"S\.logger: .*Plugin\.logger"):

        class S(Plugin):
            @command("logger")
            def logger(self, args: object) -> str:  # type: ignore[override]
                return ""

    class Fine(Plugin):  # an undecorated override stays the author's business
        def create_reminder(self) -> None: ...

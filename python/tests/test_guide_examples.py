"""docs/guide.md's examples are real: the complete ones run as pytest modules against the test
kit, the fragments compile, and the guide links the generated references and documents every
helper of the SDK's authoring surface."""

from __future__ import annotations

import re

import pytest

import mattermost_plugin

from doc_examples import REPO, python_examples, run_examples

pytest_plugins = ["pytester"]

GUIDE = REPO / "docs" / "guide.md"


def test_complete_examples_run(pytester: pytest.Pytester) -> None:
    examples = [e for e in python_examples(GUIDE) if e.complete]
    assert len(examples) >= 10
    assert all(e.tests for e in examples), "a complete example without a test proves nothing"
    assert run_examples(pytester, examples, "guide") >= 15


def test_fragments_compile() -> None:
    for example in python_examples(GUIDE):
        if not example.complete:
            compile(example.code, f"docs/guide.md:{example.line}", "exec")


def test_every_python_block_is_accounted_for() -> None:
    # A ```python block the extraction misses (another info string, an indented fence) would
    # be an example nobody runs.
    text = GUIDE.read_text(encoding="utf-8")
    fences = len(re.findall(r"^```py", text, flags=re.MULTILINE))
    assert fences == len(python_examples(GUIDE))


def test_the_guide_covers_the_authoring_surface() -> None:
    text = GUIDE.read_text(encoding="utf-8")
    for link in (
        "reference/hooks.md",
        "reference/api.md",
        "testing.md",
        "cli.md",
        "operations.md",
    ):
        assert f"]({link}" in text, link
        assert (REPO / "docs" / link).is_file(), link
    helpers = [
        "Plugin",
        "HookName",
        "run_plugin",
        "Settings",
        "parse_settings",
        "SettingsError",
        "CommandCall",
        "CommandError",
        "ensure_bot",
        "BotUsernameTakenError",
        "KVConflictError",
        "KVDecodeError",
        "LockTimeoutError",
        "HookReplyError",
        "HookRegistrationError",
        "HTTPRequest",
        "HTTPResponseWriter",
        "PluginAPIError",
        "NotFoundError",
        "NotImplementedAPIError",
        "OneShotJob",
        "JobExistsError",
        "ActionRequest",
        "ActionResponse",
        "DialogSubmission",
        "InteractiveDialog",
    ]
    for name in helpers:
        assert hasattr(mattermost_plugin, name), name
        assert f"`{name}" in text or f" {name}(" in text, f"the guide does not mention {name}"
    for name in (
        "@hook(",
        "@command(",
        "serve_asgi",
        "serve_wsgi",
        "self.kv_store",
        "mutex(",
        "@every(",
        "@one_shot(",
        "schedule_once(",
        "@action(",
        "@dialog(",
        "open_dialog(",
    ):
        assert name in text, name
    assert hasattr(mattermost_plugin, "hook") and hasattr(mattermost_plugin, "command")
    for step in ("mmplug new", "pytest", "mmplug dev", "mmplug bundle", "mmplug deploy"):
        assert step in text, step

"""Typed plugin settings: parsing rules, and the load/reload policy on a running plugin."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Literal

import pytest

from mattermost_plugin import (
    HookName,
    NotFoundError,
    Plugin,
    Settings,
    SettingsError,
    hook,
    parse_settings,
)
from mattermost_plugin.testing import ActivationError, FakeMattermost, HookError


class Mode(enum.Enum):
    WARN = "warn"
    REJECT = "reject"


@dataclass(frozen=True)
class Limits:
    per_minute: int = 10
    burst: int = 3


@dataclass(frozen=True)
class ModerationSettings:
    api_token: str
    enabled: bool = True
    max_length: int = 4000
    ratio: float = 0.5
    mode: Mode = Mode.WARN
    style: Literal["short", "long"] = "short"
    banned_words: list[str] = field(default_factory=list)
    channel_ids: tuple[str, ...] = ()
    labels: dict[str, int] = field(default_factory=dict)
    limits: Limits = field(default_factory=Limits)
    webhook: str | None = None
    admin_channel: str = field(default="town-square", metadata={"key": "AdminChannelName"})
    extra: Any = None


def test_values_of_every_supported_kind() -> None:
    s = parse_settings(
        ModerationSettings,
        {
            "APIToken": "t0k",
            "Enabled": False,
            "MaxLength": 100,
            "Ratio": 1,
            "Mode": "reject",
            "Style": "long",
            "BannedWords": ["a", "b"],
            "ChannelIds": ["c1"],
            "Labels": {"x": 1},
            "Limits": {"PerMinute": 5},
            "Webhook": "https://hooks.example",
            "AdminChannelName": "ops",
            "Extra": {"anything": [1, 2]},
            "SomethingElse": "ignored",
        },
    )
    assert s == ModerationSettings(
        api_token="t0k",
        enabled=False,
        max_length=100,
        ratio=1.0,
        mode=Mode.REJECT,
        style="long",
        banned_words=["a", "b"],
        channel_ids=("c1",),
        labels={"x": 1},
        limits=Limits(per_minute=5, burst=3),
        webhook="https://hooks.example",
        admin_channel="ops",
        extra={"anything": [1, 2]},
    )


def test_keys_match_ignoring_case_and_underscores() -> None:
    # Some servers store plugin setting keys lower-cased.
    assert parse_settings(ModerationSettings, {"apitoken": "x", "maxlength": 7}).max_length == 7
    assert parse_settings(ModerationSettings, {"api_token": "x", "MAXLENGTH": 9}).max_length == 9
    explicit = parse_settings(ModerationSettings, {"apitoken": "x", "adminchannelname": "o"})
    assert explicit.admin_channel == "o"


def test_text_forms_as_environment_overrides_give_them() -> None:
    s = parse_settings(
        ModerationSettings,
        {
            "ApiToken": "x",
            "Enabled": "false",
            "MaxLength": " 12 ",
            "Ratio": "0.25",
            "Mode": "REJECT",  # an Enum also by member name
            "BannedWords": "spam, scam\nphish,,",
            "Labels": '{"a": 2}',
        },
    )
    assert (s.enabled, s.max_length, s.ratio, s.mode) == (False, 12, 0.25, Mode.REJECT)
    assert s.banned_words == ["spam", "scam", "phish"]
    assert s.labels == {"a": 2}


def test_defaults_and_missing_values() -> None:
    s = parse_settings(ModerationSettings, {"ApiToken": "x", "MaxLength": None, "Enabled": ""})
    assert (s.max_length, s.enabled, s.webhook, s.limits) == (4000, True, None, Limits())

    @dataclass
    class OptionalNoDefault:
        channel: str | None

    assert parse_settings(OptionalNoDefault, {}).channel is None
    assert parse_settings(OptionalNoDefault, None).channel is None


def test_required_setting_missing_or_empty() -> None:
    with pytest.raises(SettingsError) as e:
        parse_settings(ModerationSettings, {})
    assert e.value.problems == [("ApiToken", "required (field api_token), but not set")]
    # The key is named as the configuration spells it.
    with pytest.raises(SettingsError, match=r"apitoken: required \(field api_token\), but empty"):
        parse_settings(ModerationSettings, {"apitoken": ""})


def test_every_bad_value_is_named_in_one_error() -> None:
    with pytest.raises(SettingsError) as e:
        parse_settings(
            ModerationSettings,
            {
                "ApiToken": 5,
                "Enabled": "maybe",
                "MaxLength": 1.5,
                "Ratio": "fast",
                "Mode": "shout",
                "Style": "medium",
                "BannedWords": {"not": "a list"},
                "Labels": {"x": "one"},
                "Limits": {"Burst": "many"},
            },
        )
    problems = dict(e.value.problems)
    assert problems == {
        "ApiToken": "expected text, got a number 5",
        "Enabled": "expected true or false, got text 'maybe'",
        "MaxLength": "expected a whole number, got a number 1.5",
        "Ratio": "expected a number, got text 'fast'",
        "Mode": "expected one of 'warn', 'reject', got 'shout'",
        "Style": "expected one of 'short', 'long', got 'medium'",
        "BannedWords": "expected a list, got an object {'not': 'a list'}",
        "Labels": "entry 'x': expected a whole number, got text 'one'",
        "Limits.Burst": "expected a whole number, got text 'many'",
    }
    message = str(e.value)
    assert message.startswith("invalid plugin settings (ModerationSettings): ApiToken: expected")
    assert "Limits.Burst: expected a whole number" in message


def test_list_items_are_checked() -> None:
    @dataclass
    class Numbers:
        values: list[int] = field(default_factory=list)

    assert parse_settings(Numbers, {"Values": "1, 2"}).values == [1, 2]
    with pytest.raises(
        SettingsError, match="Values: item 2: expected a whole number, got text 'x'"
    ):
        parse_settings(Numbers, {"Values": [1, "x"]})


def test_post_init_checks_become_settings_errors() -> None:
    @dataclass
    class Bounded:
        size: int = 1

        def __post_init__(self) -> None:
            if self.size > 10:
                raise ValueError("size must be at most 10")

    with pytest.raises(SettingsError, match="size must be at most 10"):
        parse_settings(Bounded, {"Size": 11})


def test_settings_classes_are_dataclasses() -> None:
    class NotADataclass:
        x: int = 1

    with pytest.raises(TypeError, match="dataclass"):
        parse_settings(NotADataclass, {})
    with pytest.raises(TypeError, match="dataclass"):
        Settings(NotADataclass)

    @dataclass
    class Weird:
        when: complex = 0j

    with pytest.raises(SettingsError, match="unsupported type"):
        parse_settings(Weird, {"When": 1})


# --- on a running plugin -------------------------------------------------------------------


@dataclass(frozen=True)
class GreeterSettings:
    greeting: str
    shout: bool = False


class Greeter(Plugin):
    settings = Settings(GreeterSettings)

    def __init__(self) -> None:
        self.seen: list[GreeterSettings] = []

    @hook(HookName.OnConfigurationChange)
    def on_change(self) -> None:
        # Runs after the SDK reloaded the settings.
        self.seen.append(self.settings)

    @hook(HookName.ExecuteCommand)
    def greet(self, context: Any, args: Any) -> Any:
        from mattermost_plugin import CommandResponse

        text = self.settings.greeting
        return CommandResponse(text=text.upper() if self.settings.shout else text)


def test_loaded_before_activation_and_reloaded_on_change(mm_plugin: Any) -> None:
    handle = mm_plugin(Greeter, settings={"Greeting": "hello"})
    plugin: Greeter = handle.plugin
    assert plugin.settings == GreeterSettings(greeting="hello")
    assert plugin.seen == [GreeterSettings(greeting="hello")]
    assert handle.fire(HookName.ExecuteCommand, {"command": "/greet"}).text == "hello"

    handle.configure({"Greeting": "hi", "Shout": True})
    assert plugin.settings == GreeterSettings(greeting="hi", shout=True)
    assert plugin.seen[-1] == plugin.settings
    assert handle.fire(HookName.ExecuteCommand, {"command": "/greet"}).text == "HI"


def test_invalid_change_keeps_previous_settings(mm_plugin: Any) -> None:
    handle = mm_plugin(Greeter, settings={"Greeting": "hello"})
    plugin: Greeter = handle.plugin
    with pytest.raises(HookError, match=r"Shout: expected true or false, got text 'loud'") as e:
        handle.configure({"Greeting": "hi", "Shout": "loud"})
    assert e.value.hook == "OnConfigurationChange"
    assert plugin.settings == GreeterSettings(greeting="hello")
    assert len(plugin.seen) == 1  # the author's handler did not run for the bad configuration
    assert handle.fire(HookName.ExecuteCommand, {"command": "/greet"}).text == "hello"


def test_activation_fails_without_a_valid_configuration(mm_fake: FakeMattermost) -> None:
    with pytest.raises(ActivationError) as e:
        mm_fake.start(Greeter, settings={"Shout": True})
    message = str(e.value)
    assert "cannot activate without valid settings" in message
    assert "Greeting: required (field greeting), but not set" in message


def test_settings_alone_make_the_hooks_implemented() -> None:
    class Quiet(Plugin):
        settings = Settings(GreeterSettings)

    assert Quiet.implemented_hooks() == ["OnActivate", "OnConfigurationChange"]


def test_a_configuration_that_cannot_be_loaded_keeps_the_settings(mm_plugin: Any) -> None:
    class Quiet(Plugin):
        settings = Settings(GreeterSettings)

    handle = mm_plugin(Quiet, settings={"Greeting": "hey"})
    handle.fake.on("LoadPluginConfiguration", NotFoundError("config store is gone"))
    with pytest.raises(HookError, match="config store is gone"):
        handle.fire(HookName.OnConfigurationChange)
    assert handle.plugin.settings.greeting == "hey"


async def test_async_handlers_read_the_same_settings(mm_plugin: Any) -> None:
    class AsyncGreeter(Plugin):
        settings = Settings(GreeterSettings)

        @hook(HookName.OnActivate)
        async def on_activate(self) -> None:
            self.greeting_at_activation = self.settings.greeting

    handle = mm_plugin(AsyncGreeter, settings={"greeting": "yo"})
    assert handle.plugin.greeting_at_activation == "yo"
    await handle.afire(HookName.OnConfigurationChange)


def test_reading_before_any_load_says_why() -> None:
    class Quiet(Plugin):
        settings = Settings(GreeterSettings)

    plugin = Quiet.create(api=None, aapi=None, plugin_id="p")
    with pytest.raises(SettingsError, match="not loaded yet"):
        _ = plugin.settings
    assert isinstance(Quiet.settings, Settings)  # the descriptor on the class
    plugin.settings = GreeterSettings(greeting="set by a test")
    assert plugin.settings.greeting == "set by a test"
    with pytest.raises(TypeError, match="must be a GreeterSettings"):
        plugin.settings = {"greeting": "x"}  # type: ignore[assignment]


def test_only_one_settings_attribute() -> None:
    with pytest.raises(TypeError, match="several Settings attributes"):

        class Twice(Plugin):
            a = Settings(GreeterSettings)
            b = Settings(GreeterSettings)


def test_a_subclass_of_a_plugin_with_settings_keeps_them(mm_plugin: Any) -> None:
    # Tests subclass a plugin to swap a clock or a client: its settings come along.
    class Greeter(Plugin):
        settings = Settings(GreeterSettings)

    class TestGreeter(Greeter):
        pass

    handle = mm_plugin(TestGreeter, settings={"greeting": "hi"})
    assert handle.plugin.settings.greeting == "hi"
